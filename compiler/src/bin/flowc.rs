//! The `flowc` command line: parses arguments and calls the driver.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use flowc::driver::{self, PassFlags, RuntimeFlags, Stage};

/// Tensor buffers on 64-byte boundaries (`flow_runtime::alloc`): the span math's AVX-512
/// loads never straddle a cache line.
#[global_allocator]
static ALLOC: flow_runtime::alloc::CacheLineAligned = flow_runtime::alloc::CacheLineAligned;

/// Flow: a compiler for dataflow tensor programs.
#[derive(Parser)]
#[command(name = "flowc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Native kernels compiled with Cranelift, run in parallel.
    Jit,
    /// The reference interpreter of MIR (slow; the semantic oracle).
    Interp,
}

#[derive(Clone, Copy, ValueEnum)]
enum StageArg {
    /// The MIR of every dispatched graph, as lowered.
    Mir,
    /// The MIR after the rewrite passes.
    Opt,
    /// The schedule after the rewrite passes: launches, shards, in-place writes, materialized tensors.
    Kernels,
}

impl From<StageArg> for Stage {
    fn from(s: StageArg) -> Stage {
        match s {
            StageArg::Mir => Stage::Mir,
            StageArg::Opt => Stage::Opt,
            StageArg::Kernels => Stage::Kernels,
        }
    }
}

/// Which backend and rewrite passes run.
#[derive(Args, Clone)]
struct PassArgs {
    /// Which backend runs the operation graphs.
    #[arg(long, value_enum, default_value = "jit")]
    backend: Backend,
    /// Threads for native kernels, 1 to 1024 (default: every core). Results do not depend
    /// on it.
    #[arg(long, value_name = "N", value_parser = driver::parse_threads)]
    threads: Option<usize>,
    /// Run no rewrite pass.
    #[arg(long)]
    no_opt: bool,
    /// Run only these passes, in this order (comma-separated: fuse-maps,fuse-reduce,
    /// fuse-siblings,cse,dce,shard,lanes).
    #[arg(long, value_delimiter = ',')]
    passes: Option<Vec<String>>,
}

impl PassArgs {
    fn flags(&self) -> PassFlags {
        PassFlags {
            interp: self.backend == Backend::Interp,
            threads: self.threads,
            no_opt: self.no_opt,
            passes: self.passes.clone(),
            ..PassFlags::default()
        }
    }
}

/// Caching and memory, for the commands that run a program.
#[derive(Args, Clone)]
struct RunArgs {
    /// Keep results of dispatched graphs in DIR across runs (damaged entries are detected and
    /// recomputed).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Reuse no results, in memory or in a cache directory.
    #[arg(long)]
    no_cache: bool,
    /// The most memory the tensors of a dispatch may take (e.g. 512M, 2G); recompute instead
    /// of materializing to stay within it.
    #[arg(long, value_name = "SIZE", value_parser = driver::parse_size)]
    memory_limit: Option<u64>,
    /// Print what the caches did and the peak tensor memory on standard error.
    #[arg(long)]
    stats: bool,
}

impl RunArgs {
    fn flags(&self, passes: &PassArgs) -> PassFlags {
        PassFlags {
            cache_dir: self.cache_dir.clone(),
            no_cache: self.no_cache,
            memory_limit: self.memory_limit,
            stats: self.stats,
            ..passes.flags()
        }
    }
}

/// Retries, fault injection, profiling and tracing of `run`, `test` and `bench`.
#[derive(Args, Clone)]
struct RuntimeArgs {
    /// How many times a failed shard is re-run before the run fails (default 3).
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Inject faults into shard attempts, for testing: each fails with probability RATE,
    /// decided by SEED (overrides the FLOW_FAULTS environment variable).
    #[arg(long, value_name = "RATE,SEED")]
    faults: Option<String>,
    /// Print a table per kernel (calls, shards, time, bytes, GB/s) on standard error at
    /// the end.
    #[arg(long)]
    profile: bool,
    /// Write Chrome trace events (open in Perfetto or chrome://tracing) to this file.
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Compute the same bits on every x86-64 machine: math functions from libm, `exp`
    /// spans and contractions in portable code (slower; also FLOW_PORTABLE_MATH=1).
    #[arg(long)]
    portable_math: bool,
}

impl RuntimeArgs {
    fn flags(&self) -> RuntimeFlags {
        RuntimeFlags {
            retries: self.retries,
            faults: self.faults.clone(),
            profile: self.profile,
            trace: self.trace.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check files; print every diagnostic. Exit 1 on any error.
    Check {
        /// The `.flow` files to check (each checked as its own program).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a program's `main`. Arguments after `--` are the program's `args()`.
    Run {
        file: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        launch: LaunchArgs,
        /// Write stage checkpoints to DIR (after completed iterations of `main`'s loops) and
        /// resume from the one a killed run of the same program and arguments left.
        #[arg(long, value_name = "DIR")]
        checkpoint: Option<PathBuf>,
        /// Arguments passed to the program.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Evaluate MIR graph files (the text form `flowc ir` prints) with their inputs
    /// (`STEM.in0.npy`, …) and print a content hash of each output; for testing the
    /// executors, on one process or on MPI ranks (see docs/distributed.md).
    RunMir {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        launch: LaunchArgs,
    },
    /// Compile a program into a native executable that runs its `main` (see `flowc build
    /// --help`). Arguments after `--` are the program's `args()` during the build's trace run.
    ///
    /// The executable needs no flowc, no Cranelift and no source file; it takes `--threads N`
    /// and passes every other argument to the program. Its kernels are those the build's
    /// trace run of `main` dispatched; any other runs on the interpreter (set FLOW_AOT_STATS=1
    /// to count them). Links with the system C compiler (`cc`, or CC).
    Build {
        file: PathBuf,
        /// Write the executable to this file (default: the file's stem, here).
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Threads for the trace run, 1 to 1024 (default: every core).
        #[arg(long, value_name = "N", value_parser = driver::parse_threads)]
        threads: Option<usize>,
        /// Stop the trace run after this many seconds (kernels it did not reach are
        /// interpreted in the executable).
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        trace_time: f64,
        /// The executable (and the trace run) compute the same bits on every x86-64
        /// machine, as `flowc run --portable-math`.
        #[arg(long)]
        portable_math: bool,
        /// An executable that runs as one rank of an MPI job under `mpirun` (as `flowc run`
        /// does; needs a flowc built with `--features mpi`). See docs/distributed.md.
        #[arg(long = "mpi")]
        mpi_ranks: bool,
        /// Arguments passed to the program during the trace run.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the `test` blocks of a file, or of every `.flow` file in a directory.
    Test {
        path: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        launch: LaunchArgs,
    },
    /// Print the IR of every graph a program dispatches (its output is discarded).
    Ir {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "mir")]
        stage: StageArg,
        #[command(flatten)]
        passes: PassArgs,
        /// Print how long each pass took, on standard error.
        #[arg(long)]
        time_passes: bool,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the `bench` blocks: setup once, the `measure` block after a warm-up, timed.
    Bench {
        file: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        launch: LaunchArgs,
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Untimed runs before the timed ones.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Timed runs (at least 1).
        #[arg(long, default_value_t = 11, value_parser = clap::value_parser!(u32).range(1..))]
        reps: u32,
    },
    /// List every rewrite the compiler makes, and the law that makes it safe; and every pair of
    /// adjacent operations left unfused, and why.
    Explain {
        file: PathBuf,
        #[command(flatten)]
        passes: PassArgs,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Draw the dispatched graphs with Graphviz (DOT; an image such as SVG or PNG when `dot`
    /// is installed).
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "opt")]
        stage: StageArg,
        /// Write to this file instead of standard output: `.dot`, or an image drawn by
        /// Graphviz's `dot` (`.svg`, `.png`, `.pdf`, …).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        passes: PassArgs,
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// Runs the compiler on a thread with the stack it needs (`driver::STACK_BYTES`).
fn main() -> ExitCode {
    let worker = std::thread::Builder::new()
        .name("flowc".into())
        .stack_size(driver::STACK_BYTES)
        .spawn(flowc_main);
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        // A panic was already reported by the panic hook.
        Ok(Err(_)) => ExitCode::from(101),
        // No memory to reserve for the stack: run on this thread's.
        Err(_) => flowc_main(),
    }
}

/// Where the commands that run graphs (`run`, `run-mir`, `test`, `bench`) run: on this
/// process, or as an MPI job started for the user.
#[derive(Args, Clone)]
struct LaunchArgs {
    /// Run on N MPI ranks: starts `mpirun -n N` with this flowc (needs the `mpi` feature
    /// and Open MPI; see docs/distributed.md).
    #[arg(long, value_name = "N")]
    ranks: Option<u32>,
    /// With --ranks: end the whole job after SECS seconds (`mpirun --timeout`).
    #[arg(long, value_name = "SECS", requires = "ranks")]
    timeout: Option<u32>,
}

/// Every option of the commands that run a program (`run`, `test`, `bench`): passes, the
/// runtime, caching and memory.
#[derive(Args, Clone)]
struct ExecArgs {
    #[command(flatten)]
    passes: PassArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    run: RunArgs,
}

impl ExecArgs {
    fn flags(&self) -> (PassFlags, RuntimeFlags) {
        (self.run.flags(&self.passes), self.runtime.flags())
    }
}

/// `flowc COMMAND --ranks N …`: the same command line, less the launch flags, on N ranks.
fn launch_ranks(command: &str, ranks: u32, timeout: Option<u32>) -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    // Everything after `flowc COMMAND`, less the flags of the launch.
    let rest = argv
        .iter()
        .position(|a| a == command)
        .map_or(&argv[..0], |i| &argv[i + 1..]);
    driver::launch::run_ranks(
        ranks,
        timeout,
        command,
        &driver::launch::without_launch_flags(rest),
    )
}

fn flowc_main() -> ExitCode {
    let cli = Cli::parse();
    driver::apply_test_environment();
    driver::select_math(match &cli.command {
        Command::Run { exec, .. }
        | Command::RunMir { exec, .. }
        | Command::Test { exec, .. }
        | Command::Bench { exec, .. } => exec.runtime.portable_math,
        Command::Build { portable_math, .. } => *portable_math,
        _ => false,
    });
    let status = match cli.command {
        Command::Check { files } => driver::cmd_check(&files),
        Command::Run {
            launch:
                LaunchArgs {
                    ranks: Some(ranks),
                    timeout,
                },
            ..
        } => launch_ranks("run", ranks, timeout),
        Command::RunMir {
            launch:
                LaunchArgs {
                    ranks: Some(ranks),
                    timeout,
                },
            ..
        } => launch_ranks("run-mir", ranks, timeout),
        Command::Test {
            launch:
                LaunchArgs {
                    ranks: Some(ranks),
                    timeout,
                },
            ..
        } => launch_ranks("test", ranks, timeout),
        Command::Bench {
            launch:
                LaunchArgs {
                    ranks: Some(ranks),
                    timeout,
                },
            ..
        } => launch_ranks("bench", ranks, timeout),
        Command::RunMir { files, exec, .. } => {
            let (passes, runtime) = exec.flags();
            driver::cmd_run_mir(&files, &passes, &runtime)
        }
        Command::Run {
            file,
            exec,
            args,
            checkpoint,
            ..
        } => {
            let (mut passes, runtime) = exec.flags();
            passes.checkpoint = checkpoint;
            driver::cmd_run(&file, args, &passes, &runtime)
        }
        Command::Build {
            file,
            output,
            threads,
            trace_time,
            portable_math,
            mpi_ranks,
            args,
        } => match std::time::Duration::try_from_secs_f64(trace_time) {
            Ok(trace_time) => driver::aot::cmd_build(
                &file,
                &driver::aot::BuildFlags {
                    output,
                    trace_args: args,
                    threads,
                    trace_time,
                    portable_math,
                    mpi_ranks,
                },
            ),
            Err(_) => {
                // A closed pipe on standard error is not an error of ours.
                let _ = writeln!(
                    std::io::stderr(),
                    "error: --trace-time needs a number of seconds, not {trace_time}"
                );
                2
            }
        },
        Command::Test { path, exec, .. } => {
            let (passes, runtime) = exec.flags();
            driver::cmd_test(&path, &passes, &runtime)
        }
        Command::Ir {
            file,
            stage,
            passes,
            time_passes,
            args,
        } => driver::cmd_ir(&file, args, stage.into(), &passes.flags(), time_passes),
        Command::Bench {
            file,
            exec,
            json,
            warmup,
            reps,
            ..
        } => {
            let (passes, runtime) = exec.flags();
            driver::cmd_bench(&file, &passes, &runtime, json, warmup, reps as usize)
        }
        Command::Explain { file, passes, args } => {
            driver::cmd_explain(&file, args, &passes.flags())
        }
        Command::Graph {
            file,
            stage,
            output,
            passes,
            args,
        } => driver::cmd_graph(
            &file,
            args,
            stage.into(),
            &passes.flags(),
            output.as_deref(),
        ),
    };
    ExitCode::from(status.clamp(0, 255) as u8)
}
