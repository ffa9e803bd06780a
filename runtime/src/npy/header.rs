//! The header of a `.npy` file: a Python dict literal (`descr`, `fortran_order`, `shape`),
//! read by a small hand-written parser that accepts its keys in any order, either quote
//! style, any whitespace and an optional trailing comma, and rejects nesting deeper than
//! `MAX_NESTING`.

use crate::tensor::{checked_size, DType};

use super::{NpyError, MAX_NESTING};

/// The meaning of a header: element type and shape.
pub(super) struct Header {
    pub(super) dtype: DType,
    pub(super) shape: Vec<usize>,
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
pub(super) fn parse_header(text: &[u8]) -> Result<Header, NpyError> {
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
    // One-byte types have no byte order: numpy writes `|b1` and `|u1`.
    if matches!(order, Some('<' | '>' | '|' | '=')) {
        match kind {
            "b1" => return Ok(DType::Bool),
            "u1" => return Ok(DType::U8),
            _ => {}
        }
    }
    let dtype = match kind {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u4" => DType::U32,
        "u8" => DType::U64,
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
