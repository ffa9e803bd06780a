//! Scatter (write at run-time indices) and gather (read at run-time indices).
//!
//! **Scatter's rule for duplicates:** when several elements have the same index, the last in
//! index order wins (the one at the highest position). The winner of each destination is a
//! maximum of positions, found with atomic `fetch_max` (commutative, so the order in which
//! threads see the writes does not matter), then every destination reads its winner's value:
//! the result is the same at every thread count. Out-of-range indices (negative or past the
//! destination) are ignored, as in [`super::histogram`], and counted. A scatter of rows
//! ([`scatter_rows`]) has a winner per slot of the destination's rows, by the same rule.
//!
//! **Gather's bounds:** every index is checked; the first out-of-range one (the lowest
//! position, whatever the thread count) is returned as an [`IndexError`] with its value and
//! the table's shape. Nothing is ever read out of bounds and no index is clamped.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::pool::{blocks, Pool, TaskError};

use super::source::Pairs;
use super::{map_blocks, GatherError, Index, IndexError, Shared, BLOCK};

/// `dest[idx[i]] = vals[i]` for every `i` whose index is in range; among elements with the
/// same index the last (highest `i`) wins. Other elements of `dest` keep their values.
/// Returns how many indices were out of range (and ignored).
///
/// # Panics
/// If `idx` and `vals` differ in length.
pub fn scatter<T: Copy + Send + Sync, I: Index>(
    pool: &Pool,
    dest: &mut [T],
    idx: &[I],
    vals: &[T],
) -> Result<usize, TaskError> {
    assert_eq!(
        idx.len(),
        vals.len(),
        "scatter: idx and vals differ in length"
    );
    scatter_pairs(pool, dest, Pairs::Slices(idx, vals))
}

/// [`scatter`] of indices and values in memory or computed block by block by a producer
/// (see [`super::source`]): the same result either way. With a producer, the pairs are
/// produced twice, in blocks into this thread's scratch: once for the winners, once to write
/// each winner's value at its index; a producer's failure is the asking task's
/// [`TaskError`].
pub fn scatter_pairs<T: Copy + Send + Sync, I: Index>(
    pool: &Pool,
    dest: &mut [T],
    pairs: Pairs<'_, I, T>,
) -> Result<usize, TaskError> {
    scatter_rows(pool, dest, 1, false, pairs)
}

/// A scatter of rows (Flow's `scatter` into a `[n, k…]` destination): the pairs are rows of
/// `lanes` (row-major: pair `p` is lane `p % lanes` of its row), each pair with its own
/// index, and `dest` is rows of `lanes` slots; a pair with index `k` writes slot
/// `k * lanes + p % lanes`. Each slot's winner is the last pair in index order writing it
/// (the highest position: a maximum, the same at every thread count), as in
/// [`scatter_pairs`], which is `lanes = 1`; an index outside `dest`'s rows is ignored and
/// counted. A producer is asked for whole rows. Returns how many pairs were ignored.
///
/// With `by_row`, the caller states that every pair of a row has the same index (the
/// compiler knows it when the index reads along the first axis only): only each row's
/// first index is read, and one winner is kept per destination row (the last row in index
/// order with its index, the winner of each of its slots by the rule above) — the same
/// result with a `lanes`-th of the atomics, and whole rows copied.
///
/// # Panics
/// If `lanes` is 0, or the pairs or `dest` are not whole rows.
pub fn scatter_rows<T: Copy + Send + Sync, I: Index>(
    pool: &Pool,
    dest: &mut [T],
    lanes: usize,
    by_row: bool,
    pairs: Pairs<'_, I, T>,
) -> Result<usize, TaskError> {
    assert!(lanes > 0, "scatter: rows of no lanes");
    let (n, n_dest) = (pairs.len(), dest.len());
    assert!(
        n.is_multiple_of(lanes) && n_dest.is_multiple_of(lanes),
        "scatter: {n} pairs and {n_dest} destination slots are not rows of {lanes}"
    );
    let n_rows = n_dest / lanes;
    // The pairs one winner stands for: a row's (`by_row`) or one.
    let width = if by_row { lanes } else { 1 };
    // winner[w] = 1 + the highest position (of a pair, or of a row with `by_row`) writing
    // the slot or row `w`, or 0.
    let winner = zeroed_atomics(n_dest / width);
    // Tasks of whole rows, about `BLOCK` pairs each.
    let ranges: Vec<_> = blocks(n / lanes, (BLOCK / lanes).max(1))
        .map(|r| r.start * lanes..r.end * lanes)
        .collect();
    let mut ignored = vec![0usize; ranges.len()];
    let counts = Shared::new(&mut ignored);
    pool.run(ranges.len(), &|t, _| {
        let mut out = 0usize;
        pairs
            .each_rows(ranges[t].clone(), lanes, |start, idx, _| {
                if by_row {
                    for (r, &i) in idx.iter().step_by(lanes).enumerate() {
                        match i.position(n_rows) {
                            Some(k) => {
                                winner[k].fetch_max(start / lanes + r + 1, Ordering::Relaxed);
                            }
                            None => out += lanes,
                        }
                    }
                    return;
                }
                // Pieces are whole rows: the first pair of each is lane 0.
                let mut lane = 0;
                for (p, &i) in idx.iter().enumerate() {
                    match i.position(n_rows) {
                        Some(k) => {
                            winner[k * lanes + lane].fetch_max(start + p + 1, Ordering::Relaxed);
                        }
                        None => out += 1,
                    }
                    lane += 1;
                    if lane == lanes {
                        lane = 0;
                    }
                }
            })
            .map_err(|status| TaskError::code(t, status))?;
        // SAFETY: task `t` alone writes count `t`, read after the dispatch.
        unsafe { counts.write(t, out) };
        Ok(())
    })?;
    let out = Shared::new(dest);
    match pairs {
        Pairs::Slices(_, vals) => {
            // Each destination chunk (of whole winners) reads its winners' values.
            let chunks: Vec<_> = blocks(winner.len(), (BLOCK / width).max(1)).collect();
            pool.run(chunks.len(), &|t, _| {
                let c = chunks[t].clone();
                // SAFETY: task `t` alone writes chunk `t` of the destination.
                let d = unsafe { out.slice(c.start * width..c.end * width) };
                for (d, w) in d.chunks_exact_mut(width).zip(&winner[c]) {
                    let w = w.load(Ordering::Relaxed);
                    if w > 0 {
                        d.copy_from_slice(&vals[(w - 1) * width..w * width]);
                    }
                }
                Ok(())
            })?;
        }
        Pairs::Produced { .. } => {
            // Each block of pairs writes the values of the winners among its pairs.
            pool.run(ranges.len(), &|t, _| {
                pairs
                    .each_rows(ranges[t].clone(), lanes, |start, idx, vals| {
                        if by_row {
                            let rows = idx.iter().step_by(lanes).zip(vals.chunks_exact(lanes));
                            for (r, (&i, v)) in rows.enumerate() {
                                if let Some(k) = i.position(n_rows) {
                                    if winner[k].load(Ordering::Relaxed) == start / lanes + r + 1 {
                                        // SAFETY: only the winner of row `k` writes it.
                                        unsafe { out.slice(k * lanes..(k + 1) * lanes) }
                                            .copy_from_slice(v);
                                    }
                                }
                            }
                            return;
                        }
                        let mut lane = 0;
                        for (p, (&i, &v)) in idx.iter().zip(vals).enumerate() {
                            if let Some(k) = i.position(n_rows) {
                                let s = k * lanes + lane;
                                if winner[s].load(Ordering::Relaxed) == start + p + 1 {
                                    // SAFETY: only the winner of slot `s` writes it.
                                    unsafe { out.write(s, v) };
                                }
                            }
                            lane += 1;
                            if lane == lanes {
                                lane = 0;
                            }
                        }
                    })
                    .map_err(|status| TaskError::code(t, status))
            })?;
        }
    }
    Ok(ignored.iter().sum())
}

/// `n` atomics of value 0, from zeroed memory (the allocator's untouched zero pages: no
/// pass over them before the routine's own, parallel, first touch).
fn zeroed_atomics(n: usize) -> Vec<AtomicUsize> {
    let mut v = std::mem::ManuallyDrop::new(vec![0usize; n]);
    // SAFETY: `AtomicUsize` has the size, alignment and bit validity of `usize`, so the
    // allocation is a valid `Vec<AtomicUsize>` of the same length and capacity.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut AtomicUsize, v.len(), v.capacity()) }
}

/// `out[p] = table[idx[p]]`: a gather of rows of `table`, a row-major tensor of shape `shape`
/// indexed along its first axis (a 1-D table's rows are its elements), so `out` holds
/// `idx.len()` rows. An out-of-range index is an error naming the lowest such position.
///
/// # Panics
/// If `shape` is empty, `table.len()` is not the product of `shape`, or `out.len()` is not
/// `idx.len()` rows.
pub fn gather<T: Copy + Send + Sync, I: Index>(
    pool: &Pool,
    table: &[T],
    shape: &[usize],
    idx: &[I],
    out: &mut [T],
) -> Result<(), GatherError> {
    assert!(!shape.is_empty(), "gather: a table has at least one axis");
    let rows = shape[0];
    let row_len: usize = shape[1..].iter().product();
    assert_eq!(
        table.len(),
        rows * row_len,
        "gather: table and shape disagree"
    );
    assert_eq!(out.len(), idx.len() * row_len, "gather: output length");
    let dst = Shared::new(out);
    let per_task = (BLOCK / row_len.max(1)).max(1);
    let bad = map_blocks(pool, idx.len(), per_task, |r| {
        // SAFETY: this block alone writes rows `r` of the output.
        let o = unsafe { dst.slice(r.start * row_len..r.end * row_len) };
        if row_len == 0 {
            // Rows of no element: nothing to copy, but every index is still checked.
            if let Some(p) = idx[r.clone()]
                .iter()
                .position(|i| i.position(rows).is_none())
            {
                return Some(r.start + p);
            }
        } else if row_len == 1 {
            for (p, (o, &i)) in o.iter_mut().zip(&idx[r.clone()]).enumerate() {
                match i.position(rows) {
                    Some(k) => *o = table[k],
                    None => return Some(r.start + p),
                }
            }
        } else {
            for (p, (o, &i)) in o
                .chunks_exact_mut(row_len.max(1))
                .zip(&idx[r.clone()])
                .enumerate()
            {
                match i.position(rows) {
                    Some(k) => o.copy_from_slice(&table[k * row_len..(k + 1) * row_len]),
                    None => return Some(r.start + p),
                }
            }
        }
        None
    })?;
    match bad.into_iter().flatten().next() {
        Some(p) => Err(GatherError::Index(IndexError {
            index: idx[p].value(),
            position: p,
            shape: shape.to_vec(),
        })),
        None => Ok(()),
    }
}
