//! `compare`: times each workload three ways in one process — the hand-written Rust baseline
//! as this crate is built (portable: x86-64 with SSE2), the same baseline built for this CPU
//! (`-C target-cpu=native`, in a second process: see `flow_bench::native`), and the Flow
//! program (`benches/wN_*.flow`, its `bench` block, on the native backend) — interleaved run
//! by run, and prints the medians and the two ratios, the figures `docs/performance.md`
//! records.
//!
//! usage: compare [--threads N] [--warmup N] [--reps N] [--only W1,W3,filter,sort,scan,histogram,scan_fused,histogram_fused,gather,scan_argmax,histogram_rows]
//!                [--native-rustflags FLAGS | --native-exe PATH | --no-native]

use std::path::PathBuf;
use std::process::ExitCode;

use flow_bench::cli;
use flow_bench::native::{self, Server};
use flow_bench::timing::Timing;
use flow_bench::workloads::{self, Prepared};
use flowc::driver::{compile_paths, summarize, RenderConfig};
use flowc::exec::{run_benches, MemoryHost, WithRepHook};

/// Large buffers on 64-byte boundaries, as in `flowc` (`flow_runtime::alloc`), so that
/// Flow and the baselines get the same alignment.
#[global_allocator]
static ALLOC: flow_runtime::alloc::CacheLineAligned = flow_runtime::alloc::CacheLineAligned;

const PROGRAMS: &[(&str, &str)] = &[
    ("W1", "w1_elementwise.flow"),
    ("W2", "w2_moments.flow"),
    ("W3", "w3_softmax.flow"),
    ("W4", "w4_linear_relu.flow"),
    ("W5", "w5_mlp_step.flow"),
    ("W6", "w6_stencil.flow"),
    ("filter", "p_filter.flow"),
    ("sort", "p_sort.flow"),
    ("scan", "p_scan.flow"),
    ("histogram", "p_histogram.flow"),
    ("scan_fused", "p_scan_fused.flow"),
    ("histogram_fused", "p_histogram_fused.flow"),
    ("gather", "w7_gather.flow"),
    ("scan_argmax", "p_scan_argmax.flow"),
    ("histogram_rows", "p_histogram_rows.flow"),
];

const USAGE: &str =
    "usage: compare [--threads N] [--warmup N] [--reps N] [--only W1,W3,filter,sort,scan,histogram,scan_fused,histogram_fused,gather,scan_argmax,histogram_rows]
               [--native-rustflags FLAGS | --native-exe PATH | --no-native]
  --native-rustflags FLAGS  RUSTFLAGS of the native baseline (default: -C target-cpu=native)
  --native-exe PATH         a `baseline` binary already built, instead of building one
  --no-native               the portable baseline only";

/// Where the native baseline comes from.
enum NativeFrom {
    Build(String),
    Exe(PathBuf),
    None,
}

struct Args {
    common: cli::Common,
    native: NativeFrom,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        common: cli::Common::new(),
        native: NativeFrom::Build(native::DEFAULT_RUSTFLAGS.to_string()),
    };
    let names: Vec<&str> = PROGRAMS.iter().map(|p| p.0).collect();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if args.common.take(&a, &mut it, &names)? {
            continue;
        }
        match a.as_str() {
            "--native-rustflags" => args.native = NativeFrom::Build(cli::value(&a, &mut it)?),
            "--native-exe" => args.native = NativeFrom::Exe(cli::value(&a, &mut it)?.into()),
            "--no-native" => args.native = NativeFrom::None,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// The baselines' timed runs, made before each repetition of the Flow program's `measure`
/// block (the portable one, then the native one), so that the three interleave.
struct Baselines<'a> {
    warmup: usize,
    portable: &'a mut Prepared,
    native: Option<&'a mut Server>,
    portable_ms: Vec<f64>,
    native_ms: Vec<f64>,
    error: Option<String>,
}

impl Baselines<'_> {
    fn run_once(&mut self, rep: usize) {
        let portable = self.portable.time_once();
        let native = match self.native.as_deref_mut().map(Server::time_once) {
            Some(Err(e)) => {
                self.error.get_or_insert(e);
                None
            }
            Some(Ok(ms)) => Some(ms),
            None => None,
        };
        if rep >= self.warmup {
            self.portable_ms.push(portable);
            self.native_ms.extend(native);
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => return cli::usage_error("compare", &msg, USAGE),
    };
    match compare(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("compare: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn compare(args: &Args) -> Result<(), String> {
    let (threads, opts) = (args.common.threads, args.common.opts);
    cli::start_threads(threads)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut server = match &args.native {
        NativeFrom::Build(flags) => Some(Server::start(&native::build(&root, flags)?, threads)?),
        NativeFrom::Exe(exe) => Some(Server::start(exe, threads)?),
        NativeFrom::None => None,
    };
    println!(
        "threads {threads}, warm-up {}, timed runs {} (interleaved); medians in ms",
        opts.warmup, opts.reps
    );
    println!("portable baseline: {}", native::target_features().join(" "));
    if let Some(s) = &server {
        println!("native baseline:   {}", s.features.join(" "));
    }
    println!(
        "{:<4} {:>10} {:>10} {:>10} {:>9} {:>9} {:>13}",
        "", "Rust port", "Rust nat", "Flow", "/port", "/nat", "Flow compile"
    );
    for (name, file) in PROGRAMS {
        if !args.common.selected(name) {
            continue;
        }
        eprintln!("running {name}");
        let mut portable =
            workloads::prepare(name, threads).ok_or(format!("no baseline {name}"))?;
        if let Some(s) = &mut server {
            s.prepare(name)?;
        }
        let path = root.join("benches").join(file);
        let start = std::time::Instant::now();
        let compiled = compile_paths(std::slice::from_ref(&path))
            .map_err(|e| e.render(RenderConfig::default()))?;
        let front_end = start.elapsed();
        let run = flowc::driver::jit_options(threads);
        let mut baselines = Baselines {
            warmup: opts.warmup,
            portable: &mut portable,
            native: server.as_mut(),
            portable_ms: Vec::new(),
            native_ms: Vec::new(),
            error: None,
        };
        let mut memory = MemoryHost::default();
        let mut host = WithRepHook {
            inner: &mut memory,
            before_rep: |rep| baselines.run_once(rep),
        };
        let results = run_benches(&compiled.program, &mut host, &run, opts.warmup, opts.reps);
        if let Some(e) = baselines.error {
            return Err(e);
        }
        // The workload is the file's first bench block (W5's second times the same step
        // with a derived backward: `flowc bench benches/w5_mlp_step.flow` compares the two);
        // the baselines also ran before the later blocks' reps, the same computation each
        // time, so all their reps count.
        let Some(r) = results.first() else {
            return Err(format!("{file} has no bench block"));
        };
        if let Some(e) = &r.error {
            return Err(format!("{name}: {}", e.message()));
        }
        let median = |samples: Vec<f64>| {
            Timing {
                name: String::new(),
                what: String::new(),
                samples_ms: samples,
            }
            .median_ms()
        };
        let port = median(baselines.portable_ms);
        let nat = (!baselines.native_ms.is_empty()).then(|| median(baselines.native_ms));
        let (flow, _, _) = summarize(&r.times);
        let compile_ms = (front_end + r.compile_time).as_secs_f64() * 1e3;
        let nat_cols = match nat {
            Some(n) => format!(
                "{n:>10.3} {:>10.3} {:>8.2}x {:>8.2}x",
                flow,
                flow / port,
                flow / n
            ),
            None => format!("{:>10} {flow:>10.3} {:>8.2}x {:>9}", "-", flow / port, "-"),
        };
        println!("{name:<4} {port:>10.3} {nat_cols} {compile_ms:>10.2} ms");
    }
    Ok(())
}
