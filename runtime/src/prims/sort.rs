//! Stable sorts: `sort(keys)` and `sort_by_key(keys, vals)`, a parallel LSD radix sort with
//! 8-bit digits (one pass per byte of the key, O(n) each).
//!
//! Each pass counts the digits of every block of [`BLOCK`] elements in parallel, takes the
//! exclusive scan of the counts in (digit, block) order — every block's first position for
//! every digit — and lets every block move its elements there in order. That keeps equal
//! digits in input order, so each pass, and the whole sort, is stable; a stable sort's result
//! is unique, hence the same at every thread count. A pass whose digit is the same for every
//! key moves nothing and is skipped.
//!
//! **The order of floats** is IEEE 754's `totalOrder` (Rust's `total_cmp`): negative NaNs,
//! `-inf`, the negative numbers, `-0.0`, `+0.0`, the positive numbers, `+inf`, positive NaNs
//! (the NaN that arithmetic produces is positive, so NaNs sort last). `-0.0` sorts before
//! `+0.0`. Signed integers sort by value (their sign bit flipped); unsigned ones (`u8`, `u32`,
//! `u64`) are their own radix.

use crate::pool::{blocks, Pool, TaskError};

use super::{map_blocks, Shared, BLOCK};

/// A key type of the radix sort: its bits mapped to an unsigned integer that orders like
/// the key.
pub trait SortKey: Copy + Send + Sync {
    /// The number of 8-bit digits of [`SortKey::radix`].
    const DIGITS: usize;
    /// The key as an unsigned number with the same order.
    fn radix(self) -> u64;
}

impl SortKey for u8 {
    const DIGITS: usize = 1;
    #[inline(always)]
    fn radix(self) -> u64 {
        u64::from(self)
    }
}

impl SortKey for u32 {
    const DIGITS: usize = 4;
    #[inline(always)]
    fn radix(self) -> u64 {
        u64::from(self)
    }
}

impl SortKey for u64 {
    const DIGITS: usize = 8;
    #[inline(always)]
    fn radix(self) -> u64 {
        self
    }
}

impl SortKey for i32 {
    const DIGITS: usize = 4;
    #[inline(always)]
    fn radix(self) -> u64 {
        u64::from((self as u32) ^ (1 << 31))
    }
}

impl SortKey for i64 {
    const DIGITS: usize = 8;
    #[inline(always)]
    fn radix(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
}

impl SortKey for f32 {
    const DIGITS: usize = 4;
    #[inline(always)]
    fn radix(self) -> u64 {
        let b = self.to_bits();
        // Negative: flip every bit (larger magnitudes first); positive: set the sign bit.
        let mask = ((b as i32 >> 31) as u32) | (1 << 31);
        u64::from(b ^ mask)
    }
}

impl SortKey for f64 {
    const DIGITS: usize = 8;
    #[inline(always)]
    fn radix(self) -> u64 {
        let b = self.to_bits();
        let mask = ((b as i64 >> 63) as u64) | (1 << 63);
        b ^ mask
    }
}

/// Sorts `keys` in ascending order (floats in total order, see the module's documentation).
pub fn sort<K: SortKey>(pool: &Pool, keys: &mut [K]) -> Result<(), TaskError> {
    let mut none = vec![(); keys.len()];
    sort_by_key(pool, keys, &mut none)
}

/// Sorts `keys` in ascending order and moves `vals` with them, stably: elements with equal
/// keys keep their order.
///
/// # Panics
/// If `keys` and `vals` differ in length.
pub fn sort_by_key<K: SortKey, V: Copy + Send + Sync>(
    pool: &Pool,
    keys: &mut [K],
    vals: &mut [V],
) -> Result<(), TaskError> {
    assert_eq!(
        keys.len(),
        vals.len(),
        "sort_by_key: keys and vals differ in length"
    );
    let n = keys.len();
    if n < 2 {
        return Ok(());
    }
    let mut keys2 = keys.to_vec();
    let mut vals2 = vals.to_vec();
    // `in_first`: whether the current data is in `keys`/`vals` (else in the copies).
    let mut in_first = true;
    for digit in 0..K::DIGITS {
        let shift = 8 * digit;
        let moved = if in_first {
            pass(pool, shift, keys, vals, &mut keys2, &mut vals2)?
        } else {
            pass(pool, shift, &keys2, &vals2, keys, vals)?
        };
        in_first ^= moved;
    }
    if !in_first {
        keys.copy_from_slice(&keys2);
        vals.copy_from_slice(&vals2);
    }
    Ok(())
}

/// One stable counting pass on the digit at bit `shift`, from `(ks, vs)` into `(kd, vd)`.
/// Returns `false` (and moves nothing) when every key has the same digit.
fn pass<K: SortKey, V: Copy + Send + Sync>(
    pool: &Pool,
    shift: usize,
    ks: &[K],
    vs: &[V],
    kd: &mut [K],
    vd: &mut [V],
) -> Result<bool, TaskError> {
    let n = ks.len();
    let digit = |k: K| ((k.radix() >> shift) & 0xff) as usize;
    let counts = map_blocks(pool, n, BLOCK, |r| {
        let mut c = vec![0usize; 256];
        for &k in &ks[r] {
            c[digit(k)] += 1;
        }
        c
    })?;
    let d0 = digit(ks[0]);
    if counts.iter().map(|c| c[d0]).sum::<usize>() == n {
        return Ok(false);
    }
    // starts[b][d]: where block b's first element with digit d goes.
    let mut starts = vec![vec![0usize; 256]; counts.len()];
    let mut at = 0;
    for d in 0..256 {
        for (b, c) in counts.iter().enumerate() {
            starts[b][d] = at;
            at += c[d];
        }
    }
    let ranges: Vec<_> = blocks(n, BLOCK).collect();
    let (kout, vout) = (Shared::new(kd), Shared::new(vd));
    pool.run(ranges.len(), &|b, _| {
        let mut next = starts[b].clone();
        let r = ranges[b].clone();
        for (&k, &v) in ks[r.clone()].iter().zip(&vs[r]) {
            let d = digit(k);
            // SAFETY: block `b` alone writes positions `starts[b][d]..` for its `counts[b][d]`
            // elements of digit `d`.
            unsafe {
                kout.write(next[d], k);
                vout.write(next[d], v);
            }
            next[d] += 1;
        }
        Ok(())
    })?;
    Ok(true)
}
