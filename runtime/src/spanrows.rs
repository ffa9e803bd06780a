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
                span_to::<OP, SF, EXP>(o, &x[r * shape.x_stride..][..n], dr);
            }
        }
        RowsOut::InPlace(xs) => {
            for (r, &dr) in d.iter().enumerate() {
                span_in_place::<OP, SF, EXP>(&mut xs[r * shape.x_stride..][..n], dr);
            }
        }
    }
}

/// One span of a row: `o[j] = x[j] op d` (then perhaps `exp`).
#[inline(always)]
fn span_to<const OP: u8, const SF: bool, const EXP: bool>(o: &mut [f32], x: &[f32], d: f32) {
    for (o, &v) in o.iter_mut().zip(x) {
        *o = row_op::<OP, SF, EXP>(v, d);
    }
}

/// One span of a row, in place: `x[j] = x[j] op d` (then perhaps `exp`).
#[inline(always)]
fn span_in_place<const OP: u8, const SF: bool, const EXP: bool>(x: &mut [f32], d: f32) {
    for v in x {
        *v = row_op::<OP, SF, EXP>(*v, d);
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

/// The lanes a row operation folds as it writes ([`row_binary_fold_f32`]): per row `r`,
/// [`LANES`] results at `out[r·LANES..]`, lane `l` folding (`fold`, from its identity, in
/// ascending `j`) the row's results `LANES·j + l` for `j < m`.
pub struct LaneSink<'a> {
    pub out: &'a mut [f32],
    pub m: usize,
    pub fold: Fold,
}

/// Elements of a row written before they are folded: 1 KiB, still in the first-level cache
/// when the fold reads them. A multiple of [`LANES`].
const FOLD_BLOCK: usize = 256;

/// [`row_binary_f32`] that also folds each row's first `LANES·m` results into [`LANES`]
/// interleaved lanes ([`LaneSink`]) as it writes them: a map and the `lanes` pass's fold of
/// its output along the row (softmax's `e = exp(x - m)` and its row sum) in one pass over
/// the row instead of two. The row is written in blocks of [`FOLD_BLOCK`] elements, each
/// folded right after; every lane still combines its elements one at a time in ascending
/// order from the identity, so the bits are those of [`row_binary_reference`] followed by
/// [`lane_fold_reference`] of its output (`lanes == lane_stride == LANES`), on every variant.
///
/// # Panics
/// If the buffers are shorter than the rows need, or the lanes cover more than a row
/// (`LANES·m > n`).
pub fn row_binary_fold_f32(
    out: RowsOut<'_>,
    d: &[f32],
    shape: RowShape,
    op: RowOp,
    scalar_first: bool,
    then_exp: bool,
    sink: LaneSink<'_>,
) {
    assert!(
        LANES * sink.m <= shape.n,
        "row_binary_fold_f32: the lanes cover more than a row"
    );
    assert!(
        sink.out.len() >= d.len() * LANES,
        "row_binary_fold_f32: lanes too short"
    );
    let how = RowHow {
        op,
        scalar_first,
        then_exp,
    };
    dispatch!(
        rows_fold_avx512,
        rows_fold_avx2,
        rows_fold_base(out, d, shape, how, sink)
    )
}

/// The baseline variant of [`row_binary_fold_f32`]: the fold in scalar code.
fn rows_fold_base(out: RowsOut<'_>, d: &[f32], shape: RowShape, how: RowHow, sink: LaneSink<'_>) {
    let max = sink.fold == Fold::Max;
    rows_fold(out, d, shape, how, sink, &mut |acc, v| {
        fold_scalar(acc, v, max)
    });
}

/// The vectorized variants of [`row_binary_fold_f32`]: its lanes one vector at a time.
macro_rules! fold_variant {
    ($name:ident, $feature:literal, $accumulate:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name(
            out: RowsOut<'_>,
            d: &[f32],
            shape: RowShape,
            how: RowHow,
            sink: LaneSink<'_>,
        ) {
            let max = sink.fold == Fold::Max;
            // SAFETY (of the call): the CPU has the feature this function is compiled for.
            rows_fold(out, d, shape, how, sink, &mut |acc, v| unsafe {
                lanes16::$accumulate(acc, v, max)
            });
        }
    };
}

fold_variant!(rows_fold_avx512, "avx512f", accumulate_avx512);
fold_variant!(rows_fold_avx2, "avx2", accumulate_avx2);

/// Folds `v` (whole vectors of [`LANES`], in order) into the lanes `acc`, lane by lane as
/// [`lane_fold_reference`] does: vectorized, LLVM may swap the operands of `+`, which can
/// change which NaN a sum of two NaNs gives.
fn fold_scalar(acc: &mut [f32; LANES], v: &[f32], max: bool) {
    for (l, a) in acc.iter_mut().enumerate() {
        for c in v.chunks_exact(LANES) {
            *a = if max { maximum(*a, c[l]) } else { *a + c[l] };
        }
    }
}

#[inline(always)]
fn rows_fold<F: FnMut(&mut [f32; LANES], &[f32])>(
    out: RowsOut<'_>,
    d: &[f32],
    shape: RowShape,
    how: RowHow,
    sink: LaneSink<'_>,
    fold: &mut F,
) {
    macro_rules! each {
        ($($op:ident = $k:literal),*) => {
            match (how.op, how.scalar_first, how.then_exp) {
                $((RowOp::$op, false, false) => rows_fold_with::<$k, false, false, F>(out, d, shape, sink, fold),
                  (RowOp::$op, true, false) => rows_fold_with::<$k, true, false, F>(out, d, shape, sink, fold),
                  (RowOp::$op, false, true) => rows_fold_with::<$k, false, true, F>(out, d, shape, sink, fold),
                  (RowOp::$op, true, true) => rows_fold_with::<$k, true, true, F>(out, d, shape, sink, fold),)*
            }
        };
    }
    each!(Add = 0, Sub = 1, Mul = 2, Div = 3)
}

#[inline(always)]
fn rows_fold_with<const OP: u8, const SF: bool, const EXP: bool, F>(
    mut out: RowsOut<'_>,
    d: &[f32],
    shape: RowShape,
    sink: LaneSink<'_>,
    fold: &mut F,
) where
    F: FnMut(&mut [f32; LANES], &[f32]),
{
    let (n, folded) = (shape.n, LANES * sink.m);
    let id = match sink.fold {
        Fold::Sum => 0.0,
        Fold::Max => f32::NEG_INFINITY,
    };
    for (r, &dr) in d.iter().enumerate() {
        let mut acc = [id; LANES];
        let mut j = 0;
        while j < n {
            let end = if j < folded {
                (j + FOLD_BLOCK).min(folded)
            } else {
                n
            };
            let o: &mut [f32] = match &mut out {
                RowsOut::To(o, x) => {
                    let o = &mut o[r * shape.out_stride..][j..end];
                    span_to::<OP, SF, EXP>(o, &x[r * shape.x_stride..][j..end], dr);
                    o
                }
                RowsOut::InPlace(xs) => {
                    let o = &mut xs[r * shape.x_stride..][j..end];
                    span_in_place::<OP, SF, EXP>(o, dr);
                    o
                }
            };
            if j < folded {
                fold(&mut acc, o);
            }
            j = end;
        }
        sink.out[r * LANES..][..LANES].copy_from_slice(&acc);
    }
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

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn step512(a: __m512, b: __m512, max: bool) -> __m512 {
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

    #[target_feature(enable = "avx2")]
    #[inline]
    fn step256(a: __m256, b: __m256, max: bool) -> __m256 {
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

    /// Independent rows in flight: they hide the latency of the combine.
    const ROWS: usize = 4;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(out: &mut [f32], x: &[f32], s: LaneShape, max: bool) {
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
                    *a = step512(*a, v, max);
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
                    a[0] = step256(a[0], v0, max);
                    a[1] = step256(a[1], v1, max);
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
    /// Folds `v` (whole vectors of 16, in order) into the lanes `acc`, one vector at a time.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn accumulate_avx512(acc: &mut [f32; 16], v: &[f32], max: bool) {
        // SAFETY: `acc` holds 16 `f32`s and every chunk 16.
        unsafe {
            let mut a = _mm512_loadu_ps(acc.as_ptr());
            for c in v.chunks_exact(16) {
                a = step512(a, _mm512_loadu_ps(c.as_ptr()), max);
            }
            _mm512_storeu_ps(acc.as_mut_ptr(), a);
        }
    }

    /// [`accumulate_avx512`] in two 256-bit halves.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn accumulate_avx2(acc: &mut [f32; 16], v: &[f32], max: bool) {
        // SAFETY: `acc` holds 16 `f32`s and every chunk 16.
        unsafe {
            let (mut a0, mut a1) = (
                _mm256_loadu_ps(acc.as_ptr()),
                _mm256_loadu_ps(acc.as_ptr().add(8)),
            );
            for c in v.chunks_exact(16) {
                a0 = step256(a0, _mm256_loadu_ps(c.as_ptr()), max);
                a1 = step256(a1, _mm256_loadu_ps(c.as_ptr().add(8)), max);
            }
            _mm256_storeu_ps(acc.as_mut_ptr(), a0);
            _mm256_storeu_ps(acc.as_mut_ptr().add(8), a1);
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
    let (row_op, scalar_first, then_exp) = op_code(op);
    // SAFETY: the caller's contract.
    unsafe {
        let d = std::slice::from_raw_parts(d, rows);
        let out = rows_out(out, x, rows, shape);
        row_binary_f32(out, d, shape, row_op, scalar_first, then_exp);
    }
}

/// The operator, whether the scalar is the left operand, and whether `exp` follows, of a
/// kernel's `op` code (see [`flow_row_binary_f32`]).
fn op_code(op: i64) -> (RowOp, bool, bool) {
    let row_op = match op & 3 {
        0 => RowOp::Add,
        1 => RowOp::Sub,
        2 => RowOp::Mul,
        _ => RowOp::Div,
    };
    (row_op, op & 4 != 0, op & 8 != 0)
}

/// The output of `rows` rows of a row operation at `out` over `x` (the same buffer when the
/// pointers are equal).
///
/// # Safety
/// [`flow_row_binary_f32`]'s contract, with `rows > 0`.
unsafe fn rows_out<'a>(out: *mut f32, x: *const f32, rows: usize, shape: RowShape) -> RowsOut<'a> {
    let len = |stride: usize| {
        if shape.n == 0 {
            0
        } else {
            (rows - 1) * stride + shape.n
        }
    };
    // SAFETY: the caller's contract.
    unsafe {
        if std::ptr::eq(out, x) {
            RowsOut::InPlace(std::slice::from_raw_parts_mut(out, len(shape.x_stride)))
        } else {
            RowsOut::To(
                std::slice::from_raw_parts_mut(out, len(shape.out_stride)),
                std::slice::from_raw_parts(x, len(shape.x_stride)),
            )
        }
    }
}

/// [`row_binary_fold_f32`] over raw buffers, for the native executor (`native/group.rs`):
/// the arguments of [`flow_row_binary_f32`] (its `op` code), then `lanes`, [`LANES`] writable
/// `f32`s per row not overlapping the others, `m` and the fold code (0 `sum`, 1 `max`).
///
/// # Safety
/// [`flow_row_binary_f32`]'s contract, and `lanes` as said; `rows <= 0` does nothing.
///
/// # Panics
/// If `LANES·m > n`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn row_binary_fold_raw(
    out: *mut f32,
    x: *const f32,
    d: *const f32,
    (rows, n, x_stride, out_stride): (i64, i64, i64, i64),
    op: i64,
    lanes: *mut f32,
    m: usize,
    fold: i64,
) {
    if rows <= 0 {
        return;
    }
    let rows = rows as usize;
    let n = n.max(0) as usize;
    let shape = RowShape {
        n,
        x_stride: x_stride as usize,
        out_stride: out_stride as usize,
    };
    let (row_op, scalar_first, then_exp) = op_code(op);
    let fold = if fold == 0 { Fold::Sum } else { Fold::Max };
    // SAFETY: the caller's contract.
    unsafe {
        let d = std::slice::from_raw_parts(d, rows);
        let sink = LaneSink {
            out: std::slice::from_raw_parts_mut(lanes, rows * LANES),
            m,
            fold,
        };
        let out = rows_out(out, x, rows, shape);
        row_binary_fold_f32(out, d, shape, row_op, scalar_first, then_exp, sink);
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
#[path = "spanrows_tests.rs"]
pub(crate) mod tests;
