//! Unit tests of the native backend's span routines for user monoids: reductions that the
//! `lanes` pass folded into eight `f64` lanes with a sum-of-powers monoid (W2's `(n, s,
//! ss)`) run as `flow_runtime::spanmoments`' fold and agree with the interpreter bit for bit.

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
