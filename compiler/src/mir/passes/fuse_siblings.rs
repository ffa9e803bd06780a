//! Horizontal fusion: two reductions over the same index space and extents that read a common
//! input run as one reduction whose monoid is the product of theirs, so the input is read
//! once.
//!
//! Law: the product of two monoids is a monoid (identity and associativity hold fieldwise);
//! each component still folds its own elements in index order, so results are bitwise equal.

use std::collections::HashMap;

use super::util::{ancestors, rebuild};
use super::{Law, PassConfig, Rewrite};
use crate::mir::ir::{Graph, MonoidRef, Node, NodeId, NodeKind, Port, ScalarExpr};
use crate::mir::monoid::{explicit, product};
use crate::mir::Idx;

pub fn run(g: &mut Graph, _cfg: &PassConfig) -> Vec<Rewrite> {
    let mut rewrites = Vec::new();
    while let Some((a, b)) = find_pair(g) {
        let detail = format!("{} and {}", name(a, &g.nodes[a]), name(b, &g.nodes[b]));
        merge(g, a, b);
        rewrites.push(Rewrite {
            pass: "fuse-siblings",
            law: Law::ProductMonoid,
            detail: format!("fused reductions {detail} into one pass over their common input"),
        });
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

/// Two fusable reductions `a < b`: same extents, a common read, `b` independent of `a`, and
/// no node between them reads `a` (the fused node takes `b`'s place).
fn find_pair(g: &Graph) -> Option<(NodeId, NodeId)> {
    let reduces: Vec<NodeId> = g
        .nodes
        .ids()
        .filter(|id| matches!(g.nodes[*id].kind, NodeKind::Reduce { .. }))
        .filter(|id| {
            let NodeKind::Reduce { monoid, .. } = &g.nodes[*id].kind else {
                return false;
            };
            explicit(g, *monoid, g.nodes[*id].outputs[0].dtype).is_some()
        })
        .collect();
    // The first node that reads each node: `a` may move to `b` only if nothing between reads it.
    let mut first_reader = vec![usize::MAX; g.nodes.len()];
    for (id, node) in g.nodes.iter_enumerated() {
        for p in node.inputs() {
            let r = &mut first_reader[p.node.index()];
            *r = (*r).min(id.index());
        }
    }
    let mut ancestors_of: std::collections::HashMap<NodeId, Vec<bool>> =
        std::collections::HashMap::new();
    for (i, &a) in reduces.iter().enumerate() {
        for &b in &reduces[i + 1..] {
            let (
                NodeKind::Reduce {
                    space: sa,
                    red: ra,
                    reads: xa,
                    ..
                },
                NodeKind::Reduce {
                    space: sb,
                    red: rb,
                    reads: xb,
                    ..
                },
            ) = (&g.nodes[a].kind, &g.nodes[b].kind)
            else {
                continue;
            };
            if sa != sb || ra != rb || !xa.iter().any(|r| xb.iter().any(|s| s.src() == r.src())) {
                continue;
            }
            if first_reader[a.index()] < b.index() {
                continue;
            }
            if ancestors_of.entry(b).or_insert_with(|| ancestors(g, b))[a.index()] {
                continue;
            }
            return Some((a, b));
        }
    }
    None
}

/// Replaces `b` by the fused reduction (ports: `b`'s, then `a`'s) and drops `a`.
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
    let mut rename = HashMap::new();
    for k in 0..na.outputs.len() as u32 {
        rename.insert(
            Port { node: a, port: k },
            Port {
                node: b,
                port: nb.outputs.len() as u32 + k,
            },
        );
    }
    let mut keep = vec![true; g.nodes.len()];
    keep[a.index()] = false;
    rebuild(g, &keep, &rename);
}
