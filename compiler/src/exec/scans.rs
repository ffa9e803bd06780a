//! The reuse of the buffers of the coordinator's primitive results (`filter`, `partition`,
//! the sorts): the last [`KEPT_RESULTS`] results are kept, and once the program has dropped
//! one, the next primitive of the same type and length writes into its buffer.
//!
//! (The scans, `reduce_by_index` and `scatter` are graph nodes since issue 16: the native
//! executor's buffer pool reuses their buffers, see `native/prims.rs`.)

use std::rc::Rc;

use flow_runtime::tensor::Data;
use flow_runtime::Tensor;

use super::Machine;

pub(super) use crate::native::prims::output;

/// How many results of filters, partitions and sorts the coordinator keeps to reuse their
/// buffers.
const KEPT_RESULTS: usize = 2;

impl<'p, 'h> Machine<'p, 'h> {
    /// The buffer of a kept result the program has dropped (the last such), if any: the
    /// others are let go.
    pub(super) fn spare_buffer(&mut self) -> Option<Data> {
        let mut spare = None;
        let kept = std::mem::take(&mut self.prim_results);
        for t in kept {
            match Rc::try_unwrap(t) {
                Ok(t) => spare = Some(t.data),
                Err(t) => self.prim_results.push(t),
            }
        }
        spare
    }

    /// Keeps `t`, a new result, to reuse its buffer once the program drops it.
    pub(super) fn keep_result(&mut self, t: &Rc<Tensor>) {
        if self.prim_results.len() >= KEPT_RESULTS {
            self.prim_results.remove(0);
        }
        self.prim_results.push(t.clone());
    }
}
