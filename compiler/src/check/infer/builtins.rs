//! Built-in functions: the table of their names, arities and where they may run, and the
//! typing rule of each.

use super::*;

impl Checker {
    pub(super) fn builtin_call(
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
    pub(super) fn elementwise(
        &mut self,
        b: Builtin,
        name: &str,
        xs: Vec<hir::Expr>,
        span: Span,
    ) -> hir::Expr {
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
}

pub(super) fn builtin_by_name(name: &str) -> Option<Builtin> {
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
pub(super) fn uses_an_index(e: &mut hir::Expr) -> bool {
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
