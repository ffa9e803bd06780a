//! How HIR operators map onto the scalar operators of [`crate::base::ops`], which alone
//! define what they mean (math built-ins are `base::ops::MathFn` itself). The lowering to MIR, the coordinator and the checker's evaluator
//! all translate through here, so none of them carries a rule of its own.

use super::{BinOp, Builtin, UnOp};
use crate::base::ops;

/// The scalar operator of a unary HIR operator.
pub fn unop(op: UnOp) -> ops::UnOp {
    match op {
        UnOp::Neg => ops::UnOp::Neg,
        UnOp::Not => ops::UnOp::Not,
    }
}

/// The scalar operator of a binary HIR operator. `|>` never reaches a scalar expression (the
/// checker unfolds arrows into calls).
pub fn binop(op: BinOp) -> ops::BinOp {
    use ops::BinOp as B;
    use BinOp as A;
    match op {
        A::Add => B::Add,
        A::Sub => B::Sub,
        A::Mul => B::Mul,
        A::Div => B::Div,
        A::Rem => B::Rem,
        A::Shl => B::Shl,
        A::Shr => B::Shr,
        A::Eq => B::Eq,
        A::Ne => B::Ne,
        A::Lt => B::Lt,
        A::Le => B::Le,
        A::Gt => B::Gt,
        A::Ge => B::Ge,
        A::And => B::And,
        A::Or => B::Or,
        A::Pipe => B::Add,
    }
}

/// The binary operator of a two-argument pointwise built-in (`max`, `min`, `pow`).
pub fn builtin_binop(b: Builtin) -> Option<ops::BinOp> {
    Some(match b {
        Builtin::Max => ops::BinOp::Max,
        Builtin::Min => ops::BinOp::Min,
        Builtin::Pow => ops::BinOp::Pow,
        Builtin::Atan2 => ops::BinOp::Atan2,
        _ => return None,
    })
}
