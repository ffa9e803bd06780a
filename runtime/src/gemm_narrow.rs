//! Narrow `f32` products: at most [`NARROW_MAX_N`] columns (W5's output layer `h·w2` and its
//! update `hᵀ·d`, 10 columns), where the packed GEMM's panels and `matrixmultiply`'s register
//! tiles are mostly padding and packing `a` costs more than the product.
//!
//! Each element is one chain of fused multiply-adds in order along `k` from zero, exactly as in
//! [`crate::gemm_packed`]: `c[i, j] = fma(a[i, k-1], b[k-1, j], … fma(a[i, 0], b[0, j], 0))`.
//! So a product gives the same bits here as on the packed GEMM, and `crate::gemm` may choose
//! either by shape: every `f32` product on a CPU with FMA has those bits.
//!
//! Two forms, by `a`'s layout (the bits do not depend on which runs):
//! - **rows** (`a` read along its rows, `h·w2`): `b` is copied once into `k` rows of 16 values
//!   (zero padded); a block of rows keeps one 16-lane accumulator per row (two 8-lane ones with
//!   AVX2), and per step of `k` broadcasts each row's `a[i, p]` against row `p` of `b`.
//! - **lanes** (`a` stored transposed, `hᵀ·d`: `a[i, p]` and `a[i + 1, p]` adjacent): the
//!   lanes of a vector are consecutive rows of `c`, loaded straight from `a`'s storage rows;
//!   one accumulator per column of a group of `b`'s columns, each step broadcasting `b[p, j]`.
//!   Then the block is transposed into `c`.

use crate::gemm::Operand;
use crate::gemm_packed::{Aligned, Isa, DONE_ROWS};

/// The most columns of a product run here; wider ones run on the packed GEMM.
pub const NARROW_MAX_N: usize = 16;

/// Columns of the rows form's copy of `b` (one AVX-512 vector, two AVX2 ones).
const ROW_WIDTH: usize = 16;

/// The variant for an `f32` product into `n` columns, or `None` where it does not run here:
/// more than [`NARROW_MAX_N`] columns, or no x86-64 vector kernel with FMA on this CPU.
pub fn isa_for(n: usize) -> Option<Isa> {
    match Isa::best() {
        Some(isa @ (Isa::Avx512 | Isa::Avx2)) if (1..=NARROW_MAX_N).contains(&n) => Some(isa),
        _ => None,
    }
}

/// `c = a · b` for `n ≤` [`NARROW_MAX_N`] columns (row-major `c`, row stride `n`), calling
/// `done(r0, r1)` as soon as rows `r0..r1` hold their final values: every row once, in order,
/// in blocks of at least [`DONE_ROWS`] rows (the last may be shorter). `done` may read and
/// overwrite those rows. If it returns `false` the product stops and `false` is returned.
///
/// # Safety
/// As for `crate::gemm::gemm_f32_then`; `isa` must be [`Isa::Avx512`] or [`Isa::Avx2`] and
/// run on this CPU (one of [`Isa::available`]); `1 ≤ n ≤` [`NARROW_MAX_N`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_then(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: Operand<f32>,
    b: Operand<f32>,
    c: *mut f32,
    done: &mut dyn FnMut(usize, usize) -> bool,
) -> bool {
    assert!(
        (1..=NARROW_MAX_N).contains(&n),
        "narrow product of {n} columns"
    );
    assert!(
        matches!(isa, Isa::Avx512 | Isa::Avx2),
        "no narrow kernel for {isa:?}"
    );
    if m == 0 {
        return true;
    }
    if k == 0 {
        // SAFETY: `c` holds m·n elements.
        unsafe { std::slice::from_raw_parts_mut(c, m * n).fill(0.0) };
        return done(0, m);
    }
    // SAFETY: the caller's contract.
    unsafe {
        if a.row_stride == 1 && a.col_stride != 1 {
            lanes(isa, m, k, n, a, b, c, done)
        } else {
            rows(isa, m, k, n, a, b, c, done)
        }
    }
}

/// Calls `done` for the rows finished since `reported` once there are [`DONE_ROWS`] of them
/// or `end` is the last row.
fn report(
    reported: &mut usize,
    end: usize,
    m: usize,
    done: &mut dyn FnMut(usize, usize) -> bool,
) -> bool {
    if end - *reported >= DONE_ROWS || end == m {
        let go = done(*reported, end);
        *reported = end;
        return go;
    }
    true
}

/// The rows form (see the module's documentation).
///
/// # Safety
/// As for [`gemm_then`], with `k ≥ 1` and `m ≥ 1`.
#[allow(clippy::too_many_arguments)]
unsafe fn rows(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: Operand<f32>,
    b: Operand<f32>,
    c: *mut f32,
    done: &mut dyn FnMut(usize, usize) -> bool,
) -> bool {
    let mut buf = Aligned::<f32>::new(k * ROW_WIDTH);
    let bp = buf.slice_mut();
    for (p, row) in bp.chunks_exact_mut(ROW_WIDTH).enumerate() {
        for (j, x) in row[..n].iter_mut().enumerate() {
            // SAFETY: `b[p, j]` is inside `b` (the caller's contract).
            *x = unsafe {
                *b.ptr
                    .offset(p as isize * b.row_stride + j as isize * b.col_stride)
            };
        }
    }
    let bp = bp.as_ptr();
    let mr = match isa {
        Isa::Avx512 => ROWS_AVX512,
        _ => ROWS_AVX2,
    };
    let mut tile = [0f32; ROWS_AVX512 * ROW_WIDTH];
    let t = tile.as_mut_ptr();
    let mut reported = 0;
    let mut i = 0;
    while i < m {
        let block = mr.min(m - i);
        // SAFETY: rows i..i+block of `a` and `c`; the kernels write `block` rows of the tile.
        unsafe {
            let ap = a.ptr.offset(i as isize * a.row_stride);
            let (rs, cs) = (a.row_stride, a.col_stride);
            match (isa, block == mr) {
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, true) => x86::rows_avx512::<ROWS_AVX512>(k, ap, rs, cs, bp, t),
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, false) => {
                    for r in 0..block {
                        let ar = ap.offset(r as isize * rs);
                        x86::rows_avx512::<1>(k, ar, rs, cs, bp, t.add(r * ROW_WIDTH));
                    }
                }
                #[cfg(target_arch = "x86_64")]
                (_, true) => x86::rows_avx2::<ROWS_AVX2>(k, ap, rs, cs, bp, t),
                #[cfg(target_arch = "x86_64")]
                (_, false) => {
                    for r in 0..block {
                        let ar = ap.offset(r as isize * rs);
                        x86::rows_avx2::<1>(k, ar, rs, cs, bp, t.add(r * ROW_WIDTH));
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no narrow kernels off x86-64"),
            }
            for r in 0..block {
                std::ptr::copy_nonoverlapping(t.add(r * ROW_WIDTH), c.add((i + r) * n), n);
            }
        }
        i += block;
        if !report(&mut reported, i, m, done) {
            return false;
        }
    }
    true
}

/// Rows per block of the rows form: one accumulator each with AVX-512 (8: as many rows of
/// `a` as L1 has ways, when they are 4 KiB apart), two with AVX2 (12 of 16 registers).
const ROWS_AVX512: usize = 8;
const ROWS_AVX2: usize = 6;

/// Rows of `c` per block of the lanes form: two vectors of lanes.
const LANES_AVX512: usize = 32;
const LANES_AVX2: usize = 16;

/// Columns per group of the lanes form: two accumulators each (24 of 32 registers with
/// AVX-512, 12 of 16 with AVX2).
const GROUP_AVX512: usize = 12;
const GROUP_AVX2: usize = 6;

/// The lanes form (see the module's documentation).
///
/// # Safety
/// As for [`gemm_then`], with `k ≥ 1`, `m ≥ 1` and `a.row_stride == 1`.
#[allow(clippy::too_many_arguments)]
unsafe fn lanes(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: Operand<f32>,
    b: Operand<f32>,
    c: *mut f32,
    done: &mut dyn FnMut(usize, usize) -> bool,
) -> bool {
    let (lw, gmax) = match isa {
        Isa::Avx512 => (LANES_AVX512, GROUP_AVX512),
        _ => (LANES_AVX2, GROUP_AVX2),
    };
    // Groups of columns, each padded to a width its kernel takes, and `b`'s columns of each
    // copied into `k` rows of that width (zero padded).
    let mut groups = Vec::new();
    let mut j0 = 0;
    while j0 < n {
        let cols = gmax.min(n - j0);
        let width = group_width(isa, cols);
        let mut buf = Aligned::<f32>::new(k * width);
        let copy = buf.slice_mut();
        for p in 0..k {
            for j in 0..cols {
                // SAFETY: `b[p, j0 + j]` is inside `b`.
                copy[p * width + j] = unsafe {
                    *b.ptr
                        .offset(p as isize * b.row_stride + (j0 + j) as isize * b.col_stride)
                };
            }
        }
        groups.push((j0, cols, width, buf));
        j0 += cols;
    }
    // A block's lanes past `m`: `a`'s last rows copied into `k` rows of `lw` values.
    let mut tail_buf = Aligned::<f32>::new(if m.is_multiple_of(lw) { 0 } else { k * lw });
    let tail = tail_buf.slice_mut();
    let mut tile = [0f32; LANES_AVX512 * GROUP_AVX512];
    let t = tile.as_mut_ptr();
    let mut reported = 0;
    let mut i = 0;
    while i < m {
        let block = lw.min(m - i);
        let (ap, step) = if block == lw {
            // SAFETY: `a[i, 0]`, inside `a`.
            (unsafe { a.ptr.add(i) }, a.col_stride)
        } else {
            for p in 0..k {
                for r in 0..block {
                    // SAFETY: `a[i + r, p]`, inside `a`.
                    tail[p * lw + r] =
                        unsafe { *a.ptr.offset((i + r) as isize + p as isize * a.col_stride) };
                }
            }
            (tail.as_ptr(), lw as isize)
        };
        for (j0, cols, width, buf) in groups.iter_mut() {
            let (j0, cols, width) = (*j0, *cols, *width);
            let bp = buf.ptr().cast_const();
            // SAFETY: `ap` addresses `k` steps of `lw` values `step` apart, `bp` `k` rows of
            // `width`; the kernel writes `width` rows of `lw` values to the tile.
            unsafe {
                match (isa, width) {
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, 4) => x86::lanes_avx512::<4>(k, ap, step, bp, t),
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, 8) => x86::lanes_avx512::<8>(k, ap, step, bp, t),
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, _) => x86::lanes_avx512::<12>(k, ap, step, bp, t),
                    #[cfg(target_arch = "x86_64")]
                    (_, 2) => x86::lanes_avx2::<2>(k, ap, step, bp, t),
                    #[cfg(target_arch = "x86_64")]
                    (_, 4) => x86::lanes_avx2::<4>(k, ap, step, bp, t),
                    #[cfg(target_arch = "x86_64")]
                    (_, _) => x86::lanes_avx2::<6>(k, ap, step, bp, t),
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!("no narrow kernels off x86-64"),
                }
                // The tile holds column `j` of the block's rows at `j · lw`.
                for r in 0..block {
                    let row = c.add((i + r) * n + j0);
                    for j in 0..cols {
                        *row.add(j) = *t.add(j * lw + r);
                    }
                }
            }
        }
        i += block;
        if !report(&mut reported, i, m, done) {
            return false;
        }
    }
    true
}

/// The width a group of `cols` columns is padded to: a kernel's number of columns.
fn group_width(isa: Isa, cols: usize) -> usize {
    let step = match isa {
        Isa::Avx512 => 4,
        _ => 2,
    };
    cols.next_multiple_of(step)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Defines the rows form's kernel for `MR` rows: `t` gets row `r`'s 16 values at `16·r`.
    macro_rules! rows_kernel {
        ($name:ident, $feat:literal, $nv:literal, $w:literal, $vt:ty, $zero:ident, $load:ident,
         $store:ident, $set1:ident, $fma:ident) => {
            /// # Safety
            /// The CPU runs the instruction set; `a` addresses `MR` rows `rs` apart, each `k`
            /// values `cs` apart; `b` holds `k` rows of 16 values; `t` has room for `MR` rows.
            #[target_feature(enable = $feat)]
            #[allow(clippy::needless_range_loop)]
            pub(super) unsafe fn $name<const MR: usize>(
                k: usize,
                a: *const f32,
                rs: isize,
                cs: isize,
                b: *const f32,
                t: *mut f32,
            ) {
                let mut acc: [[$vt; $nv]; MR] = [[$zero(); $nv]; MR];
                // SAFETY: the caller's contract.
                unsafe {
                    let (mut ap, mut bp) = (a, b);
                    for _ in 0..k {
                        let mut bv: [$vt; $nv] = [$zero(); $nv];
                        for v in 0..$nv {
                            bv[v] = $load(bp.add(v * $w));
                        }
                        for r in 0..MR {
                            let x = $set1(*ap.offset(r as isize * rs));
                            for v in 0..$nv {
                                acc[r][v] = $fma(x, bv[v], acc[r][v]);
                            }
                        }
                        ap = ap.offset(cs);
                        bp = bp.add(16);
                    }
                    for r in 0..MR {
                        for v in 0..$nv {
                            $store(t.add(r * 16 + v * $w), acc[r][v]);
                        }
                    }
                }
            }
        };
    }

    /// Defines the lanes form's kernel for a group of `NJ` columns: `t` gets column `j` of the
    /// block's rows at `j · lanes`.
    macro_rules! lanes_kernel {
        ($name:ident, $feat:literal, $w:literal, $vt:ty, $zero:ident, $load:ident,
         $store:ident, $set1:ident, $fma:ident) => {
            /// # Safety
            /// The CPU runs the instruction set; `a` addresses `k` steps `step` apart of two
            /// vectors of consecutive values; `b` holds `k` rows of `NJ` values; `t` has room
            /// for `NJ` columns of two vectors.
            #[target_feature(enable = $feat)]
            #[allow(clippy::needless_range_loop)]
            pub(super) unsafe fn $name<const NJ: usize>(
                k: usize,
                a: *const f32,
                step: isize,
                b: *const f32,
                t: *mut f32,
            ) {
                let mut acc: [[$vt; 2]; NJ] = [[$zero(); 2]; NJ];
                // SAFETY: the caller's contract.
                unsafe {
                    let (mut ap, mut bp) = (a, b);
                    for _ in 0..k {
                        let x = [$load(ap), $load(ap.add($w))];
                        for j in 0..NJ {
                            let y = $set1(*bp.add(j));
                            acc[j][0] = $fma(x[0], y, acc[j][0]);
                            acc[j][1] = $fma(x[1], y, acc[j][1]);
                        }
                        ap = ap.offset(step);
                        bp = bp.add(NJ);
                    }
                    for j in 0..NJ {
                        $store(t.add(j * 2 * $w), acc[j][0]);
                        $store(t.add(j * 2 * $w + $w), acc[j][1]);
                    }
                }
            }
        };
    }

    rows_kernel!(
        rows_avx512,
        "avx512f",
        1,
        16,
        __m512,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
    rows_kernel!(
        rows_avx2,
        "avx2,fma",
        2,
        8,
        __m256,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
    lanes_kernel!(
        lanes_avx512,
        "avx512f",
        16,
        __m512,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
    lanes_kernel!(
        lanes_avx2,
        "avx2,fma",
        8,
        __m256,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm_packed::tests::operand;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|x| (((x + seed) * 7919 + seed * 31) % 1013) as f32 / 97.0 - 5.1)
            .collect()
    }

    /// The definition (one FMA chain per element, in order along `k`, from zero), as bits.
    fn reference(m: usize, k: usize, n: usize, a: Operand<f32>, b: Operand<f32>) -> Vec<u32> {
        let c = crate::gemm_packed::tests::reference(m, k, n, a, b);
        c.iter().map(|x| x.to_bits()).collect()
    }

    /// Every narrow variant this CPU runs, both forms (`a` row-major or transposed), `b`
    /// row-major or transposed, full blocks and tails of rows, every width up to
    /// [`NARROW_MAX_N`]: the bits of the definition, with every row reported once, in order.
    #[test]
    fn narrow_products_are_one_fma_chain_in_order_along_k() {
        let isas: Vec<Isa> = Isa::available()
            .into_iter()
            .filter(|i| matches!(i, Isa::Avx512 | Isa::Avx2))
            .collect();
        for &isa in &isas {
            for (m, k) in [(1, 1), (7, 3), (12, 33), (45, 130), (70, 9), (100, 257)] {
                for n in 1..=NARROW_MAX_N {
                    for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                        let (a, b) = (values(m * k, n), values(k * n, n + 7));
                        let pa = if a_t {
                            operand(&a, 1, m)
                        } else {
                            operand(&a, k, 1)
                        };
                        let pb = if b_t {
                            operand(&b, 1, k)
                        } else {
                            operand(&b, n, 1)
                        };
                        let mut c = vec![f32::NAN; m * n];
                        let mut covered = 0;
                        let mut done = |r0: usize, r1: usize| {
                            assert_eq!(r0, covered);
                            assert!(r1 - r0 >= DONE_ROWS.min(m - r0));
                            covered = r1;
                            true
                        };
                        // SAFETY: the operands address exactly the buffers.
                        let all =
                            unsafe { gemm_then(isa, m, k, n, pa, pb, c.as_mut_ptr(), &mut done) };
                        assert!(all);
                        assert_eq!(covered, m);
                        let got: Vec<u32> = c.iter().map(|x| x.to_bits()).collect();
                        assert_eq!(
                            got,
                            reference(m, k, n, pa, pb),
                            "{isa:?} {m}x{k}x{n} a_t {a_t} b_t {b_t}"
                        );
                    }
                }
            }
        }
    }

    /// The same bits as the packed GEMM's, whose kernels are the other half of `f32` products.
    #[test]
    fn narrow_products_give_the_packed_gemms_bits() {
        let Some(isa) = isa_for(10) else {
            return; // No vector FMA kernel on this CPU.
        };
        let (m, k, n) = (300, 1024, 10);
        let (a, b) = (values(k * m, 3), values(k * n, 4));
        // `hᵀ·d`: `a` transposed.
        let (pa, pb) = (operand(&a, 1, m), operand(&b, n, 1));
        let mut narrow = vec![0f32; m * n];
        let mut packed = vec![1f32; m * n];
        // SAFETY: the operands address exactly the buffers.
        unsafe {
            gemm_then(isa, m, k, n, pa, pb, narrow.as_mut_ptr(), &mut |_, _| true);
            crate::gemm_packed::gemm(isa, m, k, n, pa, pb, packed.as_mut_ptr());
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&narrow), bits(&packed));
    }

    /// `done` returning `false` stops the product.
    #[test]
    fn a_refusing_epilogue_stops_the_product() {
        let Some(isa) = isa_for(3) else {
            return;
        };
        let (m, k, n) = (200, 5, 3);
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let mut c = vec![0f32; m * n];
        let mut calls = 0;
        // SAFETY: the operands address exactly the buffers.
        let all = unsafe {
            gemm_then(
                isa,
                m,
                k,
                n,
                operand(&a, k, 1),
                operand(&b, n, 1),
                c.as_mut_ptr(),
                &mut |_, _| {
                    calls += 1;
                    false
                },
            )
        };
        assert!(!all);
        assert_eq!(calls, 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(48))]
        /// Generated shapes (every width up to [`NARROW_MAX_N`], odd `k`, `a` and `b`
        /// row-major, transposed or with padded strides, as W5's `h·w2` and `hᵀ·d` read
        /// them): the narrow kernels give the bits of the packed GEMM forced on the same
        /// product.
        #[test]
        fn generated_narrow_products_give_the_packed_gemms_bits(
            m in 1usize..90,
            k in 1usize..300,
            n in 1usize..=NARROW_MAX_N,
            a_form in 0usize..3,
            b_form in 0usize..3,
            seed in 0usize..1000,
        ) {
            let Some(isa) = isa_for(n) else {
                return Ok(()); // No vector FMA kernel on this CPU.
            };
            // Form 0 row-major, 1 transposed, 2 row-major with 3 unused elements per row.
            let layout = |form: usize, rows: usize, cols: usize| match form {
                0 => (rows * cols, cols, 1),
                1 => (rows * cols, 1, rows),
                _ => (rows * (cols + 3), cols + 3, 1),
            };
            let (la, ra, ca) = layout(a_form, m, k);
            let (lb, rb, cb) = layout(b_form, k, n);
            let (a, b) = (values(la, seed), values(lb, seed + 11));
            let (pa, pb) = (operand(&a, ra, ca), operand(&b, rb, cb));
            let mut narrow = vec![f32::NAN; m * n];
            let mut packed = vec![f32::NAN; m * n];
            // SAFETY: the operands address exactly the buffers.
            unsafe {
                gemm_then(isa, m, k, n, pa, pb, narrow.as_mut_ptr(), &mut |_, _| true);
                crate::gemm_packed::gemm(isa, m, k, n, pa, pb, packed.as_mut_ptr());
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            proptest::prop_assert_eq!(bits(&narrow), bits(&packed));
            proptest::prop_assert_eq!(bits(&narrow), reference(m, k, n, pa, pb));
        }
    }
}
