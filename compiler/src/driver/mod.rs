//! The I/O edge of the compiler: reads source files, loads stdlib modules, runs the pipeline
//! and renders diagnostics. The only module (with `bin/`) that touches the file system and
//! the process's standard streams.

// Every write to the process's standard streams goes through these macros: a closed pipe
// (`flowc ir f.flow | head`, `flowc check f.flow 2>&1 | head -1`) is not an error, and the
// `print!` family would panic on it.

/// Writes to standard output, ignoring a closed pipe.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// Writes a line to standard output, ignoring a closed pipe.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// Writes to standard error, ignoring a closed pipe.
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($t)*);
    }};
}

/// Writes a line to standard error, ignoring a closed pipe.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

pub mod aot;
mod bench;
pub mod cache;
pub mod checkpoint;
pub mod fs_host;
mod graph_run;
mod inspect;
pub mod launch;
#[cfg(feature = "mpi")]
pub mod mpi_run;
pub mod progress;
pub mod report;
pub mod stdlib;

use crate::base::{Code, Diagnostic, FileId, SourceMap};
use crate::check;
use crate::hir;
use crate::syntax::{self, ast};

pub use crate::exec::STACK_BYTES;
pub use bench::{cmd_bench, summarize};
pub use graph_run::cmd_run_mir;
pub use inspect::{cmd_explain, cmd_graph, cmd_ir, Stage};
pub use report::RenderConfig;

/// A program checked without errors, with the sources it came from.
pub struct Compiled {
    pub sources: SourceMap,
    pub program: hir::Program,
    pub warnings: Vec<Diagnostic>,
}

/// A compilation that failed: the sources and every diagnostic.
pub struct Failed {
    pub sources: SourceMap,
    pub diags: Vec<Diagnostic>,
}

impl Failed {
    pub fn render(&self, cfg: RenderConfig) -> String {
        report::render_all(&self.sources, &self.diags, cfg)
    }
}

/// Parses and checks in-memory sources `(name, text)`: the user's files of one program.
pub fn compile_sources(files: &[(String, String)]) -> Result<Compiled, Failed> {
    let mut sm = SourceMap::new();
    let mut parsed: Vec<(Option<String>, ast::File)> = Vec::new();
    let mut diags = Vec::new();
    let mut wanted: Vec<(String, crate::base::Span)> = Vec::new();
    for (name, text) in files {
        let id = sm.add(name.clone(), text.clone());
        let (file, d) = syntax::parse(id, text);
        diags.extend(d);
        collect_uses(&file, &mut wanted);
        parsed.push((None, file));
    }
    let mut loaded: Vec<String> = Vec::new();
    // In the order written.
    wanted.reverse();
    while let Some((module, span)) = wanted.pop() {
        if loaded.contains(&module) {
            continue;
        }
        let Some(text) = stdlib::source(&module) else {
            diags.push(
                Diagnostic::error(
                    Code::UnknownModule,
                    match module.strip_prefix("::") {
                        Some(path) => format!("there is no module `{path}`"),
                        None => format!("there is no module `std::{module}`"),
                    },
                    span,
                )
                .with_note(format!(
                    "the standard library has: {}",
                    stdlib::MODULES
                        .iter()
                        .map(|(m, _)| format!("std::{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            continue;
        };
        loaded.push(module.clone());
        let id: FileId = sm.add(format!("<std::{module}>"), text);
        let (file, d) = syntax::parse(id, text);
        diags.extend(d);
        collect_uses(&file, &mut wanted);
        parsed.push((Some(module), file));
    }
    if diags.iter().any(|d| d.is_error()) {
        return Err(Failed { sources: sm, diags });
    }
    let inputs: Vec<check::SourceFile<'_>> = parsed
        .iter()
        .map(|(m, f)| check::SourceFile {
            module: m.clone(),
            ast: f,
        })
        .collect();
    let (program, d) = check::check(&inputs);
    diags.extend(d);
    if diags.iter().any(|d| d.is_error()) {
        return Err(Failed { sources: sm, diags });
    }
    Ok(Compiled {
        sources: sm,
        program,
        warnings: diags,
    })
}

/// Parses and checks files from disk. An unreadable file is reported as a failure.
pub fn compile_paths(paths: &[std::path::PathBuf]) -> Result<Compiled, CompileError> {
    let mut files = Vec::new();
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => files.push((p.display().to_string(), text)),
            Err(e) => {
                return Err(CompileError::Io(format!(
                    "cannot read `{}`: {e}",
                    p.display()
                )))
            }
        }
    }
    compile_sources(&files).map_err(CompileError::Diagnostics)
}

pub enum CompileError {
    Io(String),
    Diagnostics(Failed),
}

impl CompileError {
    pub fn render(&self, cfg: RenderConfig) -> String {
        match self {
            CompileError::Io(msg) => format!("error: {msg}\n"),
            CompileError::Diagnostics(f) => f.render(cfg),
        }
    }
}

fn collect_uses(file: &ast::File, out: &mut Vec<(String, crate::base::Span)>) {
    for item in &file.items {
        if let ast::Item::Use(u) = item {
            let names: Vec<&str> = u.path.iter().map(|p| p.name.as_str()).collect();
            // Anything but `std::NAME` is reported as written (`use nothing;`, `std::a::b`).
            match names.as_slice() {
                ["std", m] => out.push((m.to_string(), u.span)),
                _ => out.push((format!("::{}", names.join("::")), u.span)),
            }
        }
    }
}

/// Whether standard error is a terminal (colour on) or not (plain text).
pub fn stderr_config() -> RenderConfig {
    use std::io::IsTerminal;
    RenderConfig {
        color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// `flowc check FILE...`: exit status 0 when every file checks, 1 otherwise.
pub fn cmd_check(paths: &[std::path::PathBuf]) -> i32 {
    let cfg = stderr_config();
    let mut status = 0;
    for p in paths {
        match compile_paths(std::slice::from_ref(p)) {
            Ok(c) => {
                err!("{}", report::render_all(&c.sources, &c.warnings, cfg));
            }
            Err(e) => {
                err!("{}", e.render(cfg));
                status = 1;
            }
        }
    }
    status
}

/// The AST dump of one source text, with any syntax diagnostics rendered after it.
pub fn dump_ast(name: &str, text: &str) -> String {
    let mut sm = SourceMap::new();
    let id = sm.add(name, text);
    let (file, diags) = syntax::parse(id, text);
    let mut out = syntax::dump::dump_file(&file);
    if !diags.is_empty() {
        out.push_str("----- DIAGNOSTICS\n");
        out.push_str(&report::render_all(&sm, &diags, RenderConfig::default()));
    }
    out
}

/// The typed dump of one program, or its rendered diagnostics.
pub fn dump_typed(name: &str, text: &str) -> String {
    match compile_sources(&[(name.to_string(), text.to_string())]) {
        Ok(c) => hir::dump::dump_program(&c.program),
        Err(f) => f.render(RenderConfig::default()),
    }
}

/// A run-time error as a diagnostic.
pub fn run_error_diag(e: &crate::exec::RunError) -> Diagnostic {
    let mut d = Diagnostic::error(e.code(), e.message(), e.span);
    if let crate::exec::RunErrorKind::CompilerBug { graph: Some(g), .. } = &*e.kind {
        d = d.with_note(format!("the invalid graph:\n{g}"));
    }
    for (span, text) in &e.related {
        d = d.with_label(*span, text.clone());
    }
    d
}

/// The run options of the native backend with kernels compiled by the JIT, on `threads`
/// threads.
pub fn jit_options(threads: usize) -> crate::exec::RunOptions {
    crate::exec::RunOptions::native(threads, jit_kernels())
}

/// The JIT as a kernel source.
pub fn jit_kernels() -> crate::native::KernelFactory {
    std::rc::Rc::new(|| {
        crate::codegen::Jit::new().map(|j| Box::new(j) as Box<dyn crate::native::Kernels>)
    })
}

/// The pass selection flags shared by `run`, `test`, `ir`, `explain` and `graph`.
#[derive(Clone, Debug, Default)]
pub struct PassFlags {
    /// Run graphs on the reference interpreter instead of native kernels.
    pub interp: bool,
    /// Threads for native kernels; `None` for every core.
    pub threads: Option<usize>,
    /// Skip the rewrite passes.
    pub no_opt: bool,
    /// Run only these passes, in this order (`--passes fuse-maps,dce`).
    pub passes: Option<Vec<String>>,
    /// Keep results in this directory across runs (`--cache-dir`).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Reuse no results, in memory or on disk (`--no-cache`).
    pub no_cache: bool,
    /// The memory budget in bytes (`--memory-limit`).
    pub memory_limit: Option<u64>,
    /// Print what the caches did and the peak tensor memory on standard error (`--stats`).
    pub stats: bool,
    /// Write stage checkpoints to this directory, and resume from one (`--checkpoint`).
    pub checkpoint: Option<std::path::PathBuf>,
}

impl PassFlags {
    /// The run options these flags ask for, or a message naming an unknown pass.
    pub fn options(&self) -> Result<crate::exec::RunOptions, String> {
        let mut opts = if self.interp {
            crate::exec::RunOptions::default()
        } else {
            jit_options(threads(self.threads))
        };
        opts.optimize = !self.no_opt;
        opts.result_cache = !self.no_cache;
        opts.memory_limit = self.memory_limit;
        if let Some(names) = &self.passes {
            opts.passes = Some(crate::mir::passes::selected(names)?);
        }
        Ok(opts)
    }

    /// The host for a run: the program's arguments and the cache directory, if any.
    fn host(&self, argv: Vec<String>) -> Result<fs_host::FsHost, String> {
        let mut host = fs_host::FsHost::new(argv);
        if let (Some(dir), false) = (&self.cache_dir, self.no_cache) {
            host.cache = Some(cache::DiskCache::open(dir)?);
        }
        Ok(host)
    }
}

/// Reads `--threads N`: a whole number from 1 to [`MAX_THREADS`](flow_runtime::pool::MAX_THREADS),
/// for `run`, `test`, `bench`, `ir`, `explain`, `graph`, `build` and the executables it
/// makes.
pub fn parse_threads(text: &str) -> Result<usize, String> {
    flow_runtime::pool::parse_threads(text)
}

/// The threads of a run: `--threads N` (already validated), else every core (capped).
pub fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(flow_runtime::pool::default_threads)
}

/// The machine's memory in bytes, RAM and swap (`MemTotal + SwapTotal` of `/proc/meminfo`),
/// or `None` where the system does not say.
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        kib.checked_mul(1024)
    };
    let total = field("MemTotal:")?;
    Some(total.saturating_add(field("SwapTotal:").unwrap_or(0)))
}

/// Parses a size such as `512M`, `2G`, `1.5GiB` or `100000` (bytes); the units are powers
/// of 1024 (`K`, `M`, `G`, `T`, optionally followed by `B` or `iB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
            "`{text}` is not a size: use a number with an optional unit K, M, G or T (e.g. 512M)"
        ))
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size: e.g. 512M, 2G or 1000000"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is not a usable size"));
    }
    Ok(bytes as u64)
}

/// The `--stats` line.
fn stats_line(s: &crate::exec::CacheStats) -> String {
    format!(
        "stats: {} graph(s) dispatched: {} optimized, {} from the graph cache; {} run, {} result(s) from memory, {} from the cache directory; peak tensor memory {}",
        s.dispatched,
        s.optimized,
        s.graphs_reused,
        s.evaluated,
        s.memory_hits,
        s.disk_hits,
        crate::mir::memory::format_bytes(s.peak_bytes)
    )
}

/// Selects machine-independent math for the rest of the process
/// (`flow_runtime::portable`) when `portable` (`--portable-math`) is set or the environment
/// variable `FLOW_PORTABLE_MATH` is set to anything but empty or `0`; call it before
/// compiling (constant folding evaluates math functions too).
pub fn select_math(portable: bool) {
    let env = std::env::var_os("FLOW_PORTABLE_MATH").is_some_and(|v| !v.is_empty() && v != "0");
    flow_runtime::portable::set_portable_math(portable || env);
}

/// Applies the test settings of the environment: `FLOW_SHARD_ELEMENTS=N` sets how many
/// elements a shard covers (`mir::schedule::set_shard_elements`; results do not depend on
/// it), so the small graphs of the tests split into many shards. Call it before running
/// anything; every rank of an MPI job reads the same environment.
pub fn apply_test_environment() {
    if let Some(n) = std::env::var("FLOW_SHARD_ELEMENTS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        crate::mir::schedule::set_shard_elements(n);
    }
}

/// The run-time flags of `run`, `test` and `bench`: retries, fault injection, profiling,
/// tracing.
#[derive(Clone, Debug, Default)]
pub struct RuntimeFlags {
    /// `--retries N`: how many times a failed shard is re-run.
    pub retries: Option<u32>,
    /// `--faults RATE,SEED`; when absent, the `FLOW_FAULTS` environment variable.
    pub faults: Option<String>,
    /// `--profile`: print a table per kernel at the end.
    pub profile: bool,
    /// `--trace FILE.json`: write Chrome trace events.
    pub trace: Option<std::path::PathBuf>,
}

/// What a run reports to, kept until the end of the command to print and write it.
pub struct Observed {
    profiler: Option<std::sync::Arc<flow_runtime::profile::Profiler>>,
    profile: bool,
    trace: Option<std::path::PathBuf>,
}

impl RuntimeFlags {
    /// Adds the retry policy, the profiler and the progress bar to `opts`, or says why a
    /// flag is invalid.
    pub fn apply(&self, opts: &mut crate::exec::RunOptions) -> Result<Observed, String> {
        let faults = match &self.faults {
            Some(text) => Some(
                flow_runtime::fault::Faults::parse(text).map_err(|e| format!("--faults: {e}"))?,
            ),
            None => match std::env::var("FLOW_FAULTS") {
                Ok(text) if !text.trim().is_empty() => Some(
                    flow_runtime::fault::Faults::parse(&text)
                        .map_err(|e| format!("FLOW_FAULTS: {e}"))?,
                ),
                _ => None,
            },
        };
        opts.retry = flow_runtime::fault::RetryPolicy {
            retries: self.retries.unwrap_or(flow_runtime::fault::DEFAULT_RETRIES),
            faults,
        };
        let profiler = (self.profile || self.trace.is_some()).then(|| {
            std::sync::Arc::new(flow_runtime::profile::Profiler::new(self.trace.is_some()))
        });
        opts.hooks.profiler = profiler.clone();
        opts.hooks.progress = progress::for_stderr();
        opts.machine_memory = machine_memory();
        Ok(Observed {
            profiler,
            profile: self.profile,
            trace: self.trace.clone(),
        })
    }
}

impl Observed {
    /// Prints the profile to standard error and writes the trace file; 1 when the trace
    /// cannot be written.
    pub fn finish(&self) -> i32 {
        let Some(p) = &self.profiler else {
            return 0;
        };
        if self.profile {
            err!("{}", p.table());
        }
        if let Some(path) = &self.trace {
            if let Err(e) = fs_host::write_atomically(path, p.chrome_trace().as_bytes()) {
                errln!("error: cannot write the trace `{}`: {e}", path.display());
                return 1;
            }
        }
        0
    }
}

fn compile_or_report(path: &std::path::Path, cfg: RenderConfig) -> Option<Compiled> {
    match compile_paths(&[path.to_path_buf()]) {
        Ok(c) => {
            err!("{}", report::render_all(&c.sources, &c.warnings, cfg));
            Some(c)
        }
        Err(e) => {
            err!("{}", e.render(cfg));
            None
        }
    }
}

/// The run options of the pass flags and run-time flags, or the exit status after
/// reporting an invalid flag.
fn run_options(
    flags: &PassFlags,
    rt: &RuntimeFlags,
) -> Result<(crate::exec::RunOptions, Observed), i32> {
    let mut opts = flags.options().map_err(|msg| {
        errln!("error: {msg}");
        2
    })?;
    let observed = rt.apply(&mut opts).map_err(|msg| {
        errln!("error: {msg}");
        2
    })?;
    Ok((opts, observed))
}

/// The error for a program without `main`, when asked to run or build it.
fn missing_main(path: &std::path::Path) -> Diagnostic {
    Diagnostic::error(
        Code::MissingMain,
        format!("`{}` has no `main` block to run", path.display()),
        crate::base::Span::default(),
    )
    .with_label_text("a program to run has a `main { … }` block")
    .with_note("`flowc test` runs `test` blocks and `flowc bench` runs `bench` blocks")
}

/// `flowc run FILE [-- ARGS]`: runs `main`. Exit status 1 on any error.
pub fn cmd_run(
    path: &std::path::Path,
    args: Vec<String>,
    flags: &PassFlags,
    rt: &RuntimeFlags,
) -> i32 {
    on_ranks(flags, rt, |spread| {
        run_spread(path, args, flags, rt, spread)
    })
}

/// Runs a command that runs graphs (`run`, `run-mir`, `test`, `bench`): under `mpirun` (a
/// flowc with the `mpi` feature), as one rank of the job — rank 0 runs `command` with the
/// ranks to spread its dispatches over, the others evaluate them — else on this process
/// alone (`command(None)`).
fn on_ranks(
    flags: &PassFlags,
    rt: &RuntimeFlags,
    command: impl FnOnce(Option<std::rc::Rc<dyn crate::native::Spread>>) -> i32,
) -> i32 {
    #[cfg(feature = "mpi")]
    if mpi_run::under_mpirun() {
        return mpi_run::as_job(flags, rt, |spread| command(Some(spread)));
    }
    #[cfg(not(feature = "mpi"))]
    let _ = (flags, rt);
    command(None)
}

/// `flowc run`, on one process or as rank 0 of an MPI job (`spread`).
fn run_spread(
    path: &std::path::Path,
    args: Vec<String>,
    flags: &PassFlags,
    rt: &RuntimeFlags,
    spread: Option<std::rc::Rc<dyn crate::native::Spread>>,
) -> i32 {
    let cfg = stderr_config();
    let (mut opts, observed) = match run_options(flags, rt) {
        Ok(o) => o,
        Err(status) => return status,
    };
    opts.spread = spread;
    let Some(c) = compile_or_report(path, cfg) else {
        return 1;
    };
    if c.program.main.is_none() {
        err!("{}", report::render(&c.sources, &missing_main(path), cfg));
        return 1;
    }
    run_compiled(&c, opts, &observed, args, flags, cfg)
}

/// Runs the `main` of a checked program with arguments `args` and reports its errors: the
/// common end of `flowc run` and of executables made by `flowc build`.
fn run_compiled(
    c: &Compiled,
    opts: crate::exec::RunOptions,
    observed: &Observed,
    args: Vec<String>,
    flags: &PassFlags,
    cfg: RenderConfig,
) -> i32 {
    let checkpoint = match &flags.checkpoint {
        Some(dir) => match checkpoint::DirCheckpoint::open(dir, &c.sources, &args) {
            Ok(cp) => Some(cp),
            Err(msg) => {
                errln!("error: {msg}");
                return 1;
            }
        },
        None => None,
    };
    let mut host = match flags.host(args) {
        Ok(h) => h,
        Err(msg) => {
            errln!("error: {msg}");
            return 1;
        }
    };
    host.checkpoint = checkpoint;
    let (res, stats) = crate::exec::run_main_stats(&c.program, &mut host, &opts);
    host.report_warnings();
    if flags.stats {
        errln!("{}", stats_line(&stats));
    }
    let status = match res {
        Ok(()) => 0,
        Err(e) => {
            err!("{}", report::render(&c.sources, &run_error_diag(&e), cfg));
            1
        }
    };
    status.max(observed.finish())
}

/// `flowc test FILE|DIR`: runs every `test` block of every `.flow` file, one line per test,
/// and a closing `N passed, M failed`. Exit status 1 on any failure.
pub fn cmd_test(path: &std::path::Path, flags: &PassFlags, rt: &RuntimeFlags) -> i32 {
    on_ranks(flags, rt, |spread| run_test_blocks(path, flags, rt, spread))
}

/// `flowc test`, on one process or as rank 0 of an MPI job (`spread`).
fn run_test_blocks(
    path: &std::path::Path,
    flags: &PassFlags,
    rt: &RuntimeFlags,
    spread: Option<std::rc::Rc<dyn crate::native::Spread>>,
) -> i32 {
    let cfg = stderr_config();
    let (mut opts, observed) = match run_options(flags, rt) {
        Ok(o) => o,
        Err(status) => return status,
    };
    opts.spread = spread;
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut v: Vec<_> = match std::fs::read_dir(path) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "flow"))
                .collect(),
            Err(e) => {
                errln!("error: cannot read `{}`: {e}", path.display());
                return 1;
            }
        };
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let (mut passed, mut failed) = (0, 0);
    let mut host = match flags.host(Vec::new()) {
        Ok(h) => h,
        Err(msg) => {
            errln!("error: {msg}");
            return 1;
        }
    };
    let mut total = crate::exec::CacheStats::default();
    for f in &files {
        let Some(c) = compile_or_report(f, cfg) else {
            failed += 1;
            continue;
        };
        let (outcomes, stats) = crate::exec::run_tests_stats(&c.program, &mut host, &opts);
        host.report_warnings();
        total.dispatched += stats.dispatched;
        total.optimized += stats.optimized;
        total.graphs_reused += stats.graphs_reused;
        total.evaluated += stats.evaluated;
        total.memory_hits += stats.memory_hits;
        total.disk_hits += stats.disk_hits;
        total.peak_bytes = total.peak_bytes.max(stats.peak_bytes);
        for t in outcomes {
            match t.error {
                None => {
                    passed += 1;
                    outln!("ok    {}: {}", f.display(), t.name);
                }
                Some(e) => {
                    failed += 1;
                    outln!("FAIL  {}: {}", f.display(), t.name);
                    err!("{}", report::render(&c.sources, &run_error_diag(&e), cfg));
                }
            }
        }
    }
    if flags.stats {
        errln!("{}", stats_line(&total));
    }
    outln!("{passed} passed, {failed} failed");
    i32::from(failed > 0).max(observed.finish())
}
