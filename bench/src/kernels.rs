//! Hand-written Rust + rayon kernels of W1–W6 (`bench/WORKLOADS.md`), written the
//! way a careful engineer would write them by hand: fused loops, outputs written into buffers
//! the caller reuses, fixed blocks, 16 independent lanes for float sums, a vectorisable
//! polynomial `exp`, and the `matrixmultiply` crate's SGEMM with the bias/ReLU epilogue
//! applied to each block of rows right after its GEMM.
//!
//! Sizes are parameters so that the tests can check each kernel at a tiny size against a
//! naive reference; `workloads.rs` calls them at the sizes of the workloads. Parallel loops run
//! on rayon's global pool, whose size the `baseline` binary sets from `--threads`.

use rayon::prelude::*;

/// The elements of one parallel task of the elementwise kernels (W1, W6): 256 KiB of `f32`.
pub const ELEMENTWISE_BLOCK: usize = 1 << 16;

/// W1's `a`, `b` and `c`.
pub const W1_A: f32 = 1.5;
/// W1's `b`.
pub const W1_B: f32 = 0.25;
/// W1's `c`.
pub const W1_C: f32 = 0.75;

/// W1, the fused elementwise chain: `y[i] = max(a x[i] + b, 0) c + x[i] x[i]`.
///
/// # Panics
/// If `x` and `y` differ in length.
pub fn w1(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    y.par_chunks_mut(ELEMENTWISE_BLOCK)
        .zip(x.par_chunks(ELEMENTWISE_BLOCK))
        .for_each(|(y, x)| w1_block(x, y));
}

/// W1 on one block, on the calling thread.
pub fn w1_block(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (W1_A * x + W1_B).max(0.0) * W1_C + x * x;
    }
}

/// The elements of one block of W2's reduction: a function of nothing but this constant, so
/// the result does not depend on the thread count.
pub const W2_BLOCK: usize = 1 << 14;

/// The monoid of W2: a count, a sum and a sum of squares.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    /// How many elements.
    pub n: u64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sumsq: f64,
}

impl Moments {
    /// The monoid's operation.
    pub fn combine(self, o: Moments) -> Moments {
        Moments {
            n: self.n + o.n,
            sum: self.sum + o.sum,
            sumsq: self.sumsq + o.sumsq,
        }
    }

    /// `(mean, variance)`: `sum / n` and `sumsq / n - (sum / n)^2`.
    pub fn mean_var(self) -> (f64, f64) {
        let n = self.n as f64;
        let mean = self.sum / n;
        (mean, self.sumsq / n - mean * mean)
    }
}

/// W2, one-pass mean and variance: the moments of each block of [`W2_BLOCK`] elements (16
/// independent `f32` lanes, then `f64`) into `partials`, combined in block order in `f64`.
/// Returns `(mean, variance)`.
///
/// # Panics
/// If `partials` does not have one slot per block.
pub fn w2(x: &[f32], partials: &mut [Moments]) -> (f64, f64) {
    assert_eq!(partials.len(), x.len().div_ceil(W2_BLOCK));
    partials
        .par_iter_mut()
        .zip(x.par_chunks(W2_BLOCK))
        .for_each(|(p, x)| *p = moments_block(x));
    partials
        .iter()
        .fold(Moments::default(), |a, &b| a.combine(b))
        .mean_var()
}

/// The moments of one block: per 4 KiB sub-block, 16 `f32` lanes of sums and of sums of
/// squares, added up in `f64`.
///
/// The sums and the sums of squares of a sub-block are two loops over L1, which is still one
/// pass over memory: with both in one loop, or with lanes that live across sub-blocks, LLVM
/// interleaves or scalarises the accumulators and the loop runs 3-5x slower.
pub fn moments_block(x: &[f32]) -> Moments {
    let mut m = Moments {
        n: x.len() as u64,
        ..Moments::default()
    };
    for sub in x.chunks(1024) {
        m.sum += lane_sums(sub).iter().map(|&v| v as f64).sum::<f64>();
        m.sumsq += lane_square_sums(sub).iter().map(|&v| v as f64).sum::<f64>();
        for &v in sub.chunks_exact(16).remainder() {
            m.sum += v as f64;
            m.sumsq += v as f64 * v as f64;
        }
    }
    m
}

/// The sums of the 16 lanes of the whole chunks of 16 of `x` (not inlined, so that the lanes
/// stay in vector registers).
#[inline(never)]
fn lane_sums(x: &[f32]) -> [f32; 16] {
    let mut s = [0f32; 16];
    for c in x.chunks_exact(16) {
        for l in 0..16 {
            s[l] += c[l];
        }
    }
    s
}

/// The sums of the squares of the 16 lanes of the whole chunks of 16 of `x`.
#[inline(never)]
fn lane_square_sums(x: &[f32]) -> [f32; 16] {
    let mut q = [0f32; 16];
    for c in x.chunks_exact(16) {
        for l in 0..16 {
            q[l] += c[l] * c[l];
        }
    }
    q
}

/// W3, row softmax: `y[r, j] = exp(x[r, j] - max_j x[r, j]) / sum_j exp(...)` for each row of
/// `cols` elements, each row in three passes over cache (max, exp and sum, divide), with
/// [`exp_approx`] for `exp`.
///
/// # Panics
/// If `x` and `y` differ in length or are not whole rows.
pub fn w3(x: &[f32], cols: usize, y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    assert_eq!(x.len() % cols, 0);
    y.par_chunks_mut(cols)
        .zip(x.par_chunks(cols))
        .for_each(|(y, x)| softmax_row(x, y));
}

/// The softmax of one row.
pub fn softmax_row(x: &[f32], y: &mut [f32]) {
    let m = max_lanes(x);
    for (y, &x) in y.iter_mut().zip(x) {
        *y = exp_approx(x - m);
    }
    let s = sum_lanes(y);
    for y in y.iter_mut() {
        *y /= s;
    }
}

/// The maximum of `x` (`-inf` when empty; NaNs are ignored), over 16 independent lanes.
fn max_lanes(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            // A compare and select: `f32::max` (IEEE maxNum) costs three times as much.
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    let tail = chunks.remainder().iter().copied();
    m.into_iter().chain(tail).fold(f32::NEG_INFINITY, f32::max)
}

/// The sum of `x` over 16 independent lanes.
fn sum_lanes(x: &[f32]) -> f32 {
    lane_sums(x).into_iter().sum::<f32>() + x.chunks_exact(16).remainder().iter().sum::<f32>()
}

/// `exp(x)` by range reduction and a polynomial, written with operations that vectorise
/// (no table, no branch, no libm call).
///
/// `x` is clamped to `[-87.3, 88.3]`, so results lie in `[~1.2e-38, ~2.2e38]` (no subnormals,
/// no infinity); within that range the relative error is below 3e-7 (about 2.5 ulp, tested).
/// `x = n ln 2 + r` with `n` rounded to nearest by the `1.5 * 2^23` trick and `ln 2` split in
/// two (Cody-Waite), `exp(r)` on `|r| <= ln 2 / 2` by the minimax polynomial of Cephes'
/// `expf`, and `2^n` built in the exponent bits.
#[inline]
pub fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.clamp(-87.3, 88.3);
    // t = ROUND + n exactly, for the integer n nearest x log2(e).
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // The bits of t are those of ROUND plus n; shifting by 23 keeps n + 127 in the exponent
    // (ROUND's own bits shift out), which is 2^n.
    let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    e * scale
}

/// W4, linear + ReLU: `y = relu(x w + b)` for `x[m, k]`, `w[k, n]`, `b[n]`, `y[m, n]`,
/// row-major. Each task takes `rows` rows of `x`: it fills its rows of `y` with the bias, adds
/// `x w` with SGEMM (`beta = 1`), and applies the ReLU to them.
///
/// # Panics
/// If a buffer's length does not match the dimensions, or `rows` is 0.
pub fn w4(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    dims: (usize, usize, usize),
    y: &mut [f32],
    rows: usize,
) {
    let (m, k, n) = dims;
    assert_eq!(
        (x.len(), w.len(), b.len(), y.len()),
        (m * k, k * n, n, m * n)
    );
    y.par_chunks_mut(rows * n)
        .zip(x.par_chunks(rows * k))
        .for_each(|(y, x)| linear_relu_rows(x, w, b, k, n, y));
}

/// The rows of `y = relu(x w + b)` that the rows of `x` give, on the calling thread.
pub fn linear_relu_rows(x: &[f32], w: &[f32], b: &[f32], k: usize, n: usize, y: &mut [f32]) {
    let m = y.len() / n;
    assert_eq!(
        (x.len(), w.len(), b.len(), y.len()),
        (m * k, k * n, n, m * n)
    );
    for row in y.chunks_exact_mut(n) {
        row.copy_from_slice(b);
    }
    // SAFETY: x is m×k, w is k×n and y is m×n, all row-major and in bounds (checked above).
    unsafe {
        sgemm_rm(m, k, n, 1.0, (x.as_ptr(), k as isize, 1), w, 1.0, y);
    }
    for v in y.iter_mut() {
        *v = v.max(0.0);
    }
}

/// `c = alpha a b + beta c` for an `m×k` matrix `a` given as (pointer, row stride, column
/// stride), a row-major `k×n` matrix `b` and a row-major `m×n` matrix `c`.
///
/// # Safety
/// `a` must point to an `m×k` matrix readable with those strides.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_rm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (*const f32, isize, isize),
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    assert!(b.len() >= k * n && c.len() >= m * n);
    // SAFETY: b and c are in bounds (checked above); a is the caller's contract.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.0,
            a.1,
            a.2,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The sizes of W5's network: `d_in -> d_hidden (relu) -> d_out`, on a batch of `batch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlpDims {
    /// Rows of the batch.
    pub batch: usize,
    /// Input features.
    pub d_in: usize,
    /// Hidden units.
    pub d_hidden: usize,
    /// Outputs.
    pub d_out: usize,
}

/// W5's parameters, row-major: `w1[d_in, d_hidden]`, `b1[d_hidden]`, `w2[d_hidden, d_out]`,
/// `b2[d_out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpParams {
    /// First layer weights.
    pub w1: Vec<f32>,
    /// First layer bias.
    pub b1: Vec<f32>,
    /// Second layer weights.
    pub w2: Vec<f32>,
    /// Second layer bias.
    pub b2: Vec<f32>,
}

/// W5's intermediate buffers, allocated once and reused by every step.
#[derive(Clone, Debug)]
pub struct MlpScratch {
    /// `relu(x w1 + b1)`, `[batch, d_hidden]`.
    h: Vec<f32>,
    /// `h w2 + b2`, then `dL/dy = (y - t) / batch`, `[batch, d_out]`.
    y: Vec<f32>,
    /// `dL/d(x w1 + b1)`, `[batch, d_hidden]`.
    dh: Vec<f32>,
    /// Per row block, the column sums of its rows of `dh`, `[blocks, d_hidden]`.
    db1_parts: Vec<f32>,
    /// `dL/dw2`, `[d_hidden, d_out]`.
    dw2: Vec<f32>,
    /// `w2` transposed, `[d_out, d_hidden]`.
    w2t: Vec<f32>,
}

/// The rows of one parallel task of W5's elementwise and small-GEMM work.
pub const W5_ROWS: usize = 128;

/// The rows of one SGEMM task of W4 and W5: big enough that packing the shared operand once per
/// task costs little, small enough to balance the tasks over the threads.
pub const GEMM_ROWS: usize = 512;

impl MlpScratch {
    /// Buffers for networks of size `d`.
    pub fn new(d: MlpDims) -> MlpScratch {
        MlpScratch {
            h: vec![0.0; d.batch * d.d_hidden],
            y: vec![0.0; d.batch * d.d_out],
            dh: vec![0.0; d.batch * d.d_hidden],
            db1_parts: vec![0.0; d.batch.div_ceil(W5_ROWS) * d.d_hidden],
            dw2: vec![0.0; d.d_hidden * d.d_out],
            w2t: vec![0.0; d.d_hidden * d.d_out],
        }
    }
}

/// W5, one training step of the MLP on inputs `x[batch, d_in]` and targets `t[batch, d_out]`:
/// forward, loss `sum((y - t)^2) / (2 batch)`, backward (no `dx`) and SGD with rate `lr` on
/// all four parameters, in place. Returns the loss before the update.
///
/// # Panics
/// If a buffer's length does not match `d`.
pub fn w5(d: MlpDims, x: &[f32], t: &[f32], p: &mut MlpParams, s: &mut MlpScratch, lr: f32) -> f32 {
    let MlpDims {
        batch,
        d_in,
        d_hidden: dh_n,
        d_out,
    } = d;
    assert_eq!((x.len(), t.len()), (batch * d_in, batch * d_out));
    assert_eq!(p.w1.len(), d_in * dh_n);
    assert_eq!(p.w2.len(), dh_n * d_out);
    // Forward: h = relu(x w1 + b1), y = h w2 + b2.
    w4(x, &p.w1, &p.b1, (batch, d_in, dh_n), &mut s.h, GEMM_ROWS);
    s.y.par_chunks_mut(W5_ROWS * d_out)
        .zip(s.h.par_chunks(W5_ROWS * dh_n))
        .for_each(|(y, h)| {
            let rows = y.len() / d_out;
            for row in y.chunks_exact_mut(d_out) {
                row.copy_from_slice(&p.b2);
            }
            // SAFETY: h is rows×dh_n, row-major.
            unsafe {
                sgemm_rm(
                    rows,
                    dh_n,
                    d_out,
                    1.0,
                    (h.as_ptr(), dh_n as isize, 1),
                    &p.w2,
                    1.0,
                    y,
                )
            };
        });
    // Loss, and dL/dy = (y - t) / batch in place of y.
    let inv_b = 1.0 / batch as f32;
    let mut sq = 0.0f64;
    for (y, &t) in s.y.iter_mut().zip(t) {
        let e = *y - t;
        sq += (e * e) as f64;
        *y = e * inv_b;
    }
    let loss = (sq / (2.0 * batch as f64)) as f32;
    let dy = &s.y;
    // dw2 = h^T dy (row blocks of dw2 are column blocks of h).
    s.dw2
        .par_chunks_mut(W5_ROWS * d_out)
        .enumerate()
        .for_each(|(blk, dw2)| {
            let rows = dw2.len() / d_out;
            // SAFETY: h^T's rows blk*W5_ROWS.. are h's columns: row stride 1, column stride
            // dh_n, batch columns, all inside h.
            unsafe {
                let a = s.h.as_ptr().add(blk * W5_ROWS);
                sgemm_rm(rows, batch, d_out, 1.0, (a, 1, dh_n as isize), dy, 0.0, dw2);
            }
        });
    // dh = (dy w2^T) masked by h > 0, as axpys with the rows of w2^T, with the column sums
    // of each row block (for db1).
    for (j, w) in p.w2.chunks_exact(d_out).enumerate() {
        for (k, &w) in w.iter().enumerate() {
            s.w2t[k * dh_n + j] = w;
        }
    }
    let w2t = &s.w2t;
    s.dh.par_chunks_mut(W5_ROWS * dh_n)
        .zip(s.h.par_chunks(W5_ROWS * dh_n))
        .zip(dy.par_chunks(W5_ROWS * d_out))
        .zip(s.db1_parts.par_chunks_mut(dh_n))
        .for_each(|(((dh, h), dy), db1)| {
            db1.fill(0.0);
            let rows = dh.chunks_exact_mut(dh_n).zip(h.chunks_exact(dh_n));
            for ((dh, h), dy) in rows.zip(dy.chunks_exact(d_out)) {
                dh.fill(0.0);
                for (&g, w) in dy.iter().zip(w2t.chunks_exact(dh_n)) {
                    for (dh, &w) in dh.iter_mut().zip(w) {
                        *dh += g * w;
                    }
                }
                for ((dh, &h), acc) in dh.iter_mut().zip(h).zip(db1.iter_mut()) {
                    if h <= 0.0 {
                        *dh = 0.0;
                    }
                    *acc += *dh;
                }
            }
        });
    // SGD on the second layer (its old weights were needed for dh).
    for (w, &g) in p.w2.iter_mut().zip(&s.dw2) {
        *w -= lr * g;
    }
    for (j, b) in p.b2.iter_mut().enumerate() {
        let g: f32 = dy.chunks_exact(d_out).map(|r| r[j]).sum();
        *b -= lr * g;
    }
    // SGD on the first layer: w1 -= lr x^T dh, with SGEMM updating w1 in place.
    let dh = &s.dh;
    p.w1.par_chunks_mut(GEMM_ROWS * dh_n)
        .enumerate()
        .for_each(|(blk, w1)| {
            let rows = w1.len() / dh_n;
            // SAFETY: x^T's rows blk*GEMM_ROWS.. are x's columns: row stride 1, column stride
            // d_in, batch columns, all inside x.
            unsafe {
                let a = x.as_ptr().add(blk * GEMM_ROWS);
                sgemm_rm(rows, batch, dh_n, -lr, (a, 1, d_in as isize), dh, 1.0, w1);
            }
        });
    for (j, b) in p.b1.iter_mut().enumerate() {
        let g: f32 = s.db1_parts.chunks_exact(dh_n).map(|part| part[j]).sum();
        *b -= lr * g;
    }
    loss
}

/// The number of taps of W6.
pub const W6_TAPS: usize = 9;

/// W6, the 9-tap stencil: `y[i] = sum_{k<9} w[k] x[i + k]` (summed in order of `k`) for
/// `i < y.len()`, with `x.len() == y.len() + 8`.
///
/// # Panics
/// If the lengths do not match.
pub fn w6(x: &[f32], w: &[f32; W6_TAPS], y: &mut [f32]) {
    assert_eq!(x.len(), y.len() + W6_TAPS - 1);
    y.par_chunks_mut(ELEMENTWISE_BLOCK)
        .enumerate()
        .for_each(|(blk, y)| {
            let lo = blk * ELEMENTWISE_BLOCK;
            w6_block(&x[lo..lo + y.len() + W6_TAPS - 1], w, y);
        });
}

/// W6 on one block: `x` holds the block's inputs plus the 8 that follow.
pub fn w6_block(x: &[f32], w: &[f32; W6_TAPS], y: &mut [f32]) {
    // Nine shifted views of the same length as `y`, so that the loop has no bounds checks and
    // vectorises over `i`, with the nine taps accumulated in registers, in order of `k`.
    let n = y.len();
    let xs: [&[f32]; W6_TAPS] = std::array::from_fn(|k| &x[k..k + n]);
    for (i, y) in y.iter_mut().enumerate() {
        *y = 0.0
            + w[0] * xs[0][i]
            + w[1] * xs[1][i]
            + w[2] * xs[2][i]
            + w[3] * xs[3][i]
            + w[4] * xs[4][i]
            + w[5] * xs[5][i]
            + w[6] * xs[6][i]
            + w[7] * xs[7][i]
            + w[8] * xs[8][i];
    }
}

#[cfg(test)]
mod tests;
