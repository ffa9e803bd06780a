//! Contractions as GEMMs over blocks of rows (`flow_runtime::gemm`): each output element
//! depends only on its row and column, so the blocks do not change a bit. A block is a shard.

use flow_runtime::{gemm, DType, Tensor};

use super::{
    data_ptr, data_ptr_mut, describe_short, tensor_bytes, Launch, Native, NativeError, SendPtr,
};
use crate::mir::contract::Contraction;
use crate::mir::ir::{Node, NodeId, Port};
use crate::mir::schedule::contraction_rows;

impl Native {
    /// Runs a contraction as GEMMs over blocks of rows (see `flow_runtime::gemm`: each element
    /// depends only on its row and column, so the blocks do not change a bit). A block is a
    /// shard: it owns its rows of the output, and is retried and faulted like a kernel's.
    pub(super) fn run_contraction(
        &self,
        id: NodeId,
        node: &Node,
        c: &Contraction,
        (a, b): (&Tensor, &Tensor),
        read: u64,
        out: &mut Tensor,
    ) -> Result<(), NativeError> {
        let (m, _, n) = c.dims;
        let rows = contraction_rows(c);
        let written = tensor_bytes(out);
        let (a, b, o) = (
            SendPtr(data_ptr(&a.data) as *mut u8),
            SendPtr(data_ptr(&b.data) as *mut u8),
            SendPtr(data_ptr_mut(&mut out.data)),
        );
        let dtype = c.dtype;
        let launch = Launch {
            name: format!("{} gemm", describe_short(node)),
            kernel: self.launch_id(id),
            shards: m.div_ceil(rows),
            rows,
            extent0: m,
            outputs: vec![(o.get(), n * dtype.size_bytes(), dtype)],
            need: vec![self.need(Port { node: id, port: 0 })],
            read,
            written,
        };
        self.launch(&launch, &|lo, hi| {
            gemm_rows(c, (&a, &b, &o), lo, hi);
            0
        })
        .map_err(|e| NativeError::shard(id, node, &[m, n], rows, &e))
    }
}

/// Rows `lo..hi` of a contraction's output, with the GEMM.
pub(super) fn gemm_rows(
    c: &Contraction,
    (a, b, o): (&SendPtr, &SendPtr, &SendPtr),
    lo: usize,
    hi: usize,
) {
    gemm_rows_then(c, (a, b, o), lo, hi, &mut |_, _| true);
}

/// [`gemm_rows`], calling `done(r0, r1)` (absolute rows) as each block of rows is final (see
/// `flow_runtime::gemm::gemm_f32_then`): a row group's next members run there, on rows still
/// in cache. Returns `false` if `done` did.
pub(super) fn gemm_rows_then(
    c: &Contraction,
    (a, b, o): (&SendPtr, &SendPtr, &SendPtr),
    lo: usize,
    hi: usize,
    done: &mut dyn FnMut(usize, usize) -> bool,
) -> bool {
    let (_, k, n) = c.dims;
    let shift = lo as isize * c.a.1;
    let done = &mut |r0: usize, r1: usize| done(lo + r0, lo + r1);
    // SAFETY: the verifier proved both reads in bounds over the whole box, so rows lo..hi of
    // `a` and all of `b` are readable; each task writes only rows lo..hi of the m×n output,
    // which no other task writes, and `done` gets rows of that block only.
    unsafe {
        match c.dtype {
            DType::F32 => gemm::gemm_f32_then(
                hi - lo,
                k,
                n,
                operand((a.get() as *const f32).offset(shift), c.a),
                operand(b.get() as *const f32, c.b),
                (o.get() as *mut f32).add(lo * n),
                done,
            ),
            _ => gemm::gemm_f64_then(
                hi - lo,
                k,
                n,
                operand((a.get() as *const f64).offset(shift), c.a),
                operand(b.get() as *const f64, c.b),
                (o.get() as *mut f64).add(lo * n),
                done,
            ),
        }
    }
}

fn operand<T>(
    ptr: *const T,
    (_, row_stride, col_stride): (usize, isize, isize),
) -> gemm::Operand<T> {
    gemm::Operand {
        ptr,
        row_stride,
        col_stride,
    }
}
