//! A small evaluator of scalar HIR expressions, used to test monoid laws at compile time.
//! It covers what `fn` and monoid bodies may contain: literals, locals, arithmetic, casts,
//! tuples, fields, `if`, `let` blocks, math built-ins and calls of scalar `fn`s.
//!
//! Every operator is applied by [`crate::base::ops`], the functions the interpreter and the
//! coordinator use too, so laws are tested under the semantics the program runs with. This
//! file only decides what is evaluated and in which order.

use flow_runtime::Scalar;

use crate::base::ops::{self, OpError};
use crate::hir::ops::builtin_binop;
use crate::hir::{self, BinOp, Builtin, ExprKind};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Tuple(Vec<Value>),
}

/// Why an expression could not be evaluated (it uses something outside the scalar subset).
#[derive(Debug)]
pub struct Unsupported(pub String);

/// The value of `body` with its first locals bound to `args`.
pub fn eval_body(
    prog: &hir::Program,
    body: &hir::Body,
    args: Vec<Value>,
) -> Result<Value, Unsupported> {
    let mut env: Vec<Option<Value>> = vec![None; body.locals.len()];
    for (slot, a) in env.iter_mut().zip(args) {
        *slot = Some(a);
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
            Value::Scalar(ops::unary(*op, a).map_err(op_error)?)
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
            Value::Scalar(ops::binary(*op, x, y).map_err(op_error)?)
        }
        ExprKind::Cast(a, d) => Value::Scalar(sc(eval(prog, a, env, depth + 1)?)?.cast(*d)),
        ExprKind::Tuple(xs) => Value::Tuple(
            xs.iter()
                .map(|x| eval(prog, x, env, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        // A field of a local copies that field only, not the whole tuple.
        ExprKind::Field(a, i) => match (&a.kind, i) {
            (ExprKind::Local(id), i) => match env.get(id.0 as usize) {
                Some(Some(Value::Tuple(vs))) if *i < vs.len() => vs[*i].clone(),
                _ => return Err(Unsupported("field of a non-tuple".into())),
            },
            (_, i) => match eval(prog, a, env, depth + 1)? {
                Value::Tuple(mut vs) if *i < vs.len() => vs.swap_remove(*i),
                _ => return Err(Unsupported("field of a non-tuple".into())),
            },
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
            Value::Scalar(builtin(*b, &vals)?)
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

/// A pointwise built-in applied to scalars.
fn builtin(b: Builtin, xs: &[Scalar]) -> Result<Scalar, Unsupported> {
    match (b, xs) {
        (Builtin::Math(m), [x]) => ops::math(m, *x).map_err(op_error),
        (Builtin::Select, [Scalar::Bool(c), x, y]) => Ok(if *c { *x } else { *y }),
        (_, [x, y]) => match builtin_binop(b) {
            Some(op) => ops::binary(op, *x, *y).map_err(op_error),
            None => Err(Unsupported(format!("`{}`", b.name()))),
        },
        _ => Err(Unsupported(format!("`{}`", b.name()))),
    }
}

/// An operator that fails at run time (integer division by zero, `MIN / -1`) has no value to
/// test a law on.
fn op_error(e: OpError) -> Unsupported {
    Unsupported(e.to_string())
}
