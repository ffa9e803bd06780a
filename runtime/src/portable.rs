//! Machine-independent math (`flowc run --portable-math`, or `FLOW_PORTABLE_MATH=1`): one
//! process-wide switch that every floating-point routine whose bits could depend on the
//! machine consults, on both backends alike.
//!
//! Off (the default), the math built-ins are Rust's `f32`/`f64` methods — the platform C
//! library, which on x86-64 (glibc) may pick a variant built for FMA at run time — `exp` on
//! `f32` over spans runs the widest vector code the CPU has ([`crate::spanmath`]), and
//! contractions run the runtime's packed GEMM (`f32` with FMA in hardware, 64 columns or more)
//! or `matrixmultiply`'s kernel for the CPU's instruction set.
//!
//! On, every such routine takes a path whose bits depend only on the program:
//! - the math functions are the `libm` crate's (a Rust port of musl's libm: plain IEEE
//!   operations in software, compiled for baseline x86-64, so the same bits on every CPU);
//! - `exp` over spans runs the baseline (SSE2) variant, which gives the bits of
//!   [`crate::fastmath::exp_f32`] as every variant does;
//! - a contraction adds its products in order along `k`, one element at a time
//!   ([`crate::gemm`]'s portable kernel), with no fused multiply-add.
//!
//! The switch is read with a relaxed load per call: set it before the first computation
//! (the driver does, from the flag) and never change it while a program runs, or results
//! of one run would mix both definitions.

use std::sync::atomic::{AtomicBool, Ordering};

static PORTABLE: AtomicBool = AtomicBool::new(false);

/// Selects machine-independent math (`true`) or the fastest math of this machine (`false`,
/// the default) for the rest of the process.
pub fn set_portable_math(on: bool) {
    PORTABLE.store(on, Ordering::Relaxed);
}

/// Whether machine-independent math is selected.
#[inline]
pub fn portable_math() -> bool {
    PORTABLE.load(Ordering::Relaxed)
}

/// The math functions whose bits could depend on the machine, on `f32` and `f64`: each
/// is Rust's method unless [`portable_math`] is on, then `libm`'s. The interpreter and the
/// kernels' built-ins (`crate::abi`) both call these, so the backends agree either way.
pub trait FlowMath: Sized {
    fn flow_ln(self) -> Self;
    fn flow_sin(self) -> Self;
    fn flow_cos(self) -> Self;
    fn flow_tanh(self) -> Self;
    fn flow_atan(self) -> Self;
    fn flow_asin(self) -> Self;
    fn flow_acos(self) -> Self;
    fn flow_powf(self, y: Self) -> Self;
    fn flow_atan2(self, x: Self) -> Self;
    /// `exp` where it is not Flow's own polynomial (`f64`).
    fn flow_exp_libm(self) -> Self;
}

/// Implements [`FlowMath`] for one float type: `(method, libm function)` pairs.
macro_rules! flow_math {
    ($t:ty, $exp:ident, [$($name:ident: $method:ident, $libm:ident;)*], [$($name2:ident: $method2:ident, $libm2:ident;)*]) => {
        impl FlowMath for $t {
            $(
                #[inline]
                fn $name(self) -> $t {
                    if portable_math() { libm::$libm(self) } else { self.$method() }
                }
            )*
            $(
                #[inline]
                fn $name2(self, y: $t) -> $t {
                    if portable_math() { libm::$libm2(self, y) } else { self.$method2(y) }
                }
            )*
            #[inline]
            fn flow_exp_libm(self) -> $t {
                if portable_math() { libm::$exp(self) } else { self.exp() }
            }
        }
    };
}

flow_math!(f32, expf, [
    flow_ln: ln, logf;
    flow_sin: sin, sinf;
    flow_cos: cos, cosf;
    flow_tanh: tanh, tanhf;
    flow_atan: atan, atanf;
    flow_asin: asin, asinf;
    flow_acos: acos, acosf;
], [
    flow_powf: powf, powf;
    flow_atan2: atan2, atan2f;
]);

flow_math!(f64, exp, [
    flow_ln: ln, log;
    flow_sin: sin, sin;
    flow_cos: cos, cos;
    flow_tanh: tanh, tanh;
    flow_atan: atan, atan;
    flow_asin: asin, asin;
    flow_acos: acos, acos;
], [
    flow_powf: powf, pow;
    flow_atan2: atan2, atan2;
]);
