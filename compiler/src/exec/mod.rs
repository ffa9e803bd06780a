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

pub mod cache;
pub mod host;

use std::collections::HashMap;
use std::rc::Rc;

use flow_runtime::fault::RetryPolicy;
use flow_runtime::profile::Hooks;
use flow_runtime::{format_scalar, format_tensor, DType, Scalar, Tensor};

use crate::base::Span;
use crate::hir::ops::{binop, unop};
use crate::hir::{self, Builtin, ExprKind as H, Ty};
use crate::mir::hash::Hash;
use crate::mir::ir::{Graph, Node, NodeKind, Port, TensorTy};
use crate::mir::lower::{eval_dim, Lowerer, TVal};
use crate::mir::passes::{optimize, Pass, PassConfig, PIPELINE};
use crate::mir::Idx;
use crate::native::{KernelFactory, Native};
pub use cache::{CacheStats, Caches};
pub use host::{Host, MemoryHost};

/// A run-time error with the source location it belongs to.
#[derive(Clone, Debug)]
pub struct RunError {
    pub message: String,
    pub span: Span,
    pub kind: RunErrorKind,
    /// Other places the error involves, each with what it says about them.
    pub related: Vec<(Span, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunErrorKind {
    /// A failed `assert` or `assert_close`.
    Assertion,
    /// The run reached [`RunOptions::deadline`].
    TimeLimit,
    Other,
}

type RResult<T> = Result<T, RunError>;

fn fail<T>(span: Span, message: impl Into<String>) -> RResult<T> {
    Err(RunError {
        message: message.into(),
        span,
        kind: RunErrorKind::Other,
        related: Vec::new(),
    })
}

/// A coordinator value.
#[derive(Clone, Debug)]
pub enum Value {
    Scalar(Scalar),
    Tensor(Rc<Tensor>),
    /// Not computed yet: a port of the pending graph.
    Lazy(Lazy),
    Tuple(Vec<Value>),
    Str(String),
    List(Vec<Value>),
    Unit,
}

/// A handle on a value of the pending graph. While a handle to a port is alive, its computed
/// tensor is kept; once none is, the tensor may be dropped (and recomputed, by idempotence, if
/// a pending node still needs it).
#[derive(Clone, Debug)]
pub struct Lazy {
    pub port: Port,
    /// Held, never read: its strong count is the liveness of the port.
    #[allow(dead_code)]
    token: Rc<()>,
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
    let res = m.run_body(main, Vec::new(), HashMap::new()).map(|_| ());
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
    /// The graph and result caches.
    caches: Caches,
    /// The content hashes of computed tensors, by port (ports are never reused).
    hashes: HashMap<Port, Hash>,
    /// The size each shape variable of a `load`'s annotation was given, by the `load` (its
    /// span) of which file. See [`Machine::check_loaded_vars`].
    loaded_dims: HashMap<String, (usize, Span, String)>,
    /// How many `proc` calls are running (see [`MAX_PROC_DEPTH`]).
    proc_depth: usize,
}

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
            caches,
            hashes: HashMap::new(),
            loaded_dims: HashMap::new(),
            proc_depth: 0,
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

    // ---- values and the graph ----

    /// The graph value of a coordinator value.
    fn tval(&mut self, v: &Value, span: Span) -> RResult<TVal> {
        Ok(match v {
            Value::Scalar(s) => TVal::Port(self.lower.scalar(*s)),
            Value::Lazy(l) => TVal::Port(l.port),
            Value::Tensor(t) => {
                let key = Rc::as_ptr(t);
                if let Some((_, p)) = self.entered.get(&key) {
                    TVal::Port(*p)
                } else {
                    let p = self.lower.constant((**t).clone());
                    self.done.insert(p, t.clone());
                    self.entered.insert(key, (t.clone(), p));
                    TVal::Port(p)
                }
            }
            Value::Tuple(vs) => TVal::Tuple(
                vs.iter()
                    .map(|x| self.tval(x, span))
                    .collect::<RResult<_>>()?,
            ),
            other => {
                return fail(
                    span,
                    format!("internal error: {other:?} cannot enter an operation"),
                )
            }
        })
    }

    /// A handle on port `p`, sharing the token of a live handle when there is one.
    fn handle(&mut self, p: Port) -> Value {
        let token = match self.tokens.get(&p).and_then(std::rc::Weak::upgrade) {
            Some(t) => t,
            None => {
                let t = Rc::new(());
                self.tokens.insert(p, Rc::downgrade(&t));
                t
            }
        };
        Value::Lazy(Lazy { port: p, token })
    }

    fn value_of_tval(&mut self, t: TVal) -> Value {
        match t {
            TVal::Port(p) => self.handle(p),
            TVal::Tuple(vs) => {
                Value::Tuple(vs.into_iter().map(|v| self.value_of_tval(v)).collect())
            }
        }
    }

    /// Computes a value: dispatches every lazy part of it.
    fn force(&mut self, v: Value, span: Span) -> RResult<Value> {
        Ok(match v {
            Value::Lazy(l) => {
                let t = self.dispatch(l.port, span)?;
                if t.shape.is_empty() {
                    Value::Scalar(t.get(0))
                } else {
                    Value::Tensor(t)
                }
            }
            Value::Tuple(vs) => Value::Tuple(
                vs.into_iter()
                    .map(|x| self.force(x, span))
                    .collect::<RResult<_>>()?,
            ),
            other => other,
        })
    }

    /// Cuts out the part of the pending graph that `target` needs, runs it and remembers the
    /// result.
    fn dispatch(&mut self, target: Port, span: Span) -> RResult<Rc<Tensor>> {
        if let Some(t) = self.done.get(&target) {
            return Ok(t.clone());
        }
        // An observation flushes every pending value bound to a variable, not only the one
        // observed: they share inputs (so fusion can read them once) and are needed later.
        self.prune_bound();
        let mut wanted = vec![target];
        wanted.extend(self.bound.iter().copied().filter(|p| *p != target));
        wanted.dedup();
        let src = &self.lower.graph;
        // Which nodes are needed, walking back from the wanted ports and stopping at computed
        // ones.
        let mut needed = vec![false; src.nodes.len()];
        let mut stack: Vec<_> = wanted.iter().map(|p| p.node).collect();
        let mut inputs_needed: Vec<Port> = Vec::new();
        while let Some(n) = stack.pop() {
            if needed[n.index()] {
                continue;
            }
            needed[n.index()] = true;
            for p in src.nodes[n].inputs() {
                if self.done.contains_key(&p) {
                    if !inputs_needed.contains(&p) {
                        inputs_needed.push(p);
                    }
                } else {
                    stack.push(p.node);
                }
            }
        }
        // The inputs in the order the needed nodes first read them (not the order the walk
        // found them, which depends on which values happen to be bound): the same
        // computation then gets the same graph, and the graph cache recognizes it.
        let mut seen: std::collections::HashSet<Port> = std::collections::HashSet::new();
        let found = inputs_needed.len();
        inputs_needed.clear();
        for (i, node) in src.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            for p in node.inputs() {
                if self.done.contains_key(&p) && seen.insert(p) {
                    inputs_needed.push(p);
                }
            }
        }
        debug_assert_eq!(found, inputs_needed.len());
        let mut g = Graph::new();
        g.monoids = src.monoids.clone();
        let mut map: HashMap<Port, Port> = HashMap::new();
        let mut inputs: Vec<Rc<Tensor>> = Vec::new();
        for p in &inputs_needed {
            let t = self.done[p].clone();
            let ty = crate::mir::ir::TensorTy::of(&t);
            let node = g.add(Node {
                kind: NodeKind::Input {
                    index: inputs.len() as u32,
                },
                outputs: vec![ty],
                label: String::new(),
            });
            inputs.push(t.clone());
            map.insert(*p, Port { node, port: 0 });
        }
        for (i, node) in src.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            let old = crate::mir::ir::NodeId::new(i);
            let mut node = node.clone();
            node.map_inputs(&mut |p| *map.get(&p).unwrap_or(&p));
            let new = g.add(node);
            for port in 0..g.nodes[new].outputs.len() as u32 {
                map.insert(Port { node: old, port }, Port { node: new, port });
            }
        }
        g.outputs = wanted.iter().map(|p| map[p]).collect();
        if self.keep_graphs {
            self.graphs.push(g.clone());
        }
        let err = |message: String| RunError {
            message,
            span,
            kind: RunErrorKind::Other,
            related: Vec::new(),
        };
        // Absurd shapes are rejected before anything is allocated.
        crate::mir::memory::check_sizes(&g).map_err(err)?;
        self.dispatches += 1;
        let dispatch_start = std::time::Instant::now();
        self.caches.stats.dispatched += 1;
        let resident = self.resident_bytes();
        let mut opt = self.optimized(&g, false).map_err(err)?;
        let budget = match (self.opts.memory_limit, self.opts.machine_memory) {
            (Some(limit), _) => Some((limit, Budget::Flag)),
            (None, Some(machine)) => Some((machine, Budget::Machine)),
            (None, None) => None,
        };
        if let Some((limit, what)) = budget {
            let limit = limit as u128;
            let mut plan = crate::mir::memory::plan(&opt.graph);
            if resident + plan.peak > limit && self.opts.optimize {
                // Recompute rather than materialize: fuse every producer into its consumers.
                opt = self.optimized(&g, true).map_err(err)?;
                plan = crate::mir::memory::plan(&opt.graph);
            }
            if resident + plan.peak > limit {
                return Err(err(over_budget(&opt.graph, &plan, resident, limit, what)));
            }
        }
        let g = &opt.graph;
        // The result cache: the optimized graph's hash and the inputs' contents.
        let use_results = self.opts.result_cache;
        let key = if use_results {
            let hashes: Vec<Hash> = inputs_needed
                .iter()
                .map(|p| self.content_hash(*p))
                .collect();
            Some(cache::result_key(&opt.hash, &hashes))
        } else {
            None
        };
        let mut out: Option<Vec<Rc<Tensor>>> = None;
        if let Some(key) = &key {
            if let Some(hit) = self.caches.result(key) {
                self.caches.stats.memory_hits += 1;
                out = Some(hit);
            } else if let Some(payload) = self.host.cache_load(key) {
                let want: Vec<TensorTy> = g
                    .outputs
                    .iter()
                    .map(|p| g.nodes[p.node].outputs[p.port as usize].clone())
                    .collect();
                if let Some(ts) = cache::decode(&payload, &want) {
                    self.caches.stats.disk_hits += 1;
                    let ts: Vec<Rc<Tensor>> = ts.into_iter().map(Rc::new).collect();
                    if self.opts.memory_limit.is_none() {
                        self.caches.store_result(*key, &ts);
                    }
                    out = Some(ts);
                }
            }
        }
        let out = match out {
            Some(o) => o,
            None => {
                let res = self.evaluate(g, &inputs, span);
                if let Some(p) = &self.opts.hooks.profiler {
                    p.dispatch();
                    p.span(
                        format!("dispatch {}", self.dispatches),
                        "dispatch",
                        dispatch_start,
                        std::time::Instant::now(),
                        0,
                        vec![
                            ("nodes", g.nodes.len().to_string()),
                            ("outputs", g.outputs.len().to_string()),
                            ("ok", res.is_ok().to_string()),
                        ],
                    );
                }
                // A failed dispatch stores nothing: the error reaches the observation before
                // it prints, saves or compares anything.
                let (o, peak) = res?;
                self.caches.stats.evaluated += 1;
                self.caches.stats.peak_bytes = self.caches.stats.peak_bytes.max(resident + peak);
                if let Some(key) = &key {
                    // Under a memory budget no results are kept in memory beyond the values.
                    if self.opts.memory_limit.is_none() {
                        self.caches.store_result(*key, &o);
                    }
                    self.host.cache_store(key, &cache::encode(&o));
                }
                o
            }
        };
        for (p, t) in wanted.iter().zip(out) {
            self.done.insert(*p, t);
        }
        let held = self.resident_bytes();
        self.caches.stats.peak_bytes = self.caches.stats.peak_bytes.max(held);
        // Collected before the result is cloned (a clone would count as a use of the tensor);
        // the target itself is kept.
        self.collect(target);
        Ok(self.done[&target].clone())
    }

    /// Drops computed tensors no value can reach any more: no live handle to their port, no
    /// value sharing the tensor, not a tensor that entered the graph from a live value. Their
    /// memory goes back to the native backend's buffer pool.
    fn collect(&mut self, target: Port) {
        self.tokens.retain(|_, w| w.strong_count() > 0);
        // The result cache's references are not uses, and neither are other computed ports
        // that share the tensor (a result served from the cache twice).
        let held = self.caches.held();
        let mut in_done: HashMap<*const Tensor, usize> = HashMap::new();
        for t in self.done.values() {
            *in_done.entry(Rc::as_ptr(t)).or_default() += 1;
        }
        let others = |t: &Rc<Tensor>| {
            let ptr = Rc::as_ptr(t);
            let extra_ports = in_done.get(&ptr).map_or(0, |n| n.saturating_sub(1));
            Rc::strong_count(t)
                .saturating_sub(usize::from(held.contains(&ptr)))
                .saturating_sub(extra_ports)
        };
        self.entered.retain(|_, (t, _)| others(t) > 2);
        let entered: std::collections::HashSet<Port> =
            self.entered.values().map(|(_, p)| *p).collect();
        let tokens = &self.tokens;
        let mut freed = Vec::new();
        self.done.retain(|p, t| {
            let keep =
                *p == target || tokens.contains_key(p) || entered.contains(p) || others(t) > 1;
            if !keep {
                freed.push(t.clone());
            }
            keep
        });
        let done = &self.done;
        self.hashes.retain(|p, _| done.contains_key(p));
        if let Some(native) = &mut self.native {
            for t in freed {
                if let Ok(t) = Rc::try_unwrap(t) {
                    native.recycle(t);
                }
            }
        }
    }

    /// The bytes of the distinct computed tensors the coordinator holds.
    fn resident_bytes(&self) -> u128 {
        let mut seen = std::collections::HashSet::new();
        self.done
            .values()
            .filter(|t| seen.insert(Rc::as_ptr(t)))
            .map(|t| (t.len() * t.dtype().size_bytes()) as u128)
            .sum()
    }

    /// The content hash of a computed port, computed once.
    fn content_hash(&mut self, p: Port) -> Hash {
        if let Some(h) = self.hashes.get(&p) {
            return *h;
        }
        let h = crate::mir::hash::tensor_hash(&self.done[&p]);
        self.hashes.insert(p, h);
        h
    }

    /// The optimized form of a dispatched graph, from the graph cache when a graph of the
    /// same structure was optimized with the same passes and configuration before.
    fn optimized(&mut self, g: &Graph, recompute: bool) -> Result<Rc<cache::Optimized>, String> {
        let passes = self.opts.pipeline();
        let config = PassConfig {
            recompute,
            ..self.opts.config.clone()
        };
        let names: Vec<&str> = passes.iter().map(|p| p.name).collect();
        // Every field of the configuration (its `Debug` form), so a new option cannot be
        // forgotten in the key.
        let salt = format!("passes {names:?} config {config:?}");
        let key = crate::mir::hash::graph_hash(g, salt.as_bytes());
        if let Some(o) = self.caches.graphs.get(&key) {
            self.caches.stats.graphs_reused += 1;
            return Ok(o.clone());
        }
        let mut opt = g.clone();
        if !passes.is_empty() {
            let start = std::time::Instant::now();
            optimize(&mut opt, &passes, &config).map_err(|e| e.to_string())?;
            self.pass_time += start.elapsed();
            if let Some(p) = &self.opts.hooks.profiler {
                p.span(
                    "passes",
                    "passes",
                    start,
                    std::time::Instant::now(),
                    0,
                    Vec::new(),
                );
            }
            self.caches.stats.optimized += 1;
        }
        let hash = crate::mir::hash::graph_hash(&opt, b"optimized");
        let o = Rc::new(cache::Optimized { graph: opt, hash });
        self.caches.graphs.insert(key, o.clone());
        Ok(o)
    }

    /// Runs an optimized graph on the backend; returns its outputs and the most bytes of
    /// computed tensors the backend held at once.
    fn evaluate(
        &mut self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
        span: Span,
    ) -> RResult<(Vec<Rc<Tensor>>, u128)> {
        let err = |message: String| RunError {
            message,
            span,
            kind: RunErrorKind::Other,
            related: Vec::new(),
        };
        match self.opts.backend {
            Backend::Interp => {
                let owned: Vec<Tensor> = inputs.iter().map(|t| (**t).clone()).collect();
                let cfg = crate::interp::EvalConfig {
                    retry: self.opts.retry,
                    hooks: self.opts.hooks.clone(),
                    launch: self.dispatches << 32,
                };
                crate::interp::eval_measured(g, &owned, &cfg)
                    .map(|(v, peak)| (v.into_iter().map(Rc::new).collect(), peak))
                    .map_err(|e| err(e.to_string()))
            }
            Backend::Jit => {
                if self.native.is_none() {
                    let Some(factory) = &self.opts.kernels else {
                        return Err(err(
                            "internal error: the native backend has no kernel source".into(),
                        ));
                    };
                    let kernels = factory().map_err(|e| err(e.to_string()))?;
                    let mut native =
                        Native::new(kernels, self.opts.threads).map_err(|e| err(e.to_string()))?;
                    native.set_retry(self.opts.retry);
                    native.set_hooks(self.opts.hooks.clone());
                    if self.opts.memory_limit.is_some() {
                        // Pooled buffers are memory too.
                        native.set_pool_limit(0);
                    }
                    self.native = Some(native);
                }
                let native = self.native.as_mut().expect("created above");
                let out = native.eval(g, inputs).map_err(|e| err(e.to_string()))?;
                Ok((out, native.last_peak()))
            }
        }
    }

    // ---- evaluation ----

    fn local(&self, frame: &Frame<'_>, id: hir::LocalId, span: Span) -> RResult<Value> {
        match &frame.values[id.0 as usize] {
            Some(v) => Ok(v.clone()),
            None => fail(span, "internal error: local read before it was bound"),
        }
    }

    /// Lowers an operation-environment expression into the graph.
    fn lazy(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<Value> {
        let mut used = Vec::new();
        collect_locals(e, &mut used);
        let mut locals = HashMap::new();
        for id in used {
            if let Some(v) = frame.values[id.0 as usize].clone() {
                if matches!(
                    v,
                    Value::Scalar(_) | Value::Tensor(_) | Value::Lazy(_) | Value::Tuple(_)
                ) {
                    locals.insert(id, self.tval(&v, e.span)?);
                }
            }
        }
        // An `eval(…)` inside is computed first, as its own observation: its value is then a
        // constant of the graph, which may size a tensor.
        let mut evals = Vec::new();
        let mut kids = Vec::new();
        hir::dump::children(e, &mut kids);
        for k in kids {
            collect_evals(k, &mut evals);
        }
        let mut forced = HashMap::new();
        for x in evals {
            let v = self.eval(frame, x)?;
            forced.insert(x as *const hir::Expr, self.tval(&v, x.span)?);
        }
        let t = self
            .lower
            .coordinator_expr(frame.body, e, locals, frame.shapes.clone(), forced)
            .map_err(|x| RunError {
                message: x.message,
                span: x.span,
                kind: RunErrorKind::Other,
                related: Vec::new(),
            })?;
        Ok(self.value_of_tval(t))
    }

    fn eval(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<Value> {
        let span = e.span;
        match &e.kind {
            H::Lit(s) => Ok(Value::Scalar(*s)),
            H::Str(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        hir::StrPart::Text(t) => s.push_str(t),
                        hir::StrPart::Expr(x) => {
                            let v = self.eval(frame, x)?;
                            let v = self.force(v, x.span)?;
                            s.push_str(&show(&v));
                        }
                    }
                }
                Ok(Value::Str(s))
            }
            H::Local(id) => self.local(frame, *id, span),
            H::DimValue(d) => match eval_dim(d, &frame.shapes) {
                Some(n) => Ok(Value::Scalar(Scalar::I64(n))),
                None => fail(span, format!("internal error: shape `{d}` unbound")),
            },
            H::Unary(op, a) => {
                let v = self.eval(frame, a)?;
                if let Value::Scalar(s) = v {
                    return crate::base::ops::unary(unop(*op), s)
                        .map(Value::Scalar)
                        .or_else(|x| fail(span, op_error(x)));
                }
                self.lazy(frame, e)
            }
            H::Binary(op, a, b) => {
                let x = self.eval(frame, a)?;
                // `&&` and `||` on scalars short-circuit.
                if let (hir::BinOp::And | hir::BinOp::Or, Value::Scalar(Scalar::Bool(v))) = (op, &x)
                {
                    if (*op == hir::BinOp::And && !v) || (*op == hir::BinOp::Or && *v) {
                        return Ok(x);
                    }
                }
                let x = self.observe_condition(op, x, a.span)?;
                let y = self.eval(frame, b)?;
                let y = self.observe_condition(op, y, b.span)?;
                match (&x, &y) {
                    (Value::Scalar(p), Value::Scalar(q)) => {
                        crate::base::ops::binary(binop(*op), *p, *q)
                            .map(Value::Scalar)
                            .or_else(|err| {
                                fail(span, format!("`{}`: {}", op.as_str(), op_error(err)))
                            })
                    }
                    _ => {
                        let (tx, ty) = (self.tval(&x, a.span)?, self.tval(&y, b.span)?);
                        let (TVal::Port(px), TVal::Port(py)) = (tx, ty) else {
                            return fail(span, "internal error: tuple operand");
                        };
                        let op = binop(*op);
                        let p = self
                            .lower
                            .elementwise(&[px, py], span, |mut xs| {
                                let r = xs.pop().expect("two");
                                crate::mir::ir::ScalarExpr::binary(op, xs.pop().expect("two"), r)
                            })
                            .map_err(|x| RunError {
                                message: x.message,
                                span,
                                kind: RunErrorKind::Other,
                                related: Vec::new(),
                            })?;
                        Ok(self.handle(p))
                    }
                }
            }
            H::Cast(a, d) => {
                let v = self.eval(frame, a)?;
                if let Value::Scalar(s) = v {
                    return Ok(Value::Scalar(s.cast(*d)));
                }
                self.lazy(frame, e)
            }
            H::Call(f, args) => {
                let func = self.prog.func(*f);
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(frame, a)?);
                }
                match func.kind {
                    hir::FuncKind::Proc => self.call_proc(*f, vals, span),
                    _ => {
                        let tvals = vals
                            .iter()
                            .map(|v| self.tval(v, span))
                            .collect::<RResult<Vec<_>>>()?;
                        let t = self.lower.call(*f, tvals, span).map_err(|x| RunError {
                            message: x.message,
                            span: x.span,
                            kind: RunErrorKind::Other,
                            related: Vec::new(),
                        })?;
                        Ok(self.value_of_tval(t))
                    }
                }
            }
            H::Builtin(b, args) => self.builtin(frame, *b, args, e),
            H::Tuple(xs) => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(self.eval(frame, x)?);
                }
                Ok(Value::Tuple(vs))
            }
            H::Field(x, i) => match self.eval(frame, x)? {
                Value::Tuple(mut vs) if *i < vs.len() => Ok(vs.swap_remove(*i)),
                _ => fail(span, "internal error: field of a non-tuple"),
            },
            H::If { cond, then, els } => {
                let c = self.condition(frame, cond)?;
                if c {
                    self.eval(frame, then)
                } else {
                    match els {
                        Some(x) => self.eval(frame, x),
                        None => Ok(Value::Unit),
                    }
                }
            }
            H::Block(b) => self.block(frame, b),
            H::MapFn(..)
            | H::Read { .. }
            | H::Comprehension { .. }
            | H::Reduce { .. }
            | H::TensorLit(_)
            | H::IndexValue(_) => self.lazy(frame, e),
        }
    }

    /// Operands of `&&`/`||` are conditions: a lazy boolean is observed.
    fn observe_condition(&mut self, op: &hir::BinOp, v: Value, span: Span) -> RResult<Value> {
        match (op, &v) {
            (hir::BinOp::And | hir::BinOp::Or, Value::Lazy(l))
                if self.lower.ty(l.port).shape.is_empty() =>
            {
                self.force(v, span)
            }
            _ => Ok(v),
        }
    }

    fn condition(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<bool> {
        let v = self.eval(frame, e)?;
        match self.force(v, e.span)? {
            Value::Scalar(Scalar::Bool(b)) => Ok(b),
            other => fail(e.span, format!("internal error: condition is {other:?}")),
        }
    }

    fn stmt(&mut self, frame: &mut Frame<'p>, s: &'p hir::Stmt) -> RResult<()> {
        if self
            .opts
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(RunError {
                message: "the run reached its time limit".into(),
                span: Span::default(),
                kind: RunErrorKind::TimeLimit,
                related: Vec::new(),
            });
        }
        match s {
            hir::Stmt::Let { local, value } | hir::Stmt::Assign { local, value, .. } => {
                let v = self.eval(frame, value)?;
                self.note_bound(&v);
                self.bind_local_shapes(frame, *local, &v);
                frame.values[local.0 as usize] = Some(v);
            }
            hir::Stmt::Expr(x) => {
                self.eval(frame, x)?;
            }
            hir::Stmt::Measure(body) => self.measure(frame, body)?,
            hir::Stmt::For {
                local,
                lo,
                hi,
                body,
            } => {
                let lo = self.int(frame, lo)?;
                let hi = self.int(frame, hi)?;
                for i in lo..hi {
                    frame.values[local.0 as usize] = Some(Value::Scalar(Scalar::I64(i)));
                    self.block(frame, body)?;
                }
            }
            hir::Stmt::While { cond, body } => {
                while self.condition(frame, cond)? {
                    self.block(frame, body)?;
                }
            }
        }
        Ok(())
    }

    fn block(&mut self, frame: &mut Frame<'p>, b: &'p hir::Block) -> RResult<Value> {
        for s in &b.stmts {
            self.stmt(frame, s)?;
        }
        match &b.tail {
            Some(t) => self.eval(frame, t),
            None => Ok(Value::Unit),
        }
    }

    /// Checks the shape variables of a loaded tensor's annotation against its shape: one
    /// variable has one size, within the annotation (`f32[N, N]` is square) and across the
    /// annotations of a body (`let a: f32[N] = load(…); let b: f32[N] = load(…);` have one
    /// length). The same `load` may give a variable a new size when it runs again (a loop
    /// that loads a file of another size at each step); another `load` may not.
    fn check_loaded_vars(&mut self, t: &Tensor, ty: &Ty, path: &str, span: Span) -> RResult<()> {
        let Ty::Tensor(_, dims) = ty else {
            return Ok(());
        };
        let shape = flow_runtime::format_shape(&t.shape);
        let mut here: Vec<(&str, usize)> = Vec::new();
        for (d, &n) in dims.iter().zip(&t.shape) {
            let Some(var) = d.as_var() else {
                continue;
            };
            if let Some(&(_, m)) = here.iter().find(|(v, _)| *v == var) {
                if m != n {
                    return fail(
                        span,
                        format!("`{path}` has shape {shape}, but the program expects `{ty}`: `{d}` cannot be both {m} and {n}"),
                    );
                }
                continue;
            }
            here.push((var, n));
            if let Some((m, at, from)) = self.loaded_dims.get(var) {
                if *at != span && *m != n {
                    return Err(RunError {
                        message: format!("`{path}` has shape {shape}, but the program expects `{ty}` where `{d}` is {m}, the size it has in `{from}`"),
                        span,
                        kind: RunErrorKind::Other,
                        related: vec![(*at, format!("`{d}` is {m} in `{from}`, loaded here"))],
                    });
                }
            }
        }
        for (var, n) in here {
            self.loaded_dims
                .insert(var.to_string(), (n, span, path.to_string()));
        }
        Ok(())
    }

    /// Binds the shape variables of a local's type to its value's shape, so that the rest of
    /// the body knows them: after `let x: f32[R, 3] = load(…);`, `let c[r] = x[r, 0];` ranges
    /// over the loaded `R` rows. The latest binding wins (a loop may load a new size each time).
    fn bind_local_shapes(&self, frame: &mut Frame<'p>, local: hir::LocalId, v: &Value) {
        let ty = &frame.body.local(local).ty;
        if let (Ty::Tensor(_, dims), Some(shape)) = (ty, self.shape_of(v)) {
            for (d, n) in dims.iter().zip(shape) {
                if let Some(var) = d.as_var() {
                    frame.shapes.insert(var.to_string(), n as i64);
                }
            }
        }
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

    /// Dispatches every pending value bound to a variable.
    fn flush(&mut self, span: Span) -> RResult<()> {
        self.prune_bound();
        if let Some(p) = self.bound.first().copied() {
            self.dispatch(p, span)?;
        }
        Ok(())
    }

    fn note_bound(&mut self, v: &Value) {
        match v {
            Value::Lazy(l) => self.bound.push(l.port),
            Value::Tuple(vs) => vs.iter().for_each(|x| self.note_bound(x)),
            _ => {}
        }
    }

    fn int(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<i64> {
        let v = self.eval(frame, e)?;
        match self.force(v, e.span)? {
            Value::Scalar(s) => Ok(s.cast(DType::I64).as_f64() as i64).map(|_| match s {
                Scalar::I64(v) => v,
                other => other.as_f64() as i64,
            }),
            _ => fail(e.span, "internal error: expected an integer"),
        }
    }

    fn call_proc(&mut self, f: hir::FuncId, vals: Vec<Value>, span: Span) -> RResult<Value> {
        let func = self.prog.func(f);
        let mut shapes = HashMap::new();
        for (p, v) in func.params.iter().zip(&vals) {
            let ty = &func.body.local(*p).ty;
            let shape = self.shape_of(v);
            if let (Ty::Tensor(_, dims), Some(shape)) = (ty, shape) {
                for (d, n) in dims.iter().zip(shape) {
                    if let Some(var) = d.as_var() {
                        match shapes.get(var) {
                            Some(prev) if *prev != n as i64 => {
                                return fail(
                                    span,
                                    format!(
                                        "shape mismatch in call to `{}`: `{var}` is {prev} and {n}",
                                        func.name
                                    ),
                                );
                            }
                            _ => {
                                shapes.insert(var.to_string(), n as i64);
                            }
                        }
                    }
                }
            }
        }
        if self.proc_depth >= MAX_PROC_DEPTH {
            return fail(
                span,
                format!(
                    "too deep: proc `{}` is called {MAX_PROC_DEPTH} calls deep; iterate with a loop instead of recursing",
                    func.name
                ),
            );
        }
        let args = func.params.iter().copied().zip(vals).collect();
        self.proc_depth += 1;
        let out = self.run_body(&func.body, args, shapes);
        self.proc_depth -= 1;
        out
    }

    fn shape_of(&self, v: &Value) -> Option<Vec<usize>> {
        match v {
            Value::Tensor(t) => Some(t.shape.clone()),
            Value::Lazy(l) => Some(self.lower.ty(l.port).shape.clone()),
            Value::Scalar(_) => Some(Vec::new()),
            _ => None,
        }
    }

    fn builtin(
        &mut self,
        frame: &mut Frame<'p>,
        b: Builtin,
        args: &'p [hir::Expr],
        e: &'p hir::Expr,
    ) -> RResult<Value> {
        let span = e.span;
        match b {
            Builtin::Print => {
                let mut parts = Vec::new();
                for a in args {
                    let v = self.eval(frame, a)?;
                    let v = self.force(v, a.span)?;
                    parts.push(show(&v));
                }
                let mut line = parts.join(" ");
                line.push('\n');
                self.host.stdout(&line);
                Ok(Value::Unit)
            }
            Builtin::Assert => {
                let c = self.condition(frame, &args[0])?;
                if c {
                    return Ok(Value::Unit);
                }
                let msg = match args.get(1) {
                    Some(m) => match self.eval(frame, m)? {
                        Value::Str(s) => s,
                        other => show(&other),
                    },
                    None => "the condition is false".to_string(),
                };
                Err(RunError {
                    message: format!("assertion failed: {msg}"),
                    span,
                    kind: RunErrorKind::Assertion,
                    related: Vec::new(),
                })
            }
            Builtin::AssertClose => {
                let a = self.eval(frame, &args[0])?;
                let a = self.force(a, args[0].span)?;
                let bv = self.eval(frame, &args[1])?;
                let bv = self.force(bv, args[1].span)?;
                let tol = match args.get(2) {
                    Some(t) => match self.eval(frame, t).and_then(|v| self.force(v, t.span))? {
                        Value::Scalar(s) => s.as_f64(),
                        _ => 1e-5,
                    },
                    None => 1e-5,
                };
                assert_close(&a, &bv, tol, span)?;
                Ok(Value::Unit)
            }
            Builtin::Eval => {
                let v = self.eval(frame, &args[0])?;
                self.force(v, span)
            }
            Builtin::Args => Ok(Value::List(
                self.host.args().into_iter().map(Value::Str).collect(),
            )),
            Builtin::Len if args.len() == 2 => {
                // `list[i]`, which the checker writes as a two-argument `len`.
                let l = self.eval(frame, &args[0])?;
                let i = self.int(frame, &args[1])?;
                match l {
                    Value::List(vs) => match usize::try_from(i).ok().and_then(|i| vs.get(i)) {
                        Some(v) => Ok(v.clone()),
                        None => fail(
                            span,
                            format!(
                                "index {i} is out of range for a list of {} element(s)",
                                vs.len()
                            ),
                        ),
                    },
                    _ => fail(span, "internal error: indexing a non-list"),
                }
            }
            Builtin::Len => match self.eval(frame, &args[0])? {
                Value::List(vs) => Ok(Value::Scalar(Scalar::I64(vs.len() as i64))),
                _ => fail(span, "internal error: len of a non-list"),
            },
            Builtin::ParseI64 | Builtin::ParseF64 => {
                let Value::Str(s) = self.eval(frame, &args[0])? else {
                    return fail(span, "internal error: parse of a non-string");
                };
                let t = s.trim();
                if b == Builtin::ParseI64 {
                    t.parse::<i64>()
                        .map(|v| Value::Scalar(Scalar::I64(v)))
                        .or_else(|_| fail(span, format!("`{s}` is not an integer")))
                } else {
                    t.parse::<f64>()
                        .map(|v| Value::Scalar(Scalar::F64(v)))
                        .or_else(|_| fail(span, format!("`{s}` is not a number")))
                }
            }
            Builtin::Save => {
                let Value::Str(path) = self.eval(frame, &args[0])? else {
                    return fail(span, "internal error: path");
                };
                let v = self.eval(frame, &args[1])?;
                let t = match self.force(v, args[1].span)? {
                    Value::Tensor(t) => (*t).clone(),
                    Value::Scalar(s) => Tensor::from_scalar(s),
                    _ => return fail(span, "`save` writes a tensor"),
                };
                let bytes = flow_runtime::write_npy(&t);
                self.host
                    .write_file(&path, &bytes)
                    .or_else(|x| fail(span, format!("cannot write `{path}`: {x}")))?;
                Ok(Value::Unit)
            }
            Builtin::Load => {
                let Value::Str(path) = self.eval(frame, &args[0])? else {
                    return fail(span, "internal error: path");
                };
                let bytes = self
                    .host
                    .read_file(&path)
                    .or_else(|x| fail(span, format!("cannot read `{path}`: {x}")))?;
                let t = flow_runtime::read_npy(&bytes)
                    .or_else(|x| fail(span, format!("`{path}`: {x}")))?;
                check_loaded(&t, &e.ty, &path, span)?;
                self.check_loaded_vars(&t, &e.ty, &path, span)?;
                if t.shape.is_empty() {
                    return Ok(Value::Scalar(t.get(0)));
                }
                Ok(Value::Tensor(Rc::new(t)))
            }
            _ => self.lazy(frame, e),
        }
    }
}

/// Where a dispatch's memory budget comes from.
#[derive(Clone, Copy)]
enum Budget {
    /// `--memory-limit`.
    Flag,
    /// The machine's RAM and swap.
    Machine,
}

/// The error when a graph does not fit in the memory budget even with recomputation: the
/// tensor being computed at the worst moment, its size, and what is live beside it.
fn over_budget(
    g: &Graph,
    plan: &crate::mir::memory::MemoryPlan,
    resident: u128,
    limit: u128,
    budget: Budget,
) -> String {
    use crate::mir::memory::{bytes_of, describe, format_bytes};
    let largest = match plan.peak_largest {
        Some(id) => {
            let node = &g.nodes[id];
            let size: u128 = node.outputs.iter().map(bytes_of).sum();
            let tys: Vec<String> = node.outputs.iter().map(|t| t.to_string()).collect();
            format!(
                " (the largest: tensor {}, {}, {})",
                describe(g, id),
                tys.join(", "),
                format_bytes(size)
            )
        }
        None => String::new(),
    };
    let (error, limit) = match budget {
        Budget::Flag => (
            "out of memory budget",
            format!("the limit of {} (--memory-limit)", format_bytes(limit)),
        ),
        Budget::Machine => (
            "out of memory",
            format!(
                "this machine's memory, {} (RAM and swap)",
                format_bytes(limit)
            ),
        ),
    };
    format!(
        "{error}: the graph needs {} of tensors at once{largest}, beside the {} of tensors already computed, more than {limit}, even recomputing instead of materializing",
        format_bytes(plan.peak),
        format_bytes(resident),
    )
}

/// Checks a loaded tensor against the type the program expects of it.
fn check_loaded(t: &Tensor, ty: &Ty, path: &str, span: Span) -> RResult<()> {
    let want_d = ty.dtype();
    if want_d != Some(t.dtype()) {
        return fail(
            span,
            format!(
                "`{path}` holds {} elements, but the program expects `{ty}`",
                t.dtype()
            ),
        );
    }
    let dims = ty.dims();
    if dims.len() != t.shape.len() {
        return fail(
            span,
            format!(
                "`{path}` has shape {}, but the program expects `{ty}`",
                flow_runtime::format_shape(&t.shape)
            ),
        );
    }
    for (d, n) in dims.iter().zip(&t.shape) {
        if let Some(k) = d.as_known() {
            if k != *n as i64 {
                return fail(
                    span,
                    format!(
                        "`{path}` has shape {}, but the program expects `{ty}`",
                        flow_runtime::format_shape(&t.shape)
                    ),
                );
            }
        }
    }
    Ok(())
}

fn assert_close(a: &Value, b: &Value, tol: f64, span: Span) -> RResult<()> {
    let as_tensor = |v: &Value| -> Option<Tensor> {
        match v {
            Value::Tensor(t) => Some((**t).clone()),
            Value::Scalar(s) => Some(Tensor::from_scalar(*s)),
            _ => None,
        }
    };
    let (Some(x), Some(y)) = (as_tensor(a), as_tensor(b)) else {
        return fail(span, "`assert_close` compares numbers or tensors");
    };
    if x.shape != y.shape {
        return Err(RunError {
            message: format!(
                "assert_close: shapes differ: {} and {}",
                flow_runtime::format_shape(&x.shape),
                flow_runtime::format_shape(&y.shape)
            ),
            span,
            kind: RunErrorKind::Assertion,
            related: Vec::new(),
        });
    }
    let mut worst: Option<(usize, f64, f64, f64)> = None;
    for i in 0..x.len() {
        let (p, q) = (x.get(i).as_f64(), y.get(i).as_f64());
        let ok = p == q || (p.is_nan() && q.is_nan()) || (p - q).abs() <= tol * (1.0 + q.abs());
        if !ok {
            let err = (p - q).abs();
            if worst.is_none_or(|w| err > w.3 || err.is_nan()) {
                worst = Some((i, p, q, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, p, q, _)) => {
            let at = if x.shape.is_empty() {
                String::new()
            } else {
                format!(" at index {}", unravel(i, &x.shape))
            };
            Err(RunError {
                message: format!(
                    "assert_close failed{at}: {} vs {} (|a - b| = {}, allowed {} * (1 + |b|))",
                    format_scalar(&x.get(i)),
                    format_scalar(&y.get(i)),
                    (p - q).abs(),
                    tol
                ),
                span,
                kind: RunErrorKind::Assertion,
                related: Vec::new(),
            })
        }
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> String {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        if shape[k] > 0 {
            idx[k] = i % shape[k];
            i /= shape[k];
        }
    }
    format!(
        "[{}]",
        idx.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// How `print` and string interpolation write a (forced) value.
pub fn show(v: &Value) -> String {
    match v {
        Value::Scalar(s) => format_scalar(s),
        Value::Tensor(t) => format_tensor(t),
        Value::Lazy(l) => format!("<lazy {}>", l.port),
        Value::Tuple(vs) => format!("({})", vs.iter().map(show).collect::<Vec<_>>().join(", ")),
        Value::Str(s) => s.clone(),
        Value::List(vs) => format!(
            "[{}]",
            vs.iter()
                .map(|v| match v {
                    Value::Str(s) => format!("{s:?}"),
                    other => show(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Unit => "()".into(),
    }
}

fn collect_locals(e: &hir::Expr, out: &mut Vec<hir::LocalId>) {
    if let H::Local(id) = &e.kind {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    let mut kids = Vec::new();
    hir::dump::children(e, &mut kids);
    for k in kids {
        collect_locals(k, out);
    }
}

/// The outermost `eval(…)`s of an expression.
fn collect_evals<'p>(e: &'p hir::Expr, out: &mut Vec<&'p hir::Expr>) {
    if let H::Builtin(Builtin::Eval, _) = &e.kind {
        out.push(e);
        return;
    }
    let mut kids = Vec::new();
    hir::dump::children(e, &mut kids);
    for k in kids {
        collect_evals(k, out);
    }
}

fn op_error(e: crate::base::ops::OpError) -> String {
    match e {
        crate::base::ops::OpError::DivByZero => "integer division by zero".into(),
        crate::base::ops::OpError::DivOverflow => "integer division overflows (MIN / -1)".into(),
        crate::base::ops::OpError::Operands => "internal error: operand types".into(),
    }
}

#[cfg(test)]
mod tests;
