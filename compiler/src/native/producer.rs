//! The elements of a scan, histogram or scatter node on the native backend: each expression's
//! tensor when every expression is a plain read, else a [`Producer`] — the compiled kernel of
//! a `Map` of the node's reads whose body is the node's expressions (the fused producer) —
//! that the runtime's routines call on blocks of at most `SCAN_BLOCK` elements into a
//! cache-resident scratch or the output itself (`flow_runtime::prims::source`), so no tensor
//! of all the elements is made. The producer's kernel is the one a `Map` node of the same
//! structure gets (cached by structure, recorded by `flowc build`), and computes what the
//! interpreter computes, bit for bit.
//!
//! A kernel computes whole rows of its map's outermost axis, so the routine asks for whole
//! ones: a histogram or a scatter of rows for groups of rows of any rank; a scan whose rows
//! (its last axis) hold at most `SCAN_BLOCK` elements for groups of whole outermost rows —
//! of rank 3 or more, the scan's tasks are grouped by them (the producer's *unit*), which
//! changes no bits, only which task computes a row.
//!
//! Where a producer is not used, the expressions are computed first as a whole `Map` (on the
//! kernels) and dropped after the node: when the kernel source has no kernel for the map (an
//! executable's table); for a scan of rank 2 or more whose rows are longer than `SCAN_BLOCK`
//! — its blocks are pieces of a row, which a kernel cannot compute alone (that needs a kernel
//! entry over a range of its innermost axis, a change of the kernel ABI); and for a scan of
//! rank 3 or more whose outermost rows hold more than `SCAN_BLOCK` elements and are fewer
//! than `PRODUCED_OUTER_ROWS` (a task per outermost row would leave threads idle).

use std::rc::Rc;

use flow_runtime::abi::KernelFn;
use flow_runtime::pool::{Pool, TaskError, TaskErrorKind};
use flow_runtime::prims::source::{Elements, Fill, Fill2, Pairs};
use flow_runtime::prims::SCAN_BLOCK;
use flow_runtime::{DType, Data, Tensor};

use super::{data_ptr, kernel_dims, Native, NativeError};
use crate::mir::ir::{Affine, Edge, Graph, Node, NodeId, NodeKind, Port, Read, ScalarExpr};
use crate::mir::Idx;

/// The elements of a node.
pub(super) enum Elems {
    /// One tensor per expression.
    Tensors(Vec<Rc<Tensor>>),
    /// Computed block by block.
    Produced(Producer),
}

/// A compiled `Map` of a node's reads whose outputs are the node's expressions, with the
/// buffers and extents it is called with.
pub(super) struct Producer {
    kernel: KernelFn,
    /// One pointer per read of the map, into `_inputs`.
    reads: Vec<*mut u8>,
    dims: Vec<i64>,
    /// Each output's element type.
    dtypes: Vec<DType>,
    /// The elements of one row of the map's outermost dimension.
    row: usize,
    /// The elements of each output.
    pub(super) len: usize,
    /// The tensors read, kept alive while the pointers are used.
    _inputs: Vec<Rc<Tensor>>,
}

// SAFETY: the pointers are only read through (by the kernel), into tensors `_inputs` keeps
// alive; the kernel is callable from any thread.
unsafe impl Sync for Producer {}

impl Producer {
    /// An empty vector of output `k`'s element type: what the monoid dispatch matches on.
    pub(super) fn empty(&self, k: usize) -> Data {
        Data::zeros(self.dtypes[k], 0)
    }

    /// Computes elements `lo..hi` of every output `k` at `outs[k]` (`hi - lo` elements each);
    /// returns the kernel's status. `lo` and `hi` are whole rows of the map (or `hi` its end).
    fn fill(&self, lo: usize, hi: usize, outs: &[*mut u8]) -> i32 {
        debug_assert!(
            lo.is_multiple_of(self.row) && (hi.is_multiple_of(self.row) || hi == self.len)
        );
        let mut bufs = self.reads.clone();
        // The kernel writes row `r` at its place in a whole output: the base that puts row
        // `lo / row` at `outs[k]`.
        bufs.extend(
            outs.iter()
                .zip(&self.dtypes)
                .map(|(&p, d)| p.wrapping_sub(lo * d.size_bytes())),
        );
        // SAFETY: the kernel was compiled for this map (its reads are `reads`, in bounds as
        // the verifier proved for the node), and writes rows `lo / row..hi / row` only: the
        // `hi - lo` elements at each `outs[k]`, which the caller gives it.
        unsafe {
            (self.kernel)(
                bufs.as_ptr(),
                self.dims.as_ptr(),
                (lo / self.row) as i64,
                hi.div_ceil(self.row) as i64,
            )
        }
    }
}

/// The fill of a scan's elements by `p`'s one output.
pub(super) fn fill1<T>(p: Option<&Producer>) -> impl Fn(usize, usize, *mut T) -> i32 + Sync + '_ {
    move |lo, hi, out| p.map_or(-1, |p| p.fill(lo, hi, &[out as *mut u8]))
}

/// The fill of a histogram's or scatter's indices and values by `p`'s two outputs.
pub(super) fn fill2<I, T>(
    p: Option<&Producer>,
) -> impl Fn(usize, usize, *mut I, *mut T) -> i32 + Sync + '_ {
    move |lo, hi, idx, vals| p.map_or(-1, |p| p.fill(lo, hi, &[idx as *mut u8, vals as *mut u8]))
}

/// The elements `x` (with no producer) or those `fill` computes.
pub(super) fn elements<'a, T>(
    x: &'a [T],
    p: Option<&Producer>,
    fill: &'a Fill<'a, T>,
) -> Elements<'a, T> {
    match p {
        Some(p) => Elements::Produced {
            len: p.len,
            unit: p.row,
            fill,
        },
        None => Elements::Slice(x),
    }
}

/// The pairs `idx`, `vals` (with no producer) or those `fill` computes.
pub(super) fn pairs<'a, I, T>(
    idx: &'a [I],
    vals: &'a [T],
    p: Option<&Producer>,
    fill: &'a Fill2<'a, I, T>,
) -> Pairs<'a, I, T> {
    match p {
        Some(p) => Pairs::Produced { len: p.len, fill },
        None => Pairs::Slices(idx, vals),
    }
}

/// Whether a read is the whole of a tensor of shape `space`, point for point.
fn is_plain(r: &Read, space: &[usize], shape: &[usize]) -> bool {
    r.edge == Edge::Strict
        && shape == space
        && r.proj.len() == space.len()
        && r.proj
            .iter()
            .enumerate()
            .all(|(k, a)| *a == Affine::var(k as u32))
}

impl Native {
    /// The elements of `exprs` over `space`: a plain read's tensor itself, or a producer of
    /// all of them, or (where no producer can serve, see the module's documentation) all of
    /// them computed as one `Map` of the node's reads. `scan` says the routine is a scan
    /// (which asks for pieces of rows); a histogram or a scatter asks for whole rows of the
    /// space's first axis.
    pub(super) fn elements(
        &mut self,
        g: &Graph,
        space: &[usize],
        reads: &[Read],
        exprs: &[ScalarExpr],
        values: &[Vec<Rc<Tensor>>],
        scan: bool,
    ) -> Result<Elems, NativeError> {
        if let Some(ts) = plain_tensors(space, reads, exprs, values) {
            return Ok(Elems::Tensors(ts));
        }
        if let Some(p) = self.producer(g, space, reads, exprs, values, scan)? {
            return Ok(Elems::Produced(p));
        }
        Ok(Elems::Tensors(
            self.element_tensors(g, space, reads, exprs, values)?,
        ))
    }

    /// The producer of `exprs` over `space` (not all plain reads), or `None` where none can
    /// serve (see the module's documentation).
    pub(super) fn producer(
        &mut self,
        g: &Graph,
        space: &[usize],
        reads: &[Read],
        exprs: &[ScalarExpr],
        values: &[Vec<Rc<Tensor>>],
        scan: bool,
    ) -> Result<Option<Producer>, NativeError> {
        let row: usize = space.iter().skip(1).product();
        let len: usize = space.iter().product();
        if (scan && !scan_producible(space)) || len == 0 {
            return Ok(None);
        }
        let (sub, at, inputs) = producer_map(g, space, reads, exprs, values);
        let Some(k) = self.kernels.kernel(&sub, at, &self.hooks)? else {
            return Ok(None);
        };
        let map = &sub.nodes[at];
        let NodeKind::Map { reads, .. } = &map.kind else {
            unreachable!("a map")
        };
        Ok(Some(Producer {
            kernel: k.f,
            reads: reads
                .iter()
                .map(|r| data_ptr(&inputs[r.node.index()].data) as *mut u8)
                .collect(),
            dims: kernel_dims(&sub, map),
            dtypes: map.outputs.iter().map(|t| t.dtype).collect(),
            row,
            len,
            _inputs: inputs,
        }))
    }
}

impl Producer {
    /// On MPI ranks: elements `span` (whole rows of the map) of every output, computed in
    /// tasks of `unit` elements (whole rows) on `pool`'s threads into vectors of all the
    /// elements, zero outside `span` (pages never written are never touched: a rank's
    /// memory holds its own elements), and the error of the lowest failing task (numbered
    /// in the span's tasks), if any.
    pub(super) fn span(
        &self,
        pool: &Pool,
        span: std::ops::Range<usize>,
        unit: usize,
    ) -> Result<(Vec<Data>, Result<(), TaskError>), NativeError> {
        let mut outs: Vec<Data> = Vec::with_capacity(self.dtypes.len());
        for &d in &self.dtypes {
            outs.push(Data::try_zeros(d, self.len).map_err(super::alloc_error(None))?);
        }
        // Addresses, so the closure is `Sync`; each task writes its own elements only.
        let bases: Vec<usize> = outs
            .iter_mut()
            .map(|d| super::data_ptr_mut(d) as usize)
            .collect();
        let unit = unit.max(self.row);
        let tasks = span.len().div_ceil(unit);
        let res = pool.run(tasks, &|j, _| {
            let lo = span.start + j * unit;
            let hi = (lo + unit).min(span.end);
            let at: Vec<*mut u8> = bases
                .iter()
                .zip(&self.dtypes)
                .map(|(&b, d)| (b + lo * d.size_bytes()) as *mut u8)
                .collect();
            match self.fill(lo, hi, &at) {
                0 => Ok(()),
                code => Err(TaskError {
                    task: j,
                    kind: TaskErrorKind::Code(code),
                    attempts: 1,
                }),
            }
        });
        Ok((outs, res))
    }
}

/// The element type of each expression over a space of `rank` index variables reading
/// tensors of `g` through `reads` (`None`: not a scalar, which the checker refused).
pub(super) fn expr_dtypes(
    g: &Graph,
    rank: usize,
    reads: &[Read],
    exprs: &[ScalarExpr],
) -> Vec<Option<DType>> {
    let read_dtypes: Vec<DType> = reads
        .iter()
        .map(|r| g.nodes[r.node].outputs[r.port as usize].dtype)
        .collect();
    let cx = crate::mir::typeck::ExprCx {
        n_index: rank,
        reads: &read_dtypes,
        params: &[],
    };
    exprs
        .iter()
        .map(|e| match crate::mir::typeck::type_of(e, &cx) {
            Ok(crate::mir::ir::Ty::Scalar(d)) => Some(d),
            _ => None,
        })
        .collect()
}

/// The fewest rows of its outermost axis a scan of rank 3 or more whose rows of that axis
/// hold more than `SCAN_BLOCK` elements needs to take a producer: its tasks then hold one
/// such row each (the producer computes whole ones), and fewer would leave threads idle.
pub(super) const PRODUCED_OUTER_ROWS: usize = 64;

/// Whether a scan over `space` can ask a producer for its elements: the scan asks for whole
/// rows of the map's outermost axis (see `flow_runtime::prims::scan::scan_elements`) when its
/// own rows (the last axis) hold at most `SCAN_BLOCK` elements, and for pieces of its rows
/// otherwise, which only a 1-D producer computes (a kernel computes whole rows of its
/// outermost axis).
pub(super) fn scan_producible(space: &[usize]) -> bool {
    let outer: usize = space.iter().skip(1).product();
    let last = space.last().copied().unwrap_or(1);
    match space.len() {
        0 | 1 => true,
        2 => last <= SCAN_BLOCK,
        _ => last <= SCAN_BLOCK && (outer <= SCAN_BLOCK || space[0] >= PRODUCED_OUTER_ROWS),
    }
}

/// Each expression's tensor when every expression is a plain read of a whole tensor.
pub(super) fn plain_tensors(
    space: &[usize],
    reads: &[Read],
    exprs: &[ScalarExpr],
    values: &[Vec<Rc<Tensor>>],
) -> Option<Vec<Rc<Tensor>>> {
    exprs
        .iter()
        .map(|e| match e {
            ScalarExpr::Read(k) => {
                let r = reads.get(*k as usize)?;
                let t = &values[r.node.index()][r.port as usize];
                is_plain(r, space, &t.shape).then(|| t.clone())
            }
            _ => None,
        })
        .collect()
}

/// Whether every expression is a plain read of a whole tensor of `g` (then [`Native::elements`]
/// gives those tensors themselves, as [`plain_tensors`] does from their values).
pub(super) fn plain_in_graph(
    g: &Graph,
    space: &[usize],
    reads: &[Read],
    exprs: &[ScalarExpr],
) -> bool {
    exprs.iter().all(|e| match e {
        ScalarExpr::Read(k) => reads.get(*k as usize).is_some_and(|r| {
            g.nodes
                .get(r.node)
                .and_then(|n| n.outputs.get(r.port as usize))
                .is_some_and(|t| is_plain(r, space, &t.shape))
        }),
        _ => false,
    })
}

impl Native {
    /// The elements of `exprs` over `space` as whole tensors: a plain read's tensor itself,
    /// else all of them computed as one `Map` of the node's reads (on the kernels).
    pub(super) fn element_tensors(
        &mut self,
        g: &Graph,
        space: &[usize],
        reads: &[Read],
        exprs: &[ScalarExpr],
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Rc<Tensor>>, NativeError> {
        if let Some(ts) = plain_tensors(space, reads, exprs, values) {
            return Ok(ts);
        }
        let (sub, _, inputs) = producer_map(g, space, reads, exprs, values);
        self.eval_nodes(&sub, &inputs)
    }
}

/// A graph of the tensors a node reads (as inputs) and one `Map` over `space` whose body is
/// `exprs`; the map's id and the inputs.
fn producer_map(
    g: &Graph,
    space: &[usize],
    reads: &[Read],
    exprs: &[ScalarExpr],
    values: &[Vec<Rc<Tensor>>],
) -> (Graph, NodeId, Vec<Rc<Tensor>>) {
    let mut sub = Graph::new();
    sub.monoids = g.monoids.clone();
    let mut ports: Vec<Port> = Vec::new();
    let mut inputs: Vec<Rc<Tensor>> = Vec::new();
    let mut map_reads = reads.to_vec();
    for r in map_reads.iter_mut() {
        let k = match ports.iter().position(|p| *p == r.src()) {
            Some(k) => k,
            None => {
                let ty = g.nodes[r.node].outputs[r.port as usize].clone();
                sub.add(Node {
                    kind: NodeKind::Input {
                        index: ports.len() as u32,
                    },
                    outputs: vec![ty],
                    label: g.nodes[r.node].label.clone(),
                    span: None,
                });
                ports.push(r.src());
                inputs.push(values[r.node.index()][r.port as usize].clone());
                ports.len() - 1
            }
        };
        r.node = NodeId(k as u32);
        r.port = 0;
    }
    let cx_tys: Vec<crate::mir::ir::TensorTy> = expr_dtypes(g, space.len(), reads, exprs)
        .into_iter()
        .map(|d| crate::mir::ir::TensorTy::new(d.unwrap_or(DType::F32), space.to_vec()))
        .collect();
    let at = sub.add(Node {
        kind: NodeKind::Map {
            space: space.to_vec(),
            reads: map_reads,
            body: exprs.to_vec(),
        },
        outputs: cx_tys,
        label: "elements".into(),
        span: None,
    });
    sub.outputs = (0..exprs.len() as u32)
        .map(|port| Port { node: at, port })
        .collect();
    (sub, at, inputs)
}
