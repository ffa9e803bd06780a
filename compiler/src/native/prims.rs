//! Scan, histogram and scatter nodes on the native backend: the runtime's parallel routines
//! (`flow_runtime::prims`), whose fixed blocks make the bits independent of the thread count
//! and equal to the interpreter's (see `interp/prims.rs`). A node whose monoid is not one the
//! scalar routines take (a user monoid with a wrap, an unwrap or a tuple state) runs on the
//! same routines over records with a JIT'd combine (see `record.rs`). A histogram of rows
//! (`[n, k…]` values into `[bins, k…]`) keeps per-shard private bins of `k…` lanes
//! (`flow_runtime::prims::histogram::reduce_by_index_rows`); a scatter of rows (`[m, k…]`
//! values into `[n, k…]`) has a winner per destination slot, or per row when its index reads
//! only `i0`, the last in index order (`flow_runtime::prims::scatter::scatter_rows`). The
//! elements of a node whose
//! expressions are not a plain read (a fused producer) are computed block by block inside
//! the routine by the producer's kernel (see `producer.rs`), never as a whole tensor.
//!
//! On MPI ranks, a scan, histogram or scatter of plain reads runs by its routine's blocks,
//! each rank its own, and its result stays on the ranks by rows (`prims_ranks.rs`,
//! docs/distributed.md).
//!
//! Also the dispatch the coordinator's routines share ([`with_monoid`], [`UserCombine`]).

use super::producer::{elements, fill1, fill2, pairs, Elems, Producer};
use super::*;
use flow_runtime::pool::Pool;
use flow_runtime::prims::histogram::reduce_by_index_rows;
use flow_runtime::prims::scan::{scan_elements, ScanKind};
use flow_runtime::prims::scatter::scatter_rows;
use flow_runtime::prims::{Index, Monoid};
use flow_runtime::Scalar;

use crate::mir::ir::{Affine, MonoidRef, Port, Read, ScalarExpr};

use super::prims_ranks::{
    agree, first_out_of_range_in, histogram_on_ranks, scan_on_ranks, scatter_on_ranks,
};
use super::spread::{output_rows, shards_of, LaunchRows, Outcome, Spread};
use std::rc::Rc;

/// The user-monoid arm of [`with_monoid`]: `$body` with `$m` an [`FnMonoid`] over `$t`
/// whose combine calls `$user` on scalars of variant `$v`.
macro_rules! user_arm_impl {
    ($user:expr, $zero:expr, $m:ident, $body:expr, $v:ident, $t:ty) => {{
        let user = $user;
        let combine = move |a: $t, b: $t| -> $t {
            match user(flow_runtime::Scalar::$v(a), flow_runtime::Scalar::$v(b)) {
                flow_runtime::Scalar::$v(c) => c,
                other => panic!("a monoid's combine gave a `{}`", other.dtype()),
            }
        };
        let identity = match $zero {
            flow_runtime::Scalar::$v(z) => z,
            _ => panic!("a monoid's zero is not of its state's type"),
        };
        let $m = flow_runtime::prims::FnMonoid {
            identity,
            combine: &combine,
        };
        $body.map(flow_runtime::Data::$v)
    }};
}

/// `$body` with `$m` bound to the built-in monoid type `$mon` (`Sum`, `Prod`, `Max`, `Min`)
/// over the element type of `$data` and `$x` to its vector, for every numeric element type;
/// `None` for `bool` data.
macro_rules! numeric_arm_impl {
    ($mon:ident, $data:expr, $m:ident, $x:ident, $body:expr) => {{
        match $data {
            flow_runtime::Data::F32($x) => Some({
                let $m = flow_runtime::prims::$mon::<f32>::new();
                $body.map(flow_runtime::Data::F32)
            }),
            flow_runtime::Data::F64($x) => Some({
                let $m = flow_runtime::prims::$mon::<f64>::new();
                $body.map(flow_runtime::Data::F64)
            }),
            flow_runtime::Data::I32($x) => Some({
                let $m = flow_runtime::prims::$mon::<i32>::new();
                $body.map(flow_runtime::Data::I32)
            }),
            flow_runtime::Data::I64($x) => Some({
                let $m = flow_runtime::prims::$mon::<i64>::new();
                $body.map(flow_runtime::Data::I64)
            }),
            flow_runtime::Data::U8($x) => Some({
                let $m = flow_runtime::prims::$mon::<u8>::new();
                $body.map(flow_runtime::Data::U8)
            }),
            flow_runtime::Data::U32($x) => Some({
                let $m = flow_runtime::prims::$mon::<u32>::new();
                $body.map(flow_runtime::Data::U32)
            }),
            flow_runtime::Data::U64($x) => Some({
                let $m = flow_runtime::prims::$mon::<u64>::new();
                $body.map(flow_runtime::Data::U64)
            }),
            _ => None,
        }
    }};
}

/// `$body` with `$m` bound to the monoid `$monoid` (a [`MonoidRef`]) over the element type of
/// `$data` and `$x` to its vector; `$body` gives a `Result<Vec<T>, E>` and the macro a
/// `Result<Data, E>`, or `None` for a monoid the data's type does not have (the checker
/// refused it). A user monoid is an [`FnMonoid`] whose combine is `$user` (a
/// `Fn(Scalar, Scalar) -> Scalar`) with identity `$zero`.
macro_rules! with_monoid_impl {
    ($monoid:expr, $data:expr, $user:expr, $zero:expr, |$m:ident, $x:ident| $body:expr) => {{
        use $crate::base::ops::BuiltinMonoid as B;
        use $crate::native::prims::{numeric_arm_impl as numeric, user_arm_impl as user};
        match ($monoid, $data) {
            (MonoidRef::Builtin(B::Sum), data) => numeric!(Sum, data, $m, $x, $body),
            (MonoidRef::Builtin(B::Prod), data) => numeric!(Prod, data, $m, $x, $body),
            (MonoidRef::Builtin(B::Max), data) => numeric!(Max, data, $m, $x, $body),
            (MonoidRef::Builtin(B::Min), data) => numeric!(Min, data, $m, $x, $body),
            (MonoidRef::Builtin(B::Any), flow_runtime::Data::Bool($x)) => Some({
                let $m = flow_runtime::prims::Or::<bool>::new();
                $body.map(flow_runtime::Data::Bool)
            }),
            (MonoidRef::Builtin(B::All), flow_runtime::Data::Bool($x)) => Some({
                let $m = flow_runtime::prims::And::<bool>::new();
                $body.map(flow_runtime::Data::Bool)
            }),
            (MonoidRef::User(_), flow_runtime::Data::F32($x)) => {
                Some(user!($user, $zero, $m, $body, F32, f32))
            }
            (MonoidRef::User(_), flow_runtime::Data::F64($x)) => {
                Some(user!($user, $zero, $m, $body, F64, f64))
            }
            (MonoidRef::User(_), flow_runtime::Data::I32($x)) => {
                Some(user!($user, $zero, $m, $body, I32, i32))
            }
            (MonoidRef::User(_), flow_runtime::Data::I64($x)) => {
                Some(user!($user, $zero, $m, $body, I64, i64))
            }
            (MonoidRef::User(_), flow_runtime::Data::Bool($x)) => {
                Some(user!($user, $zero, $m, $body, Bool, bool))
            }
            (MonoidRef::User(_), flow_runtime::Data::U8($x)) => {
                Some(user!($user, $zero, $m, $body, U8, u8))
            }
            (MonoidRef::User(_), flow_runtime::Data::U32($x)) => {
                Some(user!($user, $zero, $m, $body, U32, u32))
            }
            (MonoidRef::User(_), flow_runtime::Data::U64($x)) => {
                Some(user!($user, $zero, $m, $body, U64, u64))
            }
            _ => None,
        }
    }};
}
/// A user monoid whose state is one scalar, combined on the worker pool's threads.
pub(crate) struct UserCombine {
    pub(crate) zero: Scalar,
    pub(crate) monoid: crate::mir::ir::Monoid,
    /// The first fault of the combine (an integer division by zero), reported once the
    /// routine has returned.
    pub(crate) fault: std::sync::OnceLock<String>,
}

impl UserCombine {
    /// `a ⊕ b`; on a fault of the combine, `a`, with the fault recorded.
    pub(crate) fn combine(&self, a: Scalar, b: Scalar) -> Scalar {
        match crate::interp::combine_scalars(&self.monoid, a, b) {
            Ok(c) => c,
            Err(x) => {
                let _ = self.fault.set(x);
                a
            }
        }
    }
}

pub(crate) use numeric_arm_impl;
pub(crate) use user_arm_impl;
pub(crate) use with_monoid_impl as with_monoid;

/// Why a routine did not give its result.
pub(super) enum Failure {
    Task(TaskError),
    /// The first index out of range, at which position.
    OutOfRange(i64, usize),
    /// On ranks: the fault of a user monoid's combine.
    Fault(String),
    /// On ranks: another rank failed, which says how (see [`agree`]).
    Elsewhere,
}

impl From<TaskError> for Failure {
    fn from(x: TaskError) -> Failure {
        Failure::Task(x)
    }
}

/// The first index of `idx` outside `0..n` and its position.
pub(crate) fn first_out_of_range(idx: &Data, n: usize) -> Option<(i64, usize)> {
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

/// An element type's vector out of [`Data`].
pub(crate) trait Elements: Sized {
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
pub(crate) fn output<T: Elements + Clone>(spare: Option<Data>, len: usize, fill: T) -> Vec<T> {
    match spare.and_then(T::vector) {
        Some(v) if v.len() == len => v,
        _ => vec![fill; len],
    }
}

/// Whether the runtime's routines take `monoid`: a built-in one, or a user monoid whose state
/// is one scalar with no wrap or unwrap.
pub(super) fn routine_monoid(g: &Graph, monoid: MonoidRef) -> Option<Option<UserCombine>> {
    match monoid {
        MonoidRef::Builtin(_) => Some(None),
        MonoidRef::User(id) => {
            let m = g.monoids.get(id)?;
            match (&m.zero[..], &m.wrap, &m.unwrap) {
                ([zero], None, None) => Some(Some(UserCombine {
                    zero: *zero,
                    monoid: m.clone(),
                    fault: std::sync::OnceLock::new(),
                })),
                _ => None,
            }
        }
    }
}

impl Native {
    /// Runs a `Scan`, `ReduceByIndex` or `Scatter` node.
    pub(super) fn run_prim(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, NativeError> {
        let Some((reads, exprs)) = node.kind.reads_and_exprs() else {
            return self.interpret(g, id, node, values);
        };
        let space = node.kind.index_space().unwrap_or_default();
        let monoid = match &node.kind {
            NodeKind::Scan { monoid, .. } | NodeKind::ReduceByIndex { monoid, .. } => Some(*monoid),
            _ => None,
        };
        let user = match monoid.map(|m| routine_monoid(g, m)) {
            Some(None) => {
                // A tuple state, a wrap or an unwrap: the routines over records.
                if let Some(MonoidRef::User(mid)) = monoid {
                    if let Some(outs) = self.run_records(g, id, node, mid, values)? {
                        return Ok(outs);
                    }
                }
                return self.interpret(g, id, node, values);
            }
            Some(Some(u)) => u,
            None => None,
        };
        let exprs: Vec<ScalarExpr> = exprs.into_iter().cloned().collect();
        let scan = matches!(node.kind, NodeKind::Scan { .. });
        // On ranks, a node placed by blocks (`prim_placement`) runs this rank's blocks, of
        // elements this rank computes (`rank_elements`).
        let ranks: Option<(Rc<dyn Spread>, (usize, usize))> = self
            .spread
            .clone()
            .filter(|s| s.ranks() > 1)
            .zip(self.placed.get(id.index()).copied().flatten())
            .filter(|_| {
                matches!(
                    node.kind,
                    NodeKind::Scan { .. }
                        | NodeKind::ReduceByIndex { .. }
                        | NodeKind::Scatter { .. }
                )
            });
        let (elems, computed, failed) = match &ranks {
            Some((s, place)) => {
                let e = self.rank_elements(
                    &**s,
                    g,
                    node,
                    (&space, reads, &exprs),
                    values,
                    scan,
                    *place,
                )?;
                (e.elems, e.computed, e.failed)
            }
            None => {
                let e = self.elements(g, &space, reads, &exprs, values, scan)?;
                let produced = matches!(e, Elems::Produced(_));
                (e, produced, None)
            }
        };
        // A histogram or scatter of rows: each point of the space's trailing axes is a lane.
        let lanes: usize = space[1..].iter().product::<usize>().max(1);
        // Without a producer, the expressions' tensors; with one, empty vectors of their
        // types for the monoid dispatch, and `prod` computes the elements block by block.
        let (datas, prod): (Vec<Data>, Option<&Producer>) = match &elems {
            Elems::Tensors(_) => (Vec::new(), None),
            Elems::Produced(p) => ((0..exprs.len()).map(|k| p.empty(k)).collect(), Some(p)),
        };
        let data = |k: usize| match &elems {
            Elems::Tensors(ts) => &ts[k].data,
            Elems::Produced(_) => &datas[k],
        };
        let out_ty = node.outputs[0].clone();
        let len: usize = out_ty.shape.iter().product();
        let spare = self
            .pool
            .take(out_ty.dtype, len)
            .map_err(alloc_error(Some(id)))?;
        let zero = user.as_ref().map_or(Scalar::Bool(false), |u| u.zero);
        let combine = |a: Scalar, b: Scalar| match &user {
            Some(u) => u.combine(a, b),
            None => a,
        };
        let on_ranks = ranks.as_ref().map(|(s, p)| (&**s, *p));
        // On ranks, the rows of the result each rank computes (a histogram's or scatter's:
        // by rows of the result, not of its pairs).
        let out_rows = output_rows(g, id, &self.placed).unwrap_or((1, 0));
        let pool: &Pool = &self.workers;
        let no_monoid = || NativeError::CompilerBug {
            what: "the native backend".into(),
            finding: format!("{}: a monoid its elements do not have", describe(id, node)),
        };
        let res: Result<Data, Failure> = match &node.kind {
            NodeKind::Scan { exclusive, .. } => {
                let kind = if *exclusive {
                    ScanKind::Exclusive
                } else {
                    ScanKind::Inclusive
                };
                let row_len = space.last().copied().unwrap_or(1);
                with_monoid!(
                    monoid.ok_or_else(no_monoid)?,
                    data(0),
                    &combine,
                    zero,
                    |mon, x| {
                        let mut y = output(Some(spare), len, mon.identity());
                        if let Some((s, place)) = on_ranks {
                            scan_on_ranks(s, pool, &mon, kind, &space, place, x, &mut y).map(|()| y)
                        } else {
                            let fill = fill1(prod);
                            let x = elements(x, prod, &fill);
                            scan_elements(pool, &mon, kind, row_len, x, &mut y)
                                .map(|()| y)
                                .map_err(Failure::Task)
                        }
                    }
                )
                .ok_or_else(no_monoid)?
            }
            NodeKind::ReduceByIndex { .. } => {
                let (idx, x) = (data(0), data(1));
                with_monoid!(
                    monoid.ok_or_else(no_monoid)?,
                    x,
                    &combine,
                    zero,
                    |mon, v| {
                        let mut out = output(Some(spare), len, mon.identity());
                        out.iter_mut().for_each(|b| *b = mon.identity());
                        if let Some((s, (_, shards))) = on_ranks {
                            let bins = len / lanes;
                            let mut out = out;
                            let at = (s, lanes, bins, shards);
                            let r = match idx {
                                Data::I64(i) => {
                                    histogram_on_ranks(at, out_rows, pool, &mon, (i, v), &mut out)
                                }
                                Data::I32(i) => {
                                    histogram_on_ranks(at, out_rows, pool, &mon, (i, v), &mut out)
                                }
                                _ => Err(Failure::Elsewhere),
                            };
                            r.map(|()| out)
                        } else {
                            let bad = match idx {
                                Data::I64(i) => {
                                    let fill = fill2(prod);
                                    let src = pairs(i, v, prod, &fill);
                                    reduce_by_index_rows(pool, &mon, lanes, src, &mut out)
                                }
                                Data::I32(i) => {
                                    let fill = fill2(prod);
                                    let src = pairs(i, v, prod, &fill);
                                    reduce_by_index_rows(pool, &mon, lanes, src, &mut out)
                                }
                                _ => Ok(usize::MAX),
                            };
                            match bad {
                                Ok(0) => Ok(out),
                                Ok(_) => Err(out_of_range(idx, len / lanes)),
                                Err(e) => Err(Failure::Task(e)),
                            }
                        }
                    }
                )
                .ok_or_else(no_monoid)?
            }
            NodeKind::Scatter { dest, .. } => {
                let dest = &values[dest.node.index()][dest.port as usize];
                let by_row = lanes > 1 && index_by_row(&exprs[0], reads);
                let rows = Rows { lanes, by_row };
                let at = on_ranks.map(|(s, place)| (s, lanes, place, out_rows));
                scatter_data(
                    pool,
                    &dest.data,
                    rows,
                    (data(0), data(1)),
                    (prod, at),
                    spare,
                )
                .ok_or_else(no_monoid)?
            }
            _ => return self.interpret(g, id, node, values),
        };
        // A block of elements that failed is this rank's failure, whatever the routine made
        // of the zeros in its place.
        let res = match failed {
            Some(e) => Err(Failure::Task(e)),
            None => res,
        };
        let res = match &ranks {
            // Every rank learns the outcome one process would have; the result's rows then
            // go where they are read, like a kernel's (a histogram's or scatter's by the
            // rows of the result each rank computed: `output_rows`).
            Some((s, (rows, shards))) => {
                let fault = user.as_ref().and_then(|u| u.fault.get().cloned());
                let res = match res {
                    Err(Failure::OutOfRange(..)) => {
                        // This rank's first bad index, in its shards' pairs.
                        let mine = shards_of(s.rank(), s.ranks(), *shards);
                        let pairs = |r: usize| (r * rows * lanes).min(space.iter().product());
                        Err(first_out_of_range_in(
                            data(0),
                            len / lanes,
                            pairs(mine.start)..pairs(mine.end),
                        ))
                    }
                    res => res,
                };
                let mut res = agree(&**s, &describe(id, node), res, fault);
                if let Ok(data) = &mut res {
                    let extent0 = out_ty.shape.first().copied().unwrap_or(1);
                    let row_bytes = len / extent0.max(1) * out_ty.dtype.size_bytes();
                    let rows = LaunchRows {
                        name: &describe(id, node),
                        shards: out_rows.1,
                        rows: out_rows.0,
                        extent0,
                        outputs: &[(super::data_ptr_mut(data), row_bytes, out_ty.dtype)],
                        needs: &[self.need(Port { node: id, port: 0 })],
                    };
                    if !matches!(s.finish_launch(&rows, Ok(())), Outcome::Done) {
                        return Err(NativeError::CompilerBug {
                            what: "the native backend on ranks".into(),
                            finding: format!("{}: the ranks disagree", describe(id, node)),
                        });
                    }
                }
                res
            }
            None => res,
        };
        drop(datas);
        drop(elems);
        if computed && res.is_err() {
            // The elements are not in memory to find the first bad index or point in: the
            // interpreter finds it, and words the error as it does — on ranks, from whole
            // inputs, as one process.
            match &ranks {
                Some((s, _)) => {
                    let whole = self.whole_reads(&**s, g, node, values)?;
                    self.interpret(g, id, node, &whole)?;
                }
                None => {
                    self.interpret(g, id, node, values)?;
                }
            }
        }
        if let (Some(u), None) = (&user, &ranks) {
            if let Some(x) = u.fault.get() {
                return Err(NativeError::Interpreted {
                    op: describe(id, node),
                    cause: format!("`{}`'s combine: {x}", u.monoid.name),
                });
            }
        }
        match res {
            Ok(data) => Ok(vec![Tensor {
                shape: out_ty.shape.clone(),
                data,
            }]),
            Err(Failure::Fault(x)) => Err(NativeError::Interpreted {
                op: describe(id, node),
                cause: format!(
                    "`{}`'s combine: {x}",
                    user.as_ref().map_or("?", |u| u.monoid.name.as_str())
                ),
            }),
            Err(Failure::Elsewhere) => Err(NativeError::CompilerBug {
                what: "the native backend on ranks".into(),
                finding: format!("{}: a rank failed without an error", describe(id, node)),
            }),
            Err(Failure::Task(e)) => Err(NativeError::shard(id, node, &space, SCAN_ROWS, &e)),
            Err(Failure::OutOfRange(v, p)) => {
                let (what, shape) = match &node.kind {
                    NodeKind::Scatter { .. } => ("the destination", out_ty.shape.clone()),
                    _ => ("the bins", out_ty.shape.clone()),
                };
                let fault = crate::interp::index_fault(what, v, p, &shape);
                Err(NativeError::Interpreted {
                    op: describe(id, node),
                    cause: fault.to_string(),
                })
            }
        }
    }
}

/// The rows a task of a routine covers, for naming a failed task's box.
const SCAN_ROWS: usize = flow_runtime::prims::SCAN_BLOCK;

/// The failure for the first index of `idx` outside `0..n`.
fn out_of_range(idx: &Data, n: usize) -> Failure {
    match first_out_of_range(idx, n) {
        Some((v, p)) => Failure::OutOfRange(v, p),
        None => Failure::OutOfRange(-1, 0),
    }
}

/// Whether a scatter's index is the same at every point of a row: it reads no index
/// variable but the first (`i0`), directly or through a read's projection.
fn index_by_row(index: &ScalarExpr, reads: &[Read]) -> bool {
    let mut by_row = true;
    index.visit(&mut |e| match e {
        ScalarExpr::Index(k) if *k != 0 => by_row = false,
        ScalarExpr::Read(r) => {
            let along_rows = |a: &Affine| a.coeffs.iter().all(|&(v, c)| v == 0 || c == 0);
            if !reads
                .get(*r as usize)
                .is_some_and(|r| r.proj.iter().all(along_rows))
            {
                by_row = false;
            }
        }
        _ => {}
    });
    by_row
}

/// A scatter placed on ranks: the ranks, the lanes of a row, `(rows, shards)` of its blocks,
/// and `(rows, blocks)` of its result's rows by rank (`spread::output_rows`).
type OnRanks<'a> = (&'a dyn Spread, usize, (usize, usize), (usize, usize));

/// The rows of a scatter: `lanes` pairs each (1 for a 1-D scatter), and whether every pair
/// of a row has the row's index (see [`index_by_row`]).
#[derive(Clone, Copy)]
struct Rows {
    lanes: usize,
    by_row: bool,
}

/// `dest` with `vals` scattered at `idx` (in `spare`'s buffer when it fits), in `rows`, or
/// `None` for values of another type than `dest`.
fn scatter_data(
    pool: &Pool,
    dest: &Data,
    rows: Rows,
    (idx, vals): (&Data, &Data),
    (prod, ranks): (Option<&Producer>, Option<OnRanks<'_>>),
    spare: Data,
) -> Option<Result<Data, Failure>> {
    fn go<T: Copy + Send + Sync, I: Index>(
        pool: &Pool,
        (dest, rows): (&[T], Rows),
        (idx, vals): (&[I], &[T]),
        (prod, ranks): (Option<&Producer>, Option<OnRanks<'_>>),
        mut out: Vec<T>,
    ) -> Result<Vec<T>, Failure> {
        out.copy_from_slice(dest);
        if let Some(at) = ranks {
            // Placed by blocks: plain reads (`prim_placement`), no producer.
            return scatter_on_ranks(at, pool, (idx, vals), &mut out).map(|()| out);
        }
        let fill = fill2(prod);
        let src = pairs(idx, vals, prod, &fill);
        match scatter_rows(pool, &mut out, rows.lanes, rows.by_row, src)? {
            0 => Ok(out),
            _ => Err(Failure::OutOfRange(-1, 0)),
        }
    }
    macro_rules! arm {
        ($v:ident, $d:ident, $x:ident) => {{
            let out = output(Some(spare), $d.len(), Default::default());
            let r = match idx {
                Data::I64(i) => go(pool, ($d, rows), (i, $x), (prod, ranks), out),
                Data::I32(i) => go(pool, ($d, rows), (i, $x), (prod, ranks), out),
                _ => return None,
            };
            Some(r.map(Data::$v).map_err(|e| match e {
                // On ranks, the caller finds the first in this rank's pairs.
                Failure::OutOfRange(..) if ranks.is_none() => {
                    out_of_range(idx, $d.len() / rows.lanes)
                }
                e => e,
            }))
        }};
    }
    match (dest, vals) {
        (Data::F32(d), Data::F32(x)) => arm!(F32, d, x),
        (Data::F64(d), Data::F64(x)) => arm!(F64, d, x),
        (Data::I32(d), Data::I32(x)) => arm!(I32, d, x),
        (Data::I64(d), Data::I64(x)) => arm!(I64, d, x),
        (Data::Bool(d), Data::Bool(x)) => arm!(Bool, d, x),
        (Data::U8(d), Data::U8(x)) => arm!(U8, d, x),
        (Data::U32(d), Data::U32(x)) => arm!(U32, d, x),
        (Data::U64(d), Data::U64(x)) => arm!(U64, d, x),
        _ => None,
    }
}
