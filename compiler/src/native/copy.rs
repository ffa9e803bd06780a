//! Concatenations and slices on the native backend: element copies between whole tensors,
//! run directly (not as kernels) by `Native::eval`.

use flow_runtime::{DType, Tensor};

use super::{alloc_error, NativeError};

pub(super) fn concat(
    parts: &[&Tensor],
    axis: usize,
    shape: &[usize],
) -> Result<Tensor, NativeError> {
    let dtype = parts.first().map(|t| t.dtype()).unwrap_or(DType::F32);
    let mut out = Tensor::zeros(dtype, shape).map_err(alloc_error(None))?;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut offset = 0;
    for p in parts {
        let n = p.shape[axis];
        for o in 0..outer {
            for a in 0..n {
                for i in 0..inner {
                    let src = (o * n + a) * inner + i;
                    let dst = (o * shape[axis] + offset + a) * inner + i;
                    out.set(dst, p.get(src));
                }
            }
        }
        offset += n;
    }
    Ok(out)
}

pub(super) fn slice(src: &Tensor, start: &[usize], shape: &[usize]) -> Result<Tensor, NativeError> {
    let mut out = Tensor::zeros(src.dtype(), shape).map_err(alloc_error(None))?;
    let strides = src.strides();
    let total: usize = shape.iter().product();
    for lin in 0..total {
        let mut rem = lin;
        let mut off = 0;
        for d in (0..shape.len()).rev() {
            let c = rem % shape[d];
            rem /= shape[d];
            off += (start[d] + c) * strides[d];
        }
        out.set(lin, src.get(off));
    }
    Ok(out)
}
