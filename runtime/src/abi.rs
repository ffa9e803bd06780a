//! The C ABI between generated kernels and the runtime: the kernel function type, its status
//! codes, the kernel table of executables made by `flowc build`, and the math and random
//! builtins that generated code calls.
//!
//! A kernel runs one shard: rows `lo..hi` of the outermost free dimension of its index space,
//! reading and writing only the buffers in `bufs` (no globals), and returns [`OK`] or an
//! `ERR_*` code. The meaning of each buffer and extent is fixed by the compiler's kernel
//! layout; the runtime only carries them.
//!
//! **Invariants:**
//! - every builtin computes exactly what the reference interpreter computes for the same
//!   operation: the float functions call Rust's `f32`/`f64` methods (the interpreter's
//!   semantics), or `libm`'s under `--portable-math` ([`crate::portable::FlowMath`]),
//!   except `exp` on `f32`, which is [`crate::fastmath::exp_f32`], `fmod` is
//!   Rust's `%`, and the random draws call [`crate::rand`], so generated code that calls a
//!   builtin agrees with the interpreter bit for bit;
//! - the builtins are `extern "C"`, never unwind, and are also exported unmangled under the
//!   names of [`builtin_symbols`], so an ahead-of-time object file can link against them.

use crate::fastmath::FlowExp;
use crate::portable::FlowMath;

/// A compiled kernel: computes rows `lo..hi` of the outermost free dimension of its index
/// space and returns [`OK`] or an `ERR_*` code.
///
/// `bufs` holds one pointer per tensor read, then one per output port; `dims` holds the
/// extents of the index space (free, then reduced) and of every tensor read, in read order —
/// kernels are shape-polymorphic, so one compiled kernel serves every shape of its structure.
pub type KernelFn =
    unsafe extern "C" fn(bufs: *const *mut u8, dims: *const i64, lo: i64, hi: i64) -> i32;

/// One entry of the kernel table of an executable made by `flowc build`: a kernel and the
/// structure key (UTF-8, not NUL-terminated) of the nodes it computes. The object file that
/// `flowc build` writes holds an array of these, passed to the runtime's entry point.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AotKernel {
    pub key: *const u8,
    pub key_len: usize,
    pub kernel: KernelFn,
}

/// The status of a kernel that ran to completion.
pub const OK: i32 = 0;
/// An integer division or remainder by zero.
pub const ERR_DIV_ZERO: i32 = 1;
/// An integer division `MIN / -1`, whose quotient does not fit.
pub const ERR_DIV_OVERFLOW: i32 = 2;
/// A gather's coordinate outside its table.
pub const ERR_INDEX: i32 = 3;

/// Calls `kernel` on buffers `bufs`, extents `dims` and rows `lo..hi`, and returns its
/// status.
///
/// # Safety
/// `kernel` must be a kernel compiled for exactly these buffers (count, element types and
/// lengths) and extents, the rows must lie inside the region the buffers were sized for, and
/// no other thread may access the memory the shard writes while it runs.
pub unsafe fn call_kernel(
    kernel: KernelFn,
    bufs: &[*mut u8],
    dims: &[i64],
    lo: i64,
    hi: i64,
) -> i32 {
    // SAFETY: the slices outlive the call; the rest is the caller's contract.
    unsafe { kernel(bufs.as_ptr(), dims.as_ptr(), lo, hi) }
}

/// The words for a kernel status.
pub fn error_message(code: i32) -> &'static str {
    match code {
        OK => "no error",
        ERR_DIV_ZERO => "integer division by zero",
        ERR_DIV_OVERFLOW => "integer division overflow (MIN / -1)",
        ERR_INDEX => "a gather index out of range",
        _ => "unknown kernel error",
    }
}

/// The builtins that JIT code may call, by symbol name, for the JIT's symbol table.
///
/// `f32` functions end in `f` (`flow_expf`), as in C; the `f64` ones have no suffix
/// (`flow_exp`). Signatures: unary functions take and return one float, `powf`/`fmodf`/`atan2f` (and
/// `pow`/`fmod`/`atan2`) take two, and `flow_rand_uniform`/`flow_rand_normal` take `(seed: u64,
/// n: u64)` and return `f32`. `flow_exp_span_f32(ptr, n: i64)` applies `exp` in place to a
/// span of `f32` ([`crate::spanmath`]); `flow_window_dot_f32(out, x, w, n: i64, k: i64,
/// order: i64, total: i64)` computes `n` windowed dot products of `k` taps, streaming them
/// out when the whole output has `total` elements beyond the cache ([`crate::spanwindow`]);
/// `flow_row_binary_f32` applies an operator between rows and their scalars and
/// `flow_lane_fold_f32` folds rows into lanes ([`crate::spanrows`]);
/// `flow_moments_fold_f32` folds `f32` rows into `f64` lanes of sums of powers
/// ([`crate::spanmoments`]).
pub fn builtin_symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("flow_expf", flow_expf as *const u8),
        ("flow_logf", flow_logf as *const u8),
        ("flow_sinf", flow_sinf as *const u8),
        ("flow_cosf", flow_cosf as *const u8),
        ("flow_tanhf", flow_tanhf as *const u8),
        ("flow_atanf", flow_atanf as *const u8),
        ("flow_asinf", flow_asinf as *const u8),
        ("flow_acosf", flow_acosf as *const u8),
        ("flow_powf", flow_powf as *const u8),
        ("flow_atan2f", flow_atan2f as *const u8),
        ("flow_fmodf", flow_fmodf as *const u8),
        ("flow_exp", flow_exp as *const u8),
        ("flow_log", flow_log as *const u8),
        ("flow_sin", flow_sin as *const u8),
        ("flow_cos", flow_cos as *const u8),
        ("flow_tanh", flow_tanh as *const u8),
        ("flow_atan", flow_atan as *const u8),
        ("flow_asin", flow_asin as *const u8),
        ("flow_acos", flow_acos as *const u8),
        ("flow_pow", flow_pow as *const u8),
        ("flow_atan2", flow_atan2 as *const u8),
        ("flow_fmod", flow_fmod as *const u8),
        ("flow_rand_uniform", flow_rand_uniform as *const u8),
        ("flow_rand_normal", flow_rand_normal as *const u8),
        (
            "flow_exp_span_f32",
            crate::spanmath::flow_exp_span_f32 as *const u8,
        ),
        (
            "flow_window_dot_f32",
            crate::spanwindow::flow_window_dot_f32 as *const u8,
        ),
        (
            "flow_row_binary_f32",
            crate::spanrows::flow_row_binary_f32 as *const u8,
        ),
        (
            "flow_lane_fold_f32",
            crate::spanrows::flow_lane_fold_f32 as *const u8,
        ),
        (
            "flow_moments_fold_f32",
            crate::spanmoments::flow_moments_fold_f32 as *const u8,
        ),
    ]
}

/// Declares `extern "C"` builtins that apply a Rust float method.
macro_rules! unary_builtins {
    ($($(#[$doc:meta])* $name:ident: $t:ty => $method:ident;)*) => {
        $(
            $(#[$doc])*
            #[unsafe(no_mangle)]
            pub extern "C" fn $name(x: $t) -> $t {
                x.$method()
            }
        )*
    };
}

unary_builtins! {
    /// `exp` on `f32`: [`crate::fastmath::exp_f32`], the polynomial kernels inline.
    flow_expf: f32 => flow_exp;
    /// `log` on `f32`: the natural logarithm (Rust's `f32::ln`).
    flow_logf: f32 => flow_ln;
    /// `sin` on `f32` (Rust's `f32::sin`).
    flow_sinf: f32 => flow_sin;
    /// `cos` on `f32` (Rust's `f32::cos`).
    flow_cosf: f32 => flow_cos;
    /// `tanh` on `f32` (Rust's `f32::tanh`).
    flow_tanhf: f32 => flow_tanh;
    /// `exp` on `f64` (Rust's `f64::exp`).
    flow_exp: f64 => flow_exp;
    /// `log` on `f64`: the natural logarithm (Rust's `f64::ln`).
    flow_log: f64 => flow_ln;
    /// `sin` on `f64` (Rust's `f64::sin`).
    flow_sin: f64 => flow_sin;
    /// `cos` on `f64` (Rust's `f64::cos`).
    flow_cos: f64 => flow_cos;
    /// `tanh` on `f64` (Rust's `f64::tanh`).
    flow_tanh: f64 => flow_tanh;
    /// `atan` on `f32` (Rust's `f32::atan`).
    flow_atanf: f32 => flow_atan;
    /// `asin` on `f32` (Rust's `f32::asin`).
    flow_asinf: f32 => flow_asin;
    /// `acos` on `f32` (Rust's `f32::acos`).
    flow_acosf: f32 => flow_acos;
    /// `atan` on `f64` (Rust's `f64::atan`).
    flow_atan: f64 => flow_atan;
    /// `asin` on `f64` (Rust's `f64::asin`).
    flow_asin: f64 => flow_asin;
    /// `acos` on `f64` (Rust's `f64::acos`).
    flow_acos: f64 => flow_acos;
}

/// `atan2(y, x)` on `f32` (Rust's `f32::atan2`).
#[unsafe(no_mangle)]
pub extern "C" fn flow_atan2f(y: f32, x: f32) -> f32 {
    y.flow_atan2(x)
}

/// `atan2(y, x)` on `f64` (Rust's `f64::atan2`).
#[unsafe(no_mangle)]
pub extern "C" fn flow_atan2(y: f64, x: f64) -> f64 {
    y.flow_atan2(x)
}

/// `x ** y` on `f32` (Rust's `f32::powf`).
#[unsafe(no_mangle)]
pub extern "C" fn flow_powf(x: f32, y: f32) -> f32 {
    x.flow_powf(y)
}

/// `x % y` on `f32`: the remainder with the sign of `x` (Rust's `%`, C's `fmodf`). Cranelift
/// has no float remainder instruction.
#[unsafe(no_mangle)]
pub extern "C" fn flow_fmodf(x: f32, y: f32) -> f32 {
    x % y
}

/// `x ** y` on `f64` (Rust's `f64::powf`).
#[unsafe(no_mangle)]
pub extern "C" fn flow_pow(x: f64, y: f64) -> f64 {
    x.flow_powf(y)
}

/// `x % y` on `f64` (Rust's `%`, C's `fmod`).
#[unsafe(no_mangle)]
pub extern "C" fn flow_fmod(x: f64, y: f64) -> f64 {
    x % y
}

/// Element `n` of `rand_uniform(seed, …)` ([`crate::rand::uniform`]).
#[unsafe(no_mangle)]
pub extern "C" fn flow_rand_uniform(seed: u64, n: u64) -> f32 {
    crate::rand::uniform(seed, n)
}

/// Element `n` of `rand_normal(seed, …)` ([`crate::rand::normal`]).
#[unsafe(no_mangle)]
pub extern "C" fn flow_rand_normal(seed: u64, n: u64) -> f32 {
    crate::rand::normal(seed, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that exercise the special cases of the math functions.
    const F32S: [f32; 14] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -2.75,
        88.0,
        -104.0,
        1e-30,
        3.0e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        std::f32::consts::PI,
    ];

    fn same32(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    fn same64(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn builtins_match_rust_float_methods_bit_for_bit() {
        for &x in &F32S {
            assert!(same32(flow_expf(x), crate::fastmath::exp_f32(x)));
            assert!(same32(flow_logf(x), x.ln()));
            assert!(same32(flow_sinf(x), x.sin()));
            assert!(same32(flow_cosf(x), x.cos()));
            assert!(same32(flow_atanf(x), x.atan()));
            assert!(same32(flow_asinf(x), x.asin()));
            assert!(same32(flow_acosf(x), x.acos()));
            assert!(same32(flow_atan2f(x, -2.0), x.atan2(-2.0)));
            assert!(same32(flow_tanhf(x), x.tanh()));
            let d = x as f64 * 1.25;
            assert!(same64(flow_exp(d), d.exp()));
            assert!(same64(flow_log(d), d.ln()));
            assert!(same64(flow_sin(d), d.sin()));
            assert!(same64(flow_cos(d), d.cos()));
            assert!(same64(flow_atan(d), d.atan()));
            assert!(same64(flow_asin(d), d.asin()));
            assert!(same64(flow_acos(d), d.acos()));
            assert!(same64(flow_atan2(d, 0.5), d.atan2(0.5)));
            assert!(same64(flow_tanh(d), d.tanh()));
            for &y in &F32S {
                assert!(same32(flow_powf(x, y), x.powf(y)));
                assert!(same32(flow_fmodf(x, y), x % y));
                let e = y as f64;
                assert!(same64(flow_pow(d, e), d.powf(e)));
                assert!(same64(flow_fmod(d, e), d % e));
            }
        }
        assert_eq!(flow_fmodf(-7.5, 2.0), -1.5);
    }

    #[test]
    fn random_builtins_are_the_runtime_generator() {
        for n in [0u64, 1, 12345, 1 << 33] {
            assert_eq!(flow_rand_uniform(42, n), crate::rand::uniform(42, n));
            assert_eq!(flow_rand_normal(42, n), crate::rand::normal(42, n));
        }
    }

    #[test]
    fn the_symbol_table_lists_every_builtin_once() {
        let syms = builtin_symbols();
        assert_eq!(syms.len(), 29);
        let mut names: Vec<&str> = syms.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), syms.len());
        assert!(syms
            .iter()
            .all(|(n, p)| n.starts_with("flow_") && !p.is_null()));
        let exp = syms.iter().find(|(n, _)| *n == "flow_expf").unwrap().1;
        assert_eq!(exp, flow_expf as *const u8);
    }

    #[test]
    fn the_kernel_table_entry_has_the_c_layout() {
        assert_eq!(
            std::mem::size_of::<AotKernel>(),
            3 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::offset_of!(AotKernel, key_len),
            std::mem::size_of::<usize>()
        );
    }

    /// A hand-written kernel with the ABI: `out[i] = a[i] / b[i]` over rows `lo..hi` of a
    /// one-dimensional space of `i32`s, as generated code would do it.
    unsafe extern "C" fn divide(bufs: *const *mut u8, dims: *const i64, lo: i64, hi: i64) -> i32 {
        // SAFETY: the caller passes three i32 buffers covering the rows, and the extents.
        unsafe {
            assert_eq!(*dims, 4);
            let bufs = std::slice::from_raw_parts(bufs, 3);
            let (a, b, out) = (
                bufs[0] as *const i32,
                bufs[1] as *const i32,
                bufs[2] as *mut i32,
            );
            for i in lo..hi {
                let (x, y) = (*a.offset(i as isize), *b.offset(i as isize));
                if y == 0 {
                    return ERR_DIV_ZERO;
                }
                match x.checked_div(y) {
                    Some(q) => *out.offset(i as isize) = q,
                    None => return ERR_DIV_OVERFLOW,
                }
            }
            OK
        }
    }

    #[test]
    fn a_kernel_runs_through_the_abi() {
        let mut a = vec![10, 20, 30, i32::MIN];
        let mut b = vec![2, 5, 0, -1];
        let mut out = vec![0i32; 4];
        let bufs = [
            a.as_mut_ptr() as *mut u8,
            b.as_mut_ptr() as *mut u8,
            out.as_mut_ptr() as *mut u8,
        ];
        let kernel: KernelFn = divide;
        // SAFETY: the buffers match the kernel and cover the boxes.
        let status = |lo, hi| unsafe { call_kernel(kernel, &bufs, &[4, 4, 4], lo, hi) };
        assert_eq!(status(0, 2), OK);
        assert_eq!(status(1, 3), ERR_DIV_ZERO);
        assert_eq!(status(3, 4), ERR_DIV_OVERFLOW);
        assert_eq!(out, [5, 4, 0, 0]);
        assert_eq!(error_message(ERR_DIV_ZERO), "integer division by zero");
        assert_eq!(error_message(99), "unknown kernel error");
    }
}
