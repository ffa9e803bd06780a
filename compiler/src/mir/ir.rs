//! The MIR data structures: a graph of tensor nodes over concrete index spaces.
//!
//! A [`Graph`] is built per dispatch, so every extent is a known number. Its nodes are
//! topologically ordered: a node reads only nodes with smaller ids. Each node has one or more
//! output *ports*, each a tensor with a [`TensorTy`]; a tuple-valued result is flattened into
//! several ports (a struct of arrays).
//!
//! `Map` and `Reduce` nodes compute a scalar expression at every point of an index box. Inside
//! their expressions, index variable `k` is the `k`-th coordinate of the point: for a `Map`,
//! `0..space.len()`; for a `Reduce`, the free indices `0..space.len()` come first and the
//! reduced indices `space.len()..space.len() + red.len()` follow. Each [`Read`] maps the point
//! to a coordinate of one input tensor through one [`Affine`] per dimension of that tensor.
//!
//! The scalar operators and their meaning are defined in [`crate::base::ops`]; the verifier in
//! [`super::verify`] lists the invariants a well-formed graph satisfies.

use std::fmt;

use flow_runtime::{format_shape, DType, Scalar, Tensor};

use super::idx::{define_idx, IdxVec};
pub use crate::base::ops::{BinOp, BuiltinMonoid, MathFn, UnOp};
use crate::base::span::Span;

define_idx!(
    /// The id of a node in [`Graph::nodes`]; displays as `%3`.
    NodeId,
    "%"
);

define_idx!(
    /// The id of a user monoid in [`Graph::monoids`]; displays as `@0`.
    MonoidId,
    "@"
);

/// A dataflow graph of tensor nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// The nodes, topologically ordered: a node reads only earlier nodes.
    pub nodes: IdxVec<NodeId, Node>,
    /// The graph's results, in order.
    pub outputs: Vec<Port>,
    /// The user monoids that `Reduce` nodes refer to.
    pub monoids: IdxVec<MonoidId, Monoid>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Appends a node and returns its id.
    pub fn add(&mut self, node: Node) -> NodeId {
        self.nodes.push(node)
    }

    /// Appends a user monoid and returns its id.
    pub fn add_monoid(&mut self, monoid: Monoid) -> MonoidId {
        self.monoids.push(monoid)
    }

    /// The type of output `port` of `node`, or `None` when there is no such port.
    pub fn port_ty(&self, node: NodeId, port: u32) -> Option<&TensorTy> {
        self.nodes.get(node)?.outputs.get(port as usize)
    }
}

/// One output port of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port {
    /// The node.
    pub node: NodeId,
    /// The output port of the node.
    pub port: u32,
}

/// Which port of which node is a graph result.
pub type Output = Port;

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.port)
    }
}

/// The type of one tensor: element type and concrete shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorTy {
    /// The element type.
    pub dtype: DType,
    /// The extents, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
}

impl TensorTy {
    /// A tensor type from its parts.
    pub fn new(dtype: DType, shape: Vec<usize>) -> TensorTy {
        TensorTy { dtype, shape }
    }

    /// The type of a tensor value.
    pub fn of(t: &Tensor) -> TensorTy {
        TensorTy::new(t.dtype(), t.shape.clone())
    }
}

impl fmt::Display for TensorTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, format_shape(&self.shape))
    }
}

/// One node: what it computes, the types of its output ports, a readable label and where in
/// the source it comes from.
#[derive(Clone, Debug)]
pub struct Node {
    /// What the node computes.
    pub kind: NodeKind,
    /// One type per output port.
    pub outputs: Vec<TensorTy>,
    /// The source name for readability (`"y"`, `"softmax.e"`); may be empty.
    pub label: String,
    /// The source expression lowering made it from (`flowc explain` points at it); `None`
    /// for nodes of a parsed graph and for the inputs of a dispatch. Rewrites keep the span
    /// of the node they replace. Not part of what a node computes: equality, the text form,
    /// structural hashes and cache keys ignore it.
    pub span: Option<Span>,
}

/// Nodes are equal when they compute the same thing under the same label; where they were
/// written does not matter.
impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.kind == other.kind && self.outputs == other.outputs && self.label == other.label
    }
}

impl Node {
    /// Drops the reads of a `Map` or `Reduce` that no expression uses, and renumbers the rest.
    pub fn prune_reads(&mut self) {
        let Some((reads, mut exprs)) = self.kind.reads_and_exprs_mut() else {
            return;
        };
        let mut used = vec![false; reads.len()];
        for e in exprs.iter() {
            reads_used(e, &mut used);
        }
        // Merge reads that are identical, too.
        let mut new_index: Vec<u32> = vec![0; reads.len()];
        let mut kept: Vec<Read> = Vec::new();
        for (i, r) in reads.iter().enumerate() {
            if !used[i] {
                continue;
            }
            match kept.iter().position(|k| k == r) {
                Some(j) => new_index[i] = j as u32,
                None => {
                    new_index[i] = kept.len() as u32;
                    kept.push(r.clone());
                }
            }
        }
        if kept.len() == reads.len() {
            // Every read is used and none repeats: nothing to renumber.
            return;
        }
        for e in exprs.iter_mut() {
            **e = e.rewrite(&mut |x| match x {
                ScalarExpr::Read(k) => Some(ScalarExpr::Read(new_index[*k as usize])),
                _ => None,
            });
        }
        *reads = kept;
    }

    /// The ports the node reads, in order.
    pub fn inputs(&self) -> Vec<Port> {
        match &self.kind {
            NodeKind::Map { reads, .. }
            | NodeKind::Reduce { reads, .. }
            | NodeKind::Scan { reads, .. }
            | NodeKind::ReduceByIndex { reads, .. } => reads.iter().map(Read::src).collect(),
            NodeKind::Scatter { dest, reads, .. } => std::iter::once(*dest)
                .chain(reads.iter().map(Read::src))
                .collect(),
            NodeKind::Concat { parts, .. } => parts.clone(),
            NodeKind::Slice { src, .. } => vec![*src],
            NodeKind::Input { .. } | NodeKind::Const { .. } | NodeKind::Random { .. } => Vec::new(),
        }
    }

    /// Applies `f` to every port the node reads.
    pub fn map_inputs(&mut self, f: &mut dyn FnMut(Port) -> Port) {
        match &mut self.kind {
            NodeKind::Map { reads, .. }
            | NodeKind::Reduce { reads, .. }
            | NodeKind::Scan { reads, .. }
            | NodeKind::ReduceByIndex { reads, .. } => {
                for r in reads {
                    let p = f(r.src());
                    r.node = p.node;
                    r.port = p.port;
                }
            }
            NodeKind::Scatter { dest, reads, .. } => {
                *dest = f(*dest);
                for r in reads {
                    let p = f(r.src());
                    r.node = p.node;
                    r.port = p.port;
                }
            }
            NodeKind::Concat { parts, .. } => parts.iter_mut().for_each(|p| *p = f(*p)),
            NodeKind::Slice { src, .. } => *src = f(*src),
            NodeKind::Input { .. } | NodeKind::Const { .. } | NodeKind::Random { .. } => {}
        }
    }
}

/// The kinds of node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// The `index`-th input tensor of the graph.
    Input {
        /// The position in the input list.
        index: u32,
    },
    /// A constant tensor.
    Const {
        /// The value.
        value: Tensor,
    },
    /// A counter-based random `f32` tensor: the element at row-major linear index `n` is
    /// `flow_runtime::rand::uniform(seed, n)` (or `normal`).
    Random {
        /// The distribution.
        dist: Dist,
        /// The seed.
        seed: u64,
    },
    /// A scalar expression per output port, evaluated at every point of `space`.
    Map {
        /// The index space, which is also every port's shape.
        space: Vec<usize>,
        /// The tensors read, each through an affine projection.
        reads: Vec<Read>,
        /// One expression per output port.
        body: Vec<ScalarExpr>,
    },
    /// A map over `space × red` folded over `red` with a monoid.
    Reduce {
        /// The free extents, which are also every port's shape.
        space: Vec<usize>,
        /// The reduced extents.
        red: Vec<usize>,
        /// The monoid that folds.
        monoid: MonoidRef,
        /// The tensors read, each through an affine projection.
        reads: Vec<Read>,
        /// The arguments of the monoid's wrap (for a built-in monoid, exactly one).
        args: Vec<ScalarExpr>,
    },
    /// The parts laid end to end along `axis`.
    Concat {
        /// The axis along which the parts are joined.
        axis: usize,
        /// The parts, in order.
        parts: Vec<Port>,
    },
    /// An inclusive or exclusive scan along the last axis of `space` (every row on its own,
    /// so a segmented scan over rows is a scan of a 2-D space): the element at each point
    /// is the monoid's wrap of `args`, computed there; the result at a point is the unwrap of
    /// the combination, in index order along the row, of the elements up to it (inclusive)
    /// or before it (exclusive; the identity at a row's start). The bracketing is the
    /// runtime's blocked scan (`flow_runtime::prims::scan`), on both backends. A `Map` that
    /// produced the elements fuses into `reads`/`args` (the law: a map before a scan is the
    /// monoid's wrap).
    Scan {
        /// The index space, which is also every port's shape.
        space: Vec<usize>,
        /// The monoid.
        monoid: MonoidRef,
        /// Whether the scan excludes the element at the point itself.
        exclusive: bool,
        /// The tensors read, each through an affine projection.
        reads: Vec<Read>,
        /// The arguments of the monoid's wrap (for a built-in monoid, exactly one).
        args: Vec<ScalarExpr>,
    },
    /// A histogram (`reduce_by_index`): every point `p` of `space` (first axis: the values;
    /// further axes: carried along, so values `[n, k]` give bins `[bins, k]`) puts the wrap
    /// of `args` into bin `index(p)` at coordinate `[index(p), p[1..]]`; each bin is the
    /// combination of its values in index order (the identity when none; then unwrapped).
    /// A bin index outside `0..bins` is a run-time error (`IndexOutOfRange`). With `sum`
    /// this is the scatter-add. Ports: `[bins] ++ space[1..]`, one per result field.
    ReduceByIndex {
        /// The index space of the values.
        space: Vec<usize>,
        /// The number of bins.
        bins: usize,
        /// The monoid.
        monoid: MonoidRef,
        /// The tensors read, each through an affine projection.
        reads: Vec<Read>,
        /// The bin of each point: an `i64` or `i32` expression.
        index: ScalarExpr,
        /// The arguments of the monoid's wrap (for a built-in monoid, exactly one).
        args: Vec<ScalarExpr>,
    },
    /// A scatter: `dest` with, at every point `p` of `space`, the element at
    /// `[index(p), p[1..]]` replaced by `value(p)`; of duplicate indices the last in index
    /// order wins. An index outside `dest`'s first axis is a run-time error
    /// (`IndexOutOfRange`). One port, of `dest`'s type.
    Scatter {
        /// The tensor written into (not changed: the result is a new tensor).
        dest: Port,
        /// The index space of the values.
        space: Vec<usize>,
        /// The tensors read, each through an affine projection.
        reads: Vec<Read>,
        /// The destination row of each point: an `i64` or `i32` expression.
        index: ScalarExpr,
        /// The value written.
        value: ScalarExpr,
    },
    /// The box `start .. start + shape` of a tensor.
    Slice {
        /// The tensor sliced.
        src: Port,
        /// The first coordinate of the box.
        start: Vec<usize>,
        /// The extents of the box.
        shape: Vec<usize>,
    },
}

impl NodeKind {
    /// The reads and the scalar expressions over them of a node that has them (`Map`,
    /// `Reduce`, `Scan`, `ReduceByIndex`, `Scatter`), in text-form order: a map's body, a
    /// reduction's or scan's args, a histogram's index then args, a scatter's index then
    /// value.
    pub fn reads_and_exprs(&self) -> Option<(&[Read], Vec<&ScalarExpr>)> {
        match self {
            NodeKind::Map {
                reads, body: xs, ..
            }
            | NodeKind::Reduce {
                reads, args: xs, ..
            }
            | NodeKind::Scan {
                reads, args: xs, ..
            } => Some((reads, xs.iter().collect())),
            NodeKind::ReduceByIndex {
                reads, index, args, ..
            } => Some((reads, std::iter::once(index).chain(args).collect())),
            NodeKind::Scatter {
                reads,
                index,
                value,
                ..
            } => Some((reads, vec![index, value])),
            _ => None,
        }
    }

    /// [`NodeKind::reads_and_exprs`], mutable.
    pub fn reads_and_exprs_mut(&mut self) -> Option<(&mut Vec<Read>, Vec<&mut ScalarExpr>)> {
        match self {
            NodeKind::Map {
                reads, body: xs, ..
            }
            | NodeKind::Reduce {
                reads, args: xs, ..
            }
            | NodeKind::Scan {
                reads, args: xs, ..
            } => Some((reads, xs.iter_mut().collect())),
            NodeKind::ReduceByIndex {
                reads, index, args, ..
            } => Some((
                reads,
                std::iter::once(index).chain(args.iter_mut()).collect(),
            )),
            NodeKind::Scatter {
                reads,
                index,
                value,
                ..
            } => Some((reads, vec![index, value])),
            _ => None,
        }
    }

    /// The index space of a node that has one (the box its expressions are evaluated over;
    /// for a `Reduce`, the free extents then the reduced ones).
    pub fn index_space(&self) -> Option<Vec<usize>> {
        match self {
            NodeKind::Map { space, .. }
            | NodeKind::Scan { space, .. }
            | NodeKind::ReduceByIndex { space, .. }
            | NodeKind::Scatter { space, .. } => Some(space.clone()),
            NodeKind::Reduce { space, red, .. } => Some(space.iter().chain(red).copied().collect()),
            _ => None,
        }
    }
}

/// The distribution of a `Random` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dist {
    /// Uniform in `[0, 1)`.
    Uniform,
    /// Standard normal.
    Normal,
}

impl Dist {
    /// The name used in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Normal => "normal",
        }
    }
}

/// One tensor read by a `Map` or `Reduce` through an affine projection.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// The node read.
    pub node: NodeId,
    /// The output port of the node read.
    pub port: u32,
    /// One affine coordinate per dimension of the read tensor.
    pub proj: Vec<Affine>,
    /// What a coordinate outside the tensor means.
    pub edge: Edge,
}

impl Read {
    /// The port read.
    pub fn src(&self) -> Port {
        Port {
            node: self.node,
            port: self.port,
        }
    }
}

/// An integer affine function of the index variables: `konst + Σ c · i_v`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Affine {
    /// The constant term.
    pub konst: i64,
    /// `(index variable, coefficient)` pairs, in written order.
    pub coeffs: Vec<(u32, i64)>,
}

impl Affine {
    /// The constant `k`.
    pub fn konst(k: i64) -> Affine {
        Affine {
            konst: k,
            coeffs: Vec::new(),
        }
    }

    /// The index variable `v` itself.
    pub fn var(v: u32) -> Affine {
        Affine {
            konst: 0,
            coeffs: vec![(v, 1)],
        }
    }

    /// The index variable `v` plus `k`.
    pub fn var_plus(v: u32, k: i64) -> Affine {
        Affine {
            konst: k,
            coeffs: vec![(v, 1)],
        }
    }

    /// The value at a point, exactly (no overflow is possible for `i64` inputs with fewer
    /// than 2^60 terms), or `None` when a variable is not a coordinate of the point.
    pub fn eval(&self, point: &[i64]) -> Option<i128> {
        let mut sum = self.konst as i128;
        for &(v, c) in &self.coeffs {
            sum += c as i128 * *point.get(v as usize)? as i128;
        }
        Some(sum)
    }
}

/// What a read outside its tensor yields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edge {
    /// The read must be proved in bounds over the whole index box.
    Strict,
    /// Outside the tensor the read yields this value.
    Pad(Scalar),
    /// Each coordinate is clamped to the nearest edge element.
    Clamp,
}

/// A scalar (or tuple) expression evaluated at one point of an index box.
#[derive(Clone, Debug, PartialEq)]
pub enum ScalarExpr {
    /// A constant.
    Const(Scalar),
    /// The value of index variable `k`, as an `i64`.
    Index(u32),
    /// The value of `reads[k]` at the current point.
    Read(u32),
    /// Parameter `k` of a monoid function.
    Param(u32),
    /// A unary operator.
    Unary(UnOp, Box<ScalarExpr>),
    /// A binary operator; both operands have the same type.
    Binary(BinOp, Box<ScalarExpr>, Box<ScalarExpr>),
    /// A conversion with Rust `as` semantics ([`Scalar::cast`]).
    Cast(Box<ScalarExpr>, DType),
    /// A built-in math function.
    Call(MathFn, Box<ScalarExpr>),
    /// `if cond { a } else { b }`; only the chosen arm is evaluated.
    Select(Box<ScalarExpr>, Box<ScalarExpr>, Box<ScalarExpr>),
    /// A tuple of values.
    Tuple(Vec<ScalarExpr>),
    /// Field `k` of a tuple.
    Field(Box<ScalarExpr>, u32),
    /// A gather: the element of `reads[k]`'s tensor (the *table*) at the coordinates given by
    /// the `i64` expressions, one per dimension, computed at the current point. The table's
    /// read has a projection of constant zeros (it names the whole tensor, so passes that move
    /// projections leave it alone), and a coordinate outside the table is a run-time error
    /// (`IndexOutOfRange`: never clamped, never read out of bounds).
    Gather(u32, Vec<ScalarExpr>),
}

impl ScalarExpr {
    /// Rewrites the expression bottom-up: where `f` gives a replacement for a subexpression,
    /// it takes that subexpression's place (and is not visited further).
    pub fn rewrite(&self, f: &mut dyn FnMut(&ScalarExpr) -> Option<ScalarExpr>) -> ScalarExpr {
        if let Some(x) = f(self) {
            return x;
        }
        let mut go = |x: &ScalarExpr| Box::new(x.rewrite(f));
        match self {
            ScalarExpr::Const(_)
            | ScalarExpr::Index(_)
            | ScalarExpr::Read(_)
            | ScalarExpr::Param(_) => self.clone(),
            ScalarExpr::Unary(op, a) => ScalarExpr::Unary(*op, go(a)),
            ScalarExpr::Binary(op, a, b) => {
                let a = go(a);
                ScalarExpr::Binary(*op, a, go(b))
            }
            ScalarExpr::Cast(a, d) => ScalarExpr::Cast(go(a), *d),
            ScalarExpr::Call(m, a) => ScalarExpr::Call(*m, go(a)),
            ScalarExpr::Select(c, a, b) => {
                let c = go(c);
                let a = go(a);
                ScalarExpr::Select(c, a, go(b))
            }
            ScalarExpr::Tuple(xs) => ScalarExpr::Tuple(xs.iter().map(|x| x.rewrite(f)).collect()),
            ScalarExpr::Field(a, k) => ScalarExpr::field(a.rewrite(f), *k),
            ScalarExpr::Gather(k, coords) => {
                // The table is renumbered like any read, but never replaced by a value: a
                // rewrite that inlines read `k` leaves the gather reading the tensor (which
                // stays a read of the node, see `reads_used`).
                let k = match f(&ScalarExpr::Read(*k)) {
                    Some(ScalarExpr::Read(j)) => j,
                    _ => *k,
                };
                ScalarExpr::Gather(k, coords.iter().map(|x| x.rewrite(f)).collect())
            }
        }
    }

    /// Calls `f` on every subexpression, parents before children, without building anything
    /// (`rewrite` with no replacement would copy the whole tree).
    pub fn visit(&self, f: &mut dyn FnMut(&ScalarExpr)) {
        f(self);
        match self {
            ScalarExpr::Const(_)
            | ScalarExpr::Index(_)
            | ScalarExpr::Read(_)
            | ScalarExpr::Param(_) => {}
            ScalarExpr::Unary(_, a)
            | ScalarExpr::Cast(a, _)
            | ScalarExpr::Call(_, a)
            | ScalarExpr::Field(a, _) => a.visit(f),
            ScalarExpr::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            ScalarExpr::Select(c, a, b) => {
                c.visit(f);
                a.visit(f);
                b.visit(f);
            }
            ScalarExpr::Tuple(xs) | ScalarExpr::Gather(_, xs) => xs.iter().for_each(|x| x.visit(f)),
        }
    }

    /// Whether the expression gathers from read `k` (reads it as a whole-tensor table).
    pub fn gathers_from(&self, k: u32) -> bool {
        let mut found = false;
        self.visit(&mut |x| {
            if let ScalarExpr::Gather(j, _) = x {
                found |= *j == k;
            }
        });
        found
    }

    /// Whether the expression contains a gather.
    pub fn has_gather(&self) -> bool {
        let mut found = false;
        self.visit(&mut |x| found |= matches!(x, ScalarExpr::Gather(..)));
        found
    }

    /// `op(x)`.
    pub fn unary(op: UnOp, x: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Unary(op, Box::new(x))
    }

    /// `op(a, b)`.
    pub fn binary(op: BinOp, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Binary(op, Box::new(a), Box::new(b))
    }

    /// `x as to`.
    pub fn cast(x: ScalarExpr, to: DType) -> ScalarExpr {
        ScalarExpr::Cast(Box::new(x), to)
    }

    /// `f(x)`.
    pub fn call(f: MathFn, x: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Call(f, Box::new(x))
    }

    /// `if cond { a } else { b }`.
    pub fn select(cond: ScalarExpr, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Select(Box::new(cond), Box::new(a), Box::new(b))
    }

    /// `x.k`.
    pub fn field(x: ScalarExpr, k: u32) -> ScalarExpr {
        // A field of a tuple built on the spot is that element.
        if let ScalarExpr::Tuple(items) = &x {
            if let Some(item) = items.get(k as usize) {
                return item.clone();
            }
        }
        ScalarExpr::Field(Box::new(x), k)
    }
}

/// Which monoid a `Reduce` folds with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonoidRef {
    /// A built-in monoid over the argument's type.
    Builtin(BuiltinMonoid),
    /// A user monoid of the graph.
    User(MonoidId),
}

/// A user monoid, monomorphic: its state is a flat list of scalar fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Monoid {
    /// The source name, for readability.
    pub name: String,
    /// The state's fields; a scalar state has one.
    pub state: Vec<DType>,
    /// The source names of the fields, one per field.
    pub field_names: Vec<Option<String>>,
    /// The identity, one scalar per field.
    pub zero: Vec<Scalar>,
    /// The way in; `None` means the single argument is the state.
    pub wrap: Option<Wrap>,
    /// The associative combination of `Param(0)` and `Param(1)`, each a state value (a
    /// tuple when the state has more than one field, else a scalar).
    pub combine: ScalarExpr,
    /// The way out; `None` means the reduction yields the state's fields.
    pub unwrap: Option<Unwrap>,
    /// Whether `combine` is declared commutative.
    pub commutative: bool,
    /// The declared derivative of `combine`: given states `Param(0)` = a, `Param(1)` = b and
    /// the adjoint `Param(2)` of `combine(a, b)`, the tuple `(adjoint of a, adjoint of b)`
    /// (the vector-Jacobian product). `None`: reductions with the monoid are not
    /// differentiable.
    pub d_combine: Option<ScalarExpr>,
}

impl Monoid {
    /// The type of a state value: the single field, or a tuple of the fields.
    pub fn state_ty(&self) -> Ty {
        Ty::flat(&self.state)
    }

    /// The element types of a reduction's output ports.
    pub fn result_dtypes(&self) -> &[DType] {
        match &self.unwrap {
            Some(u) => &u.ports,
            None => &self.state,
        }
    }
}

/// A monoid's wrap function: `Param(0..params.len())` to a state value.
#[derive(Clone, Debug, PartialEq)]
pub struct Wrap {
    /// The types of the arguments.
    pub params: Vec<DType>,
    /// The state built from the arguments.
    pub body: ScalarExpr,
}

/// A monoid's unwrap function: the state `Param(0)` to the reduction's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Unwrap {
    /// The result's element types, one per output port (a tuple result is flattened).
    pub ports: Vec<DType>,
    /// The result: a scalar for one port, a tuple for several.
    pub body: ScalarExpr,
}

/// The type of a scalar expression: a scalar or a tuple.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// One scalar.
    Scalar(DType),
    /// A tuple of values.
    Tuple(Vec<Ty>),
}

impl Ty {
    /// The type of a flat list of fields: the scalar itself when there is exactly one, else
    /// a tuple of scalars.
    pub fn flat(fields: &[DType]) -> Ty {
        match fields {
            [d] => Ty::Scalar(*d),
            _ => Ty::Tuple(fields.iter().map(|&d| Ty::Scalar(d)).collect()),
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Scalar(d) => write!(f, "{d}"),
            Ty::Tuple(items) => {
                f.write_str("(")?;
                for (k, t) in items.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Which reads an expression uses.
fn reads_used(e: &ScalarExpr, used: &mut [bool]) {
    e.visit(&mut |x| {
        if let ScalarExpr::Read(k) | ScalarExpr::Gather(k, _) = x {
            if let Some(u) = used.get_mut(*k as usize) {
                *u = true;
            }
        }
    });
}
