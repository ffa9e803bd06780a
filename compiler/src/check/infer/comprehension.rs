//! Comprehensions (`let y[i, j] = …`), reductions (`sum[i](…)`, `reduce[i](M, …)`) and index
//! reads `x[i + 1, j]`: index binding, ranges and the strict uses recorded for `indices`.

use super::tuples::tuple_tensor_parts;
use super::*;
use crate::syntax::dump::inline;

impl Checker {
    /// Runs `f` in the scope of the indices `idx` binds (a comprehension's or a reduction's),
    /// one point level deeper. Back at the outermost level, solves the ranges of every index
    /// bound inside from the reads recorded meanwhile.
    fn in_index_scope<T>(
        &mut self,
        idx: &[ast::IndexBind],
        cx: &mut BodyCx,
        f: impl FnOnce(&mut Checker, &mut BodyCx, Vec<hir::IndexId>) -> T,
    ) -> T {
        cx.push();
        let first_index = cx.indices.len();
        let first_use = cx.uses.len();
        let mark = self.diags.len();
        let ids = self.bind_indices(idx, cx);
        cx.point_depth += 1;
        let res = f(self, cx, ids);
        cx.point_depth -= 1;
        cx.pop();
        if cx.point_depth == 0 {
            self.solve_indices(cx, first_index, first_use, mark);
        }
        res
    }

    /// `let y[i, j < 4] = body;`, or `let y[i, j]: f32[N - 2, M] = body;` whose declared
    /// shape bounds every index without an explicit bound (a dimension of shape variables
    /// the body knows: in the coordinator, a declared shape only has to match).
    pub(super) fn comprehension(
        &mut self,
        idx: &[ast::IndexBind],
        body: &ast::Expr,
        cx: &mut BodyCx,
        declared: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        // A declared tensor of tuples, `(f32, i64)[N]`, bounds the indices like a tensor and
        // gives the body's fields their types.
        let (declared, want): (Vec<Dim>, Option<Ty>) = match declared {
            Some(Ty::Tensor(_, dims)) if dims.len() == idx.len() => (dims.clone(), None),
            Some(t @ Ty::Tuple(_)) => match tuple_tensor_parts(t) {
                Some((elem, dims)) if dims.len() == idx.len() => (dims, Some(elem)),
                _ => (Vec::new(), None),
            },
            _ => (Vec::new(), None),
        };
        let (ids, b) = self.in_index_scope(idx, cx, |ck, cx, ids| {
            for (id, d) in ids.iter().zip(&declared) {
                let i = id.0 as usize;
                if !cx.known[i] && d.vars().all(|v| cx.rigid.iter().any(|r| r == v)) {
                    cx.indices[i].range = d.clone();
                    cx.known[i] = true;
                }
            }
            let b = ck.infer(body, cx, want.as_ref());
            (ids, b)
        });
        let dims: Vec<Dim> = ids
            .iter()
            .map(|i| cx.indices[i.0 as usize].range.clone())
            .collect();
        let ty = match self.zonk(&b.ty) {
            Ty::Scalar(d) => Ty::tensor(d, dims),
            Ty::Error => return err_expr(span),
            // An error inside a field was reported there.
            Ty::Tuple(fs) if fs.iter().any(|(_, t)| t.is_error()) => return err_expr(span),
            // A body that is a tuple of scalars makes a tensor of tuples: one tensor per
            // field, all over the comprehension's indices (`docs/language.md`, "Tensors of
            // tuples").
            Ty::Tuple(fs)
                if !dims.is_empty()
                    && !fs.is_empty()
                    && fs.iter().all(|(_, t)| matches!(t, Ty::Scalar(_))) =>
            {
                Ty::Tuple(
                    fs.into_iter()
                        .map(|(n, t)| {
                            (n, Ty::tensor(t.dtype().unwrap_or(DType::F32), dims.clone()))
                        })
                        .collect(),
                )
            }
            other => {
                self.error(errors::type_error(
                    format!(
                        "a comprehension's body must be a scalar or a tuple of scalars, \
                         found `{other}`"
                    ),
                    b.span,
                ));
                return err_expr(span);
            }
        };
        mk(
            hir::ExprKind::Comprehension {
                indices: ids,
                body: Box::new(b),
            },
            ty,
            span,
        )
    }

    pub(super) fn bind_indices(
        &mut self,
        idx: &[ast::IndexBind],
        cx: &mut BodyCx,
    ) -> Vec<hir::IndexId> {
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

    pub(super) fn reduce(
        &mut self,
        op: ast::RedKw,
        indices: &[ast::IndexBind],
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        self.in_index_scope(indices, cx, |ck, cx, ids| {
            ck.reduce_body(op, args, cx, want, span, ids)
        })
    }

    pub(super) fn reduce_body(
        &mut self,
        op: ast::RedKw,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
        ids: Vec<hir::IndexId>,
    ) -> hir::Expr {
        let builtin = match op {
            ast::RedKw::Monoid(m) => Some(m),
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
                    margs: Vec::new(),
                },
                ty,
                span,
            );
        }
        let Some(first) = args.first() else {
            self.error(errors::arity("reduce", 2, 0, span));
            return err_expr(span);
        };
        let Some(head) = monoid_args::monoid_head(first) else {
            self.error(errors::type_error(
                "the first argument of `reduce` must name a monoid",
                first.span,
            ));
            return err_expr(span);
        };
        let Some(mid) = self.monoid_named(head.name, first.span) else {
            return err_expr(span);
        };
        let Some(margs) = self.monoid_args(mid, &head, cx) else {
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
                margs,
            },
            sig.result,
            span,
        )
    }

    /// A read at computed coordinates, `x[idx[i], j]`: every coordinate is an `i64` value
    /// (an `i32` is widened). The affine ones still give their indices a range (a strict
    /// use); a computed one constrains nothing, and all are checked when the graph runs.
    fn gather(
        &mut self,
        tensor: hir::Expr,
        d: DType,
        idx: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        let i64t = Ty::Scalar(DType::I64);
        let mut coords = Vec::new();
        for (axis, ix) in idx.iter().enumerate() {
            if let (Ok(a), true) = (self.try_affine(ix, cx), cx.point_depth > 0) {
                cx.uses.push(Use {
                    tensor: tensor.ty.clone(),
                    axis,
                    idx: a,
                    span: ix.span,
                });
            }
            let c = self.infer(ix, cx, Some(&i64t));
            let c = match self.zonk(&c.ty) {
                Ty::Error => return err_expr(span),
                Ty::Scalar(DType::I64) => c,
                // Unsigned indices too: a `u64` above `i64::MAX` becomes negative, and is out
                // of bounds either way.
                Ty::Scalar(DType::I32 | DType::U8 | DType::U32 | DType::U64) => {
                    let s = c.span;
                    mk(
                        hir::ExprKind::Cast(Box::new(c), DType::I64),
                        i64t.clone(),
                        s,
                    )
                }
                other => {
                    self.error(errors::non_integer_index(&inline(ix), &other, ix.span));
                    return err_expr(span);
                }
            };
            coords.push(c);
        }
        mk(
            hir::ExprKind::Gather {
                tensor: Box::new(tensor),
                index: coords,
            },
            Ty::Scalar(d),
            span,
        )
    }

    pub(super) fn index(
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
                self.index_tensor(tensor, d, dims, edge, idx, cx, span)
            }
            Ty::Tuple(_) => self.tuple_index(tensor, edge, idx, cx, span),
            other => {
                self.error(errors::type_error(
                    format!("cannot index a value of type `{other}`"),
                    span,
                ));
                err_expr(span)
            }
        }
    }

    /// `x[…]` of a tensor `x` of element type `d` and dimensions `dims`: an affine read
    /// (strict, padded or clamped) or a gather.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn index_tensor(
        &mut self,
        tensor: hir::Expr,
        d: DType,
        dims: Vec<Dim>,
        edge: Edge,
        idx: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        if dims.len() != idx.len() {
            self.error(errors::rank_mismatch(&tensor.ty, idx.len(), span));
            return err_expr(span);
        }
        let affine = idx.iter().all(|ix| self.try_affine(ix, cx).is_ok());
        if !affine && matches!(edge, Edge::Strict) {
            return self.gather(tensor, d, idx, cx, span);
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
                    self.error(errors::out_of_bounds(&t, axis, &a.konst, &a.konst, ix.span));
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
}
