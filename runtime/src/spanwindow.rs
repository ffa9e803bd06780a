//! Windowed dot products over spans: `out[i] = 0 + w[0]·x[i] + w[1]·x[i + 1] + … +
//! w[K-1]·x[i + K - 1]` on `f32` (a stencil, W6's `sum[k](w[k] * x[i + k])`), compiled three
//! times — for AVX-512F, for AVX2 and for the baseline target — from the same source and chosen
//! at run time by CPU detection, as [`crate::spanmath`] does for `exp`. The native backend's
//! kernels call [`flow_window_dot_f32`] on the rows of a shard where a reduction has this
//! shape (`codegen/kernel/span.rs`): LLVM runs the outputs 16 or 8 lanes wide, where the
//! kernels' own code (Cranelift, 128-bit vectors only) runs 4.
//!
//! **Same bits everywhere.** Each output is folded exactly as the interpreter folds a `sum`:
//! from `+0.0`, adding one product per tap in ascending `k`, each product rounded to `f32`
//! and then added (a multiply and an add, never a fused multiply-add: LLVM contracts nothing
//! and reassociates nothing without fast-math flags, and vectorizing across outputs keeps each
//! output's own sequence of operations). So every variant gives the bits of the scalar
//! [`window_dot_reference`] on every machine (tested below on every variant this CPU runs),
//! and `--portable-math` needs no other path (it runs the baseline variant all the same).
//! Where the program writes the product the other way round (`x[i + k] * w[k]`),
//! [`Order::XW`] keeps that operand order.

/// The order of a product's operands, as the program wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `w[k] * x[i + k]`.
    WX,
    /// `x[i + k] * w[k]`.
    XW,
}

/// Windows of at most this many taps are compiled per tap count, the taps unrolled and each
/// output's sum kept in a register; longer ones sum over blocks of outputs in memory.
const MAX_UNROLLED: usize = 16;

/// Outputs per block of the general (long-window) loop: its partial sums stay in L1.
const BLOCK: usize = 512;

/// `out[i] = Σ_k w[k]·x[i + k]` (in the order of [`Order`], `k` ascending, from `+0.0`) for
/// every `i < out.len()`, with the widest variant this CPU runs (the baseline one under
/// `--portable-math`).
///
/// # Panics
/// If `x` has fewer than `out.len() + w.len() - 1` elements (and `out` is not empty).
pub fn window_dot_f32(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    if out.is_empty() {
        return;
    }
    assert!(
        x.len() + 1 >= out.len() + w.len(),
        "window_dot_f32: {} inputs for {} outputs of {} taps",
        x.len(),
        out.len(),
        w.len()
    );
    #[cfg(target_arch = "x86_64")]
    if !crate::portable::portable_math() {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { window_avx512(out, x, w, order) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { window_avx2(out, x, w, order) };
        }
    }
    window(out, x, w, order)
}

/// The scalar definition every variant must match: one output at a time, one tap at a time.
pub fn window_dot_reference(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    for (i, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (k, &wk) in w.iter().enumerate() {
            acc += product(wk, x[i + k], order);
        }
        *o = acc;
    }
}

#[inline(always)]
fn product(w: f32, x: f32, order: Order) -> f32 {
    match order {
        Order::WX => w * x,
        Order::XW => x * w,
    }
}

/// The code every variant compiles: a version per tap count up to [`MAX_UNROLLED`], and the
/// blocked loop beyond.
#[inline(always)]
fn window(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    macro_rules! fixed {
        ($($k:literal)*) => {
            match w.len() {
                $($k => match order {
                    Order::WX => fixed::<$k, true>(out, x, w),
                    Order::XW => fixed::<$k, false>(out, x, w),
                },)*
                _ => blocked(out, x, w, order),
            }
        };
    }
    fixed!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// `K` taps, unrolled: each output's sum lives in a register across the taps, and the loop
/// over outputs vectorizes (as a hand-written stencil does).
#[inline(always)]
fn fixed<const K: usize, const WX: bool>(out: &mut [f32], x: &[f32], w: &[f32]) {
    const { assert!(K <= MAX_UNROLLED) };
    let n = out.len();
    let w: [f32; K] = std::array::from_fn(|k| w[k]);
    // K shifted views of `n` elements: no bounds checks in the loop.
    let xs: [&[f32]; K] = std::array::from_fn(|k| &x[k..k + n]);
    let order = if WX { Order::WX } else { Order::XW };
    for (i, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for k in 0..K {
            acc += product(w[k], xs[k][i], order);
        }
        *o = acc;
    }
}

/// Any number of taps: per block of [`BLOCK`] outputs, the partial sums in memory, one pass
/// over them per tap (in ascending `k`), each pass a vectorized loop over the outputs.
#[inline(always)]
fn blocked(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    let mut acc = [0.0f32; BLOCK];
    for (b, chunk) in out.chunks_mut(BLOCK).enumerate() {
        let start = b * BLOCK;
        let acc = &mut acc[..chunk.len()];
        acc.fill(0.0);
        for (k, &wk) in w.iter().enumerate() {
            let xs = &x[start + k..start + k + acc.len()];
            for (a, &xv) in acc.iter_mut().zip(xs) {
                *a += product(wk, xv, order);
            }
        }
        chunk.copy_from_slice(acc);
    }
}

/// [`window`] for AVX-512F (16 lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn window_avx512(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    window(out, x, w, order);
}

/// [`window`] for AVX2 (8 lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn window_avx2(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    window(out, x, w, order);
}

/// [`window_dot_f32`] for kernels (symbol `flow_window_dot_f32`): `n` outputs at `out`, from
/// `n + k - 1` inputs at `x` and `k` weights at `w`; `order` 0 is [`Order::WX`], anything
/// else [`Order::XW`].
///
/// # Safety
/// `out` must point to `n` writable `f32`s, `x` to `n + k - 1` and `w` to `k` initialized
/// ones, and `out` must overlap neither; `n <= 0` does nothing, `k <= 0` writes zeros.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_window_dot_f32(
    out: *mut f32,
    x: *const f32,
    w: *const f32,
    n: i64,
    k: i64,
    order: i64,
) {
    if n <= 0 || out.is_null() {
        return;
    }
    let (n, k) = (n as usize, k.max(0) as usize);
    // SAFETY: the caller's contract.
    let (out, x, w) = unsafe {
        (
            std::slice::from_raw_parts_mut(out, n),
            std::slice::from_raw_parts(x, n + k.max(1) - 1),
            if k == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(w, k)
            },
        )
    };
    let order = if order == 0 { Order::WX } else { Order::XW };
    window_dot_f32(out, x, w, order);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Inputs with specials (NaN, infinities, signed zeros, subnormals, huge values whose
    /// products overflow) among ordinary values.
    pub(crate) fn inputs(n: usize, salt: u32) -> Vec<f32> {
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            f32::MIN_POSITIVE / 8.0,
            f32::MAX,
            -1e30,
        ];
        (0..n as u32)
            .map(|i| {
                let h = (i ^ salt).wrapping_mul(2_654_435_761).rotate_left(13);
                if h.is_multiple_of(97) {
                    specials[(h / 97) as usize % specials.len()]
                } else {
                    (h % 20_001) as f32 / 997.0 - 10.0
                }
            })
            .collect()
    }

    type Variant = dyn Fn(&mut [f32], &[f32], &[f32], Order);

    fn check(name: &str, f: &Variant) {
        // Tap counts: none, one, every unrolled count, the first blocked ones and a long one;
        // output counts: one, shorter than a vector, tails, more than one block.
        let taps = (0..=MAX_UNROLLED + 2).chain([37, 100]);
        for k in taps {
            let w = inputs(k, 7 + k as u32);
            for n in [1, 3, 15, 16, 17, 31, 100, BLOCK + 3, 2 * BLOCK + 77] {
                let x = inputs(n + k.max(1) - 1, 31 * n as u32);
                for order in [Order::WX, Order::XW] {
                    let mut want = vec![f32::NAN; n];
                    window_dot_reference(&mut want, &x, &w, order);
                    let mut got = vec![f32::NAN; n];
                    f(&mut got, &x, &w, order);
                    for i in 0..n {
                        assert_eq!(
                            got[i].to_bits(),
                            want[i].to_bits(),
                            "{name}: {k} taps, {n} outputs, {order:?}: out[{i}] = {:e}, the \
                             reference gives {:e}",
                            got[i],
                            want[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_variant_gives_the_reference_bits() {
        check("dispatched", &window_dot_f32);
        check("baseline", &window);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                check("avx2", &|o, x, w, r| unsafe { window_avx2(o, x, w, r) });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                check("avx512f", &|o, x, w, r| unsafe {
                    window_avx512(o, x, w, r)
                });
            }
        }
    }

    #[test]
    fn the_symbol_follows_its_contract() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let w = [0.5f32, -1.0];
        let mut out = [9.0f32; 3];
        // SAFETY: three outputs, four inputs, two weights; a non-positive count does nothing.
        unsafe {
            flow_window_dot_f32(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), 0, 2, 0);
            assert_eq!(out, [9.0; 3]);
            flow_window_dot_f32(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), 3, 2, 0);
            assert_eq!(out, [-1.5, -2.0, -2.5]);
            flow_window_dot_f32(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), 3, 0, 1);
            assert_eq!(out.map(f32::to_bits), [0.0f32.to_bits(); 3]);
        }
    }
}
