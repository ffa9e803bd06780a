//! The memory plan of a graph: when each computed tensor can be freed, and how many bytes of
//! tensors are live at once when a backend runs the nodes in order and frees every tensor
//! right after its last reader (both backends do exactly that, and measure what they hold).
//!
//! Sizes are counted in `u128`, so no shape can overflow the count; a tensor whose size does
//! not fit in memory at all is reported by [`check_sizes`] before anything is allocated.

use flow_runtime::format_shape;
use flow_runtime::tensor::checked_size;

use super::ir::{Graph, NodeId, NodeKind, TensorTy};
use super::Idx;

/// The bytes of a tensor of type `t`, exactly when it is below 2^128 (the product saturates
/// there), so no shape can make the count wrap around.
pub fn bytes_of(t: &TensorTy) -> u128 {
    t.shape
        .iter()
        .fold(1u128, |n, &d| n.saturating_mul(d as u128))
        .saturating_mul(t.dtype.size_bytes() as u128)
}

/// When each node's tensors are freed and how much is live at the worst moment.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// For each node, the index of the node after which its tensors are freed; `None` for
    /// inputs (held by the caller) and for nodes whose tensors are graph outputs.
    pub free_after: Vec<Option<usize>>,
    /// The most bytes of computed tensors (not inputs) live at once.
    pub peak: u128,
    /// The node being computed at that moment.
    pub peak_node: Option<NodeId>,
    /// The largest tensor live at that moment (its node).
    pub peak_largest: Option<NodeId>,
}

/// The memory plan of `g` (topologically ordered).
pub fn plan(g: &Graph) -> MemoryPlan {
    let n = g.nodes.len();
    let mut last: Vec<Option<usize>> = (0..n).map(Some).collect();
    for (i, node) in g.nodes.iter().enumerate() {
        for p in node.inputs() {
            let l = &mut last[p.node.index()];
            *l = Some(l.map_or(i, |x| x.max(i)));
        }
    }
    for p in &g.outputs {
        last[p.node.index()] = None;
    }
    let mut free_at: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in g.nodes.iter().enumerate() {
        if matches!(node.kind, NodeKind::Input { .. }) {
            last[i] = None;
        }
        if let Some(l) = last[i] {
            free_at[l].push(i);
        }
    }
    let size = |i: usize| -> u128 { g.nodes[NodeId::new(i)].outputs.iter().map(bytes_of).sum() };
    let (mut live, mut peak, mut peak_node) = (0u128, 0u128, None);
    let mut live_nodes: std::collections::BTreeSet<usize> = Default::default();
    let mut peak_largest = None;
    for (i, node) in g.nodes.iter().enumerate() {
        if !matches!(node.kind, NodeKind::Input { .. }) {
            live += size(i);
            live_nodes.insert(i);
            if live > peak {
                peak = live;
                peak_node = Some(NodeId::new(i));
                peak_largest = live_nodes
                    .iter()
                    .copied()
                    .max_by_key(|&j| (size(j), std::cmp::Reverse(j)))
                    .map(NodeId::new);
            }
        }
        for &j in &free_at[i] {
            live -= size(j);
            live_nodes.remove(&j);
        }
    }
    MemoryPlan {
        free_after: last,
        peak,
        peak_node,
        peak_largest,
    }
}

/// Rejects a graph with a tensor too large to count or allocate, naming the tensor.
pub fn check_sizes(g: &Graph) -> Result<(), String> {
    for (id, node) in g.nodes.iter_enumerated() {
        for t in &node.outputs {
            if let Err(e) = checked_size(t.dtype, &t.shape) {
                return Err(format!(
                    "tensor {} of type {}{} cannot be allocated: {e}",
                    describe(g, id),
                    t.dtype,
                    format_shape(&t.shape)
                ));
            }
        }
    }
    Ok(())
}

/// A node for messages: `%3 "h"`.
pub fn describe(g: &Graph, id: NodeId) -> String {
    let label = &g.nodes[id].label;
    if label.is_empty() {
        format!("{id}")
    } else {
        format!("{id} \"{label}\"")
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.0 MiB`, `2.0 GiB`.
pub fn format_bytes(b: u128) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intermediates_are_freed_after_their_last_reader() {
        // %1 is read by %2 and %3; %2 only by %3; the output is %3.
        let g = crate::mir::parse(
            "%0 = input 0 : f32[4]
%1 = map [4] reads(%0.0[i0]) : f32[4] { add(r0, 1.0f32) }
%2 = map [4] reads(%1.0[i0]) : f32[4] { mul(r0, r0) }
%3 = map [4] reads(%1.0[i0], %2.0[i0]) : f32[4] { sub(r0, r1) }
output %3.0
",
        )
        .expect("valid MIR");
        let p = plan(&g);
        assert_eq!(p.free_after, vec![None, Some(3), Some(3), None]);
        // %1, %2 and %3 are live together while %3 runs.
        assert_eq!(p.peak, 48);
        assert_eq!(p.peak_node, Some(NodeId::new(3)));
        assert_eq!(p.peak_largest, Some(NodeId::new(1)));
    }

    #[test]
    fn absurd_shapes_are_named() {
        let g = crate::mir::parse(
            "%0 = input 0 : f32[4]
%1 \"big\" = map [4294967296, 4294967296] reads(%0.0[0]) : f32[4294967296, 4294967296] { r0 }
output %1.0
",
        )
        .expect("valid MIR");
        let e = check_sizes(&g).unwrap_err();
        assert!(e.contains("%1 \"big\""), "{e}");
        assert!(e.contains("[4294967296, 4294967296]"), "{e}");
        assert_eq!(bytes_of(&g.nodes[NodeId::new(1)].outputs[0]), 1u128 << 66);
    }

    #[test]
    fn bytes_read_well() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 << 20), "3.0 MiB");
    }
}
