//! The checker: names, types and shapes, index ranges, the environment rules and the monoid
//! laws. `check` never fails: it returns the typed program and every diagnostic; the program
//! may be used only when no diagnostic is an error.
//!
//! Steps, in order: collect items and signatures; environment rules on the syntax tree
//! (`env_rules`); type and shape inference of every body (`infer`, `indices`); monoid laws on
//! generated values (`monoid_laws`); final literal rounding.

pub mod differentiable;
pub mod env_rules;
pub mod errors;
pub mod eval;
pub mod indices;
pub mod infer;
pub mod monoid_derivative;
pub mod monoid_laws;

#[cfg(test)]
mod param_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tuples;

use crate::base::{Diagnostic, Span};
use crate::hir::{self, Ty};
use crate::syntax::ast::{self, FuncKind};
use infer::{BodyCx, Checker, Env, Global, MonoidSig, Sig};

/// One parsed file and the module it belongs to (`None` for the user's own files).
pub struct SourceFile<'a> {
    pub module: Option<String>,
    pub ast: &'a ast::File,
}

/// Checks a whole program made of several files.
pub fn check(files: &[SourceFile<'_>]) -> (hir::Program, Vec<Diagnostic>) {
    let mut ck = Checker::new();
    let items: Vec<(&ast::Item, Option<&String>)> = files
        .iter()
        .flat_map(|f| f.ast.items.iter().map(move |i| (i, f.module.as_ref())))
        .collect();

    // Names and signatures first, so bodies may refer to items defined later.
    let mut first_def: std::collections::HashMap<String, Span> = Default::default();
    let mut funcs: Vec<(&ast::FuncDef, Option<&String>)> = Vec::new();
    let mut monoids: Vec<&ast::MonoidDef> = Vec::new();
    for (item, module) in &items {
        let (name, span) = match item {
            ast::Item::Func(f) => (&f.name.name, f.name.span),
            ast::Item::Monoid(m) => (&m.name.name, m.name.span),
            _ => continue,
        };
        if let Some(prev) = first_def.get(name) {
            ck.error(errors::duplicate("item", name, span, *prev));
            continue;
        }
        if infer::is_builtin_name(name) {
            let what = match item {
                ast::Item::Func(f) => f.kind.keyword(),
                _ => "monoid",
            };
            ck.error(errors::builtin_redefined(what, name, span));
            continue;
        }
        first_def.insert(name.clone(), span);
        match item {
            ast::Item::Func(f) => {
                ck.globals
                    .insert(name.clone(), Global::Func(hir::FuncId(funcs.len() as u32)));
                funcs.push((f, *module));
            }
            ast::Item::Monoid(m) => {
                ck.globals.insert(
                    name.clone(),
                    Global::Monoid(hir::MonoidId(monoids.len() as u32)),
                );
                monoids.push(m);
            }
            _ => {}
        }
    }
    for (f, _) in &funcs {
        let sig = signature(&mut ck, f);
        ck.sigs.push(sig);
    }
    for m in &monoids {
        let sig = monoid_signature(&mut ck, m);
        ck.monoid_sigs.push(sig);
    }

    let plain: Vec<&ast::Item> = items.iter().map(|(i, _)| *i).collect();
    env_rules::check(&plain, &mut ck.diags);

    let mut prog = hir::Program::default();
    // Monoids first: an `unwrap` fixes the type their reductions yield.
    for (i, m) in monoids.iter().enumerate() {
        let mon = check_monoid(&mut ck, m, i);
        prog.monoids.push(mon);
    }
    for (i, (f, module)) in funcs.iter().enumerate() {
        let func = check_func(&mut ck, f, i, module.cloned());
        prog.funcs.push(func);
    }
    let mut main_span: Option<Span> = None;
    // Tests and benches are named by their strings (`flowc test` reports them by name).
    let mut test_names: std::collections::HashMap<(bool, &str), Span> = Default::default();
    for (item, module) in &items {
        if let (ast::Item::Test(t) | ast::Item::Bench(t), None) = (item, module) {
            let bench = matches!(item, ast::Item::Bench(_));
            if let Some(prev) = test_names.insert((bench, t.name.as_str()), t.span) {
                let what = if bench { "bench" } else { "test" };
                ck.error(errors::duplicate(what, &t.name, t.span, prev));
            }
        }
    }
    for (item, module) in &items {
        match item {
            ast::Item::Main(b, span) => {
                if module.is_some() {
                    continue;
                }
                if let Some(prev) = main_span {
                    ck.error(errors::duplicate("block", "main", *span, prev));
                    continue;
                }
                main_span = Some(*span);
                prog.main = Some(coordinator_body(&mut ck, b, &[]));
            }
            ast::Item::Test(t) => {
                // A module's tests are its own (run by `flowc test stdlib/NAME.flow`), not
                // the tests of every program that uses it.
                if module.is_some() {
                    continue;
                }
                let body = coordinator_body(&mut ck, &t.body, &[]);
                prog.tests.push(hir::Test {
                    name: t.name.clone(),
                    body,
                    span: t.span,
                });
            }
            ast::Item::Bench(t) => {
                if module.is_some() {
                    continue;
                }
                let measures = t
                    .body
                    .stmts
                    .iter()
                    .filter(|s| matches!(s, ast::Stmt::Measure { .. }))
                    .count();
                if measures != 1 {
                    ck.error(errors::bad_bench(measures, t.span));
                }
                let mut cx = BodyCx::new(Env::Coordinator, Vec::new());
                cx.in_bench = true;
                let e = ck.check_block(&t.body, &mut cx, None);
                let body = cx.finish(e);
                prog.benches.push(hir::Test {
                    name: t.name.clone(),
                    body,
                    span: t.span,
                });
            }
            _ => {}
        }
    }

    finalize(&mut ck, &mut prog);
    ck.diags.extend(differentiable::check(&prog));
    if !ck.diags.iter().any(|d| d.is_error()) {
        for (i, m) in prog.monoids.iter().enumerate() {
            if let Err(d) = monoid_laws::check_laws(&prog, hir::MonoidId(i as u32), m) {
                ck.diags.push(*d);
            }
        }
    }
    let mut diags = ck.diags;
    diags.sort_by_key(|d| (d.primary_span().file, d.primary_span().lo));
    (prog, diags)
}

fn signature(ck: &mut Checker, f: &ast::FuncDef) -> Sig {
    let mut vars = Vec::new();
    let mut params = Vec::new();
    for p in &f.params {
        let ty = match &p.ty {
            Some(t) => ck.lower_type(t, &mut vars, false),
            None => {
                ck.error(errors::type_error(
                    format!("parameter `{}` needs a type", p.name.name),
                    p.name.span,
                ));
                Ty::Error
            }
        };
        params.push((p.name.name.clone(), ty, p.name.span));
    }
    let n_param_vars = vars.len();
    let ret = match &f.ret {
        Some(t) => ck.lower_type(t, &mut vars, false),
        None if f.kind == FuncKind::Proc => Ty::Unit,
        None => {
            ck.error(errors::type_error(
                format!(
                    "{} `{}` needs a return type: `-> f32`",
                    f.kind.keyword(),
                    f.name.name
                ),
                f.span,
            ));
            Ty::Error
        }
    };
    if vars.len() > n_param_vars {
        let extra = vars[n_param_vars..].join(", ");
        ck.error(errors::type_error(
            format!("the result shape mentions `{extra}`, which no parameter binds"),
            f.ret.as_ref().map(|t| t.span).unwrap_or(f.span),
        ));
    }
    Sig {
        name: f.name.name.clone(),
        kind: f.kind,
        params,
        ret,
        shape_vars: vars,
        span: f.span,
    }
}

fn monoid_signature(ck: &mut Checker, m: &ast::MonoidDef) -> MonoidSig {
    let state = match &m.state {
        Some(t) => ck.lower_type(t, &mut Vec::new(), false),
        None => {
            ck.error(errors::bad_monoid(
                format!(
                    "monoid `{}` has no `state = …;` declaring its state type",
                    m.name.name
                ),
                m.name.span,
            ));
            Ty::Error
        }
    };
    if !is_scalar_state(&state) {
        ck.error(errors::bad_monoid(
            format!("a monoid state is a scalar or a tuple of scalars, found `{state}`"),
            m.state.as_ref().map(|t| t.span).unwrap_or(m.span),
        ));
    }
    let wrap = m.members.iter().find(|x| x.name.name == "wrap");
    let inputs = match wrap.and_then(|w| w.params.as_ref()) {
        Some(ps) => ps
            .iter()
            .map(|p| match &p.ty {
                Some(t) => ck.lower_type(t, &mut Vec::new(), false),
                None => {
                    ck.error(errors::bad_monoid(
                        format!("parameter `{}` of `wrap` needs a type", p.name.name),
                        p.name.span,
                    ));
                    Ty::Error
                }
            })
            .collect(),
        None => vec![state.clone()],
    };
    // The result type is the unwrap's, known only after checking it; `check_monoid` fixes it.
    let plain = wrap.is_none() && !m.members.iter().any(|x| x.name.name == "unwrap");
    let mut params: Vec<(String, Ty)> = Vec::new();
    for p in &m.params {
        let ty = match &p.ty {
            Some(t) => ck.lower_type(t, &mut Vec::new(), false),
            None => {
                ck.error(errors::bad_monoid(
                    format!(
                        "parameter `{}` of monoid `{}` needs a type: `{}: i64`",
                        p.name.name, m.name.name, p.name.name
                    ),
                    p.name.span,
                ));
                Ty::Error
            }
        };
        if !matches!(ty, Ty::Scalar(_) | Ty::Error) {
            ck.error(errors::bad_monoid(
                format!("a monoid's parameter is a scalar, found `{ty}`"),
                p.ty.as_ref().map(|t| t.span).unwrap_or(p.name.span),
            ));
        }
        if let Some((prev, _)) = params.iter().find(|(n, _)| n == &p.name.name) {
            let prev = m
                .params
                .iter()
                .find(|q| &q.name.name == prev)
                .map(|q| q.name.span);
            ck.error(errors::duplicate(
                "parameter",
                &p.name.name,
                p.name.span,
                prev.unwrap_or(m.span),
            ));
        }
        params.push((p.name.name.clone(), ty));
    }
    MonoidSig {
        name: m.name.name.clone(),
        params,
        inputs,
        result: state,
        plain,
    }
}

fn is_scalar_state(t: &Ty) -> bool {
    match t {
        Ty::Scalar(_) | Ty::Error => true,
        Ty::Tuple(fs) => !fs.is_empty() && fs.iter().all(|(_, t)| matches!(t, Ty::Scalar(_))),
        _ => false,
    }
}

fn check_func(ck: &mut Checker, f: &ast::FuncDef, idx: usize, module: Option<String>) -> hir::Func {
    let sig = ck.sigs[idx].clone();
    let env = if f.kind == FuncKind::Proc {
        Env::Coordinator
    } else {
        Env::Operation
    };
    let mut cx = BodyCx::new(env, sig.shape_vars.clone());
    let mut params = Vec::new();
    for (name, ty, span) in &sig.params {
        if let Some(prev) = cx.locals.iter().find(|l| &l.name == name) {
            let prev = prev.span;
            ck.error(errors::duplicate("parameter", name, *span, prev));
        }
        params.push(cx.add_local(name, ty.clone(), false, *span));
    }
    let want = (sig.ret != Ty::Unit).then_some(&sig.ret);
    let body = ck.infer(&f.body, &mut cx, want);
    let body = if sig.ret == Ty::Unit {
        if !matches!(body.ty, Ty::Unit | Ty::Error) {
            ck.error(errors::type_error(
                format!(
                    "proc `{}` returns a `{}` but declares no result type: add `-> {}`",
                    sig.name, body.ty, body.ty
                ),
                f.span,
            ));
        }
        body
    } else {
        ck.expect(body, &sig.ret)
    };
    hir::Func {
        name: sig.name,
        kind: sig.kind,
        params,
        ret: sig.ret,
        body: cx.finish(body),
        shape_vars: sig.shape_vars,
        span: sig.span,
        module,
    }
}

fn check_monoid(ck: &mut Checker, m: &ast::MonoidDef, idx: usize) -> hir::Monoid {
    let state = m
        .state
        .as_ref()
        .map(|t| ck.lower_type(t, &mut Vec::new(), false))
        .unwrap_or(Ty::Error);
    let mparams = ck.monoid_sigs[idx].params.clone();
    let mut zero = None;
    let mut wrap = None;
    let mut combine = None;
    let mut unwrap = None;
    let mut commutative = false;
    let mut d_combine = None;
    let mut seen: std::collections::HashMap<&str, Span> = Default::default();
    for mem in &m.members {
        let name = mem.name.name.as_str();
        if let Some(prev) = seen.insert(name, mem.name.span) {
            ck.error(errors::duplicate(
                "monoid member",
                name,
                mem.name.span,
                prev,
            ));
            continue;
        }
        let n_params = mem.params.as_ref().map(|p| p.len());
        let expected: Option<usize> = match name {
            "zero" | "commutative" => None,
            "wrap" => n_params,
            "combine" => Some(2),
            "unwrap" => Some(1),
            "d_combine" => Some(3),
            _ => {
                ck.error(errors::bad_monoid(
                    format!("unknown monoid member `{name}`; a monoid has `state`, `zero`, `wrap`, `combine`, `unwrap`, `commutative` and `d_combine`"),
                    mem.name.span,
                ));
                continue;
            }
        };
        if n_params != expected && !(name == "wrap" && n_params.is_none()) {
            ck.error(errors::bad_monoid(
                format!("`{name}` takes {} parameter(s)", expected.unwrap_or(0)),
                mem.span,
            ));
            continue;
        }
        if name == "commutative" {
            if mem.value.is_some() {
                ck.error(errors::bad_monoid(
                    "`commutative` is a flag: write `commutative;`",
                    mem.span,
                ));
            }
            commutative = true;
            continue;
        }
        let Some(value) = &mem.value else {
            ck.error(errors::bad_monoid(
                format!("`{name}` needs a definition: `{name}(…) = …;`"),
                mem.span,
            ));
            continue;
        };
        let mut cx = BodyCx::new(Env::Operation, Vec::new());
        // The monoid's own parameters come first in every member (`hir::Monoid::params`).
        for (p, (pname, t)) in m.params.iter().zip(&mparams) {
            cx.add_local(pname, t.clone(), false, p.name.span);
        }
        let mut params = Vec::new();
        for p in mem.params.iter().flatten() {
            if m.params.iter().any(|q| q.name.name == p.name.name) {
                ck.error(errors::bad_monoid(
                    format!("`{}` is a parameter of monoid `{}` already: name the member's parameter otherwise", p.name.name, m.name.name),
                    p.name.span,
                ));
            }
            let ty = match (name, &p.ty) {
                ("wrap", Some(t)) => ck.lower_type(t, &mut Vec::new(), false),
                (_, Some(t)) => {
                    let t = ck.lower_type(t, &mut Vec::new(), false);
                    if !ck.unify(&t, &state) {
                        ck.error(errors::type_mismatch(&state, &t, p.name.span));
                    }
                    state.clone()
                }
                ("wrap", None) => Ty::Error,
                (_, None) => state.clone(),
            };
            params.push(cx.add_local(&p.name.name, ty, false, p.name.span));
        }
        let want = match name {
            "unwrap" => None,
            // The adjoints of `a` and of `b`.
            "d_combine" => Some(Ty::Tuple(vec![
                (None, state.clone()),
                (None, state.clone()),
            ])),
            _ => Some(state.clone()),
        };
        let e = ck.infer(value, &mut cx, want.as_ref());
        let e = match &want {
            Some(w) => ck.expect(e, w),
            None => e,
        };
        let f = hir::MonoidFn {
            params,
            body: cx.finish(e),
        };
        match name {
            "zero" => zero = Some(f.body),
            "wrap" => wrap = Some(f),
            "combine" => combine = Some(f),
            "d_combine" => d_combine = Some(f),
            _ => unwrap = Some(f),
        }
    }
    let missing = |what: &str| format!("monoid `{}` has no `{what}`", m.name.name);
    if zero.is_none() {
        ck.error(errors::bad_monoid(missing("zero"), m.name.span));
    }
    if combine.is_none() {
        ck.error(errors::bad_monoid(missing("combine"), m.name.span));
    }
    if let Some(u) = &unwrap {
        ck.monoid_sigs[idx].result = u.body.expr.ty.clone();
    }
    let dummy = || hir::Body {
        locals: Vec::new(),
        indices: Vec::new(),
        expr: hir::Expr {
            kind: hir::ExprKind::Tuple(Vec::new()),
            ty: Ty::Error,
            span: m.span,
        },
    };
    hir::Monoid {
        name: m.name.name.clone(),
        params: mparams,
        state,
        zero: zero.unwrap_or_else(dummy),
        wrap,
        combine: combine.unwrap_or_else(|| hir::MonoidFn {
            params: Vec::new(),
            body: dummy(),
        }),
        unwrap,
        commutative,
        d_combine,
        span: m.span,
    }
}

/// A coordinator body: `main`, a `test`.
fn coordinator_body(ck: &mut Checker, b: &ast::Block, rigid: &[String]) -> hir::Body {
    let mut cx = BodyCx::new(Env::Coordinator, rigid.to_vec());
    let e = ck.check_block(b, &mut cx, None);
    cx.finish(e)
}

/// Resolves shape variables bound by unification and rounds literals to their final types.
fn finalize(ck: &mut Checker, prog: &mut hir::Program) {
    let mut bad = Vec::new();
    for body in prog.bodies_mut() {
        for l in &mut body.locals {
            l.ty = ck.zonk(&l.ty);
        }
        for ix in &mut body.indices {
            ix.range = ck.zonk_dim(&ix.range);
        }
        hir::walk_expr_mut(&mut body.expr, &mut |e| {
            e.ty = ck.zonk(&e.ty);
            if let hir::ExprKind::Unary(hir::UnOp::Neg, a) = &e.kind {
                // Known only now: a weak `-1` may have become unsigned by unification.
                if let Some(d) = e.ty.dtype().filter(|d| d.is_unsigned()) {
                    bad.push(errors::unsigned_negation(&a.kind, d, e.span));
                }
            }
            if let (hir::ExprKind::Lit(s), Ty::Scalar(d)) = (&mut e.kind, &e.ty) {
                // `infer::coerce` kept an integer literal that does not fit its type as is.
                if let hir::Scalar::I64(v) = *s {
                    if !infer::int_fits(v, *d) {
                        bad.push(errors::int_literal_range(v, *d, e.span));
                    }
                }
                *s = s.cast(*d);
            }
            if let hir::ExprKind::Read { index, .. } = &mut e.kind {
                for a in index {
                    a.konst = ck.zonk_dim(&a.konst);
                }
            }
        });
    }
    for d in bad {
        ck.error(d);
    }
}
