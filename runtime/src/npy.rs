//! Decoding and encoding of NumPy `.npy` files, bytes in and bytes out.
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, C-order arrays, and the little-endian
//! dtypes `<f4 <f8 <i4 <i8` plus booleans (`|b1`, with any byte-order mark). The header,
//! a Python dict literal, is read by a small hand-written parser that accepts its keys in
//! any order, either quote style, any whitespace and an optional trailing comma. Every
//! malformed input is reported as an [`NpyError`]; reading never panics, and it allocates
//! only after checking that the file holds all the data its header announces.
//!
//! Writing produces version 1.0 (2.0 when the header would not fit), with the header padded
//! by spaces and a final newline so that the data starts at a multiple of 64 bytes, as NumPy
//! does.

use std::fmt;

use crate::tensor::{checked_size, DType, Data, ShapeError, Tensor};

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
        Data::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
    }
    out
}

/// The meaning of a header: element type and shape.
struct Header {
    dtype: DType,
    shape: Vec<usize>,
}

/// A Python literal as it may appear in a `.npy` header.
#[derive(Debug)]
enum Value {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    /// A list; its items are checked for syntax but not kept.
    List,
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// A short description of the value's kind, for error messages.
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::None => "None",
            Value::Tuple(_) => "a tuple",
            Value::List => "a list",
            Value::Dict(_) => "a dict",
        }
    }
}

/// Interprets the header text (the bytes between the length field and the data).
fn parse_header(text: &[u8]) -> Result<Header, NpyError> {
    let mut p = Parser { s: text, pos: 0 };
    p.skip_ws();
    let dict = match p.value(0).map_err(NpyError::BadHeader)? {
        Value::Dict(d) => d,
        other => {
            return Err(NpyError::BadHeader(format!(
                "expected a dict, found {}",
                other.kind()
            )))
        }
    };
    // NumPy pads with spaces and a newline; tolerate NUL padding from other writers too.
    while p.pos < text.len() && (text[p.pos].is_ascii_whitespace() || text[p.pos] == 0) {
        p.pos += 1;
    }
    if p.pos < text.len() {
        return Err(NpyError::BadHeader(format!(
            "unexpected text after the dict at byte {}",
            p.pos
        )));
    }

    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in dict {
        let slot = match &key {
            Value::Str(k) if k == "descr" => &mut descr,
            Value::Str(k) if k == "fortran_order" => &mut fortran,
            Value::Str(k) if k == "shape" => &mut shape,
            Value::Str(k) => return Err(NpyError::BadHeader(format!("unexpected key '{k}'"))),
            other => {
                return Err(NpyError::BadHeader(format!(
                    "keys must be strings, found {}",
                    other.kind()
                )))
            }
        };
        if slot.replace(value).is_some() {
            let Value::Str(k) = key else { unreachable!() };
            return Err(NpyError::BadHeader(format!("duplicate key '{k}'")));
        }
    }
    let missing = |k: &str| NpyError::BadHeader(format!("missing key '{k}'"));
    let descr = descr.ok_or_else(|| missing("descr"))?;
    let fortran = fortran.ok_or_else(|| missing("fortran_order"))?;
    let shape = shape.ok_or_else(|| missing("shape"))?;

    let shape = match shape {
        Value::Tuple(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(d) => usize::try_from(d).map_err(|_| {
                    NpyError::BadHeader(format!("shape dimension {d} is out of range"))
                }),
                other => Err(NpyError::BadHeader(format!(
                    "shape dimensions must be integers, found {}",
                    other.kind()
                ))),
            })
            .collect::<Result<Vec<usize>, NpyError>>()?,
        other => {
            return Err(NpyError::BadHeader(format!(
                "'shape' must be a tuple, found {}",
                other.kind()
            )))
        }
    };
    let dtype = match descr {
        Value::Str(d) => parse_descr(&d)?,
        Value::List => {
            return Err(NpyError::UnsupportedDType(
                "(a structured record type)".to_string(),
            ))
        }
        other => {
            return Err(NpyError::BadHeader(format!(
                "'descr' must be a string, found {}",
                other.kind()
            )))
        }
    };
    match fortran {
        Value::Bool(false) => {}
        // With at most one dimension longer than 1, both orders lay the data out alike.
        Value::Bool(true) if shape.iter().filter(|&&d| d > 1).count() <= 1 => {}
        Value::Bool(true) => return Err(NpyError::FortranOrder),
        other => {
            return Err(NpyError::BadHeader(format!(
                "'fortran_order' must be True or False, found {}",
                other.kind()
            )))
        }
    }
    if let Err(e) = checked_size(dtype, &shape) {
        return Err(NpyError::SizeOverflow(e));
    }
    Ok(Header { dtype, shape })
}

/// Maps a dtype string such as `<f4` to an element type.
fn parse_descr(descr: &str) -> Result<DType, NpyError> {
    let mut chars = descr.chars();
    let order = chars.next();
    let kind = chars.as_str();
    if matches!(order, Some('<' | '>' | '|' | '=')) && kind == "b1" {
        return Ok(DType::Bool);
    }
    let dtype = match kind {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "i4" => DType::I32,
        "i8" => DType::I64,
        _ => return Err(NpyError::UnsupportedDType(format!("'{descr}'"))),
    };
    match order {
        Some('<') => Ok(dtype),
        Some('>') => Err(NpyError::BigEndian(descr.to_string())),
        _ => Err(NpyError::UnsupportedDType(format!("'{descr}'"))),
    }
}

/// A recursive-descent parser for the Python literals of a `.npy` header.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Describes the current position for an error message.
    fn here(&self) -> String {
        match self.peek() {
            Some(c) if c.is_ascii_graphic() => format!("'{}' at byte {}", c as char, self.pos),
            Some(c) => format!("byte 0x{c:02x} at byte {}", self.pos),
            None => "the end of the header".to_string(),
        }
    }

    /// Parses one value; leading whitespace is already skipped, trailing is skipped here.
    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_NESTING {
            return Err(format!("values nest too deeply at byte {}", self.pos));
        }
        let v = match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q)?,
            Some(b'(') => {
                let (items, trailing_comma) = self.sequence(b')', depth)?;
                if items.len() == 1 && !trailing_comma {
                    // `(x)` is just a parenthesized `x` in Python.
                    items.into_iter().next().expect("one item")
                } else {
                    Value::Tuple(items)
                }
            }
            Some(b'[') => {
                self.sequence(b']', depth)?;
                Value::List
            }
            Some(b'{') => self.dict(depth)?,
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.int()?,
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Value::Bool(true),
                    b"False" => Value::Bool(false),
                    b"None" => Value::None,
                    word => {
                        return Err(format!(
                            "unknown name '{}' at byte {start}",
                            String::from_utf8_lossy(word)
                        ))
                    }
                }
            }
            _ => return Err(format!("expected a value, found {}", self.here())),
        };
        self.skip_ws();
        Ok(v)
    }

    /// Parses a quoted string starting at the quote `q`, with backslash escapes.
    fn string(&mut self, q: u8) -> Result<Value, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated string starting at byte {start}")),
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => {
                            return Err(format!("unterminated string starting at byte {start}"))
                        }
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// Parses a decimal integer with an optional sign and Python 2 `L` suffix.
    fn int(&mut self) -> Result<Value, String> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let digits = self.pos;
        let mut n: i128 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add((c - b'0') as i128))
                .ok_or_else(|| format!("integer too large at byte {start}"))?;
            self.pos += 1;
        }
        if self.pos == digits {
            return Err(format!("expected digits after the sign at byte {start}"));
        }
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.')
        {
            return Err(format!("malformed number at byte {start}"));
        }
        Ok(Value::Int(if negative { -n } else { n }))
    }

    /// Parses `open item, item, ... close`; returns the items and whether a comma ended them.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<Value>, bool), String> {
        self.pos += 1;
        self.skip_ws();
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                    trailing_comma = true;
                }
                Some(c) if c == close => trailing_comma = false,
                _ => {
                    return Err(format!(
                        "expected ',' or '{}', found {}",
                        close as char,
                        self.here()
                    ))
                }
            }
        }
    }

    /// Parses `{key: value, ...}` with an optional trailing comma.
    fn dict(&mut self, depth: usize) -> Result<Value, String> {
        self.pos += 1;
        self.skip_ws();
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Value::Dict(entries));
            }
            let key = self.value(depth + 1)?;
            if self.peek() != Some(b':') {
                return Err(format!("expected ':', found {}", self.here()));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}', found {}", self.here())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Scalar;

    /// A test tensor of `dtype` and `shape` whose elements are distinct where possible.
    fn sample(dtype: DType, shape: &[usize]) -> Tensor {
        let mut t = Tensor::zeros(dtype, shape).unwrap();
        for i in 0..t.len() {
            let x = i as f64 * 1.5 - 3.25;
            t.set(
                i,
                match dtype {
                    DType::Bool => Scalar::Bool(i % 3 == 1),
                    DType::I32 | DType::I64 => Scalar::I64(i as i64 * 1_000_003 - 7),
                    _ => Scalar::F64(x),
                },
            );
        }
        t
    }

    #[test]
    fn round_trips_every_dtype_and_shape() {
        let shapes: [&[usize]; 6] = [&[], &[5], &[2, 3, 4], &[3, 0, 2], &[0], &[1, 1, 1, 1]];
        for dtype in DType::ALL {
            for shape in shapes {
                let t = sample(dtype, shape);
                let bytes = write_npy(&t);
                assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
                let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
                assert_eq!((10 + header_len) % 64, 0);
                assert_eq!(bytes[9 + header_len], b'\n');
                assert_eq!(bytes.len(), 10 + header_len + t.len() * dtype.size_bytes());
                assert_eq!(read_npy(&bytes).unwrap(), t, "{dtype} {shape:?}");
            }
        }
    }

    #[test]
    fn the_length_of_a_file_is_known_from_its_header_alone() {
        let bytes = write_npy(&sample(DType::F64, &[3, 5]));
        let mut read = 0;
        // A reader asks for more until the header is whole, then knows the total.
        loop {
            match file_len(&bytes[..read]).unwrap() {
                FileLen::AtLeast(n) => {
                    assert!(n > read && n <= bytes.len(), "{read} -> {n}");
                    read = n;
                }
                FileLen::Total(n) => {
                    assert_eq!(n, bytes.len());
                    break;
                }
            }
        }
        assert!(
            read < bytes.len(),
            "the body is not needed to know the length"
        );
        // Not a `.npy` file: known after its first byte.
        assert_eq!(file_len(b"\0"), Err(NpyError::BadMagic));
        let mut zeros = vec![0u8; 16];
        assert_eq!(file_len(&zeros), Err(NpyError::BadMagic));
        zeros[..8].copy_from_slice(b"\x93NUMPY\x09\x00");
        assert!(matches!(
            file_len(&zeros),
            Err(NpyError::UnsupportedVersion { major: 9, .. })
        ));
    }

    #[test]
    fn round_trips_special_floats() {
        let t = Tensor::new(
            vec![5],
            Data::F64(vec![
                f64::INFINITY,
                -0.0,
                f64::MIN_POSITIVE,
                f64::MAX,
                -1e-300,
            ]),
        )
        .unwrap();
        assert_eq!(read_npy(&write_npy(&t)).unwrap(), t);
        let nan = Tensor::from_scalar(Scalar::F32(f32::NAN));
        let back = read_npy(&write_npy(&nan)).unwrap();
        assert!(matches!(back.data, Data::F32(ref v) if v[0].is_nan()));
    }

    /// The header text of a version 1.0 file.
    fn header_of(bytes: &[u8]) -> &str {
        let n = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        std::str::from_utf8(&bytes[10..10 + n]).unwrap()
    }

    #[test]
    fn writes_the_header_numpy_writes() {
        let cases = [
            (
                sample(DType::F32, &[2, 3]),
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            ),
            (
                sample(DType::Bool, &[7]),
                "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }",
            ),
            (
                sample(DType::I64, &[]),
                "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
            ),
        ];
        for (t, want) in cases {
            let bytes = write_npy(&t);
            let header = header_of(&bytes);
            assert_eq!(header.trim_end(), want);
            assert!(header.ends_with(" \n"));
            assert_eq!((10 + header.len()) % 64, 0);
        }
    }

    #[test]
    fn writes_version_2_for_huge_headers() {
        let shape = vec![1usize; 30_000];
        let t = sample(DType::I32, &shape);
        let bytes = write_npy(&t);
        assert_eq!(&bytes[6..8], &[2, 0]);
        let header_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!((12 + header_len) % 64, 0);
        assert_eq!(read_npy(&bytes).unwrap(), t);
    }

    /// Builds a file by hand: magic, version, little-endian header length, header, data.
    fn hand_built(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, 0];
        let n = header.len();
        if major == 1 {
            f.push((n & 0xff) as u8);
            f.push((n >> 8) as u8);
        } else {
            f.extend([n as u8, (n >> 8) as u8, (n >> 16) as u8, (n >> 24) as u8]);
        }
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn reads_hand_built_version_1() {
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }          \n";
        let data = [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0, 1, 0, 0];
        let t = read_npy(&hand_built(1, header, &data)).unwrap();
        assert_eq!(t.shape, vec![3]);
        assert_eq!(t.data, Data::I32(vec![1, -2, 256]));
    }

    #[test]
    fn reads_hand_built_version_2_with_odd_formatting() {
        let header = "{ \"shape\" : ( 2 , 1 ) ,\t'fortran_order':True,'descr':\"<f8\"}\n";
        let mut data = Vec::new();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // 1.0
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x04, 0xc0]); // -2.5
        let t = read_npy(&hand_built(2, header, &data)).unwrap();
        assert_eq!(t.shape, vec![2, 1]);
        assert_eq!(t.data, Data::F64(vec![1.0, -2.5]));
    }

    #[test]
    fn reads_version_3_scalars_bools_and_python2_longs() {
        let header = "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n";
        let t = read_npy(&hand_built(3, header, &[1])).unwrap();
        assert_eq!(t, Tensor::from_scalar(Scalar::Bool(true)));
        let header = "{'descr': '<b1', 'fortran_order': False, 'shape': (2L, 2L)}";
        let t = read_npy(&hand_built(1, header, &[0, 1, 2, 0])).unwrap();
        assert_eq!(t.data, Data::Bool(vec![false, true, true, false]));
        let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (0, 4), }\0\0";
        let t = read_npy(&hand_built(1, header, &[])).unwrap();
        assert_eq!(t.shape, vec![0, 4]);
    }

    fn err(header: &str, data: &[u8]) -> NpyError {
        read_npy(&hand_built(1, header, data)).unwrap_err()
    }

    #[test]
    fn rejects_malformed_files_with_precise_errors() {
        let good = write_npy(&sample(DType::F32, &[2, 3]));

        let mut bad = good.clone();
        bad[1] = b'X';
        assert_eq!(read_npy(&bad).unwrap_err(), NpyError::BadMagic);
        assert_eq!(
            read_npy(b"hello world").unwrap_err().to_string(),
            "not a .npy file (bad magic bytes)"
        );
        assert!(matches!(
            read_npy(b"").unwrap_err(),
            NpyError::TruncatedHeader { found: 0, .. }
        ));

        assert_eq!(
            read_npy(&good[..40]).unwrap_err(),
            NpyError::TruncatedHeader {
                expected: 128,
                found: 40
            }
        );
        let e = read_npy(&good[..good.len() - 8]).unwrap_err();
        assert_eq!(
            e,
            NpyError::Truncated {
                expected: 24,
                found: 16
            }
        );
        assert_eq!(
            e.to_string(),
            "file is truncated: header says 24 bytes of data, found 16"
        );
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            read_npy(&long).unwrap_err(),
            NpyError::TrailingData {
                expected: 24,
                found: 25
            }
        ));

        let mut v4 = good.clone();
        v4[6] = 4;
        assert_eq!(
            read_npy(&v4).unwrap_err(),
            NpyError::UnsupportedVersion { major: 4, minor: 0 }
        );

        assert!(matches!(err("garbage!", &[]), NpyError::BadHeader(_)));
        assert!(matches!(
            err("{'descr': '<f4'", &[]),
            NpyError::BadHeader(_)
        ));
        assert!(matches!(err("[1, 2]", &[]), NpyError::BadHeader(_)));

        let e = err(
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        );
        assert_eq!(e, NpyError::UnsupportedDType("'<c8'".to_string()));
        assert!(e.to_string().contains("'<c8'"));
        let e = err(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        assert_eq!(e, NpyError::BigEndian(">f4".to_string()));
        assert!(e.to_string().contains("big-endian"));
        let e = err(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        assert!(matches!(e, NpyError::UnsupportedDType(_)));

        let e = err(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            &[0; 24],
        );
        assert_eq!(e, NpyError::FortranOrder);
        assert!(e.to_string().contains("Fortran"));
    }

    #[test]
    fn rejects_bad_header_dicts() {
        let cases = [
            ("{'descr': '<f4', 'shape': (1,), }", "missing key 'fortran_order'"),
            (
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
                "duplicate key 'descr'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                "unexpected key 'x'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                "shape dimension -1 is out of range",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4)}",
                "'shape' must be a tuple, found an integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (4,)}",
                "'fortran_order' must be True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                "unexpected text after the dict",
            ),
            (
                "{'descr': '<f4', 'fortran_order': Fals, 'shape': (1,)}",
                "unknown name 'Fals'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,)}",
                "integer too large",
            ),
            ("{'descr: '<f4'}", "expected ':'"),
        ];
        for (header, want) in cases {
            let e = err(header, &[0; 4]);
            assert!(matches!(e, NpyError::BadHeader(_)), "{header}: {e:?}");
            assert!(e.to_string().contains(want), "{header}: {e}");
        }
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {}1{}}}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(err(&deep, &[]).to_string().contains("nest too deeply"));
    }

    #[test]
    fn huge_shapes_fail_before_allocating() {
        let e = err(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}",
            &[],
        );
        assert!(matches!(
            e,
            NpyError::SizeOverflow(ShapeError::Overflow { .. })
        ));
        assert!(e.to_string().contains("[1099511627776, 1099511627776]"));
        let e = err(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1048576, 1048576)}",
            &[],
        );
        assert!(matches!(
            e,
            NpyError::SizeOverflow(ShapeError::TooLarge { .. })
        ));
        // A large but allowed shape with missing data is truncated, not allocated.
        let e = err(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,)}",
            &[0; 4],
        );
        assert_eq!(
            e,
            NpyError::Truncated {
                expected: 1 << 32,
                found: 4
            }
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let good = write_npy(&sample(DType::F64, &[3, 2]));
        for end in 0..=good.len() {
            let _ = read_npy(&good[..end]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            // Random bytes, sometimes behind a valid magic and version.
            let len = (next() % 200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 && bytes.len() >= 10 {
                bytes[..6].copy_from_slice(MAGIC);
                bytes[6] = 1 + (next() % 3) as u8;
                bytes[7] = 0;
            }
            let _ = read_npy(&bytes);
            // A valid file with a few bytes changed.
            let mut mutated = good.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % mutated.len();
                mutated[i] = next() as u8;
            }
            let _ = read_npy(&mutated);
        }
    }
}
