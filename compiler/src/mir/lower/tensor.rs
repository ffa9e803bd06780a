//! Tensor-level lowering: blocks, op calls, random tensors, tensor literals, reductions and
//! monoids become nodes of the graph; constant folding of the sizes and seeds the graph needs
//! when it is built.

use super::margs::{bind_values, instance_name};
use super::*;

impl<'p> Lowerer<'p> {
    /// Lowers `e`; the nodes made for it carry its span.
    pub(super) fn tensor(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<TVal> {
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
                    err(span, Kind::Internal("local not bound at tensor level"))
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
                        _ => return err(span, Kind::Internal("statement in an operation")),
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
                _ => err(span, Kind::Internal("field of a non-tuple")),
            },
            H::Diff(d) => {
                let vals = d
                    .args
                    .iter()
                    .map(|a| self.tensor(a, frame))
                    .collect::<LResult<Vec<_>>>()?;
                self.diff(d, vals, span)
            }
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
                if let Ty::Tuple(fields) = &e.ty {
                    return self.tuple_maps(space, point.reads, s, fields.len(), &frame.label);
                }
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
                let shape =
                    self.const_shape(&args[1], DType::F32, Kind::CreateRandom, frame, span)?;
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
            H::Builtin(
                b @ (hir::Builtin::Iota | hir::Builtin::Zeros | hir::Builtin::Full),
                args,
            ) => self.generated(*b, args, &e.ty, frame, span).map(TVal::Port),
            H::Builtin(
                b @ (hir::Builtin::Scan(_)
                | hir::Builtin::ScanExcl(_)
                | hir::Builtin::ReduceByIndex(_)
                | hir::Builtin::Scatter),
                args,
            ) => self.prim_node(e, *b, args, frame),
            // What the coordinator computed on the runtime's primitives (`filter`, `sort`, …)
            // is a constant of the graph, like an `eval`.
            H::Builtin(b, _) if b.is_prim() => match self.forced.get(&(e as *const _)) {
                Some(v) => Ok(v.clone()),
                None => err(
                    span,
                    Kind::Internal("a primitive's result was not computed"),
                ),
            },
            // A value the coordinator computed is a constant: it may size a tensor
            // (`rand_uniform(0, [eval(count(x))])`).
            H::Builtin(hir::Builtin::Eval, args) => match self.forced.get(&(e as *const _)) {
                Some(v) => Ok(v.clone()),
                None => self.tensor(&args[0], frame),
            },
            // `map(f, x)` with an `fn` whose result is a tuple: a tensor of tuples, one map
            // per field over `x`'s shape (as a comprehension with a tuple body).
            H::MapFn(..) if matches!(&e.ty, Ty::Tuple(fs) if fs.iter().all(|f| matches!(f.1, Ty::Tensor(..)))) =>
            {
                let Ty::Tuple(fields) = &e.ty else {
                    return err(span, Kind::Internal("a map to tuples without a tuple type"));
                };
                self.bind_random_dims(e, frame)?;
                let mut shape = Vec::new();
                for d in fields[0].1.dims() {
                    shape.push(self.dim(d, frame, span)?);
                }
                let mut point = Point {
                    reads: Vec::new(),
                    extents: shape.clone(),
                    vars: HashMap::new(),
                };
                let s = self.elementwise_point(e, frame, &mut point, shape.len())?;
                self.tuple_maps(shape, point.reads, s, fields.len(), &frame.label)
            }
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
                    other => return err(span, Kind::NotTensorLevel(other.clone())),
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

    /// A tensor of tuples (a comprehension whose body is a tuple of scalars): one map per
    /// field over the same space, each reading only what its field needs — so every field
    /// is a plain dense tensor, and later passes see nothing new (struct of arrays).
    fn tuple_maps(
        &mut self,
        space: Vec<usize>,
        reads: Vec<Read>,
        body: ScalarExpr,
        n_fields: usize,
        label: &str,
    ) -> LResult<TVal> {
        let mut out = Vec::new();
        for k in 0..n_fields {
            let field = ScalarExpr::field(body.clone(), k as u32);
            let p = self.map_node(space.clone(), reads.clone(), field, label)?;
            self.graph.nodes[p.node].prune_reads();
            out.push(TVal::Port(p));
        }
        Ok(TVal::Tuple(out))
    }

    /// Binds the shape variables of `ty` to the shapes of the computed value `v` (a tensor,
    /// or a tuple of them: a tensor of tuples from `filter`, say).
    fn bind_forced_dims(&self, ty: &Ty, v: &TVal, frame: &mut Frame<'p>) {
        match (ty, v) {
            (Ty::Tensor(_, dims), TVal::Port(p)) => {
                let shape = self.ty(*p).shape.clone();
                for (d, n) in dims.iter().zip(shape) {
                    if let Some(var) = d.as_var() {
                        frame.shapes.entry(var.to_string()).or_insert(n as i64);
                    }
                }
            }
            (Ty::Tuple(fs), TVal::Tuple(vs)) => {
                for ((_, t), v) in fs.iter().zip(vs) {
                    self.bind_forced_dims(t, v, frame);
                }
            }
            _ => {}
        }
    }

    /// Binds the shape variables that stand for the sizes of random tensors inside an
    /// elementwise expression (`rand_uniform(0, [n]) as i64` with `n` a coordinator value:
    /// the checker names that size `D`, and only its value here says what `D` is).
    pub(super) fn bind_random_dims(
        &mut self,
        e: &'p hir::Expr,
        frame: &mut Frame<'p>,
    ) -> LResult<()> {
        match &e.kind {
            H::Builtin(hir::Builtin::RandUniform | hir::Builtin::RandNormal, args) => {
                self.bind_dims(&e.ty, &args[1], frame)?;
            }
            H::Builtin(hir::Builtin::Iota | hir::Builtin::Zeros | hir::Builtin::Full, args) => {
                self.bind_dims(&e.ty, &args[0], frame)?;
            }
            H::Builtin(hir::Builtin::ReduceByIndex(_), args) => {
                // The bins' count names the result's first dimension (every field's, for a
                // tensor of tuples).
                let first = match &e.ty {
                    Ty::Tuple(fs) => fs.first().map(|f| &f.1),
                    t => Some(t),
                };
                if let Some(Ty::Tensor(_, dims)) = first {
                    if let Some(var) = dims.first().and_then(|d| d.as_var()) {
                        if !frame.shapes.contains_key(var) {
                            let n = self.const_i64(&args[0], frame)?;
                            frame.shapes.insert(var.to_string(), n);
                        }
                    }
                }
            }
            H::Builtin(b, _) if b.is_prim() => {
                if let Some(v) = self.forced.get(&(e as *const _)).cloned() {
                    self.bind_forced_dims(&e.ty, &v, frame);
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

    /// Binds the shape variables of `ty`'s dimensions to the sizes of the tuple `sizes`.
    fn bind_dims(&mut self, ty: &Ty, sizes: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<()> {
        let (Ty::Tensor(_, dims), H::Tuple(sizes)) = (ty, &sizes.kind) else {
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
        Ok(())
    }

    /// The sizes of the tuple `sizes`, known when the graph is built, checked for a tensor
    /// of `dtype`.
    fn const_shape(
        &mut self,
        sizes: &'p hir::Expr,
        dtype: DType,
        refused: fn(String) -> Kind,
        frame: &mut Frame<'p>,
        span: Span,
    ) -> LResult<Vec<usize>> {
        let H::Tuple(sizes) = &sizes.kind else {
            return err(span, Kind::Internal("a shape that is not a tuple of sizes"));
        };
        let mut shape = Vec::new();
        for s in sizes {
            let n = self.const_i64(s, frame)?;
            if n < 0 {
                return err(s.span, Kind::NegativeSize(n));
            }
            shape.push(n as usize);
        }
        if let Err(e) = flow_runtime::tensor::checked_size(dtype, &shape) {
            return err(span, refused(e.to_string()));
        }
        Ok(shape)
    }

    /// `iota(n)`, `zeros([…])`, `full([…], v)`: a map over the shape whose element is its
    /// index, zero or `v`.
    fn generated(
        &mut self,
        b: hir::Builtin,
        args: &'p [hir::Expr],
        ty: &Ty,
        frame: &mut Frame<'p>,
        span: Span,
    ) -> LResult<Port> {
        let Some(dtype) = ty.dtype() else {
            return err(
                span,
                Kind::Internal("a generated tensor without an element type"),
            );
        };
        let shape = self.const_shape(&args[0], dtype, Kind::CreateTensor, frame, span)?;
        let mut point = Point {
            reads: Vec::new(),
            extents: shape.clone(),
            vars: HashMap::new(),
        };
        let body = match b {
            hir::Builtin::Iota => ScalarExpr::Index(0),
            hir::Builtin::Zeros => ScalarExpr::Const(Scalar::I64(0).cast(dtype)),
            _ => self.elementwise_point(&args[1], frame, &mut point, shape.len())?,
        };
        self.map_node(shape, point.reads, body, &frame.label)
    }

    pub(super) fn const_i64(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<i64> {
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
        err(e.span, Kind::NotStatic)
    }

    /// Evaluates a rank-0 map over constants (e.g. `1 << 22`), when it is one.
    pub(super) fn fold_scalar(&self, p: Port) -> Option<Scalar> {
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

    pub(super) fn tensor_lit(&mut self, e: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<TVal> {
        let mut leaves = Vec::new();
        let mut shape = Vec::new();
        collect_lit(e, &mut leaves, &mut shape, 0);
        let dtype = e.ty.dtype().unwrap_or(DType::F32);
        let ports: Vec<Port> = leaves
            .iter()
            .map(|l| match self.tensor(l, frame)? {
                TVal::Port(p) => Ok(p),
                TVal::Tuple(_) => err(l.span, Kind::LiteralOfTuples),
            })
            .collect::<LResult<_>>()?;
        let consts: Option<Vec<Scalar>> = ports.iter().map(|p| self.fold_scalar(*p)).collect();
        if let Some(vals) = consts {
            let mut t = Tensor::zeros(dtype, &shape)
                .map_err(|x| LowerError::new(Kind::Create(x.to_string()), e.span))?;
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
    pub(super) fn reduce_node(
        &mut self,
        e: &'p hir::Expr,
        frame: &mut Frame<'p>,
        outer: &mut Point,
    ) -> LResult<TVal> {
        let H::Reduce {
            monoid,
            indices,
            args,
            margs,
        } = &e.kind
        else {
            return err(e.span, Kind::Internal("not a reduction"));
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
                let values = self.margs_in_point(*id, margs, frame, &point)?;
                let mid = self.monoid_with(*id, &values, e.span)?;
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

    /// A user monoid without parameters in the graph (added once).
    pub(super) fn monoid(&mut self, id: hir::MonoidId, span: Span) -> LResult<ir::MonoidId> {
        self.monoid_with(id, &[], span)
    }

    /// A user monoid in the graph with its parameters bound to `values` (added once per
    /// distinct values): every member reads them as constants, so `ModSum(3)` and
    /// `ModSum(5)` are two monoids of the graph, each compiled with its own constant.
    pub(super) fn monoid_with(
        &mut self,
        id: hir::MonoidId,
        values: &[Scalar],
        span: Span,
    ) -> LResult<ir::MonoidId> {
        let key = (
            id,
            values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>(),
        );
        if let Some(m) = self.monoids.get(&key) {
            return Ok(*m);
        }
        let m = self.prog.monoid(id);
        if values.len() != m.params.len() {
            return err(
                span,
                Kind::Internal("a monoid's arguments do not match its parameters"),
            );
        }
        let state = flat_dtypes(&m.state);
        let field_names = match &m.state {
            Ty::Tuple(fs) => fs.iter().map(|(n, _)| n.clone()).collect(),
            _ => vec![None],
        };
        let zero = match self.fold_zero(m, values) {
            Some(v) => v,
            None => {
                return err(
                    m.zero.expr.span,
                    Kind::MonoidZero {
                        monoid: m.name.clone(),
                    },
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
                let body = self.monoid_fn(w, values, span)?;
                Some(ir::Wrap { params, body })
            }
            None => None,
        };
        let combine = self.monoid_fn(&m.combine, values, span)?;
        let unwrap = match &m.unwrap {
            Some(u) => Some(ir::Unwrap {
                ports: flat_dtypes(&u.body.expr.ty),
                body: self.monoid_fn(u, values, span)?,
            }),
            None => None,
        };
        let d_combine = match &m.d_combine {
            Some(d) => Some(self.monoid_fn(d, values, span)?),
            None => None,
        };
        let mid = self.graph.add_monoid(ir::Monoid {
            name: instance_name(m, values),
            state,
            field_names,
            zero,
            wrap,
            combine,
            unwrap,
            commutative: m.commutative,
            d_combine,
        });
        self.monoids.insert(key, mid);
        Ok(mid)
    }

    /// A monoid member as a scalar expression: its own parameters are `Param(k)`, the
    /// monoid's parameters (its first locals) the constants `values`.
    pub(super) fn monoid_fn(
        &mut self,
        f: &'p hir::MonoidFn,
        values: &[Scalar],
        span: Span,
    ) -> LResult<ScalarExpr> {
        let mut frame = Frame {
            body: &f.body,
            locals: HashMap::new(),
            shapes: HashMap::new(),
            label: String::new(),
        };
        bind_values(&mut frame, values);
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
            return err(span, Kind::MonoidReadsTensor);
        }
        Ok(e)
    }
}

pub(super) fn collect_lit<'e>(
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

pub(super) fn flat_dtypes(t: &Ty) -> Vec<DType> {
    match t {
        Ty::Scalar(d) => vec![*d],
        Ty::Tuple(fs) => fs.iter().flat_map(|(_, t)| flat_dtypes(t)).collect(),
        _ => Vec::new(),
    }
}

/// A constant folded from HIR.
#[derive(Clone, Debug)]
pub(super) enum FoldVal {
    S(Scalar),
    T(Vec<FoldVal>),
}

pub(super) fn flatten_value(v: &FoldVal) -> Vec<Scalar> {
    match v {
        FoldVal::S(s) => vec![*s],
        FoldVal::T(vs) => vs.iter().flat_map(flatten_value).collect(),
    }
}

pub(super) fn fold_hir(e: &hir::Expr) -> Option<FoldVal> {
    Some(match &e.kind {
        H::Lit(s) => FoldVal::S(*s),
        H::Tuple(xs) => FoldVal::T(xs.iter().map(fold_hir).collect::<Option<_>>()?),
        H::Unary(op, a) => match fold_hir(a)? {
            FoldVal::S(s) => FoldVal::S(crate::base::ops::unary(*op, s).ok()?),
            FoldVal::T(_) => return None,
        },
        H::Cast(a, d) => match fold_hir(a)? {
            FoldVal::S(s) => FoldVal::S(s.cast(*d)),
            FoldVal::T(_) => return None,
        },
        H::Binary(op, a, b) => match (fold_hir(a)?, fold_hir(b)?) {
            (FoldVal::S(x), FoldVal::S(y)) => FoldVal::S(crate::base::ops::binary(*op, x, y).ok()?),
            _ => return None,
        },
        H::Block(b) if b.stmts.is_empty() => fold_hir(b.tail.as_ref()?)?,
        _ => return None,
    })
}

pub(super) fn fold_expr(e: &ScalarExpr, reads: &[Scalar]) -> Option<Scalar> {
    Some(match e {
        ScalarExpr::Const(s) => *s,
        ScalarExpr::Read(k) => *reads.get(*k as usize)?,
        ScalarExpr::Unary(op, a) => crate::base::ops::unary(*op, fold_expr(a, reads)?).ok()?,
        ScalarExpr::Binary(op, a, b) => {
            crate::base::ops::binary(*op, fold_expr(a, reads)?, fold_expr(b, reads)?).ok()?
        }
        ScalarExpr::Cast(a, d) => fold_expr(a, reads)?.cast(*d),
        ScalarExpr::Call(m, a) => crate::base::ops::math(*m, fold_expr(a, reads)?).ok()?,
        ScalarExpr::Select(c, a, b) => match fold_expr(c, reads)? {
            Scalar::Bool(true) => fold_expr(a, reads)?,
            Scalar::Bool(false) => fold_expr(b, reads)?,
            _ => return None,
        },
        _ => return None,
    })
}
