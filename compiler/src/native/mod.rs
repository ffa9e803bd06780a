//! The native executor: runs an optimized graph's `Map` and `Reduce` nodes as native kernels
//! over shards of their outermost free dimension on a fixed number of threads, contractions
//! as GEMMs, and random fills, concatenations and slices directly. It does not make kernels:
//! a [`Kernels`] source gives them — the JIT (`codegen::Jit`, Cranelift at run time) or the
//! table of kernels compiled ahead of time into an executable by `flowc build`
//! ([`Table`]). A node whose kernel the source does not have runs on the reference
//! interpreter instead (same results, bit for bit, only slower).
//!
//! A shard that fails (an injected fault, a panic) is re-run by the worker pool (see
//! `flow_runtime::fault`); since it owns its output rows, the re-run overwrites whatever the
//! failed attempt wrote. When its retries are exhausted, or a kernel returns an error code
//! (which is deterministic and not retried), [`Native::eval`] fails with a [`NativeError`]
//! naming the op (the node's label), the shard (its number and index box) and the cause,
//! and returns no output. Kernel launches, shards and compilations are reported to the
//! [`Hooks`] (profile, trace, progress) as data.
//!
//! **Invariants:** a kernel computes exactly what the reference interpreter computes, bit for
//! bit (same operation order, same math functions); shard boundaries depend only on shapes,
//! never on the thread count, and each shard owns its output rows, so results do not depend
//! on the number of threads, nor on retries.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use flow_runtime::buffers::BufferPool;
use flow_runtime::fault::{inject_panic, FaultKind, Faults, RetryPolicy};
use flow_runtime::pool::{TaskError, TaskErrorKind};
use flow_runtime::profile::{trace_tid, Hooks};
use flow_runtime::{gemm, DType, Data, Tensor};

use crate::mir::contract::{contraction, Contraction};
use crate::mir::ir::{Graph, Node, NodeId, NodeKind, Port};
use crate::mir::print::print_node;

/// A compiled kernel: `fn(bufs, dims, lo, hi) -> status` (see `codegen/kernel.rs`).
pub use flow_runtime::abi::KernelFn;

/// A kernel and its number, which names it in profiles (`k3`).
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub f: KernelFn,
    pub number: usize,
}

/// Where the executor gets the kernel of a node.
pub trait Kernels {
    /// The kernel of node `id` of `g`, or `None` when this source has none (the node then
    /// runs on the interpreter). Compilations are reported to `hooks`.
    fn kernel(
        &mut self,
        g: &Graph,
        id: NodeId,
        hooks: &Hooks,
    ) -> Result<Option<Kernel>, NativeError>;

    /// The time spent making kernels.
    fn compile_time(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// How many kernels were made (not taken from a cache).
    fn compiled(&self) -> usize {
        0
    }
}

/// Makes the kernel source of a run when its first graph is dispatched.
pub type KernelFactory = Rc<dyn Fn() -> Result<Box<dyn Kernels>, NativeError>>;

/// How many elements one shard task covers, at least: a function of shapes only.
pub const SHARD_ELEMENTS: usize = 1 << 16;

/// The fewest rows of a shard when the rows are the innermost dimension (see `shard_plan`).
const MIN_CONTIGUOUS_ROWS: usize = 64;

/// An error while running a graph natively.
#[derive(Clone, Debug)]
pub struct NativeError {
    pub message: String,
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn native_err<T>(message: impl Into<String>) -> Result<T, NativeError> {
    Err(NativeError {
        message: message.into(),
    })
}

/// The kernels compiled ahead of time into an executable, by structure key
/// ([`structure_key`]); nodes of other structures run on the interpreter.
pub struct Table {
    kernels: HashMap<String, Kernel>,
}

impl Table {
    pub fn new(entries: impl IntoIterator<Item = (String, KernelFn)>) -> Table {
        Table {
            kernels: entries
                .into_iter()
                .enumerate()
                .map(|(number, (key, f))| (key, Kernel { f, number }))
                .collect(),
        }
    }
}

impl Kernels for Table {
    fn kernel(
        &mut self,
        g: &Graph,
        id: NodeId,
        _hooks: &Hooks,
    ) -> Result<Option<Kernel>, NativeError> {
        Ok(self.kernels.get(&structure_key(g, &g.nodes[id])).copied())
    }
}

/// The executor: a kernel source, the worker pool and the buffer pool.
pub struct Native {
    kernels: Box<dyn Kernels>,
    /// The worker pool that runs shard tasks (and retries failed ones).
    workers: flow_runtime::pool::Pool,
    /// How failed shards are retried (also for nodes run on the interpreter) and which
    /// faults are injected.
    retry: RetryPolicy,
    /// Where launches, shards and compilations are reported.
    hooks: Hooks,
    /// How many graphs were evaluated: with the node, it names a kernel launch for
    /// [`Faults::decide`].
    evals: u64,
    /// Buffers of dropped tensors, reused for kernel outputs of the same type and length
    /// (fresh pages cost far more than the kernels that fill them); at most 1 GiB, unless a
    /// memory budget asks for less.
    pool: BufferPool,
    /// The most bytes of computed tensors the last [`Native::eval`] held at once.
    last_peak: u128,
    /// Kernel nodes run as members of row groups (see [`Native::plan_groups`]).
    grouped: usize,
    /// Outputs written over a dead tensor of their group (see [`in_place`]).
    in_place: usize,
}

impl Native {
    pub fn new(kernels: Box<dyn Kernels>, threads: usize) -> Result<Native, NativeError> {
        Ok(Native {
            kernels,
            workers: flow_runtime::pool::Pool::new(threads.max(1)).map_err(|e| NativeError {
                message: format!("cannot start the worker threads: {e}"),
            })?,
            retry: RetryPolicy::default(),
            hooks: Hooks::default(),
            evals: 0,
            pool: BufferPool::default(),
            last_peak: 0,
            grouped: 0,
            in_place: 0,
        })
    }

    /// Sets how failed shards are retried and which faults are injected.
    pub fn set_retry(&mut self, policy: RetryPolicy) {
        self.workers.set_retries(policy.retries);
        self.retry = policy;
    }

    fn faults(&self) -> Option<Faults> {
        self.retry.faults
    }

    /// Sets where launches, shards and compilations are reported.
    pub fn set_hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    /// Gives a dropped tensor's memory back for reuse.
    pub fn recycle(&mut self, t: Tensor) {
        self.pool.give(t.data);
    }

    /// An output tensor: a pooled buffer of the right type and length (its old contents are
    /// overwritten by the kernel, which writes every element), else a new one.
    fn output(
        &mut self,
        dtype: DType,
        shape: &[usize],
    ) -> Result<Tensor, flow_runtime::ShapeError> {
        let len = flow_runtime::tensor::checked_size(dtype, shape)?;
        let data =
            self.pool
                .take(dtype, len)
                .map_err(|_| flow_runtime::ShapeError::OutOfMemory {
                    shape: shape.to_vec(),
                    dtype,
                })?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// Keeps at most `bytes` of dropped buffers for reuse (0 under a tight memory budget:
    /// a pooled buffer is memory too).
    pub fn set_pool_limit(&mut self, bytes: usize) {
        self.pool.set_cap_bytes(bytes);
    }

    /// What the buffer pool did: reuses, allocations, drops.
    pub fn buffer_stats(&self) -> flow_runtime::buffers::BufferStats {
        self.pool.stats()
    }

    /// The most bytes of computed tensors (not inputs) the last [`Native::eval`] held at once.
    pub fn last_peak(&self) -> u128 {
        self.last_peak
    }

    /// The time the kernel source spent making kernels.
    pub fn compile_time(&self) -> std::time::Duration {
        self.kernels.compile_time()
    }

    /// How many kernels the kernel source made.
    pub fn compiled(&self) -> usize {
        self.kernels.compiled()
    }

    /// How many kernel nodes ran as members of row groups.
    pub fn grouped(&self) -> usize {
        self.grouped
    }

    /// How many outputs were written over a dead tensor of their row group.
    pub fn in_place(&self) -> usize {
        self.in_place
    }

    /// Runs a verified graph and returns its outputs, like `interp::eval`. When a shard fails
    /// for good, the error names its op, its index box and the cause, and no output is
    /// returned.
    pub fn eval(
        &mut self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
    ) -> Result<Vec<Rc<Tensor>>, NativeError> {
        crate::mir::verify(g).map_err(|e| NativeError {
            message: format!("internal compiler error: invalid MIR: {e}"),
        })?;
        self.evals += 1;
        let progress = self.hooks.progress.clone();
        if let Some(p) = &progress {
            p.begin(g.nodes.iter().map(|n| shard_plan(g, n).1 as u64).sum());
        }
        let res = self.eval_nodes(g, inputs);
        if let Some(p) = &progress {
            p.end();
        }
        res
    }

    fn eval_nodes(
        &mut self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
    ) -> Result<Vec<Rc<Tensor>>, NativeError> {
        // Each node's tensors are dropped right after their last reader, and their buffers go
        // back to the pool.
        let plan = crate::mir::memory::plan(g);
        let mut free_at: Vec<Vec<usize>> = vec![Vec::new(); g.nodes.len()];
        for (i, f) in plan.free_after.iter().enumerate() {
            if let Some(l) = f {
                free_at[*l].push(i);
            }
        }
        let bytes = |ts: &[Rc<Tensor>]| -> u128 {
            ts.iter()
                .map(|t| (t.len() * t.dtype().size_bytes()) as u128)
                .sum()
        };
        let (mut live, mut peak) = (0u128, 0u128);
        let (kernels, groups, first_of) = self.plan_groups(g)?;
        // Outputs of group members computed with their group's first member.
        let mut ready: HashMap<NodeId, Vec<Tensor>> = HashMap::new();
        // Inputs and constants are there from the start: a row group may read one that comes
        // after its first member.
        let mut values: Vec<Vec<Rc<Tensor>>> = vec![Vec::new(); g.nodes.len()];
        for (id, node) in g.nodes.iter_enumerated() {
            values[id.0 as usize] = match &node.kind {
                NodeKind::Input { index } => {
                    let Some(t) = inputs.get(*index as usize) else {
                        return native_err(format!("input {index} is missing"));
                    };
                    let want = &node.outputs[0];
                    if t.dtype() != want.dtype || t.shape != want.shape {
                        return native_err(format!(
                            "input {index} is {}{:?}, expected {want}",
                            t.dtype(),
                            t.shape
                        ));
                    }
                    vec![t.clone()]
                }
                NodeKind::Const { value } => vec![Rc::new(value.clone())],
                _ => continue,
            };
        }
        for (id, node) in g.nodes.iter_enumerated() {
            let out = match &node.kind {
                NodeKind::Input { .. } | NodeKind::Const { .. } => values[id.0 as usize].clone(),
                NodeKind::Random { dist, seed } => {
                    vec![Rc::new(self.random(id, node, *dist, *seed)?)]
                }
                NodeKind::Map { .. } | NodeKind::Reduce { .. } => {
                    if let Some(k) = first_of[id.0 as usize] {
                        let group = &groups[k];
                        let outs = self.run_group(g, group, &values)?;
                        for ((m, _), o) in group.members.iter().zip(outs) {
                            ready.insert(*m, o);
                        }
                    }
                    let outs = match ready.remove(&id) {
                        Some(outs) => outs,
                        None => self.run_kernel(g, id, node, kernels[id.0 as usize], &values)?,
                    };
                    outs.into_iter().map(Rc::new).collect()
                }
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
            if !matches!(node.kind, NodeKind::Input { .. }) {
                live += bytes(&out);
                peak = peak.max(live);
            }
            values[id.0 as usize] = out;
            for &j in &free_at[id.0 as usize] {
                live -= bytes(&values[j]);
                for t in std::mem::take(&mut values[j]) {
                    if let Ok(t) = Rc::try_unwrap(t) {
                        self.recycle(t);
                    }
                }
            }
        }
        self.last_peak = peak;
        Ok(g.outputs
            .iter()
            .map(|p| values[p.node.0 as usize][p.port as usize].clone())
            .collect())
    }

    fn random(
        &self,
        id: NodeId,
        node: &Node,
        dist: crate::mir::ir::Dist,
        seed: u64,
    ) -> Result<Tensor, NativeError> {
        let shape = &node.outputs[0].shape;
        let t = Tensor::zeros(DType::F32, shape).map_err(|e| NativeError {
            message: e.to_string(),
        })?;
        let Data::F32(mut v) = t.data else {
            unreachable!("f32")
        };
        let len = v.len();
        let base = SendPtr(v.as_mut_ptr() as *mut u8);
        let launch = Launch {
            name: if node.label.is_empty() {
                format!("random {}", dist_name(dist))
            } else {
                format!("random {} ({})", dist_name(dist), node.label)
            },
            kernel: self.launch_id(id),
            shards: len.div_ceil(SHARD_ELEMENTS),
            rows: SHARD_ELEMENTS,
            extent0: len,
            // The output as one row of `len` elements per element: shard k owns elements
            // k * SHARD_ELEMENTS.. of it.
            outputs: vec![(base.get(), std::mem::size_of::<f32>(), DType::F32)],
            read: 0,
            written: (len * std::mem::size_of::<f32>()) as u64,
        };
        self.launch(&launch, &|lo, hi| {
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
        })
        .map_err(|e| shard_error(id, node, &[len], SHARD_ELEMENTS, &e))?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Data::F32(v),
        })
    }

    /// The number that names launch of node `id` in this evaluation, for fault injection.
    fn launch_id(&self, id: NodeId) -> u64 {
        (self.evals << 32) | id.0 as u64
    }

    /// Runs the shards of one launch on the worker pool: `run(lo, hi)` computes rows
    /// `lo..hi` and returns a kernel status. Injects the faults of the retry policy, reports
    /// shards to the hooks, and returns the pool's error when a shard fails for good.
    fn launch(
        &self,
        l: &Launch,
        run: &(dyn Fn(usize, usize) -> i32 + Sync),
    ) -> Result<(), TaskError> {
        let profiler = self.hooks.profiler.as_deref();
        let progress = self.hooks.progress.as_deref();
        let tracing = profiler.is_some_and(|p| p.tracing());
        let retried = self.workers.retried();
        let start = Instant::now();
        let outputs = SendOutputs(&l.outputs);
        let (faults, kernel, rows, extent0, name) =
            (self.faults(), l.kernel, l.rows, l.extent0, &l.name);
        let res = self.workers.run(l.shards, &|k, attempt| {
            let lo = k * rows;
            let hi = (lo + rows).min(extent0);
            let t0 = tracing.then(Instant::now);
            let fault = faults.and_then(|f| f.decide(kernel, k as u64, attempt));
            let res = match fault {
                None => TaskError::check_status(k, run(lo, hi)),
                // The panic unwinds after the attempt is traced, below.
                Some(kind @ (FaultKind::BeforeWriting | FaultKind::Panic)) => {
                    Err(TaskError::injected(k, kind))
                }
                Some(FaultKind::AfterWritingPart) => {
                    // Garbage in the first half of the shard's rows, as a crashed write would
                    // leave: the retry must overwrite it.
                    poison(outputs.get(), lo, lo + (hi - lo).div_ceil(2));
                    Err(TaskError::injected(k, FaultKind::AfterWritingPart))
                }
            };
            if let (Some(p), Some(t0)) = (profiler, t0) {
                let mut args = vec![
                    ("shard", k.to_string()),
                    ("rows", format!("{lo}..{hi}")),
                    ("attempt", attempt.to_string()),
                ];
                if let Err(e) = &res {
                    args.push(("failed", e.kind.to_string()));
                }
                p.span(name.clone(), "shard", t0, Instant::now(), trace_tid(), args);
            }
            if fault == Some(FaultKind::Panic) {
                inject_panic();
            }
            if res.is_ok() {
                if let Some(p) = progress {
                    p.advance(1);
                }
            }
            res
        });
        if let Some(p) = profiler {
            let end = Instant::now();
            p.retries(self.workers.retried() - retried);
            p.kernel(&l.name, l.shards as u64, end - start, l.read, l.written);
            p.span(
                l.name.clone(),
                "kernel",
                start,
                end,
                0,
                vec![("shards", l.shards.to_string())],
            );
        }
        res
    }

    /// Runs one kernel node on its own: a contraction as GEMMs, a node with a kernel over
    /// its shards, a node without one on the interpreter.
    fn run_kernel(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        kernel: Option<Kernel>,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, NativeError> {
        let reads = match &node.kind {
            NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => reads,
            _ => unreachable!("only kernels"),
        };
        let (rows, n_tasks) = shard_plan(g, node);
        if n_tasks == 0 {
            return self.outputs(id, node);
        }
        if let Some(c) = contraction(g, node) {
            let mut outs = self.outputs(id, node)?;
            let a = &values[reads[c.a.0].node.0 as usize][reads[c.a.0].port as usize];
            let b = &values[reads[c.b.0].node.0 as usize][reads[c.b.0].port as usize];
            let read = tensor_bytes(a) + tensor_bytes(b);
            self.run_contraction(id, node, &c, (a, b), read, &mut outs[0])?;
            return Ok(outs);
        }
        let Some(kernel) = kernel else {
            return self.interpret(g, id, node, reads, values);
        };
        let group = Group {
            members: vec![(id, Member::Kernel(kernel))],
            rows,
            fixed_rows: false,
        };
        Ok(self
            .run_group(g, &group, values)?
            .pop()
            .expect("one member"))
    }

    /// Fresh (pooled) output tensors of a node.
    fn outputs(&mut self, id: NodeId, node: &Node) -> Result<Vec<Tensor>, NativeError> {
        node.outputs
            .iter()
            .map(|t| {
                self.output(t.dtype, &t.shape).map_err(|e| NativeError {
                    message: format!("node {id}: {e}"),
                })
            })
            .collect()
    }

    /// The kernel of every node that runs one, and the row groups: runs of consecutive
    /// kernel nodes over the same rows, each reading the others' outputs only at its own row
    /// (first coordinate `i0`). A group runs shard by shard — every member on rows `lo..hi`,
    /// then the next rows — so the rows a member writes are still in cache when the next one
    /// reads them (softmax reads `x` from memory once instead of three times). Each member
    /// computes each of its rows exactly as alone, so grouping changes no bit. Returns the
    /// kernels, the groups of two or more, and for each node the group it starts.
    #[allow(clippy::type_complexity)]
    fn plan_groups(
        &mut self,
        g: &Graph,
    ) -> Result<(Vec<Option<Kernel>>, Vec<Group>, Vec<Option<usize>>), NativeError> {
        let mut kernels: Vec<Option<Kernel>> = vec![None; g.nodes.len()];
        let mut groups: Vec<Group> = Vec::new();
        let mut first_of: Vec<Option<usize>> = vec![None; g.nodes.len()];
        let mut current: Option<(Group, usize)> = None;
        let close = |current: &mut Option<(Group, usize)>,
                     groups: &mut Vec<Group>,
                     first_of: &mut Vec<Option<usize>>| {
            if let Some((group, _)) = current.take() {
                if group.members.len() > 1 {
                    first_of[group.members[0].0 .0 as usize] = Some(groups.len());
                    groups.push(group);
                }
            }
        };
        for (id, node) in g.nodes.iter_enumerated() {
            let (space, reads) = match &node.kind {
                NodeKind::Map { space, reads, .. } | NodeKind::Reduce { space, reads, .. } => {
                    (space, reads)
                }
                // There from the start (see `eval_nodes`).
                NodeKind::Input { .. } | NodeKind::Const { .. } => continue,
                _ => {
                    close(&mut current, &mut groups, &mut first_of);
                    continue;
                }
            };
            let (rows, n_tasks) = shard_plan(g, node);
            if n_tasks == 0 {
                close(&mut current, &mut groups, &mut first_of);
                continue;
            }
            if let Some(c) = contraction(g, node) {
                // A contraction starts a group over its GEMM blocks: its epilogue (bias,
                // activation) runs on each block's rows right after the GEMM wrote them.
                close(&mut current, &mut groups, &mut first_of);
                let (rows, m) = (contraction_rows(&c), c.dims.0);
                current = Some((
                    Group {
                        members: vec![(id, Member::Gemm(c))],
                        rows,
                        fixed_rows: true,
                    },
                    m,
                ));
                continue;
            }
            let kernel = self.kernels.kernel(g, id, &self.hooks)?;
            kernels[id.0 as usize] = kernel;
            let (Some(kernel), false) = (kernel, space.is_empty()) else {
                close(&mut current, &mut groups, &mut first_of);
                continue;
            };
            let joins = current.as_ref().is_some_and(|(group, extent0)| {
                *extent0 == space[0]
                    && reads.iter().all(|r| {
                        !group.members.iter().any(|(m, _)| *m == r.node)
                            || r.proj.first().is_some_and(is_row_index)
                    })
            });
            if joins {
                let (group, _) = current.as_mut().expect("joins a group");
                group.members.push((id, Member::Kernel(kernel)));
                if !group.fixed_rows {
                    group.rows = group.rows.min(rows);
                }
            } else {
                close(&mut current, &mut groups, &mut first_of);
                current = Some((
                    Group {
                        members: vec![(id, Member::Kernel(kernel))],
                        rows,
                        fixed_rows: false,
                    },
                    space[0],
                ));
            }
        }
        close(&mut current, &mut groups, &mut first_of);
        Ok((kernels, groups, first_of))
    }

    /// Runs the kernels of a group over its shards, every member on a shard's rows in turn;
    /// returns each member's outputs.
    fn run_group(
        &mut self,
        g: &Graph,
        group: &Group,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Vec<Tensor>>, NativeError> {
        if group.members.len() > 1 {
            self.grouped += group.members.len();
        }
        let (first, _) = group.members[0];
        let space = match &g.nodes[first].kind {
            NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => space.clone(),
            _ => unreachable!("only kernels"),
        };
        let extent0 = space.first().copied().unwrap_or(1);
        let in_place = in_place(g, group);
        self.in_place += in_place.len();
        let mut outs: Vec<Vec<Tensor>> = Vec::new();
        for (k, (id, _)) in group.members.iter().enumerate() {
            let node = &g.nodes[*id];
            let mut os = Vec::new();
            for (p, t) in node.outputs.iter().enumerate() {
                if in_place.iter().any(|d| d.writer == (k, p)) {
                    // Written over a dead member's output: no buffer of its own (yet).
                    os.push(Tensor {
                        shape: t.shape.clone(),
                        data: Data::zeros(t.dtype, 0),
                    });
                } else {
                    os.push(self.output(t.dtype, &t.shape).map_err(|e| NativeError {
                        message: format!("node {id}: {e}"),
                    })?);
                }
            }
            outs.push(os);
        }
        // Every output's buffer, for the kernels that write it and those that read it.
        let mut out_ptrs: Vec<Vec<*mut u8>> = outs
            .iter_mut()
            .map(|os| os.iter_mut().map(|o| data_ptr_mut(&mut o.data)).collect())
            .collect();
        for d in &in_place {
            out_ptrs[d.writer.0][d.writer.1] = out_ptrs[d.dead.0][d.dead.1];
        }
        let mut outputs = Vec::new();
        let mut calls = Vec::new();
        let (mut read_bytes, mut written) = (0, 0);
        let mut seen: Vec<Port> = Vec::new();
        for (k, (id, member)) in group.members.iter().enumerate() {
            let node = &g.nodes[*id];
            let reads = match &node.kind {
                NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => reads,
                _ => unreachable!("only kernels"),
            };
            if let Member::Gemm(c) = member {
                // The first member: both operands come from outside the group.
                let [a, b] = [c.a.0, c.b.0]
                    .map(|r| &values[reads[r].node.0 as usize][reads[r].port as usize]);
                read_bytes += tensor_bytes(a) + tensor_bytes(b);
                let t = &node.outputs[0];
                outputs.push((out_ptrs[k][0], c.dims.2 * t.dtype.size_bytes(), t.dtype));
                written += (c.dims.0 * c.dims.2 * t.dtype.size_bytes()) as u64;
                calls.push(Call::Gemm {
                    c: c.clone(),
                    a: SendPtr(data_ptr(&a.data) as *mut u8),
                    b: SendPtr(data_ptr(&b.data) as *mut u8),
                    out: SendPtr(out_ptrs[k][0]),
                });
                continue;
            }
            let Member::Kernel(kernel) = member else {
                unreachable!("handled above")
            };
            let mut bufs: Vec<*mut u8> = Vec::new();
            for r in reads {
                match group.members.iter().position(|(m, _)| *m == r.node) {
                    Some(j) => bufs.push(out_ptrs[j][r.port as usize]),
                    None => {
                        let t = &values[r.node.0 as usize][r.port as usize];
                        if !seen.contains(&r.src()) {
                            seen.push(r.src());
                            read_bytes += tensor_bytes(t);
                        }
                        bufs.push(data_ptr(&t.data) as *mut u8);
                    }
                }
            }
            for (t, &ptr) in node.outputs.iter().zip(&out_ptrs[k]) {
                let row: usize = t.shape.iter().skip(1).product();
                outputs.push((ptr, row * t.dtype.size_bytes(), t.dtype));
                bufs.push(ptr);
                written += (t.shape.iter().product::<usize>() * t.dtype.size_bytes()) as u64;
            }
            calls.push(Call::Kernel(kernel.f, SendPtrs(bufs), kernel_dims(g, node)));
        }
        let name = group
            .members
            .iter()
            .map(|(id, m)| match m {
                Member::Kernel(k) => kernel_name(&g.nodes[*id], k.number),
                Member::Gemm(_) => format!("{} gemm", describe_short(&g.nodes[*id])),
            })
            .collect::<Vec<_>>()
            .join(" + ");
        let launch = Launch {
            name,
            kernel: self.launch_id(first),
            shards: extent0.div_ceil(group.rows),
            rows: group.rows,
            extent0,
            outputs,
            read: read_bytes,
            written,
        };
        // Which member failed with an error code, by shard.
        let failed = std::sync::Mutex::new(Vec::<(usize, usize)>::new());
        let rows = group.rows;
        self.launch(&launch, &|lo, hi| {
            for (k, call) in calls.iter().enumerate() {
                let status = match call {
                    // SAFETY: each kernel reads only inside its input buffers (proved by the
                    // verifier; a member's rows lo..hi, which it reads, were written just
                    // before) and writes only rows lo..hi of its outputs, which no other task
                    // writes.
                    Call::Kernel(f, bufs, dims) => unsafe {
                        f(bufs.as_ptr(), dims.as_ptr(), lo as i64, hi as i64)
                    },
                    Call::Gemm { c, a, b, out } => {
                        gemm_rows(c, (a, b, out), lo, hi);
                        0
                    }
                };
                if status != 0 {
                    if let Ok(mut v) = failed.lock() {
                        v.push((lo / rows, k));
                    }
                    return status;
                }
            }
            0
        })
        .map_err(|e| {
            let k = failed
                .lock()
                .ok()
                .and_then(|v| v.iter().find(|(task, _)| *task == e.task).map(|x| x.1))
                .unwrap_or(0);
            let (id, _) = group.members[k];
            let node = &g.nodes[id];
            shard_error(id, node, &space_of(node), rows, &e)
        })?;
        // The buffers written in place now belong to their writers.
        for d in &in_place {
            let dead = &mut outs[d.dead.0][d.dead.1];
            let empty = Data::zeros(dead.dtype(), 0);
            let data = std::mem::replace(&mut dead.data, empty);
            outs[d.writer.0][d.writer.1].data = data;
        }
        Ok(outs)
    }
}

/// A member's output written over another member's output, which nothing reads after the
/// writer: `(member, port)` pairs, indexes into the group.
struct InPlace {
    writer: (usize, usize),
    dead: (usize, usize),
}

/// Where a group's maps may write over a dead tensor of the group (softmax's `y = e / z`
/// over `e`), saving the memory traffic of a second tensor: the writer is a `Map` whose every
/// read of the dead tensor is at its own point (so it reads each element before writing it
/// back, in scalar and vector code alike), of the same type and shape, and the dead tensor is
/// not a graph output nor read by any node after the writer. Since the dead tensor is a
/// member's output, a retried shard recomputes it before its writer runs again.
fn in_place(g: &Graph, group: &Group) -> Vec<InPlace> {
    let mut out: Vec<InPlace> = Vec::new();
    for (k, (id, _)) in group.members.iter().enumerate() {
        let NodeKind::Map { space, reads, .. } = &g.nodes[*id].kind else {
            continue;
        };
        for (p, t) in g.nodes[*id].outputs.iter().enumerate() {
            let candidate = reads.iter().find_map(|r| {
                let j = group.members[..k].iter().position(|(m, _)| *m == r.node)?;
                let dead = (j, r.port as usize);
                let port = r.src();
                let fits = g.nodes[r.node].outputs[dead.1] == *t
                    && !g.outputs.contains(&port)
                    && !out.iter().any(|d| d.dead == dead)
                    && reads
                        .iter()
                        .filter(|x| x.src() == port)
                        .all(|x| is_identity(&x.proj, space.len()))
                    && g.nodes
                        .iter_enumerated()
                        .all(|(n, node)| n.0 <= id.0 || !reads_port(node, port));
                fits.then_some(dead)
            });
            if let Some(dead) = candidate {
                out.push(InPlace {
                    writer: (k, p),
                    dead,
                });
            }
        }
    }
    out
}

/// Whether a projection is the identity on a space of `rank` dimensions.
fn is_identity(proj: &[crate::mir::ir::Affine], rank: usize) -> bool {
    proj.len() == rank && proj.iter().enumerate().all(|(d, a)| is_index(a, d as u32))
}

/// Whether a node reads a port.
fn reads_port(node: &Node, port: Port) -> bool {
    match &node.kind {
        NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => {
            reads.iter().any(|r| r.src() == port)
        }
        NodeKind::Concat { parts, .. } => parts.contains(&port),
        NodeKind::Slice { src, .. } => *src == port,
        NodeKind::Input { .. } | NodeKind::Const { .. } | NodeKind::Random { .. } => false,
    }
}

/// Kernel nodes that run together, shard by shard (see [`Native::plan_groups`]).
struct Group {
    /// In graph order.
    members: Vec<(NodeId, Member)>,
    /// Rows per shard: the fewest any member would take alone, or a contraction's rows per
    /// GEMM block.
    rows: usize,
    /// Whether `rows` are a GEMM's blocks (members do not change them).
    fixed_rows: bool,
}

/// How a group member runs.
enum Member {
    /// A compiled kernel.
    Kernel(Kernel),
    /// A contraction, as GEMMs over blocks of rows (only as a group's first member).
    Gemm(Contraction),
}

/// One member's work on a shard's rows.
enum Call {
    Kernel(KernelFn, SendPtrs, Vec<i64>),
    Gemm {
        c: Contraction,
        a: SendPtr,
        b: SendPtr,
        out: SendPtr,
    },
}

/// Rows `lo..hi` of a contraction's output, with the GEMM.
fn gemm_rows(c: &Contraction, (a, b, o): (&SendPtr, &SendPtr, &SendPtr), lo: usize, hi: usize) {
    let (_, k, n) = c.dims;
    let shift = lo as isize * c.a.1;
    // SAFETY: the verifier proved both reads in bounds over the whole box, so rows lo..hi of
    // `a` and all of `b` are readable; each task writes only rows lo..hi of the m×n output,
    // which no other task writes.
    unsafe {
        match c.dtype {
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
}

/// Whether a coordinate is the row index itself, `i0`.
fn is_row_index(a: &crate::mir::ir::Affine) -> bool {
    is_index(a, 0)
}

/// Whether a coordinate is index variable `v` itself.
fn is_index(a: &crate::mir::ir::Affine, v: u32) -> bool {
    a.konst == 0 && {
        let mut terms = a.coeffs.iter().filter(|(_, c)| *c != 0);
        terms.next() == Some(&(v, 1)) && terms.next().is_none()
    }
}

/// A kernel node's index space (free dimensions).
fn space_of(node: &Node) -> Vec<usize> {
    match &node.kind {
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => space.clone(),
        _ => Vec::new(),
    }
}

impl Native {
    /// Runs node `id` on the reference interpreter: a graph of the node alone, reading one
    /// input per distinct port it reads, evaluated with the same retry policy and hooks.
    fn interpret(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        reads: &[crate::mir::ir::Read],
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, NativeError> {
        let mut sub = Graph::new();
        sub.monoids = g.monoids.clone();
        let mut ports: Vec<Port> = Vec::new();
        let mut inputs: Vec<Tensor> = Vec::new();
        for r in reads {
            if !ports.contains(&r.src()) {
                let t = &values[r.node.0 as usize][r.port as usize];
                sub.add(Node {
                    kind: NodeKind::Input {
                        index: ports.len() as u32,
                    },
                    outputs: vec![g.nodes[r.node].outputs[r.port as usize].clone()],
                    label: String::new(),
                });
                ports.push(r.src());
                inputs.push((**t).clone());
            }
        }
        let mut alone = node.clone();
        if let NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } = &mut alone.kind {
            for r in reads.iter_mut() {
                let k = ports
                    .iter()
                    .position(|p| *p == r.src())
                    .expect("every read's port was entered above");
                r.node = NodeId(k as u32);
                r.port = 0;
            }
        }
        let n_outputs = alone.outputs.len() as u32;
        let at = sub.add(alone);
        sub.outputs = (0..n_outputs).map(|port| Port { node: at, port }).collect();
        let cfg = crate::interp::EvalConfig {
            retry: self.retry,
            hooks: self.hooks.clone(),
            launch: self.launch_id(id),
        };
        crate::interp::eval_with(&sub, &inputs, &cfg).map_err(|e| NativeError {
            message: format!("{}: {e}", describe(id, node)),
        })
    }

    /// Runs a contraction as GEMMs over blocks of rows (see `flow_runtime::gemm`: each element
    /// depends only on its row and column, so the blocks do not change a bit). A block is a
    /// shard: it owns its rows of the output, and is retried and faulted like a kernel's.
    fn run_contraction(
        &self,
        id: NodeId,
        node: &Node,
        c: &Contraction,
        (a, b): (&Tensor, &Tensor),
        read: u64,
        out: &mut Tensor,
    ) -> Result<(), NativeError> {
        let (m, _, n) = c.dims;
        let rows = contraction_rows(c);
        let written = tensor_bytes(out);
        let (a, b, o) = (
            SendPtr(data_ptr(&a.data) as *mut u8),
            SendPtr(data_ptr(&b.data) as *mut u8),
            SendPtr(data_ptr_mut(&mut out.data)),
        );
        let dtype = c.dtype;
        let launch = Launch {
            name: format!("{} gemm", describe_short(node)),
            kernel: self.launch_id(id),
            shards: m.div_ceil(rows),
            rows,
            extent0: m,
            outputs: vec![(o.get(), n * dtype.size_bytes(), dtype)],
            read,
            written,
        };
        self.launch(&launch, &|lo, hi| {
            gemm_rows(c, (&a, &b, &o), lo, hi);
            0
        })
        .map_err(|e| shard_error(id, node, &[m, n], rows, &e))
    }
}

/// Rows of the output per GEMM block of a contraction.
fn contraction_rows(c: &Contraction) -> usize {
    c.dims.0.div_ceil(8).max(32)
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

/// One launch of a kernel (or of a random fill) over its shards.
struct Launch {
    /// Its name in profiles and traces.
    name: String,
    /// The number that names it for fault injection.
    kernel: u64,
    shards: usize,
    /// Rows (of the outermost dimension) per shard.
    rows: usize,
    /// How many rows there are.
    extent0: usize,
    /// Each output: its buffer, the bytes of one row, its type.
    outputs: Vec<(*mut u8, usize, DType)>,
    /// Bytes read and written by the whole launch.
    read: u64,
    written: u64,
}

/// How node `node` is split into shards: rows per shard and the number of shards (0 for an
/// empty space, and for nodes that are not run as shards). A function of the shape only.
fn shard_plan(g: &Graph, node: &Node) -> (usize, usize) {
    match &node.kind {
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => {
            let volume: usize = space.iter().product();
            if volume == 0 {
                (1, 0)
            } else if let Some(c) = contraction(g, node) {
                let rows = contraction_rows(&c);
                (rows, c.dims.0.div_ceil(rows))
            } else if space.is_empty() {
                (1, 1)
            } else {
                let inner: usize = space[1..].iter().product::<usize>().max(1);
                let red: usize = match &node.kind {
                    NodeKind::Reduce { red, .. } => red.iter().product::<usize>().max(1),
                    _ => 1,
                };
                let mut rows = (SHARD_ELEMENTS / (inner * red)).max(1);
                if space.len() == 1 {
                    // The rows are the innermost dimension: reads along it are contiguous
                    // (a column sum reads a row segment of its input per step), so a shard
                    // takes whole cache lines of them, and few enough pages per step for
                    // the TLB.
                    rows = rows.max(MIN_CONTIGUOUS_ROWS);
                }
                (rows, space[0].div_ceil(rows))
            }
        }
        NodeKind::Random { .. } => {
            let len: usize = node.outputs[0].shape.iter().product();
            (SHARD_ELEMENTS, len.div_ceil(SHARD_ELEMENTS))
        }
        _ => (1, 0),
    }
}

/// Overwrites rows `lo..hi` of every output with a recognisable garbage pattern (NaN with a
/// payload, `0x5eed…`, `true`): what an attempt that fails half-way may leave behind.
pub(crate) fn poison(outputs: &[(*mut u8, usize, DType)], lo: usize, hi: usize) {
    for &(ptr, row_bytes, dtype) in outputs {
        let n = (hi - lo) * row_bytes / dtype.size_bytes();
        let at = lo * row_bytes;
        // SAFETY: rows lo..hi of each output belong to the calling shard alone, and the
        // buffers outlive the launch; every pattern is a valid value of its type.
        unsafe {
            match dtype {
                DType::F32 => std::slice::from_raw_parts_mut(ptr.add(at) as *mut f32, n)
                    .fill(f32::from_bits(0x7fc0_dead)),
                DType::F64 => std::slice::from_raw_parts_mut(ptr.add(at) as *mut f64, n)
                    .fill(f64::from_bits(0x7ff8_0000_0000_dead)),
                DType::I32 => {
                    std::slice::from_raw_parts_mut(ptr.add(at) as *mut i32, n).fill(0x5eed_beef)
                }
                DType::I64 => std::slice::from_raw_parts_mut(ptr.add(at) as *mut i64, n)
                    .fill(0x5eed_beef_5eed_beef),
                DType::Bool => {
                    std::slice::from_raw_parts_mut(ptr.add(at) as *mut bool, n).fill(true)
                }
            }
        }
    }
}

/// The error of a shard that failed for good: the op, the shard and its index box, the
/// cause, and whether it was retried.
pub(crate) fn shard_error(
    id: NodeId,
    node: &Node,
    space: &[usize],
    rows: usize,
    e: &TaskError,
) -> NativeError {
    let k = e.task;
    let n = space.first().map_or(1, |d| d.div_ceil(rows));
    let mut dims: Vec<String> = space.iter().map(|d| format!("0..{d}")).collect();
    if let Some(d0) = space.first() {
        dims[0] = format!("{}..{}", k * rows, ((k + 1) * rows).min(*d0));
    }
    let shard = format!("shard {k} of {n} (index box [{}])", dims.join(", "));
    let op = describe(id, node);
    let message = match (&e.kind, e.attempts) {
        (TaskErrorKind::Code(code), _) => format!(
            "{} in {op}, {shard}; not retried: the error follows from the program and its data",
            flow_runtime::abi::error_message(*code)
        ),
        (kind, 1) => format!("{op}, {shard} failed: {kind}"),
        (kind, attempts) => format!(
            "{op}, {shard} failed {attempts} times, retries exhausted; the last failure: {kind}"
        ),
    };
    NativeError { message }
}

/// The name of a kernel in profiles: its op's label and its compiled kernel's number.
fn kernel_name(node: &Node, number: usize) -> String {
    format!("{} k{number}", describe_short(node))
}

/// The op's label, or the node's kind for an unlabelled node.
fn describe_short(node: &Node) -> String {
    if !node.label.is_empty() {
        return node.label.clone();
    }
    match &node.kind {
        NodeKind::Map { .. } => "map".into(),
        NodeKind::Reduce { .. } => "reduce".into(),
        NodeKind::Random { .. } => "random".into(),
        _ => "node".into(),
    }
}

fn dist_name(dist: crate::mir::ir::Dist) -> &'static str {
    match dist {
        crate::mir::ir::Dist::Uniform => "uniform",
        crate::mir::ir::Dist::Normal => "normal",
    }
}

fn tensor_bytes(t: &Tensor) -> u64 {
    (t.len() * t.dtype().size_bytes()) as u64
}

/// `op "softmax.y" (node %9)`, or `node %9` when the node has no label.
pub(crate) fn describe(id: NodeId, node: &Node) -> String {
    if node.label.is_empty() {
        format!("node {id}")
    } else {
        format!("op \"{}\" (node {id})", node.label)
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
// while the buffers are alive: the launch returns before they are dropped.
unsafe impl Send for SendPtrs {}
unsafe impl Sync for SendPtrs {}

/// The outputs of a launch, shared with its shard tasks.
struct SendOutputs<'a>(&'a [(*mut u8, usize, DType)]);

impl SendOutputs<'_> {
    fn get(&self) -> &[(*mut u8, usize, DType)] {
        self.0
    }
}
// SAFETY: each task writes only its own rows of the outputs (see `poison`).
unsafe impl Send for SendOutputs<'_> {}
unsafe impl Sync for SendOutputs<'_> {}

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

fn concat(parts: &[&Tensor], axis: usize, shape: &[usize]) -> Result<Tensor, NativeError> {
    let dtype = parts.first().map(|t| t.dtype()).unwrap_or(DType::F32);
    let mut out = Tensor::zeros(dtype, shape).map_err(|e| NativeError {
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

fn slice(src: &Tensor, start: &[usize], shape: &[usize]) -> Result<Tensor, NativeError> {
    let mut out = Tensor::zeros(src.dtype(), shape).map_err(|e| NativeError {
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
