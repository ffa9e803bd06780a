//! The arguments of a parameterised monoid (`reduce[i](ModSum(m), x[i])`): lowering needs
//! their values, since it builds the monoid's functions with the parameters as constants
//! (`Lowerer::monoid_with`). The checker made sure an argument depends on no index; here it
//! must also be known when the graph is built: a literal, a shape, an op parameter or a
//! coordinator scalar the coordinator holds, or arithmetic over those (folded like a
//! constant size, `Lowerer::fold_scalar`). A value the graph itself computes is refused
//! (`MonoidArgNotStatic`) with the advice to force it with `eval`.
//!
//! Why constants rather than a run-time input of the node: the MIR, both backends, the
//! passes and the derivative then see an ordinary monoid, the parameter is a loop-invariant
//! constant in the compiled combine (folded by Cranelift), and `ModSum(3)` and `ModSum(5)`
//! are two monoids of the graph, so CSE and the graph hash tell them apart. The cost is one
//! compiled kernel per distinct argument value.

use flow_runtime::format_scalar;

use super::tensor::fold_expr;
use super::*;

impl<'p> Lowerer<'p> {
    /// The values of user monoid `id`'s arguments `margs`, written in a reduction whose
    /// body is lowered in `outer`.
    pub(super) fn margs_in_point(
        &mut self,
        id: hir::MonoidId,
        margs: &'p [hir::Expr],
        frame: &mut Frame<'p>,
        outer: &Point,
    ) -> LResult<Vec<Scalar>> {
        let mut out = Vec::new();
        for (k, a) in margs.iter().enumerate() {
            // A scratch point: what the argument reads is folded, never read by the node.
            let mut scratch = Point {
                reads: Vec::new(),
                extents: outer.extents.clone(),
                vars: outer.vars.clone(),
            };
            let e = self.point(a, frame, &mut scratch)?;
            let vals: Option<Vec<Scalar>> =
                scratch.reads.iter().map(|r| self.fold_read(r)).collect();
            match vals.and_then(|v| fold_expr(&e, &v)) {
                Some(v) => out.push(self.marg_value(id, k, v)),
                None => return err(a.span, self.not_static(id, k)),
            }
        }
        Ok(out)
    }

    /// The value of a read at fixed coordinates of a constant (or a folded scalar), if it
    /// is known now.
    fn fold_read(&self, r: &Read) -> Option<Scalar> {
        let at: Vec<i64> = r
            .proj
            .iter()
            .map(|a| a.coeffs.is_empty().then_some(a.konst))
            .collect::<Option<_>>()?;
        if let NodeKind::Const { value } = &self.graph.nodes[r.node].kind {
            let mut linear = 0usize;
            for (&c, &n) in at.iter().zip(&value.shape) {
                let c = usize::try_from(c).ok().filter(|&c| c < n)?;
                linear = linear * n + c;
            }
            return (at.len() == value.shape.len()).then(|| value.get(linear));
        }
        self.fold_scalar(r.src())
    }

    /// The values of user monoid `id`'s arguments `margs` written as whole values (the
    /// monoid of a `scan` or `reduce_by_index`).
    pub(super) fn margs_whole(
        &mut self,
        id: hir::MonoidId,
        margs: &'p [hir::Expr],
        frame: &mut Frame<'p>,
    ) -> LResult<Vec<Scalar>> {
        let mut out = Vec::new();
        for (k, a) in margs.iter().enumerate() {
            let v = match self.tensor(a, frame)? {
                TVal::Port(p) => self.fold_scalar(p),
                TVal::Tuple(_) => None,
            };
            match v {
                Some(v) => out.push(self.marg_value(id, k, v)),
                None => return err(a.span, self.not_static(id, k)),
            }
        }
        Ok(out)
    }

    /// Argument `k`'s value in its parameter's type (a weak literal may have been folded in
    /// another).
    fn marg_value(&self, id: hir::MonoidId, k: usize, v: Scalar) -> Scalar {
        match self.prog.monoid(id).params.get(k) {
            Some((_, Ty::Scalar(d))) => v.cast(*d),
            _ => v,
        }
    }

    fn not_static(&self, id: hir::MonoidId, k: usize) -> Kind {
        let m = self.prog.monoid(id);
        Kind::MonoidArgNotStatic {
            monoid: m.name.clone(),
            param: m.params.get(k).map(|p| p.0.clone()).unwrap_or_default(),
        }
    }

    /// The zero of monoid `m` with its parameters bound to `values`, flattened; `None` when
    /// it is not a constant.
    pub(super) fn fold_zero(
        &mut self,
        m: &'p hir::Monoid,
        values: &[Scalar],
    ) -> Option<Vec<Scalar>> {
        if m.params.is_empty() {
            return fold_hir(&m.zero.expr).map(|v| tensor::flatten_value(&v));
        }
        let mut frame = Frame {
            body: &m.zero,
            locals: HashMap::new(),
            shapes: HashMap::new(),
            label: String::new(),
        };
        bind_values(&mut frame, values);
        let mut point = Point {
            reads: Vec::new(),
            extents: Vec::new(),
            vars: HashMap::new(),
        };
        let e = self.point(&m.zero.expr, &mut frame, &mut point).ok()?;
        if !point.reads.is_empty() {
            return None;
        }
        let fields = match e {
            ScalarExpr::Tuple(xs) => xs,
            x => vec![x],
        };
        fields.iter().map(|x| fold_expr(x, &[])).collect()
    }
}

/// Binds a monoid member's first locals, the monoid's parameters, to `values`.
pub(super) fn bind_values(frame: &mut Frame<'_>, values: &[Scalar]) {
    for (k, v) in values.iter().enumerate() {
        frame
            .locals
            .insert(hir::LocalId(k as u32), Bound::S(ScalarExpr::Const(*v)));
    }
}

/// The graph's name of monoid `m` with its parameters bound to `values`: `ModSum(m = 7)`.
pub(super) fn instance_name(m: &hir::Monoid, values: &[Scalar]) -> String {
    if values.is_empty() {
        return m.name.clone();
    }
    let args: Vec<String> = m
        .params
        .iter()
        .zip(values)
        .map(|((n, _), v)| format!("{n} = {}", format_scalar(v)))
        .collect();
    format!("{}({})", m.name, args.join(", "))
}
