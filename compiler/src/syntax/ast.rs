//! The untyped, span-carrying syntax tree: plain data produced by the parser and read by the
//! checker. Names are not resolved and literals keep their source text.

/// The scalar operators are `base::ops`'s: the parser produces them directly.
pub use crate::base::ops::{BinOp, UnOp};
use crate::base::Span;
pub use crate::syntax::token::RedKw;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `fn`, `op` and `proc` definitions.
    Func(FuncDef),
    Monoid(MonoidDef),
    Main(Block, Span),
    Test(TestDef),
    /// `bench "name" { setup; measure { timed } }`, run by `flowc bench`.
    Bench(TestDef),
    Use(UseDecl),
    /// An item that failed to parse; its diagnostic has already been reported.
    Error(Span),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FuncKind {
    Fn,
    Op,
    Proc,
}

impl FuncKind {
    pub fn keyword(self) -> &'static str {
        match self {
            FuncKind::Fn => "fn",
            FuncKind::Op => "op",
            FuncKind::Proc => "proc",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FuncDef {
    pub kind: FuncKind,
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Expr,
    /// The span of the header, from the keyword to the return type.
    pub span: Span,
}

/// A parameter; only monoid members may leave out the type.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MonoidDef {
    pub name: Ident,
    /// `monoid ModSum(m: i64) { … }`: scalar values every use passes (`ModSum(7)`), which
    /// the members read like locals. Empty for a monoid without parameters.
    pub params: Vec<Param>,
    pub state: Option<TypeExpr>,
    pub members: Vec<MonoidMember>,
    pub span: Span,
}

/// `zero = e;`, `wrap(x: f32) = e;`, `combine(a, b) = e;`, `unwrap(s) = e;` or a flag such as
/// `commutative;`.
#[derive(Clone, Debug, PartialEq)]
pub struct MonoidMember {
    pub name: Ident,
    pub params: Option<Vec<Param>>,
    pub value: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestDef {
    pub name: String,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    pub path: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    /// A scalar or other named type: `f32`, `i64`, `str`.
    Named(String),
    /// `f32[B, N - 8]`.
    Tensor(Ident, Vec<DimExpr>),
    /// `(f32, f32)` or `(n: f32, s: f32)`.
    Tuple(Vec<(Option<Ident>, TypeExpr)>),
    /// `(f32, i64)[N]` or `(d: f32, i: i64)[N]`: a tensor of tuples, which is the tuple of
    /// one tensor per field, all of these dimensions (`(f32[N], i64[N])`).
    TupleTensor(Vec<(Option<Ident>, TypeExpr)>, Vec<DimExpr>),
    /// `[str]`.
    List(Box<TypeExpr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DimExpr {
    pub kind: DimKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DimKind {
    Const(String),
    Var(String),
    Add(Box<DimExpr>, Box<DimExpr>),
    Sub(Box<DimExpr>, Box<DimExpr>),
    Mul(Box<DimExpr>, Box<DimExpr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub tail: Option<Box<Expr>>,
    pub span: Span,
}

/// An index in a comprehension head or a reduction, with an optional explicit bound.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexBind {
    pub name: Ident,
    pub bound: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `let x = e;`, `let x: T = e;` or the comprehension `let x[i, j < 4] = e;`.
    Let {
        name: Ident,
        ty: Option<TypeExpr>,
        indices: Option<Vec<IndexBind>>,
        value: Expr,
        span: Span,
    },
    Var {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
        span: Span,
    },
    Assign {
        name: Ident,
        value: Expr,
        span: Span,
    },
    For {
        var: Ident,
        lo: Expr,
        hi: Expr,
        body: Block,
        span: Span,
    },
    While {
        cond: Expr,
        body: Block,
        span: Span,
    },
    /// `measure { … }` inside a `bench` block: the part that is timed.
    Measure {
        body: Block,
        span: Span,
    },
    Expr(Expr),
    /// A statement that failed to parse; its diagnostic has already been reported.
    Error(Span),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. }
            | Stmt::Var { span, .. }
            | Stmt::Assign { span, .. }
            | Stmt::For { span, .. }
            | Stmt::While { span, .. }
            | Stmt::Measure { span, .. }
            | Stmt::Error(span) => *span,
            Stmt::Expr(e) => e.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    Text(String),
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Pos(u32),
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(String),
    Float(String),
    Bool(bool),
    Str(Vec<StrPart>),
    Name(String),
    /// `_` in a partial application.
    Placeholder,
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `x |> f`: application of an arrow (a right shift `>>` between operations is their
    /// composition).
    Pipe(Box<Expr>, Box<Expr>),
    Cast(Box<Expr>, Ident),
    Call(Ident, Vec<Expr>),
    /// `name = value` as a call argument (`grad(f, x, y, wrt = 1)`).
    Named(Ident, Box<Expr>),
    Index(Box<Expr>, Vec<Expr>),
    Field(Box<Expr>, Field, Span),
    Tuple(Vec<Expr>),
    TensorLit(Vec<Expr>),
    Reduce {
        op: RedKw,
        indices: Vec<IndexBind>,
        args: Vec<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Block,
        els: Option<Box<Expr>>,
    },
    Block(Block),
    /// An expression that failed to parse; its diagnostic has already been reported.
    Error,
}

impl Expr {
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }
}
