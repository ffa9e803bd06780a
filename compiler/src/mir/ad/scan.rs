//! The adjoint of a scan along the last axis of its space (each row on its own), with a
//! built-in monoid. Write `x_j` for the element at position `j` of a row (the scan's
//! argument there), `y_j = x_0 ⊕ … ⊕ x_j` for the inclusive prefix and `dy` for the
//! adjoint of the scan's output.
//!
//! - **`sum`**: `x_j` receives `Σ_{i ≥ j} dy_i` for an inclusive scan (`Σ_{i > j}` for an
//!   exclusive one): the same scan, inclusive or exclusive, of `dy` read backwards, read
//!   backwards.
//! - **`prod`, `max`, `min`**: the adjoint `g_j` of the prefix `y_j` satisfies
//!   `g_j = dP_j + c_{j+1} g_{j+1}` (`dP_j` the adjoint the output gives `y_j`: `dy_j`, or
//!   `dy_{j+1}` for an exclusive scan, whose output at `j + 1` is `y_j`), where
//!   `c_{j+1} = ∂(y_j ⊕ x_{j+1}) / ∂y_j` (`prod`: `x_{j+1}`; `max`: 1 where
//!   `y_j > x_{j+1}`, else 0; `min`: 1 where `y_j < x_{j+1}`). That linear recurrence, run
//!   from the end of the row, is itself a scan: of the affine maps `t ↦ c t + dP` under
//!   composition (a monoid on `(c, dP)` pairs, not commutative), inclusive, over the row
//!   read backwards. Then `x_j` receives `∂(y_{j-1} ⊕ x_j) / ∂x_j · g_j`: `y_{j-1} g_j` for
//!   `prod` (no division, so zeros are exact), and for `max`/`min` all of `g_j` where `x_j`
//!   is the new prefix, including ties: the latest of equal elements takes the gradient
//!   (like `max(a, b)` of two scalars, which gives ties to `b`).
//! - **`any`, `all`**: booleans carry no adjoint.
//!
//! A scan with a user monoid that declares `d_combine` is [`super::scan_user`]'s: the same
//! recurrence with the Jacobians `d_combine` gives, matrices for a state of several fields.
//!
//! Every node is a `Map`, or a `Scan` run by the runtime's blocked scan like any other, so the
//! derived graph is the same at any thread count and on both backends.

use flow_runtime::{DType, Scalar};

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Edge, Graph, Monoid, MonoidId, MonoidRef, NodeKind, Port, Read,
    ScalarExpr, TensorTy, Wrap,
};

use super::accumulate::zero_of;
use super::scalar::fconst;
use super::{add_node, ident, push_reads, read, ty, AdError};

/// A scan node, as `back_node` found it.
pub(super) struct ScanNode<'a> {
    pub node: crate::mir::NodeId,
    pub space: &'a [usize],
    pub monoid: &'a MonoidRef,
    pub exclusive: bool,
    pub reads: &'a [Read],
    pub args: &'a [ScalarExpr],
}

/// The projection over `space` that reads the last axis at `konst + sign · i_last`.
fn along(rank: usize, konst: i64, sign: i64) -> Vec<Affine> {
    let mut p = ident(rank);
    p[rank - 1] = Affine {
        konst,
        coeffs: vec![((rank - 1) as u32, sign)],
    };
    p
}

/// A read of `p` along the last axis at `konst + sign · i_last`, padded with `pad` where that
/// leaves the row.
pub(super) fn read_along(p: Port, rank: usize, konst: i64, sign: i64, pad: Option<Scalar>) -> Read {
    let mut r = read(p, along(rank, konst, sign));
    if let Some(s) = pad {
        r.edge = Edge::Pad(s);
    }
    r
}

/// A scan node over `space` with one output port per element of `outs`.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_node(
    g: &mut Graph,
    space: &[usize],
    monoid: MonoidRef,
    exclusive: bool,
    reads: Vec<Read>,
    args: Vec<ScalarExpr>,
    outs: Vec<TensorTy>,
    label: &str,
) -> Vec<Port> {
    let n = outs.len();
    let kind = NodeKind::Scan {
        space: space.to_vec(),
        monoid,
        exclusive,
        reads,
        args,
    };
    let first = add_node(g, kind, outs[0].clone(), label);
    g.nodes[first.node].outputs = outs;
    super::ports_of(first.node, n)
}

/// The monoid of affine maps `t ↦ A t + b` on vectors of `k` elements of `dtype` under
/// composition, the later map applied after the earlier: `(A₁, b₁) ⊕ (A₂, b₂) = (A₂ A₁,
/// A₂ b₁ + b₂)`, its state `A` row-major then `b`; applied to 0, the scan's `b` is the
/// linear recurrence's value. For `k = 1`, `(a₁, b₁) ⊕ (a₂, b₂) = (a₂ a₁, a₂ b₁ + b₂)`.
/// Added to the graph once per `dtype` and `k`.
pub(super) fn affine_monoid(g: &mut Graph, dtype: DType, k: usize) -> MonoidId {
    let name = match k {
        1 => format!("ad.affine.{}", dtype.name()),
        _ => format!("ad.affine{k}.{}", dtype.name()),
    };
    if let Some((id, _)) = g.monoids.iter_enumerated().find(|(_, m)| m.name == name) {
        return id;
    }
    let p = |side: u32, f: usize| ScalarExpr::field(ScalarExpr::Param(side), f as u32);
    let mul = |a, b| ScalarExpr::binary(BinOp::Mul, a, b);
    // Σ_l A₂[r][l] · x(l), in the order of l.
    let row = |r: usize, x: &dyn Fn(usize) -> ScalarExpr| {
        (0..k)
            .map(|l| mul(p(1, r * k + l), x(l)))
            .reduce(|a, b| ScalarExpr::binary(BinOp::Add, a, b))
            .expect("k > 0")
    };
    let mut fields = Vec::with_capacity(k * k + k);
    for r in 0..k {
        for c in 0..k {
            fields.push(row(r, &|l| p(0, l * k + c)));
        }
    }
    for r in 0..k {
        let ab = row(r, &|l| p(0, k * k + l));
        fields.push(ScalarExpr::binary(BinOp::Add, ab, p(1, k * k + r)));
    }
    let size = k * k + k;
    let zero = (0..size)
        .map(|f| match f < k * k && f / k == f % k {
            true => fconst_scalar(dtype, 1.0),
            false => zero_of(dtype),
        })
        .collect();
    g.monoids.push(Monoid {
        name,
        state: vec![dtype; size],
        field_names: vec![None; size],
        zero,
        wrap: Some(Wrap {
            params: vec![dtype; size],
            body: ScalarExpr::Tuple((0..size as u32).map(ScalarExpr::Param).collect()),
        }),
        combine: ScalarExpr::Tuple(fields),
        unwrap: None,
        commutative: false,
        d_combine: None,
    })
}

fn fconst_scalar(d: DType, v: f64) -> Scalar {
    match fconst(d, v) {
        ScalarExpr::Const(s) => s,
        _ => unreachable!("fconst is a constant"),
    }
}

/// Pushes the adjoint `dy` of scan `s`'s output to the ports it reads.
pub(super) fn back_scan(
    g: &mut Graph,
    s: &ScanNode<'_>,
    dy: Port,
    active: &std::collections::HashSet<Port>,
    adj: &mut std::collections::HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let MonoidRef::Builtin(m) = *s.monoid else {
        return Err(AdError(
            "a scan with a user monoid reached the built-in adjoint".into(),
        ));
    };
    let rank = s.space.len();
    let Some(&n) = s.space.last() else {
        return Ok(());
    };
    if n == 0 || matches!(m, BuiltinMonoid::Any | BuiltinMonoid::All) {
        return Ok(());
    }
    let n = n as i64;
    let dtype = ty(g, dy).dtype;
    let t = TensorTy::new(dtype, s.space.to_vec());
    let x = s.args[0].clone();
    let mut reads = s.reads.to_vec();
    let seed = if m == BuiltinMonoid::Sum {
        // The same scan of dy read backwards, read backwards.
        let r = scan_node(
            g,
            s.space,
            MonoidRef::Builtin(BuiltinMonoid::Sum),
            s.exclusive,
            vec![read_along(dy, rank, n - 1, -1, None)],
            vec![ScalarExpr::Read(0)],
            vec![t],
            &format!("{label}.rscan"),
        )[0];
        reads.push(read_along(r, rank, n - 1, -1, None));
        ScalarExpr::Read(reads.len() as u32 - 1)
    } else {
        let y = Port {
            node: s.node,
            port: 0,
        };
        let identity = match m {
            BuiltinMonoid::Prod => fconst_scalar(dtype, 1.0),
            BuiltinMonoid::Max => fconst_scalar(dtype, f64::NEG_INFINITY),
            _ => fconst_scalar(dtype, f64::INFINITY),
        };
        let pad0 = Some(zero_of(dtype));
        // y_{j-1} and y_j, from the inclusive or the exclusive output.
        let (prev, cur, dp) = if s.exclusive {
            (
                read(y, ident(rank)),
                read_along(y, rank, 1, 1, Some(identity)),
                read_along(dy, rank, 1, 1, pad0),
            )
        } else {
            (
                read_along(y, rank, -1, 1, Some(identity)),
                read(y, ident(rank)),
                read(dy, ident(rank)),
            )
        };
        // The elements, materialized so that x_{j+1} is a read.
        let xs = map1(g, s.space, s.reads.to_vec(), x.clone(), dtype, label);
        let next = read_along(xs, rank, 1, 1, pad0);
        // c_{j+1} and dP_j, a map of two outputs.
        let (r_cur, r_next, r_dp) = (
            ScalarExpr::Read(0),
            ScalarExpr::Read(1),
            ScalarExpr::Read(2),
        );
        let one_if = |c| ScalarExpr::select(c, fconst(dtype, 1.0), fconst(dtype, 0.0));
        let c = match m {
            BuiltinMonoid::Prod => r_next,
            BuiltinMonoid::Max => one_if(ScalarExpr::binary(BinOp::Gt, r_cur, r_next)),
            _ => one_if(ScalarExpr::binary(BinOp::Lt, r_cur, r_next)),
        };
        let last = ScalarExpr::binary(
            BinOp::Lt,
            ScalarExpr::Index(rank as u32 - 1),
            ScalarExpr::Const(Scalar::I64(n - 1)),
        );
        let c = ScalarExpr::select(last, c, fconst(dtype, 0.0));
        let kind = NodeKind::Map {
            space: s.space.to_vec(),
            reads: vec![cur, next, dp],
            body: vec![c, r_dp],
        };
        let cd = add_node(g, kind, t.clone(), &format!("{label}.coef"));
        g.nodes[cd.node].outputs = vec![t.clone(), t.clone()];
        g.nodes[cd.node].prune_reads();
        let cd1 = Port {
            node: cd.node,
            port: 1,
        };
        // g_j: the recurrence from the end of the row, a scan of affine maps.
        let affine = affine_monoid(g, dtype, 1);
        let gs = scan_node(
            g,
            s.space,
            MonoidRef::User(affine),
            false,
            vec![
                read_along(cd, rank, n - 1, -1, None),
                read_along(cd1, rank, n - 1, -1, None),
            ],
            vec![ScalarExpr::Read(0), ScalarExpr::Read(1)],
            vec![t.clone(), t],
            &format!("{label}.rscan"),
        );
        reads.push(read_along(gs[1], rank, n - 1, -1, None));
        let gj = ScalarExpr::Read(reads.len() as u32 - 1);
        reads.push(prev);
        let yp = ScalarExpr::Read(reads.len() as u32 - 1);
        match m {
            BuiltinMonoid::Prod => ScalarExpr::binary(BinOp::Mul, yp, gj),
            BuiltinMonoid::Max => ScalarExpr::select(
                ScalarExpr::binary(BinOp::Gt, yp, x.clone()),
                fconst(dtype, 0.0),
                gj,
            ),
            _ => ScalarExpr::select(
                ScalarExpr::binary(BinOp::Lt, yp, x.clone()),
                fconst(dtype, 0.0),
                gj,
            ),
        }
    };
    push_reads(g, s.space, &reads, &[(x, seed)], active, adj, label)
}

/// A map over `space` of one expression.
fn map1(
    g: &mut Graph,
    space: &[usize],
    reads: Vec<Read>,
    body: ScalarExpr,
    dtype: DType,
    label: &str,
) -> Port {
    let kind = NodeKind::Map {
        space: space.to_vec(),
        reads,
        body: vec![body],
    };
    let p = add_node(
        g,
        kind,
        TensorTy::new(dtype, space.to_vec()),
        &format!("{label}.elem"),
    );
    g.nodes[p.node].prune_reads();
    p
}
