//! Compaction (`filter(x, mask)`) and stable partition, in parallel: count the kept elements
//! of each block, take the exclusive scan of the counts (each block's first output
//! position), then let every block write its elements from there. The result is the unique
//! stable one, so it is the same at every thread count; its length is known after the count.
//!
//! A [`Compaction`] is computed once from a mask and applied to any number of tensors (the
//! fields of a record are filtered with the same mask).

use std::ops::Range;

use crate::pool::{blocks, Pool, TaskError};

use super::{map_blocks, Shared, BLOCK};

/// The kept elements of a mask: per block of [`BLOCK`], where its kept elements go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compaction<'a> {
    /// The mask.
    mask: &'a [bool],
    /// The mask's length.
    n: usize,
    /// For each block, how many elements of the earlier blocks are kept.
    starts: Vec<usize>,
    /// How many elements are kept.
    kept: usize,
}

impl<'a> Compaction<'a> {
    /// Counts the `true` elements of `mask`, block by block.
    pub fn new(pool: &Pool, mask: &'a [bool]) -> Result<Compaction<'a>, TaskError> {
        let counts = map_blocks(pool, mask.len(), BLOCK, |r| {
            mask[r].iter().map(|&b| usize::from(b)).sum::<usize>()
        })?;
        let mut starts = Vec::with_capacity(counts.len());
        let mut kept = 0;
        for c in counts {
            starts.push(kept);
            kept += c;
        }
        Ok(Compaction {
            mask,
            n: mask.len(),
            starts,
            kept,
        })
    }

    /// How many elements are kept: the length of a [`Compaction::filter`]'s result.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Writes the elements of `x` whose mask element is `true`, in order, into `out` (of
    /// length [`Compaction::kept`]).
    ///
    /// # Panics
    /// If `x` is not as long as the mask or `out` not as long as the kept elements.
    pub fn filter<T: Copy + Send + Sync>(
        &self,
        pool: &Pool,
        x: &[T],
        out: &mut [T],
    ) -> Result<(), TaskError> {
        let mask = self.mask;
        self.per_block(pool, x, out, self.kept, |b, r, dst| {
            let (m, x) = (&mask[r.clone()], &x[r]);
            // Elements after the last kept one are dropped; up to it every write lands
            // inside this block's output, so the loop can write unconditionally.
            let Some(last) = m.iter().rposition(|&k| k) else {
                return;
            };
            let end = self.starts.get(b + 1).copied().unwrap_or(self.kept);
            // SAFETY: block `b` alone writes its kept elements' positions.
            let o = unsafe { dst.slice(self.starts[b]..end) };
            let mut at = 0;
            for (&v, &k) in x[..=last].iter().zip(&m[..=last]) {
                o[at] = v;
                at += usize::from(k);
            }
        })
    }

    /// Writes the elements of `x` whose mask element is `true`, in order, then the others, in
    /// order, into `out` (as long as `x`): a stable partition. The first
    /// [`Compaction::kept`] elements are the `true` ones.
    ///
    /// # Panics
    /// If `x` or `out` is not as long as the mask.
    pub fn partition<T: Copy + Send + Sync>(
        &self,
        pool: &Pool,
        x: &[T],
        out: &mut [T],
    ) -> Result<(), TaskError> {
        let mask = self.mask;
        self.per_block(pool, x, out, self.n, |b, r, dst| {
            let mut yes = self.starts[b];
            // The `false` elements of earlier blocks: those blocks' elements minus their kept.
            let mut no = self.kept + r.start - self.starts[b];
            for (&v, &k) in x[r.clone()].iter().zip(&mask[r]) {
                let at = if k { yes } else { no };
                // SAFETY: block `b` alone writes the positions of its elements (its kept ones
                // from `starts[b]`, the others from `kept + r.start - starts[b]`).
                unsafe { dst.write(at, v) };
                yes += usize::from(k);
                no += usize::from(!k);
            }
        })
    }

    /// Runs `body(block, its range, out)` for every block, in parallel, after checking that
    /// `x` is as long as the mask and `out` has `out_len` elements.
    fn per_block<T: Copy + Send + Sync>(
        &self,
        pool: &Pool,
        x: &[T],
        out: &mut [T],
        out_len: usize,
        body: impl Fn(usize, Range<usize>, &Shared<T>) + Sync,
    ) -> Result<(), TaskError> {
        assert_eq!(x.len(), self.n, "compaction: input and mask lengths differ");
        assert_eq!(out.len(), out_len, "compaction: output length");
        let ranges: Vec<_> = blocks(self.n, BLOCK).collect();
        let dst = Shared::new(out);
        pool.run(ranges.len(), &|b, _| {
            body(b, ranges[b].clone(), &dst);
            Ok(())
        })
    }
}

/// The elements of `x` whose `mask` element is `true`, in order.
///
/// # Panics
/// If `x` and `mask` differ in length.
pub fn filter<T: Copy + Send + Sync + Default>(
    pool: &Pool,
    x: &[T],
    mask: &[bool],
) -> Result<Vec<T>, TaskError> {
    let c = Compaction::new(pool, mask)?;
    let mut out = vec![T::default(); c.kept()];
    c.filter(pool, x, &mut out)?;
    Ok(out)
}

/// The stable partition of `x` by `mask` (`true` elements first) and the number of `true`
/// elements.
///
/// # Panics
/// If `x` and `mask` differ in length.
pub fn partition<T: Copy + Send + Sync + Default>(
    pool: &Pool,
    x: &[T],
    mask: &[bool],
) -> Result<(Vec<T>, usize), TaskError> {
    let c = Compaction::new(pool, mask)?;
    let mut out = vec![T::default(); x.len()];
    c.partition(pool, x, &mut out)?;
    Ok((out, c.kept()))
}
