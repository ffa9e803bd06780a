//! The MIR verifier: [`verify`] checks every invariant below and reports the first violation
//! as a [`VerifyError`] naming the node, monoid or output where it is.
//!
//! **References.**
//! - A node refers (through a read, a concat part or a slice source) only to nodes with a
//!   smaller id, so the graph is acyclic and topologically ordered.
//! - Every referenced port exists, and so does every referenced user monoid.
//! - Every graph output names an existing port.
//!
//! **Node types.** Every output port has the type that the node kind implies:
//! - `Input`: one port (its type is checked against the actual input at run time).
//! - `Const`: one port, of the value's dtype and shape.
//! - `Random`: one `f32` port.
//! - `Map`: one port per body expression; every port has shape `space`, and body `k` is a
//!   scalar of port `k`'s dtype.
//! - `Reduce`: one port per result field of the monoid (the unwrap's ports, else the state's
//!   fields; a built-in monoid has one, of its argument's dtype); every port has shape
//!   `space`.
//! - `Concat`: at least one part; all parts have the port's dtype and rank, `axis` is below
//!   the rank, the extents agree off the axis, and the port's extent on the axis is their sum.
//! - `Slice`: `start` and `shape` have the source's rank, `start + shape` stays within the
//!   source, and the port is the source's dtype with extents `shape`.
//!
//! **Reads** (of `Map` and `Reduce`, whose index box is `space` followed by `red`):
//! - a read's projection has one affine function per dimension of the tensor it reads;
//! - every index variable in a projection is below the number of dimensions of the box;
//! - a `Strict` read stays in bounds over the whole box: each affine function's minimum and
//!   maximum over the box (after adding up the coefficients of a repeated variable) lie in
//!   `0..extent`. An empty box (some extent 0) is trivially fine;
//! - a `Pad` value has the dtype of the tensor read;
//! - a `Clamp` read over a non-empty box reads a tensor without zero extents.
//!
//! **Expressions** are well typed (see [`super::typeck`]): `Map` bodies and `Reduce`
//! arguments see the box's index variables and the reads, and no parameters; monoid
//! functions see no index variables and no reads.
//!
//! **Reductions.** A built-in monoid takes exactly one scalar argument of a type it applies
//! to (`sum`/`prod`/`max`/`min`: numbers; `any`/`all`: `bool`). A user monoid with a wrap
//! takes one argument per wrap parameter, of that parameter's type; without a wrap it takes
//! one argument, of the state's type.
//!
//! **Monoids.** The state has at least one field, one field name (or `None`) per field and
//! one zero per field of the field's dtype. The wrap body maps the parameters to the state
//! type, `combine` maps two states to the state type, and an unwrap has at least one port
//! and maps the state to a scalar of its port's dtype (a tuple of them for several ports).

use flow_runtime::DType;

use super::ir::{
    Affine, Edge, Graph, Monoid, MonoidRef, Node, NodeId, NodeKind, Port, Read, ScalarExpr,
    TensorTy, Ty,
};
use super::typeck::{type_of, ExprCx};
use crate::base::ops;

mod problem;
pub use problem::{ExprSite, Problem, Site, VerifyError};

/// Checks every invariant of the module documentation.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    for (id, m) in g.monoids.iter_enumerated() {
        verify_monoid(m).map_err(|problem| VerifyError {
            site: Site::Monoid(id),
            problem: Box::new(problem),
        })?;
    }
    for (id, node) in g.nodes.iter_enumerated() {
        verify_node(g, id, node).map_err(|problem| VerifyError {
            site: Site::Node(id, node.label.clone()),
            problem: Box::new(problem),
        })?;
    }
    for (k, &out) in g.outputs.iter().enumerate() {
        let site = Site::Output(k);
        port_ty(g, g.nodes.len(), out).map_err(|problem| VerifyError {
            site,
            problem: Box::new(problem),
        })?;
    }
    Ok(())
}

/// Checks a user monoid's state, zero and functions.
fn verify_monoid(m: &Monoid) -> Result<(), Problem> {
    if m.state.is_empty() {
        return Err(Problem::StateEmpty);
    }
    if m.field_names.len() != m.state.len() {
        return Err(Problem::FieldNames {
            fields: m.state.len(),
            names: m.field_names.len(),
        });
    }
    let zero: Vec<DType> = m.zero.iter().map(|s| s.dtype()).collect();
    if zero != m.state {
        return Err(Problem::ZeroType {
            expected: m.state.clone(),
            found: zero,
        });
    }
    let state = m.state_ty();
    if let Some(w) = &m.wrap {
        let params: Vec<Ty> = w.params.iter().map(|&d| Ty::Scalar(d)).collect();
        check_expr(&w.body, ExprSite::Wrap, &monoid_cx(&params), &state)?;
    }
    let pair = [state.clone(), state.clone()];
    check_expr(&m.combine, ExprSite::Combine, &monoid_cx(&pair), &state)?;
    if let Some(d) = &m.d_combine {
        let triple = [state.clone(), state.clone(), state.clone()];
        let both = Ty::Tuple(vec![state.clone(), state.clone()]);
        check_expr(d, ExprSite::DCombine, &monoid_cx(&triple), &both)?;
    }
    if let Some(u) = &m.unwrap {
        if u.ports.is_empty() {
            return Err(Problem::UnwrapEmpty);
        }
        let params = [state];
        check_expr(
            &u.body,
            ExprSite::Unwrap,
            &monoid_cx(&params),
            &Ty::flat(&u.ports),
        )?;
    }
    Ok(())
}

/// The scope of a monoid function: parameters only.
fn monoid_cx(params: &[Ty]) -> ExprCx<'_> {
    ExprCx {
        n_index: 0,
        reads: &[],
        params,
    }
}

/// Checks that `e` has type `expected` in `cx`.
fn check_expr(e: &ScalarExpr, at: ExprSite, cx: &ExprCx<'_>, expected: &Ty) -> Result<(), Problem> {
    let found = type_of(e, cx).map_err(|error| Problem::Expr { at, error })?;
    if found != *expected {
        return Err(Problem::ExprType {
            at,
            expected: expected.clone(),
            found,
        });
    }
    Ok(())
}

/// The type of port `p`, which a node with id `before` may refer to.
fn port_ty(g: &Graph, before: usize, p: Port) -> Result<&TensorTy, Problem> {
    let node = g
        .nodes
        .get(p.node)
        .filter(|_| (p.node.0 as usize) < before)
        .ok_or(Problem::NotEarlier { target: p.node })?;
    node.outputs
        .get(p.port as usize)
        .ok_or(Problem::NoSuchPort {
            target: p,
            ports: node.outputs.len(),
        })
}

/// Checks that a node has exactly the port types `expected`.
fn check_ports(node: &Node, expected: &[TensorTy]) -> Result<(), Problem> {
    if node.outputs.len() != expected.len() {
        return Err(Problem::PortCount {
            expected: expected.len(),
            found: node.outputs.len(),
        });
    }
    for (port, (found, expected)) in node.outputs.iter().zip(expected).enumerate() {
        if found != expected {
            return Err(Problem::PortType {
                port,
                expected: expected.clone(),
                found: found.clone(),
            });
        }
    }
    Ok(())
}

/// Checks one node.
fn verify_node(g: &Graph, id: NodeId, node: &Node) -> Result<(), Problem> {
    let before = id.0 as usize;
    match &node.kind {
        NodeKind::Input { .. } => {
            if node.outputs.len() != 1 {
                return Err(Problem::PortCount {
                    expected: 1,
                    found: node.outputs.len(),
                });
            }
            Ok(())
        }
        NodeKind::Const { value } => check_ports(node, &[TensorTy::of(value)]),
        NodeKind::Random { .. } => {
            let shape = node.outputs.first().map_or(Vec::new(), |t| t.shape.clone());
            check_ports(node, &[TensorTy::new(DType::F32, shape)])
        }
        NodeKind::Map { space, reads, body } => {
            let read_tys = verify_reads(g, before, space, reads, body)?;
            let cx = ExprCx {
                n_index: space.len(),
                reads: &read_tys,
                params: &[],
            };
            let expected: Vec<TensorTy> = (0..body.len())
                .map(|k| {
                    let dtype = node.outputs.get(k).map_or(DType::F32, |t| t.dtype);
                    TensorTy::new(dtype, space.clone())
                })
                .collect();
            check_ports(node, &expected)?;
            for (k, (e, ty)) in body.iter().zip(&expected).enumerate() {
                check_expr(e, ExprSite::Body(k), &cx, &Ty::Scalar(ty.dtype))?;
            }
            Ok(())
        }
        NodeKind::Reduce {
            space,
            red,
            monoid,
            reads,
            args,
        } => {
            let full: Vec<usize> = space.iter().chain(red).copied().collect();
            let point = MonoidPoint {
                space: &full,
                reads,
                index: None,
                monoid: *monoid,
                args,
            };
            point.verify(g, before, node, space.clone())
        }
        NodeKind::Scan {
            space,
            monoid,
            reads,
            args,
            ..
        } => {
            if space.is_empty() {
                return Err(Problem::ScalarSpace);
            }
            let point = MonoidPoint {
                space,
                reads,
                index: None,
                monoid: *monoid,
                args,
            };
            point.verify(g, before, node, space.clone())
        }
        NodeKind::ReduceByIndex {
            space,
            bins,
            monoid,
            reads,
            index,
            args,
        } => {
            if space.is_empty() {
                return Err(Problem::ScalarSpace);
            }
            let shape: Vec<usize> = std::iter::once(*bins)
                .chain(space[1..].iter().copied())
                .collect();
            let point = MonoidPoint {
                space,
                reads,
                index: Some(index),
                monoid: *monoid,
                args,
            };
            point.verify(g, before, node, shape)
        }
        NodeKind::Scatter {
            dest,
            space,
            reads,
            index,
            value,
        } => {
            if space.is_empty() {
                return Err(Problem::ScalarSpace);
            }
            let dest_ty = port_ty(g, before, *dest)?.clone();
            if dest_ty.shape.len() != space.len() || dest_ty.shape[1..] != space[1..] {
                return Err(Problem::ScatterShape {
                    dest: dest_ty,
                    space: space.clone(),
                });
            }
            let exprs = [index.clone(), value.clone()];
            let read_tys = verify_reads(g, before, space, reads, &exprs)?;
            let cx = ExprCx {
                n_index: space.len(),
                reads: &read_tys,
                params: &[],
            };
            verify_index(index, &cx)?;
            check_expr(value, ExprSite::Body(0), &cx, &Ty::Scalar(dest_ty.dtype))?;
            check_ports(node, &[dest_ty])
        }
        NodeKind::Concat { axis, parts } => verify_concat(g, before, node, *axis, parts),
        NodeKind::Slice { src, start, shape } => {
            let src_ty = port_ty(g, before, *src)?;
            let rank = src_ty.shape.len();
            if start.len() != rank || shape.len() != rank {
                return Err(Problem::SliceRank {
                    rank,
                    start: start.len(),
                    shape: shape.len(),
                });
            }
            for (dim, ((&s, &e), &src_extent)) in
                start.iter().zip(shape).zip(&src_ty.shape).enumerate()
            {
                if s.checked_add(e).is_none_or(|end| end > src_extent) {
                    return Err(Problem::SliceBounds {
                        dim,
                        start: s,
                        extent: e,
                        src_extent,
                    });
                }
            }
            check_ports(node, &[TensorTy::new(src_ty.dtype, shape.clone())])
        }
    }
}

/// The elements a monoid node (reduce, scan, histogram) wraps at each point of `space`: its
/// reads, an optional bin index and the wrap's arguments.
struct MonoidPoint<'a> {
    space: &'a [usize],
    reads: &'a [Read],
    index: Option<&'a ScalarExpr>,
    monoid: MonoidRef,
    args: &'a [ScalarExpr],
}

impl MonoidPoint<'_> {
    /// Checks the reads, the index and the arguments, and that the node's outputs are the
    /// monoid's state types over `out_shape`.
    fn verify(
        &self,
        g: &Graph,
        before: usize,
        node: &Node,
        out_shape: Vec<usize>,
    ) -> Result<(), Problem> {
        let exprs: Vec<ScalarExpr> = self.index.into_iter().chain(self.args).cloned().collect();
        let read_tys = verify_reads(g, before, self.space, self.reads, &exprs)?;
        let cx = ExprCx {
            n_index: self.space.len(),
            reads: &read_tys,
            params: &[],
        };
        if let Some(index) = self.index {
            verify_index(index, &cx)?;
        }
        let expected: Vec<TensorTy> = verify_args(g, self.monoid, self.args, &cx)?
            .into_iter()
            .map(|d| TensorTy::new(d, out_shape.clone()))
            .collect();
        check_ports(node, &expected)
    }
}

/// Checks that a histogram's bin or a scatter's row is an `i32` or `i64` expression.
fn verify_index(index: &ScalarExpr, cx: &ExprCx<'_>) -> Result<(), Problem> {
    let at = ExprSite::Index;
    match type_of(index, cx).map_err(|error| Problem::Expr { at, error })? {
        Ty::Scalar(DType::I32 | DType::I64) => Ok(()),
        found => Err(Problem::IndexType { found }),
    }
}

/// Checks a reduction's arguments against its monoid and returns its result dtypes.
fn verify_args(
    g: &Graph,
    monoid: MonoidRef,
    args: &[ScalarExpr],
    cx: &ExprCx<'_>,
) -> Result<Vec<DType>, Problem> {
    let arity = |expected: usize| {
        if args.len() == expected {
            Ok(())
        } else {
            Err(Problem::Arity {
                expected,
                found: args.len(),
            })
        }
    };
    match monoid {
        MonoidRef::Builtin(b) => {
            arity(1)?;
            let at = ExprSite::Arg(0);
            let found = type_of(&args[0], cx).map_err(|error| Problem::Expr { at, error })?;
            match found {
                Ty::Scalar(d) if ops::builtin_identity(b, d).is_some() => Ok(vec![d]),
                found => Err(Problem::BuiltinType { monoid: b, found }),
            }
        }
        MonoidRef::User(id) => {
            let m = g
                .monoids
                .get(id)
                .ok_or(Problem::NoSuchMonoid { monoid: id })?;
            match &m.wrap {
                Some(w) => {
                    arity(w.params.len())?;
                    for (k, (e, &d)) in args.iter().zip(&w.params).enumerate() {
                        check_expr(e, ExprSite::Arg(k), cx, &Ty::Scalar(d))?;
                    }
                }
                None => {
                    arity(1)?;
                    check_expr(&args[0], ExprSite::Arg(0), cx, &m.state_ty())?;
                }
            }
            Ok(m.result_dtypes().to_vec())
        }
    }
}

/// Checks the reads of a node over the index box `space` and returns their dtypes.
fn verify_reads(
    g: &Graph,
    before: usize,
    space: &[usize],
    reads: &[Read],
    exprs: &[ScalarExpr],
) -> Result<Vec<DType>, Problem> {
    let empty_box = space.contains(&0);
    let mut dtypes = Vec::with_capacity(reads.len());
    for (k, r) in reads.iter().enumerate() {
        let ty = port_ty(g, before, r.src())?;
        if r.proj.len() != ty.shape.len() {
            return Err(Problem::ProjRank {
                read: k,
                proj: r.proj.len(),
                rank: ty.shape.len(),
            });
        }
        if let Some(coords) = gather_coords(exprs, k as u32) {
            // A table: checked at run time, coordinate by coordinate.
            if r.edge != Edge::Strict || r.proj.iter().any(|a| *a != Affine::konst(0)) {
                return Err(Problem::GatherTable { read: k });
            }
            if coords != ty.shape.len() {
                return Err(Problem::GatherRank {
                    read: k,
                    coords,
                    rank: ty.shape.len(),
                });
            }
            dtypes.push(ty.dtype);
            continue;
        }
        for (dim, a) in r.proj.iter().enumerate() {
            if let Some(&(var, _)) = a.coeffs.iter().find(|&&(v, _)| v as usize >= space.len()) {
                return Err(Problem::ProjVar {
                    read: k,
                    dim,
                    var,
                    n_index: space.len(),
                });
            }
        }
        match r.edge {
            Edge::Strict if !empty_box => {
                for (dim, (a, &extent)) in r.proj.iter().zip(&ty.shape).enumerate() {
                    let (min, max) = affine_range(a, space);
                    if min < 0 || max >= extent as i128 {
                        return Err(Problem::OutOfBounds {
                            read: k,
                            dim,
                            affine: a.clone(),
                            min,
                            max,
                            extent,
                        });
                    }
                }
            }
            Edge::Strict => {}
            Edge::Pad(s) => {
                if s.dtype() != ty.dtype {
                    return Err(Problem::PadType {
                        read: k,
                        expected: ty.dtype,
                        found: s.dtype(),
                    });
                }
            }
            Edge::Clamp => {
                if !empty_box && ty.shape.contains(&0) {
                    return Err(Problem::ClampEmpty {
                        read: k,
                        shape: ty.shape.clone(),
                    });
                }
            }
        }
        dtypes.push(ty.dtype);
    }
    Ok(dtypes)
}

/// The smallest and largest value of `a` over the non-empty box `space`; a variable outside
/// the box is ignored.
pub fn affine_range(a: &Affine, space: &[usize]) -> (i128, i128) {
    let mut coeffs = vec![0i128; space.len()];
    for &(v, c) in &a.coeffs {
        if let Some(slot) = coeffs.get_mut(v as usize) {
            *slot += c as i128;
        }
    }
    let (mut min, mut max) = (a.konst as i128, a.konst as i128);
    for (c, &extent) in coeffs.iter().zip(space) {
        // Saturation only matters for absurd extents, and keeps such a box out of bounds.
        let term = c.saturating_mul(extent.saturating_sub(1) as i128);
        if *c < 0 {
            min = min.saturating_add(term);
        } else {
            max = max.saturating_add(term);
        }
    }
    (min, max)
}

/// Checks a concat node.
fn verify_concat(
    g: &Graph,
    before: usize,
    node: &Node,
    axis: usize,
    parts: &[Port],
) -> Result<(), Problem> {
    if parts.is_empty() {
        return Err(Problem::ConcatEmpty);
    }
    let port = match node.outputs.as_slice() {
        [t] => t,
        _ => {
            return Err(Problem::PortCount {
                expected: 1,
                found: node.outputs.len(),
            })
        }
    };
    let rank = port.shape.len();
    if axis >= rank {
        return Err(Problem::ConcatAxis { axis, rank });
    }
    let mut total = 0usize;
    for (k, &p) in parts.iter().enumerate() {
        let ty = port_ty(g, before, p)?;
        let fits = ty.dtype == port.dtype
            && ty.shape.len() == rank
            && ty
                .shape
                .iter()
                .zip(&port.shape)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        total = match total.checked_add(ty.shape.get(axis).copied().unwrap_or(0)) {
            Some(t) if fits => t,
            _ => {
                return Err(Problem::ConcatPart {
                    part: k,
                    found: ty.clone(),
                    port: port.clone(),
                })
            }
        };
    }
    let mut expected = port.clone();
    expected.shape[axis] = total;
    check_ports(node, &[expected])
}

/// The number of coordinates of the gathers from read `k` in `exprs` (the first found, or the
/// first that disagrees with it: `usize::MAX`), or `None` when nothing gathers from it.
fn gather_coords(exprs: &[ScalarExpr], k: u32) -> Option<usize> {
    let mut found: Option<usize> = None;
    for e in exprs {
        e.rewrite(&mut |x| {
            if let ScalarExpr::Gather(j, coords) = x {
                if *j == k {
                    found = match found {
                        Some(n) if n != coords.len() => Some(usize::MAX),
                        _ => Some(coords.len()),
                    };
                }
            }
            None
        });
    }
    found
}
