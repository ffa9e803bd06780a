//! Evaluating a scan, a histogram (`ReduceByIndex`) and a scatter node: the elements point by
//! point, then the runtime's fixed bracketing (`flow_runtime::prims`) written out element by
//! element, so the native backend, which runs the runtime's parallel routines, agrees bit for
//! bit at every thread count.
//!
//! - **Scan** (along the last axis, each row on its own): a row is cut into blocks of
//!   `SCAN_BLOCK`; within a block `local(i)` is the left fold from the block's first element;
//!   a block's total is the left fold of the folds of its sub-blocks of
//!   `SCAN_BLOCK / SCAN_LANES`; the carries are the exclusive scan of the totals; then
//!   `y[i] = c_b ⊕ local(i)` (`local(i)` in block 0), and the exclusive scan shifts by one
//!   with `c_b` (the identity in block 0) at a block's start.
//! - **Histogram**: the points along the first axis are cut into shards of
//!   `max(HISTOGRAM_SHARD, bins)`; a shard's partial for a bin is the left fold from the
//!   identity of its values in index order; the partials combine in the fixed tree (level
//!   `h = 1, 2, 4, …`: shard `s` becomes `s ⊕ s + h`).
//! - **Scatter**: the writes in index order (so the last of duplicates wins).
//!
//! An index outside the bins or the destination is an error naming the first in index order.

use super::*;
use flow_runtime::prims::{HISTOGRAM_SHARD, SCAN_BLOCK, SCAN_LANES};

/// A monoid's identity state.
pub(super) fn identity(g: &Graph, monoid: MonoidRef, dtype: DType) -> Result<Value, Fault> {
    match monoid {
        MonoidRef::Builtin(b) => ops::builtin_identity(b, dtype)
            .map(Value::Scalar)
            .ok_or(Fault::Internal("built-in monoid over a wrong type")),
        MonoidRef::User(id) => {
            let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
            Ok(Value::flat(&m.zero))
        }
    }
}

/// The element type a built-in monoid folds (the node's first port's).
fn first_dtype(node: &Node) -> DType {
    node.outputs.first().map_or(DType::F32, |t| t.dtype)
}

/// The state of one element: the monoid's wrap of `args`.
pub(super) fn wrap(g: &Graph, monoid: MonoidRef, args: Vec<Value>) -> Result<Value, Fault> {
    let first = |args: Vec<Value>| {
        args.into_iter()
            .next()
            .ok_or(Fault::Internal("a fold without argument"))
    };
    match monoid {
        MonoidRef::Builtin(_) => first(args),
        MonoidRef::User(id) => {
            let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
            match &m.wrap {
                Some(w) => eval_expr(&w.body, &monoid_scope(&args)),
                None => first(args),
            }
        }
    }
}

/// `a ⊕ b` of two states.
pub(super) fn combine_states(
    g: &Graph,
    monoid: MonoidRef,
    a: Value,
    b: Value,
) -> Result<Value, Fault> {
    match monoid {
        MonoidRef::Builtin(m) => {
            let op = ops::builtin_combine(m);
            Ok(Value::Scalar(
                ops::binary(op, a.scalar()?, b.scalar()?).map_err(op_fault)?,
            ))
        }
        MonoidRef::User(id) => {
            let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
            eval_expr(&m.combine, &monoid_scope(&[a, b]))
        }
    }
}

/// The values of `exprs` at every point of `space`, in row-major order.
fn at_points(
    space: &[usize],
    reads: &[Read],
    values: &[Vec<Tensor>],
    mut f: impl FnMut(&[i64], &Scope<'_>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    for_each_point(space, |point| {
        let scope = Scope {
            idx: point,
            reads,
            values,
            params: &[],
        };
        f(point, &scope)
    })
}

/// The states of a scan's or histogram's elements, in row-major order of `space`.
fn states(
    g: &Graph,
    monoid: MonoidRef,
    space: &[usize],
    reads: &[Read],
    args: &[ScalarExpr],
    values: &[Vec<Tensor>],
) -> Result<Vec<Value>, Fault> {
    let mut out = Vec::with_capacity(space.iter().product());
    at_points(space, reads, values, |_, scope| {
        let a = args
            .iter()
            .map(|e| eval_expr(e, scope))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(wrap(g, monoid, a)?);
        Ok(())
    })?;
    Ok(out)
}

/// Writes the unwrapped states into the node's ports, in order.
fn into_ports(
    g: &Graph,
    node: &Node,
    monoid: MonoidRef,
    ys: Vec<Value>,
) -> Result<Vec<Tensor>, Fault> {
    let mut outs = node
        .outputs
        .iter()
        .map(zeros)
        .collect::<Result<Vec<_>, _>>()?;
    let mut fields = Vec::with_capacity(outs.len());
    for (lin, y) in ys.into_iter().enumerate() {
        fields.clear();
        unwrap(g, monoid, y)?.flatten(&mut fields);
        if fields.len() != outs.len() {
            return Err(Fault::Internal("a result that does not match its ports"));
        }
        for (out, v) in outs.iter_mut().zip(fields.drain(..)) {
            out.set(lin, v);
        }
    }
    Ok(outs)
}

/// Evaluates a `Scan` node.
pub(super) fn eval_scan(
    g: &Graph,
    node: &Node,
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, Fault> {
    let NodeKind::Scan {
        space,
        monoid,
        exclusive,
        reads,
        args,
    } = &node.kind
    else {
        return Err(Fault::Internal("not a scan"));
    };
    let (monoid, exclusive) = (*monoid, *exclusive);
    let xs = states(g, monoid, space, reads, args, values)?;
    let row_len = space.last().copied().unwrap_or(1).max(1);
    let id = identity(g, monoid, first_dtype(node))?;
    let c = |a: &Value, b: &Value| combine_states(g, monoid, a.clone(), b.clone());
    let fold = |xs: &[Value]| -> Result<Value, Fault> {
        let mut acc = xs[0].clone();
        for x in &xs[1..] {
            acc = c(&acc, x)?;
        }
        Ok(acc)
    };
    let mut ys = Vec::with_capacity(xs.len());
    for row in xs.chunks(row_len) {
        let mut carry: Option<Value> = None;
        let n_blocks = row.len().div_ceil(SCAN_BLOCK);
        for (b, block) in row.chunks(SCAN_BLOCK).enumerate() {
            let seeded = |a: &Value| match &carry {
                Some(cv) => c(cv, a),
                None => Ok(a.clone()),
            };
            let mut acc: Option<Value> = None;
            for x in block {
                if exclusive {
                    ys.push(match &acc {
                        None => carry.clone().unwrap_or_else(|| id.clone()),
                        Some(a) => seeded(a)?,
                    });
                }
                let next = match &acc {
                    None => x.clone(),
                    Some(a) => c(a, x)?,
                };
                if !exclusive {
                    ys.push(seeded(&next)?);
                }
                acc = Some(next);
            }
            if b + 1 == n_blocks {
                break;
            }
            // The block's total: the fold of its sub-blocks' folds.
            let mut subs = block.chunks(SCAN_BLOCK / SCAN_LANES);
            let mut total = fold(subs.next().ok_or(Fault::Internal("an empty block"))?)?;
            for s in subs {
                total = c(&total, &fold(s)?)?;
            }
            carry = Some(match &carry {
                None => total,
                Some(cv) => c(cv, &total)?,
            });
        }
    }
    into_ports(g, node, monoid, ys)
}

/// The fault of an index outside the bins or the destination: `index` at `point` of a space,
/// for `what` of `shape`.
pub(crate) fn index_fault(
    what: &'static str,
    index: i64,
    position: usize,
    shape: &[usize],
) -> Fault {
    Fault::IndexOutOfBins {
        what,
        index: index.into(),
        position,
        shape: shape.to_vec(),
    }
}

/// The row the index expression `index` names at the point of `scope`, or the
/// out-of-range fault (`what`, the point's position and the shape it names a row of), which
/// shows an unsigned index as the program computed it, not as the `i64` it was cast to.
fn row_of(
    index: &ScalarExpr,
    scope: &Scope<'_>,
    rows: usize,
    (what, position, shape): (&'static str, usize, &[usize]),
) -> Result<usize, Fault> {
    let k = match eval_expr(index, scope)?.scalar()? {
        Scalar::I64(k) => k,
        Scalar::I32(k) => k as i64,
        _ => return Err(Fault::Internal("an index that is not an integer")),
    };
    match usize::try_from(k) {
        Ok(r) if r < rows => Ok(r),
        _ => {
            let mut fault = index_fault(what, k, position, shape);
            if let (Fault::IndexOutOfBins { index: shown, .. }, Some(v)) =
                (&mut fault, unsigned_index(index, scope))
            {
                *shown = v;
            }
            Err(fault)
        }
    }
}

/// Evaluates a `ReduceByIndex` node.
pub(super) fn eval_histogram(
    g: &Graph,
    node: &Node,
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, Fault> {
    let NodeKind::ReduceByIndex {
        space,
        bins,
        monoid,
        reads,
        index,
        args,
    } = &node.kind
    else {
        return Err(Fault::Internal("not a histogram"));
    };
    let (monoid, bins) = (*monoid, *bins);
    let shape: Vec<usize> = std::iter::once(bins)
        .chain(space[1..].iter().copied())
        .collect();
    let cols: usize = space[1..].iter().product();
    let n = space[0];
    let id = identity(g, monoid, first_dtype(node))?;
    let shard = HISTOGRAM_SHARD.max(bins);
    let shards = n.div_ceil(shard).max(1);
    // partials[s][bin * cols + col]
    let mut partials: Vec<Vec<Value>> = vec![vec![id.clone(); bins * cols]; shards];
    let mut lin = 0usize;
    at_points(space, reads, values, |_, scope| {
        let (row, col) = (lin / cols.max(1), lin % cols.max(1));
        let bin = row_of(index, scope, bins, ("the bins", lin, &shape))?;
        lin += 1;
        let a = args
            .iter()
            .map(|e| eval_expr(e, scope))
            .collect::<Result<Vec<_>, _>>()?;
        let x = wrap(g, monoid, a)?;
        let slot = &mut partials[row / shard][bin * cols + col];
        *slot = combine_states(
            g,
            monoid,
            std::mem::replace(slot, Value::Tuple(Vec::new())),
            x,
        )?;
        Ok(())
    })?;
    let mut h = 1;
    while h < shards {
        for s in (0..shards).step_by(2 * h).filter(|s| s + h < shards) {
            let b = std::mem::take(&mut partials[s + h]);
            for (a, b) in partials[s].iter_mut().zip(b) {
                *a = combine_states(g, monoid, std::mem::replace(a, Value::Tuple(Vec::new())), b)?;
            }
        }
        h *= 2;
    }
    let ys = std::mem::take(&mut partials[0]);
    into_ports(g, node, monoid, ys)
}

/// Evaluates a `Scatter` node.
pub(super) fn eval_scatter(node: &Node, values: &[Vec<Tensor>]) -> Result<Vec<Tensor>, Fault> {
    let NodeKind::Scatter {
        dest,
        space,
        reads,
        index,
        value,
    } = &node.kind
    else {
        return Err(Fault::Internal("not a scatter"));
    };
    let mut out = port_value(values, *dest)?.clone();
    let shape = out.shape.clone();
    let cols: usize = space[1..].iter().product();
    let mut lin = 0usize;
    at_points(space, reads, values, |_, scope| {
        let col = lin % cols.max(1);
        let row = row_of(index, scope, shape[0], ("the destination", lin, &shape))?;
        lin += 1;
        let v = eval_expr(value, scope)?.scalar()?;
        out.set(row * cols + col, v);
        Ok(())
    })?;
    Ok(vec![out])
}
