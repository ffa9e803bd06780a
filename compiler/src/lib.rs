//! The Flow compiler library. The modules below are sorted by name (rustfmt); in pipeline
//! order they are `base` (shared by all), `syntax`, `hir`, `check`, `mir`, `interp`, `native`,
//! `codegen`, `exec` and `driver`, and each may use only the modules before it in that list,
//! with the exceptions listed in `tests/src/tidy.rs`, which checks it.

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
