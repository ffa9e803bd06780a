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
//! Layout: this file holds the [`Executor`] trait and the [`Pool`]; `error.rs` why a task
//! failed; `graph.rs` the [`TaskGraph`]; `blocks.rs` the fixed blocks and combine tree;
//! `tests.rs` the tests.
//!
//! The pool is built on a dedicated `rayon::ThreadPool` rather than rayon's global pool, so
//! `--threads N` is honoured exactly and nothing else in the process competes for its workers.
//! rayon is the de facto standard work-stealing pool of the Rust ecosystem (maintained by the
//! Rust project's members, used by rustc itself): it gives cheap dispatch (a few microseconds
//! for a thousand trivial tasks, see the `pool.run` line of `cargo run --release -p
//! flow-bench`), load balancing by work stealing and nested parallelism, which a hand-rolled
//! pool of std threads would have to re-implement.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::fault::{FaultKind, InjectedPanic, DEFAULT_RETRIES};

mod blocks;
mod error;
mod graph;

pub use blocks::{blocks, combine_tree, n_blocks};
pub use error::{PoolError, TaskError, TaskErrorKind};
pub use graph::TaskGraph;

/// A shard task: called with the task's number and the attempt number (0 for the first), it
/// returns `Ok(())` or why it failed.
pub type TaskFn<'a> = dyn Fn(usize, u32) -> Result<(), TaskError> + Sync + 'a;

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
mod tests;
