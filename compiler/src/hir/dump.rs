//! A stable text dump of the typed program for snapshots: every item with its signature,
//! every binding with its type, every comprehension and reduction index with its range.

use std::fmt::Write;

use crate::hir::*;

pub fn dump_program(p: &Program) -> String {
    let mut out = String::new();
    for m in &p.monoids {
        let _ = writeln!(
            out,
            "monoid {}{} : state {} -> {}{}",
            m.name,
            if m.params.is_empty() {
                String::new()
            } else {
                let ps: Vec<String> = m.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                format!("({})", ps.join(", "))
            },
            m.state,
            m.result_type(),
            if m.commutative { " (commutative)" } else { "" }
        );
    }
    for f in &p.funcs {
        if f.module.is_some() {
            continue;
        }
        let params: Vec<String> = f
            .params
            .iter()
            .map(|l| format!("{}: {}", f.body.local(*l).name, f.body.local(*l).ty))
            .collect();
        let _ = writeln!(
            out,
            "{} {}({}) -> {}",
            f.kind.keyword(),
            f.name,
            params.join(", "),
            f.ret
        );
        dump_body(&mut out, p, &f.body);
    }
    if let Some(m) = &p.main {
        out.push_str("main\n");
        dump_body(&mut out, p, m);
    }
    for t in &p.tests {
        let _ = writeln!(out, "test {:?}", t.name);
        dump_body(&mut out, p, &t.body);
    }
    for t in &p.benches {
        let _ = writeln!(out, "bench {:?}", t.name);
        dump_body(&mut out, p, &t.body);
    }
    out
}

fn dump_body(out: &mut String, p: &Program, b: &Body) {
    for l in &b.locals {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            if l.mutable { "var" } else { "let" },
            l.name,
            l.ty
        );
    }
    for ix in &b.indices {
        let _ = writeln!(out, "  index {} < {}", ix.name, ix.range);
    }
    let mut calls = Vec::new();
    collect(&b.expr, &mut calls, p, b);
    for c in calls {
        let _ = writeln!(out, "  {c}");
    }
}

/// One line per comprehension, reduction, call and read: what the checker decided.
fn collect(e: &Expr, out: &mut Vec<String>, p: &Program, b: &Body) {
    let idx_names = |ids: &[IndexId]| {
        ids.iter()
            .map(|i| b.index_var(*i).name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &e.kind {
        ExprKind::Comprehension { indices, .. } => {
            out.push(format!("comprehension [{}] : {}", idx_names(indices), e.ty))
        }
        ExprKind::Reduce {
            monoid, indices, ..
        } => {
            let m = match monoid {
                MonoidRef::Builtin(m) => m.name().to_string(),
                MonoidRef::User(id) => p.monoid(*id).name.clone(),
            };
            out.push(format!("reduce {m}[{}] : {}", idx_names(indices), e.ty));
        }
        ExprKind::Call(f, _) => out.push(format!("call {} : {}", p.func(*f).name, e.ty)),
        ExprKind::MapFn(f, _) => out.push(format!("map {} : {}", p.func(*f).name, e.ty)),
        ExprKind::Diff(d) => out.push(format!(
            "{:?} {} wrt {:?} : {}",
            d.mode,
            p.func(d.func).name,
            d.wrt,
            e.ty
        )),
        ExprKind::Read {
            tensor,
            index,
            edge,
        } => {
            let ix: Vec<String> = index.iter().map(|a| affine(a, b)).collect();
            let edge = match edge {
                Edge::Strict => "",
                Edge::Pad(_) => " (pad)",
                Edge::Clamp => " (clamp)",
            };
            out.push(format!("read {}[{}]{edge}", tensor.ty, ix.join(", ")));
        }
        ExprKind::Gather { tensor, index } => {
            out.push(format!(
                "gather {} at {} coordinate(s)",
                tensor.ty,
                index.len()
            ));
        }
        _ => {}
    }
    let mut kids: Vec<&Expr> = Vec::new();
    children(e, &mut kids);
    for k in kids {
        collect(k, out, p, b);
    }
}

fn affine(a: &AffineIdx, b: &Body) -> String {
    let mut s = String::new();
    for (i, c) in &a.coeffs {
        let name = &b.index_var(*i).name;
        if !s.is_empty() {
            s.push_str(if *c < 0 { " - " } else { " + " });
        } else if *c < 0 {
            s.push('-');
        }
        if c.abs() != 1 {
            let _ = write!(s, "{}*", c.abs());
        }
        s.push_str(name);
    }
    let k = a.konst.to_string();
    if s.is_empty() {
        k
    } else if k == "0" {
        s
    } else if let Some(neg) = k.strip_prefix('-') {
        format!("{s} - {neg}")
    } else {
        format!("{s} + {k}")
    }
}

/// The direct sub-expressions of `e`.
pub fn children<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match &e.kind {
        ExprKind::Lit(_) | ExprKind::Local(_) | ExprKind::DimValue(_) | ExprKind::IndexValue(_) => {
        }
        ExprKind::Str(parts) => {
            for p in parts {
                if let StrPart::Expr(x) = p {
                    out.push(x);
                }
            }
        }
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::Field(a, _) => out.push(a),
        ExprKind::Binary(_, a, b) => {
            out.push(a);
            out.push(b);
        }
        ExprKind::Call(_, xs)
        | ExprKind::Builtin(_, xs)
        | ExprKind::MapFn(_, xs)
        | ExprKind::Tuple(xs)
        | ExprKind::TensorLit(xs) => out.extend(xs.iter()),
        ExprKind::Reduce { args, margs, .. } => out.extend(args.iter().chain(margs)),
        ExprKind::Gather { tensor, index } => {
            out.push(tensor);
            out.extend(index.iter());
        }
        ExprKind::Diff(d) => out.extend(d.args.iter()),
        ExprKind::Read { tensor, edge, .. } => {
            out.push(tensor);
            if let Edge::Pad(v) = edge {
                out.push(v);
            }
        }
        ExprKind::Comprehension { body, .. } => out.push(body),
        ExprKind::If { cond, then, els } => {
            out.push(cond);
            out.push(then);
            if let Some(x) = els {
                out.push(x);
            }
        }
        ExprKind::Block(b) => block_children(b, out),
    }
}

fn block_children<'a>(b: &'a Block, out: &mut Vec<&'a Expr>) {
    for s in &b.stmts {
        match s {
            Stmt::Let { value, .. } | Stmt::Assign { value, .. } | Stmt::Expr(value) => {
                out.push(value)
            }
            Stmt::For { lo, hi, body, .. } => {
                out.push(lo);
                out.push(hi);
                block_children(body, out);
            }
            Stmt::While { cond, body } => {
                out.push(cond);
                block_children(body, out);
            }
            Stmt::Measure(body) => block_children(body, out),
        }
    }
    if let Some(t) = &b.tail {
        out.push(t);
    }
}
