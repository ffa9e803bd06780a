//! Calls to user functions and `map`/`zip_with`, and arrows: `x |> f(_, 2)` and `f >> g`
//! are rewritten to plain calls before they are typed.

use super::*;

impl Checker {
    pub(super) fn call(
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
            "zip" => return self.zip_call(args, cx, span),
            "grad" | "value_and_grad" | "vjp" => return self.diff_call(&f.name, args, cx, span),
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

    pub(super) fn user_call(
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

    pub(super) fn map_call(
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
        let scalars = |t: &Ty| matches!(t, Ty::Tuple(fs) if !fs.is_empty() && fs.iter().all(|f| matches!(f.1, Ty::Scalar(_))));
        if !matches!(sig.ret, Ty::Scalar(_) | Ty::Error) && !scalars(&sig.ret) {
            // A tensor has scalar elements, or is a tensor of tuples of scalars (one tensor
            // per field).
            self.error(errors::type_error(
                format!(
                    "`{which}` needs a scalar `fn` whose result is a scalar or a tuple of scalars; `{fname}` returns `{}`",
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
        let dims = dims.map(|x| x.0).unwrap_or_default();
        if dims.is_empty() && matches!(sig.ret, Ty::Tuple(_)) {
            // Over scalars, a map with a tuple result is the call.
            return mk(hir::ExprKind::Call(fid, data), sig.ret.clone(), span);
        }
        // A tuple result makes a tensor of tuples: the tuple of one tensor per field.
        let ty = match &sig.ret {
            Ty::Tuple(fs) => Ty::Tuple(
                fs.iter()
                    .map(|(n, f)| {
                        let d = f.dtype().unwrap_or(DType::F32);
                        (n.clone(), Ty::tensor(d, dims.clone()))
                    })
                    .collect(),
            ),
            ret => Ty::tensor(ret.dtype().unwrap_or(DType::F32), dims),
        };
        mk(hir::ExprKind::MapFn(fid, data), self.zonk(&ty), span)
    }

    // ---- arrows ----

    /// Whether an expression denotes an operation in an arrow: a function name, a call with a
    /// `_` placeholder, or a composition of those.
    pub(super) fn is_arrow(&self, e: &ast::Expr) -> bool {
        match &e.kind {
            K::Name(n) => matches!(self.globals.get(n), Some(Global::Func(_))),
            K::Call(_, args) => args.iter().any(|a| matches!(a.kind, K::Placeholder)),
            K::Binary(BinOp::Shr, a, b) => self.is_arrow(a) && self.is_arrow(b),
            _ => false,
        }
    }

    /// Rewrites `arg |> f` into a plain call (composition is associative, so a chain unfolds
    /// left to right).
    pub(super) fn apply_arrow(&mut self, arg: ast::Expr, f: &ast::Expr) -> Option<ast::Expr> {
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
