//! The native backend: every `Map` and `Reduce` node of an optimized graph becomes one
//! Cranelift function (`kernel.rs`), compiled once per structure and cached, and run over
//! shards of its outermost free dimension on a fixed number of threads. The only module that
//! uses Cranelift.
//!
//! **Invariants:** a kernel computes exactly what the reference interpreter computes, bit for
//! bit (same operation order, same math functions); shard boundaries depend only on shapes,
//! never on the thread count, and each shard owns its output rows, so results do not depend
//! on the number of threads.

pub mod kernel;

use std::collections::HashMap;
use std::rc::Rc;

use cranelift_codegen::ir::{AbiParam, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use flow_runtime::{gemm, DType, Data, Tensor};

use crate::mir::contract::{contraction, Contraction};
use crate::mir::ir::{Graph, Node, NodeId, NodeKind};
use crate::mir::print::print_node;
use kernel::{Imports, CALLED};

/// A compiled kernel: `fn(bufs, dims, lo, hi) -> status` (see `kernel.rs`).
type KernelFn = unsafe extern "C" fn(*const *mut u8, *const i64, i64, i64) -> i32;

/// How many elements one shard task covers, at least: a function of shapes only.
pub const SHARD_ELEMENTS: usize = 1 << 14;

/// An error while running a graph natively.
#[derive(Clone, Debug)]
pub struct JitError {
    pub message: String,
}

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn jit_err<T>(message: impl Into<String>) -> Result<T, JitError> {
    Err(JitError {
        message: message.into(),
    })
}

/// The JIT: a Cranelift module, the cache of compiled kernels, and the thread count.
pub struct Jit {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    math: Vec<FuncId>,
    cache: HashMap<String, KernelFn>,
    /// The worker pool that runs shard tasks.
    workers: flow_runtime::pool::Pool,
    compiled: usize,
    compile_time: std::time::Duration,
    /// Buffers of dropped tensors, reused for kernel outputs of the same type and length
    /// (fresh pages cost far more than the kernels that fill them).
    pool: Vec<Data>,
}

/// At most this many bytes are kept in the buffer pool.
const POOL_BYTES: usize = 1 << 30;

/// The runtime's math symbols, in the order of [`CALLED`], `f32` then `f64`: kernels call
/// the same Rust functions the interpreter uses, so results match bit for bit.
fn math_symbols() -> Vec<(String, *const u8, DType, usize)> {
    let table: std::collections::HashMap<&str, *const u8> =
        flow_runtime::abi::builtin_symbols().into_iter().collect();
    let mut out = Vec::new();
    for d in [DType::F32, DType::F64] {
        for (name, arity) in CALLED {
            let base = if name == "rem" { "fmod" } else { name };
            let symbol = if d == DType::F32 {
                format!("flow_{base}f")
            } else {
                format!("flow_{base}")
            };
            let ptr = *table
                .get(symbol.as_str())
                .expect("the runtime exports every math built-in");
            out.push((symbol, ptr, d, arity));
        }
    }
    out
}

impl Jit {
    pub fn new(threads: usize) -> Result<Jit, JitError> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| JitError {
                message: format!("cranelift setting {k}: {e}"),
            })
        };
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "opt_level", "speed")?;
        let isa = cranelift_native::builder()
            .map_err(|e| JitError {
                message: format!("this machine is not supported by Cranelift: {e}"),
            })?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError {
                message: format!("cranelift: {e}"),
            })?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        let syms = math_symbols();
        for (name, ptr, _, _) in &syms {
            builder.symbol(name.clone(), *ptr);
        }
        let mut module = JITModule::new(builder);
        let mut math = Vec::new();
        for (name, _, d, arity) in &syms {
            let mut sig = module.make_signature();
            let t = kernel::clif_type(*d);
            for _ in 0..*arity {
                sig.params.push(AbiParam::new(t));
            }
            sig.returns.push(AbiParam::new(t));
            let id = module
                .declare_function(name, Linkage::Import, &sig)
                .map_err(|e| JitError {
                    message: format!("declaring {name}: {e}"),
                })?;
            math.push(id);
        }
        let ctx = module.make_context();
        Ok(Jit {
            module,
            ctx,
            fctx: FunctionBuilderContext::new(),
            math,
            cache: HashMap::new(),
            workers: flow_runtime::pool::Pool::new(threads.max(1)).map_err(|e| JitError {
                message: format!("cannot start the worker threads: {e}"),
            })?,
            compiled: 0,
            compile_time: std::time::Duration::ZERO,
            pool: Vec::new(),
        })
    }

    /// How many kernels were compiled (not taken from the cache).
    /// Gives a dropped tensor's memory back for reuse.
    pub fn recycle(&mut self, t: Tensor) {
        let bytes = |d: &Data| d.len() * d.dtype().size_bytes();
        let held: usize = self.pool.iter().map(bytes).sum();
        if held + bytes(&t.data) <= POOL_BYTES && !t.data.is_empty() {
            self.pool.push(t.data);
        }
    }

    /// An output tensor: a pooled buffer of the right type and length (its old contents are
    /// overwritten by the kernel, which writes every element), else a new one.
    fn output(
        &mut self,
        dtype: DType,
        shape: &[usize],
    ) -> Result<Tensor, flow_runtime::ShapeError> {
        let len = flow_runtime::num_elements(shape)?;
        if let Some(k) = self
            .pool
            .iter()
            .position(|d| d.dtype() == dtype && d.len() == len)
        {
            let data = self.pool.swap_remove(k);
            return Ok(Tensor {
                shape: shape.to_vec(),
                data,
            });
        }
        Tensor::zeros(dtype, shape)
    }

    /// The time spent generating and compiling kernels.
    pub fn compile_time(&self) -> std::time::Duration {
        self.compile_time
    }

    pub fn compiled(&self) -> usize {
        self.compiled
    }

    /// The compiled kernel of `node`, from the cache when a kernel of the same structure (same
    /// expressions, projections and tensor types) was compiled before.
    fn kernel(&mut self, g: &Graph, id: NodeId) -> Result<KernelFn, JitError> {
        let node = &g.nodes[id];
        let key = structure_key(g, node);
        if let Some(k) = self.cache.get(&key) {
            return Ok(*k);
        }
        let start = std::time::Instant::now();
        let ptr = self.module.target_config().pointer_type();
        self.module.clear_context(&mut self.ctx);
        kernel::kernel_signature(&mut self.ctx.func.signature, ptr);
        let name = format!("k{}", self.compiled);
        let fid = self
            .module
            .declare_function(&name, Linkage::Local, &self.ctx.func.signature)
            .map_err(|e| JitError {
                message: format!("declaring a kernel: {e}"),
            })?;
        self.ctx.func.name = UserFuncName::user(0, fid.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let funcs = self
                .math
                .iter()
                .map(|m| self.module.declare_func_in_func(*m, b.func))
                .collect();
            kernel::generate(g, node, &mut b, Imports { funcs }, ptr);
            b.seal_all_blocks();
            b.finalize(self.module.target_config());
        }
        self.module
            .define_function(fid, &mut self.ctx)
            .map_err(|e| JitError {
                message: format!("internal compiler error: Cranelift rejected kernel {id}: {e:?}"),
            })?;
        self.module.clear_context(&mut self.ctx);
        self.module.finalize_definitions().map_err(|e| JitError {
            message: format!("internal compiler error: linking kernel {id}: {e}"),
        })?;
        let code = self.module.get_finalized_function(fid);
        // SAFETY: the function was generated with exactly this signature.
        let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
        self.compiled += 1;
        self.compile_time += start.elapsed();
        self.cache.insert(key, f);
        Ok(f)
    }

    /// Runs a verified graph and returns its outputs, like `interp::eval`.
    pub fn eval(&mut self, g: &Graph, inputs: &[Rc<Tensor>]) -> Result<Vec<Rc<Tensor>>, JitError> {
        crate::mir::verify(g).map_err(|e| JitError {
            message: format!("internal compiler error: invalid MIR: {e}"),
        })?;
        let mut values: Vec<Vec<Rc<Tensor>>> = Vec::with_capacity(g.nodes.len());
        for (id, node) in g.nodes.iter_enumerated() {
            let out = match &node.kind {
                NodeKind::Input { index } => {
                    let Some(t) = inputs.get(*index as usize) else {
                        return jit_err(format!("input {index} is missing"));
                    };
                    let want = &node.outputs[0];
                    if t.dtype() != want.dtype || t.shape != want.shape {
                        return jit_err(format!(
                            "input {index} is {}{:?}, expected {want}",
                            t.dtype(),
                            t.shape
                        ));
                    }
                    vec![t.clone()]
                }
                NodeKind::Const { value } => vec![Rc::new(value.clone())],
                NodeKind::Random { dist, seed } => {
                    vec![Rc::new(self.random(
                        *dist,
                        *seed,
                        &node.outputs[0].shape,
                    )?)]
                }
                NodeKind::Map { .. } | NodeKind::Reduce { .. } => self
                    .run_kernel(g, id, node, &values)?
                    .into_iter()
                    .map(Rc::new)
                    .collect(),
                NodeKind::Concat { axis, parts } => {
                    let parts: Vec<&Tensor> = parts
                        .iter()
                        .map(|p| &*values[p.node.0 as usize][p.port as usize])
                        .collect();
                    vec![Rc::new(concat(&parts, *axis, &node.outputs[0].shape)?)]
                }
                NodeKind::Slice { src, start, shape } => {
                    vec![Rc::new(slice(
                        &values[src.node.0 as usize][src.port as usize],
                        start,
                        shape,
                    )?)]
                }
            };
            values.push(out);
        }
        Ok(g.outputs
            .iter()
            .map(|p| values[p.node.0 as usize][p.port as usize].clone())
            .collect())
    }

    fn random(
        &self,
        dist: crate::mir::ir::Dist,
        seed: u64,
        shape: &[usize],
    ) -> Result<Tensor, JitError> {
        let t = Tensor::zeros(DType::F32, shape).map_err(|e| JitError {
            message: e.to_string(),
        })?;
        let Data::F32(mut v) = t.data else {
            unreachable!("f32")
        };
        let chunk = SHARD_ELEMENTS;
        let n_tasks = v.len().div_ceil(chunk);
        let base = SendPtr(v.as_mut_ptr() as *mut u8);
        let len = v.len();
        run_tasks(&self.workers, n_tasks, &|k| {
            let lo = k * chunk;
            let hi = (lo + chunk).min(len);
            // SAFETY: tasks write disjoint ranges of one live buffer.
            let out = unsafe {
                std::slice::from_raw_parts_mut((base.get() as *mut f32).add(lo), hi - lo)
            };
            match dist {
                crate::mir::ir::Dist::Uniform => {
                    flow_runtime::rand::fill_uniform(seed, out, lo as u64)
                }
                crate::mir::ir::Dist::Normal => {
                    flow_runtime::rand::fill_normal(seed, out, lo as u64)
                }
            }
            0
        })?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Data::F32(v),
        })
    }

    fn run_kernel(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, JitError> {
        let (space, reads) = match &node.kind {
            NodeKind::Map { space, reads, .. } | NodeKind::Reduce { space, reads, .. } => {
                (space, reads)
            }
            _ => unreachable!("only kernels"),
        };
        let mut outs: Vec<Tensor> = Vec::new();
        for t in &node.outputs {
            outs.push(self.output(t.dtype, &t.shape).map_err(|e| JitError {
                message: format!("node {id}: {e}"),
            })?);
        }
        let volume: usize = match &node.kind {
            NodeKind::Reduce { space, .. } => space.iter().product(),
            _ => space.iter().product(),
        };
        if volume == 0 {
            return Ok(outs);
        }
        if let Some(c) = contraction(g, node) {
            let a = &values[reads[c.a.0].node.0 as usize][reads[c.a.0].port as usize];
            let b = &values[reads[c.b.0].node.0 as usize][reads[c.b.0].port as usize];
            self.run_contraction(&c, data_ptr(&a.data), data_ptr(&b.data), &mut outs[0])?;
            return Ok(outs);
        }
        let f = self.kernel(g, id)?;
        let mut bufs: Vec<*mut u8> = Vec::new();
        for r in reads {
            bufs.push(data_ptr(&values[r.node.0 as usize][r.port as usize].data) as *mut u8);
        }
        for o in &mut outs {
            bufs.push(data_ptr_mut(&mut o.data));
        }
        let bufs = SendPtrs(bufs);
        let dims = kernel::kernel_dims(g, node);
        let (rows, n_tasks) = if space.is_empty() {
            (1, 1)
        } else {
            let inner: usize = space[1..].iter().product::<usize>().max(1);
            let red: usize = match &node.kind {
                NodeKind::Reduce { red, .. } => red.iter().product::<usize>().max(1),
                _ => 1,
            };
            let rows = (SHARD_ELEMENTS / (inner * red)).max(1);
            (rows, space[0].div_ceil(rows))
        };
        let extent0 = space.first().copied().unwrap_or(1);
        run_tasks(&self.workers, n_tasks, &|k| {
            let lo = k * rows;
            let hi = (lo + rows).min(extent0);
            // SAFETY: the kernel reads only inside its input buffers (proved by the verifier)
            // and writes only rows lo..hi of its outputs, which no other task writes.
            unsafe { f(bufs.as_ptr(), dims.as_ptr(), lo as i64, hi as i64) }
        })
        .map_err(|code| JitError {
            message: match code.message.as_str() {
                "1" => format!("integer division by zero in {}", describe(id, node)),
                "2" => format!(
                    "integer division overflow (MIN / -1) in {}",
                    describe(id, node)
                ),
                other => format!("kernel {} failed: {other}", describe(id, node)),
            },
        })?;
        Ok(outs)
    }
}

impl Jit {
    /// Runs a contraction as GEMMs over blocks of rows (see `flow_runtime::gemm`: each element
    /// depends only on its row and column, so the blocks do not change a bit).
    fn run_contraction(
        &self,
        c: &Contraction,
        a: *const u8,
        b: *const u8,
        out: &mut Tensor,
    ) -> Result<(), JitError> {
        let (m, k, n) = c.dims;
        let rows = m.div_ceil(8).max(32);
        let (a, b, o) = (
            SendPtr(a as *mut u8),
            SendPtr(b as *mut u8),
            SendPtr(data_ptr_mut(&mut out.data)),
        );
        let dtype = c.dtype;
        run_tasks(&self.workers, m.div_ceil(rows), &|t| {
            let lo = t * rows;
            let hi = (lo + rows).min(m);
            let shift = lo as isize * c.a.1;
            // SAFETY: the verifier proved both reads in bounds over the whole box, so rows
            // lo..hi of `a` and all of `b` are readable; each task writes only rows lo..hi of
            // the m×n output, which no other task writes.
            unsafe {
                match dtype {
                    DType::F32 => gemm::gemm_f32(
                        hi - lo,
                        k,
                        n,
                        operand((a.get() as *const f32).offset(shift), c.a),
                        operand(b.get() as *const f32, c.b),
                        (o.get() as *mut f32).add(lo * n),
                    ),
                    _ => gemm::gemm_f64(
                        hi - lo,
                        k,
                        n,
                        operand((a.get() as *const f64).offset(shift), c.a),
                        operand(b.get() as *const f64, c.b),
                        (o.get() as *mut f64).add(lo * n),
                    ),
                }
            }
            0
        })
    }
}

fn operand<T>(
    ptr: *const T,
    (_, row_stride, col_stride): (usize, isize, isize),
) -> gemm::Operand<T> {
    gemm::Operand {
        ptr,
        row_stride,
        col_stride,
    }
}

fn describe(id: NodeId, node: &Node) -> String {
    if node.label.is_empty() {
        format!("node {id}")
    } else {
        format!("node {id} \"{}\"", node.label)
    }
}

struct SendPtr(*mut u8);

impl SendPtr {
    fn get(&self) -> *mut u8 {
        self.0
    }
}
// SAFETY: used only to hand disjoint parts of one buffer to scoped tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

struct SendPtrs(Vec<*mut u8>);

impl SendPtrs {
    fn as_ptr(&self) -> *const *mut u8 {
        self.0.as_ptr()
    }
}
// SAFETY: the pointers are read by kernels (inputs) or written at disjoint rows (outputs)
// while the buffers are alive: `run_tasks` returns before they are dropped.
unsafe impl Send for SendPtrs {}
unsafe impl Sync for SendPtrs {}

/// Runs tasks `0..n` on the worker pool; each returns 0 or an error code. The error of the
/// lowest-numbered failing task is returned, whatever the thread count; a panic in a task
/// becomes an error naming the task.
fn run_tasks(
    pool: &flow_runtime::pool::Pool,
    n: usize,
    f: &(dyn Fn(usize) -> i32 + Sync),
) -> Result<(), JitError> {
    pool.run(n, &|k| flow_runtime::pool::TaskError::check_status(k, f(k)))
        .map_err(|e| match e.kind {
            flow_runtime::pool::TaskErrorKind::Code(code) => JitError {
                message: code.to_string(),
            },
            _ => JitError {
                message: e.to_string(),
            },
        })
}

fn data_ptr(d: &Data) -> *const u8 {
    match d {
        Data::F32(v) => v.as_ptr() as *const u8,
        Data::F64(v) => v.as_ptr() as *const u8,
        Data::I32(v) => v.as_ptr() as *const u8,
        Data::I64(v) => v.as_ptr() as *const u8,
        Data::Bool(v) => v.as_ptr() as *const u8,
    }
}

fn data_ptr_mut(d: &mut Data) -> *mut u8 {
    match d {
        Data::F32(v) => v.as_mut_ptr() as *mut u8,
        Data::F64(v) => v.as_mut_ptr() as *mut u8,
        Data::I32(v) => v.as_mut_ptr() as *mut u8,
        Data::I64(v) => v.as_mut_ptr() as *mut u8,
        Data::Bool(v) => v.as_mut_ptr() as *mut u8,
    }
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

fn concat(parts: &[&Tensor], axis: usize, shape: &[usize]) -> Result<Tensor, JitError> {
    let dtype = parts.first().map(|t| t.dtype()).unwrap_or(DType::F32);
    let mut out = Tensor::zeros(dtype, shape).map_err(|e| JitError {
        message: e.to_string(),
    })?;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut offset = 0;
    for p in parts {
        let n = p.shape[axis];
        for o in 0..outer {
            for a in 0..n {
                for i in 0..inner {
                    let src = (o * n + a) * inner + i;
                    let dst = (o * shape[axis] + offset + a) * inner + i;
                    out.set(dst, p.get(src));
                }
            }
        }
        offset += n;
    }
    Ok(out)
}

fn slice(src: &Tensor, start: &[usize], shape: &[usize]) -> Result<Tensor, JitError> {
    let mut out = Tensor::zeros(src.dtype(), shape).map_err(|e| JitError {
        message: e.to_string(),
    })?;
    let strides = src.strides();
    let total: usize = shape.iter().product();
    for lin in 0..total {
        let mut rem = lin;
        let mut off = 0;
        for d in (0..shape.len()).rev() {
            let c = rem % shape[d];
            rem /= shape[d];
            off += (start[d] + c) * strides[d];
        }
        out.set(lin, src.get(off));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
