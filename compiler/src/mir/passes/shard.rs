//! Sharding: a large `Map` (or a `Reduce` with a large free space) is split along its
//! outermost dimension into blocks computed separately and concatenated; a large reduction
//! over a small free space is split along its outermost reduced dimension into partial
//! reductions — one reduction whose new free dimension is the block, so its blocks run in
//! parallel, plus one for a ragged rest — whose states are then folded in block order.
//!
//! Laws: a map commutes with splitting its index space; a monoid's combine is associative
//! (any grouping) and its zero is an identity (ragged last blocks are fine). Partials are
//! never reordered, so commutativity is not needed.
//!
//! **Invariant:** block boundaries depend only on shapes and [`PassConfig::block`], never on
//! the thread count, so every run gives bitwise-identical results.

use std::collections::HashMap;

use super::util::{renumber_expr, renumber_reads, volume};
use super::{Law, PassConfig, Rewrite};
use crate::mir::contract::contraction;
use crate::mir::ir::{
    Affine, Edge, Graph, Monoid, MonoidRef, Node, NodeKind, Port, Read, ScalarExpr, TensorTy,
};
use crate::mir::monoid::{apply2, explicit, fields, outputs_of};

pub fn run(g: &mut Graph, cfg: &PassConfig) -> Vec<Rewrite> {
    let block = cfg.block;
    rebuild(
        g,
        &mut |out, node, name| match decide(out, node, block, cfg.split_free) {
            Some(Split::Free(rows)) => {
                let what = if matches!(node.kind, NodeKind::Map { .. }) {
                    "map"
                } else {
                    "reduction"
                };
                let rewrite = Rewrite {
                    pass: "shard",
                    law: Law::MapSplit,
                    detail: format!(
                        "split {what} {name} into {} blocks of {rows} along its first dimension",
                        extent0(node).div_ceil(rows)
                    ),
                };
                Some((rewrite, split_free(out, node, rows)))
            }
            Some(Split::Reduced(rows)) => {
                let n = match &node.kind {
                    NodeKind::Reduce { red, .. } => red[0].div_ceil(rows),
                    _ => 0,
                };
                let rewrite = Rewrite {
                pass: "shard",
                law: Law::Associativity,
                detail: format!("split reduction {name} into {n} partial reductions of {rows} along its first reduced dimension (one reduction with a block dimension, and the rest), folded in block order"),
            };
                Some((rewrite, split_reduced(out, node, rows)))
            }
            None => None,
        },
    )
}

/// A rewrite of one node for [`rebuild`].
pub(super) type NodeRewriter<'a> =
    dyn FnMut(&mut Graph, &Node, &str) -> Option<(Rewrite, Vec<Port>)> + 'a;

/// Rebuilds `g` node by node: `f` sees each node (its ports already renumbered) and its name
/// for messages, and either returns the rewrite it made and the ports that replace the node's
/// outputs (having added nodes to the new graph), or `None` to keep the node.
pub(super) fn rebuild(g: &mut Graph, f: &mut NodeRewriter<'_>) -> Vec<Rewrite> {
    let mut out = Graph::new();
    out.monoids = std::mem::take(&mut g.monoids);
    let mut map: HashMap<Port, Port> = HashMap::new();
    let mut rewrites = Vec::new();
    let old = std::mem::take(&mut g.nodes);
    for (i, mut node) in old.raw.into_iter().enumerate() {
        let old_id = crate::mir::ir::NodeId(i as u32);
        node.map_inputs(&mut |p| map[&p]);
        let name = if node.label.is_empty() {
            format!("{old_id}")
        } else {
            format!("{old_id} \"{}\"", node.label)
        };
        let ports: Vec<Port> = match f(&mut out, &node, &name) {
            Some((rewrite, ports)) => {
                rewrites.push(rewrite);
                ports
            }
            None => {
                let n = node.outputs.len() as u32;
                let id = out.add(node);
                (0..n).map(|port| Port { node: id, port }).collect()
            }
        };
        for (k, p) in ports.into_iter().enumerate() {
            map.insert(
                Port {
                    node: old_id,
                    port: k as u32,
                },
                p,
            );
        }
    }
    out.outputs = g.outputs.iter().map(|p| map[p]).collect();
    *g = out;
    rewrites
}

/// A reduction with at most this many free points (and a long reduced box) is split along
/// its reduced dimension: fewer rows than this would leave cores idle.
pub const SMALL_FREE: usize = 64;

/// How a node is split: blocks of so many rows along the first free dimension, or along the
/// first reduced dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Free(usize),
    Reduced(usize),
}

/// The split the shard pass makes of `node` with this block size, if any.
pub fn decide(g: &Graph, node: &Node, block: usize, split_free: bool) -> Option<Split> {
    let block = block.max(1);
    match &node.kind {
        // A contraction is left whole: both backends run it as a GEMM, whose rows are
        // independent (the native backend splits it into row blocks itself). Row blocks of it
        // read with offsets, which are no longer a contraction, and would fold in another
        // order (see note [Contractions stay whole]).
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. }
            if split_free
                && volume(space) > block.saturating_mul(2)
                && space[0] >= 2
                && contraction(g, node).is_none() =>
        {
            Some(Split::Free(rows_per_block(space, block)))
        }
        // A long reduction over a free space too small to give many row shards (a larger one
        // runs its rows in parallel, each row in SIMD lanes: see the lanes pass).
        NodeKind::Reduce {
            space, red, monoid, ..
        } if !red.is_empty()
            && volume(space).saturating_mul(8) <= block
            && volume(space) <= SMALL_FREE
            && volume(space) * volume(red) > block.saturating_mul(2)
            && red[0] >= 2
            && splittable(g, *monoid, node) =>
        {
            let inner = volume(space) * volume(&red[1..]);
            Some(Split::Reduced((block / inner.max(1)).max(1)))
        }
        _ => None,
    }
}

/// The number of shards the shard pass makes of `node`.
pub fn shard_count(g: &Graph, node: &Node, block: usize) -> usize {
    match (decide(g, node, block, true), &node.kind) {
        (Some(Split::Free(rows)), _) => extent0(node).div_ceil(rows),
        (Some(Split::Reduced(rows)), NodeKind::Reduce { red, .. }) => red[0].div_ceil(rows),
        _ => 1,
    }
}

fn extent0(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => space[0],
        _ => 1,
    }
}

fn rows_per_block(space: &[usize], block: usize) -> usize {
    (block / volume(&space[1..]).max(1)).clamp(1, space[0])
}

fn splittable(g: &Graph, m: MonoidRef, node: &Node) -> bool {
    explicit(g, m, node.outputs[0].dtype).is_some()
}

/// Index variable `var` shifted by `start` in projections and expressions.
pub(super) fn shift_reads(reads: &[Read], var: u32, start: usize) -> Vec<Read> {
    reads
        .iter()
        .map(|r| Read {
            proj: r
                .proj
                .iter()
                .map(|a| {
                    let c: i64 = a
                        .coeffs
                        .iter()
                        .filter(|(v, _)| *v == var)
                        .map(|(_, c)| *c)
                        .sum();
                    Affine {
                        konst: a.konst + c * start as i64,
                        coeffs: a.coeffs.clone(),
                    }
                })
                .collect(),
            ..r.clone()
        })
        .collect()
}

pub(super) fn shift_expr(e: &ScalarExpr, var: u32, start: usize) -> ScalarExpr {
    if start == 0 {
        return e.clone();
    }
    e.rewrite(&mut |x| match x {
        ScalarExpr::Index(v) if *v == var => Some(ScalarExpr::binary(
            crate::mir::ir::BinOp::Add,
            ScalarExpr::Index(var),
            ScalarExpr::Const(flow_runtime::Scalar::I64(start as i64)),
        )),
        _ => None,
    })
}

/// Blocks of `rows` along free dimension 0, concatenated per port.
fn split_free(g: &mut Graph, node: &Node, rows: usize) -> Vec<Port> {
    let n0 = match &node.kind {
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => space[0],
        _ => unreachable!("only maps and reductions are split"),
    };
    let mut pieces: Vec<crate::mir::ir::NodeId> = Vec::new();
    let mut start = 0;
    while start < n0 {
        let len = rows.min(n0 - start);
        let kind = match &node.kind {
            NodeKind::Map { space, reads, body } => {
                let mut space = space.clone();
                space[0] = len;
                NodeKind::Map {
                    space,
                    reads: shift_reads(reads, 0, start),
                    body: body.iter().map(|e| shift_expr(e, 0, start)).collect(),
                }
            }
            NodeKind::Reduce {
                space,
                red,
                monoid,
                reads,
                args,
            } => {
                let mut space = space.clone();
                space[0] = len;
                NodeKind::Reduce {
                    space,
                    red: red.clone(),
                    monoid: *monoid,
                    reads: shift_reads(reads, 0, start),
                    args: args.iter().map(|e| shift_expr(e, 0, start)).collect(),
                }
            }
            _ => unreachable!("only maps and reductions are split"),
        };
        let outputs = node.outputs.iter().map(|t| with_dim0(t, len)).collect();
        pieces.push(g.add(Node {
            kind,
            outputs,
            label: node.label.clone(),
            span: node.span,
        }));
        start += len;
    }
    concat(g, node, &pieces)
}

fn with_dim0(t: &TensorTy, len: usize) -> TensorTy {
    let mut shape = t.shape.clone();
    shape[0] = len;
    TensorTy::new(t.dtype, shape)
}

fn concat(g: &mut Graph, node: &Node, pieces: &[crate::mir::ir::NodeId]) -> Vec<Port> {
    (0..node.outputs.len() as u32)
        .map(|port| {
            let parts = pieces.iter().map(|p| Port { node: *p, port }).collect();
            let id = g.add(Node {
                kind: NodeKind::Concat { axis: 0, parts },
                outputs: vec![node.outputs[port as usize].clone()],
                label: node.label.clone(),
                span: node.span,
            });
            Port { node: id, port: 0 }
        })
        .collect()
}

/// Partial reductions over blocks of `rows` along reduced dimension 0, as one reduction with
/// a new free dimension (the block), plus one for the ragged rest; their states are then
/// folded in block order by one more reduction, and unwrapped.
fn split_reduced(g: &mut Graph, node: &Node, rows: usize) -> Vec<Port> {
    let NodeKind::Reduce {
        space,
        red,
        monoid,
        reads,
        args,
    } = &node.kind
    else {
        unreachable!("only reductions are split along a reduced dimension")
    };
    let m = explicit(g, *monoid, node.outputs[0].dtype).expect("checked by splittable");
    let (partial_monoid, fold_monoid) = state_monoids(g, *monoid);
    let s = space.len() as u32;
    let blocks = red[0] / rows;
    let rest = red[0] - blocks * rows;
    let state_tys = |shape: &[usize]| -> Vec<TensorTy> {
        m.state
            .iter()
            .map(|d| TensorTy::new(*d, shape.to_vec()))
            .collect()
    };
    // The blocks: free space `space ++ [blocks]`; the reduced index `s` becomes
    // `block * rows + r` with the block at `s` and `r` at `s + 1`.
    let f = |w: u32| match w.cmp(&s) {
        std::cmp::Ordering::Less => vec![(w, 1)],
        std::cmp::Ordering::Equal => vec![(s, rows as i64), (s + 1, 1)],
        std::cmp::Ordering::Greater => vec![(w + 1, 1)],
    };
    let mut block_space = space.clone();
    block_space.push(blocks);
    let mut block_red = red.clone();
    block_red[0] = rows;
    let block_reads = renumber_reads(reads, &f);
    let partials = g.add(Node {
        kind: NodeKind::Reduce {
            space: block_space.clone(),
            red: block_red,
            monoid: partial_monoid,
            reads: block_reads,
            args: args.iter().map(|e| renumber_expr(e, &f)).collect(),
        },
        outputs: state_tys(&block_space),
        label: node.label.clone(),
        span: node.span,
    });
    let rest_kind = (rest > 0).then(|| {
        let mut rest_red = red.clone();
        rest_red[0] = rest;
        let start = blocks * rows;
        NodeKind::Reduce {
            space: space.clone(),
            red: rest_red,
            monoid: partial_monoid,
            reads: shift_reads(reads, s, start),
            args: args.iter().map(|e| shift_expr(e, s, start)).collect(),
        }
    });
    fold_states(g, node, &m, partials, blocks, fold_monoid, rest_kind)
}

/// The monoid of partial states (the monoid without its unwrap) and the monoid that folds
/// states (without wrap and unwrap), for splitting a reduction with `monoid`.
pub(super) fn state_monoids(g: &mut Graph, monoid: MonoidRef) -> (MonoidRef, MonoidRef) {
    // Partial reductions yield states: the monoid without its unwrap; the fold over partial
    // states takes states as inputs: the monoid without wrap and unwrap.
    match monoid {
        MonoidRef::Builtin(_) => (monoid, monoid),
        MonoidRef::User(id) => {
            let orig: Monoid = g.monoids[id].clone();
            let partial = if orig.unwrap.is_none() {
                monoid
            } else {
                let mut copy = orig.clone();
                copy.unwrap = None;
                copy.name = format!("{}.state", orig.name);
                MonoidRef::User(g.add_monoid(copy))
            };
            let mut fold = orig.clone();
            fold.unwrap = None;
            fold.wrap = None;
            fold.name = format!("{}.fold", orig.name);
            (partial, MonoidRef::User(g.add_monoid(fold)))
        }
    }
}

/// Finishes a split reduction `node` (monoid `m`): folds the states that `partials` computes
/// over the free space of `node` plus one last dimension of extent `k`, in order along that
/// dimension, with `fold_monoid`; combines the result with the states of the reduction
/// `rest` (over the free space of `node`), if any; and unwraps like `node`.
pub(super) fn fold_states(
    g: &mut Graph,
    node: &Node,
    m: &crate::mir::monoid::Explicit,
    partials: crate::mir::ir::NodeId,
    k: usize,
    fold_monoid: MonoidRef,
    rest: Option<NodeKind>,
) -> Vec<Port> {
    let space = match &node.kind {
        NodeKind::Reduce { space, .. } => space.clone(),
        _ => unreachable!("only reductions are split"),
    };
    let s = space.len() as u32;
    let n = m.state.len();
    let state_tys = |shape: &[usize]| -> Vec<TensorTy> {
        m.state
            .iter()
            .map(|d| TensorTy::new(*d, shape.to_vec()))
            .collect()
    };
    // The fold of the partial states, in block order.
    let identity: Vec<Affine> = (0..=s).map(Affine::var).collect();
    let fold_reads: Vec<Read> = (0..n as u32)
        .map(|port| Read {
            node: partials,
            port,
            proj: identity.clone(),
            edge: Edge::Strict,
        })
        .collect();
    let fold_arg = if n == 1 {
        ScalarExpr::Read(0)
    } else {
        ScalarExpr::Tuple((0..n as u32).map(ScalarExpr::Read).collect())
    };
    let folded = g.add(Node {
        kind: NodeKind::Reduce {
            space: space.clone(),
            red: vec![k],
            monoid: fold_monoid,
            reads: fold_reads,
            args: vec![fold_arg],
        },
        outputs: state_tys(&space),
        label: node.label.clone(),
        span: node.span,
    });
    let mut state: Vec<Port> = (0..n as u32)
        .map(|port| Port { node: folded, port })
        .collect();
    let free_identity: Vec<Affine> = (0..s).map(Affine::var).collect();
    let read_all = |ports: &[Port], reads: &mut Vec<Read>| -> ScalarExpr {
        let rs: Vec<ScalarExpr> = ports
            .iter()
            .map(|p| {
                reads.push(Read {
                    node: p.node,
                    port: p.port,
                    proj: free_identity.clone(),
                    edge: Edge::Strict,
                });
                ScalarExpr::Read(reads.len() as u32 - 1)
            })
            .collect();
        if rs.len() == 1 {
            rs.into_iter().next().expect("one")
        } else {
            ScalarExpr::Tuple(rs)
        }
    };
    if let Some(kind) = rest {
        let tail = g.add(Node {
            kind,
            outputs: state_tys(&space),
            label: node.label.clone(),
            span: node.span,
        });
        let tail_ports: Vec<Port> = (0..n as u32)
            .map(|port| Port { node: tail, port })
            .collect();
        let mut rs = Vec::new();
        let a = read_all(&state, &mut rs);
        let b = read_all(&tail_ports, &mut rs);
        let body = fields(&apply2(&m.combine, &a, &b), n);
        let id = g.add(Node {
            kind: NodeKind::Map {
                space: space.clone(),
                reads: rs,
                body,
            },
            outputs: state_tys(&space),
            label: node.label.clone(),
            span: node.span,
        });
        state = (0..n as u32).map(|port| Port { node: id, port }).collect();
    }
    if m.unwrap.is_none() {
        return state;
    }
    let mut rs = Vec::new();
    let st = read_all(&state, &mut rs);
    let body = outputs_of(m, &st);
    let id = g.add(Node {
        kind: NodeKind::Map {
            space: space.clone(),
            reads: rs,
            body,
        },
        outputs: node.outputs.clone(),
        label: node.label.clone(),
        span: node.span,
    });
    (0..node.outputs.len() as u32)
        .map(|port| Port { node: id, port })
        .collect()
}

// Note [Contractions stay whole]: the interpreter runs the pipeline with `split_free` on, and
// splitting a contraction into row blocks once gave it reads `a[i0 + 255, i2]` that
// `contract::contraction` does not recognize: those blocks were folded point by point (1000x
// slower than the GEMM, and with other bits than the native backend's GEMM from row 255 on).
