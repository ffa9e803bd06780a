//! Literals: tensor literals, and the retyping of weak numeric literals to the type their
//! context asks for (`coerce`), with floats rounded once from their source text.

use super::*;

impl Checker {
    pub(super) fn tensor_lit(
        &mut self,
        es: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        // A tensor of tuples is wanted (a declared `(f32, i64)[N]`): each element is a tuple
        // of one scalar per field.
        let elem_want = match want {
            Some(Ty::Tuple(fs)) => fs
                .iter()
                .map(|(n, f)| f.dtype().map(|d| (n.clone(), Ty::Scalar(d))))
                .collect::<Option<Vec<_>>>()
                .map(Ty::Tuple),
            _ => want.and_then(|w| w.dtype()).map(Ty::Scalar),
        };
        let items: Vec<hir::Expr> = es
            .iter()
            .map(|x| self.infer(x, cx, elem_want.as_ref()))
            .collect();
        if items.iter().any(|i| i.ty.is_error()) {
            return err_expr(span);
        }
        if items.is_empty() {
            if let Some(Ty::Tuple(fs)) = want {
                if let Some(e) = self.empty_tuple_lit(fs, span) {
                    return e;
                }
            }
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
        if items
            .iter()
            .any(|i| matches!(self.zonk(&i.ty), Ty::Tuple(_)))
        {
            return self.tuple_lit(items, cx, want, span);
        }
        self.lit_of(items, want, span)
    }

    /// The tensor literal of the inferred elements `items` (scalars, or tensors of one shape
    /// for a literal of rank 2 or more).
    pub(super) fn lit_of(
        &mut self,
        mut items: Vec<hir::Expr>,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
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
pub(super) fn has_float_lit(e: &hir::Expr) -> bool {
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
        DType::U8 => u8::try_from(v).is_ok(),
        DType::U32 => u32::try_from(v).is_ok(),
        DType::U64 => v >= 0,
        _ => true,
    }
}

pub(super) fn retype(e: hir::Expr, d: DType) -> hir::Expr {
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
pub(super) fn finish_float(e: hir::Expr, d: DType, text: Option<&str>) -> hir::Expr {
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
