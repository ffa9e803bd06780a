//! Tensors of tuples, stored as one tensor per field (struct of arrays): the type
//! `(f32, i64)[N]` *is* the tuple `(f32[N], i64[N])`, so MIR, the passes, both backends and
//! the autodiff see only plain dense tensors. This file gives such a tuple the tensor
//! operations: `p[i]` (a read or gather of every field at the same point, a tuple of scalars)
//! and `zip(a, b, …)` (the tuple of tensors of one shape). A comprehension whose body is a
//! tuple of scalars (`comprehension.rs`) builds one, and so does a tensor literal of tuples
//! (`[(1.0, 2), (3.0, 4)]`, one literal per field); `p.0`, `p.x` are ordinary fields.

use super::builtins::BuiltinCall;
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

/// `e` as an expression every field may read: itself when reading it again costs nothing
/// (a local, a literal, a shape value, or a tuple expression whose items are taken one per
/// field), else a read of a fresh local bound to it by a `let` pushed on `stmts`.
fn bind_once(cx: &mut BodyCx, e: hir::Expr, name: &str, stmts: &mut Vec<hir::Stmt>) -> hir::Expr {
    use hir::ExprKind as K;
    if matches!(
        e.kind,
        K::Local(_) | K::Lit(_) | K::DimValue(_) | K::Tuple(_)
    ) {
        return e;
    }
    let local = cx.add_local(name, e.ty.clone(), false, e.span);
    let read = mk(K::Local(local), e.ty.clone(), e.span);
    stmts.push(hir::Stmt::Let { local, value: e });
    read
}

/// `e` after the `let`s in `stmts` (a block), or `e` itself when there are none.
fn with_lets(stmts: Vec<hir::Stmt>, e: hir::Expr) -> hir::Expr {
    if stmts.is_empty() {
        return e;
    }
    let (ty, span) = (e.ty.clone(), e.span);
    let block = hir::Block {
        stmts,
        tail: Some(e),
    };
    mk(hir::ExprKind::Block(Box::new(block)), ty, span)
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

    /// `scatter(dest, idx, vals)` of a 1-D tensor of tuples `dest` (element tuple and
    /// dimensions `parts`): `vals` a tensor of tuples of the same field types, as long as
    /// `idx`. It is the tuple of one scatter per field with the same indices, so every field
    /// takes its element from the same winner (the last in index order).
    pub(super) fn scatter_tuples(
        &mut self,
        c: &BuiltinCall<'_>,
        dest: hir::Expr,
        (elem, dims): (Ty, Vec<Dim>),
        cx: &mut BodyCx,
    ) -> hir::Expr {
        let Ty::Tuple(fields) = &elem else {
            return err_expr(c.span);
        };
        if dims.len() != 1 {
            self.error(errors::type_error(
                format!(
                    "`scatter` takes a 1-D tensor, found `{}`",
                    self.zonk(&dest.ty)
                ),
                dest.span,
            ));
            return err_expr(c.span);
        }
        let Some((idx, len)) = self.index_arg(c.name, &c.args[1], cx) else {
            return err_expr(c.span);
        };
        let field_tensors = |n: &Dim| {
            let fs = fields.iter().map(|(name, f)| {
                (
                    name.clone(),
                    Ty::tensor(f.dtype().unwrap_or(DType::F32), vec![n.clone()]),
                )
            });
            Ty::Tuple(fs.collect())
        };
        let want = field_tensors(&len);
        let vals = self.infer(&c.args[2], cx, Some(&want));
        if vals.ty.is_error() {
            return err_expr(c.span);
        }
        let vals_ty = self.zonk(&vals.ty);
        let vlen = match tuple_tensor_parts(&vals_ty) {
            Some((Ty::Tuple(vf), vdims))
                if vdims.len() == 1
                    && vf.len() == fields.len()
                    && vf.iter().zip(fields).all(|(a, b)| a.1 == b.1) =>
            {
                vdims[0].clone()
            }
            _ => {
                let note = "the values of a `scatter` into a tensor of tuples are a 1-D tensor of tuples of the same field types";
                self.error(errors::type_mismatch(&want, &vals_ty, vals.span).with_note(note));
                return err_expr(c.span);
            }
        };
        if !self.unify_dim(&len, &vlen) {
            let note = "`scatter`'s indices and values must have the same length";
            self.error(
                errors::shape_mismatch(&idx.ty, &vals_ty, idx.span, vals.span).with_note(note),
            );
            return err_expr(c.span);
        }
        // Every field's scatter reads the same indices, and the fields of `dest` and `vals`:
        // each computed expression among them is bound once and read by every field (an
        // inline `gather`, arithmetic or call is evaluated once, not once per field).
        let mut stmts = Vec::new();
        cx.push();
        let idx = bind_once(cx, idx, "scatter·idx", &mut stmts);
        let dest = bind_once(cx, dest, "scatter·dest", &mut stmts);
        let vals = bind_once(cx, vals, "scatter·vals", &mut stmts);
        cx.pop();
        let field = |e: &hir::Expr, k: usize, ty: Ty| match &e.kind {
            hir::ExprKind::Tuple(items) => items[k].clone(),
            _ => mk(hir::ExprKind::Field(Box::new(e.clone()), k), ty, e.span),
        };
        let Ty::Tuple(dest_fields) = self.zonk(&dest.ty) else {
            return err_expr(c.span);
        };
        let mut items = Vec::new();
        for (k, (_, fty)) in dest_fields.iter().enumerate() {
            let vty = Ty::tensor(fty.dtype().unwrap_or(DType::F32), vec![len.clone()]);
            let args = vec![
                field(&dest, k, fty.clone()),
                idx.clone(),
                field(&vals, k, vty),
            ];
            items.push(mk(hir::ExprKind::Builtin(c.b, args), fty.clone(), c.span));
        }
        let ty = self.zonk(&dest.ty);
        with_lets(stmts, mk(hir::ExprKind::Tuple(items), ty, c.span))
    }

    /// A tensor literal whose elements are tuples, `[(1.0, 2), (3.0, 4)]`, or rows of them
    /// (`[[(1.0, 2)], [(3.0, 4)]]`, whose rows are tensors of tuples): the tuple of one tensor
    /// literal per field, of that field of every element in order. Every element is a tuple
    /// of the same number of fields; each field's items take one element type as in any
    /// tensor literal (weak literals follow a strong item or the declared type). Field names
    /// come from the declared type, else from the first element's type.
    pub(super) fn tuple_lit(
        &mut self,
        items: Vec<hir::Expr>,
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        let tys: Vec<Ty> = items.iter().map(|i| self.zonk(&i.ty)).collect();
        let Some(Ty::Tuple(first)) = tys.iter().find(|t| matches!(t, Ty::Tuple(_))) else {
            return err_expr(span);
        };
        let arity = first.len();
        for (i, t) in items.iter().zip(&tys) {
            if !matches!(t, Ty::Tuple(fs) if fs.len() == arity) {
                let note = format!(
                    "the elements of a tensor literal of tuples are tuples of the same fields (here {arity}), stored as one tensor per field"
                );
                let expected = Ty::Tuple(first.clone());
                self.error(errors::type_mismatch(&expected, t, i.span).with_note(note));
                return err_expr(span);
            }
        }
        let wanted = match want {
            Some(Ty::Tuple(fs)) if fs.len() == arity => Some(fs),
            _ => None,
        };
        let names: Vec<Option<String>> = match wanted {
            Some(fs) => fs.iter().map(|f| f.0.clone()).collect(),
            None => first.iter().map(|f| f.0.clone()).collect(),
        };
        // An element that is not a tuple expression (a local, a call) is read once per
        // field: bind it once.
        let mut stmts = Vec::new();
        cx.push();
        let items: Vec<hir::Expr> = items
            .into_iter()
            .map(|i| bind_once(cx, i, "literal·item", &mut stmts))
            .collect();
        cx.pop();
        let mut fields = Vec::with_capacity(arity);
        let mut field_tys = Vec::with_capacity(arity);
        for (k, name) in names.into_iter().enumerate() {
            let column: Vec<hir::Expr> = items
                .iter()
                .zip(&tys)
                .map(|(i, t)| match (&i.kind, t) {
                    (hir::ExprKind::Tuple(xs), _) => xs[k].clone(),
                    (_, Ty::Tuple(fs)) => mk(
                        hir::ExprKind::Field(Box::new(i.clone()), k),
                        fs[k].1.clone(),
                        i.span,
                    ),
                    _ => i.clone(),
                })
                .collect();
            let lit = self.lit_of(column, wanted.map(|fs| &fs[k].1), span);
            if lit.ty.is_error() {
                return err_expr(span);
            }
            field_tys.push((name, lit.ty.clone()));
            fields.push(lit);
        }
        let tuple = mk(hir::ExprKind::Tuple(fields), Ty::Tuple(field_tys), span);
        with_lets(stmts, tuple)
    }

    /// `[]` where a tensor of tuples with no elements is wanted (`let e: (f32, i64)[0] =
    /// [];`): one empty tensor per field; `None` when the wanted type is not a 1-D tensor of
    /// tuples of length 0.
    pub(super) fn empty_tuple_lit(
        &mut self,
        fields: &[(Option<String>, Ty)],
        span: Span,
    ) -> Option<hir::Expr> {
        let mut items = Vec::new();
        let mut tys = Vec::new();
        for (name, f) in fields {
            let Ty::Tensor(d, dims) = f else {
                return None;
            };
            if dims.len() != 1 || self.zonk_dim(&dims[0]).as_known() != Some(0) {
                return None;
            }
            let ty = Ty::tensor(*d, vec![Dim::known(0)]);
            tys.push((name.clone(), ty.clone()));
            items.push(mk(hir::ExprKind::TensorLit(Vec::new()), ty, span));
        }
        if items.is_empty() {
            return None;
        }
        Some(mk(hir::ExprKind::Tuple(items), Ty::Tuple(tys), span))
    }

    /// `l op r` where an operand is a tensor of tuples: field by field, for arithmetic and
    /// bitwise operators (`p + q`, `p * 2.0`, `p - (1.0, 2)`): the other operand is a tensor
    /// of tuples of the same fields and shape, a tuple of scalars (one per field), or a
    /// scalar (broadcast to every field). The result is a tensor of tuples with `l`'s field
    /// names. A comparison or logic operator is refused: a tuple compares by its fields,
    /// which the program says how to combine (`p.0 == q.0 && p.1 == q.1`).
    pub(super) fn tuple_binary(
        &mut self,
        op: BinOp,
        l: hir::Expr,
        r: hir::Expr,
        span: Span,
    ) -> hir::Expr {
        let (lt, rt) = (self.zonk(&l.ty), self.zonk(&r.ty));
        let fieldwise = matches!(
            op,
            BinOp::Add
                | BinOp::Sub
                | BinOp::Mul
                | BinOp::Div
                | BinOp::Rem
                | BinOp::BitAnd
                | BinOp::BitOr
                | BinOp::BitXor
                | BinOp::Shl
                | BinOp::Shr
        );
        if !fieldwise {
            self.error(errors::type_error(
                format!(
                    "cannot apply `{}` to `{lt}` and `{rt}`: tensors of tuples take arithmetic field by field, but compare by fields the program combines (`p.0 == q.0 && p.1 == q.1`)",
                    op.symbol()
                ),
                span,
            ));
            return err_expr(span);
        }
        let count = |t: &Ty| match t {
            Ty::Tuple(fs) => Some(fs.len()),
            _ => None,
        };
        let n = match (count(&lt), count(&rt)) {
            (Some(a), Some(b)) if a != b => {
                self.error(errors::type_error(
                    format!(
                        "cannot apply `{}` to `{lt}` and `{rt}`: the tuples have {a} and {b} fields",
                        op.symbol()
                    ),
                    span,
                ));
                return err_expr(span);
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => return err_expr(span),
        };
        // Field `k` of an operand: the item of a tuple expression, a field of any other
        // tuple, or the scalar itself (broadcast).
        let field = |e: &hir::Expr, t: &Ty, k: usize| match (&e.kind, t) {
            (hir::ExprKind::Tuple(items), _) => items[k].clone(),
            (_, Ty::Tuple(fs)) => mk(
                hir::ExprKind::Field(Box::new(e.clone()), k),
                fs[k].1.clone(),
                e.span,
            ),
            _ => e.clone(),
        };
        let mut items = Vec::with_capacity(n);
        let mut tys = Vec::with_capacity(n);
        for k in 0..n {
            let x = self.binary_typed(op, field(&l, &lt, k), field(&r, &rt, k), span);
            if x.ty.is_error() {
                return err_expr(span);
            }
            let name = match (&lt, &rt) {
                (Ty::Tuple(fs), _) if fs[k].0.is_some() => fs[k].0.clone(),
                (_, Ty::Tuple(fs)) => fs[k].0.clone(),
                _ => None,
            };
            tys.push((name, x.ty.clone()));
            items.push(x);
        }
        let ty = Ty::Tuple(tys);
        if tuple_tensor_parts(&self.zonk(&ty)).is_none() {
            self.error(errors::type_error(
                format!(
                    "cannot apply `{}` to `{lt}` and `{rt}`: field by field, the results differ in shape",
                    op.symbol()
                ),
                span,
            ));
            return err_expr(span);
        }
        mk(hir::ExprKind::Tuple(items), ty, span)
    }
}
