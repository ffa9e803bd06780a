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

/// Why a graph could not be evaluated.
#[derive(Clone, Debug, PartialEq)]
pub enum InterpError {
    /// The graph breaks an invariant.
    Invalid(VerifyError),
    /// An Input node's index is past the end of the inputs.
    MissingInput {
        /// The index.
        index: u32,
        /// How many inputs were given.
        given: usize,
    },
    /// An input tensor does not have its Input node's type.
    InputMismatch {
        /// The index.
        index: u32,
        /// The Input node's label.
        label: String,
        /// The Input node's type.
        expected: TensorTy,
        /// The tensor's type.
        found: TensorTy,
    },
    /// A node failed.
    At {
        /// The node.
        node: NodeId,
        /// Its label.
        label: String,
        /// What went wrong.
        problem: Fault,
    },
}

/// What went wrong while a node was evaluated.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Integer division or remainder by zero.
    DivByZero,
    /// Integer `MIN / -1`.
    DivOverflow,
    /// A strict read outside its tensor.
    OutOfBounds {
        /// The read.
        read: usize,
        /// The coordinate read.
        coords: Vec<i128>,
        /// The shape of the tensor read.
        shape: Vec<usize>,
    },
    /// An output tensor too large to allocate.
    Alloc(ShapeError),
    /// An inconsistency that the verifier rules out.
    Internal(&'static str),
    /// The evaluation panicked (a bug), with the panic's message.
    Panicked(String),
    /// A fault injected for testing.
    Injected(FaultKind),
    /// The node failed at every attempt; the last failure.
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed.
        last: Box<Fault>,
    },
}

impl Fault {
    /// Whether a node that failed this way is evaluated again: a panic or an injected fault
    /// is; a deterministic fault of the program or its data is not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Fault::Panicked(_) | Fault::Injected(_))
    }
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpError::Invalid(e) => write!(f, "invalid MIR: {e}"),
            InterpError::MissingInput { index, given } => {
                write!(
                    f,
                    "the graph reads input {index}, but only {given} inputs were given"
                )
            }
            InterpError::InputMismatch {
                index,
                label,
                expected,
                found,
            } => {
                write!(f, "input {index}")?;
                if !label.is_empty() {
                    write!(f, " \"{label}\"")?;
                }
                write!(f, " should be {expected}, found {found}")
            }
            InterpError::At {
                node,
                label,
                problem: Fault::Exhausted { attempts, last },
            } => {
                // The interpreter's shard is the whole node.
                if label.is_empty() {
                    write!(f, "node {node}")?;
                } else {
                    write!(f, "op \"{label}\" (node {node})")?;
                }
                write!(
                    f,
                    " failed {attempts} times, retries exhausted; the last failure: {last}"
                )
            }
            InterpError::At {
                node,
                label,
                problem,
            } if problem.is_retryable() => {
                // A failure of the run rather than of the program: said like the JIT's.
                if label.is_empty() {
                    write!(f, "node {node} failed: {problem}")
                } else {
                    write!(f, "op \"{label}\" (node {node}) failed: {problem}")
                }
            }
            InterpError::At {
                node,
                label,
                problem,
            } => {
                write!(f, "{problem} in node {node}")?;
                if !label.is_empty() {
                    write!(f, " \"{label}\"")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for InterpError {}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::DivByZero => f.write_str("integer division by zero"),
            Fault::DivOverflow => f.write_str("integer division overflow (MIN / -1)"),
            Fault::OutOfBounds {
                read,
                coords,
                shape,
            } => {
                let coords: Vec<String> = coords.iter().map(|c| c.to_string()).collect();
                write!(
                    f,
                    "read {read} at [{}] outside a tensor of shape {}",
                    coords.join(", "),
                    format_shape(shape)
                )
            }
            Fault::Alloc(e) => write!(f, "{e}"),
            Fault::Internal(what) => write!(f, "internal error ({what})"),
            Fault::Panicked(msg) => write!(f, "a panic: {msg}"),
            Fault::Injected(kind) => write!(f, "{kind}"),
            Fault::Exhausted { attempts, last } => {
                write!(f, "{attempts} failed attempts; the last failure: {last}")
            }
        }
    }
}

/// A node's failure: an input problem (reported as is) or a fault (reported with the node).
enum NodeFault {
    Input(InterpError),
    Fault(Fault),
}

impl From<Fault> for NodeFault {
    fn from(f: Fault) -> Self {
        NodeFault::Fault(f)
    }
}

/// A scalar or tuple value of an expression.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Scalar(Scalar),
    Tuple(Vec<Value>),
}

impl Value {
    /// The value of a flat list of fields: the scalar itself when there is one, else a tuple.
    fn flat(fields: &[Scalar]) -> Value {
        match fields {
            [s] => Value::Scalar(*s),
            _ => Value::Tuple(fields.iter().map(|&s| Value::Scalar(s)).collect()),
        }
    }

    /// The scalar, or an internal fault for a tuple.
    fn scalar(self) -> Result<Scalar, Fault> {
        match self {
            Value::Scalar(s) => Ok(s),
            Value::Tuple(_) => Err(Fault::Internal("a tuple where a scalar belongs")),
        }
    }

    /// Appends the scalars of the value, in order, to `out`.
    fn flatten(self, out: &mut Vec<Scalar>) {
        match self {
            Value::Scalar(s) => out.push(s),
            Value::Tuple(items) => items.into_iter().for_each(|v| v.flatten(out)),
        }
    }
}

/// Everything an expression can see at one point.
struct Scope<'a> {
    /// The coordinates of the point (index variables).
    idx: &'a [i64],
    /// The node's reads.
    reads: &'a [Read],
    /// The values of all earlier nodes.
    values: &'a [Vec<Tensor>],
    /// The parameters of the monoid function being evaluated.
    params: &'a [Value],
}

/// Whether a node is run like a kernel: retried, faulted and reported.
fn is_kernel(node: &Node) -> bool {
    matches!(
        node.kind,
        NodeKind::Map { .. } | NodeKind::Reduce { .. } | NodeKind::Random { .. }
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

/// Evaluates one node to its port tensors.
fn eval_node(
    g: &Graph,
    node: &Node,
    inputs: &[Tensor],
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, NodeFault> {
    let out_ty = |k: usize| {
        node.outputs
            .get(k)
            .ok_or(Fault::Internal("missing output port"))
    };
    match &node.kind {
        NodeKind::Input { index } => {
            let t =
                inputs
                    .get(*index as usize)
                    .ok_or(NodeFault::Input(InterpError::MissingInput {
                        index: *index,
                        given: inputs.len(),
                    }))?;
            let expected = out_ty(0)?;
            if TensorTy::of(t) != *expected {
                return Err(NodeFault::Input(InterpError::InputMismatch {
                    index: *index,
                    label: node.label.clone(),
                    expected: expected.clone(),
                    found: TensorTy::of(t),
                }));
            }
            Ok(vec![t.clone()])
        }
        NodeKind::Const { value } => Ok(vec![value.clone()]),
        NodeKind::Random { dist, seed } => {
            let mut t = zeros(out_ty(0)?)?;
            for n in 0..t.len() {
                let x = match dist {
                    Dist::Uniform => rand::uniform(*seed, n as u64),
                    Dist::Normal => rand::normal(*seed, n as u64),
                };
                t.set(n, Scalar::F32(x));
            }
            Ok(vec![t])
        }
        NodeKind::Map { space, reads, body } => {
            let mut outs = node
                .outputs
                .iter()
                .map(zeros)
                .collect::<Result<Vec<_>, _>>()?;
            let mut lin = 0;
            for_each_point(space, |point| {
                let scope = Scope {
                    idx: point,
                    reads,
                    values,
                    params: &[],
                };
                for (e, out) in body.iter().zip(&mut outs) {
                    let v = eval_expr(e, &scope)?.scalar()?;
                    out.set(lin, v);
                }
                lin += 1;
                Ok(())
            })?;
            Ok(outs)
        }
        NodeKind::Reduce { .. } => Ok(eval_reduce(g, node, values)?),
        NodeKind::Concat { axis, parts } => {
            let mut out = zeros(out_ty(0)?)?;
            let part_tensors = parts
                .iter()
                .map(|&p| port_value(values, p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut lin = 0;
            let shape = out.shape.clone();
            for_each_point(&shape, |point| {
                let mut coord = point.to_vec();
                let mut along = point.get(*axis).copied().unwrap_or(0);
                for t in &part_tensors {
                    let extent = t.shape.get(*axis).copied().unwrap_or(0) as i64;
                    if along < extent {
                        coord[*axis] = along;
                        out.set(lin, element(t, &coord)?);
                        lin += 1;
                        return Ok(());
                    }
                    along -= extent;
                }
                Err(Fault::Internal("concat coordinate past the parts"))
            })?;
            Ok(vec![out])
        }
        NodeKind::Slice { src, start, .. } => {
            let mut out = zeros(out_ty(0)?)?;
            let src = port_value(values, *src)?;
            let mut lin = 0;
            let shape = out.shape.clone();
            for_each_point(&shape, |point| {
                let coord: Vec<i64> = point
                    .iter()
                    .zip(start)
                    .map(|(&p, &s)| i64::try_from(s).unwrap_or(i64::MAX).saturating_add(p))
                    .collect();
                out.set(lin, element(src, &coord)?);
                lin += 1;
                Ok(())
            })?;
            Ok(vec![out])
        }
    }
}

/// Evaluates a reduction node; see the module documentation for the fold order.
fn eval_reduce(g: &Graph, node: &Node, values: &[Vec<Tensor>]) -> Result<Vec<Tensor>, Fault> {
    if let Some(c) = contraction(g, node) {
        return eval_contraction(&c, node, values);
    }
    let NodeKind::Reduce {
        space,
        red,
        monoid,
        reads,
        args,
    } = &node.kind
    else {
        return Err(Fault::Internal("not a reduction"));
    };
    let monoid = *monoid;
    let mut outs = node
        .outputs
        .iter()
        .map(zeros)
        .collect::<Result<Vec<_>, _>>()?;
    let mut idx = vec![0i64; space.len() + red.len()];
    let mut lin = 0;
    for_each_point(space, |free| {
        idx[..free.len()].copy_from_slice(free);
        let mut acc = match monoid {
            MonoidRef::Builtin(b) => {
                let dtype = node.outputs.first().map_or(DType::F32, |t| t.dtype);
                let zero = ops::builtin_identity(b, dtype)
                    .ok_or(Fault::Internal("built-in monoid over a wrong type"))?;
                Value::Scalar(zero)
            }
            MonoidRef::User(id) => {
                let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
                Value::flat(&m.zero)
            }
        };
        for_each_point(red, |r| {
            idx[free.len()..].copy_from_slice(r);
            let scope = Scope {
                idx: &idx,
                reads,
                values,
                params: &[],
            };
            let args = args
                .iter()
                .map(|e| eval_expr(e, &scope))
                .collect::<Result<Vec<_>, _>>()?;
            acc = combine(
                g,
                monoid,
                std::mem::replace(&mut acc, Value::Tuple(Vec::new())),
                args,
            )?;
            Ok(())
        })?;
        let res = unwrap(g, monoid, acc)?;
        let mut fields = Vec::with_capacity(outs.len());
        res.flatten(&mut fields);
        if fields.len() != outs.len() {
            return Err(Fault::Internal("reduction result does not match its ports"));
        }
        for (out, v) in outs.iter_mut().zip(fields) {
            out.set(lin, v);
        }
        lin += 1;
        Ok(())
    })?;
    Ok(outs)
}

/// `combine(acc, wrap(args))` for one step of a fold.
fn combine(g: &Graph, monoid: MonoidRef, acc: Value, args: Vec<Value>) -> Result<Value, Fault> {
    match monoid {
        MonoidRef::Builtin(b) => {
            let x = args
                .into_iter()
                .next()
                .ok_or(Fault::Internal("built-in reduction without argument"))?
                .scalar()?;
            let op = ops::builtin_combine(b);
            Ok(Value::Scalar(
                ops::binary(op, acc.scalar()?, x).map_err(op_fault)?,
            ))
        }
        MonoidRef::User(id) => {
            let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
            let wrapped = match &m.wrap {
                Some(w) => eval_expr(&w.body, &monoid_scope(&args))?,
                None => args
                    .into_iter()
                    .next()
                    .ok_or(Fault::Internal("reduction without argument"))?,
            };
            eval_expr(&m.combine, &monoid_scope(&[acc, wrapped]))
        }
    }
}

/// The result of a fold: `unwrap(acc)`, or the state itself.
fn unwrap(g: &Graph, monoid: MonoidRef, acc: Value) -> Result<Value, Fault> {
    let MonoidRef::User(id) = monoid else {
        return Ok(acc);
    };
    let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
    match &m.unwrap {
        Some(u) => eval_expr(&u.body, &monoid_scope(&[acc])),
        None => Ok(acc),
    }
}

/// The scope of a monoid function: its parameters and nothing else.
fn monoid_scope(params: &[Value]) -> Scope<'_> {
    Scope {
        idx: &[],
        reads: &[],
        values: &[],
        params,
    }
}

/// Evaluates a scalar expression at one point.
fn eval_expr(e: &ScalarExpr, scope: &Scope<'_>) -> Result<Value, Fault> {
    let scalar = |e: &ScalarExpr| eval_expr(e, scope)?.scalar();
    Ok(Value::Scalar(match e {
        ScalarExpr::Const(s) => *s,
        ScalarExpr::Index(k) => Scalar::I64(
            *scope
                .idx
                .get(*k as usize)
                .ok_or(Fault::Internal("index variable out of range"))?,
        ),
        ScalarExpr::Read(k) => read_value(scope, *k as usize)?,
        ScalarExpr::Param(k) => {
            return scope
                .params
                .get(*k as usize)
                .cloned()
                .ok_or(Fault::Internal("parameter out of range"))
        }
        ScalarExpr::Unary(op, x) => ops::unary(*op, scalar(x)?).map_err(op_fault)?,
        ScalarExpr::Binary(BinOp::And, a, b) => match scalar(a)? {
            Scalar::Bool(true) => scalar(b)?,
            Scalar::Bool(false) => Scalar::Bool(false),
            _ => return Err(Fault::Internal("`and` of a non-bool")),
        },
        ScalarExpr::Binary(BinOp::Or, a, b) => match scalar(a)? {
            Scalar::Bool(false) => scalar(b)?,
            Scalar::Bool(true) => Scalar::Bool(true),
            _ => return Err(Fault::Internal("`or` of a non-bool")),
        },
        ScalarExpr::Binary(op, a, b) => {
            let (a, b) = (scalar(a)?, scalar(b)?);
            ops::binary(*op, a, b).map_err(op_fault)?
        }
        ScalarExpr::Cast(x, to) => scalar(x)?.cast(*to),
        ScalarExpr::Call(f, x) => ops::math(*f, scalar(x)?).map_err(op_fault)?,
        ScalarExpr::Select(c, a, b) => {
            return match scalar(c)? {
                Scalar::Bool(true) => eval_expr(a, scope),
                Scalar::Bool(false) => eval_expr(b, scope),
                _ => Err(Fault::Internal("select on a non-bool")),
            }
        }
        ScalarExpr::Tuple(items) => {
            return Ok(Value::Tuple(
                items
                    .iter()
                    .map(|x| eval_expr(x, scope))
                    .collect::<Result<_, _>>()?,
            ))
        }
        ScalarExpr::Field(x, k) => {
            return match eval_expr(x, scope)? {
                Value::Tuple(mut items) if (*k as usize) < items.len() => {
                    Ok(items.swap_remove(*k as usize))
                }
                _ => Err(Fault::Internal("field of a non-tuple")),
            }
        }
    }))
}

/// The value of read `k` at the current point, through its projection and edge rule.
fn read_value(scope: &Scope<'_>, k: usize) -> Result<Scalar, Fault> {
    let r = scope
        .reads
        .get(k)
        .ok_or(Fault::Internal("read out of range"))?;
    let t = port_value(scope.values, r.src())?;
    if r.proj.len() != t.rank() {
        return Err(Fault::Internal("projection rank differs from the tensor's"));
    }
    let mut coords = Vec::with_capacity(r.proj.len());
    for a in &r.proj {
        coords.push(
            a.eval(scope.idx)
                .ok_or(Fault::Internal("projection variable out of range"))?,
        );
    }
    let inside = coords
        .iter()
        .zip(&t.shape)
        .all(|(&c, &extent)| 0 <= c && c < extent as i128);
    let coords: Vec<i64> = match r.edge {
        _ if inside => coords.iter().map(|&c| c as i64).collect(),
        Edge::Strict => {
            return Err(Fault::OutOfBounds {
                read: k,
                coords,
                shape: t.shape.clone(),
            })
        }
        Edge::Pad(s) => return Ok(s),
        Edge::Clamp => {
            if t.is_empty() {
                return Err(Fault::Internal("clamped read of an empty tensor"));
            }
            coords
                .iter()
                .zip(&t.shape)
                .map(|(&c, &extent)| c.clamp(0, extent as i128 - 1) as i64)
                .collect()
        }
    };
    element(t, &coords)
}

/// The element of `t` at in-bounds coordinates `coords`.
fn element(t: &Tensor, coords: &[i64]) -> Result<Scalar, Fault> {
    let strides = row_major_strides(&t.shape);
    let mut lin = 0usize;
    for ((&c, &stride), &extent) in coords.iter().zip(&strides).zip(&t.shape) {
        let c = usize::try_from(c)
            .ok()
            .filter(|&c| c < extent)
            .ok_or(Fault::Internal("element coordinate out of bounds"))?;
        lin += c * stride;
    }
    if coords.len() != t.rank() || lin >= t.len() {
        return Err(Fault::Internal("element coordinate out of bounds"));
    }
    Ok(t.get(lin))
}

/// Evaluates a contraction with the runtime's GEMM, as the native backend does.
fn eval_contraction(
    c: &Contraction,
    node: &Node,
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, Fault> {
    let NodeKind::Reduce { reads, .. } = &node.kind else {
        return Err(Fault::Internal("not a reduction"));
    };
    let mut out = zeros(&node.outputs[0])?;
    let (m, k, n) = c.dims;
    let a = port_value(values, reads[c.a.0].src())?;
    let b = port_value(values, reads[c.b.0].src())?;
    // The verifier proved both reads in bounds; check the furthest element anyway, since the
    // GEMM reads through raw pointers.
    let last = |rows: usize, cols: usize, rs: isize, cs: isize| {
        (rows as isize - 1) * rs + (cols as isize - 1) * cs
    };
    if m > 0 && k > 0 && n > 0 {
        let (la, lb) = (last(m, k, c.a.1, c.a.2), last(k, n, c.b.1, c.b.2));
        if la < 0 || la as usize >= a.len() || lb < 0 || lb as usize >= b.len() {
            return Err(Fault::Internal("contraction operand out of bounds"));
        }
    }
    use flow_runtime::gemm::{gemm_f32, gemm_f64};
    match (&a.data, &b.data, &mut out.data) {
        (Data::F32(x), Data::F32(y), Data::F32(o)) => {
            let (pa, pb) = (operand(x, c.a), operand(y, c.b));
            // SAFETY: both operands are in bounds (checked above) and `o` is m×n.
            unsafe { gemm_f32(m, k, n, pa, pb, o.as_mut_ptr()) }
        }
        (Data::F64(x), Data::F64(y), Data::F64(o)) => {
            let (pa, pb) = (operand(x, c.a), operand(y, c.b));
            // SAFETY: as above.
            unsafe { gemm_f64(m, k, n, pa, pb, o.as_mut_ptr()) }
        }
        _ => return Err(Fault::Internal("contraction over mismatched types")),
    }
    Ok(vec![out])
}

/// A GEMM operand over `data` with the strides of a recognized contraction.
fn operand<T>(
    data: &[T],
    (_, row_stride, col_stride): (usize, isize, isize),
) -> flow_runtime::gemm::Operand<T> {
    flow_runtime::gemm::Operand {
        ptr: data.as_ptr(),
        row_stride,
        col_stride,
    }
}

/// The tensor of an already evaluated port.
fn port_value(values: &[Vec<Tensor>], p: Port) -> Result<&Tensor, Fault> {
    values
        .get(p.node.0 as usize)
        .and_then(|ports| ports.get(p.port as usize))
        .ok_or(Fault::Internal("reference to a port not yet evaluated"))
}

/// A zero-filled tensor of type `ty`, or an allocation fault.
fn zeros(ty: &TensorTy) -> Result<Tensor, Fault> {
    Tensor::zeros(ty.dtype, &ty.shape).map_err(Fault::Alloc)
}

/// Calls `f` with every point of the box `shape` in row-major order (once, with no
/// coordinates, for a rank-0 box; never for a box with a zero extent).
fn for_each_point(
    shape: &[usize],
    mut f: impl FnMut(&[i64]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    if shape.contains(&0) {
        return Ok(());
    }
    let mut point = vec![0i64; shape.len()];
    loop {
        f(&point)?;
        let mut dim = shape.len();
        loop {
            if dim == 0 {
                return Ok(());
            }
            dim -= 1;
            point[dim] += 1;
            if (point[dim] as usize) < shape[dim] {
                break;
            }
            point[dim] = 0;
        }
    }
}

/// The fault of a failed scalar operator.
fn op_fault(e: OpError) -> Fault {
    match e {
        OpError::DivByZero => Fault::DivByZero,
        OpError::DivOverflow => Fault::DivOverflow,
        OpError::Operands => Fault::Internal("operator applied to operands of the wrong type"),
    }
}

#[cfg(test)]
mod tests;
