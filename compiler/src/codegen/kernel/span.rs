//! Math over spans in kernels: a map whose body is `exp(…)` on `f32` stores the argument
//! of `exp`, then calls the runtime's `flow_exp_span_f32` once over the rows the shard wrote
//! (`flow_runtime::spanmath`: AVX-512F, AVX2 or baseline code chosen at run time), instead of
//! evaluating the polynomial inline in Cranelift's 128-bit vectors.
//!
//! The bits are those of the inline code and of the interpreter: the span function computes
//! each element with exactly [`flow_runtime::fastmath::exp_f32`]'s operations. Writing the
//! argument first and `exp` of it in place afterwards is safe even when the map writes over a
//! dead input of its row group (`mir::schedule`'s in-place writes): such a map reads that
//! input only at its own point, before it stores there.

use cranelift_codegen::ir::{types, InstBuilder, Value};
use flow_runtime::DType;

use super::Gen;
use crate::mir::ir::{MathFn, Node, NodeKind, ScalarExpr};

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
