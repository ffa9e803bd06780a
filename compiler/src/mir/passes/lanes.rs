//! Lanes: a reduction whose innermost reduced dimension is long and contiguous in every
//! tensor it reads becomes [`LANES`] interleaved partial reductions (eight when every field
//! of its state is 8 bytes wide, see [`lanes_for`]) — lane `l` folds elements
//! `l, l + LANES, l + 2·LANES, …` — which are then folded in lane order, plus the ragged rest.
//! The lanes are a new innermost *free* dimension, contiguous in memory, so the native backend
//! runs them as SIMD vectors with independent accumulators instead of one serial chain.
//!
//! Law: a commutative monoid's elements may be folded in any order, and associativity lets the
//! lanes' partial states be combined afterwards; only commutative monoids are rewritten.
//! Floating-point sums change by rounding, the same way in both backends (they run the same
//! rewritten graph), and independently of the thread count.
//!
//! **Invariant:** whether and how a node is rewritten depends only on its structure, its
//! shapes and [`PassConfig::lane_min`] (at least [`LANES`]).

use super::shard::{fold_states, rebuild, shift_expr, shift_reads, state_monoids};
use super::util::{renumber_expr, renumber_reads};
use super::{Law, PassConfig, Rewrite};
use crate::mir::ir::{Edge, Graph, Node, NodeKind, Port};
use crate::mir::monoid::explicit;

/// The number of lanes: four 128-bit vectors of `f32`.
pub const LANES: usize = 16;

/// The lanes of a reduction whose state has fields of these types: [`LANES`], or half as many
/// when every field is 8 bytes wide — four 128-bit vectors of `f64`, which is how many
/// accumulators the native backend keeps per loop iteration, so one pass over the lanes
/// reads whole cache lines of the input.
pub fn lanes_for(state: &[flow_runtime::DType]) -> usize {
    if state.iter().all(|d| d.size_bytes() == 8) {
        LANES / 2
    } else {
        LANES
    }
}

pub fn run(g: &mut Graph, cfg: &PassConfig) -> Vec<Rewrite> {
    let min = cfg.lane_min.max(LANES);
    rebuild(g, &mut |out, node, name| {
        if !applies(out, node, min) {
            return None;
        }
        let rewrite = Rewrite {
            pass: "lanes",
            law: Law::Commutativity,
            detail: format!(
                "folded reduction {name} in {} interleaved lanes along its innermost reduced dimension, then the lanes in order",
                lane_count(out, node)
            ),
        };
        Some((rewrite, split(out, node)))
    })
}

/// Whether `node` is a reduction worth splitting into lanes: a commutative monoid, an
/// innermost reduced extent of at least `min`, and strict reads that each use the innermost
/// reduced variable only as their last coordinate with coefficient 1 (or not at all), at least
/// one of them.
fn applies(g: &Graph, node: &Node, min: usize) -> bool {
    let NodeKind::Reduce {
        space,
        red,
        monoid,
        reads,
        ..
    } = &node.kind
    else {
        return false;
    };
    let Some(n) = red.last() else {
        return false;
    };
    let Some(m) = explicit(g, *monoid, node.outputs[0].dtype) else {
        return false;
    };
    let v = (space.len() + red.len() - 1) as u32;
    let mut used = false;
    for r in reads {
        if r.edge != Edge::Strict {
            return false;
        }
        for (d, a) in r.proj.iter().enumerate() {
            for (w, c) in &a.coeffs {
                if *w == v {
                    if d + 1 != r.proj.len() || *c != 1 {
                        return false;
                    }
                    used = true;
                }
            }
        }
    }
    m.commutative && used && *n >= min
}

/// How many lanes `node` is split into.
fn lane_count(g: &Graph, node: &Node) -> usize {
    match &node.kind {
        NodeKind::Reduce { monoid, .. } => {
            explicit(g, *monoid, node.outputs[0].dtype).map_or(LANES, |m| lanes_for(&m.state))
        }
        _ => LANES,
    }
}

/// The lane partials, their fold in lane order, the rest, and the unwrap.
fn split(g: &mut Graph, node: &Node) -> Vec<Port> {
    let NodeKind::Reduce {
        space,
        red,
        monoid,
        reads,
        args,
    } = &node.kind
    else {
        unreachable!("checked by applies")
    };
    let m = explicit(g, *monoid, node.outputs[0].dtype).expect("checked by applies");
    let (partial_monoid, fold_monoid) = state_monoids(g, *monoid);
    let s = space.len() as u32;
    let v = s + red.len() as u32 - 1;
    let n = red[red.len() - 1];
    let lanes = lanes_for(&m.state);
    let q = n / lanes;
    let rest = n - q * lanes;
    let l = lanes as i64;
    // New numbering: the lane is free variable `s`; reduced variables move up by one, and the
    // old innermost `v` becomes `LANES · (v + 1) + s`.
    let f = |w: u32| match w {
        w if w < s => vec![(w, 1)],
        w if w == v => vec![(v + 1, l), (s, 1)],
        w => vec![(w + 1, 1)],
    };
    let mut lane_space = space.clone();
    lane_space.push(lanes);
    let mut lane_red = red.clone();
    *lane_red.last_mut().expect("a reduced dimension") = q;
    let lane_reads = renumber_reads(reads, &f);
    let partials = g.add(Node {
        kind: NodeKind::Reduce {
            space: lane_space.clone(),
            red: lane_red,
            monoid: partial_monoid,
            reads: lane_reads,
            args: args.iter().map(|e| renumber_expr(e, &f)).collect(),
        },
        outputs: m
            .state
            .iter()
            .map(|d| crate::mir::ir::TensorTy::new(*d, lane_space.clone()))
            .collect(),
        label: node.label.clone(),
        span: node.span,
    });
    let rest_kind = (rest > 0).then(|| {
        let mut rest_red = red.clone();
        *rest_red.last_mut().expect("a reduced dimension") = rest;
        let start = q * lanes;
        NodeKind::Reduce {
            space: space.clone(),
            red: rest_red,
            monoid: partial_monoid,
            reads: shift_reads(reads, v, start),
            args: args.iter().map(|e| shift_expr(e, v, start)).collect(),
        }
    });
    fold_states(g, node, &m, partials, lanes, fold_monoid, rest_kind)
}
