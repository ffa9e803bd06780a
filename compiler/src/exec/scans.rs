//! The scans, the histogram and the scatter the coordinator computes on the runtime's
//! parallel primitives: `scan(M, x)`, `scan_excl(M, x)` (along the last axis, every row on
//! its own), `reduce_by_index(M, n_bins, idx, vals)` and `scatter(dest, idx, vals)`.
//!
//! Each is its own observation, like `filter` (see `prims.rs`): its arguments are
//! dispatched, the routine runs on the worker pool and its result is a computed tensor. The
//! routines fix their bracketing by constant blocks, so the bits never depend on the thread
//! count, and both backends run this same code. An index outside the bins or the
//! destination is an error naming the first one (in index order), its position and the shape.

use std::rc::Rc;

use flow_runtime::pool::{Pool, TaskError};
use flow_runtime::prims::histogram::reduce_by_index;
use flow_runtime::prims::scan::{scan, ScanKind};
use flow_runtime::prims::scatter::scatter;
use flow_runtime::prims::{And, FnMonoid, Index, Max, Min, Monoid, Or, Prod, Sum};
use flow_runtime::tensor::Data;
use flow_runtime::{Scalar, Tensor};

use super::error::RunError;
use super::{bug, fail, Frame, Machine, RResult, Value};
use crate::base::ops::BuiltinMonoid as B;
use crate::hir::{self, Builtin, MonoidRef};

/// The user-monoid arm of [`with_monoid`]: `$body` with `$m` an [`FnMonoid`] over `$t`
/// whose combine calls `$user` on scalars of variant `$v`.
macro_rules! user_arm {
    ($user:expr, $zero:expr, $m:ident, $body:expr, $v:ident, $t:ty) => {{
        let user = $user;
        let combine = move |a: $t, b: $t| -> $t {
            match user(Scalar::$v(a), Scalar::$v(b)) {
                Scalar::$v(c) => c,
                other => panic!("a monoid's combine gave a `{}`", other.dtype()),
            }
        };
        let identity = match $zero {
            Scalar::$v(z) => z,
            _ => panic!("a monoid's zero is not of its state's type"),
        };
        let $m = FnMonoid {
            identity,
            combine: &combine,
        };
        $body.map(Data::$v)
    }};
}

/// `$body` with `$m` bound to the monoid `$monoid` (a [`MonoidRef`]) over the element type of
/// `$data` and `$x` to its vector; `$body` gives a `Result<Vec<T>, E>` and the macro a
/// `Result<Data, E>`, or `None` for a monoid the data's type does not have (the checker
/// refused it). A user monoid is an [`FnMonoid`] whose combine is `$user` (a
/// `Fn(Scalar, Scalar) -> Scalar`) with identity `$zero`.
macro_rules! with_monoid {
    ($monoid:expr, $data:expr, $user:expr, $zero:expr, |$m:ident, $x:ident| $body:expr) => {{
        match ($monoid, $data) {
            (MonoidRef::Builtin(B::Sum), Data::F32($x)) => Some({
                let $m = Sum::<f32>::new();
                $body.map(Data::F32)
            }),
            (MonoidRef::Builtin(B::Sum), Data::F64($x)) => Some({
                let $m = Sum::<f64>::new();
                $body.map(Data::F64)
            }),
            (MonoidRef::Builtin(B::Sum), Data::I32($x)) => Some({
                let $m = Sum::<i32>::new();
                $body.map(Data::I32)
            }),
            (MonoidRef::Builtin(B::Sum), Data::I64($x)) => Some({
                let $m = Sum::<i64>::new();
                $body.map(Data::I64)
            }),
            (MonoidRef::Builtin(B::Prod), Data::F32($x)) => Some({
                let $m = Prod::<f32>::new();
                $body.map(Data::F32)
            }),
            (MonoidRef::Builtin(B::Prod), Data::F64($x)) => Some({
                let $m = Prod::<f64>::new();
                $body.map(Data::F64)
            }),
            (MonoidRef::Builtin(B::Prod), Data::I32($x)) => Some({
                let $m = Prod::<i32>::new();
                $body.map(Data::I32)
            }),
            (MonoidRef::Builtin(B::Prod), Data::I64($x)) => Some({
                let $m = Prod::<i64>::new();
                $body.map(Data::I64)
            }),
            (MonoidRef::Builtin(B::Max), Data::F32($x)) => Some({
                let $m = Max::<f32>::new();
                $body.map(Data::F32)
            }),
            (MonoidRef::Builtin(B::Max), Data::F64($x)) => Some({
                let $m = Max::<f64>::new();
                $body.map(Data::F64)
            }),
            (MonoidRef::Builtin(B::Max), Data::I32($x)) => Some({
                let $m = Max::<i32>::new();
                $body.map(Data::I32)
            }),
            (MonoidRef::Builtin(B::Max), Data::I64($x)) => Some({
                let $m = Max::<i64>::new();
                $body.map(Data::I64)
            }),
            (MonoidRef::Builtin(B::Min), Data::F32($x)) => Some({
                let $m = Min::<f32>::new();
                $body.map(Data::F32)
            }),
            (MonoidRef::Builtin(B::Min), Data::F64($x)) => Some({
                let $m = Min::<f64>::new();
                $body.map(Data::F64)
            }),
            (MonoidRef::Builtin(B::Min), Data::I32($x)) => Some({
                let $m = Min::<i32>::new();
                $body.map(Data::I32)
            }),
            (MonoidRef::Builtin(B::Min), Data::I64($x)) => Some({
                let $m = Min::<i64>::new();
                $body.map(Data::I64)
            }),
            (MonoidRef::Builtin(B::Any), Data::Bool($x)) => Some({
                let $m = Or::<bool>::new();
                $body.map(Data::Bool)
            }),
            (MonoidRef::Builtin(B::All), Data::Bool($x)) => Some({
                let $m = And::<bool>::new();
                $body.map(Data::Bool)
            }),
            (MonoidRef::User(_), Data::F32($x)) => {
                Some(user_arm!($user, $zero, $m, $body, F32, f32))
            }
            (MonoidRef::User(_), Data::F64($x)) => {
                Some(user_arm!($user, $zero, $m, $body, F64, f64))
            }
            (MonoidRef::User(_), Data::I32($x)) => {
                Some(user_arm!($user, $zero, $m, $body, I32, i32))
            }
            (MonoidRef::User(_), Data::I64($x)) => {
                Some(user_arm!($user, $zero, $m, $body, I64, i64))
            }
            (MonoidRef::User(_), Data::Bool($x)) => {
                Some(user_arm!($user, $zero, $m, $body, Bool, bool))
            }
            (MonoidRef::Builtin(B::Sum), Data::U8($x)) => Some({
                let $m = Sum::<u8>::new();
                $body.map(Data::U8)
            }),
            (MonoidRef::Builtin(B::Sum), Data::U32($x)) => Some({
                let $m = Sum::<u32>::new();
                $body.map(Data::U32)
            }),
            (MonoidRef::Builtin(B::Sum), Data::U64($x)) => Some({
                let $m = Sum::<u64>::new();
                $body.map(Data::U64)
            }),
            (MonoidRef::Builtin(B::Prod), Data::U8($x)) => Some({
                let $m = Prod::<u8>::new();
                $body.map(Data::U8)
            }),
            (MonoidRef::Builtin(B::Prod), Data::U32($x)) => Some({
                let $m = Prod::<u32>::new();
                $body.map(Data::U32)
            }),
            (MonoidRef::Builtin(B::Prod), Data::U64($x)) => Some({
                let $m = Prod::<u64>::new();
                $body.map(Data::U64)
            }),
            (MonoidRef::Builtin(B::Max), Data::U8($x)) => Some({
                let $m = Max::<u8>::new();
                $body.map(Data::U8)
            }),
            (MonoidRef::Builtin(B::Max), Data::U32($x)) => Some({
                let $m = Max::<u32>::new();
                $body.map(Data::U32)
            }),
            (MonoidRef::Builtin(B::Max), Data::U64($x)) => Some({
                let $m = Max::<u64>::new();
                $body.map(Data::U64)
            }),
            (MonoidRef::Builtin(B::Min), Data::U8($x)) => Some({
                let $m = Min::<u8>::new();
                $body.map(Data::U8)
            }),
            (MonoidRef::Builtin(B::Min), Data::U32($x)) => Some({
                let $m = Min::<u32>::new();
                $body.map(Data::U32)
            }),
            (MonoidRef::Builtin(B::Min), Data::U64($x)) => Some({
                let $m = Min::<u64>::new();
                $body.map(Data::U64)
            }),
            (MonoidRef::User(_), Data::U8($x)) => Some(user_arm!($user, $zero, $m, $body, U8, u8)),
            (MonoidRef::User(_), Data::U32($x)) => {
                Some(user_arm!($user, $zero, $m, $body, U32, u32))
            }
            (MonoidRef::User(_), Data::U64($x)) => {
                Some(user_arm!($user, $zero, $m, $body, U64, u64))
            }
            _ => None,
        }
    }};
}

/// How many results of scans, scatters, filters, partitions and sorts the coordinator keeps
/// to reuse their buffers.
const KEPT_RESULTS: usize = 2;

/// An element type's vector out of [`Data`].
pub(super) trait Elements: Sized {
    fn vector(d: Data) -> Option<Vec<Self>>;
}

macro_rules! elements {
    ($($t:ty => $v:ident),*) => {$(
        impl Elements for $t {
            fn vector(d: Data) -> Option<Vec<$t>> {
                match d {
                    Data::$v(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}
elements!(f32 => F32, f64 => F64, i32 => I32, i64 => I64, bool => Bool, u8 => U8, u32 => U32, u64 => U64);

/// A vector of `len` elements: `spare` if it has that type and length (its contents are
/// stale and will all be overwritten), else a new one filled with `fill`.
pub(super) fn output<T: Elements + Clone>(spare: Option<Data>, len: usize, fill: T) -> Vec<T> {
    match spare.and_then(T::vector) {
        Some(v) if v.len() == len => v,
        _ => vec![fill; len],
    }
}

/// The inclusive or exclusive scan of rows of `row_len` elements of `x` into `y` (as long).
fn scan_rows<M: Monoid>(
    pool: &Pool,
    m: &M,
    kind: ScanKind,
    row_len: usize,
    x: &[M::T],
    mut y: Vec<M::T>,
) -> Result<Vec<M::T>, TaskError> {
    scan(pool, m, kind, row_len, x, &mut y)?;
    Ok(y)
}

/// A user monoid whose state is one scalar, combined on the worker pool's threads.
struct UserCombine {
    zero: Scalar,
    monoid: crate::mir::ir::Monoid,
    /// The first fault of the combine (an integer division by zero), reported once the
    /// routine has returned.
    fault: std::sync::OnceLock<String>,
}

impl UserCombine {
    /// `a ⊕ b`; on a fault of the combine, `a`, with the fault recorded.
    fn combine(&self, a: Scalar, b: Scalar) -> Scalar {
        match crate::interp::combine_scalars(&self.monoid, a, b) {
            Ok(c) => c,
            Err(x) => {
                let _ = self.fault.set(x);
                a
            }
        }
    }
}

/// Why a histogram or scatter did not give its result.
enum Failure {
    Task(TaskError),
    /// How many indices were out of range.
    OutOfRange,
}

impl From<TaskError> for Failure {
    fn from(x: TaskError) -> Failure {
        Failure::Task(x)
    }
}

/// The bins of a histogram, or the out-of-range failure.
fn bins<M: Monoid, I: Index>(
    pool: &Pool,
    m: &M,
    n_bins: usize,
    idx: &[I],
    vals: &[M::T],
) -> Result<Vec<M::T>, Failure> {
    let mut out = vec![m.identity(); n_bins];
    match reduce_by_index(pool, m, idx, vals, &mut out)? {
        0 => Ok(out),
        _ => Err(Failure::OutOfRange),
    }
}

/// `dest` with `vals` scattered into it (in `out`, as long), or the out-of-range failure.
fn scattered<T: Copy + Send + Sync, I: Index>(
    pool: &Pool,
    dest: &[T],
    idx: &[I],
    vals: &[T],
    mut out: Vec<T>,
) -> Result<Vec<T>, Failure> {
    out.copy_from_slice(dest);
    match scatter(pool, &mut out, idx, vals)? {
        0 => Ok(out),
        _ => Err(Failure::OutOfRange),
    }
}

/// The first index of `idx` outside `0..n` and its position.
fn first_out_of_range(idx: &Data, n: usize) -> Option<(i64, usize)> {
    let bad = |v: i64| v < 0 || v as u64 >= n as u64;
    match idx {
        Data::I64(x) => x.iter().position(|&v| bad(v)).map(|p| (x[p], p)),
        Data::I32(x) => x
            .iter()
            .position(|&v| bad(v as i64))
            .map(|p| (x[p] as i64, p)),
        _ => None,
    }
}

impl<'p, 'h> Machine<'p, 'h> {
    /// The buffer of a kept result the program has dropped (the last such), if any: the
    /// others are let go.
    pub(super) fn spare_buffer(&mut self) -> Option<Data> {
        let mut spare = None;
        let kept = std::mem::take(&mut self.prim_results);
        for t in kept {
            match Rc::try_unwrap(t) {
                Ok(t) => spare = Some(t.data),
                Err(t) => self.prim_results.push(t),
            }
        }
        spare
    }

    /// Keeps `t`, a new result, to reuse its buffer once the program drops it.
    pub(super) fn keep_result(&mut self, t: &Rc<Tensor>) {
        if self.prim_results.len() >= KEPT_RESULTS {
            self.prim_results.remove(0);
        }
        self.prim_results.push(t.clone());
    }

    /// User monoid `id`, which the checker let a scan or histogram take (one scalar state).
    fn user_combine(&mut self, id: hir::MonoidId, span: crate::base::Span) -> RResult<UserCombine> {
        let monoid = self.lower.user_monoid(id, span).map_err(RunError::from)?;
        match monoid.zero[..] {
            [zero] => Ok(UserCombine {
                zero,
                monoid,
                fault: std::sync::OnceLock::new(),
            }),
            _ => bug(
                span,
                "a scan or histogram with a monoid whose state is a tuple",
            ),
        }
    }

    /// A scan, histogram or scatter (see the module's documentation).
    pub(super) fn prim_monoid(
        &mut self,
        frame: &mut Frame<'p>,
        b: Builtin,
        args: &'p [hir::Expr],
        e: &'p hir::Expr,
    ) -> RResult<Value> {
        let span = e.span;
        let mut vs = Vec::new();
        for a in args {
            let v = self.eval(frame, a)?;
            vs.push(self.force(v, a.span)?);
        }
        let tensor = |v: &Value| match v {
            Value::Tensor(t) => Ok(t.clone()),
            _ => bug(
                span,
                format!("`{}` of a value that is not a tensor", b.name()),
            ),
        };
        let monoid = match b {
            Builtin::Scan(m) | Builtin::ScanExcl(m) | Builtin::ReduceByIndex(m) => Some(m),
            _ => None,
        };
        let user = match monoid {
            Some(MonoidRef::User(id)) => Some(self.user_combine(id, span)?),
            _ => None,
        };
        let zero = user.as_ref().map(|u| u.zero);
        let combine = |a: Scalar, b: Scalar| match &user {
            Some(u) => u.combine(a, b),
            None => a,
        };
        let mut spare = if matches!(
            b,
            Builtin::Scan(_) | Builtin::ScanExcl(_) | Builtin::Scatter
        ) {
            self.spare_buffer()
        } else {
            None
        };
        let pool = self.prims_pool(span)?;
        let name = b.name();
        let failed = |x: TaskError| {
            fail::<Value>(
                span,
                format!("`{name}` failed in task {}: {}", x.task, x.kind),
            )
        };
        let no_monoid = || {
            bug::<Value>(
                span,
                format!("`{name}` with a monoid its elements do not have"),
            )
        };
        let (shape, data) = match b {
            Builtin::Scan(m) | Builtin::ScanExcl(m) => {
                let x = tensor(&vs[0])?;
                let kind = if matches!(b, Builtin::Scan(_)) {
                    ScanKind::Inclusive
                } else {
                    ScanKind::Exclusive
                };
                let row_len = x.shape.last().copied().unwrap_or(1);
                let out = with_monoid!(
                    m,
                    &x.data,
                    &combine,
                    zero.unwrap_or(Scalar::Bool(false)),
                    |mon, x| {
                        let y = output(spare.take(), x.len(), mon.identity());
                        scan_rows(pool, &mon, kind, row_len, x, y)
                    }
                );
                match out {
                    None => return no_monoid(),
                    Some(Err(x)) => return failed(x),
                    Some(Ok(d)) => (x.shape.clone(), d),
                }
            }
            Builtin::ReduceByIndex(m) => {
                let n = match &vs[0] {
                    Value::Scalar(s) => match s.cast(flow_runtime::DType::I64) {
                        Scalar::I64(n) => n,
                        _ => return bug(span, "a number of bins that is not an integer"),
                    },
                    _ => return bug(span, "a number of bins that is not a scalar"),
                };
                let Ok(n_bins) = usize::try_from(n) else {
                    return fail(
                        span,
                        format!("`reduce_by_index` into {n} bins: the number of bins is negative"),
                    );
                };
                let (idx, vals) = (tensor(&vs[1])?, tensor(&vs[2])?);
                let out = with_monoid!(
                    m,
                    &vals.data,
                    &combine,
                    zero.unwrap_or(Scalar::Bool(false)),
                    |mon, v| {
                        match &idx.data {
                            Data::I64(i) => bins(pool, &mon, n_bins, i, v),
                            Data::I32(i) => bins(pool, &mon, n_bins, i, v),
                            _ => Err(Failure::OutOfRange),
                        }
                    }
                );
                match out {
                    None => return no_monoid(),
                    Some(Err(Failure::Task(x))) => return failed(x),
                    Some(Err(Failure::OutOfRange)) => {
                        return out_of_range(span, name, &idx.data, &[n_bins], "the bins")
                    }
                    Some(Ok(d)) => (vec![n_bins], d),
                }
            }
            Builtin::Scatter => {
                let (dest, idx, vals) = (tensor(&vs[0])?, tensor(&vs[1])?, tensor(&vs[2])?);
                macro_rules! go {
                    ($v:ident, $d:ident) => {{
                        let Data::$v(v) = &vals.data else {
                            return bug(span, "`scatter` of values of another type");
                        };
                        match &idx.data {
                            Data::I64(i) => scattered(
                                pool,
                                $d,
                                i,
                                v,
                                output(spare.take(), $d.len(), Default::default()),
                            )
                            .map(Data::$v),
                            Data::I32(i) => scattered(
                                pool,
                                $d,
                                i,
                                v,
                                output(spare.take(), $d.len(), Default::default()),
                            )
                            .map(Data::$v),
                            _ => Err(Failure::OutOfRange),
                        }
                    }};
                }
                let out = match &dest.data {
                    Data::F32(d) => go!(F32, d),
                    Data::F64(d) => go!(F64, d),
                    Data::I32(d) => go!(I32, d),
                    Data::I64(d) => go!(I64, d),
                    Data::Bool(d) => go!(Bool, d),
                    Data::U8(d) => go!(U8, d),
                    Data::U32(d) => go!(U32, d),
                    Data::U64(d) => go!(U64, d),
                };
                match out {
                    Err(Failure::Task(x)) => return failed(x),
                    Err(Failure::OutOfRange) => {
                        return out_of_range(span, name, &idx.data, &dest.shape, "the destination")
                    }
                    Ok(d) => (dest.shape.clone(), d),
                }
            }
            _ => {
                return bug(
                    span,
                    format!("`{name}` is not a scan, histogram or scatter"),
                )
            }
        };
        if let Some(u) = &user {
            if let Some(x) = u.fault.get() {
                return fail(
                    span,
                    format!("`{name}`: `{}`'s combine: {x}", u.monoid.name),
                );
            }
        }
        match Tensor::new(shape, data) {
            Ok(t) => {
                let t = Rc::new(t);
                if !matches!(b, Builtin::ReduceByIndex(_)) {
                    self.keep_result(&t);
                }
                Ok(Value::Tensor(t))
            }
            Err(x) => fail(span, format!("`{name}`: {x}")),
        }
    }
}

/// The error of an index outside the bins or the destination: the first in index order.
fn out_of_range(
    span: crate::base::Span,
    name: &str,
    idx: &Data,
    shape: &[usize],
    what: &str,
) -> RResult<Value> {
    let n = shape.first().copied().unwrap_or(0);
    match first_out_of_range(idx, n) {
        Some((v, p)) => fail(
            span,
            format!("`{name}`: index [{v}] (element {p} of the indices) is out of range for {what} of shape {shape:?}"),
        ),
        None => bug(span, format!("`{name}` found an index out of range that is not")),
    }
}
