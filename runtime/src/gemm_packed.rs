//! The packed GEMM behind [`crate::gemm`]: operands copied into panels the micro-kernels read
//! in order, a cache blocking of `k` and `n`, and one micro-kernel per instruction set
//! (AVX-512, AVX2 with FMA, and a plain-Rust one), chosen once at run time by CPU detection.
//!
//! Every variant computes each element of `c` as one chain of fused multiply-adds in order
//! along `k`, starting from zero: `c[i, j] = fma(a[i, k-1], b[k-1, j], … fma(a[i, 0], b[0, j],
//! 0))`. A kernel's partial sum over one block of `k` is stored to `c` exactly (it is a value
//! of the element type) and reloaded for the next block, so the blocking sizes, the tile
//! shapes, the row split and the instruction set change no bit: all variants give the same
//! bits, on every machine (the plain-Rust kernel's `mul_add` is the same correctly rounded
//! operation, in hardware or in software).
//!
//! `crate::gemm` runs `f32` products of more than [`crate::gemm::NARROW_MAX_N`] columns here
//! (with fused multiply-adds in hardware): at W4/W5's block shapes it matches
//! `matrixmultiply` (Zen 4's 512-bit FMAs have the throughput of two 256-bit ones), and
//! [`gemm_then`] hands each block of finished rows to the caller while they are in cache (a
//! row group's epilogue: bias, activation, an update), which `matrixmultiply` cannot. Where
//! `n` is tiny (W5's `h·w2` and `hᵀ·d`, 10 columns) packing costs more than the product, and
//! the narrow kernels of `crate::gemm_narrow` run it instead, with the same bits.
//! `flow-bench`'s `gemm` binary times all three; docs/performance.md (sixth, seventh and
//! ninth rounds) has the numbers.

use crate::gemm::Operand;
use std::sync::OnceLock;

/// The micro-kernels of an instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 512-bit vectors (`avx512f`): 6×64 tiles of `f32`, 12×16 of `f64`.
    Avx512,
    /// 256-bit vectors with FMA (`avx2`, `fma`): 6×16 tiles of `f32`, 6×8 of `f64`.
    Avx2,
    /// Plain Rust with `mul_add`, for any other CPU.
    Scalar,
}

impl Isa {
    /// The variants this CPU can run, fastest first.
    pub fn available() -> Vec<Isa> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Isa::Avx2);
            }
        }
        out.push(Isa::Scalar);
        out
    }

    /// The fastest variant this CPU runs with fused multiply-adds in hardware (detected
    /// once), or `None` where there is none known: [`Isa::Scalar`]'s `mul_add` would then be
    /// a library call, far slower than the ordered kernel of `crate::gemm`, which runs instead.
    pub fn best() -> Option<Isa> {
        static BEST: OnceLock<Option<Isa>> = OnceLock::new();
        *BEST.get_or_init(|| {
            let fast = Isa::available().into_iter().find(|&i| i != Isa::Scalar);
            if cfg!(target_arch = "aarch64") {
                // FMA is part of the base instruction set.
                fast.or(Some(Isa::Scalar))
            } else {
                fast
            }
        })
    }
}

/// The variant for a product of `n` columns: [`Isa::best`], but AVX2's narrower tiles (16
/// `f32` columns, 8 `f64`) where `n` is under AVX-512's (64 and 16), whose zero padding would
/// cost more than the wider vectors gain. All variants give the same bits, so the choice
/// changes only the time.
pub fn isa_for(n: usize, size: usize) -> Option<Isa> {
    static AVX2: OnceLock<bool> = OnceLock::new();
    let best = Isa::best();
    let wide = if size == 4 { 64 } else { 16 };
    let narrow = n < wide && *AVX2.get_or_init(|| Isa::available().contains(&Isa::Avx2));
    if best == Some(Isa::Avx512) && narrow {
        Some(Isa::Avx2)
    } else {
        best
    }
}

/// A micro-kernel over one block of `kc` steps of `k` for an `mr×nr` tile of `c`: `a` holds
/// the tile's rows packed `mr` values per step, `b` its columns packed `nr` values per step;
/// `c` is the tile (row stride `ldc`). With `resume`, the chains continue from the values in
/// `c`; without, they start from zero and `c` is only written.
type Micro<T> = unsafe fn(kc: usize, a: *const T, b: *const T, c: *mut T, ldc: usize, resume: bool);

/// A micro-kernel and its tile shape.
struct Kernel<T> {
    mr: usize,
    nr: usize,
    micro: Micro<T>,
}

/// The largest tile of any kernel, in elements (AVX-512 `f32`: 6×64).
const MAX_TILE: usize = 12 * 32;

/// Steps of `k` per block: a packed row panel of `a` (`mr·KC` values) stays in L1 while the
/// kernel runs along a block of `b` (128 measured faster than 256 on Zen 4, `bench --bin gemm`).
const KC: usize = 128;

/// Bytes of a packed block of `b` (`KC` rows by some columns): half of a 1 MiB L2.
const B_BLOCK_BYTES: usize = 512 * 1024;

/// Element types of the packed GEMM.
pub trait Element: Copy + Default + 'static {
    /// `self · b + c` with one rounding.
    fn fma(self, b: Self, c: Self) -> Self;
    /// This type's kernel for an instruction set (one this CPU runs).
    #[doc(hidden)]
    fn kernel(isa: Isa) -> KernelRef<Self>;
}

/// An opaque handle to a kernel (keeps [`Kernel`] private to this module).
#[doc(hidden)]
pub struct KernelRef<T>(Kernel<T>);

impl Element for f32 {
    fn fma(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
    fn kernel(isa: Isa) -> KernelRef<f32> {
        KernelRef(match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 12,
                nr: 32,
                micro: crate::gemm_x86::f32_avx512,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 16,
                micro: crate::gemm_x86::f32_avx2,
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                micro: scalar::<f32, 4, 8>,
            },
        })
    }
}

impl Element for f64 {
    fn fma(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
    fn kernel(isa: Isa) -> KernelRef<f64> {
        KernelRef(match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 12,
                nr: 16,
                micro: crate::gemm_x86::f64_avx512,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 8,
                micro: crate::gemm_x86::f64_avx2,
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                micro: scalar::<f64, 4, 8>,
            },
        })
    }
}

/// The plain-Rust micro-kernel.
///
/// # Safety
/// As for [`Micro`]: `a` holds `kc·MR` values, `b` `kc·NR`, and `c` an `MR×NR` tile.
unsafe fn scalar<T: Element, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    ldc: usize,
    resume: bool,
) {
    let mut acc = [[T::default(); NR]; MR];
    // SAFETY: the caller's contract.
    unsafe {
        if resume {
            for (i, row) in acc.iter_mut().enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = *c.add(i * ldc + j);
                }
            }
        }
        for p in 0..kc {
            let ap = std::slice::from_raw_parts(a.add(p * MR), MR);
            let bp = std::slice::from_raw_parts(b.add(p * NR), NR);
            for (row, &ai) in acc.iter_mut().zip(ap) {
                for (x, &bj) in row.iter_mut().zip(bp) {
                    *x = ai.fma(bj, *x);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                *c.add(i * ldc + j) = *x;
            }
        }
    }
}

/// A zeroed buffer of `len` elements whose first element is 64-byte aligned (also the narrow
/// kernels' copies of `b`, `crate::gemm_narrow`).
pub(crate) struct Aligned<T> {
    data: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Element> Aligned<T> {
    pub(crate) fn new(len: usize) -> Self {
        let pad = 64 / std::mem::size_of::<T>();
        let data = vec![T::default(); len + pad];
        let start = data.as_ptr().align_offset(64).min(pad);
        Aligned { data, start, len }
    }
    pub(crate) fn ptr(&mut self) -> *mut T {
        self.data[self.start..].as_mut_ptr()
    }
    /// The `len` elements.
    pub(crate) fn slice_mut(&mut self) -> &mut [T] {
        &mut self.data[self.start..self.start + self.len]
    }
}

/// `c = a · b` (row-major `c`, row stride `n`) with the kernels of `isa`.
///
/// # Safety
/// As for [`crate::gemm::gemm_f32`]; `isa` must be one of [`Isa::available`].
pub unsafe fn gemm<T: Element>(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: Operand<T>,
    b: Operand<T>,
    c: *mut T,
) {
    // SAFETY: the caller's contract.
    unsafe { gemm_then(isa, m, k, n, a, b, c, &mut |_, _| true) };
}

/// Rows of `c` handed to [`gemm_then`]'s `done` at a time, at least (rounded up to a whole
/// panel of the kernel's rows): 64 rows of 1024 `f32` are 256 KiB, a quarter of Zen 4's L2,
/// so the caller reads them from L2 right after the kernels stored them.
pub const DONE_ROWS: usize = 64;

/// [`gemm`], calling `done(r0, r1)` as soon as rows `r0..r1` of `c` hold their final values:
/// every row exactly once, in order, in blocks of at least [`DONE_ROWS`] rows (the last block
/// may be shorter), each after the last block of `k` of the last block of columns wrote it.
/// `done` may read and overwrite those rows (the GEMM does not touch them again), so an
/// epilogue applied there sees exactly the values a whole product would have left (each is
/// its full FMA chain along `k`) and gives the bits of the GEMM followed by the epilogue as a
/// second pass. If `done` returns `false`, the product stops (the rows after those reported
/// are then unspecified) and `false` is returned; otherwise `true`.
///
/// # Safety
/// As for [`gemm`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_then<T: Element>(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: Operand<T>,
    b: Operand<T>,
    c: *mut T,
    done: &mut dyn FnMut(usize, usize) -> bool,
) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        // SAFETY: `c` holds m·n elements.
        unsafe { std::slice::from_raw_parts_mut(c, m * n).fill(T::default()) };
        return done(0, m);
    }
    let KernelRef(ker) = T::kernel(isa);
    let (mr, nr) = (ker.mr, ker.nr);
    let nc_max = (B_BLOCK_BYTES / (KC * std::mem::size_of::<T>())) / nr * nr;
    let kc_cap = KC.min(k);
    let mut bbuf = Aligned::<T>::new(kc_cap * nc_max.min(n.next_multiple_of(nr)));
    let mut abuf = Aligned::<T>::new(kc_cap * m.next_multiple_of(mr));
    let mut tile = [T::default(); MAX_TILE];
    let (bp, ap) = (bbuf.ptr(), abuf.ptr());
    let chunk = DONE_ROWS.next_multiple_of(mr);
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            // The last block of `k` of the last block of columns: rows are final once its
            // panels have run.
            let last = jc + nc == n && pc + kc == k;
            let mut reported = 0;
            // SAFETY: the block lies inside `b`; the buffer holds kc × nc rounded up to nr.
            unsafe { pack_b(kc, nc, nr, b, pc, jc, bp) };
            // SAFETY: as above, for `a`; the buffer holds kc × m rounded up to mr.
            unsafe { pack_a(kc, m, mr, a, pc, ap) };
            for ir in (0..m).step_by(mr) {
                let rows = mr.min(m - ir);
                let ap = ap.wrapping_add(ir * kc);
                for jr in (0..nc).step_by(nr) {
                    let cols = nr.min(nc - jr);
                    // SAFETY: the tile lies inside `c`; the panels hold kc steps each.
                    unsafe {
                        let ct = c.add(ir * n + jc + jr);
                        let panel = bp.add(jr * kc);
                        if rows == mr && cols == nr {
                            (ker.micro)(kc, ap, panel, ct, n, pc > 0);
                        } else {
                            // An edge tile: through a full-size tile, whose padding (zeros
                            // in the panels) is dropped.
                            let t = tile.as_mut_ptr();
                            if pc > 0 {
                                for i in 0..rows {
                                    std::ptr::copy_nonoverlapping(
                                        ct.add(i * n),
                                        t.add(i * nr),
                                        cols,
                                    );
                                }
                            }
                            (ker.micro)(kc, ap, panel, t, nr, pc > 0);
                            for i in 0..rows {
                                std::ptr::copy_nonoverlapping(t.add(i * nr), ct.add(i * n), cols);
                            }
                        }
                    }
                }
                let end = ir + rows;
                if last && (end - reported >= chunk || end == m) {
                    if !done(reported, end) {
                        return false;
                    }
                    reported = end;
                }
            }
        }
    }
    true
}

/// Packs `b[pc .. pc+kc, jc .. jc+nc]` into panels of `nr` columns, each `kc` steps of `nr`
/// values, the last panel padded with zeros.
///
/// # Safety
/// The block must be readable through `b`'s strides; `out` must hold `kc · ⌈nc/nr⌉·nr` values.
unsafe fn pack_b<T: Element>(
    kc: usize,
    nc: usize,
    nr: usize,
    b: Operand<T>,
    pc: usize,
    jc: usize,
    out: *mut T,
) {
    for (q, jr) in (0..nc).step_by(nr).enumerate() {
        let cols = nr.min(nc - jr);
        // SAFETY: the caller's contract.
        unsafe {
            let panel = out.add(q * nr * kc);
            for p in 0..kc {
                let dst = panel.add(p * nr);
                let src = b
                    .ptr
                    .offset((pc + p) as isize * b.row_stride + (jc + jr) as isize * b.col_stride);
                if b.col_stride == 1 {
                    std::ptr::copy_nonoverlapping(src, dst, cols);
                } else {
                    for j in 0..cols {
                        *dst.add(j) = *src.offset(j as isize * b.col_stride);
                    }
                }
                for j in cols..nr {
                    *dst.add(j) = T::default();
                }
            }
        }
    }
}

/// Packs `a[0 .. m, pc .. pc+kc]` into panels of `mr` rows, each `kc` steps of `mr` values,
/// rows past `m` zero. The whole column block at once, so that a transposed `a` (rows of
/// `k`, columns of `m`) is read along its storage rows, not down a column per panel (with
/// rows 4 KiB apart, such columns alias in L1 and each panel read them from L2 again).
///
/// # Safety
/// The block must be readable through `a`'s strides; `out` must hold `kc · ⌈m/mr⌉·mr` values.
unsafe fn pack_a<T: Element>(
    kc: usize,
    m: usize,
    mr: usize,
    a: Operand<T>,
    pc: usize,
    out: *mut T,
) {
    let padded = m.next_multiple_of(mr);
    // SAFETY: the caller's contract.
    unsafe {
        if a.col_stride != 1 {
            for p in 0..kc {
                let src = a.ptr.offset((pc + p) as isize * a.col_stride);
                for i0 in (0..padded).step_by(mr) {
                    let dst = out.add(i0 * kc + p * mr);
                    for d in 0..mr {
                        let i = i0 + d;
                        *dst.add(d) = if i < m {
                            *src.offset(i as isize * a.row_stride)
                        } else {
                            T::default()
                        };
                    }
                }
            }
            return;
        }
        for i in 0..padded {
            let panel = out.add(i / mr * mr * kc + i % mr);
            if i < m {
                let src = a.ptr.offset(i as isize * a.row_stride + pc as isize);
                for p in 0..kc {
                    *panel.add(p * mr) = *src.add(p);
                }
            } else {
                for p in 0..kc {
                    *panel.add(p * mr) = T::default();
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "gemm_packed_tests.rs"]
pub(crate) mod tests;
