//! The uses of a monoid with run-time parameters (`monoid ModSum(m: i64) { … }`): wherever a
//! monoid is named (`reduce[i](ModSum(m), …)`, `scan(ModSum(m), x)`, `scan_excl`,
//! `reduce_by_index`), a parameterised one takes its arguments as a call, one per parameter,
//! and a monoid without parameters takes none. An argument is a scalar of the parameter's
//! type that depends on no index: it is one value for the whole reduction (and for every
//! point of an enclosing comprehension), which lowering builds into the monoid's functions
//! as a constant (`mir::lower`, `Lowerer::monoid`). Anything else is `bad-monoid`.

use super::*;

/// A monoid as written where one is expected: its name, where it is, and its arguments when
/// written as a call (`ModSum(m)`).
pub(super) struct MonoidHead<'a> {
    pub name: &'a str,
    pub span: Span,
    pub args: Option<&'a [ast::Expr]>,
}

/// The name and arguments of `e` if it is written as a monoid can be (`M` or `M(args)`).
pub(super) fn monoid_head(e: &ast::Expr) -> Option<MonoidHead<'_>> {
    match &e.kind {
        K::Name(n) => Some(MonoidHead {
            name: n,
            span: e.span,
            args: None,
        }),
        K::Call(f, args) => Some(MonoidHead {
            name: &f.name,
            span: e.span,
            args: Some(args),
        }),
        _ => None,
    }
}

impl Checker {
    /// The arguments of user monoid `mid` as used by `head`, checked against its parameters
    /// (reported, `None`, when they do not fit).
    pub(super) fn monoid_args(
        &mut self,
        mid: hir::MonoidId,
        head: &MonoidHead<'_>,
        cx: &mut BodyCx,
    ) -> Option<Vec<hir::Expr>> {
        let sig = self.monoid_sigs[mid.0 as usize].clone();
        let wanted = || {
            sig.params
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let args = match head.args {
            None if sig.params.is_empty() => return Some(Vec::new()),
            None => {
                self.error(errors::bad_monoid(
                    format!(
                        "monoid `{}` takes run-time parameters ({}): write `{}(…)` with one \
                         argument each",
                        sig.name,
                        wanted(),
                        sig.name
                    ),
                    head.span,
                ));
                return None;
            }
            Some(args) => args,
        };
        if args.len() != sig.params.len() {
            let msg = if sig.params.is_empty() {
                format!(
                    "monoid `{}` has no parameters: write `{}`, not `{}(…)`",
                    sig.name, sig.name, sig.name
                )
            } else {
                format!(
                    "monoid `{}` takes {} argument(s) ({}) but {} were given",
                    sig.name,
                    sig.params.len(),
                    wanted(),
                    args.len()
                )
            };
            self.error(errors::bad_monoid(msg, head.span));
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (a, (pname, t)) in args.iter().zip(&sig.params) {
            let h = self.infer(a, cx, Some(t));
            let h = self.expect(h, t);
            if h.ty.is_error() {
                ok = false;
            } else if let Some(ix) = index_used(&h) {
                let name = cx.indices[ix.0 as usize].name.clone();
                self.error(
                    errors::bad_monoid(
                        format!(
                            "the argument `{pname}` of monoid `{}` depends on the index `{name}`: \
                             a monoid's arguments are one value for the whole reduction",
                            sig.name
                        ),
                        a.span,
                    )
                    .with_note(
                        "pass a value that depends on no index: an op parameter, a shape, a \
                         scalar computed in the coordinator",
                    ),
                );
                ok = false;
            }
            out.push(h);
        }
        ok.then_some(out)
    }
}

/// An index that the value of `e` depends on, if any: an index value, or a tensor read at a
/// position that moves with an index (the indices of a reduction inside `e` are its own).
fn index_used(e: &hir::Expr) -> Option<hir::IndexId> {
    let mut used = Vec::new();
    let mut bound = Vec::new();
    let mut e = e.clone();
    hir::walk_expr_mut(&mut e, &mut |x| match &x.kind {
        hir::ExprKind::IndexValue(ix) => used.push(*ix),
        hir::ExprKind::Read { index, .. } => {
            used.extend(index.iter().flat_map(|a| a.coeffs.iter().map(|c| c.0)))
        }
        hir::ExprKind::Comprehension { indices, .. } | hir::ExprKind::Reduce { indices, .. } => {
            bound.extend(indices.iter().copied())
        }
        _ => {}
    });
    used.into_iter().find(|ix| !bound.contains(ix))
}
