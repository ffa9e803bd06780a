//! The fixed blocking of an extent ([`blocks`]) and the fixed combine tree of block partials
//! ([`combine_tree`]): shard plans that depend on the extent, the block size and the number
//! of partials only, never on the thread count, so a blocked reduction is bitwise identical
//! on any number of threads.

use std::ops::Range;

/// The consecutive blocks `[0, block)`, `[block, 2 block)`, … that cover `0..extent`, the last
/// one possibly shorter. They depend only on `extent` and `block`, never on the thread count;
/// an empty extent has no block.
///
/// # Panics
/// If `block` is 0.
pub fn blocks(
    extent: usize,
    block: usize,
) -> impl ExactSizeIterator<Item = Range<usize>> + DoubleEndedIterator + Clone {
    let n = n_blocks(extent, block);
    (0..n).map(move |b| b * block..((b + 1) * block).min(extent))
}

/// How many blocks [`blocks`]`(extent, block)` yields.
///
/// # Panics
/// If `block` is 0.
pub fn n_blocks(extent: usize, block: usize) -> usize {
    assert!(block > 0, "the block size must be positive");
    extent.div_ceil(block)
}

/// Combines `partials` pairwise in a fixed tree that depends only on their number: each level
/// combines elements `2k` and `2k + 1` (an odd last element passes up unchanged) until one is
/// left. `None` when there is no partial.
///
/// With [`blocks`], this makes a blocked reduction independent of the thread count: the block
/// partials can be computed in any order on any thread and are always combined the same way.
/// The tree also keeps rounding error at O(log n) levels rather than O(n).
pub fn combine_tree<T>(mut partials: Vec<T>, mut combine: impl FnMut(T, T) -> T) -> Option<T> {
    while partials.len() > 1 {
        let mut next = Vec::with_capacity(partials.len().div_ceil(2));
        let mut it = partials.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(combine(a, b)),
                None => next.push(a),
            }
        }
        partials = next;
    }
    partials.pop()
}
