//! Scalar literals of the MIR text form: numbers with a type suffix (none inside a
//! constant's data, whose type is given), `true`/`false`, `inf`, and `nan` with optional
//! bits `nan(0x…)`, which keep a NaN's payload through a round trip.

use flow_runtime::{DType, Scalar};

use super::{is_digits, ParseError, Parser};
use crate::mir::lex::Tok;

impl Parser {
    /// Parses a scalar literal. With `dtype` (constant data) it has no suffix; without, a
    /// number must carry one.
    pub(super) fn lit(&mut self, dtype: Option<DType>) -> Result<Scalar, ParseError> {
        let at = self.pos;
        let negative = self.eat_punct('-');
        let sign = if negative { "-" } else { "" };
        let tok = self.peek().clone();
        let (body, ty) = match &tok {
            Tok::Ident(w) if !negative && (w == "true" || w == "false") => {
                if dtype.is_some_and(|d| d != DType::Bool) {
                    return Err(self.expected(&format!("a {} value", dtype.unwrap_or(DType::Bool))));
                }
                self.bump();
                return Ok(Scalar::Bool(w == "true"));
            }
            Tok::Ident(w) if w.starts_with("inf") || w.starts_with("nan") => {
                (w[..3].to_string(), self.suffix(&w[3..], dtype)?)
            }
            Tok::Num { text, suffix } => (text.clone(), self.suffix(suffix, dtype)?),
            _ => return Err(self.expected("a literal")),
        };
        self.bump();
        let full = format!("{sign}{body}");
        let bad = |p: &Parser| p.error_at(at, format!("`{full}` is not a valid {ty} literal"));
        let value = match ty {
            DType::Bool => return Err(bad(self)),
            DType::I32 if is_digits(&body) => full.parse().ok().map(Scalar::I32),
            DType::I64 if is_digits(&body) => full.parse().ok().map(Scalar::I64),
            DType::U8 if is_digits(&body) => full.parse().ok().map(Scalar::U8),
            DType::U32 if is_digits(&body) => full.parse().ok().map(Scalar::U32),
            DType::U64 if is_digits(&body) => full.parse().ok().map(Scalar::U64),
            DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 => None,
            DType::F32 | DType::F64 if body == "nan" => {
                if negative {
                    return Err(self.error("a negative NaN is written by its bits, `nan(0x..)`"));
                }
                return self.nan_bits(ty);
            }
            DType::F32 => full.parse().ok().map(Scalar::F32),
            DType::F64 => full.parse().ok().map(Scalar::F64),
        };
        value.ok_or_else(|| bad(self))
    }

    /// The type a literal's suffix names; with a known `dtype` the suffix must be empty.
    fn suffix(&self, suffix: &str, dtype: Option<DType>) -> Result<DType, ParseError> {
        match (dtype, DType::from_name(suffix)) {
            (Some(d), _) if suffix.is_empty() => Ok(d),
            (None, Some(d)) if d != DType::Bool => Ok(d),
            (Some(d), _) => Err(self.error(format!(
                "elements of a {d} constant have no suffix, found `{suffix}`"
            ))),
            (None, _) if suffix.is_empty() => {
                Err(self.error("a literal needs a type suffix (`f32`, `f64`, `i32`, `i64`, `u8`, `u32` or `u64`)"))
            }
            (None, _) => Err(self.error(format!(
                "a literal needs a type suffix (`f32`, `f64`, `i32`, `i64`, `u8`, `u32` or `u64`), found `{suffix}`"
            ))),
        }
    }

    /// Parses the optional `(0xBITS)` after `nan`; without it the NaN is the canonical one.
    fn nan_bits(&mut self, ty: DType) -> Result<Scalar, ParseError> {
        if !self.eat_punct('(') {
            return Ok(match ty {
                DType::F32 => Scalar::F32(f32::NAN),
                _ => Scalar::F64(f64::NAN),
            });
        }
        let bits = match self.peek() {
            Tok::Num { text, suffix } if text == "0" && suffix.starts_with('x') => {
                u64::from_str_radix(&suffix[1..], 16).ok()
            }
            _ => None,
        }
        .ok_or_else(|| self.expected("NaN bits `0x...`"))?;
        let value = match ty {
            DType::F32 => u32::try_from(bits)
                .ok()
                .map(|b| Scalar::F32(f32::from_bits(b))),
            _ => Some(Scalar::F64(f64::from_bits(bits))),
        };
        let value = value
            .filter(|v| v.as_f64().is_nan())
            .ok_or_else(|| self.error(format!("{bits:#x} is not the bits of a {ty} NaN")))?;
        self.bump();
        self.punct(')')?;
        Ok(value)
    }
}
