//! The tokens of the MIR text form and the lexer that produces them (see [`super::parse`]).
//!
//! Whitespace and newlines only separate tokens, and `//` starts a comment that runs to the
//! end of the line. Right after a `.`, a number is read as plain digits, so that `p0.1.2` is
//! two field accesses rather than a float.

use std::fmt;

/// Why a text is not a graph, and where: the lexer's and the parser's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line, from 1.
    pub line: u32,
    /// The column in characters, from 1.
    pub col: u32,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// A word: letters, digits and `_`, not starting with a digit.
    Ident(String),
    /// A number: decimal digits with optional fraction and exponent, and a suffix of letters
    /// and digits written right after it (`1.5f32`, `0x7f` has text `0`, suffix `x7f`).
    Num { text: String, suffix: String },
    /// A string literal, unescaped.
    Str(String),
    /// `%N`.
    NodeRef(u32),
    /// `@N`.
    MonoidRef(u32),
    /// One punctuation character.
    Punct(char),
    /// The end of the text.
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Num { text, suffix } => write!(f, "number `{text}{suffix}`"),
            Tok::Str(_) => f.write_str("a string"),
            Tok::NodeRef(n) => write!(f, "`%{n}`"),
            Tok::MonoidRef(n) => write!(f, "`@{n}`"),
            Tok::Punct(c) => write!(f, "`{c}`"),
            Tok::Eof => f.write_str("the end of the text"),
        }
    }
}

/// A token and where it starts.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: u32,
    pub(super) col: u32,
}

/// Splits the text into tokens.
pub(super) fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    let err = |line, col, message: String| ParseError { line, col, message };
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        let start = i;
        let after_dot = matches!(
            toks.last(),
            Some(Token {
                tok: Tok::Punct('.'),
                ..
            })
        );
        let tok = if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        } else if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else if c.is_ascii_digit() {
            i = scan_digits(&chars, i);
            if !after_dot {
                if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                {
                    i = scan_digits(&chars, i + 1);
                }
                if matches!(chars.get(i), Some('e' | 'E')) {
                    let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
                    if chars.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
                        i = scan_digits(&chars, i + 1 + sign);
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let suffix_start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            Tok::Num {
                text,
                suffix: chars[suffix_start..i].iter().collect(),
            }
        } else if c == '%' || c == '@' {
            i = scan_digits(&chars, i + 1);
            let digits: String = chars[start + 1..i].iter().collect();
            let n = digits
                .parse::<u32>()
                .map_err(|_| err(tl, tc, format!("expected a number after `{c}`")))?;
            if c == '%' {
                Tok::NodeRef(n)
            } else {
                Tok::MonoidRef(n)
            }
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        return Err(err(tl, tc, "unterminated string".to_string()));
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let (ch, len) = unescape(&chars[i + 1..]).ok_or_else(|| {
                            err(tl, tc + (i - start) as u32, "bad escape".to_string())
                        })?;
                        s.push(ch);
                        i += 1 + len;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if "()[]{},:;=.+-*|".contains(c) {
            i += 1;
            Tok::Punct(c)
        } else {
            return Err(err(tl, tc, format!("unexpected character `{c}`")));
        };
        col += (i - start) as u32;
        toks.push(Token {
            tok,
            line: tl,
            col: tc,
        });
    }
    toks.push(Token {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(toks)
}

/// Whether `c` may continue a word.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The position after the run of ASCII digits starting at `i`.
fn scan_digits(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    i
}

/// The character of the escape that `rest` starts (after the backslash) and its length.
fn unescape(rest: &[char]) -> Option<(char, usize)> {
    match rest.first()? {
        '"' => Some(('"', 1)),
        '\\' => Some(('\\', 1)),
        'n' => Some(('\n', 1)),
        't' => Some(('\t', 1)),
        'u' => {
            if rest.get(1) != Some(&'{') {
                return None;
            }
            let close = rest.iter().position(|&c| c == '}')?;
            let hex: String = rest.get(2..close)?.iter().collect();
            let ch = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
            Some((ch, close + 1))
        }
        _ => None,
    }
}
