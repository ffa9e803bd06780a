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

mod builtins;
pub mod cache;
mod dispatch;
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
use crate::mir::ir::{Graph, Port};
use crate::mir::lower::{eval_dim, Lowerer, TVal};
use crate::mir::passes::{Pass, PassConfig, PIPELINE};
use crate::native::{KernelFactory, Native};
pub use cache::{CacheStats, Caches};
pub use host::{Host, MemoryHost, WithRepHook};

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
