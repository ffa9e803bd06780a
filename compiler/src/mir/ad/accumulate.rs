//! The adjoint of one affine read: the contributions computed at every point of a node's index
//! box, accumulated into the shape of the tensor read.
//!
//! A read `x[P(i)]` inside a node over the box `E` sends its contribution `c(i)` to `x` at
//! `P(i)`. The adjoint is built as a new node over `x`'s shape: for each coordinate `d` of
//! `x`, a *pivot* index variable `v` that occurs in `P_d` alone, with coefficient ±1, is solved
//! for (`i_v = ±(s_d - konst - Σ other terms)`); the index variables that are not pivots
//! become the reduced variables of a `sum`. So
//!
//! - a plain or transposed read (`w[k, n]` in `y[i, n] = sum[k](x[i, k] * w[k, n])`) becomes a
//!   `sum` over the variables it does not use — a transposed contraction that the GEMM path
//!   runs — or a plain map when it uses them all;
//! - a read at a constant offset or a sum of variables (`x[i + k]`) becomes the transposed
//!   convolution, its solved variable guarded to stay in its range (reads that may then leave
//!   their tensor are zero-padded, and only evaluated where the guard holds);
//! - a coordinate without a pivot (a constant, `x[2 * i]`, or a variable used in two
//!   coordinates as in a diagonal `x[i, i]`) ranges over the whole extent and is guarded by
//!   `s_d == P_d`: correct, and slower by that extent (the general fallback).
//!
//! A `clamp_edge` read (`x[clamp(P(i))]`) first accumulates into an *extended* tensor that
//! covers every coordinate `P` reaches (a plain read there, at an offset), then folds each
//! extended axis back: element 0 of `x` receives everything that was clamped up to it, the
//! last element everything clamped down to it (two small `sum`s over the overhangs, added
//! at the edges). Linear in the tensor's size.

use flow_runtime::{DType, Scalar};

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Edge, Graph, MonoidRef, Node, NodeKind, Port, Read, ScalarExpr,
    TensorTy,
};

use super::scalar::fconst;
use super::AdError;

/// The smallest and largest value of `a` over the box `extents` (`None` when it is empty).
fn bounds(a: &Affine, extents: &[usize]) -> Option<(i64, i64)> {
    let (mut lo, mut hi) = (a.konst, a.konst);
    for &(v, c) in &a.coeffs {
        let n = *extents.get(v as usize)? as i64;
        if n == 0 {
            return None;
        }
        let (x, y) = (0, c * (n - 1));
        lo += x.min(y);
        hi += x.max(y);
    }
    Some((lo, hi))
}

/// `a` as an `i64` scalar expression of the index variables.
fn affine_expr(a: &Affine) -> ScalarExpr {
    let mut e = ScalarExpr::Const(Scalar::I64(a.konst));
    for &(v, c) in &a.coeffs {
        let term = ScalarExpr::binary(
            BinOp::Mul,
            ScalarExpr::Const(Scalar::I64(c)),
            ScalarExpr::Index(v),
        );
        e = ScalarExpr::binary(BinOp::Add, e, term);
    }
    e
}

/// `a` with every variable `v` replaced by `sub[v]`.
pub(super) fn substitute(a: &Affine, sub: &[Affine]) -> Affine {
    let mut out = Affine::konst(a.konst);
    for &(v, c) in &a.coeffs {
        let s = &sub[v as usize];
        out.konst += c * s.konst;
        for &(w, d) in &s.coeffs {
            match out.coeffs.iter_mut().find(|(x, _)| *x == w) {
                Some(slot) => slot.1 += c * d,
                None => out.coeffs.push((w, c * d)),
            }
        }
    }
    out.coeffs.retain(|&(_, c)| c != 0);
    out
}

/// Adds to `g` the node that accumulates `contribution` — an expression over the box
/// `extents` and `reads` — into the shape of `target`'s tensor, and returns its port.
pub(super) fn accumulate(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    contribution: ScalarExpr,
    target: &Read,
    dtype: DType,
    label: &str,
) -> Result<Port, AdError> {
    let shape = g.nodes[target.node].outputs[target.port as usize]
        .shape
        .clone();
    if target.edge == Edge::Clamp {
        return clamped(
            g,
            extents,
            reads,
            contribution,
            target,
            &shape,
            dtype,
            label,
        );
    }
    into(
        g,
        extents,
        reads,
        contribution,
        &target.proj,
        shape,
        dtype,
        label,
    )
}

/// The adjoint of a `clamp_edge` read: accumulated into the extended tensor that every
/// coordinate reached covers, then folded back axis by axis.
#[allow(clippy::too_many_arguments)]
fn clamped(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    contribution: ScalarExpr,
    target: &Read,
    shape: &[usize],
    dtype: DType,
    label: &str,
) -> Result<Port, AdError> {
    let Some(ranges) = target
        .proj
        .iter()
        .map(|a| bounds(a, extents))
        .collect::<Option<Vec<_>>>()
    else {
        // An empty box contributes nothing.
        return Ok(super::zeros(
            g,
            &TensorTy::new(dtype, shape.to_vec()),
            label,
        ));
    };
    // Extended axis d covers `lo_d ..= hi_d` of the read's coordinates, `lo_d <= 0`.
    let mut ext = Vec::with_capacity(shape.len());
    let mut proj = Vec::with_capacity(shape.len());
    for ((a, &(lo, hi)), &n) in target.proj.iter().zip(&ranges).zip(shape) {
        let lo = lo.min(0);
        let hi = hi.max(n as i64 - 1);
        ext.push((hi - lo + 1) as usize);
        let mut a = a.clone();
        a.konst -= lo;
        proj.push(a);
    }
    let mut cur = into(
        g,
        extents,
        reads,
        contribution,
        &proj,
        ext.clone(),
        dtype,
        label,
    )?;
    // Fold axis d back from `ext` to `shape`: x[s] = e[s - lo] plus, at s = 0, e[0 .. -lo]
    // and, at s = n - 1, e[n - lo ..].
    let mut now = ext;
    for d in 0..shape.len() {
        let n = shape[d];
        let low = (-ranges[d].0.min(0)) as usize;
        let high = now[d] - n - low;
        if low == 0 && high == 0 {
            continue;
        }
        let mut out = now.clone();
        out[d] = n;
        let rank = out.len() as u32;
        let mut reads = Vec::new();
        let mut p = (0..rank).map(Affine::var).collect::<Vec<_>>();
        p[d].konst = low as i64;
        reads.push(strict(cur, p));
        let mut body = ScalarExpr::Read(0);
        for (count, start, at) in [(low, 0, 0), (high, (n + low) as i64, n as i64 - 1)] {
            if count == 0 {
                continue;
            }
            // The overhang summed, over the other axes, then added at the edge.
            let mut rest = out.clone();
            rest.remove(d);
            let mut p: Vec<Affine> = (0..rest.len() as u32).map(Affine::var).collect();
            p.insert(
                d,
                Affine {
                    konst: start,
                    coeffs: vec![(rest.len() as u32, 1)],
                },
            );
            let over = sum_node(g, rest, vec![count], strict(cur, p), dtype, label);
            let mut q: Vec<Affine> = (0..rank).map(Affine::var).collect();
            q.remove(d);
            reads.push(strict(over, q));
            let edge = ScalarExpr::binary(
                BinOp::Eq,
                ScalarExpr::Index(d as u32),
                ScalarExpr::Const(Scalar::I64(at)),
            );
            let add = ScalarExpr::Read(reads.len() as u32 - 1);
            body = ScalarExpr::binary(
                BinOp::Add,
                body,
                ScalarExpr::select(edge, add, fconst(dtype, 0.0)),
            );
        }
        let node = Node {
            kind: NodeKind::Map {
                space: out.clone(),
                reads,
                body: vec![body],
            },
            outputs: vec![TensorTy::new(dtype, out.clone())],
            label: label.to_string(),
            span: None,
        };
        cur = Port {
            node: g.add(node),
            port: 0,
        };
        now = out;
    }
    Ok(cur)
}

/// A strict read of `p`.
fn strict(p: Port, proj: Vec<Affine>) -> Read {
    Read {
        node: p.node,
        port: p.port,
        proj,
        edge: Edge::Strict,
    }
}

/// `sum` over `red` of one read, the free space `space`.
fn sum_node(
    g: &mut Graph,
    space: Vec<usize>,
    red: Vec<usize>,
    r: Read,
    dtype: DType,
    label: &str,
) -> Port {
    let node = Node {
        kind: NodeKind::Reduce {
            space: space.clone(),
            red,
            monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
            reads: vec![r],
            args: vec![ScalarExpr::Read(0)],
        },
        outputs: vec![TensorTy::new(dtype, space)],
        label: label.to_string(),
        span: None,
    };
    Port {
        node: g.add(node),
        port: 0,
    }
}

/// [`accumulate`] into a tensor of shape `shape` read through `proj`, always inside it.
#[allow(clippy::too_many_arguments)]
fn into(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    contribution: ScalarExpr,
    proj: &[Affine],
    shape: Vec<usize>,
    dtype: DType,
    label: &str,
) -> Result<Port, AdError> {
    let rank = shape.len();
    // How many coordinates of the target each variable occurs in.
    let mut occurs = vec![0usize; extents.len()];
    for a in proj {
        for &(v, c) in &a.coeffs {
            if c != 0 {
                occurs[v as usize] += 1;
            }
        }
    }
    let mut pivot: Vec<Option<(u32, i64)>> = vec![None; rank];
    let mut is_pivot = vec![false; extents.len()];
    for (d, a) in proj.iter().enumerate() {
        if let Some(&(v, c)) = a
            .coeffs
            .iter()
            .find(|&&(v, c)| (c == 1 || c == -1) && occurs[v as usize] == 1)
        {
            pivot[d] = Some((v, c));
            is_pivot[v as usize] = true;
        }
    }
    // The new box: the target's coordinates, then the reduced (non-pivot) variables.
    let mut red = Vec::new();
    let mut sub: Vec<Affine> = vec![Affine::default(); extents.len()];
    for (v, &n) in extents.iter().enumerate() {
        if !is_pivot[v] {
            sub[v] = Affine::var((rank + red.len()) as u32);
            red.push(n);
        }
    }
    for (d, p) in pivot.iter().enumerate() {
        if let Some((v, c)) = *p {
            // i_v = c · (s_d - konst - Σ_{u ≠ v} c_u · i_u), with c = ±1.
            let a = &proj[d];
            let mut s = Affine {
                konst: -c * a.konst,
                coeffs: vec![(d as u32, c)],
            };
            for &(u, cu) in &a.coeffs {
                if u != v {
                    let su = &sub[u as usize];
                    s.konst += -c * cu * su.konst;
                    for &(w, k) in &su.coeffs {
                        s.coeffs.push((w, -c * cu * k));
                    }
                }
            }
            sub[v as usize] = s;
        }
    }
    let mut all = shape.clone();
    all.extend(&red);
    let mut guards = Vec::new();
    for (v, &n) in extents.iter().enumerate() {
        if is_pivot[v] {
            let inside = bounds(&sub[v], &all).is_none_or(|(lo, hi)| lo >= 0 && hi < n as i64);
            if !inside {
                let e = affine_expr(&sub[v]);
                let lo =
                    ScalarExpr::binary(BinOp::Ge, e.clone(), ScalarExpr::Const(Scalar::I64(0)));
                let hi = ScalarExpr::binary(BinOp::Lt, e, ScalarExpr::Const(Scalar::I64(n as i64)));
                guards.push(lo);
                guards.push(hi);
            }
        }
    }
    for (d, p) in pivot.iter().enumerate() {
        if p.is_none() {
            let at = substitute(&proj[d], &sub);
            guards.push(ScalarExpr::binary(
                BinOp::Eq,
                ScalarExpr::Index(d as u32),
                affine_expr(&at),
            ));
        }
    }
    let new_reads: Vec<Read> = reads
        .iter()
        .map(|r| {
            let proj: Vec<Affine> = r.proj.iter().map(|a| substitute(a, &sub)).collect();
            let src = &g.nodes[r.node].outputs[r.port as usize];
            let inside = proj
                .iter()
                .zip(&src.shape)
                .all(|(a, &n)| bounds(a, &all).is_none_or(|(lo, hi)| lo >= 0 && hi < n as i64));
            let edge = match r.edge {
                // Only evaluated where the guards hold, where it is inside.
                Edge::Strict if !inside => Edge::Pad(zero_of(src.dtype)),
                e => e,
            };
            Read {
                node: r.node,
                port: r.port,
                proj,
                edge,
            }
        })
        .collect();
    let body = contribution.rewrite(&mut |x| match x {
        ScalarExpr::Index(v) => Some(affine_expr(&sub[*v as usize])),
        _ => None,
    });
    Ok(guarded_sum(
        g, shape, red, new_reads, body, guards, dtype, label,
    ))
}

/// A node over `shape` (then the reduced extents `red`, summed over when there are any) of
/// `body` where every guard holds, else zero.
#[allow(clippy::too_many_arguments)]
pub(super) fn guarded_sum(
    g: &mut Graph,
    shape: Vec<usize>,
    red: Vec<usize>,
    reads: Vec<Read>,
    body: ScalarExpr,
    guards: Vec<ScalarExpr>,
    dtype: DType,
    label: &str,
) -> Port {
    let body = match guards
        .into_iter()
        .reduce(|a, b| ScalarExpr::binary(BinOp::And, a, b))
    {
        Some(c) => ScalarExpr::select(c, body, fconst(dtype, 0.0)),
        None => body,
    };
    let kind = if red.is_empty() {
        NodeKind::Map {
            space: shape.clone(),
            reads,
            body: vec![body],
        }
    } else {
        NodeKind::Reduce {
            space: shape.clone(),
            red,
            monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
            reads,
            args: vec![body],
        }
    };
    super::add_pruned(g, kind, TensorTy::new(dtype, shape), label)
}

/// The zero of an element type (the padding of a read that may leave its tensor).
pub(super) fn zero_of(d: DType) -> Scalar {
    match d {
        DType::F32 => Scalar::F32(0.0),
        DType::F64 => Scalar::F64(0.0),
        DType::I32 => Scalar::I32(0),
        DType::I64 => Scalar::I64(0),
        DType::Bool => Scalar::Bool(false),
        DType::U8 | DType::U32 | DType::U64 => Scalar::I64(0).cast(d),
    }
}
