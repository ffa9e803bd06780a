//! Dense row-major tensors: element types, scalars, typed storage and shape arithmetic.
//!
//! A [`Tensor`] is a shape plus a flat, row-major [`Data`] buffer whose length is the
//! product of the shape. Sizes are always computed with checked arithmetic, and
//! [`Tensor::zeros`] refuses a shape whose byte count overflows or exceeds
//! [`MAX_TENSOR_BYTES`] before it allocates anything.

use std::fmt;

/// The largest tensor, in bytes, that the runtime agrees to allocate (2^40 bytes, 1 TiB).
pub const MAX_TENSOR_BYTES: u64 = 1 << 40;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// Boolean, stored as one byte.
    Bool,
    /// 8-bit unsigned integer.
    U8,
    /// 32-bit unsigned integer.
    U32,
    /// 64-bit unsigned integer.
    U64,
}

impl DType {
    /// All element types, in a fixed order.
    pub const ALL: [DType; 8] = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::Bool,
        DType::U8,
        DType::U32,
        DType::U64,
    ];

    /// The size of one element in bytes (as stored in a `.npy` file).
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::Bool | DType::U8 => 1,
        }
    }

    /// The language's name of the type: `f32`, `f64`, `i32`, `i64`, `bool`, `u8`, `u32`
    /// or `u64`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::U8 => "u8",
            DType::U32 => "u32",
            DType::U64 => "u64",
        }
    }

    /// Parses a type name as written in the language (`f32`, ..., `bool`).
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether the type is `f32` or `f64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Whether the type is an integer, signed (`i32`, `i64`) or unsigned (`u8`, `u32`,
    /// `u64`).
    pub fn is_int(self) -> bool {
        self.is_signed_int() || self.is_unsigned()
    }

    /// Whether the type is `i32` or `i64`.
    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }

    /// Whether the type is `u8`, `u32` or `u64`.
    pub fn is_unsigned(self) -> bool {
        matches!(self, DType::U8 | DType::U32 | DType::U64)
    }

    /// The width in bits of an integer type (`None` for floats and `bool`).
    pub fn int_bits(self) -> Option<u32> {
        match self {
            DType::U8 => Some(8),
            DType::I32 | DType::U32 => Some(32),
            DType::I64 | DType::U64 => Some(64),
            DType::F32 | DType::F64 | DType::Bool => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One value of some element type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// An `f32` value.
    F32(f32),
    /// An `f64` value.
    F64(f64),
    /// An `i32` value.
    I32(i32),
    /// An `i64` value.
    I64(i64),
    /// A `bool` value.
    Bool(bool),
    /// A `u8` value.
    U8(u8),
    /// A `u32` value.
    U32(u32),
    /// A `u64` value.
    U64(u64),
}

/// Converts a primitive number to the scalar of type `$to` (never `Bool`) with `as`.
macro_rules! cast_num {
    ($v:expr, $to:expr) => {
        match $to {
            DType::F32 => Scalar::F32($v as f32),
            DType::F64 => Scalar::F64($v as f64),
            DType::I32 => Scalar::I32($v as i32),
            DType::I64 => Scalar::I64($v as i64),
            DType::U8 => Scalar::U8($v as u8),
            DType::U32 => Scalar::U32($v as u32),
            DType::U64 => Scalar::U64($v as u64),
            DType::Bool => unreachable!("casts to bool are handled before cast_num"),
        }
    };
}

impl Scalar {
    /// The element type of the value.
    pub fn dtype(&self) -> DType {
        match self {
            Scalar::F32(_) => DType::F32,
            Scalar::F64(_) => DType::F64,
            Scalar::I32(_) => DType::I32,
            Scalar::I64(_) => DType::I64,
            Scalar::Bool(_) => DType::Bool,
            Scalar::U8(_) => DType::U8,
            Scalar::U32(_) => DType::U32,
            Scalar::U64(_) => DType::U64,
        }
    }

    /// The value as an `f64` (`true` is 1, `false` is 0; large `i64`s round).
    pub fn as_f64(&self) -> f64 {
        match *self {
            Scalar::F32(v) => v as f64,
            Scalar::F64(v) => v,
            Scalar::I32(v) => v as f64,
            Scalar::I64(v) => v as f64,
            Scalar::Bool(v) => v as u8 as f64,
            Scalar::U8(v) => v as f64,
            Scalar::U32(v) => v as f64,
            Scalar::U64(v) => v as f64,
        }
    }

    /// Converts the value to another element type with Rust `as` semantics.
    ///
    /// Float to integer truncates toward zero and saturates (NaN becomes 0; a negative float
    /// becomes 0 as an unsigned integer); integer to integer keeps the low bits of the two's
    /// complement (`-1i64 as u8 == 255`, `u64::MAX as i64 == -1`); integer to float rounds to
    /// nearest; a `bool` becomes 0 or 1; a number becomes `bool` when it is not zero (NaN is
    /// `true`).
    pub fn cast(&self, to: DType) -> Scalar {
        match (*self, to) {
            (Scalar::Bool(b), DType::Bool) => Scalar::Bool(b),
            (Scalar::Bool(b), _) => Scalar::I64(b as i64).cast(to),
            (s, DType::Bool) => Scalar::Bool(match s {
                Scalar::F32(v) => v != 0.0,
                Scalar::F64(v) => v != 0.0,
                Scalar::I32(v) => v != 0,
                Scalar::I64(v) => v != 0,
                Scalar::U8(v) => v != 0,
                Scalar::U32(v) => v != 0,
                Scalar::U64(v) => v != 0,
                Scalar::Bool(v) => v,
            }),
            (Scalar::F32(v), _) => cast_num!(v, to),
            (Scalar::F64(v), _) => cast_num!(v, to),
            (Scalar::I32(v), _) => cast_num!(v, to),
            (Scalar::I64(v), _) => cast_num!(v, to),
            (Scalar::U8(v), _) => cast_num!(v, to),
            (Scalar::U32(v), _) => cast_num!(v, to),
            (Scalar::U64(v), _) => cast_num!(v, to),
        }
    }
}

/// The flat, row-major element storage of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// `u8` elements.
    U8(Vec<u8>),
    /// `u32` elements.
    U32(Vec<u32>),
    /// `u64` elements.
    U64(Vec<u64>),
}

impl Data {
    /// A zero-filled (or `false`-filled) buffer of `len` elements.
    pub fn zeros(dtype: DType, len: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![0.0; len]),
            DType::F64 => Data::F64(vec![0.0; len]),
            DType::I32 => Data::I32(vec![0; len]),
            DType::I64 => Data::I64(vec![0; len]),
            DType::Bool => Data::Bool(vec![false; len]),
            DType::U8 => Data::U8(vec![0; len]),
            DType::U32 => Data::U32(vec![0; len]),
            DType::U64 => Data::U64(vec![0; len]),
        }
    }

    /// A zero-filled (or `false`-filled) buffer of `len` elements, or an error when the
    /// allocator cannot give the memory (the `vec!` of [`Data::zeros`] would abort the
    /// process). Fresh pages come zeroed from the system, as with `vec!`: nothing is written.
    pub fn try_zeros(dtype: DType, len: usize) -> Result<Data, AllocError> {
        let refused = AllocError { dtype, len };
        Ok(match dtype {
            DType::F32 => Data::F32(try_zeroed(len).ok_or(refused)?),
            DType::F64 => Data::F64(try_zeroed(len).ok_or(refused)?),
            DType::I32 => Data::I32(try_zeroed(len).ok_or(refused)?),
            DType::I64 => Data::I64(try_zeroed(len).ok_or(refused)?),
            DType::Bool => Data::Bool(try_zeroed(len).ok_or(refused)?),
            DType::U8 => Data::U8(try_zeroed(len).ok_or(refused)?),
            DType::U32 => Data::U32(try_zeroed(len).ok_or(refused)?),
            DType::U64 => Data::U64(try_zeroed(len).ok_or(refused)?),
        })
    }

    /// The element type of the buffer.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
            Data::U8(_) => DType::U8,
            Data::U32(_) => DType::U32,
            Data::U64(_) => DType::U64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::U32(v) => v.len(),
            Data::U64(v) => v.len(),
        }
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`.
    ///
    /// # Panics
    ///
    /// Panics when `index >= self.len()`, like slice indexing.
    pub fn get(&self, index: usize) -> Scalar {
        match self {
            Data::F32(v) => Scalar::F32(v[index]),
            Data::F64(v) => Scalar::F64(v[index]),
            Data::I32(v) => Scalar::I32(v[index]),
            Data::I64(v) => Scalar::I64(v[index]),
            Data::Bool(v) => Scalar::Bool(v[index]),
            Data::U8(v) => Scalar::U8(v[index]),
            Data::U32(v) => Scalar::U32(v[index]),
            Data::U64(v) => Scalar::U64(v[index]),
        }
    }

    /// Stores `value`, cast to the buffer's element type, at `index`.
    ///
    /// # Panics
    ///
    /// Panics when `index >= self.len()`, like slice indexing.
    pub fn set(&mut self, index: usize, value: Scalar) {
        let value = value.cast(self.dtype());
        match (self, value) {
            (Data::F32(v), Scalar::F32(x)) => v[index] = x,
            (Data::F64(v), Scalar::F64(x)) => v[index] = x,
            (Data::I32(v), Scalar::I32(x)) => v[index] = x,
            (Data::I64(v), Scalar::I64(x)) => v[index] = x,
            (Data::Bool(v), Scalar::Bool(x)) => v[index] = x,
            (Data::U8(v), Scalar::U8(x)) => v[index] = x,
            (Data::U32(v), Scalar::U32(x)) => v[index] = x,
            (Data::U64(v), Scalar::U64(x)) => v[index] = x,
            _ => unreachable!("Scalar::cast returns the requested type"),
        }
    }
}

/// A shape that cannot be used: too big to count or allocate, or not matching its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// The product of the dimensions does not fit in a `usize`.
    Overflow {
        /// The offending shape.
        shape: Vec<usize>,
    },
    /// The tensor would need more than [`MAX_TENSOR_BYTES`] bytes.
    TooLarge {
        /// The offending shape.
        shape: Vec<usize>,
        /// The element type.
        dtype: DType,
        /// The number of bytes the tensor would need.
        bytes: u128,
    },
    /// The system cannot give the memory for the tensor.
    OutOfMemory {
        /// The shape.
        shape: Vec<usize>,
        /// The element type.
        dtype: DType,
    },
    /// A data buffer's length is not the product of the shape.
    LengthMismatch {
        /// The shape.
        shape: Vec<usize>,
        /// The number of elements the data holds.
        len: usize,
    },
}

/// An allocation the system refused: `len` elements of `dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError {
    /// The element type.
    pub dtype: DType,
    /// The number of elements.
    pub len: usize,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of memory: the system refused {} bytes for {} {} elements",
            self.len as u128 * self.dtype.size_bytes() as u128,
            self.len,
            self.dtype
        )
    }
}

impl std::error::Error for AllocError {}

/// The element types whose all-zero bytes are a value (`0`, `0.0`, `false`).
trait Zeroable: Copy {}
impl Zeroable for f32 {}
impl Zeroable for f64 {}
impl Zeroable for i32 {}
impl Zeroable for i64 {}
impl Zeroable for u8 {}
impl Zeroable for u32 {}
impl Zeroable for u64 {}
impl Zeroable for bool {}

/// `vec![0; len]`, or `None` where `vec!` would abort because the allocator refused.
fn try_zeroed<T: Zeroable>(len: usize) -> Option<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(len).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout's size is not zero.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of a `Vec<T>` of
    // capacity `len` (`Layout::array::<T>(len)`), and its `len` elements are initialized:
    // all-zero bytes are a value of every `Zeroable` type.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::Overflow { shape } => write!(
                f,
                "shape {} has too many elements to count (the size overflows)",
                format_shape(shape)
            ),
            ShapeError::TooLarge {
                shape,
                dtype,
                bytes,
            } => write!(
                f,
                "a {dtype} tensor of shape {} would need {bytes} bytes, more than the limit of {MAX_TENSOR_BYTES} bytes",
                format_shape(shape)
            ),
            ShapeError::OutOfMemory { shape, dtype } => write!(
                f,
                "a {dtype} tensor of shape {} needs {} bytes, and the system cannot give them (out of memory)",
                format_shape(shape),
                shape.iter().map(|&d| d as u128).product::<u128>() * dtype.size_bytes() as u128
            ),
            ShapeError::LengthMismatch { shape, len } => write!(
                f,
                "shape {} does not match the {len} elements of its data",
                format_shape(shape)
            ),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Formats a shape as the language writes it: `[2, 3]`, or `[]` for a scalar.
pub fn format_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// The number of elements of a shape (1 for the scalar shape `[]`), or an error when it
/// overflows a `usize`.
pub fn num_elements(shape: &[usize]) -> Result<usize, ShapeError> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| ShapeError::Overflow {
            shape: shape.to_vec(),
        })
}

/// Checks that a tensor of `dtype` and `shape` can be allocated, and returns its element count.
///
/// On success the byte count, `count * dtype.size_bytes()`, is at most [`MAX_TENSOR_BYTES`]
/// and fits in a `usize`.
pub fn checked_size(dtype: DType, shape: &[usize]) -> Result<usize, ShapeError> {
    let n = num_elements(shape)?;
    let bytes = n as u128 * dtype.size_bytes() as u128;
    if bytes > MAX_TENSOR_BYTES as u128 || bytes > usize::MAX as u128 {
        return Err(ShapeError::TooLarge {
            shape: shape.to_vec(),
            dtype,
            bytes,
        });
    }
    Ok(n)
}

/// A dense tensor: a row-major buffer of `product(shape)` elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements in row-major order.
    pub data: Data,
}

impl Tensor {
    /// A tensor from a shape and a buffer, checking that their sizes agree.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, ShapeError> {
        if num_elements(&shape)? != data.len() {
            return Err(ShapeError::LengthMismatch {
                shape,
                len: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A zero-filled tensor; the size is checked before anything is allocated.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Tensor, ShapeError> {
        let n = checked_size(dtype, shape)?;
        let data = Data::try_zeros(dtype, n).map_err(|_| ShapeError::OutOfMemory {
            shape: shape.to_vec(),
            dtype,
        })?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A rank-0 tensor holding one value.
    pub fn from_scalar(value: Scalar) -> Tensor {
        let data = match value {
            Scalar::F32(v) => Data::F32(vec![v]),
            Scalar::F64(v) => Data::F64(vec![v]),
            Scalar::I32(v) => Data::I32(vec![v]),
            Scalar::I64(v) => Data::I64(vec![v]),
            Scalar::U8(v) => Data::U8(vec![v]),
            Scalar::U32(v) => Data::U32(vec![v]),
            Scalar::U64(v) => Data::U64(vec![v]),
            Scalar::Bool(v) => Data::Bool(vec![v]),
        };
        Tensor {
            shape: Vec::new(),
            data,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The element at a row-major linear index.
    ///
    /// # Panics
    ///
    /// Panics when `index >= self.len()`, like slice indexing.
    pub fn get(&self, index: usize) -> Scalar {
        self.data.get(index)
    }

    /// Stores `value`, cast to the tensor's element type, at a row-major linear index.
    ///
    /// # Panics
    ///
    /// Panics when `index >= self.len()`, like slice indexing.
    pub fn set(&mut self, index: usize, value: Scalar) {
        self.data.set(index, value);
    }

    /// The tensor converted element by element to another type ([`Scalar::cast`] semantics).
    pub fn cast(&self, to: DType) -> Tensor {
        if to == self.dtype() {
            return self.clone();
        }
        let mut out = Tensor {
            shape: self.shape.clone(),
            data: Data::zeros(to, self.len()),
        };
        for i in 0..self.len() {
            out.data.set(i, self.data.get(i));
        }
        out
    }

    /// The row-major strides, in elements: the last dimension has stride 1.
    pub fn strides(&self) -> Vec<usize> {
        row_major_strides(&self.shape)
    }
}

/// The row-major strides of a shape, in elements (wrapping is impossible for a shape whose
/// size was checked, and harmless for an empty one).
pub fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1].saturating_mul(shape[i + 1]);
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_and_sizes() {
        assert_eq!(DType::F32.to_string(), "f32");
        assert_eq!(DType::Bool.to_string(), "bool");
        assert_eq!(DType::I64.size_bytes(), 8);
        assert_eq!(DType::Bool.size_bytes(), 1);
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("u8"), Some(DType::U8));
        assert_eq!(DType::U64.size_bytes(), 8);
        assert_eq!(DType::U8.int_bits(), Some(8));
        assert!(DType::U32.is_int() && DType::U32.is_unsigned() && !DType::U32.is_signed_int());
        assert_eq!(DType::from_name("u16"), None);
    }

    #[test]
    fn scalar_casts_follow_rust_as() {
        assert_eq!(Scalar::F32(2.9).cast(DType::I32), Scalar::I32(2));
        assert_eq!(Scalar::F32(-2.9).cast(DType::I64), Scalar::I64(-2));
        assert_eq!(Scalar::F64(1e20).cast(DType::I32), Scalar::I32(i32::MAX));
        assert_eq!(Scalar::F64(f64::NAN).cast(DType::I64), Scalar::I64(0));
        assert_eq!(Scalar::I64(1 << 40).cast(DType::I32), Scalar::I32(0));
        assert_eq!(Scalar::I32(-1).cast(DType::I64), Scalar::I64(-1));
        assert_eq!(Scalar::Bool(true).cast(DType::F32), Scalar::F32(1.0));
        assert_eq!(Scalar::Bool(false).cast(DType::I64), Scalar::I64(0));
        assert_eq!(Scalar::F32(0.0).cast(DType::Bool), Scalar::Bool(false));
        assert_eq!(Scalar::F32(-0.0).cast(DType::Bool), Scalar::Bool(false));
        assert_eq!(Scalar::F64(f64::NAN).cast(DType::Bool), Scalar::Bool(true));
        assert_eq!(Scalar::I32(-3).cast(DType::Bool), Scalar::Bool(true));
        assert_eq!(Scalar::I64(7).cast(DType::F64), Scalar::F64(7.0));
        assert_eq!(Scalar::Bool(true).as_f64(), 1.0);
        assert_eq!(Scalar::I32(5).dtype(), DType::I32);
    }

    #[test]
    fn zeros_get_set_cast() {
        let mut t = Tensor::zeros(DType::F32, &[2, 3]).unwrap();
        assert_eq!(t.len(), 6);
        assert_eq!(t.rank(), 2);
        assert_eq!(t.strides(), vec![3, 1]);
        t.set(4, Scalar::I64(7));
        assert_eq!(t.get(4), Scalar::F32(7.0));
        let b = t.cast(DType::Bool);
        assert_eq!(
            b.data,
            Data::Bool(vec![false, false, false, false, true, false])
        );
        let i = t.cast(DType::I32);
        assert_eq!(i.get(4), Scalar::I32(7));
        assert_eq!(Tensor::zeros(DType::I64, &[]).unwrap().len(), 1);
        let e = Tensor::zeros(DType::F64, &[3, 0, 2]).unwrap();
        assert!(e.is_empty());
        assert_eq!(e.strides(), vec![0, 2, 1]);
        let s = Tensor::from_scalar(Scalar::Bool(true));
        assert_eq!(s.rank(), 0);
        assert_eq!(s.get(0), Scalar::Bool(true));
    }

    #[test]
    fn huge_shapes_are_errors_not_allocations() {
        let big = [1usize << 40, 1 << 40];
        let err = Tensor::zeros(DType::F32, &big).unwrap_err();
        assert!(matches!(err, ShapeError::Overflow { .. }), "{err}");
        assert!(err.to_string().contains("[1099511627776, 1099511627776]"));
        let err = Tensor::zeros(DType::F64, &[1 << 20, 1 << 20]).unwrap_err();
        assert_eq!(
            err,
            ShapeError::TooLarge {
                shape: vec![1 << 20, 1 << 20],
                dtype: DType::F64,
                bytes: 1 << 43
            }
        );
        assert!(err
            .to_string()
            .contains("f64 tensor of shape [1048576, 1048576]"));
        assert_eq!(num_elements(&[usize::MAX, 0]).unwrap(), 0);
        assert!(num_elements(&[usize::MAX, 2]).is_err());
    }

    #[test]
    fn a_refused_allocation_is_an_error_not_an_abort() {
        // 2^46 f32 elements are 256 TiB, more than the address space of a 64-bit process
        // (128 TiB on x86-64 and AArch64 Linux): the allocator refuses them for sure.
        let len = 1usize << 46;
        let err = Data::try_zeros(DType::F32, len).unwrap_err();
        assert_eq!(
            err,
            AllocError {
                dtype: DType::F32,
                len
            }
        );
        assert!(err.to_string().contains("out of memory"), "{err}");
        // Small ones are zero-filled, of every type.
        for dtype in DType::ALL {
            let d = Data::try_zeros(dtype, 1000).expect("a small buffer");
            assert_eq!(d, Data::zeros(dtype, 1000));
        }
        assert_eq!(Data::try_zeros(DType::I64, 0), Ok(Data::I64(Vec::new())));
    }

    #[test]
    fn new_checks_length() {
        assert!(Tensor::new(vec![2], Data::I32(vec![1, 2])).is_ok());
        let err = Tensor::new(vec![2, 2], Data::I32(vec![1, 2])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape [2, 2] does not match the 2 elements of its data"
        );
    }

    #[test]
    fn shapes_format_like_the_language() {
        assert_eq!(format_shape(&[]), "[]");
        assert_eq!(format_shape(&[5]), "[5]");
        assert_eq!(format_shape(&[2, 3]), "[2, 3]");
    }
}
