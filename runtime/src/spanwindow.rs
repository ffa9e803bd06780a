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
    check_lengths("window_dot_f32", out, x, w);
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

/// Panics unless `x` holds the `out.len() + w.len() - 1` inputs of `out` (not empty).
fn check_lengths(name: &str, out: &[f32], x: &[f32], w: &[f32]) {
    assert!(
        x.len() + 1 >= out.len() + w.len(),
        "{name}: {} inputs for {} outputs of {} taps",
        x.len(),
        out.len(),
        w.len()
    );
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

/// Outputs of at least this many bytes in all (the whole tensor a kernel writes, not one
/// shard's part of it) are written with non-temporal stores by [`flow_window_dot_f32`]: a
/// tensor larger than the last-level cache (32 MiB on the development machine, shared by its
/// cores) is not read back from cache anyway, so a store that skips the read for ownership
/// of each line moves a third fewer bytes (W6: input, and output written once, instead of
/// input, output read and output written). Below it, ordinary stores leave the output in
/// cache for the kernels that read it next.
pub const STREAM_MIN_BYTES: usize = 16 << 20;

/// [`window_dot_f32`] with non-temporal stores of the outputs (AVX-512F or AVX2, for
/// windows of at most [`MAX_UNROLLED`] taps; otherwise, and under `--portable-math`, the
/// ordinary stores of [`window_dot_f32`]). The same operations per output, so the same bits;
/// the stores are fenced before it returns, so whoever synchronizes with the caller sees them.
///
/// # Panics
/// If `x` has fewer than `out.len() + w.len() - 1` elements (and `out` is not empty).
pub fn window_dot_f32_streamed(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
    if out.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if !crate::portable::portable_math() && w.len() <= MAX_UNROLLED {
        check_lengths("window_dot_f32_streamed", out, x, w);
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the lengths are checked above.
            return unsafe { stream::window_avx512(out, x, w, order) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2; the lengths are checked above.
            return unsafe { stream::window_avx2(out, x, w, order) };
        }
    }
    window_dot_f32(out, x, w, order)
}

/// The streaming variants: [`fixed`]'s operations per output, written in intrinsics so that
/// each vector of outputs is stored with a non-temporal store at an aligned address (the
/// outputs before the first aligned one and after the last whole vector go through
/// [`fixed`]).
#[cfg(target_arch = "x86_64")]
mod stream {
    use super::{fixed, Order};
    use std::arch::x86_64::*;

    /// `f::<K, WX>(out, x, w)` for the tap count and order.
    macro_rules! by_taps {
        ($f:ident($out:ident, $x:ident, $w:ident, $order:ident); $($k:literal)*) => {
            match ($w.len(), $order) {
                $(($k, Order::WX) => $f::<$k, true>($out, $x, $w),
                  ($k, Order::XW) => $f::<$k, false>($out, $x, $w),)*
                (k, _) => unreachable!("{k} taps are not unrolled"),
            }
        };
    }

    macro_rules! streamed {
        ($name:ident, $each:ident, $feature:literal, $lanes:literal, $vec:ty, $set1:ident,
         $zero:ident, $loadu:ident, $mul:ident, $add:ident, $stream:ident) => {
            /// Dispatches on the tap count (at most `MAX_UNROLLED`).
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(out: &mut [f32], x: &[f32], w: &[f32], order: Order) {
                // SAFETY: the caller's contract (`x` holds `out.len() + K - 1` inputs).
                unsafe {
                    by_taps!($each(out, x, w, order); 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
                }
            }

            /// `K` taps: per vector of outputs, `0 + w₀x₀ + w₁x₁ + …` lane by lane (each
            /// product rounded, then added: no fused multiply-add), streamed out.
            #[target_feature(enable = $feature)]
            unsafe fn $each<const K: usize, const WX: bool>(
                out: &mut [f32],
                x: &[f32],
                w: &[f32],
            ) {
                const BYTES: usize = $lanes * std::mem::size_of::<f32>();
                let n = out.len();
                let head = out.as_ptr().align_offset(BYTES).min(n);
                let body = (n - head) / $lanes * $lanes;
                fixed::<K, WX>(&mut out[..head], x, w);
                let wv: [$vec; K] = std::array::from_fn(|k| $set1(w[k]));
                let (op, xp) = (out.as_mut_ptr(), x.as_ptr());
                let mut i = head;
                while i < head + body {
                    let mut acc = $zero();
                    for (k, &wk) in wv.iter().enumerate() {
                        // SAFETY: `i + k + LANES - 1 < n + K - 1 <= x.len()`.
                        let xv = unsafe { $loadu(xp.add(i + k)) };
                        let p = if WX { $mul(wk, xv) } else { $mul(xv, wk) };
                        acc = $add(acc, p);
                    }
                    // SAFETY: `op + i` is aligned to the vector and `i + LANES <= n`.
                    unsafe { $stream(op.add(i), acc) };
                    i += $lanes;
                }
                let rest = head + body;
                fixed::<K, WX>(&mut out[rest..], &x[rest..], w);
                // Non-temporal stores are weakly ordered: fence them before the caller
                // publishes the shard as done.
                _mm_sfence();
            }
        };
    }

    streamed!(
        window_avx512,
        each_avx512,
        "avx512f",
        16,
        __m512,
        _mm512_set1_ps,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_mul_ps,
        _mm512_add_ps,
        _mm512_stream_ps
    );
    streamed!(
        window_avx2,
        each_avx2,
        "avx2",
        8,
        __m256,
        _mm256_set1_ps,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_mul_ps,
        _mm256_add_ps,
        _mm256_stream_ps
    );
}

/// [`window_dot_f32`] for kernels (symbol `flow_window_dot_f32`): `n` outputs at `out`, from
/// `n + k - 1` inputs at `x` and `k` weights at `w`; `order` 0 is [`Order::WX`], anything
/// else [`Order::XW`]. `total` is the number of outputs of the whole tensor these `n` belong
/// to: from [`STREAM_MIN_BYTES`] of them on, the outputs are streamed
/// ([`window_dot_f32_streamed`]).
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
    total: i64,
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
    if usize::try_from(total).unwrap_or(0) >= STREAM_MIN_BYTES / std::mem::size_of::<f32>() {
        window_dot_f32_streamed(out, x, w, order);
    } else {
        window_dot_f32(out, x, w, order);
    }
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

    type Variant<'a> = dyn Fn(&mut [f32], &[f32], &[f32], Order) + 'a;

    fn check(name: &str, f: &Variant<'_>) {
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

    /// `f` writing into an output that starts `shift` elements past a 64-byte boundary, so
    /// that a streaming variant runs its head (unaligned outputs), body and tail.
    fn shifted<'a>(
        f: &'a Variant<'a>,
        shift: usize,
    ) -> impl Fn(&mut [f32], &[f32], &[f32], Order) + 'a {
        move |o, x, w, r| {
            let mut buf = vec![f32::NAN; o.len() + 32];
            let at = buf.as_ptr().align_offset(64) + shift;
            f(&mut buf[at..at + o.len()], x, w, r);
            o.copy_from_slice(&buf[at..at + o.len()]);
        }
    }

    #[test]
    fn every_streaming_variant_gives_the_reference_bits() {
        for shift in [0, 1, 5, 8, 15] {
            let at = |name: &str| format!("{name}, output {shift} past a line");
            check(&at("streamed"), &shifted(&window_dot_f32_streamed, shift));
            #[cfg(target_arch = "x86_64")]
            {
                // The variants themselves take at most `MAX_UNROLLED` taps.
                let direct = |v: unsafe fn(&mut [f32], &[f32], &[f32], Order)| {
                    move |o: &mut [f32], x: &[f32], w: &[f32], r: Order| {
                        if w.len() <= MAX_UNROLLED {
                            // SAFETY: the CPU has the variant's features (checked below), and
                            // `check` passes `o.len() + w.len() - 1` inputs.
                            unsafe { v(o, x, w, r) }
                        } else {
                            window(o, x, w, r)
                        }
                    }
                };
                if std::arch::is_x86_feature_detected!("avx2") {
                    check(
                        &at("avx2, streamed"),
                        &shifted(&direct(stream::window_avx2), shift),
                    );
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    let v = direct(stream::window_avx512);
                    check(&at("avx512f, streamed"), &shifted(&v, shift));
                }
            }
        }
    }

    #[test]
    fn the_symbol_streams_large_outputs_with_the_same_bits() {
        let k = 9;
        let w = inputs(k, 3);
        let n = 1000;
        let x = inputs(n + k - 1, 5);
        let mut want = vec![0.0f32; n];
        window_dot_reference(&mut want, &x, &w, Order::XW);
        let big = (STREAM_MIN_BYTES / 4) as i64;
        for total in [n as i64, big, big * 4] {
            let mut got = vec![f32::NAN; n];
            // SAFETY: `n` outputs, `n + k - 1` inputs, `k` weights.
            unsafe {
                flow_window_dot_f32(
                    got.as_mut_ptr(),
                    x.as_ptr(),
                    w.as_ptr(),
                    n as i64,
                    9,
                    1,
                    total,
                )
            };
            assert_eq!(got.map_bits(), want.map_bits(), "total {total}");
        }
    }

    trait Bits {
        fn map_bits(&self) -> Vec<u32>;
    }

    impl Bits for Vec<f32> {
        fn map_bits(&self) -> Vec<u32> {
            self.iter().map(|v| v.to_bits()).collect()
        }
    }

    #[test]
    fn the_symbol_follows_its_contract() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let w = [0.5f32, -1.0];
        let mut out = [9.0f32; 3];
        // SAFETY: three outputs, four inputs, two weights; a non-positive count does nothing.
        unsafe {
            flow_window_dot_f32(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), 0, 2, 0, 3);
            assert_eq!(out, [9.0; 3]);
            flow_window_dot_f32(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), 3, 2, 0, 3);
            assert_eq!(out, [-1.5, -2.0, -2.5]);
            flow_window_dot_f32(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), 3, 0, 1, 3);
            assert_eq!(out.map(f32::to_bits), [0.0f32.to_bits(); 3]);
        }
    }
}
