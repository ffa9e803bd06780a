//! Spreading a dispatch over several processes (MPI ranks): the [`Spread`] trait the native
//! executor calls, and the placement of a launch's shards on ranks.
//!
//! Every rank runs the same graph on the same inputs, launch after launch, in the order of
//! the schedule; of each launch, a rank runs only its block of shard numbers
//! ([`shards_of`]: contiguous, in shard order, fixed by the shard count and the rank count).
//! After a launch the ranks agree on its outcome — the error of the lowest-numbered failing
//! shard, as one process would report it — and exchange the rows each computed, so every
//! rank holds every output before the next launch reads it. Shard boundaries, the order of
//! the rows of a reduction's partial results and the combine tree are the schedule's, not
//! the placement's: the result is bitwise that of one process.
//!
//! The implementation over MPI is `crate::dist` (the `mpi` cargo feature); this module is
//! pure Rust so the executor has no MPI dependency.

use std::collections::HashSet;
use std::ops::Range;
use std::rc::Rc;

use flow_runtime::pool::TaskError;
use flow_runtime::{DType, Tensor};

use super::{Kernel, NativeError};
use crate::mir::contract::contraction;
use crate::mir::ir::{Affine, Graph, NodeKind, Port};
use crate::mir::schedule::{shard_plan, Schedule, Work, SHARD_ELEMENTS};
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
    /// Each output that other ranks need: its buffer, the bytes of one row, its type.
    pub outputs: &'a [(*mut u8, usize, DType)],
}

/// How a failed launch ended on the ranks: every rank learns the lowest failing shard.
pub enum Outcome {
    /// Every shard of every rank succeeded, and every rank has every row.
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
    /// other ranks, which evaluate it alongside.
    fn send_dispatch(&self, g: &Graph, inputs: &[Rc<Tensor>]) -> Result<(), NativeError>;

    /// After this rank ran its shards of a launch (`local`: the error of its lowest failing
    /// shard, numbered in the whole launch): agrees with the other ranks on the outcome and,
    /// when every shard succeeded, gives every rank every row.
    fn finish_launch(&self, rows: &LaunchRows<'_>, local: Result<(), TaskError>) -> Outcome;

    /// On every rank, after an evaluation succeeded: its inputs and outputs are now held by
    /// every rank (a later dispatch may name them instead of sending them).
    fn dispatched(&self, inputs: &[Rc<Tensor>], outputs: &[Rc<Tensor>]);
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

/// The ports whose rows need not leave the rank that computed them: every reader is a
/// kernel launch placed like the writer (same rows per shard, same shard count) that reads
/// row `i` of it only at its own row `i` (the projection of the outermost dimension is the
/// first free index), and the port is not an output of the graph. A random fill of one
/// dimension is placed like a kernel whose rows are its elements. Every other port (read by
/// a GEMM, a node on the interpreter, a concatenation or slice, a random fill of more
/// dimensions, a graph output) is exchanged in full after its launch.
///
/// `kernels` and `first_of` are the executor's (`Native::kernels_of`): which nodes run as
/// kernels, and which launches run as row groups (the others run member by member).
pub fn local_ports(
    g: &Graph,
    schedule: &Schedule,
    kernels: &[Option<Kernel>],
    first_of: &[Option<usize>],
) -> HashSet<Port> {
    // How each kernel node's rows are placed: (rows per shard, shards).
    let mut placed: Vec<Option<(usize, usize)>> = vec![None; g.nodes.len()];
    for launch in &schedule.launches {
        let grouped = launch
            .members
            .first()
            .is_some_and(|m| first_of[m.node.index()].is_some());
        for m in &launch.members {
            let node = &g.nodes[m.node];
            let kernel = m.work == Work::Kernel && kernels[m.node.index()].is_some();
            placed[m.node.index()] = if grouped && m.work == Work::Kernel {
                Some((launch.rows, launch.shards))
            } else if !grouped && kernel && contraction(g, node).is_none() {
                Some(shard_plan(g, m.node))
            } else {
                None
            };
        }
    }
    for (id, node) in g.nodes.iter_enumerated() {
        if let (NodeKind::Random { .. }, [t]) = (&node.kind, &node.outputs[..]) {
            if let [len] = t.shape[..] {
                placed[id.index()] = Some((SHARD_ELEMENTS, len.div_ceil(SHARD_ELEMENTS)));
            }
        }
    }
    let first_index = Affine {
        konst: 0,
        coeffs: vec![(0, 1)],
    };
    let mut local: HashSet<Port> = HashSet::new();
    let mut shared: HashSet<Port> = g.outputs.iter().copied().collect();
    for (id, node) in g.nodes.iter_enumerated() {
        let reads = match &node.kind {
            NodeKind::Map { reads, space, .. } | NodeKind::Reduce { reads, space, .. }
                if !space.is_empty() =>
            {
                Some(reads)
            }
            _ => None,
        };
        let row_local = |p: Port| {
            let (Some(r), Some(here), Some(there)) =
                (reads, placed[id.index()], placed[p.node.index()])
            else {
                return false;
            };
            here == there
                && r.iter()
                    .filter(|r| r.src() == p)
                    .all(|r| r.proj.first() == Some(&first_index))
        };
        for p in node.inputs() {
            if row_local(p) {
                local.insert(p);
            } else {
                shared.insert(p);
            }
        }
    }
    local.retain(|p| !shared.contains(p));
    local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_blocks_cover_every_shard_once_in_order() {
        for shards in 0..40 {
            for ranks in 1..9 {
                let mut next = 0;
                for r in 0..ranks {
                    let s = shards_of(r, ranks, shards);
                    assert_eq!(s.start, next, "{shards} shards on {ranks} ranks");
                    next = s.end;
                }
                assert_eq!(next, shards);
            }
        }
        assert_eq!(shards_of(0, 4, 10), 0..3);
        assert_eq!(shards_of(3, 4, 10), 8..10);
    }

    #[test]
    fn rows_stop_at_the_extent() {
        let l = LaunchRows {
            name: "x",
            shards: 3,
            rows: 4,
            extent0: 10,
            outputs: &[],
        };
        assert_eq!(rows_of(0, 2, &l), 0..8);
        assert_eq!(rows_of(1, 2, &l), 8..10);
    }
}
