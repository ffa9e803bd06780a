//! The reference interpreter: evaluates a MIR graph directly, as plainly as possible. It is
//! the semantic oracle that every pass and back end is tested against, so it takes no
//! shortcuts.
//!
//! [`eval`] first runs the verifier, then evaluates the nodes in id order:
//! - a `Map` point by point in row-major order of its space;
//! - a `Reduce`, for each free point in row-major order, by folding its reduced box in
//!   row-major order, strictly left to right, starting from the monoid's zero:
//!   `acc = combine(acc, wrap(args))`, then `unwrap(acc)`. This fixes the reference order
//!   of a non-commutative or non-associative (floating-point) fold. Over an empty reduced
//!   box the result is `unwrap(zero)` (for a built-in monoid, its identity). The one
//!   exception is a *contraction* (`sum[k](a[i, k] * b[k, j])`, see
//!   [`crate::mir::contract`]): it is the runtime's GEMM, whose blocked order of additions the
//!   native backend shares, so that both stay bitwise equal at the speed of a tuned kernel;
//! - a read through its projection: a `Strict` read outside its tensor is an error (the
//!   verifier should have rejected the graph), `Pad` yields the pad value, and `Clamp`
//!   clamps each coordinate to the tensor;
//! - `Random` element `n` (row-major) is `flow_runtime::rand::uniform(seed, n)` or `normal`.
//!
//! Scalar operators mean what [`crate::base::ops`] says (integer arithmetic wraps, shift
//! amounts are taken modulo the bit width, float `min`/`max` propagate NaN). Expressions are
//! evaluated lazily where it can matter: `select` evaluates only the chosen arm, `and`
//! evaluates its second operand only when the first is `true` and `or` only when it is
//! `false`, and a read is performed only when its value is used. So a guarded division by
//! zero or out-of-bounds read in an arm that is not taken raises no error.
//!
//! Input `k` is `inputs[k]` and must have the Input node's dtype and shape; inputs that no
//! node reads are allowed. Run-time failures, such as an integer division by zero, are an
//! [`InterpError`] naming the node, never a panic.
//!
//! [`eval_with`] adds the runtime's fault model at node granularity: a `Map`, `Reduce` or
//! `Random` node whose evaluation panics or meets an injected fault is evaluated again, up to
//! the retry limit (a node's output is built afresh at each attempt and kept only when the
//! attempt succeeds, so nothing of a failed attempt survives); deterministic faults (division
//! by zero, a read out of bounds) are not retried. Node evaluations are reported to the
//! [`Hooks`] as one-shard launches.
//!
//! This file holds the entry points and the retrying node loop; `node` evaluates one node,
//! `expr` one scalar expression at one point, and `error` words what can stop an evaluation.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use flow_runtime::fault::{inject_panic, FaultKind, InjectedPanic, RetryPolicy};
use flow_runtime::profile::Hooks;
use flow_runtime::tensor::row_major_strides;
use flow_runtime::{format_shape, rand, DType, Data, Scalar, ShapeError, Tensor};

use crate::base::ops::{self, OpError};
use crate::mir::contract::{contraction, Contraction};
use crate::mir::ir::{
    BinOp, Dist, Edge, Graph, MonoidRef, Node, NodeId, NodeKind, Port, Read, ScalarExpr, TensorTy,
};
use crate::mir::verify::{verify, VerifyError};

/// Evaluates a graph on its inputs and returns its outputs in `g.outputs` order.
mod error;
mod expr;
mod node;
mod prims;

use error::NodeFault;
pub use error::{Fault, GatherMiss, InterpError};
use expr::*;
use node::*;
pub(crate) use prims::index_fault;
use prims::*;

pub fn eval(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    let cfg = EvalConfig {
        retry: RetryPolicy {
            retries: 0,
            faults: None,
        },
        hooks: Hooks::default(),
        launch: 0,
    };
    eval_with(g, inputs, &cfg)
}

/// How [`eval_with`] retries nodes, which faults it injects and where it reports.
#[derive(Clone, Debug, Default)]
pub struct EvalConfig {
    pub retry: RetryPolicy,
    pub hooks: Hooks,
    /// Names this evaluation for fault injection: node `n` is kernel `launch | n`.
    pub launch: u64,
}

/// [`eval`] with retries of failed nodes, injected faults and reports to the hooks.
pub fn eval_with(
    g: &Graph,
    inputs: &[Tensor],
    cfg: &EvalConfig,
) -> Result<Vec<Tensor>, InterpError> {
    eval_measured(g, inputs, cfg).map(|(outs, _)| outs)
}

/// [`eval_with`], which also returns the most bytes of computed tensors it held at once: each
/// node's tensors are dropped right after their last reader (`mir::memory::plan`).
pub fn eval_measured(
    g: &Graph,
    inputs: &[Tensor],
    cfg: &EvalConfig,
) -> Result<(Vec<Tensor>, u128), InterpError> {
    verify(g).map_err(InterpError::Invalid)?;
    let plan = crate::mir::memory::plan(g);
    let mut free_at: Vec<Vec<usize>> = vec![Vec::new(); g.nodes.len()];
    for (i, f) in plan.free_after.iter().enumerate() {
        if let Some(l) = f {
            free_at[*l].push(i);
        }
    }
    let bytes = |ts: &[Tensor]| -> u128 {
        ts.iter()
            .map(|t| (t.len() * t.dtype().size_bytes()) as u128)
            .sum()
    };
    let (mut live, mut peak) = (0u128, 0u128);
    if let Some(p) = &cfg.hooks.progress {
        p.begin(g.nodes.iter().filter(|n| is_kernel(n)).count() as u64);
    }
    let mut values: Vec<Vec<Tensor>> = Vec::with_capacity(g.nodes.len());
    for (id, node) in g.nodes.iter_enumerated() {
        match eval_node_retrying(g, id, node, inputs, &values, cfg) {
            Ok(ports) => {
                if !matches!(node.kind, NodeKind::Input { .. }) {
                    live += bytes(&ports);
                    peak = peak.max(live);
                }
                values.push(ports);
                for &j in &free_at[id.0 as usize] {
                    live -= bytes(&values[j]);
                    values[j] = Vec::new();
                }
            }
            Err(e) => {
                if let Some(p) = &cfg.hooks.progress {
                    p.end();
                }
                return Err(e);
            }
        }
    }
    if let Some(p) = &cfg.hooks.progress {
        p.end();
    }
    let outs = g
        .outputs
        .iter()
        .map(|&p| {
            port_value(&values, p)
                .cloned()
                .map_err(|problem| InterpError::At {
                    node: p.node,
                    label: String::new(),
                    problem,
                })
        })
        .collect::<Result<_, _>>()?;
    Ok((outs, peak))
}

/// Whether a node is run like a kernel: retried, faulted and reported.
fn is_kernel(node: &Node) -> bool {
    matches!(
        node.kind,
        NodeKind::Map { .. }
            | NodeKind::Reduce { .. }
            | NodeKind::Random { .. }
            | NodeKind::Scan { .. }
            | NodeKind::ReduceByIndex { .. }
            | NodeKind::Scatter { .. }
    )
}

/// Evaluates one node, again after a retryable failure, up to the retry limit, reporting to
/// the hooks; a failure names the node.
fn eval_node_retrying(
    g: &Graph,
    id: NodeId,
    node: &Node,
    inputs: &[Tensor],
    values: &[Vec<Tensor>],
    cfg: &EvalConfig,
) -> Result<Vec<Tensor>, InterpError> {
    let kernel = is_kernel(node);
    let profiler = cfg.hooks.profiler.as_deref().filter(|_| kernel);
    let faults = cfg.retry.faults.filter(|_| kernel);
    let mut attempt = 0;
    loop {
        let start = Instant::now();
        let fault = faults.and_then(|f| f.decide(cfg.launch | id.0 as u64, 0, attempt));
        let res = catch_unwind(AssertUnwindSafe(|| match fault {
            None => eval_node(g, node, inputs, values),
            Some(FaultKind::Panic) => inject_panic(),
            Some(FaultKind::BeforeWriting) => Err(Fault::Injected(FaultKind::BeforeWriting).into()),
            Some(FaultKind::AfterWritingPart) => {
                // The node's output is computed, then thrown away with the failed attempt.
                let _ = eval_node(g, node, inputs, values);
                Err(Fault::Injected(FaultKind::AfterWritingPart).into())
            }
        }))
        .unwrap_or_else(|payload| {
            Err(NodeFault::Fault(if payload.is::<InjectedPanic>() {
                Fault::Injected(FaultKind::Panic)
            } else {
                Fault::Panicked(flow_runtime::pool::panic_message(payload.as_ref()))
            }))
        });
        if let Some(p) = profiler {
            let end = Instant::now();
            let name = profile_name(node);
            let mut args = vec![("node", id.to_string()), ("attempt", attempt.to_string())];
            if let Err(NodeFault::Fault(f)) = &res {
                args.push(("failed", f.to_string()));
            }
            p.span(name.clone(), "shard", start, end, 0, args);
            if let Ok(ports) = &res {
                let bytes = |t: &Tensor| (t.len() * t.dtype().size_bytes()) as u64;
                let mut read = 0;
                let mut seen: Vec<Port> = Vec::new();
                if let NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } = &node.kind {
                    for r in reads {
                        if !seen.contains(&r.src()) {
                            seen.push(r.src());
                            read += port_value(values, r.src()).map_or(0, bytes);
                        }
                    }
                }
                p.kernel(&name, 1, end - start, read, ports.iter().map(bytes).sum());
            }
        }
        match res {
            Ok(ports) => {
                if let (true, Some(p)) = (kernel, &cfg.hooks.progress) {
                    p.advance(1);
                }
                return Ok(ports);
            }
            Err(NodeFault::Input(e)) => return Err(e),
            Err(NodeFault::Fault(f)) if f.is_retryable() && attempt < cfg.retry.retries => {
                if let Some(p) = profiler {
                    p.retries(1);
                }
                attempt += 1;
            }
            Err(NodeFault::Fault(f)) => {
                let f = name_table(g, node, f);
                let problem = if attempt == 0 {
                    f
                } else {
                    Fault::Exhausted {
                        attempts: attempt + 1,
                        last: Box::new(f),
                    }
                };
                return Err(InterpError::At {
                    node: id,
                    label: node.label.clone(),
                    problem,
                });
            }
        }
    }
}

/// Combines two states `a` and `b` of a user monoid whose state is one scalar (the
/// coordinator's scans and histograms call it from the worker pool's threads).
pub fn combine_scalars(m: &crate::mir::ir::Monoid, a: Scalar, b: Scalar) -> Result<Scalar, String> {
    let params = [Value::Scalar(a), Value::Scalar(b)];
    eval_expr(&m.combine, &monoid_scope(&params))
        .and_then(Value::scalar)
        .map_err(|f| f.to_string())
}

/// A gather's fault with its table's name: the label of the node it reads (in any node
/// whose expressions gather: a map's or reduction's body, a scan's, histogram's or
/// scatter's arguments and index — a derived graph's scatter-add checks its coordinates
/// with the gather itself, fused into its histogram).
pub(crate) fn name_table(g: &Graph, node: &Node, f: Fault) -> Fault {
    match f {
        Fault::IndexOutOfRange(mut m) => {
            if let NodeKind::Map { reads, .. }
            | NodeKind::Reduce { reads, .. }
            | NodeKind::Scan { reads, .. }
            | NodeKind::ReduceByIndex { reads, .. }
            | NodeKind::Scatter { reads, .. } = &node.kind
            {
                if let Some(n) = reads.get(m.read).and_then(|r| g.nodes.get(r.node)) {
                    m.table = n.label.clone();
                }
            }
            Fault::IndexOutOfRange(m)
        }
        f => f,
    }
}

/// A node's name in profiles: its op's label (the interpreter has no compiled kernels),
/// `random normal (label)` for a random fill.
fn profile_name(node: &Node) -> String {
    let kind = match node.kind {
        NodeKind::Map { .. } => "map",
        NodeKind::Reduce { .. } => "reduce",
        NodeKind::Random {
            dist: Dist::Uniform,
            ..
        } => "random uniform",
        NodeKind::Random {
            dist: Dist::Normal, ..
        } => "random normal",
        _ => "node",
    };
    match (&node.kind, node.label.is_empty()) {
        (_, true) => kind.to_string(),
        (NodeKind::Random { .. }, false) => format!("{kind} ({})", node.label),
        (_, false) => node.label.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
