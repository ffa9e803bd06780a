//! Evaluating one node: a `Map` point by point, a `Reduce` by its fixed fold order (or as the
//! runtime's GEMM when it is a contraction), an input, a constant, a random tensor.

use super::*;

/// Evaluates one node to its port tensors.
pub(super) fn eval_node(
    g: &Graph,
    node: &Node,
    inputs: &[Tensor],
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, NodeFault> {
    let out_ty = |k: usize| {
        node.outputs
            .get(k)
            .ok_or(Fault::Internal("missing output port"))
    };
    match &node.kind {
        NodeKind::Input { index } => {
            let t =
                inputs
                    .get(*index as usize)
                    .ok_or(NodeFault::Input(InterpError::MissingInput {
                        index: *index,
                        given: inputs.len(),
                    }))?;
            let expected = out_ty(0)?;
            if TensorTy::of(t) != *expected {
                return Err(NodeFault::Input(InterpError::InputMismatch {
                    index: *index,
                    label: node.label.clone(),
                    expected: expected.clone(),
                    found: TensorTy::of(t),
                }));
            }
            Ok(vec![t.clone()])
        }
        NodeKind::Const { value } => Ok(vec![value.clone()]),
        NodeKind::Random { dist, seed } => {
            let mut t = zeros(out_ty(0)?)?;
            for n in 0..t.len() {
                let x = match dist {
                    Dist::Uniform => rand::uniform(*seed, n as u64),
                    Dist::Normal => rand::normal(*seed, n as u64),
                };
                t.set(n, Scalar::F32(x));
            }
            Ok(vec![t])
        }
        NodeKind::Map { space, reads, body } => {
            let mut outs = node
                .outputs
                .iter()
                .map(zeros)
                .collect::<Result<Vec<_>, _>>()?;
            let mut lin = 0;
            for_each_point(space, |point| {
                let scope = Scope {
                    idx: point,
                    reads,
                    values,
                    params: &[],
                };
                for (e, out) in body.iter().zip(&mut outs) {
                    let v = eval_expr(e, &scope)?.scalar()?;
                    out.set(lin, v);
                }
                lin += 1;
                Ok(())
            })?;
            Ok(outs)
        }
        NodeKind::Reduce { .. } => Ok(eval_reduce(g, node, values)?),
        NodeKind::Scan { .. } => Ok(eval_scan(g, node, values)?),
        NodeKind::ReduceByIndex { .. } => Ok(eval_histogram(g, node, values)?),
        NodeKind::Scatter { .. } => Ok(eval_scatter(node, values)?),
        NodeKind::Concat { axis, parts } => {
            let mut out = zeros(out_ty(0)?)?;
            let part_tensors = parts
                .iter()
                .map(|&p| port_value(values, p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut lin = 0;
            let shape = out.shape.clone();
            for_each_point(&shape, |point| {
                let mut coord = point.to_vec();
                let mut along = point.get(*axis).copied().unwrap_or(0);
                for t in &part_tensors {
                    let extent = t.shape.get(*axis).copied().unwrap_or(0) as i64;
                    if along < extent {
                        coord[*axis] = along;
                        out.set(lin, element(t, &coord)?);
                        lin += 1;
                        return Ok(());
                    }
                    along -= extent;
                }
                Err(Fault::Internal("concat coordinate past the parts"))
            })?;
            Ok(vec![out])
        }
        NodeKind::Slice { src, start, .. } => {
            let mut out = zeros(out_ty(0)?)?;
            let src = port_value(values, *src)?;
            let mut lin = 0;
            let shape = out.shape.clone();
            for_each_point(&shape, |point| {
                let coord: Vec<i64> = point
                    .iter()
                    .zip(start)
                    .map(|(&p, &s)| i64::try_from(s).unwrap_or(i64::MAX).saturating_add(p))
                    .collect();
                out.set(lin, element(src, &coord)?);
                lin += 1;
                Ok(())
            })?;
            Ok(vec![out])
        }
    }
}

/// Evaluates a reduction node; see the module documentation for the fold order.
pub(super) fn eval_reduce(
    g: &Graph,
    node: &Node,
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, Fault> {
    if let Some(c) = contraction(g, node) {
        return eval_contraction(&c, node, values);
    }
    let NodeKind::Reduce {
        space,
        red,
        monoid,
        reads,
        args,
    } = &node.kind
    else {
        return Err(Fault::Internal("not a reduction"));
    };
    let monoid = *monoid;
    let mut outs = node
        .outputs
        .iter()
        .map(zeros)
        .collect::<Result<Vec<_>, _>>()?;
    let mut idx = vec![0i64; space.len() + red.len()];
    let mut lin = 0;
    for_each_point(space, |free| {
        idx[..free.len()].copy_from_slice(free);
        let dtype = node.outputs.first().map_or(DType::F32, |t| t.dtype);
        let mut acc = identity(g, monoid, dtype)?;
        for_each_point(red, |r| {
            idx[free.len()..].copy_from_slice(r);
            let scope = Scope {
                idx: &idx,
                reads,
                values,
                params: &[],
            };
            let args = args
                .iter()
                .map(|e| eval_expr(e, &scope))
                .collect::<Result<Vec<_>, _>>()?;
            acc = combine(
                g,
                monoid,
                std::mem::replace(&mut acc, Value::Tuple(Vec::new())),
                args,
            )?;
            Ok(())
        })?;
        let res = unwrap(g, monoid, acc)?;
        let mut fields = Vec::with_capacity(outs.len());
        res.flatten(&mut fields);
        if fields.len() != outs.len() {
            return Err(Fault::Internal("reduction result does not match its ports"));
        }
        for (out, v) in outs.iter_mut().zip(fields) {
            out.set(lin, v);
        }
        lin += 1;
        Ok(())
    })?;
    Ok(outs)
}

/// `combine(acc, wrap(args))` for one step of a fold.
pub(super) fn combine(
    g: &Graph,
    monoid: MonoidRef,
    acc: Value,
    args: Vec<Value>,
) -> Result<Value, Fault> {
    let x = wrap(g, monoid, args)?;
    combine_states(g, monoid, acc, x)
}

/// The result of a fold: `unwrap(acc)`, or the state itself.
pub(super) fn unwrap(g: &Graph, monoid: MonoidRef, acc: Value) -> Result<Value, Fault> {
    let MonoidRef::User(id) = monoid else {
        return Ok(acc);
    };
    let m = g.monoids.get(id).ok_or(Fault::Internal("missing monoid"))?;
    match &m.unwrap {
        Some(u) => eval_expr(&u.body, &monoid_scope(&[acc])),
        None => Ok(acc),
    }
}

/// Evaluates a contraction with the runtime's GEMM, as the native backend does.
pub(super) fn eval_contraction(
    c: &Contraction,
    node: &Node,
    values: &[Vec<Tensor>],
) -> Result<Vec<Tensor>, Fault> {
    let NodeKind::Reduce { reads, .. } = &node.kind else {
        return Err(Fault::Internal("not a reduction"));
    };
    let mut out = zeros(&node.outputs[0])?;
    let (m, k, n) = c.dims;
    let a = port_value(values, reads[c.a.0].src())?;
    let b = port_value(values, reads[c.b.0].src())?;
    // The verifier proved both reads in bounds; check the furthest element anyway, since the
    // GEMM reads through raw pointers.
    let last = |rows: usize, cols: usize, rs: isize, cs: isize| {
        (rows as isize - 1) * rs + (cols as isize - 1) * cs
    };
    if m > 0 && k > 0 && n > 0 {
        let (la, lb) = (last(m, k, c.a.1, c.a.2), last(k, n, c.b.1, c.b.2));
        if la < 0 || la as usize >= a.len() || lb < 0 || lb as usize >= b.len() {
            return Err(Fault::Internal("contraction operand out of bounds"));
        }
    }
    use flow_runtime::gemm::{gemm_f32, gemm_f64};
    match (&a.data, &b.data, &mut out.data) {
        (Data::F32(x), Data::F32(y), Data::F32(o)) => {
            let (pa, pb) = (operand(x, c.a), operand(y, c.b));
            // SAFETY: both operands are in bounds (checked above) and `o` is m×n.
            unsafe { gemm_f32(m, k, n, pa, pb, o.as_mut_ptr()) }
        }
        (Data::F64(x), Data::F64(y), Data::F64(o)) => {
            let (pa, pb) = (operand(x, c.a), operand(y, c.b));
            // SAFETY: as above.
            unsafe { gemm_f64(m, k, n, pa, pb, o.as_mut_ptr()) }
        }
        _ => return Err(Fault::Internal("contraction over mismatched types")),
    }
    Ok(vec![out])
}

/// A GEMM operand over `data` with the strides of a recognized contraction.
pub(super) fn operand<T>(
    data: &[T],
    (_, row_stride, col_stride): (usize, isize, isize),
) -> flow_runtime::gemm::Operand<T> {
    flow_runtime::gemm::Operand {
        ptr: data.as_ptr(),
        row_stride,
        col_stride,
    }
}

/// The tensor of an already evaluated port.
pub(super) fn port_value(values: &[Vec<Tensor>], p: Port) -> Result<&Tensor, Fault> {
    values
        .get(p.node.0 as usize)
        .and_then(|ports| ports.get(p.port as usize))
        .ok_or(Fault::Internal("reference to a port not yet evaluated"))
}

/// A zero-filled tensor of type `ty`, or an allocation fault.
pub(super) fn zeros(ty: &TensorTy) -> Result<Tensor, Fault> {
    Tensor::zeros(ty.dtype, &ty.shape).map_err(Fault::Alloc)
}

/// Calls `f` with every point of the box `shape` in row-major order (once, with no
/// coordinates, for a rank-0 box; never for a box with a zero extent).
pub(super) fn for_each_point(
    shape: &[usize],
    mut f: impl FnMut(&[i64]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    if shape.contains(&0) {
        return Ok(());
    }
    let mut point = vec![0i64; shape.len()];
    loop {
        f(&point)?;
        let mut dim = shape.len();
        loop {
            if dim == 0 {
                return Ok(());
            }
            dim -= 1;
            point[dim] += 1;
            if (point[dim] as usize) < shape[dim] {
                break;
            }
            point[dim] = 0;
        }
    }
}
