//! Shapes at dispatch: binding a callee's shape variables from its arguments' shapes, checking
//! parameters and results against them, evaluating dimensions, and the bounds check of every
//! strict read.

use super::*;

impl<'p> Lowerer<'p> {
    pub(super) fn bind_shapes(
        &self,
        pty: &Ty,
        arg: &TVal,
        shapes: &mut HashMap<String, i64>,
        fname: &str,
        span: Span,
    ) -> LResult<()> {
        match (pty, arg) {
            (Ty::Tensor(_, dims), TVal::Port(p)) => {
                let shape = self.ty(*p).shape.clone();
                if shape.len() != dims.len() {
                    return err(
                        span,
                        Kind::Rank {
                            func: fname.to_string(),
                            rank: dims.len(),
                            shape,
                        },
                    );
                }
                // The variables this argument bound, to tell a non-square argument of
                // `f32[N, N]` from two arguments that disagree.
                let mut mine: Vec<&str> = Vec::new();
                for (d, n) in dims.iter().zip(&shape) {
                    if let Some(v) = d.as_var() {
                        match shapes.get(v) {
                            Some(prev) if *prev != *n as i64 && mine.contains(&v) => {
                                return err(
                                    span,
                                    Kind::VarWithinArgument {
                                        func: fname.to_string(),
                                        param: pty.clone(),
                                        var: v.to_string(),
                                        first: *prev,
                                        second: *n,
                                        shape,
                                    },
                                );
                            }
                            Some(prev) if *prev != *n as i64 => {
                                return err(
                                    span,
                                    Kind::VarAcrossArguments {
                                        func: fname.to_string(),
                                        var: v.to_string(),
                                        earlier: *prev,
                                        now: *n,
                                        shape,
                                    },
                                );
                            }
                            _ => {
                                shapes.insert(v.to_string(), *n as i64);
                                mine.push(v);
                            }
                        }
                    }
                }
                // An affine dimension with one unknown variable (`2 * H + 1`) determines it
                // when the size fits; `check_shapes` reports a size that does not.
                for (d, n) in dims.iter().zip(&shape) {
                    let unknown: Vec<(&String, &i64)> = d
                        .terms
                        .iter()
                        .filter(|(v, _)| !shapes.contains_key(*v))
                        .collect();
                    let [(v, c)] = unknown.as_slice() else {
                        continue;
                    };
                    let known = d
                        .terms
                        .iter()
                        .filter(|(w, _)| w != v)
                        .map(|(w, k)| shapes[w] * k)
                        .sum::<i64>();
                    let rest = *n as i64 - d.konst - known;
                    if rest % **c == 0 && rest / **c >= 0 {
                        shapes.insert((*v).clone(), rest / **c);
                    } else {
                        return err(
                            span,
                            Kind::NoSolution {
                                func: fname.to_string(),
                                var: (*v).clone(),
                                dim: d.clone(),
                                size: *n,
                            },
                        );
                    }
                }
                Ok(())
            }
            (Ty::Tuple(fs), TVal::Tuple(vs)) => {
                for ((_, t), v) in fs.iter().zip(vs) {
                    self.bind_shapes(t, v, shapes, fname, span)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn check_shapes(
        &mut self,
        pty: &Ty,
        arg: &TVal,
        shapes: &HashMap<String, i64>,
        fname: &str,
        pname: &str,
        span: Span,
    ) -> LResult<()> {
        if let (Ty::Tensor(..) | Ty::Scalar(_), TVal::Port(p)) = (pty, arg) {
            let got = self.ty(*p).shape.clone();
            let mut want = Vec::new();
            for d in pty.dims() {
                match eval_dim(d, shapes) {
                    Some(n) => want.push(n),
                    None => {
                        // A variable only in an affine dimension: solve `a·V + k = n`.
                        return err(
                            span,
                            Kind::Undetermined {
                                func: fname.to_string(),
                                param: pname.to_string(),
                                dim: d.clone(),
                            },
                        );
                    }
                }
            }
            let want: Vec<usize> = want.iter().map(|n| (*n).max(0) as usize).collect();
            if want != got {
                return err(
                    span,
                    Kind::ParamShape {
                        func: fname.to_string(),
                        param: pname.to_string(),
                        ty: pty.clone(),
                        want,
                        got,
                    },
                );
            }
        }
        Ok(())
    }

    pub(super) fn concrete(
        &self,
        t: &Ty,
        frame: &Frame<'_>,
        span: Span,
    ) -> LResult<Option<TensorTy>> {
        Ok(match t {
            Ty::Scalar(d) => Some(TensorTy::new(*d, Vec::new())),
            Ty::Tensor(d, dims) => {
                let mut shape = Vec::new();
                for dim in dims {
                    let n = self.dim(dim, frame, span)?;
                    shape.push(n);
                }
                Some(TensorTy::new(*d, shape))
            }
            _ => None,
        })
    }

    pub(super) fn check_result(
        &self,
        res: &TVal,
        want: &Option<TensorTy>,
        fname: &str,
        span: Span,
    ) -> LResult<()> {
        if let (TVal::Port(p), Some(w)) = (res, want) {
            let got = self.ty(*p);
            if got.shape != w.shape {
                return err(
                    span,
                    Kind::ResultShape {
                        func: fname.to_string(),
                        declared: w.clone(),
                        computed: got.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    pub(super) fn dim(&self, d: &Dim, frame: &Frame<'_>, span: Span) -> LResult<usize> {
        // The values of the dimension's variables (`N = 1`), sorted, for the errors.
        let bindings = || {
            let mut b: Vec<String> = d
                .vars()
                .filter_map(|v| Some(format!("{v} = {}", frame.shapes.get(v)?)))
                .collect();
            b.sort();
            b
        };
        match eval_dim(d, &frame.shapes) {
            Some(n) if n >= 0 => Ok(n as usize),
            // A comprehension over `a[i] + a[i + 2]` has `N - 2` elements: fewer than two
            // is an error naming the shapes, never an empty or wrapped tensor.
            Some(n) => err(
                span,
                Kind::NegativeDim {
                    dim: d.clone(),
                    value: n,
                    bindings: bindings(),
                },
            ),
            None if d.vars().all(|v| frame.shapes.contains_key(v)) => {
                let bindings = bindings();
                err(
                    span,
                    Kind::DimOverflow {
                        dim: d.clone(),
                        bindings,
                    },
                )
            }
            None => err(span, Kind::UnboundDim(d.clone())),
        }
    }
}

pub(super) fn check_in_bounds(
    proj: &[Affine],
    shape: &[usize],
    extents: &[usize],
    tensor: &hir::Expr,
    span: Span,
) -> LResult<()> {
    if extents.contains(&0) {
        return Ok(());
    }
    for (axis, (a, n)) in proj.iter().zip(shape).enumerate() {
        let (lo, hi) = crate::mir::verify::affine_range(a, extents);
        if lo < 0 || hi >= *n as i128 {
            return err(
                span,
                Kind::OutOfBounds {
                    axis,
                    tensor: tensor.ty.clone(),
                    shape: shape.to_vec(),
                    lo,
                    hi,
                },
            );
        }
    }
    Ok(())
}

pub fn eval_dim(d: &Dim, shapes: &HashMap<String, i64>) -> Option<i64> {
    let mut v = d.konst;
    for (name, c) in &d.terms {
        v = v.checked_add(shapes.get(name)?.checked_mul(*c)?)?;
    }
    Some(v)
}
