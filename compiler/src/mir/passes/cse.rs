//! Common-subexpression elimination: two nodes that compute the same thing (same kind, same
//! parameters, same reads of the same ports) become one.
//!
//! Law: referential transparency — equal computations have equal values.

use std::collections::HashMap;

use super::util::rebuild;
use super::{Law, PassConfig, Rewrite};
use crate::mir::hash::{node_key, Hash};
use crate::mir::ir::{Graph, NodeId, Port};
use crate::mir::Idx;

/// One sweep in graph order, each node hashed once (hash-consing): linear in the size of
/// the graph. A node's reads are redirected to the nodes already merged before it is hashed,
/// so chains of duplicates merge in the same sweep.
pub fn run(g: &mut Graph, _cfg: &PassConfig) -> Vec<Rewrite> {
    let mut seen: HashMap<Hash, NodeId> = HashMap::with_capacity(g.nodes.len());
    let mut rename: HashMap<Port, Port> = HashMap::new();
    let mut keep = vec![true; g.nodes.len()];
    let mut merged = Vec::new();
    for (id, node) in g.nodes.iter_mut_enumerated() {
        // The key is the node's structural hash (label excluded) with its reads already
        // redirected; redirecting in place is what `rebuild` does to kept nodes anyway.
        if !rename.is_empty() {
            node.map_inputs(&mut |p| *rename.get(&p).unwrap_or(&p));
        }
        let key = node_key(node);
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
