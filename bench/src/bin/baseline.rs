//! `baseline`: times the hand-written Rust baselines of W1–W6 (and the runtime pool's
//! dispatch cost) and prints median/min/max per workload, as a table or with `--json`.
//!
//! ```text
//! cargo run --release -p flow-bench -- [--threads N] [--warmup N] [--reps N] [--only W1,W3] [--json]
//! ```
//!
//! With `--serve` it times one run at a time on request, for `compare` (see
//! `flow_bench::native`).

use std::process::ExitCode;

use flow_bench::timing;
use flow_bench::workloads::{self, BENCHES};
use flow_bench::{cli, native};

/// Large buffers on 64-byte boundaries, as in `flowc` (`flow_runtime::alloc`), so that
/// Flow and the baselines get the same alignment.
#[global_allocator]
static ALLOC: flow_runtime::alloc::CacheLineAligned = flow_runtime::alloc::CacheLineAligned;

const USAGE: &str =
    "usage: baseline [--threads N] [--warmup N] [--reps N] [--only NAME,NAME,...] [--json]
  --threads N   worker threads (default: all cores)
  --warmup N    untimed runs before timing (default 2)
  --reps N      timed runs (default 10)
  --only LIST   run only these benchmarks (W1 W2 W3 W4 W5 W6 pool.run W1/pool)
  --json        print JSON instead of a table
  --serve       answer compare's requests on stdin/stdout (flow_bench::native)";

struct Args {
    common: cli::Common,
    json: bool,
    serve: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        common: cli::Common::new(),
        json: false,
        serve: false,
    };
    let names: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if args.common.take(&a, &mut it, &names)? {
            continue;
        }
        match a.as_str() {
            "--json" => args.json = true,
            "--serve" => args.serve = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => return cli::usage_error("baseline", &msg, USAGE),
    };
    let threads = args.common.threads;
    let opts = args.common.opts;
    if let Err(e) = cli::start_threads(threads) {
        eprintln!("baseline: {e}");
        return ExitCode::FAILURE;
    }
    if args.serve {
        let stdout = std::io::stdout();
        return match native::serve(threads, std::io::stdin().lock(), stdout.lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut results = Vec::new();
    for b in BENCHES {
        if !args.common.selected(b.name) {
            continue;
        }
        if !args.json {
            eprintln!("running {} ({})", b.name, b.what);
        }
        results.extend(workloads::run(b.name, threads, &opts));
    }
    if args.json {
        let context = [
            ("threads", threads.to_string()),
            ("warmup", opts.warmup.to_string()),
            ("reps", opts.reps.to_string()),
        ];
        print!("{}", timing::render_json(&context, &results));
    } else {
        println!(
            "threads: {}, warm-up runs: {}, timed runs: {}",
            threads, opts.warmup, opts.reps
        );
        print!("{}", timing::render_table(&results));
    }
    ExitCode::SUCCESS
}
