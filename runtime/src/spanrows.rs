//! Row routines over spans, for the row passes of a softmax or a normalization (W3): a
//! binary operator between each element of a row and the row's own scalar (`e[i, j] / z[i]`),
//! compiled three times — for AVX-512F, for AVX2 and for the baseline target — from one
//! source and chosen at run time by CPU detection, as [`crate::spanmath`] does for `exp`; the
//! native backend's kernels call it over a shard's rows (`codegen/kernel/span.rs`), where
//! Cranelift's code runs 128-bit vectors.
//!
//! **Same bits everywhere.** Each element is one IEEE operation in `f32`, with the operands
//! in the program's order: the interpreter's operation. Vectorizing across elements keeps
//! each element's own operation, so every variant gives the bits of the scalar
//! [`row_binary_reference`] (tested on every variant this CPU runs), on every machine. The
//! operation may be followed by [`crate::fastmath::exp_f32`] of its result (softmax's
//! `exp(x - m)` in one pass over the row), which is lane-wise too.
//!
//! Also a fold of rows into interleaved lanes (the `lanes` pass's `max[j]`/`sum[j]` over
//! `x[i, 16·j + l]`), in AVX-512F or AVX2 intrinsics: each lane combines its elements in
//! ascending `j` from the identity (`+0.0`, or `-inf` for `max`, IEEE 754-2019 `maximum`
//! as the interpreter computes it), the interpreter's operations in its order, so its bits
//! are [`lane_fold_reference`]'s (tested on every variant this CPU runs).

/// A binary operator between an element and its row's scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[inline(always)]
fn row_op<const OP: u8, const SCALAR_FIRST: bool, const EXP: bool>(x: f32, d: f32) -> f32 {
    let (a, b) = if SCALAR_FIRST { (d, x) } else { (x, d) };
    let v = match OP {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
    };
    if EXP {
        crate::fastmath::exp_f32(v)
    } else {
        v
    }
}

/// Picks the widest variant this CPU runs (the baseline one under `--portable-math`).
macro_rules! dispatch {
    ($avx512:ident, $avx2:ident, $base:ident ($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if !crate::portable::portable_math() {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { $avx512($($arg),*) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { $avx2($($arg),*) };
            }
        }
        $base($($arg),*)
    }};
}

/// Rows of a row operation: `out[r·out_stride + j] = x[r·x_stride + j] op d[r]` (or
/// `d[r] op x[…]` when `scalar_first`) for `r < d.len()`, `j < n`. `out` and `x` are the same
/// buffer when the operation writes over its input ([`RowsOut::InPlace`]).
pub enum RowsOut<'a> {
    /// A separate output.
    To(&'a mut [f32], &'a [f32]),
    /// Over the input.
    InPlace(&'a mut [f32]),
}

/// The shape of a row operation: `n` elements per row, rows `x_stride` and `out_stride` apart.
#[derive(Clone, Copy, Debug)]
pub struct RowShape {
    pub n: usize,
    pub x_stride: usize,
    pub out_stride: usize,
}

/// Applies `op` between each element of each row and the row's scalar `d[r]`; then, when
/// `then_exp`, [`crate::fastmath::exp_f32`] to the result (softmax's `exp(x - m)` in one
/// pass over the row instead of two).
///
/// # Panics
/// If the buffers are shorter than the rows need.
pub fn row_binary_f32(
    out: RowsOut<'_>,
    d: &[f32],
    shape: RowShape,
    op: RowOp,
    scalar_first: bool,
    then_exp: bool,
) {
    let how = RowHow {
        op,
        scalar_first,
        then_exp,
    };
    dispatch!(rows_avx512, rows_avx2, rows(out, d, shape, how))
}

/// What a row operation computes per element: `x op d` (or `d op x`), then perhaps `exp`.
#[derive(Clone, Copy, Debug)]
struct RowHow {
    op: RowOp,
    scalar_first: bool,
    then_exp: bool,
}

/// The scalar definition of [`row_binary_f32`] (separate output).
pub fn row_binary_reference(
    out: &mut [f32],
    x: &[f32],
    d: &[f32],
    shape: RowShape,
    op: RowOp,
    scalar_first: bool,
    then_exp: bool,
) {
    for (r, &dr) in d.iter().enumerate() {
        for j in 0..shape.n {
            let v = x[r * shape.x_stride + j];
            let (a, b) = if scalar_first { (dr, v) } else { (v, dr) };
            let v = match op {
                RowOp::Add => a + b,
                RowOp::Sub => a - b,
                RowOp::Mul => a * b,
                RowOp::Div => a / b,
            };
            out[r * shape.out_stride + j] = if then_exp {
                crate::fastmath::exp_f32(v)
            } else {
                v
            };
        }
    }
}

#[inline(always)]
fn rows(out: RowsOut<'_>, d: &[f32], shape: RowShape, how: RowHow) {
    macro_rules! each {
        ($($op:ident = $k:literal),*) => {
            match (how.op, how.scalar_first, how.then_exp) {
                $((RowOp::$op, false, false) => rows_with::<$k, false, false>(out, d, shape),
                  (RowOp::$op, true, false) => rows_with::<$k, true, false>(out, d, shape),
                  (RowOp::$op, false, true) => rows_with::<$k, false, true>(out, d, shape),
                  (RowOp::$op, true, true) => rows_with::<$k, true, true>(out, d, shape),)*
            }
        };
    }
    each!(Add = 0, Sub = 1, Mul = 2, Div = 3)
}

#[inline(always)]
fn rows_with<const OP: u8, const SF: bool, const EXP: bool>(
    out: RowsOut<'_>,
    d: &[f32],
    shape: RowShape,
) {
    let n = shape.n;
    match out {
        RowsOut::To(out, x) => {
            for (r, &dr) in d.iter().enumerate() {
                let o = &mut out[r * shape.out_stride..][..n];
                let xs = &x[r * shape.x_stride..][..n];
                for (o, &v) in o.iter_mut().zip(xs) {
                    *o = row_op::<OP, SF, EXP>(v, dr);
                }
            }
        }
        RowsOut::InPlace(xs) => {
            for (r, &dr) in d.iter().enumerate() {
                for v in &mut xs[r * shape.x_stride..][..n] {
                    *v = row_op::<OP, SF, EXP>(*v, dr);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(out: RowsOut<'_>, d: &[f32], shape: RowShape, how: RowHow) {
    rows(out, d, shape, how);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(out: RowsOut<'_>, d: &[f32], shape: RowShape, how: RowHow) {
    rows(out, d, shape, how);
}

/// A fold of rows into interleaved lanes: the `lanes` pass's `max[j]`/`sum[j]` over
/// `x[i, L·j + l]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// `+`, from `+0.0`.
    Sum,
    /// IEEE 754-2019 `maximum` (NaN if either is NaN, `-0 < +0`), from `-inf`.
    Max,
}

/// The shape of a lane fold: `rows` rows `x_stride` apart; per row, `lanes` results, lane `l`
/// folding `x[row + lane_stride·j + l]` for `j < m` in ascending `j`, written `lanes` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneShape {
    pub rows: usize,
    pub x_stride: usize,
    pub lanes: usize,
    pub lane_stride: usize,
    pub m: usize,
}

impl LaneShape {
    /// The shape from a kernel's arguments (a negative `m` folds nothing); `None` when
    /// `rows` or `lanes` is not positive (nothing to do).
    pub fn from_args(
        rows: i64,
        x_stride: i64,
        lanes: i64,
        lane_stride: i64,
        m: i64,
    ) -> Option<Self> {
        (rows > 0 && lanes > 0).then_some(LaneShape {
            rows: rows as usize,
            x_stride: x_stride as usize,
            lanes: lanes as usize,
            lane_stride: lane_stride as usize,
            m: m.max(0) as usize,
        })
    }

    /// The elements of input the fold reads: none without rows or `m`.
    pub fn input_len(&self) -> usize {
        if self.rows == 0 || self.m == 0 {
            0
        } else {
            (self.rows - 1) * self.x_stride + self.lane_stride * (self.m - 1) + self.lanes
        }
    }

    /// The input at `x`, [`LaneShape::input_len`] elements.
    ///
    /// # Safety
    /// `x` must hold that many initialized `f32`s when there are any.
    pub unsafe fn input<'a>(&self, x: *const f32) -> &'a [f32] {
        match self.input_len() {
            0 => &[],
            // SAFETY: the caller's contract.
            n => unsafe { std::slice::from_raw_parts(x, n) },
        }
    }
}

/// The lanes [`lane_fold_f32`] runs in vector registers (one AVX-512 or two AVX2 registers),
/// with `lane_stride == LANES`; other shapes run the scalar loop.
pub const LANES: usize = 16;

/// Whether [`lane_fold_f32`] runs vector code on this CPU (AVX-512F or AVX2, and not
/// `--portable-math`): a kernel calls it only then, since its own 128-bit code beats the
/// scalar loop. Either way the bits are the same.
pub fn lane_fold_is_vectorized() -> bool {
    #[cfg(target_arch = "x86_64")]
    if !crate::portable::portable_math() {
        return std::arch::is_x86_feature_detected!("avx512f")
            || std::arch::is_x86_feature_detected!("avx2");
    }
    false
}

/// `out[r·lanes + l] = fold over j < m (ascending, from the identity) of
/// x[r·x_stride + lane_stride·j + l]`.
///
/// # Panics
/// If the buffers are shorter than the shape needs.
pub fn lane_fold_f32(out: &mut [f32], x: &[f32], s: LaneShape, fold: Fold) {
    assert!(
        out.len() >= s.rows * s.lanes,
        "lane_fold_f32: output too short"
    );
    assert!(x.len() >= s.input_len(), "lane_fold_f32: input too short");
    #[cfg(target_arch = "x86_64")]
    if s.lanes == LANES && s.lane_stride == LANES && lane_fold_is_vectorized() {
        let max = fold == Fold::Max;
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the lengths were checked above.
            return unsafe { lanes16::avx512(out, x, s, max) };
        }
        // SAFETY: the CPU has AVX2 (`lane_fold_is_vectorized`); the lengths were checked.
        return unsafe { lanes16::avx2(out, x, s, max) };
    }
    lane_fold_reference(out, x, s, fold)
}

/// The scalar definition of [`lane_fold_f32`]: the interpreter's fold, lane by lane.
pub fn lane_fold_reference(out: &mut [f32], x: &[f32], s: LaneShape, fold: Fold) {
    for r in 0..s.rows {
        for l in 0..s.lanes {
            let mut acc = match fold {
                Fold::Sum => 0.0,
                Fold::Max => f32::NEG_INFINITY,
            };
            for j in 0..s.m {
                let v = x[r * s.x_stride + s.lane_stride * j + l];
                acc = match fold {
                    Fold::Sum => acc + v,
                    Fold::Max => maximum(acc, v),
                };
            }
            out[r * s.lanes + l] = acc;
        }
    }
}

/// IEEE 754-2019 `maximum`, as the interpreter computes Flow's `max` on `f32` (a NaN
/// operand gives the canonical NaN).
fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a > b || (a == b && !a.is_sign_negative()) {
        a
    } else {
        b
    }
}

/// Sixteen lanes in intrinsics: [`ROWS`] rows at a time, one accumulator per row (LLVM does
/// not vectorize this loop by itself: it unrolls the lanes and keeps them scalar). Each
/// accumulator is combined with one vector per `j`, in ascending `j`: the lanes' own folds.
/// `maximum(a, b)` is `b`, or `a` where `a > b`, or `a & b` (bits) where `a == b` (so
/// `+0` beats `-0`, and equal values are unchanged), or the canonical NaN where unordered.
#[cfg(target_arch = "x86_64")]
mod lanes16 {
    use super::LaneShape;
    use std::arch::x86_64::*;

    /// Independent rows in flight: they hide the latency of the combine.
    const ROWS: usize = 4;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(out: &mut [f32], x: &[f32], s: LaneShape, max: bool) {
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn step(a: __m512, b: __m512, max: bool) -> __m512 {
            if !max {
                return _mm512_add_ps(a, b);
            }
            let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b);
            let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b);
            let un = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, b);
            let both = _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(a),
                _mm512_castps_si512(b),
            ));
            let r = _mm512_mask_blend_ps(gt, b, a);
            let r = _mm512_mask_blend_ps(eq, r, both);
            _mm512_mask_blend_ps(un, r, _mm512_set1_ps(f32::NAN))
        }
        let id = _mm512_set1_ps(if max { f32::NEG_INFINITY } else { 0.0 });
        let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
        let mut r = 0;
        while r < s.rows {
            let k = ROWS.min(s.rows - r);
            let mut acc = [id; ROWS];
            for j in 0..s.m {
                for (q, a) in acc.iter_mut().enumerate().take(k) {
                    // SAFETY: in bounds (the caller checked the input's length).
                    let v = unsafe { _mm512_loadu_ps(xp.add((r + q) * s.x_stride + 16 * j)) };
                    *a = step(*a, v, max);
                }
            }
            for (q, a) in acc.iter().enumerate().take(k) {
                // SAFETY: in bounds (the caller checked the output's length).
                unsafe { _mm512_storeu_ps(op.add((r + q) * 16), *a) };
            }
            r += k;
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(out: &mut [f32], x: &[f32], s: LaneShape, max: bool) {
        #[target_feature(enable = "avx2")]
        #[inline]
        fn step(a: __m256, b: __m256, max: bool) -> __m256 {
            if !max {
                return _mm256_add_ps(a, b);
            }
            let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(a, b);
            let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b);
            let un = _mm256_cmp_ps::<_CMP_UNORD_Q>(a, b);
            let r = _mm256_blendv_ps(b, a, gt);
            let r = _mm256_blendv_ps(r, _mm256_and_ps(a, b), eq);
            _mm256_blendv_ps(r, _mm256_set1_ps(f32::NAN), un)
        }
        let id = _mm256_set1_ps(if max { f32::NEG_INFINITY } else { 0.0 });
        let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
        let mut r = 0;
        while r < s.rows {
            let k = ROWS.min(s.rows - r);
            let mut acc = [[id; 2]; ROWS];
            for j in 0..s.m {
                for (q, a) in acc.iter_mut().enumerate().take(k) {
                    let p = (r + q) * s.x_stride + 16 * j;
                    // SAFETY: in bounds (the caller checked the input's length).
                    let (v0, v1) =
                        unsafe { (_mm256_loadu_ps(xp.add(p)), _mm256_loadu_ps(xp.add(p + 8))) };
                    a[0] = step(a[0], v0, max);
                    a[1] = step(a[1], v1, max);
                }
            }
            for (q, a) in acc.iter().enumerate().take(k) {
                // SAFETY: in bounds (the caller checked the output's length).
                unsafe {
                    _mm256_storeu_ps(op.add((r + q) * 16), a[0]);
                    _mm256_storeu_ps(op.add((r + q) * 16 + 8), a[1]);
                }
            }
            r += k;
        }
    }
}

/// [`row_binary_f32`] for kernels (symbol `flow_row_binary_f32`): `rows` rows of `n`
/// elements; `op` is 0 (`+`), 1 (`-`), 2 (`*`) or 3 (`/`), plus 4 when the row's scalar is
/// the left operand, plus 8 to apply `exp` to each result. `out == x` means in place.
///
/// # Safety
/// `x` must hold `(rows - 1)·x_stride + n` initialized `f32`s, `out` as many writable ones
/// for `out_stride` and overlap `x` not at all or exactly (`out == x`, `out_stride ==
/// x_stride`), `d` `rows` ones; `rows <= 0` or `n <= 0` does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_row_binary_f32(
    out: *mut f32,
    x: *const f32,
    d: *const f32,
    rows: i64,
    n: i64,
    x_stride: i64,
    out_stride: i64,
    op: i64,
) {
    if rows <= 0 || n <= 0 {
        return;
    }
    let (rows, n) = (rows as usize, n as usize);
    let shape = RowShape {
        n,
        x_stride: x_stride as usize,
        out_stride: out_stride as usize,
    };
    let len = |stride: usize| (rows - 1) * stride + n;
    let row_op = match op & 3 {
        0 => RowOp::Add,
        1 => RowOp::Sub,
        2 => RowOp::Mul,
        _ => RowOp::Div,
    };
    // SAFETY: the caller's contract.
    unsafe {
        let d = std::slice::from_raw_parts(d, rows);
        let out = if std::ptr::eq(out, x) {
            RowsOut::InPlace(std::slice::from_raw_parts_mut(out, len(shape.x_stride)))
        } else {
            RowsOut::To(
                std::slice::from_raw_parts_mut(out, len(shape.out_stride)),
                std::slice::from_raw_parts(x, len(shape.x_stride)),
            )
        };
        row_binary_f32(out, d, shape, row_op, op & 4 != 0, op & 8 != 0);
    }
}

/// [`lane_fold_f32`] for kernels (symbol `flow_lane_fold_f32`); `fold` 0 is `sum`, 1 `max`.
///
/// # Safety
/// `x` must hold `(rows - 1)·x_stride + lane_stride·(m - 1) + lanes` initialized `f32`s
/// (when `m > 0`) and `out` `rows·lanes` writable ones not overlapping them; a
/// non-positive `rows` or `lanes` does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_lane_fold_f32(
    out: *mut f32,
    x: *const f32,
    rows: i64,
    x_stride: i64,
    lanes: i64,
    lane_stride: i64,
    m: i64,
    fold: i64,
) {
    let Some(s) = LaneShape::from_args(rows, x_stride, lanes, lane_stride, m) else {
        return;
    };
    let fold = if fold == 0 { Fold::Sum } else { Fold::Max };
    // SAFETY: the caller's contract.
    unsafe {
        let out = std::slice::from_raw_parts_mut(out, s.rows * s.lanes);
        lane_fold_f32(out, s.input(x), s, fold);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spanwindow::tests::inputs;

    fn same(name: &str, got: &[f32], want: &[f32]) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name}: [{i}] = {g:e}, want {w:e}"
            );
        }
    }

    type RowsFn = dyn Fn(RowsOut<'_>, &[f32], RowShape, RowOp, bool, bool);
    fn check_rows(name: &str, f: &RowsFn) {
        for (rows, n, pad) in [(1, 1, 0), (3, 5, 2), (2, 17, 0), (5, 100, 3), (9, 1031, 1)] {
            let shape = RowShape {
                n,
                x_stride: n + pad,
                out_stride: n,
            };
            let x = inputs((rows - 1) * shape.x_stride + n, (rows * n) as u32);
            let mut d = inputs(rows, 5);
            d[0] = -0.0;
            for (op, e) in [RowOp::Add, RowOp::Sub, RowOp::Mul, RowOp::Div]
                .into_iter()
                .flat_map(|op| [(op, false), (op, true)])
            {
                for sf in [false, true] {
                    let mut want = vec![f32::NAN; (rows - 1) * n + n];
                    row_binary_reference(&mut want, &x, &d, shape, op, sf, e);
                    let mut got = vec![f32::NAN; want.len()];
                    f(RowsOut::To(&mut got, &x), &d, shape, op, sf, e);
                    same(&format!("{name} {op:?} {sf} {e} {rows}x{n}"), &got, &want);
                    // In place: rows `x_stride` apart in the output too.
                    let mut inplace = x.clone();
                    let s = RowShape {
                        out_stride: shape.x_stride,
                        ..shape
                    };
                    f(RowsOut::InPlace(&mut inplace), &d, s, op, sf, e);
                    let mut want = x.clone();
                    row_binary_reference(&mut want, &x, &d, s, op, sf, e);
                    same(&format!("{name} in place {op:?} {sf} {e}"), &inplace, &want);
                }
            }
        }
    }

    fn how(op: RowOp, scalar_first: bool, then_exp: bool) -> RowHow {
        RowHow {
            op,
            scalar_first,
            then_exp,
        }
    }

    #[test]
    fn every_variant_gives_the_reference_bits() {
        check_rows("dispatched", &row_binary_f32);
        check_rows("baseline", &|o, d, s, op, sf, e| {
            rows(o, d, s, how(op, sf, e))
        });
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                check_rows("avx2", &|o, d, s, op, sf, e| unsafe {
                    rows_avx2(o, d, s, how(op, sf, e))
                });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                check_rows("avx512f", &|o, d, s, op, sf, e| unsafe {
                    rows_avx512(o, d, s, how(op, sf, e))
                });
            }
        }
    }

    /// A lane fold's shape, its rows `pad` elements longer than `m` lane-vectors, and inputs
    /// for it with `inputs`' specials (NaN, infinities, signed zeros, subnormals, huge).
    pub(crate) fn lane_case(
        rows: usize,
        lanes: usize,
        lane_stride: usize,
        m: usize,
        pad: usize,
    ) -> (LaneShape, Vec<f32>) {
        let s = LaneShape {
            rows,
            x_stride: lane_stride * m + pad,
            lanes,
            lane_stride,
            m,
        };
        (
            s,
            inputs(rows * s.x_stride + lanes, (rows * m + pad) as u32),
        )
    }

    #[test]
    fn lane_folds_give_the_reference_bits() {
        assert_eq!(maximum(-0.0, 0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(maximum(0.0, -0.0).to_bits(), 0.0f32.to_bits());
        assert!(maximum(f32::NAN, 1.0).is_nan() && maximum(1.0, f32::NAN).is_nan());
        let shapes = [
            (1, 16, 16, 1),
            (3, 16, 16, 256),
            (4, 16, 16, 7),
            (9, 16, 16, 33),
            (6, 16, 16, 0),
            (5, 5, 8, 9),
            (2, 12, 12, 4),
        ];
        for (rows, lanes, lane_stride, m) in shapes {
            for pad in [0, 3] {
                let (s, mut x) = lane_case(rows, lanes, lane_stride, m, pad);
                // Signed zeros against each other, in both orders, in one lane.
                if x.len() > 3 * lane_stride {
                    x[0] = -0.0;
                    x[lane_stride] = 0.0;
                    x[2 * lane_stride] = -0.0;
                }
                for fold in [Fold::Sum, Fold::Max] {
                    let mut want = vec![1.0; rows * lanes];
                    lane_fold_reference(&mut want, &x, s, fold);
                    let mut got = vec![1.0; rows * lanes];
                    lane_fold_f32(&mut got, &x, s, fold);
                    same(&format!("dispatched {fold:?} {s:?}"), &got, &want);
                    #[cfg(target_arch = "x86_64")]
                    if lanes == LANES && lane_stride == LANES {
                        let max = fold == Fold::Max;
                        if std::arch::is_x86_feature_detected!("avx2") {
                            let mut got = vec![1.0; rows * lanes];
                            // SAFETY: the CPU has AVX2; the lengths fit the shape.
                            unsafe { lanes16::avx2(&mut got, &x, s, max) };
                            same(&format!("avx2 {fold:?} {s:?}"), &got, &want);
                        }
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            let mut got = vec![1.0; rows * lanes];
                            // SAFETY: the CPU has AVX-512F; the lengths fit the shape.
                            unsafe { lanes16::avx512(&mut got, &x, s, max) };
                            same(&format!("avx512f {fold:?} {s:?}"), &got, &want);
                        }
                    }
                }
            }
        }
        let x = [1.0f32, -2.0, 3.0, 4.0, 0.5, 6.0];
        let mut out = [0.0f32; 2];
        // SAFETY: two rows of three elements, one lane each.
        unsafe {
            flow_lane_fold_f32(out.as_mut_ptr(), x.as_ptr(), 2, 3, 1, 1, 3, 1);
            assert_eq!(out, [3.0, 6.0]);
            flow_lane_fold_f32(out.as_mut_ptr(), x.as_ptr(), 2, 3, 1, 1, 3, 0);
            assert_eq!(out, [2.0, 10.5]);
        }
    }

    #[test]
    fn the_symbol_follows_its_contract() {
        let mut x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let d = [2.0f32, 4.0];
        let mut out = [0.0f32; 4];
        // SAFETY: two rows of three, in place, then two of two into `out`; no rows, nothing.
        unsafe {
            flow_row_binary_f32(x.as_mut_ptr(), x.as_ptr(), d.as_ptr(), 2, 3, 3, 3, 3);
            assert_eq!(x, [0.5, 1.0, 1.5, 1.0, 1.25, 1.5]);
            flow_row_binary_f32(x.as_mut_ptr(), x.as_ptr(), d.as_ptr(), 0, 3, 3, 3, 3);
            assert_eq!(x, [0.5, 1.0, 1.5, 1.0, 1.25, 1.5]);
            flow_row_binary_f32(out.as_mut_ptr(), x.as_ptr(), d.as_ptr(), 2, 2, 3, 2, 4 + 1);
            assert_eq!(out, [1.5, 1.0, 3.0, 2.75]);
            // `exp(x - d)`: `x` is [0.5, 1.0, 1.5; 1.0, 1.25, 1.5], `d` [2, 4].
            flow_row_binary_f32(out.as_mut_ptr(), x.as_ptr(), d.as_ptr(), 2, 2, 3, 2, 8 + 1);
            let e = crate::fastmath::exp_f32;
            assert_eq!(out, [e(-1.5), e(-1.0), e(-3.0), e(-2.75)]);
        }
    }
}
