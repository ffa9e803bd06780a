//! Coordinator tests of what runs beside the graphs: scans, histograms and scatters on the
//! runtime's primitives (bad indices, faulting combines, buffer reuse), and long unobserved
//! loops dispatched in segments.

use super::{compile, run};
use crate::exec::{run_main, MemoryHost, RunOptions};

#[test]
fn scans_histograms_and_scatters_report_bad_indices_and_faulting_combines() {
    let err =
        run("main { print(reduce_by_index(sum, 3, [0, 5, -1], [1.0, 2.0, 3.0])); }").unwrap_err();
    assert!(
        err.contains(
            "index [5] (element 1 of the indices) is out of range for the bins of shape [3]"
        ),
        "{err}"
    );
    let err = run("main { print(scatter([0, 0], [1, 1, -2], [1, 2, 3])); }").unwrap_err();
    assert!(
        err.contains("index [-2] (element 2 of the indices) is out of range for the destination of shape [2]"),
        "{err}"
    );
    let err = run("main { print(reduce_by_index(max, 0 - 2, [0], [1.0])); }").unwrap_err();
    assert!(err.contains("must not be negative, found -2"), "{err}");
    // A combine that faults is an error of the program, not a panic.
    let err = run(
        "monoid Div { state = i64; zero = 0; combine(a, b) = if a == 0 { b } else { if b == 0 { a } else { a / (b - b) } }; }\n\
         main { print(scan(Div, [1, 2, 3])); }",
    )
    .unwrap_err();
    // (The native backend says "`Div`'s combine: integer division by zero", the
    // interpreter "integer division by zero in node %1 \"scan\"".)
    assert!(err.contains("integer division by zero"), "{err}");
}

#[test]
fn a_dropped_scan_result_lends_its_buffer_to_the_next_scan_or_scatter() {
    let out = run(
        "op last(y: f32[N]) -> f32 = y[N - 1]\nop first(y: f32[N]) -> f32 = y[0]\n\
         main { for r in 0..3 {\n\
           let x = full([1000], 1.0) * (r as f32 + 1.0);\n\
           let y = scan(sum, x);\n\
           let z = scatter(full([1000], 7.0), [0, 5], [1.0, 2.0]);\n\
           let w = scan_excl(sum, x);\n\
           print(last(y), first(z), last(z), first(w), last(w));\n\
         } }",
    )
    .unwrap();
    assert_eq!(
        out, "1000 1 7 0 999\n2000 1 7 0 1998\n3000 1 7 0 2997\n",
        "{out}"
    );
}

/// A loop that observes nothing is dispatched in segments of about `SEGMENT_NODES` nodes
/// (not one graph of every step), with the bits of one unsegmented graph, optimized or not.
#[test]
fn a_long_unobserved_loop_is_dispatched_in_segments() {
    use crate::exec::{dispatched_graphs, SEGMENT_NODES};
    let steps = 3 * SEGMENT_NODES;
    let src = format!(
        "op step(x: f32[N]) -> f32[N] {{ let y[i] = x[i] * 0.9993 + tanh(x[i]) * 0.01 + 0.001; y }}\n\
         main {{ var x = rand_normal(5, [37]); for s in 0..{steps} {{ x = step(x); }} print(x); }}"
    );
    let prog = compile(&src);
    let mut host = MemoryHost::default();
    let (graphs, err) = dispatched_graphs(&prog, &mut host);
    assert!(err.is_none(), "{err:?}");
    assert!(graphs.len() >= 3, "{} graph(s)", graphs.len());
    for g in &graphs {
        assert!(
            g.nodes.len() <= SEGMENT_NODES + 8,
            "{} nodes",
            g.nodes.len()
        );
    }
    let run = |optimize: bool, segment_nodes: usize| {
        let mut h = MemoryHost::default();
        let opts = RunOptions {
            optimize,
            segment_nodes,
            ..RunOptions::default()
        };
        run_main(&prog, &mut h, &opts).unwrap();
        h.out
    };
    let whole = run(false, usize::MAX);
    assert_eq!(host.out, whole);
    assert_eq!(run(true, SEGMENT_NODES), whole);
}

#[test]
fn filters_partitions_and_sorts_write_into_dropped_results_correctly() {
    // Each round's results are dropped before the next round, whose filter, partition and sort
    // (of the same lengths) then write into their buffers: every element must be rewritten.
    let out = run("main { for r in 0..3 {\n\
           let x = [5, 1, 4, 2, 3, 6] * (r + 1);\n\
           let m = [true, false, true, false, true, false];\n\
           let y = if r == 1 { filter(x, !m) } else { filter(x, m) };\n\
           let p = partition(x, m);\n\
           let s = sort(x * (1 - 2 * (r % 2)));\n\
           print(y, p.items, p.kept, s);\n\
         } }")
    .unwrap();
    assert_eq!(
        out,
        "[5, 4, 3] [5, 4, 3, 1, 2, 6] 3 [1, 2, 3, 4, 5, 6]\n\
         [2, 4, 12] [10, 8, 6, 2, 4, 12] 3 [-12, -10, -8, -6, -4, -2]\n\
         [15, 12, 9] [15, 12, 9, 3, 6, 18] 3 [3, 6, 9, 12, 15, 18]\n",
        "{out}"
    );
}
