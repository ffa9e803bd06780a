//! Tests a monoid's declared derivative, `d_combine(a, b, g) = (da, db)`, against central
//! differences of `combine` on the states the laws are tested on ([`super::monoid_laws`]).
//!
//! For pairs of sample states `a`, `b` whose float fields are all finite and moderate
//! (`|x| <= 1e4`), and for each float field `f` of the result, `g` is the unit adjoint on
//! `f`; each float field `k` of `a` (and of `b`) must receive
//! `(combine(a + h e_k, b).f - combine(a - h e_k, b).f) / 2h`, with
//! `h = 1e-3·(1 + |a_k|)` (`f32`: `1e-2·(1 + |a_k|)`), within `1e-3·(1 + |d| + |fd|)`
//! (`f32`: `3e-2`). A point within `h` of a kink — where the forward and backward quotients
//! disagree, or the quotient with `h / 4` disagrees with the one with `h`, by more than the
//! tolerance (so `max(a, b)` at `a == b`, where any side is a valid convention, is not
//! tested) — or where a value is not finite is skipped. The pairs are the first [`PAIRS`] in a fixed order, so checking is deterministic.

use flow_runtime::{DType, Scalar};

use crate::base::Diagnostic;
use crate::check::errors;
use crate::check::eval::Value;
use crate::check::monoid_laws::eval_member;
use crate::hir;

/// How many pairs of states are tested at most.
const PAIRS: usize = 400;

/// A state's fields.
fn fields(v: &Value) -> Vec<Scalar> {
    match v {
        Value::Scalar(s) => vec![*s],
        Value::Tuple(xs) => xs.iter().flat_map(fields).collect(),
    }
}

/// A state like `like` with fields `fs`.
fn with_fields(like: &Value, fs: &[Scalar]) -> Value {
    match like {
        Value::Scalar(_) => Value::Scalar(fs[0]),
        Value::Tuple(xs) => {
            Value::Tuple(fs.iter().zip(xs).map(|(f, _)| Value::Scalar(*f)).collect())
        }
    }
}

fn moderate(v: &Value) -> bool {
    fields(v)
        .iter()
        .all(|s| !s.dtype().is_float() || (s.as_f64().is_finite() && s.as_f64().abs() <= 1e4))
}

/// `Err` with the first disagreement of `d_combine` with central differences of `combine`.
pub fn check(
    prog: &hir::Program,
    m: &hir::Monoid,
    params: &[Value],
    d: &hir::MonoidFn,
    states: &[Value],
) -> Result<(), Box<Diagnostic>> {
    let ok: Vec<&Value> = states.iter().filter(|v| moderate(v)).collect();
    let combine = |a: &Value, b: &Value| {
        eval_member(prog, params, &m.combine.body, vec![a.clone(), b.clone()])
            .ok()
            .map(|v| fields(&v))
    };
    let pairs = ok
        .iter()
        .flat_map(|a| ok.iter().map(move |b| (*a, *b)))
        .take(PAIRS);
    for (a, b) in pairs {
        let (fa, fb) = (fields(a), fields(b));
        for (f, sf) in fa.iter().enumerate() {
            let dt = sf.dtype();
            if !dt.is_float() {
                continue;
            }
            // The unit adjoint on field f.
            let g: Vec<Scalar> = fa
                .iter()
                .enumerate()
                .map(|(k, s)| Scalar::F64(if k == f { 1.0 } else { 0.0 }).cast(s.dtype()))
                .collect();
            let Ok(dc) = eval_member(
                prog,
                params,
                &d.body,
                vec![a.clone(), b.clone(), with_fields(a, &g)],
            ) else {
                continue;
            };
            let Value::Tuple(sides) = &dc else { continue };
            for (side, (x, dx)) in [(&fa, &sides[0]), (&fb, &sides[1])].into_iter().enumerate() {
                let dx = fields(dx);
                for k in 0..x.len() {
                    let dk = x[k].dtype();
                    if !dk.is_float() {
                        continue;
                    }
                    let (step, tol) = match dk {
                        DType::F64 => (1e-3, 1e-3),
                        _ => (1e-2, 3e-2),
                    };
                    let h = step * (1.0 + x[k].as_f64().abs());
                    // The one-sided quotients (forward, backward) with step h.
                    let quotients = |h: f64| -> Option<(f64, f64)> {
                        let at = |t: f64| {
                            let mut y = x.clone();
                            y[k] = Scalar::F64(x[k].as_f64() + t).cast(dk);
                            let y = with_fields(a, &y);
                            let v = if side == 0 {
                                combine(&y, b)
                            } else {
                                combine(a, &y)
                            };
                            v.map(|v| v[f].as_f64())
                        };
                        let (p, o, q) = (at(h)?, at(0.0)?, at(-h)?);
                        let (fwd, bwd) = ((p - o) / h, (o - q) / h);
                        (fwd.is_finite() && bwd.is_finite()).then_some((fwd, bwd))
                    };
                    let (Some((f1, b1)), Some((f4, b4))) = (quotients(h), quotients(h / 4.0))
                    else {
                        continue;
                    };
                    let close = |x: f64, y: f64| (x - y).abs() <= tol * (1.0 + x.abs() + y.abs());
                    let (fd, fd4) = ((f1 + b1) / 2.0, (f4 + b4) / 2.0);
                    // Within h of a kink (`max`, a branch of `if`): the sides disagree, or the
                    // quotient moves with the step. Not tested there.
                    if !close(f1, b1) || !close(f4, b4) || !close(fd, fd4) {
                        continue;
                    }
                    let got = dx[k].as_f64();
                    if !close(got, fd) {
                        let show = crate::check::monoid_laws::show;
                        let field = |i: usize| {
                            if x.len() == 1 {
                                String::new()
                            } else {
                                i.to_string()
                            }
                        };
                        return Err(Box::new(errors::monoid_derivative(
                            &crate::check::monoid_laws::instance(m, params),
                            d.body.expr.span,
                            [
                                show(a),
                                show(b),
                                ["a", "b"][side].to_string(),
                                field(k),
                                field(f),
                            ],
                            got,
                            fd,
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}
