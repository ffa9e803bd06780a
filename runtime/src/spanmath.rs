//! Math over spans: `exp` on `f32` over a whole slice, compiled three times — for AVX-512F,
//! for AVX2 and for the baseline target — from the same source, [`fastmath::exp_f32`], and
//! chosen at run time by CPU detection (as `matrixmultiply` chooses its GEMM kernel). The
//! native backend's kernels call [`flow_exp_span_f32`] on the rows a shard wrote, where the
//! body of a map is `exp(…)`: LLVM vectorizes the loop 16 or 8 lanes wide, where the
//! kernels' own code (Cranelift, 128-bit vectors only) runs 4.
//!
//! **Same bits everywhere.** Every variant computes each element with exactly the IEEE
//! operations of [`fastmath::exp_f32`], in the same order: LLVM never contracts a multiply
//! and an add into a fused multiply-add nor reassociates without fast-math flags, and
//! vectorizing lane-wise operations does not change their results. So the span equals
//! [`fastmath::exp_f32`] element by element (tested below on every variant this CPU runs),
//! which the interpreter calls, on every machine whatever its vector unit. Under
//! `--portable-math` ([`crate::portable`]) the baseline variant runs all the same.

use crate::fastmath;

/// `xs[i] = exp_f32(xs[i])` for every element, with the widest variant this CPU runs (the
/// baseline one under `--portable-math`).
pub fn exp_f32_span(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if !crate::portable::portable_math() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { exp_span_avx512(xs) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { exp_span_avx2(xs) };
        }
    }
    exp_span(xs)
}

/// The loop every variant compiles: one [`fastmath::exp_f32`] per element.
#[inline(always)]
fn exp_span(xs: &mut [f32]) {
    for x in xs {
        *x = fastmath::exp_f32(*x);
    }
}

/// [`exp_span`] for AVX-512F (16 lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_span_avx512(xs: &mut [f32]) {
    exp_span(xs);
}

/// [`exp_span`] for AVX2 (8 lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exp_span_avx2(xs: &mut [f32]) {
    exp_span(xs);
}

/// [`exp_f32_span`] over `n` elements at `ptr`, for kernels (symbol `flow_exp_span_f32`).
///
/// # Safety
/// `ptr` must point to `n` initialized, writable `f32`s that nothing else accesses during
/// the call; `n <= 0` does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_exp_span_f32(ptr: *mut f32, n: i64) {
    if n <= 0 || ptr.is_null() {
        return;
    }
    // SAFETY: the caller's contract.
    let xs = unsafe { std::slice::from_raw_parts_mut(ptr, n as usize) };
    exp_f32_span(xs);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs over the whole range: specials, the clamps' edges, subnormal results, and a
    /// dense sweep of bit patterns.
    fn inputs() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            fastmath::EXP_HI,
            fastmath::EXP_LO,
            88.72,
            -87.33,
            -100.0,
            -103.9,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
        ];
        // Every 4099th bit pattern: all exponents, both signs, NaN payloads.
        v.extend((0..u32::MAX / 4099).map(|k| f32::from_bits(k * 4099)));
        // Odd lengths exercise the variants' scalar tails.
        v.push(1.5);
        v
    }

    fn check(name: &str, f: &dyn Fn(&mut [f32])) {
        let xs = inputs();
        for len in [xs.len(), 1, 7, 17, 31] {
            let mut got = xs[..len].to_vec();
            f(&mut got);
            for (x, y) in xs.iter().zip(&got) {
                let want = fastmath::exp_f32(*x);
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "{name}: exp({x:e}) = {y:e}, the scalar gives {want:e}"
                );
            }
        }
    }

    #[test]
    fn every_variant_gives_the_scalar_bits() {
        check("dispatched", &exp_f32_span);
        check("baseline", &exp_span);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                check("avx2", &|xs| unsafe { exp_span_avx2(xs) });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                check("avx512f", &|xs| unsafe { exp_span_avx512(xs) });
            }
        }
        let mut xs = [0.5f32, -2.0, 3.0];
        // SAFETY: three writable floats; a non-positive length does nothing.
        unsafe {
            flow_exp_span_f32(xs.as_mut_ptr(), 0);
            assert_eq!(xs, [0.5, -2.0, 3.0]);
            flow_exp_span_f32(xs.as_mut_ptr(), 3);
        }
        assert_eq!(
            xs.map(f32::to_bits),
            [0.5f32, -2.0, 3.0].map(|x| fastmath::exp_f32(x).to_bits())
        );
    }
}
