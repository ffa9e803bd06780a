//! The typing rules of the scans (`scan`, `scan_excl`), the histogram (`reduce_by_index`)
//! and `scatter`: graph nodes (`mir::ir::NodeKind::Scan` …) over whole tensors, in the
//! coordinator and in operations. In an operation the number of bins must be a constant or
//! a shape (`dynamic-size-in-operation` otherwise).
//!
//! A monoid argument is a built-in monoid's name (`sum prod max min any all`) or a user
//! monoid whose elements (its `wrap`'s parameters, else its state) and result (its `unwrap`'s,
//! else its state) are scalars or tuples of scalars: a tensor of tuples (one tensor per field,
//! `tuples.rs`) holds the elements of one with several fields, and the result is a tensor of
//! tuples when the result is a tuple.
//! A parameterised monoid's arguments (`scan(ModSum(m), x)`) follow the call's own
//! arguments in the HIR.

use super::builtins::BuiltinCall;
use super::tuples::tuple_tensor_parts;
use super::*;

impl Checker {
    /// The user monoid called `name` (reported if there is none).
    pub(super) fn monoid_named(&mut self, name: &str, span: Span) -> Option<hir::MonoidId> {
        match self.globals.get(name).copied() {
            Some(Global::Monoid(mid)) => Some(mid),
            Some(_) => {
                self.error(errors::type_error(
                    format!("`{name}` is not a monoid"),
                    span,
                ));
                None
            }
            None => {
                self.error(errors::unknown_name(name, span));
                None
            }
        }
    }

    /// The monoid named by `arg` and what its tensors hold: `None` for a built-in monoid
    /// (numbers, or `bool`s for `any`/`all`); for a user monoid the scalar types of its
    /// elements (its wrap's parameters, else its state's fields: one type is a plain
    /// tensor, several a tensor of tuples) and its result (the unwrap's type, else the
    /// state). `None` if reported.
    /// A parameterised monoid's arguments are pushed onto `margs`.
    fn monoid_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
        margs: &mut Vec<hir::Expr>,
    ) -> Option<(MonoidRef, Option<UserElems>)> {
        let Some(head) = super::monoid_args::monoid_head(arg) else {
            self.error(errors::type_error(
                format!("the first argument of `{name}` must name a monoid (`sum`, `max`, … or a user monoid)"),
                arg.span,
            ));
            return None;
        };
        if let Some(m) = BuiltinMonoid::from_name(head.name) {
            if head.args.is_some() {
                self.error(errors::bad_monoid(
                    format!("the built-in monoid `{}` takes no arguments", m.name()),
                    head.span,
                ));
                return None;
            }
            return Some((MonoidRef::Builtin(m), None));
        }
        let mid = self.monoid_named(head.name, arg.span)?;
        margs.extend(self.monoid_args(mid, &head, cx)?);
        let sig = self.monoid_sigs[mid.0 as usize].clone();
        match UserElems::of(&sig) {
            Some(u) => Some((MonoidRef::User(mid), Some(u))),
            None => {
                self.error(errors::type_error(
                    format!("`{name}` takes a monoid whose elements and result are scalars or tuples of scalars; `{}` is not one", sig.name),
                    arg.span,
                ));
                None
            }
        }
    }

    /// The tensor argument `arg` whose elements the monoid `m` combines: a tensor of rank 1
    /// or more (of at least `min_rank`), of numbers (`bool` for `any`/`all`) for a built-in
    /// monoid, of the monoid's element type for a user one (a tensor of tuples when it has
    /// several fields). Its element dtypes and dimensions; `None` if reported.
    fn monoid_tensor(
        &mut self,
        name: &str,
        m: MonoidRef,
        user: Option<&UserElems>,
        arg: &ast::Expr,
        want: Option<&Ty>,
        cx: &mut BodyCx,
    ) -> Option<(hir::Expr, Vec<DType>, Vec<Dim>)> {
        let x = self.infer(arg, cx, want);
        let ty = self.zonk(&x.ty);
        if ty.is_error() {
            return None;
        }
        let (dtypes, dims) = match (&ty, tuple_tensor_parts(&ty)) {
            (Ty::Tensor(d, dims), _) => (vec![*d], dims.clone()),
            (_, Some((Ty::Tuple(fs), dims))) => {
                let ds = fs
                    .iter()
                    .filter_map(|(_, t)| match t {
                        Ty::Scalar(d) => Some(*d),
                        _ => None,
                    })
                    .collect();
                (ds, dims)
            }
            _ => (Vec::new(), Vec::new()),
        };
        if dims.is_empty() {
            let what = if user.is_some_and(|u| u.fields.len() > 1) {
                "a tensor of tuples"
            } else {
                "a tensor"
            };
            self.error(errors::type_error(
                format!("`{name}` takes {what} of rank 1 or more, found `{ty}`"),
                x.span,
            ));
            return None;
        }
        if !self.monoid_elements(m, user, &x, &dtypes) {
            return None;
        }
        Some((x, dtypes, dims))
    }

    /// Whether elements of the dtypes `ds` (one per field) suit the monoid `m` (reported if
    /// not).
    fn monoid_elements(
        &mut self,
        m: MonoidRef,
        user: Option<&UserElems>,
        x: &hir::Expr,
        ds: &[DType],
    ) -> bool {
        let ok = match (m, user) {
            (_, Some(u)) => u.fields == ds,
            (MonoidRef::Builtin(BuiltinMonoid::Any | BuiltinMonoid::All), _) => ds == [DType::Bool],
            _ => ds.len() == 1 && ds[0] != DType::Bool,
        };
        if !ok {
            let need = match (m, user) {
                (_, Some(u)) => format!("`{}`", u.element()),
                (MonoidRef::Builtin(BuiltinMonoid::Any | BuiltinMonoid::All), _) => "`bool`".into(),
                _ => "numbers".into(),
            };
            let mname = match m {
                MonoidRef::Builtin(b) => b.name().to_string(),
                MonoidRef::User(id) => self.monoid_sigs[id.0 as usize].name.clone(),
            };
            let found = self.zonk(&x.ty);
            self.error(errors::type_error(
                format!("`{mname}` combines {need}, found `{found}`"),
                x.span,
            ));
        }
        ok
    }

    /// `scan(M, x)` / `scan_excl(M, x)`: the scan runs along the last axis. For a built-in
    /// monoid, or a user monoid without an unwrap, `x`'s type; else a tensor of `x`'s shape
    /// of the unwrap's type (a tensor of tuples when that is a tuple).
    pub(super) fn scan(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let mut margs = Vec::new();
        let Some((m, user)) = self.monoid_arg(c.name, &c.args[0], cx, &mut margs) else {
            return err_expr(c.span);
        };
        // The expected result's dimensions are the argument's.
        let want = match (&user, c.want) {
            (None, Some(t @ Ty::Tensor(..))) => Some(t.clone()),
            (Some(u), Some(Ty::Tensor(_, dims))) if u.fields.len() == 1 => {
                Some(Ty::tensor(u.fields[0], dims.clone()))
            }
            _ => None,
        };
        let Some((x, ds, dims)) =
            self.monoid_tensor(c.name, m, user.as_ref(), &c.args[1], want.as_ref(), cx)
        else {
            return err_expr(c.span);
        };
        let b = if matches!(c.b, Builtin::Scan(_)) {
            Builtin::Scan(m)
        } else {
            Builtin::ScanExcl(m)
        };
        let ty = match &user {
            Some(u) => u.tensor_of(&dims),
            None => Ty::tensor(ds[0], dims),
        };
        let args = std::iter::once(x).chain(margs).collect();
        mk(hir::ExprKind::Builtin(b, args), ty, c.span)
    }

    /// An index vector: 1-D, of a signed or unsigned integer type (`i64 i32 u64 u32 u8`).
    pub(super) fn index_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
    ) -> Option<(hir::Expr, Dim)> {
        let (idx, d, n) = self.vector_arg(name, arg, cx, None)?;
        if !d.is_int() {
            self.error(errors::type_error(
                format!(
                    "the indices of `{name}` are integers (`i64 i32 u64 u32 u8`), found `{}`",
                    idx.ty
                ),
                idx.span,
            ));
            return None;
        }
        Some((idx, n))
    }

    /// `reduce_by_index(M, n_bins, idx, vals)`: values `T[n, k…]` give bins `T[n_bins, k…]`
    /// (the further axes carried along), of the monoid's result type (a tensor of tuples
    /// for a tuple result).
    pub(super) fn reduce_by_index(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let mut margs = Vec::new();
        let Some((m, user)) = self.monoid_arg(c.name, &c.args[0], cx, &mut margs) else {
            return err_expr(c.span);
        };
        let i64t = Ty::Scalar(DType::I64);
        let n = self.infer(&c.args[1], cx, Some(&i64t));
        let n = self.expect(n, &i64t);
        let dim = match self.try_static_dim(&c.args[1], cx) {
            Some(d) => d,
            None => {
                // An operation's graph has every size fixed when it is built.
                if cx.env == Env::Operation {
                    self.error(errors::prim_in_op(c.name, c.args[1].span));
                }
                self.fresh_var("B")
            }
        };
        let Some((idx, len)) = self.index_arg(c.name, &c.args[2], cx) else {
            return err_expr(c.span);
        };
        // A vector literal takes a one-field monoid's type (`[1.0, 2.0]` for an `f64` state).
        let vector_lit = match &c.args[3].kind {
            K::TensorLit(xs) => !xs.iter().any(|x| matches!(x.kind, K::TensorLit(_))),
            _ => false,
        };
        let want = match &user {
            Some(u) if u.fields.len() == 1 && vector_lit => {
                Some(Ty::tensor(u.fields[0], vec![len.clone()]))
            }
            _ => None,
        };
        let Some((vals, ds, dims)) =
            self.monoid_tensor(c.name, m, user.as_ref(), &c.args[3], want.as_ref(), cx)
        else {
            return err_expr(c.span);
        };
        if !self.unify_dim(&len, &dims[0]) {
            let t = Ty::tensor(ds[0], vec![len]);
            let found = self.zonk(&vals.ty);
            self.error(
                errors::shape_mismatch(&t, &found, idx.span, vals.span).with_note(format!(
                    "`{}`'s values have one row per index: their first dimension is the indices' length",
                    c.name
                )),
            );
            return err_expr(c.span);
        }
        if n.ty.is_error() {
            return err_expr(c.span);
        }
        let bins: Vec<Dim> = std::iter::once(dim)
            .chain(dims[1..].iter().cloned())
            .collect();
        let ty = match &user {
            Some(u) => u.tensor_of(&bins),
            None => Ty::tensor(ds[0], bins),
        };
        mk(
            hir::ExprKind::Builtin(
                Builtin::ReduceByIndex(m),
                [n, idx, vals].into_iter().chain(margs).collect(),
            ),
            ty,
            c.span,
        )
    }

    /// `scatter(dest, idx, vals)`: `dest`'s type.
    /// A tensor of tuples `dest` scatters every field with the same indices (see
    /// [`Checker::scatter_tuples`]).
    pub(super) fn scatter(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let dest = self.infer(&c.args[0], cx, c.want);
        let dest_ty = self.zonk(&dest.ty);
        if let Some((elem, dims)) = tuple_tensor_parts(&dest_ty) {
            return self.scatter_tuples(c, dest, (elem, dims), cx);
        }
        let Some((dest, d, _)) = self.vector_of(c.name, dest) else {
            return err_expr(c.span);
        };
        let Some((idx, len)) = self.index_arg(c.name, &c.args[1], cx) else {
            return err_expr(c.span);
        };
        let Some(vals) = self.same_length_arg(c.name, &idx, &c.args[2], &len, Some(d), cx) else {
            return err_expr(c.span);
        };
        let ty = dest.ty.clone();
        mk(
            hir::ExprKind::Builtin(c.b, vec![dest, idx, vals]),
            ty,
            c.span,
        )
    }
}

/// What a user monoid's tensors hold and what it gives: its elements' scalar types (its
/// wrap's parameters, else its state's fields) and its result (the unwrap's type, else its
/// state), a scalar or a tuple of scalars.
pub(super) struct UserElems {
    pub fields: Vec<DType>,
    pub result: Ty,
}

impl UserElems {
    /// `None` when an element or the result is not made of scalars.
    fn of(sig: &MonoidSig) -> Option<UserElems> {
        let scalars = |t: &Ty, out: &mut Vec<DType>| match t {
            Ty::Scalar(d) => {
                out.push(*d);
                true
            }
            Ty::Tuple(fs) if !fs.is_empty() => fs.iter().all(|(_, f)| match f {
                Ty::Scalar(d) => {
                    out.push(*d);
                    true
                }
                _ => false,
            }),
            _ => false,
        };
        let mut fields = Vec::new();
        let ok = match &sig.inputs[..] {
            [one] => scalars(one, &mut fields),
            many => many.iter().all(|t| match t {
                Ty::Scalar(d) => {
                    fields.push(*d);
                    true
                }
                _ => false,
            }),
        };
        (ok && !fields.is_empty() && scalars(&sig.result, &mut Vec::new())).then(|| UserElems {
            fields,
            result: sig.result.clone(),
        })
    }

    /// The element type: the scalar, or the tuple of the fields.
    fn element(&self) -> Ty {
        match &self.fields[..] {
            [d] => Ty::Scalar(*d),
            ds => Ty::Tuple(ds.iter().map(|d| (None, Ty::Scalar(*d))).collect()),
        }
    }

    /// A tensor of `dims` of the result type: a tensor of tuples (the tuple of its field
    /// tensors, names kept) for a tuple result.
    fn tensor_of(&self, dims: &[Dim]) -> Ty {
        match &self.result {
            Ty::Scalar(d) => Ty::tensor(*d, dims.to_vec()),
            Ty::Tuple(fs) => Ty::Tuple(
                fs.iter()
                    .map(|(n, f)| match f {
                        Ty::Scalar(d) => (n.clone(), Ty::tensor(*d, dims.to_vec())),
                        _ => (n.clone(), Ty::Error),
                    })
                    .collect(),
            ),
            _ => Ty::Error,
        }
    }
}
