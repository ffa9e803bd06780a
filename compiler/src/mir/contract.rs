//! Contractions: a `Reduce` of the form `sum[k](a[·, ·] * b[·, ·])` over one reduced variable
//! and two free ones, where each operand is a plain (possibly transposed) matrix read. Both
//! backends evaluate such a node with the runtime's GEMM (`flow_runtime::gemm`), so they agree
//! bit for bit and run at the speed of a tuned micro-kernel.
//!
//! **Invariant:** [`contraction`] recognizes a node only when the GEMM computes exactly the
//! elements the node defines: both reads strict (proved in bounds), every coordinate a single
//! index variable with coefficient 1, the output `f32` or `f64` like both operands.

use flow_runtime::DType;

use super::ir::{BinOp, BuiltinMonoid, Edge, Graph, MonoidRef, Node, NodeKind, Read, ScalarExpr};

/// A recognized contraction: `out[i, j] = Σ_p a[i, p] · b[p, j]`, with operand strides in
/// elements (row stride along `i` or `p`, column stride along `p` or `j`).
#[derive(Clone, Debug, PartialEq)]
pub struct Contraction {
    pub dtype: DType,
    /// `(m, k, n)`.
    pub dims: (usize, usize, usize),
    /// The read giving `a`, and its strides along `i` and along `p`.
    pub a: (usize, isize, isize),
    /// The read giving `b`, and its strides along `p` and along `j`.
    pub b: (usize, isize, isize),
}

/// The strides of read `r` along index variables `x` and `y`, if its projection is exactly
/// those two variables in some order (coefficient 1, no constant).
fn strides(g: &Graph, r: &Read, x: u32, y: u32) -> Option<(isize, isize)> {
    if r.edge != Edge::Strict || r.proj.len() != 2 {
        return None;
    }
    let shape = &g.nodes[r.node].outputs[r.port as usize].shape;
    let var = |k: usize| match r.proj[k].coeffs.as_slice() {
        [(v, 1)] if r.proj[k].konst == 0 => Some(*v),
        _ => None,
    };
    let (v0, v1) = (var(0)?, var(1)?);
    let row = shape[1] as isize;
    match (v0, v1) {
        _ if v0 == x && v1 == y => Some((row, 1)),
        _ if v0 == y && v1 == x => Some((1, row)),
        _ => None,
    }
}

/// The contraction that `node` is, if it is one.
pub fn contraction(g: &Graph, node: &Node) -> Option<Contraction> {
    let NodeKind::Reduce {
        space,
        red,
        monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
        reads,
        args,
    } = &node.kind
    else {
        return None;
    };
    let dtype = node.outputs.first()?.dtype;
    if space.len() != 2 || red.len() != 1 || !matches!(dtype, DType::F32 | DType::F64) {
        return None;
    }
    let [ScalarExpr::Binary(BinOp::Mul, x, y)] = args.as_slice() else {
        return None;
    };
    let (ScalarExpr::Read(ra), ScalarExpr::Read(rb)) = (&**x, &**y) else {
        return None;
    };
    let (ra, rb) = (*ra as usize, *rb as usize);
    let typed = |k: usize| {
        let r = reads.get(k)?;
        (g.nodes[r.node].outputs[r.port as usize].dtype == dtype).then_some(r)
    };
    let (a, b) = (typed(ra)?, typed(rb)?);
    // Products commute exactly, so either read may play the part of `a`.
    for ((ka, a), (kb, b)) in [((ra, a), (rb, b)), ((rb, b), (ra, a))] {
        if let (Some(sa), Some(sb)) = (strides(g, a, 0, 2), strides(g, b, 2, 1)) {
            return Some(Contraction {
                dtype,
                dims: (space[0], red[0], space[1]),
                a: (ka, sa.0, sa.1),
                b: (kb, sb.0, sb.1),
            });
        }
    }
    None
}
