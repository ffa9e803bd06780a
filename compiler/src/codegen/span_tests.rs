//! Unit tests of the native backend's span routines for user monoids: reductions that the
//! `lanes` pass folded into eight `f64` lanes with a sum-of-powers monoid (W2's `(n, s,
//! ss)`) run as `flow_runtime::spanmoments`' fold and agree with the interpreter bit for bit;
//! and of a row operation run with the lane fold of its output in one pass (`native/group.rs`).

use flow_runtime::{Data, Tensor};

use super::native;
use super::tests::{agree, data};
use crate::mir::ir::NodeId;
use crate::mir::parse;

/// A sum-of-powers monoid of `f64` fields with the given wrap fields, zero `+0.0`.
fn moments(name: &str, fields: &[&str]) -> String {
    let n = fields.len();
    let state: Vec<String> = (0..n).map(|k| format!("f{k}: f64")).collect();
    let zero = vec!["0.0f64"; n].join(", ");
    let (wrap, combine) = if n == 1 {
        (fields[0].to_string(), "add(p0, p1)".to_string())
    } else {
        let adds: Vec<String> = (0..n).map(|k| format!("add(p0.{k}, p1.{k})")).collect();
        (
            format!("tuple({})", fields.join(", ")),
            format!("tuple({})", adds.join(", ")),
        )
    };
    format!(
        "monoid @0 \"{name}\" {{\n    state ({})\n    zero ({zero})\n    wrap (f32) = {wrap}\n    combine = {combine}\n    commutative\n}}\n",
        state.join(", ")
    )
}

const X: &str = "cast(p0, f64)";
const SQ: &str = "mul(cast(p0, f64), cast(p0, f64))";

/// Their bits are the interpreter's at any shard split and thread count, for one to four
/// fields (constants, `x`, `x²` in any order), rank-1 inputs with a row stride and rank-2
/// ones, one row, one element per lane, and NaN, infinities, signed zeros and subnormals
/// among the inputs.
#[test]
fn moments_folds_over_spans_agree_with_the_interpreter() {
    let specials = |mut t: Tensor, every: usize| {
        let Data::F32(v) = &mut t.data else {
            unreachable!("f32 data")
        };
        let s = [
            f32::NAN,
            f32::INFINITY,
            -0.0,
            0.0,
            f32::NEG_INFINITY,
            f32::from_bits(3),
            3e38,
        ];
        for (j, i) in (0..v.len()).step_by(every).enumerate() {
            v[i] = s[j % s.len()];
        }
        t
    };
    let monoids = [
        moments("Moments", &["1.0f64", X, SQ]),
        moments("Square", &[SQ]),
        moments("Mixed", &[X, "-0.5f64", SQ, X]),
        moments("Two", &[SQ, "1e300f64"]),
    ];
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (b, m, every) in [(1, 1, 3), (5, 3, 1000), (70, 64, 301), (300, 4, 4001)] {
            for monoid in &monoids {
                let nf = monoid.matches("add(").count();
                let ty = vec![format!("f64[{b}, 8]"); nf].join(", ");
                let outs: Vec<String> = (0..nf).map(|k| format!("%1.{k}")).collect();
                let outs = outs.join(", ");
                // Rank 2: rows of `8m + 5`; rank 1: rows `8m + 3` apart, from offset 2.
                let n = 8 * m + 5;
                let x = specials(data(&[b, n], 13), every);
                let text = format!(
                    "{monoid}%0 = input 0 : f32[{b}, {n}]\n\
                     %1 = reduce [{b}, 8] over [{m}] @0 reads(%0.0[i0, 8*i2 + i1]) : {ty} {{ r0 }}\n\
                     output {outs}\n"
                );
                agree(&mut jit, &text, std::slice::from_ref(&x));
                let (s, len) = (8 * m + 3, (8 * m + 3) * b + 2);
                let x = specials(data(&[len], 17), every);
                let text = format!(
                    "{monoid}%0 = input 0 : f32[{len}]\n\
                     %1 = reduce [{b}, 8] over [{m}] @0 reads(%0.0[{s}*i0 + 8*i2 + i1 + 2]) : {ty} {{ r0 }}\n\
                     output {outs}\n"
                );
                agree(&mut jit, &text, std::slice::from_ref(&x));
            }
        }
    }
}

/// Which reductions are moments folds: not a wrap with another operation, a nonzero zero, a
/// combine that is not field-wise addition, an unwrap, or a read that is not the lanes
/// pass's.
#[test]
fn only_sums_of_powers_in_eight_lanes_are_moments_folds() {
    let is_fold = |monoid: &str, read: &str| {
        let nf = monoid.matches("add(p0").count().max(1);
        let ty = vec!["f64[4, 8]"; nf].join(", ");
        let text = format!(
            "{monoid}%0 = input 0 : f32[4, 64]\n\
             %1 = reduce [4, 8] over [8] @0 reads({read}) : {ty} {{ r0 }}\n\
             output %1.0\n"
        );
        let g = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        super::kernel::span_moments_fold(&g, &g.nodes[NodeId(1)]).is_some()
    };
    let lanes = "%0.0[i0, 8*i2 + i1]";
    assert!(is_fold(&moments("M", &["1.0f64", X, SQ]), lanes));
    assert!(is_fold(&moments("M", &[SQ]), "%0.0[i0 + 1, 8*i2 + i1 + 3]"));
    assert!(!is_fold(
        &moments("M", &["1.0f64", X, "add(cast(p0, f64), 1.0f64)"]),
        lanes
    ));
    assert!(!is_fold(&moments("M", &[X, X]), "%0.0[i0, 16*i2 + i1]"));
    assert!(!is_fold(&moments("M", &[X, X]), "%0.0[i2, 8*i0 + i1]"));
    let nonzero = moments("M", &[X, SQ]).replace("zero (0.0f64, 0.0f64)", "zero (1.0f64, 0.0f64)");
    assert!(!is_fold(&nonzero, lanes));
    let negative_zero =
        moments("M", &[X, SQ]).replace("zero (0.0f64, 0.0f64)", "zero (-0.0f64, 0.0f64)");
    assert!(!is_fold(&negative_zero, lanes));
    let swapped = moments("M", &[X, SQ]).replace("add(p0.1, p1.1)", "add(p1.1, p0.1)");
    assert!(!is_fold(&swapped, lanes));
    let multiplied = moments("M", &[X, SQ]).replace("add(p0.1, p1.1)", "mul(p0.1, p1.1)");
    assert!(!is_fold(&multiplied, lanes));
}

/// A row operation followed in its row group by the lane fold of its output (`sum` or `max`,
/// over all of a row or, when the row is not a multiple of 16 long, all but its ragged rest)
/// runs as one pass (`native/group.rs`) and gives the interpreter's bits at 1, 2 and 3
/// threads: rows of 16 to 4096 elements, NaN, infinities and signed zeros among them, a row
/// of infinities, offsets in the reads, `e` written over by the next map. Each row's lane
/// `r % 16` holds `1, 2^25, -2^25` first: summed in the lane's order they give 0 (`1 + 2^25`
/// rounds to `2^25`), in another 1, so a fused fold in another order fails here.
#[test]
fn row_operations_with_their_lane_fold_agree_with_the_interpreter() {
    let big = 33_554_432.0f32;
    let rows = |b: usize, n: usize, salt: u32| {
        let mut t = data(&[b, n], salt);
        let Data::F32(v) = &mut t.data else {
            unreachable!("f32 data")
        };
        let s = [f32::NAN, f32::INFINITY, -0.0, 0.0, f32::NEG_INFINITY];
        for (j, i) in (0..v.len()).step_by(301).enumerate() {
            v[i] = s[j % s.len()];
        }
        for r in 0..b {
            let l = r % 16;
            if n >= l + 33 {
                (v[r * n + l], v[r * n + l + 16], v[r * n + l + 32]) = (1.0, big, -big);
            }
        }
        if b > 2 {
            v[2 * n..3 * n].fill(f32::INFINITY);
        }
        t
    };
    let vectorized = flow_runtime::spanrows::lane_fold_is_vectorized();
    for threads in [1, 2, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (b, n) in [
            (1, 16),
            (3, 21),
            (70, 1000),
            (300, 272),
            (9, 1031),
            (20, 4096),
        ] {
            let m = n / 16;
            let x = rows(b + 1, n + 3, 7);
            let mut d = data(&[b + 2], 11);
            if let Data::F32(v) = &mut d.data {
                v.iter_mut().step_by(2).for_each(|z| *z = 0.0);
                v[1] = -0.0;
            }
            for body in [
                "add(r0, r1)",
                "exp(sub(r0, r1))",
                "mul(r1, r0)",
                "exp(div(r0, r1))",
            ] {
                for fold in ["sum", "max"] {
                    let text = format!(
                        "%0 = input 0 : f32[{}, {}]\n\
                         %1 = input 1 : f32[{}]\n\
                         %2 = map [{b}, {n}] reads(%0.0[i0 + 1, i1 + 2], %1.0[i0 + 1]) : f32[{b}, {n}] {{ {body} }}\n\
                         %3 = reduce [{b}, 16] over [{m}] {fold} reads(%2.0[i0, 16*i2 + i1]) : f32[{b}, 16] {{ r0 }}\n\
                         %4 = reduce [{b}] over [16] {fold} reads(%3.0[i0, i1]) : f32[{b}] {{ r0 }}\n\
                         %5 = map [{b}, {n}] reads(%2.0[i0, i1], %4.0[i0]) : f32[{b}, {n}] {{ sub(r0, r1) }}\n\
                         output %5.0, %3.0\n",
                        b + 1,
                        n + 3,
                        b + 2
                    );
                    let before = jit.row_folds();
                    agree(&mut jit, &text, &[x.clone(), d.clone()]);
                    assert_eq!(jit.row_folds() - before, usize::from(vectorized), "{text}");
                }
            }
        }
    }
}
