//! What the verifier reports: where in the graph ([`Site`], [`ExprSite`]) and what is wrong
//! ([`Problem`]), each worded in one `Display`.

use std::fmt;

use flow_runtime::{format_shape, DType};

use crate::mir::ir::{Affine, BuiltinMonoid, MonoidId, NodeId, Port, TensorTy, Ty};
use crate::mir::typeck::ExprError;

/// A broken invariant and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyError {
    /// Where.
    pub site: Site,
    /// What is wrong (boxed to keep the error small).
    pub problem: Box<Problem>,
}

/// A place in a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// A node, with its label.
    Node(NodeId, String),
    /// A user monoid.
    Monoid(MonoidId),
    /// The `k`-th graph output.
    Output(usize),
}

/// Where in a node or monoid a scalar expression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExprSite {
    /// The `k`-th body expression of a `Map`.
    Body(usize),
    /// The `k`-th argument of a `Reduce`.
    Arg(usize),
    /// A monoid's wrap.
    Wrap,
    /// A monoid's combine.
    Combine,
    /// A monoid's unwrap.
    Unwrap,
    /// A monoid's declared derivative of combine.
    DCombine,
    /// The bin of a histogram or the row of a scatter.
    Index,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A reference to a node that does not come before the referring one.
    NotEarlier {
        /// The node referred to.
        target: NodeId,
    },
    /// A reference to a port that the node does not have.
    NoSuchPort {
        /// The port referred to.
        target: Port,
        /// How many ports the node has.
        ports: usize,
    },
    /// A reference to a user monoid that the graph does not have.
    NoSuchMonoid {
        /// The monoid referred to.
        monoid: MonoidId,
    },
    /// The node has the wrong number of output ports.
    PortCount {
        /// The number the node kind implies.
        expected: usize,
        /// The number it has.
        found: usize,
    },
    /// An output port has the wrong type.
    PortType {
        /// The port.
        port: usize,
        /// The type the node kind implies.
        expected: TensorTy,
        /// The type it has.
        found: TensorTy,
    },
    /// A read's projection does not have one function per dimension.
    ProjRank {
        /// The read.
        read: usize,
        /// The number of affine functions.
        proj: usize,
        /// The rank of the tensor read.
        rank: usize,
    },
    /// A projection uses an index variable outside the box.
    ProjVar {
        /// The read.
        read: usize,
        /// The dimension of the tensor read.
        dim: usize,
        /// The variable.
        var: u32,
        /// The number of index variables.
        n_index: usize,
    },
    /// A strict read leaves its tensor somewhere in the box.
    OutOfBounds {
        /// The read.
        read: usize,
        /// The dimension of the tensor read.
        dim: usize,
        /// The projection in that dimension.
        affine: Affine,
        /// Its smallest value over the box.
        min: i128,
        /// Its largest value over the box.
        max: i128,
        /// The extent of the dimension.
        extent: usize,
    },
    /// A read gathered from (a table) whose projection is not all constant zeros, or whose
    /// edge is not strict.
    GatherTable {
        /// The read.
        read: usize,
    },
    /// A gather with a number of coordinates other than its table's rank.
    GatherRank {
        /// The read.
        read: usize,
        /// The number of coordinates.
        coords: usize,
        /// The rank of the table.
        rank: usize,
    },
    /// A clamped read of a tensor with a zero extent.
    ClampEmpty {
        /// The read.
        read: usize,
        /// The shape of the tensor read.
        shape: Vec<usize>,
    },
    /// A pad value of another dtype than the tensor read.
    PadType {
        /// The read.
        read: usize,
        /// The tensor's dtype.
        expected: DType,
        /// The pad value's dtype.
        found: DType,
    },
    /// An ill-typed scalar expression.
    Expr {
        /// Which expression.
        at: ExprSite,
        /// The inconsistency.
        error: ExprError,
    },
    /// A well-typed scalar expression of the wrong type.
    ExprType {
        /// Which expression.
        at: ExprSite,
        /// The type required there.
        expected: Ty,
        /// Its type.
        found: Ty,
    },
    /// A reduction with the wrong number of arguments.
    Arity {
        /// The number the monoid takes.
        expected: usize,
        /// The number given.
        found: usize,
    },
    /// A built-in monoid over a type it does not apply to.
    BuiltinType {
        /// The monoid.
        monoid: BuiltinMonoid,
        /// The argument's type.
        found: Ty,
    },
    /// A concat without parts.
    ConcatEmpty,
    /// A concat along an axis the port does not have.
    ConcatAxis {
        /// The axis.
        axis: usize,
        /// The port's rank.
        rank: usize,
    },
    /// A concat part that does not fit the others.
    ConcatPart {
        /// The part.
        part: usize,
        /// Its type.
        found: TensorTy,
        /// The port's type.
        port: TensorTy,
    },
    /// A slice whose start, shape and source disagree in rank.
    SliceRank {
        /// The source's rank.
        rank: usize,
        /// The length of `start`.
        start: usize,
        /// The length of `shape`.
        shape: usize,
    },
    /// A slice that leaves its source.
    SliceBounds {
        /// The dimension.
        dim: usize,
        /// The slice's start in it.
        start: usize,
        /// The slice's extent in it.
        extent: usize,
        /// The source's extent in it.
        src_extent: usize,
    },
    /// A monoid state without fields.
    StateEmpty,
    /// A monoid whose field names do not match its fields.
    FieldNames {
        /// The number of fields.
        fields: usize,
        /// The number of names.
        names: usize,
    },
    /// A monoid whose zero does not match its state.
    ZeroType {
        /// The state's dtypes.
        expected: Vec<DType>,
        /// The zero's dtypes.
        found: Vec<DType>,
    },
    /// A monoid unwrap without result ports.
    UnwrapEmpty,
    /// A scan, histogram or scatter over a rank-0 space (it has no axis to run along).
    ScalarSpace,
    /// A histogram's bin or a scatter's row that is not an `i32` or `i64`.
    IndexType {
        /// Its type.
        found: Ty,
    },
    /// A scatter whose space does not fit its destination (`[n] ++ dest[1..]`).
    ScatterShape {
        /// The destination's type.
        dest: TensorTy,
        /// The space.
        space: Vec<usize>,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.site {
            Site::Node(id, label) if label.is_empty() => write!(f, "node {id}: ")?,
            Site::Node(id, label) => write!(f, "node {id} \"{label}\": ")?,
            Site::Monoid(id) => write!(f, "monoid {id}: ")?,
            Site::Output(k) => write!(f, "output {k}: ")?,
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for VerifyError {}

impl fmt::Display for ExprSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprSite::Body(k) => write!(f, "body expression {k}"),
            ExprSite::Arg(k) => write!(f, "argument {k}"),
            ExprSite::Wrap => f.write_str("wrap"),
            ExprSite::Combine => f.write_str("combine"),
            ExprSite::Unwrap => f.write_str("unwrap"),
            ExprSite::DCombine => f.write_str("d_combine"),
            ExprSite::Index => f.write_str("the index expression"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem as P;
        match self {
            P::NotEarlier { target } => {
                write!(f, "refers to {target}, which does not come before it")
            }
            P::NoSuchPort { target, ports } => {
                write!(f, "refers to port {target}, but the node has {ports} ports")
            }
            P::NoSuchMonoid { monoid } => write!(f, "refers to monoid {monoid}, which is missing"),
            P::PortCount { expected, found } => {
                write!(f, "should have {expected} output ports, has {found}")
            }
            P::PortType {
                port,
                expected,
                found,
            } => write!(f, "port {port} should have type {expected}, has {found}"),
            P::ProjRank { read, proj, rank } => write!(
                f,
                "read {read} has {proj} projection coordinates for a tensor of rank {rank}"
            ),
            P::ProjVar {
                read,
                dim,
                var,
                n_index,
            } => write!(
                f,
                "read {read} dimension {dim} uses index variable i{var}, but only {n_index} exist"
            ),
            P::OutOfBounds {
                read,
                dim,
                affine,
                min,
                max,
                extent,
            } => write!(
                f,
                "read {read} dimension {dim}: `{affine}` ranges over {min}..={max}, \
                 outside the extent {extent}"
            ),
            P::GatherTable { read } => write!(
                f,
                "read r{read} is gathered from, but its projection is not all zeros or its edge is not strict"
            ),
            P::GatherRank { read, coords, rank } => write!(
                f,
                "a gather from read r{read} has {coords} coordinate(s) for a table of rank {rank}"
            ),
            P::ClampEmpty { read, shape } => write!(
                f,
                "read {read} clamps into a tensor of shape {}, which has no elements",
                format_shape(shape)
            ),
            P::PadType {
                read,
                expected,
                found,
            } => write!(
                f,
                "read {read} pads a {expected} tensor with a {found} value"
            ),
            P::Expr { at, error } => write!(f, "{at}: {error}"),
            P::ExprType {
                at,
                expected,
                found,
            } => write!(f, "{at} should have type {expected}, has {found}"),
            P::Arity { expected, found } => {
                write!(f, "the monoid takes {expected} arguments, given {found}")
            }
            P::BuiltinType { monoid, found } => {
                write!(f, "`{}` does not apply to {found}", monoid.name())
            }
            P::ConcatEmpty => f.write_str("concat has no parts"),
            P::ConcatAxis { axis, rank } => {
                write!(f, "concat axis {axis} is not below the rank {rank}")
            }
            P::ConcatPart { part, found, port } => {
                write!(
                    f,
                    "concat part {part} of type {found} does not fit the result {port}"
                )
            }
            P::SliceRank { rank, start, shape } => write!(
                f,
                "slice of a rank-{rank} tensor has {start} start and {shape} shape coordinates"
            ),
            P::SliceBounds {
                dim,
                start,
                extent,
                src_extent,
            } => write!(
                f,
                "slice dimension {dim} covers {start}..{start}+{extent}, outside the extent \
                 {src_extent}"
            ),
            P::StateEmpty => f.write_str("the state has no fields"),
            P::FieldNames { fields, names } => {
                write!(f, "the state has {fields} fields but {names} field names")
            }
            P::ZeroType { expected, found } => {
                write!(f, "the zero has types {found:?}, the state {expected:?}")
            }
            P::UnwrapEmpty => f.write_str("the unwrap has no result ports"),
            P::ScalarSpace => {
                f.write_str("a scan, histogram or scatter needs a space of rank 1 or more")
            }
            P::IndexType { found } => {
                write!(f, "the index expression should be i32 or i64, has {found}")
            }
            P::ScatterShape { dest, space } => write!(
                f,
                "a scatter over {} does not fit its destination {dest} (its axes after the first must be the destination's)",
                format_shape(space)
            ),
        }
    }
}
