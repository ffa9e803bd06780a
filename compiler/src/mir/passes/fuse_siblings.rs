//! Horizontal fusion: two reductions over the same index space and extents that read a common
//! input run as one reduction whose monoid is the product of theirs, so the input is read
//! once.
//!
//! Law: the product of two monoids is a monoid (identity and associativity hold fieldwise);
//! each component still folds its own elements in index order, so results are bitwise equal.

use std::collections::{BTreeSet, HashMap};

use super::util::rebuild;
use super::{Law, PassConfig, Rewrite};
use crate::mir::ir::{Graph, MonoidRef, Node, NodeId, NodeKind, Port, ScalarExpr};
use crate::mir::monoid::{explicit, product};
use crate::mir::Idx;

/// One sweep over the reductions in graph order. For each reduction `a`, the first later
/// reduction `b` with the same extents that reads a port `a` reads is fused with it when the
/// fused node can take the place of one of them:
/// - `b`'s place, when no node before `b` reads `a` (then `b` cannot depend on `a` either: a
///   path from `a` to `b` starts with a reader of `a` no later than `b`); `a` is dropped;
/// - `a`'s place, when `b` reads only nodes before `a` (so `b` does not depend on `a`, and
///   `b`'s readers, after `b`, come after `a`); `b` is dropped. This is the case of
///   `sum(x) / N` next to `sum(x * x) / N`: the map `/ N` reads the first sum before the
///   second starts.
///
/// A fused node is met again (or kept) in the sweep and may absorb the next sibling in turn.
/// Candidates are found through an index from each port to the reductions that read it (at
/// most [`MAX_CANDIDATES`] per port are tried), and merged nodes are dropped in one rebuild
/// at the end, so the pass is near-linear in the size of the graph.
pub fn run(g: &mut Graph, _cfg: &PassConfig) -> Vec<Rewrite> {
    let n = g.nodes.len();
    let mut s = Sweep {
        first_reader: vec![n; n],
        readers: vec![Vec::new(); n],
        readers_of: HashMap::new(),
        rename: HashMap::new(),
        keep: vec![true; n],
    };
    for (id, node) in g.nodes.iter_enumerated() {
        for p in node.inputs() {
            let r = &mut s.first_reader[p.node.index()];
            *r = (*r).min(id.index());
            s.readers[p.node.index()].push(id.index());
        }
    }
    for id in g.nodes.ids() {
        if fusable(g, id) {
            for p in g.nodes[id].inputs() {
                s.readers_of.entry(p).or_default().insert(id.index());
            }
        }
    }
    let mut rewrites = Vec::new();
    for a in g.nodes.ids() {
        // `a` absorbs siblings placed at its own position until none is left.
        while s.keep[a.index()] && fusable(g, a) {
            let Some((b, at_a)) = s.partner(g, a) else {
                break;
            };
            let detail = format!("{} and {}", name(a, &g.nodes[a]), name(b, &g.nodes[b]));
            let (kept, dropped) = if at_a { (a, b) } else { (b, a) };
            s.merge(g, kept, dropped);
            rewrites.push(Rewrite {
                pass: "fuse-siblings",
                law: Law::ProductMonoid,
                detail: format!("fused reductions {detail} into one pass over their common input"),
            });
        }
    }
    if !rewrites.is_empty() {
        rebuild(g, &s.keep, &s.rename);
    }
    rewrites
}

/// How many reductions reading one port are tried as partners of a reduction: bounds the
/// search when many reductions read one tensor (a weight read at every step of a loop).
const MAX_CANDIDATES: usize = 64;

/// Whether `id` is a reduction whose monoid can be made explicit (and so multiplied).
fn fusable(g: &Graph, id: NodeId) -> bool {
    match &g.nodes[id].kind {
        NodeKind::Reduce { monoid, .. } => {
            explicit(g, *monoid, g.nodes[id].outputs[0].dtype).is_some()
        }
        _ => false,
    }
}

/// The sweep's view of the graph, kept up to date as reductions merge.
struct Sweep {
    /// The first node that reads each node (or the node count).
    first_reader: Vec<usize>,
    /// Every reader of each node.
    readers: Vec<Vec<usize>>,
    /// The fusable reductions that read each port.
    readers_of: HashMap<Port, BTreeSet<usize>>,
    /// Ports of dropped reductions, now on the node that absorbed them.
    rename: HashMap<Port, Port>,
    keep: Vec<bool>,
}

impl Sweep {
    /// The first reduction after `a` that may fuse with it, and whether the fused node takes
    /// `a`'s place (else `b`'s).
    fn partner(&self, g: &Graph, a: NodeId) -> Option<(NodeId, bool)> {
        let NodeKind::Reduce {
            space: sa, red: ra, ..
        } = &g.nodes[a].kind
        else {
            return None;
        };
        let mut best: Option<(usize, bool)> = None;
        for p in g.nodes[a].inputs() {
            let Some(set) = self.readers_of.get(&p) else {
                continue;
            };
            let hi = best.map_or(usize::MAX, |(b, _)| b);
            for &b in set.range(a.index() + 1..hi).take(MAX_CANDIDATES) {
                let bid = NodeId::new(b);
                if !self.keep[b] {
                    continue;
                }
                let NodeKind::Reduce {
                    space: sb, red: rb, ..
                } = &g.nodes[bid].kind
                else {
                    continue;
                };
                if sa != sb || ra != rb {
                    continue;
                }
                if b < self.first_reader[a.index()] {
                    best = Some((b, false));
                    break;
                }
                if g.nodes[bid].inputs().iter().all(|q| q.node < a) {
                    best = Some((b, true));
                    break;
                }
            }
        }
        best.map(|(b, at_a)| (NodeId::new(b), at_a))
    }

    /// Fuses `dropped` into `kept` (ports: `kept`'s, then `dropped`'s) and points every
    /// reader of `dropped` at the fused node.
    fn merge(&mut self, g: &mut Graph, kept: NodeId, dropped: NodeId) {
        let inputs_dropped = g.nodes[dropped].inputs();
        let ports_kept = g.nodes[kept].outputs.len() as u32;
        merge(g, dropped, kept);
        for k in 0..g.nodes[dropped].outputs.len() as u32 {
            self.rename.insert(
                Port {
                    node: dropped,
                    port: k,
                },
                Port {
                    node: kept,
                    port: ports_kept + k,
                },
            );
        }
        self.keep[dropped.index()] = false;
        self.first_reader[kept.index()] =
            self.first_reader[kept.index()].min(self.first_reader[dropped.index()]);
        for p in inputs_dropped {
            self.readers[p.node.index()].push(kept.index());
            if let Some(set) = self.readers_of.get_mut(&p) {
                set.remove(&dropped.index());
                set.insert(kept.index());
            }
        }
        let moved = std::mem::take(&mut self.readers[dropped.index()]);
        for &r in &moved {
            let r = NodeId::new(r);
            if !self.keep[r.index()] || !g.nodes[r].inputs().iter().any(|p| p.node == dropped) {
                continue;
            }
            let before = g.nodes[r].inputs();
            let rename = &self.rename;
            g.nodes[r].map_inputs(&mut |p| *rename.get(&p).unwrap_or(&p));
            if fusable(g, r) {
                for p in before.iter().filter(|p| p.node == dropped) {
                    if let Some(set) = self.readers_of.get_mut(p) {
                        set.remove(&r.index());
                    }
                }
                for p in g.nodes[r].inputs() {
                    self.readers_of.entry(p).or_default().insert(r.index());
                }
            }
        }
        self.readers[kept.index()].extend(moved);
    }
}

fn name(id: NodeId, n: &Node) -> String {
    if n.label.is_empty() {
        format!("{id}")
    } else {
        format!("{id} \"{}\"", n.label)
    }
}

/// Replaces `b` by the fused reduction (ports: `b`'s, then `a`'s); `a` is left for the caller
/// to drop. (`a` may come before or after `b`.)
fn merge(g: &mut Graph, a: NodeId, b: NodeId) {
    let (na, nb) = (g.nodes[a].clone(), g.nodes[b].clone());
    let (
        NodeKind::Reduce {
            space,
            red,
            monoid: ma,
            reads: ra,
            args: aa,
        },
        NodeKind::Reduce {
            monoid: mb,
            reads: rb,
            args: ab,
            ..
        },
    ) = (na.kind.clone(), nb.kind.clone())
    else {
        return;
    };
    let ea = explicit(g, ma, na.outputs[0].dtype).expect("checked by find_pair");
    let eb = explicit(g, mb, nb.outputs[0].dtype).expect("checked by find_pair");
    let m = product(&eb, &ea);
    let mid = g.add_monoid(m);
    let mut reads = rb.clone();
    let off = reads.len() as u32;
    reads.extend(ra);
    let mut args = ab;
    args.extend(aa.iter().map(|e| {
        e.rewrite(&mut |x| match x {
            ScalarExpr::Read(k) => Some(ScalarExpr::Read(k + off)),
            _ => None,
        })
    }));
    let mut outputs = nb.outputs.clone();
    outputs.extend(na.outputs.iter().cloned());
    let label = match (na.label.is_empty(), nb.label.is_empty()) {
        (false, false) if na.label != nb.label => format!("{}+{}", nb.label, na.label),
        (false, _) => na.label.clone(),
        _ => nb.label.clone(),
    };
    let mut node = Node {
        kind: NodeKind::Reduce {
            space,
            red,
            monoid: MonoidRef::User(mid),
            reads,
            args,
        },
        outputs,
        label,
        // The fused node takes `b`'s place.
        span: nb.span.or(na.span),
    };
    node.prune_reads();
    g.nodes[b] = node;
}
