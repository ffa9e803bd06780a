//! Spreading a dispatch over several processes (MPI ranks): the [`Spread`] trait the native
//! executor calls, and the placement of a launch's shards on ranks.
//!
//! Every rank runs the same graph on the same inputs, launch after launch, in the order of
//! the schedule; of each launch, a rank runs only its block of shard numbers
//! ([`shards_of`]: contiguous, in shard order, fixed by the shard count and the rank count).
//! After a launch the ranks agree on its outcome — the error of the lowest-numbered failing
//! shard, as one process would report it — and exchange the rows each computed by the
//! halo plan ([`rows_needed`]): each rank receives the rows of each output that its shards
//! of later kernels read, and every rank receives whole the outputs read otherwise, so every
//! rank holds what its next launches read. The graph's outputs stay where they were
//! computed ([`held`]): a later dispatch that reads one first gives each rank the rows it
//! reads ([`Spread::gather_inputs`]), and rank 0 gathers one only when the coordinator
//! observes it ([`Spread::fetch`]). Shard boundaries, the order of the rows of a
//! reduction's partial results and the combine tree are the schedule's, not the
//! placement's: the result is bitwise that of one process.
//!
//! The implementation over MPI is `driver::mpi_run` (the `mpi` cargo feature); this module
//! is pure Rust so the executor has no MPI dependency.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

use flow_runtime::pool::{TaskError, TaskErrorKind, TaskFn};
use flow_runtime::{DType, Tensor};

use super::{Kernel, Launch, NativeError};
use crate::mir::contract::contraction;
use crate::mir::ir::{Affine, Graph, NodeId, NodeKind, Port, Read, ScalarExpr};
use crate::mir::schedule::{shard_elements, shard_plan, space_shards, Schedule, Work};
use crate::mir::Idx;

/// A launch's rows as its shards write them: what ranks exchange after it.
pub struct LaunchRows<'a> {
    /// The launch's name (the op), for errors and injected faults.
    pub name: &'a str,
    pub shards: usize,
    /// Rows (of the outermost dimension) per shard.
    pub rows: usize,
    /// How many rows there are.
    pub extent0: usize,
    /// Each output: its buffer, the bytes of one row, its type.
    pub outputs: &'a [(*mut u8, usize, DType)],
    /// For each output, the rows each rank needs of it ([`rows_needed`]); `None`: every
    /// rank needs every row.
    pub needs: &'a [Option<Need>],
}

/// How a failed launch ended on the ranks: every rank learns the lowest failing shard.
pub enum Outcome {
    /// Every shard of every rank succeeded, and every rank has the rows it needs.
    Done,
    /// This rank ran the lowest failing shard: here is its error.
    Failed(TaskError),
    /// Another rank ran the lowest failing shard, `shard`.
    FailedElsewhere { shard: usize, rank: usize },
}

/// The processes a dispatch is spread over (see the module documentation).
pub trait Spread {
    /// This process's rank; rank 0 is the coordinator.
    fn rank(&self) -> usize;

    /// How many ranks there are.
    fn ranks(&self) -> usize;

    /// On rank 0, at the start of each evaluation: sends the graph and its inputs to the
    /// other ranks, which evaluate it alongside, and the number of the evaluation on rank 0
    /// (`eval`: the ranks number it alike, so injected faults hit the same launches even when
    /// rank 0 evaluates with several executors, one per `test` block). An input the ranks
    /// hold already (an output of an earlier dispatch) goes as its number.
    fn send_dispatch(&self, g: &Graph, inputs: &[Rc<Tensor>], eval: u64)
        -> Result<(), NativeError>;

    /// On every rank, at the start of an evaluation once the halo plan is known: gives each
    /// rank the rows of each input that it needs (`need[i]`, by rank; `None`: every row)
    /// and does not hold yet — an input held from an earlier dispatch is spread over the
    /// ranks as that dispatch left it — and returns the inputs to run on.
    fn gather_inputs(&self, inputs: &[Rc<Tensor>], need: &[Option<Need>]) -> Vec<Rc<Tensor>>;

    /// On every rank, alike, during an evaluation: input `index` of the dispatch under way,
    /// whole — its rows gathered from the ranks that hold them (rare: for the interpreter,
    /// which words an error over whole tensors).
    fn whole_input(&self, index: usize) -> Rc<Tensor>;

    /// After this rank ran its shards of a launch (`local`: the error of its lowest failing
    /// shard, numbered in the whole launch): agrees with the other ranks on the outcome and,
    /// when every shard succeeded, gives each rank the rows of each output it needs.
    fn finish_launch(&self, rows: &LaunchRows<'_>, local: Result<(), TaskError>) -> Outcome;

    /// On every rank, alike: every rank's `mine` (small: a scan's block totals, an outcome),
    /// by rank (`MPI_Allgatherv`); `what` names it in errors.
    fn all_gather(&self, what: &str, mine: &[u8]) -> Vec<Vec<u8>>;

    /// On every rank, alike: sends `to[q]` to rank `q` (`to` has one entry per rank; this
    /// rank's own comes back as is) and returns what each rank sent this one, by rank (an
    /// all-to-all: a histogram's partial bins, a scatter's winners, each to the rank that owns
    /// their rows of the result); `what` names it in errors.
    fn all_to_all(&self, what: &str, to: Vec<Vec<u8>>) -> Vec<Vec<u8>>;

    /// On every rank, after an evaluation succeeded: its outputs stay on the ranks, each
    /// rank holding the rows `held` says (a later dispatch names them instead of sending
    /// them, and rank 0 fetches one only when it observes it, [`Spread::fetch`]).
    fn dispatched(&self, outputs: &[Rc<Tensor>], held: &[Held]);

    /// On rank 0, when the coordinator observes `t` (prints it, saves it, branches on it):
    /// the whole tensor, its rows gathered from the ranks that computed them — `None` when
    /// `t` is whole on rank 0 already. Every other rank joins the gather.
    fn fetch(&self, t: &Rc<Tensor>) -> Option<Rc<Tensor>>;

    /// On rank 0: whether the ranks keep a reference to `t` (which is then no use of it by
    /// the coordinator: the ranks drop it when the coordinator does).
    fn keeps(&self, t: &Rc<Tensor>) -> bool;
}

/// Which rows of a graph output each rank holds after a dispatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// Every rank holds every row (every rank computed it whole, or it went whole to every
    /// rank).
    Whole,
    /// The output is the dispatch's input of this index, held as that input is.
    Input(usize),
    /// Rank `q` computed rows `own[q]` (the blocks cover the rows, each row in one block)
    /// and holds rows `have[q]` (its block, and the halo it received when contiguous).
    Rows {
        own: Vec<Range<usize>>,
        have: Vec<Range<usize>>,
    },
}

/// The shards of a launch of `shards` shards that rank `rank` of `ranks` runs: a contiguous
/// block, the first ranks taking one more when the count does not divide.
pub fn shards_of(rank: usize, ranks: usize, shards: usize) -> Range<usize> {
    let ranks = ranks.max(1);
    let (base, extra) = (shards / ranks, shards % ranks);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start..start + len
}

/// The rows of a launch that rank `rank` of `ranks` writes.
pub fn rows_of(rank: usize, ranks: usize, l: &LaunchRows<'_>) -> Range<usize> {
    let s = shards_of(rank, ranks, l.shards);
    (s.start * l.rows).min(l.extent0)..(s.end * l.rows).min(l.extent0)
}

/// The rows of a port each rank must hold after the launch that writes it, by rank: rank
/// `q` needs rows `need[q]` (empty: none). Rows are of the outermost dimension.
pub type Need = Vec<RowSet>;

/// Rows of a tensor's outermost dimension: disjoint ranges in order, none touching the
/// next. A rank's need is the union of its readers' reads, each read's rows one range (the
/// hull of its coordinates over the rank's box), so rows far apart read by different
/// readers (a block's partial sums here, a tail's there) do not take the rows between.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowSet(Vec<Range<usize>>);

impl RowSet {
    /// The ranges, in order.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.0
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether it holds row `i`.
    pub fn contains(&self, i: &usize) -> bool {
        self.0.iter().any(|r| r.contains(i))
    }

    /// How many rows it holds.
    pub fn rows(&self) -> usize {
        self.0.iter().map(|r| r.len()).sum()
    }

    /// Adds rows `r`, joining the ranges it overlaps or touches.
    pub fn insert(&mut self, r: Range<usize>) {
        if r.is_empty() {
            return;
        }
        let (mut lo, mut hi) = (r.start, r.end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for x in self.0.drain(..) {
            if x.end < lo || hi < x.start {
                kept.push(x);
            } else {
                lo = lo.min(x.start);
                hi = hi.max(x.end);
            }
        }
        let at = kept.partition_point(|x| x.start < lo);
        kept.insert(at, lo..hi);
        self.0 = kept;
    }

    /// The rows of this set inside `block`.
    pub fn within(&self, block: &Range<usize>) -> RowSet {
        RowSet(
            self.0
                .iter()
                .map(|r| overlap(r, block))
                .filter(|r| !r.is_empty())
                .collect(),
        )
    }

    /// The rows of this set outside `have`.
    pub fn without(&self, have: &Range<usize>) -> RowSet {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for r in &self.0 {
            if have.is_empty() || r.end <= have.start || have.end <= r.start {
                out.push(r.clone());
                continue;
            }
            if r.start < have.start {
                out.push(r.start..have.start);
            }
            if have.end < r.end {
                out.push(have.end..r.end);
            }
        }
        RowSet(out)
    }

    /// The same rows of a tensor whose rows are `width` of these each.
    pub fn scaled(&self, width: usize) -> RowSet {
        if width == 0 {
            return RowSet::default();
        }
        RowSet(
            self.0
                .iter()
                .map(|r| r.start * width..r.end * width)
                .collect(),
        )
    }

    /// The rows of this set that come after its first `skip` rows, at most `n` of them (in
    /// order).
    pub fn nth_rows(&self, skip: usize, n: usize) -> RowSet {
        let (mut skip, mut n) = (skip, n);
        let mut out = Vec::new();
        for r in &self.0 {
            if n == 0 {
                break;
            }
            if skip >= r.len() {
                skip -= r.len();
                continue;
            }
            let lo = r.start + skip;
            let hi = (lo + n).min(r.end);
            out.push(lo..hi);
            n -= hi - lo;
            skip = 0;
        }
        RowSet(out)
    }

    /// `have` joined with the ranges of this set that overlap or touch it (one range).
    pub fn joined_to(&self, have: &Range<usize>) -> Range<usize> {
        let mut h = have.clone();
        for r in &self.0 {
            if let Some(j) = joined(&h, r) {
                h = j;
            }
        }
        h
    }
}

impl From<Range<usize>> for RowSet {
    fn from(r: Range<usize>) -> RowSet {
        let mut s = RowSet::default();
        s.insert(r);
        s
    }
}

/// A set equals a range when it holds exactly its rows (an empty range: no row).
impl PartialEq<Range<usize>> for RowSet {
    fn eq(&self, r: &Range<usize>) -> bool {
        match &self.0[..] {
            [] => r.is_empty(),
            [x] => x == r,
            _ => false,
        }
    }
}

/// How each node's shards are placed, as the executor runs them: `(rows per shard, shards)`
/// for a kernel node and a contraction (GEMMs over blocks of rows; a member of a row group
/// takes its launch's, a node run alone its own [`shard_plan`]) and a random fill whose
/// blocks of elements are whole rows ([`random_rows`]); `None` for every other node (a node
/// on the interpreter, a primitive, a concatenation or slice, a random fill whose rows
/// straddle its blocks), which every rank runs whole or whose shards are not rows of its
/// index space. A scan, histogram or scatter of plain reads is placed by its routine's
/// blocks (`prims_ranks::prim_placement`): a rank runs its blocks; a histogram's or
/// scatter's result is then left on the ranks by other rows ([`output_rows`]).
///
/// `kernels` and `first_of` are the executor's (`Native::kernels_of`): which nodes run as
/// kernels, and which launches run as row groups (the others run member by member).
pub fn placements(
    g: &Graph,
    schedule: &Schedule,
    kernels: &[Option<Kernel>],
    first_of: &[Option<usize>],
) -> Vec<Option<(usize, usize)>> {
    let mut placed: Vec<Option<(usize, usize)>> = vec![None; g.nodes.len()];
    for launch in &schedule.launches {
        let grouped = launch
            .members
            .first()
            .is_some_and(|m| first_of[m.node.index()].is_some());
        for m in &launch.members {
            let node = &g.nodes[m.node];
            let kernel = m.work == Work::Kernel && kernels[m.node.index()].is_some();
            // A contraction runs as GEMMs over blocks of rows, in its row group or alone
            // (`Native::run_contraction`, by `shard_plan`), whether it has a kernel or not.
            let gemm = matches!(m.work, Work::Gemm(_)) || contraction(g, node).is_some();
            placed[m.node.index()] = if grouped && (m.work == Work::Kernel || gemm) {
                Some((launch.rows, launch.shards))
            } else if !grouped && (kernel || gemm) {
                Some(shard_plan(g, m.node))
            } else {
                None
            };
        }
    }
    for (id, node) in g.nodes.iter_enumerated() {
        match (&node.kind, &node.outputs[..]) {
            (NodeKind::Random { .. }, [t]) => placed[id.index()] = random_rows(&t.shape),
            (
                NodeKind::Scan { .. } | NodeKind::ReduceByIndex { .. } | NodeKind::Scatter { .. },
                _,
            ) => placed[id.index()] = super::prims_ranks::prim_placement(g, node),
            _ => {}
        }
    }
    placed
}

/// The rows of node `id`'s outputs that each rank computes, as `(rows per block, blocks)` of
/// their first axis (rank `q` computes the blocks [`shards_of`]`(q, ranks, blocks)`), or
/// `None` when every rank computes them whole: for most nodes its placement (`placed`, from
/// [`placements`]: its index space's rows are its outputs' rows); for a histogram or scatter
/// placed by blocks — whose index space is the pairs it reads, not its result — the rows of
/// a map over its result's shape ([`space_shards`]: fixed by the shape and the rank count,
/// and the rows an elementwise reader of the result computes, so that reader moves nothing).
/// Its ranks send each rank the partial bins or winners of that rank's rows
/// (`prims_ranks::histogram_on_ranks`, `scatter_on_ranks`).
pub fn output_rows(
    g: &Graph,
    id: NodeId,
    placed: &[Option<(usize, usize)>],
) -> Option<(usize, usize)> {
    let here = placed.get(id.index()).copied().flatten();
    let node = &g.nodes[id];
    match node.kind {
        NodeKind::ReduceByIndex { .. } | NodeKind::Scatter { .. } => {
            let shape = &node.outputs.first()?.shape;
            let rows = here.and(shape.first().copied())?;
            if rows == 0 {
                return Some((1, 0));
            }
            Some(space_shards(shape, 1))
        }
        _ => here,
    }
}

/// How a random fill of `shape` is placed by rows: its launch runs in blocks of
/// [`shard_elements`] elements, which are whole rows when a block holds a whole number of
/// rows (a fill of one dimension: its elements are its rows) — `(rows per block, blocks)`,
/// the launch's own shards — and `None` otherwise (a scalar, or rows that straddle blocks:
/// the fill goes whole to every rank).
pub fn random_rows(shape: &[usize]) -> Option<(usize, usize)> {
    let (&len, rest) = shape.split_first()?;
    let width: usize = rest.iter().product();
    let block = shard_elements();
    if width == 0 || !block.is_multiple_of(width) {
        return None;
    }
    let rows = block / width;
    Some((rows, len.div_ceil(rows)))
}

/// The halo plan: for every port some rank need not hold in full after its launch, which
/// rows each of the `ranks` ranks needs ([`Need`]); a port not in the map goes to every rank
/// whole. A rank needs the rows its shards of every reader read: for a kernel reader placed
/// by `placed` ([`placements`]), the union over its reads of the port ([`RowSet`]) of the
/// hull of each read's first coordinate over the box of each of the rank's shards (free dimension 0 in the shard's rows,
/// every other free and reduced dimension whole), clamped to the tensor — a contraction's
/// GEMM block thus reads its rows of `x[i, k]` and every row of `w[k, j]` or of a
/// transposed `x[k, i]`; a scatter placed by blocks needs its destination's rows of its
/// own result's rows ([`output_rows`]: it writes the winners it receives into them). A
/// gather's table (read at indices known only when it runs), the destination of a scatter
/// not placed, a reader not placed (it runs whole on every rank: a scan,
/// histogram or scatter not placed by blocks, a node on the interpreter, a concatenation or slice), a scalar port, a graph output whose producer
/// is not placed (a node every rank runs whole) and a random fill not placed by rows (its
/// blocks of elements are not whole rows) are needed whole by every rank. The result of a
/// histogram or scatter placed by blocks is on the ranks by its [`output_rows`], like a
/// kernel's output: its readers get the rows they read. A stencil's
/// output is then needed by a rank for its own rows and its neighbours' halo; a row-local chain's, for its own rows
/// only (nothing moves). A graph output of a placed producer is needed only as its readers
/// in the graph need it (it stays on the ranks; rank 0 fetches it when it observes it), and
/// an input or output nobody reads by no rank (an empty need each).
pub fn rows_needed(
    g: &Graph,
    placed: &[Option<(usize, usize)>],
    ranks: usize,
) -> HashMap<Port, Need> {
    let ranks = ranks.max(1);
    let mut needs: HashMap<Port, Need> = HashMap::new();
    // Graph outputs the ranks hold as they computed them: of a placed producer, with rows.
    let by_rows = |p: &Port| {
        let node = &g.nodes[p.node];
        matches!(node.kind, NodeKind::Input { .. })
            || (output_rows(g, p.node, placed).is_some()
                && !node.outputs[p.port as usize].shape.is_empty())
    };
    let mut whole: HashSet<Port> = g.outputs.iter().copied().filter(|p| !by_rows(p)).collect();
    // A histogram or scatter not placed by blocks runs whole on every rank, and a scatter's
    // destination is then read whole. One placed by blocks leaves its result by rows.
    for (id, node) in g.nodes.iter_enumerated() {
        if !matches!(
            node.kind,
            NodeKind::ReduceByIndex { .. } | NodeKind::Scatter { .. }
        ) || placed[id.index()].is_some()
        {
            continue;
        }
        whole.extend((0..node.outputs.len()).map(|k| Port {
            node: id,
            port: k as u32,
        }));
        if let NodeKind::Scatter { dest, .. } = &node.kind {
            whole.insert(*dest);
        }
    }
    // A random fill whose blocks of elements are not whole rows is not placed by rows.
    for (id, node) in g.nodes.iter_enumerated() {
        if matches!(node.kind, NodeKind::Random { .. }) && placed[id.index()].is_none() {
            whole.insert(Port { node: id, port: 0 });
        }
    }
    for (id, node) in g.nodes.iter_enumerated() {
        let placed_reader = match (&node.kind, placed[id.index()]) {
            (NodeKind::Map { space, .. }, Some(p)) => Some((space, &[][..], p)),
            (NodeKind::Reduce { space, red, .. }, Some(p)) => Some((space, &red[..], p)),
            // A scan, histogram or scatter placed by blocks (`prims_ranks::prim_placement`)
            // reads, in its block, the rows of its plain reads its own rows read.
            (
                NodeKind::Scan { space, .. }
                | NodeKind::ReduceByIndex { space, .. }
                | NodeKind::Scatter { space, .. },
                Some(p),
            ) => Some((space, &[][..], p)),
            _ => None,
        };
        let tables: HashSet<u32> = match node.kind.reads_and_exprs() {
            Some((_, exprs)) => {
                let mut t = HashSet::new();
                for e in exprs {
                    e.visit(&mut |x| {
                        if let ScalarExpr::Gather(k, _) = x {
                            t.insert(*k);
                        }
                    });
                }
                t
            }
            None => HashSet::new(),
        };
        let reads: &[Read] = node.kind.reads_and_exprs().map_or(&[], |(r, _)| r);
        // A scatter placed by blocks writes its winners into its rows of a copy of the
        // destination: it needs those rows of it.
        let dest_rows = match &node.kind {
            NodeKind::Scatter { dest, .. } => {
                output_rows(g, id, placed).map(|(rows, blocks)| (*dest, rows, blocks))
            }
            _ => None,
        };
        for p in node.inputs() {
            if whole.contains(&p) {
                continue;
            }
            let extent0 = g.nodes[p.node].outputs[p.port as usize]
                .shape
                .first()
                .copied();
            let (Some((space, red, (rows, shards))), Some(extent0)) = (placed_reader, extent0)
            else {
                whole.insert(p);
                continue;
            };
            let mut read_rows = vec![RowSet::default(); ranks];
            let mut by_rows = true;
            for (k, r) in reads.iter().enumerate() {
                if r.src() != p {
                    continue;
                }
                if tables.contains(&(k as u32)) || r.proj.is_empty() {
                    by_rows = false;
                    break;
                }
                for (q, need) in read_rows.iter_mut().enumerate() {
                    let s = shards_of(q, ranks, shards);
                    // A scalar space is one row, run by the rank of shard 0.
                    let len = space.first().copied().unwrap_or(1);
                    let block = (s.start * rows).min(len)..(s.end * rows).min(len);
                    if let Some(got) = rows_read(&r.proj[0], space, red, block, extent0) {
                        need.insert(got);
                    }
                }
            }
            if !by_rows {
                whole.insert(p);
                continue;
            }
            if let Some((_, rows, blocks)) = dest_rows.filter(|d| d.0 == p) {
                for (q, need) in read_rows.iter_mut().enumerate() {
                    let s = shards_of(q, ranks, blocks);
                    need.insert((s.start * rows).min(extent0)..(s.end * rows).min(extent0));
                }
            }
            let need = needs
                .entry(p)
                .or_insert_with(|| vec![RowSet::default(); ranks]);
            for (n, got) in need.iter_mut().zip(read_rows) {
                for r in got.0 {
                    n.insert(r);
                }
            }
        }
    }
    // What no rank reads, no rank needs: an input nobody reads, a graph output no later
    // kernel reads.
    let inputs = g.nodes.iter_enumerated().filter_map(|(id, n)| {
        matches!(n.kind, NodeKind::Input { .. }).then_some(Port { node: id, port: 0 })
    });
    for p in g.outputs.iter().copied().chain(inputs) {
        if !whole.contains(&p) {
            needs
                .entry(p)
                .or_insert_with(|| vec![RowSet::default(); ranks]);
        }
    }
    needs.retain(|p, _| !whole.contains(p));
    needs
}

/// The rows of a tensor of `extent0` rows that the coordinate `a` (the first of a read's
/// projection) reaches over the box of free indices `space` with free index 0 in `block`
/// (for an empty `space`, `block` is `0..1` or empty: whether the rank runs the one point)
/// and reduced indices `red` (variables `space.len()..`), clamped to the tensor (a padded
/// read outside it reads no row; a clamped one reads the first or last, which the clamped
/// hull includes); `None` when the box is empty.
pub fn rows_read(
    a: &Affine,
    space: &[usize],
    red: &[usize],
    block: Range<usize>,
    extent0: usize,
) -> Option<Range<usize>> {
    if block.is_empty() || extent0 == 0 || space.iter().chain(red).any(|&n| n == 0) {
        return None;
    }
    // The extent of each variable (none is 0: the box is not empty).
    let extent = |v: usize| -> Option<usize> {
        if v < space.len() {
            Some(space[v])
        } else {
            red.get(v - space.len()).copied()
        }
    };
    // One coefficient per variable (a variable may be written twice), so the hull is exact.
    let mut coeffs: Vec<(u32, i64)> = Vec::new();
    for &(v, c) in &a.coeffs {
        match coeffs.iter_mut().find(|(w, _)| *w == v) {
            Some((_, d)) => *d += c,
            None => coeffs.push((v, c)),
        }
    }
    let (mut lo, mut hi) = (a.konst, a.konst);
    for (v, c) in coeffs {
        let (vlo, vhi) = match (v, extent(v as usize)) {
            (0, _) if !space.is_empty() => (block.start, block.end - 1),
            (_, Some(n)) => (0, n - 1),
            // Not a variable of the box (an invalid graph): every row, to be safe.
            (_, None) => return Some(0..extent0),
        };
        let (vlo, vhi) = (vlo as i64, vhi as i64);
        let (x, y) = (c * vlo, c * vhi);
        lo += x.min(y);
        hi += x.max(y);
    }
    let last = extent0 as i64 - 1;
    let (lo, hi) = (lo.clamp(0, last), hi.clamp(0, last));
    Some(lo as usize..hi as usize + 1)
}

/// Which rows of graph output `p` each of `ranks` ranks holds after its dispatch, by the
/// plan: `placed` ([`placements`]; the rows are the producer's [`output_rows`]) and the
/// port's entry of [`rows_needed`] (`need`; `None` when the port went whole to every rank).
pub fn held(
    g: &Graph,
    p: Port,
    placed: &[Option<(usize, usize)>],
    need: Option<&Need>,
    ranks: usize,
) -> Held {
    let node = &g.nodes[p.node];
    if let NodeKind::Input { index } = node.kind {
        return Held::Input(index as usize);
    }
    let (Some(need), Some((rows, shards)), Some(&extent0)) = (
        need,
        output_rows(g, p.node, placed),
        node.outputs[p.port as usize].shape.first(),
    ) else {
        return Held::Whole;
    };
    let own: Vec<Range<usize>> = (0..ranks)
        .map(|q| {
            let s = shards_of(q, ranks, shards);
            (s.start * rows).min(extent0)..(s.end * rows).min(extent0)
        })
        .collect();
    debug_assert!(own.last().is_some_and(|r| r.end == extent0 || r.is_empty()));
    let have = own.iter().zip(need).map(|(o, n)| n.joined_to(o)).collect();
    Held::Rows { own, have }
}

/// The union of two ranges when it is one range.
pub fn joined(a: &Range<usize>, b: &Range<usize>) -> Option<Range<usize>> {
    if a.is_empty() || b.is_empty() || (a.start <= b.end && b.start <= a.end) {
        Some(hull(a, b))
    } else {
        None
    }
}

/// The smallest range holding both (an empty range holds nothing).
fn hull(a: &Range<usize>, b: &Range<usize>) -> Range<usize> {
    if a.is_empty() {
        b.clone()
    } else if b.is_empty() {
        a.clone()
    } else {
        a.start.min(b.start)..a.end.max(b.end)
    }
}

/// The rows of `have` that are in `want`.
pub fn overlap(have: &Range<usize>, want: &Range<usize>) -> Range<usize> {
    let r = have.start.max(want.start)..have.end.min(want.end);
    if r.is_empty() {
        0..0
    } else {
        r
    }
}

impl super::Native {
    /// Runs this rank's block of a launch's shards, then agrees with the other ranks on the
    /// outcome and exchanges rows (see the module documentation).
    pub(super) fn spread_launch(
        &self,
        s: &dyn Spread,
        l: &Launch,
        task: &TaskFn<'_>,
    ) -> Result<(), TaskError> {
        let mine = shards_of(s.rank(), s.ranks(), l.shards);
        let local = self
            .workers
            .run(mine.len(), &|j, attempt| task(mine.start + j, attempt))
            .map_err(|mut e| {
                e.task += mine.start;
                e
            });
        let rows = LaunchRows {
            name: &l.name,
            shards: l.shards,
            rows: l.rows,
            extent0: l.extent0,
            outputs: &l.outputs,
            needs: &l.need,
        };
        match s.finish_launch(&rows, local) {
            Outcome::Done => Ok(()),
            Outcome::Failed(e) => Err(e),
            // A shard's outcome depends only on its number and attempts (kernel error codes
            // and injected faults alike), so running it here gives the error one process
            // reports, with the op named as it would be.
            Outcome::FailedElsewhere { shard, rank } => {
                let again = self
                    .workers
                    .run(1, &|_, attempt| task(shard, attempt))
                    .map_err(|mut e| {
                        e.task = shard;
                        e
                    });
                Err(again.err().unwrap_or(TaskError {
                    task: shard,
                    kind: TaskErrorKind::Message(format!(
                        "failed on rank {rank}, but not when run again on rank 0"
                    )),
                    attempts: 1,
                }))
            }
        }
    }
}

#[cfg(test)]
#[path = "spread_tests.rs"]
mod tests;
