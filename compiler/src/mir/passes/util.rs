//! Graph surgery shared by the passes: use counts, renumbering after nodes are dropped,
//! composing affine projections. (What other stages need too — `Node::inputs`,
//! `Node::prune_reads`, `ScalarExpr::rewrite`, explicit monoids, the cost of an expression —
//! is in `mir::ir`, `mir::monoid` and `mir::cost`, not here.)

use std::collections::HashMap;

use flow_runtime::Scalar;

use crate::mir::ir::{Affine, BinOp, Graph, NodeId, NodeKind, Port, Read, ScalarExpr};
use crate::mir::Idx;

/// How many times each port is read (by nodes and by the graph's outputs).
pub fn use_counts(g: &Graph) -> HashMap<Port, usize> {
    let mut uses: HashMap<Port, usize> = HashMap::with_capacity(g.nodes.len());
    for n in g.nodes.iter() {
        match &n.kind {
            NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => {
                for r in reads {
                    *uses.entry(r.src()).or_default() += 1;
                }
            }
            _ => {
                for p in n.inputs() {
                    *uses.entry(p).or_default() += 1;
                }
            }
        }
    }
    for p in &g.outputs {
        *uses.entry(*p).or_default() += 1;
    }
    uses
}

/// Keeps the nodes with `keep[i]`, redirecting every reference through `rename` first, and
/// renumbers. Every kept node must refer only to kept nodes after renaming.
pub fn rebuild(g: &mut Graph, keep: &[bool], rename: &HashMap<Port, Port>) {
    let resolve = |mut p: Port| {
        while let Some(q) = rename.get(&p) {
            if *q == p {
                break;
            }
            p = *q;
        }
        p
    };
    let mut new_id: Vec<Option<NodeId>> = vec![None; g.nodes.len()];
    let mut out = Graph::new();
    out.monoids = std::mem::take(&mut g.monoids);
    let old = std::mem::take(&mut g.nodes);
    for (i, mut node) in old.raw.into_iter().enumerate() {
        if !keep[i] {
            continue;
        }
        node.map_inputs(&mut |p| {
            let p = resolve(p);
            Port {
                node: new_id[p.node.index()].expect("kept nodes read kept nodes"),
                port: p.port,
            }
        });
        new_id[i] = Some(out.add(node));
    }
    out.outputs = g
        .outputs
        .iter()
        .map(|p| {
            let p = resolve(*p);
            Port {
                node: new_id[p.node.index()].expect("outputs are kept"),
                port: p.port,
            }
        })
        .collect();
    *g = out;
}

/// `a` with index variable `v` replaced by the affine `sub[v]`: the composition of a
/// projection with the projection that reads it.
pub fn compose(a: &Affine, sub: &[Affine]) -> Affine {
    let mut res = Affine {
        konst: a.konst,
        coeffs: Vec::new(),
    };
    for (v, c) in &a.coeffs {
        let s = &sub[*v as usize];
        res.konst += c * s.konst;
        for (u, d) in &s.coeffs {
            match res.coeffs.iter_mut().find(|(w, _)| w == u) {
                Some(e) => e.1 += c * d,
                None => res.coeffs.push((*u, c * d)),
            }
        }
    }
    res.coeffs.retain(|(_, c)| *c != 0);
    res
}

/// An affine function as an `i64` scalar expression.
pub fn affine_expr(a: &Affine) -> ScalarExpr {
    let mut terms: Vec<ScalarExpr> = Vec::new();
    for (v, c) in &a.coeffs {
        let idx = ScalarExpr::Index(*v);
        terms.push(if *c == 1 {
            idx
        } else {
            ScalarExpr::binary(BinOp::Mul, ScalarExpr::Const(Scalar::I64(*c)), idx)
        });
    }
    if a.konst != 0 || terms.is_empty() {
        terms.push(ScalarExpr::Const(Scalar::I64(a.konst)));
    }
    let mut it = terms.into_iter();
    let first = it.next().expect("at least one term");
    it.fold(first, |acc, t| ScalarExpr::binary(BinOp::Add, acc, t))
}

/// The number of points of an index box.
pub fn volume(extents: &[usize]) -> usize {
    extents.iter().product()
}

/// A renumbering of index variables: variable `w` becomes the affine combination `f(w)` of
/// new variables (pairs of variable and coefficient). Used to split a dimension into two.
pub type Renumber<'a> = &'a dyn Fn(u32) -> Vec<(u32, i64)>;

/// `reads` with every projection renumbered by `f`.
pub fn renumber_reads(reads: &[Read], f: Renumber<'_>) -> Vec<Read> {
    reads
        .iter()
        .map(|r| Read {
            proj: r
                .proj
                .iter()
                .map(|a| Affine {
                    konst: a.konst,
                    coeffs: a
                        .coeffs
                        .iter()
                        .flat_map(|(w, c)| f(*w).into_iter().map(move |(v, k)| (v, c * k)))
                        .collect(),
                })
                .collect(),
            ..r.clone()
        })
        .collect()
}

/// `e` with every `Index` renumbered by `f` (a sum of products, left to right).
pub fn renumber_expr(e: &ScalarExpr, f: Renumber<'_>) -> ScalarExpr {
    e.rewrite(&mut |x| {
        let ScalarExpr::Index(w) = x else {
            return None;
        };
        let terms = f(*w);
        if terms == [(*w, 1)] {
            return None;
        }
        let term = |(v, k): (u32, i64)| {
            if k == 1 {
                ScalarExpr::Index(v)
            } else {
                ScalarExpr::binary(
                    BinOp::Mul,
                    ScalarExpr::Index(v),
                    ScalarExpr::Const(flow_runtime::Scalar::I64(k)),
                )
            }
        };
        terms
            .into_iter()
            .map(term)
            .reduce(|a, b| ScalarExpr::binary(BinOp::Add, a, b))
    })
}
