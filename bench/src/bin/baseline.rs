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

use flow_bench::native;
use flow_bench::timing::{self, Options};
use flow_bench::workloads::{self, BENCHES};

const USAGE: &str =
    "usage: baseline [--threads N] [--warmup N] [--reps N] [--only NAME,NAME,...] [--json]
  --threads N   worker threads (default: all cores)
  --warmup N    untimed runs before timing (default 2)
  --reps N      timed runs (default 10)
  --only LIST   run only these benchmarks (W1 W2 W3 W4 W5 W6 pool.run W1/pool)
  --json        print JSON instead of a table
  --serve       answer compare's requests on stdin/stdout (flow_bench::native)";

struct Args {
    threads: usize,
    opts: Options,
    only: Option<Vec<String>>,
    json: bool,
    serve: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: flow_runtime::pool::default_threads(),
        opts: Options::default(),
        only: None,
        json: false,
        serve: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        let number = |flag: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag} takes a number, not `{v}`"))
        };
        match a.as_str() {
            "--threads" => args.threads = number("--threads", value("--threads")?)?.max(1),
            "--warmup" => args.opts.warmup = number("--warmup", value("--warmup")?)?,
            "--reps" => args.opts.reps = number("--reps", value("--reps")?)?.max(1),
            "--only" => {
                let list: Vec<String> = value("--only")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                if let Some(bad) = list.iter().find(|n| !BENCHES.iter().any(|b| b.name == *n)) {
                    return Err(format!("unknown benchmark `{bad}`"));
                }
                args.only = Some(list);
            }
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
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("baseline: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
    {
        eprintln!("baseline: cannot start {} threads: {e}", args.threads);
        return ExitCode::FAILURE;
    }
    if args.serve {
        let stdout = std::io::stdout();
        return match native::serve(args.threads, std::io::stdin().lock(), stdout.lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut results = Vec::new();
    for b in BENCHES {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == b.name))
        {
            continue;
        }
        if !args.json {
            eprintln!("running {} ({})", b.name, b.what);
        }
        results.extend(workloads::run(b.name, args.threads, &args.opts));
    }
    if args.json {
        let context = [
            ("threads", args.threads.to_string()),
            ("warmup", args.opts.warmup.to_string()),
            ("reps", args.opts.reps.to_string()),
        ];
        print!("{}", timing::render_json(&context, &results));
    } else {
        println!(
            "threads: {}, warm-up runs: {}, timed runs: {}",
            args.threads, args.opts.warmup, args.opts.reps
        );
        print!("{}", timing::render_table(&results));
    }
    ExitCode::SUCCESS
}
