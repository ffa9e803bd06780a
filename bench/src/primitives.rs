//! Hand-written Rust + rayon baselines of the parallel primitives of issue 16, written as a
//! performance-minded user would: a blocked parallel inclusive scan (block sums with 16
//! independent lanes, a serial scan of the sums, a sequential scan of each block seeded with
//! its carry), a histogram with per-thread private bins, a parallel gather, a filter that
//! counts per block and writes (branch-free, through a per-thread buffer) at the scanned
//! offsets, a parallel LSD radix sort of `u32`
//! keys (8-bit digits, per-block counts), and a deterministic scatter of rows (a winner per
//! destination row by `fetch_max`, then a copy of each winner's row). The `prims` binary times each against the Flow
//! runtime's routine (`flow_runtime::prims`) in the same run.
//!
//! Parallel loops run on rayon's global pool, whose size the binaries set from `--threads`.

use rayon::prelude::*;

/// The elements of one block of the baselines' blocked loops.
pub const BLOCK: usize = 1 << 16;

/// Inclusive prefix sum of `x` into `y`; `sums` is scratch with one slot per block of
/// [`BLOCK`].
///
/// # Panics
/// If the lengths disagree.
pub fn scan_f32(x: &[f32], y: &mut [f32], sums: &mut [f32]) {
    scan_f32_of(x, y, sums, |v| v)
}

/// Inclusive prefix sum of `f(x[i])` into `y`, `f` computed inside both passes (as a
/// performance-minded user fuses a map into a scan); `sums` as in [`scan_f32`].
///
/// # Panics
/// If the lengths disagree.
pub fn scan_f32_of(x: &[f32], y: &mut [f32], sums: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    assert_eq!(x.len(), y.len());
    assert_eq!(sums.len(), x.len().div_ceil(BLOCK));
    sums.par_iter_mut()
        .zip(x.par_chunks(BLOCK))
        .for_each(|(s, x)| *s = lane_sum(x, &f));
    let mut carry = 0.0;
    for s in sums.iter_mut() {
        let t = *s;
        *s = carry;
        carry += t;
    }
    y.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK))
        .zip(sums.par_iter())
        .for_each(|((y, x), &c)| {
            let mut acc = c;
            for (y, &x) in y.iter_mut().zip(x) {
                acc += f(x);
                *y = acc;
            }
        });
}

/// The sum of `f(x[i])` in 16 independent lanes (vectorised).
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The number of bins of the histogram baseline.
pub const BINS: usize = 256;

/// `bins[idx[i]] += vals[i]` with per-thread private bins over contiguous chunks, combined at
/// the end (out-of-range indices skipped).
///
/// # Panics
/// If `idx` and `vals` differ in length.
pub fn histogram(idx: &[i64], vals: &[f32], threads: usize) -> [f32; BINS] {
    histogram_of(idx, vals, threads, |i| i)
}

/// [`histogram`] at the indices `key(keys[i])`, computed inside the loop (as a
/// performance-minded user fuses the index computation into the histogram).
///
/// # Panics
/// If `keys` and `vals` differ in length.
pub fn histogram_of<K: Copy + Sync>(
    keys: &[K],
    vals: &[f32],
    threads: usize,
    key: impl Fn(K) -> i64 + Sync,
) -> [f32; BINS] {
    assert_eq!(keys.len(), vals.len());
    let chunk = keys.len().div_ceil(threads.max(1)).max(1);
    keys.par_chunks(chunk)
        .zip(vals.par_chunks(chunk))
        .map(|(keys, vals)| {
            let mut bins = [0f32; BINS];
            for (&k, &v) in keys.iter().zip(vals) {
                if let Some(b) = bins.get_mut(key(k) as usize) {
                    *b += v;
                }
            }
            bins
        })
        .reduce(
            || [0f32; BINS],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// The lanes of a row of [`histogram_rows`].
pub const LANES: usize = 4;

/// `bins[idx[r]][l] += vals[r][l]` over rows of [`LANES`] values, with per-thread private
/// bins of `BINS` rows over contiguous chunks of rows, combined at the end (out-of-range
/// indices skipped).
///
/// # Panics
/// If `vals` is not `idx.len()` rows.
pub fn histogram_rows(idx: &[i64], vals: &[f32], threads: usize) -> Vec<[f32; LANES]> {
    assert_eq!(idx.len() * LANES, vals.len());
    let chunk = idx.len().div_ceil(threads.max(1)).max(1);
    idx.par_chunks(chunk)
        .zip(vals.par_chunks(chunk * LANES))
        .map(|(idx, vals)| {
            let mut bins = vec![[0f32; LANES]; BINS];
            for (&k, v) in idx.iter().zip(vals.chunks_exact(LANES)) {
                if let Some(b) = bins.get_mut(k as usize) {
                    for (b, &v) in b.iter_mut().zip(v) {
                        *b += v;
                    }
                }
            }
            bins
        })
        .reduce(
            || vec![[0f32; LANES]; BINS],
            |mut a, b| {
                for (a, b) in a.iter_mut().zip(b) {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                }
                a
            },
        )
}

/// `out` = `dest` with row `r` of `vals` (rows of [`LANES`]) written at row `idx[r]`, the
/// last row in index order winning a destination row written twice (out-of-range indices
/// skipped), as a deterministic parallel scatter is written by hand: `winner` (one slot per
/// destination row) gets the highest position of each row with `fetch_max`, then each
/// destination row copies its winner's row, or `dest`'s.
///
/// # Panics
/// If `vals` is not `idx.len()` rows, or `out`, `dest` and `winner` disagree.
pub fn scatter_rows(
    dest: &[f32],
    idx: &[i64],
    vals: &[f32],
    out: &mut [f32],
    winner: &[std::sync::atomic::AtomicUsize],
) {
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(idx.len() * LANES, vals.len());
    assert!(dest.len() == out.len() && dest.len() == winner.len() * LANES);
    winner.par_iter().for_each(|w| w.store(0, Relaxed));
    idx.par_chunks(BLOCK).enumerate().for_each(|(b, ks)| {
        for (p, &k) in ks.iter().enumerate() {
            if let Some(w) = usize::try_from(k).ok().and_then(|k| winner.get(k)) {
                w.fetch_max(b * BLOCK + p + 1, Relaxed);
            }
        }
    });
    out.par_chunks_mut(BLOCK * LANES)
        .zip(dest.par_chunks(BLOCK * LANES))
        .zip(winner.par_chunks(BLOCK))
        .for_each(|((o, d), w)| {
            for ((o, d), w) in o.chunks_exact_mut(LANES).zip(d.chunks_exact(LANES)).zip(w) {
                match w.load(Relaxed) {
                    0 => o.copy_from_slice(d),
                    r => o.copy_from_slice(&vals[(r - 1) * LANES..r * LANES]),
                }
            }
        });
}

/// The running argmax of `x` (the greatest value so far and its first index) into `v` and
/// `at`, blocked like [`scan_f32`]: each block's argmax in parallel, a serial scan of them,
/// each block's running argmax seeded with its carry.
///
/// # Panics
/// If the lengths disagree.
pub fn running_argmax(x: &[f32], v: &mut [f32], at: &mut [i64]) {
    assert!(x.len() == v.len() && x.len() == at.len());
    let better = |a: (f32, i64), b: (f32, i64)| {
        if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
            b
        } else {
            a
        }
    };
    let mut carries: Vec<(f32, i64)> = x
        .par_chunks(BLOCK)
        .enumerate()
        .map(|(b, x)| {
            x.iter()
                .enumerate()
                .fold((f32::NEG_INFINITY, i64::MAX), |a, (i, &y)| {
                    better(a, (y, (b * BLOCK + i) as i64))
                })
        })
        .collect();
    let mut carry = (f32::NEG_INFINITY, i64::MAX);
    for c in carries.iter_mut() {
        let t = *c;
        *c = carry;
        carry = better(carry, t);
    }
    v.par_chunks_mut(BLOCK)
        .zip(at.par_chunks_mut(BLOCK))
        .zip(x.par_chunks(BLOCK))
        .zip(carries.par_iter())
        .enumerate()
        .for_each(|(b, (((v, at), x), &c))| {
            let mut acc = c;
            for (i, &y) in x.iter().enumerate() {
                acc = better(acc, (y, (b * BLOCK + i) as i64));
                v[i] = acc.0;
                at[i] = acc.1;
            }
        });
}

/// `out[i] = table[idx[i]]`, bounds-checked (an out-of-range index returns its position).
///
/// # Panics
/// If `idx` and `out` differ in length.
pub fn gather(table: &[f32], idx: &[i64], out: &mut [f32]) -> Result<(), usize> {
    assert_eq!(idx.len(), out.len());
    out.par_chunks_mut(BLOCK)
        .zip(idx.par_chunks(BLOCK))
        .enumerate()
        .try_for_each(|(b, (out, idx))| {
            for (p, (o, &i)) in out.iter_mut().zip(idx).enumerate() {
                match table.get(i as usize) {
                    Some(&v) => *o = v,
                    None => return Err(b * BLOCK + p),
                }
            }
            Ok(())
        })
}

/// The elements of `x` whose `mask` element is set, in order, written to the front of `out`;
/// returns how many. `counts` is scratch with one slot per block of [`BLOCK`].
///
/// # Panics
/// If the lengths disagree.
pub fn filter(x: &[f32], mask: &[bool], out: &mut [f32], counts: &mut [usize]) -> usize {
    assert_eq!(x.len(), mask.len());
    assert!(out.len() >= x.len());
    counts
        .par_iter_mut()
        .zip(mask.par_chunks(BLOCK))
        .for_each(|(c, m)| *c = m.iter().filter(|&&k| k).count());
    let mut total = 0;
    for c in counts.iter_mut() {
        let n = *c;
        *c = total;
        total += n;
    }
    let dst = SendPtr(out.as_mut_ptr());
    x.par_chunks(BLOCK)
        .zip(mask.par_chunks(BLOCK))
        .zip(counts.par_iter())
        .for_each_init(
            || vec![0f32; BLOCK],
            |local, ((x, m), &start)| {
                let dst = &dst;
                // Branch-free: write every element, advance past the kept ones; then copy the
                // kept prefix out.
                let mut at = 0;
                for (&v, &k) in x.iter().zip(m) {
                    local[at] = v;
                    at += usize::from(k);
                }
                // SAFETY: block offsets are disjoint and below `total <= out.len()`.
                unsafe { std::ptr::copy_nonoverlapping(local.as_ptr(), dst.0.add(start), at) };
            },
        );
    total
}

/// A pointer rayon tasks share to write disjoint elements.
struct SendPtr<T>(*mut T);
// SAFETY: the users write disjoint elements only.
unsafe impl<T: Send> Sync for SendPtr<T> {}
unsafe impl<T: Send> Send for SendPtr<T> {}

/// Sorts `keys` with a parallel LSD radix sort (four 8-bit digits); `scratch` is as long as
/// `keys`.
///
/// # Panics
/// If the lengths disagree.
pub fn radix_sort_u32(keys: &mut [u32], scratch: &mut [u32]) {
    assert_eq!(keys.len(), scratch.len());
    let n = keys.len();
    let blocks = n.div_ceil(BLOCK);
    let mut counts = vec![[0usize; 256]; blocks];
    for pass in 0..4 {
        let shift = 8 * pass;
        let (src, dst): (&[u32], &mut [u32]) = if pass % 2 == 0 {
            (&*keys, &mut *scratch)
        } else {
            (&*scratch, &mut *keys)
        };
        counts
            .par_iter_mut()
            .zip(src.par_chunks(BLOCK))
            .for_each(|(c, ks)| {
                *c = [0; 256];
                for &k in ks {
                    c[((k >> shift) & 0xff) as usize] += 1;
                }
            });
        let mut at = 0;
        for d in 0..256 {
            for c in counts.iter_mut() {
                let n = c[d];
                c[d] = at;
                at += n;
            }
        }
        let out = SendPtr(dst.as_mut_ptr());
        src.par_chunks(BLOCK)
            .zip(counts.par_iter_mut())
            .for_each(|(ks, next)| {
                let out = &out;
                for &k in ks {
                    let d = ((k >> shift) & 0xff) as usize;
                    // SAFETY: every (block, digit) owns the positions its count gave it.
                    unsafe { out.0.add(next[d]).write(k) };
                    next[d] += 1;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baselines_match_naive_references() {
        let n = 3 * BLOCK + 77;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let mut y = vec![0.0; n];
        let mut sums = vec![0.0; n.div_ceil(BLOCK)];
        scan_f32(&x, &mut y, &mut sums);
        // Small integers: every bracketing is exact.
        let mut acc = 0.0;
        assert!(x.iter().zip(&y).all(|(&v, &s)| {
            acc += v;
            acc == s
        }));
        let idx: Vec<i64> = (0..n as i64).map(|i| (i * 31) % 300 - 20).collect();
        let h = histogram(&idx, &x, 3);
        let mut want = [0f32; BINS];
        for (&i, &v) in idx.iter().zip(&x) {
            if (0..BINS as i64).contains(&i) {
                want[i as usize] += v;
            }
        }
        assert_eq!(h, want);
        let g: Vec<i64> = idx.iter().map(|&i| i.rem_euclid(n as i64)).collect();
        let mut out = vec![0.0; n];
        gather(&x, &g, &mut out).unwrap();
        assert!(g.iter().zip(&out).all(|(&i, &o)| x[i as usize] == o));
        assert_eq!(gather(&x, &idx, &mut out), Err(0));
        let mask: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        let mut out = vec![0.0; n];
        let mut counts = vec![0; n.div_ceil(BLOCK)];
        let kept = filter(&x, &mask, &mut out, &mut counts);
        let want: Vec<f32> = x.iter().copied().filter(|&v| v > 0.0).collect();
        assert_eq!(&out[..kept], &want[..]);
        let mut keys: Vec<u32> = (0..n as u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let mut scratch = vec![0; n];
        radix_sort_u32(&mut keys, &mut scratch);
        assert_eq!(keys, sorted);
        // Rows scattered into 300 rows: the last row of each index wins.
        let rows: Vec<f32> = (0..n * LANES).map(|i| i as f32).collect();
        let dest = vec![-1.0f32; 300 * LANES];
        let winner: Vec<_> = (0..300)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect();
        let mut out = vec![0.0; 300 * LANES];
        scatter_rows(&dest, &idx, &rows, &mut out, &winner);
        let mut want = dest.clone();
        for (r, &k) in idx.iter().enumerate() {
            if (0..300).contains(&k) {
                let k = k as usize;
                want[k * LANES..(k + 1) * LANES].copy_from_slice(&rows[r * LANES..(r + 1) * LANES]);
            }
        }
        assert_eq!(out, want);
    }
}
