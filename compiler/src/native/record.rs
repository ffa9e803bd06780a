//! Scans and histograms whose user monoid has a tuple state, a wrap or an unwrap, on the
//! native backend: the same routines as a scalar monoid (`flow_runtime::prims`, so the same
//! fixed bracketing and the interpreter's bits at every thread count), over records of `K`
//! 64-bit words, one word per state field (`flow_runtime::prims::pack_fields`' layout).
//!
//! - **The states** of the elements are the node's arguments passed through the wrap: a `Map`
//!   of the node's reads with one output per field (structure of arrays), computed on the
//!   kernels as a whole tensor per field (no fused producer here), then packed into records
//!   block by block inside the routine, in its output buffer.
//! - **The combine** is JIT'd: a `Map` over one point whose `2K` reads are the fields of `a`
//!   and `b` and whose `K` outputs are the fields of `combine(a, b)`, compiled (and cached by
//!   structure) like any map; the routine calls it on the words of two records, each field
//!   read and written in the low bytes of its word (so only on a little-endian machine).
//! - **The unwrap**, if any, is a `Map` over the result's records unpacked into fields.
//!
//! A fault of the combine (an integer division by zero) or an index out of range makes the
//! node run again on the interpreter, which words the error as the reference does. A monoid
//! of more than [`MAX_FIELDS`] fields, or a combine with no kernel (an executable's table
//! without it), runs on the interpreter.

use std::rc::Rc;
use std::sync::atomic::{AtomicI32, Ordering};

use flow_runtime::abi::KernelFn;
use flow_runtime::pool::{Pool, TaskError};
use flow_runtime::prims::histogram::reduce_by_index_rows;
use flow_runtime::prims::scan::{scan_elements, ScanKind};
use flow_runtime::prims::source::{Elements, Pairs};
use flow_runtime::prims::{pack_fields, unpack_fields, Column, ColumnMut, Index, Monoid};
use flow_runtime::{DType, Data, Scalar, Tensor};

use super::{kernel_dims, Native, NativeError};
use crate::mir::ir::{
    Affine, Edge, Graph, MonoidId, Node, NodeId, NodeKind, Port, Read, ScalarExpr, TensorTy,
};
use crate::mir::monoid::{apply2, fields};

/// The most state fields a monoid run by these routines has.
pub(super) const MAX_FIELDS: usize = 8;

/// A user monoid over records of `K` words whose combine is a compiled one-point map.
struct KernelMonoid<const K: usize> {
    zero: [u64; K],
    kernel: KernelFn,
    dims: Vec<i64>,
    /// The first nonzero status of the kernel (0: none).
    fault: AtomicI32,
}

impl<const K: usize> Monoid for KernelMonoid<K> {
    type T = [u64; K];
    fn identity(&self) -> [u64; K] {
        self.zero
    }
    fn combine(&self, a: [u64; K], b: [u64; K]) -> [u64; K] {
        let mut out = [0u64; K];
        let mut bufs = [std::ptr::null_mut::<u8>(); 3 * MAX_FIELDS];
        for f in 0..K {
            bufs[f] = &a[f] as *const u64 as *mut u8;
            bufs[K + f] = &b[f] as *const u64 as *mut u8;
            bufs[2 * K + f] = &mut out[f] as *mut u64 as *mut u8;
        }
        // SAFETY: the kernel was compiled for the one-point map of `combine_map`: it reads
        // one element of each of its `2K` reads (the low bytes of a word of `a` or `b`) and
        // writes one element of each of its `K` outputs (the low bytes of a word of `out`,
        // whose other bytes stay 0), on a little-endian machine (checked by the caller).
        let status = unsafe { (self.kernel)(bufs.as_ptr(), self.dims.as_ptr(), 0, 1) };
        if status != 0 {
            let _ = self
                .fault
                .compare_exchange(0, status, Ordering::Relaxed, Ordering::Relaxed);
            return a;
        }
        out
    }
}

/// The word of a state field (as `pack_fields` makes it).
fn word(s: Scalar) -> u64 {
    match s {
        Scalar::F32(x) => u64::from(x.to_bits()),
        Scalar::F64(x) => x.to_bits(),
        Scalar::I32(x) => i64::from(x) as u64,
        Scalar::I64(x) => x as u64,
        Scalar::Bool(x) => u64::from(x),
        Scalar::U8(x) => u64::from(x),
        Scalar::U32(x) => u64::from(x),
        Scalar::U64(x) => x,
    }
}

/// Elements `lo..hi` of a field's tensor, as a column.
fn column(d: &Data, lo: usize, hi: usize) -> Column<'_> {
    match d {
        Data::F32(x) => Column::F32(&x[lo..hi]),
        Data::F64(x) => Column::F64(&x[lo..hi]),
        Data::I32(x) => Column::I32(&x[lo..hi]),
        Data::I64(x) => Column::I64(&x[lo..hi]),
        Data::Bool(x) => Column::Bool(&x[lo..hi]),
        Data::U8(x) => Column::U8(&x[lo..hi]),
        Data::U32(x) => Column::U32(&x[lo..hi]),
        Data::U64(x) => Column::U64(&x[lo..hi]),
    }
}

/// A field's tensor, as an output column.
fn column_mut(d: &mut Data) -> ColumnMut<'_> {
    match d {
        Data::F32(x) => ColumnMut::F32(x),
        Data::F64(x) => ColumnMut::F64(x),
        Data::I32(x) => ColumnMut::I32(x),
        Data::I64(x) => ColumnMut::I64(x),
        Data::Bool(x) => ColumnMut::Bool(x),
        Data::U8(x) => ColumnMut::U8(x),
        Data::U32(x) => ColumnMut::U32(x),
        Data::U64(x) => ColumnMut::U64(x),
    }
}

/// A state value of `k` fields made of expressions: their tuple, or the one.
fn state_of(mut xs: Vec<ScalarExpr>) -> ScalarExpr {
    if xs.len() == 1 {
        xs.remove(0)
    } else {
        ScalarExpr::Tuple(xs)
    }
}

/// `fields` of a state expression, a tuple's own elements taken directly.
fn field_exprs(e: ScalarExpr, k: usize) -> Vec<ScalarExpr> {
    match e {
        ScalarExpr::Tuple(xs) if xs.len() == k && k > 1 => xs,
        e => fields(&e, k),
    }
}

/// A graph of one input per type of `inputs` (of shape `shape`) and a `Map` over `shape`
/// reading each at the same point, with body `body` of types `out`.
fn map_graph(
    g: &Graph,
    inputs: &[DType],
    shape: &[usize],
    body: Vec<ScalarExpr>,
    out: &[DType],
) -> (Graph, NodeId) {
    let mut sub = Graph::new();
    sub.monoids = g.monoids.clone();
    for (k, d) in inputs.iter().enumerate() {
        sub.add(Node {
            kind: NodeKind::Input { index: k as u32 },
            outputs: vec![TensorTy::new(*d, shape.to_vec())],
            label: format!("field{k}"),
            span: None,
        });
    }
    let reads = (0..inputs.len())
        .map(|k| Read {
            node: NodeId(k as u32),
            port: 0,
            proj: (0..shape.len() as u32).map(Affine::var).collect(),
            edge: Edge::Strict,
        })
        .collect();
    let at = sub.add(Node {
        kind: NodeKind::Map {
            space: shape.to_vec(),
            reads,
            body,
        },
        outputs: out
            .iter()
            .map(|d| TensorTy::new(*d, shape.to_vec()))
            .collect(),
        label: "combine".into(),
        span: None,
    });
    sub.outputs = (0..out.len() as u32)
        .map(|port| Port { node: at, port })
        .collect();
    (sub, at)
}

impl Native {
    /// Runs a scan or histogram node whose monoid `mid` the scalar routines do not take,
    /// over records (see the module's documentation); `None` when it must run on the
    /// interpreter instead.
    pub(super) fn run_records(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        mid: MonoidId,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Option<Vec<Tensor>>, NativeError> {
        let m = &g.monoids[mid];
        let k = m.state.len();
        if cfg!(target_endian = "big") || k == 0 || k > MAX_FIELDS {
            return Ok(None);
        }
        let (space, reads, index, args) = match &node.kind {
            NodeKind::Scan {
                space, reads, args, ..
            } => (space, reads, None, args),
            NodeKind::ReduceByIndex {
                space,
                reads,
                index,
                args,
                ..
            } => (space, reads, Some(index), args),
            _ => return Ok(None),
        };
        // The combine's kernel.
        let a = state_of((0..k as u32).map(ScalarExpr::Read).collect());
        let b = state_of((k as u32..2 * k as u32).map(ScalarExpr::Read).collect());
        let body = field_exprs(apply2(&m.combine, &a, &b), k);
        let ins: Vec<DType> = m.state.iter().chain(&m.state).copied().collect();
        let (sub, at) = map_graph(g, &ins, &[1], body, &m.state);
        let Some(kernel) = self.kernels.kernel(&sub, at, &self.hooks)? else {
            return Ok(None);
        };
        let dims = kernel_dims(&sub, &sub.nodes[at]);
        // The states of the elements (and a histogram's indices), one tensor per field.
        let wrapped = match &m.wrap {
            Some(w) => w.body.rewrite(&mut |e| match e {
                ScalarExpr::Param(p) => args.get(*p as usize).cloned(),
                _ => None,
            }),
            None => args
                .first()
                .cloned()
                .unwrap_or(ScalarExpr::Tuple(Vec::new())),
        };
        let exprs: Vec<ScalarExpr> = index
            .into_iter()
            .cloned()
            .chain(field_exprs(wrapped, k))
            .collect();
        let elems = self.element_tensors(g, space, reads, &exprs, values)?;
        let (idx, states) = match index {
            Some(_) => (Some(&elems[0].data), &elems[1..]),
            None => (None, &elems[..]),
        };
        let states: Vec<&Data> = states.iter().map(|t| &t.data).collect();
        let len: usize = match index {
            Some(_) => node.outputs[0].shape.iter().product(),
            None => space.iter().product(),
        };
        let zero: Vec<u64> = m.zero.iter().map(|&s| word(s)).collect();
        let pool: &Pool = &self.workers;
        let job = Job {
            pool,
            space,
            node,
            idx,
            states: &states,
            len,
            zero: &zero,
            kernel: kernel.f,
            dims,
        };
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match k {
                    $($n => job.run::<$n>(&m.state),)*
                    _ => unreachable!("at most MAX_FIELDS fields"),
                }
            };
        }
        let res = dispatch!(1 2 3 4 5 6 7 8);
        drop(elems);
        let fields = match res {
            Ok(Some(fields)) => fields,
            // A fault of the combine or an index out of range: the interpreter's words.
            Ok(None) => return self.interpret(g, id, node, values).map(Some),
            Err(e) => {
                return Err(NativeError::shard(
                    id,
                    node,
                    space,
                    flow_runtime::prims::SCAN_BLOCK,
                    &e,
                ))
            }
        };
        let shape = &node.outputs[0].shape;
        let Some(un) = &m.unwrap else {
            return Ok(Some(
                fields
                    .into_iter()
                    .zip(&node.outputs)
                    .map(|(data, t)| Tensor {
                        shape: t.shape.clone(),
                        data,
                    })
                    .collect(),
            ));
        };
        // The unwrap, a map of the result's fields.
        let s = state_of((0..k as u32).map(ScalarExpr::Read).collect());
        let body = fields_of_unwrap(&un.body, &s, node.outputs.len());
        let outs: Vec<DType> = node.outputs.iter().map(|t| t.dtype).collect();
        let (sub, _) = map_graph(g, &m.state, shape, body, &outs);
        let inputs: Vec<Rc<Tensor>> = fields
            .into_iter()
            .map(|data| {
                Rc::new(Tensor {
                    shape: shape.clone(),
                    data,
                })
            })
            .collect();
        let outs = self.eval_nodes(&sub, &inputs)?;
        Ok(Some(
            outs.into_iter()
                .map(|t| Rc::try_unwrap(t).unwrap_or_else(|t| (*t).clone()))
                .collect(),
        ))
    }
}

/// The output ports of an unwrap of state `s`, as expressions.
fn fields_of_unwrap(body: &ScalarExpr, s: &ScalarExpr, ports: usize) -> Vec<ScalarExpr> {
    field_exprs(apply2(body, s, s), ports)
}

/// What a record routine needs, for each number of fields.
struct Job<'a> {
    pool: &'a Pool,
    space: &'a [usize],
    node: &'a Node,
    idx: Option<&'a Data>,
    states: &'a [&'a Data],
    /// The elements of the result.
    len: usize,
    zero: &'a [u64],
    kernel: KernelFn,
    dims: Vec<i64>,
}

impl Job<'_> {
    /// The result's fields; `None` after a fault of the combine or an index out of range.
    fn run<const K: usize>(&self, state: &[DType]) -> Result<Option<Vec<Data>>, TaskError> {
        let mon = KernelMonoid::<K> {
            zero: std::array::from_fn(|f| self.zero[f]),
            kernel: self.kernel,
            dims: self.dims.clone(),
            fault: AtomicI32::new(0),
        };
        let n: usize = self.space.iter().product();
        let pack = |lo: usize, hi: usize, out: *mut [u64; K]| {
            let cols: Vec<Column<'_>> = self.states.iter().map(|d| column(d, lo, hi)).collect();
            // SAFETY: the routine gives room for `hi - lo` records at `out`.
            let out = unsafe { std::slice::from_raw_parts_mut(out, hi - lo) };
            pack_fields(&cols, out);
            0
        };
        let mut y = vec![mon.zero; self.len];
        let ignored = match (&self.node.kind, self.idx) {
            (NodeKind::Scan { exclusive, .. }, _) => {
                let kind = if *exclusive {
                    ScanKind::Exclusive
                } else {
                    ScanKind::Inclusive
                };
                let row_len = self.space.last().copied().unwrap_or(1);
                let x = Elements::Produced {
                    len: n,
                    unit: 1,
                    fill: &pack,
                };
                scan_elements(self.pool, &mon, kind, row_len, x, &mut y)?;
                0
            }
            (NodeKind::ReduceByIndex { .. }, Some(idx)) => {
                let lanes = self.space[1..].iter().product::<usize>().max(1);
                fn pairs<'a, I: Index, const K: usize>(
                    idx: &'a [I],
                    pack: &'a (dyn Fn(usize, usize, *mut [u64; K]) -> i32 + Sync),
                ) -> impl Fn(usize, usize, *mut I, *mut [u64; K]) -> i32 + Sync + 'a
                {
                    move |lo, hi, pi, pv| {
                        // SAFETY: the routine gives room for `hi - lo` indices at `pi`.
                        let out = unsafe { std::slice::from_raw_parts_mut(pi, hi - lo) };
                        out.copy_from_slice(&idx[lo..hi]);
                        pack(lo, hi, pv)
                    }
                }
                match idx {
                    Data::I64(i) => {
                        let fill = pairs(i, &pack);
                        let src = Pairs::Produced {
                            len: n,
                            fill: &fill,
                        };
                        reduce_by_index_rows(self.pool, &mon, lanes, src, &mut y)?
                    }
                    Data::I32(i) => {
                        let fill = pairs(i, &pack);
                        let src = Pairs::Produced {
                            len: n,
                            fill: &fill,
                        };
                        reduce_by_index_rows(self.pool, &mon, lanes, src, &mut y)?
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        if ignored > 0 || mon.fault.load(Ordering::Relaxed) != 0 {
            return Ok(None);
        }
        let mut out: Vec<Data> = state.iter().map(|d| Data::zeros(*d, self.len)).collect();
        let mut cols: Vec<ColumnMut<'_>> = out.iter_mut().map(column_mut).collect();
        unpack_fields(&y, &mut cols);
        Ok(Some(out))
    }
}
