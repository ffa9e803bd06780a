//! Index projections: turns index expressions into affine forms, infers the range of every
//! comprehension and reduction index from its uses, and proves reads in bounds where it can.
//! What cannot be decided statically (a bound that depends on a shape variable) is checked
//! at dispatch time, when every shape is a number.

use crate::check::errors;
use crate::check::infer::{BodyCx, Checker, Use};
use crate::hir::{AffineIdx, Dim, IndexId};
use crate::syntax::ast::{self, BinOp, ExprKind as K, UnOp};
use crate::syntax::dump::inline;

impl Checker {
    /// The affine form of an index expression, or `None` after reporting why it is not one.
    pub fn affine(&mut self, e: &ast::Expr, cx: &BodyCx) -> Option<AffineIdx> {
        match self.try_affine(e, cx) {
            Ok(a) => Some(a),
            Err(bad) => {
                let d = if cx.point_depth == 0 {
                    errors::non_constant_index(&inline(bad), bad.span)
                } else {
                    errors::non_affine(&inline(bad), bad.span)
                };
                self.error(d);
                None
            }
        }
    }

    pub(crate) fn try_affine<'e>(
        &self,
        e: &'e ast::Expr,
        cx: &BodyCx,
    ) -> Result<AffineIdx, &'e ast::Expr> {
        let konst = |d: Dim| AffineIdx {
            konst: d,
            coeffs: Vec::new(),
        };
        match &e.kind {
            K::Int(n) => n.parse().map(|v| konst(Dim::known(v))).map_err(|_| e),
            K::Name(n) => {
                if let Some(id) = cx_index(cx, n) {
                    return Ok(AffineIdx {
                        konst: Dim::known(0),
                        coeffs: vec![(id, 1)],
                    });
                }
                if cx.rigid.contains(n) {
                    return Ok(konst(Dim::var(n.clone())));
                }
                Err(e)
            }
            K::Unary(UnOp::Neg, a) => Ok(scale(&self.try_affine(a, cx)?, -1)),
            K::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) => {
                let (a, b) = (self.try_affine(a, cx)?, self.try_affine(b, cx)?);
                let b = if *op == BinOp::Sub { scale(&b, -1) } else { b };
                Ok(add(&a, &b))
            }
            K::Binary(BinOp::Mul, a, b) => {
                let (x, y) = (self.try_affine(a, cx)?, self.try_affine(b, cx)?);
                let k = |t: &AffineIdx| t.coeffs.is_empty().then(|| t.konst.as_known()).flatten();
                match (k(&x), k(&y)) {
                    (Some(c), _) => Ok(scale(&y, c)),
                    (_, Some(c)) => Ok(scale(&x, c)),
                    _ => Err(e),
                }
            }
            _ => Err(e),
        }
    }

    /// Infers the ranges of the indices introduced since `first_index` from the strict reads
    /// recorded since `first_use`, then checks those reads against the tensor bounds.
    #[allow(clippy::needless_range_loop)]
    pub fn solve_indices(
        &mut self,
        cx: &mut BodyCx,
        first_index: usize,
        first_use: usize,
        diag_mark: usize,
    ) {
        let uses: Vec<Use> = cx.uses.drain(first_use..).collect();
        let span_of = |cx: &BodyCx, i: usize| cx.indices[i].span;
        let mut reported = vec![false; cx.indices.len()];
        loop {
            let mut progress = false;
            // Plain uses `x[.., i, ..]` give the range directly, and must agree up to a
            // constant.
            for i in first_index..cx.indices.len() {
                if cx.known[i] {
                    continue;
                }
                let id = IndexId(i as u32);
                let mut found: Option<(Dim, crate::base::Span)> = None;
                for u in &uses {
                    if u.idx.coeffs == [(id, 1)] && u.idx.konst == Dim::known(0) {
                        let dim = self.zonk_dim(&u.tensor.dims()[u.axis]);
                        match &found {
                            None => found = Some((dim, u.span)),
                            Some((d0, s0)) => {
                                // Extents that differ by a constant intersect (`tighten`
                                // takes the least); by a shape variable, they disagree.
                                let apart = dim.sub(&self.zonk_dim(d0)).as_known().is_none();
                                if apart && !reported[i] {
                                    let name = cx.indices[i].name.clone();
                                    self.error(errors::index_disagree(
                                        &name, d0, &dim, *s0, u.span,
                                    ));
                                    reported[i] = true;
                                }
                            }
                        }
                    }
                }
                if let Some((d, _)) = found {
                    cx.indices[i].range = self.tighten(id, d, &uses, cx);
                    cx.known[i] = true;
                    progress = true;
                }
            }
            if progress {
                continue;
            }
            // A use `x[i + rest]` with every index of `rest` known gives `dim - max(rest)`.
            for i in first_index..cx.indices.len() {
                if cx.known[i] {
                    continue;
                }
                let id = IndexId(i as u32);
                for u in &uses {
                    let Some(&(_, c)) = u.idx.coeffs.iter().find(|(x, _)| *x == id) else {
                        continue;
                    };
                    let Some(rest) = known_rest(u, id, cx).filter(|_| c != 0) else {
                        continue;
                    };
                    let (lo, hi) = bounds(&rest, cx);
                    let dim = self.zonk_dim(&u.tensor.dims()[u.axis]);
                    // `i + rest < dim` gives `i < dim - max(rest)`; `rest - i >= 0` gives
                    // `i < min(rest) + 1`.
                    cx.indices[i].range = match c {
                        1 => self.tighten(id, dim.sub(&hi), &uses, cx),
                        -1 => lo.add(&Dim::known(1)),
                        // `c * i + rest < dim` gives `i < (dim - max(rest) - 1) / c + 1`, when
                        // that divides exactly (`x[2 * i + 1]` in `x: f32[2 * H]` gives `H`).
                        c if c > 1 => {
                            let q = dim.sub(&hi).sub(&Dim::known(1)).add(&Dim::known(c));
                            if q.konst % c != 0 || q.terms.values().any(|k| k % c != 0) {
                                continue;
                            }
                            Dim {
                                konst: q.konst / c,
                                terms: q.terms.iter().map(|(v, k)| (v.clone(), k / c)).collect(),
                            }
                        }
                        _ => continue,
                    };
                    cx.known[i] = true;
                    progress = true;
                    break;
                }
            }
            if !progress {
                break;
            }
        }
        for i in first_index..cx.indices.len() {
            if cx.known[i] {
                continue;
            }
            // An error inside the body (a non-affine index, say) already explains this one.
            if self.diags.len() == diag_mark {
                let name = cx.indices[i].name.clone();
                self.error(errors::index_unbound(&name, span_of(cx, i)));
            }
            // A fresh variable, not `0`: the tensor's shape is unknown, and what it flows
            // into must not report a mismatch against a made-up extent.
            let name = cx.indices[i].name.to_uppercase();
            cx.indices[i].range = self.fresh_var(&name);
            cx.known[i] = true;
        }
        for u in &uses {
            let (lo, hi) = bounds(&u.idx, cx);
            let dim = self.zonk_dim(&u.tensor.dims()[u.axis]);
            let below = lo.nonneg() == Some(false);
            let above = dim.sub(&hi).sub(&Dim::known(1)).nonneg() == Some(false);
            if below || above {
                let t = self.zonk(&u.tensor);
                self.error(errors::out_of_bounds(&t, u.axis, &lo, &hi, u.span));
            }
        }
    }
}

impl Checker {
    /// Index ranges intersect: every read `x[i + rest]` (coefficient 1, the indices of `rest`
    /// known) bounds `i` by `dim - max(rest)`; of the bounds that differ from `range` by a
    /// constant, the least wins (`a[i] + a[i + 2]` over `a: f32[N]` gives `N - 2`). A bound
    /// that differs by a shape variable (`M` against `N`) cannot be ordered here: that read is
    /// checked at dispatch, as before.
    fn tighten(&self, id: IndexId, mut range: Dim, uses: &[Use], cx: &BodyCx) -> Dim {
        for u in uses {
            if !u.idx.coeffs.contains(&(id, 1)) {
                continue;
            }
            let Some(rest) = known_rest(u, id, cx) else {
                continue;
            };
            let (_, hi) = bounds(&rest, cx);
            let bound = self.zonk_dim(&u.tensor.dims()[u.axis]).sub(&hi);
            if bound.sub(&range).as_known().is_some_and(|d| d < 0) {
                range = bound;
            }
        }
        range
    }
}

/// The read's index without its `id` term (`x[i + rest]` gives `rest`), if every index
/// of the rest has a known range.
fn known_rest(u: &Use, id: IndexId, cx: &BodyCx) -> Option<AffineIdx> {
    let coeffs: Vec<(IndexId, i64)> = u
        .idx
        .coeffs
        .iter()
        .copied()
        .filter(|(x, _)| *x != id)
        .collect();
    if coeffs.iter().any(|(x, _)| !cx.known[x.0 as usize]) {
        return None;
    }
    Some(AffineIdx {
        konst: u.idx.konst.clone(),
        coeffs,
    })
}

fn cx_index(cx: &BodyCx, name: &str) -> Option<IndexId> {
    cx.index_in_scope(name)
}

fn scale(a: &AffineIdx, k: i64) -> AffineIdx {
    AffineIdx {
        konst: a.konst.scale(k),
        coeffs: a
            .coeffs
            .iter()
            .map(|(i, c)| (*i, c * k))
            .filter(|(_, c)| *c != 0)
            .collect(),
    }
}

fn add(a: &AffineIdx, b: &AffineIdx) -> AffineIdx {
    let mut coeffs = a.coeffs.clone();
    for (i, c) in &b.coeffs {
        match coeffs.iter_mut().find(|(j, _)| j == i) {
            Some(e) => e.1 += c,
            None => coeffs.push((*i, *c)),
        }
    }
    coeffs.retain(|(_, c)| *c != 0);
    coeffs.sort();
    AffineIdx {
        konst: a.konst.add(&b.konst),
        coeffs,
    }
}

/// The least and greatest value of an affine index over its (non-empty) index box.
pub fn bounds(a: &AffineIdx, cx: &BodyCx) -> (Dim, Dim) {
    let mut lo = a.konst.clone();
    let mut hi = a.konst.clone();
    for (i, c) in &a.coeffs {
        let last = cx.indices[i.0 as usize].range.sub(&Dim::known(1));
        if *c > 0 {
            hi = hi.add(&last.scale(*c));
        } else {
            lo = lo.add(&last.scale(*c));
        }
    }
    (lo, hi)
}
