//! Tests of the row routines: every variant this CPU runs against the scalar references.

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

/// Rows of `n` elements `n + pad` apart, their inputs (with `inputs`' specials) and their
/// scalars (the first `-0`).
fn row_case(rows: usize, n: usize, pad: usize) -> (RowShape, Vec<f32>, Vec<f32>) {
    let shape = RowShape {
        n,
        x_stride: n + pad,
        out_stride: n,
    };
    let x = inputs((rows - 1) * shape.x_stride + n, (rows * n) as u32);
    let mut d = inputs(rows, 5);
    d[0] = -0.0;
    (shape, x, d)
}

type RowsFn = dyn Fn(RowsOut<'_>, &[f32], RowShape, RowOp, bool, bool);
fn check_rows(name: &str, f: &RowsFn) {
    for (rows, n, pad) in [(1, 1, 0), (3, 5, 2), (2, 17, 0), (5, 100, 3), (9, 1031, 1)] {
        let (shape, x, d) = row_case(rows, n, pad);
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

type FoldFn = dyn Fn(RowsOut<'_>, &[f32], RowShape, RowHow, LaneSink<'_>);

/// [`row_binary_reference`] and then [`lane_fold_reference`] of what it wrote: what a row
/// operation and the lane fold of its output compute as two nodes.
/// `e` starts as `start` (what is between the rows stays).
fn fold_reference(
    start: Vec<f32>,
    x: &[f32],
    d: &[f32],
    s: RowShape,
    (how, m, fold): (RowHow, usize, Fold),
) -> (Vec<f32>, Vec<f32>) {
    let rows = d.len();
    let mut e = start;
    e.resize((rows - 1) * s.out_stride + s.n, f32::NAN);
    let (op, sf, ex) = (how.op, how.scalar_first, how.then_exp);
    row_binary_reference(&mut e, x, d, s, op, sf, ex);
    let lanes = LaneShape {
        rows,
        x_stride: s.out_stride,
        lanes: LANES,
        lane_stride: LANES,
        m,
    };
    let mut l = vec![f32::NAN; rows * LANES];
    lane_fold_reference(&mut l, &e, lanes, fold);
    (e, l)
}

fn check_folds(name: &str, f: &FoldFn) {
    // Rows of 1 to 1031 elements: multiples of 16 and not, lanes over all of a row, part of
    // it (the ragged rest written, not folded) or none of it; blocks of 256 and their tails.
    for (rows, n, m, pad) in [
        (1, 16, 1, 0),
        (3, 21, 1, 2),
        (2, 517, 32, 0),
        (5, 1000, 62, 3),
        (4, 1031, 64, 1),
        (2, 7, 0, 0),
        (6, 4096, 256, 0),
    ] {
        let (shape, x, d) = row_case(rows, n, pad);
        for op in [RowOp::Add, RowOp::Sub, RowOp::Mul, RowOp::Div] {
            for (sf, ex) in [(false, false), (true, false), (false, true), (true, true)] {
                for fold in [Fold::Sum, Fold::Max] {
                    let h = how(op, sf, ex);
                    let (want_e, want_l) = fold_reference(Vec::new(), &x, &d, shape, (h, m, fold));
                    let mut e = vec![f32::NAN; want_e.len()];
                    let mut l = vec![f32::NAN; rows * LANES];
                    let sink = LaneSink {
                        out: &mut l,
                        m,
                        fold,
                    };
                    f(RowsOut::To(&mut e, &x), &d, shape, h, sink);
                    let what = format!("{name} {op:?} {sf} {ex} {fold:?} {rows}x{n} m {m}");
                    same(&format!("{what}: e"), &e, &want_e);
                    same(&format!("{what}: lanes"), &l, &want_l);
                    // In place: rows `x_stride` apart in the output too.
                    let s = RowShape {
                        out_stride: shape.x_stride,
                        ..shape
                    };
                    let (want_e, want_l) = fold_reference(x.clone(), &x, &d, s, (h, m, fold));
                    let mut e = x.clone();
                    let sink = LaneSink {
                        out: &mut l,
                        m,
                        fold,
                    };
                    f(RowsOut::InPlace(&mut e), &d, s, h, sink);
                    same(&format!("{what} in place: e"), &e[..want_e.len()], &want_e);
                    same(&format!("{what} in place: lanes"), &l, &want_l);
                }
            }
        }
    }
}

/// The fused row operation and lane fold gives the bits of the two routines one after the
/// other, on every variant this CPU runs.
#[test]
fn row_operations_with_their_lane_fold_give_the_reference_bits() {
    check_folds("dispatched", &|o, d, s, h, k| {
        row_binary_fold_f32(o, d, s, h.op, h.scalar_first, h.then_exp, k)
    });
    check_folds("baseline", &rows_fold_base);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            check_folds("avx2", &|o, d, s, h, k| unsafe {
                rows_fold_avx2(o, d, s, h, k)
            });
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            check_folds("avx512f", &|o, d, s, h, k| unsafe {
                rows_fold_avx512(o, d, s, h, k)
            });
        }
    }
}

/// The lanes' order is the lane fold's (each lane ascending from `+0`), not any other: a row
/// whose lane 0 holds `1, 2^25, -2^25` sums to 0 in that order (`1 + 2^25` rounds to
/// `2^25`) and to 1 in another, so a fused fold in another order fails here.
#[test]
fn the_fused_fold_keeps_each_lanes_order() {
    let n = 3 * LANES + 5;
    let mut x = vec![0.5f32; n];
    let big = 33_554_432.0f32;
    (x[0], x[LANES], x[2 * LANES]) = (1.0, big, -big);
    assert_eq!((0.0 + 1.0 + big) - big, 0.0);
    assert_eq!(1.0 + (big - big), 1.0);
    let d = [0.0f32];
    let shape = RowShape {
        n,
        x_stride: n,
        out_stride: n,
    };
    let mut e = vec![0.0; n];
    let mut l = vec![f32::NAN; LANES];
    let sink = LaneSink {
        out: &mut l,
        m: 3,
        fold: Fold::Sum,
    };
    row_binary_fold_f32(
        RowsOut::To(&mut e, &x),
        &d,
        shape,
        RowOp::Add,
        false,
        false,
        sink,
    );
    assert_eq!(l[0].to_bits(), 0.0f32.to_bits(), "lane 0: {}", l[0]);
    assert!(l[1..].iter().all(|&v| v == 1.5), "{l:?}");
    assert_eq!(e, x);
    // Through the executor's entry, in place, with `max` over a NaN: the canonical NaN.
    x[LANES + 1] = f32::NAN;
    let mut lanes = [0.0f32; LANES];
    // SAFETY: one row of `n` elements in place, 16 lanes.
    unsafe {
        let p = x.as_mut_ptr();
        row_binary_fold_raw(
            p,
            p,
            d.as_ptr(),
            (1, n as i64, n as i64, n as i64),
            0,
            lanes.as_mut_ptr(),
            3,
            1,
        );
    }
    assert_eq!(lanes[0], big);
    assert_eq!(lanes[1].to_bits(), f32::NAN.to_bits());
    assert_eq!(lanes[2], 0.5);
}
