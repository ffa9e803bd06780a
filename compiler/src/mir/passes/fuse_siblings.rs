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
/// reduction `b` with the same extents that reads a port `a` reads, before any node reads `a`
/// (the fused node takes `b`'s place, so `a`'s readers must come after `b`; and then `b`
/// cannot depend on `a`, since a path from `a` to `b` starts with a reader of `a` no later
/// than `b`), absorbs it. The fused `b` is met again later in the sweep and may absorb `a`'s
/// next sibling in turn. Candidates are found through an index from each port to the
/// reductions that read it, and merged nodes are dropped in one rebuild at the end, so the
/// pass is near-linear in the size of the graph.
pub fn run(g: &mut Graph, _cfg: &PassConfig) -> Vec<Rewrite> {
    let n = g.nodes.len();
    let fusable = |g: &Graph, id: NodeId| match &g.nodes[id].kind {
        NodeKind::Reduce { monoid, .. } => {
            explicit(g, *monoid, g.nodes[id].outputs[0].dtype).is_some()
        }
        _ => false,
    };
    // The first node that reads each node (or `n`), and all its readers.
    let mut first_reader = vec![n; n];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    // The fusable reductions that read each port.
    let mut readers_of: HashMap<Port, BTreeSet<usize>> = HashMap::new();
    for (id, node) in g.nodes.iter_enumerated() {
        for p in node.inputs() {
            let r = &mut first_reader[p.node.index()];
            *r = (*r).min(id.index());
            readers[p.node.index()].push(id.index());
        }
    }
    for id in g.nodes.ids() {
        if fusable(g, id) {
            for p in g.nodes[id].inputs() {
                readers_of.entry(p).or_default().insert(id.index());
            }
        }
    }
    // Merged reductions: their ports now live on the node that absorbed them.
    let mut rename: HashMap<Port, Port> = HashMap::new();
    let mut keep = vec![true; n];
    let mut rewrites = Vec::new();
    for a in g.nodes.ids() {
        if !keep[a.index()] || !fusable(g, a) {
            continue;
        }
        let Some(b) = partner(g, a, first_reader[a.index()], &readers_of, &keep) else {
            continue;
        };
        let detail = format!("{} and {}", name(a, &g.nodes[a]), name(b, &g.nodes[b]));
        let inputs_a = g.nodes[a].inputs();
        let ports_b = g.nodes[b].outputs.len() as u32;
        merge(g, a, b);
        for k in 0..g.nodes[a].outputs.len() as u32 {
            rename.insert(
                Port { node: a, port: k },
                Port {
                    node: b,
                    port: ports_b + k,
                },
            );
        }
        keep[a.index()] = false;
        first_reader[b.index()] = first_reader[b.index()].min(first_reader[a.index()]);
        for p in inputs_a {
            readers[p.node.index()].push(b.index());
            if let Some(set) = readers_of.get_mut(&p) {
                set.remove(&a.index());
                set.insert(b.index());
            }
        }
        // Nodes that read `a` (all after `b`) read the fused node instead.
        let moved = std::mem::take(&mut readers[a.index()]);
        for &r in &moved {
            let r = NodeId::new(r);
            if !keep[r.index()] || !g.nodes[r].inputs().iter().any(|p| p.node == a) {
                continue;
            }
            let before = g.nodes[r].inputs();
            g.nodes[r].map_inputs(&mut |p| *rename.get(&p).unwrap_or(&p));
            if fusable(g, r) {
                for p in before.iter().filter(|p| p.node == a) {
                    if let Some(set) = readers_of.get_mut(p) {
                        set.remove(&r.index());
                    }
                }
                for p in g.nodes[r].inputs() {
                    readers_of.entry(p).or_default().insert(r.index());
                }
            }
        }
        readers[b.index()].extend(moved);
        rewrites.push(Rewrite {
            pass: "fuse-siblings",
            law: Law::ProductMonoid,
            detail: format!("fused reductions {detail} into one pass over their common input"),
        });
    }
    if !rewrites.is_empty() {
        rebuild(g, &keep, &rename);
    }
    rewrites
}

fn name(id: NodeId, n: &Node) -> String {
    if n.label.is_empty() {
        format!("{id}")
    } else {
        format!("{id} \"{}\"", n.label)
    }
}

/// The first reduction after `a` and before `a`'s first reader (`until`) with `a`'s extents
/// that reads a port `a` reads.
fn partner(
    g: &Graph,
    a: NodeId,
    until: usize,
    readers_of: &HashMap<Port, BTreeSet<usize>>,
    keep: &[bool],
) -> Option<NodeId> {
    let NodeKind::Reduce {
        space: sa, red: ra, ..
    } = &g.nodes[a].kind
    else {
        return None;
    };
    let mut best: Option<usize> = None;
    for p in g.nodes[a].inputs() {
        let Some(set) = readers_of.get(&p) else {
            continue;
        };
        let hi = best.unwrap_or(until).min(until);
        for &b in set.range(a.index() + 1..hi) {
            if !keep[b] {
                continue;
            }
            let NodeKind::Reduce {
                space: sb, red: rb, ..
            } = &g.nodes[NodeId::new(b)].kind
            else {
                continue;
            };
            if sa == sb && ra == rb {
                best = Some(b);
                break;
            }
        }
    }
    best.map(NodeId::new)
}

/// Replaces `b` by the fused reduction (ports: `b`'s, then `a`'s); `a` is left for the caller
/// to drop.
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
    };
    node.prune_reads();
    g.nodes[b] = node;
}
