//! Type and shape inference: walks the syntax tree of each item and builds the typed HIR.
//! Shapes are affine dimensions over shape variables; a function's own shape variables are
//! rigid, and each call instantiates the callee's as fresh flexible variables (`?N1`) that
//! unification binds. Literals are *weak*: they take the type their context asks for.

use std::collections::HashMap;

use crate::base::{Code, Diagnostic, Span};
use crate::check::errors;
use crate::hir::{self, Builtin, BuiltinMonoid, DType, Dim, Edge, MathFn, MonoidRef, Scalar, Ty};
use crate::syntax::ast::{self, BinOp, ExprKind as K, FuncKind, UnOp};

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
    pub inputs: Vec<Ty>,
    pub result: Ty,
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

fn builtin_by_name(name: &str) -> Option<Builtin> {
    if let Some(m) = MathFn::ALL.iter().find(|m| m.name() == name) {
        return Some(Builtin::Math(*m));
    }
    Some(match name {
        "max" => Builtin::Max,
        "min" => Builtin::Min,
        "pow" => Builtin::Pow,
        "select" => Builtin::Select,
        "rand_uniform" => Builtin::RandUniform,
        "rand_normal" => Builtin::RandNormal,
        "print" => Builtin::Print,
        "load" => Builtin::Load,
        "save" => Builtin::Save,
        "args" => Builtin::Args,
        "len" => Builtin::Len,
        "parse_i64" => Builtin::ParseI64,
        "parse_f64" => Builtin::ParseF64,
        "assert" => Builtin::Assert,
        "assert_close" => Builtin::AssertClose,
        "eval" => Builtin::Eval,
        _ => return None,
    })
}

/// Whether an expression reads the value of a comprehension or reduction index.
fn uses_an_index(e: &mut hir::Expr) -> bool {
    let mut found = false;
    hir::walk_expr_mut(e, &mut |x| {
        found |= matches!(x.kind, hir::ExprKind::IndexValue(_));
    });
    found
}

/// Whether `name` is a built-in function, which no item may redefine.
pub fn is_builtin_name(name: &str) -> bool {
    builtin_by_name(name).is_some() || matches!(name, "map" | "zip_with" | "pad" | "clamp_edge")
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

    // ---- types written in the source ----

    /// Converts a written type. Shape variables are collected into `vars` when given, and
    /// otherwise must already be known (`known`) or become fresh variables (coordinator).
    pub fn lower_type(
        &mut self,
        t: &ast::TypeExpr,
        vars: &mut Vec<String>,
        fresh_for_unknown: bool,
    ) -> Ty {
        match &t.kind {
            ast::TypeKind::Named(n) => match n.as_str() {
                "str" => Ty::Str,
                _ => match scalar_type(n) {
                    Some(d) => Ty::Scalar(d),
                    None => {
                        self.error(errors::type_error(format!("unknown type `{n}`"), t.span));
                        Ty::Error
                    }
                },
            },
            ast::TypeKind::Tensor(e, dims) => {
                let Some(d) = scalar_type(&e.name) else {
                    self.error(errors::type_error(
                        format!(
                            "unknown element type `{}`; expected one of f32, f64, i32, i64, bool",
                            e.name
                        ),
                        e.span,
                    ));
                    return Ty::Error;
                };
                let mut out = Vec::new();
                for dim in dims {
                    out.push(self.lower_dim(dim, vars, fresh_for_unknown));
                }
                Ty::tensor(d, out)
            }
            ast::TypeKind::Tuple(fields) => Ty::Tuple(
                fields
                    .iter()
                    .map(|(n, t)| {
                        (
                            n.as_ref().map(|n| n.name.clone()),
                            self.lower_type(t, vars, fresh_for_unknown),
                        )
                    })
                    .collect(),
            ),
            ast::TypeKind::List(t) => {
                Ty::List(Box::new(self.lower_type(t, vars, fresh_for_unknown)))
            }
        }
    }

    fn lower_dim(&mut self, d: &ast::DimExpr, vars: &mut Vec<String>, fresh: bool) -> Dim {
        match &d.kind {
            ast::DimKind::Const(c) => match c.parse::<i64>() {
                Ok(n) => Dim::known(n),
                Err(_) => {
                    self.error(Diagnostic::error(
                        Code::BadLiteral,
                        format!("dimension `{c}` is too large"),
                        d.span,
                    ));
                    Dim::known(0)
                }
            },
            ast::DimKind::Var(v) => {
                if !vars.contains(v) {
                    if fresh {
                        if let Some(d) = self.annotation_vars.get(v) {
                            return d.clone();
                        }
                        let f = self.fresh_var(v);
                        self.annotation_vars.insert(v.clone(), f.clone());
                        return f;
                    }
                    vars.push(v.clone());
                }
                Dim::var(v.clone())
            }
            ast::DimKind::Add(a, b) => {
                let (a, b) = (
                    self.lower_dim(a, vars, fresh),
                    self.lower_dim(b, vars, fresh),
                );
                a.add(&b)
            }
            ast::DimKind::Sub(a, b) => {
                let (a, b) = (
                    self.lower_dim(a, vars, fresh),
                    self.lower_dim(b, vars, fresh),
                );
                a.sub(&b)
            }
            ast::DimKind::Mul(a, b) => {
                let (a, b) = (
                    self.lower_dim(a, vars, fresh),
                    self.lower_dim(b, vars, fresh),
                );
                match (a.as_known(), b.as_known()) {
                    (Some(k), _) => b.scale(k),
                    (_, Some(k)) => a.scale(k),
                    _ => {
                        self.error(errors::non_affine("a product of shape variables", d.span));
                        a
                    }
                }
            }
        }
    }

    // ---- unification ----

    pub fn fresh_var(&mut self, hint: &str) -> Dim {
        self.fresh += 1;
        Dim::var(format!("?{hint}{}", self.fresh))
    }

    pub fn zonk_dim(&self, d: &Dim) -> Dim {
        let mut cur = d.clone();
        for _ in 0..64 {
            if !cur.vars().any(|v| self.subst.contains_key(v)) {
                break;
            }
            cur = cur.subst(&|v| self.subst.get(v).cloned());
        }
        cur
    }

    pub fn zonk(&self, t: &Ty) -> Ty {
        t.map_dims(&|d| self.zonk_dim(d))
    }

    fn unify_dim(&mut self, a: &Dim, b: &Dim) -> bool {
        let diff = self.zonk_dim(a).sub(&self.zonk_dim(b));
        if diff.terms.is_empty() {
            return diff.konst == 0;
        }
        let flex: Vec<(String, i64)> = diff
            .terms
            .iter()
            .filter(|(v, _)| v.starts_with('?'))
            .map(|(v, c)| (v.clone(), *c))
            .collect();
        if let Some((v, c)) = flex.iter().find(|(_, c)| c.abs() == 1) {
            let mut rest = diff.clone();
            rest.terms.remove(v);
            // c·v + rest = 0, so v = -rest / c = -c · rest for c = ±1.
            let val = rest.scale(-c);
            self.subst.insert(v.clone(), val);
            return true;
        }
        // One flexible variable with another coefficient: `c·v + rest = 0` binds `v = -rest / c`
        // when every coefficient of `rest` divides by `c` (`2·?H = 2·H` gives `?H = H`).
        if let [(v, c)] = flex.as_slice() {
            let mut rest = diff.clone();
            rest.terms.remove(v);
            if rest.konst % c == 0 && rest.terms.values().all(|k| k % c == 0) {
                let val = Dim {
                    konst: -rest.konst / c,
                    terms: rest
                        .terms
                        .iter()
                        .map(|(w, k)| (w.clone(), -k / c))
                        .collect(),
                };
                self.subst.insert(v.clone(), val);
                return true;
            }
        }
        // Flexible variables with other coefficients are checked at dispatch time.
        !flex.is_empty()
    }

    /// Unifies two types; dtypes must be equal, dimensions unify.
    pub fn unify(&mut self, a: &Ty, b: &Ty) -> bool {
        match (a, b) {
            (Ty::Error, _) | (_, Ty::Error) => true,
            (Ty::Scalar(x), Ty::Scalar(y)) => x == y,
            (Ty::Tensor(x, da), Ty::Tensor(y, db)) => {
                if x != y || da.len() != db.len() {
                    return false;
                }
                let mut ok = true;
                for (p, q) in da.iter().zip(db) {
                    ok &= self.unify_dim(p, q);
                }
                ok
            }
            (Ty::Tuple(fa), Ty::Tuple(fb)) => {
                fa.len() == fb.len() && fa.iter().zip(fb).all(|((_, p), (_, q))| self.unify(p, q))
            }
            (Ty::List(p), Ty::List(q)) => self.unify(p, q),
            (Ty::Str, Ty::Str) | (Ty::Unit, Ty::Unit) => true,
            _ => false,
        }
    }

    /// Coerces a weak expression to `want` when that is possible, then unifies; reports a
    /// mismatch otherwise. Returns the (possibly retyped) expression.
    pub fn expect(&mut self, e: hir::Expr, want: &Ty) -> hir::Expr {
        let e = match (want.dtype(), e.ty.dtype()) {
            (Some(w), Some(f)) if w != f && is_weak(&e) => coerce(e, w),
            _ => e,
        };
        if !self.unify(want, &e.ty) {
            let (w, f) = (self.zonk(want), self.zonk(&e.ty));
            let shape_only =
                w.dtype() == f.dtype() && w.dims().len() == f.dims().len() && w.dtype().is_some();
            if shape_only {
                self.error(
                    Diagnostic::error(
                        Code::ShapeMismatch,
                        format!("shape mismatch: expected `{w}`, found `{f}`"),
                        e.span,
                    )
                    .with_label_text(format!("this is `{f}`")),
                );
            } else {
                self.error(errors::type_mismatch(&w, &f, e.span));
            }
        }
        e
    }

    // ---- bodies ----

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

    fn check_stmt(&mut self, s: &ast::Stmt, cx: &mut BodyCx) -> Option<hir::Stmt> {
        match s {
            ast::Stmt::Let {
                name,
                ty,
                indices: Some(idx),
                value,
                ..
            } => {
                let _ = ty;
                let e = self.comprehension(idx, value, cx, s.span());
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
                let want = ty.as_ref().map(|t| {
                    let fresh = cx.env == Env::Coordinator;
                    let mut vars = cx.rigid.clone();
                    self.annotation_vars = std::mem::take(&mut cx.annotation_vars);
                    let ty = self.lower_type(t, &mut vars, fresh);
                    cx.annotation_vars = std::mem::take(&mut self.annotation_vars);
                    ty
                });
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

    /// `let y[i, j < 4] = body;`
    fn comprehension(
        &mut self,
        idx: &[ast::IndexBind],
        body: &ast::Expr,
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        cx.push();
        let first_index = cx.indices.len();
        let first_use = cx.uses.len();
        let mark = self.diags.len();
        let ids = self.bind_indices(idx, cx);
        cx.point_depth += 1;
        let b = self.infer(body, cx, None);
        cx.point_depth -= 1;
        cx.pop();
        if cx.point_depth == 0 {
            self.solve_indices(cx, first_index, first_use, mark);
        }
        let dtype = match &b.ty {
            Ty::Scalar(d) => *d,
            Ty::Error => return err_expr(span),
            other => {
                self.error(errors::type_error(
                    format!("a comprehension's body must be a scalar, found `{other}`"),
                    b.span,
                ));
                return err_expr(span);
            }
        };
        let dims = ids
            .iter()
            .map(|i| cx.indices[i.0 as usize].range.clone())
            .collect();
        mk(
            hir::ExprKind::Comprehension {
                indices: ids,
                body: Box::new(b),
            },
            Ty::tensor(dtype, dims),
            span,
        )
    }

    fn bind_indices(&mut self, idx: &[ast::IndexBind], cx: &mut BodyCx) -> Vec<hir::IndexId> {
        let mut ids = Vec::new();
        for b in idx {
            let range = b.bound.as_ref().map(|e| self.static_dim(e, cx));
            if let Some(prev) = idx
                .iter()
                .take_while(|o| !std::ptr::eq(*o, b))
                .find(|o| o.name.name == b.name.name)
            {
                self.error(errors::duplicate(
                    "index",
                    &b.name.name,
                    b.name.span,
                    prev.name.span,
                ));
            }
            ids.push(cx.add_index(&b.name.name, range, b.name.span));
        }
        ids
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

    // ---- expressions ----

    pub fn infer(&mut self, e: &ast::Expr, cx: &mut BodyCx, want: Option<&Ty>) -> hir::Expr {
        let span = e.span;
        match &e.kind {
            K::Int(text) => match text.parse::<i64>() {
                Ok(v) => {
                    let lit = mk(
                        hir::ExprKind::Lit(Scalar::I64(v)),
                        Ty::Scalar(DType::I64),
                        span,
                    );
                    match want.and_then(|w| w.dtype()) {
                        Some(d) if d != DType::Bool => coerce(lit, d),
                        _ => lit,
                    }
                }
                Err(_) => {
                    self.error(Diagnostic::error(
                        Code::BadLiteral,
                        format!("integer literal `{text}` does not fit in i64"),
                        span,
                    ));
                    err_expr(span)
                }
            },
            K::Float(text) => {
                let v: f64 = text.parse().unwrap_or(f64::NAN);
                let lit = mk(
                    hir::ExprKind::Lit(Scalar::F64(v)),
                    Ty::Scalar(DType::F32),
                    span,
                );
                let lit = finish_float(lit, DType::F32, Some(text));
                match want.and_then(|w| w.dtype()) {
                    Some(DType::F64) => finish_float(lit, DType::F64, Some(text)),
                    _ => lit,
                }
            }
            K::Bool(b) => mk(
                hir::ExprKind::Lit(Scalar::Bool(*b)),
                Ty::Scalar(DType::Bool),
                span,
            ),
            K::Str(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    match p {
                        ast::StrPart::Text(t) => out.push(hir::StrPart::Text(t.clone())),
                        ast::StrPart::Expr(x) => {
                            out.push(hir::StrPart::Expr(self.infer(x, cx, None)))
                        }
                    }
                }
                if cx.env == Env::Operation {
                    self.error(errors::type_error(
                        "strings exist only in the coordinator",
                        span,
                    ));
                }
                mk(hir::ExprKind::Str(out), Ty::Str, span)
            }
            K::Name(n) => self.name(n, cx, span, want),
            K::Placeholder => {
                self.error(errors::placeholder(span));
                err_expr(span)
            }
            K::Unary(op, a) => {
                let a = self.infer(a, cx, want);
                match (op, a.ty.dtype()) {
                    (_, None) if a.ty.is_error() => err_expr(span),
                    (UnOp::Neg, Some(d)) if d != DType::Bool => {
                        let ty = a.ty.clone();
                        mk(hir::ExprKind::Unary(*op, Box::new(a)), ty, span)
                    }
                    (UnOp::Not, Some(DType::Bool)) => {
                        let ty = a.ty.clone();
                        mk(hir::ExprKind::Unary(*op, Box::new(a)), ty, span)
                    }
                    _ => {
                        let what = if *op == UnOp::Neg {
                            "negate"
                        } else {
                            "apply `!` to"
                        };
                        self.error(errors::type_error(
                            format!("cannot {what} a value of type `{}`", a.ty),
                            span,
                        ));
                        err_expr(span)
                    }
                }
            }
            K::Binary(BinOp::Pipe, _, _) => {
                // Unfold the whole chain `x |> f |> g` at once, copying `x` once: unfolding
                // one stage at a time would copy the rest of the chain at every stage.
                let mut stages = Vec::new();
                let mut base = e;
                while let K::Binary(BinOp::Pipe, arg, f) = &base.kind {
                    stages.push(f.as_ref());
                    base = arg;
                }
                let mut applied = base.clone();
                for f in stages.into_iter().rev() {
                    match self.apply_arrow(applied, f) {
                        Some(x) => applied = x,
                        None => return err_expr(span),
                    }
                }
                self.infer(&applied, cx, want)
            }
            K::Binary(BinOp::Shr, a, b) if self.is_arrow(a) || self.is_arrow(b) => {
                self.error(errors::type_error(
                    "an arrow composition (`f >> g`) must be applied: write `x |> (f >> g)`",
                    span,
                ));
                err_expr(span)
            }
            K::Binary(op, a, b) => self.binary(*op, a, b, cx, want, span),
            K::Cast(a, t) => {
                let a = self.infer(a, cx, None);
                let Some(d) = scalar_type(&t.name) else {
                    self.error(errors::type_error(
                        format!("cannot cast to `{}`: not a scalar type", t.name),
                        t.span,
                    ));
                    return err_expr(span);
                };
                if a.ty.is_error() {
                    return err_expr(span);
                }
                let ty = match &a.ty {
                    Ty::Scalar(_) => Ty::Scalar(d),
                    Ty::Tensor(_, dims) => Ty::Tensor(d, dims.clone()),
                    other => {
                        self.error(errors::type_error(
                            format!("cannot cast a value of type `{other}`"),
                            span,
                        ));
                        return err_expr(span);
                    }
                };
                mk(hir::ExprKind::Cast(Box::new(a), d), ty, span)
            }
            K::Call(f, args) => self.call(f, args, cx, want, span),
            K::Index(t, idx) => self.index(t, idx, cx, span),
            K::Field(t, field, fspan) => {
                let t = self.infer(t, cx, None);
                let Ty::Tuple(fields) = &t.ty else {
                    if !t.ty.is_error() {
                        self.error(Diagnostic::error(
                            Code::UnknownField,
                            format!("`{}` has no fields", t.ty),
                            *fspan,
                        ));
                    }
                    return err_expr(span);
                };
                let pos = match field {
                    ast::Field::Pos(i) => (*i as usize) < fields.len(),
                    ast::Field::Named(_) => true,
                };
                let found = match field {
                    ast::Field::Pos(i) if pos => Some(*i as usize),
                    ast::Field::Pos(_) => None,
                    ast::Field::Named(n) => fields
                        .iter()
                        .position(|(fname, _)| fname.as_deref() == Some(n)),
                };
                match found {
                    Some(i) => {
                        let ty = fields[i].1.clone();
                        mk(hir::ExprKind::Field(Box::new(t), i), ty, span)
                    }
                    None => {
                        let name = match field {
                            ast::Field::Pos(i) => i.to_string(),
                            ast::Field::Named(n) => n.clone(),
                        };
                        self.error(Diagnostic::error(
                            Code::UnknownField,
                            format!("`{}` has no field `{name}`", t.ty),
                            *fspan,
                        ));
                        err_expr(span)
                    }
                }
            }
            K::Tuple(es) => {
                let wants: Vec<Option<Ty>> = match want {
                    Some(Ty::Tuple(fs)) if fs.len() == es.len() => {
                        fs.iter().map(|f| Some(f.1.clone())).collect()
                    }
                    _ => vec![None; es.len()],
                };
                let mut items = Vec::new();
                let mut tys = Vec::new();
                for (x, w) in es.iter().zip(&wants) {
                    let mut h = self.infer(x, cx, w.as_ref());
                    if let Some(w) = w {
                        if let (Some(wd), Some(hd)) = (w.dtype(), h.ty.dtype()) {
                            if wd != hd && is_weak(&h) {
                                h = coerce(h, wd);
                            }
                        }
                    }
                    tys.push((None, h.ty.clone()));
                    items.push(h);
                }
                if let Some(Ty::Tuple(fs)) = want {
                    if fs.len() == tys.len() {
                        for (t, f) in tys.iter_mut().zip(fs) {
                            t.0 = f.0.clone();
                        }
                    }
                }
                mk(hir::ExprKind::Tuple(items), Ty::Tuple(tys), span)
            }
            K::TensorLit(es) => self.tensor_lit(es, cx, want, span),
            K::Reduce { op, indices, args } => self.reduce(*op, indices, args, cx, want, span),
            K::If { cond, then, els } => {
                let c = self.infer(cond, cx, Some(&Ty::Scalar(DType::Bool)));
                let c = self.expect(c, &Ty::Scalar(DType::Bool));
                let t = self.check_block(then, cx, want);
                let Some(els) = els else {
                    return mk(
                        hir::ExprKind::If {
                            cond: Box::new(c),
                            then: Box::new(t),
                            els: None,
                        },
                        Ty::Unit,
                        span,
                    );
                };
                let el = self.infer(els, cx, want.or(Some(&t.ty)));
                let (t, el) = self.join(t, el);
                let ty = if t.ty == Ty::Unit || el.ty == Ty::Unit {
                    Ty::Unit
                } else {
                    t.ty.clone()
                };
                if ty != Ty::Unit && !self.unify(&t.ty, &el.ty) {
                    self.error(
                        errors::type_error(
                            format!(
                                "the branches of this `if` have different types: `{}` and `{}`",
                                t.ty, el.ty
                            ),
                            el.span,
                        )
                        .with_label(t.span, format!("this is `{}`", t.ty)),
                    );
                }
                mk(
                    hir::ExprKind::If {
                        cond: Box::new(c),
                        then: Box::new(t),
                        els: Some(Box::new(el)),
                    },
                    ty,
                    span,
                )
            }
            K::Block(b) => self.check_block(b, cx, want),
            K::Error => err_expr(span),
        }
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

    fn name(&mut self, n: &str, cx: &mut BodyCx, span: Span, want: Option<&Ty>) -> hir::Expr {
        match cx.lookup(n) {
            Some(Binding::Local(id)) => {
                let ty = cx.locals[id.0 as usize].ty.clone();
                return mk(hir::ExprKind::Local(id), ty, span);
            }
            Some(Binding::Index(id)) => {
                return mk(hir::ExprKind::IndexValue(id), Ty::Scalar(DType::I64), span);
            }
            None => {}
        }
        if cx.rigid.iter().any(|v| v == n) {
            return mk(
                hir::ExprKind::DimValue(Dim::var(n)),
                Ty::Scalar(DType::I64),
                span,
            );
        }
        let float = |v: f64| {
            let d = match want.and_then(|w| w.dtype()) {
                Some(DType::F64) => DType::F64,
                _ => DType::F32,
            };
            let s = if d == DType::F64 {
                Scalar::F64(v)
            } else {
                Scalar::F32(v as f32)
            };
            mk(hir::ExprKind::Lit(s), Ty::Scalar(d), span)
        };
        match n {
            "inf" => return float(f64::INFINITY),
            "nan" => return float(f64::NAN),
            _ => {}
        }
        match self.globals.get(n) {
            Some(Global::Func(_)) => self.error(errors::type_error(
                format!("`{n}` is a function; call it, or pass it to `map`/`zip_with`"),
                span,
            )),
            Some(Global::Monoid(_)) => self.error(errors::type_error(
                format!("`{n}` is a monoid; use it in a reduction: `reduce[i]({n}, x[i])`"),
                span,
            )),
            None => self.error(errors::unknown_name(n, span)),
        }
        err_expr(span)
    }

    fn binary(
        &mut self,
        op: BinOp,
        a: &ast::Expr,
        b: &ast::Expr,
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        let arith = matches!(
            op,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
        );
        let sub_want = if arith { want } else { None };
        let mut l = self.infer(a, cx, sub_want);
        let mut r = self.infer(b, cx, sub_want);
        if l.ty.is_error() || r.ty.is_error() {
            return err_expr(span);
        }
        // A weak side takes the other side's type.
        if is_weak(&l) && !is_weak(&r) {
            if let Some(d) = r.ty.dtype() {
                l = coerce(l, d);
            }
        } else if is_weak(&r) && !is_weak(&l) {
            if let Some(d) = l.ty.dtype() {
                r = coerce(r, d);
            }
        } else if is_weak(&l) && is_weak(&r) {
            let (x, y) = self.join(l, r);
            l = x;
            r = y;
        }
        let (Some(dl), Some(dr)) = (l.ty.dtype(), r.ty.dtype()) else {
            self.error(errors::type_error(
                format!(
                    "cannot apply `{}` to `{}` and `{}`",
                    op.as_str(),
                    l.ty,
                    r.ty
                ),
                span,
            ));
            return err_expr(span);
        };
        if dl != dr {
            self.error(
                errors::type_error(
                    format!(
                        "cannot apply `{}` to `{dl}` and `{dr}`: convert one side with `as`",
                        op.as_str()
                    ),
                    span,
                )
                .with_label(l.span, format!("this is `{}`", l.ty))
                .with_label(r.span, format!("this is `{}`", r.ty)),
            );
            return err_expr(span);
        }
        let ok = match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => dl != DType::Bool,
            BinOp::Rem | BinOp::Shl | BinOp::Shr => dl.is_int(),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => dl != DType::Bool,
            BinOp::Eq | BinOp::Ne => true,
            BinOp::And | BinOp::Or => dl == DType::Bool,
            BinOp::Pipe => false,
        };
        if !ok {
            self.error(errors::type_error(
                format!("cannot apply `{}` to values of type `{dl}`", op.as_str()),
                span,
            ));
            return err_expr(span);
        }
        let out_d = match op {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => DType::Bool,
            _ => dl,
        };
        let dims = match (&l.ty, &r.ty) {
            (Ty::Tensor(_, x), Ty::Tensor(_, y)) => {
                if !self.unify(&l.ty, &r.ty.clone().map_dims(&|d| d.clone())) && x.len() == y.len()
                {
                    let (lt, rt) = (self.zonk(&l.ty), self.zonk(&r.ty));
                    self.error(errors::shape_mismatch(&lt, &rt, l.span, r.span));
                } else if x.len() != y.len() {
                    self.error(errors::shape_mismatch(&l.ty, &r.ty, l.span, r.span));
                }
                x.clone()
            }
            (Ty::Tensor(_, x), _) | (_, Ty::Tensor(_, x)) => x.clone(),
            _ => Vec::new(),
        };
        mk(
            hir::ExprKind::Binary(op, Box::new(l), Box::new(r)),
            Ty::tensor(out_d, dims),
            span,
        )
    }

    fn tensor_lit(
        &mut self,
        es: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        let elem_want = want.and_then(|w| w.dtype()).map(Ty::Scalar);
        let mut items: Vec<hir::Expr> = es
            .iter()
            .map(|x| self.infer(x, cx, elem_want.as_ref()))
            .collect();
        if items.iter().any(|i| i.ty.is_error()) {
            return err_expr(span);
        }
        if items.is_empty() {
            // `let e: f32[0] = [];`: the context gives the type and the (empty) shape.
            if let Some(Ty::Tensor(d, dims)) = want {
                if dims.len() == 1 && self.zonk_dim(&dims[0]).as_known() == Some(0) {
                    return mk(
                        hir::ExprKind::TensorLit(Vec::new()),
                        Ty::tensor(*d, vec![Dim::known(0)]),
                        span,
                    );
                }
            }
            // Otherwise `[]` has no element type, or no shape to give.
            self.error(errors::type_error(
                "an empty tensor literal has no element type or shape: a tensor literal needs at least one element",
                span,
            ));
            return err_expr(span);
        }
        // Pick the element type: the first strong element, else the wanted type, else the first.
        let target = items
            .iter()
            .find(|i| !is_weak(i))
            .and_then(|i| i.ty.dtype())
            .or(want.and_then(|w| w.dtype()))
            .or_else(|| {
                if items
                    .iter()
                    .any(|i| i.ty.dtype().is_some_and(|d| d.is_float()))
                {
                    Some(DType::F32)
                } else {
                    items.first().and_then(|i| i.ty.dtype())
                }
            });
        let Some(target) = target else {
            self.error(errors::type_error(
                "a tensor literal holds numbers or booleans",
                span,
            ));
            return err_expr(span);
        };
        items = items
            .into_iter()
            .map(|i| {
                if i.ty.dtype() != Some(target) && is_weak(&i) {
                    coerce(i, target)
                } else {
                    i
                }
            })
            .collect();
        let inner = items[0].ty.dims().to_vec();
        for i in &items {
            if i.ty.dtype() != Some(target) {
                self.error(errors::type_mismatch(&Ty::Scalar(target), &i.ty, i.span));
                return err_expr(span);
            }
            if i.ty.dims() != inner.as_slice() {
                self.error(errors::shape_mismatch(
                    &items[0].ty,
                    &i.ty,
                    items[0].span,
                    i.span,
                ));
                return err_expr(span);
            }
        }
        let mut dims = vec![Dim::known(items.len() as i64)];
        dims.extend(inner);
        mk(
            hir::ExprKind::TensorLit(items),
            Ty::tensor(target, dims),
            span,
        )
    }

    fn reduce(
        &mut self,
        op: ast::RedKw,
        indices: &[ast::IndexBind],
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        cx.push();
        let first_index = cx.indices.len();
        let first_use = cx.uses.len();
        let mark = self.diags.len();
        let ids = self.bind_indices(indices, cx);
        cx.point_depth += 1;
        let res = self.reduce_body(op, args, cx, want, span, ids);
        cx.point_depth -= 1;
        cx.pop();
        if cx.point_depth == 0 {
            self.solve_indices(cx, first_index, first_use, mark);
        }
        res
    }

    fn reduce_body(
        &mut self,
        op: ast::RedKw,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
        ids: Vec<hir::IndexId>,
    ) -> hir::Expr {
        let builtin = match op {
            ast::RedKw::Sum => Some(BuiltinMonoid::Sum),
            ast::RedKw::Prod => Some(BuiltinMonoid::Prod),
            ast::RedKw::Max => Some(BuiltinMonoid::Max),
            ast::RedKw::Min => Some(BuiltinMonoid::Min),
            ast::RedKw::Any => Some(BuiltinMonoid::Any),
            ast::RedKw::All => Some(BuiltinMonoid::All),
            ast::RedKw::Reduce => None,
        };
        if let Some(m) = builtin {
            if args.len() != 1 {
                self.error(errors::arity(m.name(), 1, args.len(), span));
                return err_expr(span);
            }
            let body = self.infer(&args[0], cx, want);
            let ok = match (m, &body.ty) {
                (_, Ty::Error) => return err_expr(span),
                (BuiltinMonoid::Any | BuiltinMonoid::All, Ty::Scalar(DType::Bool)) => true,
                (BuiltinMonoid::Any | BuiltinMonoid::All, _) => false,
                (_, t) => t.is_numeric_scalar(),
            };
            if !ok {
                let need = if matches!(m, BuiltinMonoid::Any | BuiltinMonoid::All) {
                    "a bool"
                } else {
                    "a number"
                };
                self.error(errors::type_error(
                    format!(
                        "`{}` reduces {need} at each index, found `{}`",
                        m.name(),
                        body.ty
                    ),
                    body.span,
                ));
                return err_expr(span);
            }
            let ty = body.ty.clone();
            return mk(
                hir::ExprKind::Reduce {
                    monoid: MonoidRef::Builtin(m),
                    indices: ids,
                    args: vec![body],
                },
                ty,
                span,
            );
        }
        let Some(first) = args.first() else {
            self.error(errors::arity("reduce", 2, 0, span));
            return err_expr(span);
        };
        let K::Name(mname) = &first.kind else {
            self.error(errors::type_error(
                "the first argument of `reduce` must name a monoid",
                first.span,
            ));
            return err_expr(span);
        };
        let Some(Global::Monoid(mid)) = self.globals.get(mname).copied() else {
            match self.globals.get(mname) {
                Some(_) => self.error(errors::type_error(
                    format!("`{mname}` is not a monoid"),
                    first.span,
                )),
                None => self.error(errors::unknown_name(mname, first.span)),
            }
            return err_expr(span);
        };
        let sig = self.monoid_sigs[mid.0 as usize].clone();
        let rest = &args[1..];
        if rest.len() != sig.inputs.len() {
            self.error(errors::arity(
                &format!("reduce with {}", sig.name),
                sig.inputs.len() + 1,
                args.len(),
                span,
            ));
            return err_expr(span);
        }
        let mut out = Vec::new();
        for (a, t) in rest.iter().zip(&sig.inputs) {
            let h = self.infer(a, cx, Some(t));
            out.push(self.expect(h, t));
        }
        mk(
            hir::ExprKind::Reduce {
                monoid: MonoidRef::User(mid),
                indices: ids,
                args: out,
            },
            sig.result,
            span,
        )
    }

    fn index(
        &mut self,
        t: &ast::Expr,
        idx: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        // `pad(x, v)[…]` and `clamp_edge(x)[…]` read past the edges on purpose.
        let (tensor, edge) = match &t.kind {
            K::Call(f, args) if f.name == "pad" && !self.globals.contains_key("pad") => {
                if args.len() != 2 {
                    self.error(errors::arity("pad", 2, args.len(), t.span));
                    return err_expr(span);
                }
                let x = self.infer(&args[0], cx, None);
                let want = x.ty.dtype().map(Ty::Scalar);
                let v = self.infer(&args[1], cx, want.as_ref());
                let v = match &want {
                    Some(w) => self.expect(v, w),
                    None => v,
                };
                (x, Edge::Pad(Box::new(v)))
            }
            K::Call(f, args)
                if f.name == "clamp_edge" && !self.globals.contains_key("clamp_edge") =>
            {
                if args.len() != 1 {
                    self.error(errors::arity("clamp_edge", 1, args.len(), t.span));
                    return err_expr(span);
                }
                (self.infer(&args[0], cx, None), Edge::Clamp)
            }
            _ => (self.infer(t, cx, None), Edge::Strict),
        };
        match &tensor.ty {
            Ty::Error => err_expr(span),
            Ty::List(elem) => {
                if idx.len() != 1 {
                    self.error(errors::type_error("a list takes one index", span));
                    return err_expr(span);
                }
                let i64t = Ty::Scalar(DType::I64);
                let i = self.infer(&idx[0], cx, Some(&i64t));
                let i = self.expect(i, &i64t);
                let ty = (**elem).clone();
                mk(
                    hir::ExprKind::Builtin(Builtin::Len, vec![tensor, i]),
                    ty,
                    span,
                )
            }
            Ty::Tensor(d, dims) => {
                let (d, dims) = (*d, dims.clone());
                if dims.len() != idx.len() {
                    self.error(errors::rank_mismatch(&tensor.ty, idx.len(), span));
                    return err_expr(span);
                }
                let mut affs = Vec::new();
                for (axis, ix) in idx.iter().enumerate() {
                    let Some(a) = self.affine(ix, cx) else {
                        return err_expr(span);
                    };
                    if matches!(edge, Edge::Strict) && cx.point_depth == 0 {
                        // No index is in scope: the position is a constant (or a shape
                        // expression), so a read past the edge is refuted here.
                        let dim = self.zonk_dim(&dims[axis]);
                        let below = a.konst.nonneg() == Some(false);
                        let above = dim.sub(&a.konst).sub(&Dim::known(1)).nonneg() == Some(false);
                        if below || above {
                            let t = self.zonk(&tensor.ty);
                            self.error(errors::out_of_bounds(
                                &t, axis, &a.konst, &a.konst, ix.span,
                            ));
                            return err_expr(span);
                        }
                    } else if matches!(edge, Edge::Strict) {
                        cx.uses.push(Use {
                            tensor: tensor.ty.clone(),
                            axis,
                            idx: a.clone(),
                            span: ix.span,
                        });
                    }
                    affs.push(a);
                }
                mk(
                    hir::ExprKind::Read {
                        tensor: Box::new(tensor),
                        index: affs,
                        edge,
                    },
                    Ty::Scalar(d),
                    span,
                )
            }
            other => {
                self.error(errors::type_error(
                    format!("cannot index a value of type `{other}`"),
                    span,
                ));
                err_expr(span)
            }
        }
    }

    // ---- calls ----

    fn call(
        &mut self,
        f: &ast::Ident,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        if cx.lookup(&f.name).is_some() {
            self.error(errors::not_callable(&f.name, "a local value", f.span));
            return err_expr(span);
        }
        if let Some(Global::Func(id)) = self.globals.get(&f.name).copied() {
            return self.user_call(id, args, cx, span);
        }
        if let Some(Global::Monoid(_)) = self.globals.get(&f.name) {
            self.error(errors::not_callable(&f.name, "a monoid", f.span));
            return err_expr(span);
        }
        match f.name.as_str() {
            "map" | "zip_with" => return self.map_call(&f.name, args, cx, span),
            "pad" | "clamp_edge" => {
                self.error(errors::type_error(
                    format!(
                        "`{}(…)` must be indexed directly: `{}(x, …)[i - 1]`",
                        f.name, f.name
                    ),
                    span,
                ));
                return err_expr(span);
            }
            _ => {}
        }
        let Some(b) = builtin_by_name(&f.name) else {
            self.error(errors::unknown_name(&f.name, f.span));
            return err_expr(span);
        };
        self.builtin_call(b, &f.name, args, cx, want, span)
    }

    fn user_call(
        &mut self,
        id: hir::FuncId,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        let sig = self.sigs[id.0 as usize].clone();
        // In an operation the environment rules report this; in the coordinator a
        // comprehension or reduction body is an operation too.
        if sig.kind == FuncKind::Proc && cx.env == Env::Coordinator && cx.point_depth > 0 {
            self.error(errors::proc_in_point(&sig.name, span));
            return err_expr(span);
        }
        if args.len() != sig.params.len() {
            self.error(errors::arity(&sig.name, sig.params.len(), args.len(), span));
            return err_expr(span);
        }
        // Instantiate the callee's shape variables.
        let mut inst: HashMap<String, Dim> = HashMap::new();
        for v in &sig.shape_vars {
            let f = self.fresh_var(v);
            inst.insert(v.clone(), f);
        }
        let inst_ty = |t: &Ty| t.map_dims(&|d| d.subst(&|v| inst.get(v).cloned()));
        let mut out = Vec::new();
        let mut failed = false;
        for (a, (pname, pty, _)) in args.iter().zip(&sig.params) {
            let want = inst_ty(pty);
            let mut h = self.infer(a, cx, Some(&want));
            if h.ty.is_error() {
                failed = true;
                out.push(h);
                continue;
            }
            if let (Some(wd), Some(hd)) = (want.dtype(), h.ty.dtype()) {
                if wd != hd && is_weak(&h) {
                    h = coerce(h, wd);
                }
            }
            if !self.unify(&want, &h.ty) {
                let (w, f) = (self.zonk(&want), self.zonk(&h.ty));
                failed = true;
                if w.dtype() == f.dtype() && w.dims().len() == f.dims().len() && w.dtype().is_some()
                {
                    self.error(errors::arg_shape_mismatch(
                        &w, &f, &sig.name, h.span, sig.span,
                    ));
                } else {
                    self.error(
                        errors::type_mismatch(&w, &f, h.span)
                            .with_label(sig.span, format!("parameter `{pname}` of `{}`", sig.name)),
                    );
                }
            }
            out.push(h);
        }
        if failed {
            return err_expr(span);
        }
        let ret = self.zonk(&inst_ty(&sig.ret));
        if let Some(d) = ret
            .dims()
            .iter()
            .find(|d| d.as_known().is_some_and(|n| n < 0))
        {
            self.error(
                Diagnostic::error(
                    Code::ShapeMismatch,
                    format!("`{}` would return `{ret}`: the dimension `{d}` is negative for these arguments", sig.name),
                    span,
                )
                .with_label(sig.span, format!("`{}` returns `{}`", sig.name, sig.ret)),
            );
            return err_expr(span);
        }
        mk(hir::ExprKind::Call(id, out), ret, span)
    }

    fn map_call(
        &mut self,
        which: &str,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        let n_data = if which == "map" { 1 } else { 2 };
        if args.len() != n_data + 1 {
            self.error(errors::arity(which, n_data + 1, args.len(), span));
            return err_expr(span);
        }
        let K::Name(fname) = &args[0].kind else {
            self.error(errors::type_error(
                format!("the first argument of `{which}` must name an `fn`"),
                args[0].span,
            ));
            return err_expr(span);
        };
        let Some(Global::Func(fid)) = self.globals.get(fname).copied() else {
            self.error(errors::unknown_name(fname, args[0].span));
            return err_expr(span);
        };
        let sig = self.sigs[fid.0 as usize].clone();
        if sig.kind != FuncKind::Fn || sig.params.len() != n_data {
            self.error(errors::type_error(
                format!(
                    "`{which}` needs a scalar `fn` of {n_data} argument(s); `{fname}` is {} `{}` of {}",
                    if sig.kind == FuncKind::Op { "an" } else { "a" },
                    sig.kind.keyword(),
                    sig.params.len()
                ),
                args[0].span,
            ));
            return err_expr(span);
        }
        if !matches!(sig.ret, Ty::Scalar(_) | Ty::Error) {
            // A tensor has scalar elements: there is no tensor of tuples.
            self.error(errors::type_error(
                format!(
                    "`{which}` needs a scalar `fn` with a scalar result; `{fname}` returns `{}`",
                    sig.ret
                ),
                args[0].span,
            ));
            return err_expr(span);
        }
        let mut data = Vec::new();
        let mut dims: Option<(Vec<Dim>, Ty, Span)> = None;
        for (a, (_, pty, _)) in args[1..].iter().zip(&sig.params) {
            let h = self.infer(a, cx, Some(pty));
            if h.ty.is_error() {
                return err_expr(span);
            }
            let h = match (pty.dtype(), h.ty.dtype()) {
                (Some(w), Some(f)) if w != f && is_weak(&h) => coerce(h, w),
                _ => h,
            };
            if h.ty.dtype() != pty.dtype() {
                self.error(errors::type_error(
                    format!("`{fname}` takes `{pty}` elements, found `{}`", h.ty),
                    h.span,
                ));
                return err_expr(span);
            }
            match &dims {
                None => dims = Some((h.ty.dims().to_vec(), h.ty.clone(), h.span)),
                Some((_, t0, s0)) => {
                    let (t0, s0) = (t0.clone(), *s0);
                    if !self.unify(&t0, &h.ty) {
                        self.error(errors::shape_mismatch(&t0, &h.ty, s0, h.span));
                        return err_expr(span);
                    }
                }
            }
            data.push(h);
        }
        let d = sig.ret.dtype().unwrap_or(DType::F32);
        let dims = dims.map(|x| x.0).unwrap_or_default();
        mk(
            hir::ExprKind::MapFn(fid, data),
            self.zonk(&Ty::tensor(d, dims)),
            span,
        )
    }

    fn builtin_call(
        &mut self,
        b: Builtin,
        name: &str,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        let arity = |n: usize, this: &mut Checker| -> bool {
            if args.len() != n {
                this.error(errors::arity(name, n, args.len(), span));
                false
            } else {
                true
            }
        };
        let i64t = Ty::Scalar(DType::I64);
        match b {
            Builtin::Math(_) => {
                if !arity(1, self) {
                    return err_expr(span);
                }
                let x = self.infer(&args[0], cx, want);
                match x.ty.dtype() {
                    _ if x.ty.is_error() => err_expr(span),
                    Some(d) if d.is_float() => {
                        let ty = x.ty.clone();
                        mk(hir::ExprKind::Builtin(b, vec![x]), ty, span)
                    }
                    Some(d) if d.is_int() && matches!(b, Builtin::Math(MathFn::Abs)) => {
                        let ty = x.ty.clone();
                        mk(hir::ExprKind::Builtin(b, vec![x]), ty, span)
                    }
                    _ => {
                        self.error(errors::type_error(
                            format!("`{name}` takes a float, found `{}`", x.ty),
                            x.span,
                        ));
                        err_expr(span)
                    }
                }
            }
            Builtin::Max | Builtin::Min | Builtin::Pow => {
                if !arity(2, self) {
                    return err_expr(span);
                }
                let op_like = match b {
                    Builtin::Max => "max",
                    Builtin::Min => "min",
                    _ => "pow",
                };
                let l = self.infer(&args[0], cx, want);
                let r = self.infer(&args[1], cx, want);
                self.elementwise(b, op_like, vec![l, r], span)
            }
            Builtin::Select => {
                if !arity(3, self) {
                    return err_expr(span);
                }
                let c = self.infer(&args[0], cx, None);
                let l = self.infer(&args[1], cx, want);
                let r = self.infer(&args[2], cx, want);
                if c.ty.dtype() != Some(DType::Bool) && !c.ty.is_error() {
                    self.error(errors::type_mismatch(
                        &Ty::Scalar(DType::Bool),
                        &c.ty,
                        c.span,
                    ));
                    return err_expr(span);
                }
                let (l, r) = self.join(l, r);
                let res = self.elementwise(b, "select", vec![l, r], span);
                match res.kind {
                    hir::ExprKind::Builtin(_, mut xs) => {
                        xs.insert(0, c);
                        mk(hir::ExprKind::Builtin(b, xs), res.ty, span)
                    }
                    _ => res,
                }
            }
            Builtin::RandUniform | Builtin::RandNormal => {
                if !arity(2, self) {
                    return err_expr(span);
                }
                let seed = self.infer(&args[0], cx, Some(&i64t));
                let seed = self.expect(seed, &i64t);
                let K::TensorLit(dims_ast) = &args[1].kind else {
                    self.error(errors::type_error(
                        format!("the shape of `{name}` is a list of sizes: `{name}(seed, [2, 3])`"),
                        args[1].span,
                    ));
                    return err_expr(span);
                };
                let mut dims = Vec::new();
                let mut sizes = Vec::new();
                for d in dims_ast {
                    let h = self.infer(d, cx, Some(&i64t));
                    sizes.push(self.expect(h, &i64t));
                    dims.push(match self.try_static_dim(d, cx) {
                        Some(x) => x,
                        None => self.fresh_var("D"),
                    });
                }
                let mut shape = mk(hir::ExprKind::Tuple(sizes), Ty::Unit, args[1].span);
                let mut seed = seed;
                if cx.point_depth > 0 && (uses_an_index(&mut seed) || uses_an_index(&mut shape)) {
                    self.error(errors::type_error(
                        format!("the seed and sizes of `{name}` must be known when the graph is built, so they cannot depend on a comprehension or reduction index; draw the whole tensor outside and index it"),
                        span,
                    ));
                    return err_expr(span);
                }
                mk(
                    hir::ExprKind::Builtin(b, vec![seed, shape]),
                    Ty::tensor(DType::F32, dims),
                    span,
                )
            }
            // I/O in an operation was reported by the environment rules; don't add more.
            _ if b.is_io() && cx.env == Env::Operation => err_expr(span),
            // The body of a comprehension or reduction in the coordinator is an operation.
            _ if cx.point_depth > 0
                && (b.is_io()
                    || matches!(b, Builtin::Len | Builtin::ParseI64 | Builtin::ParseF64)) =>
            {
                self.error(errors::coordinator_in_point(name, span));
                err_expr(span)
            }
            Builtin::Print => {
                let xs: Vec<hir::Expr> = args.iter().map(|a| self.infer(a, cx, None)).collect();
                mk(hir::ExprKind::Builtin(b, xs), Ty::Unit, span)
            }
            Builtin::Load => {
                if !arity(1, self) {
                    return err_expr(span);
                }
                let p = self.infer(&args[0], cx, Some(&Ty::Str));
                let p = self.expect(p, &Ty::Str);
                let Some(w) = want.filter(|w| w.dtype().is_some()) else {
                    self.error(errors::type_error(
                        "cannot tell the type of this `load`: annotate it (`let x: f32[N] = load(\"x.npy\");`) or pass it straight to an op",
                        span,
                    ));
                    return err_expr(span);
                };
                mk(hir::ExprKind::Builtin(b, vec![p]), w.clone(), span)
            }
            Builtin::Save => {
                if !arity(2, self) {
                    return err_expr(span);
                }
                let p = self.infer(&args[0], cx, Some(&Ty::Str));
                let p = self.expect(p, &Ty::Str);
                let t = self.infer(&args[1], cx, None);
                if t.ty.dtype().is_none() && !t.ty.is_error() {
                    self.error(errors::type_error(
                        format!("`save` writes a tensor, found `{}`", t.ty),
                        t.span,
                    ));
                }
                mk(hir::ExprKind::Builtin(b, vec![p, t]), Ty::Unit, span)
            }
            Builtin::Args => {
                if !arity(0, self) {
                    return err_expr(span);
                }
                mk(
                    hir::ExprKind::Builtin(b, vec![]),
                    Ty::List(Box::new(Ty::Str)),
                    span,
                )
            }
            Builtin::Len => {
                if !arity(1, self) {
                    return err_expr(span);
                }
                let x = self.infer(&args[0], cx, None);
                if !matches!(x.ty, Ty::List(_) | Ty::Error) {
                    self.error(errors::type_error(
                        format!("`len` takes a list, found `{}`", x.ty),
                        x.span,
                    ));
                }
                mk(hir::ExprKind::Builtin(b, vec![x]), i64t, span)
            }
            Builtin::ParseI64 | Builtin::ParseF64 => {
                if !arity(1, self) {
                    return err_expr(span);
                }
                let x = self.infer(&args[0], cx, Some(&Ty::Str));
                let x = self.expect(x, &Ty::Str);
                let ty = if b == Builtin::ParseI64 {
                    i64t
                } else {
                    Ty::Scalar(DType::F64)
                };
                mk(hir::ExprKind::Builtin(b, vec![x]), ty, span)
            }
            Builtin::Assert => {
                if args.is_empty() || args.len() > 2 {
                    self.error(errors::arity(name, 2, args.len(), span));
                    return err_expr(span);
                }
                let c = self.infer(&args[0], cx, Some(&Ty::Scalar(DType::Bool)));
                let c = self.expect(c, &Ty::Scalar(DType::Bool));
                let mut xs = vec![c];
                if let Some(m) = args.get(1) {
                    let m = self.infer(m, cx, Some(&Ty::Str));
                    xs.push(self.expect(m, &Ty::Str));
                }
                mk(hir::ExprKind::Builtin(b, xs), Ty::Unit, span)
            }
            Builtin::AssertClose => {
                if args.len() < 2 || args.len() > 3 {
                    self.error(errors::arity(name, 2, args.len(), span));
                    return err_expr(span);
                }
                let a = self.infer(&args[0], cx, None);
                let bb = self.infer(&args[1], cx, Some(&a.ty));
                let (a, bb) = self.join(a, bb);
                if a.ty.is_error() || bb.ty.is_error() {
                    return err_expr(span);
                }
                if a.ty.dtype() != bb.ty.dtype() || a.ty.dims().len() != bb.ty.dims().len() {
                    self.error(errors::type_mismatch(&a.ty, &bb.ty, bb.span));
                    return err_expr(span);
                }
                let mut xs = vec![a, bb];
                if let Some(t) = args.get(2) {
                    let f64t = Ty::Scalar(DType::F64);
                    let t = self.infer(t, cx, Some(&f64t));
                    xs.push(self.expect(t, &f64t));
                }
                mk(hir::ExprKind::Builtin(b, xs), Ty::Unit, span)
            }
            Builtin::Eval => {
                if !arity(1, self) {
                    return err_expr(span);
                }
                let x = self.infer(&args[0], cx, want);
                let ty = x.ty.clone();
                mk(hir::ExprKind::Builtin(b, vec![x]), ty, span)
            }
        }
    }

    /// Types an elementwise built-in over operands that are scalars or same-shape tensors.
    fn elementwise(&mut self, b: Builtin, name: &str, xs: Vec<hir::Expr>, span: Span) -> hir::Expr {
        if xs.iter().any(|x| x.ty.is_error()) {
            return err_expr(span);
        }
        let mut xs = xs;
        if xs.len() == 2 {
            let r = xs.pop().expect("two");
            let l = xs.pop().expect("two");
            let (l, r) = if is_weak(&l) && !is_weak(&r) {
                (r.ty.dtype().map(|d| coerce(l.clone(), d)).unwrap_or(l), r)
            } else if is_weak(&r) && !is_weak(&l) {
                let d = l.ty.dtype();
                (l, d.map(|d| coerce(r.clone(), d)).unwrap_or(r))
            } else {
                self.join(l, r)
            };
            xs = vec![l, r];
        }
        let d = xs[0].ty.dtype();
        if d.is_none() || xs.iter().any(|x| x.ty.dtype() != d) {
            self.error(errors::type_error(
                format!(
                    "`{name}` needs operands of one element type, found {}",
                    xs.iter()
                        .map(|x| format!("`{}`", x.ty))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                span,
            ));
            return err_expr(span);
        }
        let mut dims: Vec<Dim> = Vec::new();
        let mut first: Option<(Ty, Span)> = None;
        for x in &xs {
            if let Ty::Tensor(..) = x.ty {
                match &first {
                    None => {
                        first = Some((x.ty.clone(), x.span));
                        dims = x.ty.dims().to_vec();
                    }
                    Some((t0, s0)) => {
                        let (t0, s0) = (t0.clone(), *s0);
                        if !self.unify(&t0, &x.ty) {
                            self.error(errors::shape_mismatch(&t0, &x.ty, s0, x.span));
                            return err_expr(span);
                        }
                    }
                }
            }
        }
        let ty = Ty::tensor(d.expect("checked"), dims);
        mk(hir::ExprKind::Builtin(b, xs), ty, span)
    }

    // ---- arrows ----

    /// Whether an expression denotes an operation in an arrow: a function name, a call with a
    /// `_` placeholder, or a composition of those.
    fn is_arrow(&self, e: &ast::Expr) -> bool {
        match &e.kind {
            K::Name(n) => matches!(self.globals.get(n), Some(Global::Func(_))),
            K::Call(_, args) => args.iter().any(|a| matches!(a.kind, K::Placeholder)),
            K::Binary(BinOp::Shr, a, b) => self.is_arrow(a) && self.is_arrow(b),
            _ => false,
        }
    }

    /// Rewrites `arg |> f` into a plain call (composition is associative, so a chain unfolds
    /// left to right).
    fn apply_arrow(&mut self, arg: ast::Expr, f: &ast::Expr) -> Option<ast::Expr> {
        match &f.kind {
            K::Name(n) if !self.globals.contains_key(n) => {
                self.error(errors::unknown_name(n, f.span));
                None
            }
            K::Name(n) if matches!(self.globals.get(n), Some(Global::Func(_))) => {
                Some(ast::Expr::new(
                    K::Call(
                        ast::Ident {
                            name: n.clone(),
                            span: f.span,
                        },
                        vec![arg],
                    ),
                    f.span,
                ))
            }
            K::Call(callee, args) => {
                let holes = args
                    .iter()
                    .filter(|a| matches!(a.kind, K::Placeholder))
                    .count();
                if holes != 1 {
                    self.error(errors::type_error(
                        format!("a stage of an arrow needs exactly one `_` for the piped value, found {holes}"),
                        f.span,
                    ));
                    return None;
                }
                let mut arg = Some(arg);
                let args = args
                    .iter()
                    .map(|a| match (&a.kind, arg.take()) {
                        (K::Placeholder, Some(x)) => x,
                        (_, x) => {
                            arg = x;
                            a.clone()
                        }
                    })
                    .collect();
                Some(ast::Expr::new(K::Call(callee.clone(), args), f.span))
            }
            K::Binary(BinOp::Shr, g, h) => {
                let inner = self.apply_arrow(arg, g)?;
                self.apply_arrow(inner, h)
            }
            _ => {
                self.error(errors::type_error(
                    "the right side of `|>` must be an op, a call with `_`, or a composition `f >> g`",
                    f.span,
                ));
                None
            }
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

/// Retypes the literals of a weak expression to `d`, when the language allows it: a number
/// never becomes a `bool`, and a float literal never becomes an integer (there is no implicit
/// numeric conversion). Otherwise the expression is returned unchanged, and the caller's
/// unification reports the mismatch.
pub fn coerce(e: hir::Expr, d: DType) -> hir::Expr {
    if d == DType::Bool || (!d.is_float() && has_float_lit(&e)) {
        return e;
    }
    retype(e, d)
}

/// Whether a weak expression holds a float literal (`0.5`, `inf`).
fn has_float_lit(e: &hir::Expr) -> bool {
    match &e.kind {
        hir::ExprKind::Lit(s) => s.dtype().is_float(),
        hir::ExprKind::Unary(_, a) => has_float_lit(a),
        hir::ExprKind::Binary(_, a, b) => has_float_lit(a) || has_float_lit(b),
        hir::ExprKind::Block(b) => b.tail.as_ref().is_some_and(has_float_lit),
        _ => false,
    }
}

/// Whether the integer `v` is a value of the integer type `d`.
pub fn int_fits(v: i64, d: DType) -> bool {
    match d {
        DType::I32 => i32::try_from(v).is_ok(),
        _ => true,
    }
}

fn retype(e: hir::Expr, d: DType) -> hir::Expr {
    let span = e.span;
    match e.kind {
        hir::ExprKind::Lit(s) => {
            if d.is_float() {
                finish_float(mk(hir::ExprKind::Lit(s), Ty::Scalar(d), span), d, None)
            } else if let Scalar::I64(v) = s {
                // An integer literal keeps its value until `finalize`, which reports one that
                // does not fit its final type (`bad-literal`) instead of wrapping it.
                let lit = if int_fits(v, d) { s.cast(d) } else { s };
                mk(hir::ExprKind::Lit(lit), Ty::Scalar(d), span)
            } else {
                mk(hir::ExprKind::Lit(s.cast(d)), Ty::Scalar(d), span)
            }
        }
        hir::ExprKind::Unary(op, a) => mk(
            hir::ExprKind::Unary(op, Box::new(retype(*a, d))),
            Ty::Scalar(d),
            span,
        ),
        hir::ExprKind::Binary(op, a, b) => mk(
            hir::ExprKind::Binary(op, Box::new(retype(*a, d)), Box::new(retype(*b, d))),
            Ty::Scalar(d),
            span,
        ),
        hir::ExprKind::Block(b) if b.stmts.is_empty() => {
            let tail = b.tail.map(|t| retype(t, d));
            let ty = tail.as_ref().map(|t| t.ty.clone()).unwrap_or(e.ty);
            mk(
                hir::ExprKind::Block(Box::new(hir::Block {
                    stmts: Vec::new(),
                    tail,
                })),
                ty,
                span,
            )
        }
        other => mk(other, e.ty, span),
    }
}

/// Gives a float literal its final value in type `d`, parsing the source text again when it
/// is known so that `0.1` is exactly the nearest `f32` or `f64`.
fn finish_float(e: hir::Expr, d: DType, text: Option<&str>) -> hir::Expr {
    let hir::ExprKind::Lit(s) = e.kind else {
        return e;
    };
    // Keep the f64 value in the literal while its type may still change; `finalize` in
    // `check::mod` rounds to the declared type once the program is checked.
    let v = match (text.and_then(|t| t.parse::<f64>().ok()), s) {
        (Some(v), _) => v,
        (None, s) => s.as_f64(),
    };
    let lit = match d {
        DType::F32 => Scalar::F64(v),
        _ => Scalar::F64(v),
    };
    mk(hir::ExprKind::Lit(lit), Ty::Scalar(d), e.span)
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
