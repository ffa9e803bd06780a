//! Counter-based random numbers: Philox4x32-10 and the language's uniform and normal draws.
//!
//! The value of element `n` (its row-major linear index) of `rand_uniform(seed, shape)` or
//! `rand_normal(seed, shape)` depends on `seed` and `n` alone, so any sharding, thread count
//! or re-execution gives the same numbers. The generator is Philox4x32-10 (Salmon, Moraes,
//! Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11), with
//! counter `(n mod 2^32, n div 2^32, 0, 0)` and key `(seed mod 2^32, seed div 2^32)`.
//! Generated code must produce bit-identical results, so it should either call these
//! functions or reproduce them operation for operation (including the f64 `ln`, `sqrt` and
//! `cos` of [`normal`]).

/// The multiplier applied to counter word 0 in each Philox round.
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// The multiplier applied to counter word 2 in each Philox round.
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// The Weyl increment of key word 0 between rounds (the golden ratio).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// The Weyl increment of key word 1 between rounds (sqrt(3) - 1).
pub const PHILOX_W1: u32 = 0xBB67_AE85;

/// 2^-24, the spacing of the 24-bit uniform grid.
const TWO_POW_NEG_24: f64 = 1.0 / 16_777_216.0;

/// The high and low 32-bit halves of the 64-bit product `a * b`.
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32 round.
fn round(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mulhilo(PHILOX_M0, ctr[0]);
    let (hi1, lo1) = mulhilo(PHILOX_M1, ctr[2]);
    [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0]
}

/// The Philox4x32-10 block function: ten rounds, with the key bumped between rounds.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut ctr = round(ctr, key);
    let mut key = key;
    for _ in 1..10 {
        key = [
            key[0].wrapping_add(PHILOX_W0),
            key[1].wrapping_add(PHILOX_W1),
        ];
        ctr = round(ctr, key);
    }
    ctr
}

/// The four Philox words of element `n` under `seed`.
pub fn words(seed: u64, n: u64) -> [u32; 4] {
    philox4x32_10(
        [n as u32, (n >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// Element `n` of `rand_uniform(seed, ...)`: `(w0 >> 8) * 2^-24`, in `[0, 1)`.
pub fn uniform(seed: u64, n: u64) -> f32 {
    let w = words(seed, n);
    ((w[0] >> 8) as f64 * TWO_POW_NEG_24) as f32
}

/// Element `n` of `rand_normal(seed, ...)`: the Box-Muller transform
/// `sqrt(-2 ln u1) * cos(2 pi u2)` with `u1 = ((w0 >> 8) + 1) * 2^-24` (in `(0, 1]`, so the
/// logarithm is finite) and `u2 = (w1 >> 8) * 2^-24`, computed in f64 and rounded to f32
/// (`ln` and `cos` are `libm`'s under `--portable-math`, [`crate::portable`]).
pub fn normal(seed: u64, n: u64) -> f32 {
    let w = words(seed, n);
    let u1 = ((w[0] >> 8) as f64 + 1.0) * TWO_POW_NEG_24;
    let u2 = (w[1] >> 8) as f64 * TWO_POW_NEG_24;
    use crate::portable::FlowMath;
    ((-2.0 * u1.flow_ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).flow_cos()) as f32
}

/// Fills `out[i]` with `uniform(seed, offset + i)`; `offset` is the linear index of `out[0]`.
pub fn fill_uniform(seed: u64, out: &mut [f32], offset: u64) {
    for (i, x) in out.iter_mut().enumerate() {
        *x = uniform(seed, offset.wrapping_add(i as u64));
    }
}

/// Fills `out[i]` with `normal(seed, offset + i)`; `offset` is the linear index of `out[0]`.
pub fn fill_normal(seed: u64, out: &mut [f32], offset: u64) {
    for (i, x) in out.iter_mut().enumerate() {
        *x = normal(seed, offset.wrapping_add(i as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    fn first4(f: fn(u64, &mut [f32], u64), seed: u64) -> [f32; 4] {
        let mut out = [0.0; 4];
        f(seed, &mut out, 0);
        out
    }

    fn assert_close(got: [f32; 4], want: [f32; 4], tol: f32) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn conformance_known_answers() {
        assert_close(
            first4(fill_uniform, 0),
            [0.39904642, 0.97224116, 0.019449413, 0.78736776],
            1e-7,
        );
        assert_close(
            first4(fill_uniform, 42),
            [0.61295986, 0.98771864, 0.8258668, 0.7295992],
            1e-7,
        );
        assert_close(
            first4(fill_normal, 0),
            [0.9911375, -0.15363811, -1.1863568, -0.5954068],
            1e-6,
        );
    }

    #[test]
    fn values_depend_on_index_only() {
        let mut whole = vec![0.0; 100];
        fill_uniform(9, &mut whole, 0);
        let mut part = vec![0.0; 10];
        fill_uniform(9, &mut part, 37);
        assert_eq!(&whole[37..47], &part[..]);
        assert_eq!(uniform(9, 37), whole[37]);
        fill_normal(9, &mut whole, 0);
        fill_normal(9, &mut part, 37);
        assert_eq!(&whole[37..47], &part[..]);
    }

    #[test]
    fn seed_and_index_halves_are_both_used() {
        // A negative language seed is reinterpreted as u64; both key words matter.
        let neg = (-1i64) as u64;
        assert_ne!(uniform(neg, 0), uniform(u32::MAX as u64, 0));
        assert_ne!(uniform(0, 1 << 32), uniform(0, 0));
        assert_eq!(words(7, 3), philox4x32_10([3, 0, 0, 0], [7, 0]));
        assert_eq!(
            words(0x1_0000_0002, 0x5_0000_0006),
            philox4x32_10([6, 5, 0, 0], [2, 1])
        );
    }

    #[test]
    fn ranges_and_moments() {
        let n = 20_000;
        let mut u = vec![0.0; n];
        fill_uniform(3, &mut u, 0);
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = u.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "uniform mean {mean}");
        let mut z = vec![0.0; n];
        fill_normal(3, &mut z, 0);
        assert!(z.iter().all(|x| x.is_finite()));
        let mean = z.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = z.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "normal mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "normal variance {var}");
    }
}
