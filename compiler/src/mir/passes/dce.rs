//! Dead-code elimination: drops every node that no graph output needs.
//!
//! Law: referential transparency — an operation has no effect besides its value, so a value
//! nobody reads need not be computed.

use std::collections::HashMap;

use super::util::rebuild;
use super::{Law, PassConfig, Rewrite};
use crate::mir::ir::Graph;
use crate::mir::Idx;

pub fn run(g: &mut Graph, _cfg: &PassConfig) -> Vec<Rewrite> {
    let mut live = vec![false; g.nodes.len()];
    let mut stack: Vec<_> = g.outputs.iter().map(|p| p.node).collect();
    while let Some(n) = stack.pop() {
        if live[n.index()] {
            continue;
        }
        live[n.index()] = true;
        stack.extend(g.nodes[n].inputs().into_iter().map(|p| p.node));
    }
    let dead: Vec<String> = g
        .nodes
        .iter_enumerated()
        .filter(|(id, _)| !live[id.index()])
        .map(|(id, n)| {
            if n.label.is_empty() {
                format!("{id}")
            } else {
                format!("{id} \"{}\"", n.label)
            }
        })
        .collect();
    if dead.is_empty() {
        return Vec::new();
    }
    rebuild(g, &live, &HashMap::new());
    vec![Rewrite {
        pass: "dce",
        law: Law::ReferentialTransparency,
        detail: format!(
            "dropped {} node(s) no output needs: {}",
            dead.len(),
            dead.join(", ")
        ),
    }]
}
