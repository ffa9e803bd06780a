//! The mid-level IR (MIR): a dataflow graph of tensor nodes over concrete index spaces, with
//! affine index projections, a canonical text form and a verifier. Its scalar operators and
//! their meaning live in [`crate::base::ops`], shared with the checker.
//!
//! - [`ir`]: the data structures ([`Graph`], [`Node`], [`NodeKind`], [`ScalarExpr`], ...).
//! - [`typeck`]: type inference for scalar expressions.
//! - [`verify`]: every invariant of a well-formed graph, checked.
//! - [`print`] and [`parse`]: the canonical text form; `print(parse(text)) == text`.
//! - [`idx`]: typed ids and the arena they index.
//! - [`contract`]: recognizing contractions, which both backends run as GEMMs.
//!
//! **Invariant:** nothing here evaluates a graph (that is `crate::interp`) or knows about
//! HIR, except the lowering.

pub mod ad;
pub mod contract;
pub mod cost;
pub mod dot;
pub mod hash;
pub mod idx;
pub mod ir;
mod lex;
pub mod lower;
pub mod memory;
pub mod monoid;
pub mod parse;
pub mod passes;
pub mod print;
pub mod schedule;
pub mod typeck;
pub mod verify;

pub use idx::{Idx, IdxVec};
pub use ir::{
    Affine, BinOp, BuiltinMonoid, Dist, Edge, Graph, MathFn, Monoid, MonoidId, MonoidRef, Node,
    NodeId, NodeKind, Output, Port, Read, ScalarExpr, TensorTy, Ty, UnOp, Unwrap, Wrap,
};
pub use parse::{parse, parse_expr, ParseError};
pub use print::print;
pub use verify::{verify, VerifyError};

#[cfg(test)]
mod tests;
