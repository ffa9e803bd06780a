//! The coordinator's caches.
//!
//! - The **graph cache** maps the structural hash of a dispatched graph *before* the passes
//!   (with the pass selection and configuration mixed in) to the optimized graph and its own
//!   structural hash, so a loop that dispatches the same structure again skips the passes.
//! - The **result cache** maps a *result key* — the structural hash of the optimized graph
//!   and the content hash of every input tensor, in order — to the graph's outputs. In
//!   memory it holds at most [`MEMORY_BYTES`] of tensors (the oldest entries go first); the
//!   host may keep a persistent copy ([`Host::cache_load`](super::Host::cache_load)), whose
//!   payload [`encode`] and [`decode`] write and read. A payload that does not decode into
//!   tensors of exactly the graph's output types is a miss, never trusted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use flow_runtime::Tensor;

use crate::mir::hash::Hash;
use crate::mir::ir::{Graph, TensorTy};

/// At most this many bytes of results are kept in memory.
pub const MEMORY_BYTES: usize = 64 << 20;

/// What the caches did during a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Graphs dispatched.
    pub dispatched: usize,
    /// Graphs the passes ran on (graph-cache misses).
    pub optimized: usize,
    /// Optimized graphs taken from the graph cache.
    pub graphs_reused: usize,
    /// Graphs run by a backend.
    pub evaluated: usize,
    /// Results taken from the in-memory result cache.
    pub memory_hits: usize,
    /// Results taken from the persistent result cache.
    pub disk_hits: usize,
    /// The most bytes of tensor data held at once: the coordinator's computed tensors plus
    /// the live tensors of the graph being run (measured by the backend as it allocates and
    /// frees them).
    pub peak_bytes: u128,
}

/// An optimized graph, shared by every dispatch of the same structure.
pub struct Optimized {
    pub graph: Graph,
    /// The structural hash of `graph`.
    pub hash: Hash,
}

/// The caches of one run, shared by the coordinators of its `test` blocks.
#[derive(Default)]
pub struct Caches {
    pub(super) graphs: HashMap<Hash, Rc<Optimized>>,
    results: HashMap<Hash, Vec<Rc<Tensor>>>,
    order: VecDeque<Hash>,
    bytes: usize,
    pub stats: CacheStats,
}

fn tensor_bytes(t: &Tensor) -> usize {
    t.len() * t.dtype().size_bytes()
}

impl Caches {
    /// The results stored under `key` in memory.
    pub(super) fn result(&self, key: &Hash) -> Option<Vec<Rc<Tensor>>> {
        self.results.get(key).cloned()
    }

    /// Remembers results; entries larger than the whole budget are not kept.
    pub(super) fn store_result(&mut self, key: Hash, outs: &[Rc<Tensor>]) {
        let size: usize = outs.iter().map(|t| tensor_bytes(t)).sum();
        if size > MEMORY_BYTES || self.results.contains_key(&key) {
            return;
        }
        while self.bytes + size > MEMORY_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(ts) = self.results.remove(&old) {
                self.bytes -= ts.iter().map(|t| tensor_bytes(t)).sum::<usize>();
            }
        }
        self.bytes += size;
        self.order.push_back(key);
        self.results.insert(key, outs.to_vec());
    }

    /// The tensors the result cache holds, by address (for the coordinator's collection,
    /// which must not count the cache's references as uses).
    pub(super) fn held(&self) -> HashSet<*const Tensor> {
        self.results.values().flatten().map(Rc::as_ptr).collect()
    }
}

/// The result key: the optimized graph's hash and the inputs' content hashes.
pub fn result_key(graph: &Hash, inputs: &[Hash]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"flow-result-v1");
    h.update(graph);
    h.update(&(inputs.len() as u64).to_le_bytes());
    for i in inputs {
        h.update(i);
    }
    *h.finalize().as_bytes()
}

/// The payload of a persistent entry: the number of tensors, then each as a length and a
/// `.npy` file.
pub fn encode(outs: &[Rc<Tensor>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(outs.len() as u64).to_le_bytes());
    for t in outs {
        let npy = flow_runtime::write_npy(t);
        v.extend_from_slice(&(npy.len() as u64).to_le_bytes());
        v.extend_from_slice(&npy);
    }
    v
}

/// Decodes a payload into tensors of exactly the types `want`, or `None`.
pub fn decode(bytes: &[u8], want: &[TensorTy]) -> Option<Vec<Tensor>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn word(b: &mut &[u8]) -> Option<usize> {
        let w = take(b, 8)?;
        usize::try_from(u64::from_le_bytes(w.try_into().ok()?)).ok()
    }
    let mut b = bytes;
    if word(&mut b)? != want.len() {
        return None;
    }
    let mut out = Vec::with_capacity(want.len());
    for ty in want {
        let n = word(&mut b)?;
        let t = flow_runtime::read_npy(take(&mut b, n)?).ok()?;
        if TensorTy::of(&t) != *ty {
            return None;
        }
        out.push(t);
    }
    b.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_runtime::{DType, Data};

    fn t(v: Vec<f32>) -> Rc<Tensor> {
        let n = v.len();
        Rc::new(Tensor::new(vec![n], Data::F32(v)).expect("shape"))
    }

    #[test]
    fn payloads_round_trip_and_reject_anything_else() {
        let outs = vec![t(vec![1.0, 2.0]), t(vec![3.0])];
        let want: Vec<TensorTy> = outs.iter().map(|x| TensorTy::of(x)).collect();
        let bytes = encode(&outs);
        let back = decode(&bytes, &want).expect("round trip");
        assert_eq!(back, outs.iter().map(|x| (**x).clone()).collect::<Vec<_>>());
        // Wrong types, a truncated payload, trailing bytes: all misses.
        let other = vec![TensorTy::new(DType::F64, vec![2]), want[1].clone()];
        assert!(decode(&bytes, &other).is_none());
        assert!(decode(&bytes, &want[..1]).is_none());
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], &want).is_none(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long, &want).is_none());
    }

    #[test]
    fn the_memory_cache_is_bounded() {
        let mut c = Caches::default();
        let big = Rc::new(Tensor::zeros(DType::F32, &[MEMORY_BYTES / 4 / 2 + 1]).expect("size"));
        c.store_result([1; 32], std::slice::from_ref(&big));
        assert!(c.result(&[1; 32]).is_some());
        c.store_result([2; 32], std::slice::from_ref(&big));
        // The second entry does not fit beside the first: the first goes.
        assert!(c.result(&[1; 32]).is_none());
        assert!(c.result(&[2; 32]).is_some());
        assert!(c.bytes <= MEMORY_BYTES);
        let huge = Rc::new(Tensor::zeros(DType::F32, &[MEMORY_BYTES / 4 + 1]).expect("size"));
        c.store_result([3; 32], &[huge]);
        assert!(c.result(&[3; 32]).is_none());
    }
}
