//! The adjoint of a reduction with a user monoid that declares its derivative:
//! `d_combine(a, b, g) = (da, db)`, the vector-Jacobian product of `combine`.
//!
//! A fold `s = x₀ ⊕ x₁ ⊕ … ⊕ xₙ₋₁` has no derivative without its intermediate states, and
//! the reduction node keeps none. So the adjoint graph recomputes the fold in a fixed
//! balanced tree whose levels are kept, with no new primitive — each level is a `Map`:
//!
//! - **forward**: the wrapped states `w[f, r] = wrap(args)` over the free and reduced
//!   variables; then, one reduced axis at a time from the last (so the order of a
//!   non-commutative monoid is kept: `reduce[i, j]` folds `j` inside `i`), levels
//!   `t₁[…, i] = combine(t₀[…, 2 i], t₀[…, 2 i + 1])` until one element is left, the odd
//!   element at the end of a level paired with `zero` (a read padded with the identity);
//! - **backward**: the adjoint of the result goes through `unwrap` (the scalar chain rule),
//!   then down the levels: element `v` of level `j - 1` is the left (`v` even) or right
//!   operand of its parent `v / 2` in level `j`, whose adjoint it reads with a gather, and
//!   receives that side of `d_combine(left, right, parent's adjoint)`; finally the adjoint
//!   of each wrapped state goes through `wrap` to the reduction's reads (the chain rule
//!   again, accumulated like any read's adjoint).
//!
//! The work is O(n) per axis (twice the elements, over `log₂ n` levels) and every level is
//! an ordinary node, fused, sharded and run alike by both backends. The tree's result is
//! not the reduction's value bit for bit (a float fold regrouped); it is only the point at
//! which `d_combine` is evaluated, so the derivative is the exact one of the tree.
//! Integer and boolean fields carry no adjoint: theirs are zeros.

use flow_runtime::DType;

use crate::mir::ir::{
    Affine, BinOp, Edge, Graph, MonoidId, NodeKind, Port, Read, ScalarExpr, TensorTy,
};
use crate::mir::monoid::apply2;
use crate::mir::typeck::ExprCx;

use super::accumulate::zero_of;
use super::{add_node, ident, push_reads, read, scalar, ty, AdError};

/// A reduction's node, as `back_node` found it.
pub(super) struct Reduction<'a> {
    pub space: &'a [usize],
    pub red: &'a [usize],
    pub monoid: MonoidId,
    pub reads: &'a [Read],
    pub args: &'a [ScalarExpr],
}

/// One axis's tree: its levels from the wrapped (or previous axis's) states to one element,
/// each a state's fields as ports, and the extents before the axis.
struct Tree {
    outer: Vec<usize>,
    levels: Vec<Vec<Port>>,
}

/// The monoid's parts the adjoint needs.
pub(super) struct Parts {
    pub state: Vec<DType>,
    pub zero: Vec<flow_runtime::Scalar>,
    pub combine: ScalarExpr,
    pub d_combine: ScalarExpr,
}

impl Parts {
    /// The parts of monoid `m`, or the error naming it when it declares no derivative;
    /// `what` says where it is used ("a reduction", "a scan").
    pub fn of(m: &crate::mir::ir::Monoid, what: &str) -> Result<Parts, AdError> {
        let Some(d_combine) = m.d_combine.clone() else {
            return Err(AdError(format!(
                "{what} with the monoid `{}`, which declares no derivative (`d_combine`)",
                m.name
            )));
        };
        Ok(Parts {
            state: m.state.clone(),
            zero: m.zero.clone(),
            combine: m.combine.clone(),
            d_combine,
        })
    }

    pub fn n(&self) -> usize {
        self.state.len()
    }

    /// The fields of the state wrapped from the arguments `args` (of a reduction or scan).
    pub fn wrapped(&self, m: &crate::mir::ir::Monoid, args: &[ScalarExpr]) -> Vec<ScalarExpr> {
        let wrapped = match &m.wrap {
            Some(w) => w.body.rewrite(&mut |x| match x {
                ScalarExpr::Param(k) => args.get(*k as usize).cloned(),
                _ => None,
            }),
            None => args[0].clone(),
        };
        self.fields(&wrapped)
    }

    /// `d_combine(a, b, g)` of state values: the fields of the adjoints of `a` and `b`.
    pub fn d_combine_at(
        &self,
        a: &ScalarExpr,
        b: &ScalarExpr,
        g: &ScalarExpr,
    ) -> (Vec<ScalarExpr>, Vec<ScalarExpr>) {
        let dc = project(&self.d_combine.rewrite(&mut |x| match x {
            ScalarExpr::Param(0) => Some(a.clone()),
            ScalarExpr::Param(1) => Some(b.clone()),
            ScalarExpr::Param(2) => Some(g.clone()),
            _ => None,
        }));
        (
            self.fields(&field_in(&dc, 0)),
            self.fields(&field_in(&dc, 1)),
        )
    }

    /// A state value made of fields `xs`: the scalar itself, or a tuple.
    pub fn value(&self, xs: Vec<ScalarExpr>) -> ScalarExpr {
        if self.n() == 1 {
            xs.into_iter().next().expect("one field")
        } else {
            ScalarExpr::Tuple(xs)
        }
    }

    /// A state value's fields, as scalar expressions.
    pub fn fields(&self, v: &ScalarExpr) -> Vec<ScalarExpr> {
        let v = project(v);
        if self.n() == 1 {
            vec![v]
        } else {
            (0..self.n() as u32).map(|k| field_in(&v, k)).collect()
        }
    }

    pub fn types(&self, shape: &[usize]) -> Vec<TensorTy> {
        self.state
            .iter()
            .map(|&d| TensorTy::new(d, shape.to_vec()))
            .collect()
    }
}

/// `e` with every field of a tuple built on the spot, or of a select of tuples, taken inside
/// (`(a, b).1` is `b`; `(if c { x } else { y }).k` is `if c { x.k } else { y.k }`), so a
/// state value's fields are scalar expressions a map can compute.
fn project(e: &ScalarExpr) -> ScalarExpr {
    e.rewrite(&mut |x| match x {
        ScalarExpr::Field(a, k) => Some(field_in(&project(a), *k)),
        _ => None,
    })
}

/// Field `k` of a projected expression.
fn field_in(x: &ScalarExpr, k: u32) -> ScalarExpr {
    match x {
        ScalarExpr::Tuple(items) if (k as usize) < items.len() => items[k as usize].clone(),
        ScalarExpr::Select(c, a, b) => {
            ScalarExpr::select((**c).clone(), field_in(a, k), field_in(b, k))
        }
        _ => ScalarExpr::field(x.clone(), k),
    }
}

/// A map node with one output port per body expression.
pub(super) fn map(
    g: &mut Graph,
    space: Vec<usize>,
    reads: Vec<Read>,
    body: Vec<ScalarExpr>,
    outs: Vec<TensorTy>,
    label: &str,
) -> Vec<Port> {
    let n = body.len();
    let kind = NodeKind::Map { space, reads, body };
    let first = add_node(g, kind, outs[0].clone(), label);
    g.nodes[first.node].outputs = outs;
    g.nodes[first.node].prune_reads();
    super::ports_of(first.node, n)
}

/// Pushes the adjoints `dys` of a user reduction's output ports to the ports it reads.
pub(super) fn back_user_reduce(
    g: &mut Graph,
    r: &Reduction<'_>,
    dys: &[Option<Port>],
    active: &std::collections::HashSet<Port>,
    adj: &mut std::collections::HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let m = g.monoids[r.monoid].clone();
    let parts = Parts::of(&m, "a reduction")?;
    if r.red.contains(&0) {
        return Ok(()); // an empty fold is `zero`, a constant
    }
    let n = parts.n();
    let mut all = r.space.to_vec();
    all.extend(r.red);

    // Forward: the wrapped states, then a tree per reduced axis, the last one first.
    let wrapped = parts.wrapped(&m, r.args);
    let w = map(
        g,
        all.clone(),
        r.reads.to_vec(),
        wrapped.clone(),
        parts.types(&all),
        &format!("{label}.wrap"),
    );
    let mut trees = Vec::new();
    let mut cur = w.clone();
    for axis in (r.space.len()..all.len()).rev() {
        let tree = build_tree(g, &parts, &all[..axis], cur, all[axis], label);
        // The top level, one element, without its axis.
        let outer = tree.outer.clone();
        let top = tree.levels.last().expect("a tree has a level").clone();
        let mut proj = ident(outer.len());
        proj.push(Affine::konst(0));
        let reads = top.iter().map(|&p| read(p, proj.clone())).collect();
        let body = (0..n as u32).map(ScalarExpr::Read).collect();
        cur = map(
            g,
            outer.clone(),
            reads,
            body,
            parts.types(&outer),
            &format!("{label}.fold"),
        );
        trees.push(tree);
    }
    let s = cur;

    // The adjoint of the final state, through `unwrap`.
    let gs = unwrap_adjoint(g, &m, &parts, r.space, &s, dys, label)?;
    let Some(mut gcur) = gs else { return Ok(()) };

    // Down the trees, the first axis's (built last) first.
    for tree in trees.iter().rev() {
        gcur = down_tree(g, &parts, tree, gcur, label);
    }

    // Through `wrap`, to the reduction's reads.
    let mut reads = r.reads.to_vec();
    let mut exprs = Vec::new();
    for (k, (e, &gw)) in wrapped.iter().zip(&gcur).enumerate() {
        if parts.state[k].is_float() {
            reads.push(read(gw, ident(all.len())));
            exprs.push((e.clone(), ScalarExpr::Read(reads.len() as u32 - 1)));
        }
    }
    push_reads(g, &all, &reads, &exprs, active, adj, label)
}

/// The tree that folds the last axis (of extent `len`) of the state tensor `t0`, whose other
/// axes are `outer`.
fn build_tree(
    g: &mut Graph,
    parts: &Parts,
    outer: &[usize],
    t0: Vec<Port>,
    len: usize,
    label: &str,
) -> Tree {
    let n = parts.n();
    let mut levels = vec![t0];
    let mut len = len;
    while len > 1 {
        let half = len.div_ceil(2);
        let prev = levels.last().expect("a level").clone();
        let mut shape = outer.to_vec();
        shape.push(half);
        let at = |mul: i64, k: i64| {
            let mut p = ident(outer.len());
            p.push(Affine {
                konst: k,
                coeffs: vec![(outer.len() as u32, mul)],
            });
            p
        };
        let mut reads: Vec<Read> = prev.iter().map(|&p| read(p, at(2, 0))).collect();
        for (k, &p) in prev.iter().enumerate() {
            let mut rd = read(p, at(2, 1));
            if len % 2 == 1 {
                rd.edge = Edge::Pad(parts.zero[k]); // the odd one out meets the identity
            }
            reads.push(rd);
        }
        let a = parts.value((0..n as u32).map(ScalarExpr::Read).collect());
        let b = parts.value((n as u32..2 * n as u32).map(ScalarExpr::Read).collect());
        let body = parts.fields(&apply2(&parts.combine, &a, &b));
        let next = map(
            g,
            shape.clone(),
            reads,
            body,
            parts.types(&shape),
            &format!("{label}.level"),
        );
        levels.push(next);
        len = half;
    }
    Tree {
        outer: outer.to_vec(),
        levels,
    }
}

/// The adjoint of each level of `tree`, from `gtop` (the adjoint of its folded result, over
/// `outer`) down: returns the adjoint of its first level.
fn down_tree(g: &mut Graph, parts: &Parts, tree: &Tree, gtop: Vec<Port>, label: &str) -> Vec<Port> {
    let n = parts.n();
    let nv = tree.outer.len();
    let v = nv as u32; // the tree axis's variable
                       // The top level's adjoint: the folded result's, with an axis of one.
    let mut top = tree.outer.clone();
    top.push(1);
    let reads = gtop.iter().map(|&p| read(p, ident(nv))).collect();
    let body = (0..n as u32).map(ScalarExpr::Read).collect();
    let outs = parts.types(&top);
    let mut gcur = map(g, top, reads, body, outs, &format!("{label}.top"));
    for j in (1..tree.levels.len()).rev() {
        let below = &tree.levels[j - 1];
        let len = ty(g, below[0]).shape[nv];
        let mut shape = tree.outer.clone();
        shape.push(len);
        let at = |k: i64| {
            let mut p = ident(nv);
            p.push(Affine::var_plus(v, k));
            p
        };
        let padded = |p: Port, k: i64, f: usize| Read {
            edge: Edge::Pad(parts.zero[f]),
            ..read(p, at(k))
        };
        // Reads: the element itself, its neighbours either side, the parents' adjoints.
        let mut reads: Vec<Read> = below.iter().map(|&p| read(p, at(0))).collect();
        reads.extend(below.iter().enumerate().map(|(f, &p)| padded(p, -1, f)));
        reads.extend(below.iter().enumerate().map(|(f, &p)| padded(p, 1, f)));
        let idx = ScalarExpr::Index(v);
        let int = |k: i64| ScalarExpr::Const(flow_runtime::Scalar::I64(k));
        let parent = ScalarExpr::binary(BinOp::Div, idx.clone(), int(2));
        let mut coords: Vec<ScalarExpr> = (0..v).map(ScalarExpr::Index).collect();
        coords.push(parent);
        let mut gp = Vec::new();
        for &p in &gcur {
            let rank = ty(g, p).shape.len();
            reads.push(read(p, vec![Affine::konst(0); rank]));
            gp.push(ScalarExpr::Gather(reads.len() as u32 - 1, coords.clone()));
        }
        let even = ScalarExpr::binary(
            BinOp::Eq,
            ScalarExpr::binary(BinOp::Rem, idx, int(2)),
            int(0),
        );
        let field = |base: usize, f: usize| ScalarExpr::Read((base * n + f) as u32);
        let pick = |x: ScalarExpr, y: ScalarExpr| ScalarExpr::select(even.clone(), x, y);
        let left = parts.value((0..n).map(|f| pick(field(0, f), field(1, f))).collect());
        let right = parts.value((0..n).map(|f| pick(field(2, f), field(0, f))).collect());
        let (da, db) = parts.d_combine_at(&left, &right, &parts.value(gp.clone()));
        let body = (0..n)
            .map(|f| {
                if parts.state[f].is_float() {
                    pick(da[f].clone(), db[f].clone())
                } else {
                    ScalarExpr::Const(zero_of(parts.state[f]))
                }
            })
            .collect();
        gcur = map(
            g,
            shape.clone(),
            reads,
            body,
            parts.types(&shape),
            &format!("{label}.down"),
        );
    }
    gcur
}

/// The adjoint of the final state `s` (over `space`) from the adjoints `dys` of the
/// reduction's output ports: through `unwrap` by the chain rule, or the ports' own where
/// there is none. `None` when no output port has an adjoint.
pub(super) fn unwrap_adjoint(
    g: &mut Graph,
    m: &crate::mir::ir::Monoid,
    parts: &Parts,
    space: &[usize],
    s: &[Port],
    dys: &[Option<Port>],
    label: &str,
) -> Result<Option<Vec<Port>>, AdError> {
    if dys.iter().all(Option::is_none) {
        return Ok(None);
    }
    let n = parts.n();
    let mut reads: Vec<Read> = s.iter().map(|&p| read(p, ident(space.len()))).collect();
    let mut out: Vec<Option<ScalarExpr>> = vec![None; n];
    match &m.unwrap {
        None => {
            for (k, dy) in dys.iter().enumerate() {
                if let Some(dy) = dy {
                    reads.push(read(*dy, ident(space.len())));
                    out[k] = Some(ScalarExpr::Read(reads.len() as u32 - 1));
                }
            }
        }
        Some(u) => {
            let sv = parts.value((0..n as u32).map(ScalarExpr::Read).collect());
            let body = project(&apply2(&u.body, &sv, &sv));
            let outs: Vec<ScalarExpr> = if u.ports.len() == 1 {
                vec![body]
            } else {
                (0..u.ports.len() as u32)
                    .map(|k| field_in(&body, k))
                    .collect()
            };
            let mut seeds = Vec::new();
            for (k, dy) in dys.iter().enumerate() {
                if let Some(dy) = dy {
                    reads.push(read(*dy, ident(space.len())));
                    seeds.push((outs[k].clone(), ScalarExpr::Read(reads.len() as u32 - 1)));
                }
            }
            let dtypes: Vec<DType> = reads.iter().map(|r| ty(g, r.src()).dtype).collect();
            let is_active: Vec<bool> = (0..reads.len())
                .map(|k| k < n && dtypes[k].is_float())
                .collect();
            let cx = scalar::Cx {
                types: ExprCx {
                    n_index: space.len(),
                    reads: &dtypes,
                    params: &[],
                },
                active: &is_active,
            };
            let mut all_out = scalar::Adjoints::new(reads.len());
            for (e, seed) in seeds {
                cx.back(&e, seed, &mut Vec::new(), &mut all_out)?;
            }
            // `unwrap` reads only the state: it gathers nothing.
            out = all_out.reads.into_iter().take(n).collect();
        }
    }
    let body = (0..n)
        .map(|f| match &out[f] {
            Some(e) if parts.state[f].is_float() => e.clone(),
            _ => ScalarExpr::Const(zero_of(parts.state[f])),
        })
        .collect();
    Ok(Some(map(
        g,
        space.to_vec(),
        reads,
        body,
        parts.types(space),
        &format!("{label}.unwrap"),
    )))
}
