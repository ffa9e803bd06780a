//! The workloads at their full sizes: each builds its inputs (outside the timed region, from
//! the runtime's Philox generator, as Flow's `rand_uniform`/`rand_normal` would) and its
//! reused output buffers, then times its baseline kernel.
//!
//! The inputs, by workload (seed, shape; the same calls a Flow program makes):
//!
//! | id | inputs |
//! |---|---|
//! | W1 | `x = rand_normal(1, [2^25])` |
//! | W2 | `x = rand_normal(2, [2^25])` |
//! | W3 | `X = rand_normal(3, [4096, 4096])` |
//! | W4 | `X = rand_normal(4, [2048, 1024])`, `W = rand_normal(5, [1024, 1024]) * 0.03125`, `b = rand_normal(6, [1024])` |
//! | W5 | `X = rand_normal(7, [2048, 1024])`, `T = rand_normal(8, [2048, 10])`, `W1 = rand_normal(9, [1024, 1024]) * 0.03125`, `b1 = 0`, `W2 = rand_normal(10, [1024, 10]) * 0.03125`, `b2 = 0` |
//! | W6 | `x = rand_uniform(11, [2^24 + 8])`, `w = rand_uniform(12, [9])` |
//! | filter | `x = rand_uniform(6, [2^25])`, `mask = rand_uniform(7, [2^25]) < 0.5` |
//! | sort | `keys = (rand_uniform(8, [2^24]) as f64 · 2^32) as u32` |
//! | scan | `x = rand_uniform(1, [2^25])` |
//! | histogram | `idx = (rand_uniform(2, [2^25]) * 256.0) as i64`, `vals = rand_uniform(3, [2^25])` |
//! | scan_fused | `x = rand_uniform(1, [2^25])`; the scan of `x * 2.0 + 1.0` |
//! | histogram_fused | `x = rand_uniform(2, [2^25])`, `vals = rand_uniform(3, [2^25])`; bins `(x * 256.0) as i64` |
//! | gather | `table = rand_uniform(1, [2^25])`, `idx[i] = ((rand_uniform(2, [2^25])[i] * 2^24) as i64) * 2 + i % 2` (`benches/w7_gather.flow`) |
//! | scan_argmax | `x = rand_uniform(1, [2^24])`; `scan[i](ArgMax, x[i], i)` |
//! | histogram_rows | `idx = (rand_uniform(2, [2^22]) * 256.0) as i64`, `vals = rand_uniform(3, [2^22 · 4])` as rows of 4 |
//!
//! Two more lines measure the runtime's worker pool: `pool.run`, one dispatch of 1000 no-op
//! tasks, and `W1/pool`, W1 dispatched through [`flow_runtime::pool::Pool`] in blocks of
//! [`kernels::ELEMENTWISE_BLOCK`] (as generated kernels will be) instead of rayon's
//! parallel iterators.

use std::hint::black_box;

use flow_runtime::pool::{blocks, Pool};
use flow_runtime::rand::{fill_normal, fill_uniform};
use rayon::prelude::*;

use crate::kernels::{self, MlpDims, MlpParams, MlpScratch, Moments};
use crate::primitives;
use crate::timing::{self, Options, Timing};

/// A benchmark of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bench {
    /// Its short name, as `--only` takes it.
    pub name: &'static str,
    /// What it computes, in a few words.
    pub what: &'static str,
}

/// Every benchmark, in the order the binary runs them.
pub const BENCHES: [Bench; 17] = [
    Bench {
        name: "W1",
        what: "fused elementwise chain, N=2^25",
    },
    Bench {
        name: "W1/pool",
        what: "W1 dispatched through flow_runtime::pool::Pool",
    },
    Bench {
        name: "W2",
        what: "one-pass mean and variance, N=2^25",
    },
    Bench {
        name: "W3",
        what: "row softmax, 4096x4096",
    },
    Bench {
        name: "W4",
        what: "linear + relu, 2048x1024 @ 1024x1024",
    },
    Bench {
        name: "W5",
        what: "MLP training step, 1024-1024-10, batch 2048",
    },
    Bench {
        name: "W6",
        what: "9-tap stencil, N=2^24",
    },
    Bench {
        name: "filter",
        what: "filter keeping a random half of 2^25 f32",
    },
    Bench {
        name: "sort",
        what: "radix sort of 2^24 random 32-bit keys",
    },
    Bench {
        name: "scan",
        what: "inclusive + scan of 2^25 f32",
    },
    Bench {
        name: "histogram",
        what: "histogram of 2^25 f32 into 256 bins",
    },
    Bench {
        name: "scan_fused",
        what: "inclusive + scan of x * 2 + 1, 2^25 f32",
    },
    Bench {
        name: "histogram_fused",
        what: "histogram of 2^25 f32 into 256 bins at (x * 256) as i64",
    },
    Bench {
        name: "gather",
        what: "gather of 2^25 random indices from a 2^25 f32 table",
    },
    Bench {
        name: "scan_argmax",
        what: "running argmax (tuple-state scan) of 2^24 f32",
    },
    Bench {
        name: "histogram_rows",
        what: "histogram of 2^22 rows of 4 f32 into 256 bins",
    },
    Bench {
        name: "pool.run",
        what: "one Pool::run of 1000 no-op tasks",
    },
];

/// A benchmark with its inputs and output buffers built, ready to run its kernel.
pub struct Prepared {
    /// Which benchmark.
    pub bench: Bench,
    /// Calls per sample (more than one for work of a few microseconds).
    pub batch: usize,
    /// Run untimed before every timed call of `kernel` (a sort gets its unsorted input
    /// back); only with a batch of one.
    setup: Option<Box<dyn FnMut()>>,
    kernel: Box<dyn FnMut()>,
}

impl Prepared {
    /// Runs the kernel once (a batch of [`Prepared::batch`] calls) and returns the time per
    /// call in milliseconds.
    pub fn time_once(&mut self) -> f64 {
        if let Some(setup) = &mut self.setup {
            setup();
        }
        let start = std::time::Instant::now();
        for _ in 0..self.batch {
            (self.kernel)();
        }
        start.elapsed().as_secs_f64() * 1e3 / self.batch as f64
    }
}

/// Times the benchmark called `name` on `threads` threads (rayon's global pool must already
/// have that many; the runtime pool benchmarks make their own). `None` for an unknown name.
pub fn run(name: &str, threads: usize, opts: &Options) -> Option<Timing> {
    let mut p = prepare(name, threads)?;
    Some(match &mut p.setup {
        Some(setup) => {
            timing::time_with_setup(p.bench.name, p.bench.what, opts, setup, &mut p.kernel)
        }
        None => timing::time_batched(p.bench.name, p.bench.what, opts, p.batch, &mut p.kernel),
    })
}

/// Builds the inputs and output buffers of the benchmark called `name` (not timed) and
/// returns its kernel, to be run by [`run`] or one call at a time by `compare`, which
/// interleaves it with other runs. `None` for an unknown name.
pub fn prepare(name: &str, threads: usize) -> Option<Prepared> {
    let bench = *BENCHES.iter().find(|b| b.name == name)?;
    let mut batch = 1;
    let mut setup: Option<Box<dyn FnMut()>> = None;
    let kernel: Box<dyn FnMut()> = match name {
        "W1" => {
            let x = normal(1, 1 << 25);
            let mut y = vec![0.0f32; x.len()];
            Box::new(move || kernels::w1(black_box(&x), black_box(&mut y)))
        }
        "W2" => {
            let x = normal(2, 1 << 25);
            let mut partials = vec![Moments::default(); x.len().div_ceil(kernels::W2_BLOCK)];
            Box::new(move || {
                black_box(kernels::w2(black_box(&x), &mut partials));
            })
        }
        "W3" => {
            let x = normal(3, 4096 * 4096);
            let mut y = vec![0.0f32; x.len()];
            Box::new(move || kernels::w3(black_box(&x), 4096, black_box(&mut y)))
        }
        "W4" => {
            let (m, k, n) = (2048, 1024, 1024);
            let x = normal(4, m * k);
            let w = scaled(normal(5, k * n), 0.03125);
            let b = normal(6, n);
            let mut y = vec![0.0f32; m * n];
            Box::new(move || {
                kernels::w4(black_box(&x), &w, &b, (m, k, n), &mut y, kernels::GEMM_ROWS);
                black_box(&mut y);
            })
        }
        "W5" => {
            let d = MlpDims {
                batch: 2048,
                d_in: 1024,
                d_hidden: 1024,
                d_out: 10,
            };
            let x = normal(7, d.batch * d.d_in);
            let t = normal(8, d.batch * d.d_out);
            let mut p = MlpParams {
                w1: scaled(normal(9, d.d_in * d.d_hidden), 0.03125),
                b1: vec![0.0; d.d_hidden],
                w2: scaled(normal(10, d.d_hidden * d.d_out), 0.03125),
                b2: vec![0.0; d.d_out],
            };
            let mut s = MlpScratch::new(d);
            Box::new(move || {
                black_box(kernels::w5(d, black_box(&x), &t, &mut p, &mut s, 0.01));
            })
        }
        "W6" => {
            let n = 1 << 24;
            let x = uniform(11, n + kernels::W6_TAPS - 1);
            let mut w = [0.0f32; kernels::W6_TAPS];
            fill_uniform(12, &mut w, 0);
            let mut y = vec![0.0f32; n];
            Box::new(move || kernels::w6(black_box(&x), &w, black_box(&mut y)))
        }
        "pool.run" => {
            let pool = Pool::new(threads).expect("worker threads");
            batch = 1000;
            Box::new(move || {
                pool.run(1000, &|t, _| {
                    black_box(t);
                    Ok(())
                })
                .expect("no-op tasks succeed");
            })
        }
        "W1/pool" => {
            let pool = Pool::new(threads).expect("worker threads");
            let x = normal(1, 1 << 25);
            let mut y = vec![0.0f32; x.len()];
            Box::new(move || w1_on_pool(&pool, black_box(&x), black_box(&mut y)))
        }
        "filter" => {
            let n = 1 << 25;
            let x = uniform(6, n);
            let mask: Vec<bool> = uniform(7, n).iter().map(|&u| u < 0.5).collect();
            let mut out = vec![0f32; n];
            let mut counts = vec![0usize; n.div_ceil(primitives::BLOCK)];
            Box::new(move || {
                black_box(primitives::filter(
                    black_box(&x),
                    &mask,
                    &mut out,
                    &mut counts,
                ));
            })
        }
        "sort" => {
            let keys = sort_keys(1 << 24);
            let mut scratch = vec![0u32; keys.len()];
            // The copy back is outside the timed region (as in the `prims` binary).
            let k = std::rc::Rc::new(std::cell::RefCell::new(keys.clone()));
            let k2 = k.clone();
            setup = Some(Box::new(move || k2.borrow_mut().copy_from_slice(&keys)));
            Box::new(move || {
                primitives::radix_sort_u32(black_box(&mut k.borrow_mut()), &mut scratch)
            })
        }
        "scan" => {
            let x = uniform(1, 1 << 25);
            let mut y = vec![0f32; x.len()];
            let mut sums = vec![0f32; x.len().div_ceil(primitives::BLOCK)];
            Box::new(move || primitives::scan_f32(black_box(&x), black_box(&mut y), &mut sums))
        }
        "histogram" => {
            let n = 1 << 25;
            let idx: Vec<i64> = uniform(2, n)
                .iter()
                .map(|&u| (u * primitives::BINS as f32) as i64)
                .collect();
            let vals = uniform(3, n);
            Box::new(move || {
                black_box(primitives::histogram(black_box(&idx), &vals, threads));
            })
        }
        "scan_fused" => {
            let x = uniform(1, 1 << 25);
            let mut y = vec![0f32; x.len()];
            let mut sums = vec![0f32; x.len().div_ceil(primitives::BLOCK)];
            Box::new(move || {
                primitives::scan_f32_of(black_box(&x), black_box(&mut y), &mut sums, |v| {
                    v * 2.0 + 1.0
                })
            })
        }
        "histogram_fused" => {
            let n = 1 << 25;
            let x = uniform(2, n);
            let vals = uniform(3, n);
            Box::new(move || {
                black_box(primitives::histogram_of(
                    black_box(&x),
                    &vals,
                    threads,
                    |u| (u * primitives::BINS as f32) as i64,
                ));
            })
        }
        "gather" => {
            let n = 1 << 25;
            let table = uniform(1, n);
            let idx = gather_indices(2, n);
            let mut out = vec![0f32; n];
            Box::new(move || {
                primitives::gather(black_box(&table), &idx, black_box(&mut out))
                    .expect("the indices are in range");
            })
        }
        "scan_argmax" => {
            let x = uniform(1, 1 << 24);
            let mut v = vec![0f32; x.len()];
            let mut at = vec![0i64; x.len()];
            Box::new(move || primitives::running_argmax(black_box(&x), &mut v, &mut at))
        }
        "histogram_rows" => {
            let n = 1 << 22;
            let idx: Vec<i64> = uniform(2, n)
                .iter()
                .map(|&u| (u * primitives::BINS as f32) as i64)
                .collect();
            let vals = uniform(3, n * primitives::LANES);
            Box::new(move || {
                black_box(primitives::histogram_rows(black_box(&idx), &vals, threads));
            })
        }
        _ => unreachable!("every name of BENCHES is handled"),
    };
    Some(Prepared {
        bench,
        batch,
        setup,
        kernel,
    })
}

/// W1 dispatched through the runtime's pool: one task per block, each writing its own block
/// of `y` through a shared pointer, as generated kernels are dispatched.
pub fn w1_on_pool(pool: &Pool, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    let ranges: Vec<_> = blocks(x.len(), kernels::ELEMENTWISE_BLOCK).collect();
    let out = SharedMut(y.as_mut_ptr());
    pool.run(ranges.len(), &|t, _| {
        let r = ranges[t].clone();
        // SAFETY: the blocks are disjoint and inside `y`, which outlives the dispatch.
        let y = unsafe { std::slice::from_raw_parts_mut(out.get().add(r.start), r.len()) };
        kernels::w1_block(&x[r], y);
        Ok(())
    })
    .expect("W1 tasks succeed");
}

/// A pointer to a buffer that tasks write disjoint parts of.
struct SharedMut(*mut f32);

// SAFETY: tasks write disjoint ranges only (see `w1_on_pool`).
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// The keys of the `sort` benchmark: `(rand_uniform(8, [len]) as f64 · 2^32) as u32`.
pub fn sort_keys(len: usize) -> Vec<u32> {
    uniform(8, len)
        .iter()
        .map(|&u| (u as f64 * 4294967296.0) as u32)
        .collect()
}

/// The indices of the `gather` benchmark, as `benches/w7_gather.flow` computes them:
/// `((rand_uniform(seed, [len])[i] * 2^24) as i64) * 2 + i % 2`, below `2 * 2^24`.
pub fn gather_indices(seed: u64, len: usize) -> Vec<i64> {
    uniform(seed, len)
        .iter()
        .enumerate()
        .map(|(i, &u)| ((u * 16777216.0) as i64) * 2 + (i % 2) as i64)
        .collect()
}

/// `rand_normal(seed, [len])`, generated in parallel.
pub fn normal(seed: u64, len: usize) -> Vec<f32> {
    fill_par(seed, len, fill_normal)
}

/// `rand_uniform(seed, [len])`, generated in parallel.
pub fn uniform(seed: u64, len: usize) -> Vec<f32> {
    fill_par(seed, len, fill_uniform)
}

fn fill_par(seed: u64, len: usize, fill: fn(u64, &mut [f32], u64)) -> Vec<f32> {
    const CHUNK: usize = 1 << 16;
    let mut v = vec![0.0f32; len];
    v.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, c)| fill(seed, c, (i * CHUNK) as u64));
    v
}

fn scaled(mut v: Vec<f32>, s: f32) -> Vec<f32> {
    for x in &mut v {
        *x *= s;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_generation_matches_the_runtime_generator() {
        let v = normal(3, 200_000);
        let mut want = vec![0.0; 200_000];
        fill_normal(3, &mut want, 0);
        assert_eq!(v, want);
        assert_eq!(uniform(4, 10)[7], flow_runtime::rand::uniform(4, 7));
    }

    #[test]
    fn w1_on_the_pool_matches_rayon() {
        let x = normal(1, 3 * kernels::ELEMENTWISE_BLOCK + 5);
        let mut want = vec![0.0; x.len()];
        kernels::w1(&x, &mut want);
        for threads in [1, 2, 3] {
            let mut y = vec![0.0; x.len()];
            w1_on_pool(&Pool::new(threads).unwrap(), &x, &mut y);
            assert_eq!(y, want);
        }
    }

    #[test]
    fn the_pool_benchmark_runs_and_unknown_names_do_not() {
        let opts = Options { warmup: 0, reps: 1 };
        let t = run("pool.run", 2, &opts).unwrap();
        assert_eq!((t.name.as_str(), t.samples_ms.len()), ("pool.run", 1));
        assert!(run("W9", 2, &opts).is_none());
        let mut names: Vec<_> = BENCHES.iter().map(|b| b.name).collect();
        names.dedup();
        assert_eq!(names.len(), BENCHES.len());
    }
}
