//! The x86-64 micro-kernels of the packed GEMM (`gemm_packed`): AVX-512 and AVX2+FMA, for
//! `f32` and `f64`. Each keeps an `MR×NR` tile of `c` in vector registers and, per step of
//! `k`, loads `NR` packed values of `b`, broadcasts each of the `MR` packed values of `a` and
//! adds the products with one fused multiply-add per vector, so each element is one chain of
//! FMAs in order along `k` (the contract of `gemm_packed`).

use std::arch::x86_64::*;

/// Defines a micro-kernel (signature of `gemm_packed::Micro`) over `$mr` rows of `$nv`
/// vectors of `$w` lanes.
macro_rules! micro {
    ($name:ident, $t:ty, $feat:literal, $mr:literal, $nv:literal, $w:literal, $vt:ty,
     $zero:ident, $load:ident, $store:ident, $set1:ident, $fma:ident) => {
        /// A micro-kernel of the packed GEMM.
        ///
        /// # Safety
        /// The CPU must support the kernel's instruction set; `a` holds `kc` steps of `MR`
        /// values, `b` `kc` steps of `NR`, and `c` an `MR×NR` tile of row stride `ldc`.
        #[target_feature(enable = $feat)]
        #[allow(clippy::needless_range_loop)]
        pub(crate) unsafe fn $name(
            kc: usize,
            a: *const $t,
            b: *const $t,
            c: *mut $t,
            ldc: usize,
            resume: bool,
        ) {
            let mut acc: [[$vt; $nv]; $mr] = [[$zero(); $nv]; $mr];
            // SAFETY: the caller's contract.
            unsafe {
                if resume {
                    for i in 0..$mr {
                        for v in 0..$nv {
                            acc[i][v] = $load(c.add(i * ldc + v * $w));
                        }
                    }
                }
                let (mut ap, mut bp) = (a, b);
                for _ in 0..kc {
                    let mut bv: [$vt; $nv] = [$zero(); $nv];
                    for v in 0..$nv {
                        bv[v] = $load(bp.add(v * $w));
                    }
                    for i in 0..$mr {
                        let ai = $set1(*ap.add(i));
                        for v in 0..$nv {
                            acc[i][v] = $fma(ai, bv[v], acc[i][v]);
                        }
                    }
                    ap = ap.add($mr);
                    bp = bp.add($nv * $w);
                }
                for i in 0..$mr {
                    for v in 0..$nv {
                        $store(c.add(i * ldc + v * $w), acc[i][v]);
                    }
                }
            }
        }
    };
}

micro!(
    f32_avx512,
    f32,
    "avx512f",
    12,
    2,
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps
);
micro!(
    f64_avx512,
    f64,
    "avx512f",
    12,
    2,
    8,
    __m512d,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd
);
micro!(
    f32_avx2,
    f32,
    "avx2,fma",
    6,
    2,
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps
);
micro!(
    f64_avx2,
    f64,
    "avx2,fma",
    6,
    2,
    4,
    __m256d,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_set1_pd,
    _mm256_fmadd_pd
);
