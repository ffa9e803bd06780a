//! A global allocator that puts every large block (tensor buffers) on a 64-byte boundary:
//! the width of a cache line and of an AVX-512 vector, so that no vector load of the
//! runtime's span math ([`crate::spanmath`]: 16 `f32` lanes) straddles two lines. The system
//! allocator aligns to 16 bytes, and glibc serves large blocks from `mmap` at 16 bytes past
//! a page boundary, so every such load of a row that starts at element 0 would cross a line.
//!
//! Binaries opt in (`flowc` does):
//! `#[global_allocator] static A: flow_runtime::alloc::CacheLineAligned = flow_runtime::alloc::CacheLineAligned;`.
//! A library cannot: a crate graph has one global allocator (the test crates install their
//! own, counting one).
//!
//! Blocks of at least [`LARGE`] bytes are over-allocated from the system allocator by 64
//! bytes, the returned pointer rounded up to 64 (at least 16 bytes past the start) and the
//! system's pointer stored in the 8 bytes before it. The zeroed variant therefore still gets
//! `calloc`'s untouched zero pages (an aligned `calloc` would write every byte). Smaller blocks
//! and blocks that ask for more than 64 bytes of alignment go to the system allocator as
//! they are.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes are aligned to [`ALIGN`].
pub const LARGE: usize = 1 << 16;
/// The alignment of large blocks.
pub const ALIGN: usize = 64;

/// The global allocator: the system's, with large blocks on 64-byte boundaries.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheLineAligned;

/// Whether a block of this layout is placed by hand.
fn placed(layout: Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= ALIGN
}

/// The system block that holds a placed block of `size` bytes.
fn outer(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(ALIGN)?, 16).ok()
}

/// The placed block inside the system block at `raw`, with `raw` recorded before it.
///
/// # Safety
/// `raw` is a live system block of `outer(size)`, 16-byte aligned.
unsafe fn place(raw: *mut u8) -> *mut u8 {
    if raw.is_null() {
        return raw;
    }
    let skip = ALIGN - (raw as usize % ALIGN);
    // SAFETY: `skip` is in 16..=64 (raw is 16-aligned) and the system block has 64 spare
    // bytes; the 8 bytes before the placed block lie inside the system block.
    unsafe {
        let p = raw.add(skip);
        (p.sub(8) as *mut *mut u8).write_unaligned(raw);
        p
    }
}

/// The system block of a placed block.
///
/// # Safety
/// `p` was returned by [`place`].
unsafe fn raw_of(p: *mut u8) -> *mut u8 {
    // SAFETY: `place` wrote the system pointer there.
    unsafe { (p.sub(8) as *const *mut u8).read_unaligned() }
}

// SAFETY: every block comes from `System` with the layout it is later returned with: a
// placed block's system layout depends only on its own layout's size, which the caller
// passes back unchanged, and `placed` decides the same way for both calls.
unsafe impl GlobalAlloc for CacheLineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match (placed(layout), outer(layout.size())) {
            // SAFETY: a non-zero-sized layout.
            (true, Some(o)) => unsafe { place(System.alloc(o)) },
            (true, None) => std::ptr::null_mut(),
            // SAFETY: the caller's contract.
            (false, _) => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match (placed(layout), outer(layout.size())) {
            // SAFETY: as in `alloc`; the whole system block is zero.
            (true, Some(o)) => unsafe { place(System.alloc_zeroed(o)) },
            (true, None) => std::ptr::null_mut(),
            // SAFETY: the caller's contract.
            (false, _) => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if placed(layout) {
            let o = outer(layout.size()).expect("allocated with this layout");
            // SAFETY: `ptr` was placed in a system block of layout `o`.
            unsafe { System.dealloc(raw_of(ptr), o) }
        } else {
            // SAFETY: the caller's contract.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with this alignment is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !placed(layout) && !placed(new) {
            // SAFETY: the caller's contract.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new` is a valid layout; the old block is live, `layout.size()` bytes.
        unsafe {
            let p = self.alloc(new);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_aligned_and_round_trip() {
        let a = CacheLineAligned;
        for size in [LARGE - 1, LARGE, LARGE + 4, 3 << 20] {
            for align in [4, 8, 16, 64] {
                let l = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with its layout.
                unsafe {
                    let z = a.alloc_zeroed(l);
                    assert!(!z.is_null());
                    if size >= LARGE {
                        assert_eq!(z as usize % ALIGN, 0, "size {size}");
                    }
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    z.write_bytes(7, size);
                    // Grow across the threshold and shrink below it: contents kept.
                    let g = a.realloc(z, l, size + LARGE);
                    assert_eq!(g as usize % ALIGN, 0);
                    assert!(std::slice::from_raw_parts(g, size).iter().all(|&b| b == 7));
                    let big = Layout::from_size_align(size + LARGE, align).unwrap();
                    let s = a.realloc(g, big, 100);
                    assert!(std::slice::from_raw_parts(s, 100).iter().all(|&b| b == 7));
                    a.dealloc(s, Layout::from_size_align(100, align).unwrap());
                    let m = a.alloc(l);
                    a.dealloc(m, l);
                }
            }
        }
    }
}
