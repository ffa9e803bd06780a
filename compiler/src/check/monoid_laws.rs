//! Tests a user monoid's laws — identity, associativity, and commutativity where claimed — on
//! generated states: `zero`, `wrap` of edge inputs (0, -0, ±1, large, tiny, ±inf; never NaN)
//! and `combine`s of those. A failure is a compile error that shows the counterexample.
//!
//! Two sides agree when equal, both NaN, or (floats) within `1e-4 · (1 + |a| + |b|)` (f64:
//! `1e-9`). A sample where a side becomes non-finite from finite operands is skipped.

use flow_runtime::{format_scalar, DType, Scalar};

use crate::base::{Code, Diagnostic};
use crate::check::eval::{eval_body, Value};
use crate::hir::{self, Ty};

/// How many associativity triples to try at most.
const MAX_TRIPLES: usize = 6000;

pub fn check_laws(
    prog: &hir::Program,
    _id: hir::MonoidId,
    m: &hir::Monoid,
) -> Result<(), Box<Diagnostic>> {
    let Some(states) = sample_states(prog, m) else {
        return Ok(());
    };
    let Ok(zero) = eval_body(prog, &m.zero, &[]) else {
        return Ok(());
    };
    let combine =
        |a: &Value, b: &Value| eval_body(prog, &m.combine.body, &[a.clone(), b.clone()]).ok();
    let show = |v: &Value| show(v);

    for a in &states {
        for (lhs, form) in [
            (combine(&zero, a), "combine(zero, a)"),
            (combine(a, &zero), "combine(a, zero)"),
        ] {
            let Some(lhs) = lhs else { continue };
            if skip(&[a, &zero], &lhs, a) || agree(&lhs, a) {
                continue;
            }
            return Err(Box::new(
                Diagnostic::error(
                    Code::MonoidIdentity,
                    format!(
                        "monoid `{}` violates the identity law: {form} must equal a",
                        m.name
                    ),
                    m.zero.expr.span,
                )
                .with_label_text(format!("zero = {}", show(&zero)))
                .with_note(format!(
                    "counterexample: a = {}, but {form} = {}",
                    show(a),
                    show(&lhs)
                ))
                .with_note(
                    "`zero` must leave every state unchanged when combined with it, on either side",
                ),
            ));
        }
    }

    let n = states.len();
    // combine(a, b) of every pair of states, computed once: each triple below needs two.
    let pairs: Vec<Vec<Option<Value>>> = states
        .iter()
        .map(|a| states.iter().map(|b| combine(a, b)).collect())
        .collect();
    let mut tried = 0;
    'outer: for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                tried += 1;
                if tried > MAX_TRIPLES {
                    break 'outer;
                }
                let (ib, ic) = ((j * 7 + i) % n, (k * 13 + j) % n);
                let (a, b, c) = (&states[i], &states[ib], &states[ic]);
                let (Some(ab), Some(bc)) = (&pairs[i][ib], &pairs[ib][ic]) else {
                    continue;
                };
                let (Some(l), Some(r)) = (combine(ab, c), combine(a, bc)) else {
                    continue;
                };
                if skip(&[a, b, c], &l, &r) || agree(&l, &r) {
                    continue;
                }
                return Err(Box::new(
                    Diagnostic::error(
                        Code::MonoidAssociativity,
                        format!("monoid `{}` is not associative: combine(combine(a, b), c) differs from combine(a, combine(b, c))", m.name),
                        m.combine.body.expr.span,
                    )
                    .with_label_text("this combine is not associative")
                    .with_note(format!(
                        "counterexample: a = {}, b = {}, c = {}: combine(combine(a, b), c) = {} but combine(a, combine(b, c)) = {}",
                        show(a), show(b), show(c), show(&l), show(&r)
                    ))
                    .with_note("reductions are split into shards and combined in a tree, so the grouping must not matter"),
                ));
            }
        }
    }

    if m.commutative {
        for (i, a) in states.iter().enumerate() {
            for (j, b) in states.iter().enumerate() {
                let (Some(l), Some(r)) = (&pairs[i][j], &pairs[j][i]) else {
                    continue;
                };
                if skip(&[a, b], l, r) || agree(l, r) {
                    continue;
                }
                return Err(Box::new(
                    Diagnostic::error(
                        Code::MonoidCommutativity,
                        format!("monoid `{}` is declared commutative, but combine(a, b) differs from combine(b, a)", m.name),
                        m.combine.body.expr.span,
                    )
                    .with_note(format!(
                        "counterexample: a = {}, b = {}: combine(a, b) = {} but combine(b, a) = {}",
                        show(a), show(b), show(l), show(r)
                    ))
                    .with_note("remove `commutative;` if the order of inputs matters"),
                ));
            }
        }
    }
    Ok(())
}

/// `zero`, wrapped edge inputs, and combinations of pairs of those.
fn sample_states(prog: &hir::Program, m: &hir::Monoid) -> Option<Vec<Value>> {
    let inputs = m.input_types();
    let per_arg: Vec<Vec<Value>> = inputs.iter().map(samples_of).collect::<Option<_>>()?;
    let count = per_arg.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut wrapped = Vec::new();
    for k in 0..count {
        let args: Vec<Value> = per_arg
            .iter()
            .enumerate()
            .map(|(a, s)| s[(k + a * 3) % s.len()].clone())
            .collect();
        let v = match &m.wrap {
            Some(w) => eval_body(prog, &w.body, &args).ok()?,
            None => args.into_iter().next()?,
        };
        wrapped.push(v);
    }
    let mut states = Vec::new();
    states.push(eval_body(prog, &m.zero, &[]).ok()?);
    states.extend(wrapped.iter().cloned());
    for (i, a) in wrapped.iter().enumerate().step_by(3) {
        let b = &wrapped[(i * 5 + 1) % wrapped.len()];
        if let Ok(c) = eval_body(prog, &m.combine.body, &[a.clone(), b.clone()]) {
            states.push(c);
        }
    }
    Some(states)
}

fn samples_of(t: &Ty) -> Option<Vec<Value>> {
    Some(match t {
        Ty::Scalar(d) => scalar_samples(*d).into_iter().map(Value::Scalar).collect(),
        Ty::Tuple(fs) => {
            let per: Vec<Vec<Scalar>> = fs
                .iter()
                .map(|(_, t)| match t {
                    Ty::Scalar(d) => Some(scalar_samples(*d)),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            let n = per.iter().map(|p| p.len()).max().unwrap_or(0);
            (0..n)
                .map(|k| {
                    Value::Tuple(
                        per.iter()
                            .enumerate()
                            .map(|(f, p)| Value::Scalar(p[(k * (f + 1)) % p.len()]))
                            .collect(),
                    )
                })
                .collect()
        }
        _ => return None,
    })
}

fn scalar_samples(d: DType) -> Vec<Scalar> {
    let floats: Vec<f64> = match d {
        DType::F64 => vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -2.5,
            3.0,
            1e12,
            -1e12,
            1e-12,
            -7.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            42.0,
        ],
        _ => vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -2.5,
            3.0,
            1e6,
            -1e6,
            1e-6,
            -7.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            42.0,
        ],
    };
    let ints: Vec<i64> = match d {
        DType::I32 => vec![0, 1, -1, 2, -3, 7, 1_000_000_000, -1_000_000_000, 12],
        _ => vec![
            0,
            1,
            -1,
            2,
            -3,
            7,
            1_000_000_000_000,
            -1_000_000_000_000,
            12,
        ],
    };
    match d {
        DType::F32 | DType::F64 => floats.into_iter().map(|v| Scalar::F64(v).cast(d)).collect(),
        DType::I32 | DType::I64 => ints.into_iter().map(|v| Scalar::I64(v).cast(d)).collect(),
        DType::Bool => vec![Scalar::Bool(false), Scalar::Bool(true)],
    }
}

fn finite(v: &Value) -> bool {
    match v {
        Value::Scalar(s) => s.as_f64().is_finite() || !s.dtype().is_float(),
        Value::Tuple(vs) => vs.iter().all(finite),
    }
}

/// A sample whose operands are finite but one side is not is an overflow: skip it. So is one
/// where an infinite operand makes a side NaN (`0 * inf`), an artefact of IEEE arithmetic.
fn skip(operands: &[&Value], l: &Value, r: &Value) -> bool {
    if operands.iter().all(|v| finite(v)) {
        !finite(l) || !finite(r)
    } else {
        has_nan(l) || has_nan(r)
    }
}

fn has_nan(v: &Value) -> bool {
    match v {
        Value::Scalar(s) => s.as_f64().is_nan(),
        Value::Tuple(vs) => vs.iter().any(has_nan),
    }
}

fn agree(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Tuple(x), Value::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| agree(p, q))
        }
        (Value::Scalar(x), Value::Scalar(y)) => match (x, y) {
            (Scalar::F32(p), Scalar::F32(q)) => close(*p as f64, *q as f64, 1e-4),
            (Scalar::F64(p), Scalar::F64(q)) => close(*p, *q, 1e-9),
            _ => x == y,
        },
        _ => false,
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + a.abs() + b.abs())
}

fn show(v: &Value) -> String {
    match v {
        Value::Scalar(s) => format_scalar(s),
        Value::Tuple(vs) => format!("({})", vs.iter().map(show).collect::<Vec<_>>().join(", ")),
    }
}
