//! A pool of tensor buffers recycled across dispatches.
//!
//! Writing into freshly allocated memory is expensive: every first touch of a page faults, and
//! on the development machines a kernel that writes a fresh 128 MiB output runs about 10x
//! slower than the same kernel writing into a reused buffer (`bench/WORKLOADS.md`).
//! The runtime therefore takes the buffers of intermediate and output tensors from a
//! [`BufferPool`] and gives them back when the tensor dies, so a coordinator loop that runs the
//! same graph again finds its memory already mapped.
//!
//! **Invariants:**
//! - [`BufferPool::take`] returns a buffer of exactly the requested element type and length;
//!   its contents are unspecified (zeros when newly allocated, stale values when reused), so
//!   a kernel must write every element of its outputs;
//! - the pool never retains more than its cap in bytes (counted by capacity); when a returned
//!   buffer does not fit, the buffers returned longest ago are dropped first.
//!
//! Alignment: buffers are the `Vec`s of [`Data`], aligned as the global allocator aligns them.
//! `flowc` (and the benchmark binaries) install [`crate::alloc::CacheLineAligned`], which puts
//! every block of 64 KiB or more on a 64-byte boundary; a binary with the system allocator
//! (a `flowc build` executable, the test binaries) gets 16. Generated code uses unaligned
//! vector loads and stores, which cost the same as aligned ones on current x86 and AArch64
//! cores except when they cross a cache line.

use crate::tensor::{AllocError, DType, Data};

/// A cache of returned buffers, keyed by element type and length, with a cap on the bytes it
/// keeps.
#[derive(Debug)]
pub struct BufferPool {
    /// Retained buffers, the oldest first.
    free: Vec<Data>,
    retained_bytes: usize,
    cap_bytes: usize,
    hits: u64,
    misses: u64,
    dropped: u64,
}

/// Counters of a [`BufferPool`], for tests and performance reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Calls of [`BufferPool::take`] served with a retained buffer.
    pub hits: u64,
    /// Calls of [`BufferPool::take`] that allocated.
    pub misses: u64,
    /// Buffers dropped instead of retained (too big for the cap, or evicted).
    pub dropped: u64,
    /// Buffers retained now.
    pub retained_buffers: usize,
    /// Bytes retained now (by capacity).
    pub retained_bytes: usize,
}

impl BufferPool {
    /// The cap of [`BufferPool::default`]: 1 GiB.
    pub const DEFAULT_CAP_BYTES: usize = 1 << 30;

    /// An empty pool that retains at most `cap_bytes` bytes.
    pub fn new(cap_bytes: usize) -> BufferPool {
        BufferPool {
            free: Vec::new(),
            retained_bytes: 0,
            cap_bytes,
            hits: 0,
            misses: 0,
            dropped: 0,
        }
    }

    /// A buffer of `len` elements of type `dtype`: the most recently returned one of that type
    /// and length if there is one, else a new zero-filled one. Its contents are unspecified.
    /// An error when a new buffer is needed and the system cannot give the memory.
    pub fn take(&mut self, dtype: DType, len: usize) -> Result<Data, AllocError> {
        if len > 0 {
            let found = self
                .free
                .iter()
                .rposition(|d| d.dtype() == dtype && d.len() == len);
            if let Some(pos) = found {
                let data = self.free.remove(pos);
                self.retained_bytes -= capacity_bytes(&data);
                self.hits += 1;
                return Ok(data);
            }
        }
        self.misses += 1;
        if let Ok(data) = Data::try_zeros(dtype, len) {
            return Ok(data);
        }
        // The memory this pool keeps may be what is missing: give it back and try again.
        let cap = self.cap_bytes;
        self.set_cap_bytes(0);
        self.cap_bytes = cap;
        Data::try_zeros(dtype, len)
    }

    /// Like [`BufferPool::take`], but every element is zero (or `false`).
    pub fn take_zeroed(&mut self, dtype: DType, len: usize) -> Result<Data, AllocError> {
        let mut data = self.take(dtype, len)?;
        match &mut data {
            Data::F32(v) => v.fill(0.0),
            Data::F64(v) => v.fill(0.0),
            Data::I32(v) => v.fill(0),
            Data::I64(v) => v.fill(0),
            Data::U8(v) => v.fill(0),
            Data::U32(v) => v.fill(0),
            Data::U64(v) => v.fill(0),
            Data::Bool(v) => v.fill(false),
        }
        Ok(data)
    }

    /// Returns a buffer to the pool for a later [`BufferPool::take`]. A buffer bigger than the
    /// cap is dropped; otherwise the oldest retained buffers are dropped until it fits.
    /// Empty buffers are dropped (they own no memory).
    pub fn give(&mut self, data: Data) {
        let bytes = capacity_bytes(&data);
        if data.is_empty() || bytes > self.cap_bytes {
            self.dropped += 1;
            return;
        }
        let mut evict = 0;
        while self.retained_bytes + bytes > self.cap_bytes {
            self.retained_bytes -= capacity_bytes(&self.free[evict]);
            evict += 1;
        }
        if evict > 0 {
            self.free.drain(..evict);
            self.dropped += evict as u64;
        }
        self.retained_bytes += bytes;
        self.free.push(data);
    }

    /// Drops every retained buffer.
    pub fn clear(&mut self) {
        self.dropped += self.free.len() as u64;
        self.free.clear();
        self.retained_bytes = 0;
    }

    /// The most bytes the pool retains.
    pub fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    /// Changes the cap, dropping the oldest buffers until the retained bytes fit it.
    pub fn set_cap_bytes(&mut self, cap_bytes: usize) {
        self.cap_bytes = cap_bytes;
        let mut evict = 0;
        while self.retained_bytes > cap_bytes {
            self.retained_bytes -= capacity_bytes(&self.free[evict]);
            evict += 1;
        }
        self.free.drain(..evict);
        self.dropped += evict as u64;
    }

    /// The pool's counters.
    pub fn stats(&self) -> BufferStats {
        BufferStats {
            hits: self.hits,
            misses: self.misses,
            dropped: self.dropped,
            retained_buffers: self.free.len(),
            retained_bytes: self.retained_bytes,
        }
    }
}

impl Default for BufferPool {
    /// An empty pool with a cap of [`BufferPool::DEFAULT_CAP_BYTES`].
    fn default() -> BufferPool {
        BufferPool::new(BufferPool::DEFAULT_CAP_BYTES)
    }
}

/// The bytes a buffer holds allocated (its capacity, not its length).
fn capacity_bytes(data: &Data) -> usize {
    let elements = match data {
        Data::F32(v) => v.capacity(),
        Data::F64(v) => v.capacity(),
        Data::I32(v) => v.capacity(),
        Data::I64(v) => v.capacity(),
        Data::U8(v) => v.capacity(),
        Data::U32(v) => v.capacity(),
        Data::U64(v) => v.capacity(),
        Data::Bool(v) => v.capacity(),
    };
    elements * data.dtype().size_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_ptr(d: &Data) -> *const f32 {
        match d {
            Data::F32(v) => v.as_ptr(),
            _ => panic!("not f32"),
        }
    }

    #[test]
    fn a_returned_buffer_is_reused_for_the_same_type_and_length() {
        let mut pool = BufferPool::default();
        let mut a = pool.take(DType::F32, 1000).unwrap();
        assert_eq!(a, Data::zeros(DType::F32, 1000));
        a.set(3, crate::Scalar::F32(7.0));
        let ptr = f32_ptr(&a);
        pool.give(a);
        // Another type or length allocates.
        assert_eq!(pool.take(DType::I32, 1000).unwrap().dtype(), DType::I32);
        assert_eq!(pool.take(DType::F32, 999).unwrap().len(), 999);
        let b = pool.take(DType::F32, 1000).unwrap();
        assert_eq!(f32_ptr(&b), ptr);
        assert_eq!(
            b.get(3),
            crate::Scalar::F32(7.0),
            "contents are stale, not cleared"
        );
        let s = pool.stats();
        assert_eq!((s.hits, s.misses, s.retained_buffers), (1, 3, 0));
        pool.give(b);
        let z = pool.take_zeroed(DType::F32, 1000).unwrap();
        assert_eq!(z, Data::zeros(DType::F32, 1000));
    }

    #[test]
    fn every_type_round_trips() {
        let mut pool = BufferPool::default();
        for d in DType::ALL {
            let data = pool.take(d, 17).unwrap();
            assert_eq!((data.dtype(), data.len()), (d, 17));
            pool.give(data);
        }
        assert_eq!(pool.stats().retained_buffers, 8);
        assert_eq!(
            pool.stats().retained_bytes,
            17 * (4 + 8 + 4 + 8 + 1 + 1 + 4 + 8)
        );
        for d in DType::ALL {
            assert_eq!(pool.take(d, 17).unwrap().dtype(), d);
        }
        assert_eq!(pool.stats().hits, 8);
        assert_eq!(pool.stats().retained_bytes, 0);
    }

    #[test]
    fn the_cap_drops_the_oldest_buffers_first() {
        // Room for two 100-element f32 buffers.
        let mut pool = BufferPool::new(800);
        let a = pool.take(DType::F32, 100).unwrap();
        let b = pool.take(DType::F32, 100).unwrap();
        let c = pool.take(DType::F32, 100).unwrap();
        let (pa, pc) = (f32_ptr(&a), f32_ptr(&c));
        pool.give(a);
        pool.give(b);
        pool.give(c);
        let s = pool.stats();
        assert_eq!(
            (s.retained_buffers, s.retained_bytes, s.dropped),
            (2, 800, 1)
        );
        // The most recent comes back first; the oldest (`a`) is gone.
        let got1 = pool.take(DType::F32, 100).unwrap();
        let got2 = pool.take(DType::F32, 100).unwrap();
        assert_eq!(f32_ptr(&got1), pc);
        assert_ne!(f32_ptr(&got2), pa);
        // Too big for the cap: dropped, nothing evicted.
        pool.give(got1);
        pool.give(Data::zeros(DType::F64, 1000));
        assert_eq!(pool.stats().retained_buffers, 1);
        // Shrinking the cap evicts.
        pool.set_cap_bytes(100);
        assert_eq!(pool.stats().retained_bytes, 0);
        pool.give(got2);
        pool.clear();
        assert_eq!(pool.stats().retained_buffers, 0);
        assert_eq!(pool.cap_bytes(), 100);
    }

    #[test]
    fn empty_buffers_are_not_retained() {
        let mut pool = BufferPool::default();
        pool.give(Data::zeros(DType::F32, 0));
        assert_eq!(pool.stats().retained_buffers, 0);
        assert!(pool.take(DType::F32, 0).unwrap().is_empty());
    }
}
