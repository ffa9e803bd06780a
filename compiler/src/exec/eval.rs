//! Statement and expression evaluation on the coordinator: statements run in order;
//! coordinator expressions are computed at once, operation-environment expressions are
//! lowered into the pending graph as lazy values ([`Machine::lazy`]); `proc` calls run their
//! bodies in a fresh frame.

use std::collections::HashMap;

use flow_runtime::{DType, Scalar, Tensor};

use super::checkpoint::{AfterIteration, Resume};
use super::{
    bug, fail, show, Frame, Machine, RResult, RunError, RunErrorKind, Value, MAX_PROC_DEPTH,
};
use crate::base::Span;
use crate::hir::{self, Builtin, ExprKind as H, Ty};
use crate::mir::lower::{eval_dim, LowerError, LowerErrorKind, TVal};

impl<'p, 'h> Machine<'p, 'h> {
    pub(super) fn local(&self, frame: &Frame<'_>, id: hir::LocalId, span: Span) -> RResult<Value> {
        match &frame.values[id.0 as usize] {
            Some(v) => Ok(v.clone()),
            None => bug(span, "local read before it was bound"),
        }
    }

    /// Lowers an operation-environment expression into the graph.
    pub(super) fn lazy(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<Value> {
        let mut used = Vec::new();
        collect_locals(e, &mut used);
        let mut locals = HashMap::new();
        for id in used {
            if let Some(v) = frame.values[id.0 as usize].clone() {
                if matches!(
                    v,
                    Value::Scalar(_) | Value::Tensor(_) | Value::Lazy(_) | Value::Tuple(_)
                ) {
                    locals.insert(id, self.tval(&v, e.span)?);
                }
            }
        }
        // An `eval(…)` inside is computed first, as its own observation: its value is then a
        // constant of the graph, which may size a tensor.
        let mut evals = Vec::new();
        let mut kids = Vec::new();
        hir::dump::children(e, &mut kids);
        for k in kids {
            collect_evals(k, &mut evals);
        }
        let mut forced = HashMap::new();
        for x in evals {
            let v = self.eval(frame, x)?;
            forced.insert(x as *const hir::Expr, self.tval(&v, x.span)?);
        }
        let t = match self.lower.coordinator_expr(
            frame.body,
            e,
            locals.clone(),
            frame.shapes.clone(),
            forced.clone(),
        ) {
            Err(err) if needs_marg(&err) => {
                // A parameterised monoid's argument is built into its combine, so it must be
                // known: compute the scalars the expression uses that the graph still owes,
                // and lower it again (the nodes of the first try stay unused).
                if !self.force_lazy_scalars(frame, &mut locals, e.span)? {
                    return Err(RunError::from(err));
                }
                self.lower
                    .coordinator_expr(frame.body, e, locals, frame.shapes.clone(), forced)
                    .map_err(RunError::from)?
            }
            r => r.map_err(RunError::from)?,
        };
        Ok(self.value_of_tval(t))
    }

    /// Computes the lazy scalars among `locals` (binding their values in `frame`); whether
    /// there was any.
    fn force_lazy_scalars(
        &mut self,
        frame: &mut Frame<'p>,
        locals: &mut HashMap<hir::LocalId, TVal>,
        span: Span,
    ) -> RResult<bool> {
        let mut any = false;
        let ids: Vec<hir::LocalId> = locals.keys().copied().collect();
        for id in ids {
            let Some(Value::Lazy(l)) = frame.values[id.0 as usize].clone() else {
                continue;
            };
            if !self.lower.ty(l.port).shape.is_empty() {
                continue;
            }
            let v = self.force(Value::Lazy(l), span)?;
            locals.insert(id, self.tval(&v, span)?);
            frame.values[id.0 as usize] = Some(v);
            any = true;
        }
        Ok(any)
    }

    pub(super) fn eval(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<Value> {
        let span = e.span;
        match &e.kind {
            H::Lit(s) => Ok(Value::Scalar(*s)),
            H::Str(parts) => {
                let exprs: Vec<&'p hir::Expr> = parts
                    .iter()
                    .filter_map(|p| match p {
                        hir::StrPart::Expr(x) => Some(x),
                        hir::StrPart::Text(_) => None,
                    })
                    .collect();
                let mut values = self.force_together(frame, &exprs)?.into_iter();
                let mut s = String::new();
                for p in parts {
                    match p {
                        hir::StrPart::Text(t) => s.push_str(t),
                        hir::StrPart::Expr(_) => {
                            s.push_str(&show(&values.next().expect("one value per part")))
                        }
                    }
                }
                Ok(Value::Str(s))
            }
            H::Local(id) => self.local(frame, *id, span),
            H::DimValue(d) => match eval_dim(d, &frame.shapes) {
                Some(n) => Ok(Value::Scalar(Scalar::I64(n))),
                None => bug(span, format!("shape `{d}` unbound")),
            },
            H::Unary(op, a) => {
                let v = self.eval(frame, a)?;
                if let Value::Scalar(s) = v {
                    return crate::base::ops::unary(*op, s)
                        .map(Value::Scalar)
                        .or_else(|x| fail(span, op_error(x)));
                }
                self.lazy(frame, e)
            }
            H::Binary(op, a, b) => {
                let x = self.eval(frame, a)?;
                // `&&` and `||` on scalars short-circuit.
                if let (hir::BinOp::And | hir::BinOp::Or, Value::Scalar(Scalar::Bool(v))) = (op, &x)
                {
                    if (*op == hir::BinOp::And && !v) || (*op == hir::BinOp::Or && *v) {
                        return Ok(x);
                    }
                }
                let x = self.observe_condition(op, x, a.span)?;
                let y = self.eval(frame, b)?;
                let y = self.observe_condition(op, y, b.span)?;
                match (&x, &y) {
                    (Value::Scalar(p), Value::Scalar(q)) => crate::base::ops::binary(*op, *p, *q)
                        .map(Value::Scalar)
                        .or_else(|err| fail(span, format!("`{}`: {}", op.symbol(), op_error(err)))),
                    _ => {
                        let (tx, ty) = (self.tval(&x, a.span)?, self.tval(&y, b.span)?);
                        let (TVal::Port(px), TVal::Port(py)) = (tx, ty) else {
                            return bug(span, "tuple operand");
                        };
                        let op = *op;
                        let p = self
                            .lower
                            .elementwise(&[px, py], span, |mut xs| {
                                let r = xs.pop().expect("two");
                                crate::mir::ir::ScalarExpr::binary(op, xs.pop().expect("two"), r)
                            })
                            .map_err(|x| RunError::from(LowerError { span, ..x }))?;
                        Ok(self.handle(p))
                    }
                }
            }
            H::Cast(a, d) => {
                let v = self.eval(frame, a)?;
                if let Value::Scalar(s) = v {
                    return Ok(Value::Scalar(s.cast(*d)));
                }
                self.lazy(frame, e)
            }
            H::Call(f, args) => {
                let func = self.prog.func(*f);
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(frame, a)?);
                }
                match func.kind {
                    hir::FuncKind::Proc => self.call_proc(*f, vals, span),
                    _ => {
                        let tvals = vals
                            .iter()
                            .map(|v| self.tval(v, span))
                            .collect::<RResult<Vec<_>>>()?;
                        let t = match self.lower.call(*f, tvals, span) {
                            // As in `lazy`: a monoid's argument must be known; compute the
                            // scalar arguments the graph still owes and lower the call again.
                            Err(err) if needs_marg(&err) => {
                                let mut any = false;
                                for v in &mut vals {
                                    if let Value::Lazy(l) = v {
                                        if self.lower.ty(l.port).shape.is_empty() {
                                            *v = self.force(v.clone(), span)?;
                                            any = true;
                                        }
                                    }
                                }
                                if !any {
                                    return Err(RunError::from(err));
                                }
                                let tvals = vals
                                    .iter()
                                    .map(|v| self.tval(v, span))
                                    .collect::<RResult<Vec<_>>>()?;
                                self.lower.call(*f, tvals, span).map_err(RunError::from)?
                            }
                            r => r.map_err(RunError::from)?,
                        };
                        Ok(self.value_of_tval(t))
                    }
                }
            }
            H::Diff(d) => {
                let mut tvals = Vec::new();
                for a in &d.args {
                    let v = self.eval(frame, a)?;
                    tvals.push(self.tval(&v, span)?);
                }
                let t = self.lower.diff(d, tvals, span).map_err(RunError::from)?;
                Ok(self.value_of_tval(t))
            }
            H::Builtin(b, args) => self.builtin(frame, *b, args, e),
            H::Tuple(xs) => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(self.eval(frame, x)?);
                }
                Ok(Value::Tuple(vs))
            }
            H::Field(x, i) => match self.eval(frame, x)? {
                Value::Tuple(mut vs) if *i < vs.len() => Ok(vs.swap_remove(*i)),
                _ => bug(span, "field of a non-tuple"),
            },
            H::If { cond, then, els } => {
                let c = self.condition(frame, cond)?;
                if c {
                    self.eval(frame, then)
                } else {
                    match els {
                        Some(x) => self.eval(frame, x),
                        None => Ok(Value::Unit),
                    }
                }
            }
            H::Block(b) => self.block(frame, b),
            H::MapFn(..)
            | H::Read { .. }
            | H::Gather { .. }
            | H::Comprehension { .. }
            | H::Reduce { .. }
            | H::TensorLit(_)
            | H::IndexValue(_) => self.lazy(frame, e),
        }
    }

    /// Operands of `&&`/`||` are conditions: a lazy boolean is observed.
    pub(super) fn observe_condition(
        &mut self,
        op: &hir::BinOp,
        v: Value,
        span: Span,
    ) -> RResult<Value> {
        match (op, &v) {
            (hir::BinOp::And | hir::BinOp::Or, Value::Lazy(l))
                if self.lower.ty(l.port).shape.is_empty() =>
            {
                self.force(v, span)
            }
            _ => Ok(v),
        }
    }

    pub(super) fn condition(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<bool> {
        let v = self.eval(frame, e)?;
        match self.force(v, e.span)? {
            Value::Scalar(Scalar::Bool(b)) => Ok(b),
            other => bug(e.span, format!("condition is {other:?}")),
        }
    }

    pub(super) fn stmt(&mut self, frame: &mut Frame<'p>, s: &'p hir::Stmt) -> RResult<()> {
        if self
            .opts
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(RunError::new(RunErrorKind::TimeLimit, Span::default()));
        }
        match s {
            hir::Stmt::Let { local, value } | hir::Stmt::Assign { local, value, .. } => {
                let v = self.eval(frame, value)?;
                self.note_bound(&v);
                self.bind_local_shapes(frame, *local, &v);
                frame.values[local.0 as usize] = Some(v);
            }
            hir::Stmt::Expr(x) => {
                self.eval(frame, x)?;
            }
            hir::Stmt::Measure(body) => self.measure(frame, body)?,
            hir::Stmt::For {
                local,
                lo,
                hi,
                body,
            } => self.for_loop(frame, *local, lo, hi, body, None, &mut |_, _, _| Ok(()))?,
            hir::Stmt::While { cond, body } => {
                self.while_loop(frame, cond, body, &mut |_, _, _| Ok(()))?
            }
        }
        Ok(())
    }

    /// A `for` loop, from the start or from `resume` (a checkpoint's position), calling
    /// `after` at the end of each iteration with where the loop would resume.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn for_loop(
        &mut self,
        frame: &mut Frame<'p>,
        local: hir::LocalId,
        lo: &'p hir::Expr,
        hi: &'p hir::Expr,
        body: &'p hir::Block,
        resume: Option<Resume>,
        after: &mut AfterIteration<'p, 'h>,
    ) -> RResult<()> {
        let span = hi.span;
        let (lo, hi) = match resume {
            Some(Resume::For { next, hi }) => (next, hi),
            _ => (self.int(frame, lo)?, self.int(frame, hi)?),
        };
        for i in lo..hi {
            frame.values[local.0 as usize] = Some(Value::Scalar(Scalar::I64(i)));
            self.block(frame, body)?;
            self.segment(span)?;
            after(self, frame, Resume::For { next: i + 1, hi })?;
        }
        Ok(())
    }

    /// A `while` loop, calling `after` at the end of each iteration.
    pub(super) fn while_loop(
        &mut self,
        frame: &mut Frame<'p>,
        cond: &'p hir::Expr,
        body: &'p hir::Block,
        after: &mut AfterIteration<'p, 'h>,
    ) -> RResult<()> {
        while self.condition(frame, cond)? {
            self.block(frame, body)?;
            self.segment(cond.span)?;
            after(self, frame, Resume::While)?;
        }
        Ok(())
    }

    pub(super) fn block(&mut self, frame: &mut Frame<'p>, b: &'p hir::Block) -> RResult<Value> {
        for s in &b.stmts {
            self.stmt(frame, s)?;
        }
        match &b.tail {
            Some(t) => self.eval(frame, t),
            None => Ok(Value::Unit),
        }
    }

    /// Checks the shape variables of a loaded tensor's annotation against its shape: one
    /// variable has one size, within the annotation (`f32[N, N]` is square) and across the
    /// annotations of a body (`let a: f32[N] = load(…); let b: f32[N] = load(…);` have one
    /// length). The same `load` may give a variable a new size when it runs again (a loop
    /// that loads a file of another size at each step); another `load` may not.
    pub(super) fn check_loaded_vars(
        &mut self,
        t: &Tensor,
        ty: &Ty,
        path: &str,
        span: Span,
    ) -> RResult<()> {
        let Ty::Tensor(_, dims) = ty else {
            return Ok(());
        };
        let shape = flow_runtime::format_shape(&t.shape);
        let mut here: Vec<(&str, usize)> = Vec::new();
        for (d, &n) in dims.iter().zip(&t.shape) {
            let Some(var) = d.as_var() else {
                continue;
            };
            if let Some(&(_, m)) = here.iter().find(|(v, _)| *v == var) {
                if m != n {
                    return fail(
                        span,
                        format!("`{path}` has shape {shape}, but the program expects `{ty}`: `{d}` cannot be both {m} and {n}"),
                    );
                }
                continue;
            }
            here.push((var, n));
            if let Some((m, at, from)) = self.loaded_dims.get(var) {
                if *at != span && *m != n {
                    return Err(RunError {
                        related: vec![(*at, format!("`{d}` is {m} in `{from}`, loaded here"))],
                        ..RunError::program(span, format!("`{path}` has shape {shape}, but the program expects `{ty}` where `{d}` is {m}, the size it has in `{from}`"))
                    });
                }
            }
        }
        for (var, n) in here {
            self.loaded_dims
                .insert(var.to_string(), (n, span, path.to_string()));
        }
        Ok(())
    }

    /// Binds the shape variables of a local's type to its value's shape, so that the rest of
    /// the body knows them: after `let x: f32[R, 3] = load(…);`, `let c[r] = x[r, 0];` ranges
    /// over the loaded `R` rows. The latest binding wins (a loop may load a new size each time).
    pub(super) fn bind_local_shapes(&self, frame: &mut Frame<'p>, local: hir::LocalId, v: &Value) {
        let ty = &frame.body.local(local).ty;
        for (dims, shape) in self.tensor_shapes(ty, v) {
            for (d, n) in dims.iter().zip(shape) {
                if let Some(var) = d.as_var() {
                    frame.shapes.insert(var.to_string(), n as i64);
                }
            }
        }
    }

    /// The declared dimensions and the actual shape of every tensor in `v`, a value of type
    /// `ty`: the fields of a tuple too (a tensor of tuples is one tensor per field).
    fn tensor_shapes<'t>(&self, ty: &'t Ty, v: &Value) -> Vec<(&'t [hir::Dim], Vec<usize>)> {
        match (ty, v) {
            (Ty::Tensor(_, dims), v) => self
                .shape_of(v)
                .map(|s| (&dims[..], s))
                .into_iter()
                .collect(),
            (Ty::Tuple(fs), Value::Tuple(vs)) => fs
                .iter()
                .zip(vs)
                .flat_map(|((_, t), v)| self.tensor_shapes(t, v))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn int(&mut self, frame: &mut Frame<'p>, e: &'p hir::Expr) -> RResult<i64> {
        let v = self.eval(frame, e)?;
        match self.force(v, e.span)? {
            Value::Scalar(s) => Ok(s.cast(DType::I64).as_f64() as i64).map(|_| match s {
                Scalar::I64(v) => v,
                other => other.as_f64() as i64,
            }),
            _ => bug(e.span, "expected an integer"),
        }
    }

    pub(super) fn call_proc(
        &mut self,
        f: hir::FuncId,
        vals: Vec<Value>,
        span: Span,
    ) -> RResult<Value> {
        let func = self.prog.func(f);
        let mut shapes = HashMap::new();
        for (p, v) in func.params.iter().zip(&vals) {
            let ty = &func.body.local(*p).ty;
            for (dims, shape) in self.tensor_shapes(ty, v) {
                for (d, n) in dims.iter().zip(shape) {
                    if let Some(var) = d.as_var() {
                        match shapes.get(var) {
                            Some(prev) if *prev != n as i64 => {
                                return fail(
                                    span,
                                    format!(
                                        "shape mismatch in call to `{}`: `{var}` is {prev} and {n}",
                                        func.name
                                    ),
                                );
                            }
                            _ => {
                                shapes.insert(var.to_string(), n as i64);
                            }
                        }
                    }
                }
            }
        }
        if self.proc_depth >= MAX_PROC_DEPTH {
            return fail(
                span,
                format!(
                    "too deep: proc `{}` is called {MAX_PROC_DEPTH} calls deep; iterate with a loop instead of recursing",
                    func.name
                ),
            );
        }
        let args = func.params.iter().copied().zip(vals).collect();
        self.proc_depth += 1;
        let out = self.run_body(&func.body, args, shapes);
        self.proc_depth -= 1;
        out
    }
}

fn collect_locals(e: &hir::Expr, out: &mut Vec<hir::LocalId>) {
    if let H::Local(id) = &e.kind {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    let mut kids = Vec::new();
    hir::dump::children(e, &mut kids);
    for k in kids {
        collect_locals(k, out);
    }
}

/// The outermost `eval(…)`s of an expression, and the calls of built-ins the coordinator
/// computes on the runtime's primitives (`filter`, `sort`, …).
fn collect_evals<'p>(e: &'p hir::Expr, out: &mut Vec<&'p hir::Expr>) {
    if let H::Builtin(b, _) = &e.kind {
        if *b == Builtin::Eval || b.is_prim() {
            out.push(e);
            return;
        }
    }
    if let H::Builtin(Builtin::Eval, _) = &e.kind {
        out.push(e);
        return;
    }
    let mut kids = Vec::new();
    hir::dump::children(e, &mut kids);
    for k in kids {
        collect_evals(k, out);
    }
}

fn op_error(e: crate::base::ops::OpError) -> String {
    match e {
        crate::base::ops::OpError::DivByZero => "integer division by zero".into(),
        crate::base::ops::OpError::DivOverflow => "integer division overflows (MIN / -1)".into(),
        crate::base::ops::OpError::Operands => "internal error: operand types".into(),
    }
}

/// Whether lowering failed for want of a parameterised monoid's argument that the graph
/// computes (`Machine::lazy` and op calls force their lazy scalars then, and retry).
fn needs_marg(err: &LowerError) -> bool {
    matches!(*err.kind, LowerErrorKind::MonoidArgNotStatic { .. })
}
