//! Every integration test of the Flow compiler, as one test binary (one link, one process;
//! see `tests/src/lib.rs` for the harness). Run one suite with `cargo test -p flow-tests
//! parse::`, or one input with `INSTA_GLOB_FILTER=06_conv1d.flow`.
//!
//! Suites:
//! - `cache`: the result and graph caches, `--cache-dir` with damaged entries, and
//!   `--memory-limit`, through the `flowc` binary.
//! - `parse`: AST dumps of the conformance programs and of `tests/cases/parse/`.
//! - `check`: the conformance programs check cleanly; typed dumps of them and of
//!   `tests/cases/check/`.
//! - `errors`: every program that must be rejected is, by `flowc check` (or `flowc run`),
//!   with its expected text and a location; rendered diagnostics as snapshots.
//! - `codes`: one case file per diagnostic code.
//! - `mir`: the MIR each conformance program dispatches, lowered and optimized.
//! - `passes`: the rewrite passes on `tests/cases/passes/` (MIR in, MIR out).
//! - `fuzz`: arbitrary text, token soups and mutated conformance programs never crash the
//!   front end or the checker; bounded mutation-fuzzer runs over `tests/fuzz/corpus/` on the
//!   front end and the `.npy` reader.
//! - `robust`: programs that once crashed `flowc`, met an internal error after a clean
//!   `check` or printed a wrong result, run through the binary (deep nesting, call chains,
//!   tuples through `fn`s, sizes from the coordinator).
//! - `tidy`: headers, layering, I/O at the edges, no disabled tests, no orphan snapshots.
//! - `directives`: the `// expect-…:` parser itself.

/// Records the largest allocation of a watched call (the `.npy` fuzz target checks that a
/// header cannot make the reader allocate far more than the file holds).
#[global_allocator]
static ALLOC: flow_tests::fuzz::TrackingAlloc = flow_tests::fuzz::TrackingAlloc;

mod cache;
mod check;
mod codes;
mod directives;
mod errors;
mod fuzz;
mod mir;
mod parse;
mod passes;
mod robust;
mod tidy;
