//! The adjoint of a scan with a user monoid that declares its derivative (`d_combine(a, b, g)
//! = (Jₐᵀ g, J_bᵀ g)`, the vector-Jacobian product of `combine`), along the last axis of its
//! space, each row on its own.
//!
//! Write `w_j` for the wrapped state of element `j` of a row and `P_j = P_{j-1} ⊕ w_j` for
//! the inclusive prefix (`P_{-1}` the identity): an inclusive scan outputs `P_j` at `j`, an
//! exclusive one `P_{j-1}`. The adjoint `G_j` of `P_j` (the float fields of the state, a
//! vector) is the adjoint `dP_j` the output gives it directly plus what flows back from the
//! next prefix: `G_j = dP_j + Mⱼ₊₁ G_{j+1}` with `Mⱼ₊₁ = ∂(P_j ⊕ w_{j+1}) / ∂P_j` transposed,
//! whose column `c` is `d_combine(P_j, w_{j+1}, e_c).0` (`e_c` the unit adjoint of field
//! `c`; `d_combine` is linear in `g`). That recurrence, run from the end of the row, is a scan
//! of the affine maps `t ↦ M t + dP` under composition — associative, not commutative, the
//! state the matrix and the vector — inclusive, over the row read backwards: the same
//! blocked scan as any other, so no loop appears in the graph and the result is the same at
//! any thread count. Then `w_j` receives `d_combine(P_{j-1}, w_j, G_j).1`, and the scan's
//! reads receive that through `wrap` by the chain rule.
//!
//! The prefixes are the scan's own output where the monoid has no `unwrap`; otherwise a scan
//! of the same monoid without `unwrap` recomputes them, and the output's adjoints go through
//! `unwrap` first. `d_combine` is evaluated at the prefixes the forward scan computed (its
//! blocked grouping included), so the derivative is the exact one of the computed values.
//! Integer and boolean fields carry no adjoint. The work is O(k²) per element for `k` float
//! fields (1 for a scalar state).

use std::collections::{HashMap, HashSet};

use crate::mir::ir::{Graph, MonoidId, MonoidRef, Port, Read, ScalarExpr, TensorTy};

use super::accumulate::zero_of;
use super::monoid::{map, unwrap_adjoint, Parts};
use super::scalar::fconst;
use super::scan::{affine_monoid, read_along, scan_node, ScanNode};
use super::{ident, push_reads, read, AdError};

/// `id` without its `unwrap`: a scan with it outputs the states. Added to the graph once.
pub(super) fn states_only(g: &mut Graph, id: MonoidId) -> MonoidId {
    let name = format!("{}.states", g.monoids[id].name);
    if let Some((k, _)) = g.monoids.iter_enumerated().find(|(_, m)| m.name == name) {
        return k;
    }
    let mut m = g.monoids[id].clone();
    m.name = name;
    m.unwrap = None;
    g.monoids.push(m)
}

/// Pushes the adjoints `dys` of scan `s`'s output ports (its monoid the user monoid `id`) to
/// the ports it reads.
pub(super) fn back_user_scan(
    g: &mut Graph,
    s: &ScanNode<'_>,
    id: MonoidId,
    dys: &[Option<Port>],
    active: &HashSet<Port>,
    adj: &mut HashMap<Port, Vec<Port>>,
    label: &str,
) -> Result<(), AdError> {
    let m = g.monoids[id].clone();
    let parts = Parts::of(&m, "a scan")?;
    let space = s.space;
    let rank = space.len();
    let Some(&len) = space.last() else {
        return Ok(());
    };
    if space.contains(&0) {
        return Ok(());
    }
    let n = parts.n();
    let float: Vec<usize> = (0..n).filter(|&f| parts.state[f].is_float()).collect();
    let Some(&first) = float.first() else {
        return Ok(());
    };
    let dtype = parts.state[first];
    if float.iter().any(|&f| parts.state[f] != dtype) {
        return Err(AdError(format!(
            "a scan with the monoid `{}`, whose state mixes float types",
            m.name
        )));
    }
    let k = float.len();
    let t = TensorTy::new(dtype, space.to_vec());

    // The states at each output point, and their adjoints.
    let (ys, dps): (Vec<Port>, Vec<Option<Port>>) = if m.unwrap.is_some() {
        let states = MonoidRef::User(states_only(g, id));
        let outs = parts.types(space);
        let ys = scan_node(
            g,
            space,
            states,
            s.exclusive,
            s.reads.to_vec(),
            s.args.to_vec(),
            outs,
            &format!("{label}.states"),
        );
        let Some(d) = unwrap_adjoint(g, &m, &parts, space, &ys, dys, label)? else {
            return Ok(());
        };
        (ys, d.into_iter().map(Some).collect())
    } else {
        let ys = (0..n as u32)
            .map(|port| Port { node: s.node, port })
            .collect();
        (ys, dys.to_vec())
    };
    // P_{j-1} and P_j as reads, from the inclusive or the exclusive states.
    let prefix = |shift: i64, f: usize| -> Read {
        let shift = shift + i64::from(s.exclusive);
        match shift {
            0 => read(ys[f], ident(rank)),
            _ => read_along(ys[f], rank, shift, 1, Some(parts.zero[f])),
        }
    };
    let wrapped = parts.wrapped(&m, s.args);
    let ws = map(
        g,
        space.to_vec(),
        s.reads.to_vec(),
        wrapped.clone(),
        parts.types(space),
        &format!("{label}.wrap"),
    );

    // The coefficients: M_{j+1} (zero at the row's end) and dP_j, k² + k ports.
    let mut reads: Vec<Read> = (0..n).map(|f| prefix(0, f)).collect();
    reads.extend((0..n).map(|f| read_along(ws[f], rank, 1, 1, Some(parts.zero[f]))));
    let a = parts.value((0..n as u32).map(ScalarExpr::Read).collect());
    let b = parts.value((n as u32..2 * n as u32).map(ScalarExpr::Read).collect());
    let before_end = ScalarExpr::binary(
        crate::mir::ir::BinOp::Lt,
        ScalarExpr::Index(rank as u32 - 1),
        ScalarExpr::Const(flow_runtime::Scalar::I64(len as i64 - 1)),
    );
    let columns: Vec<Vec<ScalarExpr>> = float
        .iter()
        .map(|&c| {
            let unit = (0..n)
                .map(|f| match f == c {
                    true => fconst(dtype, 1.0),
                    false => ScalarExpr::Const(zero_of(parts.state[f])),
                })
                .collect();
            parts.d_combine_at(&a, &b, &parts.value(unit)).0
        })
        .collect();
    let mut body = Vec::with_capacity(k * k + k);
    for &r in &float {
        for col in &columns {
            body.push(ScalarExpr::select(
                before_end.clone(),
                col[r].clone(),
                fconst(dtype, 0.0),
            ));
        }
    }
    for &f in &float {
        body.push(match dps[f] {
            Some(p) => {
                reads.push(match s.exclusive {
                    false => read(p, ident(rank)),
                    true => read_along(p, rank, 1, 1, Some(zero_of(dtype))),
                });
                ScalarExpr::Read(reads.len() as u32 - 1)
            }
            None => fconst(dtype, 0.0),
        });
    }
    let coef = map(
        g,
        space.to_vec(),
        reads,
        body,
        vec![t.clone(); k * k + k],
        &format!("{label}.coef"),
    );

    // G_j: the recurrence from the end of the row, a scan of affine maps read backwards.
    let affine = affine_monoid(g, dtype, k);
    let last = len as i64 - 1;
    let gs = scan_node(
        g,
        space,
        MonoidRef::User(affine),
        false,
        coef.iter()
            .map(|&p| read_along(p, rank, last, -1, None))
            .collect(),
        (0..(k * k + k) as u32).map(ScalarExpr::Read).collect(),
        vec![t; k * k + k],
        &format!("{label}.rscan"),
    );

    // w_j receives d_combine(P_{j-1}, w_j, G_j).1, then the reads through `wrap`.
    let mut reads = s.reads.to_vec();
    let base = reads.len() as u32;
    reads.extend((0..n).map(|f| prefix(-1, f)));
    let prev = parts.value((base..base + n as u32).map(ScalarExpr::Read).collect());
    let mut gj = Vec::with_capacity(n);
    let mut c = 0;
    for f in 0..n {
        gj.push(if parts.state[f].is_float() {
            reads.push(read_along(gs[k * k + c], rank, last, -1, None));
            c += 1;
            ScalarExpr::Read(reads.len() as u32 - 1)
        } else {
            ScalarExpr::Const(zero_of(parts.state[f]))
        });
    }
    let (_, db) = parts.d_combine_at(&prev, &parts.value(wrapped.clone()), &parts.value(gj));
    let exprs: Vec<(ScalarExpr, ScalarExpr)> = float
        .iter()
        .map(|&f| (wrapped[f].clone(), db[f].clone()))
        .collect();
    push_reads(g, space, &reads, &exprs, active, adj, label)
}
