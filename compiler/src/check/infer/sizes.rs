//! The typing rules of the built-ins that make a tensor of a given size (`iota`, `zeros`,
//! `full`, and the shape list of `rand_uniform`/`rand_normal`) and of those the coordinator
//! computes on the runtime's primitives (`filter`, `partition`, `sort`, `sort_by_key`).
//!
//! A size that is not a constant or a shape variable is a fresh shape variable (`?D1`) that
//! the lowering binds to the size's value when the graph is built; the length of a `filter`
//! is a fresh variable the coordinator binds when the filter has run.

use super::builtins::{uses_an_index, BuiltinCall};
use super::tuples::tuple_tensor_parts;
use super::*;

impl Checker {
    /// A list of sizes `[d0, d1, …]` (each an `i64`): the dimensions it gives a tensor and
    /// the HIR tuple of the sizes. `None` (reported) if the argument is not a list.
    pub(super) fn shape_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
    ) -> Option<(Vec<Dim>, hir::Expr)> {
        let K::TensorLit(dims_ast) = &arg.kind else {
            self.error(errors::type_error(
                format!("the shape of `{name}` is a list of sizes: `{name}(…[2, 3]…)`"),
                arg.span,
            ));
            return None;
        };
        Some(self.sizes(dims_ast, arg.span, cx))
    }

    /// The sizes `ds` (each an `i64`) as dimensions and as a HIR tuple.
    fn sizes(&mut self, ds: &[ast::Expr], span: Span, cx: &mut BodyCx) -> (Vec<Dim>, hir::Expr) {
        let i64t = Ty::Scalar(DType::I64);
        let mut dims = Vec::new();
        let mut sizes = Vec::new();
        for d in ds {
            let h = self.infer(d, cx, Some(&i64t));
            sizes.push(self.expect(h, &i64t));
            dims.push(match self.try_static_dim(d, cx) {
                Some(x) => x,
                None => self.fresh_var("D"),
            });
        }
        (dims, mk(hir::ExprKind::Tuple(sizes), Ty::Unit, span))
    }

    /// Reports a size (or value) that reads a comprehension index: the graph needs it when it
    /// is built.
    fn sized_outside_points(
        &mut self,
        c: &BuiltinCall<'_>,
        cx: &BodyCx,
        xs: &mut [hir::Expr],
    ) -> bool {
        if cx.point_depth > 0 && xs.iter_mut().any(uses_an_index) {
            self.error(errors::type_error(
                format!("the arguments of `{}` must be known when the graph is built, so they cannot depend on a comprehension or reduction index; make the whole tensor outside and index it", c.name),
                c.span,
            ));
            return false;
        }
        true
    }

    /// `iota(n)`: `i64[n]`, element `i` is `i`.
    pub(super) fn iota(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let (dims, shape) = self.sizes(&c.args[..1], c.args[0].span, cx);
        let mut xs = vec![shape];
        if !self.sized_outside_points(c, cx, &mut xs) {
            return err_expr(c.span);
        }
        mk(
            hir::ExprKind::Builtin(c.b, xs),
            Ty::tensor(DType::I64, dims),
            c.span,
        )
    }

    /// `zeros([sizes])`: the element type is the context's, else `f32`.
    pub(super) fn zeros(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let Some((dims, shape)) = self.shape_arg(c.name, &c.args[0], cx) else {
            return err_expr(c.span);
        };
        let mut xs = vec![shape];
        if !self.sized_outside_points(c, cx, &mut xs) {
            return err_expr(c.span);
        }
        let d = c.want.and_then(Ty::dtype).unwrap_or(DType::F32);
        mk(hir::ExprKind::Builtin(c.b, xs), Ty::tensor(d, dims), c.span)
    }

    /// `full([sizes], v)`: the element type is `v`'s (a weak literal takes the context's).
    pub(super) fn full(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let Some((dims, shape)) = self.shape_arg(c.name, &c.args[0], cx) else {
            return err_expr(c.span);
        };
        let want = c.want.and_then(Ty::dtype).map(Ty::Scalar);
        let mut v = self.infer(&c.args[1], cx, want.as_ref());
        if let Some(w) = &want {
            v = self.expect(v, w);
        }
        let d = match &v.ty {
            _ if v.ty.is_error() => return err_expr(c.span),
            Ty::Scalar(d) => *d,
            other => {
                self.error(errors::type_error(
                    format!("the value of `full` is a number or a `bool`, found `{other}`"),
                    v.span,
                ));
                return err_expr(c.span);
            }
        };
        let mut xs = vec![shape, v];
        if !self.sized_outside_points(c, cx, &mut xs) {
            return err_expr(c.span);
        }
        mk(hir::ExprKind::Builtin(c.b, xs), Ty::tensor(d, dims), c.span)
    }

    /// A 1-D tensor argument of `name`: the argument and its element type and length.
    pub(super) fn vector_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
        want: Option<&Ty>,
    ) -> Option<(hir::Expr, DType, Dim)> {
        let x = self.infer(arg, cx, want);
        self.vector_of(name, x)
    }

    /// `x` (an argument of `name`, already inferred) as a 1-D tensor: it, its element type
    /// and its length; `None` (reported) otherwise.
    pub(super) fn vector_of(
        &mut self,
        name: &str,
        x: hir::Expr,
    ) -> Option<(hir::Expr, DType, Dim)> {
        match &x.ty {
            _ if x.ty.is_error() => None,
            Ty::Tensor(d, dims) if dims.len() == 1 => {
                let (d, n) = (*d, dims[0].clone());
                Some((x, d, n))
            }
            other => {
                self.error(errors::type_error(
                    format!("`{name}` takes a 1-D tensor, found `{other}`"),
                    x.span,
                ));
                None
            }
        }
    }

    /// A second 1-D argument of `name`, as long as the first (length `n`); of element type
    /// `d` if given.
    pub(super) fn same_length_arg(
        &mut self,
        name: &str,
        first: &hir::Expr,
        arg: &ast::Expr,
        n: &Dim,
        d: Option<DType>,
        cx: &mut BodyCx,
    ) -> Option<hir::Expr> {
        let want = d.map(|d| Ty::tensor(d, vec![n.clone()]));
        let (y, dy, ny) = self.vector_arg(name, arg, cx, want.as_ref())?;
        if let Some(d) = d.filter(|d| *d != dy) {
            self.error(errors::type_mismatch(
                &Ty::tensor(d, vec![ny]),
                &y.ty,
                y.span,
            ));
            return None;
        }
        if !self.unify_dim(n, &ny) {
            let t = Ty::tensor(dy, vec![n.clone()]);
            self.error(
                errors::shape_mismatch(&first.ty, &t, first.span, y.span).with_note(format!(
                    "`{name}`'s two arguments must have the same length"
                )),
            );
            return None;
        }
        Some(y)
    }

    /// `filter(x, mask)`: `T[?K]`, the length known when it runs. `partition(x, mask)`:
    /// `(items: T[N], kept: i64)`, the kept elements first, then the rest, and how many were kept.
    /// `x` may be a tensor of tuples (every field is filtered alike).
    pub(super) fn filter(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let Some((x, n)) = self.items_arg(c.name, &c.args[0], cx) else {
            return err_expr(c.span);
        };
        let Some(mask) = self.same_length_arg(c.name, &x, &c.args[1], &n, Some(DType::Bool), cx)
        else {
            return err_expr(c.span);
        };
        let ty = if c.b == Builtin::Filter {
            let k = self.fresh_var("K");
            relength(&x.ty, k)
        } else {
            Ty::Tuple(vec![
                (Some("items".to_string()), x.ty.clone()),
                (Some("kept".to_string()), Ty::Scalar(DType::I64)),
            ])
        };
        mk(hir::ExprKind::Builtin(c.b, vec![x, mask]), ty, c.span)
    }

    /// The items of `filter`, `partition` or `sort_by_key`'s values: a 1-D tensor or a 1-D
    /// tensor of tuples, and its length. `None` if reported.
    fn items_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
    ) -> Option<(hir::Expr, Dim)> {
        let x = self.infer(arg, cx, None);
        let ty = self.zonk(&x.ty);
        let dims = match (&ty, tuple_tensor_parts(&ty)) {
            _ if ty.is_error() => return None,
            (Ty::Tensor(_, dims), _) => dims.clone(),
            (_, Some((_, dims))) => dims,
            _ => Vec::new(),
        };
        if dims.len() != 1 {
            self.error(errors::type_error(
                format!("`{name}` takes a 1-D tensor (or tensor of tuples), found `{ty}`"),
                x.span,
            ));
            return None;
        }
        let n = dims[0].clone();
        Some((mk(x.kind, ty, x.span), n))
    }

    /// `sort(x)`: `x`'s type; integer and float keys.
    pub(super) fn sort(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let Some((x, d, _)) = self.vector_arg(c.name, &c.args[0], cx, c.want) else {
            return err_expr(c.span);
        };
        if !self.sort_key(c.name, &x, d) {
            return err_expr(c.span);
        }
        let ty = x.ty.clone();
        mk(hir::ExprKind::Builtin(c.b, vec![x]), ty, c.span)
    }

    /// `sort_by_key(keys, vals)`: `(keys: K[N], vals: V[N])` both in the keys' stable ascending
    /// order; `vals` may be a tensor of tuples.
    pub(super) fn sort_by_key(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let Some((k, d, n)) = self.vector_arg(c.name, &c.args[0], cx, None) else {
            return err_expr(c.span);
        };
        if !self.sort_key(c.name, &k, d) {
            return err_expr(c.span);
        }
        let Some((v, nv)) = self.items_arg(c.name, &c.args[1], cx) else {
            return err_expr(c.span);
        };
        if !self.unify_dim(&n, &nv) {
            self.error(
                errors::shape_mismatch(&k.ty, &v.ty, k.span, v.span).with_note(format!(
                    "`{}`'s two arguments must have the same length",
                    c.name
                )),
            );
            return err_expr(c.span);
        }
        let ty = Ty::Tuple(vec![
            (Some("keys".to_string()), k.ty.clone()),
            (Some("vals".to_string()), v.ty.clone()),
        ]);
        mk(hir::ExprKind::Builtin(c.b, vec![k, v]), ty, c.span)
    }

    /// Whether `d` can be a sort key (reported if not).
    fn sort_key(&mut self, name: &str, k: &hir::Expr, d: DType) -> bool {
        if d == DType::Bool {
            self.error(errors::type_error(
                format!("`{name}` sorts numbers, found `{}`", k.ty),
                k.span,
            ));
            return false;
        }
        true
    }
}

/// `ty`, a 1-D tensor or tensor of tuples, with length `n` (every field's).
fn relength(ty: &Ty, n: Dim) -> Ty {
    match ty {
        Ty::Tensor(d, _) => Ty::tensor(*d, vec![n]),
        Ty::Tuple(fs) => Ty::Tuple(
            fs.iter()
                .map(|(name, f)| (name.clone(), relength(f, n.clone())))
                .collect(),
        ),
        other => other.clone(),
    }
}
