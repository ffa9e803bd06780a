//! The Flow runtime: tensors, Philox random numbers, `.npy` encoding, value formatting, the
//! worker pool that runs shard tasks (and retries failed ones), the fault model and fault
//! injection, profiling and progress hooks, the buffer pool, matrix products (`gemm`), and
//! the C ABI of generated kernels (with the math built-ins they call).
//!
//! This crate is shared by the compiler's interpreter, its generated code and its driver. It
//! depends on no crate of ours (only on rayon, for the worker pool, and matrixmultiply, for
//! the GEMM kernels of contractions, and libm, for machine-independent math under
//! `--portable-math`). It does no file I/O:
//! `.npy` files are decoded from and encoded to byte buffers, and values are formatted to
//! strings.

pub mod abi;
pub mod alloc;
pub mod buffers;
pub mod fastmath;
pub mod fault;
pub mod format;
pub mod gemm;
pub mod gemm_narrow;
pub mod gemm_packed;
#[cfg(target_arch = "x86_64")]
mod gemm_x86;
pub mod npy;
pub mod pool;
pub mod portable;
pub mod prims;
pub mod profile;
pub mod rand;
pub mod spanmath;
pub mod spanmoments;
pub mod spanrows;
pub mod spanwindow;
pub mod tensor;

pub use format::{format_scalar, format_tensor};
pub use npy::{read_npy, write_npy, NpyError};
pub use tensor::{format_shape, num_elements, AllocError, DType, Data, Scalar, ShapeError, Tensor};
