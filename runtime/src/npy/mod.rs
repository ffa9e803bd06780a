//! Decoding and encoding of NumPy `.npy` files, bytes in and bytes out.
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, C-order arrays, and the little-endian
//! dtypes `<f4 <f8 <i4 <i8` plus booleans (`|b1`, with any byte-order mark). The header,
//! a Python dict literal, is read by a small hand-written parser that accepts its keys in
//! any order, either quote style, any whitespace and an optional trailing comma. Every
//! malformed input is reported as an [`NpyError`]; reading never panics, and it allocates
//! only after checking that the file holds all the data its header announces.
//!
//! Layout: this file holds the errors, reading (the file's framing and its data) and writing;
//! `header.rs` parses the header's dict literal; `tests.rs` the tests.
//!
//! Writing produces version 1.0 (2.0 when the header would not fit), with the header padded
//! by spaces and a final newline so that the data starts at a multiple of 64 bytes, as NumPy
//! does.

use std::fmt;

use crate::tensor::{checked_size, DType, Data, ShapeError, Tensor};

mod header;

use header::{parse_header, Header};

/// The six bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// How deeply the header's tuples, lists and dicts may nest before it is rejected.
const MAX_NESTING: usize = 32;

/// What is wrong with a `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NpyError {
    /// The file does not start with `\x93NUMPY`.
    BadMagic,
    /// The format version is not 1.0, 2.0 or 3.0.
    UnsupportedVersion {
        /// The major version byte.
        major: u8,
        /// The minor version byte.
        minor: u8,
    },
    /// The file ends before its header does.
    TruncatedHeader {
        /// The number of bytes the file needs to hold its whole header.
        expected: usize,
        /// The number of bytes the file has.
        found: usize,
    },
    /// The file holds fewer data bytes than its header announces.
    Truncated {
        /// The number of data bytes the header announces.
        expected: usize,
        /// The number of data bytes present.
        found: usize,
    },
    /// The file holds more data bytes than its header announces.
    TrailingData {
        /// The number of data bytes the header announces.
        expected: usize,
        /// The number of data bytes present.
        found: usize,
    },
    /// The header dict is malformed; the text says how.
    BadHeader(String),
    /// The dtype is not one of the supported ones; holds the dtype as written.
    UnsupportedDType(String),
    /// The array is stored in Fortran (column-major) order.
    FortranOrder,
    /// The dtype is big-endian; holds the dtype as written.
    BigEndian(String),
    /// The shape is too large to count or to allocate.
    SizeOverflow(ShapeError),
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyError::BadMagic => f.write_str("not a .npy file (bad magic bytes)"),
            NpyError::UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            ),
            NpyError::TruncatedHeader { expected, found } => write!(
                f,
                "file is truncated: its header needs {expected} bytes, found {found}"
            ),
            NpyError::Truncated { expected, found } => write!(
                f,
                "file is truncated: header says {expected} bytes of data, found {found}"
            ),
            NpyError::TrailingData { expected, found } => write!(
                f,
                "file has extra bytes: header says {expected} bytes of data, found {found}"
            ),
            NpyError::BadHeader(what) => write!(f, "malformed .npy header: {what}"),
            NpyError::UnsupportedDType(d) => write!(
                f,
                "unsupported dtype {d} (supported: '<f4', '<f8', '<i4', '<i8', '|b1')"
            ),
            NpyError::FortranOrder => f.write_str(
                "Fortran-order (column-major) arrays are unsupported; save the array in C order",
            ),
            NpyError::BigEndian(d) => write!(
                f,
                "big-endian dtype '{d}' is unsupported; save the array as little-endian"
            ),
            NpyError::SizeOverflow(e) => write!(f, "array too large: {e}"),
        }
    }
}

impl std::error::Error for NpyError {}

/// How long a `.npy` file is, as far as its first bytes tell (see [`file_len`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileLen {
    /// The first `n` bytes are needed to tell (the bytes given are a prefix of a header).
    AtLeast(usize),
    /// The header says the file has `n` bytes.
    Total(usize),
}

/// The length of a `.npy` file from its first bytes, so that a reader checks the header
/// before it reads the body and never reads past what the header announces. An error is
/// what [`read_npy`] reports for any file starting with `prefix`.
pub fn file_len(prefix: &[u8]) -> Result<FileLen, NpyError> {
    match split_header(prefix) {
        Ok((header, end)) => {
            let count =
                checked_size(header.dtype, &header.shape).map_err(NpyError::SizeOverflow)?;
            // At most 2^40 data bytes (`checked_size`) after a header of at most 2^32.
            Ok(FileLen::Total(end + count * header.dtype.size_bytes()))
        }
        Err(NpyError::TruncatedHeader { expected, found }) if found == prefix.len() => {
            Ok(FileLen::AtLeast(expected))
        }
        Err(e) => Err(e),
    }
}

/// Decodes a whole `.npy` file.
pub fn read_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let (header, end) = split_header(bytes)?;
    let count = checked_size(header.dtype, &header.shape).map_err(NpyError::SizeOverflow)?;
    let expected = count * header.dtype.size_bytes();
    let body = &bytes[end..];
    if body.len() < expected {
        return Err(NpyError::Truncated {
            expected,
            found: body.len(),
        });
    }
    if body.len() > expected {
        return Err(NpyError::TrailingData {
            expected,
            found: body.len(),
        });
    }
    let data = decode(header.dtype, body);
    Tensor::new(header.shape, data).map_err(NpyError::SizeOverflow)
}

/// The parsed header of a `.npy` file and where its data starts.
fn split_header(bytes: &[u8]) -> Result<(Header, usize), NpyError> {
    if !bytes.starts_with(MAGIC) && !MAGIC.starts_with(bytes) {
        return Err(NpyError::BadMagic);
    }
    if bytes.len() < 8 {
        return Err(NpyError::TruncatedHeader {
            expected: 10,
            found: bytes.len(),
        });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let start = 8 + len_bytes;
    if bytes.len() < start {
        return Err(NpyError::TruncatedHeader {
            expected: start,
            found: bytes.len(),
        });
    }
    let header_len = bytes[8..start]
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    let end = start.saturating_add(header_len);
    if bytes.len() < end {
        return Err(NpyError::TruncatedHeader {
            expected: end,
            found: bytes.len(),
        });
    }
    Ok((parse_header(&bytes[start..end])?, end))
}

/// Decodes little-endian elements; `body.len()` is a multiple of the element size.
fn decode(dtype: DType, body: &[u8]) -> Data {
    fn words<const N: usize, T>(body: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        body.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect()
    }
    match dtype {
        DType::F32 => Data::F32(words(body, f32::from_le_bytes)),
        DType::F64 => Data::F64(words(body, f64::from_le_bytes)),
        DType::I32 => Data::I32(words(body, i32::from_le_bytes)),
        DType::I64 => Data::I64(words(body, i64::from_le_bytes)),
        DType::U8 => Data::U8(body.to_vec()),
        DType::U32 => Data::U32(words(body, u32::from_le_bytes)),
        DType::U64 => Data::U64(words(body, u64::from_le_bytes)),
        DType::Bool => Data::Bool(body.iter().map(|&b| b != 0).collect()),
    }
}

/// Encodes a tensor as a `.npy` file.
pub fn write_npy(t: &Tensor) -> Vec<u8> {
    let descr = match t.dtype() {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
        DType::U8 => "|u1",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
    };
    let shape = match t.shape.as_slice() {
        [d] => format!("({d},)"),
        dims => {
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // The header, its padding and the final newline end on a 64-byte boundary.
    let padded = |prefix: usize| (prefix + header.len() + 1).div_ceil(64) * 64 - prefix;
    let (version, prefix) = if padded(10) <= u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = padded(prefix);
    while header.len() + 1 < total {
        header.push(' ');
    }
    header.push('\n');

    let mut out = Vec::with_capacity(prefix + header.len() + t.len() * t.dtype().size_bytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    match &t.data {
        Data::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::U8(v) => out.extend_from_slice(v),
        Data::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
    }
    out
}

#[cfg(test)]
mod tests;
