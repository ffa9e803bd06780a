//! Built-in functions as a table: for each, how many arguments it takes, where it may be
//! called, and the rule that types it. `builtin_call` checks the place and the arity the same
//! way for all, then runs the rule; `elementwise` is shared by `max`, `min`, `pow`, `select`.

use super::tuples::tuple_tensor_parts;
use super::*;

/// How many arguments a built-in takes (`min..=max`), and the count its arity error names.
#[derive(Clone, Copy, Debug)]
struct Arity {
    min: usize,
    max: usize,
    named: usize,
}

impl Arity {
    const fn exactly(n: usize) -> Arity {
        Arity {
            min: n,
            max: n,
            named: n,
        }
    }

    const ANY: Arity = Arity {
        min: 0,
        max: usize::MAX,
        named: 0,
    };

    fn admits(self, n: usize) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

/// Where a built-in may be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// In operations and in the coordinator, also inside comprehensions and reductions.
    Anywhere,
    /// I/O ([`Builtin::is_io`]): only in the coordinator, outside comprehensions and
    /// reductions. In an operation the environment rules already reported it.
    Io,
    /// Only in the coordinator, outside comprehensions and reductions (whose bodies are
    /// operations).
    Coordinator,
    /// A built-in the coordinator computes on the runtime's primitives
    /// ([`Builtin::is_prim`]): as [`Place::Coordinator`], but in an operation it is
    /// `dynamic-size-in-operation`.
    Prim,
    /// A graph node over whole tensors (scans, `reduce_by_index`, `scatter`): in operations
    /// and in the coordinator, but not inside comprehensions and reductions.
    Whole,
}

/// A call to a built-in, as its typing rule sees it.
pub(super) struct BuiltinCall<'a> {
    pub(super) b: Builtin,
    pub(super) name: &'a str,
    pub(super) args: &'a [ast::Expr],
    pub(super) want: Option<&'a Ty>,
    pub(super) span: Span,
}

/// The typing rule of a built-in; arity and place are already checked.
type Rule = fn(&mut Checker, &BuiltinCall<'_>, &mut BodyCx) -> hir::Expr;

/// One row of the table.
struct Entry {
    builtin: Builtin,
    arity: Arity,
    place: Place,
    rule: Rule,
}

/// Every built-in but the math functions (one row each, see [`MATH`]), with its arity, place
/// and typing rule. Names are [`Builtin::name`]'s.
const TABLE: &[Entry] = &[
    row(
        Builtin::Max,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::binary_builtin,
    ),
    row(
        Builtin::Min,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::binary_builtin,
    ),
    row(
        Builtin::Pow,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::binary_builtin,
    ),
    row(
        Builtin::Atan2,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::binary_builtin,
    ),
    row(
        Builtin::Select,
        Arity::exactly(3),
        Place::Anywhere,
        Checker::select,
    ),
    row(
        Builtin::RandUniform,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::random,
    ),
    row(
        Builtin::RandNormal,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::random,
    ),
    row(Builtin::Print, Arity::ANY, Place::Io, Checker::print),
    row(Builtin::Load, Arity::exactly(1), Place::Io, Checker::load),
    row(Builtin::Save, Arity::exactly(2), Place::Io, Checker::save),
    row(Builtin::Args, Arity::exactly(0), Place::Io, Checker::args),
    row(
        Builtin::Len,
        Arity::exactly(1),
        Place::Coordinator,
        Checker::len,
    ),
    row(
        Builtin::Shape,
        Arity::exactly(1),
        Place::Coordinator,
        Checker::shape,
    ),
    row(
        Builtin::ParseI64,
        Arity::exactly(1),
        Place::Coordinator,
        Checker::parse,
    ),
    row(
        Builtin::ParseF64,
        Arity::exactly(1),
        Place::Coordinator,
        Checker::parse,
    ),
    // `assert(c)` or `assert(c, message)`.
    row(
        Builtin::Assert,
        Arity {
            min: 1,
            max: 2,
            named: 2,
        },
        Place::Io,
        Checker::assert,
    ),
    // `assert_close(a, b)` or `assert_close(a, b, tolerance)`.
    row(
        Builtin::AssertClose,
        Arity {
            min: 2,
            max: 3,
            named: 2,
        },
        Place::Io,
        Checker::assert_close,
    ),
    row(Builtin::Eval, Arity::exactly(1), Place::Io, Checker::eval),
    row(
        Builtin::Iota,
        Arity::exactly(1),
        Place::Anywhere,
        Checker::iota,
    ),
    row(
        Builtin::Zeros,
        Arity::exactly(1),
        Place::Anywhere,
        Checker::zeros,
    ),
    row(
        Builtin::Full,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::full,
    ),
    row(
        Builtin::Filter,
        Arity::exactly(2),
        Place::Prim,
        Checker::filter,
    ),
    row(
        Builtin::Partition,
        Arity::exactly(2),
        Place::Prim,
        Checker::filter,
    ),
    row(
        Builtin::Rotate,
        Arity::exactly(2),
        Place::Anywhere,
        Checker::rotate,
    ),
    row(Builtin::Sort, Arity::exactly(1), Place::Prim, Checker::sort),
    row(
        Builtin::SortByKey,
        Arity::exactly(2),
        Place::Prim,
        Checker::sort_by_key,
    ),
    // The monoid of a scan or histogram is filled in by the rule; the table holds `sum`.
    row(
        Builtin::Scan(ANY_MONOID),
        Arity::exactly(2),
        Place::Whole,
        Checker::scan,
    ),
    row(
        Builtin::ScanExcl(ANY_MONOID),
        Arity::exactly(2),
        Place::Whole,
        Checker::scan,
    ),
    row(
        Builtin::ReduceByIndex(ANY_MONOID),
        Arity::exactly(4),
        Place::Whole,
        Checker::reduce_by_index,
    ),
    row(
        Builtin::Scatter,
        Arity::exactly(3),
        Place::Whole,
        Checker::scatter,
    ),
];

/// The monoid the table's rows of the built-ins that take one hold (the rule resolves the
/// call's own).
const ANY_MONOID: MonoidRef = MonoidRef::Builtin(BuiltinMonoid::Sum);

/// The row every math function (`exp`, `sqrt`, `abs`, …) shares.
const MATH: Entry = row(
    Builtin::Math(MathFn::Abs),
    Arity::exactly(1),
    Place::Anywhere,
    Checker::math,
);

const fn row(builtin: Builtin, arity: Arity, place: Place, rule: Rule) -> Entry {
    Entry {
        builtin,
        arity,
        place,
        rule,
    }
}

fn entry(b: Builtin) -> &'static Entry {
    let b = match b {
        Builtin::Scan(_) => Builtin::Scan(ANY_MONOID),
        Builtin::ScanExcl(_) => Builtin::ScanExcl(ANY_MONOID),
        Builtin::ReduceByIndex(_) => Builtin::ReduceByIndex(ANY_MONOID),
        b => b,
    };
    match b {
        Builtin::Math(_) => &MATH,
        _ => TABLE
            .iter()
            .find(|e| e.builtin == b)
            .expect("every built-in has a row in TABLE"),
    }
}

pub(super) fn builtin_by_name(name: &str) -> Option<Builtin> {
    let math = MathFn::ALL.iter().map(|m| Builtin::Math(*m));
    math.chain(TABLE.iter().map(|e| e.builtin))
        .find(|b| b.name() == name)
}

/// Whether `name` is a built-in function, which no item may redefine.
pub fn is_builtin_name(name: &str) -> bool {
    builtin_by_name(name).is_some()
        || matches!(
            name,
            "map" | "zip_with" | "zip" | "pad" | "clamp_edge" | "grad" | "value_and_grad" | "vjp"
        )
}

/// Whether an expression reads the value of a comprehension or reduction index.
pub(super) fn uses_an_index(e: &mut hir::Expr) -> bool {
    let mut found = false;
    hir::walk_expr_mut(e, &mut |x| {
        found |= matches!(x.kind, hir::ExprKind::IndexValue(_));
    });
    found
}

impl Checker {
    pub(super) fn builtin_call(
        &mut self,
        b: Builtin,
        name: &str,
        args: &[ast::Expr],
        cx: &mut BodyCx,
        want: Option<&Ty>,
        span: Span,
    ) -> hir::Expr {
        let e = entry(b);
        match e.place {
            Place::Anywhere => {}
            // I/O in an operation was reported by the environment rules; don't add more.
            Place::Io if cx.env == Env::Operation => return err_expr(span),
            // The body of a comprehension or reduction in the coordinator is an operation.
            // Typed all the same (below), so that its uses report nothing more.
            Place::Prim if cx.env == Env::Operation => {
                self.error(errors::prim_in_op(name, span));
            }
            Place::Io | Place::Coordinator | Place::Prim | Place::Whole if cx.point_depth > 0 => {
                self.error(errors::coordinator_in_point(name, span));
                return err_expr(span);
            }
            Place::Io | Place::Coordinator | Place::Prim | Place::Whole => {}
        }
        if !e.arity.admits(args.len()) {
            self.error(errors::arity(name, e.arity.named, args.len(), span));
            return err_expr(span);
        }
        let call = BuiltinCall {
            b,
            name,
            args,
            want,
            span,
        };
        (e.rule)(self, &call, cx)
    }

    /// `exp(x)`, `sqrt(x)`, …: a float (or, for `abs`, an integer) scalar or tensor.
    fn math(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let x = self.infer(&c.args[0], cx, c.want);
        match x.ty.dtype() {
            _ if x.ty.is_error() => err_expr(c.span),
            Some(d) if d.is_float() => {
                let ty = x.ty.clone();
                mk(hir::ExprKind::Builtin(c.b, vec![x]), ty, c.span)
            }
            Some(d) if d.is_int() && matches!(c.b, Builtin::Math(MathFn::Abs)) => {
                let ty = x.ty.clone();
                mk(hir::ExprKind::Builtin(c.b, vec![x]), ty, c.span)
            }
            _ => {
                self.error(errors::type_error(
                    format!("`{}` takes a float, found `{}`", c.name, x.ty),
                    x.span,
                ));
                err_expr(c.span)
            }
        }
    }

    /// `max(a, b)`, `min(a, b)`, `pow(a, b)`: elementwise over scalars or same-shape tensors.
    fn binary_builtin(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let l = self.infer(&c.args[0], cx, c.want);
        let r = self.infer(&c.args[1], cx, c.want);
        let e = self.elementwise(c.b, c.b.name(), vec![l, r], c.span);
        // `pow` and `atan2` are float functions (`max` and `min` take any number).
        let float_only = matches!(c.b, Builtin::Pow | Builtin::Atan2);
        match e.ty.dtype() {
            Some(d) if float_only && !d.is_float() => {
                self.error(errors::type_error(
                    format!("`{}` takes floats, found `{}`", c.name, e.ty),
                    c.span,
                ));
                err_expr(c.span)
            }
            _ => e,
        }
    }

    /// `select(cond, a, b)`.
    fn select(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let (b, span) = (c.b, c.span);
        let cond = self.infer(&c.args[0], cx, None);
        let l = self.infer(&c.args[1], cx, c.want);
        let r = self.infer(&c.args[2], cx, c.want);
        if cond.ty.dtype() != Some(DType::Bool) && !cond.ty.is_error() {
            self.error(errors::type_mismatch(
                &Ty::Scalar(DType::Bool),
                &cond.ty,
                cond.span,
            ));
            return err_expr(span);
        }
        let (l, r) = self.join(l, r);
        let res = self.elementwise(b, "select", vec![l, r], span);
        match res.kind {
            hir::ExprKind::Builtin(_, mut xs) => {
                xs.insert(0, cond);
                mk(hir::ExprKind::Builtin(b, xs), res.ty, span)
            }
            _ => res,
        }
    }

    /// `rand_uniform(seed, [sizes])`, `rand_normal(seed, [sizes])`.
    fn random(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let (name, args, span) = (c.name, c.args, c.span);
        let i64t = Ty::Scalar(DType::I64);
        let seed = self.infer(&args[0], cx, Some(&i64t));
        let seed = self.expect(seed, &i64t);
        let Some((dims, shape)) = self.shape_arg(name, &args[1], cx) else {
            return err_expr(span);
        };
        let mut shape = shape;
        let mut seed = seed;
        if cx.point_depth > 0 && (uses_an_index(&mut seed) || uses_an_index(&mut shape)) {
            self.error(errors::type_error(
                format!("the seed and sizes of `{name}` must be known when the graph is built, so they cannot depend on a comprehension or reduction index; draw the whole tensor outside and index it"),
                span,
            ));
            return err_expr(span);
        }
        mk(
            hir::ExprKind::Builtin(c.b, vec![seed, shape]),
            Ty::tensor(DType::F32, dims),
            span,
        )
    }

    /// `print(x, …)`: any values.
    fn print(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let xs: Vec<hir::Expr> = c.args.iter().map(|a| self.infer(a, cx, None)).collect();
        mk(hir::ExprKind::Builtin(c.b, xs), Ty::Unit, c.span)
    }

    /// `load(path)`: typed by its context.
    fn load(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let p = self.infer(&c.args[0], cx, Some(&Ty::Str));
        let p = self.expect(p, &Ty::Str);
        // A tensor or scalar, or a tensor of tuples (one file per field).
        let want = c.want.map(|w| self.zonk(w));
        let Some(w) = want.filter(|w| w.dtype().is_some() || tuple_tensor_parts(w).is_some())
        else {
            self.error(errors::type_error(
                "cannot tell the type of this `load`: annotate it (`let x: f32[N] = load(\"x.npy\");`) or pass it straight to an op",
                c.span,
            ));
            return err_expr(c.span);
        };
        mk(hir::ExprKind::Builtin(c.b, vec![p]), w, c.span)
    }

    /// `save(path, tensor)`: a tensor, a scalar, or a tensor of tuples (one file per field).
    fn save(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let p = self.infer(&c.args[0], cx, Some(&Ty::Str));
        let p = self.expect(p, &Ty::Str);
        let t = self.infer(&c.args[1], cx, None);
        let tuples = tuple_tensor_parts(&self.zonk(&t.ty)).is_some();
        if t.ty.dtype().is_none() && !t.ty.is_error() && !tuples {
            self.error(errors::type_error(
                format!("`save` writes a tensor, found `{}`", t.ty),
                t.span,
            ));
        }
        mk(hir::ExprKind::Builtin(c.b, vec![p, t]), Ty::Unit, c.span)
    }

    /// `args()`: the program's arguments.
    fn args(&mut self, c: &BuiltinCall<'_>, _: &mut BodyCx) -> hir::Expr {
        mk(
            hir::ExprKind::Builtin(c.b, vec![]),
            Ty::List(Box::new(Ty::Str)),
            c.span,
        )
    }

    /// `len(list)`, or `len(x)` of a tensor: its first dimension (a filter's result length).
    fn len(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let x = self.infer(&c.args[0], cx, None);
        let tensor = matches!(&x.ty, Ty::Tensor(_, dims) if !dims.is_empty());
        if !tensor && !matches!(x.ty, Ty::List(_) | Ty::Error) {
            self.error(errors::type_error(
                format!(
                    "`len` takes a list or a tensor of rank 1 or more, found `{}`",
                    x.ty
                ),
                x.span,
            ));
        }
        mk(
            hir::ExprKind::Builtin(c.b, vec![x]),
            Ty::Scalar(DType::I64),
            c.span,
        )
    }

    /// `shape(x)`: the dimensions of a tensor (or a scalar's `[]`), a list of `i64`.
    fn shape(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let x = self.infer(&c.args[0], cx, None);
        if !matches!(x.ty, Ty::Tensor(..) | Ty::Scalar(_) | Ty::Error) {
            self.error(errors::type_error(
                format!("`shape` takes a tensor, found `{}`", x.ty),
                x.span,
            ));
        }
        mk(
            hir::ExprKind::Builtin(c.b, vec![x]),
            Ty::List(Box::new(Ty::Scalar(DType::I64))),
            c.span,
        )
    }

    /// `parse_i64(s)`, `parse_f64(s)`.
    fn parse(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let x = self.infer(&c.args[0], cx, Some(&Ty::Str));
        let x = self.expect(x, &Ty::Str);
        let ty = if c.b == Builtin::ParseI64 {
            Ty::Scalar(DType::I64)
        } else {
            Ty::Scalar(DType::F64)
        };
        mk(hir::ExprKind::Builtin(c.b, vec![x]), ty, c.span)
    }

    /// `assert(cond)`, `assert(cond, message)`.
    fn assert(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let cond = self.infer(&c.args[0], cx, Some(&Ty::Scalar(DType::Bool)));
        let cond = self.expect(cond, &Ty::Scalar(DType::Bool));
        let mut xs = vec![cond];
        if let Some(m) = c.args.get(1) {
            let m = self.infer(m, cx, Some(&Ty::Str));
            xs.push(self.expect(m, &Ty::Str));
        }
        mk(hir::ExprKind::Builtin(c.b, xs), Ty::Unit, c.span)
    }

    /// `assert_close(a, b)`, `assert_close(a, b, tolerance)`.
    fn assert_close(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let span = c.span;
        let a = self.infer(&c.args[0], cx, None);
        let b = self.infer(&c.args[1], cx, Some(&a.ty));
        let (a, b) = self.join(a, b);
        if a.ty.is_error() || b.ty.is_error() {
            return err_expr(span);
        }
        if a.ty.dtype() != b.ty.dtype() || a.ty.dims().len() != b.ty.dims().len() {
            self.error(errors::type_mismatch(&a.ty, &b.ty, b.span));
            return err_expr(span);
        }
        let mut xs = vec![a, b];
        if let Some(t) = c.args.get(2) {
            let f64t = Ty::Scalar(DType::F64);
            let t = self.infer(t, cx, Some(&f64t));
            xs.push(self.expect(t, &f64t));
        }
        mk(hir::ExprKind::Builtin(c.b, xs), Ty::Unit, span)
    }

    /// `eval(x)`: forces a lazy value; typed as `x`.
    fn eval(&mut self, c: &BuiltinCall<'_>, cx: &mut BodyCx) -> hir::Expr {
        let x = self.infer(&c.args[0], cx, c.want);
        let ty = x.ty.clone();
        mk(hir::ExprKind::Builtin(c.b, vec![x]), ty, c.span)
    }

    /// Types an elementwise built-in over operands that are scalars or same-shape tensors.
    pub(super) fn elementwise(
        &mut self,
        b: Builtin,
        name: &str,
        xs: Vec<hir::Expr>,
        span: Span,
    ) -> hir::Expr {
        if xs.iter().any(|x| x.ty.is_error()) {
            return err_expr(span);
        }
        let mut xs = xs;
        if xs.len() == 2 {
            let r = xs.pop().expect("two");
            let l = xs.pop().expect("two");
            let (l, r) = if is_weak(&l) && !is_weak(&r) {
                (r.ty.dtype().map(|d| coerce(l.clone(), d)).unwrap_or(l), r)
            } else if is_weak(&r) && !is_weak(&l) {
                let d = l.ty.dtype();
                (l, d.map(|d| coerce(r.clone(), d)).unwrap_or(r))
            } else {
                self.join(l, r)
            };
            xs = vec![l, r];
        }
        let d = xs[0].ty.dtype();
        if d.is_none() || xs.iter().any(|x| x.ty.dtype() != d) {
            self.error(errors::type_error(
                format!(
                    "`{name}` needs operands of one element type, found {}",
                    xs.iter()
                        .map(|x| format!("`{}`", x.ty))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                span,
            ));
            return err_expr(span);
        }
        let mut dims: Vec<Dim> = Vec::new();
        let mut first: Option<(Ty, Span)> = None;
        for x in &xs {
            if let Ty::Tensor(..) = x.ty {
                match &first {
                    None => {
                        first = Some((x.ty.clone(), x.span));
                        dims = x.ty.dims().to_vec();
                    }
                    Some((t0, s0)) => {
                        let (t0, s0) = (t0.clone(), *s0);
                        if !self.unify(&t0, &x.ty) {
                            self.error(errors::shape_mismatch(&t0, &x.ty, s0, x.span));
                            return err_expr(span);
                        }
                    }
                }
            }
        }
        let ty = Ty::tensor(d.expect("checked"), dims);
        mk(hir::ExprKind::Builtin(b, xs), ty, span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_builtin_and_io_rows_are_the_io_builtins() {
        for (k, e) in TABLE.iter().enumerate() {
            assert!(
                !matches!(e.builtin, Builtin::Math(_)),
                "math has its own row"
            );
            assert_eq!(
                TABLE.iter().position(|x| x.builtin == e.builtin),
                Some(k),
                "{} has two rows",
                e.builtin.name()
            );
            assert_eq!(
                e.place == Place::Io,
                e.builtin.is_io(),
                "{}",
                e.builtin.name()
            );
            assert_eq!(builtin_by_name(e.builtin.name()), Some(e.builtin));
        }
        for m in MathFn::ALL.iter() {
            assert_eq!(builtin_by_name(m.name()), Some(Builtin::Math(*m)));
        }
        assert!(!MATH.builtin.is_io() && MATH.place == Place::Anywhere);
    }
}
