//! A stable, indented text dump of the syntax tree for snapshot tests. Spans are left out so
//! that snapshots survive edits that only move code.

use std::fmt::Write;

use crate::syntax::ast::*;

pub fn dump_file(file: &File) -> String {
    let mut out = String::new();
    for item in &file.items {
        dump_item(&mut out, item);
    }
    out
}

fn dump_item(out: &mut String, item: &Item) {
    match item {
        Item::Func(f) => {
            let params: Vec<String> = f.params.iter().map(param).collect();
            let ret = f
                .ret
                .as_ref()
                .map(|t| format!(" -> {}", ty(t)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{} {}({}){}",
                f.kind.keyword(),
                f.name.name,
                params.join(", "),
                ret
            );
            dump_expr(out, &f.body, 1);
        }
        Item::Monoid(m) => {
            let state = m.state.as_ref().map(ty).unwrap_or_else(|| "?".into());
            let params = if m.params.is_empty() {
                String::new()
            } else {
                let ps: Vec<String> = m.params.iter().map(param).collect();
                format!("({})", ps.join(", "))
            };
            let _ = writeln!(out, "monoid {}{} state={}", m.name.name, params, state);
            for mem in &m.members {
                let params = mem
                    .params
                    .as_ref()
                    .map(|ps| format!("({})", ps.iter().map(param).collect::<Vec<_>>().join(", ")))
                    .unwrap_or_default();
                let _ = writeln!(out, "  member {}{}", mem.name.name, params);
                if let Some(v) = &mem.value {
                    dump_expr(out, v, 2);
                }
            }
        }
        Item::Main(b, _) => {
            out.push_str("main\n");
            dump_block(out, b, 1);
        }
        Item::Bench(t) => {
            let _ = writeln!(out, "bench {:?}", t.name);
            dump_block(out, &t.body, 1);
        }
        Item::Test(t) => {
            let _ = writeln!(out, "test {:?}", t.name);
            dump_block(out, &t.body, 1);
        }
        Item::Use(u) => {
            let path: Vec<&str> = u.path.iter().map(|p| p.name.as_str()).collect();
            let _ = writeln!(out, "use {}", path.join("::"));
        }
        Item::Error(_) => out.push_str("<error item>\n"),
    }
}

fn param(p: &Param) -> String {
    match &p.ty {
        Some(t) => format!("{}: {}", p.name.name, ty(t)),
        None => p.name.name.clone(),
    }
}

/// Writes the fields of a tuple type back in source syntax: `(f32, i: i64)`.
fn tuple_ty(fields: &[(Option<Ident>, TypeExpr)]) -> String {
    let fs: Vec<String> = fields
        .iter()
        .map(|(n, t)| match n {
            Some(n) => format!("{}: {}", n.name, ty(t)),
            None => ty(t),
        })
        .collect();
    format!("({})", fs.join(", "))
}

/// Writes a type back in source syntax.
pub fn ty(t: &TypeExpr) -> String {
    match &t.kind {
        TypeKind::Named(n) => n.clone(),
        TypeKind::Tensor(e, dims) => {
            format!(
                "{}[{}]",
                e.name,
                dims.iter().map(dim).collect::<Vec<_>>().join(", ")
            )
        }
        TypeKind::Tuple(fields) => tuple_ty(fields),
        TypeKind::TupleTensor(fields, dims) => format!(
            "{}[{}]",
            tuple_ty(fields),
            dims.iter().map(dim).collect::<Vec<_>>().join(", ")
        ),
        TypeKind::List(t) => format!("[{}]", ty(t)),
    }
}

fn dim(d: &DimExpr) -> String {
    match &d.kind {
        DimKind::Const(c) => c.clone(),
        DimKind::Var(v) => v.clone(),
        DimKind::Add(a, b) => format!("({} + {})", dim(a), dim(b)),
        DimKind::Sub(a, b) => format!("({} - {})", dim(a), dim(b)),
        DimKind::Mul(a, b) => format!("({} * {})", dim(a), dim(b)),
    }
}

fn pad(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn dump_block(out: &mut String, b: &Block, depth: usize) {
    for s in &b.stmts {
        dump_stmt(out, s, depth);
    }
    if let Some(t) = &b.tail {
        pad(out, depth);
        out.push_str("tail\n");
        dump_expr(out, t, depth + 1);
    }
}

fn binds(idx: &[IndexBind]) -> String {
    idx.iter()
        .map(|b| match &b.bound {
            Some(e) => format!("{} < {}", b.name.name, inline(e)),
            None => b.name.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn dump_stmt(out: &mut String, s: &Stmt, depth: usize) {
    pad(out, depth);
    match s {
        Stmt::Let {
            name,
            ty: t,
            indices,
            value,
            ..
        } => {
            let annot = t
                .as_ref()
                .map(|t| format!(": {}", ty(t)))
                .unwrap_or_default();
            match indices {
                Some(idx) => {
                    let _ = writeln!(out, "let {}[{}]{annot} =", name.name, binds(idx));
                }
                None => {
                    let _ = writeln!(out, "let {}{annot} =", name.name);
                }
            }
            dump_expr(out, value, depth + 1);
        }
        Stmt::Var {
            name, ty: t, value, ..
        } => {
            let annot = t
                .as_ref()
                .map(|t| format!(": {}", ty(t)))
                .unwrap_or_default();
            let _ = writeln!(out, "var {}{annot} =", name.name);
            dump_expr(out, value, depth + 1);
        }
        Stmt::Assign { name, value, .. } => {
            let _ = writeln!(out, "assign {} =", name.name);
            dump_expr(out, value, depth + 1);
        }
        Stmt::For {
            var, lo, hi, body, ..
        } => {
            let _ = writeln!(out, "for {} in {}..{}", var.name, inline(lo), inline(hi));
            dump_block(out, body, depth + 1);
        }
        Stmt::While { cond, body, .. } => {
            let _ = writeln!(out, "while {}", inline(cond));
            dump_block(out, body, depth + 1);
        }
        Stmt::Measure { body, .. } => {
            out.push_str("measure\n");
            dump_block(out, body, depth + 1);
        }
        Stmt::Expr(e) => {
            out.push_str("expr\n");
            dump_expr(out, e, depth + 1);
        }
        Stmt::Error(_) => out.push_str("<error stmt>\n"),
    }
}

fn dump_expr(out: &mut String, e: &Expr, depth: usize) {
    match &e.kind {
        ExprKind::Block(b) => {
            pad(out, depth);
            out.push_str("block\n");
            dump_block(out, b, depth + 1);
        }
        ExprKind::If { cond, then, els } => {
            pad(out, depth);
            let _ = writeln!(out, "if {}", inline(cond));
            dump_block(out, then, depth + 1);
            if let Some(els) = els {
                pad(out, depth);
                out.push_str("else\n");
                dump_expr(out, els, depth + 1);
            }
        }
        _ => {
            pad(out, depth);
            out.push_str(&inline(e));
            out.push('\n');
        }
    }
}

/// A fully parenthesized one-line rendering of an expression.
pub fn inline(e: &Expr) -> String {
    let list = |es: &[Expr]| es.iter().map(inline).collect::<Vec<_>>().join(", ");
    match &e.kind {
        ExprKind::Int(n) | ExprKind::Float(n) => n.clone(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Str(parts) => {
            let mut s = String::from("\"");
            for p in parts {
                match p {
                    StrPart::Text(t) => s.push_str(&t.escape_debug().to_string()),
                    StrPart::Expr(e) => {
                        let _ = write!(s, "{{{}}}", inline(e));
                    }
                }
            }
            s.push('"');
            s
        }
        ExprKind::Name(n) => n.clone(),
        ExprKind::Placeholder => "_".into(),
        ExprKind::Unary(UnOp::Neg, a) => format!("(-{})", inline(a)),
        ExprKind::Unary(UnOp::Not, a) => format!("(!{})", inline(a)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", inline(a), op.symbol(), inline(b)),
        ExprKind::Pipe(a, f) => format!("({} |> {})", inline(a), inline(f)),
        ExprKind::Cast(a, t) => format!("({} as {})", inline(a), t.name),
        ExprKind::Call(f, args) => format!("{}({})", f.name, list(args)),
        ExprKind::Named(n, a) => format!("{} = {}", n.name, inline(a)),
        ExprKind::Index(a, idx) => format!("{}[{}]", inline(a), list(idx)),
        ExprKind::Field(a, Field::Pos(i), _) => format!("{}.{}", inline(a), i),
        ExprKind::Field(a, Field::Named(n), _) => format!("{}.{}", inline(a), n),
        ExprKind::Tuple(es) => format!("({})", list(es)),
        ExprKind::TensorLit(es) => format!("[{}]", list(es)),
        ExprKind::Reduce { op, indices, args } => {
            format!("{}[{}]({})", op.as_str(), binds(indices), list(args))
        }
        ExprKind::If { cond, then, els } => {
            let els = els
                .as_ref()
                .map(|e| format!(" else {}", inline(e)))
                .unwrap_or_default();
            format!("if {} {}{}", inline(cond), inline_block(then), els)
        }
        ExprKind::Block(b) => inline_block(b),
        ExprKind::Error => "<error>".into(),
    }
}

fn inline_block(b: &Block) -> String {
    let mut parts: Vec<String> = b.stmts.iter().map(|_| "…;".to_string()).collect();
    if let Some(t) = &b.tail {
        parts.push(inline(t));
    }
    format!("{{ {} }}", parts.join(" "))
}
