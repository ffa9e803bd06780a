//! Lowering `scan`, `scan_excl`, `reduce_by_index` and `scatter` to their MIR nodes (`Scan`,
//! `ReduceByIndex`, `Scatter`): each reads its whole tensor arguments point for point (every
//! field of a tensor of tuples; an unsigned index widened to `i64`), and
//! `passes::fuse` later folds a producing map into the node. The same in the coordinator and
//! in an op: every size is known when the graph is built (`n_bins` is a constant or a
//! shape; a scan or scatter has its input's shape).

use super::*;

impl<'p> Lowerer<'p> {
    /// The port of a whole-tensor argument.
    fn whole(&mut self, a: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<Port> {
        match self.tensor(a, frame)? {
            TVal::Port(p) => Ok(p),
            TVal::Tuple(_) => err(a.span, Kind::Internal("a tuple where a tensor goes")),
        }
    }

    /// The field ports of a whole-tensor argument that may be a tensor of tuples (one port
    /// per field, in order; one for a plain tensor).
    fn whole_fields(&mut self, a: &'p hir::Expr, frame: &mut Frame<'p>) -> LResult<Vec<Port>> {
        match self.tensor(a, frame)? {
            TVal::Port(p) => Ok(vec![p]),
            TVal::Tuple(vs) => vs
                .into_iter()
                .map(|v| match v {
                    TVal::Port(p) => Ok(p),
                    TVal::Tuple(_) => err(a.span, Kind::NestedTuple),
                })
                .collect(),
        }
    }

    /// The reads of the element fields `fields` (read `first + k` is field `k`) and the
    /// monoid's arguments over them: one per field for a wrap's parameters, else the state
    /// (a tuple of the fields when it has several).
    fn element_args(
        &self,
        monoid: ir::MonoidRef,
        fields: &[Port],
        first: u32,
    ) -> (Vec<Read>, Vec<ScalarExpr>) {
        let reads = fields.iter().map(|p| self.all_of(*p)).collect();
        let each: Vec<ScalarExpr> = (0..fields.len() as u32)
            .map(|k| ScalarExpr::Read(first + k))
            .collect();
        let wrapped = match monoid {
            ir::MonoidRef::User(id) => self.graph.monoids[id].wrap.is_some(),
            ir::MonoidRef::Builtin(_) => false,
        };
        let args = if each.len() > 1 && !wrapped {
            vec![ScalarExpr::Tuple(each)]
        } else {
            each
        };
        (reads, args)
    }

    /// The row or bin an index tensor `idx` (read `k`) names, as the node takes it (`i64` or
    /// `i32`): an unsigned index is widened to `i64` (a `u64` past `i64::MAX` turns negative,
    /// so it is out of range like any negative index, never a row).
    fn index_expr(&self, idx: Port, k: u32) -> ScalarExpr {
        match self.ty(idx).dtype {
            DType::I64 | DType::I32 => ScalarExpr::Read(k),
            _ => ScalarExpr::Cast(Box::new(ScalarExpr::Read(k)), DType::I64),
        }
    }

    /// A read of all of `p`, point for point.
    fn all_of(&self, p: Port) -> Read {
        let rank = self.ty(p).shape.len();
        Read {
            node: p.node,
            port: p.port,
            proj: (0..rank as u32).map(Affine::var).collect(),
            edge: ir::Edge::Strict,
        }
    }

    /// The graph's monoid for `m` over elements of `dtype`, and its result dtypes.
    /// `margs` are a parameterised monoid's arguments.
    fn prim_monoid(
        &mut self,
        m: hir::MonoidRef,
        margs: &'p [hir::Expr],
        dtype: DType,
        frame: &mut Frame<'p>,
        span: Span,
    ) -> LResult<(ir::MonoidRef, Vec<DType>)> {
        Ok(match m {
            hir::MonoidRef::Builtin(b) => (ir::MonoidRef::Builtin(b), vec![dtype]),
            hir::MonoidRef::User(id) => {
                let values = self.margs_whole(id, margs, frame)?;
                let mid = self.monoid_with(id, &values, span)?;
                let dts = self.graph.monoids[mid].result_dtypes().to_vec();
                (ir::MonoidRef::User(mid), dts)
            }
        })
    }

    /// A scan, histogram or scatter call as its node.
    pub(super) fn prim_node(
        &mut self,
        e: &'p hir::Expr,
        b: hir::Builtin,
        args: &'p [hir::Expr],
        frame: &mut Frame<'p>,
    ) -> LResult<TVal> {
        let span = e.span;
        let label = if frame.label.is_empty() {
            b.name().to_string()
        } else {
            frame.label.clone()
        };
        let (kind, outputs) = match b {
            hir::Builtin::Scan(m) | hir::Builtin::ScanExcl(m) => {
                let xs = self.whole_fields(&args[0], frame)?;
                let ty = self.ty(xs[0]).clone();
                let (monoid, dts) = self.prim_monoid(m, &args[1..], ty.dtype, frame, span)?;
                let (reads, args) = self.element_args(monoid, &xs, 0);
                let kind = NodeKind::Scan {
                    space: ty.shape.clone(),
                    monoid,
                    exclusive: matches!(b, hir::Builtin::ScanExcl(_)),
                    reads,
                    args,
                };
                let outs = dts
                    .into_iter()
                    .map(|d| TensorTy::new(d, ty.shape.clone()))
                    .collect();
                (kind, outs)
            }
            hir::Builtin::ReduceByIndex(m) => {
                let bins = self.const_i64(&args[0], frame)?;
                let Ok(bins) = usize::try_from(bins) else {
                    return err(args[0].span, Kind::NegativeSize(bins));
                };
                let idx = self.whole(&args[1], frame)?;
                let vals = self.whole_fields(&args[2], frame)?;
                let ty = self.ty(vals[0]).clone();
                let (monoid, dts) = self.prim_monoid(m, &args[3..], ty.dtype, frame, span)?;
                let shape: Vec<usize> = std::iter::once(bins)
                    .chain(ty.shape[1..].iter().copied())
                    .collect();
                let (val_reads, args) = self.element_args(monoid, &vals, 1);
                let mut reads = vec![self.all_of(idx)];
                reads.extend(val_reads);
                let kind = NodeKind::ReduceByIndex {
                    space: ty.shape.clone(),
                    bins,
                    monoid,
                    reads,
                    index: self.index_expr(idx, 0),
                    args,
                };
                let outs = dts
                    .into_iter()
                    .map(|d| TensorTy::new(d, shape.clone()))
                    .collect();
                (kind, outs)
            }
            hir::Builtin::Scatter => {
                let dest = self.whole(&args[0], frame)?;
                let idx = self.whole(&args[1], frame)?;
                let vals = self.whole(&args[2], frame)?;
                let space = self.ty(vals).shape.clone();
                let kind = NodeKind::Scatter {
                    dest,
                    space,
                    reads: vec![self.all_of(idx), self.all_of(vals)],
                    index: self.index_expr(idx, 0),
                    value: ScalarExpr::Read(1),
                };
                (kind, vec![self.ty(dest).clone()])
            }
            _ => return err(span, Kind::Internal("not a scan, histogram or scatter")),
        };
        let n_ports = outputs.len();
        let node = self.add(kind, outputs, &label);
        if n_ports == 1 {
            Ok(TVal::Port(Port { node, port: 0 }))
        } else {
            Ok(TVal::Tuple(
                (0..n_ports as u32)
                    .map(|port| TVal::Port(Port { node, port }))
                    .collect(),
            ))
        }
    }
}
