//! `flow-bench`: hand-written Rust baselines of the benchmark workloads W1–W6
//! (`bench/WORKLOADS.md`) and the timing harness that runs them.
//!
//! - [`timing`] times closures (warm-up, repetitions, median/min/max, table and JSON); it is
//!   meant to time Flow programs in the same run as the baselines;
//! - [`kernels`] holds the baseline kernels, sized by their arguments;
//! - [`primitives`] holds the baselines of the parallel primitives (scan, histogram, gather,
//!   filter, radix sort), timed against the runtime's by the `prims` binary;
//! - [`workloads`] builds each workload's inputs at its full size and times its kernel.
//!
//! The `baseline` binary runs them all: `cargo run --release -p flow-bench` (see README.md).

pub mod kernels;
pub mod primitives;
pub mod timing;
pub mod workloads;
