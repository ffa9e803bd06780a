//! Lowering `scan`, `scan_excl`, `reduce_by_index` and `scatter` to their MIR nodes (`Scan`,
//! `ReduceByIndex`, `Scatter`): each reads its whole tensor arguments point for point, and
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
                let x = self.whole(&args[0], frame)?;
                let ty = self.ty(x).clone();
                let (monoid, dts) = self.prim_monoid(m, &args[1..], ty.dtype, frame, span)?;
                let kind = NodeKind::Scan {
                    space: ty.shape.clone(),
                    monoid,
                    exclusive: matches!(b, hir::Builtin::ScanExcl(_)),
                    reads: vec![self.all_of(x)],
                    args: vec![ScalarExpr::Read(0)],
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
                let vals = self.whole(&args[2], frame)?;
                let ty = self.ty(vals).clone();
                let (monoid, dts) = self.prim_monoid(m, &args[3..], ty.dtype, frame, span)?;
                let shape: Vec<usize> = std::iter::once(bins)
                    .chain(ty.shape[1..].iter().copied())
                    .collect();
                let kind = NodeKind::ReduceByIndex {
                    space: ty.shape.clone(),
                    bins,
                    monoid,
                    reads: vec![self.all_of(idx), self.all_of(vals)],
                    index: ScalarExpr::Read(0),
                    args: vec![ScalarExpr::Read(1)],
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
                    index: ScalarExpr::Read(0),
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
