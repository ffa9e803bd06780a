//! Scan, histogram and scatter nodes on MPI ranks (docs/distributed.md, "Scans,
//! histograms and scatters by blocks"): which are placed by their routine's blocks
//! ([`prim_placement`]), a rank's blocks of a scan ([`scan_on_ranks`]), of a histogram
//! ([`histogram_on_ranks`]) and of a scatter ([`scatter_on_ranks`]), and the outcome the
//! ranks agree on ([`agree`]). A histogram's or scatter's result is left on the ranks by
//! rows (`spread::output_rows`): each rank sends each other rank only what falls in that
//! rank's rows (an all-to-all). `prims.rs` calls them from `Native::run_prim`.

use flow_runtime::pool::{Pool, TaskError, TaskErrorKind};
use flow_runtime::prims::histogram::{combine_shards, shard_partials, shard_rows};
use flow_runtime::prims::scan::{carries_of, part_totals, scan_elements, scan_part, ScanKind};
use flow_runtime::prims::scatter::scatter_rows;
use flow_runtime::prims::source::Pairs as ScatterPairs;
use flow_runtime::prims::source::{Elements as Source, Pairs};
use flow_runtime::prims::{Index, BLOCK, SCAN_BLOCK};
use flow_runtime::{DType, Data};

use std::rc::Rc;

use flow_runtime::Tensor;

use super::prims::{first_out_of_range, routine_monoid, Failure};
use super::producer::{plain_tensors, Elems};
use super::spread::{self, shards_of, Held, LaunchRows, Outcome, Spread};
use super::{data_ptr_mut, describe, Native, NativeError};
use crate::mir::ir::{Graph, Node, NodeKind, Read, ScalarExpr};
use crate::mir::Idx;

/// How a scan, histogram or scatter node is placed on MPI ranks: `(rows per block, blocks)`
/// of its index space's first axis, or `None` (it runs whole on every rank, its inputs sent
/// whole). A node whose monoid the scalar routines take, whose elements are plain reads or
/// computed by a fused producer (a rank computes the elements of its blocks,
/// `Native::rank_elements`; its blocks read the rows of its inputs that its rows read). A
/// 1-D scan: the runtime's blocks of `SCAN_BLOCK` elements (totals exchanged, carries on
/// every rank: [`scan_on_ranks`]); a scan of more axes: groups of whole rows of its first
/// axis, each scanned alone (its rows are independent) — with a producer, only a scan whose
/// rows a producer computes (`producer::scan_producible`); a histogram: its shards of
/// `shard_rows(bins)` rows ([`histogram_on_ranks`]). All fixed by the shapes, as on threads.
pub(super) fn prim_placement(g: &Graph, node: &Node) -> Option<(usize, usize)> {
    let (reads, exprs) = node.kind.reads_and_exprs()?;
    let space = node.kind.index_space()?;
    let (&n0, rest) = space.split_first()?;
    let inner: usize = rest.iter().product();
    if n0 == 0 || inner == 0 {
        return None;
    }
    let exprs: Vec<ScalarExpr> = exprs.into_iter().cloned().collect();
    let plain = super::producer::plain_in_graph(g, &space, reads, &exprs);
    let dtype = |k: usize| {
        super::producer::expr_dtypes(g, space.len(), reads, &exprs)
            .get(k)
            .copied()
            .flatten()
    };
    let rows = match &node.kind {
        NodeKind::Scan { monoid, .. } => {
            routine_monoid(g, *monoid)?;
            if !plain && !super::producer::scan_producible(&space) {
                return None;
            }
            if space.len() == 1 {
                SCAN_BLOCK
            } else {
                (SCAN_BLOCK / inner).max(1)
            }
        }
        NodeKind::ReduceByIndex { monoid, bins, .. } => {
            routine_monoid(g, *monoid)?;
            if *bins == 0 || !matches!(dtype(0)?, DType::I64 | DType::I32) {
                return None;
            }
            shard_rows(*bins)
        }
        NodeKind::Scatter { dest, .. } => {
            let d = g.nodes[dest.node].outputs[dest.port as usize].dtype;
            if !matches!(dtype(0)?, DType::I64 | DType::I32) || dtype(1)? != d {
                return None;
            }
            // Blocks of whole rows of about `BLOCK` pairs, as the routine's tasks.
            (BLOCK / inner).max(1)
        }
        _ => return None,
    };
    Some((rows, n0.div_ceil(rows)))
}

/// The bytes of a vector of plain elements (numbers, `bool`).
fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: `T` is a number or `bool`: no padding, every byte initialised.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// The elements whose bytes `b` are (`b` from [`bytes_of`] of the same type on another rank).
fn elements_of<T: Copy>(b: &[u8]) -> Vec<T> {
    let n = std::mem::size_of::<T>();
    b.chunks_exact(n)
        // SAFETY: `n` bytes of a valid `T`, read unaligned.
        .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr() as *const T) })
        .collect()
}

/// This rank's blocks of a scan placed by `(rows, shards)` ([`prim_placement`]): a 1-D scan's
/// blocks' totals go to every rank (an all-gather of one element per block), every rank
/// computes every block's carry alike, and scans its blocks seeded with theirs; a scan of
/// more axes scans its rows. The bits of the one-process routine; only this rank's rows of
/// `y` are written.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_on_ranks<M: flow_runtime::prims::Monoid>(
    s: &dyn Spread,
    pool: &Pool,
    m: &M,
    kind: ScanKind,
    space: &[usize],
    (rows, shards): (usize, usize),
    x: &[M::T],
    y: &mut [M::T],
) -> Result<(), Failure> {
    let mine = shards_of(s.rank(), s.ranks(), shards);
    let offset = |mut e: TaskError| {
        e.task += mine.start;
        Failure::Task(e)
    };
    if space.len() > 1 {
        let row_len = space.last().copied().unwrap_or(1);
        let per = x.len() / space[0];
        let span = (mine.start * rows).min(space[0]) * per..(mine.end * rows).min(space[0]) * per;
        return scan_elements(
            pool,
            m,
            kind,
            row_len,
            Source::Slice(&x[span.clone()]),
            &mut y[span],
        )
        .map_err(offset);
    }
    // The totals of this rank's blocks (a row's last block has none).
    let local = part_totals(pool, m, x, mine.clone());
    let sent: Vec<M::T> = match &local {
        Ok(t) => t.iter().flatten().copied().collect(),
        Err(_) => Vec::new(),
    };
    let got = s.all_gather("a scan's block totals", bytes_of(&sent));
    local.map_err(offset)?;
    let mut totals: Vec<Option<M::T>> = Vec::with_capacity(shards);
    for (q, b) in got.iter().enumerate() {
        let theirs = shards_of(q, s.ranks(), shards);
        let want = theirs.clone().filter(|&k| k + 1 < shards).count();
        let t: Vec<M::T> = elements_of(b);
        if t.len() != want {
            // That rank failed; it says how (`agree`).
            return Err(Failure::Elsewhere);
        }
        let mut t = t.into_iter();
        totals.extend(theirs.map(|k| if k + 1 < shards { t.next() } else { None }));
    }
    let carries = carries_of(m, &totals);
    scan_part(pool, m, kind, x, y, mine.clone(), &carries[mine.clone()]).map_err(offset)
}

/// The elements `rows_of(q)` of a result of `n_rows` rows of `lanes` elements left on the
/// ranks by `(rows per block, blocks)` (`spread::output_rows`): rank `q`'s rows' elements.
fn owned(
    ranks: usize,
    (rows, blocks): (usize, usize),
    n_rows: usize,
    lanes: usize,
) -> impl Fn(usize) -> std::ops::Range<usize> {
    move |q| {
        let b = shards_of(q, ranks, blocks);
        (b.start * rows).min(n_rows) * lanes..(b.end * rows).min(n_rows) * lanes
    }
}

/// This rank's shards of a histogram of `shards` shards ([`prim_placement`]) into its rows
/// of `bins` (`out_rows`: the bins' rows by rank, `spread::output_rows`; the other rows are
/// left as they are): the shards' private bins, of which each rank receives every rank's
/// partials of its own rows (an all-to-all: each partial bin goes to one rank), then
/// combined in the fixed tree of the one-process routine (shards in order: non-commutative
/// monoids keep index order; the tree works bin by bin, so a rank's rows get the bits of
/// one process). An index out of range is [`Failure::OutOfRange`] (found by the caller).
/// `(s, lanes, n_bins, shards)`: the ranks, the lanes of a row, the bins, the shards.
pub(super) fn histogram_on_ranks<M: flow_runtime::prims::Monoid, I: Index>(
    (s, lanes, n_bins, shards): (&dyn Spread, usize, usize, usize),
    out_rows: (usize, usize),
    pool: &Pool,
    m: &M,
    (idx, vals): (&[I], &[M::T]),
    bins: &mut [M::T],
) -> Result<(), Failure> {
    let ranks = s.ranks();
    let mine = shards_of(s.rank(), ranks, shards);
    let slots = n_bins * lanes;
    let mut part = vec![m.identity(); mine.len() * slots];
    let mut ignored = vec![0usize; mine.len()];
    let pairs = Pairs::Slices(idx, vals);
    let local = shard_partials(
        pool,
        m,
        lanes,
        &pairs,
        n_bins,
        mine.clone(),
        &mut part,
        &mut ignored,
    );
    let owned = owned(ranks, out_rows, n_bins, lanes);
    // To each rank, this rank's shards' partials of its rows, shard after shard.
    let to: Vec<Vec<u8>> = (0..ranks)
        .map(|q| {
            let r = owned(q);
            let mut b = Vec::new();
            if local.is_ok() {
                for k in 0..mine.len() {
                    b.extend_from_slice(bytes_of(&part[k * slots + r.start..k * slots + r.end]));
                }
            }
            b
        })
        .collect();
    drop(part);
    let got = s.all_to_all("a histogram's partial bins", to);
    local.map_err(|mut e| {
        e.task += mine.start;
        Failure::Task(e)
    })?;
    if ignored.iter().any(|&n| n > 0) {
        return Err(Failure::OutOfRange(-1, 0));
    }
    let my = owned(s.rank());
    let mut partials: Vec<M::T> = Vec::with_capacity(shards * my.len());
    for (q, b) in got.iter().enumerate() {
        let t: Vec<M::T> = elements_of(b);
        if t.len() != shards_of(q, ranks, shards).len() * my.len() {
            return Err(Failure::Elsewhere);
        }
        partials.extend(t);
    }
    combine_shards(pool, m, &partials, shards, &mut bins[my]).map_err(Failure::Task)
}

/// This rank's blocks of a scatter placed by `(rows, shards)` ([`prim_placement`]) into its
/// rows of `out` (a copy of the destination, valid in those rows, `lanes` slots a row;
/// `out_rows`: its rows by rank, `spread::output_rows`): the rank finds, among the pairs of
/// its blocks (a contiguous span of source positions), the winner of each destination slot
/// its pairs write (the last in index order: the runtime's routine on the positions), and
/// sends the (slot, value) of each such winner to the rank that owns the slot's row (an
/// all-to-all of at most one record per pair of its blocks and per slot of the
/// destination, whichever is fewer; a slot takes 4 bytes below 2^32 slots, so a record is
/// never larger than the pair it stands for). Each rank then writes the winners it received
/// in rank order: ranks hold contiguous source blocks in order, so a slot written by
/// several ranks takes the value of the highest one, the last in index order, as on one
/// process; a slot nobody writes keeps the destination's value. An index out of range is
/// [`Failure::OutOfRange`] (found by the caller in this rank's pairs).
pub(super) fn scatter_on_ranks<T: Copy + Send + Sync, I: Index>(
    (s, lanes, (rows, shards), out_rows): (&dyn Spread, usize, (usize, usize), (usize, usize)),
    pool: &Pool,
    (idx, vals): (&[I], &[T]),
    out: &mut [T],
) -> Result<(), Failure> {
    let ranks = s.ranks();
    let mine = shards_of(s.rank(), ranks, shards);
    let n = idx.len().min(vals.len());
    let span =
        |m: &std::ops::Range<usize>| (m.start * rows * lanes).min(n)..(m.end * rows * lanes).min(n);
    let my = span(&mine);
    // winner[slot] = 1 + the position (in this rank's span) of its last pair, or 0.
    let mut winner = vec![0u64; out.len()];
    let positions: Vec<u64> = (1..=my.len() as u64).collect();
    let local = scatter_rows(
        pool,
        &mut winner,
        lanes,
        false,
        ScatterPairs::Slices(&idx[my.clone()], &positions),
    );
    // A slot is 4 bytes when the destination has fewer than 2^32 slots (every rank knows
    // it alike), else 8: a record is never larger than an `i32` index and its value.
    let wide = u32::try_from(out.len()).is_err();
    let slot_bytes = if wide { 8 } else { 4 };
    let rec = slot_bytes + std::mem::size_of::<T>();
    let owned = owned(ranks, out_rows, out.len() / lanes.max(1), lanes.max(1));
    let mut to: Vec<Vec<u8>> = vec![Vec::new(); ranks];
    if let Ok(0) = local {
        // The slots go up, and so do the ranks that own them.
        let mut q = 0;
        for (slot, &w) in winner.iter().enumerate() {
            if w > 0 {
                while q + 1 < ranks && slot >= owned(q).end {
                    q += 1;
                }
                to[q].extend(&(slot as u64).to_le_bytes()[..slot_bytes]);
                to[q].extend(bytes_of(std::slice::from_ref(
                    &vals[my.start + w as usize - 1],
                )));
            }
        }
    }
    drop(winner);
    let got = s.all_to_all("a scatter's winning pairs", to);
    match local {
        Err(mut e) => {
            e.task += mine.start;
            return Err(Failure::Task(e));
        }
        Ok(0) => {}
        Ok(_) => return Err(Failure::OutOfRange(-1, 0)),
    }
    let here = owned(s.rank());
    for b in &got {
        if b.len() % rec != 0 {
            return Err(Failure::Elsewhere);
        }
        for r in b.chunks_exact(rec) {
            let mut le = [0u8; 8];
            le[..slot_bytes].copy_from_slice(&r[..slot_bytes]);
            let slot = u64::from_le_bytes(le) as usize;
            let v: Vec<T> = elements_of(&r[slot_bytes..]);
            match (here.contains(&slot), out.get_mut(slot), v.first()) {
                (true, Some(o), Some(&v)) => *o = v,
                _ => return Err(Failure::Elsewhere),
            }
        }
    }
    Ok(())
}

/// The first index of `idx[span]` outside `0..n`, at its position in `idx`.
pub(super) fn first_out_of_range_in(idx: &Data, n: usize, span: std::ops::Range<usize>) -> Failure {
    let sub = match idx {
        Data::I64(x) => Data::I64(x[span.clone()].to_vec()),
        Data::I32(x) => Data::I32(x[span.clone()].to_vec()),
        _ => return Failure::Elsewhere,
    };
    match first_out_of_range(&sub, n) {
        Some((v, p)) => Failure::OutOfRange(v, span.start + p),
        None => Failure::Elsewhere,
    }
}

/// Every rank's outcome of a node run by blocks, agreed: each rank sends its own (a fault
/// of the combine, a failed task, an index out of range, or none), and every rank takes the
/// one one process would report — a fault of the combine first, then a failed task, then an
/// index out of range, each the lowest rank's (its blocks come first in index order).
pub(super) fn agree(
    s: &dyn Spread,
    op: &str,
    res: Result<Data, Failure>,
    fault: Option<String>,
) -> Result<Data, Failure> {
    let mut msg: Vec<u8> = Vec::new();
    match (&fault, &res) {
        (Some(x), _) => {
            msg.push(1);
            msg.extend(x.as_bytes());
        }
        (None, Err(Failure::Fault(x))) => {
            msg.push(1);
            msg.extend(x.as_bytes());
        }
        (None, Err(Failure::Task(e))) => {
            msg.push(2);
            msg.extend((e.task as u64).to_le_bytes());
            msg.extend(e.attempts.to_le_bytes());
            msg.extend(e.kind.to_string().as_bytes());
        }
        (None, Err(Failure::OutOfRange(v, p))) => {
            msg.push(3);
            msg.extend(v.to_le_bytes());
            msg.extend((*p as u64).to_le_bytes());
        }
        (None, Err(Failure::Elsewhere)) => msg.push(4),
        (None, Ok(_)) => msg.push(0),
    }
    let all = s.all_gather(&format!("the outcome of {op}"), &msg);
    let first = |code: u8| all.iter().find(|m| m.first() == Some(&code));
    let u64_at =
        |m: &[u8], at: usize| u64::from_le_bytes(m[at..at + 8].try_into().expect("8 bytes"));
    if let Some(m) = first(1) {
        return Err(Failure::Fault(
            String::from_utf8_lossy(&m[1..]).into_owned(),
        ));
    }
    if let Some(m) = first(2).filter(|m| m.len() >= 13) {
        return Err(Failure::Task(TaskError {
            task: u64_at(m, 1) as usize,
            attempts: u32::from_le_bytes(m[9..13].try_into().expect("4 bytes")),
            kind: TaskErrorKind::Message(String::from_utf8_lossy(&m[13..]).into_owned()),
        }));
    }
    if let Some(m) = first(3).filter(|m| m.len() >= 17) {
        return Err(Failure::OutOfRange(
            u64_at(m, 1) as i64,
            u64_at(m, 9) as usize,
        ));
    }
    if first(4).is_some() {
        return Err(Failure::Elsewhere);
    }
    res
}

/// What [`Native::rank_elements`] gives: the elements, whether they are computed (not
/// plain reads: an error's wording then needs the interpreter, [`Native::whole_reads`]), and
/// the error of this rank's lowest failing block of them.
pub(super) struct RankElements {
    pub(super) elems: Elems,
    pub(super) computed: bool,
    pub(super) failed: Option<TaskError>,
}

impl Native {
    /// On MPI ranks, the elements of a scan, histogram or scatter node placed by blocks
    /// `(rows, shards)` ([`prim_placement`]): plain reads' tensors; or, with a fused
    /// producer, this rank's blocks of them, computed by the producer into vectors of all
    /// the elements (the routine reads only this rank's blocks, whose input rows the halo
    /// plan gave this rank); or, where no producer serves (an executable's table without
    /// its kernel), all of them, computed from whole inputs ([`Native::whole_reads`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rank_elements(
        &mut self,
        s: &dyn Spread,
        g: &Graph,
        node: &Node,
        (space, reads, exprs): (&[usize], &[Read], &[ScalarExpr]),
        values: &[Vec<Rc<Tensor>>],
        scan: bool,
        (rows, shards): (usize, usize),
    ) -> Result<RankElements, NativeError> {
        if let Some(ts) = plain_tensors(space, reads, exprs, values) {
            return Ok(RankElements {
                elems: Elems::Tensors(ts),
                computed: false,
                failed: None,
            });
        }
        let (elems, failed) = match self.producer(g, space, reads, exprs, values, scan)? {
            Some(p) => {
                let mine = shards_of(s.rank(), s.ranks(), shards);
                let n0 = space.first().copied().unwrap_or(1);
                let row: usize = space.iter().skip(1).product();
                let span = (mine.start * rows).min(n0) * row..(mine.end * rows).min(n0) * row;
                let (datas, res) = p.span(&self.workers, span, rows * row)?;
                let ts = datas
                    .into_iter()
                    .map(|data| {
                        Rc::new(Tensor {
                            shape: space.to_vec(),
                            data,
                        })
                    })
                    .collect();
                (Elems::Tensors(ts), res.err())
            }
            None => {
                let whole = self.whole_reads(s, g, node, values)?;
                let ts = self.element_tensors(g, space, reads, exprs, &whole)?;
                (Elems::Tensors(ts), None)
            }
        };
        Ok(RankElements {
            elems,
            computed: true,
            failed,
        })
    }

    /// On MPI ranks, every rank alike: `values` with every tensor `node` reads made whole
    /// on this rank — a dispatch's input by [`Spread::whole_input`], the output of a node
    /// placed by rows by an exchange of every rank's rows into a copy — so the interpreter
    /// can run the node as one process does (to word an error, or where no producer serves).
    pub(super) fn whole_reads(
        &mut self,
        s: &dyn Spread,
        g: &Graph,
        node: &Node,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Vec<Rc<Tensor>>>, NativeError> {
        let mut whole = values.to_vec();
        let mut seen = std::collections::HashSet::new();
        for p in node.inputs() {
            if !seen.insert(p) {
                continue;
            }
            let src = &g.nodes[p.node];
            let t = &values[p.node.index()][p.port as usize];
            if let NodeKind::Input { index } = src.kind {
                whole[p.node.index()][p.port as usize] = s.whole_input(index as usize);
                continue;
            }
            let need = Some(vec![spread::RowSet::default(); s.ranks()]);
            let (Held::Rows { .. }, Some((rows, shards)), Some(&extent0)) = (
                spread::held(g, p, &self.placed, need.as_ref(), s.ranks()),
                // The rows each rank computed (a histogram's or scatter's by its result).
                spread::output_rows(g, p.node, &self.placed),
                t.shape.first(),
            ) else {
                // Computed whole on every rank.
                continue;
            };
            let mut copy = (**t).clone();
            let row_bytes = t.len() / extent0.max(1) * t.dtype().size_bytes();
            let name = describe(p.node, src);
            let l = LaunchRows {
                name: &name,
                shards,
                rows,
                extent0,
                outputs: &[(data_ptr_mut(&mut copy.data), row_bytes, copy.dtype())],
                needs: &[None],
            };
            if !matches!(s.finish_launch(&l, Ok(())), Outcome::Done) {
                return Err(NativeError::CompilerBug {
                    what: "the native backend on ranks".into(),
                    finding: format!("{name}: the ranks disagree"),
                });
            }
            whole[p.node.index()][p.port as usize] = Rc::new(copy);
        }
        Ok(whole)
    }
}
