//! Histograms: `reduce_by_index(monoid, n_bins, idx, vals)`, the combination of the values
//! that fall into each bin, with any [`Monoid`].
//!
//! **The bracketing** (what fixes the bits of a float histogram): the input is cut into
//! shards of `S = max(HISTOGRAM_SHARD, n_bins)` elements. Shard `s`'s partial for bin `k` is
//! the left fold, from the identity, of the values of the shard's elements whose index is
//! `k`, in index order. Bin `k` is the combination of the shards' partials for `k` in the
//! fixed tree of [`crate::pool::combine_tree`] (shards in order). It depends on the sizes
//! only, never on the thread count; index order is kept everywhere, so the monoid need not be
//! commutative. With an exact monoid (integers, min, max) it is the sequential fold.
//!
//! **Execution:** with few bins (at most `HISTOGRAM_SHARD`) every shard is a task folding
//! into its private bins (they stay in cache); with more, a shard is as long as the bins
//! (so the private bins take at most as much memory as the input) and each shard's bins are
//! split into ranges, one task per range, each reading the shard and folding only the
//! elements of its range — how the bins are split changes who computes a partial, not its
//! value. The partials are then combined in the tree, in parallel over chunks of bins.
//!
//! **Rows** ([`reduce_by_index_rows`]): values of `n` rows of `k` lanes into `n_bins` rows
//! of `k` slots (Flow's `reduce_by_index` of a `[n, k…]` tensor): the shards are
//! `max(HISTOGRAM_SHARD, n_bins)` rows, each with private bins of `k` lanes, and the same
//! tree; each lane is bracketed as the 1-D histogram of its column.
//!
//! **Out-of-range indices** (negative or `>= n_bins`) are ignored, as Futhark does; the
//! routine returns how many there were.

use crate::pool::{blocks, n_blocks, Pool, TaskError};

use std::ops::Range;

use super::source::Pairs;
use super::{Index, Monoid, Shared, HISTOGRAM_SHARD};

/// The bins of one task of the combine step.
const COMBINE_CHUNK: usize = 1 << 12;

/// The fewest bins a range of a many-bins shard has.
const MIN_RANGE: usize = 1 << 12;

/// `bins[k]` = the combination of `vals[i]` over the `i` with `idx[i] == k` (the identity for
/// an empty bin), bracketed as in the module's documentation; `bins.len()` is the number of
/// bins. Returns how many indices were out of range (and ignored).
///
/// # Panics
/// If `idx` and `vals` differ in length.
pub fn reduce_by_index<M: Monoid, I: Index>(
    pool: &Pool,
    m: &M,
    idx: &[I],
    vals: &[M::T],
    bins: &mut [M::T],
) -> Result<usize, TaskError> {
    assert_eq!(
        idx.len(),
        vals.len(),
        "reduce_by_index: idx and vals differ in length"
    );
    reduce_by_index_pairs(pool, m, Pairs::Slices(idx, vals), bins)
}

/// [`reduce_by_index`] of indices and values in memory or computed block by block by a
/// producer (see [`super::source`]): the same bits either way. A shard's pairs are produced
/// in blocks of at most `SCAN_BLOCK` into this thread's scratch (with many bins split into
/// ranges, once per range); a producer's failure is the asking task's [`TaskError`].
pub fn reduce_by_index_pairs<M: Monoid, I: Index>(
    pool: &Pool,
    m: &M,
    pairs: Pairs<'_, I, M::T>,
    bins: &mut [M::T],
) -> Result<usize, TaskError> {
    reduce_by_index_rows(pool, m, 1, pairs, bins)
}

/// A histogram of rows: the pairs are `n` rows of `lanes` (row-major: pair `p` is lane
/// `p % lanes` of row `p / lanes`), each pair with its own index, and `bins` is `n_bins` rows
/// of `lanes` slots: lane `l` of a pair with index `k` folds into slot `k * lanes + l`.
/// The shards are `max(HISTOGRAM_SHARD, n_bins)` *rows* (each shard keeps private bins of
/// `lanes` slots per bin), combined in the fixed tree, so every lane has the bracketing of a
/// 1-D histogram of its column; `lanes = 1` is [`reduce_by_index_pairs`]. A producer is asked
/// for whole rows. Returns how many pairs were ignored (their index out of range).
///
/// # Panics
/// If `lanes` is 0, or the pairs or `bins` are not whole rows.
pub fn reduce_by_index_rows<M: Monoid, I: Index>(
    pool: &Pool,
    m: &M,
    lanes: usize,
    pairs: Pairs<'_, I, M::T>,
    bins: &mut [M::T],
) -> Result<usize, TaskError> {
    assert!(lanes > 0, "reduce_by_index: rows of no lanes");
    let slots = bins.len();
    let n = pairs.len();
    assert!(
        n.is_multiple_of(lanes) && slots.is_multiple_of(lanes),
        "reduce_by_index: {n} pairs and {slots} bins are not rows of {lanes}"
    );
    let n_bins = slots / lanes;
    if n == 0 || n_bins == 0 {
        bins.iter_mut().for_each(|b| *b = m.identity());
        return Ok(n);
    }
    let shard = shard_rows(n_bins) * lanes;
    let shards = n_blocks(n, shard);
    if shards == 1 {
        // One shard: its partials are the bins.
        let mut ignored = [0];
        shard_partials(pool, m, lanes, &pairs, n_bins, 0..1, bins, &mut ignored)?;
        return Ok(ignored[0]);
    }
    let mut partials: Vec<M::T> = vec![m.identity(); shards * slots];
    let mut ignored = vec![0usize; shards];
    shard_partials(
        pool,
        m,
        lanes,
        &pairs,
        n_bins,
        0..shards,
        &mut partials,
        &mut ignored,
    )?;
    combine_shards(pool, m, &partials, shards, bins)?;
    Ok(ignored.iter().sum())
}

/// The rows (of the values' first axis) of one shard of a histogram of `n_bins` bins.
pub fn shard_rows(n_bins: usize) -> usize {
    HISTOGRAM_SHARD.max(n_bins)
}

/// **Some shards' partials** (on MPI ranks: a rank's shards of a histogram): the private bins
/// of shards `part` (of [`shard_rows`]`(n_bins)` rows of `lanes` pairs each) of the whole
/// histogram of `pairs`, each as [`reduce_by_index_rows`] folds it, one after the other in
/// `partials` (`part.len()` rows of `n_bins * lanes` slots), and how many pairs of each shard
/// were ignored (out of range) in `ignored`. [`combine_shards`] of every shard's partials, in
/// shard order, gives the bits of [`reduce_by_index_rows`] at any split into parts.
///
/// # Panics
/// If `partials` or `ignored` is not of that size, or as [`reduce_by_index_rows`].
#[allow(clippy::too_many_arguments)]
pub fn shard_partials<M: Monoid, I: Index>(
    pool: &Pool,
    m: &M,
    lanes: usize,
    pairs: &Pairs<'_, I, M::T>,
    n_bins: usize,
    part: Range<usize>,
    partials: &mut [M::T],
    ignored: &mut [usize],
) -> Result<(), TaskError> {
    assert!(lanes > 0, "reduce_by_index: rows of no lanes");
    let slots = n_bins * lanes;
    assert_eq!(
        partials.len(),
        part.len() * slots,
        "reduce_by_index: partials"
    );
    assert_eq!(ignored.len(), part.len(), "reduce_by_index: counts");
    let n = pairs.len();
    let shard = shard_rows(n_bins) * lanes;
    let shards = part.len();
    if shards == 0 || slots == 0 {
        return Ok(());
    }
    // How many ranges each shard's bins are split into: any number gives the same bits.
    let ranges = if slots <= HISTOGRAM_SHARD {
        1
    } else {
        (2 * pool.threads())
            .div_ceil(shards)
            .min(slots / MIN_RANGE)
            .min(n_bins)
            .max(1)
    };
    let range_len = n_bins.div_ceil(ranges);
    let ranges = n_blocks(n_bins, range_len);
    let parts = Shared::new(partials);
    let counts = Shared::new(ignored);
    pool.run(shards * ranges, &|t, _| {
        let (k, j) = (t / ranges, t % ranges);
        let s = part.start + k;
        let lo = j * range_len;
        let hi = (lo + range_len).min(n_bins);
        // SAFETY: task `t` alone writes bins `lo..hi` of shard `s`'s partials.
        let p = unsafe { parts.slice(k * slots + lo * lanes..k * slots + hi * lanes) };
        p.iter_mut().for_each(|b| *b = m.identity());
        let span = (s * shard).min(n)..((s + 1) * shard).min(n);
        let mut out = 0;
        pairs
            .each_rows(span, lanes, |start, idx, vals| {
                if lanes == 1 && ranges == 1 {
                    for (&i, &v) in idx.iter().zip(vals) {
                        match i.position(n_bins) {
                            Some(k) => p[k] = m.combine(p[k], v),
                            None => out += 1,
                        }
                    }
                    return;
                }
                let mut lane = start % lanes;
                for (&i, &v) in idx.iter().zip(vals) {
                    match i.position(n_bins) {
                        Some(k) if (lo..hi).contains(&k) => {
                            let at = (k - lo) * lanes + lane;
                            p[at] = m.combine(p[at], v)
                        }
                        Some(_) => {}
                        None => out += 1,
                    }
                    lane += 1;
                    if lane == lanes {
                        lane = 0;
                    }
                }
            })
            .map_err(|status| TaskError::code(t, status))?;
        if j == 0 {
            // SAFETY: the range-0 task of shard `s` alone writes its count.
            unsafe { counts.write(k, out) };
        }
        Ok(())
    })
}

/// Combines the `shards` rows of `n_bins` partials into `bins` in the fixed tree of
/// [`crate::pool::combine_tree`]: at level `h = 1, 2, 4, …` row `s` (a multiple of `2h`)
/// becomes `row s ⊕ row s + h` when row `s + h` exists; row 0 is the result. Each task works
/// on a copy of its chunk of bins, so a retried task starts again from the same partials.
pub fn combine_shards<M: Monoid>(
    pool: &Pool,
    m: &M,
    partials: &[M::T],
    shards: usize,
    bins: &mut [M::T],
) -> Result<(), TaskError> {
    let n_bins = bins.len();
    let chunks: Vec<_> = blocks(n_bins, COMBINE_CHUNK).collect();
    let out = Shared::new(bins);
    pool.run(chunks.len(), &|t, _| {
        let c = chunks[t].clone();
        let w = c.len();
        let mut rows: Vec<M::T> = Vec::with_capacity(shards * w);
        for s in 0..shards {
            rows.extend_from_slice(&partials[s * n_bins + c.start..s * n_bins + c.end]);
        }
        let mut h = 1;
        while h < shards {
            for s in (0..shards).step_by(2 * h).filter(|s| s + h < shards) {
                let (a, b) = rows.split_at_mut((s + h) * w);
                for (a, &b) in a[s * w..(s + 1) * w].iter_mut().zip(&b[..w]) {
                    *a = m.combine(*a, b);
                }
            }
            h *= 2;
        }
        // SAFETY: task `t` alone writes chunk `t` of the bins.
        unsafe { out.slice(c) }.copy_from_slice(&rows[..w]);
        Ok(())
    })
}
