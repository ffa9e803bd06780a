//! Coordinator tests through an in-memory host: printing, `.npy` files, assertions and
//! run-time errors.

use flow_runtime::{read_npy, write_npy, Data, Tensor};

use crate::base::FileId;
use crate::exec::{run_main, MemoryHost, RunErrorKind, RunOptions};
use crate::hir;

fn compile(src: &str) -> hir::Program {
    let (file, diags) = crate::syntax::parse(FileId(0), src);
    assert!(diags.is_empty(), "{diags:?}");
    let (prog, diags) = crate::check::check(&[crate::check::SourceFile {
        module: None,
        ast: &file,
    }]);
    assert!(diags.is_empty(), "{diags:?}");
    prog
}

fn run_with(src: &str, host: &mut MemoryHost) -> Result<(), String> {
    run_main(&compile(src), host, &RunOptions::default()).map_err(|e| e.message())
}

fn run(src: &str) -> Result<String, String> {
    let mut host = MemoryHost::default();
    run_with(src, &mut host).map(|()| host.out)
}

#[test]
fn prints_scalars_tensors_and_interpolation() {
    let out = run(
        r#"main { let x = [1.5, 2.0]; print(x); print("n = {3 + 4}, x0 = {x[0]}"); print(true); }"#,
    );
    assert_eq!(out.unwrap(), "[1.5, 2]\nn = 7, x0 = 1.5\ntrue\n");
}

#[test]
fn save_then_load_round_trips() {
    let mut host = MemoryHost::default();
    run_with(
        r#"main { save("a.npy", [[1.0, 2.0], [3.0, 4.0]]); let b: f32[2, 2] = load("a.npy"); print(b * 2.0); }"#,
        &mut host,
    )
    .unwrap();
    assert_eq!(host.out, "[[2, 4], [6, 8]]\n");
    let t = read_npy(&host.files["a.npy"]).unwrap();
    assert_eq!(t.shape, vec![2, 2]);
}

#[test]
fn a_shape_variable_bound_by_load_sizes_later_comprehensions() {
    let mut host = MemoryHost::default();
    let t = Tensor::new(vec![3, 2], Data::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    host.files.insert("x.npy".into(), write_npy(&t));
    run_with(
        r#"main { let x: f32[R, 2] = load("x.npy"); let c[r] = x[r, 1]; print(c); }"#,
        &mut host,
    )
    .unwrap();
    assert_eq!(host.out, "[2, 4, 6]\n");
}

#[test]
fn load_checks_dtype_and_shape() {
    let mut host = MemoryHost::default();
    let t = Tensor::new(vec![3], Data::I32(vec![1, 2, 3])).unwrap();
    host.files.insert("x.npy".into(), write_npy(&t));
    let err = run_with(
        r#"main { let x: f32[3] = load("x.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("i32") && err.contains("f32[3]"), "{err}");
    let err = run_with(
        r#"main { let x: i32[4] = load("x.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("[3]") && err.contains("i32[4]"), "{err}");
    host.files.insert("bad.npy".into(), b"not numpy".to_vec());
    let err = run_with(
        r#"main { let x: f32[3] = load("bad.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("bad.npy"), "{err}");
    let err = run_with(
        r#"main { let x: f32[3] = load("missing.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("missing.npy"), "{err}");
}

#[test]
fn assert_close_reports_the_worst_element() {
    let err = run("main { assert_close([1.0, 2.0, 3.0], [1.0, 2.5, 3.0]); }").unwrap_err();
    assert!(err.contains("index [1]") && err.contains("2.5"), "{err}");
    assert!(run("main { assert_close([1.0, 2.0], [1.0, 2.01], 0.01); }").is_ok());
    let err = run("main { assert_close([1.0, 2.0], [1.0, 2.001], 0.0); }").unwrap_err();
    assert!(err.contains("assert_close"), "{err}");
}

#[test]
fn failed_assert_is_an_assertion_error() {
    let prog = compile(r#"main { assert(1 > 2, "one is small"); }"#);
    let e = run_main(&prog, &mut MemoryHost::default(), &RunOptions::default()).unwrap_err();
    assert!(
        matches!(*e.kind, RunErrorKind::Assertion(_)),
        "{:?}",
        e.kind
    );
    assert!(e.message().contains("one is small"));
}

#[test]
fn integer_division_by_zero_is_an_error() {
    let err = run("main { var z = 0; print(7 / z); }").unwrap_err();
    assert!(err.contains("division by zero"), "{err}");
    let err =
        run("op d(x: i64[N], y: i64[N]) -> i64[N] = x / y\nmain { print(d([1, 2], [1, 0])); }")
            .unwrap_err();
    assert!(err.to_lowercase().contains("division by zero"), "{err}");
}

#[test]
fn dispatch_shape_errors_name_both_shapes() {
    let src = "op head4(x: f32[N]) -> f32[4] {\n    let y[i < 4] = x[i];\n    y\n}\nmain { print(head4([1.0, 2.0])); }";
    let err = run(src).unwrap_err();
    assert!(err.contains("[2]") && err.contains("0..=3"), "{err}");
}

#[test]
fn coordinator_loops_and_procs() {
    let src = r#"
proc total(n: i64) -> i64 {
    var s = 0;
    for i in 0..n { s = s + i; }
    s
}
main {
    var k = 0;
    while k < 3 { k = k + 1; }
    print(total(5), k);
    print(len(args()));
}
"#;
    let mut host = MemoryHost {
        argv: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    run_with(src, &mut host).unwrap();
    assert_eq!(host.out, "10 3\n2\n");
}

#[test]
fn lazy_values_are_computed_once_per_dispatch_chain() {
    // A loop that observes only at the end still computes every step exactly.
    let src = "op step(x: f32[N]) -> f32[N] = x * 0.5 + 1.0\nmain { var x = [0.0, 4.0]; for i in 0..20 { x = step(x); } assert_close(x, [2.0, 2.0], 1e-5); print(\"ok\"); }";
    assert_eq!(run(src).unwrap(), "ok\n");
}

// ---- retries and fault injection ----

/// A program with multi-shard maps and reductions of every element type, random fills, a
/// contraction (run as GEMM blocks) and saves: what a fault may hit.
const FAULTY: &str = r#"
op mix(x: f32[N]) -> f32[N] = x * 3.0 - 1.0
op ints(x: f32[N]) -> i64[N] {
    let k[i] = if x[i] > 2.0 { 0 } else { i * 7 + 1 };
    k
}
op big(x: f32[N]) -> bool[N] {
    let b[i] = x[i] > 0.5;
    b
}
main {
    let x = rand_uniform(5, [300000]);
    let y = mix(x);
    print(sum[i](y[i]));
    print(sum[i](ints(x)[i]));
    print(sum[i](if big(x)[i] { 1 } else { 0 }));
    let m[r < 3000] = max[c < 100](y[r * 100 + c]);
    save("m.npy", m);
    let a = rand_normal(6, [300, 64]);
    let b = rand_normal(7, [64, 50]);
    let ab[i, j] = sum[k](a[i, k] * b[k, j]);
    save("ab.npy", ab);
    print("done");
}
"#;

/// Runs `FAULTY` with `retry` on a backend: stdout, saved files, the error and the profile.
fn run_faulty(
    backend: crate::exec::Backend,
    threads: usize,
    retry: flow_runtime::fault::RetryPolicy,
) -> (
    String,
    std::collections::BTreeMap<String, Vec<u8>>,
    Option<String>,
    std::sync::Arc<flow_runtime::profile::Profiler>,
) {
    let profiler = std::sync::Arc::new(flow_runtime::profile::Profiler::new(true));
    let mut opts = match backend {
        crate::exec::Backend::Jit => crate::driver::jit_options(threads),
        crate::exec::Backend::Interp => RunOptions::default(),
    };
    opts.retry = retry;
    opts.hooks.profiler = Some(profiler.clone());
    let mut host = MemoryHost::default();
    let err = run_main(&compile(FAULTY), &mut host, &opts)
        .err()
        .map(|e| e.message());
    let files = host.files.into_iter().collect();
    (host.out, files, err, profiler)
}

fn faults(rate: f64, seed: u64, retries: u32) -> flow_runtime::fault::RetryPolicy {
    flow_runtime::fault::RetryPolicy {
        retries,
        faults: Some(flow_runtime::fault::Faults::new(rate, seed).unwrap()),
    }
}

/// How many shard attempts failed with each kind of injected fault, from the trace.
fn injected(p: &flow_runtime::profile::Profiler) -> [usize; 3] {
    use flow_runtime::fault::FaultKind;
    let kinds = [
        FaultKind::BeforeWriting,
        FaultKind::AfterWritingPart,
        FaultKind::Panic,
    ];
    let events = p.events();
    kinds.map(|k| {
        events
            .iter()
            .filter(|e| {
                e.args
                    .iter()
                    .any(|(n, v)| *n == "failed" && *v == k.to_string())
            })
            .count()
    })
}

#[test]
fn injected_faults_are_retried_and_change_nothing() {
    use crate::exec::Backend;
    let clean = run_faulty(Backend::Jit, 2, flow_runtime::fault::RetryPolicy::default());
    assert_eq!(clean.2, None);
    assert!(clean.0.ends_with("done\n"), "{}", clean.0);
    assert!(clean.1.contains_key("m.npy"));
    let reference = run_faulty(
        Backend::Interp,
        1,
        flow_runtime::fault::RetryPolicy::default(),
    );
    assert_eq!((&reference.0, &reference.1), (&clean.0, &clean.1));
    for threads in [1, 3] {
        let (out, files, err, profile) = run_faulty(Backend::Jit, threads, faults(0.3, 7, 20));
        assert_eq!(err, None);
        assert_eq!((out, files), (clean.0.clone(), clean.1.clone()));
        // Every kind of fault happened; the ones after a partial write left garbage that the
        // retries overwrote (otherwise the results would differ).
        let kinds = injected(&profile);
        assert!(kinds.iter().all(|&n| n > 0), "{kinds:?}");
        assert!(
            profile
                .events()
                .iter()
                .any(|e| e.name.ends_with(" gemm") && e.args.iter().any(|(n, _)| *n == "failed")),
            "a GEMM block was faulted and retried"
        );
        let retried = kinds.iter().sum::<usize>();
        assert!(
            profile
                .table()
                .ends_with(&format!(" {retried} shard retries\n")),
            "{}",
            profile.table()
        );
    }
    let (out, files, err, profile) = run_faulty(Backend::Interp, 1, faults(0.3, 7, 20));
    assert_eq!(err, None);
    assert_eq!((out, files), (clean.0, clean.1));
    assert!(injected(&profile).iter().sum::<usize>() > 0);
}

#[test]
fn exhausted_retries_name_the_op_and_the_shard_and_save_nothing() {
    use crate::exec::Backend;
    let (out, files, err, _) = run_faulty(Backend::Jit, 2, faults(1.0, 3, 2));
    assert_eq!(out, "");
    assert!(files.is_empty(), "nothing half-done is saved");
    let err = err.expect("every attempt fails");
    // The first launch is the random fill: shard 0 fails at each of its 3 attempts.
    assert!(
        err.starts_with("node %0, shard 0 of 5 (index box [0..65536]) failed 3 times, retries exhausted; the last failure: injected "),
        "{err}"
    );
    let (out, files, err, _) = run_faulty(Backend::Interp, 1, faults(1.0, 3, 1));
    assert_eq!((out.as_str(), files.len()), ("", 0));
    let err = err.expect("every attempt fails");
    assert!(
        err.starts_with("node %0 failed 2 times, retries exhausted; the last failure: injected "),
        "{err}"
    );
}

#[test]
fn a_failure_after_some_output_stops_before_the_next_observation() {
    // Faults only from the second dispatch on: rate 1 with a fault plan is all or nothing,
    // so run the first observation without faults and the rest with them.
    let src = "op d(x: i64[N], y: i64[N]) -> i64[N] = x / y\nmain { print(\"first\"); let q = d([4, 6], [2, 0]); save(\"q.npy\", q); print(\"after\"); }";
    for backend in [crate::exec::Backend::Jit, crate::exec::Backend::Interp] {
        let profiler = std::sync::Arc::new(flow_runtime::profile::Profiler::new(false));
        let mut opts = match backend {
            crate::exec::Backend::Jit => crate::driver::jit_options(2),
            crate::exec::Backend::Interp => RunOptions::default(),
        };
        opts.retry.retries = 5;
        opts.hooks.profiler = Some(profiler.clone());
        let mut host = MemoryHost::default();
        let err = run_main(&compile(src), &mut host, &opts).unwrap_err();
        assert_eq!(host.out, "first\n");
        assert!(host.files.is_empty());
        // A kernel's error code is deterministic: it is reported at once, not retried.
        assert!(
            profiler.table().ends_with(" 0 shard retries\n"),
            "{}",
            profiler.table()
        );
        match backend {
            crate::exec::Backend::Jit => assert_eq!(
                err.message(),
                "integer division by zero in op \"d\" (node %2), shard 0 of 1 (index box [0..2]); not retried: the error follows from the program and its data"
            ),
            crate::exec::Backend::Interp => {
                assert!(err.message().starts_with("integer division by zero in node %"), "{}", err.message())
            }
        }
    }
}

// ---- caches and the memory budget ----

fn run_stats(src: &str, host: &mut MemoryHost, opts: &RunOptions) -> crate::exec::CacheStats {
    let (res, stats) = crate::exec::run_main_stats(&compile(src), host, opts);
    res.unwrap_or_else(|e| panic!("{}", e.message()));
    stats
}

/// The same sum printed five times: the first dispatch also computes `x`, the second has
/// `x` as an input, and the other three are the second again.
const REPEATED: &str = r#"main {
    let x = rand_uniform(3, [1000]);
    for i in 0..5 {
        print(sum[k](x[k] * x[k]));
    }
}"#;

#[test]
fn an_identical_graph_on_identical_inputs_is_not_recomputed() {
    for opts in [RunOptions::default(), crate::driver::jit_options(2)] {
        let mut host = MemoryHost::default();
        let stats = run_stats(REPEATED, &mut host, &opts);
        assert_eq!(stats.dispatched, 5);
        assert_eq!(stats.evaluated, 2, "{stats:?}");
        assert_eq!(stats.memory_hits, 3, "{stats:?}");
        // Two structures: each optimized once.
        assert_eq!((stats.optimized, stats.graphs_reused), (2, 3), "{stats:?}");
        let lines: Vec<&str> = host.out.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| *l == lines[0]), "{lines:?}");

        let mut off = MemoryHost::default();
        let no_cache = RunOptions {
            result_cache: false,
            ..opts.clone()
        };
        let stats = run_stats(REPEATED, &mut off, &no_cache);
        assert_eq!((stats.evaluated, stats.memory_hits), (5, 0), "{stats:?}");
        assert_eq!(off.out, host.out);
    }
}

#[test]
fn the_graph_cache_skips_the_passes_for_a_structure_seen_before() {
    // Every step dispatches the same structure on new values.
    let src = r#"main {
        var w = rand_uniform(1, [64]);
        for step in 0..6 {
            w = w * 0.5 + 1.0;
            print(sum[k](w[k]));
        }
    }"#;
    let mut host = MemoryHost::default();
    let stats = run_stats(src, &mut host, &crate::driver::jit_options(1));
    assert_eq!(stats.dispatched, 6);
    assert_eq!(stats.evaluated, 6, "new values every step: {stats:?}");
    assert!(stats.optimized <= 2, "{stats:?}");
    assert_eq!(stats.optimized + stats.graphs_reused, 6);
    // The same output with the passes run at every step (no graph cache can be hit when
    // every dispatch has its own pass configuration... so compare with the interpreter).
    let mut other = MemoryHost::default();
    run_stats(src, &mut other, &RunOptions::default());
    assert_eq!(host.out, other.out);
}

#[test]
fn the_persistent_cache_serves_a_second_run_and_survives_damage() {
    let mut host = MemoryHost {
        cache: Some(Default::default()),
        ..MemoryHost::default()
    };
    let first = run_stats(REPEATED, &mut host, &RunOptions::default());
    assert_eq!(first.disk_hits, 0);
    let out = std::mem::take(&mut host.out);
    assert_eq!(host.cache.as_ref().map(|c| c.len()), Some(2));
    // A fresh coordinator: nothing in memory, everything on "disk".
    let second = run_stats(REPEATED, &mut host, &RunOptions::default());
    assert_eq!((second.evaluated, second.disk_hits), (0, 2), "{second:?}");
    assert_eq!(std::mem::take(&mut host.out), out);
    // Truncated or emptied entries are misses: recomputed and stored again.
    for (k, v) in host.cache.as_mut().expect("a cache").iter_mut() {
        if k[0] % 2 == 0 {
            v.truncate(v.len() / 2);
        } else {
            v.clear();
        }
    }
    let third = run_stats(REPEATED, &mut host, &RunOptions::default());
    assert_eq!((third.evaluated, third.disk_hits), (2, 0), "{third:?}");
    assert_eq!(std::mem::take(&mut host.out), out);
    let fourth = run_stats(REPEATED, &mut host, &RunOptions::default());
    assert_eq!((fourth.evaluated, fourth.disk_hits), (0, 2), "{fourth:?}");
}

/// An expensive map read by two reductions: materialized unless the budget forbids it.
const SHARED: &str = r#"
op both(x: f32[N, N]) -> f32[N] {
    let h[i, j] = exp(sin(x[i, j])) * cos(x[i, j]) + tanh(x[i, j]) * sqrt(x[i, j] + 1.0);
    let a[i] = sum[j](h[i, j]) + sum[j](h[j, i]);
    a
}
main {
    let x = rand_uniform(7, [128, 128]);
    let a = both(x);
    save("a.npy", a);
    print(a[5]);
}"#;

#[test]
fn a_memory_budget_recomputes_instead_of_materializing() {
    for opts in [RunOptions::default(), crate::driver::jit_options(2)] {
        let mut free = MemoryHost::default();
        let unlimited = run_stats(SHARED, &mut free, &opts);
        // x, h (64 KiB each) and a.
        assert!(unlimited.peak_bytes >= 2 * 65536, "{unlimited:?}");
        let limit = 100 * 1024;
        let mut tight = MemoryHost::default();
        let limited = run_stats(
            SHARED,
            &mut tight,
            &RunOptions {
                memory_limit: Some(limit),
                ..opts.clone()
            },
        );
        assert!(
            limited.peak_bytes < unlimited.peak_bytes,
            "{limited:?} {unlimited:?}"
        );
        assert!(limited.peak_bytes <= limit as u128, "{limited:?}");
        // Bitwise the same results.
        assert_eq!(tight.files["a.npy"], free.files["a.npy"]);
        assert_eq!(tight.out, free.out);
    }
}

#[test]
fn a_budget_that_nothing_fits_in_is_a_clear_error() {
    let opts = RunOptions {
        memory_limit: Some(10_000),
        ..RunOptions::default()
    };
    let e = run_main(&compile(SHARED), &mut MemoryHost::default(), &opts)
        .expect_err("x alone is 64 KiB");
    assert!(e.message().contains("memory budget"), "{}", e.message());
    assert!(e.message().contains("f32[128, 128]"), "{}", e.message());
    assert!(e.message().contains("64.0 KiB"), "{}", e.message());
    assert!(
        e.message().contains("the largest: tensor %0"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("limit of 9.8 KiB"), "{}", e.message());
}

#[test]
fn absurd_shapes_are_rejected_before_allocation() {
    for opts in [RunOptions::default(), crate::driver::jit_options(1)] {
        let e = run_main(
            &compile(
                r#"main { let x = rand_uniform(1, [4294967296, 4294967296]); print(x[0, 0]); }"#,
            ),
            &mut MemoryHost::default(),
            &opts,
        )
        .expect_err("2^64 elements");
        assert!(e.message().contains("overflows"), "{}", e.message());
        assert!(
            e.message().contains("[4294967296, 4294967296]"),
            "{}",
            e.message()
        );
        // Countable, but far more than any memory: 4 TB.
        let e = run_main(
            &compile(
                r#"op big(x: f32[N]) -> f32[N, N] { let y[i, j] = x[i] * x[j]; y }
main { let x = rand_uniform(1, [1000000]); print(big(x)[0, 0]); }"#,
            ),
            &mut MemoryHost::default(),
            &opts,
        )
        .expect_err("4 TB");
        assert!(
            e.message().contains("cannot be allocated"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("f32[1000000, 1000000]"),
            "{}",
            e.message()
        );
    }
}

#[test]
fn bench_repetitions_are_computed_every_time() {
    let prog = compile(
        r#"bench "b" {
    let x = rand_uniform(1, [256]);
    measure {
        let y = sum[i](x[i] * 2.0);
    }
}"#,
    );
    for opts in [RunOptions::default(), crate::driver::jit_options(1)] {
        let out = crate::exec::run_benches(&prog, &mut MemoryHost::default(), &opts, 2, 3);
        assert!(out[0].error.is_none());
        assert_eq!(out[0].times.len(), 3);
        // The setup's x, then the sum in each of the 2 + 3 repetitions.
        assert!(out[0].evaluated >= 5, "{}", out[0].evaluated);
    }
}

#[test]
fn the_host_sees_every_bench_repetition_before_it_runs() {
    let prog = compile(
        r#"bench "b" {
    let x = rand_uniform(1, [16]);
    print(1);
    measure {
        print(sum[i](x[i]));
    }
}"#,
    );
    let mut memory = MemoryHost::default();
    let mut reps = Vec::new();
    let mut host = super::WithRepHook {
        inner: &mut memory,
        before_rep: |rep| reps.push(rep),
    };
    let out = crate::exec::run_benches(&prog, &mut host, &RunOptions::default(), 2, 3);
    assert!(out[0].error.is_none());
    assert_eq!(reps, [0, 1, 2, 3, 4]);
    // The setup's print and one per repetition reached the inner host.
    assert_eq!(memory.out.lines().count(), 6, "{}", memory.out);
}

#[test]
fn results_served_from_the_cache_are_still_dropped_when_dead() {
    // Each iteration's sum is served from the result cache: one tensor shared by several
    // ports. Once their handles are gone, the ports must be dropped all the same.
    let prog = compile(REPEATED);
    let mut host = MemoryHost::default();
    let opts = RunOptions::default();
    let mut m = super::Machine::new(&prog, &mut host, &opts, super::Caches::default());
    let main = prog.main.as_ref().expect("a main block");
    m.run_body(main, Vec::new(), std::collections::HashMap::new())
        .unwrap_or_else(|e| panic!("{}", e.message()));
    assert_eq!(m.caches.stats.memory_hits, 3);
    // `x` and the last sum at most.
    assert!(m.done.len() <= 2, "{} computed ports kept", m.done.len());
}

/// Nested `fn`s that each use a `let` (or a parameter) several times lower to a graph linear
/// in the program's size: such a value is computed once, not substituted into every use
/// (which made a palette reduction 760 KB of MIR). The values are unchanged.
#[test]
fn nested_fns_that_reuse_values_lower_to_a_small_graph() {
    // Substituted, `f` would grow as 3^depth and `g` as 9^g_depth.
    let (depth, g_depth) = (9, 4);
    let mut src = String::from(
        "fn f0(x: f32) -> f32 = x * 0.5 + 1.0\nfn g0(x: f32) -> f32 = x * 0.5 + 1.0\n\
         fn twice(x: f32) -> f32 = x * x - x * 0.5 + x * 0.25\n",
    );
    for k in 1..=depth {
        src += &format!(
            "fn f{k}(x: f32) -> f32 {{ let y = f{}(x) * 0.75 + 0.25; y * y - y + 0.5 * y }}\n",
            k - 1
        );
    }
    for k in 1..=g_depth {
        src += &format!(
            "fn g{k}(x: f32) -> f32 = twice(twice(g{}(x) * 0.75 + 0.25))\n",
            k - 1
        );
    }
    src += &format!(
        "main {{ let x = [0.1, 0.2, -0.3]; let r[i] = f{depth}(x[i]); \
         let s[i] = sum[j](g{g_depth}(x[j] * x[i])); print(r); print(s); }}"
    );
    let prog = compile(&src);
    let started = std::time::Instant::now();
    let (graphs, err) = crate::exec::dispatched_graphs(&prog, &mut MemoryHost::default());
    assert!(err.is_none(), "{err:?}");
    let text: usize = graphs.iter().map(|g| crate::mir::print(g).len()).sum();
    assert!(text < 40_000, "{text} bytes of MIR");
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "{:?}",
        started.elapsed()
    );

    let f = |x: f32| {
        let mut v = x * 0.5 + 1.0;
        for _ in 0..depth {
            let y = v * 0.75 + 0.25;
            v = y * y - y + 0.5 * y;
        }
        v
    };
    let twice = |x: f32| x * x - x * 0.5 + x * 0.25;
    let g = |x: f32| {
        let mut v = x * 0.5 + 1.0;
        for _ in 0..g_depth {
            v = twice(twice(v * 0.75 + 0.25));
        }
        v
    };
    let xs = [0.1f32, 0.2, -0.3];
    let show = |v: Vec<f32>| {
        let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        format!("[{}]", items.join(", "))
    };
    let r = show(xs.iter().map(|x| f(*x)).collect());
    let s = show(
        xs.iter()
            .map(|xi| xs.iter().fold(0.0f32, |acc, xj| acc + g(xj * xi)))
            .collect(),
    );
    assert_eq!(run(&src).unwrap(), format!("{r}\n{s}\n"));
}

/// A "pass" that leaves the MIR invalid — the graph's results name a node that does not
/// exist — standing in for a buggy rewrite. No pass of the pipeline may do this; the test
/// shows how the coordinator reports one that does.
fn break_the_mir(
    g: &mut crate::mir::ir::Graph,
    _: &crate::mir::passes::PassConfig,
) -> Vec<crate::mir::passes::Rewrite> {
    g.outputs.push(crate::mir::ir::Port {
        node: crate::mir::ir::NodeId(g.nodes.len() as u32),
        port: 0,
    });
    Vec::new()
}

static BREAKS_THE_MIR: crate::mir::passes::Pass = crate::mir::passes::Pass {
    name: "breaks-the-mir",
    description: "test only: leaves the graph invalid",
    run: break_the_mir,
};

#[test]
fn a_pass_that_breaks_the_mir_is_a_compiler_bug() {
    let mut opts = RunOptions {
        passes: Some(vec![&crate::mir::passes::FUSE_MAPS, &BREAKS_THE_MIR]),
        ..RunOptions::default()
    };
    opts.config.verify = true;
    let prog = compile("main { let x = [1.0, 2.0]; print(x * 2.0); }");
    let err = run_main(&prog, &mut MemoryHost::default(), &opts).unwrap_err();
    assert_eq!(
        err.code(),
        crate::base::Code::CompilerBug,
        "{}",
        err.message()
    );
    let RunErrorKind::CompilerBug {
        stage,
        finding,
        graph,
    } = &*err.kind
    else {
        panic!("not a compiler bug: {:?}", err.kind)
    };
    assert!(stage.contains("breaks-the-mir"), "{stage}");
    assert!(!finding.is_empty());
    assert!(graph.is_some());
    let message = err.message();
    assert!(
        message.starts_with(
            "internal compiler error: the pass `breaks-the-mir` left the MIR invalid: "
        ),
        "{message}"
    );
    assert!(message.contains(finding.as_str()), "{message}");
    assert!(message.contains("please report it"), "{message}");
    // Without the broken pass the same program runs.
    opts.passes = Some(vec![&crate::mir::passes::FUSE_MAPS]);
    assert!(run_main(&prog, &mut MemoryHost::default(), &opts).is_ok());
}

mod checkpoints;
mod param_monoids;
mod runs;
