//! The Flow compiler library. Modules in pipeline order; each may use only the modules
//! above it (checked by `tests/src/tidy.rs`).

pub mod base;
pub mod check;
pub mod codegen;
pub mod driver;
pub mod exec;
pub mod hir;
pub mod interp;
pub mod mir;
pub mod native;
pub mod syntax;
