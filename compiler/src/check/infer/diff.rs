//! `grad(f, args…)`, `value_and_grad(f, args…)` and `vjp(f, args…, ct)`, each with an
//! optional `wrt = k` or `wrt = (k1, k2, …)`: typed like the call `f(args…)`, the derivative
//! has the type of the arguments differentiated against (a tuple of them for `wrt = (…)`).

use super::*;

impl Checker {
    pub(super) fn diff_call(
        &mut self,
        which: &str,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        let mode = match which {
            "grad" => hir::DiffMode::Grad,
            "value_and_grad" => hir::DiffMode::ValueAndGrad,
            _ => hir::DiffMode::Vjp,
        };
        let mut positional = Vec::new();
        let mut wrt_arg = None;
        for a in args {
            match &a.kind {
                K::Named(n, v) if n.name == "wrt" && wrt_arg.is_none() => wrt_arg = Some(&**v),
                K::Named(n, _) => {
                    self.error(errors::type_error(
                        format!(
                            "`{which}` takes one named argument, `wrt = …`; found `{} = …`",
                            n.name
                        ),
                        a.span,
                    ));
                    return err_expr(span);
                }
                _ => positional.push(a.clone()),
            }
        }
        let Some(K::Name(fname)) = positional.first().map(|a| &a.kind) else {
            self.error(errors::type_error(
                format!("the first argument of `{which}` must name an `op` or `fn`"),
                args.first().map_or(span, |a| a.span),
            ));
            return err_expr(span);
        };
        let fspan = positional[0].span;
        let Some(Global::Func(fid)) = self.globals.get(fname).copied() else {
            self.error(errors::unknown_name(fname, fspan));
            return err_expr(span);
        };
        let sig = self.sigs[fid.0 as usize].clone();
        if sig.kind == FuncKind::Proc {
            self.error(errors::type_error(
                format!("`{which}` needs an `op` or `fn`; `{fname}` is a `proc`"),
                fspan,
            ));
            return err_expr(span);
        }
        if cx.point_depth > 0 && sig.kind != FuncKind::Fn {
            self.error(errors::not_differentiable_in_point(which, fname, span));
            return err_expr(span);
        }
        let n = sig.params.len();
        let extra = usize::from(mode == hir::DiffMode::Vjp);
        if positional.len() != 1 + n + extra {
            self.error(errors::arity(which, 1 + n + extra, positional.len(), span));
            return err_expr(span);
        }
        let (wrt, tuple) = match wrt_arg {
            None => (vec![0], false),
            Some(v) => match self.wrt_positions(v, n, fname) {
                Some(w) => w,
                None => return err_expr(span),
            },
        };
        if n == 0 {
            self.error(errors::type_error(
                format!("`{which}` of `{fname}`, which takes no arguments"),
                fspan,
            ));
            return err_expr(span);
        }
        let call = self.user_call(fid, &positional[1..1 + n], cx, span);
        let hir::ExprKind::Call(_, mut hargs) = call.kind else {
            return err_expr(span);
        };
        let ret = call.ty;
        let float = |t: &Ty| matches!(t.dtype(), Some(DType::F32 | DType::F64));
        let mut failed = false;
        for &k in &wrt {
            let t = self.zonk(&hargs[k].ty);
            if !float(&t) || matches!(t, Ty::Tuple(_)) {
                self.error(errors::not_differentiable_arg(
                    which,
                    fname,
                    k,
                    &t,
                    hargs[k].span,
                ));
                failed = true;
            }
        }
        let scalar_result = matches!(ret, Ty::Scalar(DType::F32 | DType::F64));
        if mode != hir::DiffMode::Vjp && !scalar_result {
            if float(&ret) && !matches!(ret, Ty::Tuple(_)) {
                self.error(errors::type_error(
                    format!("`{which}` needs a scalar result; `{fname}` returns `{ret}`: use `vjp(f, args…, ct)`"),
                    span,
                ));
            } else {
                self.error(errors::not_differentiable_result(which, fname, &ret, span));
            }
            failed = true;
        }
        if mode == hir::DiffMode::Vjp {
            if !float(&ret) || matches!(ret, Ty::Tuple(_)) {
                self.error(errors::not_differentiable_result(which, fname, &ret, span));
                return err_expr(span);
            }
            let ct_ast = &positional[1 + n];
            let mut ct = self.infer(ct_ast, cx, Some(&ret));
            if ct.ty.is_error() {
                return err_expr(span);
            }
            if let (Some(w), Some(f)) = (ret.dtype(), ct.ty.dtype()) {
                if w != f && is_weak(&ct) {
                    ct = coerce(ct, w);
                }
            }
            if !self.unify(&ret, &ct.ty) {
                let (w, f) = (self.zonk(&ret), self.zonk(&ct.ty));
                self.error(
                    errors::type_mismatch(&w, &f, ct.span)
                        .with_label(span, format!("the cotangent of `{fname}`'s result")),
                );
                return err_expr(span);
            }
            hargs.push(ct);
        }
        if failed {
            return err_expr(span);
        }
        let grads: Vec<Ty> = wrt.iter().map(|&k| self.zonk(&hargs[k].ty)).collect();
        let gty = if tuple {
            Ty::Tuple(grads.into_iter().map(|t| (None, t)).collect())
        } else {
            grads[0].clone()
        };
        let ty = match mode {
            hir::DiffMode::ValueAndGrad => Ty::Tuple(vec![(None, self.zonk(&ret)), (None, gty)]),
            _ => gty,
        };
        let d = hir::Diff {
            mode,
            func: fid,
            args: hargs,
            wrt,
            tuple,
        };
        mk(hir::ExprKind::Diff(Box::new(d)), ty, span)
    }

    /// The argument positions `wrt = k` or `wrt = (k1, …)` names, and whether it is a tuple.
    fn wrt_positions(
        &mut self,
        v: &ast::Expr,
        n: usize,
        fname: &str,
    ) -> Option<(Vec<usize>, bool)> {
        let (items, tuple) = match &v.kind {
            K::Tuple(xs) => (xs.iter().collect::<Vec<_>>(), true),
            _ => (vec![v], false),
        };
        let mut out: Vec<usize> = Vec::new();
        for x in items {
            let k = match &x.kind {
                K::Int(t) => t.parse::<usize>().ok(),
                _ => None,
            };
            match k {
                Some(k) if k < n && !out.contains(&k) => out.push(k),
                Some(k) if k < n => {
                    self.error(errors::type_error(
                        format!("argument {k} is named twice in `wrt`"),
                        x.span,
                    ));
                    return None;
                }
                _ => {
                    self.error(errors::type_error(
                        format!(
                            "`wrt` names argument positions of `{fname}`: integers from 0 to {}, alone or in a tuple",
                            n.saturating_sub(1)
                        ),
                        x.span,
                    ));
                    return None;
                }
            }
        }
        Some((out, tuple))
    }
}
