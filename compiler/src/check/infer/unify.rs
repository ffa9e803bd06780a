//! Types written in the source (`f32[N, 2]`, shape variables, affine dimensions) and their
//! unification: fresh flexible variables, substitution (`zonk`) and `expect`, which retypes a
//! weak literal or reports a mismatch.

use super::*;

impl Checker {
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
            // A tensor of tuples is stored as one tensor per field (struct of arrays): its
            // type is the tuple of those tensors, all of the written dimensions.
            ast::TypeKind::TupleTensor(fields, dims) => {
                let mut shape = Vec::new();
                for dim in dims {
                    shape.push(self.lower_dim(dim, vars, fresh_for_unknown));
                }
                let mut out = Vec::new();
                for (n, ft) in fields {
                    let elem = match self.lower_type(ft, vars, fresh_for_unknown) {
                        Ty::Scalar(d) => Ty::tensor(d, shape.clone()),
                        Ty::Error => return Ty::Error,
                        other => {
                            self.error(errors::type_error(
                                format!(
                                    "a field of a tensor of tuples must be a scalar type, \
                                     found `{other}`"
                                ),
                                ft.span,
                            ));
                            return Ty::Error;
                        }
                    };
                    out.push((n.as_ref().map(|n| n.name.clone()), elem));
                }
                Ty::Tuple(out)
            }
        }
    }

    pub(super) fn lower_dim(
        &mut self,
        d: &ast::DimExpr,
        vars: &mut Vec<String>,
        fresh: bool,
    ) -> Dim {
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

    pub(super) fn unify_dim(&mut self, a: &Dim, b: &Dim) -> bool {
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
}
