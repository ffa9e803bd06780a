//! Lowering from the typed HIR to MIR, one op call or coordinator expression at a time, into a
//! graph that grows until the coordinator observes a value. The only MIR file that imports
//! `crate::hir`.
//!
//! Op calls are inlined (arrows were already inlined by the checker): each comprehension
//! becomes a `Map`, each reduction a `Reduce` whose free space is the enclosing index space,
//! and whole-tensor arithmetic becomes `Map`s with identity projections (a rank-0 operand is
//! broadcast). Shapes are numbers here: a call binds the callee's shape variables from its
//! arguments' shapes and checks them (the dispatch-time half of shape checking), and every
//! strict read is checked to stay inside its tensor.
//!
//! **Invariant:** the graph only grows; a node never changes once added.
//!
//! This file holds the lowerer's state and its entry points (`call`, `coordinator_expr`,
//! `elementwise`); `shapes` binds and checks shapes at dispatch, `tensor` lowers tensor-level
//! expressions to nodes, `point` lowers the body of a comprehension or reduction to a scalar
//! expression, and `errors` words what can go wrong.

mod diff;
mod errors;
mod margs;
mod point;
mod prims;
mod shapes;
mod tensor;

use std::collections::HashMap;

use flow_runtime::{DType, Scalar, Tensor};

use crate::base::Span;
use crate::hir::ops::builtin_binop;
use crate::hir::{self, Dim, ExprKind as H, Ty};
use crate::mir::cost::{cost, DUPLICATE_COST};
use crate::mir::ir::NodeId;
use crate::mir::ir::{self, Affine, Dist, Graph, Node, NodeKind, Port, Read, ScalarExpr, TensorTy};

/// A tensor-level value during lowering: a port of the graph, or a tuple of them.
#[derive(Clone, Debug, PartialEq)]
pub enum TVal {
    Port(Port),
    Tuple(Vec<TVal>),
}

use errors::LowerErrorKind as Kind;
pub use errors::{LowerError, LowerErrorKind};
use point::{is_pointwise_builtin, scalar_dtype};
use shapes::check_in_bounds;
pub use shapes::eval_dim;
use tensor::{fold_hir, FoldVal};

type LResult<T> = Result<T, LowerError>;

fn err<T>(span: Span, kind: Kind) -> LResult<T> {
    Err(LowerError::new(kind, span))
}

/// What a local names while lowering.
#[derive(Clone, Debug)]
enum Bound {
    /// A tensor-level value.
    T(TVal),
    /// A per-point value inside a comprehension or reduction (a `let` in its body, or an
    /// inlined `fn`'s parameter).
    S(ScalarExpr),
}

/// One inlined body: its locals and shape variables.
struct Frame<'p> {
    body: &'p hir::Body,
    locals: HashMap<hir::LocalId, Bound>,
    shapes: HashMap<String, i64>,
    label: String,
}

/// A point context: the reads and index variables of the `Map` or `Reduce` being built.
struct Point {
    reads: Vec<Read>,
    /// Extents of the index variables, in variable order.
    extents: Vec<usize>,
    /// Which variable each HIR index is.
    vars: HashMap<hir::IndexId, u32>,
}

impl Point {
    /// Adds a read of port `p` and returns its value at the current point.
    fn read(&mut self, p: Port, proj: Vec<Affine>, edge: ir::Edge) -> ScalarExpr {
        self.reads.push(Read {
            node: p.node,
            port: p.port,
            proj,
            edge,
        });
        ScalarExpr::Read(self.reads.len() as u32 - 1)
    }
}

/// Builds a growing MIR graph for one program.
pub struct Lowerer<'p> {
    pub prog: &'p hir::Program,
    pub graph: Graph,
    /// The graph's monoid of each user monoid with its parameters' values (as printed).
    monoids: HashMap<(hir::MonoidId, Vec<String>), ir::MonoidId>,
    /// The values of the `eval(…)`s of the coordinator expression being lowered, which the
    /// coordinator computed first (see [`Lowerer::coordinator_expr`]), by address.
    forced: HashMap<*const hir::Expr, TVal>,
    /// The expression being lowered: the span of the nodes made now (`Node::span`).
    span: Option<Span>,
}

impl<'p> Lowerer<'p> {
    pub fn new(prog: &'p hir::Program) -> Lowerer<'p> {
        Lowerer {
            prog,
            graph: Graph::new(),
            monoids: HashMap::new(),
            forced: HashMap::new(),
            span: None,
        }
    }

    /// The type of a port.
    pub fn ty(&self, p: Port) -> &TensorTy {
        &self.graph.nodes[p.node].outputs[p.port as usize]
    }

    fn add(&mut self, kind: NodeKind, outputs: Vec<TensorTy>, label: &str) -> NodeId {
        self.graph.add(Node {
            kind,
            outputs,
            label: label.to_string(),
            span: self.span,
        })
    }

    /// A constant tensor in the graph.
    pub fn constant(&mut self, t: Tensor) -> Port {
        let ty = TensorTy::of(&t);
        let node = self.add(NodeKind::Const { value: t }, vec![ty], "");
        Port { node, port: 0 }
    }

    pub fn scalar(&mut self, s: Scalar) -> Port {
        self.constant(Tensor::from_scalar(s))
    }

    /// User monoid `id` as the graph holds it (the coordinator's scans and histograms
    /// combine with it).
    pub fn user_monoid(&mut self, id: hir::MonoidId, span: Span) -> LResult<ir::Monoid> {
        let mid = self.monoid(id, span)?;
        Ok(self.graph.monoids[mid].clone())
    }

    /// Calls op or fn `f` on tensor-level arguments.
    pub fn call(&mut self, f: hir::FuncId, args: Vec<TVal>, span: Span) -> LResult<TVal> {
        let func = self.prog.func(f);
        let mut shapes = HashMap::new();
        // Two rounds: a dimension such as `2 * H + K` is solved once `K` is known from a later
        // parameter.
        for _ in 0..2 {
            for (param, arg) in func.params.iter().zip(&args) {
                let pty = &func.body.local(*param).ty;
                self.bind_shapes(pty, arg, &mut shapes, &func.name, span)?;
            }
        }
        // Shapes like `N - 8` in parameters are checked once every variable is bound.
        for (param, arg) in func.params.iter().zip(&args) {
            let pty = &func.body.local(*param).ty;
            self.check_shapes(
                pty,
                arg,
                &shapes,
                &func.name,
                &func.body.local(*param).name,
                span,
            )?;
        }
        let mut frame = Frame {
            body: &func.body,
            locals: HashMap::new(),
            shapes,
            label: func.name.clone(),
        };
        for (param, arg) in func.params.iter().zip(args) {
            frame.locals.insert(*param, Bound::T(arg));
        }
        let res = self.tensor(&func.body.expr, &mut frame)?;
        let want = self.concrete(&func.ret, &frame, span)?;
        self.check_result(&res, &want, &func.name, span)?;
        Ok(res)
    }

    /// Lowers a tensor-level expression of a coordinator body, whose locals are given.
    pub fn coordinator_expr(
        &mut self,
        body: &'p hir::Body,
        e: &'p hir::Expr,
        locals: HashMap<hir::LocalId, TVal>,
        shapes: HashMap<String, i64>,
        forced: HashMap<*const hir::Expr, TVal>,
    ) -> LResult<TVal> {
        let mut frame = Frame {
            body,
            locals: locals.into_iter().map(|(k, v)| (k, Bound::T(v))).collect(),
            shapes,
            label: String::new(),
        };
        self.forced = forced;
        let out = self.tensor(e, &mut frame);
        self.forced.clear();
        out
    }

    /// An elementwise operation on tensor-level values (a rank-0 operand is broadcast).
    pub fn elementwise(
        &mut self,
        args: &[Port],
        span: Span,
        f: impl FnOnce(Vec<ScalarExpr>) -> ScalarExpr,
    ) -> LResult<Port> {
        let mut shape: Vec<usize> = Vec::new();
        for a in args {
            let s = &self.ty(*a).shape;
            if s.is_empty() {
                continue;
            }
            if shape.is_empty() {
                shape = s.clone();
            } else if &shape != s {
                return err(
                    span,
                    Kind::ElementwiseShapes {
                        left: shape,
                        right: s.clone(),
                    },
                );
            }
        }
        let mut reads = Vec::new();
        let mut xs = Vec::new();
        for a in args {
            let rank = self.ty(*a).shape.len();
            let proj = if rank == 0 {
                Vec::new()
            } else {
                (0..rank as u32).map(Affine::var).collect()
            };
            xs.push(ScalarExpr::Read(reads.len() as u32));
            reads.push(Read {
                node: a.node,
                port: a.port,
                proj,
                edge: ir::Edge::Strict,
            });
        }
        let body = f(xs);
        let outer = self.span.replace(span);
        let out = self.map_node(shape, reads, body, "");
        self.span = outer;
        out
    }

    /// A one-port map over `space` computing `body`.
    fn map_node(
        &mut self,
        space: Vec<usize>,
        reads: Vec<Read>,
        body: ScalarExpr,
        label: &str,
    ) -> LResult<Port> {
        let dtype = self.expr_dtype(&body, &reads)?;
        let node = self.add(
            NodeKind::Map {
                space: space.clone(),
                reads,
                body: vec![body],
            },
            vec![TensorTy::new(dtype, space)],
            label,
        );
        Ok(Port { node, port: 0 })
    }

    fn expr_dtype(&self, e: &ScalarExpr, reads: &[Read]) -> LResult<DType> {
        let read_tys: Vec<DType> = reads.iter().map(|r| self.ty(r.src()).dtype).collect();
        scalar_dtype(e, &read_tys).ok_or_else(|| {
            LowerError::new(
                Kind::Internal("untypable scalar expression"),
                Span::default(),
            )
        })
    }
}
