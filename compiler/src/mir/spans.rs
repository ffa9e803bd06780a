//! The shapes of nodes that the runtime's span routines compute (`flow_runtime::spanrows`),
//! recognized on the MIR alone: the native backend's kernels call a routine for such a node
//! (`codegen/kernel/span.rs`), and the native executor runs a row operation and the lane fold
//! of its output that follows it in a row group as one pass over the row ([`row_fold`],
//! `native/group.rs`). Each routine performs the interpreter's operations in its order, so
//! which of them runs changes no bit.
//!
//! **Invariant:** pure functions of a graph's structure; nothing here runs code.

use flow_runtime::DType;

use super::ir::{
    Affine, BinOp, BuiltinMonoid, Edge, Graph, MathFn, MonoidRef, Node, NodeId, NodeKind, Read,
    ScalarExpr,
};

/// The argument of `exp` when `node` is a map of rank at least 1 with one `f32` output
/// whose value is `exp(argument)`: the map then runs as the argument, and
/// [`exp_over_rows`] finishes it.
pub fn exp_argument(node: &Node) -> Option<&ScalarExpr> {
    let NodeKind::Map { space, body, .. } = &node.kind else {
        return None;
    };
    match (&body[..], &node.outputs[..]) {
        ([ScalarExpr::Call(MathFn::Exp, arg)], [out]) if out.dtype == DType::F32 => {
            (!space.is_empty()).then_some(&**arg)
        }
        _ => None,
    }
}

/// A map that is a binary operator between each element of a row and the row's scalar:
/// `y[i, j] = x[i, j] op d[i]` (or `d[i] op x[i, j]`) on `f32`, `op` one of `+ - * /`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowBinary {
    /// The read of the rows, `x[i + c, j + c']`.
    pub x: usize,
    /// The read of the row scalars, `d[i + c]`.
    pub d: usize,
    /// The runtime's operator code: 0 to 3 for `+ - * /`, plus 4 when `d` is the left operand.
    pub code: i64,
}

/// Added to [`RowBinary::code`]: apply `exp` to each result too (`exp(x[i, j] - m[i])` in
/// one pass over the row; `flow_runtime::fastmath::exp_f32`, the interpreter's `exp`).
pub const ROW_THEN_EXP: i64 = 8;

/// The row operation `node` computes, if it is one: a map over two dimensions with one `f32`
/// output whose value is `op(a, b)` for `op` in `+ - * /`, one operand a strict read of a
/// rank-2 `f32` tensor at `[i0 + c, i1 + c']` and the other one of a rank-1 `f32` tensor at
/// `[i0 + c]`. The interpreter computes the same one operation per element.
pub fn row_binary(g: &Graph, node: &Node) -> Option<RowBinary> {
    let NodeKind::Map { body, .. } = &node.kind else {
        return None;
    };
    match &body[..] {
        [e] => row_binary_expr(g, node, e),
        _ => None,
    }
}

/// [`row_binary`] of one expression `e` computed at every point of map `node` (its body, or
/// the argument of its `exp`).
pub fn row_binary_expr(g: &Graph, node: &Node, e: &ScalarExpr) -> Option<RowBinary> {
    let NodeKind::Map { space, reads, .. } = &node.kind else {
        return None;
    };
    if space.len() != 2 || node.outputs.len() != 1 || node.outputs[0].dtype != DType::F32 {
        return None;
    }
    let ScalarExpr::Binary(op, a, b) = e else {
        return None;
    };
    let op = match op {
        BinOp::Add => 0,
        BinOp::Sub => 1,
        BinOp::Mul => 2,
        BinOp::Div => 3,
        _ => return None,
    };
    let (ScalarExpr::Read(a), ScalarExpr::Read(b)) = (&**a, &**b) else {
        return None;
    };
    let (a, b) = (*a as usize, *b as usize);
    // Whether read `k` is at `[i0 + c, i1 + c']` (`rows`) or at `[i0 + c]`.
    let at =
        |k: usize, want: &[&[(u32, i64)]]| reads.get(k).is_some_and(|r| coordinates(g, r, want));
    let rows: &[&[(u32, i64)]] = &[&[(0, 1)], &[(1, 1)]];
    let scalars: &[&[(u32, i64)]] = &[&[(0, 1)]];
    if at(a, rows) && at(b, scalars) {
        Some(RowBinary {
            x: a,
            d: b,
            code: op,
        })
    } else if at(a, scalars) && at(b, rows) {
        Some(RowBinary {
            x: b,
            d: a,
            code: op + 4,
        })
    } else {
        None
    }
}

/// A reduction that folds rows into interleaved lanes (what the `lanes` pass makes of a row
/// `sum` or `max`): `reduce [B, L] over [M] op reads(x[i0 + c, 16*i2 + i1 + c'])` on `f32`,
/// `op` the built-in `sum` or `max`, the argument the read itself. Its value is the fold
/// code for the runtime (0 `sum`, 1 `max`).
pub fn lane_fold(g: &Graph, node: &Node) -> Option<i64> {
    let NodeKind::Reduce {
        space,
        red,
        monoid: MonoidRef::Builtin(m),
        reads,
        args,
    } = &node.kind
    else {
        return None;
    };
    let fold = match m {
        BuiltinMonoid::Sum => 0,
        BuiltinMonoid::Max => 1,
        _ => return None,
    };
    let ok = space.len() == 2
        && red.len() == 1
        && node.outputs.len() == 1
        && node.outputs[0].dtype == DType::F32
        && matches!(&args[..], [ScalarExpr::Read(0)])
        && reads.len() == 1;
    if !ok {
        return None;
    }
    let lanes = flow_runtime::spanrows::LANES as i64;
    let fits = coordinates(g, &reads[0], &[&[(0, 1)], &[(1, 1), (2, lanes)]]);
    fits.then_some(fold)
}

/// A row operation whose output the next node folds into lanes as it is written: map `map`
/// is `x[i, j] op d[i]` (perhaps under `exp`), and reduction `fold` is a lane fold
/// ([`lane_fold`]) reading exactly that output, `e[i0, 16·i2 + i1]` with no offset, over
/// the same rows. The native executor runs both in one pass over each row
/// (`flow_runtime::spanrows::row_binary_fold_f32`): it writes `e` and folds the first
/// `16·m` elements of the row into the lanes, each lane in ascending order from the
/// identity — the lane fold's own operations in its order, so the bits are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowFold {
    /// The map's row operation (its code has [`ROW_THEN_EXP`] when it is under `exp`).
    pub rows: RowBinary,
    /// The fold code: 0 `sum`, 1 `max`.
    pub fold: i64,
}

/// The [`RowFold`] of map `map_id` and reduction `fold_id`, if they are one: see there. The row
/// extents are the same (a row group's members share them), and the fold covers no more
/// than a row (`16·m <= n`: the rest of the row is the `lanes` pass's ragged rest, which
/// reads it afterwards).
pub fn row_fold(g: &Graph, map_id: NodeId, fold_id: NodeId) -> Option<RowFold> {
    let (map, fold) = (&g.nodes[map_id], &g.nodes[fold_id]);
    let rows = row_binary(g, map).or_else(|| {
        exp_argument(map)
            .and_then(|e| row_binary_expr(g, map, e))
            .map(|rb| RowBinary {
                code: rb.code | ROW_THEN_EXP,
                ..rb
            })
    })?;
    let code = lane_fold(g, fold)?;
    let (
        NodeKind::Map { space, .. },
        NodeKind::Reduce {
            space: fs,
            red,
            reads,
            ..
        },
    ) = (&map.kind, &fold.kind)
    else {
        return None;
    };
    let r = &reads[0];
    let reads_map = r.node == map_id && r.port == 0;
    let no_offset = r.proj.iter().all(|a| a.konst == 0);
    let lanes = flow_runtime::spanrows::LANES;
    let fits = space.len() == 2
        && fs.first() == space.first()
        && fs.get(1) == Some(&lanes)
        && red[0] * lanes <= space[1];
    (reads_map && no_offset && fits).then_some(RowFold { rows, fold: code })
}

/// The nonzero `(index variable, coefficient)` terms of `a`, in ascending order.
pub fn nonzero_terms(a: &Affine) -> Vec<(u32, i64)> {
    let mut t: Vec<(u32, i64)> = a.coeffs.iter().copied().filter(|(_, c)| *c != 0).collect();
    t.sort_unstable();
    t
}

/// Whether `r` is a strict read of a rank-`rank` `f32` tensor.
pub fn coordinates_rank(g: &Graph, r: &Read, rank: usize) -> bool {
    let dtype = g.nodes[r.node].outputs[r.port as usize].dtype;
    r.edge == Edge::Strict && dtype == DType::F32 && r.proj.len() == rank
}

/// Whether `r` is a strict read of an `f32` tensor whose coordinates have exactly the terms
/// `want` (per dimension, `(index variable, coefficient)` in ascending order; constants
/// aside: they are in the read's stream base).
pub fn coordinates(g: &Graph, r: &Read, want: &[&[(u32, i64)]]) -> bool {
    coordinates_rank(g, r, want.len())
        && r.proj.iter().zip(want).all(|(a, w)| nonzero_terms(a) == *w)
}
