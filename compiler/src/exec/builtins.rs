//! The coordinator's built-ins (`print`, `load`, `save`, `assert`, `assert_close`, `args`,
//! `eval`, `len`, `parse_*`, …): what each does with its (forced) arguments.

use std::rc::Rc;

use flow_runtime::{format_scalar, Scalar, Tensor};

use super::{bug, fail, show, Assertion, Frame, Machine, RResult, RunError, RunErrorKind, Value};
use crate::base::Span;
use crate::hir::{self, Builtin, Ty};

impl<'p, 'h> Machine<'p, 'h> {
    pub(super) fn builtin(
        &mut self,
        frame: &mut Frame<'p>,
        b: Builtin,
        args: &'p [hir::Expr],
        e: &'p hir::Expr,
    ) -> RResult<Value> {
        let span = e.span;
        match b {
            Builtin::Print => {
                let exprs: Vec<&'p hir::Expr> = args.iter().collect();
                let parts: Vec<String> = self
                    .force_together(frame, &exprs)?
                    .iter()
                    .map(show)
                    .collect();
                let mut line = parts.join(" ");
                line.push('\n');
                if let Some(p) = &mut self.printed {
                    p.push_str(&line);
                }
                self.host.stdout(&line);
                Ok(Value::Unit)
            }
            Builtin::Assert => {
                let c = self.condition(frame, &args[0])?;
                if c {
                    return Ok(Value::Unit);
                }
                let msg = match args.get(1) {
                    Some(m) => match self.eval(frame, m)? {
                        Value::Str(s) => s,
                        other => show(&other),
                    },
                    None => "the condition is false".to_string(),
                };
                Err(RunError::new(
                    RunErrorKind::Assertion(Assertion::False { message: msg }),
                    span,
                ))
            }
            Builtin::AssertClose => {
                let a = self.eval(frame, &args[0])?;
                let a = self.force(a, args[0].span)?;
                let bv = self.eval(frame, &args[1])?;
                let bv = self.force(bv, args[1].span)?;
                let tol = match args.get(2) {
                    Some(t) => match self.eval(frame, t).and_then(|v| self.force(v, t.span))? {
                        Value::Scalar(s) => s.as_f64(),
                        _ => 1e-5,
                    },
                    None => 1e-5,
                };
                assert_close(&a, &bv, tol, span)?;
                Ok(Value::Unit)
            }
            Builtin::Eval => {
                let v = self.eval(frame, &args[0])?;
                self.force(v, span)
            }
            Builtin::Args => Ok(Value::List(
                self.host.args().into_iter().map(Value::Str).collect(),
            )),
            Builtin::Len if args.len() == 2 => {
                // `list[i]`, which the checker writes as a two-argument `len`.
                let l = self.eval(frame, &args[0])?;
                let i = self.int(frame, &args[1])?;
                match l {
                    Value::List(vs) => match usize::try_from(i).ok().and_then(|i| vs.get(i)) {
                        Some(v) => Ok(v.clone()),
                        None => fail(
                            span,
                            format!(
                                "index {i} is out of range for a list of {} element(s)",
                                vs.len()
                            ),
                        ),
                    },
                    _ => bug(span, "indexing a non-list"),
                }
            }
            Builtin::Len => match self.eval(frame, &args[0])? {
                Value::List(vs) => Ok(Value::Scalar(Scalar::I64(vs.len() as i64))),
                // A tensor's first dimension: a lazy one's shape is known without running it.
                v => match self.shape_of(&v).as_deref() {
                    Some([n, ..]) => Ok(Value::Scalar(Scalar::I64(*n as i64))),
                    _ => bug(span, "len of a non-list"),
                },
            },
            Builtin::Shape => {
                let v = self.eval(frame, &args[0])?;
                match self.shape_of(&v) {
                    Some(s) => Ok(Value::List(
                        s.iter()
                            .map(|n| Value::Scalar(Scalar::I64(*n as i64)))
                            .collect(),
                    )),
                    None => bug(span, "shape of a non-tensor"),
                }
            }
            Builtin::ParseI64 | Builtin::ParseF64 => {
                let Value::Str(s) = self.eval(frame, &args[0])? else {
                    return bug(span, "parse of a non-string");
                };
                let t = s.trim();
                if b == Builtin::ParseI64 {
                    t.parse::<i64>()
                        .map(|v| Value::Scalar(Scalar::I64(v)))
                        .or_else(|_| fail(span, format!("`{s}` is not an integer")))
                } else {
                    t.parse::<f64>()
                        .map(|v| Value::Scalar(Scalar::F64(v)))
                        .or_else(|_| fail(span, format!("`{s}` is not a number")))
                }
            }
            Builtin::Save => {
                let Value::Str(path) = self.eval(frame, &args[0])? else {
                    return bug(span, "a path that is not a string");
                };
                let v = self.eval(frame, &args[1])?;
                // A tensor of tuples: one file per field (`field_paths`).
                let (paths, values) = match self.force(v, args[1].span)? {
                    Value::Tuple(vs) => (field_paths(&path, vs.len()), vs),
                    v => (vec![path.to_string()], vec![v]),
                };
                for (path, v) in paths.iter().zip(values) {
                    let t = match self.force(v, args[1].span)? {
                        Value::Tensor(t) => (*t).clone(),
                        Value::Scalar(s) => Tensor::from_scalar(s),
                        _ => return fail(span, "`save` writes a tensor"),
                    };
                    let bytes = flow_runtime::write_npy(&t);
                    self.host
                        .write_file(path, &bytes)
                        .or_else(|x| fail(span, format!("cannot write `{path}`: {x}")))?;
                }
                Ok(Value::Unit)
            }
            Builtin::Load => {
                let Value::Str(path) = self.eval(frame, &args[0])? else {
                    return bug(span, "a path that is not a string");
                };
                let Ty::Tuple(fields) = &e.ty else {
                    let t = self.load_npy(&path, &e.ty, span)?;
                    if t.shape.is_empty() {
                        return Ok(Value::Scalar(t.get(0)));
                    }
                    return Ok(Value::Tensor(Rc::new(t)));
                };
                // A tensor of tuples: one file per field, all of one shape.
                let mut items: Vec<Value> = Vec::new();
                let mut first: Option<(String, Vec<usize>)> = None;
                for (path, (_, ty)) in field_paths(&path, fields.len()).iter().zip(fields) {
                    let t = self.load_npy(path, ty, span)?;
                    if let Some((p0, s0)) = first.as_ref().filter(|(_, s0)| *s0 != t.shape) {
                        return fail(span, format!(
                            "the fields of a tensor of tuples have one shape, but `{p0}` has shape {} and `{path}` {}",
                            flow_runtime::format_shape(s0),
                            flow_runtime::format_shape(&t.shape)
                        ));
                    }
                    first.get_or_insert((path.clone(), t.shape.clone()));
                    items.push(Value::Tensor(Rc::new(t)));
                }
                Ok(Value::Tuple(items))
            }
            _ if b.is_prim() => self.prim(frame, b, args, e),
            _ => self.lazy(frame, e),
        }
    }
}

impl<'p, 'h> Machine<'p, 'h> {
    /// The `.npy` file at `path`, checked against the type `ty` the program expects of it.
    fn load_npy(&mut self, path: &str, ty: &Ty, span: Span) -> RResult<Tensor> {
        let bytes = self
            .host
            .read_file(path)
            .or_else(|x| fail(span, format!("cannot read `{path}`: {x}")))?;
        let t = flow_runtime::read_npy(&bytes).or_else(|x| fail(span, format!("`{path}`: {x}")))?;
        check_loaded(&t, ty, path, span)?;
        self.check_loaded_vars(&t, ty, path, span)?;
        Ok(t)
    }
}

/// The files of a tensor of `n` tuples saved as `path`: one `.npy` per field, field `k` in
/// `STEM.k.npy` where `STEM` is `path` without its `.npy` (`p.npy` → `p.0.npy`, `p.1.npy`),
/// each a plain array NumPy's `np.load` reads.
fn field_paths(path: &str, n: usize) -> Vec<String> {
    let stem = path.strip_suffix(".npy").unwrap_or(path);
    (0..n).map(|k| format!("{stem}.{k}.npy")).collect()
}

/// Checks a loaded tensor against the type the program expects of it.
fn check_loaded(t: &Tensor, ty: &Ty, path: &str, span: Span) -> RResult<()> {
    let want_d = ty.dtype();
    if want_d != Some(t.dtype()) {
        return fail(
            span,
            format!(
                "`{path}` holds {} elements, but the program expects `{ty}`",
                t.dtype()
            ),
        );
    }
    let dims = ty.dims();
    if dims.len() != t.shape.len() {
        return fail(
            span,
            format!(
                "`{path}` has shape {}, but the program expects `{ty}`",
                flow_runtime::format_shape(&t.shape)
            ),
        );
    }
    for (d, n) in dims.iter().zip(&t.shape) {
        if let Some(k) = d.as_known() {
            if k != *n as i64 {
                return fail(
                    span,
                    format!(
                        "`{path}` has shape {}, but the program expects `{ty}`",
                        flow_runtime::format_shape(&t.shape)
                    ),
                );
            }
        }
    }
    Ok(())
}

fn assert_close(a: &Value, b: &Value, tol: f64, span: Span) -> RResult<()> {
    let as_tensor = |v: &Value| -> Option<Tensor> {
        match v {
            Value::Tensor(t) => Some((**t).clone()),
            Value::Scalar(s) => Some(Tensor::from_scalar(*s)),
            _ => None,
        }
    };
    let (Some(x), Some(y)) = (as_tensor(a), as_tensor(b)) else {
        return fail(span, "`assert_close` compares numbers or tensors");
    };
    if x.shape != y.shape {
        return Err(RunError::new(
            RunErrorKind::Assertion(Assertion::ShapesDiffer {
                a: x.shape.clone(),
                b: y.shape.clone(),
            }),
            span,
        ));
    }
    let mut worst: Option<(usize, f64, f64, f64)> = None;
    for i in 0..x.len() {
        let (p, q) = (x.get(i).as_f64(), y.get(i).as_f64());
        let ok = p == q || (p.is_nan() && q.is_nan()) || (p - q).abs() <= tol * (1.0 + q.abs());
        if !ok {
            let err = (p - q).abs();
            if worst.is_none_or(|w| err > w.3 || err.is_nan()) {
                worst = Some((i, p, q, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, p, q, _)) => {
            let at = (!x.shape.is_empty()).then(|| unravel(i, &x.shape));
            Err(RunError::new(
                RunErrorKind::Assertion(Assertion::NotClose {
                    at,
                    a: format_scalar(&x.get(i)),
                    b: format_scalar(&y.get(i)),
                    distance: (p - q).abs(),
                    tolerance: tol,
                }),
                span,
            ))
        }
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> String {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        if shape[k] > 0 {
            idx[k] = i % shape[k];
            i /= shape[k];
        }
    }
    format!(
        "[{}]",
        idx.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
