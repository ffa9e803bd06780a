//! The typing rules of the scans (`scan`, `scan_excl`), the histogram (`reduce_by_index`)
//! and `scatter`: graph nodes (`mir::ir::NodeKind::Scan` …) over whole tensors, in the
//! coordinator and in operations. In an operation the number of bins must be a constant or
//! a shape (`dynamic-size-in-operation` otherwise).
//!
//! A monoid argument is a built-in monoid's name (`sum prod max min any all`) or a user
//! monoid whose state is one scalar and which has no `wrap` and no `unwrap` (its elements are
//! its states, so a tensor of them can be scanned or binned). A parameterised monoid's
//! arguments (`scan(ModSum(m), x)`) follow the call's own arguments in the HIR.

use super::builtins::BuiltinCall;
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

    /// The monoid named by `arg` and the element type its tensors hold: `want` for a
    /// built-in monoid (checked against it), the state for a user monoid. `None` if reported.
    /// A parameterised monoid's arguments are pushed onto `margs`.
    fn monoid_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
        margs: &mut Vec<hir::Expr>,
    ) -> Option<(MonoidRef, Option<DType>)> {
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
        match (&sig.inputs[..], &sig.result) {
            ([Ty::Scalar(d)], Ty::Scalar(r)) if d == r && sig.plain => {
                Some((MonoidRef::User(mid), Some(*d)))
            }
            _ => {
                self.error(errors::type_error(
                    format!("`{name}` takes a monoid whose state is one scalar, with no `wrap` or `unwrap`; `{}` is not one", sig.name),
                    arg.span,
                ));
                None
            }
        }
    }

    /// Whether elements of type `d` suit the monoid `m` whose own type is `own` (reported
    /// if not).
    fn monoid_elements(
        &mut self,
        m: MonoidRef,
        own: Option<DType>,
        x: &hir::Expr,
        d: DType,
    ) -> bool {
        let ok = match (m, own) {
            (_, Some(o)) => o == d,
            (MonoidRef::Builtin(BuiltinMonoid::Any | BuiltinMonoid::All), _) => d == DType::Bool,
            _ => d != DType::Bool,
        };
        if !ok {
            let need = match (m, own) {
                (_, Some(o)) => format!("`{o}`"),
                (MonoidRef::Builtin(BuiltinMonoid::Any | BuiltinMonoid::All), _) => "`bool`".into(),
                _ => "numbers".into(),
            };
            let mname = match m {
                MonoidRef::Builtin(b) => b.name().to_string(),
                MonoidRef::User(id) => self.monoid_sigs[id.0 as usize].name.clone(),
            };
            self.error(errors::type_error(
                format!("`{mname}` combines {need}, found `{}`", x.ty),
                x.span,
            ));
        }
        ok
    }

    /// `scan(M, x)` / `scan_excl(M, x)`: `x`'s type; the scan runs along the last axis.
    pub(super) fn scan(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let mut margs = Vec::new();
        let Some((m, own)) = self.monoid_arg(c.name, &c.args[0], cx, &mut margs) else {
            return err_expr(c.span);
        };
        let want = own.map(Ty::Scalar).or_else(|| c.want.cloned());
        let want = match (&want, c.want) {
            (Some(Ty::Scalar(d)), Some(Ty::Tensor(_, dims))) => Some(Ty::tensor(*d, dims.clone())),
            (Some(t @ Ty::Tensor(..)), _) => Some(t.clone()),
            _ => None,
        };
        let x = self.infer(&c.args[1], cx, want.as_ref());
        let d = match &x.ty {
            _ if x.ty.is_error() => return err_expr(c.span),
            Ty::Tensor(d, dims) if !dims.is_empty() => *d,
            other => {
                self.error(errors::type_error(
                    format!(
                        "`{}` scans a tensor (along its last axis), found `{other}`",
                        c.name
                    ),
                    x.span,
                ));
                return err_expr(c.span);
            }
        };
        if !self.monoid_elements(m, own, &x, d) {
            return err_expr(c.span);
        }
        let b = if matches!(c.b, Builtin::Scan(_)) {
            Builtin::Scan(m)
        } else {
            Builtin::ScanExcl(m)
        };
        let ty = x.ty.clone();
        let args = std::iter::once(x).chain(margs).collect();
        mk(hir::ExprKind::Builtin(b, args), ty, c.span)
    }

    /// An index vector: 1-D, `i64` or `i32`.
    fn index_arg(
        &mut self,
        name: &str,
        arg: &ast::Expr,
        cx: &mut BodyCx,
    ) -> Option<(hir::Expr, Dim)> {
        let (idx, d, n) = self.vector_arg(name, arg, cx, None)?;
        if !matches!(d, DType::I64 | DType::I32) {
            self.error(errors::type_error(
                format!(
                    "the indices of `{name}` are `i64` or `i32`, found `{}`",
                    idx.ty
                ),
                idx.span,
            ));
            return None;
        }
        Some((idx, n))
    }

    /// `reduce_by_index(M, n_bins, idx, vals)`: `T[n_bins]`.
    pub(super) fn reduce_by_index(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let mut margs = Vec::new();
        let Some((m, own)) = self.monoid_arg(c.name, &c.args[0], cx, &mut margs) else {
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
        let Some(vals) = self.same_length_arg(c.name, &idx, &c.args[3], &len, own, cx) else {
            return err_expr(c.span);
        };
        let Ty::Tensor(d, _) = vals.ty else {
            return err_expr(c.span);
        };
        if n.ty.is_error() || !self.monoid_elements(m, own, &vals, d) {
            return err_expr(c.span);
        }
        mk(
            hir::ExprKind::Builtin(
                Builtin::ReduceByIndex(m),
                [n, idx, vals].into_iter().chain(margs).collect(),
            ),
            Ty::tensor(d, vec![dim]),
            c.span,
        )
    }

    /// `scatter(dest, idx, vals)`: `dest`'s type.
    pub(super) fn scatter(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let Some((dest, d, _)) = self.vector_arg(c.name, &c.args[0], cx, c.want) else {
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
