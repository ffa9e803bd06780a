//! `grad`, `value_and_grad` and `vjp`: the function is inlined on fresh copies of the
//! arguments differentiated against, then `mir::ad` appends the adjoint graph.
//!
//! At a point (a `fn` applied per element, `map(f, x)` of a `fn` that takes a derivative,
//! or a body that does): the scalar arguments are materialized over the point's index box,
//! the function is applied elementwise over that box, and the derivative of the sum of its
//! results — elementwise, each element's own derivative — is read back at the point. So the
//! derivative is itself a graph of maps, fused and sharded like any.

use super::*;
use crate::mir::ad;
use crate::mir::Idx;

impl<'p> Lowerer<'p> {
    /// The derivative `d` asks for, at the tensor-level arguments `args` (for `vjp`, the
    /// cotangent last).
    pub fn diff(&mut self, d: &hir::Diff, mut args: Vec<TVal>, span: Span) -> LResult<TVal> {
        let ct = if d.mode == hir::DiffMode::Vjp {
            args.pop()
        } else {
            None
        };
        // Fresh copies, so an argument passed twice (`f(w, w)`) or computed earlier is
        // differentiated as this argument alone.
        let mut wrt = Vec::new();
        for &k in &d.wrt {
            let Some(TVal::Port(p)) = args.get(k).cloned() else {
                return err(
                    span,
                    Kind::Internal("a differentiated argument is not a tensor"),
                );
            };
            let rank = self.ty(p).shape.len();
            let space = self.ty(p).shape.clone();
            let read = Read {
                node: p.node,
                port: p.port,
                proj: (0..rank as u32).map(Affine::var).collect(),
                edge: ir::Edge::Strict,
            };
            // The copy carries the argument's name: a gather from it that fails names the
            // user's tensor, also where the forward node is dead and fusion keeps the copy.
            let name = self.graph.nodes[p.node].label.clone();
            let copy = self.map_node(space, vec![read], ScalarExpr::Read(0), &name)?;
            args[k] = TVal::Port(copy);
            wrt.push(copy);
        }
        let TVal::Port(out) = self.call(d.func, args, span)? else {
            return err(
                span,
                Kind::Internal("a differentiated function returned a tuple"),
            );
        };
        let ct = match ct {
            Some(TVal::Port(c)) => c,
            Some(TVal::Tuple(_)) => return err(span, Kind::Internal("a tuple cotangent")),
            None => {
                let one = Scalar::F64(1.0).cast(self.ty(out).dtype);
                self.scalar(one)
            }
        };
        let grads = self.adjoint(&wrt, out, ct, span)?;
        let g = if d.tuple {
            TVal::Tuple(grads.into_iter().map(TVal::Port).collect())
        } else {
            TVal::Port(grads[0])
        };
        Ok(match d.mode {
            hir::DiffMode::ValueAndGrad => TVal::Tuple(vec![TVal::Port(out), g]),
            _ => g,
        })
    }

    /// The adjoint graph of `out` at cotangent `ct` with respect to `wrt` ([`ad::vjp`]); its
    /// nodes come from the `grad`/`vjp` call at `span`: `flowc explain` points there.
    fn adjoint(&mut self, wrt: &[Port], out: Port, ct: Port, span: Span) -> LResult<Vec<Port>> {
        let first_new = self.graph.nodes.len();
        let grads = ad::vjp(&mut self.graph, wrt, out, ct)
            .map_err(|e| LowerError::new(Kind::NotDifferentiable(e.0), span))?;
        for (id, node) in self.graph.nodes.iter_mut_enumerated() {
            if id.index() >= first_new {
                node.span.get_or_insert(span);
            }
        }
        Ok(grads)
    }

    /// The derivative `d` at one point of `point`'s box, of the scalar arguments `args`.
    pub(super) fn diff_at_point(
        &mut self,
        d: &hir::Diff,
        args: Vec<ScalarExpr>,
        point: &mut Point,
        span: Span,
    ) -> LResult<ScalarExpr> {
        let func = self.prog.func(d.func);
        if func.kind != hir::FuncKind::Fn
            || d.args.iter().any(|a| !matches!(a.ty, hir::Ty::Scalar(_)))
        {
            return err(
                span,
                Kind::NotDifferentiable(format!(
                    "a derivative taken per element (inside a body, or in a `fn` applied \
                     per element) must be of a `fn` of scalars; `{}` is not: take it on \
                     whole tensors",
                    func.name
                )),
            );
        }
        let space = point.extents.clone();
        let ident: Vec<Affine> = (0..space.len() as u32).map(Affine::var).collect();
        // Each argument over the box (for the differentiated ones, a fresh copy).
        let mut ports = Vec::new();
        for (k, a) in args.into_iter().enumerate() {
            let copy =
                d.wrt.contains(&k) || (d.mode == hir::DiffMode::Vjp && k + 1 == d.args.len());
            let mut p = self.map_node(space.clone(), point.reads.clone(), a, "arg")?;
            self.graph.nodes[p.node].prune_reads();
            if copy {
                let r = Read {
                    node: p.node,
                    port: p.port,
                    proj: ident.clone(),
                    edge: ir::Edge::Strict,
                };
                p = self.map_node(space.clone(), vec![r], ScalarExpr::Read(0), "wrt")?;
            }
            ports.push(p);
        }
        let ct = if d.mode == hir::DiffMode::Vjp {
            ports.pop()
        } else {
            None
        };
        // The function, elementwise over the box.
        let mut inner = Point {
            reads: Vec::new(),
            extents: space.clone(),
            vars: HashMap::new(),
        };
        let xs: Vec<ScalarExpr> = ports
            .iter()
            .map(|&p| inner.read(p, ident.clone(), ir::Edge::Strict))
            .collect();
        let body = self.inline_fn(d.func, xs, &mut inner)?;
        if matches!(body, ScalarExpr::Tuple(_)) {
            return err(
                span,
                Kind::Internal("a differentiated function returned a tuple"),
            );
        }
        let out = self.map_node(space.clone(), inner.reads, body, &func.name)?;
        let ct = match ct {
            Some(c) => c,
            None => {
                let one = Scalar::F64(1.0).cast(self.ty(out).dtype);
                self.map_node(space.clone(), Vec::new(), ScalarExpr::Const(one), "ones")?
            }
        };
        let wrt: Vec<Port> = d.wrt.iter().map(|&k| ports[k]).collect();
        let grads = self.adjoint(&wrt, out, ct, span)?;
        let mut at = |p: Port| point.read(p, ident.clone(), ir::Edge::Strict);
        let g = if d.tuple {
            ScalarExpr::Tuple(grads.into_iter().map(&mut at).collect())
        } else {
            at(grads[0])
        };
        Ok(match d.mode {
            hir::DiffMode::ValueAndGrad => ScalarExpr::Tuple(vec![at(out), g]),
            _ => g,
        })
    }
}
