//! The typed, name-resolved program: the output of `check` and the input of lowering and of
//! the coordinator. Every expression carries its type; names are resolved to ids; arrow
//! chains and partial applications are already inlined into plain calls; literals have their
//! final types.
//!
//! **Invariant:** a `Program` handed out by `check` has no errors: no `Ty::Error`, every
//! comprehension index has a range, every tensor read is affine.

pub mod dump;
pub mod ops;
pub mod ty;

pub use crate::base::ops::MathFn;
pub use crate::base::ops::{BinOp, UnOp};
use crate::base::Span;
pub use crate::syntax::ast::FuncKind;
pub use flow_runtime::{DType, Scalar};
pub use ty::{Dim, Ty};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonoidId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexId(pub u32);

#[derive(Clone, Debug, Default)]
pub struct Program {
    pub funcs: Vec<Func>,
    pub monoids: Vec<Monoid>,
    pub main: Option<Body>,
    pub tests: Vec<Test>,
    /// `bench` blocks, run by `flowc bench`.
    pub benches: Vec<Test>,
}

impl Program {
    pub fn func(&self, id: FuncId) -> &Func {
        &self.funcs[id.0 as usize]
    }

    pub fn monoid(&self, id: MonoidId) -> &Monoid {
        &self.monoids[id.0 as usize]
    }
}

/// An `fn`, `op` or `proc`. Its shape variables are the ones its parameter types mention.
#[derive(Clone, Debug)]
pub struct Func {
    pub name: String,
    pub kind: FuncKind,
    pub params: Vec<LocalId>,
    pub ret: Ty,
    pub body: Body,
    pub shape_vars: Vec<String>,
    pub span: Span,
    /// Where the function was written: `None` for the user's files, `Some("nn")` for
    /// `std::nn`.
    pub module: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Test {
    pub name: String,
    pub body: Body,
    pub span: Span,
}

/// A function body with its tables of locals and comprehension indices.
#[derive(Clone, Debug)]
pub struct Body {
    pub locals: Vec<Local>,
    pub indices: Vec<Index>,
    pub expr: Expr,
}

impl Body {
    pub fn local(&self, id: LocalId) -> &Local {
        &self.locals[id.0 as usize]
    }

    pub fn index_var(&self, id: IndexId) -> &Index {
        &self.indices[id.0 as usize]
    }
}

#[derive(Clone, Debug)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
    pub mutable: bool,
    pub span: Span,
}

/// A comprehension or reduction index ranging over `0..range`.
#[derive(Clone, Debug)]
pub struct Index {
    pub name: String,
    pub range: Dim,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Monoid {
    pub name: String,
    /// The run-time parameters (`monoid ModSum(m: i64)`), scalars. Every member body (`zero`
    /// included) binds them as its first locals, `LocalId(0..params.len())`, before the
    /// member's own parameters.
    pub params: Vec<(String, Ty)>,
    pub state: Ty,
    /// `zero`, a constant expression of the state type.
    pub zero: Body,
    /// `wrap(args) = …` with its parameters, or `None` when the input is the state.
    pub wrap: Option<MonoidFn>,
    /// `combine(a, b) = …`.
    pub combine: MonoidFn,
    pub unwrap: Option<MonoidFn>,
    pub commutative: bool,
    /// `d_combine(a, b, g) = (da, db)`: the declared derivative of `combine` (its
    /// vector-Jacobian product), which makes reductions with the monoid differentiable.
    pub d_combine: Option<MonoidFn>,
    pub span: Span,
}

impl Monoid {
    /// The types a reduction passes to `wrap`.
    pub fn input_types(&self) -> Vec<Ty> {
        match &self.wrap {
            Some(w) => w
                .params
                .iter()
                .map(|p| w.body.local(*p).ty.clone())
                .collect(),
            None => vec![self.state.clone()],
        }
    }

    /// The type a reduction with this monoid yields.
    pub fn result_type(&self) -> Ty {
        match &self.unwrap {
            Some(u) => u.body.expr.ty.clone(),
            None => self.state.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct MonoidFn {
    pub params: Vec<LocalId>,
    pub body: Body,
}

/// The built-in monoids: the same type as the MIR's (`base::ops`).
pub use crate::base::ops::BuiltinMonoid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonoidRef {
    Builtin(BuiltinMonoid),
    User(MonoidId),
}

/// Built-in functions other than math. Those marked *coordinator* are rejected in `fn`, `op`
/// and `monoid` bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Math(MathFn),
    /// `max(a, b)`, `min(a, b)`, `pow(a, b)` and `select(c, a, b)`, elementwise.
    Max,
    Min,
    Pow,
    /// `atan2(y, x)`, elementwise.
    Atan2,
    Select,
    RandUniform,
    RandNormal,
    /// *coordinator*: `print(...)`.
    Print,
    /// *coordinator*: `load(path)`, typed by its context.
    Load,
    /// *coordinator*: `save(path, tensor)`.
    Save,
    /// *coordinator*: `args()`.
    Args,
    /// *coordinator*: `len(list)`, or a tensor's first dimension.
    Len,
    /// *coordinator*: `shape(x)`, a tensor's dimensions as a list of `i64`.
    Shape,
    ParseI64,
    ParseF64,
    Assert,
    AssertClose,
    /// *coordinator*: `eval(x)` forces a lazy value.
    Eval,
    /// `iota(n)`: `[0, 1, …, n - 1]` as `i64`. Its one argument is a one-size shape tuple,
    /// as the shape argument of `zeros` and `full`.
    Iota,
    /// `zeros([sizes])`: a tensor of zeros; its element type comes from the context (`f32`
    /// without one).
    Zeros,
    /// `full([sizes], v)`: a tensor whose every element is `v`.
    Full,
    /// *coordinator*: `filter(x, mask)`, the elements of `x` whose `mask` is true, in order.
    /// Its length is known only when it runs (see `exec::sizes`).
    Filter,
    /// *coordinator*: `partition(x, mask)`, `(kept ++ rest, count)`: the stable partition
    /// of `x` with the `mask`-true elements first, and how many those are.
    Partition,
    /// `rotate(x, k)`: `x[(i + k) mod n, …]` along the first axis. The checker writes it as
    /// a comprehension with a gather (`check::infer::rotate`), so it never reaches the HIR.
    Rotate,
    /// *coordinator*: `sort(x)`, ascending (floats in IEEE total order), stable.
    Sort,
    /// *coordinator*: `sort_by_key(keys, vals)`, `vals` in the stable ascending order of
    /// their `keys`.
    SortByKey,
    /// *coordinator*: `scan(M, x)`, the inclusive scan of `x` with the monoid `M` along its
    /// last axis (every row on its own), blocked as `flow_runtime::prims::scan`.
    Scan(MonoidRef),
    /// *coordinator*: `scan_excl(M, x)`, the exclusive scan (the identity first).
    ScanExcl(MonoidRef),
    /// *coordinator*: `reduce_by_index(M, n_bins, idx, vals)`, a histogram: bin `k` combines
    /// the `vals[i]` with `idx[i] == k` in index order.
    ReduceByIndex(MonoidRef),
    /// *coordinator*: `scatter(dest, idx, vals)`, `dest` with `dest[idx[i]] = vals[i]`; the
    /// last in index order wins among duplicates.
    Scatter,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Math(m) => m.name(),
            Builtin::Max => "max",
            Builtin::Min => "min",
            Builtin::Pow => "pow",
            Builtin::Atan2 => "atan2",
            Builtin::Select => "select",
            Builtin::RandUniform => "rand_uniform",
            Builtin::RandNormal => "rand_normal",
            Builtin::Print => "print",
            Builtin::Load => "load",
            Builtin::Save => "save",
            Builtin::Args => "args",
            Builtin::Len => "len",
            Builtin::Shape => "shape",
            Builtin::ParseI64 => "parse_i64",
            Builtin::ParseF64 => "parse_f64",
            Builtin::Assert => "assert",
            Builtin::AssertClose => "assert_close",
            Builtin::Eval => "eval",
            Builtin::Iota => "iota",
            Builtin::Zeros => "zeros",
            Builtin::Full => "full",
            Builtin::Filter => "filter",
            Builtin::Partition => "partition",
            Builtin::Rotate => "rotate",
            Builtin::Sort => "sort",
            Builtin::SortByKey => "sort_by_key",
            Builtin::Scan(_) => "scan",
            Builtin::ScanExcl(_) => "scan_excl",
            Builtin::ReduceByIndex(_) => "reduce_by_index",
            Builtin::Scatter => "scatter",
        }
    }

    /// Whether the coordinator computes this built-in on the runtime's parallel primitives,
    /// as its own observation (its arguments are dispatched first): `filter` and `partition`,
    /// whose lengths are known only when they run, and the sorts. An operation may not call
    /// one (`dynamic-size-in-operation`). (The scans, `reduce_by_index` and `scatter` are
    /// graph nodes, `mir::ir::NodeKind::Scan` etc., allowed in operations.)
    pub fn is_prim(self) -> bool {
        matches!(
            self,
            Builtin::Filter | Builtin::Partition | Builtin::Sort | Builtin::SortByKey
        )
    }

    /// Whether this built-in does I/O or otherwise belongs to the coordinator only.
    pub fn is_io(self) -> bool {
        matches!(
            self,
            Builtin::Print
                | Builtin::Load
                | Builtin::Save
                | Builtin::Args
                | Builtin::Assert
                | Builtin::AssertClose
                | Builtin::Eval
        )
    }
}

/// How a tensor read treats indices outside the tensor.
#[derive(Clone, Debug)]
pub enum Edge {
    /// The checker proved (or dispatch checks) that the read stays inside.
    Strict,
    /// `pad(x, v)[…]`: `v` outside.
    Pad(Box<Expr>),
    /// `clamp_edge(x)[…]`: the nearest edge element.
    Clamp,
}

/// An affine index `konst + Σ coeff · index`; `konst` may mention shape variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffineIdx {
    pub konst: Dim,
    pub coeffs: Vec<(IndexId, i64)>,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StrPart {
    Text(String),
    Expr(Expr),
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Lit(Scalar),
    Str(Vec<StrPart>),
    Local(LocalId),
    /// The value of a shape expression such as `N` or `N - 1`, an `i64`.
    DimValue(Dim),
    /// The value of a comprehension index at the current point, an `i64`.
    IndexValue(IndexId),
    Unary(UnOp, Box<Expr>),
    /// Arithmetic, comparison and logic; elementwise when an operand is a tensor (a scalar
    /// operand is broadcast). Operands have the same element type.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cast(Box<Expr>, DType),
    Call(FuncId, Vec<Expr>),
    Builtin(Builtin, Vec<Expr>),
    /// `map(f, x)` and `zip_with(f, x, y)`: a scalar `fn` applied elementwise.
    MapFn(FuncId, Vec<Expr>),
    /// `grad(f, …)`, `value_and_grad(f, …)` or `vjp(f, …, ct)`: a derivative of `f`.
    Diff(Box<Diff>),
    /// A read of one element of a tensor at an affine index, inside a comprehension or
    /// reduction body.
    Read {
        tensor: Box<Expr>,
        index: Vec<AffineIdx>,
        edge: Edge,
    },
    /// A gather: one element of a tensor at computed `i64` coordinates (`x[idx[i]]`), one
    /// per dimension, in a comprehension or reduction body or in the coordinator. A
    /// coordinate outside the tensor is a run-time error.
    Gather {
        tensor: Box<Expr>,
        index: Vec<Expr>,
    },
    Field(Box<Expr>, usize),
    Tuple(Vec<Expr>),
    TensorLit(Vec<Expr>),
    /// `let y[i, j] = body;`: a tensor over the given indices.
    Comprehension {
        indices: Vec<IndexId>,
        body: Box<Expr>,
    },
    Reduce {
        monoid: MonoidRef,
        indices: Vec<IndexId>,
        args: Vec<Expr>,
        /// The arguments of a parameterised user monoid (`ModSum(m)`), one per parameter:
        /// scalars that depend on no index. A `scan`, `scan_excl` or `reduce_by_index` call
        /// carries them after its own arguments.
        margs: Vec<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Option<Box<Expr>>,
    },
    Block(Box<Block>),
}

/// Which derivative a [`Diff`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffMode {
    /// `grad(f, args…)`: the gradient(s) of a scalar result.
    Grad,
    /// `value_and_grad(f, args…)`: `(f(args…), gradient(s))`.
    ValueAndGrad,
    /// `vjp(f, args…, ct)`: the vector-Jacobian product with cotangent `ct`.
    Vjp,
}

/// A derivative of the op or fn `func` at `args` (for `vjp`, followed by the cotangent).
#[derive(Clone, Debug)]
pub struct Diff {
    pub mode: DiffMode,
    pub func: FuncId,
    pub args: Vec<Expr>,
    /// The positions of the arguments differentiated against.
    pub wrt: Vec<usize>,
    /// Whether the gradients are returned as a tuple (`wrt = (0, 1)`), even of one.
    pub tuple: bool,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub tail: Option<Expr>,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    /// `let` and `var`: the local says whether it is mutable.
    Let {
        local: LocalId,
        value: Expr,
    },
    Assign {
        local: LocalId,
        value: Expr,
        span: Span,
    },
    For {
        local: LocalId,
        lo: Expr,
        hi: Expr,
        body: Block,
    },
    While {
        cond: Expr,
        body: Block,
    },
    /// The timed part of a `bench` block.
    Measure(Block),
    Expr(Expr),
}

/// Calls `f` on every expression of `e`, children first.
pub fn walk_expr_mut(e: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    match &mut e.kind {
        ExprKind::Lit(_) | ExprKind::Local(_) | ExprKind::DimValue(_) | ExprKind::IndexValue(_) => {
        }
        ExprKind::Str(parts) => {
            for p in parts {
                if let StrPart::Expr(x) = p {
                    walk_expr_mut(x, f);
                }
            }
        }
        ExprKind::Unary(_, a) | ExprKind::Cast(a, _) | ExprKind::Field(a, _) => walk_expr_mut(a, f),
        ExprKind::Binary(_, a, b) => {
            walk_expr_mut(a, f);
            walk_expr_mut(b, f);
        }
        ExprKind::Call(_, xs)
        | ExprKind::Builtin(_, xs)
        | ExprKind::MapFn(_, xs)
        | ExprKind::Tuple(xs)
        | ExprKind::TensorLit(xs) => xs.iter_mut().for_each(|x| walk_expr_mut(x, f)),
        ExprKind::Reduce { args, margs, .. } => args
            .iter_mut()
            .chain(margs.iter_mut())
            .for_each(|x| walk_expr_mut(x, f)),
        ExprKind::Gather { tensor, index } => {
            walk_expr_mut(tensor, f);
            index.iter_mut().for_each(|x| walk_expr_mut(x, f));
        }
        ExprKind::Diff(d) => d.args.iter_mut().for_each(|x| walk_expr_mut(x, f)),
        ExprKind::Read { tensor, edge, .. } => {
            walk_expr_mut(tensor, f);
            if let Edge::Pad(v) = edge {
                walk_expr_mut(v, f);
            }
        }
        ExprKind::Comprehension { body, .. } => walk_expr_mut(body, f),
        ExprKind::If { cond, then, els } => {
            walk_expr_mut(cond, f);
            walk_expr_mut(then, f);
            if let Some(x) = els {
                walk_expr_mut(x, f);
            }
        }
        ExprKind::Block(b) => walk_block_mut(b, f),
    }
    f(e);
}

pub fn walk_block_mut(b: &mut Block, f: &mut dyn FnMut(&mut Expr)) {
    for s in &mut b.stmts {
        match s {
            Stmt::Let { value, .. } | Stmt::Assign { value, .. } | Stmt::Expr(value) => {
                walk_expr_mut(value, f)
            }
            Stmt::For { lo, hi, body, .. } => {
                walk_expr_mut(lo, f);
                walk_expr_mut(hi, f);
                walk_block_mut(body, f);
            }
            Stmt::While { cond, body } => {
                walk_expr_mut(cond, f);
                walk_block_mut(body, f);
            }
            Stmt::Measure(body) => walk_block_mut(body, f),
        }
    }
    if let Some(t) = &mut b.tail {
        walk_expr_mut(t, f);
    }
}

impl Program {
    /// Every body of the program, mutably: functions, monoid members, `main` and tests.
    pub fn bodies_mut(&mut self) -> Vec<&mut Body> {
        let mut out: Vec<&mut Body> = Vec::new();
        for f in &mut self.funcs {
            out.push(&mut f.body);
        }
        for m in &mut self.monoids {
            out.push(&mut m.zero);
            if let Some(w) = &mut m.wrap {
                out.push(&mut w.body);
            }
            out.push(&mut m.combine.body);
            if let Some(u) = &mut m.unwrap {
                out.push(&mut u.body);
            }
            if let Some(d) = &mut m.d_combine {
                out.push(&mut d.body);
            }
        }
        if let Some(m) = &mut self.main {
            out.push(m);
        }
        for t in &mut self.tests {
            out.push(&mut t.body);
        }
        for t in &mut self.benches {
            out.push(&mut t.body);
        }
        out
    }
}
