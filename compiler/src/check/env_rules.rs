//! The environment rules, checked on the syntax tree: `fn`, `op` and `monoid` bodies may not do
//! I/O, declare `var`s, assign, loop or call a `proc`; and `fn`/`op`/`monoid` may not be
//! recursive (a monoid is a node of the call graph: its members call what they name, and a
//! reduction with it calls it).

use std::collections::{HashMap, HashSet};

use crate::base::{Diagnostic, Span};
use crate::check::errors;
use crate::syntax::ast::*;

/// Built-in names that perform I/O or belong to the coordinator.
pub const IO_BUILTINS: &[&str] = &[
    "print",
    "load",
    "save",
    "args",
    "assert",
    "assert_close",
    "eval",
];

/// Checks every operation-environment body and the call graph of `fn`s and `op`s.
pub fn check(items: &[&Item], diags: &mut Vec<Diagnostic>) {
    let mut kinds: HashMap<&str, FuncKind> = HashMap::new();
    let mut monoids: HashSet<&str> = HashSet::new();
    for item in items {
        match item {
            Item::Func(f) => {
                kinds.entry(&f.name.name).or_insert(f.kind);
            }
            Item::Monoid(m) => {
                monoids.insert(&m.name.name);
            }
            _ => {}
        }
    }
    let mut calls: HashMap<&str, Vec<(&str, Span)>> = HashMap::new();
    for item in items {
        match item {
            Item::Func(f) if f.kind != FuncKind::Proc => {
                let ctx = format!("{} `{}`", f.kind.keyword(), f.name.name);
                let locals = f.params.iter().map(|p| p.name.name.as_str()).collect();
                let mut w = Walker::new(&ctx, &kinds, &monoids, diags, locals);
                w.expr(&f.body);
                calls.insert(&f.name.name, w.calls);
            }
            Item::Monoid(m) => {
                let ctx = format!("monoid `{}`", m.name.name);
                let mut w = Walker::new(&ctx, &kinds, &monoids, diags, HashSet::new());
                for mem in &m.members {
                    w.locals = m
                        .params
                        .iter()
                        .chain(mem.params.iter().flatten())
                        .map(|p| p.name.name.as_str())
                        .collect();
                    if let Some(v) = &mem.value {
                        w.expr(v);
                    }
                }
                // A monoid's members use the functions and monoids they name: a cycle
                // through a monoid (`combine` reducing with its own monoid) is recursion.
                calls.insert(&m.name.name, w.calls);
            }
            _ => {}
        }
    }
    find_cycles(&calls, diags);
}

struct Walker<'a, 'c, 'd> {
    ctx: &'c str,
    kinds: &'a HashMap<&'a str, FuncKind>,
    monoids: &'a HashSet<&'a str>,
    diags: &'d mut Vec<Diagnostic>,
    calls: Vec<(&'a str, Span)>,
    /// Parameters, `let`s and indices seen so far: a name among them is a value, not a use
    /// of the function or monoid it shadows (`fn g(mean: f64) = mean`).
    locals: HashSet<&'a str>,
}

impl<'a, 'c, 'd> Walker<'a, 'c, 'd> {
    fn new(
        ctx: &'c str,
        kinds: &'a HashMap<&'a str, FuncKind>,
        monoids: &'a HashSet<&'a str>,
        diags: &'d mut Vec<Diagnostic>,
        locals: HashSet<&'a str>,
    ) -> Self {
        Walker {
            ctx,
            kinds,
            monoids,
            diags,
            calls: Vec::new(),
            locals,
        }
    }
}

impl<'a> Walker<'a, '_, '_> {
    fn block(&mut self, b: &'a Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
        if let Some(t) = &b.tail {
            self.expr(t);
        }
    }

    fn stmt(&mut self, s: &'a Stmt) {
        match s {
            Stmt::Let {
                name,
                value,
                indices,
                ..
            } => {
                for b in indices.iter().flatten() {
                    if let Some(e) = &b.bound {
                        self.expr(e);
                    }
                    self.locals.insert(&b.name.name);
                }
                self.expr(value);
                self.locals.insert(&name.name);
            }
            Stmt::Var {
                name, value, span, ..
            } => {
                self.diags
                    .push(errors::var_in_op(&name.name, self.ctx, *span));
                self.expr(value);
            }
            Stmt::Assign { name, value, span } => {
                self.diags
                    .push(errors::assign_in_op(&name.name, self.ctx, *span));
                self.expr(value);
            }
            Stmt::For {
                lo, hi, body, span, ..
            } => {
                self.diags.push(errors::loop_in_op("for", self.ctx, *span));
                self.expr(lo);
                self.expr(hi);
                self.block(body);
            }
            Stmt::While { cond, body, span } => {
                self.diags
                    .push(errors::loop_in_op("while", self.ctx, *span));
                self.expr(cond);
                self.block(body);
            }
            Stmt::Measure { body, span } => {
                self.diags
                    .push(errors::io_in_op("measure", self.ctx, *span));
                self.block(body);
            }
            Stmt::Expr(e) => self.expr(e),
            Stmt::Error(_) => {}
        }
    }

    fn expr(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Call(f, args) => {
                match self.kinds.get(f.name.as_str()) {
                    Some(FuncKind::Proc) => self
                        .diags
                        .push(errors::proc_in_op(&f.name, self.ctx, e.span)),
                    Some(_) => self.calls.push((&f.name, f.span)),
                    None if IO_BUILTINS.contains(&f.name.as_str()) => {
                        self.diags.push(errors::io_in_op(&f.name, self.ctx, f.span))
                    }
                    // `reduce[i](ModSum(m), …)` uses the monoid `ModSum`.
                    None if self.monoids.contains(f.name.as_str()) => {
                        self.calls.push((&f.name, f.span))
                    }
                    None => {}
                }
                // `map(f, x)` and arrows name functions as arguments.
                for a in args {
                    if let ExprKind::Name(n) = &a.kind {
                        if let Some(k) = self
                            .kinds
                            .get(n.as_str())
                            .filter(|_| !self.locals.contains(n.as_str()))
                        {
                            if *k == FuncKind::Proc {
                                self.diags.push(errors::proc_in_op(n, self.ctx, a.span));
                            } else {
                                self.calls.push((n, a.span));
                            }
                        }
                    }
                    self.expr(a);
                }
            }
            ExprKind::Name(n) if self.locals.contains(n.as_str()) => {}
            ExprKind::Name(n) => {
                if let Some(k) = self.kinds.get(n.as_str()) {
                    if *k != FuncKind::Proc {
                        self.calls.push((n, e.span));
                    }
                } else if self.monoids.contains(n.as_str()) {
                    // `reduce[i](M, …)` uses the monoid `M`.
                    self.calls.push((n, e.span));
                }
            }
            ExprKind::Str(_) => {}
            ExprKind::Unary(_, a)
            | ExprKind::Cast(a, _)
            | ExprKind::Field(a, _, _)
            | ExprKind::Named(_, a) => self.expr(a),
            ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Index(a, idx) => {
                self.expr(a);
                idx.iter().for_each(|i| self.expr(i));
            }
            ExprKind::Tuple(es) | ExprKind::TensorLit(es) => es.iter().for_each(|x| self.expr(x)),
            ExprKind::Reduce { indices, args, .. } => {
                for b in indices {
                    if let Some(e) = &b.bound {
                        self.expr(e);
                    }
                    self.locals.insert(&b.name.name);
                }
                args.iter().for_each(|a| self.expr(a));
            }
            ExprKind::If { cond, then, els } => {
                self.expr(cond);
                self.block(then);
                if let Some(e) = els {
                    self.expr(e);
                }
            }
            ExprKind::Block(b) => self.block(b),
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Placeholder
            | ExprKind::Error => {}
        }
    }
}

/// Reports each cycle in the call graph once, at a call that closes it.
fn find_cycles(calls: &HashMap<&str, Vec<(&str, Span)>>, diags: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        f: &'a str,
        calls: &HashMap<&'a str, Vec<(&'a str, Span)>>,
        marks: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        diags: &mut Vec<Diagnostic>,
    ) {
        marks.insert(f, Mark::Active);
        stack.push(f);
        for (g, span) in calls.get(f).map(|v| v.as_slice()).unwrap_or(&[]) {
            match marks.get(g) {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|s| s == g).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    if cycle.len() > 1 {
                        cycle.push(g.to_string());
                    }
                    diags.push(errors::recursion(&cycle, *span));
                }
                Some(Mark::Done) => {}
                None => visit(g, calls, marks, stack, diags),
            }
        }
        stack.pop();
        marks.insert(f, Mark::Done);
    }
    let mut names: Vec<&str> = calls.keys().copied().collect();
    names.sort_unstable();
    let mut marks = HashMap::new();
    for f in names {
        if !marks.contains_key(f) {
            visit(f, calls, &mut marks, &mut Vec::new(), diags);
        }
    }
}
