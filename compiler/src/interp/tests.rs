//! Tests of the reference interpreter against hand-computed values.

use flow_runtime::{rand, DType, Data, Scalar, Tensor};

use super::{eval, Fault, InterpError};
use crate::mir::{parse, NodeId};

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), Data::F32(v.to_vec())).unwrap()
}

fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::new(shape.to_vec(), Data::I64(v.to_vec())).unwrap()
}

fn run(text: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    eval(&g, inputs)
}

fn run_ok(text: &str, inputs: &[Tensor]) -> Vec<Tensor> {
    run(text, inputs).unwrap_or_else(|e| panic!("{e}"))
}

/// The user monoids of `03_reductions.flow` and `04_stats_monoid.flow`.
pub(crate) const MONOIDS: &str = r#"monoid @0 "Stats" {
    state (n: f32, s: f32, ss: f32)
    zero (0.0f32, 0.0f32, 0.0f32)
    wrap (f32) = tuple(1.0f32, p0, mul(p0, p0))
    combine = tuple(add(p0.0, p1.0), add(p0.1, p1.1), add(p0.2, p1.2))
    unwrap (f32) = sub(div(p0.2, p0.0), mul(div(p0.1, p0.0), div(p0.1, p0.0)))
    commutative
}
monoid @1 "ArgMax" {
    state (v: f32, i: i64)
    zero (-inff32, 9223372036854775807i64)
    wrap (f32, i64) = tuple(p0, p1)
    combine = select(or(gt(p1.0, p0.0), and(eq(p1.0, p0.0), lt(p1.1, p0.1))), p1, p0)
}
"#;

#[test]
fn linear_layer() {
    let text = r#"%0 "x" = input 0 : f32[2, 3]
%1 "w" = input 1 : f32[3, 2]
%2 "b" = input 2 : f32[2]
%3 = reduce [2, 2] over [3] sum reads(%0.0[i0, i2], %1.0[i2, i1]) : f32[2, 2] { mul(r0, r1) }
%4 "y" = map [2, 2] reads(%2.0[i1], %3.0[i0, i1]) : f32[2, 2] { add(r0, r1) }
output %4.0
"#;
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let w = f32s(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let b = f32s(&[2], &[0.5, -1.0]);
    let out = run_ok(text, &[x, w, b]);
    assert_eq!(out, vec![f32s(&[2, 2], &[4.5, 4.0, 10.5, 10.0])]);
}

#[test]
fn builtin_reductions_over_axes() {
    let text = r#"%0 "x" = input 0 : f32[2, 3]
%1 "row_sums" = reduce [2] over [3] sum reads(%0.0[i0, i1]) : f32[2] { r0 }
%2 "col_max" = reduce [3] over [2] max reads(%0.0[i1, i0]) : f32[3] { r0 }
%3 "total_prod" = reduce [] over [2, 3] prod reads(%0.0[i0, i1]) : f32[] { r0 }
%4 "row_min" = reduce [2] over [3] min reads(%0.0[i0, i1]) : f32[2] { r0 }
%5 "any_big" = reduce [2] over [3] any reads(%0.0[i0, i1]) : bool[2] { gt(r0, 5.0f32) }
%6 "all_pos" = reduce [] over [2, 3] all reads(%0.0[i0, i1]) : bool[] { gt(r0, 0.0f32) }
%7 "isum" = reduce [] over [2, 3] sum reads(%0.0[i0, i1]) : i64[] { mul(cast(r0, i64), i1) }
output %1.0, %2.0, %3.0, %4.0, %5.0, %6.0, %7.0
"#;
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let out = run_ok(text, &[x]);
    assert_eq!(out[0], f32s(&[2], &[6.0, 15.0]));
    assert_eq!(out[1], f32s(&[3], &[4.0, 5.0, 6.0]));
    assert_eq!(out[2], Tensor::from_scalar(Scalar::F32(720.0)));
    assert_eq!(out[3], f32s(&[2], &[1.0, 4.0]));
    assert_eq!(out[4].data, Data::Bool(vec![false, true]));
    assert_eq!(out[5], Tensor::from_scalar(Scalar::Bool(true)));
    assert_eq!(out[6], Tensor::from_scalar(Scalar::I64(2 + 6 + 5 + 12)));
}

#[test]
fn empty_reductions_give_the_identity() {
    let text = format!(
        r#"{MONOIDS}%0 = input 0 : f32[2, 0]
%1 = input 1 : i32[2, 0]
%2 = reduce [2] over [0] sum reads(%0.0[i0, i1]) : f32[2] {{ r0 }}
%3 = reduce [2] over [0] prod reads(%0.0[i0, i1]) : f32[2] {{ r0 }}
%4 = reduce [2] over [0] max reads(%0.0[i0, i1]) : f32[2] {{ r0 }}
%5 = reduce [2] over [0] min reads(%0.0[i0, i1]) : f32[2] {{ r0 }}
%6 = reduce [2] over [0] max reads(%1.0[i0, i1]) : i32[2] {{ r0 }}
%7 = reduce [2] over [0] min reads(%1.0[i0, i1]) : i32[2] {{ r0 }}
%8 = reduce [2] over [0] any reads(%0.0[i0, i1]) : bool[2] {{ gt(r0, 0.0f32) }}
%9 = reduce [2] over [0] all reads(%0.0[i0, i1]) : bool[2] {{ gt(r0, 0.0f32) }}
%10 = reduce [2] over [0] @1 reads(%0.0[i0, i1]) : f32[2], i64[2] {{ r0; i1 }}
%11 = reduce [] over [3, 0] @0 : f32[] {{ 1.0f32 }}
output %2.0, %3.0, %4.0, %5.0, %6.0, %7.0, %8.0, %9.0, %10.0, %10.1, %11.0
"#
    );
    let x = Tensor::zeros(DType::F32, &[2, 0]).unwrap();
    let xi = Tensor::zeros(DType::I32, &[2, 0]).unwrap();
    let out = run_ok(&text, &[x, xi]);
    let inf = f32::INFINITY;
    assert_eq!(out[0], f32s(&[2], &[0.0, 0.0]));
    assert_eq!(out[1], f32s(&[2], &[1.0, 1.0]));
    assert_eq!(out[2], f32s(&[2], &[-inf, -inf]));
    assert_eq!(out[3], f32s(&[2], &[inf, inf]));
    assert_eq!(out[4].data, Data::I32(vec![i32::MIN; 2]));
    assert_eq!(out[5].data, Data::I32(vec![i32::MAX; 2]));
    assert_eq!(out[6].data, Data::Bool(vec![false; 2]));
    assert_eq!(out[7].data, Data::Bool(vec![true; 2]));
    assert_eq!(out[8], f32s(&[2], &[-inf, -inf]));
    assert_eq!(out[9], i64s(&[2], &[i64::MAX, i64::MAX]));
    // unwrap(zero) of Stats is 0/0 - (0/0)^2, NaN.
    assert!(matches!(out[10].get(0), Scalar::F32(v) if v.is_nan()));
}

#[test]
fn user_monoids_stats_and_argmax() {
    let text = format!(
        r#"{MONOIDS}%0 "x" = input 0 : f32[4]
%1 "y" = input 1 : f32[5]
%2 "var" = reduce [] over [4] @0 reads(%0.0[i0]) : f32[] {{ r0 }}
%3 "argmax" = reduce [] over [5] @1 reads(%1.0[i0]) : f32[], i64[] {{ r0; i0 }}
output %2.0, %3.0, %3.1
"#
    );
    let x = f32s(&[4], &[1.0, 2.0, 3.0, 4.0]);
    let y = f32s(&[5], &[3.0, 1.0, 7.0, 7.0, 2.0]);
    let out = run_ok(&text, &[x, y]);
    assert_eq!(out[0], Tensor::from_scalar(Scalar::F32(1.25)));
    assert_eq!(out[1], Tensor::from_scalar(Scalar::F32(7.0)));
    // The tie between indices 2 and 3 goes to the smaller index.
    assert_eq!(out[2], Tensor::from_scalar(Scalar::I64(2)));
}

#[test]
fn fold_order_is_row_major_left_to_right() {
    // A non-commutative monoid: the state appends each visited point's two-digit code, so
    // the fold order is visible in the result.
    let text = r#"monoid @0 "Digits" {
    state (i64)
    zero (0i64)
    combine = add(mul(p0, 100i64), p1)
}
%0 = reduce [2] over [2, 3] @0 : i64[2] { add(add(mul(i0, 50i64), mul(i1, 10i64)), add(i2, 1i64)) }
output %0.0
"#;
    let out = run_ok(text, &[]);
    // Free point 0 visits (0,0) (0,1) (0,2) (1,0) (1,1) (1,2): 1, 2, 3, 11, 12, 13; free
    // point 1 the same plus 50.
    assert_eq!(out[0], i64s(&[2], &[10203111213, 515253616263]));
}

#[test]
fn affine_windows_reversed_reads_pad_and_clamp() {
    let text = r#"%0 "x" = input 0 : f32[6]
%1 "w" = input 1 : f32[3]
%2 "conv" = reduce [4] over [3] sum reads(%1.0[i1], %0.0[i0 + i1]) : f32[4] { mul(r0, r1) }
%3 "rev" = map [6] reads(%0.0[5 - i0]) : f32[6] { r0 }
%4 "blur" = map [6] reads(%0.0[i0 - 1 | pad 0.0f32], %0.0[i0], %0.0[i0 + 1 | pad 0.0f32]) : f32[6] { add(add(r0, r1), r2) }
%5 "edge" = map [8] reads(%0.0[i0 - 1 | clamp]) : f32[8] { r0 }
%6 "stride" = map [3] reads(%0.0[2*i0 + 1]) : f32[3] { r0 }
%7 "pad2d" = map [2, 2] reads(%1.0[i0 - i1 + 1 | pad -1.0f32]) : f32[2, 2] { r0 }
output %2.0, %3.0, %4.0, %5.0, %6.0, %7.0
"#;
    let x = f32s(&[6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let w = f32s(&[3], &[1.0, 0.0, -1.0]);
    let out = run_ok(text, &[x, w]);
    assert_eq!(out[0], f32s(&[4], &[-2.0, -2.0, -2.0, -2.0]));
    assert_eq!(out[1], f32s(&[6], &[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]));
    assert_eq!(out[2], f32s(&[6], &[3.0, 6.0, 9.0, 12.0, 15.0, 11.0]));
    assert_eq!(
        out[3],
        f32s(&[8], &[1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0])
    );
    assert_eq!(out[4], f32s(&[3], &[2.0, 4.0, 6.0]));
    assert_eq!(out[5], f32s(&[2, 2], &[0.0, 1.0, -1.0, 0.0]));
}

#[test]
fn random_matches_the_runtime_generator() {
    let text = "%0 = random uniform seed 42 : f32[2, 4]\n%1 = random normal seed 7 : f32[5]\noutput %0.0, %1.0\n";
    let out = run_ok(text, &[]);
    let want: Vec<f32> = (0..8).map(|n| rand::uniform(42, n)).collect();
    assert_eq!(out[0], f32s(&[2, 4], &want));
    let want: Vec<f32> = (0..5).map(|n| rand::normal(7, n)).collect();
    assert_eq!(out[1], f32s(&[5], &want));
}

#[test]
fn integer_division_by_zero_is_an_error_naming_the_node() {
    let text = "%0 = input 0 : i64[3]\n%1 \"q\" = map [3] reads(%0.0[i0]) : i64[3] { div(10i64, r0) }\noutput %1.0\n";
    let err = run(text, &[i64s(&[3], &[1, 0, 2])]).unwrap_err();
    assert_eq!(
        err,
        InterpError::At {
            node: NodeId(1),
            label: "q".to_string(),
            problem: Fault::DivByZero
        }
    );
    assert_eq!(err.to_string(), "integer division by zero in node %1 \"q\"");
    let text = "%0 = input 0 : i64[1]\n%1 = map [1] reads(%0.0[i0]) : i64[1] { div(-9223372036854775808i64, r0) }\noutput %1.0\n";
    let err = run(text, &[i64s(&[1], &[-1])]).unwrap_err();
    assert!(
        matches!(
            err,
            InterpError::At {
                problem: Fault::DivOverflow,
                ..
            }
        ),
        "{err}"
    );
    // A user monoid's combine dividing by zero names the reduction.
    let text = "monoid @0 \"bad\" {\n    state (i32)\n    zero (0i32)\n    combine = div(p0, p1)\n}\n%0 \"r\" = reduce [] over [2] @0 : i32[] { 0i32 }\noutput %0.0\n";
    let err = run(text, &[]).unwrap_err();
    assert_eq!(err.to_string(), "integer division by zero in node %0 \"r\"");
}

#[test]
fn select_and_logic_evaluate_only_what_they_need() {
    let text = r#"%0 = input 0 : i64[3]
%1 = map [3] reads(%0.0[i0]) : i64[3] { select(ne(r0, 0i64), div(10i64, r0), -1i64) }
%2 = map [3] reads(%0.0[i0]) : bool[3] { and(ne(r0, 0i64), gt(div(10i64, r0), 4i64)) }
%3 = map [3] reads(%0.0[i0]) : bool[3] { or(eq(r0, 0i64), gt(rem(10i64, r0), 0i64)) }
output %1.0, %2.0, %3.0
"#;
    let out = run_ok(text, &[i64s(&[3], &[1, 0, 3])]);
    assert_eq!(out[0], i64s(&[3], &[10, -1, 3]));
    assert_eq!(out[1].data, Data::Bool(vec![true, false, false]));
    assert_eq!(out[2].data, Data::Bool(vec![false, true, true]));
}

#[test]
fn concat_slice_consts_and_multi_port_maps() {
    let text = r#"%0 = const i32[2, 2] [1, 2, 3, 4] : i32[2, 2]
%1 = map [1, 2] : i32[1, 2], f64[1, 2] { cast(i1, i32); cast(add(i0, i1), f64) }
%2 = concat axis 0 (%0.0, %1.0, %0.0) : i32[5, 2]
%3 = slice %2.0 start [1, 1] shape [3, 1] : i32[3, 1]
%4 = concat axis 1 (%0.0, %0.0) : i32[2, 4]
output %2.0, %3.0, %1.1, %4.0
"#;
    let out = run_ok(text, &[]);
    assert_eq!(out[0].data, Data::I32(vec![1, 2, 3, 4, 0, 1, 1, 2, 3, 4]));
    assert_eq!(out[0].shape, vec![5, 2]);
    assert_eq!(out[1].data, Data::I32(vec![4, 1, 2]));
    assert_eq!(out[2].data, Data::F64(vec![0.0, 1.0]));
    assert_eq!(out[3].data, Data::I32(vec![1, 2, 1, 2, 3, 4, 3, 4]));
}

#[test]
fn inputs_are_checked() {
    let text = "%0 \"x\" = input 1 : f32[4]\noutput %0.0\n";
    let err = run(text, &[f32s(&[4], &[0.0; 4])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the graph reads input 1, but only 1 inputs were given"
    );
    let x = f32s(&[3], &[0.0; 3]);
    let err = run(text, &[x.clone(), x]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input 1 \"x\" should be f32[4], found f32[3]"
    );
    let err = run(text, &[i64s(&[4], &[0; 4]), i64s(&[4], &[0; 4])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input 1 \"x\" should be f32[4], found i64[4]"
    );
}

#[test]
fn invalid_graphs_and_huge_shapes_are_errors() {
    let text =
        "%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0 + 1]) : f32[4] { r0 }\noutput %1.0\n";
    let err = run(text, &[f32s(&[4], &[0.0; 4])]).unwrap_err();
    assert!(matches!(err, InterpError::Invalid(_)), "{err}");
    assert!(
        err.to_string().starts_with("invalid MIR: node %1: read 0"),
        "{err}"
    );
    let text = "%0 = map [1099511627776, 1099511627776] : f32[1099511627776, 1099511627776] { 0.0f32 }\noutput %0.0\n";
    let err = run(text, &[]).unwrap_err();
    assert!(
        matches!(
            err,
            InterpError::At {
                problem: Fault::Alloc(_),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn scalar_semantics_at_the_edges() {
    let text = r#"%0 = map [] : i64[], i32[], f32[], f32[], bool[], i64[] { add(9223372036854775807i64, 1i64); shl(1i32, 33i32); max(nanf32, 1.0f32); min(-0.0f32, 0.0f32); lt(nanf32, 1.0f32); cast(1e20f32, i64) }
output %0.0, %0.1, %0.2, %0.3, %0.4, %0.5
"#;
    let out = run_ok(text, &[]);
    assert_eq!(out[0].get(0), Scalar::I64(i64::MIN));
    assert_eq!(out[1].get(0), Scalar::I32(2));
    assert!(matches!(out[2].get(0), Scalar::F32(v) if v.is_nan()));
    assert!(matches!(out[3].get(0), Scalar::F32(v) if v == 0.0 && v.is_sign_negative()));
    assert_eq!(out[4].get(0), Scalar::Bool(false));
    assert_eq!(out[5].get(0), Scalar::I64(i64::MAX));
}

#[test]
fn deep_expressions_within_the_parse_limit_evaluate() {
    let depth = crate::mir::parse::MAX_DEPTH - 1;
    let e = format!("{}1.0f32{}", "neg(".repeat(depth), ")".repeat(depth));
    let text = format!("%0 = map [] : f32[] {{ {e} }}\noutput %0.0\n");
    let g = parse(&text).unwrap();
    assert_eq!(crate::mir::print(&g), text);
    let out = eval(&g, &[]).unwrap();
    assert_eq!(out[0].get(0), Scalar::F32(-1.0));
}
