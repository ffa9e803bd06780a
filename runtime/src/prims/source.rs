//! The elements a scan, a histogram or a scatter reads: tensors in memory, or a *producer*
//! that computes them block by block (the compiler's kernel of a map fused into the node), so
//! that no tensor of all the elements is ever made.
//!
//! A producer is called on ranges of element positions and writes each element of the range
//! once; the routines call it on blocks of at most [`super::SCAN_BLOCK`] elements (a scan:
//! straight into its output block, scanned there in place) or [`PIECE`] pairs (a histogram, a
//! scatter: into a per-thread, cache-resident scratch buffer), and consume the block before
//! asking for the next. A scatter needs its pairs twice (the winners, then their values) and
//! computes them twice; the producer is a pure function of the positions, so both give the
//! same bits, and a retried task computes its block again from the inputs.
//!
//! Which ranges a producer is asked for: a scan asks for whole rows when a row has at most
//! `SCAN_BLOCK` elements (groups of rows, as its tasks are, of whole units when the producer
//! computes units of several rows: see [`Elements::Produced`]), else for blocks of a row
//! ([`crate::pool::blocks`]`(row_len, SCAN_BLOCK)`, a producer of units of one element); a histogram and a scatter for any range
//! of a 1-D input, and a histogram or a scatter of rows (see
//! [`super::histogram::reduce_by_index_rows`], [`super::scatter::scatter_rows`]) for ranges
//! of whole rows.

use std::cell::RefCell;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ops::Range;

/// The most pairs a histogram or scatter asks a producer for at once: their order of
/// combination does not depend on it, so it is chosen to keep both streams in the L1/L2
/// cache (4 Ki pairs of at most 16 bytes).
pub const PIECE: usize = 1 << 12;

/// A producer of one stream: `fill(lo, hi, out)` writes elements `lo..hi` at `out` (`hi - lo`
/// elements) and returns 0, or a nonzero status (a kernel's error code), which the routine
/// returns as a [`crate::pool::TaskError`] of the task that asked.
pub type Fill<'a, T> = dyn Fn(usize, usize, *mut T) -> i32 + Sync + 'a;

/// A producer of two streams (a histogram's or a scatter's indices and values), computed
/// together: `fill(lo, hi, idx, vals)`.
pub type Fill2<'a, I, T> = dyn Fn(usize, usize, *mut I, *mut T) -> i32 + Sync + 'a;

/// The elements of a scan.
#[derive(Clone, Copy)]
pub enum Elements<'a, T> {
    /// In memory.
    Slice(&'a [T]),
    /// `len` elements computed on demand, in ranges of whole units of `unit` elements (a
    /// compiled producer computes whole rows of its map's outermost axis; 1 for any range).
    Produced {
        len: usize,
        unit: usize,
        fill: &'a Fill<'a, T>,
    },
}

impl<T: Copy> Elements<'_, T> {
    /// How many elements there are.
    pub fn len(&self) -> usize {
        match self {
            Elements::Slice(x) => x.len(),
            Elements::Produced { len, .. } => *len,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The indices and values of a histogram or a scatter.
#[derive(Clone, Copy)]
pub enum Pairs<'a, I, T> {
    /// In memory (of equal lengths).
    Slices(&'a [I], &'a [T]),
    /// `len` pairs computed on demand.
    Produced {
        len: usize,
        fill: &'a Fill2<'a, I, T>,
    },
}

impl<I: Copy, T: Copy> Pairs<'_, I, T> {
    /// How many pairs there are.
    pub fn len(&self) -> usize {
        match self {
            Pairs::Slices(i, _) => i.len(),
            Pairs::Produced { len, .. } => *len,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `f` of the indices and values `r`, in pieces of whole rows of `row` pairs (a producer
    /// computes whole rows of its map; `row` is 1 for a 1-D input), each a sub-slice or the
    /// producer's block in this thread's scratch, with the position of the piece's first
    /// pair; stops at the first producer failure. `r` starts at a multiple of `row`, and a
    /// produced piece holds at most `max(PIECE / row, 1)` rows.
    pub(crate) fn each_rows(
        &self,
        r: Range<usize>,
        row: usize,
        mut f: impl FnMut(usize, &[I], &[T]),
    ) -> Result<(), i32> {
        debug_assert!(row > 0 && r.start.is_multiple_of(row));
        match self {
            Pairs::Slices(idx, vals) => {
                f(r.start, &idx[r.clone()], &vals[r]);
                Ok(())
            }
            Pairs::Produced { fill, .. } => {
                for piece in crate::pool::blocks(r.len(), (PIECE / row).max(1) * row) {
                    let (lo, hi) = (r.start + piece.start, r.start + piece.end);
                    with_scratch::<I, T, _>(hi - lo, hi - lo, |si, sv| {
                        let status =
                            fill(lo, hi, si.as_mut_ptr() as *mut I, sv.as_mut_ptr() as *mut T);
                        if status != 0 {
                            return Err(status);
                        }
                        // SAFETY: the producer wrote every element of both streams.
                        f(lo, unsafe { assume_init(si) }, unsafe { assume_init(sv) });
                        Ok(())
                    })?;
                }
                Ok(())
            }
        }
    }
}

/// The elements, initialized.
///
/// # Safety
/// Every element of `s` was written.
unsafe fn assume_init<T>(s: &mut [MaybeUninit<T>]) -> &[T] {
    // SAFETY: the caller's contract; `MaybeUninit<T>` has `T`'s layout.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const T, s.len()) }
}

thread_local! {
    /// This thread's scratch, in 8-byte words (so any element type of at most 8 bytes fits
    /// aligned); it grows to the largest request and stays.
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// `f` of two scratch buffers of `na` elements of `A` and `nb` of `B` (contents
/// unspecified): this thread's scratch, or fresh memory when it is in use already (a
/// producer that itself runs a routine).
fn with_scratch<A, B, R>(
    na: usize,
    nb: usize,
    f: impl FnOnce(&mut [MaybeUninit<A>], &mut [MaybeUninit<B>]) -> R,
) -> R {
    assert!(
        align_of::<A>() <= 8 && align_of::<B>() <= 8,
        "scratch alignment"
    );
    let wa = (na * size_of::<A>()).div_ceil(8);
    let wb = (nb * size_of::<B>()).div_ceil(8);
    let split = |words: &mut [u64]| {
        let (a, b) = words.split_at_mut(wa);
        // SAFETY: `a` and `b` are disjoint, 8-byte aligned and large enough; any bits are a
        // valid `MaybeUninit`.
        unsafe {
            (
                std::slice::from_raw_parts_mut(a.as_mut_ptr() as *mut MaybeUninit<A>, na),
                std::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut MaybeUninit<B>, nb),
            )
        }
    };
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut words) => {
            if words.len() < wa + wb {
                words.resize(wa + wb, 0);
            }
            let (a, b) = split(&mut words[..wa + wb]);
            f(a, b)
        }
        Err(_) => {
            let mut words = vec![0u64; wa + wb];
            let (a, b) = split(&mut words);
            f(a, b)
        }
    })
}
