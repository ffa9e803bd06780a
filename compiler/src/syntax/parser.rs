//! Runs the generated LALR parser (`grammar/flow.lalrpop`) and turns its errors into
//! diagnostics. Also holds the small helpers the grammar's actions call.

use std::cell::RefCell;

use lalrpop_util::{lalrpop_mod, ErrorRecovery, ParseError};

use crate::base::{Code, Diagnostic, FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::depth;
use crate::syntax::lexer::lex;
use crate::syntax::token::Token;

lalrpop_mod!(
    #[allow(
        clippy::all,
        clippy::pedantic,
        unused_parens,
        unused_imports,
        dead_code
    )]
    grammar,
    "/flow.rs"
);

/// The lexer reports its own errors, so the parser never sees one.
#[derive(Clone, Debug, PartialEq)]
pub enum LexError {}

/// A member of a monoid body, before the monoid is assembled.
pub enum MonoidPart {
    State(TypeExpr, Span),
    Member(MonoidMember),
}

/// Parses one file. Never fails: returns a tree (with `Error` nodes where recovery happened)
/// and every diagnostic found.
pub fn parse_file(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    // A byte order mark at the start of a file is not part of the program.
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let tokens = lex(file, &text[bom..], bom, &mut diags);
    let ctx = Ctx {
        file,
        diags: RefCell::new(Vec::new()),
    };
    let mut recovered = Vec::new();
    let res = grammar::FileParser::new().parse(&ctx, &mut recovered, tokens);
    let mut tree = match res {
        Ok(tree) => tree,
        Err(e) => {
            diags.push(error_to_diag(file, text.len(), e));
            File { items: Vec::new() }
        }
    };
    depth::limit_depth(&mut tree, &mut diags);
    for r in recovered {
        diags.push(error_to_diag(file, text.len(), r.error));
    }
    diags.extend(ctx.diags.into_inner());
    diags.sort_by_key(|d| d.primary_span().lo);
    (tree, diags)
}

/// Parses one expression whose text starts at byte `base` of `file`.
fn parse_expr_at(file: FileId, text: &str, base: usize, diags: &mut Vec<Diagnostic>) -> Expr {
    let tokens = lex(file, text, base, diags);
    let ctx = Ctx {
        file,
        diags: RefCell::new(Vec::new()),
    };
    let mut recovered = Vec::new();
    let end = base + text.len();
    let res = grammar::ExprParser::new().parse(&ctx, &mut recovered, tokens);
    for r in recovered {
        diags.push(error_to_diag(file, end, r.error));
    }
    diags.extend(ctx.diags.into_inner());
    match res {
        Ok(e) => e,
        Err(e) => {
            let d = error_to_diag(file, end, e);
            diags.push(Diagnostic {
                code: Code::BadInterpolation,
                message: format!("in string interpolation: {}", d.message),
                ..d
            });
            Expr::new(ExprKind::Error, Span::new(file, base, end))
        }
    }
}

fn error_to_diag(file: FileId, eof: usize, e: ParseError<usize, Token, LexError>) -> Diagnostic {
    match e {
        ParseError::InvalidToken { location } => Diagnostic::error(
            Code::InvalidToken,
            "invalid token",
            Span::new(file, location, location + 1),
        ),
        ParseError::UnrecognizedEof { location, expected } => Diagnostic::error(
            Code::SyntaxError,
            format!(
                "unexpected end of file, expected {}",
                describe_expected(&expected)
            ),
            Span::new(file, location.min(eof), eof),
        )
        .with_label_text("the file ends here"),
        ParseError::UnrecognizedToken {
            token: (lo, tok, hi),
            expected,
        } => Diagnostic::error(
            Code::SyntaxError,
            format!(
                "unexpected {tok}, expected {}",
                describe_expected(&expected)
            ),
            Span::new(file, lo, hi),
        )
        .with_label_text(format!("expected {} here", describe_expected(&expected))),
        ParseError::ExtraToken {
            token: (lo, tok, hi),
        } => Diagnostic::error(
            Code::SyntaxError,
            format!("unexpected {tok}, expected the end of the input"),
            Span::new(file, lo, hi),
        ),
        ParseError::User { error } => match error {},
    }
}

/// Words lalrpop's list of expected terminals for a person.
fn describe_expected(expected: &[String]) -> String {
    let names: Vec<&str> = expected.iter().map(|s| s.trim_matches('"')).collect();
    let has = |n: &str| names.contains(&n);
    let starts_expr = has("Ident") && has("Int") && has("(");
    let mut words: Vec<String> = Vec::new();
    if starts_expr {
        words.push("an expression".into());
    }
    let expr_start = [
        "Ident", "Int", "Float", "Str", "Red", "(", "[", "-", "!", "_", "true", "false", "if",
    ];
    for n in &names {
        if starts_expr && expr_start.contains(n) {
            continue;
        }
        words.push(match *n {
            "Ident" => "a name".into(),
            "Int" | "Float" => "a number".into(),
            "Str" => "a string".into(),
            "Red" => "a reduction".into(),
            other => format!("`{other}`"),
        });
    }
    words.dedup();
    match words.len() {
        0 => "something else".into(),
        1 => words.remove(0),
        n if n > 8 => format!("{}, or another token", words[..6].join(", ")),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {last}", words.join(", "))
        }
    }
}

/// State shared by the grammar's actions.
pub struct Ctx {
    file: FileId,
    diags: RefCell<Vec<Diagnostic>>,
}

impl Ctx {
    pub fn span(&self, lo: usize, hi: usize) -> Span {
        Span::new(self.file, lo, hi)
    }

    pub fn recovery_span(&self, e: &ErrorRecovery<usize, Token, LexError>) -> Span {
        let lo = e.dropped_tokens.first().map(|t| t.0);
        let hi = e.dropped_tokens.last().map(|t| t.2);
        let at = match &e.error {
            ParseError::UnrecognizedToken { token, .. } | ParseError::ExtraToken { token } => {
                (token.0, token.2)
            }
            ParseError::InvalidToken { location }
            | ParseError::UnrecognizedEof { location, .. } => (*location, *location),
            ParseError::User { error } => match *error {},
        };
        self.span(lo.unwrap_or(at.0).min(at.0), hi.unwrap_or(at.1).max(at.1))
    }

    /// The text of a string literal used as a name (a test's), with its escapes applied.
    pub fn unescape(&self, raw: &str) -> String {
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    }

    /// Adds a statement in front of the rest of a block body. The grammar is right
    /// recursive, so the statements arrive last to first: they are pushed (inserting at the
    /// front would make a block of n statements cost n²) and `in_order` reverses them once.
    pub fn prepend(
        &self,
        s: Stmt,
        (mut stmts, tail): (Vec<Stmt>, Option<Box<Expr>>),
    ) -> (Vec<Stmt>, Option<Box<Expr>>) {
        stmts.push(s);
        (stmts, tail)
    }

    /// The statements of a block body collected by `prepend`, first to last.
    pub fn in_order(&self, mut stmts: Vec<Stmt>) -> Vec<Stmt> {
        stmts.reverse();
        stmts
    }

    pub fn monoid(
        &self,
        name: Ident,
        params: Vec<Param>,
        parts: Vec<MonoidPart>,
        span: Span,
    ) -> Item {
        let mut state = None;
        let mut members = Vec::new();
        for p in parts {
            match p {
                MonoidPart::State(t, sp) => {
                    if state.is_some() {
                        self.diags.borrow_mut().push(
                            Diagnostic::error(
                                Code::BadMonoid,
                                format!("monoid `{}` declares its state twice", name.name),
                                sp,
                            )
                            .with_label_text("second `state`"),
                        );
                    } else {
                        state = Some(t);
                    }
                }
                MonoidPart::Member(m) => members.push(m),
            }
        }
        Item::Monoid(MonoidDef {
            name,
            params,
            state,
            members,
            span,
        })
    }

    pub fn pos_field(&self, e: Expr, n: &str, span: Span, field_span: Span) -> Expr {
        let idx = n.parse::<u32>().unwrap_or_else(|_| {
            self.diags.borrow_mut().push(Diagnostic::error(
                Code::BadLiteral,
                format!("tuple field `{n}` is too large"),
                field_span,
            ));
            0
        });
        Expr::new(
            ExprKind::Field(Box::new(e), Field::Pos(idx), field_span),
            span,
        )
    }

    /// `t.0.1`: the lexer saw `0.1` as one number.
    pub fn pos_fields(&self, e: Expr, n: &str, lo: usize, flo: usize, hi: usize) -> Expr {
        let Some((a, b)) = n
            .split_once('.')
            .filter(|(_, b)| b.bytes().all(|c| c.is_ascii_digit()))
        else {
            self.diags.borrow_mut().push(Diagnostic::error(
                Code::SyntaxError,
                format!("`{n}` is not a tuple field"),
                self.span(flo, hi),
            ));
            return Expr::new(ExprKind::Error, self.span(lo, hi));
        };
        let mid = flo + a.len();
        let inner = self.pos_field(e, a, self.span(lo, mid), self.span(flo, mid));
        self.pos_field(inner, b, self.span(lo, hi), self.span(mid + 1, hi))
    }

    /// Splits a string literal into text and `{expr}` parts; `{{` and `}}` are literal braces.
    pub fn string(&self, raw: &str, lo: usize, hi: usize) -> Expr {
        let base = lo + 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = raw.char_indices().peekable();
        let mut diags = self.diags.borrow_mut();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, 't')) => text.push('\t'),
                    Some((_, 'r')) => text.push('\r'),
                    Some((_, '0')) => text.push('\0'),
                    Some((_, c @ ('\\' | '"' | '{' | '}' | '\''))) => text.push(c),
                    Some((j, c)) => {
                        diags.push(Diagnostic::error(
                            Code::InvalidToken,
                            format!("unknown escape `\\{c}` in string"),
                            self.span(base + i, base + j + c.len_utf8()),
                        ));
                    }
                    None => {}
                },
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let start = i + 1;
                    let mut depth = 1;
                    let mut end = None;
                    for (j, c) in chars.by_ref() {
                        match c {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    end = Some(j);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some(end) = end else {
                        diags.push(
                            Diagnostic::error(
                                Code::BadInterpolation,
                                "unclosed `{` in string interpolation",
                                self.span(base + i, hi),
                            )
                            .with_label_text("write `{{` for a literal brace"),
                        );
                        break;
                    };
                    if !text.is_empty() {
                        parts.push(StrPart::Text(std::mem::take(&mut text)));
                    }
                    let inner = &raw[start..end];
                    if inner.trim().is_empty() {
                        diags.push(Diagnostic::error(
                            Code::BadInterpolation,
                            "empty `{}` in string interpolation",
                            self.span(base + i, base + end + 1),
                        ));
                        continue;
                    }
                    let e = parse_expr_at(self.file, inner, base + start, &mut diags);
                    parts.push(StrPart::Expr(e));
                }
                '}' => {
                    diags.push(
                        Diagnostic::error(
                            Code::BadInterpolation,
                            "unmatched `}` in string",
                            self.span(base + i, base + i + 1),
                        )
                        .with_label_text("write `}}` for a literal brace"),
                    );
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StrPart::Text(text));
        }
        Expr::new(ExprKind::Str(parts), self.span(lo, hi))
    }
}
