//! Tests of the packed GEMM: every kernel variant this CPU runs gives the bits of one FMA
//! chain in order along `k` per element, whatever the row split, the edge tiles, the blocks
//! of `k` and `n`, and the operands' strides.

use super::*;

/// The definition: `fma(a[i, k-1], b[k-1, j], … fma(a[i, 0], b[0, j], 0))`.
pub(crate) fn reference<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: Operand<T>,
    b: Operand<T>,
) -> Vec<T> {
    let mut c = vec![T::default(); m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::default();
            for p in 0..k {
                // SAFETY: the tests' operands address their buffers.
                let (x, y) = unsafe {
                    (
                        *a.ptr
                            .offset(i as isize * a.row_stride + p as isize * a.col_stride),
                        *b.ptr
                            .offset(p as isize * b.row_stride + j as isize * b.col_stride),
                    )
                };
                acc = x.fma(y, acc);
            }
            c[i * n + j] = acc;
        }
    }
    c
}

/// Values whose products and sums round (so a change of order or of fusion shows).
fn values(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|x| (((x + seed) * 7919 + seed * 31) % 1013) as f64 / 97.0 - 5.1)
        .collect()
}

pub(crate) fn operand<T>(v: &[T], row_stride: usize, col_stride: usize) -> Operand<T> {
    Operand {
        ptr: v.as_ptr(),
        row_stride: row_stride as isize,
        col_stride: col_stride as isize,
    }
}

fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `m×k·k×n` with `a` and/or `b` stored transposed, through every variant, against the
/// definition.
fn check_f32(m: usize, k: usize, n: usize, a_t: bool, b_t: bool) {
    let a: Vec<f32> = values(m * k, 1).iter().map(|&x| x as f32).collect();
    let b: Vec<f32> = values(k * n, 2).iter().map(|&x| x as f32).collect();
    let pa = if a_t {
        operand(&a, 1, m)
    } else {
        operand(&a, k, 1)
    };
    let pb = if b_t {
        operand(&b, 1, k)
    } else {
        operand(&b, n, 1)
    };
    let want = bits32(&reference(m, k, n, pa, pb));
    for isa in Isa::available() {
        let mut c = vec![f32::NAN; m * n];
        // SAFETY: the operands address exactly the buffers.
        unsafe { gemm(isa, m, k, n, pa, pb, c.as_mut_ptr()) };
        assert_eq!(bits32(&c), want, "{isa:?} {m}x{k}x{n} a_t={a_t} b_t={b_t}");
    }
}

#[test]
fn every_variant_gives_the_fma_chain_in_order() {
    // Edge tiles in both directions, one step of k, several blocks of k (KC = 256).
    check_f32(13, 1, 33, false, false);
    check_f32(25, 600, 70, false, false);
    check_f32(7, 300, 45, true, false);
    check_f32(30, 10, 50, false, true);
    check_f32(12, 257, 32, true, true);
    // More columns than one packed block of `b` (512 `f32` columns).
    check_f32(5, 20, 1100, false, false);
}

#[test]
fn every_variant_gives_the_fma_chain_in_order_f64() {
    for (m, k, n) in [(13, 600, 37), (3, 5, 600), (24, 256, 16)] {
        let a = values(m * k, 3);
        let b = values(k * n, 4);
        let (pa, pb) = (operand(&a, k, 1), operand(&b, 1, k));
        let want: Vec<u64> = reference(m, k, n, pa, pb)
            .iter()
            .map(|x| x.to_bits())
            .collect();
        for isa in Isa::available() {
            let mut c = vec![f64::NAN; m * n];
            // SAFETY: the operands address exactly the buffers.
            unsafe { gemm(isa, m, k, n, pa, pb, c.as_mut_ptr()) };
            let got: Vec<u64> = c.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "{isa:?} {m}x{k}x{n}");
        }
    }
}

/// Flow calls the GEMM once per block of rows (and the interpreter may split otherwise):
/// blocks of 1, 7, 512 and 2048 rows of one 2048-row product give the same bits, in every
/// variant, and the variants agree with each other.
#[test]
fn the_bits_do_not_depend_on_the_row_split_nor_the_variant() {
    let (m, k, n) = (2048, 300, 40);
    let a: Vec<f32> = values(m * k, 5).iter().map(|&x| x as f32).collect();
    let b: Vec<f32> = values(k * n, 6).iter().map(|&x| x as f32).collect();
    let mut first: Option<Vec<u32>> = None;
    for isa in Isa::available() {
        for rows in [1, 7, 512, 2048] {
            let mut c = vec![f32::NAN; m * n];
            for lo in (0..m).step_by(rows) {
                let hi = (lo + rows).min(m);
                // SAFETY: rows lo..hi of `a` and `c`.
                unsafe {
                    gemm(
                        isa,
                        hi - lo,
                        k,
                        n,
                        operand(&a[lo * k..], k, 1),
                        operand(&b, n, 1),
                        c[lo * n..].as_mut_ptr(),
                    )
                };
            }
            match &first {
                None => first = Some(bits32(&c)),
                Some(f) => assert!(*f == bits32(&c), "{isa:?} in blocks of {rows} rows"),
            }
        }
    }
}

#[test]
fn an_empty_sum_is_zero() {
    for isa in Isa::available() {
        let mut c = vec![f32::NAN; 6];
        let none: [f32; 0] = [];
        // SAFETY: k = 0 reads nothing.
        unsafe {
            gemm(
                isa,
                2,
                0,
                3,
                operand(&none, 0, 1),
                operand(&none, 3, 1),
                c.as_mut_ptr(),
            )
        };
        assert_eq!(c, vec![0.0; 6]);
    }
}

/// [`gemm_then`] reports every row once, in order, in blocks of at least [`DONE_ROWS`] rows
/// (the last may be shorter), each when it holds its final value (the whole FMA chain); an
/// epilogue applied there in place (`max(bias + acc, 0)`, W4's) gives the bits of the product
/// followed by the epilogue as a second pass. Shapes: one block of columns and several of
/// `k`; several blocks of columns (1100 > 512 `f32`); fewer rows than a block; `a` transposed.
#[test]
fn gemm_then_hands_over_final_rows_once_in_order() {
    for (m, k, n, a_t) in [
        (200, 300, 70, false),
        (97, 20, 1100, false),
        (5, 129, 64, false),
        (130, 257, 80, true),
        (70, 0, 65, false),
    ] {
        let a: Vec<f32> = values(m * k, 7).iter().map(|&x| x as f32).collect();
        let b: Vec<f32> = values(k * n, 8).iter().map(|&x| x as f32).collect();
        let bias: Vec<f32> = values(n, 9).iter().map(|&x| x as f32).collect();
        let pa = if a_t {
            operand(&a, 1, m)
        } else {
            operand(&a, k, 1)
        };
        let product = reference(m, k, n, pa, operand(&b, n, 1));
        let epilogue = |acc: f32, j: usize| (bias[j] + acc).max(0.0);
        let want: Vec<u32> = product
            .iter()
            .enumerate()
            .map(|(x, &acc)| epilogue(acc, x % n).to_bits())
            .collect();
        for isa in Isa::available() {
            let mut c = vec![f32::NAN; m * n];
            let cp = c.as_mut_ptr();
            let mut next = 0;
            let all = {
                let mut done = |r0: usize, r1: usize| {
                    assert_eq!(r0, next, "{isa:?}: rows in order, each once");
                    assert!(r1 > r0 && r1 <= m);
                    assert!(r1 - r0 >= DONE_ROWS.min(m - r0), "{isa:?}: {r0}..{r1}");
                    next = r1;
                    // SAFETY: rows r0..r1 of the m×n buffer, which the GEMM no longer writes.
                    let rows =
                        unsafe { std::slice::from_raw_parts_mut(cp.add(r0 * n), (r1 - r0) * n) };
                    for (x, v) in rows.iter_mut().enumerate() {
                        let (i, j) = (r0 + x / n, x % n);
                        assert_eq!(
                            v.to_bits(),
                            product[i * n + j].to_bits(),
                            "{isa:?} not final"
                        );
                        *v = epilogue(*v, j);
                    }
                    true
                };
                // SAFETY: the operands address exactly the buffers.
                unsafe { gemm_then(isa, m, k, n, pa, operand(&b, n, 1), cp, &mut done) }
            };
            assert!(all);
            assert_eq!(next, m, "{isa:?}: every row reported");
            assert_eq!(bits32(&c), want, "{isa:?} {m}x{k}x{n}");
        }
    }
}

/// When `done` returns `false` the product stops there and says so.
#[test]
fn gemm_then_stops_when_told() {
    let (m, k, n) = (300, 10, 70);
    let a: Vec<f32> = values(m * k, 1).iter().map(|&x| x as f32).collect();
    let b: Vec<f32> = values(k * n, 2).iter().map(|&x| x as f32).collect();
    for isa in Isa::available() {
        let mut c = vec![0f32; m * n];
        let mut calls = 0;
        let mut stop = |_: usize, _: usize| {
            calls += 1;
            false
        };
        // SAFETY: the operands address exactly the buffers.
        let all = unsafe {
            gemm_then(
                isa,
                m,
                k,
                n,
                operand(&a, k, 1),
                operand(&b, n, 1),
                c.as_mut_ptr(),
                &mut stop,
            )
        };
        assert!(!all);
        assert_eq!(calls, 1, "{isa:?}");
    }
}
