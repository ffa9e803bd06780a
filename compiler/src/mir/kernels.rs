//! Kernel grouping: after fusion, the set of loop nests a backend must emit and the tensors
//! that are materialized between them.
//!
//! Every `Map`, `Reduce` and `Random` node is a kernel, except that a `Map` that reads a
//! reduction's result point for point over the same index space, as that reduction's only
//! reader, runs as the reduction's *epilogue* in the same kernel (bias and activation after a
//! contraction, say). `Input`, `Const`, `Concat` and `Slice` are data, not kernels: shards
//! write straight into their part of a concatenation.

use std::fmt::Write;

use super::ir::{Affine, Graph, NodeId, NodeKind, Port};
use super::Idx;

#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// The nodes of the kernel, in order; the last one writes the kernel's result.
    pub nodes: Vec<NodeId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KernelPlan {
    pub kernels: Vec<Kernel>,
    /// Kernel results read by another kernel or returned: the tensors written to memory.
    pub materialized: Vec<Port>,
}

pub fn plan(g: &Graph) -> KernelPlan {
    let mut kernel_of: Vec<Option<usize>> = vec![None; g.nodes.len()];
    let mut kernels: Vec<Kernel> = Vec::new();
    for (id, node) in g.nodes.iter_enumerated() {
        match &node.kind {
            NodeKind::Map { space, reads, .. } => {
                // An epilogue reads a reduction point for point; every reader of that
                // reduction must be such an epilogue.
                let is_epilogue_read = |r: &super::ir::Read, space: &[usize]| {
                    matches!(&g.nodes[r.node].kind, NodeKind::Reduce { space: rs, .. } if rs == space)
                        && r.proj.len() == space.len()
                        && r.proj
                            .iter()
                            .enumerate()
                            .all(|(k, a)| *a == Affine::var(k as u32))
                };
                let epilogue_of = reads.iter().find_map(|r| {
                    if !is_epilogue_read(r, space) || g.outputs.iter().any(|o| o.node == r.node) {
                        return None;
                    }
                    let readers_ok = g.nodes.iter().all(|other| match &other.kind {
                        NodeKind::Map {
                            space: s2,
                            reads: r2,
                            ..
                        } => r2
                            .iter()
                            .all(|x| x.node != r.node || is_epilogue_read(x, s2)),
                        _ => other.inputs().iter().all(|p| p.node != r.node),
                    });
                    readers_ok.then_some(r.node)
                });
                match epilogue_of.and_then(|r| kernel_of[r.index()]) {
                    Some(k) if kernels[k].nodes.first() == epilogue_of.as_ref() => {
                        kernels[k].nodes.push(id);
                        kernel_of[id.index()] = Some(k);
                    }
                    _ => {
                        kernel_of[id.index()] = Some(kernels.len());
                        kernels.push(Kernel { nodes: vec![id] });
                    }
                }
            }
            NodeKind::Reduce { .. } | NodeKind::Random { .. } => {
                kernel_of[id.index()] = Some(kernels.len());
                kernels.push(Kernel { nodes: vec![id] });
            }
            _ => {}
        }
    }
    let mut materialized = Vec::new();
    for (id, node) in g.nodes.iter_enumerated() {
        for p in node.inputs() {
            let (Some(a), b) = (kernel_of[p.node.index()], kernel_of[id.index()]) else {
                continue;
            };
            if Some(a) != b && !materialized.contains(&p) {
                materialized.push(p);
            }
        }
    }
    for p in &g.outputs {
        if kernel_of[p.node.index()].is_some() && !materialized.contains(p) {
            materialized.push(*p);
        }
    }
    KernelPlan {
        kernels,
        materialized,
    }
}

/// The plan in words, one kernel per line, with the number of shards each kernel's root is
/// split into with shard block size `block`.
pub fn print_plan(g: &Graph, plan: &KernelPlan, block: usize) -> String {
    let mut out = String::new();
    for (k, kernel) in plan.kernels.iter().enumerate() {
        let parts: Vec<String> = kernel
            .nodes
            .iter()
            .map(|n| {
                let node = &g.nodes[*n];
                let kind = match &node.kind {
                    NodeKind::Map { space, .. } => format!("map {space:?}"),
                    NodeKind::Reduce { space, red, .. } => format!("reduce {space:?} over {red:?}"),
                    NodeKind::Random { dist, .. } => format!("random {}", dist.name()),
                    _ => "data".into(),
                };
                if node.label.is_empty() {
                    format!("{n} {kind}")
                } else {
                    format!("{n} \"{}\" {kind}", node.label)
                }
            })
            .collect();
        let root = &g.nodes[*kernel.nodes.first().expect("a kernel has a node")];
        let shards = super::passes::shard::shard_count(g, root, block);
        let _ = writeln!(
            out,
            "kernel k{k}: {} ({shards} shard{})",
            parts.join(" + epilogue "),
            if shards == 1 { "" } else { "s" }
        );
    }
    let mats: Vec<String> = plan.materialized.iter().map(|p| p.to_string()).collect();
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
