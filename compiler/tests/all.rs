//! The integration tests of `flowc`, in one binary: one link for all of them, and cargo's
//! harness runs their tests side by side instead of one binary after another.
//! - `autodiff`: derived gradients against finite differences, JIT against interpreter.
//! - `aot`: `flowc build` executables behave as `flowc run`.
//! - `cli`: the binary at the edges of its input and output (pipes, threads, special files,
//!   memory, the IR commands' flags).
//! - `conformance`: the conformance suite (`tests/conformance/`) and the examples, end to end.
//! - `equivalence`: property tests of the rewrite passes and backends on generated graphs.
//! - `portable`: `--portable-math` gives the portable definitions' bits everywhere.
//! - `reliability`: retries under injected faults, caches, memory budgets, profiles, traces.
//! - `stdlib`: the standard library's own tests and gradient checks.
//!
//! Run one suite with `cargo test -p flowc --test all SUITE::`.

mod common;
mod gen;

mod aot;
mod autodiff;
mod cli;
mod conformance;
mod equivalence;
mod portable;
mod reliability;
mod stdlib;
