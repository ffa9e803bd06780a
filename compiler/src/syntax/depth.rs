//! The nesting limit. Every later stage walks the tree recursively, so a program nested
//! deeper than `MAX_DEPTH` (a chain of 10,000 unary minuses, a sum of 100,000 terms) is
//! reported as `too-deep` at its deepest point, and the item that holds it is replaced by an
//! `Item::Error`. The walk here and the dismantling of a rejected item use explicit stacks, so
//! no depth of input can overflow the stack of the thread that parses it.

use crate::base::{Code, Diagnostic, Span};
use crate::syntax::ast::*;

/// The deepest nesting of expressions, blocks, statements and types that an item may have.
/// Well below what the compiler's recursive stages handle on `flowc`'s stack, and far above
/// what a written program uses (a sum of 2,000 terms nests 2,000 deep).
pub const MAX_DEPTH: usize = 5_000;

/// Replaces each item nested deeper than `MAX_DEPTH` by `Item::Error` and reports it.
pub fn limit_depth(file: &mut File, diags: &mut Vec<Diagnostic>) {
    for item in &mut file.items {
        let Some(span) = too_deep_at(item) else {
            continue;
        };
        diags.push(
            Diagnostic::error(
                Code::TooDeep,
                format!("this is nested more than {MAX_DEPTH} levels deep"),
                span,
            )
            .with_label_text("too deep")
            .with_note("split the expression with `let` bindings or helper functions"),
        );
        let span = item_span(item);
        let old = std::mem::replace(item, Item::Error(span));
        dismantle(old);
    }
}

/// A node of the tree, for the explicit-stack walk.
enum Node<'a> {
    Expr(&'a Expr),
    Block(&'a Block),
    Stmt(&'a Stmt),
    Type(&'a TypeExpr),
    Dim(&'a DimExpr),
}

/// Where an item first goes deeper than `MAX_DEPTH`, if it does.
fn too_deep_at<'a>(item: &'a Item) -> Option<Span> {
    let mut stack: Vec<(Node<'a>, usize)> = Vec::new();
    match item {
        Item::Func(f) => {
            stack.push((Node::Expr(&f.body), 1));
            for p in &f.params {
                if let Some(t) = &p.ty {
                    stack.push((Node::Type(t), 1));
                }
            }
            if let Some(t) = &f.ret {
                stack.push((Node::Type(t), 1));
            }
        }
        Item::Monoid(m) => {
            if let Some(t) = &m.state {
                stack.push((Node::Type(t), 1));
            }
            for mem in &m.members {
                if let Some(v) = &mem.value {
                    stack.push((Node::Expr(v), 1));
                }
            }
        }
        Item::Main(b, _) => stack.push((Node::Block(b), 1)),
        Item::Test(t) | Item::Bench(t) => stack.push((Node::Block(&t.body), 1)),
        Item::Use(_) | Item::Error(_) => {}
    }
    while let Some((node, depth)) = stack.pop() {
        let span = match &node {
            Node::Expr(e) => e.span,
            Node::Block(b) => b.span,
            Node::Stmt(s) => s.span(),
            Node::Type(t) => t.span,
            Node::Dim(d) => d.span,
        };
        if depth > MAX_DEPTH {
            return Some(span);
        }
        let mut push = |n: Node<'a>| stack.push((n, depth + 1));
        match node {
            Node::Expr(e) => expr_children(e, &mut push),
            Node::Block(b) => {
                b.stmts.iter().for_each(|s| push(Node::Stmt(s)));
                if let Some(t) = &b.tail {
                    push(Node::Expr(t));
                }
            }
            Node::Stmt(s) => stmt_children(s, &mut push),
            Node::Type(t) => match &t.kind {
                TypeKind::Named(_) => {}
                TypeKind::Tensor(_, dims) => dims.iter().for_each(|d| push(Node::Dim(d))),
                TypeKind::Tuple(fs) => fs.iter().for_each(|(_, t)| push(Node::Type(t))),
                TypeKind::TupleTensor(fs, dims) => {
                    fs.iter().for_each(|(_, t)| push(Node::Type(t)));
                    dims.iter().for_each(|d| push(Node::Dim(d)));
                }
                TypeKind::List(t) => push(Node::Type(t)),
            },
            Node::Dim(d) => match &d.kind {
                DimKind::Const(_) | DimKind::Var(_) => {}
                DimKind::Add(a, b) | DimKind::Sub(a, b) | DimKind::Mul(a, b) => {
                    push(Node::Dim(a));
                    push(Node::Dim(b));
                }
            },
        }
    }
    None
}

fn expr_children<'a>(e: &'a Expr, push: &mut impl FnMut(Node<'a>)) {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Name(_)
        | ExprKind::Placeholder
        | ExprKind::Error => {}
        ExprKind::Str(parts) => {
            for p in parts {
                if let StrPart::Expr(x) = p {
                    push(Node::Expr(x));
                }
            }
        }
        ExprKind::Unary(_, a)
        | ExprKind::Cast(a, _)
        | ExprKind::Field(a, _, _)
        | ExprKind::Named(_, a) => push(Node::Expr(a)),
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
            push(Node::Expr(a));
            push(Node::Expr(b));
        }
        ExprKind::Call(_, args) | ExprKind::Tuple(args) | ExprKind::TensorLit(args) => {
            args.iter().for_each(|a| push(Node::Expr(a)))
        }
        ExprKind::Index(a, idx) => {
            push(Node::Expr(a));
            idx.iter().for_each(|i| push(Node::Expr(i)));
        }
        ExprKind::Reduce { indices, args, .. } => {
            indices
                .iter()
                .filter_map(|b| b.bound.as_ref())
                .for_each(|b| push(Node::Expr(b)));
            args.iter().for_each(|a| push(Node::Expr(a)));
        }
        ExprKind::If { cond, then, els } => {
            push(Node::Expr(cond));
            push(Node::Block(then));
            if let Some(e) = els {
                push(Node::Expr(e));
            }
        }
        ExprKind::Block(b) => push(Node::Block(b)),
    }
}

fn stmt_children<'a>(s: &'a Stmt, push: &mut impl FnMut(Node<'a>)) {
    match s {
        Stmt::Let {
            ty, indices, value, ..
        } => {
            if let Some(t) = ty {
                push(Node::Type(t));
            }
            indices
                .iter()
                .flatten()
                .filter_map(|b| b.bound.as_ref())
                .for_each(|b| push(Node::Expr(b)));
            push(Node::Expr(value));
        }
        Stmt::Var { ty, value, .. } => {
            if let Some(t) = ty {
                push(Node::Type(t));
            }
            push(Node::Expr(value));
        }
        Stmt::Assign { value, .. } => push(Node::Expr(value)),
        Stmt::For { lo, hi, body, .. } => {
            push(Node::Expr(lo));
            push(Node::Expr(hi));
            push(Node::Block(body));
        }
        Stmt::While { cond, body, .. } => {
            push(Node::Expr(cond));
            push(Node::Block(body));
        }
        Stmt::Measure { body, .. } => push(Node::Block(body)),
        Stmt::Expr(e) => push(Node::Expr(e)),
        Stmt::Error(_) => {}
    }
}

fn item_span(item: &Item) -> Span {
    match item {
        Item::Func(f) => f.span,
        Item::Monoid(m) => m.span,
        Item::Main(_, span) | Item::Error(span) => *span,
        Item::Test(t) | Item::Bench(t) => t.span,
        Item::Use(u) => u.span,
    }
}

/// Drops a tree without recursion: every node's children are moved to a stack before the
/// node itself is dropped (the derived drop of a 100,000-deep `Box` chain would overflow).
fn dismantle(item: Item) {
    let mut exprs: Vec<Expr> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut types: Vec<TypeExpr> = Vec::new();
    let mut dims: Vec<DimExpr> = Vec::new();
    match item {
        Item::Func(f) => {
            exprs.push(f.body);
            types.extend(f.params.into_iter().filter_map(|p| p.ty));
            types.extend(f.ret);
        }
        Item::Monoid(m) => {
            types.extend(m.state);
            exprs.extend(m.members.into_iter().filter_map(|m| m.value));
        }
        Item::Main(b, _) => blocks.push(b),
        Item::Test(t) | Item::Bench(t) => blocks.push(t.body),
        Item::Use(_) | Item::Error(_) => {}
    }
    loop {
        if let Some(b) = blocks.pop() {
            for s in b.stmts {
                match s {
                    Stmt::Let {
                        ty, indices, value, ..
                    } => {
                        types.extend(ty);
                        exprs.extend(indices.into_iter().flatten().filter_map(|b| b.bound));
                        exprs.push(value);
                    }
                    Stmt::Var { ty, value, .. } => {
                        types.extend(ty);
                        exprs.push(value);
                    }
                    Stmt::Assign { value, .. } | Stmt::Expr(value) => exprs.push(value),
                    Stmt::For { lo, hi, body, .. } => {
                        exprs.push(lo);
                        exprs.push(hi);
                        blocks.push(body);
                    }
                    Stmt::While { cond, body, .. } => {
                        exprs.push(cond);
                        blocks.push(body);
                    }
                    Stmt::Measure { body, .. } => blocks.push(body),
                    Stmt::Error(_) => {}
                }
            }
            exprs.extend(b.tail.map(|t| *t));
        } else if let Some(e) = exprs.pop() {
            match e.kind {
                ExprKind::Int(_)
                | ExprKind::Float(_)
                | ExprKind::Bool(_)
                | ExprKind::Name(_)
                | ExprKind::Placeholder
                | ExprKind::Error => {}
                ExprKind::Str(parts) => exprs.extend(parts.into_iter().filter_map(|p| match p {
                    StrPart::Expr(x) => Some(x),
                    StrPart::Text(_) => None,
                })),
                ExprKind::Unary(_, a)
                | ExprKind::Cast(a, _)
                | ExprKind::Field(a, _, _)
                | ExprKind::Named(_, a) => exprs.push(*a),
                ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
                    exprs.push(*a);
                    exprs.push(*b);
                }
                ExprKind::Call(_, args) | ExprKind::Tuple(args) | ExprKind::TensorLit(args) => {
                    exprs.extend(args)
                }
                ExprKind::Index(a, idx) => {
                    exprs.push(*a);
                    exprs.extend(idx);
                }
                ExprKind::Reduce { indices, args, .. } => {
                    exprs.extend(indices.into_iter().filter_map(|b| b.bound));
                    exprs.extend(args);
                }
                ExprKind::If { cond, then, els } => {
                    exprs.push(*cond);
                    blocks.push(then);
                    exprs.extend(els.map(|e| *e));
                }
                ExprKind::Block(b) => blocks.push(b),
            }
        } else if let Some(t) = types.pop() {
            match t.kind {
                TypeKind::Named(_) => {}
                TypeKind::Tensor(_, ds) => dims.extend(ds),
                TypeKind::Tuple(fs) => types.extend(fs.into_iter().map(|(_, t)| t)),
                TypeKind::TupleTensor(fs, ds) => {
                    types.extend(fs.into_iter().map(|(_, t)| t));
                    dims.extend(ds);
                }
                TypeKind::List(t) => types.push(*t),
            }
        } else if let Some(d) = dims.pop() {
            match d.kind {
                DimKind::Const(_) | DimKind::Var(_) => {}
                DimKind::Add(a, b) | DimKind::Sub(a, b) | DimKind::Mul(a, b) => {
                    dims.push(*a);
                    dims.push(*b);
                }
            }
        } else {
            break;
        }
    }
}
