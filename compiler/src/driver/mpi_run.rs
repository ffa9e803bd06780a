//! `flowc run` (and `run-mir`, `test`, `bench`) under `mpirun` (the `mpi` cargo feature):
//! rank 0 runs the program — the
//! coordinator, and the only rank doing I/O — and the other ranks evaluate every dispatched
//! graph alongside it, each running its block of every launch's shards
//! (`native::spread`). This file is the MPI side: the ranks, what a dispatch sends, the
//! exchange of rows after a launch, the workers' loop, and the injected death of a rank for
//! the tests (`FLOW_MPI_DIE=RANK[,LAUNCH]`).
//!
//! What moves (docs/distributed.md): per dispatch, one broadcast from rank 0 of the graph's
//! text (only the first time the ranks see that graph; afterwards its hash) and of its
//! inputs (a tensor the ranks already hold — an input or output of the previous dispatch —
//! goes as its number only); per launch, an all-gather of the rows each rank computed,
//! so every rank holds every tensor; nothing at the end (rank 0 has the outputs already).
//!
//! Failure: a shard that fails for good is agreed on by all ranks after its launch (the
//! lowest failing shard wins, as on one process) and reported by rank 0 like any shard
//! error. A rank that dies (a crash, `kill -9`) is noticed by `mpirun`, which ends the job
//! naming the rank; a rank that meets an error of its own (out of memory) says so, naming
//! itself, and aborts the job (`MPI_Abort`); a panic escaping a rank does the same.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use ::mpi::datatype::{Partition, PartitionMut};
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::*;

use flow_runtime::pool::TaskError;
use flow_runtime::Tensor;

use super::{PassFlags, RuntimeFlags};
use crate::exec::RunOptions;
use crate::mir::hash::{graph_hash, Hash};
use crate::mir::ir::Graph;
use crate::native::spread::{overlap, rows_of, LaunchRows, Outcome};
use crate::native::{Native, NativeError, Spread};

/// Whether this process was started by `mpirun` (or `srun` with PMIx): then `flowc run` runs
/// as one rank of a job.
pub fn under_mpirun() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// A command that runs graphs (`flowc run`, `run-mir`, `test`, `bench`) as one rank of an
/// MPI job: rank 0 runs `coordinator` with the ranks to spread its dispatches over, the
/// others evaluate them with the options of `flags` and `rt`. Returns the exit status.
pub fn as_job(
    flags: &PassFlags,
    rt: &RuntimeFlags,
    coordinator: impl FnOnce(Rc<dyn Spread>) -> i32,
) -> i32 {
    // Rank 0 alone profiles, traces and shows progress.
    let worker_rt = RuntimeFlags {
        profile: false,
        trace: None,
        ..rt.clone()
    };
    run_job(
        flags.stats,
        || {
            let mut opts = flags.options()?;
            worker_rt.apply(&mut opts)?;
            Ok(opts)
        },
        coordinator,
    )
}

/// Runs this process as one rank of an MPI job: rank 0 calls `coordinator` with the ranks
/// to spread its dispatches over; every other rank evaluates the dispatches it receives
/// with the run options `worker_options` makes (native kernels: the JIT's under `flowc run`,
/// the compiled table in an executable of `flowc build --mpi`). Returns the exit status.
pub fn run_job(
    stats: bool,
    worker_options: impl FnOnce() -> Result<RunOptions, String>,
    coordinator: impl FnOnce(Rc<dyn Spread>) -> i32,
) -> i32 {
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Serialized) else {
        errln!("error: cannot initialise MPI");
        return 1;
    };
    let ranks = Rc::new(Ranks::new(universe.world()));
    let rank = ranks.rank;
    let run = catch_unwind(AssertUnwindSafe(|| {
        if rank == 0 {
            let spread: Rc<dyn Spread> = ranks.clone();
            let status = coordinator(spread);
            if stats {
                errln!("{}", ranks.stats_line());
            }
            ranks.stop();
            status
        } else {
            worker(&ranks, worker_options())
        }
    }));
    match run {
        Ok(status) => {
            drop(ranks);
            drop(universe);
            status
        }
        // The panic hook printed the message; MPI_Finalize must not be reached with other
        // ranks waiting in a collective: end the whole job.
        Err(_) => {
            errln!("error: rank {rank} panicked; ending the MPI job");
            ranks.world.abort(101)
        }
    }
}

/// A rank other than 0: evaluates each dispatch it receives until rank 0 says stop.
fn worker(ranks: &Rc<Ranks>, opts: Result<RunOptions, String>) -> i32 {
    let native = opts.and_then(|opts| {
        let factory = opts
            .kernels
            .as_ref()
            .ok_or("the MPI executor runs the native backend (--backend jit)")?;
        let kernels = factory().map_err(|e| e.to_string())?;
        let mut native = Native::new(kernels, opts.threads).map_err(|e| e.to_string())?;
        native.set_retry(opts.retry);
        let spread: Rc<dyn Spread> = ranks.clone();
        native.set_spread(spread);
        Ok(native)
    });
    let mut native = native.ok();
    while let Some((g, inputs, eval)) = ranks.receive_dispatch() {
        let Some(native) = native.as_mut() else {
            ranks.die("cannot evaluate a dispatch: this rank could not set up its executor");
        };
        native.number_next_eval(eval);
        match native.eval(&g, &inputs) {
            Ok(_) => {}
            // Agreed by every rank at the same launch, or met by every rank alike (an
            // interpreted node's error): rank 0 reports it.
            Err(NativeError::Shard { .. } | NativeError::Interpreted { .. }) => {}
            Err(e) => ranks.die(&format!("error: {e}")),
        }
    }
    0
}

/// What rank 0 sends before each dispatch: `[STOP | DISPATCH, payload bytes]`.
const STOP: u64 = 0;
const DISPATCH: u64 = 1;

/// An input of a dispatch: its bytes (`.npy`), or the number of a tensor the ranks hold.
const INPUT_BYTES: u8 = 0;
const INPUT_HELD: u8 = 1;

/// The ranks of the job, seen from one of them.
pub struct Ranks {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// Graphs every rank has parsed, by hash.
    graphs: RefCell<HashMap<Hash, Rc<Graph>>>,
    /// The tensors every rank holds: the inputs and outputs of the last dispatch, in that
    /// order (kept alike on every rank, so rank 0 can name one by its number). Rank 0 finds
    /// an input among them by identity (the coordinator passes on the very tensor a dispatch
    /// returned), not by hashing its contents, which costs more than a small dispatch.
    held: RefCell<Vec<Rc<Tensor>>>,
    /// Launches run so far (for `FLOW_MPI_DIE`).
    launches: Cell<u64>,
    /// `FLOW_MPI_DIE=RANK[,LAUNCH]`: this rank dies at that launch (the first by default).
    die_at: Option<u64>,
    stats: Cell<Stats>,
}

/// What rank 0 counted, for `--stats`.
#[derive(Clone, Copy, Default)]
struct Stats {
    dispatches: u64,
    /// Bytes broadcast from rank 0 (graph texts, hashes, inputs), counted once per receiver.
    sent: u64,
    /// Bytes of inputs not sent because the ranks held them already.
    held: u64,
    /// Bytes of rows the ranks received from each other after launches, summed over ranks.
    exchanged: u64,
    /// What those exchanges would have moved had each output that moves gone whole to
    /// every rank (an all-gather, without the halo plan).
    whole: u64,
    launches: u64,
}

impl Ranks {
    fn new(world: SimpleCommunicator) -> Ranks {
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let die_at = std::env::var("FLOW_MPI_DIE").ok().and_then(|v| {
            let mut it = v.split(',');
            let r: usize = it.next()?.trim().parse().ok()?;
            let at = it.next().and_then(|l| l.trim().parse().ok()).unwrap_or(1);
            (r == rank).then_some(at)
        });
        Ranks {
            world,
            rank,
            size,
            graphs: RefCell::default(),
            held: RefCell::default(),
            launches: Cell::new(0),
            die_at,
            stats: Cell::default(),
        }
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Says why this rank cannot go on, naming it, and ends the whole job.
    fn die(&self, why: &str) -> ! {
        errln!(
            "flowc: rank {} of {}: {why}; ending the MPI job",
            self.rank,
            self.size
        );
        self.world.abort(1)
    }

    /// On rank 0: tells the other ranks that the program ended.
    fn stop(&self) {
        if self.size > 1 {
            let mut head = [STOP, 0];
            self.world.process_at_rank(0).broadcast_into(&mut head[..]);
        }
    }

    /// On another rank: the next dispatch's graph and inputs, or `None` at the end.
    fn receive_dispatch(&self) -> Option<(Rc<Graph>, Vec<Rc<Tensor>>, u64)> {
        let root = self.world.process_at_rank(0);
        let mut head = [0u64; 2];
        root.broadcast_into(&mut head[..]);
        if head[0] == STOP {
            return None;
        }
        let mut payload = vec![0u8; head[1] as usize];
        root.broadcast_into(&mut payload[..]);
        match self.decode(&payload) {
            Ok(d) => Some(d),
            Err(why) => self.die(&format!("a dispatch from rank 0 is unreadable: {why}")),
        }
    }

    /// Reads a dispatch: the graph's hash, the evaluation's number on rank 0, the graph's
    /// text (empty when the ranks have it), and the inputs.
    fn decode(&self, mut p: &[u8]) -> Result<(Rc<Graph>, Vec<Rc<Tensor>>, u64), String> {
        let hash: Hash = take(&mut p, 32)?.try_into().expect("32 bytes");
        let eval = read_u64(&mut p)?;
        let text_len = read_u64(&mut p)? as usize;
        let text = take(&mut p, text_len)?;
        let graph = if text_len == 0 {
            let graphs = self.graphs.borrow();
            graphs
                .get(&hash)
                .cloned()
                .ok_or("a graph this rank never received")?
        } else {
            let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
            let g = crate::mir::parse(text).map_err(|e| format!("its graph: {e}"))?;
            if graph_hash(&g, b"dist") != hash {
                return Err(
                    "its graph, parsed from text, differs from rank 0's (a compiler bug)".into(),
                );
            }
            let g = Rc::new(g);
            self.graphs.borrow_mut().insert(hash, g.clone());
            g
        };
        let n = read_u64(&mut p)?;
        let mut inputs = Vec::new();
        for _ in 0..n {
            let kind = take(&mut p, 1)?[0];
            if kind == INPUT_HELD {
                let i = read_u64(&mut p)? as usize;
                let held = self.held.borrow();
                inputs.push(
                    held.get(i)
                        .cloned()
                        .ok_or("an input this rank does not hold")?,
                );
            } else {
                let len = read_u64(&mut p)? as usize;
                let t =
                    flow_runtime::npy::read_npy(take(&mut p, len)?).map_err(|e| e.to_string())?;
                inputs.push(Rc::new(t));
            }
        }
        Ok((graph, inputs, eval))
    }

    /// The `--stats` line of rank 0.
    fn stats_line(&self) -> String {
        let s = self.stats.get();
        let per = |b: u64| b.checked_div(s.dispatches).unwrap_or(0) as u128;
        let fmt = |b: u64| crate::mir::memory::format_bytes(b as u128);
        format!(
            "mpi: {} ranks, {} dispatch(es), {} launch(es); sent from rank 0: {} ({} per dispatch), inputs already held: {}; rows exchanged: {} ({} per dispatch; {} with every output that moves sent whole)",
            self.size,
            s.dispatches,
            s.launches,
            fmt(s.sent),
            crate::mir::memory::format_bytes(per(s.sent)),
            fmt(s.held),
            fmt(s.exchanged),
            crate::mir::memory::format_bytes(per(s.exchanged)),
            fmt(s.whole),
        )
    }

    /// Exchanges the rows of every output of a launch: each rank sends each other rank the
    /// rows of its block that the other needs (`LaunchRows::needs`: every row, or a halo
    /// plan) — an all-gather when every rank needs every row, an all-to-all of the
    /// overlaps otherwise, nothing when every rank computed all it needs.
    fn exchange(&self, l: &LaunchRows<'_>) {
        let blocks: Vec<_> = (0..self.size).map(|r| rows_of(r, self.size, l)).collect();
        for (k, &(ptr, row_bytes, _)) in l.outputs.iter().enumerate() {
            let total = l.extent0 * row_bytes;
            if total == 0 {
                continue;
            }
            let whole = vec![0..l.extent0; self.size];
            let need = l.needs.get(k).and_then(Option::as_ref).unwrap_or(&whole);
            // moves[p][q]: the rows rank p sends rank q.
            let moves: Vec<Vec<Range<usize>>> = blocks
                .iter()
                .enumerate()
                .map(|(p, b)| {
                    (0..self.size)
                        .map(|q| if p == q { 0..0 } else { overlap(b, &need[q]) })
                        .collect()
                })
                .collect();
            let moved: usize = moves.iter().flatten().map(|r| r.len() * row_bytes).sum();
            if moved == 0 {
                continue;
            }
            let count = |n: usize| {
                i32::try_from(n).unwrap_or_else(|_| {
                    self.die(&format!(
                        "an output of `{}` has {total} bytes; one exchange moves at most 2 GiB",
                        l.name
                    ))
                })
            };
            // SAFETY: the launch is over; `ptr` is its output buffer of `extent0` rows, which
            // nothing else reads or writes until this exchange returns.
            let all = unsafe { std::slice::from_raw_parts_mut(ptr, total) };
            let mine = &blocks[self.rank];
            // Never an empty vector's dangling pointer, 1: that is Open MPI's `MPI_IN_PLACE`,
            // which would make a rank without rows send from its receive buffer.
            let mut own = Vec::with_capacity(mine.len() * row_bytes + 1);
            own.extend_from_slice(&all[mine.start * row_bytes..mine.end * row_bytes]);
            if need.iter().all(|n| *n == (0..l.extent0)) {
                let counts: Vec<i32> = blocks.iter().map(|b| count(b.len() * row_bytes)).collect();
                let displs: Vec<i32> = blocks.iter().map(|b| count(b.start * row_bytes)).collect();
                self.world.all_gather_varcount_into(
                    &own[..],
                    &mut PartitionMut::new(all, counts, displs),
                );
            } else {
                let r = self.rank;
                // What this rank sends, as offsets into its own block; what it receives, at
                // the rows' places in the buffer.
                let send_counts: Vec<i32> = moves[r]
                    .iter()
                    .map(|m| count(m.len() * row_bytes))
                    .collect();
                let send_displs: Vec<i32> = moves[r]
                    .iter()
                    .map(|m| count(m.start.saturating_sub(mine.start) * row_bytes))
                    .collect();
                let recv_counts: Vec<i32> = moves
                    .iter()
                    .map(|m| count(m[r].len() * row_bytes))
                    .collect();
                let recv_displs: Vec<i32> = moves
                    .iter()
                    .map(|m| count(m[r].start * row_bytes))
                    .collect();
                self.world.all_to_all_varcount_into(
                    &Partition::new(&own[..], send_counts, send_displs),
                    &mut PartitionMut::new(all, recv_counts, recv_displs),
                );
            }
            self.count(|s| {
                s.exchanged += moved as u64;
                s.whole += (total * (self.size - 1)) as u64;
            });
        }
    }
}

impl Spread for Ranks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.size
    }

    fn send_dispatch(
        &self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
        eval: u64,
    ) -> Result<(), NativeError> {
        let hash = graph_hash(g, b"dist");
        let mut p = hash.to_vec();
        p.extend(eval.to_le_bytes());
        let new = !self.graphs.borrow().contains_key(&hash);
        let text = if new {
            crate::mir::print(g)
        } else {
            String::new()
        };
        p.extend((text.len() as u64).to_le_bytes());
        p.extend(text.as_bytes());
        if new {
            self.graphs.borrow_mut().insert(hash, Rc::new(g.clone()));
        }
        p.extend((inputs.len() as u64).to_le_bytes());
        let mut held_bytes = 0;
        {
            let held = self.held.borrow();
            for t in inputs {
                if let Some(i) = held.iter().position(|h| Rc::ptr_eq(h, t)) {
                    p.push(INPUT_HELD);
                    p.extend((i as u64).to_le_bytes());
                    held_bytes += (t.len() * t.dtype().size_bytes()) as u64;
                } else {
                    let bytes = flow_runtime::npy::write_npy(t);
                    p.push(INPUT_BYTES);
                    p.extend((bytes.len() as u64).to_le_bytes());
                    p.extend(bytes);
                }
            }
        }
        let root = self.world.process_at_rank(0);
        let mut head = [DISPATCH, p.len() as u64];
        root.broadcast_into(&mut head[..]);
        root.broadcast_into(&mut p[..]);
        let receivers = (self.size - 1) as u64;
        self.count(|s| {
            s.dispatches += 1;
            s.sent += (16 + p.len() as u64) * receivers;
            s.held += held_bytes * receivers;
        });
        Ok(())
    }

    fn finish_launch(&self, l: &LaunchRows<'_>, local: Result<(), TaskError>) -> Outcome {
        let n = self.launches.get() + 1;
        self.launches.set(n);
        if self.die_at == Some(n) {
            errln!(
                "flowc: rank {} of {}: injected death (FLOW_MPI_DIE) in launch {n}, `{}`",
                self.rank,
                self.size,
                l.name
            );
            std::process::abort();
        }
        let failed = local.as_ref().err().map_or(u64::MAX, |e| e.task as u64);
        let mut all = vec![0u64; self.size];
        self.world.all_gather_into(&failed, &mut all[..]);
        let lowest = (0..self.size)
            .min_by_key(|&r| all[r])
            .expect("one rank at least");
        if all[lowest] != u64::MAX {
            return match local {
                Err(e) if lowest == self.rank => Outcome::Failed(e),
                _ => Outcome::FailedElsewhere {
                    shard: all[lowest] as usize,
                    rank: lowest,
                },
            };
        }
        self.exchange(l);
        self.count(|s| s.launches += 1);
        Outcome::Done
    }

    fn dispatched(&self, inputs: &[Rc<Tensor>], outputs: &[Rc<Tensor>]) {
        *self.held.borrow_mut() = inputs.iter().chain(outputs).cloned().collect();
    }
}

/// The next `n` bytes of a dispatch.
fn take<'a>(p: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if p.len() < n {
        return Err("it ends early".into());
    }
    let (head, rest) = p.split_at(n);
    *p = rest;
    Ok(head)
}

fn read_u64(p: &mut &[u8]) -> Result<u64, String> {
    Ok(u64::from_le_bytes(take(p, 8)?.try_into().expect("8 bytes")))
}
