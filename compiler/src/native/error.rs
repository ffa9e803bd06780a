//! What can go wrong in the native backend, as data: each variant carries the facts (the op,
//! the shard and its index box, the tensor and its shape, the cause), and its `Display` words
//! them in one place. [`NativeError::is_compiler_bug`] tells an internal invariant failure
//! (invalid MIR reaching the backend, Cranelift rejecting a kernel) from an error of the
//! program or its environment; the coordinator maps that to a diagnostic code.

use flow_runtime::pool::{TaskError, TaskErrorKind};
use flow_runtime::DType;

use crate::mir::ir::{Node, NodeId};

use super::describe;

/// A failure of the native backend.
#[derive(Clone, Debug, PartialEq)]
pub enum NativeError {
    /// An output or scratch tensor could not be allocated (`node` when one is known).
    Alloc { node: Option<NodeId>, cause: String },
    /// A graph input was missing, or not of its declared type.
    Input {
        index: u32,
        /// What arrived (`None`: nothing).
        got: Option<(DType, Vec<usize>)>,
        expected: String,
    },
    /// A shard failed for good: the op, the shard (of how many), its index box, and the
    /// failure of its last attempt.
    Shard {
        op: String,
        shard: usize,
        shards: usize,
        index_box: Vec<(usize, usize)>,
        failure: TaskError,
    },
    /// A node run on the interpreter failed.
    Interpreted { op: String, cause: String },
    /// The worker threads could not be started.
    Threads { cause: String },
    /// The code generator could not be set up on this machine or could not write its
    /// output: the instruction set, a setting, a symbol, the object file.
    Target { what: String, cause: String },
    /// An internal invariant broke: invalid MIR reached the backend, or the code generator
    /// rejected what the compiler produced. `what` names the stage.
    CompilerBug { what: String, finding: String },
}

impl NativeError {
    /// Whether the error is a bug in the compiler rather than in the program or its
    /// environment.
    pub fn is_compiler_bug(&self) -> bool {
        matches!(self, NativeError::CompilerBug { .. })
    }

    /// The error of a shard that failed for good: `space` is the op's index space and `rows`
    /// the rows of its first dimension per shard.
    pub(crate) fn shard(
        id: NodeId,
        node: &Node,
        space: &[usize],
        rows: usize,
        e: &TaskError,
    ) -> NativeError {
        let k = e.task;
        let mut index_box: Vec<(usize, usize)> = space.iter().map(|d| (0, *d)).collect();
        if let Some(d0) = space.first() {
            index_box[0] = (k * rows, ((k + 1) * rows).min(*d0));
        }
        NativeError::Shard {
            op: describe(id, node),
            shard: k,
            shards: space.first().map_or(1, |d| d.div_ceil(rows)),
            index_box,
            failure: e.clone(),
        }
    }
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeError::Alloc {
                node: Some(id),
                cause,
            } => write!(f, "node {id}: {cause}"),
            NativeError::Alloc { node: None, cause } => f.write_str(cause),
            NativeError::Input {
                index, got: None, ..
            } => write!(f, "input {index} is missing"),
            NativeError::Input {
                index,
                got: Some((dtype, shape)),
                expected,
            } => write!(f, "input {index} is {dtype}{shape:?}, expected {expected}"),
            NativeError::Shard {
                op,
                shard,
                shards,
                index_box,
                failure,
            } => {
                let dims: Vec<String> =
                    index_box.iter().map(|(a, b)| format!("{a}..{b}")).collect();
                let shard = format!(
                    "shard {shard} of {shards} (index box [{}])",
                    dims.join(", ")
                );
                match (&failure.kind, failure.attempts) {
                    (TaskErrorKind::Code(code), _) => write!(
                        f,
                        "{} in {op}, {shard}; not retried: the error follows from the program and its data",
                        flow_runtime::abi::error_message(*code)
                    ),
                    (kind, 1) => write!(f, "{op}, {shard} failed: {kind}"),
                    (kind, attempts) => write!(
                        f,
                        "{op}, {shard} failed {attempts} times, retries exhausted; the last failure: {kind}"
                    ),
                }
            }
            NativeError::Interpreted { op, cause } => write!(f, "{op}: {cause}"),
            NativeError::Threads { cause } => write!(f, "cannot start the worker threads: {cause}"),
            NativeError::Target { what, cause } => write!(f, "{what}: {cause}"),
            NativeError::CompilerBug { what, finding } => {
                write!(f, "internal compiler error: {what}: {finding}")
            }
        }
    }
}
