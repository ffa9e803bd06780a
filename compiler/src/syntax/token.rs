//! The logos token enum: the only place where lexical rules live.

use logos::Logos;

use crate::base::ops::BuiltinMonoid;

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Token {
    #[token("fn")]
    Fn,
    #[token("op")]
    Op,
    #[token("monoid")]
    Monoid,
    #[token("proc")]
    Proc,
    #[token("main")]
    Main,
    #[token("test")]
    Test,
    #[token("bench")]
    Bench,
    #[token("measure")]
    Measure,
    #[token("use")]
    Use,
    #[token("let")]
    Let,
    #[token("var")]
    Var,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("while")]
    While,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("as")]
    As,
    /// `state` is reserved: it introduces a monoid's state type.
    #[token("state")]
    State,
    #[token("true")]
    True,
    #[token("false")]
    False,
    /// The reduction keywords; `max(a, b)` and `min(a, b)` are also ordinary calls.
    #[token("sum", |_| RedKw::Monoid(BuiltinMonoid::Sum))]
    #[token("prod", |_| RedKw::Monoid(BuiltinMonoid::Prod))]
    #[token("max", |_| RedKw::Monoid(BuiltinMonoid::Max))]
    #[token("min", |_| RedKw::Monoid(BuiltinMonoid::Min))]
    #[token("any", |_| RedKw::Monoid(BuiltinMonoid::Any))]
    #[token("all", |_| RedKw::Monoid(BuiltinMonoid::All))]
    #[token("reduce", |_| RedKw::Reduce)]
    Red(RedKw),

    #[regex(r"[A-Za-z][A-Za-z0-9_]*|_[A-Za-z0-9_]+", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex(r"[0-9]+", |lex| lex.slice().to_string())]
    Int(String),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", |lex| lex.slice().to_string())]
    Float(String),
    /// A string literal, still with its escapes and `{...}` interpolations.
    #[regex(r#""([^"\\\n]|\\.)*""#, |lex| { let s = lex.slice(); s[1..s.len() - 1].to_string() })]
    Str(String),
    /// A string literal that runs to the end of its line.
    #[regex(r#""([^"\\\n]|\\.)*"#, |lex| lex.slice().to_string(), priority = 1)]
    UnterminatedStr(String),

    #[token("_")]
    Underscore,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token("::")]
    ColonColon,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("->")]
    Arrow,
    #[token("=")]
    Eq,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("<<")]
    Shl,
    #[token(">>")]
    Shr,
    #[token("|>")]
    Pipe,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    #[token("&")]
    Amp,
    #[token("|")]
    Bar,
    #[token("^")]
    Caret,
}

/// A reduction keyword: a built-in monoid's name (`sum[i](…)`) or `reduce[i](M, …)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedKw {
    Monoid(BuiltinMonoid),
    Reduce,
}

impl RedKw {
    pub fn as_str(self) -> &'static str {
        match self {
            RedKw::Monoid(m) => m.name(),
            RedKw::Reduce => "reduce",
        }
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "identifier `{s}`"),
            Token::Int(s) | Token::Float(s) => write!(f, "number `{s}`"),
            Token::Str(_) | Token::UnterminatedStr(_) => write!(f, "a string"),
            Token::Red(k) => write!(f, "`{}`", k.as_str()),
            other => write!(f, "`{}`", describe(other)),
        }
    }
}

fn describe(t: &Token) -> &'static str {
    use Token::*;
    match t {
        Fn => "fn",
        Op => "op",
        Monoid => "monoid",
        Proc => "proc",
        Main => "main",
        Test => "test",
        Bench => "bench",
        Measure => "measure",
        Use => "use",
        Let => "let",
        Var => "var",
        For => "for",
        In => "in",
        While => "while",
        If => "if",
        Else => "else",
        As => "as",
        State => "state",
        True => "true",
        False => "false",
        Underscore => "_",
        LParen => "(",
        RParen => ")",
        LBracket => "[",
        RBracket => "]",
        LBrace => "{",
        RBrace => "}",
        Comma => ",",
        Semi => ";",
        Colon => ":",
        ColonColon => "::",
        Dot => ".",
        DotDot => "..",
        Arrow => "->",
        Eq => "=",
        EqEq => "==",
        Ne => "!=",
        Lt => "<",
        Le => "<=",
        Gt => ">",
        Ge => ">=",
        Shl => "<<",
        Shr => ">>",
        Pipe => "|>",
        Plus => "+",
        Minus => "-",
        Star => "*",
        Slash => "/",
        Percent => "%",
        AndAnd => "&&",
        OrOr => "||",
        Bang => "!",
        Amp => "&",
        Bar => "|",
        Caret => "^",
        Ident(_) | Int(_) | Float(_) | Str(_) | UnterminatedStr(_) | Red(_) => "token",
    }
}
