//! Matrix products for contractions (`sum[k](a[i, k] * b[k, j])`): the `matrixmultiply`
//! crate's register-blocked, cache-tiled SGEMM/DGEMM kernels behind a small safe-to-call
//! surface. Both backends of the compiler evaluate a recognized contraction here, so they agree
//! bit for bit; the order in which each element's products are added is the crate's (blocked
//! along `k`, perhaps with fused multiply-adds), fixed for a machine, and independent of how
//! the rows are split into shards: each element is computed from its own row and column only.

/// A matrix operand: element pointer, row stride and column stride, in elements.
#[derive(Clone, Copy, Debug)]
pub struct Operand<T> {
    pub ptr: *const T,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// Defines a GEMM entry point over one element type with its `matrixmultiply` kernel.
macro_rules! gemm {
    ($(#[$doc:meta])* $name:ident, $t:ty, $kernel:path) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Every element of `a` and `b` addressed through the strides must be readable, `c`
        /// must point to `m·n` writable elements, and `c` must not overlap `a` or `b`.
        pub unsafe fn $name(m: usize, k: usize, n: usize, a: Operand<$t>, b: Operand<$t>, c: *mut $t) {
            if m == 0 || n == 0 {
                return;
            }
            // SAFETY: the caller's contract; beta = 0 means `c` is written, never read.
            unsafe {
                $kernel(
                    m,
                    k,
                    n,
                    1.0,
                    a.ptr,
                    a.row_stride,
                    a.col_stride,
                    b.ptr,
                    b.row_stride,
                    b.col_stride,
                    0.0,
                    c,
                    n as isize,
                    1,
                )
            }
        }
    };
}

gemm!(
    /// `c = a · b` for an `m×k` matrix `a`, a `k×n` matrix `b` and a row-major `m×n` matrix
    /// `c` (row stride `n`), overwriting `c`.
    gemm_f32,
    f32,
    matrixmultiply::sgemm
);
gemm!(
    /// [`gemm_f32`] for `f64`.
    gemm_f64,
    f64,
    matrixmultiply::dgemm
);

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_the_definition_and_any_row_split() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f64> = (0..m * k)
            .map(|x| ((x * 7919) % 61) as f64 - 30.0)
            .collect();
        let b: Vec<f64> = (0..k * n)
            .map(|x| ((x * 104729) % 53) as f64 - 26.0)
            .collect();
        let mut c = vec![f64::NAN; m * n];
        let op = |p: &[f64], cols: usize| Operand {
            ptr: p.as_ptr(),
            row_stride: cols as isize,
            col_stride: 1,
        };
        // SAFETY: the buffers have exactly the sizes the strides address.
        unsafe { gemm_f64(m, k, n, op(&a, k), op(&b, n), c.as_mut_ptr()) };
        // Small integers: every order of summation is exact.
        assert_eq!(c, naive(m, k, n, &a, &b));
        // Rows computed in blocks give the same bits.
        let a32: Vec<f32> = a.iter().map(|x| *x as f32 / 7.0).collect();
        let b32: Vec<f32> = b.iter().map(|x| *x as f32 / 3.0).collect();
        let op32 = |p: &[f32], cols: usize| Operand {
            ptr: p.as_ptr(),
            row_stride: cols as isize,
            col_stride: 1,
        };
        let mut whole = vec![0f32; m * n];
        // SAFETY: as above.
        unsafe { gemm_f32(m, k, n, op32(&a32, k), op32(&b32, n), whole.as_mut_ptr()) };
        let mut blocks = vec![0f32; m * n];
        for (lo, hi) in [(0, 5), (5, 6), (6, 30), (30, 37)] {
            let a = Operand {
                ptr: a32[lo * k..].as_ptr(),
                row_stride: k as isize,
                col_stride: 1,
            };
            // SAFETY: rows lo..hi of a and c.
            unsafe {
                gemm_f32(
                    hi - lo,
                    k,
                    n,
                    a,
                    op32(&b32, n),
                    blocks[lo * n..].as_mut_ptr(),
                )
            };
        }
        assert_eq!(
            whole.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            blocks.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
