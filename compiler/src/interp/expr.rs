//! Evaluating a scalar expression at one point: values, scopes, lazy reads through a
//! projection and its edge rule, and the faults of scalar operators.

use super::*;

/// A scalar or tuple value of an expression.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Scalar(Scalar),
    Tuple(Vec<Value>),
}

impl Value {
    /// The value of a flat list of fields: the scalar itself when there is one, else a tuple.
    pub(super) fn flat(fields: &[Scalar]) -> Value {
        match fields {
            [s] => Value::Scalar(*s),
            _ => Value::Tuple(fields.iter().map(|&s| Value::Scalar(s)).collect()),
        }
    }

    /// The scalar, or an internal fault for a tuple.
    pub(super) fn scalar(self) -> Result<Scalar, Fault> {
        match self {
            Value::Scalar(s) => Ok(s),
            Value::Tuple(_) => Err(Fault::Internal("a tuple where a scalar belongs")),
        }
    }

    /// Appends the scalars of the value, in order, to `out`.
    pub(super) fn flatten(self, out: &mut Vec<Scalar>) {
        match self {
            Value::Scalar(s) => out.push(s),
            Value::Tuple(items) => items.into_iter().for_each(|v| v.flatten(out)),
        }
    }
}

/// Everything an expression can see at one point.
pub(super) struct Scope<'a> {
    /// The coordinates of the point (index variables).
    pub(super) idx: &'a [i64],
    /// The node's reads.
    pub(super) reads: &'a [Read],
    /// The values of all earlier nodes.
    pub(super) values: &'a [Vec<Tensor>],
    /// The parameters of the monoid function being evaluated.
    pub(super) params: &'a [Value],
}

/// The scope of a monoid function: its parameters and nothing else.
pub(super) fn monoid_scope(params: &[Value]) -> Scope<'_> {
    Scope {
        idx: &[],
        reads: &[],
        values: &[],
        params,
    }
}

/// Evaluates a scalar expression at one point.
pub(super) fn eval_expr(e: &ScalarExpr, scope: &Scope<'_>) -> Result<Value, Fault> {
    let scalar = |e: &ScalarExpr| eval_expr(e, scope)?.scalar();
    Ok(Value::Scalar(match e {
        ScalarExpr::Const(s) => *s,
        ScalarExpr::Index(k) => Scalar::I64(
            *scope
                .idx
                .get(*k as usize)
                .ok_or(Fault::Internal("index variable out of range"))?,
        ),
        ScalarExpr::Read(k) => read_value(scope, *k as usize)?,
        ScalarExpr::Gather(k, coords) => {
            let mut at = Vec::with_capacity(coords.len());
            for c in coords {
                match scalar(c)? {
                    Scalar::I64(v) => at.push(v),
                    _ => return Err(Fault::Internal("a gather coordinate that is not an i64")),
                }
            }
            match gather_value(scope, *k as usize, &at) {
                Err(Fault::IndexOutOfRange(mut m)) => {
                    for (shown, c) in m.coords.iter_mut().zip(coords) {
                        if let Some(v) = unsigned_index(c, scope) {
                            *shown = v;
                        }
                    }
                    return Err(Fault::IndexOutOfRange(m));
                }
                v => v?,
            }
        }
        ScalarExpr::Param(k) => {
            return scope
                .params
                .get(*k as usize)
                .cloned()
                .ok_or(Fault::Internal("parameter out of range"))
        }
        ScalarExpr::Unary(op, x) => ops::unary(*op, scalar(x)?).map_err(op_fault)?,
        ScalarExpr::Binary(BinOp::And, a, b) => match scalar(a)? {
            Scalar::Bool(true) => scalar(b)?,
            Scalar::Bool(false) => Scalar::Bool(false),
            _ => return Err(Fault::Internal("`and` of a non-bool")),
        },
        ScalarExpr::Binary(BinOp::Or, a, b) => match scalar(a)? {
            Scalar::Bool(false) => scalar(b)?,
            Scalar::Bool(true) => Scalar::Bool(true),
            _ => return Err(Fault::Internal("`or` of a non-bool")),
        },
        ScalarExpr::Binary(op, a, b) => {
            let (a, b) = (scalar(a)?, scalar(b)?);
            ops::binary(*op, a, b).map_err(op_fault)?
        }
        ScalarExpr::Cast(x, to) => scalar(x)?.cast(*to),
        ScalarExpr::Call(f, x) => ops::math(*f, scalar(x)?).map_err(op_fault)?,
        ScalarExpr::Select(c, a, b) => {
            return match scalar(c)? {
                Scalar::Bool(true) => eval_expr(a, scope),
                Scalar::Bool(false) => eval_expr(b, scope),
                _ => Err(Fault::Internal("select on a non-bool")),
            }
        }
        ScalarExpr::Tuple(items) => {
            return Ok(Value::Tuple(
                items
                    .iter()
                    .map(|x| eval_expr(x, scope))
                    .collect::<Result<_, _>>()?,
            ))
        }
        ScalarExpr::Field(x, k) => {
            return match eval_expr(x, scope)? {
                Value::Tuple(mut items) if (*k as usize) < items.len() => {
                    Ok(items.swap_remove(*k as usize))
                }
                _ => Err(Fault::Internal("field of a non-tuple")),
            }
        }
    }))
}

/// The value of read `k` at the current point, through its projection and edge rule.
pub(super) fn read_value(scope: &Scope<'_>, k: usize) -> Result<Scalar, Fault> {
    let r = scope
        .reads
        .get(k)
        .ok_or(Fault::Internal("read out of range"))?;
    let t = port_value(scope.values, r.src())?;
    if r.proj.len() != t.rank() {
        return Err(Fault::Internal("projection rank differs from the tensor's"));
    }
    let mut coords = Vec::with_capacity(r.proj.len());
    for a in &r.proj {
        coords.push(
            a.eval(scope.idx)
                .ok_or(Fault::Internal("projection variable out of range"))?,
        );
    }
    let inside = coords
        .iter()
        .zip(&t.shape)
        .all(|(&c, &extent)| 0 <= c && c < extent as i128);
    let coords: Vec<i64> = match r.edge {
        _ if inside => coords.iter().map(|&c| c as i64).collect(),
        Edge::Strict => {
            return Err(Fault::OutOfBounds {
                read: k,
                coords,
                shape: t.shape.clone(),
            })
        }
        Edge::Pad(s) => return Ok(s),
        Edge::Clamp => {
            if t.is_empty() {
                return Err(Fault::Internal("clamped read of an empty tensor"));
            }
            coords
                .iter()
                .zip(&t.shape)
                .map(|(&c, &extent)| c.clamp(0, extent as i128 - 1) as i64)
                .collect()
        }
    };
    element(t, &coords)
}

/// The element of read `k`'s whole tensor at run-time coordinates `at`: every coordinate is
/// checked against its extent (never clamped, never read outside).
pub(super) fn gather_value(scope: &Scope<'_>, k: usize, at: &[i64]) -> Result<Scalar, Fault> {
    let r = scope
        .reads
        .get(k)
        .ok_or(Fault::Internal("read out of range"))?;
    let t = port_value(scope.values, r.src())?;
    if at.len() != t.rank() {
        return Err(Fault::Internal("gather rank differs from the tensor's"));
    }
    let inside = at
        .iter()
        .zip(&t.shape)
        .all(|(&c, &extent)| usize::try_from(c).is_ok_and(|c| c < extent));
    if !inside {
        return Err(Fault::IndexOutOfRange(Box::new(GatherMiss {
            read: k,
            table: String::new(),
            coords: at.iter().map(|&c| c as i128).collect(),
            shape: t.shape.clone(),
        })));
    }
    element(t, at)
}

/// The unsigned value a gather coordinate had before the cast that made it the `i64`
/// coordinate, for an error message: that cast wraps a `u64` past `i64::MAX` (`2^64 - 1`
/// would read as `-1`). `None` for any other coordinate (shown as it is).
pub(super) fn unsigned_index(c: &ScalarExpr, scope: &Scope<'_>) -> Option<i128> {
    let ScalarExpr::Cast(inner, DType::I64) = c else {
        return None;
    };
    match eval_expr(inner, scope).and_then(Value::scalar) {
        Ok(Scalar::U64(v)) => Some(v as i128),
        _ => None,
    }
}

/// The element of `t` at in-bounds coordinates `coords`.
pub(super) fn element(t: &Tensor, coords: &[i64]) -> Result<Scalar, Fault> {
    let strides = row_major_strides(&t.shape);
    let mut lin = 0usize;
    for ((&c, &stride), &extent) in coords.iter().zip(&strides).zip(&t.shape) {
        let c = usize::try_from(c)
            .ok()
            .filter(|&c| c < extent)
            .ok_or(Fault::Internal("element coordinate out of bounds"))?;
        lin += c * stride;
    }
    if coords.len() != t.rank() || lin >= t.len() {
        return Err(Fault::Internal("element coordinate out of bounds"));
    }
    Ok(t.get(lin))
}

/// The fault of a failed scalar operator.
pub(super) fn op_fault(e: OpError) -> Fault {
    match e {
        OpError::DivByZero => Fault::DivByZero,
        OpError::DivOverflow => Fault::DivOverflow,
        OpError::Operands => Fault::Internal("operator applied to operands of the wrong type"),
    }
}
