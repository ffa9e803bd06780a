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
//!   only evaluated where they are.
//!
//! The sum runs over the box in its fixed order, so the result is the same at any thread
//! count and on both backends. Its work is the table's size times the box's: a dense
//! formulation, linear in neither. A scatter-add node (`ReduceByIndex`, in index order) makes
//! it linear; until the MIR has one this is the adjoint, exact and deterministic.
//! The coordinates, integers, carry no gradient.

use flow_runtime::DType;

use crate::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Graph, MonoidRef, Node, NodeKind, Port, Read, ScalarExpr,
    TensorTy,
};

use super::accumulate::substitute;
use super::scalar::{fconst, GatherAdjoint};
use super::{ident, read, ty};

/// `e` with index variable `v` renamed `v + by`.
fn shift(e: &ScalarExpr, by: u32) -> ScalarExpr {
    e.rewrite(&mut |x| match x {
        ScalarExpr::Index(v) => Some(ScalarExpr::Index(v + by)),
        _ => None,
    })
}

fn i64c(v: i64) -> ScalarExpr {
    ScalarExpr::Const(flow_runtime::Scalar::I64(v))
}

fn and_all(cs: impl IntoIterator<Item = ScalarExpr>) -> Option<ScalarExpr> {
    cs.into_iter()
        .reduce(|a, b| ScalarExpr::binary(BinOp::And, a, b))
}

/// The map over the box `extents` of the gather's coordinates, one `i64` port per axis of
/// the table, each checked to be inside it (outside, the gather is evaluated and fails).
fn coordinates(
    g: &mut Graph,
    extents: &[usize],
    reads: &[Read],
    ga: &GatherAdjoint,
    shape: &[usize],
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
    let body: Vec<ScalarExpr> = ga
        .coords
        .iter()
        .map(|c| ScalarExpr::select(inside.clone(), c.clone(), fail.clone()))
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
    let at = coordinates(g, extents, reads, ga, &shape, label);
    // The box's variables after the table's: `s` is `0..rank`, `i` is `rank..`.
    let sub: Vec<Affine> = (0..extents.len())
        .map(|v| Affine::var((rank + v) as u32))
        .collect();
    let mut new_reads: Vec<Read> = reads
        .iter()
        .map(|r| Read {
            proj: r.proj.iter().map(|a| substitute(a, &sub)).collect(),
            ..r.clone()
        })
        .collect();
    let mut guards = Vec::new();
    for (d, &p) in at.iter().enumerate() {
        new_reads.push(read(p, substitute_all(extents.len(), rank)));
        guards.push(ScalarExpr::binary(
            BinOp::Eq,
            ScalarExpr::Read(new_reads.len() as u32 - 1),
            ScalarExpr::Index(d as u32),
        ));
    }
    let contribution = shift(&ga.contribution, rank as u32);
    let body = match and_all(guards) {
        Some(c) => ScalarExpr::select(c, contribution, fconst(dtype, 0.0)),
        None => contribution,
    };
    let kind = if extents.is_empty() {
        NodeKind::Map {
            space: shape.clone(),
            reads: new_reads,
            body: vec![body],
        }
    } else {
        NodeKind::Reduce {
            space: shape.clone(),
            red: extents.to_vec(),
            monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
            reads: new_reads,
            args: vec![body],
        }
    };
    let mut node = Node {
        kind,
        outputs: vec![TensorTy::new(dtype, shape)],
        label: format!("{label}.scatter"),
        span: None,
    };
    node.prune_reads();
    Port {
        node: g.add(node),
        port: 0,
    }
}

/// The projection that reads a tensor over the box (`n` variables) from a node whose box
/// puts `rank` variables before the box's.
fn substitute_all(n: usize, rank: usize) -> Vec<Affine> {
    ident(n)
        .into_iter()
        .map(|mut a| {
            for c in &mut a.coeffs {
                c.0 += rank as u32;
            }
            a
        })
        .collect()
}
