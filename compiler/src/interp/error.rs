//! What can stop an evaluation: [`InterpError`] for the caller, and the [`Fault`] of one node
//! (retryable or not) with the wording of each.

use super::*;

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
    /// A gather at coordinates outside its table (`x[idx[i]]` with `idx[i]` out of range).
    IndexOutOfRange(Box<GatherMiss>),
    /// A histogram's bin or a scatter's row outside the bins or the destination: the first
    /// in index order.
    IndexOutOfBins {
        /// `"the bins"` or `"the destination"`.
        what: &'static str,
        /// The index (a `u64` past `i64::MAX` as its unsigned value).
        index: i128,
        /// Its position among the indices (row-major in the values' space).
        position: usize,
        /// The shape of the bins or the destination.
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

/// The facts of a gather out of range (boxed: errors stay small).
#[derive(Clone, Debug, PartialEq)]
pub struct GatherMiss {
    /// The read of the table.
    pub read: usize,
    /// The table's label (its source name), filled in by the node's evaluation.
    pub table: String,
    /// The coordinates gathered, as the program computed them: a `u64` index past
    /// `i64::MAX` keeps its unsigned value (the `i64` coordinate it became wraps).
    pub coords: Vec<i128>,
    /// The table's shape.
    pub shape: Vec<usize>,
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
            Fault::IndexOutOfRange(m) => {
                let GatherMiss {
                    table,
                    coords,
                    shape,
                    ..
                } = &**m;
                let coords: Vec<String> = coords.iter().map(|c| c.to_string()).collect();
                let name = if table.is_empty() {
                    "a tensor".to_string()
                } else {
                    format!("`{table}`")
                };
                write!(
                    f,
                    "index [{}] is out of range for {name} of shape {}",
                    coords.join(", "),
                    format_shape(shape)
                )
            }
            Fault::IndexOutOfBins {
                what,
                index,
                position,
                shape,
            } => write!(
                f,
                "index [{index}] (element {position} of the indices) is out of range for {what} of shape {}",
                format_shape(shape)
            ),
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
pub(super) enum NodeFault {
    Input(InterpError),
    Fault(Fault),
}

impl From<Fault> for NodeFault {
    fn from(f: Fault) -> Self {
        NodeFault::Fault(f)
    }
}
