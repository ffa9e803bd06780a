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
            if crate::portable::portable_math() {
                // SAFETY: the caller's contract.
                return unsafe { ordered(m, k, n, a, b, c) };
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

/// The portable kernel (`--portable-math`): `c[i, j]` is `(0 + a[i, 0]·b[0, j]) + a[i, 1]·b[1, j]`
/// and so on, in order along `k`, each product rounded then added (no fused multiply-add),
/// so the bits depend on nothing but the operands. The loop runs along a row of `c` for each `k`
/// (vectorizable lane-wise, which changes no bit), over column tiles that stay in L1.
///
/// # Safety
/// As for [`gemm_f32`].
unsafe fn ordered<T>(m: usize, k: usize, n: usize, a: Operand<T>, b: Operand<T>, c: *mut T)
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    const TILE: usize = 256;
    for i in 0..m {
        // SAFETY: row `i` of `c` holds `n` writable elements (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * n), n) };
        for (t, tile) in row.chunks_mut(TILE).enumerate() {
            let j0 = t * TILE;
            tile.fill(T::default());
            for p in 0..k {
                // SAFETY: `a[i, p]` and `b[p, j]` are addressed through their strides.
                let aip = unsafe {
                    *a.ptr
                        .offset(i as isize * a.row_stride + p as isize * a.col_stride)
                };
                let brow = unsafe { b.ptr.offset(p as isize * b.row_stride) };
                if b.col_stride == 1 {
                    // SAFETY: as above, contiguous along the row.
                    let bs = unsafe { std::slice::from_raw_parts(brow.add(j0), tile.len()) };
                    for (cj, &bj) in tile.iter_mut().zip(bs) {
                        *cj = *cj + aip * bj;
                    }
                } else {
                    for (d, cj) in tile.iter_mut().enumerate() {
                        // SAFETY: as above.
                        let bj = unsafe { *brow.offset((j0 + d) as isize * b.col_stride) };
                        *cj = *cj + aip * bj;
                    }
                }
            }
        }
    }
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

    /// The portable kernel adds in order along `k`, whatever the strides (here `b` is read
    /// transposed, and `n` spans two column tiles).
    #[test]
    fn the_portable_kernel_adds_in_order_along_k() {
        let (m, k, n) = (3, 41, 300);
        let a: Vec<f32> = (0..m * k)
            .map(|x| ((x * 37) % 101) as f32 / 9.0 - 5.0)
            .collect();
        let bt: Vec<f32> = (0..n * k)
            .map(|x| ((x * 53) % 97) as f32 / 7.0 - 6.0)
            .collect();
        let mut c = vec![f32::NAN; m * n];
        let pa = Operand {
            ptr: a.as_ptr(),
            row_stride: k as isize,
            col_stride: 1,
        };
        let pb = Operand {
            ptr: bt.as_ptr(),
            row_stride: 1,
            col_stride: k as isize,
        };
        // SAFETY: the strides address exactly the buffers.
        unsafe { ordered(m, k, n, pa, pb, c.as_mut_ptr()) };
        for i in 0..m {
            for j in 0..n {
                let want = (0..k).fold(0f32, |s, p| s + a[i * k + p] * bt[j * k + p]);
                assert_eq!(c[i * n + j].to_bits(), want.to_bits(), "c[{i}, {j}]");
            }
        }
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
