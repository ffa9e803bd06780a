//! Expressions: `infer` dispatches on the syntax node; literals, names, unary and binary
//! operators, casts, fields, tuples and `if` are typed here.

use super::tuples::tuple_tensor_parts;
use super::*;

impl Checker {
    /// Types an expression; `want` is the type its context asks for, which weak literals take.
    pub fn infer(&mut self, e: &ast::Expr, cx: &mut BodyCx, want: Option<&Ty>) -> hir::Expr {
        let span = e.span;
        match &e.kind {
            K::Int(text) => self.int_lit(text, want, span),
            K::Float(text) => float_lit(text, want, span),
            K::Bool(b) => mk(
                hir::ExprKind::Lit(Scalar::Bool(*b)),
                Ty::Scalar(DType::Bool),
                span,
            ),
            K::Str(parts) => self.string(parts, cx, span),
            K::Name(n) => self.name(n, cx, span, want),
            K::Placeholder => {
                self.error(errors::placeholder(span));
                err_expr(span)
            }
            K::Named(n, _) => {
                self.error(errors::type_error(
                    format!(
                        "a named argument (`{} = …`) is only allowed in `grad`, `value_and_grad` and `vjp`",
                        n.name
                    ),
                    span,
                ));
                err_expr(span)
            }
            K::Unary(op, a) => self.unary(*op, a, cx, want, span),
            K::Pipe(..) => self.pipe(e, cx, want, span),
            K::Binary(BinOp::Shr, a, b) if self.is_arrow(a) || self.is_arrow(b) => {
                self.error(errors::type_error(
                    "an arrow composition (`f >> g`) must be applied: write `x |> (f >> g)`",
                    span,
                ));
                err_expr(span)
            }
            K::Binary(op, a, b) => self.binary(*op, a, b, cx, want, span),
            K::Cast(a, t) => self.cast(a, t, cx, span),
            K::Call(f, args) => self.call(f, args, cx, want, span),
            K::Index(t, idx) => self.index(t, idx, cx, span),
            K::Field(t, field, fspan) => self.field(t, field, *fspan, cx, span),
            K::Tuple(es) => self.tuple(es, cx, want, span),
            K::TensorLit(es) => self.tensor_lit(es, cx, want, span),
            K::Reduce { op, indices, args } => self.reduce(*op, indices, args, cx, want, span),
            K::If { cond, then, els } => self.if_expr(cond, then, els.as_deref(), cx, want, span),
            K::Block(b) => self.check_block(b, cx, want),
            K::Error => err_expr(span),
        }
    }

    /// An integer literal: weak, it takes the non-`bool` type its context wants.
    fn int_lit(&mut self, text: &str, want: Option<&Ty>, span: Span) -> hir::Expr {
        match text.parse::<i64>() {
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
        }
    }

    /// A string with `{…}` holes; strings exist only in the coordinator.
    fn string(&mut self, parts: &[ast::StrPart], cx: &mut BodyCx, span: Span) -> hir::Expr {
        let mut out = Vec::new();
        for p in parts {
            match p {
                ast::StrPart::Text(t) => out.push(hir::StrPart::Text(t.clone())),
                ast::StrPart::Expr(x) => out.push(hir::StrPart::Expr(self.infer(x, cx, None))),
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

    /// `-a` or `!a`.
    fn unary(
        &mut self,
        op: UnOp,
        a: &ast::Expr,
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        let a = self.infer(a, cx, want);
        match (op, a.ty.dtype()) {
            (_, None) if a.ty.is_error() => err_expr(span),
            (UnOp::Neg, Some(d)) if d != DType::Bool => {
                let ty = a.ty.clone();
                mk(hir::ExprKind::Unary(op, Box::new(a)), ty, span)
            }
            (UnOp::Not, Some(d)) if d == DType::Bool || d.is_int() => {
                let ty = a.ty.clone();
                mk(hir::ExprKind::Unary(op, Box::new(a)), ty, span)
            }
            _ => {
                let what = if op == UnOp::Neg {
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

    /// `x |> f |> g`: the arrows are applied to `x`, and the resulting call is typed.
    fn pipe(&mut self, e: &ast::Expr, cx: &mut BodyCx, want: Option<&Ty>, span: Span) -> hir::Expr {
        // Unfold the whole chain `x |> f |> g` at once, copying `x` once: unfolding
        // one stage at a time would copy the rest of the chain at every stage.
        let mut stages = Vec::new();
        let mut base = e;
        while let K::Pipe(arg, f) = &base.kind {
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

    /// `a as t`.
    fn cast(&mut self, a: &ast::Expr, t: &ast::Ident, cx: &mut BodyCx, span: Span) -> hir::Expr {
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

    /// `t.0` or `t.name`: a field of a tuple.
    fn field(
        &mut self,
        t: &ast::Expr,
        field: &ast::Field,
        fspan: Span,
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        let t = self.infer(t, cx, None);
        let Ty::Tuple(fields) = &t.ty else {
            if !t.ty.is_error() {
                self.error(Diagnostic::error(
                    Code::UnknownField,
                    format!("`{}` has no fields", t.ty),
                    fspan,
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
                // `p[i].x` of a tensor of tuples reads only the tensor of that field.
                if let hir::ExprKind::Tuple(items) = &t.kind {
                    let reads = |x: &hir::Expr| {
                        matches!(
                            x.kind,
                            hir::ExprKind::Read { .. } | hir::ExprKind::Gather { .. }
                        )
                    };
                    if items.iter().all(reads) {
                        let mut item = items[i].clone();
                        item.span = span;
                        return item;
                    }
                }
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
                    fspan,
                ));
                err_expr(span)
            }
        }
    }

    /// `(a, b)`: each item takes the type the wanted tuple gives it, field names included.
    fn tuple(
        &mut self,
        es: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
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

    /// `if c { … } else …`: both branches join to one type; without `else` it is `()`.
    fn if_expr(
        &mut self,
        cond: &ast::Expr,
        then: &ast::Block,
        els: Option<&ast::Expr>,
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
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

    pub(super) fn name(
        &mut self,
        n: &str,
        cx: &mut BodyCx,
        span: Span,
        want: Option<&Ty>,
    ) -> hir::Expr {
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

    pub(super) fn binary(
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
        let l = self.infer(a, cx, sub_want);
        let r = self.infer(b, cx, sub_want);
        if l.ty.is_error() || r.ty.is_error() {
            return err_expr(span);
        }
        let (lt, rt) = (self.zonk(&l.ty), self.zonk(&r.ty));
        if tuple_tensor_parts(&lt).is_some() || tuple_tensor_parts(&rt).is_some() {
            return self.tuple_binary(op, l, r, span);
        }
        self.binary_typed(op, l, r, span)
    }

    /// `l op r` of two inferred operands, neither a tensor of tuples.
    pub(super) fn binary_typed(
        &mut self,
        op: BinOp,
        mut l: hir::Expr,
        mut r: hir::Expr,
        span: Span,
    ) -> hir::Expr {
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
                    op.symbol(),
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
                        op.symbol()
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
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => dl.is_int(),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => dl != DType::Bool,
            BinOp::Eq | BinOp::Ne => true,
            BinOp::And | BinOp::Or => dl == DType::Bool,
            // Written as calls, and typed as built-ins.
            BinOp::Min | BinOp::Max | BinOp::Pow | BinOp::Atan2 => false,
        };
        if !ok {
            self.error(errors::type_error(
                format!("cannot apply `{}` to values of type `{dl}`", op.symbol()),
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
}

/// A float literal: `f32` unless its context wants `f64`; rounded once from its text.
fn float_lit(text: &str, want: Option<&Ty>, span: Span) -> hir::Expr {
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
