//! `rotate(x, k)`: the tensor whose element `i` (along the first axis) is `x[(i + k) mod n]`,
//! so a positive `k` moves elements toward the front (`rotate([1, 2, 3], 1)` is `[2, 3, 1]`).
//! The checker writes it as the comprehension `let r[i, j…] = x[(i + (k % n + n)) % n, j…]`
//! over `x`'s own shape, a gather whose coordinate is always inside `x` (no run-time bounds
//! failure can come from it), and which fuses like any other gather.

use super::builtins::BuiltinCall;
use super::*;

impl Checker {
    pub(super) fn rotate(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let span = c.span;
        let x = self.infer(&c.args[0], cx, None);
        let i64t = Ty::Scalar(DType::I64);
        let k = self.infer(&c.args[1], cx, Some(&i64t));
        let k = self.expect(k, &i64t);
        let (d, dims) = match self.zonk(&x.ty) {
            Ty::Error => return err_expr(span),
            Ty::Tensor(d, dims) if !dims.is_empty() => (d, dims),
            other => {
                self.error(errors::type_error(
                    format!("`rotate` takes a tensor of rank 1 or more, found `{other}`"),
                    x.span,
                ));
                return err_expr(span);
            }
        };
        if k.ty == Ty::Error {
            return err_expr(span);
        }
        cx.push();
        let xl = cx.add_local("rotate·x", x.ty.clone(), false, span);
        let kl = cx.add_local("rotate·k", i64t.clone(), false, span);
        let ids: Vec<hir::IndexId> = dims
            .iter()
            .enumerate()
            .map(|(a, d)| cx.add_index(&format!("rotate·i{a}"), Some(d.clone()), span))
            .collect();
        cx.pop();
        let int = |kind| mk(kind, i64t.clone(), span);
        let bin = |op, a, b| int(hir::ExprKind::Binary(op, Box::new(a), Box::new(b)));
        let n = || int(hir::ExprKind::DimValue(dims[0].clone()));
        // `(i + (k % n + n)) % n`: `k % n + n` is in `(0, 2n)`, so nothing overflows and the
        // result is the non-negative remainder.
        let shift = bin(
            BinOp::Add,
            bin(BinOp::Rem, int(hir::ExprKind::Local(kl)), n()),
            n(),
        );
        let first = bin(
            BinOp::Rem,
            bin(BinOp::Add, int(hir::ExprKind::IndexValue(ids[0])), shift),
            n(),
        );
        let mut coords = vec![first];
        coords.extend(ids[1..].iter().map(|i| int(hir::ExprKind::IndexValue(*i))));
        let body = mk(
            hir::ExprKind::Gather {
                tensor: Box::new(mk(hir::ExprKind::Local(xl), x.ty.clone(), span)),
                index: coords,
            },
            Ty::Scalar(d),
            span,
        );
        let ty = Ty::tensor(d, dims);
        let comp = mk(
            hir::ExprKind::Comprehension {
                indices: ids,
                body: Box::new(body),
            },
            ty.clone(),
            span,
        );
        let block = hir::Block {
            stmts: vec![
                hir::Stmt::Let {
                    local: xl,
                    value: x,
                },
                hir::Stmt::Let {
                    local: kl,
                    value: k,
                },
            ],
            tail: Some(comp),
        };
        mk(hir::ExprKind::Block(Box::new(block)), ty, span)
    }
}
