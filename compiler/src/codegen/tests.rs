//! Unit tests of the native backend: one compiled kernel serves every shape of its
//! structure, and the vector loops (with their scalar tails) agree with the interpreter bit
//! for bit; injected garbage lands only in the failing shard's rows, and shard errors name
//! the op, the index box and the cause.

use std::rc::Rc;

use flow_runtime::fault::FaultKind;
use flow_runtime::pool::{TaskError, TaskErrorKind};
use flow_runtime::{DType, Data, Tensor};

use super::native;
use crate::interp;
use crate::mir::ir::{Node, NodeId, NodeKind};
use crate::mir::parse;
use crate::native::{poison, Native, NativeError};

/// Deterministic, irregular `f32` data (negative and positive, not all representable sums).
pub(super) fn data(shape: &[usize], salt: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n as u32)
        .map(|k| {
            let x = k
                .wrapping_mul(2654435761)
                .wrapping_add(salt.wrapping_mul(40503))
                >> 8;
            (x % 2001) as f32 / 137.0 - 7.0
        })
        .collect();
    Tensor::new(shape.to_vec(), Data::F32(v)).expect("a valid tensor")
}

/// Runs `text` on the interpreter and the JIT and asserts bitwise-equal outputs.
pub(super) fn agree(jit: &mut Native, text: &str, inputs: &[Tensor]) {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let want = interp::eval(&g, inputs).expect("the interpreter runs");
    let ins: Vec<Rc<Tensor>> = inputs.iter().cloned().map(Rc::new).collect();
    let got = jit.eval(&g, &ins).expect("the JIT runs");
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.shape, g.shape);
        for i in 0..w.len() {
            let (a, b) = (w.get(i), g.get(i));
            assert!(
                format!("{a:?}") == format!("{b:?}"),
                "element {i}: interpreter {a:?}, JIT {b:?}\n{text}"
            );
        }
    }
}

/// A product of an `m×k` and a `k×n` matrix, the first read as `a_proj` (`i0, i2`, or
/// `i2, i0` for a transposed operand), with `body` as the summed expression.
fn matmul(m: usize, k: usize, n: usize, a_proj: &str, body: &str) -> String {
    let a_shape = if a_proj == "i0, i2" {
        format!("{m}, {k}")
    } else {
        format!("{k}, {m}")
    };
    format!(
        "%0 = input 0 : f32[{a_shape}]\n\
         %1 = input 1 : f32[{k}, {n}]\n\
         %2 = reduce [{m}, {n}] over [{k}] sum reads(%0.0[{a_proj}], %1.0[i2, i1]) : f32[{m}, {n}] \
         {{ {body} }}\n\
         output %2.0\n"
    )
}

#[test]
fn one_kernel_serves_every_shape() {
    let mut jit = native(2).expect("the JIT starts");
    for (m, k, n) in [(3, 5, 7), (17, 9, 37), (1, 1, 1), (4, 64, 16)] {
        let text = matmul(m, k, n, "i0, i2", "add(mul(r0, r1), 0.5f32)");
        agree(&mut jit, &text, &[data(&[m, k], 1), data(&[k, n], 2)]);
    }
    assert_eq!(jit.compiled(), 1, "one structure, one kernel");
}

/// A dispatch after the coordinator dropped an earlier result writes into the dropped
/// buffer (stale contents and all) and still computes the interpreter's values.
#[test]
fn dropped_buffers_are_reused_and_overwritten() {
    let mut jit = native(2).expect("the JIT starts");
    let text = "%0 = input 0 : f32[64, 33]\n\
                %1 = map [64, 33] reads(%0.0[i0, i1]) : f32[64, 33] { add(mul(r0, 2f32), 1f32) }\n\
                output %1.0\n";
    let g = parse(text).expect("valid MIR");
    let x = Rc::new(data(&[64, 33], 5));
    let first = jit
        .eval(&g, std::slice::from_ref(&x))
        .expect("the JIT runs");
    assert_eq!(jit.buffer_stats().hits, 0);
    let before = first[0].as_ref().clone();
    let mut dropped =
        Rc::try_unwrap(first.into_iter().next().expect("one output")).expect("the only handle");
    // Garbage the next kernel must overwrite.
    if let Data::F32(v) = &mut dropped.data {
        v.fill(f32::NAN);
    }
    jit.recycle(dropped);
    let second = jit.eval(&g, &[x]).expect("the JIT runs");
    assert_eq!(
        jit.buffer_stats().hits,
        1,
        "the dropped buffer is taken again"
    );
    assert_eq!(*second[0], before);
    assert_eq!(
        *second[0],
        interp::eval(&g, &[data(&[64, 33], 5)]).expect("runs")[0]
    );
}

/// Softmax's row maximum, row sum and scaling run as one row group, shard by shard, with
/// the interpreter's results for any thread count and row count (rows per shard vary with
/// the row length; the scaling map reads the other two at its own row only).
#[test]
fn row_groups_run_members_shard_by_shard_without_changing_a_bit() {
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (b, n) in [(1, 5), (7, 129), (300, 64), (5, 5000)] {
            let text = format!(
                "%0 = input 0 : f32[{b}, {n}]\n\
                 %1 = reduce [{b}] over [{n}] max reads(%0.0[i0, i1]) : f32[{b}] {{ r0 }}\n\
                 %2 = reduce [{b}] over [{n}] sum reads(%0.0[i0, i1], %1.0[i0]) : f32[{b}] \
                 {{ exp(sub(r0, r1)) }}\n\
                 %3 = map [{b}, {n}] reads(%0.0[i0, i1], %1.0[i0], %2.0[i0]) : f32[{b}, {n}] \
                 {{ div(exp(sub(r0, r1)), r2) }}\n\
                 output %3.0, %2.0\n"
            );
            let before = jit.grouped();
            agree(&mut jit, &text, &[data(&[b, n], 6)]);
            assert_eq!(jit.grouped() - before, 3, "one group of three: {b}x{n}");
        }
        // A read of another row of a group member ends the group.
        let text = "%0 = input 0 : f32[8, 4]\n\
                    %1 = map [8, 4] reads(%0.0[i0, i1]) : f32[8, 4] { mul(r0, 2f32) }\n\
                    %2 = map [8, 4] reads(%1.0[7 - i0, i1]) : f32[8, 4] { add(r0, 1f32) }\n\
                    output %2.0\n";
        let before = jit.grouped();
        agree(&mut jit, text, &[data(&[8, 4], 7)]);
        assert_eq!(
            jit.grouped(),
            before,
            "rows of other shards are not grouped"
        );
    }
}

/// With `e = exp(x - max)` materialized, `y = e / z` is written over `e` (dead after it),
/// which changes no result; a tensor read after the writer, or read at another point, or a
/// graph output, is never written over.
#[test]
fn maps_write_over_dead_tensors_of_their_group() {
    let softmax = |extra: &str, outputs: &str| {
        format!(
            "%0 = input 0 : f32[9, 70]\n\
             %1 = reduce [9] over [70] max reads(%0.0[i0, i1]) : f32[9] {{ r0 }}\n\
             %2 = map [9, 70] reads(%0.0[i0, i1], %1.0[i0]) : f32[9, 70] {{ exp(sub(r0, r1)) }}\n\
             %3 = reduce [9] over [70] sum reads(%2.0[i0, i1]) : f32[9] {{ r0 }}\n\
             %4 = map [9, 70] reads(%2.0[i0, i1], %3.0[i0]{extra}) : f32[9, 70] {{ div(r0, r1) }}\n\
             output {outputs}\n"
        )
    };
    for threads in [1, 2] {
        let mut jit = native(threads).expect("the JIT starts");
        let x = [data(&[9, 70], 8)];
        for (text, written_over) in [
            (softmax("", "%4.0"), 1),
            (softmax("", "%4.0, %2.0"), 0),
            (softmax(", %2.0[i0, 69 - i1]", "%4.0"), 0),
        ] {
            let before = jit.in_place();
            agree(&mut jit, &text, &x);
            assert_eq!(jit.in_place() - before, written_over, "{text}");
        }
        // A later reader of `e` keeps it (and that reader writes over `y`, dead after it).
        let text = softmax("", "%5.0")
            .replace("output %5.0", "%5 = map [9, 70] reads(%2.0[i0, i1], %4.0[i0, i1]) : f32[9, 70] { add(r0, r1) }\noutput %5.0");
        let before = jit.in_place();
        agree(&mut jit, &text, &x);
        assert_eq!(jit.in_place() - before, 1, "{text}");
    }
}

/// A contraction's epilogue (bias and ReLU) runs in the GEMM's row blocks, written over the
/// GEMM's output, with the interpreter's results.
#[test]
fn epilogues_run_in_the_gemm_blocks() {
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (m, k, n) in [(3, 5, 7), (300, 41, 37), (65, 300, 9)] {
            let text = matmul(m, k, n, "i0, i2", "mul(r0, r1)").replace(
                "output %2.0\n",
                &format!(
                    "%3 = input 2 : f32[{n}]\n\
                     %4 = map [{m}, {n}] reads(%2.0[i0, i1], %3.0[i1]) : f32[{m}, {n}] \
                     {{ max(add(r0, r1), 0f32) }}\n\
                     output %4.0\n"
                ),
            );
            let (grouped, in_place) = (jit.grouped(), jit.in_place());
            let inputs = [data(&[m, k], 1), data(&[k, n], 2), data(&[n], 3)];
            agree(&mut jit, &text, &inputs);
            assert_eq!(jit.grouped() - grouped, 2, "{text}");
            assert_eq!(jit.in_place() - in_place, 1, "{text}");
        }
    }
}

/// A comparison of four-byte values selecting eight-byte ones: masks and values of different
/// widths never meet in vector code (FLOW_EQUIV_SEED=377905967 found Cranelift rejecting it).
#[test]
fn masks_of_one_width_never_select_values_of_another() {
    let mut jit = native(2).expect("the JIT starts");
    let text = "%0 = input 0 : f32[3, 9]\n\
                %1 = map [3, 9] reads(%0.0[i0, i1]) : i64[3, 9] { cast(mul(r0, 10f32), i64) }\n\
                %2 = map [3, 9] reads(%0.0[i0, i1]) : i64[3, 9] { cast(r0, i64) }\n\
                %3 = map [3, 9] reads(%1.0[i0, i1], %0.0[i0, i1], %2.0[i0, i1]) : i64[3, 9] \
                { select(lt(r1, 0f32), r0, r2) }\n\
                output %3.0\n";
    agree(&mut jit, text, &[data(&[3, 9], 9)]);
}

/// `exp` inline, in vector code and in its scalar tail, at the edges of its range: NaN, the
/// infinities, overflow, results near and below the smallest normal, and the clamps'
/// thresholds themselves — bit for bit the interpreter's `fastmath::exp_f32`.
#[test]
fn inline_exp_agrees_at_the_edges_of_its_range() {
    use flow_runtime::fastmath::{EXP_HI, EXP_LO};
    let edges = [
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1.0,
        -1.0,
        88.0,
        88.72,
        89.0,
        1e30,
        -87.3,
        -87.34,
        -90.0,
        -100.0,
        -103.9,
        -104.0,
        -150.0,
        -1e30,
        EXP_HI,
        EXP_LO,
        f32::from_bits(EXP_HI.to_bits() + 1),
        f32::from_bits(EXP_LO.to_bits() + 1),
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
    ];
    let n = edges.len();
    let x = Tensor::new(vec![n], Data::F32(edges.to_vec())).expect("a valid tensor");
    let text = format!(
        "%0 = input 0 : f32[{n}]\n\
         %1 = map [{n}] reads(%0.0[i0]) : f32[{n}] {{ exp(r0) }}\n\
         output %1.0\n"
    );
    for threads in [1, 2] {
        agree(
            &mut native(threads).expect("the JIT starts"),
            &text,
            std::slice::from_ref(&x),
        );
    }
}

#[test]
fn contractions_agree_for_any_split_of_their_rows() {
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (m, k, n) in [(3, 5, 7), (300, 41, 37), (65, 300, 9), (1, 0, 4)] {
            let inputs = [data(&[m, k], 1), data(&[k, n], 2)];
            agree(&mut jit, &matmul(m, k, n, "i0, i2", "mul(r0, r1)"), &inputs);
            let inputs = [data(&[k, m], 3), data(&[k, n], 4)];
            agree(&mut jit, &matmul(m, k, n, "i2, i0", "mul(r1, r0)"), &inputs);
        }
        assert_eq!(jit.compiled(), 0, "contractions run as GEMMs");
    }
}

#[test]
fn vector_maps_and_their_tails_agree_with_the_interpreter() {
    let mut jit = native(3).expect("the JIT starts");
    for n in [1, 7, 8, 9, 31, 100] {
        let text = format!(
            "%0 = input 0 : f32[3, {n}]\n\
             %1 = input 1 : f32[{n}]\n\
             %2 = map [3, {n}] reads(%0.0[i0, i1], %1.0[i1]) : f32[3, {n}] \
             {{ add(mul(max(r0, 0.5f32), r1), select(lt(r0, r1), neg(r1), sqrt(abs(r0)))) }}\n\
             output %2.0\n"
        );
        agree(&mut jit, &text, &[data(&[3, n], 3), data(&[n], 4)]);
    }
}

#[test]
fn vector_bitwise_maps_agree_with_the_interpreter() {
    // `band bor bxor` and the complement on `i32` lanes, and their scalar tails.
    let mut jit = native(3).expect("the JIT starts");
    for n in [1, 7, 8, 9, 31] {
        let text = format!(
            "%0 = input 0 : f32[{n}]\n\
             %1 = map [{n}] reads(%0.0[i0]) : i32[{n}] \
             {{ bxor(bor(band(cast(mul(r0, 1000.0f32), i32), 6i32), not(cast(mul(r0, 77.0f32), i32))), \
             cast(r0, i32)) }}\n\
             output %1.0\n"
        );
        agree(&mut jit, &text, &[data(&[n], 5)]);
    }
}

#[test]
fn vector_reductions_fold_each_lane_in_order() {
    let mut jit = native(2).expect("the JIT starts");
    // Column sums and maxima: each lane is one column, folded top to bottom.
    for n in [5, 16, 21, 64] {
        let text = format!(
            "%0 = input 0 : f32[33, {n}]\n\
             %1 = reduce [{n}] over [33] sum reads(%0.0[i1, i0]) : f32[{n}] {{ r0 }}\n\
             %2 = reduce [{n}] over [33] max reads(%0.0[i1, i0]) : f32[{n}] {{ r0 }}\n\
             output %1.0, %2.0\n"
        );
        agree(&mut jit, &text, &[data(&[33, n], 5)]);
    }
}

#[test]
fn inline_exp_matches_the_runtime_in_vectors_and_scalars() {
    let mut jit = native(1).expect("the JIT starts");
    let mut v: Vec<f32> = (0..397).map(|k| -120.0 + k as f32 * 0.5537).collect();
    v.extend([
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -0.0,
        0.0,
        88.72,
        89.0,
        -87.4,
    ]);
    let n = v.len();
    let x = Tensor::new(vec![n], Data::F32(v)).expect("a tensor");
    let text = format!(
        "%0 = input 0 : f32[{n}]\n\
         %1 = map [{n}] reads(%0.0[i0]) : f32[{n}] {{ exp(r0) }}\n\
         %2 = reduce [] over [{n}] sum reads(%0.0[i0]) : f32[] {{ exp(mul(r0, 0.01f32)) }}\n\
         output %1.0, %2.0\n"
    );
    agree(&mut jit, &text, &[x]);
}

#[test]
fn mixed_widths_widen_in_the_low_lanes() {
    let mut jit = native(2).expect("the JIT starts");
    for n in [3, 4, 5, 17, 40] {
        let w: Vec<f64> = (0..n).map(|k| 0.25 + k as f64 / 3.0).collect();
        let w = Tensor::new(vec![n], Data::F64(w)).expect("a tensor");
        // A map of f32 and f64 values with f64 and f32 outputs, and W2's one-pass moments
        // folded in lanes across free points.
        let text = format!(
            "monoid @0 \"Moments\" {{\n\
             \x20   state (n: f64, s: f64, ss: f64)\n\
             \x20   zero (0.0f64, 0.0f64, 0.0f64)\n\
             \x20   wrap (f32) = tuple(1.0f64, cast(p0, f64), mul(cast(p0, f64), cast(p0, f64)))\n\
             \x20   combine = tuple(add(p0.0, p1.0), add(p0.1, p1.1), add(p0.2, p1.2))\n\
             \x20   commutative\n\
             }}\n\
             %0 = input 0 : f32[3, {n}]\n\
             %1 = input 1 : f64[{n}]\n\
             %2 = map [3, {n}] reads(%0.0[i0, i1], %1.0[i1]) : f64[3, {n}], f32[3, {n}] \
             {{ mul(cast(exp(r0), f64), r1); mul(r0, 3.0f32) }}\n\
             %3 = reduce [{n}] over [3] @0 reads(%0.0[i1, i0]) : f64[{n}], f64[{n}], f64[{n}] {{ r0 }}\n\
             output %2.0, %2.1, %3.0, %3.1, %3.2\n"
        );
        agree(&mut jit, &text, &[data(&[3, n], 6), w]);
    }
}

#[test]
fn poison_overwrites_exactly_the_rows_given() {
    let mut f = vec![1.0f32; 8];
    let mut i = vec![7i64; 4];
    let mut b = vec![false; 4];
    let outputs = vec![
        (f.as_mut_ptr() as *mut u8, 2 * 4, DType::F32),
        (i.as_mut_ptr() as *mut u8, 8, DType::I64),
        (b.as_mut_ptr() as *mut u8, 1, DType::Bool),
    ];
    poison(&outputs, 1, 3);
    assert_eq!(f[..2], [1.0, 1.0]);
    assert!(f[2..6].iter().all(|x| x.to_bits() == 0x7fc0_dead));
    assert_eq!(f[6..], [1.0, 1.0]);
    assert_eq!(i, [7, 0x5eed_beef_5eed_beef, 0x5eed_beef_5eed_beef, 7]);
    assert_eq!(b, [false, true, true, false]);
}

#[test]
fn shard_errors_name_the_op_the_box_and_the_cause() {
    let node = Node {
        kind: NodeKind::Random {
            dist: crate::mir::ir::Dist::Uniform,
            seed: 1,
        },
        outputs: Vec::new(),
        label: "layer.w".into(),
        span: None,
    };
    let e = TaskError {
        task: 2,
        kind: TaskErrorKind::Injected(FaultKind::AfterWritingPart),
        attempts: 4,
    };
    assert_eq!(
        NativeError::shard(NodeId(3), &node, &[10, 5], 4, &e).to_string(),
        "op \"layer.w\" (node %3), shard 2 of 3 (index box [8..10, 0..5]) failed 4 times, retries exhausted; the last failure: injected fault after writing part of its output"
    );
    let once = TaskError {
        task: 0,
        attempts: 1,
        kind: TaskErrorKind::Panic("boom".into()),
    };
    assert_eq!(
        NativeError::shard(NodeId(3), &node, &[], 1, &once).to_string(),
        "op \"layer.w\" (node %3), shard 0 of 1 (index box []) failed: a panic: boom"
    );
}

/// Maps whose body is `exp(…)` run the polynomial over each shard's rows in the runtime's
/// span function (kernel/span.rs); their bits are the interpreter's at any shard split, in
/// rank 1 and 2, over the whole range (overflow, subnormal results, NaN); an `exp` below the
/// root of a body stays inline.
#[test]
fn exp_over_spans_agrees_with_the_interpreter() {
    let mut edges: Vec<f32> = (0..70_001).map(|k| -110.0 + k as f32 * 0.0029).collect();
    edges.extend([
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        89.0,
        -104.0,
    ]);
    let n = edges.len();
    let x = Tensor::new(vec![n], Data::F32(edges)).expect("a tensor");
    for threads in [1, 2, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        let text = format!(
            "%0 = input 0 : f32[{n}]\n\
             %1 = map [{n}] reads(%0.0[i0]) : f32[{n}] {{ exp(r0) }}\n\
             %2 = map [{n}] reads(%0.0[i0]) : f32[{n}] {{ add(exp(r0), 1f32) }}\n\
             output %1.0, %2.0\n"
        );
        agree(&mut jit, &text, std::slice::from_ref(&x));
        for (b, m) in [(1, 3), (3, 1000), (70, 1031)] {
            let text = format!(
                "%0 = input 0 : f32[{b}, {m}]\n\
                 %1 = map [{b}, {m}] reads(%0.0[i0, i1]) : f32[{b}, {m}] {{ exp(mul(r0, 13f32)) }}\n\
                 output %1.0\n"
            );
            agree(&mut jit, &text, &[data(&[b, m], 9)]);
        }
    }
    let g = parse(
        "%0 = input 0 : f32[4]\n\
         %1 = map [4] reads(%0.0[i0]) : f32[4] { exp(r0) }\n\
         %2 = map [4] reads(%0.0[i0]) : f32[4] { add(exp(r0), 1f32) }\n\
         %3 = input 1 : f64[4]\n\
         %4 = map [4] reads(%3.0[i0]) : f64[4] { exp(r0) }\n\
         output %1.0, %2.0, %4.0\n",
    )
    .expect("a graph");
    let spans: Vec<bool> = [1, 2, 4]
        .map(|k| super::kernel::span_exp_argument(&g.nodes[NodeId(k)]).is_some())
        .to_vec();
    assert_eq!(spans, [true, false, false]);
}

/// Stencils (`sum[k](w[k] * x[i + k])` on `f32`) run as the runtime's windowed dot product
/// (kernel/span.rs); their bits are the interpreter's at any shard split, for outputs fewer
/// than a vector, tails and many shards, short and long windows, both operand orders,
/// constant offsets, and NaN, infinities and signed zeros among the inputs; other shapes of
/// reduction keep the loop nest.
#[test]
fn stencils_over_spans_agree_with_the_interpreter() {
    let specials = |mut t: Tensor, every: usize| {
        let Data::F32(v) = &mut t.data else {
            unreachable!("f32 data")
        };
        let s = [f32::NAN, f32::INFINITY, -0.0, f32::NEG_INFINITY, 3e38];
        for (j, i) in (0..v.len()).step_by(every).enumerate() {
            v[i] = s[j % s.len()];
        }
        t
    };
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (n, k) in [(1, 1), (3, 9), (17, 9), (70_001, 9), (100, 20), (5, 0)] {
            let (xn, wn) = (n + k + 2, k + 1);
            let x = specials(data(&[xn], 3), 211);
            let w = data(&[wn], 5);
            for body in ["mul(r0, r1)", "mul(r1, r0)"] {
                let text = format!(
                    "%0 = input 0 : f32[{wn}]\n\
                     %1 = input 1 : f32[{xn}]\n\
                     %2 = reduce [{n}] over [{k}] sum reads(%0.0[i1 + 1], %1.0[i0 + i1 + 2]) : f32[{n}] {{ {body} }}\n\
                     output %2.0\n"
                );
                agree(&mut jit, &text, &[w.clone(), x.clone()]);
            }
        }
    }
    let g = parse(
        "%0 = input 0 : f32[9]\n\
         %1 = input 1 : f32[108]\n\
         %2 = reduce [100] over [9] sum reads(%0.0[i1], %1.0[i0 + i1]) : f32[100] { mul(r0, r1) }\n\
         %3 = reduce [100] over [9] sum reads(%0.0[i1], %1.0[i0 + i1]) : f32[100] { add(r0, r1) }\n\
         %4 = reduce [100] over [9] max reads(%0.0[i1], %1.0[i0 + i1]) : f32[100] { mul(r0, r1) }\n\
         %5 = reduce [50] over [9] sum reads(%0.0[i1], %1.0[2*i0 + i1]) : f32[50] { mul(r0, r1) }\n\
         %6 = reduce [100] over [9] sum reads(%1.0[i1], %1.0[i0 + i1]) : f32[100] { mul(r0, r1) }\n\
         output %2.0, %3.0, %4.0, %5.0, %6.0\n",
    )
    .expect("a graph");
    let spans: Vec<bool> = [2, 3, 4, 5, 6]
        .map(|k| super::kernel::span_window_dot(&g, &g.nodes[NodeId(k)]).is_some())
        .to_vec();
    assert_eq!(spans, [true, false, false, false, true]);
}

/// Maps between rows and their scalars (`x[i, j] op d[i]`, `+ - * /`, either operand order)
/// run as the runtime's row operation (kernel/span.rs); their bits are the interpreter's at
/// any shard split, for rows shorter than a vector and with tails, a strided and offset `x`,
/// NaN, infinities, signed zeros and division by zero, and when the map writes over its
/// input (softmax's `e / z`); other maps keep the loop nest.
#[test]
fn row_operations_over_spans_agree_with_the_interpreter() {
    let specials = |mut t: Tensor, every: usize| {
        let Data::F32(v) = &mut t.data else {
            unreachable!("f32 data")
        };
        let s = [f32::NAN, f32::INFINITY, -0.0, 0.0, f32::NEG_INFINITY, 3e38];
        for (j, i) in (0..v.len()).step_by(every).enumerate() {
            v[i] = s[j % s.len()];
        }
        t
    };
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (b, m) in [(1, 1), (3, 5), (300, 17), (70, 1031)] {
            let x = specials(data(&[b + 1, m + 3], 7), 97);
            let d = specials(data(&[b + 2], 11), 5);
            for op in ["add", "sub", "mul", "div"] {
                for (l, r) in [("r0", "r1"), ("r1", "r0")] {
                    let text = format!(
                        "%0 = input 0 : f32[{}, {}]\n\
                         %1 = input 1 : f32[{}]\n\
                         %2 = map [{b}, {m}] reads(%0.0[i0 + 1, i1 + 2], %1.0[i0 + 2]) : f32[{b}, {m}] {{ {op}({l}, {r}) }}\n\
                         output %2.0\n",
                        b + 1,
                        m + 3,
                        b + 2
                    );
                    agree(&mut jit, &text, &[x.clone(), d.clone()]);
                }
            }
            // Softmax: `e = exp(x - m)` (a row operation, then `exp` over the span), and
            // `y = e / z` writes over `e`.
            let text = format!(
                "%0 = input 0 : f32[{b}, {m}]\n\
                 %1 = reduce [{b}] over [{m}] max reads(%0.0[i0, i1]) : f32[{b}] {{ r0 }}\n\
                 %2 = map [{b}, {m}] reads(%0.0[i0, i1], %1.0[i0]) : f32[{b}, {m}] {{ exp(sub(r0, r1)) }}\n\
                 %3 = reduce [{b}] over [{m}] sum reads(%2.0[i0, i1]) : f32[{b}] {{ r0 }}\n\
                 %4 = map [{b}, {m}] reads(%2.0[i0, i1], %3.0[i0]) : f32[{b}, {m}] {{ div(r0, r1) }}\n\
                 output %4.0\n"
            );
            agree(&mut jit, &text, &[data(&[b, m], 3)]);
        }
    }
    let g = parse(
        "%0 = input 0 : f32[4, 8]\n\
         %1 = input 1 : f32[4]\n\
         %2 = map [4, 8] reads(%0.0[i0, i1], %1.0[i0]) : f32[4, 8] { div(r0, r1) }\n\
         %3 = map [4, 8] reads(%0.0[i0, i1], %1.0[i0]) : f32[4, 8] { max(r0, r1) }\n\
         %4 = map [4, 8] reads(%0.0[i0, i1], %1.0[i0]) : f32[4, 8] { div(r0, add(r1, 1f32)) }\n\
         %5 = map [4, 4] reads(%0.0[i1, i0], %1.0[i0]) : f32[4, 4] { sub(r0, r1) }\n\
         %6 = map [4, 4] reads(%0.0[i0, i1], %1.0[i1]) : f32[4, 4] { sub(r0, r1) }\n\
         %7 = map [4, 8] reads(%1.0[i0], %0.0[i0, i1]) : f32[4, 8] { mul(r0, r1) }\n\
         output %2.0, %3.0, %4.0, %5.0, %6.0, %7.0\n",
    )
    .expect("a graph");
    let spans: Vec<bool> = [2, 3, 4, 5, 6, 7]
        .map(|k| super::kernel::span_row_binary(&g, &g.nodes[NodeId(k)]).is_some())
        .to_vec();
    assert_eq!(spans, [true, false, false, false, false, true]);
}

/// Row `sum`s and `max`es folded into 16 lanes (the `lanes` pass's form) run as the
/// runtime's lane fold where the CPU has AVX-512F or AVX2 (kernel/span.rs); their bits are
/// the interpreter's at any shard split, with NaN, infinities and signed zeros, a strided
/// input and one row; other shapes keep the loop nest.
#[test]
fn lane_folds_over_spans_agree_with_the_interpreter() {
    let specials = |mut t: Tensor, every: usize| {
        let Data::F32(v) = &mut t.data else {
            unreachable!("f32 data")
        };
        let s = [f32::NAN, f32::INFINITY, -0.0, 0.0, f32::NEG_INFINITY];
        for (j, i) in (0..v.len()).step_by(every).enumerate() {
            v[i] = s[j % s.len()];
        }
        t
    };
    for threads in [1, 3] {
        let mut jit = native(threads).expect("the JIT starts");
        for (b, m, every) in [(1, 1, 7), (5, 3, 1000), (70, 64, 301), (300, 4, 4001)] {
            let n = 16 * m + 5;
            let x = specials(data(&[b, n], 13), every);
            for op in ["sum", "max"] {
                let text = format!(
                    "%0 = input 0 : f32[{b}, {n}]\n\
                     %1 = reduce [{b}, 16] over [{m}] {op} reads(%0.0[i0, 16*i2 + i1]) : f32[{b}, 16] {{ r0 }}\n\
                     output %1.0\n"
                );
                agree(&mut jit, &text, std::slice::from_ref(&x));
            }
        }
    }
    let g = parse(
        "%0 = input 0 : f32[4, 64]\n\
         %1 = reduce [4, 16] over [4] max reads(%0.0[i0, 16*i2 + i1]) : f32[4, 16] { r0 }\n\
         %2 = reduce [4, 16] over [4] min reads(%0.0[i0, 16*i2 + i1]) : f32[4, 16] { r0 }\n\
         %3 = reduce [4, 8] over [8] sum reads(%0.0[i0, 8*i2 + i1]) : f32[4, 8] { r0 }\n\
         %4 = reduce [4, 16] over [4] sum reads(%0.0[i0, 16*i2 + i1]) : f32[4, 16] { neg(r0) }\n\
         output %1.0, %2.0, %3.0, %4.0\n",
    )
    .expect("a graph");
    let spans: Vec<bool> = [1, 2, 3, 4]
        .map(|k| super::kernel::span_lane_fold(&g, &g.nodes[NodeId(k)]).is_some())
        .to_vec();
    assert_eq!(spans, [true, false, false, false]);
}

/// Edge values of an integer or float type, as a 1-D tensor: zero, one, the extremes, the
/// values either side of the sign bit, and (for floats) NaN, infinities and out-of-range ones.
fn edges(d: DType) -> Tensor {
    use flow_runtime::Scalar;
    let ints: [i64; 12] = [0, 1, 2, 3, 7, 100, 255, 256, -1, -2, i64::MIN, i64::MAX];
    let mut vals: Vec<Scalar> = ints.iter().map(|&v| Scalar::I64(v).cast(d)).collect();
    vals.extend(
        [1u64 << 31, (1 << 31) - 1, 1 << 32, 1 << 63, u64::MAX - 1].map(|v| match d {
            DType::U64 => Scalar::U64(v),
            _ => Scalar::U64(v).cast(d),
        }),
    );
    if d.is_float() {
        vals.extend(
            [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                -0.7,
                255.9,
                4294967295.5,
                1.8e19,
                -1e30,
            ]
            .map(|v| Scalar::F64(v).cast(d)),
        );
    }
    let mut t = Tensor::zeros(d, &[vals.len()]).expect("a tensor");
    for (k, v) in vals.into_iter().enumerate() {
        t.data.set(k, v);
    }
    t
}

#[test]
fn unsigned_arithmetic_agrees_with_the_interpreter_at_the_edges() {
    // Every operator on every pair of edge values, wrapping included; shift counts at and
    // above the width; `div`/`rem` by a divisor made non-zero (`max(b, 1)`).
    let mut jit = native(2).expect("the JIT starts");
    for d in [DType::U8, DType::U32, DType::U64] {
        let x = edges(d);
        let n = x.len();
        let body = [
            "add(r0, r1)",
            "sub(r0, r1)",
            "mul(r0, r1)",
            "div(r0, max(r1, 1T))",
            "rem(r0, max(r1, 1T))",
            "min(r0, r1)",
            "max(r0, r1)",
            "shl(r0, r1)",
            "shr(r0, r1)",
            "band(r0, r1)",
            "bor(r0, r1)",
            "bxor(not(r0), r1)",
            "abs(r0)",
        ]
        .join("; ")
        .replace('T', d.name());
        let outs: Vec<String> = (0..13).map(|_| format!("{d}[{n}, {n}]")).collect();
        let ports: Vec<String> = (0..13).map(|k| format!("%1.{k}")).collect();
        let text = format!(
            "%0 = input 0 : {d}[{n}]\n\
             %1 = map [{n}, {n}] reads(%0.0[i0], %0.0[i1]) : {} {{ {body} }}\n\
             %2 = map [{n}, {n}] reads(%0.0[i0], %0.0[i1]) : bool[{n}, {n}], bool[{n}, {n}], \
             bool[{n}, {n}], bool[{n}, {n}] {{ lt(r0, r1); le(r0, r1); gt(r0, r1); eq(r0, r1) }}\n\
             %3 = reduce [] over [{n}] sum reads(%0.0[i0]) : {d}[] {{ r0 }}\n\
             %4 = reduce [] over [{n}] max reads(%0.0[i0]) : {d}[] {{ r0 }}\n\
             %5 = reduce [] over [{n}] min reads(%0.0[i0]) : {d}[] {{ r0 }}\n\
             output {}, %2.0, %2.1, %2.2, %2.3, %3.0, %4.0, %5.0\n",
            outs.join(", "),
            ports.join(", ")
        );
        agree(&mut jit, &text, &[x]);
    }
}

#[test]
fn casts_to_and_from_unsigned_agree_with_the_interpreter() {
    // Floats saturate (NaN and negatives to 0), integers keep their low bits or extend by
    // the source's sign, and integers round to the nearest float.
    let mut jit = native(1).expect("the JIT starts");
    let all = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];
    for from in all.into_iter().filter(|d| *d != DType::Bool) {
        for to in all {
            if !(from.is_unsigned() || to.is_unsigned()) {
                continue;
            }
            let x = edges(from);
            let n = x.len();
            let text = format!(
                "%0 = input 0 : {from}[{n}]\n\
                 %1 = map [{n}] reads(%0.0[i0]) : {to}[{n}] {{ cast(r0, {to}) }}\n\
                 output %1.0\n"
            );
            agree(&mut jit, &text, &[x]);
        }
    }
}

#[test]
fn unsigned_division_by_zero_fails_in_both_backends() {
    let mut jit = native(1).expect("the JIT starts");
    let text = "%0 = input 0 : u32[2]\n\
                %1 = map [2] reads(%0.0[i0]) : u32[2] { div(7u32, r0) }\n\
                output %1.0\n";
    let g = parse(text).expect("parses");
    let x = Tensor::new(vec![2], Data::U32(vec![3, 0])).expect("a tensor");
    let want = interp::eval(&g, std::slice::from_ref(&x)).expect_err("the interpreter fails");
    assert!(want.to_string().contains("zero"), "{want}");
    let got = jit.eval(&g, &[Rc::new(x)]).expect_err("the JIT fails");
    assert!(got.to_string().contains("zero"), "{got}");
}
