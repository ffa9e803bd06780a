//! Vectorisable math: `exp` on `f32` as a range reduction and a polynomial, written as a
//! fixed sequence of IEEE operations (no fused multiply-add, no table) that the native
//! backend emits instruction for instruction in scalar and in SIMD code. The reference
//! interpreter calls [`exp_f32`], so both backends agree bit for bit.
//!
//! Method (after Cephes' `expf`): clamp `x` to `[EXP_LO, EXP_HI]`; `n = x·log2(e)` rounded
//! to the nearest integer (by adding and subtracting `1.5·2^23`); `r = x − n·ln2` with `ln2` split in two parts so that `n·LN2_HI` is exact; `e^r` by a
//! degree-7 polynomial `1 + r + r²·P(r)` on `|r| ≤ ln2/2`; then `e^r·2^n` as two exact
//! scalings by `2^(n>>1)` and `2^(n − (n>>1))`, so results that overflow become `inf` and
//! results below the normal range are rounded as subnormals or become 0.
//!
//! Accuracy (tested below against `f64::exp` over the whole range): at most 2 ulp where the
//! result is normal; `exp(±0) = 1`, `exp(-inf) = 0`, `exp(inf) = inf`, `exp(NaN)` is NaN.

/// Inputs above this give `inf` (`e^89 > f32::MAX`).
pub const EXP_HI: f32 = 89.0;
/// Inputs below this give 0 (`e^-104 < 2^-150`, under half the least subnormal).
pub const EXP_LO: f32 = -104.0;
/// `1.5·2^23`: adding it rounds a float of magnitude below `2^22` to an integer.
pub const EXP_MAGIC: f32 = 12_582_912.0;
/// `log2(e)`.
pub const LOG2E: f32 = std::f32::consts::LOG2_E;
/// The high part of `ln 2` (exactly representable with few bits, so `n·LN2_HI` is exact).
pub const LN2_HI: f32 = 0.693_359_4;
/// `ln 2 − LN2_HI`.
pub const LN2_LO: f32 = -2.121_944_4e-4;
/// The coefficients of `P`, highest degree first (Cephes' `expf`).
pub const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `e^x` on `f32`; see the module documentation for the method and its accuracy.
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    let x = if x > EXP_HI { EXP_HI } else { x };
    let x = if x < EXP_LO { EXP_LO } else { x };
    // `x·log2(e)` rounded to the nearest integer by adding 1.5·2^23 (whose unit in the last
    // place is 1): `fl` as a float, `n` from the bits.
    let t = x * LOG2E + EXP_MAGIC;
    let fl = t - EXP_MAGIC;
    let r = x - fl * LN2_HI;
    let r = r - fl * LN2_LO;
    let mut p = EXP_P[0];
    for c in &EXP_P[1..] {
        p = p * r + *c;
    }
    let r2 = r * r;
    let y = p * r2 + r + 1.0;
    // `n` is in [-150, 128]; from a NaN input it is garbage, and the result NaN anyway.
    let n = (t.to_bits() as i32).wrapping_sub(EXP_MAGIC.to_bits() as i32);
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    y * s1 * s2
}

/// Flow's `exp` in either float type: [`exp_f32`] for `f32`, the standard library's for `f64`
/// (no `f64` workload needs a vector `exp` yet). Every evaluator of Flow code calls this.
pub trait FlowExp {
    fn flow_exp(self) -> Self;
}

impl FlowExp for f32 {
    fn flow_exp(self) -> f32 {
        exp_f32(self)
    }
}

impl FlowExp for f64 {
    fn flow_exp(self) -> f64 {
        crate::portable::FlowMath::flow_exp_libm(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `a` and the correctly rounded `want`.
    fn ulps(a: f32, want: f64) -> f64 {
        let w = want as f32;
        let ulp = if w == 0.0 {
            f32::from_bits(1) as f64
        } else {
            (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64
        };
        (a as f64 - want).abs() / ulp
    }

    #[test]
    fn exp_is_within_two_ulp_where_the_result_is_normal() {
        let mut worst: (f64, f32) = (0.0, 0.0);
        let mut x = -87.3f32;
        while x < 88.7 {
            for dx in [0.0f32, 1e-3, 0.37, 0.5] {
                let v = x + dx;
                let e = ulps(exp_f32(v), (v as f64).exp());
                if e > worst.0 {
                    worst = (e, v);
                }
            }
            x += 0.0131;
        }
        assert!(worst.0 <= 2.0, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-0.0), 1.0);
        assert!(ulps(exp_f32(1.0), 1f64.exp()) <= 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert!(exp_f32(88.7).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
        // Subnormal results are within one subnormal step of the true value.
        for x in [-88.0f32, -95.5, -100.0, -103.0] {
            let e = ulps(exp_f32(x), (x as f64).exp());
            assert!(e <= 1.0, "{e} ulp at {x}");
        }
    }
}
