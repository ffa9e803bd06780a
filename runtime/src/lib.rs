//! The Flow runtime: tensors, Philox random numbers, `.npy` encoding and value formatting.
//!
//! This crate is shared by the compiler's interpreter, its generated code and its driver,
//! and depends on no other crate. It does no file I/O: `.npy` files are decoded from and
//! encoded to byte buffers, and values are formatted to strings.

pub mod format;
pub mod npy;
pub mod rand;
pub mod tensor;

pub use format::{format_scalar, format_tensor};
pub use npy::{read_npy, write_npy, NpyError};
pub use tensor::{format_shape, num_elements, DType, Data, Scalar, ShapeError, Tensor};
