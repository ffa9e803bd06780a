//! `compare`: runs each workload's hand-written Rust baseline and its Flow program
//! (`benches/wN_*.flow`, its `bench` block, on the native backend) in one process, one after
//! the other, and prints the medians and their ratio — the figure `docs/performance.md`
//! records.
//!
//! usage: compare [--threads N] [--warmup N] [--reps N] [--only W1,W3,filter,sort]

use std::path::PathBuf;
use std::process::ExitCode;

use flow_bench::timing::Options;
use flow_bench::workloads;
use flowc::driver::{compile_paths, summarize, RenderConfig};
use flowc::exec::{run_benches, MemoryHost};

const PROGRAMS: &[(&str, &str)] = &[
    ("W1", "w1_elementwise.flow"),
    ("W2", "w2_moments.flow"),
    ("W3", "w3_softmax.flow"),
    ("W4", "w4_linear_relu.flow"),
    ("W5", "w5_mlp_step.flow"),
    ("W6", "w6_stencil.flow"),
    ("filter", "p_filter.flow"),
    ("sort", "p_sort.flow"),
];

fn main() -> ExitCode {
    let mut threads = flow_runtime::pool::default_threads();
    let mut opts = Options::default();
    let mut only: Option<Vec<String>> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_default();
        match a.as_str() {
            "--threads" => threads = v.parse().unwrap_or(threads).max(1),
            "--warmup" => opts.warmup = v.parse().unwrap_or(opts.warmup),
            "--reps" => opts.reps = v.parse().unwrap_or(opts.reps).max(1),
            "--only" => only = Some(v.split(',').map(|s| s.trim().to_string()).collect()),
            _ => {
                eprintln!("usage: compare [--threads N] [--warmup N] [--reps N] [--only W1,W3]");
                return ExitCode::from(2);
            }
        }
    }
    if rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_err()
    {
        eprintln!("compare: cannot start {threads} threads");
        return ExitCode::FAILURE;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    println!(
        "threads {threads}, warm-up {}, timed runs {}; medians in ms",
        opts.warmup, opts.reps
    );
    println!(
        "{:<4} {:>12} {:>12} {:>8} {:>14}",
        "", "Rust", "Flow", "ratio", "Flow compile"
    );
    for (name, file) in PROGRAMS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        eprintln!("running {name}");
        let Some(base) = workloads::run(name, threads, &opts) else {
            eprintln!("compare: no baseline {name}");
            return ExitCode::FAILURE;
        };
        let path = root.join("benches").join(file);
        let start = std::time::Instant::now();
        let compiled = match compile_paths(std::slice::from_ref(&path)) {
            Ok(c) => c,
            Err(e) => {
                eprint!("{}", e.render(RenderConfig::default()));
                return ExitCode::FAILURE;
            }
        };
        let front_end = start.elapsed();
        let run = flowc::driver::jit_options(threads);
        let results = run_benches(
            &compiled.program,
            &mut MemoryHost::default(),
            &run,
            opts.warmup,
            opts.reps,
        );
        for r in results {
            if let Some(e) = r.error {
                eprintln!("compare: {name}: {}", e.message());
                return ExitCode::FAILURE;
            }
            let (median, _, _) = summarize(&r.times);
            let compile_ms = (front_end + r.compile_time).as_secs_f64() * 1e3;
            println!(
                "{name:<4} {:>12.3} {median:>12.3} {:>7.2}x {:>11.2} ms",
                base.median_ms(),
                median / base.median_ms(),
                compile_ms
            );
        }
    }
    ExitCode::SUCCESS
}
