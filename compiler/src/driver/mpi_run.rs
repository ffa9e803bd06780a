//! `flowc run` (and `run-mir`, `test`, `bench`) under `mpirun` (the `mpi` cargo feature):
//! rank 0 runs the program — the
//! coordinator, and the only rank doing I/O — and the other ranks evaluate every dispatched
//! graph alongside it, each running its block of every launch's shards
//! (`native::spread`). This file is the MPI side: the ranks, what a dispatch sends, the
//! exchange of rows after a launch, the workers' loop, and the injected death of a rank for
//! the tests (`FLOW_MPI_DIE=RANK[,LAUNCH]`).
//!
//! Long file: every collective here has its counterpart on the other ranks in this same
//! file (rank 0's dispatch and the workers' decoding of it, a fetch and the workers' side
//! of the gather, the numbering of held tensors on both sides), and they must be read
//! together to see that every rank calls the same collectives in the same order.
//!
//! What moves (docs/distributed.md): per dispatch, one broadcast from rank 0 of the graph's
//! text (only the first time the ranks see that graph; afterwards its hash), of the numbers
//! of the held tensors the coordinator dropped, and of its inputs (a tensor the ranks hold —
//! an input or output of an earlier dispatch the coordinator still holds — goes as its
//! number only); then the rows of held inputs each rank reads and lacks; per launch, the
//! rows of its outputs that other ranks read (the halo plan); per histogram or scatter run
//! by blocks, its partial bins or winners to the ranks that own their rows of the result
//! (`Spread::all_to_all`). The graph's outputs stay on the ranks that computed them: rank 0
//! gathers one (an all-to-all in which only it receives) when the
//! coordinator observes it (`Spread::fetch`), which every other rank joins from its loop.
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
use std::rc::{Rc, Weak};

use ::mpi::datatype::{Partition, PartitionMut};
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::*;

use flow_runtime::pool::TaskError;
use flow_runtime::Tensor;

use super::{PassFlags, RuntimeFlags};
use crate::exec::RunOptions;
use crate::mir::hash::{graph_hash, Hash};
use crate::mir::ir::Graph;
use crate::native::spread::{rows_of, Held, LaunchRows, Need, Outcome, RowSet};
use crate::native::{data_ptr, data_ptr_mut, Native, NativeError, Spread};

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
            last_words::install();
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

/// What rank 0 sends before each dispatch: `[STOP | DISPATCH, payload bytes]`, or before
/// a gather of a held tensor it observes: `[FETCH, its number]`.
const STOP: u64 = 0;
const DISPATCH: u64 = 1;
const FETCH: u64 = 2;

/// A dispatch as a rank other than 0 receives it: the graph, its inputs, and the number of
/// the evaluation on rank 0.
type Dispatch = (Rc<Graph>, Vec<Rc<Tensor>>, u64);

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
    /// The tensors the ranks hold: the inputs and outputs of the dispatches so far that
    /// the coordinator still holds (kept alike on every rank, so rank 0 can name one by its
    /// number). Rank 0 finds an input among them by identity (the coordinator passes on the
    /// very tensor a dispatch returned), not by hashing its contents, which costs more than
    /// a small dispatch.
    held: RefCell<Vec<Entry>>,
    /// The number of the next tensor held.
    next_id: Cell<u64>,
    /// The numbers of the inputs of the dispatch under way.
    current: RefCell<Vec<u64>>,
    /// Launches run so far (for `FLOW_MPI_DIE`).
    launches: Cell<u64>,
    /// `FLOW_MPI_DIE=RANK[,LAUNCH]`: this rank dies at that launch (the first by default).
    die_at: Option<u64>,
    stats: Cell<Stats>,
    /// The most bytes one rank sends or receives in one collective that moves rows or
    /// dispatch bytes (1 GiB; `FLOW_MPI_MAX_MESSAGE=BYTES` for the tests, rank 0's for
    /// every rank): larger moves go in rounds, under MPI's 2 GiB `int` counts.
    max_message: usize,
    /// On rank 0, for `--stats`: the bytes of rows exchanged after each op's launches, by
    /// op, in the order the ops first moved rows.
    by_op: RefCell<Vec<(String, u64)>>,
}

/// A tensor the ranks hold between dispatches, numbered alike on every rank.
struct Entry {
    id: u64,
    /// This rank's copy, valid in rows `have[rank]`.
    t: Rc<Tensor>,
    /// On rank 0: the coordinator's handles on it (the tensor a dispatch returned; `t`
    /// itself is one too), by which rank 0 names it; the ranks drop it when none is alive.
    keys: Vec<Weak<Tensor>>,
    /// The rows each rank computed (they cover the rows, each in one block).
    own: Vec<Range<usize>>,
    /// The rows each rank holds (`own`, and more).
    have: Vec<Range<usize>>,
}

impl Entry {
    /// A tensor every rank holds whole.
    fn whole(id: u64, t: Rc<Tensor>, ranks: usize) -> Entry {
        let rows = t.shape.first().copied().unwrap_or(1);
        let mut own = vec![0..0; ranks];
        own[0] = 0..rows;
        Entry {
            id,
            keys: vec![Rc::downgrade(&t)],
            t,
            own,
            have: vec![0..rows; ranks],
        }
    }

    /// Whether rank 0 may name it by `t`.
    fn is(&self, t: &Rc<Tensor>) -> bool {
        Rc::ptr_eq(&self.t, t)
            || self
                .keys
                .iter()
                .any(|k| std::ptr::eq(k.as_ptr(), Rc::as_ptr(t)))
    }

    /// On rank 0: whether the coordinator still holds it.
    fn alive(&self) -> bool {
        Rc::strong_count(&self.t) > 1
            || self
                .keys
                .iter()
                .any(|k| !std::ptr::eq(k.as_ptr(), Rc::as_ptr(&self.t)) && k.strong_count() > 0)
    }

    fn rows(&self) -> usize {
        self.t.shape.first().copied().unwrap_or(1)
    }

    /// The bytes of one row.
    fn row_bytes(&self) -> usize {
        let rows = self.rows();
        (self.t.len() * self.t.dtype().size_bytes())
            .checked_div(rows)
            .unwrap_or(0)
    }
}

/// `t`'s bytes.
fn bytes_of(t: &Tensor) -> &[u8] {
    // SAFETY: the buffer of a live tensor, of `len` elements of its type.
    unsafe { std::slice::from_raw_parts(data_ptr(&t.data), t.len() * t.dtype().size_bytes()) }
}

/// `t`'s bytes, to write.
fn bytes_of_mut(t: &mut Tensor) -> &mut [u8] {
    let n = t.len() * t.dtype().size_bytes();
    // SAFETY: the buffer of a tensor borrowed mutably, of `n` bytes; every byte pattern is
    // a value of every element type but `bool`, whose rows come from a tensor of `bool`s.
    unsafe { std::slice::from_raw_parts_mut(data_ptr_mut(&mut t.data), n) }
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
    /// Bytes of rows of held inputs the ranks received from each other at the start of
    /// dispatches, summed over ranks.
    gathered: u64,
    /// Bytes rank 0 gathered of the outputs it observed.
    fetched: u64,
    /// Held tensors dropped.
    freed: u64,
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
        // Rank 0's setting, for every rank: the rounds of a move are a collective's shape.
        let mut max_message: u64 = std::env::var("FLOW_MPI_MAX_MESSAGE")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n: &u64| n > 0)
            .unwrap_or(1 << 30)
            .min(i32::MAX as u64);
        world.process_at_rank(0).broadcast_into(&mut max_message);
        Ranks {
            world,
            rank,
            size,
            graphs: RefCell::default(),
            held: RefCell::default(),
            next_id: Cell::new(0),
            current: RefCell::default(),
            launches: Cell::new(0),
            die_at,
            stats: Cell::default(),
            by_op: RefCell::default(),
            max_message: max_message as usize,
        }
    }

    /// On rank 0: what to say if `mpirun` ends the job now ([`last_words`]): `what` the
    /// ranks are doing.
    fn doing(&self, what: impl FnOnce() -> String) {
        if self.rank == 0 && self.size > 1 {
            last_words::set(&format!(
                "flowc: rank 0 of {}: the job was ended (SIGTERM: mpirun ends every rank when one dies) during dispatch {}, {}",
                self.size,
                self.stats.get().dispatches,
                what()
            ));
        }
    }

    fn stat(&self, f: impl FnOnce(&mut Stats)) {
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
    fn receive_dispatch(&self) -> Option<Dispatch> {
        let root = self.world.process_at_rank(0);
        let mut head = [0u64; 2];
        loop {
            root.broadcast_into(&mut head[..]);
            match head[0] {
                STOP => return None,
                FETCH => self.send_rows_to_root(head[1]),
                _ => break,
            }
        }
        let mut payload = vec![0u8; head[1] as usize];
        self.broadcast_bytes(&mut payload);
        match self.decode(&payload) {
            Ok(d) => Some(d),
            Err(why) => self.die(&format!("a dispatch from rank 0 is unreadable: {why}")),
        }
    }

    /// Reads a dispatch: the graph's hash, the evaluation's number on rank 0, the graph's
    /// text (empty when the ranks have it), and the inputs.
    fn decode(&self, mut p: &[u8]) -> Result<Dispatch, String> {
        let hash: Hash = take(&mut p, 32)?.try_into().expect("32 bytes");
        let eval = read_u64(&mut p)?;
        let freed = read_u64(&mut p)?;
        for _ in 0..freed {
            let id = read_u64(&mut p)?;
            self.held.borrow_mut().retain(|e| e.id != id);
        }
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
        let mut current = Vec::new();
        for _ in 0..n {
            let kind = take(&mut p, 1)?[0];
            if kind == INPUT_HELD {
                let id = read_u64(&mut p)?;
                let held = self.held.borrow();
                let e = held
                    .iter()
                    .find(|e| e.id == id)
                    .ok_or("an input this rank does not hold")?;
                inputs.push(e.t.clone());
                current.push(id);
            } else {
                let len = read_u64(&mut p)? as usize;
                let t =
                    flow_runtime::npy::read_npy(take(&mut p, len)?).map_err(|e| e.to_string())?;
                let t = Rc::new(t);
                current.push(self.hold(Entry::whole(0, t.clone(), self.size)));
                inputs.push(t);
            }
        }
        *self.current.borrow_mut() = current;
        Ok((graph, inputs, eval))
    }

    /// The `--stats` line of rank 0.
    fn stats_line(&self) -> String {
        let s = self.stats.get();
        let per = |b: u64| b.checked_div(s.dispatches).unwrap_or(0) as u128;
        let fmt = |b: u64| crate::mir::memory::format_bytes(b as u128);
        let moved = s.sent + s.exchanged + s.gathered + s.fetched;
        // The ops whose rows moved most, largest first (ties in the order they moved).
        let mut by_op = self.by_op.borrow().clone();
        by_op.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
        let most: Vec<String> = by_op
            .iter()
            .take(3)
            .map(|(n, b)| format!("{n}: {}", fmt(*b)))
            .collect();
        let most = if most.is_empty() {
            String::new()
        } else {
            format!(" (most after {})", most.join(", "))
        };
        format!(
            "mpi: {} ranks, {} dispatch(es), {} launch(es); sent from rank 0: {} ({} per dispatch), inputs already held: {}; rows exchanged: {}{most} ({} per dispatch; {} with every output that moves sent whole); rows of held inputs: {}; gathered to rank 0 when observed: {}; held tensors dropped: {}; moved in all: {moved} B",
            self.size,
            s.dispatches,
            s.launches,
            fmt(s.sent),
            crate::mir::memory::format_bytes(per(s.sent)),
            fmt(s.held),
            fmt(s.exchanged),
            crate::mir::memory::format_bytes(per(s.exchanged)),
            fmt(s.whole),
            fmt(s.gathered),
            fmt(s.fetched),
            s.freed,
        )
    }

    /// Holds `e` on this rank under the next number; returns the number.
    fn hold(&self, mut e: Entry) -> u64 {
        e.id = self.next_id.get();
        self.next_id.set(e.id + 1);
        let id = e.id;
        self.held.borrow_mut().push(e);
        id
    }

    /// A byte count as MPI takes it.
    fn count(&self, n: usize, what: &str) -> i32 {
        i32::try_from(n).unwrap_or_else(|_| {
            self.die(&format!(
                "{what} has {n} bytes to move in one collective; MPI's counts stop at 2 GiB"
            ))
        })
    }

    /// On a rank other than 0, when rank 0 observes held tensor `id`: sends it the rows of
    /// its block rank 0 lacks (`Spread::fetch` is the other side).
    fn send_rows_to_root(&self, id: u64) {
        let mut held = self.held.borrow_mut();
        let Some(e) = held.iter_mut().find(|e| e.id == id) else {
            self.die("rank 0 observes a tensor this rank does not hold")
        };
        let (rows, rb) = (e.rows(), e.row_bytes());
        let want = RowSet::from(0..rows).without(&e.have[0]);
        let moves = to_root(&e.own, &want);
        self.move_rows(
            &moves,
            rb,
            "an observed tensor",
            &mut [],
            Some(bytes_of(&e.t)),
        );
        e.have[0] = 0..rows;
    }

    /// Gives each rank the rows of held tensor `id` it needs (`need`, by rank; `None`: every
    /// row) and lacks, from the ranks that computed them; returns this rank's copy.
    fn gather_input(&self, id: u64, need: Option<&Need>) -> Rc<Tensor> {
        let mut held = self.held.borrow_mut();
        let Some(e) = held.iter_mut().find(|e| e.id == id) else {
            self.die("an input of the dispatch is not held")
        };
        let (rows, rb) = (e.rows(), e.row_bytes());
        if e.t.shape.is_empty() || rows == 0 || rb == 0 {
            return e.t.clone();
        }
        let whole = vec![RowSet::from(0..rows); self.size];
        let need = need.unwrap_or(&whole);
        let want: Vec<RowSet> = (0..self.size)
            .map(|q| need[q].without(&e.have[q]))
            .collect();
        // moves[p][q]: the rows rank p sends rank q.
        let moves: Vec<Vec<RowSet>> = (0..self.size)
            .map(|p| {
                (0..self.size)
                    .map(|q| {
                        if p == q {
                            RowSet::default()
                        } else {
                            want[q].within(&e.own[p])
                        }
                    })
                    .collect()
            })
            .collect();
        let moved: usize = moves.iter().flatten().map(|r| r.rows() * rb).sum();
        if moved == 0 {
            return e.t.clone();
        }
        // The rows arrive in a copy: the tensor itself may be the coordinator's.
        if moves.iter().any(|m| !m[self.rank].is_empty()) {
            let mut copy = (*e.t).clone();
            self.move_rows(&moves, rb, "a held input", bytes_of_mut(&mut copy), None);
            e.t = Rc::new(copy);
        } else {
            self.move_rows(&moves, rb, "a held input", &mut [], Some(bytes_of(&e.t)));
        }
        for (have, want) in e.have.iter_mut().zip(&want) {
            *have = want.joined_to(have);
        }
        self.stat(|s| s.gathered += moved as u64);
        e.t.clone()
    }

    /// Broadcasts `buf` from rank 0 (every rank knows its length), in pieces of at most
    /// `max_message` bytes.
    fn broadcast_bytes(&self, buf: &mut [u8]) {
        let root = self.world.process_at_rank(0);
        for piece in buf.chunks_mut(self.max_message) {
            root.broadcast_into(piece);
        }
    }

    /// Moves rows between the ranks: rank `p` sends rank `q` rows `moves[p][q]` (`rb` bytes a
    /// row, every row at its place in the tensor's bytes), packed in order, and each rank
    /// writes the rows it receives at their places in `buf`. A rank sends from `src`, or
    /// from `buf` when `src` is `None` (its rows and those it receives are disjoint). In
    /// rounds of `MPI_Alltoallv` of at most `max_message` bytes sent and received by each
    /// rank (every rank computes the same rounds from `moves`), so no tensor is too large
    /// for MPI's `int` counts. `what` names the tensor in errors.
    fn move_rows(
        &self,
        moves: &[Vec<RowSet>],
        rb: usize,
        what: &str,
        buf: &mut [u8],
        src: Option<&[u8]>,
    ) {
        let r = self.rank;
        // Rows of one pair in one round: a round moves at most `size` such pieces per rank.
        let piece = (self.max_message / (rb.max(1) * self.size)).max(1);
        let rounds = moves
            .iter()
            .flatten()
            .map(|m| m.rows().div_ceil(piece))
            .max()
            .unwrap_or(0);
        for round in 0..rounds {
            let part = |m: &RowSet| m.nth_rows(round * piece, piece);
            let out: Vec<RowSet> = moves[r].iter().map(part).collect();
            let inc: Vec<RowSet> = moves.iter().map(|m| part(&m[r])).collect();
            // Never an empty vector's dangling pointer, 1: that is Open MPI's `MPI_IN_PLACE`.
            let sent_rows: usize = out.iter().map(RowSet::rows).sum();
            let mut send = Vec::with_capacity(sent_rows * rb + 1);
            let mut send_counts = Vec::with_capacity(self.size);
            let mut send_displs = Vec::with_capacity(self.size);
            {
                let from: &[u8] = src.unwrap_or(buf);
                for m in &out {
                    send_displs.push(self.count(send.len(), what));
                    for x in m.ranges() {
                        send.extend_from_slice(&from[x.start * rb..x.end * rb]);
                    }
                    send_counts.push(self.count(m.rows() * rb, what));
                }
            }
            let recv_counts: Vec<i32> = inc
                .iter()
                .map(|m| self.count(m.rows() * rb, what))
                .collect();
            let mut recv_displs = Vec::with_capacity(self.size);
            let mut at = 0usize;
            for m in &inc {
                recv_displs.push(self.count(at, what));
                at += m.rows() * rb;
            }
            let mut recv = Vec::with_capacity(at + 1);
            recv.resize(at, 0u8);
            self.world.all_to_all_varcount_into(
                &Partition::new(&send[..], send_counts, send_displs),
                &mut PartitionMut::new(&mut recv[..], recv_counts, recv_displs),
            );
            let mut at = 0;
            for m in &inc {
                for x in m.ranges() {
                    let n = x.len() * rb;
                    buf[x.start * rb..x.end * rb].copy_from_slice(&recv[at..at + n]);
                    at += n;
                }
            }
        }
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
            let whole = vec![RowSet::from(0..l.extent0); self.size];
            let need = l.needs.get(k).and_then(Option::as_ref).unwrap_or(&whole);
            // moves[p][q]: the rows rank p sends rank q.
            let moves: Vec<Vec<RowSet>> = blocks
                .iter()
                .enumerate()
                .map(|(p, b)| {
                    (0..self.size)
                        .map(|q| {
                            if p == q {
                                RowSet::default()
                            } else {
                                need[q].within(b)
                            }
                        })
                        .collect()
                })
                .collect();
            let moved: usize = moves.iter().flatten().map(|r| r.rows() * row_bytes).sum();
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
            if need.iter().all(|n| *n == (0..l.extent0)) && total <= self.max_message {
                let mine = &blocks[self.rank];
                // Never an empty vector's dangling pointer, 1: that is Open MPI's
                // `MPI_IN_PLACE`, which would make a rank without rows send from its
                // receive buffer.
                let mut own = Vec::with_capacity(mine.len() * row_bytes + 1);
                own.extend_from_slice(&all[mine.start * row_bytes..mine.end * row_bytes]);
                let counts: Vec<i32> = blocks.iter().map(|b| count(b.len() * row_bytes)).collect();
                let displs: Vec<i32> = blocks.iter().map(|b| count(b.start * row_bytes)).collect();
                self.world.all_gather_varcount_into(
                    &own[..],
                    &mut PartitionMut::new(all, counts, displs),
                );
            } else {
                self.move_rows(&moves, row_bytes, l.name, all, None);
            }
            self.stat(|s| {
                s.exchanged += moved as u64;
                s.whole += (total * (self.size - 1)) as u64;
            });
            let mut by_op = self.by_op.borrow_mut();
            match by_op.iter_mut().find(|(n, _)| n == l.name) {
                Some((_, b)) => *b += moved as u64,
                None => by_op.push((l.name.to_string(), moved as u64)),
            }
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
        self.doing(|| "the sending of a dispatch".into());
        let hash = graph_hash(g, b"dist");
        let mut p = hash.to_vec();
        p.extend(eval.to_le_bytes());
        // The held tensors the coordinator dropped: every rank drops them.
        let mut freed = Vec::new();
        self.held.borrow_mut().retain(|e| {
            let keep = e.alive();
            if !keep {
                freed.push(e.id);
            }
            keep
        });
        p.extend((freed.len() as u64).to_le_bytes());
        for id in &freed {
            p.extend(id.to_le_bytes());
        }
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
        let mut current = Vec::new();
        for t in inputs {
            let found = self.held.borrow().iter().find(|e| e.is(t)).map(|e| e.id);
            if let Some(id) = found {
                p.push(INPUT_HELD);
                p.extend(id.to_le_bytes());
                held_bytes += (t.len() * t.dtype().size_bytes()) as u64;
                current.push(id);
            } else {
                let bytes = flow_runtime::npy::write_npy(t);
                p.push(INPUT_BYTES);
                p.extend((bytes.len() as u64).to_le_bytes());
                p.extend(bytes);
                current.push(self.hold(Entry::whole(0, t.clone(), self.size)));
            }
        }
        *self.current.borrow_mut() = current;
        let root = self.world.process_at_rank(0);
        let mut head = [DISPATCH, p.len() as u64];
        root.broadcast_into(&mut head[..]);
        self.broadcast_bytes(&mut p);
        let receivers = (self.size - 1) as u64;
        self.stat(|s| {
            s.dispatches += 1;
            s.sent += (16 + p.len() as u64) * receivers;
            s.held += held_bytes * receivers;
            s.freed += freed.len() as u64;
        });
        Ok(())
    }

    fn finish_launch(&self, l: &LaunchRows<'_>, local: Result<(), TaskError>) -> Outcome {
        let n = self.launches.get() + 1;
        self.launches.set(n);
        self.doing(|| format!("launch {n}, `{}`", l.name));
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
        self.stat(|s| s.launches += 1);
        Outcome::Done
    }

    fn all_gather(&self, what: &str, mine: &[u8]) -> Vec<Vec<u8>> {
        self.doing(|| format!("the exchange of {what}"));
        let len = mine.len() as u64;
        let mut lens = vec![0u64; self.size];
        self.world.all_gather_into(&len, &mut lens[..]);
        let total: usize = lens.iter().map(|&n| n as usize).sum();
        let mut all = vec![0u8; total];
        if total > 0 {
            let counts: Vec<i32> = lens.iter().map(|&n| self.count(n as usize, what)).collect();
            let mut at = 0;
            let displs: Vec<i32> = lens
                .iter()
                .map(|&n| {
                    let d = self.count(at, what);
                    at += n as usize;
                    d
                })
                .collect();
            // Never an empty vector's dangling pointer, 1: that is Open MPI's `MPI_IN_PLACE`.
            let mut own = Vec::with_capacity(mine.len() + 1);
            own.extend_from_slice(mine);
            self.world.all_gather_varcount_into(
                &own[..],
                &mut PartitionMut::new(&mut all[..], counts, displs),
            );
        }
        // Summed over the receiving ranks (rank 0 counts for all: every rank receives all
        // but its own).
        let received: u64 = lens.iter().map(|&n| total as u64 - n).sum();
        self.stat(|s| {
            s.exchanged += received;
            s.whole += received;
        });
        let mut out = Vec::with_capacity(self.size);
        let mut at = 0;
        for &n in &lens {
            out.push(all[at..at + n as usize].to_vec());
            at += n as usize;
        }
        out
    }

    fn all_to_all(&self, what: &str, to: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        self.doing(|| format!("the exchange of {what}"));
        if to.len() != self.size {
            self.die(&format!(
                "{what}: an all-to-all of {} parts on {} ranks (a compiler bug)",
                to.len(),
                self.size
            ));
        }
        // Every rank learns every rank's counts (R² numbers): each its receive counts, and
        // rank 0 the bytes moved for `--stats`.
        let mine: Vec<u64> = to.iter().map(|b| b.len() as u64).collect();
        let mut counts = vec![0u64; self.size * self.size];
        self.world.all_gather_into(&mine[..], &mut counts[..]);
        let from = |p: usize| counts[p * self.size + self.rank] as usize;
        let displs = |n: &mut dyn Iterator<Item = usize>| -> Vec<i32> {
            let mut at = 0;
            n.map(|n| {
                let d = self.count(at, what);
                at += n;
                d
            })
            .collect()
        };
        let send_counts: Vec<i32> = to.iter().map(|b| self.count(b.len(), what)).collect();
        let send_displs = displs(&mut to.iter().map(Vec::len));
        let recv_counts: Vec<i32> = (0..self.size).map(|p| self.count(from(p), what)).collect();
        let recv_displs = displs(&mut (0..self.size).map(from));
        let received: usize = (0..self.size).map(from).sum();
        // Never an empty vector's dangling pointer, 1: that is Open MPI's `MPI_IN_PLACE`.
        let mut sent = Vec::with_capacity(to.iter().map(Vec::len).sum::<usize>() + 1);
        for b in &to {
            sent.extend_from_slice(b);
        }
        drop(to);
        let mut all = Vec::with_capacity(received + 1);
        all.resize(received, 0u8);
        self.world.all_to_all_varcount_into(
            &Partition::new(&sent[..], send_counts, send_displs),
            &mut PartitionMut::new(&mut all[..], recv_counts, recv_displs),
        );
        // Bytes that went from one rank to another, over all ranks.
        let moved: u64 = (0..self.size)
            .flat_map(|p| (0..self.size).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| counts[p * self.size + q])
            .sum();
        self.stat(|s| {
            s.exchanged += moved;
            s.whole += moved;
        });
        let mut out = Vec::with_capacity(self.size);
        let mut at = 0;
        for p in 0..self.size {
            out.push(all[at..at + from(p)].to_vec());
            at += from(p);
        }
        out
    }

    fn gather_inputs(&self, inputs: &[Rc<Tensor>], need: &[Option<Need>]) -> Vec<Rc<Tensor>> {
        let ids = self.current.borrow().clone();
        if ids.len() != inputs.len() {
            self.die("a dispatch's inputs differ from those rank 0 sent (a compiler bug)");
        }
        ids.iter()
            .enumerate()
            .map(|(i, &id)| self.gather_input(id, need.get(i).and_then(Option::as_ref)))
            .collect()
    }

    fn whole_input(&self, index: usize) -> Rc<Tensor> {
        let id = self.current.borrow().get(index).copied();
        match id {
            Some(id) => self.gather_input(id, None),
            None => self.die("an input of the dispatch is not held (a compiler bug)"),
        }
    }

    fn dispatched(&self, outputs: &[Rc<Tensor>], held: &[Held]) {
        for (t, h) in outputs.iter().zip(held) {
            // An input passed through is held as the input is; a tensor output twice, once.
            if matches!(h, Held::Input(_)) || self.held.borrow().iter().any(|e| Rc::ptr_eq(&e.t, t))
            {
                continue;
            }
            let mut e = Entry::whole(0, t.clone(), self.size);
            if let Held::Rows { own, have } = h {
                e.own = own.clone();
                e.have = have.clone();
            }
            self.hold(e);
        }
    }

    fn fetch(&self, t: &Rc<Tensor>) -> Option<Rc<Tensor>> {
        self.doing(|| "the gathering of a tensor rank 0 observes".into());
        let mut held = self.held.borrow_mut();
        let e = held.iter_mut().find(|e| e.is(t))?;
        let (rows, rb) = (e.rows(), e.row_bytes());
        let want = RowSet::from(0..rows).without(&e.have[0]);
        if want.is_empty() || rb == 0 {
            return (!Rc::ptr_eq(&e.t, t)).then(|| e.t.clone());
        }
        let root = self.world.process_at_rank(0);
        let mut head = [FETCH, e.id];
        root.broadcast_into(&mut head[..]);
        let moves = to_root(&e.own, &want);
        let mut copy = (*e.t).clone();
        self.move_rows(
            &moves,
            rb,
            "an observed tensor",
            bytes_of_mut(&mut copy),
            None,
        );
        e.t = Rc::new(copy);
        e.keys.retain(|k| k.strong_count() > 0);
        e.keys.push(Rc::downgrade(&e.t));
        e.have[0] = 0..rows;
        let fetched: usize = moves.iter().flatten().map(|m| m.rows() * rb).sum();
        self.stat(|s| s.fetched += fetched as u64);
        Some(e.t.clone())
    }

    fn keeps(&self, t: &Rc<Tensor>) -> bool {
        self.held.borrow().iter().any(|e| Rc::ptr_eq(&e.t, t))
    }
}

/// The next `n` bytes of a dispatch.
/// The moves of a gather to rank 0 of rows `want` of a tensor whose rows rank `q` computed
/// are `own[q]`: each other rank sends rank 0 the rows of `want` it computed.
fn to_root(own: &[Range<usize>], want: &RowSet) -> Vec<Vec<RowSet>> {
    own.iter()
        .enumerate()
        .map(|(p, o)| {
            (0..own.len())
                .map(|q| {
                    if q == 0 && p != 0 {
                        want.within(o)
                    } else {
                        RowSet::default()
                    }
                })
                .collect()
        })
        .collect()
}

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

/// What rank 0 says when `mpirun` ends the job under it. When a rank dies (a crash, `kill
/// -9`), `mpirun` names that rank and sends every other rank `SIGTERM`; rank 0's handler
/// then writes which launch (op) or collective the ranks were in — kept here before each
/// one, as bytes a signal handler can read without allocating — and dies of the signal.
mod last_words {
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    const CAP: usize = 400;
    static TEXT: [AtomicU8; CAP] = [const { AtomicU8::new(0) }; CAP];
    static LEN: AtomicUsize = AtomicUsize::new(0);

    /// What the job is doing now (one line).
    pub(super) fn set(what: &str) {
        LEN.store(0, Ordering::SeqCst);
        let b = what.as_bytes();
        let n = b.len().min(CAP - 1);
        for (slot, &c) in TEXT.iter().zip(&b[..n]) {
            slot.store(c, Ordering::Relaxed);
        }
        TEXT[n].store(b'\n', Ordering::Relaxed);
        LEN.store(n + 1, Ordering::SeqCst);
    }

    extern "C" fn on_term(sig: libc::c_int) {
        let n = LEN.load(Ordering::SeqCst);
        let mut line = [0u8; CAP];
        for (c, slot) in line.iter_mut().zip(&TEXT[..n]) {
            *c = slot.load(Ordering::Relaxed);
        }
        // SAFETY: `write`, `signal` and `raise` are async-signal-safe; `line` is ours.
        unsafe {
            libc::write(2, line.as_ptr() as *const libc::c_void, n);
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    /// Installs the handler (rank 0, once).
    pub(super) fn install() {
        // SAFETY: `on_term` only does async-signal-safe things.
        unsafe {
            libc::signal(
                libc::SIGTERM,
                on_term as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}
