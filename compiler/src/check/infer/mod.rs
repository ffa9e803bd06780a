//! Type and shape inference: walks the syntax tree of each item and builds the typed HIR.
//! Shapes are affine dimensions over shape variables; a function's own shape variables are
//! rigid, and each call instantiates the callee's as fresh flexible variables (`?N1`) that
//! unification binds. Literals are *weak*: they take the type their context asks for.
//!
//! This file holds the state (`Checker`, the per-body `BodyCx` with its scopes) and the
//! statements; the rest is split by construct: `unify` (written types and unification),
//! `expr` (the expression dispatcher and the simple forms), `literals` (tensor literals and
//! the retyping of weak literals), `comprehension` (comprehensions, reductions, index reads),
//! `calls` (user calls, `map`, arrows), `builtins` (the built-in functions' table) and `sizes`
//! (the rules of the built-ins that make tensors of a given size or of a size known when they
//! run).

use std::collections::HashMap;

use crate::base::{Code, Diagnostic, Span};
use crate::check::errors;
use crate::hir::{self, Builtin, BuiltinMonoid, DType, Dim, Edge, MathFn, MonoidRef, Scalar, Ty};
use crate::syntax::ast::{self, BinOp, ExprKind as K, FuncKind, UnOp};

mod builtins;
mod calls;
mod comprehension;
mod diff;
mod expr;
mod literals;
mod monoid_args;
mod rotate;
mod scans;
mod sizes;
mod tuples;
mod unify;

use builtins::builtin_by_name;
pub use builtins::is_builtin_name;
use literals::finish_float;
pub use literals::{coerce, int_fits};

/// A name visible at program level.
#[derive(Clone, Copy, Debug)]
pub enum Global {
    Func(hir::FuncId),
    Monoid(hir::MonoidId),
}

/// The signature of a function, known before any body is checked.
#[derive(Clone, Debug)]
pub struct Sig {
    pub name: String,
    pub kind: FuncKind,
    pub params: Vec<(String, Ty, Span)>,
    pub ret: Ty,
    pub shape_vars: Vec<String>,
    pub span: Span,
}

/// What a monoid offers to reductions, known before its members are checked.
#[derive(Clone, Debug)]
pub struct MonoidSig {
    pub name: String,
    /// The run-time parameters (`monoid ModSum(m: i64)`): names and scalar types.
    pub params: Vec<(String, Ty)>,
    pub inputs: Vec<Ty>,
    pub result: Ty,
    /// Without `wrap` and `unwrap`: its inputs, states and results are one type.
    pub plain: bool,
}

/// Which environment a body runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    Operation,
    Coordinator,
}

#[derive(Clone, Copy, Debug)]
enum Binding {
    Local(hir::LocalId),
    Index(hir::IndexId),
}

/// A strict read recorded for index-range inference and bounds checks.
#[derive(Clone, Debug)]
pub struct Use {
    pub tensor: Ty,
    pub axis: usize,
    pub idx: hir::AffineIdx,
    pub span: Span,
}

/// Per-body state: locals, indices and scopes.
pub struct BodyCx {
    pub locals: Vec<hir::Local>,
    pub indices: Vec<hir::Index>,
    pub known: Vec<bool>,
    /// The names each open scope binds, innermost last; `bound` maps a name to its bindings,
    /// innermost last, so that a lookup does not scan the scopes (a block may have 100,000
    /// `let`s).
    scopes: Vec<Vec<String>>,
    bound: HashMap<String, Vec<Binding>>,
    pub rigid: Vec<String>,
    pub env: Env,
    pub uses: Vec<Use>,
    /// How many comprehensions or reductions enclose the current expression.
    pub point_depth: usize,
    /// Whether this is the body of a `bench` block (where `measure` is allowed).
    pub in_bench: bool,
    /// In a coordinator body, the flexible variable that stands for each shape variable its
    /// annotations name: `let a: f32[N] = …; let b: f32[N] = …` give `a` and `b` one length,
    /// which the coordinator checks as the values arrive (`load`).
    pub annotation_vars: HashMap<String, Dim>,
}

impl BodyCx {
    pub fn new(env: Env, rigid: Vec<String>) -> BodyCx {
        BodyCx {
            locals: Vec::new(),
            indices: Vec::new(),
            known: Vec::new(),
            scopes: vec![Vec::new()],
            bound: HashMap::new(),
            rigid,
            env,
            uses: Vec::new(),
            point_depth: 0,
            in_bench: false,
            annotation_vars: HashMap::new(),
        }
    }

    pub fn add_local(&mut self, name: &str, ty: Ty, mutable: bool, span: Span) -> hir::LocalId {
        let id = hir::LocalId(self.locals.len() as u32);
        self.locals.push(hir::Local {
            name: name.to_string(),
            ty,
            mutable,
            span,
        });
        self.bind(name, Binding::Local(id));
        id
    }

    fn add_index(&mut self, name: &str, range: Option<Dim>, span: Span) -> hir::IndexId {
        let id = hir::IndexId(self.indices.len() as u32);
        self.known.push(range.is_some());
        self.indices.push(hir::Index {
            name: name.to_string(),
            range: range.unwrap_or_default(),
            span,
        });
        self.bind(name, Binding::Index(id));
        id
    }

    fn bind(&mut self, name: &str, b: Binding) {
        self.scopes
            .last_mut()
            .expect("a scope")
            .push(name.to_string());
        self.bound.entry(name.to_string()).or_default().push(b);
    }

    fn lookup(&self, name: &str) -> Option<Binding> {
        self.bound.get(name).and_then(|v| v.last()).copied()
    }

    fn push(&mut self) {
        self.scopes.push(Vec::new());
    }

    fn pop(&mut self) {
        for name in self.scopes.pop().into_iter().flatten() {
            if let Some(v) = self.bound.get_mut(&name) {
                v.pop();
            }
        }
    }

    pub fn finish(self, expr: hir::Expr) -> hir::Body {
        hir::Body {
            locals: self.locals,
            indices: self.indices,
            expr,
        }
    }
}

pub struct Checker {
    pub diags: Vec<Diagnostic>,
    pub globals: HashMap<String, Global>,
    pub sigs: Vec<Sig>,
    pub monoid_sigs: Vec<MonoidSig>,
    fresh: u32,
    subst: HashMap<String, Dim>,
    /// The annotation variables of the coordinator body being lowered
    /// ([`BodyCx::annotation_vars`], lent while its `let` type is lowered).
    annotation_vars: HashMap<String, Dim>,
}

fn err_expr(span: Span) -> hir::Expr {
    hir::Expr {
        kind: hir::ExprKind::Tuple(Vec::new()),
        ty: Ty::Error,
        span,
    }
}

fn mk(kind: hir::ExprKind, ty: Ty, span: Span) -> hir::Expr {
    hir::Expr { kind, ty, span }
}

/// Whether an expression is made only of numeric literals, so its type may still change.
pub fn is_weak(e: &hir::Expr) -> bool {
    match &e.kind {
        hir::ExprKind::Lit(s) => s.dtype() != DType::Bool,
        hir::ExprKind::Unary(UnOp::Neg, a) => is_weak(a),
        // `{ 1.0 }`, an `if` arm: weak when its only content is.
        hir::ExprKind::Block(b) => b.stmts.is_empty() && b.tail.as_ref().is_some_and(is_weak),
        hir::ExprKind::Binary(op, a, b) => {
            matches!(
                op,
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
            ) && is_weak(a)
                && is_weak(b)
        }
        _ => false,
    }
}

pub fn scalar_type(name: &str) -> Option<DType> {
    DType::from_name(name)
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            diags: Vec::new(),
            globals: HashMap::new(),
            sigs: Vec::new(),
            monoid_sigs: Vec::new(),
            fresh: 0,
            subst: HashMap::new(),
            annotation_vars: HashMap::new(),
        }
    }

    pub fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn check_block(&mut self, b: &ast::Block, cx: &mut BodyCx, want: Option<&Ty>) -> hir::Expr {
        cx.push();
        let mut stmts = Vec::new();
        for s in &b.stmts {
            if let Some(s) = self.check_stmt(s, cx) {
                stmts.push(s);
            }
        }
        let tail = b.tail.as_ref().map(|t| self.infer(t, cx, want));
        cx.pop();
        let ty = tail.as_ref().map(|t| t.ty.clone()).unwrap_or(Ty::Unit);
        mk(
            hir::ExprKind::Block(Box::new(hir::Block { stmts, tail })),
            ty,
            b.span,
        )
    }

    /// The type a `let x: T` declares (in the coordinator its shape variables are fresh).
    fn annotation(&mut self, t: &ast::TypeExpr, cx: &mut BodyCx) -> Ty {
        let fresh = cx.env == Env::Coordinator;
        let mut vars = cx.rigid.clone();
        self.annotation_vars = std::mem::take(&mut cx.annotation_vars);
        let ty = self.lower_type(t, &mut vars, fresh);
        cx.annotation_vars = std::mem::take(&mut self.annotation_vars);
        ty
    }

    fn check_stmt(&mut self, s: &ast::Stmt, cx: &mut BodyCx) -> Option<hir::Stmt> {
        match s {
            ast::Stmt::Let {
                name,
                ty,
                indices: Some(idx),
                value,
                ..
            } => {
                let want = ty.as_ref().map(|t| self.annotation(t, cx));
                let e = self.comprehension(idx, value, cx, want.as_ref(), s.span());
                let e = match &want {
                    Some(w) => self.expect(e, w),
                    None => e,
                };
                let local = cx.add_local(&name.name, e.ty.clone(), false, name.span);
                Some(hir::Stmt::Let { local, value: e })
            }
            ast::Stmt::Let {
                name,
                ty,
                indices: None,
                value,
                ..
            }
            | ast::Stmt::Var {
                name, ty, value, ..
            } => {
                let mutable = matches!(s, ast::Stmt::Var { .. });
                let want = ty.as_ref().map(|t| self.annotation(t, cx));
                let mut e = self.infer(value, cx, want.as_ref());
                if let Some(w) = &want {
                    e = self.expect(e, w);
                }
                let ty = want.unwrap_or_else(|| e.ty.clone());
                let local = cx.add_local(&name.name, ty, mutable, name.span);
                Some(hir::Stmt::Let { local, value: e })
            }
            ast::Stmt::Assign { name, value, span } => {
                let Some(Binding::Local(id)) = cx.lookup(&name.name) else {
                    self.error(errors::unknown_name(&name.name, name.span));
                    return None;
                };
                let target = cx.locals[id.0 as usize].clone();
                if !target.mutable && cx.env == Env::Coordinator {
                    self.error(
                        Diagnostic::error(
                            Code::AssignImmutable,
                            format!("cannot assign to `{}`: it is a `let` binding", name.name),
                            *span,
                        )
                        .with_label(target.span, "declared here; use `var` to make it mutable"),
                    );
                }
                let e = self.infer(value, cx, Some(&target.ty));
                let e = self.expect(e, &target.ty);
                Some(hir::Stmt::Assign {
                    local: id,
                    value: e,
                    span: *span,
                })
            }
            ast::Stmt::For {
                var, lo, hi, body, ..
            } => {
                let i64t = Ty::Scalar(DType::I64);
                let lo = self.infer(lo, cx, Some(&i64t));
                let lo = self.expect(lo, &i64t);
                let hi = self.infer(hi, cx, Some(&i64t));
                let hi = self.expect(hi, &i64t);
                cx.push();
                let local = cx.add_local(&var.name, i64t, false, var.span);
                let b = self.check_block(body, cx, None);
                cx.pop();
                Some(hir::Stmt::For {
                    local,
                    lo,
                    hi,
                    body: into_block(b),
                })
            }
            ast::Stmt::Measure { body, span } => {
                if cx.env == Env::Operation {
                    return None;
                }
                if !cx.in_bench {
                    self.error(errors::measure_outside_bench(*span));
                }
                let b = self.check_block(body, cx, None);
                Some(hir::Stmt::Measure(into_block(b)))
            }
            ast::Stmt::While { cond, body, .. } => {
                let c = self.infer(cond, cx, Some(&Ty::Scalar(DType::Bool)));
                let c = self.expect(c, &Ty::Scalar(DType::Bool));
                let b = self.check_block(body, cx, None);
                Some(hir::Stmt::While {
                    cond: c,
                    body: into_block(b),
                })
            }
            ast::Stmt::Expr(e) => Some(hir::Stmt::Expr(self.infer(e, cx, None))),
            ast::Stmt::Error(_) => None,
        }
    }

    /// A dimension written as an expression: a constant or an affine form of shape variables.
    pub fn static_dim(&mut self, e: &ast::Expr, cx: &BodyCx) -> Dim {
        match self.try_static_dim(e, cx) {
            Some(d) => d,
            None => {
                self.error(errors::type_error(
                    "a bound must be a constant or an affine expression of shape variables",
                    e.span,
                ));
                Dim::known(0)
            }
        }
    }

    pub fn try_static_dim(&self, e: &ast::Expr, cx: &BodyCx) -> Option<Dim> {
        Some(match &e.kind {
            K::Int(n) => Dim::known(n.parse().ok()?),
            K::Name(n) if cx.rigid.contains(n) && cx.lookup(n).is_none() => Dim::var(n.clone()),
            K::Binary(op, a, b) => {
                let (a, b) = (self.try_static_dim(a, cx)?, self.try_static_dim(b, cx)?);
                match op {
                    BinOp::Add => a.add(&b),
                    BinOp::Sub => a.sub(&b),
                    BinOp::Mul => match (a.as_known(), b.as_known()) {
                        (Some(k), _) => b.scale(k),
                        (_, Some(k)) => a.scale(k),
                        _ => return None,
                    },
                    BinOp::Shl => Dim::known(
                        a.as_known()?
                            .checked_shl(u32::try_from(b.as_known()?).ok()?)?,
                    ),
                    BinOp::Div => Dim::known(a.as_known()?.checked_div(b.as_known()?)?),
                    _ => return None,
                }
            }
            K::Unary(UnOp::Neg, a) => self.try_static_dim(a, cx)?.scale(-1),
            _ => return None,
        })
    }

    /// Makes the element types of two operands agree by retyping a weak one.
    fn join(&mut self, a: hir::Expr, b: hir::Expr) -> (hir::Expr, hir::Expr) {
        match (a.ty.dtype(), b.ty.dtype()) {
            (Some(x), Some(y)) if x != y => {
                if is_weak(&a) && (y.is_float() || !x.is_float()) {
                    (coerce(a, y), b)
                } else if is_weak(&b) && (x.is_float() || !y.is_float()) {
                    let b = coerce(b, x);
                    (a, b)
                } else {
                    (a, b)
                }
            }
            _ => (a, b),
        }
    }
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

pub fn into_block(e: hir::Expr) -> hir::Block {
    match e.kind {
        hir::ExprKind::Block(b) => *b,
        _ => hir::Block {
            stmts: Vec::new(),
            tail: Some(e),
        },
    }
}

impl BodyCx {
    /// Whether `name` currently resolves to a comprehension or reduction index.
    pub fn is_index_in_scope(&self, name: &str) -> bool {
        matches!(self.lookup(name), Some(Binding::Index(_)))
    }

    /// The index `name` resolves to, if it is one.
    pub fn index_in_scope(&self, name: &str) -> Option<hir::IndexId> {
        match self.lookup(name) {
            Some(Binding::Index(id)) => Some(id),
            _ => None,
        }
    }
}
