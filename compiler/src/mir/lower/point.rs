//! Point-level lowering: the body of a comprehension or reduction becomes the `ScalarExpr` of
//! its value at one point, with the tensor reads it makes; inlined `fn`s and shared per-point
//! values (see Note [Sharing per-point values]).

use super::*;

impl<'p> Lowerer<'p> {
    /// Lowers a whole-tensor expression as its value at one point of a `rank`-dimensional
    /// space (identity projections; rank-0 operands broadcast).
    pub(super) fn elementwise_point(
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
            H::Unary(op, a) => ScalarExpr::unary(*op, here(self, a, frame, point)?),
            H::Binary(op, a, b) => {
                let (x, y) = (here(self, a, frame, point)?, here(self, b, frame, point)?);
                ScalarExpr::binary(*op, x, y)
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
            H::Read { .. } | H::Gather { .. } | H::Reduce { .. } | H::IndexValue(_) => {
                self.point(e, frame, point)?
            }
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
                    return err(e.span, Kind::Internal("tuple in an elementwise expression"));
                };
                let r = self.ty(p).shape.len();
                let proj = if r == 0 {
                    Vec::new()
                } else if r == rank {
                    (0..r as u32).map(Affine::var).collect()
                } else {
                    return err(
                        e.span,
                        Kind::Internal("rank mismatch in an elementwise expression"),
                    );
                };
                point.read(p, proj, ir::Edge::Strict)
            }
        })
    }

    pub(super) fn inline_fn(
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
    pub(super) fn share(
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
    pub(super) fn point(
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
                None => return err(span, Kind::Internal("index outside its comprehension")),
            },
            H::Local(id) => match frame.locals.get(id).cloned() {
                Some(Bound::S(s)) => s,
                Some(Bound::T(TVal::Port(p))) => {
                    if !self.ty(p).shape.is_empty() {
                        return err(span, Kind::Internal("a whole tensor used as a scalar"));
                    }
                    point.read(p, Vec::new(), ir::Edge::Strict)
                }
                Some(Bound::T(TVal::Tuple(vs))) => {
                    let mut items = Vec::new();
                    for v in vs {
                        let TVal::Port(p) = v else {
                            return err(span, Kind::NestedTuple);
                        };
                        items.push(point.read(p, Vec::new(), ir::Edge::Strict));
                    }
                    ScalarExpr::Tuple(items)
                }
                None => return err(span, Kind::Internal("unbound local")),
            },
            H::Unary(op, a) => ScalarExpr::unary(*op, self.point(a, frame, point)?),
            H::Binary(op, a, b) => {
                let x = self.point(a, frame, point)?;
                let y = self.point(b, frame, point)?;
                ScalarExpr::binary(*op, x, y)
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
            H::Diff(d) => {
                let mut vs = Vec::new();
                for x in &d.args {
                    vs.push(self.point(x, frame, point)?);
                }
                self.diff_at_point(d, vs, point, span)?
            }
            H::Field(x, i) => ScalarExpr::field(self.point(x, frame, point)?, *i as u32),
            H::If { cond, then, els } => {
                let c = self.point(cond, frame, point)?;
                let t = self.point(then, frame, point)?;
                let f = match els {
                    Some(x) => self.point(x, frame, point)?,
                    None => return err(span, Kind::IfWithoutElse),
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
                        _ => return err(span, Kind::Internal("statement in an operation")),
                    }
                }
                match &b.tail {
                    Some(t) => self.point(t, frame, point)?,
                    None => return err(span, Kind::Internal("empty block in an operation")),
                }
            }
            H::Read {
                tensor,
                index,
                edge,
            } => {
                let t = self.tensor(tensor, frame)?;
                let TVal::Port(p) = t else {
                    return err(span, Kind::IndexTuple);
                };
                let shape = self.ty(p).shape.clone();
                let mut proj = Vec::new();
                for a in index {
                    let konst = eval_dim(&a.konst, &frame.shapes).ok_or_else(|| {
                        LowerError::new(Kind::UnboundIndexShape(a.konst.clone()), span)
                    })?;
                    let mut coeffs = Vec::new();
                    for (ix, c) in &a.coeffs {
                        let Some(v) = point.vars.get(ix) else {
                            return err(span, Kind::Internal("index outside its comprehension"));
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
                            return err(span, Kind::ClampEmpty);
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
                            None => return err(v.span, Kind::PaddingNotConstant),
                        }
                    }
                };
                point.read(p, proj, edge)
            }
            H::Gather { tensor, index } => {
                let t = self.tensor(tensor, frame)?;
                let TVal::Port(p) = t else {
                    return err(span, Kind::IndexTuple);
                };
                let mut coords = Vec::with_capacity(index.len());
                for x in index {
                    coords.push(self.point(x, frame, point)?);
                }
                // An unnamed table takes the name it has here, for the error that names it.
                if let H::Local(id) = tensor.kind {
                    let n = &mut self.graph.nodes[p.node];
                    if n.label.is_empty() {
                        n.label = frame.body.local(id).name.clone();
                    }
                }
                // The table: the whole tensor, a projection of constant zeros.
                let zeros = vec![Affine::konst(0); self.ty(p).shape.len()];
                let ScalarExpr::Read(k) = point.read(p, zeros, ir::Edge::Strict) else {
                    return err(span, Kind::Internal("a read that is not a read"));
                };
                ScalarExpr::Gather(k, coords)
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
                                return err(span, Kind::NestedTuple);
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
                    _ => return err(span, Kind::WholeTensor),
                }
            }
        })
    }
}

/// The element type of a scalar expression whose reads have the given types.
pub(super) fn scalar_dtype(e: &ScalarExpr, reads: &[DType]) -> Option<DType> {
    use ir::BinOp as B;
    Some(match e {
        ScalarExpr::Const(s) => s.dtype(),
        ScalarExpr::Index(_) => DType::I64,
        ScalarExpr::Read(k) | ScalarExpr::Gather(k, _) => *reads.get(*k as usize)?,
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
pub(super) fn field_dtype(e: &ScalarExpr, k: u32, reads: &[DType]) -> Option<DType> {
    match e {
        ScalarExpr::Tuple(xs) => scalar_dtype(xs.get(k as usize)?, reads),
        ScalarExpr::Select(_, a, _) => field_dtype(a, k, reads),
        _ => None,
    }
}

/// How many times local `id` is named in `e`.
pub(super) fn local_uses(e: &hir::Expr, id: hir::LocalId) -> usize {
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
pub(super) fn computable_anywhere(e: &ScalarExpr) -> bool {
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
        // A gather fails on a coordinate outside its table: only where it is evaluated.
        ScalarExpr::Gather(..) => false,
    }
}

pub(super) fn is_pointwise_builtin(b: hir::Builtin) -> bool {
    matches!(
        b,
        hir::Builtin::Math(_)
            | hir::Builtin::Max
            | hir::Builtin::Min
            | hir::Builtin::Pow
            | hir::Builtin::Atan2
            | hir::Builtin::Select
    )
}

pub(super) fn builtin_expr(b: hir::Builtin, mut xs: Vec<ScalarExpr>) -> ScalarExpr {
    match b {
        hir::Builtin::Math(m) => ScalarExpr::call(m, xs.remove(0)),
        hir::Builtin::Max | hir::Builtin::Min | hir::Builtin::Pow | hir::Builtin::Atan2 => {
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
