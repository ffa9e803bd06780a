//! Graphviz DOT drawings of MIR graphs: one box per node, materialized tensors as bold edges,
//! shards visible as the pieces of a concatenation; with the schedule, its launches as
//! clusters labelled with their shards.

use std::fmt::Write;

use super::ir::{Graph, NodeKind};
use super::schedule::Schedule;
use super::Idx;

/// The drawing of `g`; with its schedule, the launches are clusters and the materialized
/// tensors bold edges.
pub fn to_dot(g: &Graph, title: &str, schedule: Option<&Schedule>) -> String {
    let launches = schedule.map_or(&[][..], |s| &s.launches);
    let materialized = schedule.map(|s| s.materialized(g)).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "digraph flow {{");
    let _ = writeln!(
        out,
        "  label={title:?}; rankdir=TB; node [shape=box, fontname=\"monospace\"];"
    );
    let mut in_kernel = vec![false; g.nodes.len()];
    for (k, launch) in launches.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_l{k} {{ label=\"launch l{k}: {} shard(s)\"; style=rounded; color=blue;",
            launch.shards,
        );
        for m in &launch.members {
            in_kernel[m.node.index()] = true;
            let _ = writeln!(
                out,
                "    n{} [label={:?}];",
                m.node.index(),
                label(g, m.node)
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for id in g.nodes.ids() {
        if !in_kernel[id.index()] {
            let _ = writeln!(
                out,
                "  n{} [label={:?}, style=dashed];",
                id.index(),
                label(g, id)
            );
        }
    }
    for (id, node) in g.nodes.iter_enumerated() {
        for src in node.inputs() {
            let bold = if materialized.contains(&src) {
                ", penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\"{bold}];",
                src.node.index(),
                id.index(),
                src.port
            );
        }
    }
    for (k, o) in g.outputs.iter().enumerate() {
        let _ = writeln!(out, "  out{k} [label=\"output {k}\", shape=ellipse];");
        let _ = writeln!(out, "  n{} -> out{k} [penwidth=2];", o.node.index());
    }
    let _ = writeln!(out, "}}");
    out
}

fn label(g: &Graph, id: super::ir::NodeId) -> String {
    let n = &g.nodes[id];
    let kind = match &n.kind {
        NodeKind::Input { index } => format!("input {index}"),
        NodeKind::Const { .. } => "const".into(),
        NodeKind::Random { dist, seed } => format!("random {} {seed}", dist.name()),
        NodeKind::Map { .. } => "map".into(),
        NodeKind::Reduce { .. } => "reduce".into(),
        NodeKind::Scan { exclusive, .. } => {
            if *exclusive { "exclusive scan" } else { "scan" }.into()
        }
        NodeKind::ReduceByIndex { bins, .. } => format!("histogram of {bins} bins"),
        NodeKind::Scatter { .. } => "scatter".into(),
        NodeKind::Concat { parts, .. } => format!("concat of {} shards", parts.len()),
        NodeKind::Slice { .. } => "slice".into(),
    };
    let ty = n
        .outputs
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if n.label.is_empty() {
        format!("{id} {kind}\n{ty}")
    } else {
        format!("{id} {:?} {kind}\n{ty}", n.label)
    }
}
