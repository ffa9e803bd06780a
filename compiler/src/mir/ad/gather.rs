//! The adjoint of a gather: a read `x[c₀(i), …]` at integer coordinates computed at each
//! point `i` of a node's box (`x[idx[i]]`) sends its contribution to `x` at those
//! coordinates, so the table's adjoint is a scatter-add of the contributions.
//!
//! It is built from ordinary nodes:
//!
//! - **the coordinates**, a map over the box with one `i64` output per axis of the table:
//!   `k_d[i] = c_d(i)` where every coordinate is inside the table, else the gather itself
//!   (which fails with `IndexOutOfRange` naming the table, as the forward pass would have:
//!   the forward node may be dead in a derived graph that needs only the gradient, and a
//!   coordinate outside would otherwise be dropped silently);
//! - **the accumulation**, a `sum` over the box for each element `s` of the table of the
//!   contributions whose coordinates are `s` (`Σ_i [k(i) = s] · c(i)`), the contribution
//!   only evaluated where they are. A coordinate that is a plain index variable of the same
//!   extent (the `d` of `table[ids[b], d]`) is not summed over: the table's axis stands for
//!   it, so an embedding's adjoint sums over `b` only.
//!
//! Where the box fits a histogram's shape — its first variable gives the values, the later
//! ones are pivots of the table's trailing axes (a gather from a vector in a map over a
//! vector, an embedding's `table[ids[b], d]`) — the accumulation is one `ReduceByIndex`
//! (`sum`: the scatter-add, linear in the box) whose bin index is the flattened coordinates,
//! checked the same way; elsewhere (a gather in a reduction's body, coordinates of several
//! variables) it is the `sum` above, whose work is the table's size times the box's (less
//! the pivot axes). Both add in a fixed order (the histogram's in index order, the `sum`'s
//! over the box), so the result is the same at any thread count and on both backends.
//! The coordinates, integers, carry no gradient.

use flow_runtime::DType;

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Graph, MonoidRef, Node, NodeKind, Port, Read, ScalarExpr,
    TensorTy,
};

use super::accumulate::{guarded_sum, substitute};
use super::scalar::GatherAdjoint;
use super::{read, ty};

fn i64c(v: i64) -> ScalarExpr {
    ScalarExpr::Const(flow_runtime::Scalar::I64(v))
}

fn and_all(cs: impl IntoIterator<Item = ScalarExpr>) -> Option<ScalarExpr> {
    cs.into_iter()
        .reduce(|a, b| ScalarExpr::binary(BinOp::And, a, b))
}

/// The map over the box `extents` of the gather's coordinates `dims` (the others are
/// pivots), one `i64` port each, every coordinate checked to be inside the table (outside,
/// the gather is evaluated and fails).
fn coordinates(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    ga: &GatherAdjoint,
    shape: &[usize],
    dims: &[usize],
    label: &str,
) -> Vec<Port> {
    let inside = and_all(ga.coords.iter().zip(shape).flat_map(|(c, &n)| {
        [
            ScalarExpr::binary(BinOp::Ge, c.clone(), i64c(0)),
            ScalarExpr::binary(BinOp::Lt, c.clone(), i64c(n as i64)),
        ]
    }));
    let Some(inside) = inside else {
        return Vec::new(); // a table of rank 0: no coordinate
    };
    let fail = ScalarExpr::cast(ScalarExpr::Gather(ga.read, ga.coords.clone()), DType::I64);
    let body: Vec<ScalarExpr> = dims
        .iter()
        .map(|&d| ScalarExpr::select(inside.clone(), ga.coords[d].clone(), fail.clone()))
        .collect();
    let n = body.len();
    let outs = vec![TensorTy::new(DType::I64, extents.to_vec()); n];
    let mut node = Node {
        kind: NodeKind::Map {
            space: extents.to_vec(),
            reads: reads.to_vec(),
            body,
        },
        outputs: outs,
        label: format!("{label}.coords"),
        span: None,
    };
    node.prune_reads();
    let id = g.add(node);
    (0..n as u32).map(|port| Port { node: id, port }).collect()
}

/// Adds the nodes that scatter-add the gather adjoint `ga` — contributions computed over the
/// box `extents` and `reads` — into the shape of its table, and returns the table's adjoint.
///
/// A coordinate that is a plain index variable `i_v` (the `d` of `table[ids[b], d]`) is a
/// *pivot*: the new node's variable for that axis of the table stands for `i_v`, which is
/// not summed over; the other variables are, guarded by their coordinates' equality.
pub(super) fn scatter_add(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    ga: &GatherAdjoint,
    dtype: DType,
    label: &str,
) -> Port {
    let shape = ty(g, reads[ga.read as usize].src()).shape.clone();
    let rank = shape.len();
    // Pivots: table axis d read at index variable v (each variable once).
    let mut pivot_of: Vec<Option<usize>> = vec![None; extents.len()];
    for (d, c) in ga.coords.iter().enumerate() {
        if let ScalarExpr::Index(v) = c {
            // Only where the extents agree: then every table element along d is one point.
            if pivot_of[*v as usize].is_none() && extents[*v as usize] == shape[d] {
                pivot_of[*v as usize] = Some(d);
            }
        }
    }
    if let Some(p) = by_index(g, extents, reads, ga, &shape, &pivot_of, dtype, label) {
        return p;
    }
    let pivot_dims: Vec<usize> = pivot_of.iter().flatten().copied().collect();
    let mut dims: Vec<usize> = (0..rank).filter(|d| !pivot_dims.contains(d)).collect();
    if dims.is_empty() && rank > 0 {
        dims.push(0); // keep the range check, whose output is then always true to compare
    }
    let at = coordinates(g, extents, reads, ga, &shape, &dims, label);
    // The new box: the table's axes, then the box's variables that are not pivots.
    let mut red = Vec::new();
    let mut sub: Vec<Affine> = Vec::with_capacity(extents.len());
    for (v, &n) in extents.iter().enumerate() {
        sub.push(match pivot_of[v] {
            Some(d) => Affine::var(d as u32),
            None => {
                red.push(n);
                Affine::var((rank + red.len() - 1) as u32)
            }
        });
    }
    let over_box: Vec<Affine> = (0..extents.len() as u32)
        .map(|v| substitute(&Affine::var(v), &sub))
        .collect();
    let mut new_reads: Vec<Read> = reads
        .iter()
        .map(|r| Read {
            proj: r.proj.iter().map(|a| substitute(a, &sub)).collect(),
            ..r.clone()
        })
        .collect();
    let mut guards = Vec::new();
    for (&d, &p) in dims.iter().zip(&at) {
        new_reads.push(read(p, over_box.clone()));
        guards.push(ScalarExpr::binary(
            BinOp::Eq,
            ScalarExpr::Read(new_reads.len() as u32 - 1),
            ScalarExpr::Index(d as u32),
        ));
    }
    let contribution = ga.contribution.rewrite(&mut |x| match x {
        ScalarExpr::Index(v) => Some(ScalarExpr::Index(sub[*v as usize].coeffs[0].0)),
        _ => None,
    });
    let label = format!("{label}.scatter");
    guarded_sum(
        g,
        shape,
        red,
        new_reads,
        contribution,
        guards,
        dtype,
        &label,
    )
}

/// The scatter-add as one `ReduceByIndex` (`sum`, in index order) when the box fits its
/// shape: the first variable is not a pivot (its points are the values) and every later one
/// is, of the table's trailing axes in order (carried along: `table[ids[b], d]` over
/// `[B, D]`). The other axes of the table are flattened into the bin index (checked as in
/// [`coordinates`]), then a map reads the bins back into the table's shape. Linear in the
/// box; `None` where the box does not fit (then the dense `sum`).
#[allow(clippy::too_many_arguments)]
fn by_index(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    ga: &GatherAdjoint,
    shape: &[usize],
    pivot_of: &[Option<usize>],
    dtype: DType,
    label: &str,
) -> Option<Port> {
    let (r, rank) = (extents.len(), shape.len());
    if r == 0 || rank == 0 || pivot_of[0].is_some() {
        return None;
    }
    let lead = rank.checked_sub(r - 1)?; // the table's axes before the carried ones
    if (1..r).any(|v| pivot_of[v] != Some(lead + v - 1)) {
        return None;
    }
    // The flat bin of the leading axes, row-major; outside the table, the gather fails.
    let flat = (0..lead)
        .map(|d| (d, ga.coords[d].clone()))
        .reduce(|(_, acc), (d, c)| {
            let scaled = ScalarExpr::binary(BinOp::Mul, acc, i64c(shape[d] as i64));
            (d, ScalarExpr::binary(BinOp::Add, scaled, c))
        })
        .map_or(i64c(0), |(_, e)| e);
    let inside = and_all(ga.coords.iter().zip(shape).flat_map(|(c, &n)| {
        [
            ScalarExpr::binary(BinOp::Ge, c.clone(), i64c(0)),
            ScalarExpr::binary(BinOp::Lt, c.clone(), i64c(n as i64)),
        ]
    }))?;
    let fail = ScalarExpr::cast(ScalarExpr::Gather(ga.read, ga.coords.clone()), DType::I64);
    let bins: usize = shape[..lead].iter().product();
    let out: Vec<usize> = std::iter::once(bins)
        .chain(extents[1..].iter().copied())
        .collect();
    let mut node = Node {
        kind: NodeKind::ReduceByIndex {
            space: extents.to_vec(),
            bins,
            monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
            reads: reads.to_vec(),
            index: ScalarExpr::select(inside, flat, fail),
            args: vec![ga.contribution.clone()],
        },
        outputs: vec![TensorTy::new(dtype, out.clone())],
        label: format!("{label}.scatter"),
        span: None,
    };
    node.prune_reads();
    let h = Port {
        node: g.add(node),
        port: 0,
    };
    if lead == 1 {
        return Some(h); // already the table's shape
    }
    // Back into the table's shape: bin Σ stride_d s_d, then the carried axes.
    let mut at = Affine::konst(0);
    let mut stride = 1i64;
    for d in (0..lead).rev() {
        at.coeffs.push((d as u32, stride));
        stride *= shape[d] as i64;
    }
    let proj: Vec<Affine> = std::iter::once(at)
        .chain((lead..rank).map(|d| Affine::var(d as u32)))
        .collect();
    let node = Node {
        kind: NodeKind::Map {
            space: shape.to_vec(),
            reads: vec![read(h, proj)],
            body: vec![ScalarExpr::Read(0)],
        },
        outputs: vec![TensorTy::new(dtype, shape.to_vec())],
        label: format!("{label}.unflatten"),
        span: None,
    };
    Some(Port {
        node: g.add(node),
        port: 0,
    })
}
