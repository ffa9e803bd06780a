//! Wraps logos into the `(start, Token, end)` triples lalrpop expects. The lexer never fails:
//! a character it does not know becomes a diagnostic and is skipped.

use logos::Logos;

use crate::base::{Code, Diagnostic, FileId, Span};
use crate::syntax::token::Token;

pub type Spanned = (usize, Token, usize);

/// Lexes `text`, whose first byte sits at `base` in file `file`.
pub fn lex(file: FileId, text: &str, base: usize, diags: &mut Vec<Diagnostic>) -> Vec<Spanned> {
    let mut out = Vec::new();
    let mut lexer = Token::lexer(text);
    while let Some(tok) = lexer.next() {
        let range = lexer.span();
        let (lo, hi) = (base + range.start, base + range.end);
        match tok {
            Ok(Token::UnterminatedStr(raw)) => {
                diags.push(
                    Diagnostic::error(
                        Code::UnterminatedString,
                        "unterminated string literal",
                        Span::new(file, lo, hi),
                    )
                    .with_label_text("this string has no closing `\"` on its line"),
                );
                out.push((lo, Token::Str(raw[1..].to_string()), hi));
            }
            Ok(tok) => out.push((lo, tok, hi)),
            Err(()) => {
                let bad = lexer.slice();
                diags.push(
                    Diagnostic::error(
                        Code::InvalidToken,
                        format!("unexpected character `{}`", bad.escape_debug()),
                        Span::new(file, lo, hi),
                    )
                    .with_label_text("not part of any Flow token"),
                );
            }
        }
    }
    out
}
