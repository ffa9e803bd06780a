//! A small evaluator of scalar HIR expressions, used to test monoid laws at compile time.
//! It covers what `fn` and monoid bodies may contain: literals, locals, arithmetic, casts,
//! tuples, fields, `if`, `let` blocks, math built-ins and calls of scalar `fn`s.

use flow_runtime::fastmath::FlowExp;
use flow_runtime::{DType, Scalar};

use crate::hir::{self, BinOp, Builtin, ExprKind, MathFn, UnOp};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Tuple(Vec<Value>),
}

/// Why an expression could not be evaluated (it uses something outside the scalar subset).
#[derive(Debug)]
pub struct Unsupported(pub String);

pub fn eval_body(
    prog: &hir::Program,
    body: &hir::Body,
    args: &[Value],
) -> Result<Value, Unsupported> {
    let mut env: Vec<Option<Value>> = vec![None; body.locals.len()];
    for (slot, a) in env.iter_mut().zip(args) {
        *slot = Some(a.clone());
    }
    eval(prog, &body.expr, &mut env, 0)
}

fn eval(
    prog: &hir::Program,
    e: &hir::Expr,
    env: &mut Vec<Option<Value>>,
    depth: usize,
) -> Result<Value, Unsupported> {
    if depth > 200 {
        return Err(Unsupported("evaluation too deep".into()));
    }
    let sc = |v: Value| match v {
        Value::Scalar(s) => Ok(s),
        Value::Tuple(_) => Err(Unsupported("tuple where a scalar is needed".into())),
    };
    Ok(match &e.kind {
        ExprKind::Lit(s) => Value::Scalar(*s),
        ExprKind::Local(id) => env
            .get(id.0 as usize)
            .cloned()
            .flatten()
            .ok_or_else(|| Unsupported("unbound local".into()))?,
        ExprKind::Unary(op, a) => {
            let a = sc(eval(prog, a, env, depth + 1)?)?;
            Value::Scalar(unary(*op, a))
        }
        ExprKind::Binary(op, a, b) => {
            let x = sc(eval(prog, a, env, depth + 1)?)?;
            // `&&` and `||` short-circuit.
            match (op, x) {
                (BinOp::And, Scalar::Bool(false)) => return Ok(Value::Scalar(Scalar::Bool(false))),
                (BinOp::Or, Scalar::Bool(true)) => return Ok(Value::Scalar(Scalar::Bool(true))),
                _ => {}
            }
            let y = sc(eval(prog, b, env, depth + 1)?)?;
            Value::Scalar(
                binary(*op, x, y).ok_or_else(|| Unsupported("integer division by zero".into()))?,
            )
        }
        ExprKind::Cast(a, d) => Value::Scalar(sc(eval(prog, a, env, depth + 1)?)?.cast(*d)),
        ExprKind::Tuple(xs) => Value::Tuple(
            xs.iter()
                .map(|x| eval(prog, x, env, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Field(a, i) => match eval(prog, a, env, depth + 1)? {
            Value::Tuple(mut vs) if *i < vs.len() => vs.swap_remove(*i),
            _ => return Err(Unsupported("field of a non-tuple".into())),
        },
        ExprKind::If { cond, then, els } => {
            let c = sc(eval(prog, cond, env, depth + 1)?)?;
            if c == Scalar::Bool(true) {
                eval(prog, then, env, depth + 1)?
            } else {
                match els {
                    Some(x) => eval(prog, x, env, depth + 1)?,
                    None => Value::Tuple(Vec::new()),
                }
            }
        }
        ExprKind::Block(b) => {
            for s in &b.stmts {
                match s {
                    hir::Stmt::Let { local, value } => {
                        let v = eval(prog, value, env, depth + 1)?;
                        env[local.0 as usize] = Some(v);
                    }
                    hir::Stmt::Expr(x) => {
                        eval(prog, x, env, depth + 1)?;
                    }
                    _ => return Err(Unsupported("statement".into())),
                }
            }
            match &b.tail {
                Some(t) => eval(prog, t, env, depth + 1)?,
                None => Value::Tuple(Vec::new()),
            }
        }
        ExprKind::Builtin(b, xs) => {
            let vals: Vec<Scalar> = xs
                .iter()
                .map(|x| eval(prog, x, env, depth + 1).and_then(sc))
                .collect::<Result<_, _>>()?;
            Value::Scalar(builtin(*b, &vals).ok_or_else(|| Unsupported(format!("`{}`", b.name())))?)
        }
        ExprKind::Call(f, xs) => {
            let func = prog.func(*f);
            if func.kind != hir::FuncKind::Fn {
                return Err(Unsupported("call of an op".into()));
            }
            let args: Vec<Value> = xs
                .iter()
                .map(|x| eval(prog, x, env, depth + 1))
                .collect::<Result<_, _>>()?;
            let mut fenv: Vec<Option<Value>> = vec![None; func.body.locals.len()];
            for (p, a) in func.params.iter().zip(args) {
                fenv[p.0 as usize] = Some(a);
            }
            eval(prog, &func.body.expr, &mut fenv, depth + 1)?
        }
        _ => return Err(Unsupported("tensor expression".into())),
    })
}

pub fn unary(op: UnOp, a: Scalar) -> Scalar {
    match (op, a) {
        (UnOp::Neg, Scalar::F32(x)) => Scalar::F32(-x),
        (UnOp::Neg, Scalar::F64(x)) => Scalar::F64(-x),
        (UnOp::Neg, Scalar::I32(x)) => Scalar::I32(x.wrapping_neg()),
        (UnOp::Neg, Scalar::I64(x)) => Scalar::I64(x.wrapping_neg()),
        (UnOp::Not, Scalar::Bool(b)) => Scalar::Bool(!b),
        (_, other) => other,
    }
}

/// Binary operators on equal-typed scalars; `None` for integer division by zero.
pub fn binary(op: BinOp, a: Scalar, b: Scalar) -> Option<Scalar> {
    use Scalar::*;
    macro_rules! float {
        ($x:expr, $y:expr, $w:path) => {
            match op {
                BinOp::Add => $w($x + $y),
                BinOp::Sub => $w($x - $y),
                BinOp::Mul => $w($x * $y),
                BinOp::Div => $w($x / $y),
                BinOp::Rem => $w($x % $y),
                BinOp::Eq => Bool($x == $y),
                BinOp::Ne => Bool($x != $y),
                BinOp::Lt => Bool($x < $y),
                BinOp::Le => Bool($x <= $y),
                BinOp::Gt => Bool($x > $y),
                BinOp::Ge => Bool($x >= $y),
                _ => return None,
            }
        };
    }
    macro_rules! int {
        ($x:expr, $y:expr, $w:path) => {
            match op {
                BinOp::Add => $w($x.wrapping_add($y)),
                BinOp::Sub => $w($x.wrapping_sub($y)),
                BinOp::Mul => $w($x.wrapping_mul($y)),
                BinOp::Div => $w($x.checked_div($y)?),
                BinOp::Rem => $w($x.checked_rem($y)?),
                BinOp::Shl => $w($x.wrapping_shl($y as u32)),
                BinOp::Shr => $w($x.wrapping_shr($y as u32)),
                BinOp::Eq => Bool($x == $y),
                BinOp::Ne => Bool($x != $y),
                BinOp::Lt => Bool($x < $y),
                BinOp::Le => Bool($x <= $y),
                BinOp::Gt => Bool($x > $y),
                BinOp::Ge => Bool($x >= $y),
                _ => return None,
            }
        };
    }
    Some(match (a, b) {
        (F32(x), F32(y)) => float!(x, y, F32),
        (F64(x), F64(y)) => float!(x, y, F64),
        (I32(x), I32(y)) => int!(x, y, I32),
        (I64(x), I64(y)) => int!(x, y, I64),
        (Bool(x), Bool(y)) => match op {
            BinOp::And => Bool(x && y),
            BinOp::Or => Bool(x || y),
            BinOp::Eq => Bool(x == y),
            BinOp::Ne => Bool(x != y),
            _ => return None,
        },
        _ => return None,
    })
}

pub fn builtin(b: Builtin, xs: &[Scalar]) -> Option<Scalar> {
    use Scalar::*;
    let f = |x: f64, d: DType| Scalar::F64(x).cast(d);
    Some(match (b, xs) {
        (Builtin::Math(m), [x]) => {
            let d = x.dtype();
            if let (MathFn::Abs, I32(v)) = (m, x) {
                return Some(I32(v.wrapping_abs()));
            }
            if let (MathFn::Abs, I64(v)) = (m, x) {
                return Some(I64(v.wrapping_abs()));
            }
            let v = x.as_f64();
            match (m, x) {
                (_, F32(x)) => F32(math_f32(m, *x)),
                _ => f(math_f64(m, v), d),
            }
        }
        (Builtin::Max, [x, y]) => {
            if binary(BinOp::Gt, *x, *y)? == Bool(true) || is_nan(x) {
                *x
            } else {
                *y
            }
        }
        (Builtin::Min, [x, y]) => {
            if binary(BinOp::Lt, *x, *y)? == Bool(true) || is_nan(x) {
                *x
            } else {
                *y
            }
        }
        (Builtin::Pow, [F32(x), F32(y)]) => F32(x.powf(*y)),
        (Builtin::Pow, [F64(x), F64(y)]) => F64(x.powf(*y)),
        (Builtin::Select, [Bool(c), a, b]) => {
            if *c {
                *a
            } else {
                *b
            }
        }
        _ => return None,
    })
}

fn is_nan(s: &Scalar) -> bool {
    match s {
        Scalar::F32(x) => x.is_nan(),
        Scalar::F64(x) => x.is_nan(),
        _ => false,
    }
}

/// Math built-ins in one float type; both types share one definition.
macro_rules! math_fn {
    ($name:ident, $t:ty) => {
        pub fn $name(m: MathFn, x: $t) -> $t {
            match m {
                MathFn::Abs => x.abs(),
                MathFn::Exp => x.flow_exp(),
                MathFn::Log => x.ln(),
                MathFn::Sqrt => x.sqrt(),
                MathFn::Sin => x.sin(),
                MathFn::Cos => x.cos(),
                MathFn::Tanh => x.tanh(),
                MathFn::Floor => x.floor(),
                MathFn::Ceil => x.ceil(),
            }
        }
    };
}

math_fn!(math_f32, f32);
math_fn!(math_f64, f64);
