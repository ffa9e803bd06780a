//! Tests a user monoid's laws — identity, associativity, and commutativity where claimed — on
//! generated states: `zero`, `wrap` of sample inputs and `combine`s of those. A failure is a
//! compile error that shows the counterexample.
//!
//! The sample inputs of a scalar type are edge values (0, -0, ±1, large, tiny, ±inf; never
//! NaN), every constant written in the monoid's bodies (and the `fn`s they call) with its
//! neighbours (±1, the next float either way), and random values across magnitudes drawn
//! with a fixed seed, so a combine that misbehaves only in a window of values is caught and
//! checking stays deterministic. Associativity is tested on every triple of the first states,
//! then on triples drawn with a fixed seed, [`MAX_TRIPLES`] in all.
//!
//! Two sides agree when equal, both NaN, or (floats) within `1e-4 · (1 + |a| + |b| + m)`
//! (f64: `1e-9`), `m` being the sum of the finite magnitudes of that field in the operands:
//! regrouping a float sum moves it by rounding errors of the operands' size. A sample where
//! a side becomes non-finite from finite operands is skipped.

use flow_runtime::{format_scalar, rand, DType, Scalar};

use crate::base::Diagnostic;
use crate::check::errors;
use crate::check::eval::{eval_body, Value};
use crate::hir::dump::children;
use crate::hir::{self, ExprKind, Ty};

/// How many associativity triples to try at most.
const MAX_TRIPLES: usize = 6000;

/// The seed of the random samples and of the choice of triples.
const SEED: u64 = 0x5eed_1a75;

/// How many states (from the first) have all their triples tested: `FIRST_STATES³` must
/// not exceed [`MAX_TRIPLES`].
const FIRST_STATES: usize = 16;

/// How many random inputs of each scalar type.
const RANDOM_INPUTS: u64 = 12;

/// How many of a monoid's constants give samples (the first ones written).
const MAX_CONSTANTS: usize = 8;

/// How many samples of its parameters a parameterised monoid is checked at.
const PARAM_SAMPLES: usize = 16;

pub fn check_laws(
    prog: &hir::Program,
    _id: hir::MonoidId,
    m: &hir::Monoid,
) -> Result<(), Box<Diagnostic>> {
    for params in param_samples(prog, m) {
        check_at(prog, m, &params)?;
    }
    Ok(())
}

/// The parameter values a monoid's laws are checked at: none for a monoid without
/// parameters; else [`PARAM_SAMPLES`] combinations drawn from each parameter's samples,
/// which are a state's of its type (edge values first, so `0` and `-1` are among them).
fn param_samples(prog: &hir::Program, m: &hir::Monoid) -> Vec<Vec<Value>> {
    if m.params.is_empty() {
        return vec![Vec::new()];
    }
    let constants = constants_of(prog, m);
    let per: Vec<Vec<Scalar>> = m
        .params
        .iter()
        .map(|(_, t)| match t {
            Ty::Scalar(d) => scalar_samples(*d, &constants),
            _ => Vec::new(),
        })
        .collect();
    if per.iter().any(|p| p.is_empty()) {
        return Vec::new();
    }
    let count = per
        .iter()
        .map(|p| p.len())
        .max()
        .unwrap_or(0)
        .min(PARAM_SAMPLES);
    (0..count)
        .map(|k| {
            per.iter()
                .enumerate()
                .map(|(a, p)| Value::Scalar(p[(k + a * 3) % p.len()]))
                .collect()
        })
        .collect()
}

/// The monoid's name with its parameters' values, as a counterexample shows it:
/// `ModSum(m = 0)`.
pub(super) fn instance(m: &hir::Monoid, params: &[Value]) -> String {
    if params.is_empty() {
        return m.name.clone();
    }
    let args: Vec<String> = m
        .params
        .iter()
        .zip(params)
        .map(|((n, _), v)| format!("{n} = {}", show(v)))
        .collect();
    format!("{}({})", m.name, args.join(", "))
}

/// `body` (a member of the monoid) with the monoid's parameters bound to `params` and its
/// own to `args`.
pub(super) fn eval_member(
    prog: &hir::Program,
    params: &[Value],
    body: &hir::Body,
    args: Vec<Value>,
) -> Result<Value, crate::check::eval::Unsupported> {
    eval_body(prog, body, params.iter().cloned().chain(args).collect())
}

/// A parameterised monoid must work at every value of its parameters: its `zero` and
/// `combine(zero, zero)` must evaluate (a sum modulo `m` divides by zero at `m = 0`).
fn check_evaluates(
    prog: &hir::Program,
    m: &hir::Monoid,
    params: &[Value],
) -> Result<(), Box<Diagnostic>> {
    let fail = |what: &str, why: String, span| {
        Box::new(
            errors::bad_monoid(
                format!(
                    "monoid `{}` fails to evaluate `{what}`: {why}",
                    instance(m, params)
                ),
                span,
            )
            .with_note(
                "the checker cannot know which values the program passes, so every value of \
                 a parameter must work: guard it (e.g. `max(m, 1)` for a modulus)",
            ),
        )
    };
    let zero = eval_member(prog, params, &m.zero, Vec::new())
        .map_err(|e| fail("zero", e.0, m.zero.expr.span))?;
    eval_member(prog, params, &m.combine.body, vec![zero.clone(), zero])
        .map_err(|e| fail("combine(zero, zero)", e.0, m.combine.body.expr.span))?;
    Ok(())
}

/// The laws at one value of the parameters.
fn check_at(prog: &hir::Program, m: &hir::Monoid, params: &[Value]) -> Result<(), Box<Diagnostic>> {
    if !params.is_empty() {
        check_evaluates(prog, m, params)?;
    }
    let name = instance(m, params);
    let Some(states) = sample_states(prog, m, params) else {
        return Ok(());
    };
    let Ok(zero) = eval_member(prog, params, &m.zero, Vec::new()) else {
        return Ok(());
    };
    let combine = |a: &Value, b: &Value| {
        eval_member(prog, params, &m.combine.body, vec![a.clone(), b.clone()]).ok()
    };
    let show = |v: &Value| show(v);

    for a in &states {
        for (lhs, form) in [
            (combine(&zero, a), "combine(zero, a)"),
            (combine(a, &zero), "combine(a, zero)"),
        ] {
            let Some(lhs) = lhs else { continue };
            if skip(&[a, &zero], &lhs, a) || agree(&[a, &zero], &lhs, a) {
                continue;
            }
            return Err(Box::new(errors::monoid_identity(
                &name,
                m.zero.expr.span,
                form,
                [show(&zero), show(a), show(&lhs)],
            )));
        }
    }

    let n = states.len();
    // combine(a, b) of every pair of states, computed once: each triple below needs two.
    let pairs: Vec<Vec<Option<Value>>> = states
        .iter()
        .map(|a| states.iter().map(|b| combine(a, b)).collect())
        .collect();
    for (i, ib, ic) in triples(n) {
        let (a, b, c) = (&states[i], &states[ib], &states[ic]);
        let (Some(ab), Some(bc)) = (&pairs[i][ib], &pairs[ib][ic]) else {
            continue;
        };
        let (Some(l), Some(r)) = (combine(ab, c), combine(a, bc)) else {
            continue;
        };
        if skip(&[a, b, c], &l, &r) || agree(&[a, b, c], &l, &r) {
            continue;
        }
        return Err(Box::new(errors::monoid_associativity(
            &name,
            m.combine.body.expr.span,
            [show(a), show(b), show(c), show(&l), show(&r)],
        )));
    }

    if m.commutative {
        for (i, a) in states.iter().enumerate() {
            for (j, b) in states.iter().enumerate() {
                let (Some(l), Some(r)) = (&pairs[i][j], &pairs[j][i]) else {
                    continue;
                };
                if skip(&[a, b], l, r) || agree(&[a, b], l, r) {
                    continue;
                }
                return Err(Box::new(errors::monoid_commutativity(
                    &name,
                    m.combine.body.expr.span,
                    [show(a), show(b), show(l), show(r)],
                )));
            }
        }
    }
    if let Some(d) = &m.d_combine {
        super::monoid_derivative::check(prog, m, params, d, &states)?;
    }
    Ok(())
}

/// `(i, j, k)` index triples of `n` states to test associativity on, at most
/// [`MAX_TRIPLES`]: every triple of the first [`FIRST_STATES`] (`zero` and the edge values, so
/// a counterexample is a simple one when there is one), then triples drawn with [`SEED`].
fn triples(n: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let k = n.min(FIRST_STATES);
    let first = (0..k.pow(3)).map(move |t| (t / (k * k), t / k % k, t % k));
    let drawn = (0..(MAX_TRIPLES - k.pow(3)) as u64).map(move |t| {
        let w = rand::words(SEED ^ 0x7219, t);
        let pick = |x: u32| x as usize % n;
        (pick(w[0]), pick(w[1]), pick(w[2]))
    });
    first.chain(if n > k { Some(drawn) } else { None }.into_iter().flatten())
}

/// `zero`, wrapped sample inputs, and combinations of pairs of those.
fn sample_states(prog: &hir::Program, m: &hir::Monoid, params: &[Value]) -> Option<Vec<Value>> {
    let inputs = m.input_types();
    let constants = constants_of(prog, m);
    let per_arg: Vec<Vec<Value>> = inputs
        .iter()
        .map(|t| samples_of(t, &constants))
        .collect::<Option<_>>()?;
    let count = per_arg.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut wrapped = Vec::new();
    for k in 0..count {
        let args: Vec<Value> = per_arg
            .iter()
            .enumerate()
            .map(|(a, s)| s[(k + a * 3) % s.len()].clone())
            .collect();
        let v = match &m.wrap {
            Some(w) => eval_member(prog, params, &w.body, args).ok()?,
            None => args.into_iter().next()?,
        };
        wrapped.push(v);
    }
    let mut states = Vec::new();
    states.push(eval_member(prog, params, &m.zero, Vec::new()).ok()?);
    states.extend(wrapped.iter().cloned());
    for (i, a) in wrapped.iter().enumerate().step_by(3) {
        let b = &wrapped[(i * 5 + 1) % wrapped.len()];
        if let Ok(c) = eval_member(prog, params, &m.combine.body, vec![a.clone(), b.clone()]) {
            states.push(c);
        }
    }
    Some(states)
}

/// The literal constants of a monoid's bodies and of the `fn`s they call, in the order
/// written, without repeats; at most [`MAX_CONSTANTS`].
fn constants_of(prog: &hir::Program, m: &hir::Monoid) -> Vec<Scalar> {
    let mut todo: Vec<&hir::Expr> = vec![&m.zero.expr, &m.combine.body.expr];
    todo.extend(m.wrap.iter().chain(&m.unwrap).map(|f| &f.body.expr));
    todo.extend(m.d_combine.iter().map(|f| &f.body.expr));
    todo.reverse();
    let mut seen_fns = Vec::new();
    let mut out: Vec<Scalar> = Vec::new();
    while let Some(e) = todo.pop() {
        match &e.kind {
            ExprKind::Lit(c) if !out.contains(c) && out.len() < MAX_CONSTANTS => out.push(*c),
            ExprKind::Call(f, _) if !seen_fns.contains(f) => {
                seen_fns.push(*f);
                todo.push(&prog.func(*f).body.expr);
            }
            _ => {}
        }
        let mut kids = Vec::new();
        children(e, &mut kids);
        todo.extend(kids.into_iter().rev());
    }
    out
}

fn samples_of(t: &Ty, constants: &[Scalar]) -> Option<Vec<Value>> {
    Some(match t {
        Ty::Scalar(d) => scalar_samples(*d, constants)
            .into_iter()
            .map(Value::Scalar)
            .collect(),
        Ty::Tuple(fs) => {
            let per: Vec<Vec<Scalar>> = fs
                .iter()
                .map(|(_, t)| match t {
                    Ty::Scalar(d) => Some(scalar_samples(*d, constants)),
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

/// Edge values of type `d`, then the neighbourhoods of `constants`, then random values across
/// magnitudes; no value twice.
fn scalar_samples(d: DType, constants: &[Scalar]) -> Vec<Scalar> {
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
    let mut out: Vec<Scalar> = match d {
        DType::F32 | DType::F64 => floats.into_iter().map(|v| Scalar::F64(v).cast(d)).collect(),
        // Negative samples wrap to large unsigned values (`-1` is the type's maximum).
        DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 => {
            ints.into_iter().map(|v| Scalar::I64(v).cast(d)).collect()
        }
        DType::Bool => return vec![Scalar::Bool(false), Scalar::Bool(true)],
    };
    let near = constants.iter().flat_map(|c| neighbourhood(c.cast(d)));
    let random = (0..RANDOM_INPUTS).map(|k| random_input(d, k));
    for v in near.chain(random) {
        if !out.iter().any(|o| same(o, &v)) && !has_nan(&Value::Scalar(v)) {
            out.push(v);
        }
    }
    out
}

/// A constant `c` of a numeric type, `-c`, `c ± 1` and, for floats, the next value either way.
fn neighbourhood(c: Scalar) -> Vec<Scalar> {
    let d = c.dtype();
    let shift = |k: f64| Scalar::F64(c.as_f64() + k).cast(d);
    let mut out = vec![c, Scalar::F64(-c.as_f64()).cast(d), shift(1.0), shift(-1.0)];
    match c {
        Scalar::F32(v) if v.is_finite() && v != 0.0 => {
            let b = v.to_bits();
            out.extend([f32::from_bits(b + 1), f32::from_bits(b - 1)].map(Scalar::F32));
        }
        Scalar::F64(v) if v.is_finite() && v != 0.0 => {
            let b = v.to_bits();
            out.extend([f64::from_bits(b + 1), f64::from_bits(b - 1)].map(Scalar::F64));
        }
        _ => {}
    }
    out
}

/// The `k`-th random input of type `d`: a sign, one to four digits and a power of ten across
/// the type's useful range, drawn with [`SEED`].
fn random_input(d: DType, k: u64) -> Scalar {
    let w = rand::words(SEED, k);
    let digits = (w[0] % 9999 + 1) as f64;
    let sign = if w[1] & 1 == 0 { 1.0 } else { -1.0 };
    let (lo, hi) = match d {
        DType::F64 => (-10, 10),
        DType::I64 | DType::U64 => (0, 14),
        DType::I32 | DType::U32 => (0, 6),
        DType::U8 => (0, 2),
        _ => (-7, 4),
    };
    let exp = lo + (w[2] % (hi - lo + 1) as u32) as i32;
    Scalar::F64(sign * digits * 10f64.powi(exp)).cast(d)
}

/// Equal, bit for bit (so `0.0` and `-0.0` are two samples).
fn same(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::F32(x), Scalar::F32(y)) => x.to_bits() == y.to_bits(),
        (Scalar::F64(x), Scalar::F64(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
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

/// Whether two sides agree, field by field, up to rounding errors of the size of the
/// operands they were computed from.
fn agree(operands: &[&Value], a: &Value, b: &Value) -> bool {
    let (mut xs, mut ys, mut scale) = (Vec::new(), Vec::new(), Vec::new());
    leaves(a, &mut xs);
    leaves(b, &mut ys);
    for o in operands {
        let mut vs = Vec::new();
        leaves(o, &mut vs);
        scale.resize(scale.len().max(vs.len()), 0.0);
        for (m, v) in scale.iter_mut().zip(vs) {
            let v = v.as_f64().abs();
            if v.is_finite() {
                *m += v;
            }
        }
    }
    xs.len() == ys.len()
        && xs.iter().zip(&ys).enumerate().all(|(k, (x, y))| {
            let m = scale.get(k).copied().unwrap_or(0.0);
            match (x, y) {
                (Scalar::F32(p), Scalar::F32(q)) => close(*p as f64, *q as f64, m, 1e-4),
                (Scalar::F64(p), Scalar::F64(q)) => close(*p, *q, m, 1e-9),
                _ => x == y,
            }
        })
}

/// The scalars of a value, in order.
fn leaves(v: &Value, out: &mut Vec<Scalar>) {
    match v {
        Value::Scalar(s) => out.push(*s),
        Value::Tuple(vs) => vs.iter().for_each(|x| leaves(x, out)),
    }
}

fn close(a: f64, b: f64, magnitude: f64, tol: f64) -> bool {
    a == b
        || (a.is_nan() && b.is_nan())
        || (a - b).abs() <= tol * (1.0 + a.abs() + b.abs() + magnitude)
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Scalar(s) => format_scalar(s),
        Value::Tuple(vs) => format!("({})", vs.iter().map(show).collect::<Vec<_>>().join(", ")),
    }
}
