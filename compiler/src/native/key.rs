//! The contract between the executor and the code generator: the `dims` a kernel receives
//! (its extents, so one kernel serves every shape) and the structure key kernels are cached
//! and looked up by (`codegen::Jit`, and the table of an executable made by `flowc build`).

use crate::mir::ir::{Graph, Node, NodeId, NodeKind};
use crate::mir::print::print_node;

/// The `dims` argument of the kernel of `node`: the free extents, the reduced extents (for a
/// reduction), then the extents of every tensor read, in read order.
pub fn kernel_dims(g: &Graph, node: &Node) -> Vec<i64> {
    let (space, red, reads): (&[usize], &[usize], &[crate::mir::ir::Read]) = match &node.kind {
        NodeKind::Map { space, reads, .. } => (space, &[], reads),
        NodeKind::Reduce {
            space, red, reads, ..
        } => (space, red, reads),
        _ => panic!("internal error: only maps and reductions are kernels"),
    };
    let mut dims: Vec<i64> = space.iter().chain(red).map(|&n| n as i64).collect();
    for r in reads {
        let shape = &g.nodes[r.node].outputs[r.port as usize].shape;
        dims.extend(shape.iter().map(|&n| n as i64));
    }
    dims
}

/// The cache key of a kernel: its text with read sources replaced by their element types and
/// ranks, and every extent erased — kernels take their extents as arguments, so one compiled
/// kernel serves every shape of the same structure.
pub fn structure_key(g: &Graph, node: &Node) -> String {
    let mut n = node.clone();
    n.label.clear();
    for t in &mut n.outputs {
        t.shape.fill(0);
    }
    let mut types = String::new();
    match &mut n.kind {
        NodeKind::Map { space, reads, .. } => {
            space.fill(0);
            erase_sources(g, reads, &mut types);
        }
        NodeKind::Reduce {
            space,
            red,
            reads,
            monoid,
            ..
        } => {
            space.fill(0);
            red.fill(0);
            erase_sources(g, reads, &mut types);
            // Monoids are part of the structure.
            if let crate::mir::ir::MonoidRef::User(m) = monoid {
                types.push_str(&format!(" monoid:{:?}", g.monoids[*m]));
            }
        }
        _ => {}
    }
    format!("{}{types}", print_node(NodeId(0), &n))
}

/// Replaces each read's source by its element type and rank, written to `types`.
fn erase_sources(g: &Graph, reads: &mut [crate::mir::ir::Read], types: &mut String) {
    for (k, r) in reads.iter_mut().enumerate() {
        let t = &g.nodes[r.node].outputs[r.port as usize];
        types.push_str(&format!(" r{k}:{}/{}", t.dtype, t.shape.len()));
        r.node = NodeId(0);
        r.port = 0;
    }
}
