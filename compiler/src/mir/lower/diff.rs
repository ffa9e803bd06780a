//! `grad`, `value_and_grad` and `vjp`: the function is inlined on fresh copies of the
//! arguments differentiated against, then `mir::ad` appends the adjoint graph.

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
            let copy = self.map_node(space, vec![read], ScalarExpr::Read(0), "wrt")?;
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
        let first_new = self.graph.nodes.len();
        let grads = ad::vjp(&mut self.graph, &wrt, out, ct)
            .map_err(|e| LowerError::new(Kind::NotDifferentiable(e.0), span))?;
        // The backward nodes come from the `grad`/`vjp` call: `flowc explain` points there.
        for (id, node) in self.graph.nodes.iter_mut_enumerated() {
            if id.index() >= first_new {
                node.span.get_or_insert(span);
            }
        }
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
}
