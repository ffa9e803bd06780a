//! Type inference for scalar expressions.
//!
//! An expression's type depends on its context: how many index variables are in scope (all
//! `i64`), the element types of the reads, and the types of the parameters of the monoid
//! function it belongs to. [`type_of`] returns the type of the whole expression or the first
//! inconsistency it finds, bottom-up and left to right.

use std::fmt;

use flow_runtime::DType;

use super::ir::{BinOp, MathFn, ScalarExpr, Ty, UnOp};
use crate::base::ops;

/// What is in scope for a scalar expression.
#[derive(Clone, Copy, Debug)]
pub struct ExprCx<'a> {
    /// The number of index variables; each has type `i64`.
    pub n_index: usize,
    /// The element type of each read.
    pub reads: &'a [DType],
    /// The type of each parameter.
    pub params: &'a [Ty],
}

/// The first type inconsistency in a scalar expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprError {
    /// `Index(var)` with only `n` index variables in scope.
    NoIndex {
        /// The index variable used.
        var: u32,
        /// The number in scope.
        n: usize,
    },
    /// `Read(read)` with only `n` reads.
    NoRead {
        /// The read used.
        read: u32,
        /// The number of reads.
        n: usize,
    },
    /// `Param(param)` with only `n` parameters.
    NoParam {
        /// The parameter used.
        param: u32,
        /// The number of parameters.
        n: usize,
    },
    /// A unary operator on an operand it does not apply to.
    Unary {
        /// The operator.
        op: UnOp,
        /// The operand's type.
        found: Ty,
    },
    /// A binary operator on operands it does not apply to (or of two types).
    Binary {
        /// The operator.
        op: BinOp,
        /// The left operand's type.
        left: Ty,
        /// The right operand's type.
        right: Ty,
    },
    /// A math function on an operand it does not apply to.
    Call {
        /// The function.
        f: MathFn,
        /// The operand's type.
        found: Ty,
    },
    /// A gather coordinate that is not an `i64`.
    GatherCoord {
        /// The coordinate's type.
        found: Ty,
    },
    /// A cast of a tuple.
    Cast {
        /// The operand's type.
        found: Ty,
    },
    /// A select whose condition is not a `bool`.
    SelectCond {
        /// The condition's type.
        found: Ty,
    },
    /// A select whose arms differ in type.
    SelectArms {
        /// The first arm's type.
        then: Ty,
        /// The second arm's type.
        other: Ty,
    },
    /// A field of something that is not a tuple.
    NotTuple {
        /// Its type.
        found: Ty,
    },
    /// A field past the end of a tuple.
    NoField {
        /// The field.
        field: u32,
        /// The tuple's length.
        len: usize,
    },
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprError::NoIndex { var, n } => {
                write!(f, "index variable i{var} used, but only {n} are in scope")
            }
            ExprError::NoRead { read, n } => write!(f, "read r{read} used, but there are {n}"),
            ExprError::NoParam { param, n } => {
                write!(f, "parameter p{param} used, but there are {n}")
            }
            ExprError::Unary { op, found } => {
                write!(f, "`{}` does not apply to {found}", op.name())
            }
            ExprError::Binary { op, left, right } => {
                write!(f, "`{}` does not apply to {left} and {right}", op.name())
            }
            ExprError::Call { f: func, found } => {
                write!(f, "`{}` does not apply to {found}", func.name())
            }
            ExprError::Cast { found } => write!(f, "cannot cast {found}"),
            ExprError::GatherCoord { found } => {
                write!(f, "gather coordinate has type {found}, not i64")
            }
            ExprError::SelectCond { found } => {
                write!(f, "select condition has type {found}, not bool")
            }
            ExprError::SelectArms { then, other } => {
                write!(f, "select arms have different types {then} and {other}")
            }
            ExprError::NotTuple { found } => write!(f, "field of {found}, which is not a tuple"),
            ExprError::NoField { field, len } => {
                write!(f, "field {field} of a tuple of {len} fields")
            }
        }
    }
}

/// The type of `e` in context `cx`.
pub fn type_of(e: &ScalarExpr, cx: &ExprCx<'_>) -> Result<Ty, ExprError> {
    match e {
        ScalarExpr::Const(s) => Ok(Ty::Scalar(s.dtype())),
        ScalarExpr::Index(var) => {
            if (*var as usize) < cx.n_index {
                Ok(Ty::Scalar(DType::I64))
            } else {
                Err(ExprError::NoIndex {
                    var: *var,
                    n: cx.n_index,
                })
            }
        }
        ScalarExpr::Read(read) => match cx.reads.get(*read as usize) {
            Some(&d) => Ok(Ty::Scalar(d)),
            None => Err(ExprError::NoRead {
                read: *read,
                n: cx.reads.len(),
            }),
        },
        ScalarExpr::Param(param) => match cx.params.get(*param as usize) {
            Some(t) => Ok(t.clone()),
            None => Err(ExprError::NoParam {
                param: *param,
                n: cx.params.len(),
            }),
        },
        ScalarExpr::Unary(op, x) => {
            let found = type_of(x, cx)?;
            match found {
                Ty::Scalar(d) => ops::unary_result(*op, d).map(Ty::Scalar),
                Ty::Tuple(_) => None,
            }
            .ok_or(ExprError::Unary { op: *op, found })
        }
        ScalarExpr::Binary(op, a, b) => {
            let left = type_of(a, cx)?;
            let right = type_of(b, cx)?;
            match (&left, &right) {
                (Ty::Scalar(x), Ty::Scalar(y)) if x == y => ops::binary_result(*op, *x),
                _ => None,
            }
            .map(Ty::Scalar)
            .ok_or(ExprError::Binary {
                op: *op,
                left,
                right,
            })
        }
        ScalarExpr::Cast(x, to) => match type_of(x, cx)? {
            Ty::Scalar(_) => Ok(Ty::Scalar(*to)),
            found => Err(ExprError::Cast { found }),
        },
        ScalarExpr::Call(func, x) => {
            let found = type_of(x, cx)?;
            match found {
                Ty::Scalar(d) => ops::math_result(*func, d).map(Ty::Scalar),
                Ty::Tuple(_) => None,
            }
            .ok_or(ExprError::Call { f: *func, found })
        }
        ScalarExpr::Select(c, a, b) => {
            let cond = type_of(c, cx)?;
            if cond != Ty::Scalar(DType::Bool) {
                return Err(ExprError::SelectCond { found: cond });
            }
            let then = type_of(a, cx)?;
            let other = type_of(b, cx)?;
            if then != other {
                return Err(ExprError::SelectArms { then, other });
            }
            Ok(then)
        }
        ScalarExpr::Tuple(items) => Ok(Ty::Tuple(
            items
                .iter()
                .map(|x| type_of(x, cx))
                .collect::<Result<_, _>>()?,
        )),
        ScalarExpr::Field(x, field) => match type_of(x, cx)? {
            Ty::Tuple(mut items) => {
                let len = items.len();
                if (*field as usize) < len {
                    Ok(items.swap_remove(*field as usize))
                } else {
                    Err(ExprError::NoField { field: *field, len })
                }
            }
            found => Err(ExprError::NotTuple { found }),
        },
        ScalarExpr::Gather(read, coords) => {
            for c in coords {
                let found = type_of(c, cx)?;
                if found != Ty::Scalar(DType::I64) {
                    return Err(ExprError::GatherCoord { found });
                }
            }
            type_of(&ScalarExpr::Read(*read), cx)
        }
    }
}
