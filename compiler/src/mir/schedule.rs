//! The schedule of an optimized graph: the launches the native executor carries out, in
//! order — which nodes run together, over how many shards of how many rows, and which outputs
//! are written over a dead tensor. It is a function of the graph alone (its structure and
//! shapes, never the thread count), computed once here and used by everyone who needs it:
//! `native` runs it, and `flowc ir --stage kernels`, `flowc graph --stage kernels`,
//! `flowc explain` and the `expect-launches` tests print and count it, so what they show is
//! what runs.
//!
//! - Every `Map`, `Reduce` and `Random` node is in exactly one launch. `Input` and `Const`
//!   are there from the start of a dispatch; `Concat` and `Slice` move data between launches.
//!   A `Scan`, `ReduceByIndex` or `Scatter` is a launch of its own (`Work::Prim`), sharded by
//!   the runtime's fixed element blocks.
//! - A **row group** is a launch of consecutive kernel nodes over the same rows (the same
//!   extent of their outermost free dimension; a scalar is one row), each reading the others'
//!   outputs only at its own row (first coordinate `i0`) or as scalars. It runs shard by shard — every member on rows `lo..hi`,
//!   then the next rows — so the rows a member writes are still in cache when the next one
//!   reads them. Each member computes each of its rows exactly as alone, so grouping changes
//!   no bit.
//! - A contraction runs as GEMMs over blocks of rows and starts a group: its epilogue (bias,
//!   activation) runs on each block's rows right after the GEMM wrote them.
//! - A group's shards take the fewest rows any member would take alone (or the GEMM's
//!   block): see [`shard_plan`].
//! - A map of a group may write its output over a dead output of an earlier member
//!   ([`InPlace`]).

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::contract::{contraction, Contraction};
use super::ir::{Affine, Graph, NodeId, NodeKind, Port};
use super::Idx;

/// How many elements one shard task covers, at least: a function of shapes only.
pub const SHARD_ELEMENTS: usize = 1 << 16;

/// The shard size in use: [`SHARD_ELEMENTS`] unless a test set another
/// ([`set_shard_elements`]).
static SHARD_SIZE: AtomicUsize = AtomicUsize::new(SHARD_ELEMENTS);

/// How many elements one shard task covers, at least, in this process.
pub fn shard_elements() -> usize {
    SHARD_SIZE.load(Ordering::Relaxed)
}

/// Sets the shard size of this process (at least 1), for tests: `FLOW_SHARD_ELEMENTS`
/// (read by the driver) splits the small graphs of the equivalence tests into many shards,
/// so that on MPI ranks each rank runs some of every launch. Shards split free dimensions
/// only, each point computed as in one shard, so results do not depend on it; every rank of
/// a job must use the same size (they inherit the launcher's environment).
pub fn set_shard_elements(n: usize) {
    SHARD_SIZE.store(n.max(1), Ordering::Relaxed);
}

/// The fewest rows of a shard when the rows are the innermost dimension (see [`shard_plan`]).
const MIN_CONTIGUOUS_ROWS: usize = 64;

/// The launches of a graph, in the order they run.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub launches: Vec<Launch>,
}

/// Nodes that run together over the same shards.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// In graph order; only the first may be a GEMM or a random fill.
    pub members: Vec<Member>,
    /// Rows (of the outermost free dimension; elements for a random fill) per shard.
    pub rows: usize,
    /// How many shards (0 for an empty index space, 1 for a scalar).
    pub shards: usize,
    /// Outputs written over a dead output of an earlier member.
    pub in_place: Vec<InPlace>,
}

/// One node of a launch and how it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub node: NodeId,
    pub work: Work,
}

/// How a member runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    /// A compiled loop nest over its rows.
    Kernel,
    /// A contraction, as GEMMs over blocks of rows.
    Gemm(Contraction),
    /// A counter-based random fill.
    Random,
    /// A scan, histogram or scatter: the runtime's blocked routine (`flow_runtime::prims`),
    /// over its own fixed blocks of elements, after its elements are computed.
    Prim,
}

/// A member's output written over another member's output that nothing reads after the
/// writer: `(member, port)` pairs, indexes into the launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InPlace {
    pub writer: (usize, usize),
    pub dead: (usize, usize),
}

impl Launch {
    fn alone(node: NodeId, work: Work, (rows, shards): (usize, usize)) -> Launch {
        Launch {
            members: vec![Member { node, work }],
            rows,
            shards,
            in_place: Vec::new(),
        }
    }

    /// Whether `node` is a member.
    pub fn has(&self, node: NodeId) -> bool {
        self.members.iter().any(|m| m.node == node)
    }
}

impl Schedule {
    /// The ports written by one launch and read by another, or returned: the tensors that
    /// go to memory and come back. (A tensor read only inside its row group is read while
    /// its rows are still in cache.)
    pub fn materialized(&self, g: &Graph) -> Vec<Port> {
        let mut launch_of: Vec<Option<usize>> = vec![None; g.nodes.len()];
        for (k, l) in self.launches.iter().enumerate() {
            for m in &l.members {
                launch_of[m.node.index()] = Some(k);
            }
        }
        let mut out: Vec<Port> = Vec::new();
        let mut seen: HashSet<Port> = HashSet::new();
        for (id, node) in g.nodes.iter_enumerated() {
            for p in node.inputs() {
                let (Some(a), b) = (launch_of[p.node.index()], launch_of[id.index()]) else {
                    continue;
                };
                if Some(a) != b && seen.insert(p) {
                    out.push(p);
                }
            }
        }
        for p in &g.outputs {
            if launch_of[p.node.index()].is_some() && seen.insert(*p) {
                out.push(*p);
            }
        }
        out
    }
}

/// The schedule of an optimized graph.
pub fn plan(g: &Graph) -> Schedule {
    let mut launches: Vec<Launch> = Vec::new();
    // The open row group and the extent of its rows.
    let mut current: Option<(Launch, usize, bool)> = None;
    // Each node's position in the open group (valid while `launch_of[n] == launches.len()`),
    // so membership is a lookup, not a scan of the group: a long chain of maps over the same
    // rows is one group of many members.
    let mut member_of: Vec<Option<(usize, usize)>> = vec![None; g.nodes.len()];
    let last_read = last_readers(g);
    let close = |current: &mut Option<(Launch, usize, bool)>, launches: &mut Vec<Launch>| {
        if let Some((mut l, _, _)) = current.take() {
            l.in_place = in_place(g, &l, &last_read);
            launches.push(l);
        }
    };
    for (id, node) in g.nodes.iter_enumerated() {
        let (space, reads) = match &node.kind {
            NodeKind::Map { space, reads, .. } | NodeKind::Reduce { space, reads, .. } => {
                (space, reads)
            }
            // There from the start of a dispatch: a group may read one that comes after
            // its first member.
            NodeKind::Input { .. } | NodeKind::Const { .. } => continue,
            NodeKind::Random { .. } => {
                close(&mut current, &mut launches);
                launches.push(Launch::alone(id, Work::Random, shard_plan(g, id)));
                continue;
            }
            NodeKind::Scan { .. } | NodeKind::ReduceByIndex { .. } | NodeKind::Scatter { .. } => {
                close(&mut current, &mut launches);
                launches.push(Launch::alone(id, Work::Prim, shard_plan(g, id)));
                continue;
            }
            NodeKind::Concat { .. } | NodeKind::Slice { .. } => {
                close(&mut current, &mut launches);
                continue;
            }
        };
        let (rows, shards) = shard_plan(g, id);
        if shards == 0 {
            close(&mut current, &mut launches);
            launches.push(Launch::alone(id, Work::Kernel, (rows, shards)));
            continue;
        }
        if let Some(c) = contraction(g, node) {
            close(&mut current, &mut launches);
            member_of[id.index()] = Some((launches.len(), 0));
            let m = c.dims.0;
            current = Some((Launch::alone(id, Work::Gemm(c), (rows, shards)), m, true));
            continue;
        }
        // A scalar is one row.
        let extent = space.first().copied().unwrap_or(1);
        // A member's output is read at the reader's own row, or is a scalar (then the group
        // has one row).
        let open = launches.len();
        let in_open = |n: NodeId| member_of[n.index()].is_some_and(|(l, _)| l == open);
        let joins = current.as_ref().is_some_and(|(_, extent0, _)| {
            *extent0 == extent
                && reads.iter().all(|r| {
                    !in_open(r.node)
                        || r.proj.is_empty()
                        || r.proj.first().is_some_and(|a| is_index(a, 0))
                })
        });
        match &mut current {
            Some((l, extent0, fixed_rows)) if joins => {
                member_of[id.index()] = Some((open, l.members.len()));
                l.members.push(Member {
                    node: id,
                    work: Work::Kernel,
                });
                if !*fixed_rows {
                    l.rows = l.rows.min(rows);
                    l.shards = extent0.div_ceil(l.rows);
                }
            }
            _ => {
                close(&mut current, &mut launches);
                member_of[id.index()] = Some((launches.len(), 0));
                current = Some((
                    Launch::alone(id, Work::Kernel, (rows, shards)),
                    extent,
                    false,
                ));
            }
        }
    }
    close(&mut current, &mut launches);
    Schedule { launches }
}

/// How node `id` alone is split into shards: rows per shard and the number of shards (0 for
/// an empty index space). A function of shapes only: each shard covers at least
/// [`shard_elements`] elements of work (free points times reduced points), a contraction's
/// shards are its GEMM blocks, and a random fill's shards are runs of elements.
pub fn shard_plan(g: &Graph, id: NodeId) -> (usize, usize) {
    let node = &g.nodes[id];
    match &node.kind {
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => {
            let volume: usize = space.iter().product();
            if volume == 0 {
                (1, 0)
            } else if let Some(c) = contraction(g, node) {
                let rows = contraction_rows(&c);
                (rows, c.dims.0.div_ceil(rows))
            } else {
                let red: usize = match &node.kind {
                    NodeKind::Reduce { red, .. } => red.iter().product::<usize>().max(1),
                    _ => 1,
                };
                space_shards(space, red)
            }
        }
        NodeKind::Random { .. } => {
            let len: usize = node.outputs[0].shape.iter().product();
            let n = shard_elements();
            (n, len.div_ceil(n))
        }
        // The runtime's fixed blocks of elements (see `flow_runtime::prims`).
        NodeKind::Scan { space, .. } => {
            let len: usize = space.iter().product();
            let block = flow_runtime::prims::SCAN_BLOCK;
            (block, len.div_ceil(block))
        }
        NodeKind::ReduceByIndex { space, .. } | NodeKind::Scatter { space, .. } => {
            let len: usize = space.iter().product();
            let block = flow_runtime::prims::HISTOGRAM_SHARD;
            (block, len.div_ceil(block))
        }
        _ => (1, 0),
    }
}

/// How a map or reduction over the free space `space` (not empty, of no zero extent) with
/// `red` reduced points per free point is split into shards: `(rows per shard, shards)` of
/// `space`'s first axis, each shard at least [`shard_elements`] points of work. A function of
/// the shape only (on MPI ranks, the rows by which a histogram's or scatter's result is left
/// on the ranks are those of a map over its shape: `native::spread::output_rows`).
pub fn space_shards(space: &[usize], red: usize) -> (usize, usize) {
    let Some((&n0, rest)) = space.split_first() else {
        return (1, 1);
    };
    let inner: usize = rest.iter().product::<usize>().max(1);
    let mut rows = (shard_elements() / (inner * red.max(1))).max(1);
    if space.len() == 1 {
        // The rows are the innermost dimension: reads along it are contiguous (a column sum
        // reads a row segment of its input per step), so a shard takes whole cache lines of
        // them, and few enough pages per step for the TLB.
        rows = rows.max(MIN_CONTIGUOUS_ROWS.min(shard_elements()));
    }
    (rows, n0.div_ceil(rows))
}

/// Rows of the output per GEMM block of a contraction: an eighth of them and at least 32,
/// but at least [`GEMM_MIN_ROWS`] where that leaves two blocks or more. Each block packs the
/// whole right operand (`k × n`) again, a cost of about `1 / rows` of the block's GEMM:
/// W4's 8 blocks of 256 rows packed its 4 MiB weights 8 times per product where the
/// hand-written baseline's 512-row blocks pack them 4 times, and W5's update `xᵀ dH`
/// (1024 rows) packed its 8 MiB `dH` 8 times against 2.
pub fn contraction_rows(c: &Contraction) -> usize {
    let m = c.dims.0;
    let rows = m.div_ceil(8).max(32);
    if m >= 2 * GEMM_MIN_ROWS {
        rows.max(GEMM_MIN_ROWS)
    } else {
        rows
    }
}

/// The rows a GEMM block takes at least when the output has twice as many (the baseline's
/// block, `bench/src/kernels.rs`'s `GEMM_ROWS`). Smaller outputs keep their eight blocks.
pub const GEMM_MIN_ROWS: usize = 512;

/// Where a group's maps may write over a dead tensor of the group (softmax's `y = e / z`
/// over `e`), saving the memory traffic of a second tensor: the writer is a `Map` whose every
/// read of the dead tensor is at its own point (so it reads each element before writing it
/// back, in scalar and vector code alike), of the same type and shape, and the dead tensor is
/// not a graph output nor read by any node after the writer. Since the dead tensor is a
/// member's output, a retried shard recomputes it before its writer runs again.
fn in_place(g: &Graph, launch: &Launch, last_read: &HashMap<Port, NodeId>) -> Vec<InPlace> {
    let mut out: Vec<InPlace> = Vec::new();
    // Each member's position in the launch.
    let position: HashMap<NodeId, usize> = launch
        .members
        .iter()
        .enumerate()
        .map(|(k, m)| (m.node, k))
        .collect();
    for (k, m) in launch.members.iter().enumerate() {
        let id = m.node;
        let NodeKind::Map { space, reads, .. } = &g.nodes[id].kind else {
            continue;
        };
        for (p, t) in g.nodes[id].outputs.iter().enumerate() {
            let candidate = reads.iter().find_map(|r| {
                let j = position.get(&r.node).copied().filter(|j| *j < k)?;
                let dead = (j, r.port as usize);
                let port = r.src();
                let fits = g.nodes[r.node].outputs[dead.1] == *t
                    && !g.outputs.contains(&port)
                    && !out.iter().any(|d| d.dead == dead)
                    && reads
                        .iter()
                        .filter(|x| x.src() == port)
                        .all(|x| is_identity(&x.proj, space.len()))
                    && last_read.get(&port).is_none_or(|n| n.0 <= id.0);
                fits.then_some(dead)
            });
            if let Some(dead) = candidate {
                out.push(InPlace {
                    writer: (k, p),
                    dead,
                });
            }
        }
    }
    out
}

/// The last node that reads each port.
fn last_readers(g: &Graph) -> HashMap<Port, NodeId> {
    let mut last = HashMap::new();
    for (id, node) in g.nodes.iter_enumerated() {
        for p in node.inputs() {
            last.insert(p, id);
        }
    }
    last
}

/// Whether a projection is the identity on a space of `rank` dimensions.
fn is_identity(proj: &[Affine], rank: usize) -> bool {
    proj.len() == rank && proj.iter().enumerate().all(|(d, a)| is_index(a, d as u32))
}

/// Whether a coordinate is index variable `v` itself.
fn is_index(a: &Affine, v: u32) -> bool {
    a.konst == 0 && {
        let mut terms = a.coeffs.iter().filter(|(_, c)| *c != 0);
        terms.next() == Some(&(v, 1)) && terms.next().is_none()
    }
}

/// The schedule in words: one launch per line with its members, its shards and its in-place
/// writes, then the materialized tensors.
pub fn print(g: &Graph, s: &Schedule) -> String {
    let mut out = String::new();
    for (k, l) in s.launches.iter().enumerate() {
        let parts: Vec<String> = l
            .members
            .iter()
            .map(|m| {
                let node = &g.nodes[m.node];
                let kind = match (&node.kind, &m.work) {
                    (_, Work::Gemm(c)) => {
                        let (rows, inner, cols) = c.dims;
                        format!("gemm {rows}x{inner} by {inner}x{cols}")
                    }
                    (NodeKind::Map { space, .. }, _) => format!("map {space:?}"),
                    (NodeKind::Reduce { space, red, .. }, _) => {
                        format!("reduce {space:?} over {red:?}")
                    }
                    (NodeKind::Random { dist, .. }, _) => format!("random {}", dist.name()),
                    (
                        NodeKind::Scan {
                            space, exclusive, ..
                        },
                        _,
                    ) => {
                        let kind = if *exclusive { "exclusive scan" } else { "scan" };
                        format!("{kind} {space:?}")
                    }
                    (NodeKind::ReduceByIndex { space, bins, .. }, _) => {
                        format!("histogram {space:?} into {bins} bins")
                    }
                    (NodeKind::Scatter { space, .. }, _) => format!("scatter {space:?}"),
                    _ => "data".into(),
                };
                if node.label.is_empty() {
                    format!("{} {kind}", m.node)
                } else {
                    format!("{} \"{}\" {kind}", m.node, node.label)
                }
            })
            .collect();
        let unit = if matches!(l.members[0].work, Work::Random | Work::Prim) {
            "element"
        } else {
            "row"
        };
        let shards = match l.shards {
            1 => "1 shard".to_string(),
            n => format!(
                "{n} shards of {} {unit}{}",
                l.rows,
                if l.rows == 1 { "" } else { "s" }
            ),
        };
        let _ = write!(out, "launch l{k}: {} ({shards})", parts.join(" + "));
        for d in &l.in_place {
            let port = |(m, p): (usize, usize)| Port {
                node: l.members[m].node,
                port: p as u32,
            };
            let _ = write!(out, "; {} over {}", port(d.writer), port(d.dead));
        }
        out.push('\n');
    }
    let mats: Vec<String> = s.materialized(g).iter().map(|p| p.to_string()).collect();
    let _ = writeln!(
        out,
        "materialized: {}",
        if mats.is_empty() {
            "none".to_string()
        } else {
            mats.join(", ")
        }
    );
    out
}
