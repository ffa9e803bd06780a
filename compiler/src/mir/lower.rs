//! Lowering from the typed HIR to MIR, one op call or coordinator expression at a time, into a
//! graph that grows until the coordinator observes a value. The only MIR file that imports
//! `crate::hir`.
//!
//! Op calls are inlined (arrows were already inlined by the checker): each comprehension
//! becomes a `Map`, each reduction a `Reduce` whose free space is the enclosing index space,
//! and whole-tensor arithmetic becomes `Map`s with identity projections (a rank-0 operand is
//! broadcast). Shapes are numbers here: a call binds the callee's shape variables from its
//! arguments' shapes and checks them (the dispatch-time half of shape checking), and every
//! strict read is checked to stay inside its tensor.
//!
//! **Invariant:** the graph only grows; a node never changes once added.

use std::collections::HashMap;

use flow_runtime::{DType, Scalar, Tensor};

use crate::base::Span;
use crate::hir::ops::{binop, builtin_binop, unop};
use crate::hir::{self, Dim, ExprKind as H, Ty};
use crate::mir::cost::{cost, DUPLICATE_COST};
use crate::mir::ir::{self, Affine, Dist, Graph, Node, NodeKind, Port, Read, ScalarExpr, TensorTy};

/// A tensor-level value during lowering: a port of the graph, or a tuple of them.
#[derive(Clone, Debug, PartialEq)]
pub enum TVal {
    Port(Port),
    Tuple(Vec<TVal>),
}

/// A dispatch-time error: a shape that does not fit, a read outside its tensor.
#[derive(Clone, Debug)]
pub struct LowerError {
    pub message: String,
    pub span: Span,
}

type LResult<T> = Result<T, LowerError>;

fn err<T>(span: Span, message: impl Into<String>) -> LResult<T> {
    Err(LowerError {
        message: message.into(),
        span,
    })
}

/// What a local names while lowering.
#[derive(Clone, Debug)]
enum Bound {
    /// A tensor-level value.
    T(TVal),
    /// A per-point value inside a comprehension or reduction (a `let` in its body, or an
    /// inlined `fn`'s parameter).
    S(ScalarExpr),
}

/// One inlined body: its locals and shape variables.
struct Frame<'p> {
    body: &'p hir::Body,
    locals: HashMap<hir::LocalId, Bound>,
    shapes: HashMap<String, i64>,
    label: String,
}

/// A point context: the reads and index variables of the `Map` or `Reduce` being built.
struct Point {
    reads: Vec<Read>,
    /// Extents of the index variables, in variable order.
    extents: Vec<usize>,
    /// Which variable each HIR index is.
    vars: HashMap<hir::IndexId, u32>,
}

impl Point {
    /// Adds a read of port `p` and returns its value at the current point.
    fn read(&mut self, p: Port, proj: Vec<Affine>, edge: ir::Edge) -> ScalarExpr {
        self.reads.push(Read {
            node: p.node,
            port: p.port,
            proj,
            edge,
        });
        ScalarExpr::Read(self.reads.len() as u32 - 1)
    }
}

/// Builds a growing MIR graph for one program.
pub struct Lowerer<'p> {
    pub prog: &'p hir::Program,
    pub graph: Graph,
    monoids: HashMap<hir::MonoidId, ir::MonoidId>,
    /// The values of the `eval(…)`s of the coordinator expression being lowered, which the
    /// coordinator computed first (see [`Lowerer::coordinator_expr`]), by address.
    forced: HashMap<*const hir::Expr, TVal>,
    /// The expression being lowered: the span of the nodes made now (`Node::span`).
    span: Option<Span>,
}

impl<'p> Lowerer<'p> {
    pub fn new(prog: &'p hir::Program) -> Lowerer<'p> {
        Lowerer {
            prog,
            graph: Graph::new(),
            monoids: HashMap::new(),
            forced: HashMap::new(),
            span: None,
        }
    }

    /// The type of a port.
    pub fn ty(&self, p: Port) -> &TensorTy {
        &self.graph.nodes[p.node].outputs[p.port as usize]
    }

    fn add(&mut self, kind: NodeKind, outputs: Vec<TensorTy>, label: &str) -> NodeId {
        self.graph.add(Node {
            kind,
            outputs,
            label: label.to_string(),
            span: self.span,
        })
    }

    /// A constant tensor in the graph.
    pub fn constant(&mut self, t: Tensor) -> Port {
        let ty = TensorTy::of(&t);
        let node = self.add(NodeKind::Const { value: t }, vec![ty], "");
        Port { node, port: 0 }
    }

    pub fn scalar(&mut self, s: Scalar) -> Port {
        self.constant(Tensor::from_scalar(s))
    }

    /// Calls op or fn `f` on tensor-level arguments.
    pub fn call(&mut self, f: hir::FuncId, args: Vec<TVal>, span: Span) -> LResult<TVal> {
        let func = self.prog.func(f);
        let mut shapes = HashMap::new();
        // Two rounds: a dimension such as `2 * H + K` is solved once `K` is known from a later
        // parameter.
        for _ in 0..2 {
            for (param, arg) in func.params.iter().zip(&args) {
                let pty = &func.body.local(*param).ty;
                self.bind_shapes(pty, arg, &mut shapes, &func.name, span)?;
            }
        }
        // Shapes like `N - 8` in parameters are checked once every variable is bound.
        for (param, arg) in func.params.iter().zip(&args) {
            let pty = &func.body.local(*param).ty;
            self.check_shapes(
                pty,
                arg,
                &shapes,
                &func.name,
                &func.body.local(*param).name,
                span,
            )?;
        }
        let mut frame = Frame {
            body: &func.body,
            locals: HashMap::new(),
            shapes,
            label: func.name.clone(),
        };
        for (param, arg) in func.params.iter().zip(args) {
            frame.locals.insert(*param, Bound::T(arg));
        }
        let res = self.tensor(&func.body.expr, &mut frame)?;
        let want = self.concrete(&func.ret, &frame, span)?;
        self.check_result(&res, &want, &func.name, span)?;
        Ok(res)
    }

    /// Lowers a tensor-level expression of a coordinator body, whose locals are given.
    pub fn coordinator_expr(
        &mut self,
        body: &'p hir::Body,
        e: &'p hir::Expr,
        locals: HashMap<hir::LocalId, TVal>,
        shapes: HashMap<String, i64>,
        forced: HashMap<*const hir::Expr, TVal>,
    ) -> LResult<TVal> {
        let mut frame = Frame {
            body,
            locals: locals.into_iter().map(|(k, v)| (k, Bound::T(v))).collect(),
            shapes,
            label: String::new(),
        };
        self.forced = forced;
        let out = self.tensor(e, &mut frame);
        self.forced.clear();
        out
    }

    /// An elementwise operation on tensor-level values (a rank-0 operand is broadcast).
    pub fn elementwise(
        &mut self,
        args: &[Port],
        span: Span,
        f: impl FnOnce(Vec<ScalarExpr>) -> ScalarExpr,
    ) -> LResult<Port> {
        let mut shape: Vec<usize> = Vec::new();
        for a in args {
            let s = &self.ty(*a).shape;
            if s.is_empty() {
                continue;
            }
            if shape.is_empty() {
                shape = s.clone();
            } else if &shape != s {
                return err(
                    span,
                    format!(
                        "shape mismatch: `{}` and `{}` in an elementwise operation",
                        flow_runtime::format_shape(&shape),
                        flow_runtime::format_shape(s)
                    ),
                );
            }
        }
        let mut reads = Vec::new();
        let mut xs = Vec::new();
        for a in args {
            let rank = self.ty(*a).shape.len();
            let proj = if rank == 0 {
                Vec::new()
            } else {
                (0..rank as u32).map(Affine::var).collect()
            };
            xs.push(ScalarExpr::Read(reads.len() as u32));
            reads.push(Read {
                node: a.node,
                port: a.port,
                proj,
                edge: ir::Edge::Strict,
            });
        }
        let body = f(xs);
        let outer = self.span.replace(span);
        let out = self.map_node(shape, reads, body, "");
        self.span = outer;
        out
    }

    /// A one-port map over `space` computing `body`.
    fn map_node(
        &mut self,
        space: Vec<usize>,
        reads: Vec<Read>,
        body: ScalarExpr,
        label: &str,
    ) -> LResult<Port> {
        let dtype = self.expr_dtype(&body, &reads)?;
        let node = self.add(
            NodeKind::Map {
                space: space.clone(),
                reads,
                body: vec![body],
            },
            vec![TensorTy::new(dtype, space)],
            label,
        );
        Ok(Port { node, port: 0 })
    }

    fn expr_dtype(&self, e: &ScalarExpr, reads: &[Read]) -> LResult<DType> {
        let read_tys: Vec<DType> = reads.iter().map(|r| self.ty(r.src()).dtype).collect();
        scalar_dtype(e, &read_tys).ok_or(LowerError {
            message: "internal error: untypable scalar expression".into(),
            span: Span::default(),
        })
    }

    // ---- shapes ----

    fn bind_shapes(
        &self,
        pty: &Ty,
        arg: &TVal,
        shapes: &mut HashMap<String, i64>,
        fname: &str,
        span: Span,
    ) -> LResult<()> {
        match (pty, arg) {
            (Ty::Tensor(_, dims), TVal::Port(p)) => {
                let shape = self.ty(*p).shape.clone();
                if shape.len() != dims.len() {
                    return err(
                        span,
                        format!(
                            "`{fname}` expects a tensor of rank {}, found shape {}",
                            dims.len(),
                            flow_runtime::format_shape(&shape)
                        ),
                    );
                }
                // The variables this argument bound, to tell a non-square argument of
                // `f32[N, N]` from two arguments that disagree.
                let mut mine: Vec<&str> = Vec::new();
                for (d, n) in dims.iter().zip(&shape) {
                    if let Some(v) = d.as_var() {
                        match shapes.get(v) {
                            Some(prev) if *prev != *n as i64 && mine.contains(&v) => {
                                return err(span, format!("shape mismatch in call to `{fname}`: an argument of shape {} does not fit `{pty}`: `{v}` would be both {prev} and {n}", flow_runtime::format_shape(&shape)));
                            }
                            Some(prev) if *prev != *n as i64 => {
                                return err(span, format!("shape mismatch in call to `{fname}`: `{v}` is {prev} for an earlier argument and {n} for the argument of shape {}", flow_runtime::format_shape(&shape)));
                            }
                            _ => {
                                shapes.insert(v.to_string(), *n as i64);
                                mine.push(v);
                            }
                        }
                    }
                }
                // An affine dimension with one unknown variable (`2 * H + 1`) determines it
                // when the size fits; `check_shapes` reports a size that does not.
                for (d, n) in dims.iter().zip(&shape) {
                    let unknown: Vec<(&String, &i64)> = d
                        .terms
                        .iter()
                        .filter(|(v, _)| !shapes.contains_key(*v))
                        .collect();
                    let [(v, c)] = unknown.as_slice() else {
                        continue;
                    };
                    let known = d
                        .terms
                        .iter()
                        .filter(|(w, _)| w != v)
                        .map(|(w, k)| shapes[w] * k)
                        .sum::<i64>();
                    let rest = *n as i64 - d.konst - known;
                    if rest % **c == 0 && rest / **c >= 0 {
                        shapes.insert((*v).clone(), rest / **c);
                    } else {
                        return err(
                            span,
                            format!("shape mismatch in call to `{fname}`: no `{v}` makes `{d}` equal {n}"),
                        );
                    }
                }
                Ok(())
            }
            (Ty::Tuple(fs), TVal::Tuple(vs)) => {
                for ((_, t), v) in fs.iter().zip(vs) {
                    self.bind_shapes(t, v, shapes, fname, span)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_shapes(
        &mut self,
        pty: &Ty,
        arg: &TVal,
        shapes: &HashMap<String, i64>,
        fname: &str,
        pname: &str,
        span: Span,
    ) -> LResult<()> {
        if let (Ty::Tensor(..) | Ty::Scalar(_), TVal::Port(p)) = (pty, arg) {
            let got = self.ty(*p).shape.clone();
            let mut want = Vec::new();
            for d in pty.dims() {
                match eval_dim(d, shapes) {
                    Some(n) => want.push(n),
                    None => {
                        // A variable only in an affine dimension: solve `a·V + k = n`.
                        return err(
                            span,
                            format!("cannot determine `{d}` for parameter `{pname}` of `{fname}`"),
                        );
                    }
                }
            }
            let want: Vec<usize> = want.iter().map(|n| (*n).max(0) as usize).collect();
            if want != got {
                return err(
                    span,
                    format!(
                        "shape mismatch in call to `{fname}`: parameter `{pname}` is `{pty}` = {}, but the argument has shape {}",
                        flow_runtime::format_shape(&want),
                        flow_runtime::format_shape(&got)
                    ),
                );
            }
        }
        Ok(())
    }

    fn concrete(&self, t: &Ty, frame: &Frame<'_>, span: Span) -> LResult<Option<TensorTy>> {
        Ok(match t {
            Ty::Scalar(d) => Some(TensorTy::new(*d, Vec::new())),
            Ty::Tensor(d, dims) => {
                let mut shape = Vec::new();
                for dim in dims {
                    let n = self.dim(dim, frame, span)?;
                    shape.push(n);
                }
                Some(TensorTy::new(*d, shape))
            }
            _ => None,
        })
    }

    fn check_result(
        &self,
        res: &TVal,
        want: &Option<TensorTy>,
        fname: &str,
        span: Span,
    ) -> LResult<()> {
        if let (TVal::Port(p), Some(w)) = (res, want) {
            let got = self.ty(*p);
            if got.shape != w.shape {
                return err(
                    span,
                    format!("`{fname}` declares its result as {w} but computes {got}"),
                );
            }
        }
        Ok(())
    }

    fn dim(&self, d: &Dim, frame: &Frame<'_>, span: Span) -> LResult<usize> {
        match eval_dim(d, &frame.shapes) {
            Some(n) if n >= 0 => Ok(n as usize),
            Some(n) => err(span, format!("the dimension `{d}` is negative ({n}) here")),
            None if d.vars().all(|v| frame.shapes.contains_key(v)) => {
                let mut vals: Vec<String> = d
                    .vars()
                    .map(|v| format!("{v} = {}", frame.shapes[v]))
                    .collect();
                vals.sort();
                err(
                    span,
                    format!(
                        "the dimension `{d}` does not fit in 64 bits here ({})",
                        vals.join(", ")
                    ),
                )
            }
            None => err(
                span,
                format!("internal error: shape `{d}` is unbound at dispatch"),
            ),
        }
    }

    // ---- tensor level ----

    /// Lowers `e`; the nodes made for it carry its span.
    fn tensor(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<TVal> {
        let outer = self.span.replace(e.span);
        let out = self.tensor_at(e, frame);
        self.span = outer;
        out
    }

    fn tensor_at(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<TVal> {
        let span = e.span;
        match &e.kind {
            H::Local(id) => match frame.locals.get(id) {
                Some(Bound::T(v)) => Ok(v.clone()),
                Some(Bound::S(_)) | None => {
                    err(span, "internal error: local not bound at tensor level")
                }
            },
            H::Block(b) => {
                for s in &b.stmts {
                    match s {
                        hir::Stmt::Let { local, value } => {
                            // Nodes built for `let e[i, j] = …` in op `softmax` are labelled
                            // `softmax.e`.
                            let outer = frame.label.clone();
                            let name = &frame.body.local(*local).name;
                            frame.label = if outer.is_empty() {
                                name.clone()
                            } else {
                                format!("{outer}.{name}")
                            };
                            let v = self.tensor(value, frame);
                            frame.label = outer;
                            frame.locals.insert(*local, Bound::T(v?));
                        }
                        hir::Stmt::Expr(x) => {
                            self.tensor(x, frame)?;
                        }
                        _ => return err(span, "internal error: statement in an operation"),
                    }
                }
                match &b.tail {
                    Some(t) => self.tensor(t, frame),
                    None => Ok(TVal::Tuple(Vec::new())),
                }
            }
            H::Tuple(xs) => Ok(TVal::Tuple(
                xs.iter()
                    .map(|x| self.tensor(x, frame))
                    .collect::<LResult<_>>()?,
            )),
            H::Field(x, i) => match self.tensor(x, frame)? {
                TVal::Tuple(mut vs) if *i < vs.len() => Ok(vs.swap_remove(*i)),
                _ => err(span, "internal error: field of a non-tuple"),
            },
            H::Call(f, args) if self.prog.func(*f).kind == hir::FuncKind::Op => {
                let vals = args
                    .iter()
                    .map(|a| self.tensor(a, frame))
                    .collect::<LResult<Vec<_>>>()?;
                self.call(*f, vals, span)
            }
            H::Comprehension { indices, body } => {
                let mut point = Point {
                    reads: Vec::new(),
                    extents: Vec::new(),
                    vars: HashMap::new(),
                };
                for ix in indices {
                    let n = self.dim(&frame.body.index_var(*ix).range, frame, span)?;
                    point.vars.insert(*ix, point.extents.len() as u32);
                    point.extents.push(n);
                }
                let space = point.extents.clone();
                let s = self.point(body, frame, &mut point)?;
                self.map_node(space, point.reads, s, &frame.label)
                    .map(TVal::Port)
            }
            H::Reduce { .. } => {
                let mut point = Point {
                    reads: Vec::new(),
                    extents: Vec::new(),
                    vars: HashMap::new(),
                };
                self.reduce_node(e, frame, &mut point)
            }
            H::TensorLit(_) => self.tensor_lit(e, frame),
            H::Builtin(hir::Builtin::RandUniform | hir::Builtin::RandNormal, args) => {
                let dist = if matches!(e.kind, H::Builtin(hir::Builtin::RandUniform, _)) {
                    Dist::Uniform
                } else {
                    Dist::Normal
                };
                let seed = self.const_i64(&args[0], frame)?;
                let H::Tuple(sizes) = &args[1].kind else {
                    return err(span, "internal error: random shape");
                };
                let mut shape = Vec::new();
                for s in sizes {
                    let n = self.const_i64(s, frame)?;
                    if n < 0 {
                        return err(
                            s.span,
                            format!("a tensor size must not be negative, found {n}"),
                        );
                    }
                    shape.push(n as usize);
                }
                if let Err(e) = flow_runtime::tensor::checked_size(DType::F32, &shape) {
                    return err(span, format!("cannot create this random tensor: {e}"));
                }
                let node = self.add(
                    NodeKind::Random {
                        dist,
                        seed: seed as u64,
                    },
                    vec![TensorTy::new(DType::F32, shape)],
                    "",
                );
                Ok(TVal::Port(Port { node, port: 0 }))
            }
            // A value the coordinator computed is a constant: it may size a tensor
            // (`rand_uniform(0, [eval(count(x))])`).
            H::Builtin(hir::Builtin::Eval, args) => match self.forced.get(&(e as *const _)) {
                Some(v) => Ok(v.clone()),
                None => self.tensor(&args[0], frame),
            },
            // A tuple of scalars computed in the coordinator (a call of a scalar `fn` with a
            // tuple result, an `if` between tuples): one rank-0 map per field.
            _ if matches!(e.ty, Ty::Tuple(_)) => {
                let n_fields = match &e.ty {
                    Ty::Tuple(fs) => fs.len(),
                    _ => 0,
                };
                let mut point = Point {
                    reads: Vec::new(),
                    extents: Vec::new(),
                    vars: HashMap::new(),
                };
                let s = self.point(e, frame, &mut point)?;
                let mut out = Vec::new();
                for k in 0..n_fields {
                    let body = ScalarExpr::field(s.clone(), k as u32);
                    let p = self.map_node(Vec::new(), point.reads.clone(), body, &frame.label)?;
                    out.push(TVal::Port(p));
                }
                Ok(TVal::Tuple(out))
            }
            // Everything else is elementwise: lower it as a map over the result's shape.
            _ => {
                self.bind_random_dims(e, frame)?;
                let shape = match &e.ty {
                    Ty::Scalar(_) => Vec::new(),
                    Ty::Tensor(_, dims) => {
                        let mut s = Vec::new();
                        for d in dims {
                            s.push(self.dim(d, frame, span)?);
                        }
                        s
                    }
                    other => {
                        return err(
                            span,
                            format!("internal error: cannot lower a `{other}` at tensor level"),
                        )
                    }
                };
                let rank = shape.len();
                let mut point = Point {
                    reads: Vec::new(),
                    extents: shape.clone(),
                    vars: HashMap::new(),
                };
                let s = self.elementwise_point(e, frame, &mut point, rank)?;
                self.map_node(shape, point.reads, s, &frame.label)
                    .map(TVal::Port)
            }
        }
    }

    /// Binds the shape variables that stand for the sizes of random tensors inside an
    /// elementwise expression (`rand_uniform(0, [n]) as i64` with `n` a coordinator value:
    /// the checker names that size `D`, and only its value here says what `D` is).
    fn bind_random_dims(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<()> {
        match &e.kind {
            H::Builtin(hir::Builtin::RandUniform | hir::Builtin::RandNormal, args) => {
                let (Ty::Tensor(_, dims), H::Tuple(sizes)) = (&e.ty, &args[1].kind) else {
                    return Ok(());
                };
                for (d, size) in dims.iter().zip(sizes) {
                    if let Some(var) = d.as_var() {
                        if !frame.shapes.contains_key(var) {
                            let n = self.const_i64(size, frame)?;
                            frame.shapes.insert(var.to_string(), n);
                        }
                    }
                }
            }
            H::Unary(_, a) | H::Cast(a, _) => self.bind_random_dims(a, frame)?,
            H::Binary(_, a, b) => {
                self.bind_random_dims(a, frame)?;
                self.bind_random_dims(b, frame)?;
            }
            H::Builtin(b, xs) if is_pointwise_builtin(*b) => {
                for x in xs {
                    self.bind_random_dims(x, frame)?;
                }
            }
            H::MapFn(_, xs) => {
                for x in xs {
                    self.bind_random_dims(x, frame)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn const_i64(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<i64> {
        match &e.kind {
            H::Lit(s) => return Ok(s.cast(DType::I64).as_f64() as i64),
            H::DimValue(d) => return self.dim(d, frame, e.span).map(|n| n as i64),
            _ => {}
        }
        let v = self.tensor(e, frame)?;
        if let TVal::Port(p) = v {
            if let NodeKind::Const { value } = &self.graph.nodes[p.node].kind {
                if value.len() == 1 {
                    return Ok(value.get(0).cast(DType::I64).as_f64() as i64);
                }
            }
            // A computed size: fold the constant map if it reads only constants.
            if let Some(s) = self.fold_scalar(p) {
                return Ok(s.cast(DType::I64).as_f64() as i64);
            }
        }
        err(e.span, "this size or seed must be known when the graph is built, but it is computed by the graph; force it with `eval` first (`let n = eval(…);`, or `eval(…)` in place)")
    }

    /// Evaluates a rank-0 map over constants (e.g. `1 << 22`), when it is one.
    fn fold_scalar(&self, p: Port) -> Option<Scalar> {
        let node = &self.graph.nodes[p.node];
        match &node.kind {
            NodeKind::Const { value } if value.len() == 1 => Some(value.get(0)),
            NodeKind::Map { space, reads, body } if space.is_empty() => {
                let vals: Vec<Scalar> = reads
                    .iter()
                    .map(|r| self.fold_scalar(r.src()))
                    .collect::<Option<_>>()?;
                fold_expr(&body[p.port as usize], &vals)
            }
            _ => None,
        }
    }

    fn tensor_lit(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<TVal> {
        let mut leaves = Vec::new();
        let mut shape = Vec::new();
        collect_lit(e, &mut leaves, &mut shape, 0);
        let dtype = e.ty.dtype().unwrap_or(DType::F32);
        let ports: Vec<Port> = leaves
            .iter()
            .map(|l| match self.tensor(l, frame)? {
                TVal::Port(p) => Ok(p),
                TVal::Tuple(_) => err(l.span, "a tensor literal holds scalars"),
            })
            .collect::<LResult<_>>()?;
        let consts: Option<Vec<Scalar>> = ports.iter().map(|p| self.fold_scalar(*p)).collect();
        if let Some(vals) = consts {
            let mut t = Tensor::zeros(dtype, &shape).map_err(|x| LowerError {
                message: x.to_string(),
                span: e.span,
            })?;
            for (i, v) in vals.into_iter().enumerate() {
                t.set(i, v);
            }
            return Ok(TVal::Port(self.constant(t)));
        }
        // Computed elements: select on the linear index.
        let strides = flow_runtime::tensor::row_major_strides(&shape);
        let mut lin = ScalarExpr::Const(Scalar::I64(0));
        for (k, s) in strides.iter().enumerate() {
            let term = ScalarExpr::binary(
                ir::BinOp::Mul,
                ScalarExpr::Index(k as u32),
                ScalarExpr::Const(Scalar::I64(*s as i64)),
            );
            lin = ScalarExpr::binary(ir::BinOp::Add, lin, term);
        }
        let mut reads = Vec::new();
        let mut body = ScalarExpr::Const(Scalar::F32(0.0).cast(dtype));
        for (i, p) in ports.iter().enumerate().rev() {
            let r = ScalarExpr::Read(reads.len() as u32);
            reads.push(Read {
                node: p.node,
                port: p.port,
                proj: Vec::new(),
                edge: ir::Edge::Strict,
            });
            let cond = ScalarExpr::binary(
                ir::BinOp::Eq,
                lin.clone(),
                ScalarExpr::Const(Scalar::I64(i as i64)),
            );
            body = ScalarExpr::select(cond, r, body);
        }
        let node = self.add(
            NodeKind::Map {
                space: shape.clone(),
                reads,
                body: vec![body],
            },
            vec![TensorTy::new(dtype, shape)],
            "",
        );
        Ok(TVal::Port(Port { node, port: 0 }))
    }

    /// Builds a `Reduce` node for reduction `e` whose free space is the point's variables.
    fn reduce_node(
        &mut self,
        e: &'p hir::Expr,
        frame: &mut Frame<'p>,
        outer: &mut Point,
    ) -> LResult<TVal> {
        let H::Reduce {
            monoid,
            indices,
            args,
        } = &e.kind
        else {
            return err(e.span, "internal error: not a reduction");
        };
        let mut point = Point {
            reads: Vec::new(),
            extents: outer.extents.clone(),
            vars: outer.vars.clone(),
        };
        let space = outer.extents.clone();
        let mut red = Vec::new();
        for ix in indices {
            let n = self.dim(&frame.body.index_var(*ix).range, frame, e.span)?;
            point.vars.insert(*ix, point.extents.len() as u32);
            point.extents.push(n);
            red.push(n);
        }
        let mut xs = Vec::new();
        for a in args {
            xs.push(self.point(a, frame, &mut point)?);
        }
        let (mref, outputs) = match monoid {
            hir::MonoidRef::Builtin(b) => {
                let d = self.expr_dtype(&xs[0], &point.reads)?;
                (
                    ir::MonoidRef::Builtin(*b),
                    vec![TensorTy::new(d, space.clone())],
                )
            }
            hir::MonoidRef::User(id) => {
                let mid = self.monoid(*id, e.span)?;
                let dts = self.graph.monoids[mid].result_dtypes().to_vec();
                (
                    ir::MonoidRef::User(mid),
                    dts.into_iter()
                        .map(|d| TensorTy::new(d, space.clone()))
                        .collect(),
                )
            }
        };
        let n_ports = outputs.len();
        let label = frame.label.clone();
        let node = self.add(
            NodeKind::Reduce {
                space,
                red,
                monoid: mref,
                reads: point.reads,
                args: xs,
            },
            outputs,
            &label,
        );
        if n_ports == 1 && !matches!(e.ty, Ty::Tuple(_)) {
            Ok(TVal::Port(Port { node, port: 0 }))
        } else {
            Ok(TVal::Tuple(
                (0..n_ports as u32)
                    .map(|port| TVal::Port(Port { node, port }))
                    .collect(),
            ))
        }
    }

    /// A user monoid in the graph (added once).
    fn monoid(&mut self, id: hir::MonoidId, span: Span) -> LResult<ir::MonoidId> {
        if let Some(m) = self.monoids.get(&id) {
            return Ok(*m);
        }
        let m = self.prog.monoid(id);
        let state = flat_dtypes(&m.state);
        let field_names = match &m.state {
            Ty::Tuple(fs) => fs.iter().map(|(n, _)| n.clone()).collect(),
            _ => vec![None],
        };
        let zero = match fold_hir(&m.zero.expr) {
            Some(v) => flatten_value(&v),
            None => {
                return err(
                    m.zero.expr.span,
                    format!("the zero of monoid `{}` must be a constant", m.name),
                )
            }
        };
        let wrap = match &m.wrap {
            Some(w) => {
                let params: Vec<DType> = w
                    .params
                    .iter()
                    .map(|p| w.body.local(*p).ty.dtype().unwrap_or(DType::F32))
                    .collect();
                let body = self.monoid_fn(w, span)?;
                Some(ir::Wrap { params, body })
            }
            None => None,
        };
        let combine = self.monoid_fn(&m.combine, span)?;
        let unwrap = match &m.unwrap {
            Some(u) => Some(ir::Unwrap {
                ports: flat_dtypes(&u.body.expr.ty),
                body: self.monoid_fn(u, span)?,
            }),
            None => None,
        };
        let mid = self.graph.add_monoid(ir::Monoid {
            name: m.name.clone(),
            state,
            field_names,
            zero,
            wrap,
            combine,
            unwrap,
            commutative: m.commutative,
        });
        self.monoids.insert(id, mid);
        Ok(mid)
    }

    fn monoid_fn(&mut self, f: &'p hir::MonoidFn, span: Span) -> LResult<ScalarExpr> {
        let mut frame = Frame {
            body: &f.body,
            locals: HashMap::new(),
            shapes: HashMap::new(),
            label: String::new(),
        };
        for (k, p) in f.params.iter().enumerate() {
            frame
                .locals
                .insert(*p, Bound::S(ScalarExpr::Param(k as u32)));
        }
        let mut point = Point {
            reads: Vec::new(),
            extents: Vec::new(),
            vars: HashMap::new(),
        };
        let e = self.point(&f.body.expr, &mut frame, &mut point)?;
        if !point.reads.is_empty() {
            return err(span, "a monoid's functions may not read tensors");
        }
        Ok(e)
    }

    // ---- point level ----

    /// Lowers a whole-tensor expression as its value at one point of a `rank`-dimensional
    /// space (identity projections; rank-0 operands broadcast).
    fn elementwise_point(
        &mut self,
        e: &'p hir::Expr,
        frame: &mut Frame<'p>,
        point: &mut Point,
        rank: usize,
    ) -> LResult<ScalarExpr> {
        let here = |this: &mut Self, x: &'p hir::Expr, frame: &mut Frame<'p>, point: &mut Point| {
            this.elementwise_point(x, frame, point, rank)
        };
        Ok(match &e.kind {
            H::Lit(s) => ScalarExpr::Const(*s),
            H::DimValue(d) => ScalarExpr::Const(Scalar::I64(self.dim(d, frame, e.span)? as i64)),
            H::Unary(op, a) => ScalarExpr::unary(unop(*op), here(self, a, frame, point)?),
            H::Binary(op, a, b) => {
                let (x, y) = (here(self, a, frame, point)?, here(self, b, frame, point)?);
                ScalarExpr::binary(binop(*op), x, y)
            }
            H::Cast(a, d) => ScalarExpr::cast(here(self, a, frame, point)?, *d),
            H::Builtin(b, xs) if is_pointwise_builtin(*b) => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(here(self, x, frame, point)?);
                }
                builtin_expr(*b, vs)
            }
            H::MapFn(f, xs) => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(here(self, x, frame, point)?);
                }
                self.inline_fn(*f, vs, point)?
            }
            H::Call(f, xs) if self.prog.func(*f).kind == hir::FuncKind::Fn => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(here(self, x, frame, point)?);
                }
                self.inline_fn(*f, vs, point)?
            }
            H::If {
                cond,
                then,
                els: Some(els),
            } => {
                let c = here(self, cond, frame, point)?;
                let t = here(self, then, frame, point)?;
                let f = here(self, els, frame, point)?;
                ScalarExpr::select(c, t, f)
            }
            H::Read { .. } | H::Reduce { .. } | H::IndexValue(_) => self.point(e, frame, point)?,
            H::Block(b) if b.stmts.is_empty() && b.tail.is_some() => {
                here(self, b.tail.as_ref().expect("tail"), frame, point)?
            }
            H::Local(id) if matches!(frame.locals.get(id), Some(Bound::S(_))) => {
                self.point(e, frame, point)?
            }
            _ => {
                // A tensor-level value: read it at this point.
                let v = self.tensor(e, frame)?;
                let TVal::Port(p) = v else {
                    return err(e.span, "internal error: tuple in an elementwise expression");
                };
                let r = self.ty(p).shape.len();
                let proj = if r == 0 {
                    Vec::new()
                } else if r == rank {
                    (0..r as u32).map(Affine::var).collect()
                } else {
                    return err(
                        e.span,
                        "internal error: rank mismatch in an elementwise expression",
                    );
                };
                point.read(p, proj, ir::Edge::Strict)
            }
        })
    }

    fn inline_fn(
        &mut self,
        f: hir::FuncId,
        args: Vec<ScalarExpr>,
        point: &mut Point,
    ) -> LResult<ScalarExpr> {
        let func = self.prog.func(f);
        let mut frame = Frame {
            body: &func.body,
            locals: HashMap::new(),
            shapes: HashMap::new(),
            label: func.name.clone(),
        };
        for (p, a) in func.params.iter().zip(args) {
            let a = self.share(a, local_uses(&func.body.expr, *p), point, &func.name)?;
            frame.locals.insert(*p, Bound::S(a));
        }
        self.point(&func.body.expr, &mut frame, point)
    }

    /// The value to bind a local to that stands for `v` and is used `uses` times: `v` itself
    /// when it is used once or is cheap to repeat, else `v` computed once, as a map over the
    /// point's space read back at the point (see note [Sharing per-point values]).
    fn share(
        &mut self,
        v: ScalarExpr,
        uses: usize,
        point: &mut Point,
        label: &str,
    ) -> LResult<ScalarExpr> {
        if uses <= 1 || cost(&v) <= DUPLICATE_COST || !computable_anywhere(&v) {
            return Ok(v);
        }
        let read_tys: Vec<DType> = point.reads.iter().map(|r| self.ty(r.src()).dtype).collect();
        let Some(dtype) = scalar_dtype(&v, &read_tys) else {
            // A tuple: substituted.
            return Ok(v);
        };
        let space = point.extents.clone();
        let mut node = Node {
            kind: NodeKind::Map {
                space: space.clone(),
                reads: point.reads.clone(),
                body: vec![v],
            },
            outputs: vec![TensorTy::new(dtype, space.clone())],
            label: label.to_string(),
            span: self.span,
        };
        node.prune_reads();
        let p = Port {
            node: self.graph.add(node),
            port: 0,
        };
        let identity = (0..space.len() as u32).map(Affine::var).collect();
        Ok(point.read(p, identity, ir::Edge::Strict))
    }

    /// Lowers an expression evaluated at one point of the current index space.
    fn point(
        &mut self,
        e: &'p hir::Expr,
        frame: &mut Frame<'p>,
        point: &mut Point,
    ) -> LResult<ScalarExpr> {
        let span = e.span;
        Ok(match &e.kind {
            H::Lit(s) => ScalarExpr::Const(*s),
            H::DimValue(d) => ScalarExpr::Const(Scalar::I64(self.dim(d, frame, span)? as i64)),
            H::IndexValue(ix) => match point.vars.get(ix) {
                Some(v) => ScalarExpr::Index(*v),
                None => return err(span, "internal error: index outside its comprehension"),
            },
            H::Local(id) => match frame.locals.get(id).cloned() {
                Some(Bound::S(s)) => s,
                Some(Bound::T(TVal::Port(p))) => {
                    if !self.ty(p).shape.is_empty() {
                        return err(span, "internal error: a whole tensor used as a scalar");
                    }
                    point.read(p, Vec::new(), ir::Edge::Strict)
                }
                Some(Bound::T(TVal::Tuple(vs))) => {
                    let mut items = Vec::new();
                    for v in vs {
                        let TVal::Port(p) = v else {
                            return err(span, "nested tuples are not supported here");
                        };
                        items.push(point.read(p, Vec::new(), ir::Edge::Strict));
                    }
                    ScalarExpr::Tuple(items)
                }
                None => return err(span, "internal error: unbound local"),
            },
            H::Unary(op, a) => ScalarExpr::unary(unop(*op), self.point(a, frame, point)?),
            H::Binary(op, a, b) => {
                let x = self.point(a, frame, point)?;
                let y = self.point(b, frame, point)?;
                ScalarExpr::binary(binop(*op), x, y)
            }
            H::Cast(a, d) => ScalarExpr::cast(self.point(a, frame, point)?, *d),
            H::Builtin(b, xs) if is_pointwise_builtin(*b) => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(self.point(x, frame, point)?);
                }
                builtin_expr(*b, vs)
            }
            H::Call(f, xs) if self.prog.func(*f).kind == hir::FuncKind::Fn => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(self.point(x, frame, point)?);
                }
                self.inline_fn(*f, vs, point)?
            }
            H::Tuple(xs) => {
                let mut vs = Vec::new();
                for x in xs {
                    vs.push(self.point(x, frame, point)?);
                }
                ScalarExpr::Tuple(vs)
            }
            H::Field(x, i) => ScalarExpr::field(self.point(x, frame, point)?, *i as u32),
            H::If { cond, then, els } => {
                let c = self.point(cond, frame, point)?;
                let t = self.point(then, frame, point)?;
                let f = match els {
                    Some(x) => self.point(x, frame, point)?,
                    None => return err(span, "an `if` in an operation needs an `else`"),
                };
                ScalarExpr::select(c, t, f)
            }
            H::Block(b) => {
                for s in &b.stmts {
                    match s {
                        hir::Stmt::Let { local, value } => {
                            let v = self.point(value, frame, point)?;
                            let uses = local_uses(&frame.body.expr, *local);
                            let v = self.share(v, uses, point, &frame.label)?;
                            frame.locals.insert(*local, Bound::S(v));
                        }
                        hir::Stmt::Expr(_) => {}
                        _ => return err(span, "internal error: statement in an operation"),
                    }
                }
                match &b.tail {
                    Some(t) => self.point(t, frame, point)?,
                    None => return err(span, "internal error: empty block in an operation"),
                }
            }
            H::Read {
                tensor,
                index,
                edge,
            } => {
                let t = self.tensor(tensor, frame)?;
                let TVal::Port(p) = t else {
                    return err(span, "cannot index a tuple");
                };
                let shape = self.ty(p).shape.clone();
                let mut proj = Vec::new();
                for a in index {
                    let konst = eval_dim(&a.konst, &frame.shapes).ok_or_else(|| LowerError {
                        message: format!("internal error: unbound shape in `{}`", a.konst),
                        span,
                    })?;
                    let mut coeffs = Vec::new();
                    for (ix, c) in &a.coeffs {
                        let Some(v) = point.vars.get(ix) else {
                            return err(span, "internal error: index outside its comprehension");
                        };
                        coeffs.push((*v, *c));
                    }
                    proj.push(Affine { konst, coeffs });
                }
                let edge = match edge {
                    hir::Edge::Strict => {
                        check_in_bounds(&proj, &shape, &point.extents, tensor, span)?;
                        ir::Edge::Strict
                    }
                    hir::Edge::Clamp => {
                        if shape.contains(&0) {
                            return err(
                                span,
                                "`clamp_edge` of an empty tensor has no edge to repeat",
                            );
                        }
                        ir::Edge::Clamp
                    }
                    hir::Edge::Pad(v) => {
                        let s = fold_hir(v).and_then(|v| match v {
                            FoldVal::S(s) => Some(s),
                            FoldVal::T(_) => None,
                        });
                        match s {
                            Some(s) => ir::Edge::Pad(s.cast(self.ty(p).dtype)),
                            None => return err(v.span, "the padding value must be a constant"),
                        }
                    }
                };
                point.read(p, proj, edge)
            }
            H::Reduce { .. } => {
                let v = self.reduce_node(e, frame, point)?;
                let identity: Vec<Affine> =
                    (0..point.extents.len() as u32).map(Affine::var).collect();
                let read =
                    |p: Port, point: &mut Point| point.read(p, identity.clone(), ir::Edge::Strict);
                match v {
                    TVal::Port(p) => read(p, point),
                    TVal::Tuple(vs) => {
                        let mut items = Vec::new();
                        for v in vs {
                            let TVal::Port(p) = v else {
                                return err(span, "nested tuples are not supported here");
                            };
                            items.push(read(p, point));
                        }
                        ScalarExpr::Tuple(items)
                    }
                }
            }
            _ => {
                // A tensor-level scalar (an op call returning a scalar, say): read it.
                let v = self.tensor(e, frame)?;
                match v {
                    TVal::Port(p) if self.ty(p).shape.is_empty() => {
                        point.read(p, Vec::new(), ir::Edge::Strict)
                    }
                    _ => {
                        return err(
                            span,
                            "a whole tensor cannot be used as one element; index it",
                        )
                    }
                }
            }
        })
    }
}

use crate::mir::ir::NodeId;

fn check_in_bounds(
    proj: &[Affine],
    shape: &[usize],
    extents: &[usize],
    tensor: &hir::Expr,
    span: Span,
) -> LResult<()> {
    if extents.contains(&0) {
        return Ok(());
    }
    for (axis, (a, n)) in proj.iter().zip(shape).enumerate() {
        let (lo, hi) = crate::mir::verify::affine_range(a, extents);
        if lo < 0 || hi >= *n as i128 {
            return err(
                span,
                format!(
                    "read outside the tensor: axis {axis} of `{}` (shape {}) is read at indices {lo}..={hi}",
                    tensor.ty,
                    flow_runtime::format_shape(shape)
                ),
            );
        }
    }
    Ok(())
}

pub fn eval_dim(d: &Dim, shapes: &HashMap<String, i64>) -> Option<i64> {
    let mut v = d.konst;
    for (name, c) in &d.terms {
        v = v.checked_add(shapes.get(name)?.checked_mul(*c)?)?;
    }
    Some(v)
}

fn collect_lit<'e>(
    e: &'e hir::Expr,
    leaves: &mut Vec<&'e hir::Expr>,
    shape: &mut Vec<usize>,
    depth: usize,
) {
    match &e.kind {
        H::TensorLit(xs) => {
            if shape.len() == depth {
                shape.push(xs.len());
            }
            for x in xs {
                collect_lit(x, leaves, shape, depth + 1);
            }
        }
        _ => leaves.push(e),
    }
}

fn flat_dtypes(t: &Ty) -> Vec<DType> {
    match t {
        Ty::Scalar(d) => vec![*d],
        Ty::Tuple(fs) => fs.iter().flat_map(|(_, t)| flat_dtypes(t)).collect(),
        _ => Vec::new(),
    }
}

/// A constant folded from HIR.
#[derive(Clone, Debug)]
enum FoldVal {
    S(Scalar),
    T(Vec<FoldVal>),
}

fn flatten_value(v: &FoldVal) -> Vec<Scalar> {
    match v {
        FoldVal::S(s) => vec![*s],
        FoldVal::T(vs) => vs.iter().flat_map(flatten_value).collect(),
    }
}

fn fold_hir(e: &hir::Expr) -> Option<FoldVal> {
    Some(match &e.kind {
        H::Lit(s) => FoldVal::S(*s),
        H::Tuple(xs) => FoldVal::T(xs.iter().map(fold_hir).collect::<Option<_>>()?),
        H::Unary(op, a) => match fold_hir(a)? {
            FoldVal::S(s) => FoldVal::S(crate::base::ops::unary(unop(*op), s).ok()?),
            FoldVal::T(_) => return None,
        },
        H::Cast(a, d) => match fold_hir(a)? {
            FoldVal::S(s) => FoldVal::S(s.cast(*d)),
            FoldVal::T(_) => return None,
        },
        H::Binary(op, a, b) => match (fold_hir(a)?, fold_hir(b)?) {
            (FoldVal::S(x), FoldVal::S(y)) => {
                FoldVal::S(crate::base::ops::binary(binop(*op), x, y).ok()?)
            }
            _ => return None,
        },
        H::Block(b) if b.stmts.is_empty() => fold_hir(b.tail.as_ref()?)?,
        _ => return None,
    })
}

fn fold_expr(e: &ScalarExpr, reads: &[Scalar]) -> Option<Scalar> {
    Some(match e {
        ScalarExpr::Const(s) => *s,
        ScalarExpr::Read(k) => *reads.get(*k as usize)?,
        ScalarExpr::Unary(op, a) => crate::base::ops::unary(*op, fold_expr(a, reads)?).ok()?,
        ScalarExpr::Binary(op, a, b) => {
            crate::base::ops::binary(*op, fold_expr(a, reads)?, fold_expr(b, reads)?).ok()?
        }
        ScalarExpr::Cast(a, d) => fold_expr(a, reads)?.cast(*d),
        _ => return None,
    })
}

/// The element type of a scalar expression whose reads have the given types.
fn scalar_dtype(e: &ScalarExpr, reads: &[DType]) -> Option<DType> {
    use ir::BinOp as B;
    Some(match e {
        ScalarExpr::Const(s) => s.dtype(),
        ScalarExpr::Index(_) => DType::I64,
        ScalarExpr::Read(k) => *reads.get(*k as usize)?,
        ScalarExpr::Param(_) => return None,
        ScalarExpr::Unary(_, a) => scalar_dtype(a, reads)?,
        ScalarExpr::Binary(op, a, _) => match op {
            B::Eq | B::Ne | B::Lt | B::Le | B::Gt | B::Ge | B::And | B::Or => DType::Bool,
            _ => scalar_dtype(a, reads)?,
        },
        ScalarExpr::Cast(_, d) => *d,
        ScalarExpr::Call(_, a) => scalar_dtype(a, reads)?,
        ScalarExpr::Select(_, a, _) => scalar_dtype(a, reads)?,
        ScalarExpr::Tuple(_) => return None,
        ScalarExpr::Field(a, k) => field_dtype(a, *k, reads)?,
    })
}

/// The type of field `k` of a tuple-valued expression: a tuple built on the spot, or an
/// `if` (a select) between tuples, as a scalar `fn` with a tuple result gives.
fn field_dtype(e: &ScalarExpr, k: u32, reads: &[DType]) -> Option<DType> {
    match e {
        ScalarExpr::Tuple(xs) => scalar_dtype(xs.get(k as usize)?, reads),
        ScalarExpr::Select(_, a, _) => field_dtype(a, k, reads),
        _ => None,
    }
}

/// How many times local `id` is named in `e`.
fn local_uses(e: &hir::Expr, id: hir::LocalId) -> usize {
    let mut n = 0;
    let mut todo = vec![e];
    while let Some(x) = todo.pop() {
        if matches!(x.kind, H::Local(l) if l == id) {
            n += 1;
        }
        hir::dump::children(x, &mut todo);
    }
    n
}

/// Whether `e` may be computed at every point of its space, whatever branch it sits in: it
/// cannot fail (no integer division, which a `select` arm not taken must not raise) and
/// needs no monoid parameter (a monoid function has no space).
fn computable_anywhere(e: &ScalarExpr) -> bool {
    match e {
        ScalarExpr::Param(_) => false,
        ScalarExpr::Binary(ir::BinOp::Div | ir::BinOp::Rem, _, _) => false,
        ScalarExpr::Const(_) | ScalarExpr::Index(_) | ScalarExpr::Read(_) => true,
        ScalarExpr::Unary(_, a)
        | ScalarExpr::Cast(a, _)
        | ScalarExpr::Field(a, _)
        | ScalarExpr::Call(_, a) => computable_anywhere(a),
        ScalarExpr::Binary(_, a, b) => computable_anywhere(a) && computable_anywhere(b),
        ScalarExpr::Select(c, a, b) => [c, a, b].iter().all(|x| computable_anywhere(x)),
        ScalarExpr::Tuple(xs) => xs.iter().all(computable_anywhere),
    }
}

fn is_pointwise_builtin(b: hir::Builtin) -> bool {
    matches!(
        b,
        hir::Builtin::Math(_)
            | hir::Builtin::Max
            | hir::Builtin::Min
            | hir::Builtin::Pow
            | hir::Builtin::Select
    )
}

fn builtin_expr(b: hir::Builtin, mut xs: Vec<ScalarExpr>) -> ScalarExpr {
    match b {
        hir::Builtin::Math(m) => ScalarExpr::call(m, xs.remove(0)),
        hir::Builtin::Max | hir::Builtin::Min | hir::Builtin::Pow => {
            let op = builtin_binop(b).expect("a binary built-in");
            let y = xs.pop().expect("two");
            ScalarExpr::binary(op, xs.pop().expect("two"), y)
        }
        _ => {
            let f = xs.pop().expect("three");
            let t = xs.pop().expect("three");
            ScalarExpr::select(xs.pop().expect("three"), t, f)
        }
    }
}

// Note [Sharing per-point values]: a `let` in a `fn` body, or an inlined `fn`'s parameter, is
// a per-point value bound to a scalar expression. Substituting that expression into every use
// is free when it is small, but nested `fn`s each using a local twice grow exponentially (a
// palette reduction once lowered to 760 KB of MIR). So a value used more than once that costs
// more than `DUPLICATE_COST` operations is computed once, as a map over the point's whole
// space (free and reduced indices) read back at the point: the graph stays linear in the
// program's size, and fusion (which recomputes only cheap producers) keeps it shared. The
// values are the same bits either way. Only values that cannot fail are shared this way:
// inside an `if` arm not taken, an integer division must not be evaluated.
