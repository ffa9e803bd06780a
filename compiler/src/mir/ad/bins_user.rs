//! The adjoint of a histogram (`ReduceByIndex`) with a user monoid that declares its
//! derivative (`d_combine(a, b, g) = (Jₐᵀ g, J_bᵀ g)`).
//!
//! Write `p = [j, c]` for a point of the histogram's space (`j` along the values' axis, `c`
//! the other axes), `w(p)` for its wrapped state and `k(p)` for its bin. Each result element
//! `Y[b, c]` is the fold, in the order of `j`, of the `w` with `k = b` in column `c` (the
//! function the forward computes: the runtime groups the fold differently, per shard and
//! then in a fixed tree, but the monoid is associative, so it is the same function and has
//! the same derivative). For a value `w` of the bin, with `P` the fold of the bin's values
//! before it and `S` of those after it, `Y = (P ⊕ w) ⊕ S`, so by the chain rule
//!
//! ```text
//! dw = d_combine(P, w, d_combine(P ⊕ w, S, dY).0).1
//! ```
//!
//! (two vector-Jacobian products per value, no Jacobian matrices). `P` and `S` are segmented
//! scans over the values sorted by bin:
//!
//! 1. **sort**: a stable least-significant-digit radix sort of each column by `k`, one pass
//!    per bit of `bins - 1`: each pass is an exclusive `sum` scan of the bit (the ones
//!    before each value) and a `Scatter` of the keys and of the original positions to
//!    `bit ? zeros + ones_before : j - ones_before` — a permutation, so no write collides
//!    and nothing depends on the thread count;
//! 2. **prefixes**: an exclusive scan, over the sorted values, of the monoid `(f, s)` with
//!    `(f₁, s₁) ⊕ (f₂, s₂) = (max(f₁, f₂), f₂ ? s₂ : s₁ ⊕ s₂)` — a segmented scan (`f`: a
//!    bin starts here), associative, not commutative; at a segment's start `P` is `zero`;
//! 3. **suffixes**: the same over the values read backwards, with the operands of `⊕`
//!    swapped (the opposite monoid, so `S = w_{j+1} ⊕ … ⊕ w_end` in index order);
//! 4. **adjoint**: per sorted value, the formula above, with `dY` gathered at its bin (`dY`
//!    through `unwrap` first: with an `unwrap`, the bins' states are recomputed by the same
//!    histogram with the monoid without it); then each original value reads its own at its
//!    sorted position (the inverse permutation, a scatter of positions), and the histogram's
//!    reads receive it through `wrap` by the chain rule.
//!
//! Every node is a `Map`, a `Scan`, a `Scatter` or a `ReduceByIndex`, so the graph has no
//! loop, runs on both backends alike and gives the same bits at any thread count; the work
//! is O(n · log₂ bins) for the sort and O(n) for the rest. A bin index out of range fails
//! in a histogram with the forward node's own label (the count of each bin, which the
//! adjoint reads as a guard: a value's adjoint is taken where its bin is not empty), before
//! any derived node gathers with it. Integer and boolean fields carry no adjoint.

use std::collections::{HashMap, HashSet};

use flow_runtime::{DType, Scalar};

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Edge, Graph, Monoid, MonoidId, MonoidRef, NodeKind, Port, Read,
    ScalarExpr, TensorTy, Wrap,
};
use crate::mir::monoid::apply2;

use super::accumulate::zero_of;
use super::bins::Binned;
use super::monoid::{map, unwrap_adjoint, Parts};
use super::scan::scan_node;
use super::scan_user::states_only;
use super::{add_pruned, ident, ports_of, push_reads, read, AdError};

fn int(k: i64) -> ScalarExpr {
    ScalarExpr::Const(Scalar::I64(k))
}

/// The layouts: `S = [n, c…]` (the histogram's space) and `T = [c…, n]` (the values' axis
/// last, as a scan runs).
struct Layout {
    n: usize,
    /// The other axes, `c`.
    rest: Vec<usize>,
}

impl Layout {
    fn k(&self) -> usize {
        self.rest.len()
    }
    fn s(&self) -> Vec<usize> {
        std::iter::once(self.n)
            .chain(self.rest.iter().copied())
            .collect()
    }
    fn t(&self) -> Vec<usize> {
        self.rest
            .iter()
            .copied()
            .chain(std::iter::once(self.n))
            .collect()
    }
    /// From the `T` space, a read of an `S`-layout port at position `konst + sign · j`.
    fn s_from_t(&self, p: Port, konst: i64, sign: i64, pad: Option<Scalar>) -> Read {
        let k = self.k();
        let mut proj = vec![Affine {
            konst,
            coeffs: vec![(k as u32, sign)],
        }];
        proj.extend((0..k as u32).map(Affine::var));
        let mut r = read(p, proj);
        if let Some(s) = pad {
            r.edge = Edge::Pad(s);
        }
        r
    }
    /// From the `S` space, a read of a `T`-layout port at the same point.
    fn t_from_s(&self, p: Port) -> Read {
        let k = self.k() as u32;
        let mut proj: Vec<Affine> = (1..=k).map(Affine::var).collect();
        proj.push(Affine::var(0));
        read(p, proj)
    }
    /// From the `S` space, a read of `p` (`S` layout) at `[n - 1, c]`.
    fn last_of_column(&self, p: Port) -> Read {
        let mut proj = vec![Affine::konst(self.n as i64 - 1)];
        proj.extend((1..=self.k() as u32).map(Affine::var));
        read(p, proj)
    }
}

/// The segmented version of user monoid `id` (see the module doc): state `(f, s…)`, `f` an
/// `i64` that is 1 where a segment starts. `rev`: the operands of `⊕` swapped. Added to the
/// graph once.
fn segmented(g: &mut Graph, id: MonoidId, parts: &Parts, rev: bool) -> MonoidId {
    let which = if rev { "segrev" } else { "seg" };
    let name = format!("ad.{which}.{}", g.monoids[id].name);
    if let Some((k, _)) = g.monoids.iter_enumerated().find(|(_, m)| m.name == name) {
        return k;
    }
    let n = parts.n();
    let f = |side: u32, k: usize| ScalarExpr::field(ScalarExpr::Param(side), k as u32);
    let a = parts.value((1..=n).map(|k| f(0, k)).collect());
    let b = parts.value((1..=n).map(|k| f(1, k)).collect());
    let c = match rev {
        false => apply2(&parts.combine, &a, &b),
        true => apply2(&parts.combine, &b, &a),
    };
    let cf = parts.fields(&c);
    let restart = ScalarExpr::binary(BinOp::Ne, f(1, 0), int(0));
    let mut fields = vec![ScalarExpr::binary(BinOp::Max, f(0, 0), f(1, 0))];
    fields.extend((0..n).map(|k| ScalarExpr::select(restart.clone(), f(1, k + 1), cf[k].clone())));
    let mut state = vec![DType::I64];
    state.extend(&parts.state);
    let mut zero = vec![Scalar::I64(0)];
    zero.extend(&parts.zero);
    g.monoids.push(Monoid {
        name,
        field_names: vec![None; n + 1],
        zero,
        wrap: Some(Wrap {
            params: state.clone(),
            body: ScalarExpr::Tuple((0..=n as u32).map(ScalarExpr::Param).collect()),
        }),
        state,
        combine: ScalarExpr::Tuple(fields),
        unwrap: None,
        commutative: false,
        d_combine: None,
    })
}

/// The histogram's node, monoid and arguments, as `back_node` found them.
pub(super) struct UserHistogram<'a> {
    pub h: Binned<'a>,
    pub bins: usize,
    pub monoid: MonoidId,
    pub args: &'a [ScalarExpr],
    /// The forward node's label: the derived histograms that check the bin indices carry it.
    pub forward: &'a str,
}

/// Pushes the adjoints `dys` of the histogram's output ports to the ports it reads.
pub(super) fn back_user_histogram(
    g: &mut Graph,
    u: &UserHistogram<'_>,
    dys: &[Option<Port>],
    active: &HashSet<Port>,
    adj: &mut HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let m = g.monoids[u.monoid].clone();
    let parts = Parts::of(&m, "a histogram (`reduce_by_index`)")?;
    let h = &u.h;
    let space = h.space;
    if space.is_empty() || space.contains(&0) {
        return Ok(()); // no value: every bin is `zero`, a constant
    }
    let nf = parts.n();
    let float: Vec<usize> = (0..nf).filter(|&f| parts.state[f].is_float()).collect();
    if float.is_empty() {
        return Ok(());
    }
    let lay = Layout {
        n: space[0],
        rest: space[1..].to_vec(),
    };
    let (k, n) = (lay.k(), lay.n as i64);
    let mut bins_shape = vec![u.bins];
    bins_shape.extend(&lay.rest);

    // The bins' states, and their adjoints through `unwrap`.
    let ys: Vec<Port> = if m.unwrap.is_some() {
        let states = states_only(g, u.monoid);
        let kind = NodeKind::ReduceByIndex {
            space: space.to_vec(),
            bins: u.bins,
            monoid: MonoidRef::User(states),
            reads: h.reads.to_vec(),
            index: h.index.clone(),
            args: u.args.to_vec(),
        };
        let outs = parts.types(&bins_shape);
        let first = add_pruned(g, kind, outs[0].clone(), u.forward);
        g.nodes[first.node].outputs = outs;
        ports_of(first.node, nf)
    } else {
        ports_of(h.node, nf)
    };
    let Some(ds) = unwrap_adjoint(g, &m, &parts, &bins_shape, &ys, dys, label)? else {
        return Ok(());
    };
    // The guard: each bin's count, a histogram with the forward's index and label.
    let count_ty = TensorTy::new(DType::I64, bins_shape.clone());
    let count = h.histogram(
        g,
        u.bins,
        h.reads,
        int(1),
        BuiltinMonoid::Sum,
        &count_ty,
        u.forward,
    );

    // 1. The sort: keys and original positions, permuted bit by bit.
    let s_i64 = || vec![TensorTy::new(DType::I64, lay.s())];
    let key = ScalarExpr::cast(h.index.clone(), DType::I64);
    let mut keys = map(
        g,
        lay.s(),
        h.reads.to_vec(),
        vec![key],
        s_i64(),
        &format!("{label}.key"),
    )[0];
    let mut perm = map(
        g,
        lay.s(),
        Vec::new(),
        vec![ScalarExpr::Index(0)],
        s_i64(),
        &format!("{label}.pos"),
    )[0];
    let nbits = match u.bins {
        0 | 1 => 0,
        b => usize::BITS - (b - 1).leading_zeros(),
    };
    for b in 0..nbits {
        let bit = |r: ScalarExpr| {
            let digit = ScalarExpr::binary(BinOp::Div, r, int(1i64 << b));
            let odd = ScalarExpr::binary(
                BinOp::Ne,
                ScalarExpr::binary(BinOp::Rem, digit, int(2)),
                int(0),
            );
            ScalarExpr::select(odd, int(1), int(0))
        };
        let ones = scan_node(
            g,
            &lay.t(),
            MonoidRef::Builtin(BuiltinMonoid::Sum),
            true,
            vec![lay.s_from_t(keys, 0, 1, None)],
            vec![bit(ScalarExpr::Read(0))],
            vec![TensorTy::new(DType::I64, lay.t())],
            &format!("{label}.ones"),
        )[0];
        let mut last = lay.last_of_column(ones);
        last.proj.rotate_left(1); // `ones` is in the T layout: [c, n - 1]
        let reads = vec![
            read(keys, ident(k + 1)),
            lay.t_from_s(ones),
            last,
            lay.last_of_column(keys),
        ];
        let before = ScalarExpr::Read(1);
        let total = ScalarExpr::binary(BinOp::Add, ScalarExpr::Read(2), bit(ScalarExpr::Read(3)));
        let zeros = ScalarExpr::binary(BinOp::Sub, int(n), total);
        let to = ScalarExpr::select(
            ScalarExpr::binary(BinOp::Ne, bit(ScalarExpr::Read(0)), int(0)),
            ScalarExpr::binary(BinOp::Add, zeros, before.clone()),
            ScalarExpr::binary(BinOp::Sub, ScalarExpr::Index(0), before),
        );
        let moved = |g: &mut Graph, src: Port, what: &str| {
            let mut reads = reads.clone();
            reads.push(read(src, ident(k + 1)));
            let kind = NodeKind::Scatter {
                dest: src,
                space: lay.s(),
                reads,
                index: to.clone(),
                value: ScalarExpr::Read(4),
            };
            add_pruned(g, kind, s_i64().remove(0), &format!("{label}.{what}"))
        };
        let (k2, p2) = (moved(g, keys, "key"), moved(g, perm, "pos"));
        keys = k2;
        perm = p2;
    }
    // Each value's sorted position: the inverse permutation.
    let kind = NodeKind::Scatter {
        dest: perm,
        space: lay.s(),
        reads: vec![read(perm, ident(k + 1))],
        index: ScalarExpr::Read(0),
        value: ScalarExpr::Index(0),
    };
    let rank = add_pruned(g, kind, s_i64().remove(0), &format!("{label}.rank"));

    // The wrapped states in sorted order (S layout).
    let wrapped = parts.wrapped(&m, u.args);
    let ws = map(
        g,
        lay.s(),
        h.reads.to_vec(),
        wrapped.clone(),
        parts.types(&lay.s()),
        &format!("{label}.wrap"),
    );
    let mut reads = vec![read(perm, ident(k + 1))];
    let mut at: Vec<ScalarExpr> = vec![ScalarExpr::Read(0)];
    at.extend((1..=k as u32).map(ScalarExpr::Index));
    let body = ws
        .iter()
        .map(|&p| {
            reads.push(read(p, vec![Affine::konst(0); k + 1]));
            ScalarExpr::Gather(reads.len() as u32 - 1, at.clone())
        })
        .collect();
    let sorted = map(
        g,
        lay.s(),
        reads,
        body,
        parts.types(&lay.s()),
        &format!("{label}.sorted"),
    );

    // 2, 3. The segmented scans, forwards and backwards (T layout).
    let t = lay.t();
    let jt = ScalarExpr::Index(k as u32);
    let mut outs = vec![TensorTy::new(DType::I64, t.clone())];
    outs.extend(parts.types(&t));
    let pad = Some(Scalar::I64(-1));
    let scan = |g: &mut Graph, rev: bool, what: &str| {
        let (konst, sign, step) = if rev { (n - 1, -1, 1) } else { (0, 1, -1) };
        // The neighbour before in the scan's order: the previous sorted value, or the next.
        let mut reads = vec![
            lay.s_from_t(keys, konst, sign, None),
            lay.s_from_t(keys, konst + step, sign, pad),
        ];
        reads.extend(sorted.iter().map(|&p| lay.s_from_t(p, konst, sign, None)));
        let starts = ScalarExpr::binary(
            BinOp::Or,
            ScalarExpr::binary(BinOp::Eq, jt.clone(), int(0)),
            ScalarExpr::binary(BinOp::Ne, ScalarExpr::Read(0), ScalarExpr::Read(1)),
        );
        let mut args = vec![ScalarExpr::select(starts, int(1), int(0))];
        args.extend((2..2 + nf as u32).map(ScalarExpr::Read));
        let id = segmented(g, u.monoid, &parts, rev);
        scan_node(
            g,
            &t,
            MonoidRef::User(id),
            true,
            reads,
            args,
            outs.clone(),
            &format!("{label}.{what}"),
        )
    };
    let pre = scan(g, false, "prefix");
    let suf = scan(g, true, "suffix");

    // 4. The adjoint of each sorted value (T layout), then of each value at its position.
    // Reads: 0, 1 the keys around (P's segment start), 2, 3 (S's segment end), then the
    // prefixes, the suffixes (read backwards), the sorted states, the bins' adjoints and
    // counts (gathered at the value's bin).
    let mut reads = vec![
        lay.s_from_t(keys, 0, 1, None),
        lay.s_from_t(keys, -1, 1, pad),
        lay.s_from_t(keys, 0, 1, None),
        lay.s_from_t(keys, 1, 1, pad),
    ];
    let field = |reads: &mut Vec<Read>, r: Read| {
        reads.push(r);
        ScalarExpr::Read(reads.len() as u32 - 1)
    };
    let zeros_state = |f: usize| ScalarExpr::Const(parts.zero[f]);
    let starts = ScalarExpr::binary(
        BinOp::Or,
        ScalarExpr::binary(BinOp::Eq, jt.clone(), int(0)),
        ScalarExpr::binary(BinOp::Ne, ScalarExpr::Read(0), ScalarExpr::Read(1)),
    );
    let ends = ScalarExpr::binary(
        BinOp::Or,
        ScalarExpr::binary(BinOp::Eq, jt.clone(), int(n - 1)),
        ScalarExpr::binary(BinOp::Ne, ScalarExpr::Read(2), ScalarExpr::Read(3)),
    );
    let p: Vec<ScalarExpr> = (0..nf)
        .map(|f| {
            let x = field(&mut reads, read(pre[f + 1], ident(k + 1)));
            ScalarExpr::select(starts.clone(), zeros_state(f), x)
        })
        .collect();
    let s: Vec<ScalarExpr> = (0..nf)
        .map(|f| {
            let mut r = read(suf[f + 1], ident(k + 1));
            r.proj[k] = Affine {
                konst: n - 1,
                coeffs: vec![(k as u32, -1)],
            };
            let x = field(&mut reads, r);
            ScalarExpr::select(ends.clone(), zeros_state(f), x)
        })
        .collect();
    let w: Vec<ScalarExpr> = sorted
        .iter()
        .map(|&q| field(&mut reads, lay.s_from_t(q, 0, 1, None)))
        .collect();
    let key = field(&mut reads, lay.s_from_t(keys, 0, 1, None));
    let mut bin_at = vec![key];
    bin_at.extend((0..k as u32).map(ScalarExpr::Index));
    let gather = |reads: &mut Vec<Read>, q: Port| {
        reads.push(read(q, vec![Affine::konst(0); k + 1]));
        ScalarExpr::Gather(reads.len() as u32 - 1, bin_at.clone())
    };
    let dy: Vec<ScalarExpr> = ds.iter().map(|&q| gather(&mut reads, q)).collect();
    let cnt = gather(&mut reads, count);
    let (pv, wv, sv) = (parts.value(p), parts.value(w), parts.value(s));
    let pw = parts.value(parts.fields(&apply2(&parts.combine, &pv, &wv)));
    let (dpw, _) = parts.d_combine_at(&pw, &sv, &parts.value(dy));
    let (_, dw) = parts.d_combine_at(&pv, &wv, &parts.value(dpw));
    let nonempty = ScalarExpr::binary(BinOp::Gt, cnt, int(0));
    let body: Vec<ScalarExpr> = float
        .iter()
        .map(|&f| {
            ScalarExpr::select(
                nonempty.clone(),
                dw[f].clone(),
                ScalarExpr::Const(zero_of(parts.state[f])),
            )
        })
        .collect();
    let outs = float
        .iter()
        .map(|&f| TensorTy::new(parts.state[f], t.clone()))
        .collect();
    let dws = map(g, t.clone(), reads, body, outs, &format!("{label}.dw"));

    let mut reads = h.reads.to_vec();
    reads.push(read(rank, ident(k + 1)));
    let r = ScalarExpr::Read(reads.len() as u32 - 1);
    let mut at: Vec<ScalarExpr> = (1..=k as u32).map(ScalarExpr::Index).collect();
    at.push(r);
    let mut exprs = Vec::new();
    for (&f, &q) in float.iter().zip(&dws) {
        reads.push(read(q, vec![Affine::konst(0); k + 1]));
        let seed = ScalarExpr::Gather(reads.len() as u32 - 1, at.clone());
        exprs.push((wrapped[f].clone(), seed));
    }
    push_reads(g, space, &reads, &exprs, active, adj, label)
}
