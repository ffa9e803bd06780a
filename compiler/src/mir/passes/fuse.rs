//! Vertical fusion, shared by the passes `fuse-maps` and `fuse-reduce`: a producer `Map` is
//! evaluated inside the `Map` or `Reduce` that reads it, so its tensor is never materialized. The
//! producer's body is substituted for the read, its index variables replaced by the read's
//! projection, and its own reads composed with that projection.
//!
//! Law: the functor law, `map f ∘ map g = map (f ∘ g)`; affine projections compose.
//!
//! Guarantees:
//! - a producer read by one consumer is fused when the consumer visits each producer point at
//!   most once (its index box is no larger than the producer's), so no work is repeated;
//! - a producer read by several consumers is duplicated into each only when it is cheap
//!   (at most [`DUPLICATE_COST`] operations) and no consumer's box is larger than the
//!   producer's: recomputing a few operations is cheaper than writing and reading back a
//!   tensor; the rewrite says so;
//! - under a memory budget ([`PassConfig::recompute`](super::PassConfig::recompute)), any
//!   producer is recomputed in every consumer instead (law: idempotence), trading work for
//!   memory;
//! - a producer that is a graph output stays (it must be materialized anyway);
//! - no fused kernel exceeds [`MAX_FUSED_COST`] operations per point, so fusing a chain of
//!   `n` maps costs `O(n)`, not `O(n^2)`;
//! - nothing is fused into a contraction (a `Reduce` that runs as a GEMM), not even under a
//!   memory budget: the GEMM is faster than the fused loop nest would be, and it sums in its
//!   own order, so the fused loop would not give the same bits (recompute-vs-store must);
//!   and a contraction's operand, materialized for it anyway, is not recomputed in its other
//!   consumers either, except under a memory budget;
//! - reads through `pad`/`clamp_edge` of a producer are not fused (the edge rule applies to
//!   the producer's tensor, not to its body).

use std::collections::{HashMap, HashSet};

use super::util::{affine_expr, compose, use_counts, volume};
use super::{Law, PassConfig, Rewrite};
use crate::mir::contract::contraction;
use crate::mir::cost::{cost, DUPLICATE_COST};
use crate::mir::ir::{Edge, Graph, NodeId, NodeKind, Port, Read, ScalarExpr};
use crate::mir::Idx;

pub(super) fn box_of(kind: &NodeKind) -> Option<Vec<usize>> {
    kind.index_space()
}

/// The consumers a fusion pass fuses producer maps into: one pass each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Consumers {
    /// `fuse-maps`.
    Maps,
    /// `fuse-reduce`.
    Reductions,
}

impl Consumers {
    fn pass(self) -> &'static str {
        match self {
            Consumers::Maps => "fuse-maps",
            Consumers::Reductions => "fuse-reduce",
        }
    }
}

/// When a producer read by several consumers (or at several points) is recomputed in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Recompute {
    /// Only when it costs at most [`DUPLICATE_COST`] operations: the default.
    WhenCheap,
    /// Always, whatever it costs: under a memory budget ([`PassConfig::recompute`]).
    Always,
}

impl Recompute {
    pub(super) fn of(cfg: &PassConfig) -> Recompute {
        if cfg.recompute {
            Recompute::Always
        } else {
            Recompute::WhenCheap
        }
    }
}

/// Fuses producer maps into the consumers `into`, until nothing changes.
pub(super) fn fuse(g: &mut Graph, into: Consumers, recompute: Recompute) -> Vec<Rewrite> {
    let pass = into.pass();
    let mut rewrites = Vec::new();
    // A fusion changes only its consumer, so the scan resumes there; a final scan from the
    // start confirms the fixpoint.
    let mut start = 0;
    // The use counts are kept up to date as consumers change (a fusion changes only the
    // reads of its consumer), instead of being recounted over the whole graph after every
    // fusion, which made the pass quadratic in the size of the graph.
    let mut uses = use_counts(g);
    // The operands of contractions stay materialized (nothing is fused into a contraction),
    // so recomputing them in their other consumers would only repeat work. Fusion changes
    // only the consumers it fuses into, never a contraction, so this set stays true.
    let for_gemm = gemm_operands(g, recompute);
    loop {
        let mut changed = false;
        for ci in start..g.nodes.len() {
            let c = NodeId::new(ci);
            let is_target = matches!(
                (&g.nodes[c].kind, into),
                (NodeKind::Map { .. }, Consumers::Maps)
                    | (
                        NodeKind::Reduce { .. }
                            | NodeKind::Scan { .. }
                            | NodeKind::ReduceByIndex { .. }
                            | NodeKind::Scatter { .. },
                        Consumers::Reductions
                    )
            );
            if !is_target {
                continue;
            }
            // A contraction runs as a GEMM, far faster than any fused loop nest: its
            // operands stay materialized, under a memory budget too (the GEMM sums in its own
            // order: a fused loop would change the result's bits).
            if contraction(g, &g.nodes[c]).is_some() {
                continue;
            }
            let c_box = box_of(&g.nodes[c].kind).expect("a node with an index space");
            let c_cost = consumer_cost(&g.nodes[c].kind);
            let Some((reads, _)) = g.nodes[c].kind.reads_and_exprs() else {
                continue;
            };
            let reads = reads.to_vec();
            // A map before a monoid scan or histogram is the monoid's wrap; before a scatter,
            // the computation of its rows and values: the functor law either way.
            let into_prim = !matches!(
                g.nodes[c].kind,
                NodeKind::Map { .. } | NodeKind::Reduce { .. }
            );
            for (k, r) in reads.iter().enumerate() {
                // Each occurrence of the read in the consumer's expressions is a use: fusing
                // pastes the producer's body at every one.
                let exprs = g.nodes[c]
                    .kind
                    .reads_and_exprs()
                    .map(|(_, xs)| xs)
                    .unwrap_or_default();
                // A gather reads its table as a whole tensor at computed coordinates: its
                // producer stays a tensor (fusion would need it at every coordinate).
                let cheap_reject = r.edge != Edge::Strict
                    || !matches!(g.nodes[r.node].kind, NodeKind::Map { .. })
                    || for_gemm.contains(&r.src())
                    || exprs.iter().any(|e| e.gathers_from(k as u32));
                if cheap_reject {
                    continue;
                }
                let occurrences = exprs
                    .iter()
                    .map(|e| count_reads(e, k as u32))
                    .sum::<usize>();
                let Ok((reason, mut law)) = fusable(
                    g,
                    &uses,
                    r,
                    c,
                    &for_gemm,
                    (&c_box, c_cost, occurrences),
                    recompute,
                ) else {
                    continue;
                };
                // The producer comes before its consumer: borrow both without copying the
                // producer (a copy per fusion made a chain of maps quadratic).
                let (before, rest) = g.nodes.raw.split_at_mut(c.index());
                let producer = &before[r.node.index()];
                let node = &mut rest[0];
                let NodeKind::Map {
                    reads: p_reads,
                    body: p_body,
                    ..
                } = &producer.kind
                else {
                    continue;
                };
                let body = &p_body[r.port as usize];
                if into_prim && law == Law::Functor {
                    law = Law::MonoidWrap;
                }
                count_reads_of(node, &mut uses, false);
                let Some((c_reads, mut exprs)) = node.kind.reads_and_exprs_mut() else {
                    continue;
                };
                // The producer's reads, composed with this read's projection.
                let base = c_reads.len() as u32;
                for pr in p_reads {
                    c_reads.push(Read {
                        node: pr.node,
                        port: pr.port,
                        proj: pr.proj.iter().map(|a| compose(a, &r.proj)).collect(),
                        edge: pr.edge,
                    });
                }
                let inlined = body.rewrite(&mut |x| match x {
                    ScalarExpr::Index(v) => Some(affine_expr(&r.proj[*v as usize])),
                    ScalarExpr::Read(j) => Some(ScalarExpr::Read(base + j)),
                    _ => None,
                });
                for e in exprs.iter_mut() {
                    **e = e.rewrite(&mut |x| match x {
                        ScalarExpr::Read(j) if *j as usize == k => Some(inlined.clone()),
                        _ => None,
                    });
                }
                node.prune_reads();
                count_reads_of(node, &mut uses, true);
                let label = |id: NodeId, n: &crate::mir::ir::Node| {
                    if n.label.is_empty() {
                        format!("{id}")
                    } else {
                        format!("{id} \"{}\"", n.label)
                    }
                };
                rewrites.push(Rewrite {
                    pass,
                    law,
                    detail: format!(
                        "fused map {} into {}{reason}",
                        label(r.node, producer),
                        label(c, node)
                    ),
                });
                changed = true;
                start = c.index();
                break;
            }
            if changed {
                break;
            }
        }
        if !changed {
            // A fixpoint: confirm it with one scan from the start.
            if start == 0 {
                break;
            }
            start = 0;
        }
    }
    rewrites
}

/// Adds (or removes) the reads of a `Map` or `Reduce` to (from) the use counts.
fn count_reads_of(n: &crate::mir::ir::Node, uses: &mut HashMap<Port, usize>, add: bool) {
    if let Some((reads, _)) = n.kind.reads_and_exprs() {
        for r in reads {
            let u = uses.entry(r.src()).or_default();
            *u = if add { *u + 1 } else { u.saturating_sub(1) };
        }
    }
}

/// Why a producer is not fused into a consumer that reads it: the rule that stopped it.
#[derive(Clone, Debug, PartialEq)]
pub enum Blocked {
    /// The producer is a reduction: its value at a point is known only after its whole fold,
    /// so the reader needs it computed (and the reader reads it at many points: a reduction
    /// followed by a broadcast).
    Reduction,
    /// The producer is a random fill, an input, a constant or a data movement, not a map.
    NotAMap,
    /// The read is through `pad` or `clamp_edge`: the edge rule applies to the producer's
    /// tensor, not to its body.
    EdgeRead,
    /// The producer is a result of the dispatch: the coordinator observes it (or it is bound
    /// to a variable a live handle can still read), so it is materialized anyway.
    Observed,
    /// The consumer visits each producer point more than once (a broadcast: its index box is
    /// larger), and recomputing the producer at every visit costs more than a few operations.
    Broadcast { cost: usize },
    /// Several consumers (or several reads) use the producer, and recomputing it in each
    /// costs more than [`DUPLICATE_COST`] operations: it is computed once and read back.
    Shared { uses: usize, cost: usize },
    /// The fused kernel would exceed [`MAX_FUSED_COST`] operations per point.
    TooLarge { cost: usize },
    /// The consumer is a contraction, which runs as a GEMM: faster than any fused loop nest
    /// and sums in its own order (never fused, so a memory budget keeps the bits).
    IntoContraction,
    /// The producer is an operand of a contraction, materialized for the GEMM anyway, so
    /// recomputing it in this consumer would only repeat work.
    GemmOperand,
}

impl Blocked {
    /// The rule in words, for `flowc explain`.
    pub fn explain(&self) -> String {
        match self {
            Blocked::Reduction => "the producer is a reduction: its result is complete only after its whole fold, so the reader needs it materialized (reduction followed by a broadcast or another pass)".into(),
            Blocked::NotAMap => "the producer is not a map (a random fill or data movement)".into(),
            Blocked::EdgeRead => "read through `pad`/`clamp_edge`: the edge rule applies to the producer's tensor, not to its body".into(),
            Blocked::Observed => "the producer is a result of the dispatch (observed by the coordinator, or bound to a variable still in use), so it is materialized anyway".into(),
            Blocked::Broadcast { cost } => format!("the consumer reads each producer point more than once (broadcast), and recomputing it costs {cost} operations (more than 2)"),
            Blocked::Shared { uses, cost } => format!("{uses} reads of the producer, and recomputing it in each costs {cost} operations (more than {DUPLICATE_COST}): computed once and read back"),
            Blocked::TooLarge { cost } => format!("the fused kernel would cost {cost} operations per point (more than {MAX_FUSED_COST}): long chains are cut into kernels of bounded size"),
            Blocked::IntoContraction => "the consumer is a contraction, which runs as a GEMM (faster than a fused loop nest, and summed in its own order: never fused, so --memory-limit gives the same bits)".into(),
            Blocked::GemmOperand => "the producer is an operand of a contraction, materialized for its GEMM anyway: recomputing it here would repeat work".into(),
        }
    }
}

/// The ports contractions read (their GEMM needs them materialized), unless a memory budget
/// asks for recomputation.
pub(super) fn gemm_operands(g: &Graph, recompute: Recompute) -> HashSet<Port> {
    if recompute == Recompute::Always {
        return HashSet::new();
    }
    g.nodes
        .iter()
        .filter(|n| contraction(g, n).is_some())
        .flat_map(|n| n.inputs())
        .collect()
}

/// The most operations per point a fused `Map` or `Reduce` may reach: a producer whose
/// fusion would exceed it stays materialized. Bounds the size of a kernel (and so its compile
/// time, and the depth of its expression), and makes fusion linear in the length of a chain:
/// a coordinator loop that is never observed (`for s in 0..N { x = step(x) }`) builds a chain
/// of `N` maps, and fusing it whole would cost `O(N^2)` (every intermediate's body is
/// rebuilt). Materializing an intermediate changes no bit: each operation is computed in its
/// own type either way.
pub const MAX_FUSED_COST: usize = 256;

/// The cost of a consumer's expressions (its body or its reduction's arguments).
pub(super) fn consumer_cost(kind: &NodeKind) -> usize {
    match kind {
        NodeKind::Map { body, .. } => body.iter().map(cost).sum(),
        kind => kind
            .reads_and_exprs()
            .map_or(0, |(_, xs)| xs.into_iter().map(cost).sum()),
    }
}

/// Whether read `r` of a consumer with index box `c_box` and expressions of cost `c_cost` may
/// be fused, with a note for the report when the producer is duplicated; else the rule that
/// stops it.
pub(super) fn fusable(
    g: &Graph,
    uses: &HashMap<Port, usize>,
    r: &Read,
    c: NodeId,
    for_gemm: &HashSet<Port>,
    (c_box, c_cost, occurrences): (&[usize], usize, usize),
    recompute: Recompute,
) -> Result<(&'static str, Law), Blocked> {
    let (space, body) = match &g.nodes[r.node].kind {
        NodeKind::Map { space, body, .. } => (space, body),
        NodeKind::Reduce { .. } => return Err(Blocked::Reduction),
        _ => return Err(Blocked::NotAMap),
    };
    if r.edge != Edge::Strict {
        return Err(Blocked::EdgeRead);
    }
    let port = r.src();
    if g.outputs.contains(&port) {
        return Err(Blocked::Observed);
    }
    if contraction(g, &g.nodes[c]).is_some() {
        return Err(Blocked::IntoContraction);
    }
    if for_gemm.contains(&port) {
        return Err(Blocked::GemmOperand);
    }
    let p_cost = cost(&body[port.port as usize]);
    let fused_cost = c_cost + occurrences * p_cost;
    if fused_cost > MAX_FUSED_COST {
        return Err(Blocked::TooLarge { cost: fused_cost });
    }
    let n_uses = uses.get(&port).copied().unwrap_or(0) + occurrences.saturating_sub(1);
    // Visiting a producer point more than once would repeat its work.
    let repeats = volume(c_box) > volume(space);
    let other_ports_used = (0..body.len() as u32).any(|p| {
        p != port.port
            && uses
                .get(&Port {
                    node: r.node,
                    port: p,
                })
                .is_some_and(|u| *u > 0)
    });
    if recompute == Recompute::Always && (repeats || n_uses > 1 || other_ports_used) {
        return Ok((
            " (recomputed in each consumer: the memory budget has no room for it)",
            Law::Idempotence,
        ));
    }
    if repeats && p_cost > 2 {
        return Err(Blocked::Broadcast { cost: p_cost });
    }
    if n_uses == 1 && !other_ports_used {
        Ok(("", Law::Functor))
    } else if p_cost <= DUPLICATE_COST {
        Ok((
            " (recomputed in each consumer: cheaper than materializing it)",
            Law::Functor,
        ))
    } else {
        Err(Blocked::Shared {
            uses: n_uses,
            cost: p_cost,
        })
    }
}

/// How many times `Read(k)` occurs in `e`.
pub(super) fn count_reads(e: &ScalarExpr, k: u32) -> usize {
    match e {
        ScalarExpr::Read(j) => usize::from(*j == k),
        ScalarExpr::Const(_) | ScalarExpr::Index(_) | ScalarExpr::Param(_) => 0,
        ScalarExpr::Unary(_, a)
        | ScalarExpr::Cast(a, _)
        | ScalarExpr::Call(_, a)
        | ScalarExpr::Field(a, _) => count_reads(a, k),
        ScalarExpr::Binary(_, a, b) => count_reads(a, k) + count_reads(b, k),
        ScalarExpr::Select(c, a, b) => count_reads(c, k) + count_reads(a, k) + count_reads(b, k),
        ScalarExpr::Tuple(xs) => xs.iter().map(|x| count_reads(x, k)).sum(),
        ScalarExpr::Gather(_, xs) => xs.iter().map(|x| count_reads(x, k)).sum(),
    }
}
