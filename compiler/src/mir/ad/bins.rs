//! The adjoints of a histogram (`ReduceByIndex`) with a built-in monoid and of a `Scatter`.
//! Write `k(p)` for the bin (or destination row) of point `p` of the node's space and
//! `at(p) = [k(p), p[1..]]` for the element of the result it goes to; `Y` is the result and
//! `dY` its adjoint. Each value's adjoint is a gather of `dY` at `at(p)`, as the bins' own
//! reduction was a gather-free histogram:
//!
//! - **`sum`** (the scatter-add): `dY[at(p)]`.
//! - **`max`, `min`**: like a `max`/`min` reduction, the bin's adjoint split equally among
//!   the values equal to the bin's result: `dY[at(p)] / count[at(p)]` where
//!   `x(p) == Y[at(p)]`, else 0; `count` is a `sum` histogram of those hits.
//! - **`prod`**: like a `prod` reduction, each value receives the product of the others in
//!   its bin: `dY · Y / x` where the bin holds no zero; where it holds exactly one, only the
//!   zero receives `dY ·` (the product of the rest, a `prod` histogram with the zeros
//!   replaced by 1); with two or more zeros, nothing.
//! - **`Scatter`**: the last value in index order written to an element wins it, and only
//!   the winner receives that element's adjoint; the others, overwritten, receive none. The
//!   winner of each element is itself a scatter, of the points' positions into `-1`s:
//!   `vals` receives `dY[at(p)]` where `win[at(p)] == p[0]`, and `dest` receives `dY` where
//!   `win` is `-1` (no index wrote there).
//!
//! Every gather of the adjoint reads bins that the forward histogram or scatter computed
//! (its result, or a histogram or scatter with the same index), so a bin index outside the
//! result fails there first, with the forward pass's message (`index [5] (element 1 of the
//! indices) is out of range for the bins of shape [3]`), never naming a derived node. A
//! histogram with a user monoid is [`super::bins_user`]'s.

use std::collections::{HashMap, HashSet};

use flow_runtime::{DType, Scalar};

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Graph, MonoidRef, NodeKind, Port, Read, ScalarExpr, TensorTy,
};

use super::accumulate::zero_of;
use super::scalar::fconst;
use super::{add_node, add_pruned, ident, prod_seed, push_reads, read, ty, AdError};

/// A histogram or scatter node, as `back_node` found it.
pub(super) struct Binned<'a> {
    pub node: crate::mir::NodeId,
    pub space: &'a [usize],
    pub reads: &'a [Read],
    pub index: &'a ScalarExpr,
}

impl Binned<'_> {
    /// The element of the result point `p` goes to: `[k(p), p[1..]]`, as `i64`s.
    fn at(&self) -> Vec<ScalarExpr> {
        std::iter::once(ScalarExpr::cast(self.index.clone(), DType::I64))
            .chain((1..self.space.len() as u32).map(ScalarExpr::Index))
            .collect()
    }

    /// A gather of `p` (the result's shape) at `at(p)`, its read appended to `reads`.
    fn gather(&self, g: &Graph, reads: &mut Vec<Read>, p: Port) -> ScalarExpr {
        let rank = ty(g, p).shape.len();
        reads.push(read(p, vec![Affine::konst(0); rank]));
        ScalarExpr::Gather(reads.len() as u32 - 1, self.at())
    }

    /// A histogram over the node's space and index of `arg` with the built-in monoid `m`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn histogram(
        &self,
        g: &mut Graph,
        bins: usize,
        reads: &[Read],
        arg: ScalarExpr,
        m: BuiltinMonoid,
        out: &TensorTy,
        label: &str,
    ) -> Port {
        let kind = NodeKind::ReduceByIndex {
            space: self.space.to_vec(),
            bins,
            monoid: MonoidRef::Builtin(m),
            reads: reads.to_vec(),
            index: self.index.clone(),
            args: vec![arg],
        };
        add_pruned(g, kind, out.clone(), label)
    }
}

/// Pushes the adjoint `dy` of histogram `h` (`bins` bins, monoid `monoid`, argument `arg`)
/// to the ports it reads.
#[allow(clippy::too_many_arguments)]
pub(super) fn back_histogram(
    g: &mut Graph,
    h: &Binned<'_>,
    bins: usize,
    monoid: &MonoidRef,
    arg: &ScalarExpr,
    dy: Port,
    active: &HashSet<Port>,
    adj: &mut HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let m = match monoid {
        MonoidRef::Builtin(m) => *m,
        MonoidRef::User(id) => {
            return Err(AdError(format!(
                "a histogram with the user monoid `{}` reached the built-in adjoint",
                g.monoids[*id].name
            )))
        }
    };
    let out = ty(g, dy).clone();
    let dtype = out.dtype;
    let y = Port {
        node: h.node,
        port: 0,
    };
    let mut reads = h.reads.to_vec();
    let x = arg.clone();
    let one_if = |c| ScalarExpr::select(c, fconst(dtype, 1.0), fconst(dtype, 0.0));
    let seed = match m {
        BuiltinMonoid::Any | BuiltinMonoid::All => return Ok(()),
        BuiltinMonoid::Sum => h.gather(g, &mut reads, dy),
        BuiltinMonoid::Max | BuiltinMonoid::Min => {
            let yk = h.gather(g, &mut reads, y);
            let hit = ScalarExpr::binary(BinOp::Eq, x.clone(), yk);
            let label = format!("{label}.count");
            let count = h.histogram(
                g,
                bins,
                &reads,
                one_if(hit.clone()),
                BuiltinMonoid::Sum,
                &out,
                &label,
            );
            let dyk = h.gather(g, &mut reads, dy);
            let ck = h.gather(g, &mut reads, count);
            let share = ScalarExpr::binary(BinOp::Div, dyk, ck);
            ScalarExpr::select(hit, share, fconst(dtype, 0.0))
        }
        BuiltinMonoid::Prod => {
            let is0 = ScalarExpr::binary(BinOp::Eq, x.clone(), fconst(dtype, 0.0));
            let zeros = one_if(is0.clone());
            let nz = h.histogram(
                g,
                bins,
                &reads,
                zeros,
                BuiltinMonoid::Sum,
                &out,
                &format!("{label}.zeros"),
            );
            let others = ScalarExpr::select(is0.clone(), fconst(dtype, 1.0), x.clone());
            let rest_label = format!("{label}.rest");
            let rest = h.histogram(g, bins, &reads, others, m, &out, &rest_label);
            let at = [y, dy, nz, rest].map(|p| h.gather(g, &mut reads, p));
            prod_seed(dtype, &x, at)
        }
    };
    push_reads(g, h.space, &reads, &[(x, seed)], active, adj, label)
}

/// Pushes the adjoint `dy` of scatter `s` (into `dest`, writing `value`) to the ports it
/// reads.
#[allow(clippy::too_many_arguments)]
pub(super) fn back_scatter(
    g: &mut Graph,
    s: &Binned<'_>,
    dest: Port,
    value: &ScalarExpr,
    dy: Port,
    active: &HashSet<Port>,
    adj: &mut HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let t = ty(g, dy).clone();
    let dtype = t.dtype;
    // The winner of each element: the last position written there, or -1.
    let wt = TensorTy::new(DType::I64, t.shape.clone());
    let none = ScalarExpr::Const(Scalar::I64(-1));
    let kind = NodeKind::Map {
        space: t.shape.clone(),
        reads: Vec::new(),
        body: vec![none.clone()],
    };
    let unwritten = add_node(g, kind, wt.clone(), &format!("{label}.unwritten"));
    let kind = NodeKind::Scatter {
        dest: unwritten,
        space: s.space.to_vec(),
        reads: s.reads.to_vec(),
        index: s.index.clone(),
        value: ScalarExpr::cast(ScalarExpr::Index(0), DType::I64),
    };
    let win = add_pruned(g, kind, wt, &format!("{label}.winner"));
    if active.contains(&dest) {
        let unwritten = ScalarExpr::binary(BinOp::Eq, ScalarExpr::Read(0), none);
        let kind = NodeKind::Map {
            space: t.shape.clone(),
            reads: vec![
                read(win, ident(t.shape.len())),
                read(dy, ident(t.shape.len())),
            ],
            body: vec![ScalarExpr::select(
                unwritten,
                ScalarExpr::Read(1),
                ScalarExpr::Const(zero_of(dtype)),
            )],
        };
        let p = add_node(g, kind, t.clone(), &format!("{label}.dest"));
        adj.entry(dest).or_default().push(p);
    }
    let mut reads = s.reads.to_vec();
    let wk = s.gather(g, &mut reads, win);
    let dyk = s.gather(g, &mut reads, dy);
    let mine = ScalarExpr::binary(
        BinOp::Eq,
        wk,
        ScalarExpr::cast(ScalarExpr::Index(0), DType::I64),
    );
    let seed = ScalarExpr::select(mine, dyk, ScalarExpr::Const(zero_of(dtype)));
    push_reads(
        g,
        s.space,
        &reads,
        &[(value.clone(), seed)],
        active,
        adj,
        label,
    )
}
