//! Common-subexpression elimination: two nodes that compute the same thing (same kind, same
//! parameters, same reads of the same ports) become one.
//!
//! Law: referential transparency — equal computations have equal values.

use std::collections::HashMap;

use super::util::rebuild;
use super::{Law, PassConfig, Rewrite};
use crate::mir::ir::{Graph, NodeId, Port};
use crate::mir::print::print_node;
use crate::mir::Idx;

pub fn run(g: &mut Graph, _cfg: &PassConfig) -> Vec<Rewrite> {
    let mut seen: HashMap<String, NodeId> = HashMap::new();
    let mut rename: HashMap<Port, Port> = HashMap::new();
    let mut keep = vec![true; g.nodes.len()];
    let mut merged = Vec::new();
    for (id, node) in g.nodes.iter_enumerated() {
        // The key is the node's text with its reads already redirected and its label erased.
        let mut n = node.clone();
        n.label.clear();
        n.map_inputs(&mut |p| *rename.get(&p).unwrap_or(&p));
        let key = print_node(NodeId::new(0), &n);
        match seen.get(&key) {
            Some(first) => {
                for port in 0..node.outputs.len() as u32 {
                    rename.insert(Port { node: id, port }, Port { node: *first, port });
                }
                keep[id.index()] = false;
                merged.push(format!("{id} = {first}"));
            }
            None => {
                seen.insert(key, id);
            }
        }
    }
    if merged.is_empty() {
        return Vec::new();
    }
    rebuild(g, &keep, &rename);
    vec![Rewrite {
        pass: "cse",
        law: Law::ReferentialTransparency,
        detail: format!(
            "merged {} duplicate node(s): {}",
            merged.len(),
            merged.join(", ")
        ),
    }]
}
