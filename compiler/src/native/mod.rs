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
use flow_runtime::pool::TaskError;
use flow_runtime::profile::{trace_tid, Hooks};
use flow_runtime::{DType, Data, Tensor};

use crate::mir::ir::{Graph, Node, NodeId, NodeKind, Port};
use crate::mir::schedule::{shard_elements, shard_plan};
use crate::mir::Idx;
mod contraction;
mod copy;
mod error;
mod fallback;
mod group;
mod key;
pub(crate) mod prims;
mod prims_ranks;
mod producer;
mod record;
pub mod spread;
#[cfg(test)]
mod tests;

pub use error::NativeError;
pub use key::{kernel_dims, structure_key};
pub use spread::Spread;

/// A compiled kernel: `fn(bufs, dims, lo, hi) -> status` (see `codegen/kernel/`).
pub use flow_runtime::abi::KernelFn;

/// A kernel and its number, which names it in profiles (`k3`).
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub f: KernelFn,
    pub number: usize,
}

/// A kernel source's answer for one node: its kernel, `None` (run it on the interpreter),
/// or why it could not be compiled.
pub type KernelLookup = Result<Option<Kernel>, NativeError>;

/// Where the executor gets the kernel of a node.
pub trait Kernels {
    /// The kernel of node `id` of `g`, or `None` when this source has none (the node then
    /// runs on the interpreter). Compilations are reported to `hooks`.
    fn kernel(&mut self, g: &Graph, id: NodeId, hooks: &Hooks) -> KernelLookup;

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
    fn kernel(&mut self, g: &Graph, id: NodeId, _hooks: &Hooks) -> KernelLookup {
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
    /// Kernel nodes run as members of row groups (see [`crate::mir::schedule`]).
    grouped: usize,
    /// Outputs written over a dead tensor of their group (see [`in_place`]).
    in_place: usize,
    /// Nodes run on the reference interpreter (`Native::interpret`): no kernel for them, or
    /// a primitive the native routines do not take.
    interpreted: usize,
    /// The ranks a dispatch is spread over (`mpirun`), if any (see [`spread`]).
    spread: Option<Rc<dyn Spread>>,
    /// With ranks: the rows of each port of the graph being run that each rank needs
    /// ([`spread::rows_needed`]; a port not there goes to every rank whole).
    needs: HashMap<Port, spread::Need>,
    /// With ranks: how each node of the graph being run is placed on them
    /// ([`spread::placements`]; a scan or histogram placed there runs by blocks on the ranks).
    placed: Vec<Option<(usize, usize)>>,
}

impl Native {
    pub fn new(kernels: Box<dyn Kernels>, threads: usize) -> Result<Native, NativeError> {
        Ok(Native {
            kernels,
            workers: flow_runtime::pool::Pool::new(threads.max(1))
                .map_err(|e| NativeError::Threads { cause: e.message })?,
            retry: RetryPolicy::default(),
            hooks: Hooks::default(),
            evals: 0,
            pool: BufferPool::default(),
            last_peak: 0,
            grouped: 0,
            in_place: 0,
            interpreted: 0,
            spread: None,
            needs: HashMap::new(),
            placed: Vec::new(),
        })
    }

    /// How many nodes ran on the reference interpreter instead of kernels or the runtime's
    /// routines (a node with no kernel in an executable's table, a primitive the routines do
    /// not take, or the wording of a fused producer's error), over this executor's life.
    pub fn interpreted(&self) -> usize {
        self.interpreted
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

    /// Spreads every evaluation over ranks: on rank 0 [`Native::eval`] sends the graph and
    /// its inputs to the others, and each rank runs its block of each launch's shards.
    pub fn set_spread(&mut self, spread: Rc<dyn Spread>) {
        self.spread = Some(spread);
    }

    /// Numbers the next evaluation `eval` (a rank of an MPI job takes rank 0's numbers,
    /// which name the launches for injected faults).
    pub fn number_next_eval(&mut self, eval: u64) {
        self.evals = eval.saturating_sub(1);
    }

    /// The ranks in use, when more than one.
    fn spread(&self) -> Option<&dyn Spread> {
        self.spread.as_deref().filter(|s| s.ranks() > 1)
    }

    /// The rows of a port each rank needs after its launch (`None`: every row).
    fn need(&self, p: Port) -> Option<spread::Need> {
        self.needs.get(&p).cloned()
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
        crate::mir::verify(g).map_err(|e| NativeError::CompilerBug {
            what: "the native backend was given invalid MIR".into(),
            finding: e.to_string(),
        })?;
        self.evals += 1;
        if let Some(s) = self.spread().filter(|s| s.rank() == 0) {
            s.send_dispatch(g, inputs, self.evals)?;
        }
        let progress = self.hooks.progress.clone();
        if let Some(p) = &progress {
            p.begin(g.nodes.ids().map(|id| shard_plan(g, id).1 as u64).sum());
        }
        let outer = (
            std::mem::take(&mut self.needs),
            std::mem::take(&mut self.placed),
        );
        let res = self.eval_graph_nodes(g, inputs, true);
        (self.needs, self.placed) = outer;
        if let Some(p) = &progress {
            p.end();
        }
        res
    }

    /// Evaluates `g`'s nodes. A primitive may evaluate a graph of its own inside another
    /// (its elements, `run_prim`): the halo plan of the outer graph is kept for its
    /// remaining launches.
    fn eval_nodes(
        &mut self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
    ) -> Result<Vec<Rc<Tensor>>, NativeError> {
        let outer = (
            std::mem::take(&mut self.needs),
            std::mem::take(&mut self.placed),
        );
        let res = self.eval_graph_nodes(g, inputs, false);
        (self.needs, self.placed) = outer;
        res
    }

    /// Evaluates `g`'s nodes; `top`: `g` is a dispatched graph (not a primitive's own),
    /// whose inputs and outputs the ranks hold between dispatches.
    fn eval_graph_nodes(
        &mut self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
        top: bool,
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
        let schedule = crate::mir::schedule::plan(g);
        let (kernels, first_of) = self.kernels_of(g, &schedule)?;
        let ranks = self.spread.clone().filter(|s| s.ranks() > 1);
        let mut placed = Vec::new();
        if let Some(s) = &ranks {
            placed = spread::placements(g, &schedule, &kernels, &first_of);
            self.needs = spread::rows_needed(g, &placed, s.ranks());
            self.placed = placed.clone();
            if !top {
                // A primitive's own graph (e.g. the states of a tuple-state scan) hands its
                // outputs to a routine that reads them whole on every rank.
                for p in &g.outputs {
                    self.needs.remove(p);
                }
            }
        }
        // A dispatched graph's inputs may be spread over the ranks by an earlier dispatch:
        // each rank first gets the rows of them it reads.
        let top = ranks.filter(|_| top);
        let gathered;
        let inputs = match &top {
            Some(s) => {
                let mut need: Vec<Option<spread::Need>> =
                    vec![Some(vec![spread::RowSet::default(); s.ranks()]); inputs.len()];
                for (id, node) in g.nodes.iter_enumerated() {
                    if let NodeKind::Input { index } = node.kind {
                        if let Some(n) = need.get_mut(index as usize) {
                            *n = self.need(Port { node: id, port: 0 });
                        }
                    }
                }
                gathered = s.gather_inputs(inputs, &need);
                &gathered[..]
            }
            None => inputs,
        };
        // Outputs of group members computed with their group's first member.
        let mut ready: HashMap<NodeId, Vec<Tensor>> = HashMap::new();
        // Inputs and constants are there from the start: a row group may read one that comes
        // after its first member.
        let mut values: Vec<Vec<Rc<Tensor>>> = vec![Vec::new(); g.nodes.len()];
        for (id, node) in g.nodes.iter_enumerated() {
            values[id.0 as usize] = match &node.kind {
                NodeKind::Input { index } => {
                    let Some(t) = inputs.get(*index as usize) else {
                        return Err(NativeError::Input {
                            index: *index,
                            got: None,
                            expected: node.outputs[0].to_string(),
                        });
                    };
                    let want = &node.outputs[0];
                    if t.dtype() != want.dtype || t.shape != want.shape {
                        return Err(NativeError::Input {
                            index: *index,
                            got: Some((t.dtype(), t.shape.clone())),
                            expected: want.to_string(),
                        });
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
                        let launch = &schedule.launches[k];
                        let outs = self.run_group(g, launch, &kernels, &values)?;
                        for (m, o) in launch.members.iter().zip(outs) {
                            ready.insert(m.node, o);
                        }
                    }
                    let outs = match ready.remove(&id) {
                        Some(outs) => outs,
                        None => self.run_kernel(g, id, node, &kernels, &values)?,
                    };
                    outs.into_iter().map(Rc::new).collect()
                }
                NodeKind::Scan { .. }
                | NodeKind::ReduceByIndex { .. }
                | NodeKind::Scatter { .. } => self
                    .run_prim(g, id, node, &values)?
                    .into_iter()
                    .map(Rc::new)
                    .collect(),
                NodeKind::Concat { axis, parts } => {
                    let parts: Vec<&Tensor> = parts
                        .iter()
                        .map(|p| &*values[p.node.0 as usize][p.port as usize])
                        .collect();
                    vec![Rc::new(copy::concat(
                        &parts,
                        *axis,
                        &node.outputs[0].shape,
                    )?)]
                }
                NodeKind::Slice { src, start, shape } => {
                    vec![Rc::new(copy::slice(
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
        let outputs: Vec<Rc<Tensor>> = g
            .outputs
            .iter()
            .map(|p| values[p.node.0 as usize][p.port as usize].clone())
            .collect();
        if let Some(s) = &top {
            let held: Vec<spread::Held> = g
                .outputs
                .iter()
                .map(|p| spread::held(g, *p, &placed, self.needs.get(p), s.ranks()))
                .collect();
            s.dispatched(&outputs, &held);
        }
        Ok(outputs)
    }

    fn random(
        &self,
        id: NodeId,
        node: &Node,
        dist: crate::mir::ir::Dist,
        seed: u64,
    ) -> Result<Tensor, NativeError> {
        let shape = &node.outputs[0].shape;
        let t = Tensor::zeros(DType::F32, shape).map_err(alloc_error(None))?;
        let Data::F32(mut v) = t.data else {
            unreachable!("f32")
        };
        let len = v.len();
        let block = shard_elements();
        let base = SendPtr(v.as_mut_ptr() as *mut u8);
        let launch = Launch {
            name: if node.label.is_empty() {
                format!("random {}", dist_name(dist))
            } else {
                format!("random {} ({})", dist_name(dist), node.label)
            },
            kernel: self.launch_id(id),
            shards: len.div_ceil(block),
            rows: block,
            extent0: len,
            // The output as one row of `len` elements per element: shard k owns elements
            // k * block.. of it. Its halo plan is in rows of the tensor, which its blocks
            // hold whole when it is placed by rows (`spread::random_rows`): in elements,
            // `width` to a row.
            outputs: vec![(base.get(), std::mem::size_of::<f32>(), DType::F32)],
            need: vec![self.need(Port { node: id, port: 0 }).map(|n| {
                let width: usize = shape.iter().skip(1).product();
                n.iter().map(|r| r.scaled(width)).collect()
            })],
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
        .map_err(|e| NativeError::shard(id, node, &[len], block, &e))?;
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
        let task = |k: usize, attempt: u32| {
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
        };
        let res = match self.spread() {
            None => self.workers.run(l.shards, &task),
            Some(s) => self.spread_launch(s, l, &task),
        };
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
}

/// A kernel node's index space (free dimensions).
fn space_of(node: &Node) -> Vec<usize> {
    match &node.kind {
        NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => space.clone(),
        _ => Vec::new(),
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
    /// For each output, the rows each rank needs of it (with ranks; `None`: every rank
    /// needs every row).
    need: Vec<Option<spread::Need>>,
    /// Bytes read and written by the whole launch.
    read: u64,
    written: u64,
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
                DType::U8 => std::slice::from_raw_parts_mut(ptr.add(at), n).fill(0x5e),
                DType::U32 => {
                    std::slice::from_raw_parts_mut(ptr.add(at) as *mut u32, n).fill(0x5eed_beef)
                }
                DType::U64 => std::slice::from_raw_parts_mut(ptr.add(at) as *mut u64, n)
                    .fill(0x5eed_beef_5eed_beef),
            }
        }
    }
}

/// The error of an allocation that failed, for `map_err`.
pub(crate) fn alloc_error<E: std::fmt::Display>(node: Option<NodeId>) -> impl Fn(E) -> NativeError {
    move |e| NativeError::Alloc {
        node,
        cause: e.to_string(),
    }
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

pub(crate) fn data_ptr(d: &Data) -> *const u8 {
    match d {
        Data::F32(v) => v.as_ptr() as *const u8,
        Data::F64(v) => v.as_ptr() as *const u8,
        Data::I32(v) => v.as_ptr() as *const u8,
        Data::I64(v) => v.as_ptr() as *const u8,
        Data::Bool(v) => v.as_ptr() as *const u8,
        Data::U8(v) => v.as_ptr(),
        Data::U32(v) => v.as_ptr() as *const u8,
        Data::U64(v) => v.as_ptr() as *const u8,
    }
}

pub(crate) fn data_ptr_mut(d: &mut Data) -> *mut u8 {
    match d {
        Data::F32(v) => v.as_mut_ptr() as *mut u8,
        Data::F64(v) => v.as_mut_ptr() as *mut u8,
        Data::I32(v) => v.as_mut_ptr() as *mut u8,
        Data::I64(v) => v.as_mut_ptr() as *mut u8,
        Data::Bool(v) => v.as_mut_ptr() as *mut u8,
        Data::U8(v) => v.as_mut_ptr(),
        Data::U32(v) => v.as_mut_ptr() as *mut u8,
        Data::U64(v) => v.as_mut_ptr() as *mut u8,
    }
}
