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
//! [`row_binary_reference`] (tested on every variant this CPU runs), on every machine.

/// A binary operator between an element and its row's scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[inline(always)]
fn row_op<const OP: u8, const SCALAR_FIRST: bool>(x: f32, d: f32) -> f32 {
    let (a, b) = if SCALAR_FIRST { (d, x) } else { (x, d) };
    match OP {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
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

/// Applies `op` between each element of each row and the row's scalar `d[r]`.
///
/// # Panics
/// If the buffers are shorter than the rows need.
pub fn row_binary_f32(out: RowsOut<'_>, d: &[f32], shape: RowShape, op: RowOp, scalar_first: bool) {
    dispatch!(
        rows_avx512,
        rows_avx2,
        rows(out, d, shape, op, scalar_first)
    )
}

/// The scalar definition of [`row_binary_f32`] (separate output).
pub fn row_binary_reference(
    out: &mut [f32],
    x: &[f32],
    d: &[f32],
    shape: RowShape,
    op: RowOp,
    scalar_first: bool,
) {
    for (r, &dr) in d.iter().enumerate() {
        for j in 0..shape.n {
            let v = x[r * shape.x_stride + j];
            let (a, b) = if scalar_first { (dr, v) } else { (v, dr) };
            out[r * shape.out_stride + j] = match op {
                RowOp::Add => a + b,
                RowOp::Sub => a - b,
                RowOp::Mul => a * b,
                RowOp::Div => a / b,
            };
        }
    }
}

#[inline(always)]
fn rows(out: RowsOut<'_>, d: &[f32], shape: RowShape, op: RowOp, scalar_first: bool) {
    macro_rules! each {
        ($($op:ident = $k:literal),*) => {
            match (op, scalar_first) {
                $((RowOp::$op, false) => rows_with::<$k, false>(out, d, shape),
                  (RowOp::$op, true) => rows_with::<$k, true>(out, d, shape),)*
            }
        };
    }
    each!(Add = 0, Sub = 1, Mul = 2, Div = 3)
}

#[inline(always)]
fn rows_with<const OP: u8, const SF: bool>(out: RowsOut<'_>, d: &[f32], shape: RowShape) {
    let n = shape.n;
    match out {
        RowsOut::To(out, x) => {
            for (r, &dr) in d.iter().enumerate() {
                let o = &mut out[r * shape.out_stride..][..n];
                let xs = &x[r * shape.x_stride..][..n];
                for (o, &v) in o.iter_mut().zip(xs) {
                    *o = row_op::<OP, SF>(v, dr);
                }
            }
        }
        RowsOut::InPlace(xs) => {
            for (r, &dr) in d.iter().enumerate() {
                for v in &mut xs[r * shape.x_stride..][..n] {
                    *v = row_op::<OP, SF>(*v, dr);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(out: RowsOut<'_>, d: &[f32], shape: RowShape, op: RowOp, sf: bool) {
    rows(out, d, shape, op, sf);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(out: RowsOut<'_>, d: &[f32], shape: RowShape, op: RowOp, sf: bool) {
    rows(out, d, shape, op, sf);
}

/// [`row_binary_f32`] for kernels (symbol `flow_row_binary_f32`): `rows` rows of `n`
/// elements; `op` is 0 (`+`), 1 (`-`), 2 (`*`) or 3 (`/`), plus 4 when the row's scalar is
/// the left operand. `out == x` means in place.
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
        row_binary_f32(out, d, shape, row_op, op & 4 != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordinary values with NaN, infinities, signed zeros, subnormals and huge values among
    /// them.
    fn inputs(n: usize, salt: u32) -> Vec<f32> {
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            f32::MIN_POSITIVE / 8.0,
            f32::MAX,
            -1e30,
        ];
        (0..n as u32)
            .map(|i| {
                let h = (i ^ salt).wrapping_mul(2_654_435_761).rotate_left(11);
                if h % 89 == 0 {
                    specials[(h / 89) as usize % specials.len()]
                } else {
                    (h % 20_001) as f32 / 997.0 - 10.0
                }
            })
            .collect()
    }

    fn same(name: &str, got: &[f32], want: &[f32]) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name}: [{i}] = {g:e}, want {w:e}"
            );
        }
    }

    type RowsFn = dyn Fn(RowsOut<'_>, &[f32], RowShape, RowOp, bool);
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
            for op in [RowOp::Add, RowOp::Sub, RowOp::Mul, RowOp::Div] {
                for sf in [false, true] {
                    let mut want = vec![f32::NAN; (rows - 1) * n + n];
                    row_binary_reference(&mut want, &x, &d, shape, op, sf);
                    let mut got = vec![f32::NAN; want.len()];
                    f(RowsOut::To(&mut got, &x), &d, shape, op, sf);
                    same(&format!("{name} {op:?} {sf} {rows}x{n}"), &got, &want);
                    // In place: rows `x_stride` apart in the output too.
                    let mut inplace = x.clone();
                    let s = RowShape {
                        out_stride: shape.x_stride,
                        ..shape
                    };
                    f(RowsOut::InPlace(&mut inplace), &d, s, op, sf);
                    let mut want = x.clone();
                    row_binary_reference(&mut want, &x, &d, s, op, sf);
                    same(&format!("{name} in place {op:?} {sf}"), &inplace, &want);
                }
            }
        }
    }

    #[test]
    fn every_variant_gives_the_reference_bits() {
        check_rows("dispatched", &row_binary_f32);
        check_rows("baseline", &rows);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                check_rows("avx2", &|o, d, s, op, sf| unsafe {
                    rows_avx2(o, d, s, op, sf)
                });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                check_rows("avx512f", &|o, d, s, op, sf| unsafe {
                    rows_avx512(o, d, s, op, sf)
                });
            }
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
        }
    }
}
