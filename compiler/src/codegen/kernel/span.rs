//! Math over spans in kernels: a map whose body is `exp(…)` on `f32` stores the argument
//! of `exp`, then calls the runtime's `flow_exp_span_f32` once over the rows the shard wrote
//! (`flow_runtime::spanmath`: AVX-512F, AVX2 or baseline code chosen at run time), instead of
//! evaluating the polynomial inline in Cranelift's 128-bit vectors. A reduction that is a
//! windowed dot product (a stencil, `sum[k](w[k] * x[i + k])` on `f32`) is one call of
//! `flow_window_dot_f32` over the shard's outputs (`flow_runtime::spanwindow`), in place of
//! its loop nest; so is a map between rows and their scalars (`e[i, j] / z[i]`), with
//! `flow_row_binary_f32` (which also applies `exp` when the row operation is the argument
//! of a span `exp`: `exp(x[i, j] - m[i])` in one pass), and, where the CPU has AVX-512F or
//! AVX2, a row `sum`/`max` that the `lanes` pass folded into 16 lanes, with
//! `flow_lane_fold_f32` (`flow_runtime::spanrows`),
//! and a reduction with a sum-of-powers user monoid (W2's `(n, s, ss)` in `f64`) that it
//! folded into eight lanes, with `flow_moments_fold_f32` (`flow_runtime::spanmoments`).
//!
//! The bits are those of the inline code and of the interpreter: the span function computes
//! each element with exactly [`flow_runtime::fastmath::exp_f32`]'s operations. Writing the
//! argument first and `exp` of it in place afterwards is safe even when the map writes over a
//! dead input of its row group (`mir::schedule`'s in-place writes): such a map reads that
//! input only at its own point, before it stores there.

use cranelift_codegen::ir::{types, InstBuilder, Value};
use flow_runtime::spanmoments::{Term, MAX_FIELDS};
use flow_runtime::{DType, Scalar};

use super::Gen;
use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Edge, Graph, MathFn, MonoidRef, Node, NodeKind, Read, ScalarExpr,
};
use crate::mir::monoid::explicit;

/// The symbol of the span function (`flow_runtime::spanmath::flow_exp_span_f32`).
pub const EXP_SPAN_SYMBOL: &str = "flow_exp_span_f32";

/// The argument of `exp` when `node` is a map of rank at least 1 with one `f32` output
/// whose value is `exp(argument)`: the map then runs as the argument, and
/// [`exp_over_rows`] finishes it.
pub(in crate::codegen) fn exp_argument(node: &Node) -> Option<&ScalarExpr> {
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

/// Calls the span function over rows `lo..hi` of the outermost dimension of the map's output
/// (row-major, extents `space_ext`, at `base`): one contiguous span.
pub(super) fn exp_over_rows(g: &mut Gen<'_, '_>, space_ext: &[Value], lo: Value, hi: Value) {
    let base = g.streams[g.reads.len()]
        .as_ref()
        .and_then(|s| s.addr.first().copied())
        .expect("the output is a stream");
    let mut row = g.iconst(1);
    for e in &space_ext[1..] {
        row = g.b.ins().imul(row, *e);
    }
    let first = g.b.ins().imul(lo, row);
    let offset = g.b.ins().imul_imm_s(first, 4);
    let start = g.b.ins().iadd(base, offset);
    let rows = g.b.ins().isub(hi, lo);
    let n = g.b.ins().imul(rows, row);
    let f = g.imports.exp_span();
    g.b.ins().call(f, &[start, n]);
    debug_assert_eq!(g.b.func.dfg.value_type(n), types::I64);
}

/// The symbol of the windowed dot product (`flow_runtime::spanwindow::flow_window_dot_f32`).
pub const WINDOW_DOT_SYMBOL: &str = "flow_window_dot_f32";

/// A reduction that is a windowed dot product (a stencil): `y[i] = sum[k](w[k] * x[i + k])`
/// on `f32`, rank 1 over rank 1, both reads strict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::codegen) struct WindowDot {
    /// The read of the weights, `w[k + c]`.
    pub w: usize,
    /// The read of the signal, `x[i + k + c]`.
    pub x: usize,
    /// Whether the product is written `w * x` (`true`) or `x * w`.
    pub w_first: bool,
}

/// The windowed dot product `node` computes, if it is one: a `sum` over one reduced
/// dimension `k` of `mul(w, x)` (either order) in a space of one dimension `i`, where `w`
/// reads a rank-1 `f32` tensor at `k + c` and `x` one at `i + k + c'`. The interpreter folds
/// it from `+0.0`, adding `w·x` (rounded) in ascending `k`: exactly
/// `flow_runtime::spanwindow`'s operations.
pub(in crate::codegen) fn window_dot(g: &Graph, node: &Node) -> Option<WindowDot> {
    let NodeKind::Reduce {
        space,
        red,
        monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
        reads,
        args,
    } = &node.kind
    else {
        return None;
    };
    if space.len() != 1 || red.len() != 1 || node.outputs.len() != 1 {
        return None;
    }
    if node.outputs[0].dtype != DType::F32 {
        return None;
    }
    let [ScalarExpr::Binary(BinOp::Mul, a, b)] = &args[..] else {
        return None;
    };
    let (ScalarExpr::Read(a), ScalarExpr::Read(b)) = (&**a, &**b) else {
        return None;
    };
    let (a, b) = (*a as usize, *b as usize);
    // The one coordinate of a strict rank-1 `f32` read, as its nonzero terms.
    let at =
        |k: usize, want: &[&[(u32, i64)]]| reads.get(k).is_some_and(|r| coordinates(g, r, want));
    let is_w = |k: usize| at(k, &[&[(1, 1)]]);
    let is_x = |k: usize| at(k, &[&[(0, 1), (1, 1)]]);
    if is_w(a) && is_x(b) {
        Some(WindowDot {
            w: a,
            x: b,
            w_first: true,
        })
    } else if is_x(a) && is_w(b) {
        Some(WindowDot {
            w: b,
            x: a,
            w_first: false,
        })
    } else {
        None
    }
}

/// Calls the windowed dot product for outputs `lo..hi` (the shard's rows) of `node`, whose
/// reduced extent is `taps` and whose output has `total` elements in all (the routine
/// streams the outputs of a tensor larger than the cache): one call, in place of the loop
/// nest.
fn window_over_rows(
    g: &mut Gen<'_, '_>,
    wd: WindowDot,
    taps: Value,
    total: Value,
    lo: Value,
    hi: Value,
) {
    let out = stream_base(g, g.reads.len());
    let x = stream_base(g, wd.x);
    let w = stream_base(g, wd.w);
    let offset = g.b.ins().imul_imm_s(lo, 4);
    let out = g.b.ins().iadd(out, offset);
    let x = g.b.ins().iadd(x, offset);
    let n = g.b.ins().isub(hi, lo);
    let order = g.iconst(i64::from(!wd.w_first));
    let f = g.imports.window_dot();
    g.b.ins().call(f, &[out, x, w, n, taps, order, total]);
}

/// Emits a reduction over rows `lo..hi` (extents `space_ext`, reduced `red_ext`) as one
/// call of a span routine when it has a shape one serves — a lane fold or a moments fold
/// (where the CPU runs them vectorized), a windowed dot product — and says whether it did;
/// otherwise it emits nothing and the kernel keeps its loop nest.
pub(super) fn reduce_over_rows(
    g: &mut Gen<'_, '_>,
    graph: &Graph,
    node: &Node,
    space_ext: &[Value],
    red_ext: &[Value],
    lo: Value,
    hi: Value,
) -> bool {
    // Every routine folds exactly one reduced dimension.
    let &[m] = red_ext else {
        return false;
    };
    let vectorized = flow_runtime::spanrows::lane_fold_is_vectorized();
    if let Some(fold) = lane_fold(graph, node).filter(|_| vectorized) {
        lanes_over_rows(g, fold, space_ext, m, lo, hi);
    } else if let Some(mf) = moments_fold(graph, node).filter(|_| vectorized) {
        moments_over_rows(g, &mf, space_ext, m, lo, hi);
    } else if let Some(wd) = window_dot(graph, node) {
        window_over_rows(g, wd, m, space_ext[0], lo, hi);
    } else {
        return false;
    }
    true
}

/// The symbol of the row operation (`flow_runtime::spanrows::flow_row_binary_f32`).
pub const ROW_BINARY_SYMBOL: &str = "flow_row_binary_f32";

/// A map that is a binary operator between each element of a row and the row's scalar:
/// `y[i, j] = x[i, j] op d[i]` (or `d[i] op x[i, j]`) on `f32`, `op` one of `+ - * /`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::codegen) struct RowBinary {
    /// The read of the rows, `x[i + c, j + c']`.
    pub x: usize,
    /// The read of the row scalars, `d[i + c]`.
    pub d: usize,
    /// The runtime's operator code: 0 to 3 for `+ - * /`, plus 4 when `d` is the left operand.
    pub code: i64,
}

/// Added to [`RowBinary::code`]: apply `exp` to each result too (`exp(x[i, j] - m[i])` in
/// one pass over the row; `flow_runtime::fastmath::exp_f32`, the interpreter's `exp`).
pub(super) const ROW_THEN_EXP: i64 = 8;

/// The row operation `node` computes, if it is one: a map over two dimensions with one `f32`
/// output whose value is `op(a, b)` for `op` in `+ - * /`, one operand a strict read of a
/// rank-2 `f32` tensor at `[i0 + c, i1 + c']` and the other one of a rank-1 `f32` tensor at
/// `[i0 + c]`. The interpreter computes the same one operation per element.
pub(in crate::codegen) fn row_binary(g: &Graph, node: &Node) -> Option<RowBinary> {
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
pub(in crate::codegen) fn row_binary_expr(
    g: &Graph,
    node: &Node,
    e: &ScalarExpr,
) -> Option<RowBinary> {
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

/// Calls the row operation over rows `lo..hi` of the map's space (extents `space_ext`): one
/// call, in place of the loop nest. When the map writes over its input (`mir::schedule`'s
/// in-place writes) the output and `x` are one buffer, which the runtime routine handles.
pub(super) fn rows_binary(
    g: &mut Gen<'_, '_>,
    rb: RowBinary,
    space_ext: &[Value],
    lo: Value,
    hi: Value,
) {
    let out = stream_base(g, g.reads.len());
    let x = stream_base(g, rb.x);
    let d = stream_base(g, rb.d);
    let n = space_ext[1];
    let x_stride = g.read_ext[rb.x][1];
    let row_at = |g: &mut Gen<'_, '_>, base: Value, stride: Value| {
        let elems = g.b.ins().imul(lo, stride);
        let bytes = g.b.ins().imul_imm_s(elems, 4);
        g.b.ins().iadd(base, bytes)
    };
    let out = row_at(g, out, n);
    let x = row_at(g, x, x_stride);
    let one = g.iconst(1);
    let d = row_at(g, d, one);
    let rows = g.b.ins().isub(hi, lo);
    let code = g.iconst(rb.code);
    let f = g.imports.row_binary();
    g.b.ins().call(f, &[out, x, d, rows, n, x_stride, n, code]);
}

/// A stream's first address: its base plus the constant part of its coordinates.
fn stream_base(g: &Gen<'_, '_>, k: usize) -> Value {
    g.streams[k]
        .as_ref()
        .and_then(|s| s.addr.first().copied())
        .expect("strict reads and outputs are streams")
}

/// The symbol of the lane fold (`flow_runtime::spanrows::flow_lane_fold_f32`).
pub const LANE_FOLD_SYMBOL: &str = "flow_lane_fold_f32";

/// A reduction that folds rows into interleaved lanes (what the `lanes` pass makes of a row
/// `sum` or `max`): `reduce [B, L] over [M] op reads(x[i0 + c, 16*i2 + i1 + c'])` on `f32`,
/// `op` the built-in `sum` or `max`, the argument the read itself. Its value is the fold
/// code for the runtime (0 `sum`, 1 `max`).
pub(in crate::codegen) fn lane_fold(g: &Graph, node: &Node) -> Option<i64> {
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

/// Calls the lane fold over rows `lo..hi` (extents `space_ext`, reduced extent `m`): one
/// call, in place of the loop nest.
fn lanes_over_rows(
    g: &mut Gen<'_, '_>,
    fold: i64,
    space_ext: &[Value],
    m: Value,
    lo: Value,
    hi: Value,
) {
    let lanes = space_ext[1];
    let x_stride = g.read_ext[0][1];
    let at = |g: &mut Gen<'_, '_>, base: Value, stride: Value| {
        let elems = g.b.ins().imul(lo, stride);
        let bytes = g.b.ins().imul_imm_s(elems, 4);
        g.b.ins().iadd(base, bytes)
    };
    let out = stream_base(g, g.reads.len());
    let out = at(g, out, lanes);
    let x = stream_base(g, 0);
    let x = at(g, x, x_stride);
    let rows = g.b.ins().isub(hi, lo);
    let lane_stride = g.iconst(flow_runtime::spanrows::LANES as i64);
    let fold = g.iconst(fold);
    let f = g.imports.lane_fold();
    g.b.ins()
        .call(f, &[out, x, rows, x_stride, lanes, lane_stride, m, fold]);
}

/// The symbol of the moments fold (`flow_runtime::spanmoments::flow_moments_fold_f32`).
pub const MOMENTS_FOLD_SYMBOL: &str = "flow_moments_fold_f32";

/// A reduction that folds `f32` rows into eight `f64` lanes with a sum-of-powers monoid
/// (what the `lanes` pass makes of W2's `(n, s, ss)`).
#[derive(Clone, Debug, PartialEq)]
pub(in crate::codegen) struct MomentsFold {
    /// Per state field, what it adds per element.
    pub terms: Vec<Term>,
    /// The row stride in elements of a rank-1 input (`x[S·i0 + 8·i2 + i1]`); `None` for a
    /// rank-2 one (`x[i0, 8·i2 + i1]`), whose row stride is its extent.
    pub stride: Option<i64>,
}

/// The moments fold `node` computes, if it is one: `reduce [B, L] over [M] @u
/// reads(x[S·i0 + 8·i2 + i1 + c])` (or `x[i0 + c, 8·i2 + i1 + c']`) with the read itself as
/// the argument, where the user monoid `u` has one to four `f64` fields, zero `+0.0` in
/// each, no unwrap, a combine adding field by field (`p0` first) and a wrap of one `f32`
/// whose every field is a constant, `x as f64` or `(x as f64) * (x as f64)`: per element
/// and field, the interpreter's `acc + term`, which `flow_runtime::spanmoments` performs in
/// the same order.
pub(in crate::codegen) fn moments_fold(g: &Graph, node: &Node) -> Option<MomentsFold> {
    let NodeKind::Reduce {
        space,
        red,
        monoid: monoid @ MonoidRef::User(_),
        reads,
        args,
    } = &node.kind
    else {
        return None;
    };
    if space.len() != 2 || red.len() != 1 || reads.len() != 1 {
        return None;
    }
    if !matches!(&args[..], [ScalarExpr::Read(0)]) {
        return None;
    }
    let m = explicit(g, *monoid, DType::F32)?;
    let nf = m.state.len();
    let ok = (1..=MAX_FIELDS).contains(&nf)
        && node.outputs.len() == nf
        && m.unwrap.is_none()
        && m.params == [DType::F32]
        && m.state.iter().all(|d| *d == DType::F64)
        && node.outputs.iter().all(|o| o.dtype == DType::F64)
        && m.zero
            .iter()
            .all(|z| matches!(z, Scalar::F64(v) if v.to_bits() == 0));
    if !ok {
        return None;
    }
    let (p0, p1) = (ScalarExpr::Param(0), ScalarExpr::Param(1));
    let add = |a: ScalarExpr, b: ScalarExpr| ScalarExpr::binary(BinOp::Add, a, b);
    let combine = if nf == 1 {
        add(p0, p1)
    } else {
        ScalarExpr::Tuple(
            (0..nf as u32)
                .map(|k| {
                    add(
                        ScalarExpr::field(p0.clone(), k),
                        ScalarExpr::field(p1.clone(), k),
                    )
                })
                .collect(),
        )
    };
    if m.combine != combine {
        return None;
    }
    let wraps = match &m.wrap {
        ScalarExpr::Tuple(fields) if nf > 1 => &fields[..],
        w if nf == 1 => std::slice::from_ref(w),
        _ => return None,
    };
    let x = ScalarExpr::cast(ScalarExpr::Param(0), DType::F64);
    let square = ScalarExpr::binary(BinOp::Mul, x.clone(), x.clone());
    let terms = wraps
        .iter()
        .map(|w| match w {
            ScalarExpr::Const(Scalar::F64(c)) => Some(Term::Const(*c)),
            w if *w == x => Some(Term::X),
            w if *w == square => Some(Term::Square),
            _ => None,
        })
        .collect::<Option<Vec<Term>>>()?;
    if terms.len() != nf {
        return None;
    }
    let lanes = flow_runtime::spanmoments::LANES as i64;
    let r = &reads[0];
    if coordinates(g, r, &[&[(0, 1)], &[(1, 1), (2, lanes)]]) {
        return Some(MomentsFold {
            terms,
            stride: None,
        });
    }
    let row = r.proj.first().and_then(|a| {
        let t = nonzero_terms(a);
        match t[..] {
            [(0, s), (1, 1), (2, l)] if l == lanes && s > 0 => Some(s),
            _ => None,
        }
    })?;
    coordinates_rank(g, r, 1).then_some(MomentsFold {
        terms,
        stride: Some(row),
    })
}

/// Calls the moments fold over rows `lo..hi` (extents `space_ext`, reduced extent `m`): one
/// call, in place of the loop nest.
fn moments_over_rows(
    g: &mut Gen<'_, '_>,
    mf: &MomentsFold,
    space_ext: &[Value],
    m: Value,
    lo: Value,
    hi: Value,
) {
    let lanes = space_ext[1];
    let x_stride = match mf.stride {
        Some(s) => g.iconst(s),
        None => g.read_ext[0][1],
    };
    let x = stream_base(g, 0);
    let elems = g.b.ins().imul(lo, x_stride);
    let bytes = g.b.ins().imul_imm_s(elems, 4);
    let x = g.b.ins().iadd(x, bytes);
    let first = g.b.ins().imul(lo, lanes);
    let first = g.b.ins().imul_imm_s(first, 8);
    let mut args = Vec::new();
    for k in 0..MAX_FIELDS {
        let out = if k < mf.terms.len() {
            let base = stream_base(g, g.reads.len() + k);
            g.b.ins().iadd(base, first)
        } else {
            g.iconst(0)
        };
        args.push(out);
    }
    let rows = g.b.ins().isub(hi, lo);
    let lane_stride = g.iconst(flow_runtime::spanmoments::LANES as i64);
    let fields = g.iconst(mf.terms.len() as i64);
    let kinds = mf
        .terms
        .iter()
        .enumerate()
        .fold(0, |acc, (k, t)| acc | t.code() << (2 * k));
    let kinds = g.iconst(kinds);
    args.extend([x, rows, x_stride, lanes, lane_stride, m, fields, kinds]);
    for k in 0..MAX_FIELDS {
        let c = match mf.terms.get(k) {
            Some(Term::Const(c)) => *c,
            _ => 0.0,
        };
        args.push(g.b.ins().f64const(c));
    }
    let f = g.imports.moments_fold();
    g.b.ins().call(f, &args);
}

/// The nonzero `(index variable, coefficient)` terms of `a`, in ascending order.
fn nonzero_terms(a: &Affine) -> Vec<(u32, i64)> {
    let mut t: Vec<(u32, i64)> = a.coeffs.iter().copied().filter(|(_, c)| *c != 0).collect();
    t.sort_unstable();
    t
}

/// Whether `r` is a strict read of a rank-`rank` `f32` tensor.
fn coordinates_rank(g: &Graph, r: &Read, rank: usize) -> bool {
    let dtype = g.nodes[r.node].outputs[r.port as usize].dtype;
    r.edge == Edge::Strict && dtype == DType::F32 && r.proj.len() == rank
}

/// Whether `r` is a strict read of an `f32` tensor whose coordinates have exactly the terms
/// `want` (per dimension, `(index variable, coefficient)` in ascending order; constants
/// aside: they are in the read's stream base).
fn coordinates(g: &Graph, r: &Read, want: &[&[(u32, i64)]]) -> bool {
    coordinates_rank(g, r, want.len())
        && r.proj.iter().zip(want).all(|(a, w)| nonzero_terms(a) == *w)
}

/// The span functions, declared after the math functions in the order of `codegen`'s
/// `Emitter::new`.
impl super::Imports {
    fn exp_span(&self) -> cranelift_codegen::ir::FuncRef {
        self.funcs[2 * super::CALLED.len()]
    }

    fn window_dot(&self) -> cranelift_codegen::ir::FuncRef {
        self.funcs[2 * super::CALLED.len() + 1]
    }

    fn row_binary(&self) -> cranelift_codegen::ir::FuncRef {
        self.funcs[2 * super::CALLED.len() + 2]
    }

    fn lane_fold(&self) -> cranelift_codegen::ir::FuncRef {
        self.funcs[2 * super::CALLED.len() + 3]
    }

    fn moments_fold(&self) -> cranelift_codegen::ir::FuncRef {
        self.funcs[2 * super::CALLED.len() + 4]
    }
}
