//! The coordinator environment: runs `main`, `proc`s and `test` blocks sequentially over the
//! HIR. Op calls and other operation-environment expressions are not computed when they are
//! written: they add nodes to a growing MIR graph (`mir::lower`) and yield a lazy value. A
//! lazy value is dispatched — the part of the graph it needs is cut out, run by the backend
//! and remembered — when it is observed: printed, saved, compared in a condition, asserted,
//! interpolated or forced with `eval`.
//!
//! A dispatch runs with the retry policy of [`RunOptions::retry`] (failed shards are re-run;
//! a failure that outlasts its retries is a [`RunError`] at the observation, before anything
//! of the dispatch is stored or written) and reports to [`RunOptions::hooks`] (per-kernel
//! profile, trace spans of each dispatch and its passes, shard progress).
//!
//! **Invariant:** all I/O goes through the [`Host`] trait; nothing here touches the file
//! system or the process's streams.
//!
//! Layout: this file holds the options, the entry points (`run_main`, `run_tests`,
//! `run_benches`) and the coordinator machine's state; `value.rs` the values and how they
//! enter and leave the graph; `eval.rs` statement and expression evaluation; `builtins.rs`
//! the coordinator's built-ins; `checkpoint.rs` stage checkpoints of `main`'s loops; `dispatch.rs` the cut of the graph, its size checks and
//! memory budget, the caches and the backend; `error.rs` run-time errors as data, worded and
//! mapped to diagnostic codes in one place.

mod builtins;
pub mod cache;
mod checkpoint;
mod dispatch;
mod error;
mod eval;
pub mod host;
mod prims;
mod scans;
mod value;

use std::collections::HashMap;
use std::rc::Rc;

use flow_runtime::fault::RetryPolicy;
use flow_runtime::profile::Hooks;
use flow_runtime::Tensor;

use crate::base::Span;
use crate::hir;
use crate::mir::hash::Hash;
use crate::mir::ir::{Graph, Port};
use crate::mir::lower::Lowerer;
use crate::mir::passes::{Pass, PassConfig, PIPELINE};
use crate::native::{KernelFactory, Native};
pub use cache::{CacheStats, Caches};
use error::RResult;
pub use error::{Assertion, RunError, RunErrorKind, REPORT_REQUEST};
pub use host::{Host, MemoryHost, WithRepHook};
pub use value::{show, Lazy, Value};

fn fail<T>(span: Span, message: impl Into<String>) -> RResult<T> {
    Err(RunError::program(span, message))
}

/// Fails with a broken invariant of the coordinator: a compiler bug.
fn bug<T>(span: Span, finding: impl Into<String>) -> RResult<T> {
    Err(RunError::bug(span, finding))
}

/// Which backend runs dispatched graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter of MIR.
    Interp,
    /// Native kernels from [`RunOptions::kernels`] (compiled by the JIT, or ahead of time
    /// into an executable), run on `threads` threads.
    Jit,
}

/// How dispatched graphs are optimized and run.
#[derive(Clone)]
pub struct RunOptions {
    /// Run the rewrite passes before executing a graph.
    pub optimize: bool,
    /// The passes to run; `None` for the whole pipeline.
    pub passes: Option<Vec<&'static Pass>>,
    pub config: PassConfig,
    pub backend: Backend,
    pub threads: usize,
    /// How failed shards (JIT) or nodes (interpreter) are retried, and which faults are
    /// injected.
    pub retry: RetryPolicy,
    /// Where kernels, spans and progress are reported.
    pub hooks: Hooks,
    /// Reuse the results of a graph already run on the same inputs (in memory, and through
    /// the host's persistent cache). Never during `bench` repetitions.
    pub result_cache: bool,
    /// The most bytes of tensor data a dispatch may hold: the coordinator's computed tensors
    /// plus the live tensors of the graph being run (`--memory-limit`).
    pub memory_limit: Option<u64>,
    /// The machine's memory in bytes (RAM and swap), when the host knows it: without
    /// `memory_limit`, a graph that cannot fit in it is an error before anything is
    /// allocated, not an allocation failure.
    pub machine_memory: Option<u64>,
    /// Where the native backend gets its kernels (`None` with [`Backend::Interp`]).
    pub kernels: Option<KernelFactory>,
    /// Stop with [`RunErrorKind::TimeLimit`] at the first statement after this instant
    /// (`flowc build`'s trace run).
    pub deadline: Option<std::time::Instant>,
    /// A loop dispatches its bound values after an iteration that leaves this many nodes
    /// pending ([`SEGMENT_NODES`]; `usize::MAX`: never).
    pub segment_nodes: usize,
    /// The MPI ranks the native backend spreads each dispatch over (`mpirun`), if any.
    pub spread: Option<Rc<dyn crate::native::Spread>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            optimize: true,
            passes: None,
            config: PassConfig::default(),
            backend: Backend::Interp,
            threads: 1,
            retry: RetryPolicy::default(),
            hooks: Hooks::default(),
            result_cache: true,
            memory_limit: None,
            machine_memory: None,
            kernels: None,
            deadline: None,
            segment_nodes: SEGMENT_NODES,
            spread: None,
        }
    }
}

impl RunOptions {
    /// The passes each dispatched graph goes through: none without `optimize`, else the
    /// chosen ones, else the whole pipeline. (`flowc ir`, `explain` and `graph` show what
    /// these passes make.)
    pub fn pipeline(&self) -> Vec<&'static Pass> {
        match (&self.passes, self.optimize) {
            (_, false) => Vec::new(),
            (Some(p), true) => p.clone(),
            (None, true) => PIPELINE.iter().collect(),
        }
    }

    /// The native backend on `threads` threads, with kernels from `kernels` (the JIT's are
    /// `driver::jit_options`).
    pub fn native(threads: usize, kernels: KernelFactory) -> RunOptions {
        RunOptions {
            backend: Backend::Jit,
            threads,
            kernels: Some(kernels),
            config: PassConfig {
                split_free: false,
                ..PassConfig::default()
            },
            ..RunOptions::default()
        }
    }
}

/// The outcome of one `test` block.
pub struct TestOutcome {
    pub name: String,
    pub error: Option<RunError>,
}

/// Runs the program's `main`.
pub fn run_main(prog: &hir::Program, host: &mut dyn Host, opts: &RunOptions) -> RResult<()> {
    run_main_stats(prog, host, opts).0
}

/// Runs the program's `main` and says what the caches did.
pub fn run_main_stats(
    prog: &hir::Program,
    host: &mut dyn Host,
    opts: &RunOptions,
) -> (RResult<()>, CacheStats) {
    let Some(main) = &prog.main else {
        return (
            fail(Span::default(), "this program has no `main` block to run"),
            CacheStats::default(),
        );
    };
    let mut m = Machine::new(prog, host, opts, Caches::default());
    let res = if m.host.checkpointing() {
        m.run_main_checkpointed(main)
    } else {
        m.run_body(main, Vec::new(), HashMap::new()).map(|_| ())
    };
    (res, m.caches.stats)
}

/// Runs every `test` block, each in a fresh coordinator.
pub fn run_tests(prog: &hir::Program, host: &mut dyn Host, opts: &RunOptions) -> Vec<TestOutcome> {
    run_tests_stats(prog, host, opts).0
}

/// Runs every `test` block, each in a fresh coordinator (sharing the caches), and says what
/// the caches did.
pub fn run_tests_stats(
    prog: &hir::Program,
    host: &mut dyn Host,
    opts: &RunOptions,
) -> (Vec<TestOutcome>, CacheStats) {
    let mut caches = Caches::default();
    let outcomes = prog
        .tests
        .iter()
        .map(|t| {
            let mut m = Machine::new(prog, host, opts, std::mem::take(&mut caches));
            let error = m.run_body(&t.body, Vec::new(), HashMap::new()).err();
            caches = std::mem::take(&mut m.caches);
            TestOutcome {
                name: t.name.clone(),
                error,
            }
        })
        .collect();
    (outcomes, caches.stats)
}

/// The MIR graphs a run dispatched, before optimization (for `flowc ir`).
pub fn dispatched_graphs(
    prog: &hir::Program,
    host: &mut dyn Host,
) -> (Vec<Graph>, Option<RunError>) {
    let opts = RunOptions {
        optimize: false,
        ..RunOptions::default()
    };
    dispatched_graphs_with(prog, host, &opts)
}

/// [`dispatched_graphs`], running the graphs as `opts` says (`flowc ir` runs them as
/// `flowc run` would: on the JIT, optimized). The graphs are recorded as dispatched, before
/// any pass.
pub fn dispatched_graphs_with(
    prog: &hir::Program,
    host: &mut dyn Host,
    opts: &RunOptions,
) -> (Vec<Graph>, Option<RunError>) {
    let mut m = Machine::new(prog, host, opts, Caches::default());
    m.keep_graphs = true;
    let res = match &prog.main {
        Some(main) => m.run_body(main, Vec::new(), HashMap::new()).err(),
        None => None,
    };
    (m.graphs, res)
}

struct Frame<'p> {
    body: &'p hir::Body,
    values: Vec<Option<Value>>,
    shapes: HashMap<String, i64>,
}

struct Machine<'p, 'h> {
    prog: &'p hir::Program,
    host: &'h mut dyn Host,
    lower: Lowerer<'p>,
    /// Ports already computed.
    done: HashMap<Port, Rc<Tensor>>,
    /// Materialized tensors already in the graph, by address.
    entered: HashMap<*const Tensor, (Rc<Tensor>, Port)>,
    /// Lazy ports bound to variables: a dispatch computes those it needs anyway, so that a
    /// later observation does not compute them again.
    bound: Vec<Port>,
    keep_graphs: bool,
    graphs: Vec<Graph>,
    opts: RunOptions,
    /// The native backend, created at the first dispatch that needs it.
    native: Option<Native>,
    /// Set while `flowc bench` runs a bench block.
    bench: Option<BenchState>,
    /// The handles given out for each port (see [`Lazy`]).
    tokens: HashMap<Port, std::rc::Weak<()>>,
    /// Time spent in the rewrite passes.
    pass_time: std::time::Duration,
    /// How many graphs were dispatched.
    dispatches: u64,
    /// The length of the pending graph at the last dispatch (see [`SEGMENT_NODES`]).
    segment_from: usize,
    /// The graph and result caches.
    caches: Caches,
    /// The content hashes of computed tensors, by port (ports are never reused).
    hashes: HashMap<Port, Hash>,
    /// The size each shape variable of a `load`'s annotation was given, by the `load` (its
    /// span) of which file. See [`Machine::check_loaded_vars`].
    loaded_dims: HashMap<String, (usize, Span, String)>,
    /// How many `proc` calls are running (see [`MAX_PROC_DEPTH`]).
    proc_depth: usize,
    /// The worker pool of the runtime's primitives (`filter`, `sort`, …), created at the
    /// first call of one.
    prims: Option<flow_runtime::pool::Pool>,
    /// The latest results of scans and scatters (see `scans.rs`): when the program has
    /// dropped one, the next scan or scatter of the same type and length writes into its
    /// buffer instead of faulting in fresh pages.
    prim_results: Vec<Rc<Tensor>>,
    /// What the program printed so far, recorded when the run writes checkpoints (a resumed
    /// run prints it again: see `checkpoint.rs`).
    printed: Option<String>,
    /// [`Machine::dispatches`] at the last checkpoint.
    checkpointed_dispatches: u64,
}

/// A loop that observes nothing dispatches its bound values in segments: after an
/// iteration that leaves at least this many nodes pending since the last dispatch. The
/// passes are linear in the size of a graph, but the kernels of one huge unobserved graph
/// are each compiled once (their structures differ from step to step, so the kernel cache
/// misses) and every dispatch walks the whole pending graph; segments of the same steps have
/// the same structure, so the graph and kernel caches serve all but the first. Results are
/// the same bits (a materialized value is the value fusion would compute). See
/// `docs/performance.md`.
pub const SEGMENT_NODES: usize = 4096;

/// The deepest `proc` recursion a run may reach: each call runs on the coordinator's stack,
/// so a deeper one is a clean run-time error rather than a stack overflow.
pub const MAX_PROC_DEPTH: usize = 10_000;

/// The stack that the compiler and the coordinator need: the front end, the lowering and the
/// coordinator recurse over the program (nesting up to `syntax::depth::MAX_DEPTH`, call
/// chains, `proc` recursion up to [`MAX_PROC_DEPTH`]). `flowc` and the executables of
/// `flowc build` run on a thread with this stack; the memory is only reserved, and pages
/// are used as the recursion reaches them.
pub const STACK_BYTES: usize = 1 << 30;

struct BenchState {
    warmup: usize,
    reps: usize,
    times: Vec<std::time::Duration>,
}

/// The timings of one `bench` block.
pub struct BenchOutcome {
    pub name: String,
    /// One per measured repetition, in order.
    pub times: Vec<std::time::Duration>,
    pub error: Option<RunError>,
    /// Time in the rewrite passes and in kernel compilation over the whole bench block (the
    /// passes run once per graph structure, kernels compile once: both are cached).
    pub pass_time: std::time::Duration,
    pub compile_time: std::time::Duration,
    pub kernels: usize,
    /// Graphs run by the backend over the whole bench block (never served from a cache).
    pub evaluated: usize,
}

/// Runs every `bench` block: its setup once, its `measure` block `warmup` times untimed and
/// `reps` times timed.
pub fn run_benches(
    prog: &hir::Program,
    host: &mut dyn Host,
    opts: &RunOptions,
    warmup: usize,
    reps: usize,
) -> Vec<BenchOutcome> {
    prog.benches
        .iter()
        .map(|b| {
            // A timing of results read back from a cache would time nothing.
            let opts = RunOptions {
                result_cache: false,
                ..opts.clone()
            };
            let mut m = Machine::new(prog, host, &opts, Caches::default());
            m.bench = Some(BenchState {
                warmup,
                reps,
                times: Vec::new(),
            });
            let error = m.run_body(&b.body, Vec::new(), HashMap::new()).err();
            let times = m.bench.take().map(|s| s.times).unwrap_or_default();
            let (compile_time, kernels) = m
                .native
                .as_ref()
                .map_or((std::time::Duration::ZERO, 0), |j| {
                    (j.compile_time(), j.compiled())
                });
            BenchOutcome {
                name: b.name.clone(),
                times,
                error,
                pass_time: m.pass_time,
                compile_time,
                kernels,
                evaluated: m.caches.stats.evaluated,
            }
        })
        .collect()
}

impl<'p, 'h> Machine<'p, 'h> {
    fn new(
        prog: &'p hir::Program,
        host: &'h mut dyn Host,
        opts: &RunOptions,
        caches: Caches,
    ) -> Machine<'p, 'h> {
        Machine {
            prog,
            host,
            lower: Lowerer::new(prog),
            done: HashMap::new(),
            entered: HashMap::new(),
            bound: Vec::new(),
            keep_graphs: false,
            graphs: Vec::new(),
            opts: opts.clone(),
            native: None,
            bench: None,
            tokens: HashMap::new(),
            pass_time: std::time::Duration::ZERO,
            dispatches: 0,
            segment_from: 0,
            caches,
            hashes: HashMap::new(),
            loaded_dims: HashMap::new(),
            proc_depth: 0,
            prims: None,
            prim_results: Vec::new(),
            printed: None,
            checkpointed_dispatches: 0,
        }
    }

    fn run_body(
        &mut self,
        body: &'p hir::Body,
        args: Vec<(hir::LocalId, Value)>,
        shapes: HashMap<String, i64>,
    ) -> RResult<Value> {
        let mut frame = Frame {
            body,
            values: vec![None; body.locals.len()],
            shapes,
        };
        for (id, v) in args {
            frame.values[id.0 as usize] = Some(v);
        }
        self.eval(&mut frame, &body.expr)
    }

    /// Runs a `measure` block: once outside `flowc bench`; under it, after materializing
    /// everything pending, `warmup + reps` times, each dispatched to completion and timed.
    fn measure(&mut self, frame: &mut Frame<'p>, body: &'p hir::Block) -> RResult<()> {
        let Some(mut st) = self.bench.take() else {
            self.block(frame, body)?;
            return Ok(());
        };
        let span = body.tail.as_ref().map(|t| t.span).unwrap_or_default();
        self.flush(span)?;
        for rep in 0..st.warmup + st.reps {
            self.host.before_bench_rep(rep);
            let start = std::time::Instant::now();
            for s in &body.stmts {
                if let hir::Stmt::Expr(x) = s {
                    // A value computed for nothing but the timing is still computed.
                    let v = self.eval(frame, x)?;
                    self.force(v, x.span)?;
                } else {
                    self.stmt(frame, s)?;
                }
            }
            if let Some(t) = &body.tail {
                let v = self.eval(frame, t)?;
                self.force(v, t.span)?;
            }
            self.flush(span)?;
            if rep >= st.warmup {
                st.times.push(start.elapsed());
            }
        }
        self.bench = Some(st);
        Ok(())
    }

    /// Forgets bound ports that are computed, or that no live handle refers to any more (the
    /// variable was rebound or went out of scope): nothing can observe those, and a node that
    /// still needs one computes it inside its own graph.
    fn prune_bound(&mut self) {
        let (done, tokens) = (&self.done, &self.tokens);
        self.bound.retain(|p| {
            !done.contains_key(p) && tokens.get(p).is_some_and(|w| w.strong_count() > 0)
        });
    }

    /// Dispatches every pending value bound to a variable when the loop iteration just
    /// ended left [`RunOptions::segment_nodes`] nodes pending since the last dispatch.
    pub(super) fn segment(&mut self, span: Span) -> RResult<()> {
        if self.lower.graph.nodes.len() - self.segment_from >= self.opts.segment_nodes {
            self.flush(span)?;
        }
        Ok(())
    }

    /// Dispatches every pending value bound to a variable.
    fn flush(&mut self, span: Span) -> RResult<()> {
        self.prune_bound();
        if let Some(p) = self.bound.first().copied() {
            self.dispatch(p, span)?;
        }
        Ok(())
    }

    /// Evaluates `exprs` in order, then forces their values in order: the values observed
    /// together (the parts of one interpolation, the arguments of one `print`) are pending
    /// at once, so the first dispatch computes them all in one graph and fusion sees them
    /// together (`sum(x) / N` and `sum(x * x) / N` printed side by side are one pass over
    /// `x`). Each value is noted as bound only until it is forced.
    fn force_together(
        &mut self,
        frame: &mut Frame<'p>,
        exprs: &[&'p hir::Expr],
    ) -> RResult<Vec<Value>> {
        let mut values = Vec::with_capacity(exprs.len());
        for x in exprs {
            values.push(self.eval(frame, x)?);
        }
        if values.len() > 1 {
            for v in &values {
                self.note_bound(v);
            }
        }
        values
            .into_iter()
            .zip(exprs)
            .map(|(v, x)| self.force(v, x.span))
            .collect()
    }

    fn note_bound(&mut self, v: &Value) {
        match v {
            Value::Lazy(l) => self.bound.push(l.port),
            Value::Tuple(vs) => vs.iter().for_each(|x| self.note_bound(x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
