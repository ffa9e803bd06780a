//! `prims`: times the Flow runtime's parallel primitives (`flow_runtime::prims`) against the
//! hand-written Rust + rayon baselines of `flow_bench::primitives` in one process, the
//! candidates of each benchmark interleaved rep by rep, and prints the medians and the
//! ratios (runtime / baseline) with the targets of issue 16.
//!
//! ```text
//! cargo run --release -p flow-bench --bin prims -- [--threads N] [--warmup N] [--reps N] [--only scan,sort]
//! ```
//!
//! Benchmarks (inputs from the runtime's Philox generator, built outside the timed region):
//! `scan` (inclusive `+` scan of 2^25 `f32`), `histogram` (2^25 `f32` values into 256 bins
//! by `i64` indices), `gather` (2^25 random `i64` indices into a 2^25 `f32` table), `filter`
//! (keeping a random half of 2^25 `f32`), `sort` (2^24 random `u32` keys; rayon's
//! `par_sort_unstable` as a second reference), `scatter_rows` (2^22 rows of 4 `f32` into a
//! `[2^22, 4]` destination at random `i64` indices, the last writer winning; the runtime's
//! `prims::scatter_rows` asks a producer for each pair's index and value, as the native
//! backend's fused scatter does, with the index known to be the row's: `by_row`).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flow_bench::primitives as base;
use flow_bench::timing::Timing;
use flow_runtime::pool::Pool;
use flow_runtime::prims::compact::Compaction;
use flow_runtime::prims::histogram::reduce_by_index;
use flow_runtime::prims::scan::{scan, ScanKind};
use flow_runtime::prims::scatter::{gather, scatter_rows};
use flow_runtime::prims::sort::sort;
use flow_runtime::prims::source::Pairs;
use flow_runtime::prims::Sum;
use flow_runtime::rand::fill_uniform;
use rayon::slice::ParallelSliceMut;

/// Large buffers on 64-byte boundaries, as in `flowc` (`flow_runtime::alloc`), so that
/// Flow and the baselines get the same alignment.
#[global_allocator]
static ALLOC: flow_runtime::alloc::CacheLineAligned = flow_runtime::alloc::CacheLineAligned;

const USAGE: &str =
    "usage: prims [--threads N] [--warmup N] [--reps N] [--only scan,histogram,gather,filter,sort,scatter_rows]";

/// One candidate: a name and a run that returns the time of its timed part.
type Candidate<'a> = (&'static str, Box<dyn FnMut() -> Duration + 'a>);

/// Runs the candidates `warmup + reps` times, interleaved (one run of each per round), and
/// returns their timings over the last `reps` rounds.
fn interleaved(
    bench: &str,
    warmup: usize,
    reps: usize,
    cands: &mut [Candidate<'_>],
) -> Vec<Timing> {
    let mut samples = vec![Vec::new(); cands.len()];
    for round in 0..warmup + reps {
        for (s, (_, run)) in samples.iter_mut().zip(cands.iter_mut()) {
            let t = run();
            if round >= warmup {
                s.push(t.as_secs_f64() * 1e3);
            }
        }
    }
    cands
        .iter()
        .zip(samples)
        .map(|((name, _), samples_ms)| Timing {
            name: bench.to_string(),
            what: name.to_string(),
            samples_ms,
        })
        .collect()
}

/// Times `f`.
fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn uniform(seed: u64, n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n];
    fill_uniform(seed, &mut v, 0);
    v
}

/// Uniform integers in `0..hi`.
fn indices(seed: u64, n: usize, hi: usize) -> Vec<i64> {
    uniform(seed, n)
        .iter()
        .map(|&u| ((u as f64 * hi as f64) as i64).min(hi as i64 - 1))
        .collect()
}

/// Runs benchmark `name` and returns its timings (the baseline first) and its target ratio.
fn run(
    name: &str,
    pool: &Pool,
    threads: usize,
    warmup: usize,
    reps: usize,
) -> Option<(Vec<Timing>, f64)> {
    const N: usize = 1 << 25;
    let t = match name {
        "scan" => {
            let x = uniform(1, N);
            let (mut y1, mut y2) = (vec![0f32; N], vec![0f32; N]);
            let mut sums = vec![0f32; N.div_ceil(base::BLOCK)];
            let mut c: Vec<Candidate> = vec![
                (
                    "baseline: blocked scan",
                    Box::new(|| timed(|| base::scan_f32(&x, &mut y1, &mut sums))),
                ),
                (
                    "runtime: prims::scan",
                    Box::new(|| {
                        timed(|| {
                            scan(
                                pool,
                                &Sum::<f32>::new(),
                                ScanKind::Inclusive,
                                N,
                                &x,
                                &mut y2,
                            )
                            .unwrap()
                        })
                    }),
                ),
            ];
            (interleaved(name, warmup, reps, &mut c), 1.5)
        }
        "histogram" => {
            let idx = indices(2, N, base::BINS);
            let vals = uniform(3, N);
            let mut bins = vec![0f32; base::BINS];
            let mut c: Vec<Candidate> = vec![
                (
                    "baseline: per-thread bins",
                    Box::new(|| {
                        timed(|| {
                            black_box(base::histogram(&idx, &vals, threads));
                        })
                    }),
                ),
                (
                    "runtime: prims::reduce_by_index",
                    Box::new(|| {
                        timed(|| {
                            reduce_by_index(pool, &Sum::<f32>::new(), &idx, &vals, &mut bins)
                                .unwrap();
                        })
                    }),
                ),
            ];
            (interleaved(name, warmup, reps, &mut c), 1.5)
        }
        "gather" => {
            let table = uniform(4, N);
            let idx = indices(5, N, N);
            let (mut o1, mut o2) = (vec![0f32; N], vec![0f32; N]);
            let mut c: Vec<Candidate> = vec![
                (
                    "baseline: parallel gather",
                    Box::new(|| timed(|| base::gather(&table, &idx, &mut o1).unwrap())),
                ),
                (
                    "runtime: prims::gather",
                    Box::new(|| timed(|| gather(pool, &table, &[N], &idx, &mut o2).unwrap())),
                ),
            ];
            (interleaved(name, warmup, reps, &mut c), 1.3)
        }
        "filter" => {
            let x = uniform(6, N);
            let mask: Vec<bool> = uniform(7, N).iter().map(|&u| u < 0.5).collect();
            let (mut o1, mut o2) = (vec![0f32; N], vec![0f32; N]);
            let mut counts = vec![0usize; N.div_ceil(base::BLOCK)];
            let mut c: Vec<Candidate> = vec![
                (
                    "baseline: count, scan, write",
                    Box::new(|| {
                        timed(|| {
                            black_box(base::filter(&x, &mask, &mut o1, &mut counts));
                        })
                    }),
                ),
                (
                    "runtime: prims::compact",
                    Box::new(|| {
                        timed(|| {
                            let c = Compaction::new(pool, &mask).unwrap();
                            c.filter(pool, &x, &mut o2[..c.kept()]).unwrap();
                        })
                    }),
                ),
            ];
            (interleaved(name, warmup, reps, &mut c), 1.5)
        }
        "sort" => {
            const M: usize = 1 << 24;
            let keys: Vec<u32> = uniform(8, M)
                .iter()
                .map(|&u| (u as f64 * 4294967296.0) as u32)
                .collect();
            let (mut k1, mut k2, mut k3) = (keys.clone(), keys.clone(), keys.clone());
            let mut scratch = vec![0u32; M];
            let mut c: Vec<Candidate> = vec![
                (
                    "baseline: parallel LSD radix",
                    Box::new(|| {
                        k1.copy_from_slice(&keys);
                        timed(|| base::radix_sort_u32(&mut k1, &mut scratch))
                    }),
                ),
                (
                    "runtime: prims::sort",
                    Box::new(|| {
                        k2.copy_from_slice(&keys);
                        timed(|| sort(pool, &mut k2).unwrap())
                    }),
                ),
                (
                    "rayon par_sort_unstable",
                    Box::new(|| {
                        k3.copy_from_slice(&keys);
                        timed(|| k3.par_sort_unstable())
                    }),
                ),
            ];
            let t = interleaved(name, warmup, reps, &mut c);
            drop(c);
            assert!(k1 == k2 && k2 == k3, "the sorts disagree");
            (t, 2.0)
        }
        "scatter_rows" => {
            const R: usize = 1 << 22;
            const K: usize = base::LANES;
            let dest = uniform(9, R * K);
            let idx = indices(10, R, R);
            let vals = uniform(11, R * K);
            let (mut o1, mut o2, mut o3) =
                (vec![0f32; R * K], vec![0f32; R * K], vec![0f32; R * K]);
            let winner: Vec<_> = (0..R)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect();
            // Each pair's index (its row's) and value, as a fused producer gives them.
            let fill = |lo: usize, hi: usize, pi: *mut i64, pv: *mut f32| {
                for p in lo..hi {
                    // SAFETY: room for `hi - lo` elements in each stream.
                    unsafe {
                        *pi.add(p - lo) = idx[p / K];
                        *pv.add(p - lo) = vals[p];
                    }
                }
                0
            };
            // The runtime's scatter into `out`, one winner per row (`by_row`) or per slot.
            let runtime = |out: &mut [f32], by_row: bool| {
                out.copy_from_slice(&dest);
                let src = Pairs::Produced {
                    len: R * K,
                    fill: &fill,
                };
                scatter_rows(pool, out, K, by_row, src).unwrap();
            };
            let mut c: Vec<Candidate> = vec![
                (
                    "baseline: row winners, copy rows",
                    Box::new(|| timed(|| base::scatter_rows(&dest, &idx, &vals, &mut o1, &winner))),
                ),
                (
                    "runtime: prims::scatter_rows",
                    Box::new(|| timed(|| runtime(&mut o2, true))),
                ),
                (
                    "runtime: scatter_rows, winner per slot",
                    Box::new(|| timed(|| runtime(&mut o3, false))),
                ),
            ];
            let t = interleaved(name, warmup, reps, &mut c);
            drop(c);
            assert!(o1 == o2 && o2 == o3, "the scatters disagree");
            (t, 1.5)
        }
        _ => return None,
    };
    Some(t)
}

fn main() -> ExitCode {
    let mut threads = flow_runtime::pool::default_threads();
    let (mut warmup, mut reps) = (2usize, 11usize);
    let mut only: Vec<String> = [
        "scan",
        "histogram",
        "gather",
        "filter",
        "sort",
        "scatter_rows",
    ]
    .map(String::from)
    .to_vec();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_default();
        let num = v.parse::<usize>();
        match (a.as_str(), num) {
            ("--threads", Ok(n)) if n > 0 => threads = n,
            ("--warmup", Ok(n)) => warmup = n,
            ("--reps", Ok(n)) if n > 0 => reps = n,
            ("--only", _) => only = v.split(',').map(|s| s.trim().to_string()).collect(),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_err()
    {
        eprintln!("prims: cannot start {threads} threads");
        return ExitCode::FAILURE;
    }
    let pool = match Pool::new(threads) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("prims: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("threads {threads}, warm-up {warmup}, timed runs {reps} (interleaved); medians in ms");
    println!(
        "{:<10} {:<34} {:>10} {:>10} {:>8}",
        "bench", "candidate", "median", "min", "ratio"
    );
    for name in &only {
        eprintln!("running {name}");
        let Some((timings, target)) = run(name, &pool, threads, warmup, reps) else {
            eprintln!("prims: unknown benchmark `{name}`\n{USAGE}");
            return ExitCode::from(2);
        };
        let base = timings[0].median_ms();
        for t in &timings {
            println!(
                "{:<10} {:<34} {:>10.2} {:>10.2} {:>7.2}x",
                t.name,
                t.what,
                t.median_ms(),
                t.min_ms(),
                t.median_ms() / base
            );
        }
        let ratio = timings[1].median_ms() / base;
        println!(
            "{:<10} runtime / baseline = {ratio:.2}x (target <= {target}x: {})",
            name,
            if ratio <= target { "met" } else { "NOT met" }
        );
    }
    ExitCode::SUCCESS
}
