//! Deterministic parallel primitives on the worker [`Pool`]: scans, histograms
//! (`reduce_by_index`), scatter, gather, compaction and partition, and stable radix sorts.
//!
//! Both backends of the compiler call these routines (as both call [`crate::gemm`] for
//! contractions), so their results agree bit for bit. Every routine's result depends only on
//! its inputs and on fixed constants of this module, never on the thread count or on
//! scheduling:
//! - a scan is blocked with the fixed [`SCAN_BLOCK`] (per-block fold, exclusive scan of the
//!   block totals in index order, per-block scan seeded with the carry) — associativity is
//!   the law that makes it shardable (see [`scan`]);
//! - a histogram folds fixed shards of the input into private bins and combines the shards'
//!   bins in the fixed tree of [`crate::pool::combine_tree`] — associativity, with index order
//!   kept, so commutativity is not needed (see [`histogram`]);
//! - scatter resolves duplicates by the last-writer rule (the highest position wins), which
//!   is a maximum and so does not depend on the order threads see the writes (see
//!   [`scatter`]);
//! - compaction, partition and the radix sort place each element at a position given by an
//!   exclusive scan of per-block counts: their results are permutations fixed by the input
//!   alone (see [`compact`] and [`sort`]).
//!
//! **Out-of-range indices:** a histogram and a scatter *ignore* an element whose index is
//! outside the destination (as Futhark does: an index of -1 is the idiom for "drop this
//! one") and return how many they ignored; a gather reports the first out-of-range index as
//! an [`IndexError`] (the index, its position and the table's shape) and writes nothing the
//! caller may use.
//!
//! Length mismatches between arguments are bugs of the caller (the compiler checked the
//! shapes): they panic with a message, like slice indexing. A task that panics (a user
//! monoid's callback) is caught by the pool and returned as a [`TaskError`]. Every task
//! writes memory no other task writes and reads only memory no task of its dispatch writes,
//! so the pool's retries re-run it safely.

pub mod compact;
pub mod histogram;
pub mod scan;
pub mod scatter;
pub mod sort;
pub mod source;
#[cfg(test)]
mod tests;

use std::fmt;
use std::marker::PhantomData;

use crate::pool::{Pool, TaskError};

/// The elements of one block of a scan: a constant, so the bracketing of a float scan (and
/// thus its bits) is the same at every thread count.
pub const SCAN_BLOCK: usize = 1 << 16;

/// The number of contiguous sub-blocks whose folds make a full scan block's total (they are
/// folded as independent chains, which hides the combine's latency).
pub const SCAN_LANES: usize = 8;

/// The elements of one shard of a histogram with at most [`HISTOGRAM_SHARD`] bins (with more
/// bins a shard has `n_bins` elements, so the shards' private bins never take more memory than
/// the input).
pub const HISTOGRAM_SHARD: usize = 1 << 16;

/// The elements of one block of the routines whose result does not depend on any blocking
/// (gather, scatter, compaction, sort): only the task size.
pub const BLOCK: usize = 1 << 16;

/// A monoid: an associative `combine` with an `identity`. Commutativity is never assumed:
/// every routine combines in index order.
///
/// The built-in monoids ([`Sum`], [`Prod`], [`Min`], [`Max`], [`Or`], [`And`]) are
/// monomorphised (and their loops vectorised where the order allows); a user monoid is an
/// [`FnMonoid`], whose combine is a callback (an interpreter closure, or any function
/// wrapped in one), over any `Copy` state, or a [`RecordMonoid`], whose combine is a compiled
/// `extern "C"` function over records of 64-bit words — e.g. a `[u64; K]` holding the bits of
/// a record's `K` scalar fields, packed from and unpacked to one tensor per field with
/// [`pack_fields`] and [`unpack_fields`].
pub trait Monoid: Sync {
    /// The state.
    type T: Copy + Send + Sync;
    /// The identity element.
    fn identity(&self) -> Self::T;
    /// The associative operation.
    fn combine(&self, a: Self::T, b: Self::T) -> Self::T;
}

/// A user monoid: an identity and a combine callback.
pub struct FnMonoid<'a, T> {
    /// The identity element.
    pub identity: T,
    /// The operation; it must be associative for the results to mean anything, but the
    /// routines stay deterministic even if it is not.
    pub combine: &'a (dyn Fn(T, T) -> T + Sync),
}

impl<T: Copy + Send + Sync> Monoid for FnMonoid<'_, T> {
    type T = T;
    fn identity(&self) -> T {
        self.identity
    }
    fn combine(&self, a: T, b: T) -> T {
        (self.combine)(a, b)
    }
}

/// The C signature of a compiled combine over records of `K` 64-bit words (the layout of
/// [`pack_fields`]): reads `K` words at `a` and at `b`, writes `K` words at `out`.
pub type RecordCombineFn = unsafe extern "C" fn(a: *const u64, b: *const u64, out: *mut u64);

/// A user monoid over records of `K` fields whose combine is a compiled function (the JIT's
/// kernel of the monoid's `combine`), so no closure is needed between the routines and
/// generated code.
#[derive(Clone, Copy, Debug)]
pub struct RecordMonoid<const K: usize> {
    identity: [u64; K],
    combine: RecordCombineFn,
}

impl<const K: usize> RecordMonoid<K> {
    /// The monoid with this identity and combine.
    ///
    /// # Safety
    /// `combine` must read `K` words from each of its first two pointers, write `K` words
    /// to the third and nothing else, be callable from any thread, and not unwind.
    pub unsafe fn new(identity: [u64; K], combine: RecordCombineFn) -> RecordMonoid<K> {
        RecordMonoid { identity, combine }
    }
}

impl<const K: usize> Monoid for RecordMonoid<K> {
    type T = [u64; K];
    fn identity(&self) -> [u64; K] {
        self.identity
    }
    fn combine(&self, a: [u64; K], b: [u64; K]) -> [u64; K] {
        let mut out = [0u64; K];
        // SAFETY: `new`'s contract; the three arrays have `K` words each.
        unsafe { (self.combine)(a.as_ptr(), b.as_ptr(), out.as_mut_ptr()) };
        out
    }
}

/// Defines a built-in monoid type over the listed element types.
macro_rules! builtin_monoid {
    ($(#[$doc:meta])* $name:ident; $($t:ty => $id:expr, |$a:ident, $b:ident| $op:expr;)*) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name<T>(PhantomData<T>);

        impl<T> $name<T> {
            /// The monoid.
            pub const fn new() -> Self {
                $name(PhantomData)
            }
        }

        $(impl Monoid for $name<$t> {
            type T = $t;
            #[inline(always)]
            fn identity(&self) -> $t {
                $id
            }
            #[inline(always)]
            fn combine(&self, $a: $t, $b: $t) -> $t {
                $op
            }
        })*
    };
}

builtin_monoid!(
    /// `+` with identity 0; integers wrap, as Flow's `+` does.
    Sum;
    f32 => 0.0, |a, b| a + b;
    f64 => 0.0, |a, b| a + b;
    i32 => 0, |a, b| a.wrapping_add(b);
    i64 => 0, |a, b| a.wrapping_add(b);
    u8 => 0, |a, b| a.wrapping_add(b);
    u32 => 0, |a, b| a.wrapping_add(b);
    u64 => 0, |a, b| a.wrapping_add(b);
);
builtin_monoid!(
    /// `*` with identity 1; integers wrap.
    Prod;
    f32 => 1.0, |a, b| a * b;
    f64 => 1.0, |a, b| a * b;
    i32 => 1, |a, b| a.wrapping_mul(b);
    i64 => 1, |a, b| a.wrapping_mul(b);
    u8 => 1, |a, b| a.wrapping_mul(b);
    u32 => 1, |a, b| a.wrapping_mul(b);
    u64 => 1, |a, b| a.wrapping_mul(b);
);
builtin_monoid!(
    /// `max` with identity `-inf` (integers: their minimum); floats follow IEEE 754-2019
    /// `maximum` as Flow's `max` does: NaN if either operand is NaN, and `-0 < +0`.
    Max;
    f32 => f32::NEG_INFINITY, |a, b| fmax(a, b);
    f64 => f64::NEG_INFINITY, |a, b| fmax(a, b);
    i32 => i32::MIN, |a, b| a.max(b);
    i64 => i64::MIN, |a, b| a.max(b);
    u8 => 0, |a, b| a.max(b);
    u32 => 0, |a, b| a.max(b);
    u64 => 0, |a, b| a.max(b);
);
builtin_monoid!(
    /// `min` with identity `inf` (integers: their maximum); floats follow IEEE 754-2019
    /// `minimum`: NaN if either operand is NaN, and `-0 < +0`.
    Min;
    f32 => f32::INFINITY, |a, b| fmin(a, b);
    f64 => f64::INFINITY, |a, b| fmin(a, b);
    i32 => i32::MAX, |a, b| a.min(b);
    i64 => i64::MAX, |a, b| a.min(b);
    u8 => u8::MAX, |a, b| a.min(b);
    u32 => u32::MAX, |a, b| a.min(b);
    u64 => u64::MAX, |a, b| a.min(b);
);
builtin_monoid!(
    /// `||` with identity `false`.
    Or;
    bool => false, |a, b| a | b;
);
builtin_monoid!(
    /// `&&` with identity `true`.
    And;
    bool => true, |a, b| a & b;
);

/// A float type for [`fmax`] and [`fmin`].
trait Float: Copy + PartialOrd {
    const NAN: Self;
    fn is_nan(self) -> bool;
    fn is_sign_negative(self) -> bool;
}

/// Implements [`Float`] for the float types.
macro_rules! float_impl {
    ($($t:ident),*) => {$(
        impl Float for $t {
            const NAN: $t = $t::NAN;
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            fn is_sign_negative(self) -> bool {
                $t::is_sign_negative(self)
            }
        }
    )*};
}

float_impl!(f32, f64);

/// IEEE 754-2019 `maximum`: NaN if either operand is NaN, and `-0 < +0`.
#[inline(always)]
fn fmax<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::NAN
    } else if a > b || (a == b && !a.is_sign_negative()) {
        a
    } else {
        b
    }
}

/// IEEE 754-2019 `minimum`: NaN if either operand is NaN, and `-0 < +0`.
#[inline(always)]
fn fmin<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::NAN
    } else if a < b || (a == b && a.is_sign_negative()) {
        a
    } else {
        b
    }
}

/// An index read at run time (Flow's `i64`, or `i32`/`u32`/`u64`/`usize`).
pub trait Index: Copy + Send + Sync {
    /// The index as a position below `extent`, or `None` when it is out of range.
    fn position(self, extent: usize) -> Option<usize>;
    /// The index as a number, for messages.
    fn value(self) -> i128;
}

/// Implements [`Index`] for integer types: widened to 64 bits (signed ones sign-extended),
/// a negative index reads as a huge unsigned one, so one comparison checks both ends.
macro_rules! index_impl {
    ($($t:ty => $wide:ty),*) => {$(
        impl Index for $t {
            #[inline(always)]
            fn position(self, extent: usize) -> Option<usize> {
                let p = self as $wide as u64;
                (p < extent as u64).then_some(p as usize)
            }
            fn value(self) -> i128 {
                self as i128
            }
        }
    )*};
}

index_impl!(i32 => i64, i64 => i64, u32 => u64, u64 => u64, usize => u64);

/// A gather read an index outside its table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexError {
    /// The index that was read.
    pub index: i128,
    /// Where in the index tensor it was (its linear position).
    pub position: usize,
    /// The shape of the table that was indexed (its first axis is the one indexed).
    pub shape: Vec<usize>,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "index {} (at position {}) is out of bounds for a table of shape [{}]",
            self.index,
            self.position,
            self.shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl std::error::Error for IndexError {}

/// Why a gather failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatherError {
    /// An index was out of range (the one at the lowest position).
    Index(IndexError),
    /// A task failed (see [`TaskError`]).
    Task(TaskError),
}

impl fmt::Display for GatherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatherError::Index(e) => e.fmt(f),
            GatherError::Task(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for GatherError {}

impl From<TaskError> for GatherError {
    fn from(e: TaskError) -> GatherError {
        GatherError::Task(e)
    }
}

/// One tensor of a record's field, for [`pack_fields`].
#[derive(Clone, Copy, Debug)]
pub enum Column<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    Bool(&'a [bool]),
    U8(&'a [u8]),
    U32(&'a [u32]),
    U64(&'a [u64]),
}

/// One output tensor of a record's field, for [`unpack_fields`].
#[derive(Debug)]
pub enum ColumnMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    I32(&'a mut [i32]),
    I64(&'a mut [i64]),
    Bool(&'a mut [bool]),
    U8(&'a mut [u8]),
    U32(&'a mut [u32]),
    U64(&'a mut [u64]),
}

/// Packs `K` field tensors (structure of arrays) into records of `K` words (each word holds
/// the bits of one field: floats by their bits, signed integers sign-extended, unsigned ones zero-extended, `bool` as 0 or 1), the
/// state of an [`FnMonoid`] over a user record.
///
/// # Panics
/// If there are not `K` columns or a column's length is not `out.len()`.
pub fn pack_fields<const K: usize>(cols: &[Column<'_>], out: &mut [[u64; K]]) {
    assert_eq!(cols.len(), K, "one column per field");
    for (f, col) in cols.iter().enumerate() {
        macro_rules! fill {
            ($xs:expr, |$x:ident| $w:expr) => {{
                assert_eq!($xs.len(), out.len(), "field {f}'s length");
                for (r, &$x) in out.iter_mut().zip($xs.iter()) {
                    r[f] = $w;
                }
            }};
        }
        match col {
            Column::F32(xs) => fill!(xs, |x| u64::from(x.to_bits())),
            Column::F64(xs) => fill!(xs, |x| x.to_bits()),
            Column::I32(xs) => fill!(xs, |x| i64::from(x) as u64),
            Column::I64(xs) => fill!(xs, |x| x as u64),
            Column::Bool(xs) => fill!(xs, |x| u64::from(x)),
            Column::U8(xs) => fill!(xs, |x| u64::from(x)),
            Column::U32(xs) => fill!(xs, |x| u64::from(x)),
            Column::U64(xs) => fill!(xs, |x| x),
        }
    }
}

/// The inverse of [`pack_fields`]: writes field `f` of every record into `cols[f]`.
///
/// # Panics
/// If there are not `K` columns or a column's length is not `records.len()`.
pub fn unpack_fields<const K: usize>(records: &[[u64; K]], cols: &mut [ColumnMut<'_>]) {
    assert_eq!(cols.len(), K, "one column per field");
    for (f, col) in cols.iter_mut().enumerate() {
        macro_rules! fill {
            ($xs:expr, |$w:ident| $x:expr) => {{
                assert_eq!($xs.len(), records.len(), "field {f}'s length");
                for (x, r) in $xs.iter_mut().zip(records) {
                    let $w = r[f];
                    *x = $x;
                }
            }};
        }
        match col {
            ColumnMut::F32(xs) => fill!(xs, |w| f32::from_bits(w as u32)),
            ColumnMut::F64(xs) => fill!(xs, |w| f64::from_bits(w)),
            ColumnMut::I32(xs) => fill!(xs, |w| w as i32),
            ColumnMut::I64(xs) => fill!(xs, |w| w as i64),
            ColumnMut::Bool(xs) => fill!(xs, |w| w != 0),
            ColumnMut::U8(xs) => fill!(xs, |w| w as u8),
            ColumnMut::U32(xs) => fill!(xs, |w| w as u32),
            ColumnMut::U64(xs) => fill!(xs, |w| w),
        }
    }
}

/// A pointer that tasks of one dispatch share to write disjoint parts of one buffer.
struct Shared<T>(*mut T);

// SAFETY: every user of `Shared` makes each task write elements no other task of the same
// dispatch touches, and reads them only after the dispatch has finished.
unsafe impl<T: Send> Sync for Shared<T> {}
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    fn new(xs: &mut [T]) -> Shared<T> {
        Shared(xs.as_mut_ptr())
    }

    /// The elements `range` as a mutable slice.
    ///
    /// # Safety
    /// `range` is inside the buffer, and no other live reference touches it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, range: std::ops::Range<usize>) -> &mut [T] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.len()) }
    }

    /// Writes element `i`.
    ///
    /// # Safety
    /// `i` is inside the buffer, and no other task writes or reads it during the dispatch.
    unsafe fn write(&self, i: usize, v: T) {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(i).write(v) }
    }
}

/// Runs `f(block)` for every block of [`crate::pool::blocks`]`(extent, block)` on the pool and
/// collects the results in block order.
fn map_blocks<R: Send + Default + Clone>(
    pool: &Pool,
    extent: usize,
    block: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Result<Vec<R>, TaskError> {
    let ranges: Vec<_> = crate::pool::blocks(extent, block).collect();
    let mut out = vec![R::default(); ranges.len()];
    let slots = Shared::new(&mut out);
    pool.run(ranges.len(), &|t, _| {
        let r = f(ranges[t].clone());
        // SAFETY: task `t` alone writes slot `t`, read after the dispatch.
        unsafe { *slots.slice(t..t + 1).as_mut_ptr() = r };
        Ok(())
    })?;
    Ok(out)
}
