//! Reverse-mode automatic differentiation as a transformation of the MIR graph.
//!
//! [`vjp`] appends to a graph the nodes that compute the vector-Jacobian product of one output
//! port with respect to some argument ports: the adjoint graph. It walks the nodes that depend
//! on the arguments from the output back to the arguments; each node's adjoint (the sum of the
//! contributions of its consumers) is pushed through the node:
//!
//! - a `Map`: the chain rule of each scalar built-in in its body ([`scalar`]), then, for each
//!   read, an accumulation into the read tensor's shape ([`accumulate`]), and for each
//!   gather from a differentiated table (`x[idx[i]]`), a scatter-add into the table
//!   ([`gather`]);
//! - a `sum` `Reduce`: like a map over the free and reduced variables, whose adjoint is the
//!   output's adjoint broadcast over the reduced ones;
//! - a `max`/`min` `Reduce`: the adjoint is split equally among the elements equal to the
//!   result (a tie of `n` elements gives each `1/n` of it);
//! - a `prod` `Reduce`: each element receives the product of the others (`y / x` where no
//!   factor is zero; with one zero factor, only it receives the product of the rest);
//! - a `Reduce` with a user monoid that declares `d_combine`: the fold recomputed as a
//!   balanced tree whose levels are kept, then walked down applying `d_combine`
//!   ([`monoid`]);
//! - a `Scan` ([`scan`]): for `sum`, the same scan of the adjoint read backwards; for
//!   `prod`/`max`/`min`, the reverse linear recurrence of the prefixes' adjoints as a scan
//!   of affine maps; with a user monoid that declares `d_combine`, the same recurrence
//!   with the Jacobians it gives, a scan of affine maps of vectors ([`scan_user`]);
//! - a `ReduceByIndex` with a built-in monoid and a `Scatter` ([`bins`]): each value
//!   receives its share of its bin's adjoint, a gather (`sum`: all of it; `max`/`min`: split
//!   among the values equal to the bin; `prod`: the product of the others; a scatter: only
//!   the last write of each element); with a user monoid that declares `d_combine`, the
//!   values sorted by bin and each one's adjoint from the segmented prefix and suffix folds
//!   of its bin ([`bins_user`]);
//! - `Concat` and `Slice`: the matching slice, or the zero-padded placement.
//!
//! The derived nodes are ordinary `Map`/`Reduce` nodes, so they go through the same passes
//! (fusion, sharding, lanes, GEMM recognition) and both backends. Integer and boolean ports
//! carry no adjoint. A user monoid without `d_combine` is not differentiated: the checker
//! refuses `grad` through it (`not-differentiable`), and reaching one here is an error.

mod accumulate;
mod bins;
mod bins_user;
mod gather;
mod monoid;
mod scalar;
mod scan;
mod scan_user;

use std::collections::{HashMap, HashSet};

use flow_runtime::DType;

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Edge, Graph, MonoidRef, Node, NodeKind, Port, Read, ScalarExpr,
    TensorTy,
};
use crate::mir::typeck::ExprCx;
use accumulate::{accumulate, zero_of};
use scalar::fconst;

/// Why a graph could not be differentiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdError(pub String);

impl std::fmt::Display for AdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity projection over the first `n` variables.
fn ident(n: usize) -> Vec<Affine> {
    (0..n as u32).map(Affine::var).collect()
}

/// A strict read of `p` through `proj`.
fn read(p: Port, proj: Vec<Affine>) -> Read {
    Read {
        node: p.node,
        port: p.port,
        proj,
        edge: Edge::Strict,
    }
}

fn ty(g: &Graph, p: Port) -> &TensorTy {
    &g.nodes[p.node].outputs[p.port as usize]
}

fn add_node(g: &mut Graph, kind: NodeKind, out: TensorTy, label: &str) -> Port {
    let node = g.add(Node {
        kind,
        outputs: vec![out],
        label: label.to_string(),
        span: None,
    });
    Port { node, port: 0 }
}

/// The first `n` output ports of `node`.
fn ports_of(node: crate::mir::NodeId, n: usize) -> Vec<Port> {
    (0..n as u32).map(|port| Port { node, port }).collect()
}

/// A tensor of zeros of type `t`.
pub fn zeros(g: &mut Graph, t: &TensorTy, label: &str) -> Port {
    let kind = NodeKind::Map {
        space: t.shape.clone(),
        reads: Vec::new(),
        body: vec![ScalarExpr::Const(zero_of(t.dtype))],
    };
    add_node(g, kind, t.clone(), label)
}

/// The elementwise sum of ports of one type.
fn sum_ports(g: &mut Graph, ps: &[Port], label: &str) -> Port {
    if ps.len() == 1 {
        return ps[0];
    }
    let t = ty(g, ps[0]).clone();
    let reads = ps.iter().map(|&p| read(p, ident(t.shape.len()))).collect();
    let body = (1..ps.len() as u32).fold(ScalarExpr::Read(0), |acc, k| {
        ScalarExpr::binary(BinOp::Add, acc, ScalarExpr::Read(k))
    });
    let kind = NodeKind::Map {
        space: t.shape.clone(),
        reads,
        body: vec![body],
    };
    add_node(g, kind, t, label)
}

/// Appends the vector-Jacobian product of `out` at cotangent `ct` (a port of `out`'s type)
/// with respect to each port of `wrt`, and returns one gradient port per argument (of its
/// type). The arguments must be distinct ports that nothing before them depends on: fresh
/// copies made for the purpose.
pub fn vjp(g: &mut Graph, wrt: &[Port], out: Port, ct: Port) -> Result<Vec<Port>, AdError> {
    let Some(start) = wrt.iter().map(|p| p.node).min() else {
        return Ok(Vec::new());
    };
    // Which ports depend on an argument, and are floats.
    let mut active: HashSet<Port> = wrt
        .iter()
        .copied()
        .filter(|&p| ty(g, p).dtype.is_float())
        .collect();
    for id in g.nodes.ids().filter(|&id| id > start && id <= out.node) {
        let node = &g.nodes[id];
        if node.inputs().iter().any(|p| active.contains(p)) {
            for (k, t) in node.outputs.iter().enumerate() {
                if t.dtype.is_float() {
                    active.insert(Port {
                        node: id,
                        port: k as u32,
                    });
                }
            }
        }
    }
    let wrt_set: HashSet<Port> = wrt.iter().copied().collect();
    let mut adj: HashMap<Port, Vec<Port>> = HashMap::new();
    if active.contains(&out) {
        adj.entry(out).or_default().push(ct);
    }
    let ids: Vec<_> = g
        .nodes
        .ids()
        .filter(|&id| id >= start && id <= out.node)
        .collect();
    for &id in ids.iter().rev() {
        let n_ports = g.nodes[id].outputs.len();
        let mut dys = Vec::with_capacity(n_ports);
        let mut any = false;
        for k in 0..n_ports {
            let p = Port {
                node: id,
                port: k as u32,
            };
            if wrt_set.contains(&p) {
                dys.push(None);
                continue;
            }
            let dy = match adj.get(&p) {
                Some(cs) if !cs.is_empty() => {
                    let label = format!("d.{}", g.nodes[id].label);
                    Some(sum_ports(g, &cs.clone(), &label))
                }
                _ => None,
            };
            any |= dy.is_some();
            dys.push(dy);
        }
        if any {
            back_node(g, id, &dys, &active, &mut adj)?;
        }
    }
    Ok(wrt
        .iter()
        .map(|&w| match adj.get(&w) {
            Some(cs) if !cs.is_empty() => sum_ports(g, &cs.clone(), "grad"),
            _ => {
                let t = ty(g, w).clone();
                zeros(g, &t, "grad")
            }
        })
        .collect())
}

/// Pushes the adjoints `dys` of node `id`'s ports to the ports it reads.
fn back_node(
    g: &mut Graph,
    id: crate::mir::NodeId,
    dys: &[Option<Port>],
    active: &HashSet<Port>,
    adj: &mut HashMap<Port, Vec<Port>>,
) -> Result<(), AdError> {
    let node = g.nodes[id].clone();
    let label = format!("d.{}", node.label);
    match &node.kind {
        NodeKind::Map { space, reads, body } => {
            let mut reads = reads.clone();
            let mut seeds = Vec::new();
            for (p, dy) in dys.iter().enumerate() {
                if let Some(dy) = dy {
                    seeds.push((p, ScalarExpr::Read(reads.len() as u32)));
                    reads.push(read(*dy, ident(space.len())));
                }
            }
            let exprs: Vec<(ScalarExpr, ScalarExpr)> = seeds
                .into_iter()
                .map(|(p, s)| (body[p].clone(), s))
                .collect();
            push_reads(g, space, &reads, &exprs, active, adj, &label)
        }
        NodeKind::Reduce {
            space,
            red,
            monoid,
            reads,
            args,
        } => {
            let m = match monoid {
                MonoidRef::Builtin(m) => m,
                MonoidRef::User(id) => {
                    let r = monoid::Reduction {
                        space,
                        red,
                        monoid: *id,
                        reads,
                        args,
                    };
                    return monoid::back_user_reduce(g, &r, dys, active, adj, &label);
                }
            };
            let Some(dy) = dys[0] else { return Ok(()) };
            let nf = space.len();
            let mut all = space.clone();
            all.extend(red);
            let dtype = node.outputs[0].dtype;
            let mut reads = reads.clone();
            let body = args[0].clone();
            let rd = |reads: &mut Vec<Read>, p: Port| {
                reads.push(read(p, ident(nf)));
                ScalarExpr::Read(reads.len() as u32 - 1)
            };
            let dyr = rd(&mut reads, dy);
            let seed = match m {
                BuiltinMonoid::Sum => dyr,
                BuiltinMonoid::Max | BuiltinMonoid::Min => {
                    let y = rd(&mut reads, Port { node: id, port: 0 });
                    let hit = ScalarExpr::binary(BinOp::Eq, body.clone(), y);
                    let one =
                        ScalarExpr::select(hit.clone(), fconst(dtype, 1.0), fconst(dtype, 0.0));
                    let count = fold(
                        g,
                        space,
                        red,
                        &reads,
                        one,
                        BuiltinMonoid::Sum,
                        dtype,
                        &label,
                    );
                    let c = rd(&mut reads, count);
                    let share = ScalarExpr::binary(BinOp::Div, dyr, c);
                    ScalarExpr::select(hit, share, fconst(dtype, 0.0))
                }
                BuiltinMonoid::Prod => {
                    let y = rd(&mut reads, Port { node: id, port: 0 });
                    let is0 = ScalarExpr::binary(BinOp::Eq, body.clone(), fconst(dtype, 0.0));
                    let zeros_e =
                        ScalarExpr::select(is0.clone(), fconst(dtype, 1.0), fconst(dtype, 0.0));
                    let nz = fold(
                        g,
                        space,
                        red,
                        &reads,
                        zeros_e,
                        BuiltinMonoid::Sum,
                        dtype,
                        &label,
                    );
                    let rest_e = ScalarExpr::select(is0.clone(), fconst(dtype, 1.0), body.clone());
                    let rest = fold(
                        g,
                        space,
                        red,
                        &reads,
                        rest_e,
                        BuiltinMonoid::Prod,
                        dtype,
                        &label,
                    );
                    let nz = rd(&mut reads, nz);
                    let rest = rd(&mut reads, rest);
                    prod_seed(dtype, &body, [y, dyr, nz, rest])
                }
                BuiltinMonoid::Any | BuiltinMonoid::All => return Ok(()),
            };
            push_reads(g, &all, &reads, &[(body, seed)], active, adj, &label)
        }
        NodeKind::Concat { axis, parts } => {
            let Some(dy) = dys[0] else { return Ok(()) };
            let mut offset = 0i64;
            for part in parts {
                let t = ty(g, *part).clone();
                if active.contains(part) {
                    let mut proj = ident(t.shape.len());
                    proj[*axis].konst = offset;
                    let kind = NodeKind::Map {
                        space: t.shape.clone(),
                        reads: vec![read(dy, proj)],
                        body: vec![ScalarExpr::Read(0)],
                    };
                    let p = add_node(g, kind, t.clone(), &label);
                    adj.entry(*part).or_default().push(p);
                }
                offset += t.shape[*axis] as i64;
            }
            Ok(())
        }
        NodeKind::Slice { src, start, .. } => {
            let Some(dy) = dys[0] else { return Ok(()) };
            if !active.contains(src) {
                return Ok(());
            }
            let t = ty(g, *src).clone();
            let mut proj = ident(t.shape.len());
            for (a, s) in proj.iter_mut().zip(start) {
                a.konst = -(*s as i64);
            }
            let mut r = read(dy, proj);
            r.edge = Edge::Pad(zero_of(t.dtype));
            let kind = NodeKind::Map {
                space: t.shape.clone(),
                reads: vec![r],
                body: vec![ScalarExpr::Read(0)],
            };
            let p = add_node(g, kind, t, &label);
            adj.entry(*src).or_default().push(p);
            Ok(())
        }
        NodeKind::Input { .. } | NodeKind::Const { .. } | NodeKind::Random { .. } => Ok(()),
        NodeKind::Scan {
            space,
            monoid,
            exclusive,
            reads,
            args,
        } => {
            let s = scan::ScanNode {
                node: id,
                space,
                monoid,
                exclusive: *exclusive,
                reads,
                args,
            };
            if let MonoidRef::User(m) = monoid {
                return scan_user::back_user_scan(g, &s, *m, dys, active, adj, &label);
            }
            let Some(dy) = dys[0] else { return Ok(()) };
            scan::back_scan(g, &s, dy, active, adj, &label)
        }
        NodeKind::ReduceByIndex {
            space,
            bins,
            monoid,
            reads,
            index,
            args,
        } => {
            let h = bins::Binned {
                node: id,
                space,
                reads,
                index,
            };
            if let MonoidRef::User(m) = monoid {
                let u = bins_user::UserHistogram {
                    h,
                    bins: *bins,
                    monoid: *m,
                    args,
                    forward: &node.label,
                };
                return bins_user::back_user_histogram(g, &u, dys, active, adj, &label);
            }
            let Some(dy) = dys[0] else { return Ok(()) };
            bins::back_histogram(g, &h, *bins, monoid, &args[0], dy, active, adj, &label)
        }
        NodeKind::Scatter {
            dest,
            space,
            reads,
            index,
            value,
        } => {
            let Some(dy) = dys[0] else { return Ok(()) };
            let s = bins::Binned {
                node: id,
                space,
                reads,
                index,
            };
            bins::back_scatter(g, &s, *dest, value, dy, active, adj, &label)
        }
    }
}

/// The adjoint of a factor `x` of a product `y` (a `prod` reduction's or histogram's) whose
/// adjoint is `dy`, with `nz` zero factors and `rest` the product of the non-zero ones: `dy ·
/// y / x` without zeros; with one, `dy · rest` to the zero alone; with two or more, 0.
fn prod_seed(dtype: DType, x: &ScalarExpr, [y, dy, nz, rest]: [ScalarExpr; 4]) -> ScalarExpr {
    let is0 = ScalarExpr::binary(BinOp::Eq, x.clone(), fconst(dtype, 0.0));
    let cmp = |k: f64| ScalarExpr::binary(BinOp::Eq, nz.clone(), fconst(dtype, k));
    let mul = |a, b| ScalarExpr::binary(BinOp::Mul, a, b);
    let nonzero = ScalarExpr::select(
        cmp(0.0),
        mul(dy.clone(), ScalarExpr::binary(BinOp::Div, y, x.clone())),
        fconst(dtype, 0.0),
    );
    let zero = ScalarExpr::select(cmp(1.0), mul(dy, rest), fconst(dtype, 0.0));
    ScalarExpr::select(is0, zero, nonzero)
}

/// A node of one port `out`, its unused reads dropped.
fn add_pruned(g: &mut Graph, kind: NodeKind, out: TensorTy, label: &str) -> Port {
    let mut node = Node {
        kind,
        outputs: vec![out],
        label: label.to_string(),
        span: None,
    };
    node.prune_reads();
    Port {
        node: g.add(node),
        port: 0,
    }
}

/// A reduction of `arg` over `red` with a built-in monoid, the free space `space`.
#[allow(clippy::too_many_arguments)]
fn fold(
    g: &mut Graph,
    space: &[usize],
    red: &[usize],
    reads: &[Read],
    arg: ScalarExpr,
    m: BuiltinMonoid,
    dtype: DType,
    label: &str,
) -> Port {
    let mut node = Node {
        kind: NodeKind::Reduce {
            space: space.to_vec(),
            red: red.to_vec(),
            monoid: MonoidRef::Builtin(m),
            reads: reads.to_vec(),
            args: vec![arg],
        },
        outputs: vec![TensorTy::new(dtype, space.to_vec())],
        label: label.to_string(),
        span: None,
    };
    node.prune_reads();
    Port {
        node: g.add(node),
        port: 0,
    }
}

/// For expressions `(e, seed)` over the box `extents` and `reads`, where `seed` is the adjoint
/// of `e`'s value at each point, adds every active read's accumulated adjoint to `adj`.
fn push_reads(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    exprs: &[(ScalarExpr, ScalarExpr)],
    active: &HashSet<Port>,
    adj: &mut HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let dtypes: Vec<DType> = reads.iter().map(|r| ty(g, r.src()).dtype).collect();
    let is_active: Vec<bool> = reads.iter().map(|r| active.contains(&r.src())).collect();
    let cx = scalar::Cx {
        types: ExprCx {
            n_index: extents.len(),
            reads: &dtypes,
            params: &[],
        },
        active: &is_active,
    };
    let mut out = scalar::Adjoints::new(reads.len());
    for (e, seed) in exprs {
        cx.back(e, seed.clone(), &mut Vec::new(), &mut out)?;
    }
    for (k, c) in out.reads.into_iter().enumerate() {
        if let Some(c) = c {
            let target = &reads[k];
            let p = accumulate(g, extents, reads, c, target, dtypes[k], label)?;
            adj.entry(target.src()).or_default().push(p);
        }
    }
    for ga in out.gathers {
        let k = ga.read as usize;
        let p = gather::scatter_add(g, extents, reads, &ga, dtypes[k], label);
        adj.entry(reads[k].src()).or_default().push(p);
    }
    Ok(())
}
