//! Tensors of tuples, stored as one tensor per field (struct of arrays): the type
//! `(f32, i64)[N]` *is* the tuple `(f32[N], i64[N])`, so MIR, the passes, both backends and
//! the autodiff see only plain dense tensors. This file gives such a tuple the tensor
//! operations: `p[i]` (a read or gather of every field at the same point, a tuple of scalars)
//! and `zip(a, b, …)` (the tuple of tensors of one shape). A comprehension whose body is a
//! tuple of scalars (`comprehension.rs`) builds one; `p.0`, `p.x` are ordinary fields.

use super::*;

/// The element tuple type and the common dimensions of a tensor of tuples: a non-empty
/// tuple whose fields are all tensors of the same dimensions (structurally; zonk first).
pub(super) fn tuple_tensor_parts(t: &Ty) -> Option<(Ty, Vec<Dim>)> {
    let Ty::Tuple(fs) = t else { return None };
    let dims = fs.first()?.1.dims().to_vec();
    let mut elem = Vec::new();
    for (n, f) in fs {
        match f {
            Ty::Tensor(d, ds) if *ds == dims => elem.push((n.clone(), Ty::Scalar(*d))),
            _ => return None,
        }
    }
    Some((Ty::Tuple(elem), dims))
}

impl Checker {
    /// `p[…]` of a tensor of tuples: every field read at the same index, the tuple of those
    /// scalars (field names kept). All fields must be tensors of one shape.
    pub(super) fn tuple_index(
        &mut self,
        tensor: hir::Expr,
        edge: Edge,
        idx: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        let ty = self.zonk(&tensor.ty);
        let Ty::Tuple(fields) = &ty else {
            return err_expr(span);
        };
        if fields.iter().any(|(_, t)| t.is_error()) {
            return err_expr(span);
        }
        let Some(Ty::Tensor(d0, dims0)) = fields.first().map(|f| &f.1) else {
            self.error(errors::index_non_tensor_tuple(&ty, span));
            return err_expr(span);
        };
        for (_, f) in &fields[1..] {
            let Ty::Tensor(d, _) = f else {
                self.error(errors::index_non_tensor_tuple(&ty, span));
                return err_expr(span);
            };
            // The same element type, so only the dimensions unify.
            let first = Ty::Tensor(*d, dims0.clone());
            if !self.unify(&first, f) {
                let first = Ty::Tensor(*d0, dims0.clone());
                self.error(errors::tuple_shapes_differ(&ty, &first, f, span));
                return err_expr(span);
            }
        }
        if matches!(edge, Edge::Pad(_)) {
            self.error(errors::type_error(
                format!("`pad` takes a tensor of scalars, found `{ty}`: pad each field, `pad(p.0, v)[…]`"),
                span,
            ));
            return err_expr(span);
        }
        let mut items = Vec::new();
        let mut tys = Vec::new();
        for (k, (name, f)) in fields.iter().enumerate() {
            let Ty::Tensor(d, dims) = f else {
                return err_expr(span);
            };
            let field = mk(
                hir::ExprKind::Field(Box::new(tensor.clone()), k),
                f.clone(),
                tensor.span,
            );
            let item = self.index_tensor(field, *d, dims.clone(), edge.clone(), idx, cx, span);
            if item.ty.is_error() {
                return err_expr(span);
            }
            tys.push((name.clone(), item.ty.clone()));
            items.push(item);
        }
        mk(hir::ExprKind::Tuple(items), Ty::Tuple(tys), span)
    }

    /// `zip(a, b, …)`: tensors of one shape (any element types) as a tensor of tuples, which
    /// is their tuple: `zip(d, idx)` with `d: f32[N]`, `idx: i64[N]` is `(f32, i64)[N]`.
    pub(super) fn zip_call(
        &mut self,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        span: Span,
    ) -> hir::Expr {
        if args.len() < 2 {
            self.error(errors::arity("zip", 2, args.len(), span));
            return err_expr(span);
        }
        let mut items: Vec<hir::Expr> = Vec::new();
        for a in args {
            let h = self.infer(a, cx, None);
            match self.zonk(&h.ty) {
                Ty::Error => return err_expr(span),
                Ty::Tensor(d, _) => {
                    if let Some(first) = items.first() {
                        let want = Ty::Tensor(d, first.ty.dims().to_vec());
                        if !self.unify(&want, &h.ty) {
                            let (a, b) = (self.zonk(&first.ty), self.zonk(&h.ty));
                            self.error(errors::shape_mismatch(&a, &b, first.span, h.span));
                            return err_expr(span);
                        }
                    }
                }
                other => {
                    self.error(errors::type_error(
                        format!("`zip` takes tensors of rank 1 or more, found `{other}`"),
                        h.span,
                    ));
                    return err_expr(span);
                }
            }
            items.push(h);
        }
        let ty = Ty::Tuple(items.iter().map(|h| (None, h.ty.clone())).collect());
        mk(hir::ExprKind::Tuple(items), ty, span)
    }
}
