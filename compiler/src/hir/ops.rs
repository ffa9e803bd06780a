//! How HIR built-ins map onto the scalar operators of [`crate::base::ops`], which alone define
//! what they mean. HIR operators *are* `base::ops`'s `UnOp` and `BinOp` (the parser produces
//! them), and math built-ins are `base::ops::MathFn` itself; only the two-argument pointwise
//! built-ins need a translation. The lowering to MIR, the coordinator and the checker's
//! evaluator all translate through here, so none of them carries a rule of its own.

use super::Builtin;
use crate::base::ops;

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
