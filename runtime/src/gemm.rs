//! Matrix products for contractions (`sum[k](a[i, k] * b[k, j])`) behind a small
//! safe-to-call surface. Both backends of the compiler evaluate a recognized contraction here,
//! so they agree bit for bit. Which routine runs is a function of `k`, `n`, the operands'
//! strides, the element type and the CPU's features, never of `m`, so a product computed in
//! blocks of rows (the native backend's shards) and whole (the interpreter) runs the same
//! routine:
//!
//! - `f32` on a CPU with fused multiply-adds: each element one chain of FMAs in order along
//!   `k` from zero, the same bits on every machine with FMA — products of at most
//!   [`NARROW_MAX_N`] columns on the narrow kernels ([`crate::gemm_narrow`]), wider ones on the
//!   runtime's packed GEMM ([`crate::gemm_packed`]); both give the same bits, and
//!   [`gemm_f32_then`] hands each block of finished rows to an epilogue while they are in
//!   cache;
//! - otherwise (`f64`, or no FMA) the `matrixmultiply` crate's register-blocked, cache-tiled
//!   SGEMM/DGEMM kernels, whose order of addition is the crate's (blocked along `k`, perhaps
//!   with fused multiply-adds), fixed for a machine;
//! - under `--portable-math`, the portable kernel: in order along `k`, no FMA.
//!
//! Each element is computed from its own row and column only, so the bits do not depend on
//! how the rows are split into shards.

pub use crate::gemm_narrow::NARROW_MAX_N;
use crate::gemm_packed::{self, Isa};

/// The packed GEMM's variant for a product into `n` columns of `size`-byte elements, or
/// `None` where the narrow kernels, `matrixmultiply` or the portable kernel run it: a function
/// of `n`, `size` and the CPU only.
fn packed(n: usize, size: usize) -> Option<Isa> {
    // `f64` stays on `matrixmultiply`: slower on the packed GEMM at W4's shape in `f64`
    // (sixth round: 23–28 ms against 20–23).
    if size != 4 || crate::portable::portable_math() {
        return None;
    }
    gemm_packed::isa_for(n, size)
}

/// Whether an `f32` product into `n` columns runs as one FMA chain per element (the narrow
/// kernels or the packed GEMM, whose [`gemm_f32_then`] reports finished rows block by block;
/// `matrixmultiply` reports all rows at the end).
pub fn f32_is_fma_chain(n: usize) -> bool {
    !crate::portable::portable_math()
        && (crate::gemm_narrow::isa_for(n).is_some() || packed(n, 4).is_some())
}

/// The narrow kernels for an element type: `f32` only.
trait Narrow: Sized {
    /// The product on the narrow kernels, or `None` where they do not run it.
    ///
    /// # Safety
    /// As for [`gemm_f32_then`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn narrow_then(
        m: usize,
        k: usize,
        n: usize,
        a: Operand<Self>,
        b: Operand<Self>,
        c: *mut Self,
        done: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Option<bool>;
}

impl Narrow for f32 {
    unsafe fn narrow_then(
        m: usize,
        k: usize,
        n: usize,
        a: Operand<f32>,
        b: Operand<f32>,
        c: *mut f32,
        done: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Option<bool> {
        let isa = crate::gemm_narrow::isa_for(n)?;
        // SAFETY: the caller's contract; `isa` is a vector kernel this CPU runs.
        Some(unsafe { crate::gemm_narrow::gemm_then(isa, m, k, n, a, b, c, done) })
    }
}

impl Narrow for f64 {
    unsafe fn narrow_then(
        _: usize,
        _: usize,
        _: usize,
        _: Operand<f64>,
        _: Operand<f64>,
        _: *mut f64,
        _: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Option<bool> {
        None
    }
}

/// A matrix operand: element pointer, row stride and column stride, in elements.
#[derive(Clone, Copy, Debug)]
pub struct Operand<T> {
    pub ptr: *const T,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// Defines a GEMM entry point over one element type, its variant with an epilogue (`_then`),
/// and its `matrixmultiply` kernel alone (`_matrixmultiply`).
macro_rules! gemm {
    ($(#[$doc:meta])* $name:ident, $(#[$doc_then:meta])* $then:ident, $mm:ident, $t:ty, $kernel:path) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Every element of `a` and `b` addressed through the strides must be readable, `c`
        /// must point to `m·n` writable elements, and `c` must not overlap `a` or `b`.
        pub unsafe fn $name(m: usize, k: usize, n: usize, a: Operand<$t>, b: Operand<$t>, c: *mut $t) {
            // SAFETY: the caller's contract.
            unsafe { $then(m, k, n, a, b, c, &mut |_, _| true) };
        }

        /// The product on `matrixmultiply`'s kernel alone, whatever the shape (what
        /// [`gemm_f64`] runs, and [`gemm_f32`] on a CPU without FMA; `flow-bench`'s `gemm`
        /// binary times it against the packed GEMM and the narrow kernels).
        ///
        /// # Safety
        /// As for the function without `_matrixmultiply`.
        pub unsafe fn $mm(m: usize, k: usize, n: usize, a: Operand<$t>, b: Operand<$t>, c: *mut $t) {
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

        $(#[$doc_then])*
        ///
        /// # Safety
        /// As for the function without `_then`; `done` may read and write rows `r0..r1` of
        /// `c` only.
        pub unsafe fn $then(
            m: usize,
            k: usize,
            n: usize,
            a: Operand<$t>,
            b: Operand<$t>,
            c: *mut $t,
            done: &mut dyn FnMut(usize, usize) -> bool,
        ) -> bool {
            if m == 0 || n == 0 {
                return true;
            }
            if crate::portable::portable_math() {
                // SAFETY: the caller's contract.
                unsafe { ordered(m, k, n, a, b, c) };
                return done(0, m);
            }
            // SAFETY: the caller's contract.
            if let Some(all) = unsafe { <$t as Narrow>::narrow_then(m, k, n, a, b, c, done) } {
                return all;
            }
            if let Some(isa) = packed(n, std::mem::size_of::<$t>()) {
                // SAFETY: the caller's contract; `isa` is one this CPU runs.
                return unsafe { gemm_packed::gemm_then(isa, m, k, n, a, b, c, done) };
            }
            // SAFETY: the caller's contract.
            unsafe { $mm(m, k, n, a, b, c) };
            done(0, m)
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
    /// [`gemm_f32`], calling `done(r0, r1)` once rows `r0..r1` of `c` hold their final
    /// values: every row once, in order; block by block while they are in cache where the
    /// narrow kernels or the packed GEMM run the product ([`gemm_packed::gemm_then`]), all
    /// rows at the end otherwise. An epilogue applied there gives the bits of the product followed by the
    /// epilogue as a second pass. Returns `false` if `done` did (the product then stopped).
    gemm_f32_then,
    gemm_f32_matrixmultiply,
    f32,
    matrixmultiply::sgemm
);
gemm!(
    /// [`gemm_f32`] for `f64`.
    gemm_f64,
    /// [`gemm_f32_then`] for `f64`.
    gemm_f64_then,
    gemm_f64_matrixmultiply,
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

    fn values32(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|x| (((x + seed) * 7919 + seed * 31) % 1013) as f32 / 97.0 - 5.1)
            .collect()
    }

    fn row_major(p: &[f32], cols: usize) -> Operand<f32> {
        Operand {
            ptr: p.as_ptr(),
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// With FMA in hardware, every `f32` product is one FMA chain per element in order along
    /// `k` (the narrow kernels up to [`NARROW_MAX_N`] columns, the packed GEMM past them),
    /// also across blocks of `k` (300 > the packed GEMM's 128), whole or in blocks of rows (the
    /// interpreter, the native backend's shards), with `a` row-major or transposed.
    #[test]
    fn f32_products_are_one_fma_chain_in_order_along_k() {
        if !f32_is_fma_chain(NARROW_MAX_N + 1) {
            return; // No FMA in hardware: `matrixmultiply` runs every product.
        }
        let (m, k) = (40, 300);
        for n in [1, 10, NARROW_MAX_N, NARROW_MAX_N + 1, 63, 96] {
            assert!(f32_is_fma_chain(n), "{n} columns");
            for a_t in [false, true] {
                let (a, b) = (values32(m * k, n), values32(k * n, 2));
                let a_op = |lo: usize| {
                    if a_t {
                        Operand {
                            ptr: a[lo..].as_ptr(),
                            row_stride: 1,
                            col_stride: m as isize,
                        }
                    } else {
                        row_major(&a[lo * k..], k)
                    }
                };
                let a_at = |i: usize, p: usize| if a_t { a[p * m + i] } else { a[i * k + p] };
                let mut whole = vec![f32::NAN; m * n];
                // SAFETY: the operands address exactly the buffers.
                unsafe { gemm_f32(m, k, n, a_op(0), row_major(&b, n), whole.as_mut_ptr()) };
                for i in 0..m {
                    for j in 0..n {
                        let want = (0..k).fold(0f32, |s, p| a_at(i, p).mul_add(b[p * n + j], s));
                        let got = whole[i * n + j];
                        assert_eq!(got.to_bits(), want.to_bits(), "n {n} a_t {a_t} c[{i}, {j}]");
                    }
                }
                let mut blocks = vec![f32::NAN; m * n];
                for (lo, hi) in [(0, 7), (7, 8), (8, 40)] {
                    // SAFETY: rows lo..hi of `a` and `c`.
                    unsafe {
                        gemm_f32(
                            hi - lo,
                            k,
                            n,
                            a_op(lo),
                            row_major(&b, n),
                            blocks[lo * n..].as_mut_ptr(),
                        )
                    };
                }
                assert_eq!(bits(&whole), bits(&blocks), "n {n} a_t {a_t}");
            }
        }
    }

    /// An epilogue run in [`gemm_f32_then`]'s `done` (W5's update `w - 0.01 · acc`, in place)
    /// gives the bits of [`gemm_f32`] followed by the same map over the whole output, on the
    /// packed GEMM (96 and 70 columns) and on the narrow kernels (10 columns), row blocks
    /// reported as they finish, and every row is reported once.
    #[test]
    fn an_epilogue_in_the_gemm_equals_the_gemm_then_the_map() {
        for (m, k, n) in [(150, 300, 96), (150, 300, 10), (3, 5, 70)] {
            let (a, b, w) = (values32(m * k, 3), values32(k * n, 4), values32(m * n, 5));
            let step = |w: f32, acc: f32| w - 0.01 * acc;
            let mut two_pass = vec![f32::NAN; m * n];
            // SAFETY: the operands address exactly the buffers.
            unsafe {
                gemm_f32(
                    m,
                    k,
                    n,
                    row_major(&a, k),
                    row_major(&b, n),
                    two_pass.as_mut_ptr(),
                )
            };
            for (c, &w) in two_pass.iter_mut().zip(&w) {
                *c = step(w, *c);
            }
            let mut fused = vec![f32::NAN; m * n];
            let cp = fused.as_mut_ptr();
            let mut covered = 0;
            let mut done = |r0: usize, r1: usize| {
                assert_eq!(r0, covered);
                covered = r1;
                // SAFETY: rows r0..r1 of the m×n output, final.
                let rows = unsafe { std::slice::from_raw_parts_mut(cp.add(r0 * n), (r1 - r0) * n) };
                for (c, &w) in rows.iter_mut().zip(&w[r0 * n..r1 * n]) {
                    *c = step(w, *c);
                }
                true
            };
            // SAFETY: as above.
            let all = unsafe {
                gemm_f32_then(m, k, n, row_major(&a, k), row_major(&b, n), cp, &mut done)
            };
            assert!(all);
            assert_eq!(covered, m);
            assert_eq!(bits(&fused), bits(&two_pass), "{m}x{k}x{n}");
        }
    }
}
