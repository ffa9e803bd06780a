//! What recomputing a scalar expression costs, in operations: the measure by which fusion
//! decides whether a producer read by several consumers is recomputed in each or written
//! once (`passes::fuse`), and by which lowering decides whether a value used several times
//! in a `fn` body is computed once (`lower/point.rs`).

use super::ir::ScalarExpr;

/// The most operations a producer may have and still be recomputed in several consumers
/// (and a value in a `fn` body still be substituted at each use).
pub const DUPLICATE_COST: usize = 24;

/// What a math function (`exp`, `log`, `tanh`, …) costs, in operations: `exp` on `f32` is a
/// range reduction, a degree-6 polynomial and a scaling, about 24 instructions inline, and the
/// others are calls of about as many. So a producer with a math call (softmax's
/// `exp(x - max)`) is not recomputed in each of several consumers (`fuse`'s
/// `DUPLICATE_COST`): written once and read back, within a row group while still in cache.
pub const CALL_COST: usize = 24;

/// The number of operations in an expression: a measure of the cost of recomputing it.
pub fn cost(e: &ScalarExpr) -> usize {
    match e {
        ScalarExpr::Const(_)
        | ScalarExpr::Index(_)
        | ScalarExpr::Read(_)
        | ScalarExpr::Param(_) => 0,
        ScalarExpr::Unary(_, a) | ScalarExpr::Cast(a, _) | ScalarExpr::Field(a, _) => 1 + cost(a),
        ScalarExpr::Call(_, a) => CALL_COST + cost(a),
        ScalarExpr::Binary(_, a, b) => 1 + cost(a) + cost(b),
        ScalarExpr::Select(c, a, b) => 1 + cost(c) + cost(a) + cost(b),
        ScalarExpr::Tuple(xs) => xs.iter().map(cost).sum(),
    }
}
