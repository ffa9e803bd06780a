//! Inclusive and exclusive scans with any [`Monoid`], over a 1-D buffer or along the last
//! axis of a row-major 2-D buffer (rows independent).
//!
//! **The bracketing** (what fixes a float scan's bits): each row is cut into the blocks
//! [`crate::pool::blocks`]`(row_len, SCAN_BLOCK)`. Within block `b`, `local(i)` is the left
//! fold `x[b0] ⊕ … ⊕ x[i]`. A block's total `t_b` is the left fold, in order, of the folds of
//! its contiguous sub-blocks of `SCAN_BLOCK / SCAN_LANES` elements (so they run as independent
//! chains). The carries are the exclusive scan of the totals in index order: block 0 has no
//! carry, `c_1 = t_0`, `c_{b+1} = c_b ⊕ t_b`. Then
//! - inclusive: `y[i] = local(i)` in block 0 and `c_b ⊕ local(i)` in block `b > 0`;
//! - exclusive: `y[b0] = c_b` (the identity in block 0), and `y[i] = c_b ⊕ local(i - 1)`
//!   (`local(i - 1)` in block 0) for the other elements of the block.
//!
//! None of it depends on the thread count. With exact monoids (integers, min, max, and any
//! monoid whose combine is exact) this is the sequential scan; with float `+` it is a fixed
//! bracketing of it. Commutativity is never used: a non-commutative monoid (e.g. the
//! `(flag, value)` monoid of a segmented scan) is combined in index order.
//!
//! It runs in two passes over blocks in parallel when a row has more than one block (the
//! totals, then the scan seeded with the carries, which reads `x` again rather than `y`, so a
//! retried task recomputes the same values), and in one pass otherwise.

use crate::pool::{blocks, n_blocks, Pool, TaskError};

use std::ops::Range;

use super::source::Elements;
use super::{Monoid, Shared, SCAN_BLOCK, SCAN_LANES};

/// Which scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanKind {
    /// `y[i]` includes `x[i]`.
    Inclusive,
    /// `y[i]` is the combination of the elements before `i` (the identity for the first).
    Exclusive,
}

/// Scans each row of `x` (a row-major buffer of rows of `row_len` elements; a 1-D scan is one
/// row of `x.len()`) into `y`, with the bracketing of the module's documentation.
///
/// # Panics
/// If `x` and `y` differ in length, or `x.len()` is not a multiple of `row_len` (`row_len`
/// may be 0 only when `x` is empty).
pub fn scan<M: Monoid>(
    pool: &Pool,
    m: &M,
    kind: ScanKind,
    row_len: usize,
    x: &[M::T],
    y: &mut [M::T],
) -> Result<(), TaskError> {
    scan_elements(pool, m, kind, row_len, Elements::Slice(x), y)
}

/// [`scan`] of elements in memory or computed block by block by a producer (see
/// [`super::source`]): the same bits either way. A producer of units of several rows is
/// asked for whole units (rows of at most `SCAN_BLOCK` only); with longer rows, a producer
/// computes any range (units of one element). A producer's block is computed into its
/// part of `y` (for its total in the first pass; a row's last block, which needs no total, in
/// the second) and scanned there in place; a retried task of the second pass computes its
/// block again. A producer's failure is the asking task's [`TaskError`] (its status as the
/// code).
///
/// # Panics
/// As [`scan`]; and for a producer's units that are not whole rows, or longer than a row
/// when rows are longer than `SCAN_BLOCK`.
pub fn scan_elements<M: Monoid>(
    pool: &Pool,
    m: &M,
    kind: ScanKind,
    row_len: usize,
    x: Elements<'_, M::T>,
    y: &mut [M::T],
) -> Result<(), TaskError> {
    assert_eq!(x.len(), y.len(), "scan: input and output lengths differ");
    if x.is_empty() {
        return Ok(());
    }
    assert!(
        row_len > 0 && x.len() % row_len == 0,
        "scan: {} elements are not rows of {row_len}",
        x.len()
    );
    let rows = x.len() / row_len;
    // The rows a producer computes at once (one unit), when more than one.
    let unit_rows = match x {
        Elements::Produced { unit, .. } if unit > row_len => {
            assert!(
                row_len <= SCAN_BLOCK
                    && unit.is_multiple_of(row_len)
                    && x.len().is_multiple_of(unit),
                "scan: a producer of units of {unit} elements for rows of {row_len}"
            );
            unit / row_len
        }
        Elements::Produced { unit, .. } => {
            assert!(
                unit <= 1 || (row_len <= SCAN_BLOCK && unit == row_len),
                "scan: a producer of units of {unit} elements for rows of {row_len}"
            );
            1
        }
        Elements::Slice(_) => 1,
    };
    let out = Shared::new(y);
    // Scans `span` of the buffer into `y`, seeded with `carry`: from `x`, or produced into
    // `y` and scanned in place.
    // With `filled`, a producer's elements are in `y` already (pass 1 put them there).
    let scan_span =
        |t: usize, span: Range<usize>, carry: Option<M::T>, y: &mut [M::T], filled: bool| {
            // A row group holds whole rows; a block of a long row is one piece.
            let piece = if span.len() <= row_len {
                span.len()
            } else {
                row_len
            };
            let rows_of = |y: &mut [M::T], x: Option<&[M::T]>| {
                for (k, y) in y.chunks_exact_mut(piece).enumerate() {
                    let xs = x.map(|x| &x[k * piece..(k + 1) * piece]);
                    scan_block(m, kind, carry, xs, y);
                }
            };
            match x {
                Elements::Slice(x) => rows_of(y, Some(&x[span])),
                Elements::Produced { fill, .. } => {
                    if !filled {
                        TaskError::check_status(t, fill(span.start, span.end, y.as_mut_ptr()))?;
                    }
                    rows_of(y, None);
                }
            }
            Ok(())
        };
    if row_len <= SCAN_BLOCK {
        // One block per row: one pass, several rows per task (whole units of a producer;
        // how rows are grouped does not change the bits).
        let per_task = (SCAN_BLOCK / (row_len * unit_rows)).max(1) * unit_rows;
        let groups: Vec<_> = blocks(rows, per_task).collect();
        return pool.run(groups.len(), &|t, _| {
            let r = groups[t].clone();
            let span = r.start * row_len..r.end * row_len;
            // SAFETY: task `t` alone writes the rows of group `t`.
            let y = unsafe { out.slice(span.clone()) };
            scan_span(t, span, None, y, false)
        });
    }
    // Pass 1: every block's total (the last block of a row needs none).
    let per_row = n_blocks(row_len, SCAN_BLOCK);
    let block_range = |t: usize| {
        let (row, b) = (t / per_row, t % per_row);
        let lo = row * row_len + b * SCAN_BLOCK;
        lo..(lo + SCAN_BLOCK).min((row + 1) * row_len)
    };
    let mut totals: Vec<Option<M::T>> = vec![None; rows * per_row];
    let slots = Shared::new(&mut totals);
    pool.run(rows * per_row, &|t, _| {
        if t % per_row + 1 < per_row {
            let r = block_range(t);
            let total = match x {
                Elements::Slice(x) => block_total(m, &x[r]),
                Elements::Produced { fill, .. } => {
                    // Produced into its place in `y`, where pass 2 scans it.
                    // SAFETY: task `t` alone writes block `t`.
                    let y = unsafe { out.slice(r.clone()) };
                    TaskError::check_status(t, fill(r.start, r.end, y.as_mut_ptr()))?;
                    block_total(m, y)
                }
            };
            // SAFETY: task `t` alone writes slot `t`, read after the dispatch.
            unsafe { slots.write(t, Some(total)) };
        }
        Ok(())
    })?;
    // The carries: an exclusive scan of each row's totals, in index order.
    let carries: Vec<Option<M::T>> = totals
        .chunks(per_row)
        .flat_map(|row| carries_of(m, row))
        .collect();
    // Pass 2: every block's scan, seeded with its carry.
    pool.run(rows * per_row, &|t, attempt| {
        let r = block_range(t);
        // SAFETY: task `t` alone writes block `t`.
        let y = unsafe { out.slice(r.clone()) };
        // A produced block is in `y` since pass 1, unless it is a row's last (pass 1 skipped
        // it) or this is a retry (a failed attempt may have scanned part of it in place).
        let filled = t % per_row + 1 < per_row && attempt == 0;
        scan_span(t, r, carries[t], y, filled)
    })
}

/// The carries of one row's blocks from their totals (`None`: a block without one, the
/// row's last): the exclusive scan of the totals in index order — block 0 has none, `c_1 =
/// t_0`, `c_{b+1} = c_b ⊕ t_b`.
pub fn carries_of<M: Monoid>(m: &M, totals: &[Option<M::T>]) -> Vec<Option<M::T>> {
    let mut carry: Option<M::T> = None;
    totals
        .iter()
        .map(|t| {
            let c = carry;
            if let Some(total) = *t {
                carry = Some(carry.map_or(total, |c| m.combine(c, total)));
            }
            c
        })
        .collect()
}

/// **A part of one long row** (on MPI ranks: a rank's blocks of a 1-D scan). `x` is one row
/// of `x.len()` elements, cut into the blocks of [`scan`] ([`SCAN_BLOCK`] elements); this
/// gives the totals of blocks `part` (the row's last block has none: `None`), each as
/// [`scan`] computes it. With every block's total, [`carries_of`] gives the carries, and
/// [`scan_part`] the scan of `part` seeded with them: the bits of [`scan`] of the whole row
/// at any split into parts.
pub fn part_totals<M: Monoid>(
    pool: &Pool,
    m: &M,
    x: &[M::T],
    part: Range<usize>,
) -> Result<Vec<Option<M::T>>, TaskError> {
    let last = n_blocks(x.len(), SCAN_BLOCK);
    let mut totals: Vec<Option<M::T>> = vec![None; part.len()];
    let slots = Shared::new(&mut totals);
    pool.run(part.len(), &|t, _| {
        let b = part.start + t;
        if b + 1 < last {
            let r = b * SCAN_BLOCK..((b + 1) * SCAN_BLOCK).min(x.len());
            // SAFETY: task `t` alone writes slot `t`, read after the dispatch.
            unsafe { slots.write(t, Some(block_total(m, &x[r]))) };
        }
        Ok(())
    })?;
    Ok(totals)
}

/// Scans blocks `part` of the one row `x` into the same blocks of `y` (its other elements are
/// not written), block `part.start + k` seeded with `carries[k]` (see [`part_totals`]).
///
/// # Panics
/// If `x` and `y` differ in length, or `carries` is not one per block of `part`.
pub fn scan_part<M: Monoid>(
    pool: &Pool,
    m: &M,
    kind: ScanKind,
    x: &[M::T],
    y: &mut [M::T],
    part: Range<usize>,
    carries: &[Option<M::T>],
) -> Result<(), TaskError> {
    assert_eq!(x.len(), y.len(), "scan: input and output lengths differ");
    assert_eq!(carries.len(), part.len(), "scan: one carry per block");
    let out = Shared::new(y);
    pool.run(part.len(), &|t, _| {
        let b = part.start + t;
        let r = b * SCAN_BLOCK..((b + 1) * SCAN_BLOCK).min(x.len());
        // SAFETY: task `t` alone writes block `b`.
        let y = unsafe { out.slice(r.clone()) };
        scan_block(m, kind, carries[t], Some(&x[r]), y);
        Ok(())
    })
}

/// The total of one block: the left fold of the folds of its sub-blocks of
/// `SCAN_BLOCK / SCAN_LANES` elements. `x` is not empty.
fn block_total<M: Monoid>(m: &M, x: &[M::T]) -> M::T {
    const SUB: usize = SCAN_BLOCK / SCAN_LANES;
    let fold = |xs: &[M::T]| xs[1..].iter().fold(xs[0], |a, &b| m.combine(a, b));
    if x.len() == SCAN_BLOCK {
        // The sub-blocks' folds as independent chains, in lockstep (the same bits as one
        // after the other).
        let subs: [&[M::T]; SCAN_LANES] = std::array::from_fn(|l| &x[l * SUB..(l + 1) * SUB]);
        let mut acc: [M::T; SCAN_LANES] = std::array::from_fn(|l| subs[l][0]);
        // `j` indexes the second axis of `subs`, which an iterator over `subs` cannot.
        #[allow(clippy::needless_range_loop)]
        for j in 1..SUB {
            for l in 0..SCAN_LANES {
                acc[l] = m.combine(acc[l], subs[l][j]);
            }
        }
        acc[1..].iter().fold(acc[0], |a, &b| m.combine(a, b))
    } else {
        let mut parts = x.chunks(SUB).map(fold);
        let first = parts.next().expect("a block is not empty");
        parts.fold(first, |a, b| m.combine(a, b))
    }
}

/// Scans one block `x` (not empty) into `y`, seeded with `carry` (`None` in a row's first
/// block); `x` is `None` for a block scanned in place (its elements are in `y`).
fn scan_block<M: Monoid>(
    m: &M,
    kind: ScanKind,
    carry: Option<M::T>,
    x: Option<&[M::T]>,
    y: &mut [M::T],
) {
    if let Some(x) = x {
        assert_eq!(x.len(), y.len(), "scan: block lengths");
    }
    let n = y.len();
    let yp = y.as_mut_ptr();
    let xp = x.map_or(yp as *const M::T, |x| x.as_ptr());
    // SAFETY: `i < n`, inside `x` and `y`; element `i` of `x` is read before element `i` of
    // `y` is written, so `x` may be `y` itself.
    let at = |i: usize| unsafe { *xp.add(i) };
    let put = |i: usize, v: M::T| unsafe { *yp.add(i) = v };
    let mut acc = at(0);
    match (kind, carry) {
        (ScanKind::Inclusive, None) => {
            put(0, acc);
            for i in 1..n {
                acc = m.combine(acc, at(i));
                put(i, acc);
            }
        }
        (ScanKind::Inclusive, Some(c)) => {
            put(0, m.combine(c, acc));
            for i in 1..n {
                acc = m.combine(acc, at(i));
                put(i, m.combine(c, acc));
            }
        }
        (ScanKind::Exclusive, None) => {
            put(0, m.identity());
            for i in 1..n {
                let v = at(i);
                put(i, acc);
                acc = m.combine(acc, v);
            }
        }
        (ScanKind::Exclusive, Some(c)) => {
            put(0, c);
            for i in 1..n {
                let v = at(i);
                put(i, m.combine(c, acc));
                acc = m.combine(acc, v);
            }
        }
    }
}

/// The scan of the module's documentation computed on one thread, element by element: the
/// specification the tests compare [`scan`] with.
#[cfg(test)]
pub(crate) fn scan_reference<M: Monoid>(
    m: &M,
    kind: ScanKind,
    row_len: usize,
    x: &[M::T],
) -> Vec<M::T> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(row_len.max(1)) {
        let mut carry: Option<M::T> = None;
        for block in row.chunks(SCAN_BLOCK) {
            let mut acc: Option<M::T> = None;
            for &v in block {
                let seeded = |a: M::T| carry.map_or(a, |c| m.combine(c, a));
                if kind == ScanKind::Exclusive {
                    y.push(match acc {
                        None => carry.unwrap_or(m.identity()),
                        Some(a) => seeded(a),
                    });
                }
                let a = acc.map_or(v, |a| m.combine(a, v));
                acc = Some(a);
                if kind == ScanKind::Inclusive {
                    y.push(seeded(a));
                }
            }
            let total = block_total(m, block);
            carry = Some(carry.map_or(total, |c| m.combine(c, total)));
        }
    }
    y
}
