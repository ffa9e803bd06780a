//! Which derivatives can be taken: `grad`, `value_and_grad` and `vjp` of a function that
//! reduces, scans or builds a histogram (`reduce_by_index`) with a user monoid that
//! declares no derivative (no `d_combine`), directly or through the functions it calls,
//! are refused with `not-differentiable`, naming the monoid.
//! Integer and boolean arguments are refused while typing (`infer/diff.rs`).

use crate::base::{Diagnostic, Span};
use crate::check::errors;
use crate::hir::{self, dump::children, Expr, ExprKind, MonoidRef};

/// A `not-differentiable` diagnostic for every derivative in `prog` of a function that
/// reduces or scans with a user monoid without `d_combine`.
pub fn check(prog: &hir::Program) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut bodies: Vec<&hir::Body> = prog.funcs.iter().map(|f| &f.body).collect();
    bodies.extend(prog.main.iter());
    bodies.extend(prog.tests.iter().map(|t| &t.body));
    bodies.extend(prog.benches.iter().map(|t| &t.body));
    for b in bodies {
        visit(&b.expr, &mut |e| {
            if let ExprKind::Diff(d) = &e.kind {
                if let Some((m, prim, at)) = user_monoid(prog, d.func) {
                    let which = match d.mode {
                        hir::DiffMode::Grad => "grad",
                        hir::DiffMode::ValueAndGrad => "value_and_grad",
                        hir::DiffMode::Vjp => "vjp",
                    };
                    diags.push(errors::not_differentiable_monoid(
                        which,
                        &prog.func(d.func).name,
                        &prog.monoid(m).name,
                        (prim, e.span),
                        at,
                    ));
                }
            }
        });
    }
    diags
}

fn visit<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    let mut kids = Vec::new();
    children(e, &mut kids);
    for k in kids {
        visit(k, f);
    }
}

/// The first user monoid without `d_combine` that `func` (or a function it calls) reduces,
/// scans or builds a histogram with, and where.
fn user_monoid(
    prog: &hir::Program,
    func: hir::FuncId,
) -> Option<(hir::MonoidId, &'static str, Span)> {
    let mut seen = vec![func];
    let mut todo = vec![func];
    while let Some(f) = todo.pop() {
        let mut found = None;
        visit(&prog.func(f).body.expr, &mut |e| {
            let callee = match &e.kind {
                ExprKind::Reduce {
                    monoid: MonoidRef::User(m),
                    ..
                } if prog.monoid(*m).d_combine.is_none() => {
                    found = found.or(Some((*m, "reduce", e.span)));
                    None
                }
                ExprKind::Builtin(
                    hir::Builtin::Scan(MonoidRef::User(m))
                    | hir::Builtin::ScanExcl(MonoidRef::User(m)),
                    _,
                ) if prog.monoid(*m).d_combine.is_none() => {
                    found = found.or(Some((*m, "scan", e.span)));
                    None
                }
                ExprKind::Builtin(hir::Builtin::ReduceByIndex(MonoidRef::User(m)), _)
                    if prog.monoid(*m).d_combine.is_none() =>
                {
                    found = found.or(Some((*m, "reduce_by_index", e.span)));
                    None
                }
                ExprKind::Call(g, _) | ExprKind::MapFn(g, _) => Some(*g),
                ExprKind::Diff(d) => Some(d.func),
                _ => None,
            };
            if let Some(g) = callee {
                if !seen.contains(&g) {
                    seen.push(g);
                    todo.push(g);
                }
            }
        });
        if found.is_some() {
            return found;
        }
    }
    None
}
