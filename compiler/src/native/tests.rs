//! Tests of the scan, histogram and scatter nodes: their text form, the verifier's checks,
//! the interpreter's results (small cases by hand, long ones against the runtime's parallel
//! routines at several thread counts, bit for bit), and the native backend's agreement with
//! the interpreter at 1, 2, 3 and 8 threads, fused producers and errors included.

use flow_runtime::pool::Pool;
use flow_runtime::prims::histogram::reduce_by_index;
use flow_runtime::prims::scan::{scan, ScanKind};
use flow_runtime::prims::Sum;
use flow_runtime::{Data, Tensor};

use std::rc::Rc;

use crate::mir::verify::Problem;
use crate::mir::{parse, print, verify};

const PRIMS: &str = r#"monoid @0 "last" {
    state (f: bool, v: i64)
    zero (false, 0i64)
    combine = select(p1.0, p1, tuple(or(p0.0, p1.0), add(p0.1, p1.1)))
}
%0 "x" = input 0 : f32[2, 3]
%1 "i" = input 1 : i64[4]
%2 "v" = input 2 : f32[4]
%3 "d" = input 3 : f32[5]
%4 "s" = scan [2, 3] sum reads(%0.0[i0, i1]) : f32[2, 3] { mul(r0, 2.0f32) }
%5 "e" = scan [2, 3] exclusive max reads(%0.0[i0, i1]) : f32[2, 3] { r0 }
%6 "h" = histogram [4] bins 3 sum reads(%1.0[i0], %2.0[i0]) : f32[3] { r0; r1 }
%7 "c" = scatter %3.0 [4] reads(%1.0[i0], %2.0[i0]) : f32[5] { r0; r1 }
%8 "g" = scan [4] @0 reads(%1.0[i0]) : bool[4], i64[4] { tuple(eq(r0, 0i64), r0) }
output %4.0, %5.0, %6.0, %7.0, %8.1
"#;

fn t(shape: &[usize], data: Data) -> Tensor {
    Tensor::new(shape.to_vec(), data).expect("shape")
}

fn run(text: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, crate::interp::InterpError> {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(print(&g), text, "the text form round-trips");
    verify(&g).unwrap_or_else(|e| panic!("{e}"));
    crate::interp::eval(&g, inputs)
}

fn prims_inputs(i: Vec<i64>) -> Vec<Tensor> {
    vec![
        t(&[2, 3], Data::F32(vec![1.0, -2.0, 3.0, 4.0, 5.0, -6.0])),
        t(&[4], Data::I64(i)),
        t(&[4], Data::F32(vec![10.0, 20.0, 30.0, 40.0])),
        t(&[5], Data::F32(vec![0.5; 5])),
    ]
}

#[test]
fn scans_histograms_and_scatters_print_parse_and_evaluate() {
    let out = run(PRIMS, &prims_inputs(vec![2, 0, 2, 1])).expect("runs");
    assert_eq!(out[0].data, Data::F32(vec![2.0, -2.0, 4.0, 8.0, 18.0, 6.0]));
    let lo = f32::NEG_INFINITY;
    assert_eq!(out[1].data, Data::F32(vec![lo, 1.0, 1.0, lo, 4.0, 5.0]));
    assert_eq!(out[2].data, Data::F32(vec![20.0, 40.0, 40.0]));
    // Index 2 is written twice: the last in index order (30) wins.
    assert_eq!(out[3].data, Data::F32(vec![20.0, 40.0, 30.0, 0.5, 0.5]));
    // A segmented sum: a segment starts where the index is 0.
    let seg = run(PRIMS, &prims_inputs(vec![2, 1, 0, 2])).expect("runs");
    assert_eq!(seg[4].data, Data::I64(vec![2, 3, 0, 2]));
    let seg = run(PRIMS, &prims_inputs(vec![1, 2, 2, 0])).expect("runs");
    assert_eq!(seg[4].data, Data::I64(vec![1, 3, 5, 0]));
}

#[test]
fn an_index_out_of_range_is_an_error_naming_it() {
    for bad in [vec![2, 0, 7, 1], vec![2, -1, 0, 1]] {
        let e = run(PRIMS, &prims_inputs(bad.clone()))
            .unwrap_err()
            .to_string();
        let v = if bad[1] < 0 { "-1" } else { "7" };
        assert!(e.contains(&format!("index [{v}]")), "{e}");
        assert!(e.contains("out of range"), "{e}");
    }
}

#[test]
fn long_scans_and_histograms_match_the_runtime_at_every_thread_count() {
    let n = 3 * flow_runtime::prims::SCAN_BLOCK + 77;
    let xs: Vec<f32> = (0..n)
        .map(|k| ((k * 7919) % 1000) as f32 * 0.001 - 0.3)
        .collect();
    let idx: Vec<i64> = (0..n).map(|k| ((k * 31) % 5) as i64).collect();
    let text = format!(
        "%0 = input 0 : f32[{n}]\n%1 = input 1 : i64[{n}]\n\
         %2 = scan [{n}] sum reads(%0.0[i0]) : f32[{n}] {{ r0 }}\n\
         %3 = scan [{n}] exclusive sum reads(%0.0[i0]) : f32[{n}] {{ r0 }}\n\
         %4 = histogram [{n}] bins 5 sum reads(%1.0[i0], %0.0[i0]) : f32[5] {{ r0; r1 }}\n\
         output %2.0, %3.0, %4.0\n"
    );
    let out = run(
        &text,
        &[
            t(&[n], Data::F32(xs.clone())),
            t(&[n], Data::I64(idx.clone())),
        ],
    )
    .expect("runs");
    let m = Sum::<f32>::new();
    for threads in [1, 2, 3, 8] {
        let pool = Pool::new(threads).expect("pool");
        for (k, kind) in [(0, ScanKind::Inclusive), (1, ScanKind::Exclusive)] {
            let mut y = vec![0.0f32; n];
            scan(&pool, &m, kind, n, &xs, &mut y).expect("scan");
            let Data::F32(got) = &out[k].data else {
                panic!("f32")
            };
            let same = got.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{kind:?} at {threads} threads");
        }
        let mut bins = vec![0.0f32; 5];
        reduce_by_index(&pool, &m, &idx, &xs, &mut bins).expect("histogram");
        assert_eq!(
            out[2].data,
            Data::F32(bins),
            "histogram at {threads} threads"
        );
    }
}

#[test]
fn the_verifier_checks_indices_and_destinations() {
    let base = "%0 = input 0 : f32[4]\n%1 = input 1 : f32[5]\n";
    let p = |node: &str| {
        let g = parse(&format!("{base}{node}\noutput %2.0\n")).unwrap_or_else(|e| panic!("{e}"));
        *verify(&g).unwrap_err().problem
    };
    assert!(matches!(
        p("%2 = histogram [4] bins 3 sum reads(%0.0[i0]) : f32[3] { r0; r0 }"),
        Problem::IndexType { .. }
    ));
    assert!(matches!(
        p("%2 = scatter %1.0 [4, 2] reads(%0.0[i0]) : f32[5] { 0i64; r0 }"),
        Problem::ScatterShape { .. }
    ));
    assert!(matches!(
        p("%2 = scan [] sum : f32[] { 1.0f32 }"),
        Problem::ScalarSpace
    ));
    assert!(matches!(
        p("%2 = histogram [4] bins 3 sum reads(%0.0[i0]) : f32[4] { 1i64; r0 }"),
        Problem::PortType { .. }
    ));
}

/// Runs `text` on the interpreter and on the native backend (JIT kernels) at 1, 2, 3 and 8
/// threads and asserts the same outputs bit for bit, or the same error.
fn agree(text: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let want = crate::interp::eval(&g, inputs).map_err(|e| e.to_string());
    let ins: Vec<Rc<Tensor>> = inputs.iter().cloned().map(Rc::new).collect();
    for threads in [1, 2, 3, 8] {
        let mut native = crate::codegen::native(threads).expect("a JIT");
        // Twice: the second run takes its outputs from the buffer pool.
        for _ in 0..2 {
            let got = native.eval(&g, &ins).map_err(|e| e.to_string());
            match (&want, &got) {
                (Ok(w), Ok(got)) => {
                    for (w, o) in w.iter().zip(got) {
                        assert_eq!(w.shape, o.shape);
                        for i in 0..w.len() {
                            let (a, b) = (w.get(i), o.get(i));
                            assert!(
                                format!("{a:?}") == format!("{b:?}"),
                                "element {i} at {threads} threads: interpreter {a:?}, native {b:?}\n{text}"
                            );
                        }
                    }
                }
                (Err(w), Err(o)) => {
                    let cause = w.split(" in node").next().unwrap_or(w);
                    assert!(o.contains(cause), "interpreter: {w}\nnative: {o}");
                }
                _ => panic!("interpreter {want:?}, native {got:?}"),
            }
        }
    }
    want
}

#[test]
fn the_native_backend_agrees_on_scans_histograms_and_scatters() {
    // The tuple-state scan `%8` too runs on the routines, not the interpreter.
    agree_natively(PRIMS, &prims_inputs(vec![2, 0, 2, 1])).expect("runs");
    let e = agree(PRIMS, &prims_inputs(vec![2, 0, 9, 1])).unwrap_err();
    assert!(e.contains("index [9]"), "{e}");
    // Long rows and many rows, plain and fused (the element is a map of two tensors).
    let (r, n) = (3, 2 * flow_runtime::prims::SCAN_BLOCK + 1001);
    let xs: Vec<f32> = (0..r * n)
        .map(|k| ((k * 7919) % 1000) as f32 * 0.01 - 4.1)
        .collect();
    let idx: Vec<i32> = (0..r * n).map(|k| ((k * 131) % 300) as i32).collect();
    let m = r * n;
    let text = format!(
        "%0 = input 0 : f32[{r}, {n}]\n%1 = input 1 : i32[{m}]\n%2 = input 2 : f32[{m}]\n\
         %3 = scan [{r}, {n}] sum reads(%0.0[i0, i1]) : f32[{r}, {n}] {{ r0 }}\n\
         %4 = scan [{r}, {n}] exclusive sum reads(%0.0[i0, i1]) : f32[{r}, {n}] {{ mul(r0, r0) }}\n\
         %5 = histogram [{m}] bins 300 sum reads(%1.0[i0], %2.0[i0]) : f32[300] {{ r0; r1 }}\n\
         %6 = histogram [{m}] bins 300 max reads(%1.0[i0], %2.0[i0]) : f32[300] {{ r0; sub(r1, 1.0f32) }}\n\
         %7 = scatter %2.0 [{m}] reads(%1.0[i0], %2.0[i0]) : f32[{m}] {{ mul(r0, 2i32); neg(r1) }}\n\
         output %3.0, %4.0, %5.0, %6.0, %7.0\n"
    );
    let x2 = t(&[m], Data::F32(xs.clone()));
    agree(
        &text,
        &[t(&[r, n], Data::F32(xs)), t(&[m], Data::I32(idx)), x2],
    )
    .expect("runs");
}

/// The MIR text of the casts from `f32` to `dtype`.
fn cast_to(e: &str, dtype: &str) -> String {
    if dtype == "f32" {
        e.to_string()
    } else {
        format!("cast({e}, {dtype})")
    }
}

#[test]
fn fused_producers_agree_for_every_element_type_and_length() {
    let block = flow_runtime::prims::SCAN_BLOCK;
    // Empty, one element, a tail, one block, several blocks and a tail.
    for n in [0, 1, 7, block, 2 * block + 5] {
        let xs: Vec<f32> = (0..n).map(|k| ((k * 7919) % 9973) as f32 * 0.01).collect();
        for dtype in ["f32", "f64", "i32", "i64", "u8", "u32", "u64"] {
            // Values in 0..100: a float producer that rounds, cast to the type.
            let v = cast_to("add(mul(r0, 3.1f32), 1.0f32)", dtype);
            let bin = "cast(mul(r0, 0.17f32), i64)";
            let text = format!(
                "%0 = input 0 : f32[{n}]\n%1 = input 1 : {dtype}[11]\n\
                 %2 = scan [{n}] sum reads(%0.0[i0]) : {dtype}[{n}] {{ {v} }}\n\
                 %3 = scan [{n}] exclusive max reads(%0.0[i0]) : {dtype}[{n}] {{ {v} }}\n\
                 %4 = histogram [{n}] bins 17 sum reads(%0.0[i0]) : {dtype}[17] {{ {bin}; {v} }}\n\
                 %5 = scatter %1.0 [{n}] reads(%0.0[i0]) : {dtype}[11] {{ cast(mul(r0, 0.11f32), i32); {v} }}\n\
                 output %2.0, %3.0, %4.0, %5.0\n"
            );
            let dest = flow_runtime::DType::from_name(dtype).expect("a type");
            let ins = [
                t(&[n], Data::F32(xs.clone())),
                t(&[11], Data::zeros(dest, 11)),
            ];
            agree(&text, &ins).unwrap_or_else(|e| panic!("{dtype} {n}: {e}"));
        }
    }
}

#[test]
fn fused_producers_keep_the_order_of_a_non_commutative_monoid_and_rows() {
    // The last non-zero element: associative, not commutative.
    let block = flow_runtime::prims::SCAN_BLOCK;
    for (dtype, zero) in [("i64", "0i64"), ("u32", "0u32")] {
        let n = 2 * block + 9;
        let (r, c) = (1000, 37);
        let text = format!(
            "monoid @0 \"last\" {{\n    state (v: {dtype})\n    zero ({zero})\n    \
             combine = select(eq(p1, {zero}), p0, p1)\n}}\n\
             %0 = input 0 : i64[{n}]\n%1 = input 1 : f32[{r}, {c}]\n\
             %2 = scan [{n}] @0 reads(%0.0[i0]) : {dtype}[{n}] {{ cast(rem(r0, 5i64), {dtype}) }}\n\
             %3 = scan [{n}] exclusive @0 reads(%0.0[i0]) : {dtype}[{n}] {{ cast(rem(mul(r0, 3i64), 4i64), {dtype}) }}\n\
             %4 = histogram [{n}] bins 3 @0 reads(%0.0[i0]) : {dtype}[3] {{ rem(r0, 3i64); cast(rem(r0, 7i64), {dtype}) }}\n\
             %5 = scan [{r}, {c}] sum reads(%1.0[i0, i1]) : f32[{r}, {c}] {{ mul(r0, r0) }}\n\
             output %2.0, %3.0, %4.0, %5.0\n"
        );
        let idx: Vec<i64> = (0..n as i64)
            .map(|k| (k * 7919) % 1013 * ((k / 5) % 2))
            .collect();
        let xs: Vec<f32> = (0..r * c).map(|k| (k % 101) as f32 * 0.37 - 9.0).collect();
        agree(&text, &[t(&[n], Data::I64(idx)), t(&[r, c], Data::F32(xs))])
            .unwrap_or_else(|e| panic!("{dtype}: {e}"));
    }
}

#[test]
fn a_fused_producer_makes_no_tensor_of_its_elements() {
    let n = 3 * flow_runtime::prims::SCAN_BLOCK + 1;
    let text = format!(
        "%0 = input 0 : f32[{n}]\n%1 = input 1 : i64[{n}]\n\
         %2 = scan [{n}] sum reads(%0.0[i0]) : f32[{n}] {{ add(mul(r0, 2.0f32), 1.0f32) }}\n\
         %3 = histogram [{n}] bins 256 sum reads(%0.0[i0]) : f32[256] {{ cast(mul(r0, 256.0f32), i64); r0 }}\n\
         output %2.0, %3.0\n"
    );
    let g = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let xs: Vec<f32> = (0..n)
        .map(|k| ((k * 7919) % 9973) as f32 / 9973.0)
        .collect();
    let ins = [
        Rc::new(t(&[n], Data::F32(xs))),
        Rc::new(t(&[n], Data::I64(vec![0; n]))),
    ];
    let mut native = crate::codegen::native(3).expect("a JIT");
    native.eval(&g, &ins).expect("runs");
    // One buffer per output, none for the elements of the scan or of the histogram.
    let s = native.buffer_stats();
    assert_eq!(s.hits + s.misses, 2, "{s:?}");
    assert_eq!(native.last_peak(), (n * 4 + 256 * 4) as u128);
}

/// [`agree`], and that a successful native run took no node to the interpreter.
fn agree_natively(text: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let want = agree(text, inputs)?;
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ins: Vec<Rc<Tensor>> = inputs.iter().cloned().map(Rc::new).collect();
    let mut native = crate::codegen::native(2).expect("a JIT");
    native.eval(&g, &ins).expect("runs");
    assert_eq!(
        native.interpreted(),
        0,
        "a node ran on the interpreter\n{text}"
    );
    Ok(want)
}

/// Rows of the 2-D histogram tests: empty, one, a tail, one shard and two shards and a tail.
fn row_counts() -> [usize; 5] {
    let shard = flow_runtime::prims::HISTOGRAM_SHARD;
    [0, 1, 7, shard, 2 * shard + 5]
}

/// The inputs of the row tests over `n` rows of 3: values, an index per row into 17 and an
/// index per point into 5 (many duplicates).
fn row_inputs(n: usize) -> (Vec<f32>, Vec<i64>, Vec<i32>) {
    let xs: Vec<f32> = (0..3 * n)
        .map(|k| ((k * 7919) % 9973) as f32 * 0.01)
        .collect();
    let idx: Vec<i64> = (0..n as i64).map(|k| (k * 31) % 17).collect();
    let idx2: Vec<i32> = (0..3 * n as i32).map(|k| (k * 131) % 5).collect();
    (xs, idx, idx2)
}

#[test]
fn histograms_of_rows_agree_for_every_element_type_and_length() {
    for n in row_counts() {
        let (xs, idx, idx2) = row_inputs(n);
        for dtype in ["f32", "f64", "i32", "i64", "u8", "u32", "u64"] {
            let v = cast_to("add(mul(r1, 3.1f32), 1.0f32)", dtype);
            let w = cast_to("mul(r0, 0.7f32)", dtype);
            // A fused index read along the rows only, a plain index tensor of every point, and
            // an index and a value both computed from one read.
            let text = format!(
                "%0 = input 0 : f32[{n}, 3]\n%1 = input 1 : i64[{n}]\n%2 = input 2 : i32[{n}, 3]\n\
                 %3 = map [{n}, 3] reads(%0.0[i0, i1]) : {dtype}[{n}, 3] {{ {w} }}\n\
                 %4 = histogram [{n}, 3] bins 17 sum reads(%1.0[i0], %0.0[i0, i1]) : {dtype}[17, 3] {{ r0; {v} }}\n\
                 %5 = histogram [{n}, 3] bins 5 max reads(%2.0[i0, i1], %3.0[i0, i1]) : {dtype}[5, 3] {{ r0; r1 }}\n\
                 %6 = histogram [{n}, 3] bins 4 min reads(%0.0[i0, i1]) : {dtype}[4, 3] {{ cast(rem(mul(r0, 100.0f32), 4.0f32), i64); {w} }}\n\
                 output %4.0, %5.0, %6.0\n"
            );
            let ins = [
                t(&[n, 3], Data::F32(xs.clone())),
                t(&[n], Data::I64(idx.clone())),
                t(&[n, 3], Data::I32(idx2.clone())),
            ];
            agree_natively(&text, &ins).unwrap_or_else(|e| panic!("{dtype} {n}: {e}"));
        }
    }
}

#[test]
fn histograms_of_rows_keep_index_order_and_report_errors() {
    let last = "monoid @0 \"last\" {\n    state (v: i64)\n    zero (0i64)\n    \
                combine = select(eq(p1, 0i64), p0, p1)\n}\n";
    for n in row_counts() {
        let idx: Vec<i64> = (0..n as i64).map(|k| (k * 7919) % 13).collect();
        let vals: Vec<i64> = (0..4 * n as i64)
            .map(|k| (k * 31) % 7 * ((k / 3) % 2))
            .collect();
        let text = format!(
            "{last}%0 = input 0 : i64[{n}]\n%1 = input 1 : i64[{n}, 4]\n%2 = input 2 : i64[{n}, 2, 2]\n\
             %3 = histogram [{n}, 4] bins 13 @0 reads(%0.0[i0], %1.0[i0, i1]) : i64[13, 4] {{ r0; r1 }}\n\
             %4 = histogram [{n}, 2, 2] bins 13 sum reads(%0.0[i0], %2.0[i0, i1, i2]) : f32[13, 2, 2] {{ r0; cast(r1, f32) }}\n\
             output %3.0, %4.0\n"
        );
        let ins = |idx: Vec<i64>| {
            [
                t(&[n], Data::I64(idx)),
                t(&[n, 4], Data::I64(vals.clone())),
                t(&[n, 2, 2], Data::I64(vals.clone())),
            ]
        };
        agree_natively(&text, &ins(idx.clone())).unwrap_or_else(|e| panic!("{n}: {e}"));
        if n == 0 {
            continue;
        }
        // An index out of range (the first in index order is named), and a producer that fails.
        let mut bad = idx.clone();
        bad[n - 1] = 13;
        let e = agree(&text, &ins(bad)).unwrap_err();
        assert!(e.contains("index [13]"), "{e}");
        let text = format!(
            "%0 = input 0 : i64[{n}]\n%1 = input 1 : i64[{n}, 4]\n%2 = input 2 : i64[{n}, 2, 2]\n\
             %3 = histogram [{n}, 4] bins 13 sum reads(%0.0[i0], %1.0[i0, i1]) : i64[13, 4] {{ div(12i64, add(r0, 1i64)); r1 }}\n\
             output %3.0\n"
        );
        let mut zero = idx;
        zero[n / 2] = -1;
        let e = agree(&text, &ins(zero)).unwrap_err();
        assert!(e.contains("division by zero"), "{e}");
    }
}

/// The MIR literal 0 of `dtype`.
fn zero_of(dtype: &str) -> String {
    match dtype {
        "f32" | "f64" => format!("0.0{dtype}"),
        _ => format!("0{dtype}"),
    }
}

#[test]
fn tuple_state_scans_and_histograms_agree_for_every_element_type_and_length() {
    let block = flow_runtime::prims::SCAN_BLOCK;
    for n in [0, 1, 7, block, 2 * block + 5] {
        let xs: Vec<f32> = (0..n).map(|k| ((k * 7919) % 9973) as f32 * 0.01).collect();
        let idx: Vec<i64> = (0..n as i64).map(|k| (k * 31) % 11).collect();
        for dtype in ["f32", "f64", "i32", "i64", "u8", "u32", "u64"] {
            // A segmented sum (a flag starts a segment): associative, not commutative.
            let z = zero_of(dtype);
            let v = cast_to("add(mul(r1, 3.1f32), 1.0f32)", dtype);
            let text = format!(
                "monoid @0 \"seg\" {{\n    state (f: bool, v: {dtype})\n    zero (false, {z})\n    \
                 combine = select(p1.0, p1, tuple(or(p0.0, p1.0), add(p0.1, p1.1)))\n}}\n\
                 %0 = input 0 : f32[{n}]\n%1 = input 1 : i64[{n}]\n\
                 %2 = scan [{n}] @0 reads(%1.0[i0], %0.0[i0]) : bool[{n}], {dtype}[{n}] {{ tuple(eq(rem(r0, 5i64), 0i64), {v}) }}\n\
                 %3 = scan [{n}] exclusive @0 reads(%1.0[i0], %0.0[i0]) : bool[{n}], {dtype}[{n}] {{ tuple(eq(r0, 3i64), {v}) }}\n\
                 %4 = histogram [{n}] bins 7 @0 reads(%1.0[i0], %0.0[i0]) : bool[7], {dtype}[7] {{ rem(r0, 7i64); tuple(eq(r0, 2i64), {v}) }}\n\
                 output %2.0, %2.1, %3.1, %4.0, %4.1\n"
            );
            let ins = [
                t(&[n], Data::F32(xs.clone())),
                t(&[n], Data::I64(idx.clone())),
            ];
            agree_natively(&text, &ins).unwrap_or_else(|e| panic!("{dtype} {n}: {e}"));
        }
    }
}

#[test]
fn wrapped_and_unwrapped_monoids_run_natively_and_report_errors() {
    // The interpreter tests' Stats and ArgMax, and a quotient monoid that can divide by zero.
    let monoids = crate::interp::tests::MONOIDS.to_string()
        + r#"monoid @2 "Quot" {
    state (a: i64, b: i64)
    zero (0i64, 1i64)
    combine = tuple(add(p0.0, p1.0), div(mul(p0.1, p1.1), p1.1))
}
"#;
    let block = flow_runtime::prims::SCAN_BLOCK;
    for n in [0, 1, 7, block, 2 * block + 5] {
        let (r, c) = (3, n);
        let xs: Vec<f32> = (0..r * c)
            .map(|k| ((k * 7919) % 9973) as f32 * 0.01 - 20.0)
            .collect();
        let ks: Vec<i64> = (0..(r * c) as i64).map(|k| (k * 13) % 9 + 1).collect();
        let text = |div: &str| {
            format!(
                "{monoids}%0 = input 0 : f32[{r}, {c}]\n%1 = input 1 : i64[{r}, {c}]\n\
                 %2 = scan [{r}, {c}] @0 reads(%0.0[i0, i1]) : f32[{r}, {c}] {{ r0 }}\n\
                 %3 = scan [{r}, {c}] exclusive @1 reads(%0.0[i0, i1]) : f32[{r}, {c}], i64[{r}, {c}] {{ mul(r0, r0); cast(i1, i64) }}\n\
                 %4 = histogram [{r}, {c}] bins 4 @1 reads(%0.0[i0, i1]) : f32[4, {c}], i64[4, {c}] {{ cast(i0, i64); r0; cast(i1, i64) }}\n\
                 %5 = scan [{r}, {c}] @2 reads(%1.0[i0, i1]) : i64[{r}, {c}], i64[{r}, {c}] {{ tuple(r0, {div}) }}\n\
                 output %2.0, %3.0, %3.1, %4.0, %4.1, %5.0, %5.1\n"
            )
        };
        let ins = |ks: Vec<i64>| [t(&[r, c], Data::F32(xs.clone())), t(&[r, c], Data::I64(ks))];
        agree_natively(&text("r0"), &ins(ks.clone())).unwrap_or_else(|e| panic!("{n}: {e}"));
        if n == 0 {
            continue;
        }
        // A combine that divides by zero, and a producer that does.
        let mut zero = ks.clone();
        zero[r * c - 1] = 0;
        if n > 1 {
            // (With rows of one element the combine never runs.)
            let e = agree(&text("r0"), &ins(zero.clone())).unwrap_err();
            assert!(e.contains("division by zero"), "{e}");
        }
        let e = agree(&text("div(1i64, r0)"), &ins(zero)).unwrap_err();
        assert!(e.contains("division by zero"), "{e}");
    }
}

/// The MIR text of `f32` expression `e` as a `dtype` value (`bool`: whether it exceeds 40).
fn value_as(e: &str, dtype: &str) -> String {
    match dtype {
        "bool" => format!("gt({e}, 40.0f32)"),
        _ => cast_to(e, dtype),
    }
}

#[test]
fn scatters_of_rows_agree_for_every_element_type_and_length() {
    for n in row_counts() {
        let (xs, idx, idx2) = row_inputs(n);
        for dtype in ["f32", "f64", "i32", "i64", "u8", "u32", "u64", "bool"] {
            let v = value_as("add(mul(r1, 3.1f32), 1.0f32)", dtype);
            let w = value_as("mul(r0, 0.7f32)", dtype);
            // A fused producer (an index read along the rows only), plain tensors (an index
            // of every point), an index and a value both computed from one read.
            let text = format!(
                "%0 = input 0 : f32[{n}, 3]\n%1 = input 1 : i64[{n}]\n%2 = input 2 : i32[{n}, 3]\n\
                 %3 = input 3 : {dtype}[17, 3]\n\
                 %4 = map [{n}, 3] reads(%0.0[i0, i1]) : {dtype}[{n}, 3] {{ {w} }}\n\
                 %5 = scatter %3.0 [{n}, 3] reads(%1.0[i0], %0.0[i0, i1]) : {dtype}[17, 3] {{ r0; {v} }}\n\
                 %6 = scatter %3.0 [{n}, 3] reads(%2.0[i0, i1], %4.0[i0, i1]) : {dtype}[17, 3] {{ r0; r1 }}\n\
                 %7 = scatter %3.0 [{n}, 3] reads(%0.0[i0, i1]) : {dtype}[17, 3] {{ cast(rem(mul(r0, 100.0f32), 17.0f32), i64); {w} }}\n\
                 output %5.0, %6.0, %7.0\n"
            );
            let dest = flow_runtime::DType::from_name(dtype).expect("a type");
            let ins = [
                t(&[n, 3], Data::F32(xs.clone())),
                t(&[n], Data::I64(idx.clone())),
                t(&[n, 3], Data::I32(idx2.clone())),
                t(&[17, 3], Data::zeros(dest, 51)),
            ];
            agree_natively(&text, &ins).unwrap_or_else(|e| panic!("{dtype} {n}: {e}"));
        }
    }
}

#[test]
fn scatters_of_rows_keep_the_last_writer_and_report_errors() {
    for n in row_counts() {
        let idx: Vec<i64> = (0..n as i64).map(|k| (k * 7919) % 13).collect();
        let vals: Vec<i64> = (0..4 * n as i64).map(|k| (k * 31) % 1009).collect();
        // Rows of 4, rows of 2 × 2 (rank 3), and a tuple (one scatter per field).
        let text = format!(
            "%0 = input 0 : i64[{n}]\n%1 = input 1 : i64[{n}, 4]\n%2 = input 2 : i64[{n}, 2, 2]\n\
             %3 = input 3 : i64[13, 4]\n%4 = input 4 : f32[13, 2, 2]\n\
             %5 = scatter %3.0 [{n}, 4] reads(%0.0[i0], %1.0[i0, i1]) : i64[13, 4] {{ r0; r1 }}\n\
             %6 = scatter %4.0 [{n}, 2, 2] reads(%0.0[i0], %2.0[i0, i1, i2]) : f32[13, 2, 2] {{ r0; cast(r1, f32) }}\n\
             %7 = scatter %3.0 [{n}, 4] reads(%0.0[i0], %1.0[i0, i1]) : i64[13, 4] {{ r0; neg(r1) }}\n\
             output %5.0, %6.0, %7.0\n"
        );
        let ins = |idx: Vec<i64>| {
            [
                t(&[n], Data::I64(idx)),
                t(&[n, 4], Data::I64(vals.clone())),
                t(&[n, 2, 2], Data::I64(vals.clone())),
                t(&[13, 4], Data::I64((0..52).collect())),
                t(&[13, 2, 2], Data::F32(vec![0.5; 52])),
            ]
        };
        let out = agree_natively(&text, &ins(idx.clone())).unwrap_or_else(|e| panic!("{n}: {e}"));
        // Each destination row holds the last source row (in index order) with its index.
        let mut want: Vec<i64> = (0..52).collect();
        for (r, &k) in idx.iter().enumerate() {
            let k = k as usize;
            want[4 * k..4 * k + 4].copy_from_slice(&vals[4 * r..4 * r + 4]);
        }
        assert_eq!(out[0].data, Data::I64(want), "{n}");
        if n == 0 {
            continue;
        }
        // An index out of range (the first in index order is named), and a producer that fails.
        let mut bad = idx.clone();
        bad[n - 1] = 13;
        if n > 2 {
            bad[n / 2] = -1;
        }
        let e = agree(&text, &ins(bad)).unwrap_err();
        let first = if n > 2 { "index [-1]" } else { "index [13]" };
        assert!(e.contains(first), "{e}");
        let text = format!(
            "%0 = input 0 : i64[{n}]\n%1 = input 1 : i64[{n}, 4]\n%2 = input 2 : i64[{n}, 2, 2]\n\
             %3 = input 3 : i64[13, 4]\n%4 = input 4 : f32[13, 2, 2]\n\
             %5 = scatter %3.0 [{n}, 4] reads(%0.0[i0], %1.0[i0, i1]) : i64[13, 4] {{ div(12i64, add(r0, 1i64)); r1 }}\n\
             output %5.0\n"
        );
        let mut zero = idx;
        zero[n / 2] = -1;
        let e = agree(&text, &ins(zero)).unwrap_err();
        assert!(e.contains("division by zero"), "{e}");
    }
}

#[test]
fn scans_of_rank_three_compute_their_producer_block_by_block() {
    let block = flow_runtime::prims::SCAN_BLOCK;
    let outer = super::producer::PRODUCED_OUTER_ROWS;
    // Outermost rows of at most a block (none, one, a tail, two blocks' worth and a tail),
    // and longer ones, as many as a producer needs.
    let shapes = [
        (0, 3, 5),
        (1, 3, 5),
        (7, 3, 5),
        (2 * block / 15 + 3, 3, 5),
        (outer, 3, 2 * block / 6 + 7),
    ];
    for (a, b, c) in shapes {
        let n = a * b * c;
        let xs: Vec<f32> = (0..n).map(|k| ((k * 7919) % 9973) as f32 * 0.01).collect();
        let dtypes: &[&str] = if n > 1 << 20 {
            &["f32"]
        } else {
            &["f32", "f64", "i32", "i64", "u8", "u32", "u64"]
        };
        for dtype in dtypes {
            let v = cast_to("add(mul(r0, 3.1f32), 1.0f32)", dtype);
            let text = |v: &str| {
                format!(
                    "%0 = input 0 : f32[{a}, {b}, {c}]\n\
                     %1 = scan [{a}, {b}, {c}] sum reads(%0.0[i0, i1, i2]) : {dtype}[{a}, {b}, {c}] {{ {v} }}\n\
                     %2 = scan [{a}, {b}, {c}] exclusive max reads(%0.0[i0, i1, i2]) : {dtype}[{a}, {b}, {c}] {{ {v} }}\n\
                     output %1.0, %2.0\n"
                )
            };
            let ins = [t(&[a, b, c], Data::F32(xs.clone()))];
            agree_natively(&text(&v), &ins).unwrap_or_else(|e| panic!("{dtype} {a}x{b}x{c}: {e}"));
            if n == 0 {
                continue;
            }
            // No tensor of the elements: the peak is the two outputs.
            let g = parse(&text(&v)).unwrap_or_else(|e| panic!("{e}"));
            let mut native = crate::codegen::native(3).expect("a JIT");
            native.eval(&g, &[Rc::new(ins[0].clone())]).expect("runs");
            let size = flow_runtime::DType::from_name(dtype)
                .expect("a type")
                .size_bytes();
            assert_eq!(
                native.last_peak(),
                (2 * n * size) as u128,
                "{dtype} {a}x{b}x{c}"
            );
            if n > 1 << 20 {
                // (The failing producer below runs on the small shapes: the interpreter is slow.)
                continue;
            }
            // A producer that fails (an integer division by zero at one element).
            let mut zero = xs.clone();
            zero[n / 2] = 0.0;
            let fails = cast_to("cast(div(7i64, cast(r0, i64)), f32)", dtype);
            let e = agree(&text(&fails), &[t(&[a, b, c], Data::F32(zero))]).unwrap_err();
            assert!(e.contains("division by zero"), "{e}");
        }
    }
}
