//! Folds of `f32` rows into eight `f64` lanes for a user monoid whose state is a sum of
//! powers of the element (W2's `(n, s, ss)`: `wrap(x) = (1.0, x as f64, (x as f64)²)`,
//! `combine` adding field by field), in AVX-512F or AVX2 intrinsics chosen at run time by
//! CPU detection. This is what the `lanes` pass makes of such a reduction (`reduce [B, 8]
//! over [M] … reads(x[S·i0 + 8·i2 + i1])`, eight lanes for eight-byte states); the native
//! backend's kernels call it over a shard's rows (`codegen/kernel/span.rs`), where
//! Cranelift's code holds two `f64` lanes per 128-bit vector and so needs four vectors per
//! field where AVX-512 needs one.
//!
//! **Same bits everywhere.** Each lane folds its elements in ascending `j` from `+0.0`, as
//! the interpreter does (`acc = combine(acc, wrap(x))`): per field one IEEE addition
//! `acc + t`, `t` being the field's constant, `x as f64` or `(x as f64) * (x as f64)`
//! (exact conversion, one rounded product, no fused multiply-add). The vector variants
//! choose each field's `t` with bit selects, not arithmetic, so every variant gives the bits
//! of the scalar [`moments_fold_reference`] (tested on every variant this CPU runs), on
//! every machine.

use crate::spanrows::{lane_fold_is_vectorized, LaneShape};

/// What one field of the state adds per element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Term {
    /// A constant (the count's `1.0`).
    Const(f64),
    /// The element, widened: `x as f64`.
    X,
    /// The widened element squared: `(x as f64) * (x as f64)`.
    Square,
}

impl Term {
    /// The interpreter's value of the field's wrap at element `x`.
    pub fn of(self, x: f32) -> f64 {
        match self {
            Term::Const(c) => c,
            Term::X => x as f64,
            Term::Square => (x as f64) * (x as f64),
        }
    }

    /// The code of the term in [`flow_moments_fold_f32`]'s `kinds` (two bits per field).
    pub fn code(self) -> i64 {
        match self {
            Term::Const(_) => 0,
            Term::X => 1,
            Term::Square => 2,
        }
    }
}

/// The lanes the vector variants run (one AVX-512 or two AVX2 registers of `f64`), with
/// `lane_stride == LANES`; other shapes run the scalar loop.
pub const LANES: usize = 8;

/// The most fields a state may have.
pub const MAX_FIELDS: usize = 4;

/// `outs[k][r·lanes + l] = Σ` (in ascending `j`, from `+0.0`) of
/// `terms[k].of(x[r·x_stride + lane_stride·j + l])` for `j < m`.
///
/// # Panics
/// If there are more than [`MAX_FIELDS`] terms, not one output per term, or the buffers are
/// shorter than the shape needs.
pub fn moments_fold_f32(outs: &mut [&mut [f64]], x: &[f32], s: LaneShape, terms: &[Term]) {
    assert!(
        terms.len() <= MAX_FIELDS && outs.len() == terms.len(),
        "moments_fold_f32: one output per term, at most {MAX_FIELDS}"
    );
    assert!(
        outs.iter().all(|o| o.len() >= s.rows * s.lanes),
        "moments_fold_f32: output too short"
    );
    assert!(
        x.len() >= s.input_len(),
        "moments_fold_f32: input too short"
    );
    #[cfg(target_arch = "x86_64")]
    if s.lanes == LANES && s.lane_stride == LANES && lane_fold_is_vectorized() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the lengths were checked above.
            return unsafe { lanes8::avx512(outs, x, s, terms) };
        }
        // SAFETY: the CPU has AVX2 (`lane_fold_is_vectorized`); the lengths were checked.
        return unsafe { lanes8::avx2(outs, x, s, terms) };
    }
    moments_fold_reference(outs, x, s, terms)
}

/// The scalar definition of [`moments_fold_f32`]: the interpreter's fold, lane by lane.
pub fn moments_fold_reference(outs: &mut [&mut [f64]], x: &[f32], s: LaneShape, terms: &[Term]) {
    for (out, term) in outs.iter_mut().zip(terms) {
        for r in 0..s.rows {
            for l in 0..s.lanes {
                let mut acc = 0.0f64;
                for j in 0..s.m {
                    acc += term.of(x[r * s.x_stride + s.lane_stride * j + l]);
                }
                out[r * s.lanes + l] = acc;
            }
        }
    }
}

/// Eight `f64` lanes in intrinsics, a row at a time: per `j`, the eight elements widened
/// once, squared once, and each field's accumulator added its term, chosen by a bit select
/// with a mask fixed for the whole call (LLVM does not vectorize the scalar loop: its lanes
/// are interleaved and its fold is strict).
#[cfg(target_arch = "x86_64")]
mod lanes8 {
    use super::{LaneShape, Term, MAX_FIELDS};
    use std::arch::x86_64::*;

    /// Per field: the constant, whether the term is `x`, whether it is `x²`.
    fn plan(terms: &[Term]) -> ([f64; MAX_FIELDS], [bool; MAX_FIELDS], [bool; MAX_FIELDS]) {
        let mut c = [0.0; MAX_FIELDS];
        let (mut is_x, mut is_sq) = ([false; MAX_FIELDS], [false; MAX_FIELDS]);
        for (k, t) in terms.iter().enumerate() {
            match t {
                Term::Const(v) => c[k] = *v,
                Term::X => is_x[k] = true,
                Term::Square => is_sq[k] = true,
            }
        }
        (c, is_x, is_sq)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(outs: &mut [&mut [f64]], x: &[f32], s: LaneShape, t: &[Term]) {
        match t.len() {
            0 => {}
            1 => fold512::<1>(outs, x, s, t),
            2 => fold512::<2>(outs, x, s, t),
            3 => fold512::<3>(outs, x, s, t),
            _ => fold512::<4>(outs, x, s, t),
        }
    }

    #[target_feature(enable = "avx512f")]
    fn fold512<const F: usize>(outs: &mut [&mut [f64]], x: &[f32], s: LaneShape, t: &[Term]) {
        let (c, is_x, is_sq) = plan(t);
        let (mut cv, mut mx, mut msq) = ([_mm512_setzero_pd(); F], [0u8; F], [0u8; F]);
        for k in 0..F {
            cv[k] = _mm512_set1_pd(c[k]);
            mx[k] = if is_x[k] { 0xff } else { 0 };
            msq[k] = if is_sq[k] { 0xff } else { 0 };
        }
        let xp = x.as_ptr();
        for r in 0..s.rows {
            let mut acc = [_mm512_setzero_pd(); F];
            for j in 0..s.m {
                // SAFETY: in bounds (the caller checked the input's length).
                let v = unsafe { _mm256_loadu_ps(xp.add(r * s.x_stride + 8 * j)) };
                let v = _mm512_cvtps_pd(v);
                let sq = _mm512_mul_pd(v, v);
                for k in 0..F {
                    let term = _mm512_mask_blend_pd(mx[k], cv[k], v);
                    let term = _mm512_mask_blend_pd(msq[k], term, sq);
                    acc[k] = _mm512_add_pd(acc[k], term);
                }
            }
            for k in 0..F {
                // SAFETY: in bounds (the caller checked the outputs' lengths).
                unsafe { _mm512_storeu_pd(outs[k].as_mut_ptr().add(r * 8), acc[k]) };
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(outs: &mut [&mut [f64]], x: &[f32], s: LaneShape, t: &[Term]) {
        match t.len() {
            0 => {}
            1 => fold256::<1>(outs, x, s, t),
            2 => fold256::<2>(outs, x, s, t),
            3 => fold256::<3>(outs, x, s, t),
            _ => fold256::<4>(outs, x, s, t),
        }
    }

    #[target_feature(enable = "avx2")]
    fn fold256<const F: usize>(outs: &mut [&mut [f64]], x: &[f32], s: LaneShape, t: &[Term]) {
        let (c, is_x, is_sq) = plan(t);
        let (mut cv, mut mx, mut msq) = (
            [_mm256_setzero_pd(); F],
            [_mm256_setzero_pd(); F],
            [_mm256_setzero_pd(); F],
        );
        let ones = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
        for k in 0..F {
            cv[k] = _mm256_set1_pd(c[k]);
            if is_x[k] {
                mx[k] = ones;
            }
            if is_sq[k] {
                msq[k] = ones;
            }
        }
        let xp = x.as_ptr();
        for r in 0..s.rows {
            let mut acc = [[_mm256_setzero_pd(); 2]; F];
            for j in 0..s.m {
                let p = r * s.x_stride + 8 * j;
                // SAFETY: in bounds (the caller checked the input's length).
                let (v0, v1) = unsafe { (_mm_loadu_ps(xp.add(p)), _mm_loadu_ps(xp.add(p + 4))) };
                let v = [_mm256_cvtps_pd(v0), _mm256_cvtps_pd(v1)];
                for h in 0..2 {
                    let sq = _mm256_mul_pd(v[h], v[h]);
                    for k in 0..F {
                        let term = _mm256_blendv_pd(cv[k], v[h], mx[k]);
                        let term = _mm256_blendv_pd(term, sq, msq[k]);
                        acc[k][h] = _mm256_add_pd(acc[k][h], term);
                    }
                }
            }
            for k in 0..F {
                let o = outs[k].as_mut_ptr();
                // SAFETY: in bounds (the caller checked the outputs' lengths).
                unsafe {
                    _mm256_storeu_pd(o.add(r * 8), acc[k][0]);
                    _mm256_storeu_pd(o.add(r * 8 + 4), acc[k][1]);
                }
            }
        }
    }
}

/// [`moments_fold_f32`] for kernels (symbol `flow_moments_fold_f32`): `fields` outputs
/// `o0`…`o3` (the unused ones may be null), field `k`'s term in bits `2k..2k + 2` of
/// `kinds` (0 a constant, `c0`…`c3`; 1 `x`; 2 `x²`).
///
/// # Safety
/// `x` must hold `(rows - 1)·x_stride + lane_stride·(m - 1) + lanes` initialized `f32`s
/// (when `m > 0`), and each of the first `fields` outputs `rows·lanes` writable `f64`s, not
/// overlapping each other or `x`; `fields` must be at most 4; a non-positive `rows`, `lanes`
/// or `fields` does nothing.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flow_moments_fold_f32(
    o0: *mut f64,
    o1: *mut f64,
    o2: *mut f64,
    o3: *mut f64,
    x: *const f32,
    rows: i64,
    x_stride: i64,
    lanes: i64,
    lane_stride: i64,
    m: i64,
    fields: i64,
    kinds: i64,
    c0: f64,
    c1: f64,
    c2: f64,
    c3: f64,
) {
    let Some(s) = LaneShape::from_args(rows, x_stride, lanes, lane_stride, m) else {
        return;
    };
    if fields <= 0 {
        return;
    }
    let fields = (fields as usize).min(MAX_FIELDS);
    let consts = [c0, c1, c2, c3];
    let terms: Vec<Term> = (0..fields)
        .map(|k| match (kinds >> (2 * k)) & 3 {
            0 => Term::Const(consts[k]),
            1 => Term::X,
            _ => Term::Square,
        })
        .collect();
    // SAFETY: the caller's contract.
    unsafe {
        let mut outs: Vec<&mut [f64]> = [o0, o1, o2, o3][..fields]
            .iter()
            .map(|&o| std::slice::from_raw_parts_mut(o, s.rows * s.lanes))
            .collect();
        moments_fold_f32(&mut outs, s.input(x), s, &terms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spanrows::tests::lane_case;

    type Variant = dyn Fn(&mut [&mut [f64]], &[f32], LaneShape, &[Term]);

    /// Every field list of one to four terms drawn from the three kinds (a constant of 1, of
    /// -0.5 and a huge one among them), over rows of one lane-vector, tails of `m`, no
    /// elements, strided rows and the specials of `inputs` (NaN, infinities, signed zeros,
    /// subnormals, `f32::MAX`, whose square overflows nothing in `f64`).
    fn check(name: &str, f: &Variant, shapes: &[(usize, usize, usize, usize)]) {
        let term_lists: Vec<Vec<Term>> = vec![
            vec![Term::Const(1.0), Term::X, Term::Square],
            vec![Term::X],
            vec![Term::Square, Term::Square],
            vec![Term::Const(-0.5), Term::Square, Term::X, Term::Const(1e300)],
            vec![Term::Const(1.0)],
        ];
        for &(rows, lanes, lane_stride, m) in shapes {
            for pad in [0, 5] {
                let (s, mut x) = lane_case(rows, lanes, lane_stride, m, pad);
                if x.len() > 2 * lane_stride {
                    x[0] = -0.0;
                    x[lane_stride] = -0.0;
                    x[1] = f32::from_bits(1); // the smallest subnormal
                }
                for terms in &term_lists {
                    let n = rows * lanes;
                    let mut want = vec![vec![7.0f64; n]; terms.len()];
                    let mut w: Vec<&mut [f64]> = want.iter_mut().map(|v| &mut v[..]).collect();
                    moments_fold_reference(&mut w, &x, s, terms);
                    let mut got = vec![vec![7.0f64; n]; terms.len()];
                    let mut o: Vec<&mut [f64]> = got.iter_mut().map(|v| &mut v[..]).collect();
                    f(&mut o, &x, s, terms);
                    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                        for (i, (g, w)) in g.iter().zip(w).enumerate() {
                            assert_eq!(
                                g.to_bits(),
                                w.to_bits(),
                                "{name} {terms:?} {s:?}: field {k} [{i}] = {g:e}, want {w:e}"
                            );
                        }
                    }
                }
            }
        }
    }

    const SHAPES: [(usize, usize, usize, usize); 6] = [
        (1, 8, 8, 1),
        (3, 8, 8, 256),
        (2, 8, 8, 7),
        (5, 8, 8, 0),
        (1, 8, 8, 1031),
        (4, 8, 8, 33),
    ];

    #[test]
    fn every_variant_gives_the_reference_bits() {
        let mut shapes = SHAPES.to_vec();
        shapes.extend([(2, 5, 8, 9), (3, 4, 4, 6)]);
        check("dispatched", &moments_fold_f32, &shapes);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2; the shapes fit the buffers `check` makes.
                check(
                    "avx2",
                    &|o, x, s, t| unsafe { lanes8::avx2(o, x, s, t) },
                    &SHAPES,
                );
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F; the shapes fit the buffers `check` makes.
                check(
                    "avx512f",
                    &|o, x, s, t| unsafe { lanes8::avx512(o, x, s, t) },
                    &SHAPES,
                );
            }
        }
    }

    #[test]
    fn the_symbol_follows_its_contract() {
        // Two rows of two elements, one lane each: (count, sum, sum of squares).
        let x = [1.0f32, -2.0, 3.0, 0.5];
        let (mut n, mut s, mut ss) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
        let kinds = 1 << 2 | 2 << 4;
        // SAFETY: the buffers hold what the shape needs; unused outputs are null.
        unsafe {
            let null = std::ptr::null_mut();
            let (pn, ps, pss) = (n.as_mut_ptr(), s.as_mut_ptr(), ss.as_mut_ptr());
            let xp = x.as_ptr();
            flow_moments_fold_f32(
                pn, ps, pss, null, xp, 2, 2, 1, 1, 2, 3, kinds, 1.0, 0., 0., 0.,
            );
            // No rows or no fields: nothing written.
            flow_moments_fold_f32(
                pn, ps, pss, null, xp, 0, 2, 1, 1, 2, 3, kinds, 9.0, 0., 0., 0.,
            );
            flow_moments_fold_f32(
                pn, ps, pss, null, xp, 2, 2, 1, 1, 2, 0, kinds, 9.0, 0., 0., 0.,
            );
        }
        assert_eq!((n, s, ss), ([2.0, 2.0], [-1.0, 3.5], [5.0, 9.25]));
    }
}
