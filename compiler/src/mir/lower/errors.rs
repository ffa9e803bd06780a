//! What can go wrong while lowering, as data: each kind carries the facts (names, shapes,
//! numbers) and `Display` words every message in one place. Most are dispatch-time errors a
//! program can meet (a shape that does not fit, a read outside its tensor); `Internal` is a
//! broken invariant of the compiler itself.

use std::fmt;

use flow_runtime::format_shape;

use crate::base::Span;
use crate::hir::{Dim, Ty};
use crate::mir::ir::TensorTy;

/// A lowering error: what went wrong, and where.
#[derive(Clone, Debug)]
pub struct LowerError {
    /// Boxed: the kinds carry names, types and shapes, and a `Result` should stay small.
    pub kind: Box<LowerErrorKind>,
    pub span: Span,
}

/// What went wrong while lowering, with the facts the message names.
#[derive(Clone, Debug)]
pub enum LowerErrorKind {
    /// Two operands of an elementwise operation have different shapes.
    ElementwiseShapes { left: Vec<usize>, right: Vec<usize> },
    /// An argument's rank is not the parameter's.
    Rank {
        func: String,
        rank: usize,
        shape: Vec<usize>,
    },
    /// One argument of shape `shape` would bind shape variable `var` to two sizes.
    VarWithinArgument {
        func: String,
        param: Ty,
        var: String,
        first: i64,
        second: usize,
        shape: Vec<usize>,
    },
    /// Shape variable `var` is bound to different sizes by two arguments.
    VarAcrossArguments {
        func: String,
        var: String,
        earlier: i64,
        now: usize,
        shape: Vec<usize>,
    },
    /// No value of `var` makes the affine dimension `dim` equal `size`.
    NoSolution {
        func: String,
        var: String,
        dim: Dim,
        size: usize,
    },
    /// A dimension of a parameter names a variable no argument determines.
    Undetermined {
        func: String,
        param: String,
        dim: Dim,
    },
    /// An argument's shape is not the one its parameter's type gives.
    ParamShape {
        func: String,
        param: String,
        ty: Ty,
        want: Vec<usize>,
        got: Vec<usize>,
    },
    /// A function computes a result of another shape than it declares.
    ResultShape {
        func: String,
        declared: TensorTy,
        computed: TensorTy,
    },
    /// A dimension evaluates to a negative size; `bindings` are its variables' values
    /// (`N = 1`), sorted.
    NegativeDim {
        dim: Dim,
        value: i64,
        bindings: Vec<String>,
    },
    /// A dimension overflows 64 bits; `bindings` are its variables' values (`N = 3`), sorted.
    DimOverflow { dim: Dim, bindings: Vec<String> },
    /// A size of a created tensor is negative.
    NegativeSize(i64),
    /// The runtime refused to create a tensor (its message).
    Create(String),
    /// The runtime refused to create a random tensor (its message).
    CreateRandom(String),
    /// The runtime refused to create an `iota`, `zeros` or `full` tensor (its message).
    CreateTensor(String),
    /// A size or seed the graph needs when it is built is computed by the graph.
    NotStatic,
    /// An element of a tensor literal is a tuple.
    LiteralOfTuples,
    /// A monoid's zero is not a constant.
    MonoidZero { monoid: String },
    /// A monoid's function reads a tensor.
    MonoidReadsTensor,
    /// An argument of a parameterised monoid is computed by the graph.
    MonoidArgNotStatic { monoid: String, param: String },
    /// A tuple of tuples where only a flat tuple is lowered.
    NestedTuple,
    /// An `if` in an operation without `else`.
    IfWithoutElse,
    /// A tuple indexed as a tensor.
    IndexTuple,
    /// `clamp_edge` of an empty tensor.
    ClampEmpty,
    /// A padding value that is not a constant.
    PaddingNotConstant,
    /// A whole tensor where one element is expected.
    WholeTensor,
    /// A strict read outside its tensor: axis `axis` of `tensor` read at `lo..=hi`.
    OutOfBounds {
        axis: usize,
        tensor: Ty,
        shape: Vec<usize>,
        lo: i128,
        hi: i128,
    },
    /// A derivative that cannot be taken (what stands in the way).
    NotDifferentiable(String),
    /// A broken invariant of the compiler (what it was), never the program's fault.
    Internal(&'static str),
    /// A dimension left unbound at dispatch (a broken invariant).
    UnboundDim(Dim),
    /// A shape variable of an index offset left unbound (a broken invariant).
    UnboundIndexShape(Dim),
    /// An expression the tensor level cannot lower (a broken invariant): its type.
    NotTensorLevel(Ty),
}

impl LowerErrorKind {
    /// Whether this is a compiler bug rather than an error in the program.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            LowerErrorKind::Internal(_)
                | LowerErrorKind::UnboundDim(_)
                | LowerErrorKind::UnboundIndexShape(_)
                | LowerErrorKind::NotTensorLevel(_)
        )
    }
}

impl fmt::Display for LowerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LowerErrorKind as K;
        match self {
            K::ElementwiseShapes { left, right } => write!(
                f,
                "shape mismatch: `{}` and `{}` in an elementwise operation",
                format_shape(left),
                format_shape(right)
            ),
            K::Rank { func, rank, shape } => write!(
                f,
                "`{func}` expects a tensor of rank {rank}, found shape {}",
                format_shape(shape)
            ),
            K::VarWithinArgument {
                func,
                param,
                var,
                first,
                second,
                shape,
            } => write!(
                f,
                "shape mismatch in call to `{func}`: an argument of shape {} does not fit \
                 `{param}`: `{var}` would be both {first} and {second}",
                format_shape(shape)
            ),
            K::VarAcrossArguments {
                func,
                var,
                earlier,
                now,
                shape,
            } => write!(
                f,
                "shape mismatch in call to `{func}`: `{var}` is {earlier} for an earlier \
                 argument and {now} for the argument of shape {}",
                format_shape(shape)
            ),
            K::NoSolution {
                func,
                var,
                dim,
                size,
            } => write!(
                f,
                "shape mismatch in call to `{func}`: no `{var}` makes `{dim}` equal {size}"
            ),
            K::Undetermined { func, param, dim } => write!(
                f,
                "cannot determine `{dim}` for parameter `{param}` of `{func}`"
            ),
            K::ParamShape {
                func,
                param,
                ty,
                want,
                got,
            } => write!(
                f,
                "shape mismatch in call to `{func}`: parameter `{param}` is `{ty}` = {}, but \
                 the argument has shape {}",
                format_shape(want),
                format_shape(got)
            ),
            K::ResultShape {
                func,
                declared,
                computed,
            } => write!(
                f,
                "`{func}` declares its result as {declared} but computes {computed}"
            ),
            K::NegativeDim {
                dim,
                value,
                bindings,
            } if !bindings.is_empty() => write!(
                f,
                "the dimension `{dim}` is negative ({value}) here, where {}",
                bindings.join(", ")
            ),
            K::NegativeDim { dim, value, .. } => {
                write!(f, "the dimension `{dim}` is negative ({value}) here")
            }
            K::DimOverflow { dim, bindings } => write!(
                f,
                "the dimension `{dim}` does not fit in 64 bits here ({})",
                bindings.join(", ")
            ),
            K::NegativeSize(n) => write!(f, "a tensor size must not be negative, found {n}"),
            K::Create(e) => f.write_str(e),
            K::CreateRandom(e) => write!(f, "cannot create this random tensor: {e}"),
            K::CreateTensor(e) => write!(f, "cannot create this tensor: {e}"),
            K::NotStatic => f.write_str(
                "this size or seed must be known when the graph is built, but it is computed \
                 by the graph; force it with `eval` first (`let n = eval(…);`, or `eval(…)` in \
                 place)",
            ),
            K::LiteralOfTuples => f.write_str("a tensor literal holds scalars"),
            K::MonoidZero { monoid } => {
                write!(f, "the zero of monoid `{monoid}` must be a constant")
            }
            K::MonoidReadsTensor => f.write_str("a monoid's functions may not read tensors"),
            K::MonoidArgNotStatic { monoid, param } => write!(
                f,
                "the argument `{param}` of monoid `{monoid}` must be known when the graph is \
                 built (the combine is compiled with it), but it is computed by the graph; \
                 force it with `eval` first (`let {param} = eval(…);`, or `eval(…)` in place)"
            ),
            K::NestedTuple => f.write_str("nested tuples are not supported here"),
            K::IfWithoutElse => f.write_str("an `if` in an operation needs an `else`"),
            K::IndexTuple => f.write_str("cannot index a tuple"),
            K::ClampEmpty => f.write_str("`clamp_edge` of an empty tensor has no edge to repeat"),
            K::PaddingNotConstant => f.write_str("the padding value must be a constant"),
            K::WholeTensor => f.write_str("a whole tensor cannot be used as one element; index it"),
            K::OutOfBounds {
                axis,
                tensor,
                shape,
                lo,
                hi,
            } => write!(
                f,
                "read outside the tensor: axis {axis} of `{tensor}` (shape {}) is read at \
                 indices {lo}..={hi}",
                format_shape(shape)
            ),
            K::NotDifferentiable(why) => write!(f, "cannot differentiate: {why}"),
            K::Internal(what) => write!(f, "internal error: {what}"),
            K::UnboundDim(d) => write!(f, "internal error: shape `{d}` is unbound at dispatch"),
            K::UnboundIndexShape(d) => write!(f, "internal error: unbound shape in `{d}`"),
            K::NotTensorLevel(what) => {
                write!(f, "internal error: cannot lower a `{what}` at tensor level")
            }
        }
    }
}

impl LowerError {
    /// An error of `kind` at `span`.
    pub fn new(kind: LowerErrorKind, span: Span) -> LowerError {
        LowerError {
            kind: Box::new(kind),
            span,
        }
    }
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}
