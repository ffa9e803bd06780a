//! `gemm`: times single-threaded matrix products at the block shapes Flow's W4 and W5 call
//! (`mir::schedule::contraction_rows` gives 512-row blocks): the `matrixmultiply` crate (the
//! baselines' GEMM) against each kernel variant of the runtime's packed GEMM
//! (`flow_runtime::gemm_packed`) this CPU runs, and on products of at most 16 columns each
//! variant of its narrow kernels (`flow_runtime::gemm_narrow`, `narrow Avx512`), interleaved
//! rep by rep, and prints the mean time (on-CPU time of the thread, from
//! `/proc/thread-self/schedstat`, where there is one: the machine may be loaded; it ticks in
//! milliseconds, so give sub-millisecond shapes hundreds of reps) and GFLOP/s of each, with
//! the largest difference of the last candidate from `matrixmultiply`'s result.
//!
//! ```text
//! cargo run --release -p flow-bench --bin gemm -- [--reps N] [--shape NAME] [--candidate NAME]
//! ```
//!
//! `--shape` and `--candidate` (`matrixmultiply`, `Avx512`, `Avx2`) run one of each, for
//! counting a candidate's own cycles (`perf stat -e cycles:u`) on a loaded machine.
//! `--epilogue` times W4's block with its epilogue `max(b + acc, 0)` instead: the product on
//! `matrixmultiply` then the epilogue as a second pass (what Flow ran before), the packed GEMM
//! then a second pass, and the packed GEMM with the epilogue on each block of rows it
//! finishes (`gemm_then`, what Flow's row group runs now).
//!
//! Shapes (`m×k×n`, operand layouts as Flow passes them): `fwd` 512×1024×1024 (W4, W5's
//! hidden layer), `out` 512×1024×10 (W5's output layer), `dh` 512×10×1024 with `b`
//! transposed (W5's `d·w2ᵀ`), `dw` 512×2048×1024 with `a` transposed (W5's `xᵀ·g`), `dw2` 512×2048×10 with `a` transposed (the derived
//! backward's `hᵀ·d`), and `fwd64`
//! (`fwd` in `f64`).

use std::hint::black_box;
use std::time::Instant;

use flow_runtime::gemm::Operand;
use flow_runtime::gemm_packed::{gemm, gemm_then, Element, Isa};

#[global_allocator]
static ALLOC: flow_runtime::alloc::CacheLineAligned = flow_runtime::alloc::CacheLineAligned;

/// One product: name, sizes, and whether `a` / `b` are read transposed.
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    b_t: bool,
}

fn operands<T: Copy>(s: &Shape, a: &[T], b: &[T]) -> (Operand<T>, Operand<T>) {
    let (ar, ac) = if s.a_t { (1, s.m) } else { (s.k, 1) };
    let (br, bc) = if s.b_t { (1, s.k) } else { (s.n, 1) };
    (
        Operand {
            ptr: a.as_ptr(),
            row_stride: ar as isize,
            col_stride: ac as isize,
        },
        Operand {
            ptr: b.as_ptr(),
            row_stride: br as isize,
            col_stride: bc as isize,
        },
    )
}

/// Seconds this thread has run on a CPU (Linux's `/proc/thread-self/schedstat`), so that on a
/// machine loaded by other processes the time a candidate waited for a CPU is not counted;
/// `None` where the file is missing.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Now, as [`cpu_seconds`] or else as wall-clock seconds since the first call.
fn now() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    cpu_seconds().unwrap_or_else(|| START.get_or_init(Instant::now).elapsed().as_secs_f64())
}

/// The mean: the on-CPU clock ticks in steps of a few milliseconds, so a median of short
/// runs would be one of few values.
fn mean(v: Vec<f64>) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

trait Mm: Element + Into<f64> {
    /// The runtime's product on `matrixmultiply`'s kernel (what Flow's contractions run on
    /// every `f64` product, and on `f32` ones on a CPU without FMA).
    ///
    /// # Safety
    /// As for `flow_runtime::gemm::gemm_f32`.
    unsafe fn mm(m: usize, k: usize, n: usize, a: Operand<Self>, b: Operand<Self>, c: *mut Self);
    fn from_f64(x: f64) -> Self;
    /// Whether the runtime's narrow kernels take a product into `n` columns of this type.
    fn narrow(n: usize) -> bool;
    /// The product on the narrow kernel of `isa` (`flow_runtime::gemm_narrow`).
    ///
    /// # Safety
    /// As for [`Mm::mm`]; `isa` must run on this CPU and [`Mm::narrow`] hold for `n`.
    unsafe fn narrow_mm(
        isa: Isa,
        m: usize,
        k: usize,
        n: usize,
        a: Operand<Self>,
        b: Operand<Self>,
        c: *mut Self,
    );
}

impl Mm for f32 {
    unsafe fn mm(m: usize, k: usize, n: usize, a: Operand<f32>, b: Operand<f32>, c: *mut f32) {
        // SAFETY: the caller's contract.
        unsafe { flow_runtime::gemm::gemm_f32_matrixmultiply(m, k, n, a, b, c) }
    }
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn narrow(n: usize) -> bool {
        n <= flow_runtime::gemm_narrow::NARROW_MAX_N
    }
    unsafe fn narrow_mm(
        isa: Isa,
        m: usize,
        k: usize,
        n: usize,
        a: Operand<f32>,
        b: Operand<f32>,
        c: *mut f32,
    ) {
        // SAFETY: the caller's contract.
        unsafe { flow_runtime::gemm_narrow::gemm_then(isa, m, k, n, a, b, c, &mut |_, _| true) };
    }
}

impl Mm for f64 {
    unsafe fn mm(m: usize, k: usize, n: usize, a: Operand<f64>, b: Operand<f64>, c: *mut f64) {
        // SAFETY: the caller's contract.
        unsafe { flow_runtime::gemm::gemm_f64_matrixmultiply(m, k, n, a, b, c) }
    }
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn narrow(_: usize) -> bool {
        false
    }
    unsafe fn narrow_mm(
        _: Isa,
        _: usize,
        _: usize,
        _: usize,
        _: Operand<f64>,
        _: Operand<f64>,
        _: *mut f64,
    ) {
        unreachable!("no narrow f64 kernels")
    }
}

fn run<T: Mm>(s: &Shape, reps: usize, only: Option<&str>) {
    let a: Vec<T> = (0..s.m * s.k)
        .map(|x| T::from_f64(((x * 7919) % 1000) as f64 / 500.0 - 1.0))
        .collect();
    let b: Vec<T> = (0..s.k * s.n)
        .map(|x| T::from_f64(((x * 104729) % 997) as f64 / 498.0 - 1.0))
        .collect();
    let (pa, pb) = operands(s, &a, &b);
    // The plain-Rust kernel (a reference, software `mul_add` on x86-64) is not timed.
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect();
    // Candidates after `matrixmultiply`: each packed variant, then each narrow one (`true`).
    let narrow_isas = isas.iter().filter(|_| T::narrow(s.n));
    let cands: Vec<(Isa, bool)> = isas
        .iter()
        .map(|&i| (i, false))
        .chain(narrow_isas.map(|&i| (i, true)))
        .collect();
    let name = |(isa, narrow): (Isa, bool)| {
        if narrow {
            format!("narrow {isa:?}")
        } else {
            format!("{isa:?}")
        }
    };
    let mut want = vec![T::default(); s.m * s.n];
    let mut got = vec![T::default(); s.m * s.n];
    let mut times = vec![Vec::new(); cands.len() + 1];
    for rep in 0..reps + 1 {
        let t = now();
        if only.is_none_or(|o| o == "matrixmultiply") || rep == 0 {
            // SAFETY: the operands address exactly the buffers.
            unsafe { T::mm(s.m, s.k, s.n, pa, pb, want.as_mut_ptr()) };
        }
        black_box(&want);
        if rep > 0 {
            times[0].push(now() - t);
        }
        for (v, &(isa, narrow)) in cands.iter().enumerate() {
            if only.is_some_and(|o| o != name((isa, narrow))) {
                continue;
            }
            let t = now();
            // SAFETY: as above; `isa` is available.
            unsafe {
                if narrow {
                    T::narrow_mm(isa, s.m, s.k, s.n, pa, pb, got.as_mut_ptr())
                } else {
                    gemm(isa, s.m, s.k, s.n, pa, pb, got.as_mut_ptr())
                }
            };
            black_box(&got);
            if rep > 0 {
                times[v + 1].push(now() - t);
            }
        }
    }
    let diff = want
        .iter()
        .zip(&got)
        .map(|(x, y)| ((*x).into() - (*y).into()).abs())
        .fold(0.0, f64::max);
    let flops = 2.0 * (s.m * s.k * s.n) as f64;
    let names = std::iter::once("matrixmultiply".to_string()).chain(cands.iter().map(|&c| name(c)));
    for (name, t) in names.zip(times) {
        if t.is_empty() {
            continue;
        }
        let t = mean(t);
        println!(
            "{:6} {:>4}x{:<4}x{:<4} {:15} {:8.3} ms {:6.1} GFLOP/s",
            s.name,
            s.m,
            s.k,
            s.n,
            name,
            t * 1e3,
            flops / t / 1e9
        );
    }
    println!(
        "{:6} max |last candidate - matrixmultiply| = {diff:e}",
        s.name
    );
}

/// W4's block (512×1024×1024) followed by `max(b + acc, 0)` in place, three ways (see the
/// module's documentation), interleaved rep by rep; prints the mean on-CPU time of each.
fn run_epilogue(reps: usize) {
    let (m, k, n) = (512, 1024, 1024);
    let a: Vec<f32> = (0..m * k)
        .map(|x| ((x * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|x| ((x * 104729) % 997) as f32 / 498.0 - 1.0)
        .collect();
    let bias: Vec<f32> = (0..n).map(|x| (x % 17) as f32 / 8.0 - 1.0).collect();
    let s = Shape {
        name: "fwd+ep",
        m,
        k,
        n,
        a_t: false,
        b_t: false,
    };
    let (pa, pb) = operands(&s, &a, &b);
    let Some(isa) = Isa::best() else {
        println!("no packed GEMM with FMA on this CPU");
        return;
    };
    let epilogue = |rows: &mut [f32]| {
        for row in rows.chunks_exact_mut(n) {
            for (v, &b) in row.iter_mut().zip(&bias) {
                *v = (b + *v).max(0.0);
            }
        }
    };
    let mut outs = [vec![0f32; m * n], vec![0f32; m * n], vec![0f32; m * n]];
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for rep in 0..reps + 1 {
        for (v, (c, t)) in outs.iter_mut().zip(times.iter_mut()).enumerate() {
            let start = now();
            let cp = c.as_mut_ptr();
            // SAFETY: the operands address exactly the buffers; `done` gets rows of `c`.
            unsafe {
                match v {
                    0 => f32::mm(m, k, n, pa, pb, cp),
                    1 => gemm(isa, m, k, n, pa, pb, cp),
                    _ => {
                        gemm_then(isa, m, k, n, pa, pb, cp, &mut |r0, r1| {
                            epilogue(std::slice::from_raw_parts_mut(
                                cp.add(r0 * n),
                                (r1 - r0) * n,
                            ));
                            true
                        });
                    }
                }
            }
            if v < 2 {
                epilogue(c);
            }
            black_box(&c);
            if rep > 0 {
                t.push(now() - start);
            }
        }
    }
    assert!(
        outs[1] == outs[2],
        "the epilogue inside the GEMM changed a bit"
    );
    let names = [
        "matrixmultiply, then epilogue",
        "packed, then epilogue",
        "packed, epilogue inside",
    ];
    for (name, t) in names.iter().zip(times) {
        println!(
            "{:6} {m}x{k}x{n} {name:30} {:8.3} ms",
            s.name,
            mean(t) * 1e3
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = match args.iter().position(|a| a == "--reps") {
        Some(i) => args.get(i + 1).and_then(|r| r.parse().ok()).unwrap_or(11),
        None => 11,
    };
    let flag = |f: &str| {
        let i = args.iter().position(|a| a == f)?;
        args.get(i + 1).map(String::as_str)
    };
    let (only_shape, only) = (flag("--shape"), flag("--candidate"));
    if args.iter().any(|a| a == "--epilogue") {
        run_epilogue(reps);
        return;
    }
    let shape = |name, m, k, n, a_t, b_t| Shape {
        name,
        m,
        k,
        n,
        a_t,
        b_t,
    };
    let f32s = [
        shape("fwd", 512, 1024, 1024, false, false),
        shape("out", 512, 1024, 10, false, false),
        shape("dh", 512, 10, 1024, false, true),
        shape("dw", 512, 2048, 1024, true, false),
        shape("dw2", 512, 2048, 10, true, false),
    ];
    for s in &f32s {
        if only_shape.is_none_or(|o| o == s.name) {
            run::<f32>(s, reps, only);
        }
    }
    let s = shape("fwd64", 512, 1024, 1024, false, false);
    if only_shape.is_none_or(|o| o == s.name) {
        run::<f64>(&s, reps, only);
    }
}
