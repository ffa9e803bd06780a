//! Why adjacent operations were not fused: for every producer → consumer edge between kernel
//! nodes of an optimized graph, the rule of `fuse.rs` that stops the fusion (the same
//! function the fusion passes decide with, so the explanation is what happened). `flowc
//! explain` lists them with the source locations of both nodes.

use std::collections::HashSet;

use super::fuse::{box_of, consumer_cost, count_reads, fusable, Blocked, Recompute};
use super::util::use_counts;
use super::PassConfig;
use crate::mir::ir::{Graph, NodeId, NodeKind};

/// One producer → consumer edge that was not fused, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unfused {
    pub producer: NodeId,
    pub consumer: NodeId,
    pub why: Blocked,
}

/// Every edge of `g` from a kernel node (`Map`, `Reduce`, `Random`) into a `Map` or `Reduce`
/// that fusion would not remove, in consumer order, one per producer and consumer. An edge
/// that the rules would fuse (a pipeline without the fusion passes) is not listed.
pub fn unfused(g: &Graph, cfg: &PassConfig) -> Vec<Unfused> {
    let uses = use_counts(g);
    let recompute = Recompute::of(cfg);
    let mut out = Vec::new();
    let mut seen: HashSet<(NodeId, NodeId)> = HashSet::new();
    for (c, node) in g.nodes.iter_enumerated() {
        let (reads, exprs) = match &node.kind {
            NodeKind::Map { reads, body, .. } => (reads, body),
            NodeKind::Reduce { reads, args, .. } => (reads, args),
            _ => continue,
        };
        let c_box = box_of(&node.kind).expect("map or reduce");
        let c_cost = consumer_cost(&node.kind);
        for (k, r) in reads.iter().enumerate() {
            if !matches!(
                g.nodes[r.node].kind,
                NodeKind::Map { .. } | NodeKind::Reduce { .. } | NodeKind::Random { .. }
            ) || seen.contains(&(r.node, c))
            {
                continue;
            }
            let occurrences: usize = exprs.iter().map(|e| count_reads(e, k as u32)).sum();
            if let Err(why) = fusable(g, &uses, r, &c_box, c_cost, occurrences, recompute) {
                seen.insert((r.node, c));
                out.push(Unfused {
                    producer: r.node,
                    consumer: c,
                    why,
                });
            }
        }
    }
    out
}
