//! Pass `fuse-maps`: a producer map is fused into the maps that read it (see `fuse.rs` for
//! the rule and its guarantees); reads of rank-0 constants become literals; maps that only
//! copy a tensor are dropped.
//!
//! Laws: the functor law (`map f ∘ map g = map (f ∘ g)`, and `map id = id`); referential
//! transparency for constants.

use super::fuse::{fuse, Consumers, Recompute};
use super::{Law, PassConfig, Rewrite};
use crate::mir::ir::{Edge, Graph, NodeKind, Port, ScalarExpr};
use crate::mir::Idx;

pub fn run(g: &mut Graph, cfg: &PassConfig) -> Vec<Rewrite> {
    let mut out = inline_constants(g);
    // Copies first, too: a copy between a map and a contraction (the fresh argument of a
    // `grad`) would hide from fusion that the map is a contraction's operand.
    out.extend(drop_copies(g));
    out.extend(fuse(g, Consumers::Maps, Recompute::of(cfg)));
    out.extend(drop_copies(g));
    out
}

/// A map that only copies another tensor of the same shape (`let s[r] = t[r]`) is that tensor.
/// Law: the functor's identity law, `map id = id`. A named copy names an unnamed source (a
/// `grad`'s fresh copy of an argument carries the argument's name, which the constant it
/// copies lacks: a gather out of range in the derived graph names the user's tensor).
fn drop_copies(g: &mut Graph) -> Vec<Rewrite> {
    let mut rename = std::collections::HashMap::new();
    let mut keep = vec![true; g.nodes.len()];
    let mut dropped = Vec::new();
    let mut names = Vec::new();
    for (id, node) in g.nodes.iter_enumerated() {
        let NodeKind::Map { space, reads, body } = &node.kind else {
            continue;
        };
        let [ScalarExpr::Read(0)] = body.as_slice() else {
            continue;
        };
        let [r] = reads.as_slice() else { continue };
        let identity = r.edge == Edge::Strict
            && r.proj.len() == space.len()
            && r.proj
                .iter()
                .enumerate()
                .all(|(k, a)| *a == crate::mir::ir::Affine::var(k as u32));
        let same = g.nodes[r.node].outputs[r.port as usize] == node.outputs[0];
        if identity && same {
            rename.insert(Port { node: id, port: 0 }, r.src());
            keep[id.index()] = false;
            names.push((r.node, node.label.clone()));
            dropped.push(format!("{id}"));
        }
    }
    if dropped.is_empty() {
        return Vec::new();
    }
    for (src, name) in names {
        if g.nodes[src].label.is_empty() {
            g.nodes[src].label = name;
        }
    }
    super::util::rebuild(g, &keep, &rename);
    vec![Rewrite {
        pass: "fuse-maps",
        law: Law::Functor,
        detail: format!(
            "dropped {} map(s) that only copy a tensor: {}",
            dropped.len(),
            dropped.join(", ")
        ),
    }]
}

/// Inlines reads of rank-0 constants as literals.
fn inline_constants(g: &mut Graph) -> Vec<Rewrite> {
    let mut count = 0;
    for c in g.nodes.ids().collect::<Vec<_>>() {
        let consts: Vec<Option<flow_runtime::Scalar>> = match &g.nodes[c].kind {
            NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => reads
                .iter()
                .map(|r| match &g.nodes[r.node].kind {
                    NodeKind::Const { value } if value.shape.is_empty() => Some(value.get(0)),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        if consts.iter().all(Option::is_none) {
            continue;
        }
        let node = &mut g.nodes[c];
        let exprs = match &mut node.kind {
            NodeKind::Map { body, .. } => body,
            NodeKind::Reduce { args, .. } => args,
            _ => continue,
        };
        for e in exprs.iter_mut() {
            *e = e.rewrite(&mut |x| match x {
                ScalarExpr::Read(k) => consts[*k as usize].map(|s| {
                    count += 1;
                    ScalarExpr::Const(s)
                }),
                _ => None,
            });
        }
        node.prune_reads();
    }
    if count == 0 {
        return Vec::new();
    }
    vec![Rewrite {
        pass: "fuse-maps",
        law: Law::ReferentialTransparency,
        detail: format!("inlined {count} read(s) of scalar constants"),
    }]
}
