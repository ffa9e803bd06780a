//! The worker pool that runs shard tasks, the [`Executor`] trait it implements, and the
//! fixed blocking and combine-tree helpers that keep results independent of the thread count.
//!
//! A shard task is a `Fn(usize, u32) -> Result<(), TaskError>` called with the task's number
//! and the attempt number (0 for the first); the caller's plan maps the task number to a
//! kernel and an index box and makes every task write memory that no other task of the same
//! dispatch touches. Two ways to run tasks:
//! - [`Pool::run`] runs tasks `0..n`, all independent (the shards of one kernel);
//! - [`Executor::run_graph`] runs a [`TaskGraph`], whose tasks may wait for earlier ones (the
//!   kernels of a plan, or the levels of a reduction's combine tree).
//!
//! **Invariants:**
//! - the outcome of a dispatch does not depend on the thread count or on scheduling: the
//!   error returned is the one of the lowest-numbered failing task (see note [Deterministic
//!   errors]), and what a task computes depends only on its number;
//! - a panic inside a task is caught and becomes [`TaskErrorKind::Panic`] naming the task; it
//!   never unwinds through the pool (the process's panic hook still runs first and, by
//!   default, prints the message);
//! - a task that fails with a retryable error (a panic, an injected fault, a failure in
//!   words; not a kernel's error code) is run again, up to the pool's retry limit, before
//!   its successors are released (see note [Retries]); the error after the last attempt
//!   says how many attempts were made;
//! - [`blocks`] and [`combine_tree`] depend on the extent, the block size and the number of
//!   partials only, never on the thread count, so a reduction blocked with them gives
//!   bitwise-identical results on 1 thread, N threads or (later) N processes.
//!
//! The pool is built on a dedicated `rayon::ThreadPool` rather than rayon's global pool, so
//! `--threads N` is honoured exactly and nothing else in the process competes for its workers.
//! rayon is the de facto standard work-stealing pool of the Rust ecosystem (maintained by the
//! Rust project's members, used by rustc itself): it gives cheap dispatch (a few microseconds
//! for a thousand trivial tasks, see the `pool.run` line of `cargo run --release -p
//! flow-bench`), load balancing by work stealing and nested parallelism, which a hand-rolled
//! pool of std threads would have to re-implement.

use std::fmt;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::abi;
use crate::fault::{FaultKind, InjectedPanic, DEFAULT_RETRIES};

/// A shard task: called with the task's number and the attempt number (0 for the first), it
/// returns `Ok(())` or why it failed.
pub type TaskFn<'a> = dyn Fn(usize, u32) -> Result<(), TaskError> + Sync + 'a;

/// Why a shard task failed, and which task it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    /// The task's number (its index in the dispatch or the [`TaskGraph`]).
    pub task: usize,
    /// What went wrong (at the last attempt).
    pub kind: TaskErrorKind,
    /// How many times the task was run (1 when it was not retried).
    pub attempts: u32,
}

/// What went wrong in a shard task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskErrorKind {
    /// A kernel returned a non-zero status code (one of the `abi::ERR_*` codes).
    Code(i32),
    /// The task panicked; the panic's message when it was a string.
    Panic(String),
    /// Any other failure, described in words.
    Message(String),
    /// A fault injected for testing (see [`crate::fault::Faults`]).
    Injected(FaultKind),
}

impl TaskErrorKind {
    /// Whether a task that failed this way is run again: every failure but a kernel's error
    /// code, which is a deterministic property of the program and its data (every attempt
    /// would fail the same way).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, TaskErrorKind::Code(_))
    }
}

impl fmt::Display for TaskErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskErrorKind::Code(code) => {
                write!(f, "{} (error code {code})", abi::error_message(*code))
            }
            TaskErrorKind::Panic(msg) => write!(f, "a panic: {msg}"),
            TaskErrorKind::Message(msg) => f.write_str(msg),
            TaskErrorKind::Injected(kind) => write!(f, "{kind}"),
        }
    }
}

impl TaskError {
    /// Task `task` failed with the kernel status `code`.
    pub fn code(task: usize, code: i32) -> TaskError {
        TaskError {
            task,
            kind: TaskErrorKind::Code(code),
            attempts: 1,
        }
    }

    /// Task `task` failed for the reason `message`.
    pub fn message(task: usize, message: impl Into<String>) -> TaskError {
        TaskError {
            task,
            kind: TaskErrorKind::Message(message.into()),
            attempts: 1,
        }
    }

    /// Task `task` failed with an injected fault of kind `kind`.
    pub fn injected(task: usize, kind: FaultKind) -> TaskError {
        TaskError {
            task,
            kind: TaskErrorKind::Injected(kind),
            attempts: 1,
        }
    }

    /// Task `task` failed with the kernel status `status` unless it is [`abi::OK`].
    pub fn check_status(task: usize, status: i32) -> Result<(), TaskError> {
        if status == abi::OK {
            Ok(())
        } else {
            Err(TaskError::code(task, status))
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.attempts) {
            (TaskErrorKind::Panic(msg), 1) => write!(f, "shard task {} panicked: {msg}", self.task),
            (kind, 1) => write!(f, "shard task {} failed: {kind}", self.task),
            (kind, n) => write!(
                f,
                "shard task {} failed {n} times (retries exhausted); the last failure: {kind}",
                self.task
            ),
        }
    }
}

impl std::error::Error for TaskError {}

/// The pool's threads could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolError {
    /// What the operating system or rayon said.
    pub message: String,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start the worker threads: {}", self.message)
    }
}

impl std::error::Error for PoolError {}

/// Something that runs shard tasks: the thread pool today, MPI ranks later (see "Past one
/// machine" in the architecture document).
///
/// Tasks are named by number; the caller's plan names each number's shard by its kernel and
/// index box, never by a thread or a pointer, so the same plan can be placed on threads or on
/// ranks. Every implementation must keep the determinism rules of this module: the result of
/// a dispatch depends only on the tasks, never on the placement.
pub trait Executor: Sync {
    /// How many tasks may run at the same time.
    fn threads(&self) -> usize;

    /// How many times a failed task is re-run before its error is returned.
    fn retries(&self) -> u32;

    /// Runs the independent tasks `0..n_tasks` and returns the error of the lowest-numbered
    /// failing task, if any. A task that fails with a retryable error is run again, up to
    /// [`Executor::retries`] times. Tasks after a failing one may be skipped.
    fn run(&self, n_tasks: usize, f: &TaskFn<'_>) -> Result<(), TaskError>;

    /// Runs every task of `graph` after all its dependencies have succeeded, and returns the
    /// error of the lowest-numbered failing task, if any. Join tasks are not passed to `f`.
    /// A task whose dependency failed does not run; other tasks after a failing one may be
    /// skipped.
    fn run_graph(&self, graph: &TaskGraph, f: &TaskFn<'_>) -> Result<(), TaskError>;
}

/// A fixed-size pool of worker threads that runs shard tasks.
///
/// With one thread the tasks run on the caller's thread, one after another, in order.
pub struct Pool {
    threads: usize,
    /// The workers; `None` when `threads == 1`.
    workers: Option<rayon::ThreadPool>,
    /// How many times a failed task is re-run.
    retries: u32,
    /// How many re-runs there were, over the pool's life.
    retried: AtomicU64,
}

impl Pool {
    /// A pool of exactly `threads` workers (0 is taken as 1); more than [`MAX_THREADS`] is
    /// an error.
    pub fn new(threads: usize) -> Result<Pool, PoolError> {
        let threads = threads.max(1);
        if threads > MAX_THREADS {
            return Err(PoolError {
                message: format!("{threads} threads is too many: at most {MAX_THREADS}"),
            });
        }
        if threads == 1 {
            return Ok(Pool {
                threads,
                workers: None,
                retries: DEFAULT_RETRIES,
                retried: AtomicU64::new(0),
            });
        }
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("flow-worker-{i}"))
            .build()
            .map_err(|e| PoolError {
                message: e.to_string(),
            })?;
        Ok(Pool {
            threads,
            workers: Some(workers),
            retries: DEFAULT_RETRIES,
            retried: AtomicU64::new(0),
        })
    }

    /// Sets how many times a failed task is re-run (the default is
    /// [`DEFAULT_RETRIES`](crate::fault::DEFAULT_RETRIES)).
    pub fn set_retries(&mut self, retries: u32) {
        self.retries = retries;
    }

    /// How many times a failed task is re-run.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// How many re-runs of failed tasks there were, over the pool's life.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// A pool with one worker per core ([`default_threads`]).
    pub fn with_all_cores() -> Result<Pool, PoolError> {
        Pool::new(default_threads())
    }

    /// The number of workers.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs the independent tasks `0..n_tasks` in parallel and returns the error of the
    /// lowest-numbered failing task, if any (see note [Deterministic errors]).
    ///
    /// Each task must write memory that no other task writes. A task numbered after a task
    /// already known to have failed is skipped.
    pub fn run(&self, n_tasks: usize, f: &TaskFn<'_>) -> Result<(), TaskError> {
        let workers = match &self.workers {
            Some(w) if n_tasks > 1 => w,
            _ => {
                return (0..n_tasks).try_for_each(|i| self.run_retrying(i, f));
            }
        };
        let first = FirstError::new();
        workers.install(|| {
            (0..n_tasks).into_par_iter().for_each(|i| {
                if !first.skips(i) {
                    if let Err(e) = self.run_retrying(i, f) {
                        first.record(i, e);
                    }
                }
            })
        });
        first.into_result()
    }

    /// Runs `graph` (see [`Executor::run_graph`]).
    pub fn run_graph(&self, graph: &TaskGraph, f: &TaskFn<'_>) -> Result<(), TaskError> {
        let Some(workers) = &self.workers else {
            return self.run_graph_in_order(graph, f);
        };
        if graph.is_empty() {
            return Ok(());
        }
        let state = GraphRun {
            pool: self,
            graph,
            f,
            pending: graph
                .deps
                .iter()
                .map(|d| AtomicUsize::new(d.len()))
                .collect(),
            first: FirstError::new(),
        };
        let shared = &state;
        workers.install(|| {
            rayon::scope(|s| {
                for (i, deps) in graph.deps.iter().enumerate() {
                    if deps.is_empty() {
                        s.spawn(move |s| shared.exec(s, i));
                    }
                }
            })
        });
        state.first.into_result()
    }

    /// Runs task `i` until it succeeds, fails with an error that is not retryable, or has
    /// been run `1 + retries` times (see note [Retries]).
    fn run_retrying(&self, i: usize, f: &TaskFn<'_>) -> Result<(), TaskError> {
        let mut attempt = 0;
        loop {
            match run_caught(i, attempt, f) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind.is_retryable() && attempt < self.retries => {
                    self.retried.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                }
                Err(mut e) => {
                    e.task = i;
                    e.attempts = attempt + 1;
                    return Err(e);
                }
            }
        }
    }

    /// Runs a graph on the caller's thread in task order (a topological order), stopping at
    /// the first failure, which is then the lowest-numbered one.
    fn run_graph_in_order(&self, graph: &TaskGraph, f: &TaskFn<'_>) -> Result<(), TaskError> {
        for i in 0..graph.len() {
            if !graph.join[i] {
                self.run_retrying(i, f)?;
            }
        }
        Ok(())
    }
}

impl Executor for Pool {
    fn threads(&self) -> usize {
        self.threads
    }

    fn retries(&self) -> u32 {
        self.retries
    }

    fn run(&self, n_tasks: usize, f: &TaskFn<'_>) -> Result<(), TaskError> {
        Pool::run(self, n_tasks, f)
    }

    fn run_graph(&self, graph: &TaskGraph, f: &TaskFn<'_>) -> Result<(), TaskError> {
        Pool::run_graph(self, graph, f)
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The most worker threads a pool may have. Thousands of threads make rayon's start-up and
/// its idle workers' wake-ups take seconds to minutes, and tens of thousands exhaust the
/// memory for their stacks and guard pages; no machine we run on has this many cores.
pub const MAX_THREADS: usize = 1024;

/// The number of cores this process may use (1 when the system cannot tell), at most
/// [`MAX_THREADS`]: the default of `--threads`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
}

/// Reads a thread count (`--threads N`): a whole number from 1 to [`MAX_THREADS`], or a
/// message that says what is accepted.
pub fn parse_threads(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        Ok(0) => Err(format!(
            "the number of threads must be at least 1 (and at most {MAX_THREADS})"
        )),
        Ok(_) => Err(format!(
            "`{text}` threads is too many: at most {MAX_THREADS}"
        )),
        Err(_) => Err(format!(
            "`{text}` is not a number of threads: a whole number from 1 to {MAX_THREADS}"
        )),
    }
}

/// Tasks and the earlier tasks each must wait for.
///
/// Tasks are numbered in the order they are added, and a task may depend only on tasks added
/// before it, so the numbering is a topological order and the graph has no cycle. A *join*
/// task does no work (the executor never calls the task function for it); it exists so that
/// `m` tasks can wait for `n` others through `n + m` edges instead of `n * m`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskGraph {
    deps: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
    join: Vec<bool>,
}

impl TaskGraph {
    /// An empty graph.
    pub fn new() -> TaskGraph {
        TaskGraph::default()
    }

    /// Adds a task that waits for `deps` and returns its number.
    ///
    /// # Panics
    /// If a dependency is not an earlier task.
    pub fn add(&mut self, deps: &[usize]) -> usize {
        self.push(deps, false)
    }

    /// Adds `n` tasks that each wait for `deps` (the shards of one kernel) and returns their
    /// numbers.
    ///
    /// # Panics
    /// If a dependency is not an earlier task.
    pub fn add_many(&mut self, n: usize, deps: &[usize]) -> Range<usize> {
        let start = self.len();
        for _ in 0..n {
            self.push(deps, false);
        }
        start..self.len()
    }

    /// Adds a join task, which does no work and completes once all of `deps` have, and returns
    /// its number.
    ///
    /// # Panics
    /// If a dependency is not an earlier task.
    pub fn join(&mut self, deps: &[usize]) -> usize {
        self.push(deps, true)
    }

    /// The number of tasks, joins included.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// The tasks that task `task` waits for.
    pub fn deps(&self, task: usize) -> &[usize] {
        &self.deps[task]
    }

    /// Whether task `task` is a join task.
    pub fn is_join(&self, task: usize) -> bool {
        self.join[task]
    }

    fn push(&mut self, deps: &[usize], join: bool) -> usize {
        let id = self.len();
        let mut deps = deps.to_vec();
        deps.sort_unstable();
        deps.dedup();
        for &d in &deps {
            assert!(
                d < id,
                "task {id} may depend only on earlier tasks, not on task {d}"
            );
            self.succs[d].push(id);
        }
        self.deps.push(deps);
        self.succs.push(Vec::new());
        self.join.push(join);
        id
    }
}

/// The consecutive blocks `[0, block)`, `[block, 2 block)`, … that cover `0..extent`, the last
/// one possibly shorter. They depend only on `extent` and `block`, never on the thread count;
/// an empty extent has no block.
///
/// # Panics
/// If `block` is 0.
pub fn blocks(
    extent: usize,
    block: usize,
) -> impl ExactSizeIterator<Item = Range<usize>> + DoubleEndedIterator + Clone {
    let n = n_blocks(extent, block);
    (0..n).map(move |b| b * block..((b + 1) * block).min(extent))
}

/// How many blocks [`blocks`]`(extent, block)` yields.
///
/// # Panics
/// If `block` is 0.
pub fn n_blocks(extent: usize, block: usize) -> usize {
    assert!(block > 0, "the block size must be positive");
    extent.div_ceil(block)
}

/// Combines `partials` pairwise in a fixed tree that depends only on their number: each level
/// combines elements `2k` and `2k + 1` (an odd last element passes up unchanged) until one is
/// left. `None` when there is no partial.
///
/// With [`blocks`], this makes a blocked reduction independent of the thread count: the block
/// partials can be computed in any order on any thread and are always combined the same way.
/// The tree also keeps rounding error at O(log n) levels rather than O(n).
pub fn combine_tree<T>(mut partials: Vec<T>, mut combine: impl FnMut(T, T) -> T) -> Option<T> {
    while partials.len() > 1 {
        let mut next = Vec::with_capacity(partials.len().div_ceil(2));
        let mut it = partials.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(combine(a, b)),
                None => next.push(a),
            }
        }
        partials = next;
    }
    partials.pop()
}

// ---- internals ----

/// Runs attempt `attempt` of task `i`, turning a panic into a [`TaskError`].
fn run_caught(i: usize, attempt: u32, f: &TaskFn<'_>) -> Result<(), TaskError> {
    match catch_unwind(AssertUnwindSafe(|| f(i, attempt))) {
        Ok(res) => res,
        Err(payload) if payload.is::<InjectedPanic>() => {
            Err(TaskError::injected(i, FaultKind::Panic))
        }
        Err(payload) => Err(TaskError {
            task: i,
            kind: TaskErrorKind::Panic(panic_message(payload.as_ref())),
            attempts: 1,
        }),
    }
}

/// The message of a panic payload (`panic!` with a literal or a format string).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// The failure of the lowest-numbered failing task seen so far.
struct FirstError {
    /// The number of that task, or `usize::MAX`.
    lowest: AtomicUsize,
    error: Mutex<Option<(usize, TaskError)>>,
}

impl FirstError {
    fn new() -> FirstError {
        FirstError {
            lowest: AtomicUsize::new(usize::MAX),
            error: Mutex::new(None),
        }
    }

    /// Whether task `i` may be skipped: a lower-numbered task has failed already.
    fn skips(&self, i: usize) -> bool {
        i > self.lowest.load(Ordering::Relaxed)
    }

    fn record(&self, i: usize, e: TaskError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|(j, _)| i < *j) {
            *slot = Some((i, e));
            self.lowest.store(i, Ordering::Relaxed);
        }
    }

    fn into_result(self) -> Result<(), TaskError> {
        let slot = self.error.into_inner().unwrap_or_else(|p| p.into_inner());
        match slot {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// The shared state of one parallel [`Pool::run_graph`].
struct GraphRun<'g, 'f> {
    pool: &'g Pool,
    graph: &'g TaskGraph,
    f: &'g TaskFn<'f>,
    /// For each task, how many of its dependencies have not completed yet.
    pending: Vec<AtomicUsize>,
    first: FirstError,
}

impl<'g, 'f> GraphRun<'g, 'f> {
    /// Runs task `i` (all its dependencies have succeeded) and spawns the successors it
    /// releases. A failed or skipped task releases nothing, so its dependants never run.
    fn exec<'s>(&'s self, s: &rayon::Scope<'s>, i: usize) {
        if self.first.skips(i) {
            return;
        }
        if !self.graph.join[i] {
            if let Err(e) = self.pool.run_retrying(i, self.f) {
                self.first.record(i, e);
                return;
            }
        }
        for &j in &self.graph.succs[i] {
            if self.pending[j].fetch_sub(1, Ordering::AcqRel) == 1 {
                s.spawn(move |s| self.exec(s, j));
            }
        }
    }
}

// Note [Deterministic errors]: when several tasks fail, the dispatch reports the failure of
// the lowest-numbered one, whatever the thread count or the schedule. Tasks may be skipped
// once some task `f` is known to have failed, but only tasks numbered after `f`; every task
// numbered before the lowest failing task `m` therefore runs (its dependencies are numbered
// lower still and succeed), task `m` runs and fails, and nothing below `m` fails. So the
// reported error is always `m`'s, provided a task's outcome depends only on its number.
//
// Note [Retries]: a task that fails with a retryable error is run again at once, on the same
// worker, with the next attempt number, up to `retries` times; only then is its failure
// recorded, so its dependants are released only after a successful attempt. Re-running is
// safe because a task owns its output (no other task writes it) and reads only memory that
// no task of the dispatch writes: whatever an earlier attempt wrote is overwritten, so the
// result is bitwise that of a run without failures. The outcome of a task after its retries
// still depends only on its number (and the attempt numbers, which the schedule does not
// change), so note [Deterministic errors] holds with retries too.

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    const THREADS: [usize; 4] = [1, 2, 3, 8];

    fn pools() -> Vec<Pool> {
        THREADS.iter().map(|&t| Pool::new(t).unwrap()).collect()
    }

    /// A blocked f32 sum: block partials in parallel tasks, then the fixed combine tree.
    fn blocked_sum(pool: &Pool, xs: &[f32], block: usize) -> f32 {
        let ranges: Vec<Range<usize>> = blocks(xs.len(), block).collect();
        let slots: Vec<AtomicU32> = ranges.iter().map(|_| AtomicU32::new(0)).collect();
        pool.run(ranges.len(), &|t, _| {
            let s: f32 = xs[ranges[t].clone()].iter().sum();
            slots[t].store(s.to_bits(), Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        let partials = slots
            .iter()
            .map(|a| f32::from_bits(a.load(Ordering::Relaxed)))
            .collect();
        combine_tree(partials, |a, b| a + b).unwrap_or(0.0)
    }

    #[test]
    fn thread_counts_are_validated_and_capped() {
        assert_eq!(parse_threads("1"), Ok(1));
        assert_eq!(parse_threads(&MAX_THREADS.to_string()), Ok(MAX_THREADS));
        for bad in ["0", "1025", "100000", "-1", "two", ""] {
            let e = parse_threads(bad).unwrap_err();
            assert!(e.contains(&MAX_THREADS.to_string()), "{bad}: {e}");
        }
        assert!(Pool::new(MAX_THREADS + 1).is_err());
        assert!((1..=MAX_THREADS).contains(&default_threads()));
    }

    #[test]
    fn results_are_bitwise_identical_for_any_thread_count() {
        let mut xs = vec![0.0f32; 100_003];
        crate::rand::fill_normal(5, &mut xs, 0);
        let sums: Vec<u32> = pools()
            .iter()
            .map(|p| blocked_sum(p, &xs, 1000).to_bits())
            .collect();
        assert!(sums.iter().all(|&s| s == sums[0]), "{sums:?}");
        // And the same as running the blocks by hand, in order.
        let partials = blocks(xs.len(), 1000)
            .map(|r| xs[r].iter().sum::<f32>())
            .collect();
        assert_eq!(
            combine_tree(partials, |a, b| a + b).unwrap().to_bits(),
            sums[0]
        );
    }

    #[test]
    fn every_task_runs_exactly_once() {
        for pool in pools() {
            for n in [0, 1, 2, 7, 1000] {
                let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run(n, &|t, _| {
                    counts[t].fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
                .unwrap();
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn the_lowest_numbered_failure_is_reported() {
        let failing = [999, 37, 50, 38];
        for pool in pools() {
            for _ in 0..20 {
                let err = pool
                    .run(1000, &|t, _| {
                        if failing.contains(&t) {
                            Err(TaskError::code(t, abi::ERR_DIV_ZERO))
                        } else {
                            Ok(())
                        }
                    })
                    .unwrap_err();
                assert_eq!(err, TaskError::code(37, abi::ERR_DIV_ZERO));
            }
        }
    }

    /// Pools that never retry.
    fn pools_without_retries() -> Vec<Pool> {
        let mut ps = pools();
        ps.iter_mut().for_each(|p| p.set_retries(0));
        ps
    }

    #[test]
    fn panics_become_task_errors_naming_the_task() {
        for pool in pools_without_retries() {
            let err = pool
                .run(64, &|t, _| {
                    if t == 5 || t == 40 {
                        panic!("boom in {t}");
                    }
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(err.task, 5);
            assert_eq!(err.kind, TaskErrorKind::Panic("boom in 5".to_string()));
            assert_eq!(err.to_string(), "shard task 5 panicked: boom in 5");
            // The pool still works afterwards.
            assert_eq!(pool.run(10, &|_, _| Ok(())), Ok(()));
        }
    }

    #[test]
    fn failed_tasks_are_retried_until_they_succeed() {
        for pool in pools() {
            assert_eq!(pool.retries(), DEFAULT_RETRIES);
            let before = pool.retried();
            let runs: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
            // Task t fails at its first t % 4 attempts, each way a task can fail.
            pool.run(100, &|t, attempt| {
                runs[t].fetch_add(1, Ordering::SeqCst);
                if (attempt as usize) < t % 4 {
                    match t % 3 {
                        0 => panic!("flaky {t}"),
                        1 => crate::fault::inject_panic(),
                        _ => return Err(TaskError::injected(t, FaultKind::AfterWritingPart)),
                    }
                }
                Ok(())
            })
            .unwrap();
            assert!((0..100).all(|t| runs[t].load(Ordering::SeqCst) == t % 4 + 1));
            let retried: usize = (0..100).map(|t| t % 4).sum();
            assert_eq!(pool.retried() - before, retried as u64);
        }
    }

    #[test]
    fn exhausted_retries_report_the_attempts_and_the_last_cause() {
        for mut pool in pools() {
            pool.set_retries(2);
            let runs = AtomicUsize::new(0);
            let err = pool
                .run(10, &|t, attempt| {
                    if t == 7 {
                        runs.fetch_add(1, Ordering::SeqCst);
                        if attempt == 2 {
                            crate::fault::inject_panic();
                        }
                        return Err(TaskError::message(t, "the disk is gone"));
                    }
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(runs.load(Ordering::SeqCst), 3);
            assert_eq!(
                err,
                TaskError {
                    task: 7,
                    kind: TaskErrorKind::Injected(FaultKind::Panic),
                    attempts: 3
                }
            );
            assert_eq!(
                err.to_string(),
                "shard task 7 failed 3 times (retries exhausted); the last failure: injected panic"
            );
        }
    }

    #[test]
    fn kernel_error_codes_are_not_retried() {
        for pool in pools() {
            let runs = AtomicUsize::new(0);
            let err = pool
                .run(3, &|t, _| {
                    if t == 1 {
                        runs.fetch_add(1, Ordering::SeqCst);
                        return Err(TaskError::code(t, abi::ERR_DIV_ZERO));
                    }
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            assert_eq!(err, TaskError::code(1, abi::ERR_DIV_ZERO));
        }
    }

    #[test]
    fn graph_tasks_are_retried_before_their_dependants_run() {
        let g = layered_graph();
        for pool in pools() {
            let done: Vec<AtomicUsize> = (0..g.len()).map(|_| AtomicUsize::new(0)).collect();
            pool.run_graph(&g, &|t, attempt| {
                if attempt == 0 && t % 2 == 0 {
                    return Err(TaskError::injected(t, FaultKind::BeforeWriting));
                }
                // Every dependency (through joins) has completed.
                let mut ancestors = g.deps(t).to_vec();
                while let Some(a) = ancestors.pop() {
                    if g.is_join(a) {
                        ancestors.extend_from_slice(g.deps(a));
                    } else {
                        assert_eq!(done[a].load(Ordering::SeqCst), 1, "{a} before {t}");
                    }
                }
                done[t].store(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
            assert!((0..g.len()).all(|t| g.is_join(t) || done[t].load(Ordering::SeqCst) == 1));
        }
    }

    #[test]
    fn thread_counts() {
        assert_eq!(Pool::new(0).unwrap().threads(), 1);
        assert_eq!(Pool::new(3).unwrap().threads(), 3);
        assert!(default_threads() >= 1);
        let p: &dyn Executor = &Pool::new(2).unwrap();
        assert_eq!(p.threads(), 2);
    }

    #[test]
    fn a_task_may_dispatch_nested_tasks() {
        for pool in pools() {
            let total = AtomicUsize::new(0);
            pool.run(4, &|_, _| {
                pool.run(5, &|_, _| {
                    total.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
            })
            .unwrap();
            assert_eq!(total.load(Ordering::Relaxed), 20);
        }
    }

    /// Three kernels of 8 shards, each kernel after the previous one through a join.
    fn layered_graph() -> TaskGraph {
        let mut g = TaskGraph::new();
        let k0 = g.add_many(8, &[]);
        let j0 = g.join(&k0.collect::<Vec<_>>());
        let k1 = g.add_many(8, &[j0]);
        let j1 = g.join(&k1.collect::<Vec<_>>());
        g.add_many(8, &[j1]);
        g
    }

    #[test]
    fn graph_tasks_run_after_their_dependencies() {
        let g = layered_graph();
        assert_eq!(g.len(), 26);
        assert!(g.is_join(8) && g.is_join(17) && !g.is_join(0));
        for pool in pools() {
            for _ in 0..10 {
                let clock = AtomicUsize::new(0);
                let stamp: Vec<AtomicUsize> =
                    (0..g.len()).map(|_| AtomicUsize::new(usize::MAX)).collect();
                pool.run_graph(&g, &|t, _| {
                    assert!(!g.is_join(t), "join task {t} was run");
                    let now = clock.fetch_add(1, Ordering::SeqCst);
                    stamp[t].store(now, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
                assert_eq!(clock.load(Ordering::SeqCst), 24);
                for t in (0..g.len()).filter(|&t| !g.is_join(t)) {
                    let mine = stamp[t].load(Ordering::SeqCst);
                    assert_ne!(mine, usize::MAX, "task {t} did not run");
                    // Through joins: every non-join task reachable as an ancestor ran before.
                    let mut ancestors = g.deps(t).to_vec();
                    while let Some(a) = ancestors.pop() {
                        if g.is_join(a) {
                            ancestors.extend_from_slice(g.deps(a));
                        } else {
                            assert!(stamp[a].load(Ordering::SeqCst) < mine);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn graph_failures_are_deterministic_and_stop_dependants() {
        let g = layered_graph();
        for pool in pools_without_retries() {
            for _ in 0..10 {
                let ran: Vec<AtomicUsize> = (0..g.len()).map(|_| AtomicUsize::new(0)).collect();
                let err = pool
                    .run_graph(&g, &|t, _| {
                        ran[t].fetch_add(1, Ordering::SeqCst);
                        if t == 12 || t == 3 || t == 20 {
                            return Err(TaskError::message(t, "bad shard"));
                        }
                        Ok(())
                    })
                    .unwrap_err();
                assert_eq!(err, TaskError::message(3, "bad shard"));
                assert_eq!(err.to_string(), "shard task 3 failed: bad shard");
                // Kernel 1 and 2 depend on task 3 through the join: none of them ran.
                assert!((9..17)
                    .chain(18..26)
                    .all(|t| ran[t].load(Ordering::SeqCst) == 0));
                // Tasks before 3 always ran.
                assert!((0..3).all(|t| ran[t].load(Ordering::SeqCst) == 1));
            }
        }
    }

    #[test]
    fn an_empty_graph_and_a_graph_of_joins() {
        for pool in pools() {
            assert_eq!(pool.run_graph(&TaskGraph::new(), &|_, _| Ok(())), Ok(()));
            let mut g = TaskGraph::new();
            let a = g.join(&[]);
            g.join(&[a, a]);
            assert_eq!(g.deps(1), &[0]);
            assert_eq!(
                pool.run_graph(&g, &|t, _| Err(TaskError::message(t, "no"))),
                Ok(())
            );
        }
    }

    #[test]
    fn blocks_cover_the_extent_in_order() {
        let b: Vec<_> = blocks(10, 4).collect();
        assert_eq!(b, vec![0..4, 4..8, 8..10]);
        assert_eq!(blocks(8, 4).collect::<Vec<_>>(), vec![0..4, 4..8]);
        assert_eq!(blocks(0, 4).count(), 0);
        assert_eq!(blocks(3, 100).collect::<Vec<_>>(), vec![0..3]);
        assert_eq!(blocks(10, 4).len(), n_blocks(10, 4));
        assert_eq!(blocks(10, 4).next_back(), Some(8..10));
    }

    #[test]
    fn the_combine_tree_has_a_fixed_shape() {
        let leaves = |n: usize| (0..n).map(|i| ((b'a' + i as u8) as char).to_string());
        let tree = |n| combine_tree(leaves(n).collect(), |a, b| format!("({a}{b})"));
        assert_eq!(tree(0), None);
        assert_eq!(tree(1).as_deref(), Some("a"));
        assert_eq!(tree(4).as_deref(), Some("((ab)(cd))"));
        assert_eq!(tree(5).as_deref(), Some("(((ab)(cd))e)"));
        assert_eq!(tree(6).as_deref(), Some("(((ab)(cd))(ef))"));
    }

    #[test]
    fn kernel_statuses_become_errors() {
        assert_eq!(TaskError::check_status(4, abi::OK), Ok(()));
        let e = TaskError::check_status(4, abi::ERR_DIV_OVERFLOW).unwrap_err();
        assert_eq!(e, TaskError::code(4, abi::ERR_DIV_OVERFLOW));
        assert!(e
            .to_string()
            .starts_with("shard task 4 failed: integer division overflow"));
    }
}
