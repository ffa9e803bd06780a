//! A generator of valid MIR graphs and their inputs, for the equivalence property tests in
//! `equivalence.rs`.
//!
//! Long file: one `Builder` whose step kinds share the choice stream, the value bounds ([`Val`])
//! and the shrinking order; the next split is one `impl Builder` file per step family, due
//! when the parallel primitives (gather, scan, histogram) join the generator.
//!
//! **Choice streams.** A graph is built from a list of `u32` *choices*, read one at a time by
//! a [`Chooser`]; a list that runs out reads as zeros. Every decision maps choice 0 to its
//! simplest option (fewest nodes, first monoid, no extra reads, smallest shapes), so when
//! proptest shrinks a failing list (dropping entries, moving values towards 0) the graph
//! shrinks with it. Tensor *values* come from a small PRNG seeded by one choice, so the data
//! costs a single choice.
//!
//! **What a graph contains.** 1–3 inputs and 1–9 steps, each one of: a map (elementwise,
//! windowed, reversed, transposed, broadcast, strided or over a fresh box with a generic
//! projection; one or two ports; 0–2 extra reads), a reduction or a group of 2–3 sibling
//! reductions over one box and one read (sometimes with a map reading the first before the
//! next starts; some axes, all axes, a sliding window, strided
//! pairs, reversed reduced axes, a long reduction to a scalar, no reduced axis, or a fresh
//! box), a constant, a random tensor, a slice, a concat, a map followed by a reduction, the
//! softmax pattern (`max`, `x - m`, `sum`, normalize: one producer, two consumers), or a
//! copy of a recent node, often with one read changed (for `cse`), or a parallel primitive:
//! a scan or a histogram (built-in monoids; over `i64` often a user monoid — `ModSum(m)`,
//! a monoid with a run-time parameter in the shape lowering gives it, an ordinary monoid
//! with the argument as a constant, or a tuple-state one, `Affine` or `MeanI`, with one
//! output port per field), or a scatter, half of them a scatter of tuples (a second
//! scatter with the same space and indices into another destination, as the checker splits
//! a tensor of tuples). Reads pick recent nodes
//! most of the time, so chains and shared producers are common. A projection that leaves
//! its tensor gets a `Pad` or `Clamp` edge; in-bounds ones are usually `Strict`. Outputs are
//! the newest node, most nodes nobody reads, and sometimes a port that is also read or an
//! input.
//!
//! **Exactness.** The generator tracks, for every tensor and every scalar expression, a
//! [`Val`]: a bound on its magnitude, whether its finite values are integers, and a *scale*
//! `S`. `S == 0` means the value is reproduced bit for bit by any legal rewrite: everything
//! except a float reduction that a pass may regroup (shard) is evaluated by exactly the same
//! operations in the same order, and regrouping is harmless for `max`/`min`, for integer
//! (wrapping) arithmetic, for `prod` over `{0, ±1/2, ±1}` and for float `sum`s of integers
//! whose partial sums stay below 2^22. A float `sum` (or `Stats`) whose arguments are not like
//! that gets `S = n·B` (`n` terms of magnitude at most `B`) and every value computed from it
//! carries a scale propagated like a first-order error bound (see [`Val`]). Values with
//! `S > 0` are only fed into continuous operations (no comparisons, casts to integers,
//! `floor`, `rem`, `sqrt` or select conditions), so an error stays an error of that size.
//!
//! Two data modes: *exact* (most cases) has integer-valued float inputs and gives float sums
//! integer arguments (`floor(clamp(x, ±64))`, ±16 for `Stats`, where the argument is not
//! already a small integer), so every result must match bitwise; *float* has fractional
//! inputs and only clamps such arguments, to the same bounds.

use std::collections::HashMap;
use std::fmt;

use flow_runtime::{DType, Data, Scalar, Tensor};
use flowc::mir::ir::{
    Affine, BinOp, BuiltinMonoid, Dist, Edge, Graph, MathFn, Monoid, MonoidId, MonoidRef, Node,
    NodeId, NodeKind, Port, Read, ScalarExpr, TensorTy, UnOp, Unwrap, Wrap,
};
use flowc::mir::verify::affine_range;
use flowc::mir::Idx;

/// "Unbounded": a bound that may be infinite (or overflowed).
pub const BIG: f64 = 1e300;

/// The most elements of a generated tensor, and the most points of an index box.
const MAX_VOLUME: usize = 200;
const MAX_BOX: usize = 400;

// ---------------------------------------------------------------------------------------------
// Choices and data.

/// Reads decisions from a choice list; past its end every choice is 0.
pub struct Chooser<'a> {
    data: &'a [u32],
    pos: usize,
}

impl<'a> Chooser<'a> {
    pub fn new(data: &'a [u32]) -> Self {
        Chooser { data, pos: 0 }
    }

    fn next(&mut self) -> u32 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    /// A number in `0..n` (0 when `n <= 1`).
    fn below(&mut self, n: usize) -> usize {
        let v = self.next() as usize;
        if n <= 1 {
            0
        } else {
            v % n
        }
    }

    /// True with about `percent` % probability; choice 0 is false.
    fn chance(&mut self, percent: u32) -> bool {
        self.next() % 100 >= 100 - percent.min(100)
    }

    /// An index into `weights`, drawn in proportion to them; choice 0 is the first.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.next() % total.max(1);
        for (k, &w) in weights.iter().enumerate() {
            if x < w {
                return k;
            }
            x -= w;
        }
        0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An option of `(weight, value)` pairs; choice 0 is the first.
    fn pick_w<T: Copy>(&mut self, items: &[(u32, T)]) -> T {
        let w: Vec<u32> = items.iter().map(|x| x.0).collect();
        items[self.weighted(&w)].1
    }
}

/// SplitMix64, for tensor values (and the autodiff suite's generator).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.range(1, one_in as i64) == 1
    }
}

// ---------------------------------------------------------------------------------------------
// What the generator knows about a value.

/// Facts about every element of a tensor or every value of an expression.
///
/// `scale` is 0 when the value is bitwise reproducible under every legal regrouping of float
/// reductions. Otherwise two legal evaluations differ by at most about `1e-4 · scale` (the
/// tests allow `1e-4 · (scale + |a| + |b|)`). It propagates like a first-order error bound:
/// `S(a ± b) = S(a) + S(b)`, `S(a · b) = B(a)·S(b) + B(b)·S(a) + S(a)·S(b)`, a 1-Lipschitz
/// function keeps `S`, and a reduction of `n` terms bounded by `B` starts at `n · B` (the
/// recursive-summation bound: regrouping changes a float sum by at most
/// `2(n-1)·2^-24·Σ|x|`, below `5e-5 · n·B` for `n <= 400`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Val {
    /// An upper bound on `|x|` over the finite values ([`BIG`]: unbounded or maybe infinite).
    pub bound: f64,
    /// Every finite value is an integer (always true for integers and bools).
    pub integral: bool,
    /// 0, or the scale of the error a legal regrouping may introduce.
    pub scale: f64,
}

fn cap(x: f64) -> f64 {
    if x.is_nan() || x > BIG {
        BIG
    } else {
        x
    }
}

fn bmul(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        cap(a * b)
    }
}

impl Val {
    fn exact(bound: f64, integral: bool) -> Val {
        Val {
            bound: cap(bound),
            integral,
            scale: 0.0,
        }
    }

    fn boolean() -> Val {
        Val::exact(1.0, true)
    }

    fn join(self, o: Val) -> Val {
        Val {
            bound: self.bound.max(o.bound),
            integral: self.integral && o.integral,
            scale: self.scale.max(o.scale),
        }
    }

    fn add(self, o: Val) -> Val {
        Val {
            bound: cap(self.bound + o.bound),
            integral: self.integral && o.integral,
            scale: cap(self.scale + o.scale),
        }
    }

    fn mul(self, o: Val) -> Val {
        Val {
            bound: bmul(self.bound, o.bound),
            integral: self.integral && o.integral,
            scale: cap(bmul(self.bound, o.scale)
                + bmul(o.bound, self.scale)
                + bmul(self.scale, o.scale)),
        }
    }

    /// The value of a scalar constant.
    fn of(s: Scalar) -> Val {
        let x = s.as_f64();
        let integral = !x.is_finite() || x.fract() == 0.0;
        Val::exact(if x.is_finite() { x.abs() } else { BIG }, integral)
    }
}

// ---------------------------------------------------------------------------------------------
// Small expression helpers.

fn c_f(dt: DType, x: f64) -> ScalarExpr {
    ScalarExpr::Const(Scalar::F64(x).cast(dt))
}

fn c_i64(x: i64) -> ScalarExpr {
    ScalarExpr::Const(Scalar::I64(x))
}

fn bin(op: BinOp, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(op, a, b)
}

fn p(k: u32) -> ScalarExpr {
    ScalarExpr::Param(k)
}

fn fld(x: ScalarExpr, k: u32) -> ScalarExpr {
    ScalarExpr::Field(Box::new(x), k)
}

/// `max(min(e, b), -b)`.
fn clamp(e: ScalarExpr, dt: DType, b: f64) -> ScalarExpr {
    bin(BinOp::Max, bin(BinOp::Min, e, c_f(dt, b)), c_f(dt, -b))
}

fn volume(shape: &[usize]) -> usize {
    shape.iter().product()
}

// ---------------------------------------------------------------------------------------------
// The monoid library.

/// The user monoids the generator uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lib {
    /// `(n: i64, s: f32, ss: f32)`, wrap `x ↦ (1, x, x²)`, unwrap to `(mean, variance)`.
    Stats,
    /// `(v: f32, i: i64)`: the largest `v` (NaN largest), the smaller `i` on ties; no unwrap.
    ArgMax,
    /// The same, unwrapped to the index alone.
    ArgMaxIndex,
    /// Composition of affine maps `(a, b) ∘ (c, d) = (a·c, a·d + b)` on wrapping `i64`; no
    /// wrap (the argument is the tuple), no unwrap. Associative, not commutative.
    Affine,
    /// The same, unwrapped to `a + b` (the composite applied to 1).
    AffineAt1,
    /// Polynomial hash of the sequence: `(h, p)`, wrap `c ↦ (c, 31)`, combine
    /// `(h1·p2 + h2, p1·p2)`, unwrap `h`. Associative, not commutative.
    Hash,
    /// The last non-zero `i64` (scalar state, no wrap, no unwrap). Not commutative.
    LastNonZero,
    /// `(n, s)` on `i64`, unwrap to `(s / n or 0, s as f32 / n as f32)`.
    MeanI,
    /// `(lo, hi)` on `f32`, wrap `x ↦ (x, x)`, commutative, no unwrap.
    MinMax,
    /// A monoid with a run-time parameter, `ModSum(m)` of `docs/language.md`, as lowering
    /// specialises it: an ordinary monoid whose wrap and combine hold the argument `m` as a
    /// constant (`mir/lower/margs.rs`), named with its value, so `ModSum(3)` and `ModSum(5)`
    /// are two monoids of one graph. Wrap `x ↦ x mod m` (in `[0, m)`), combine the sum
    /// modulo `m` without overflow, commutative.
    ModSum(i64),
}

fn lib_monoid(kind: Lib) -> Monoid {
    use BinOp as B;
    use DType::{F32, I64};
    let (a, b) = (p(0), p(1));
    let names = |n: &[&str]| n.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    let fieldwise_add = |n: u32| {
        ScalarExpr::Tuple(
            (0..n)
                .map(|k| bin(B::Add, fld(a.clone(), k), fld(b.clone(), k)))
                .collect(),
        )
    };
    match kind {
        Lib::Stats => {
            let nf = ScalarExpr::cast(fld(a.clone(), 0), F32);
            let mean = bin(B::Div, fld(a.clone(), 1), nf.clone());
            let var = bin(
                B::Sub,
                bin(B::Div, fld(a.clone(), 2), nf),
                bin(B::Mul, mean.clone(), mean.clone()),
            );
            Monoid {
                name: "Stats".into(),
                state: vec![I64, F32, F32],
                field_names: names(&["n", "s", "ss"]),
                zero: vec![Scalar::I64(0), Scalar::F32(0.0), Scalar::F32(0.0)],
                wrap: Some(Wrap {
                    params: vec![F32],
                    body: ScalarExpr::Tuple(vec![c_i64(1), p(0), bin(B::Mul, p(0), p(0))]),
                }),
                combine: fieldwise_add(3),
                unwrap: Some(Unwrap {
                    ports: vec![F32, F32],
                    body: ScalarExpr::Tuple(vec![mean, var]),
                }),
                commutative: true,
                d_combine: None,
            }
        }
        Lib::ArgMax | Lib::ArgMaxIndex => {
            let (av, ai, bv, bi) = (
                fld(a.clone(), 0),
                fld(a.clone(), 1),
                fld(b.clone(), 0),
                fld(b.clone(), 1),
            );
            let a_nan = bin(B::Ne, av.clone(), av.clone());
            let b_nan = bin(B::Ne, bv.clone(), bv.clone());
            let a_greater = bin(
                B::Or,
                bin(
                    B::And,
                    a_nan.clone(),
                    ScalarExpr::unary(UnOp::Not, b_nan.clone()),
                ),
                bin(B::Gt, av.clone(), bv.clone()),
            );
            let same = bin(B::Or, bin(B::Eq, av, bv), bin(B::And, a_nan, b_nan));
            let a_wins = bin(B::Or, a_greater, bin(B::And, same, bin(B::Le, ai, bi)));
            Monoid {
                name: if kind == Lib::ArgMax {
                    "ArgMax".into()
                } else {
                    "ArgMaxIndex".into()
                },
                state: vec![F32, I64],
                field_names: names(&["v", "i"]),
                zero: vec![Scalar::F32(f32::NEG_INFINITY), Scalar::I64(i64::MAX)],
                wrap: Some(Wrap {
                    params: vec![F32, I64],
                    body: ScalarExpr::Tuple(vec![p(0), p(1)]),
                }),
                combine: ScalarExpr::select(a_wins, a.clone(), b.clone()),
                unwrap: (kind == Lib::ArgMaxIndex).then(|| Unwrap {
                    ports: vec![I64],
                    body: fld(p(0), 1),
                }),
                commutative: false,
                d_combine: None,
            }
        }
        Lib::Affine | Lib::AffineAt1 => Monoid {
            name: if kind == Lib::Affine {
                "Affine".into()
            } else {
                "AffineAt1".into()
            },
            state: vec![I64, I64],
            field_names: names(&["a", "b"]),
            zero: vec![Scalar::I64(1), Scalar::I64(0)],
            wrap: None,
            combine: ScalarExpr::Tuple(vec![
                bin(B::Mul, fld(a.clone(), 0), fld(b.clone(), 0)),
                bin(
                    B::Add,
                    bin(B::Mul, fld(a.clone(), 0), fld(b.clone(), 1)),
                    fld(a.clone(), 1),
                ),
            ]),
            unwrap: (kind == Lib::AffineAt1).then(|| Unwrap {
                ports: vec![I64],
                body: bin(B::Add, fld(p(0), 0), fld(p(0), 1)),
            }),
            commutative: false,
            d_combine: None,
        },
        Lib::Hash => Monoid {
            name: "Hash".into(),
            state: vec![I64, I64],
            field_names: vec![Some("h".into()), None],
            zero: vec![Scalar::I64(0), Scalar::I64(1)],
            wrap: Some(Wrap {
                params: vec![I64],
                body: ScalarExpr::Tuple(vec![p(0), c_i64(31)]),
            }),
            combine: ScalarExpr::Tuple(vec![
                bin(
                    B::Add,
                    bin(B::Mul, fld(a.clone(), 0), fld(b.clone(), 1)),
                    fld(b.clone(), 0),
                ),
                bin(B::Mul, fld(a.clone(), 1), fld(b.clone(), 1)),
            ]),
            unwrap: Some(Unwrap {
                ports: vec![I64],
                body: fld(p(0), 0),
            }),
            commutative: false,
            d_combine: None,
        },
        Lib::LastNonZero => Monoid {
            name: "LastNonZero".into(),
            state: vec![I64],
            field_names: vec![None],
            zero: vec![Scalar::I64(0)],
            wrap: None,
            combine: ScalarExpr::select(bin(B::Ne, b.clone(), c_i64(0)), b.clone(), a.clone()),
            unwrap: None,
            commutative: false,
            d_combine: None,
        },
        Lib::MeanI => {
            let (n, s) = (fld(p(0), 0), fld(p(0), 1));
            Monoid {
                name: "MeanI".into(),
                state: vec![I64, I64],
                field_names: names(&["n", "s"]),
                zero: vec![Scalar::I64(0), Scalar::I64(0)],
                wrap: Some(Wrap {
                    params: vec![I64],
                    body: ScalarExpr::Tuple(vec![c_i64(1), p(0)]),
                }),
                combine: fieldwise_add(2),
                unwrap: Some(Unwrap {
                    ports: vec![I64, F32],
                    body: ScalarExpr::Tuple(vec![
                        ScalarExpr::select(
                            bin(B::Eq, n.clone(), c_i64(0)),
                            c_i64(0),
                            bin(B::Div, s.clone(), n.clone()),
                        ),
                        bin(B::Div, ScalarExpr::cast(s, F32), ScalarExpr::cast(n, F32)),
                    ]),
                }),
                commutative: true,
                d_combine: None,
            }
        }
        Lib::ModSum(m) => {
            // canon(x, m): `x % m`, plus `m` when negative; add_mod(a, b, m): `a - (m - b)`
            // when `a >= m - b`, else `a + b` (both in `[0, m)`, so nothing overflows).
            let r = bin(B::Rem, p(0), c_i64(m));
            let canon = ScalarExpr::select(
                bin(B::Lt, r.clone(), c_i64(0)),
                bin(B::Add, r.clone(), c_i64(m)),
                r,
            );
            let room = bin(B::Sub, c_i64(m), b.clone());
            let combine = ScalarExpr::select(
                bin(B::Ge, a.clone(), room.clone()),
                bin(B::Sub, a.clone(), room),
                bin(B::Add, a.clone(), b.clone()),
            );
            Monoid {
                name: format!("ModSum(m = {m})"),
                state: vec![I64],
                field_names: vec![None],
                zero: vec![Scalar::I64(0)],
                wrap: Some(Wrap {
                    params: vec![I64],
                    body: canon,
                }),
                combine,
                unwrap: None,
                commutative: true,
                d_combine: None,
            }
        }
        Lib::MinMax => Monoid {
            name: "MinMax".into(),
            state: vec![F32, F32],
            field_names: names(&["lo", "hi"]),
            zero: vec![Scalar::F32(f32::INFINITY), Scalar::F32(f32::NEG_INFINITY)],
            wrap: Some(Wrap {
                params: vec![F32],
                body: ScalarExpr::Tuple(vec![p(0), p(0)]),
            }),
            combine: ScalarExpr::Tuple(vec![
                bin(B::Min, fld(a.clone(), 0), fld(b.clone(), 0)),
                bin(B::Max, fld(a.clone(), 1), fld(b.clone(), 1)),
            ]),
            unwrap: None,
            commutative: true,
            d_combine: None,
        },
    }
}

/// A reduction's monoid, as the generator chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    Builtin(BuiltinMonoid),
    User(Lib),
}

impl Fold {
    /// A parameterised monoid drawn as `ModSum(0)` with its argument drawn by `m` (2..=41:
    /// choice 0 gives the smallest modulus that is not trivial).
    fn with_param(self, m: impl FnOnce() -> i64) -> Fold {
        match self {
            Fold::User(Lib::ModSum(_)) => Fold::User(Lib::ModSum(m())),
            f => f,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The generated case.

/// A generated graph with its inputs and what the generator knows about its outputs.
#[derive(Clone)]
pub struct Case {
    /// The choices it was built from.
    pub choices: Vec<u32>,
    /// The graph (valid by construction).
    pub graph: Graph,
    /// One tensor per `Input` node.
    pub inputs: Vec<Tensor>,
    /// Per graph output: 0 when it must match bitwise, else the scale `S` of [`Val`].
    pub scales: Vec<f64>,
    /// Whether float data may be fractional.
    pub float_mode: bool,
    /// Small shard block sizes for the tests that force sharding: a tiny one (2..=6
    /// elements), which splits nearly every map and reduction along its free dimensions, and
    /// a medium one (64..=100), which splits long reductions to a scalar along their reduced
    /// dimension into partial reductions.
    pub blocks: [usize; 2],
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Case {{ mode: {}, blocks: {:?}, {} choices, output scales: {:?} }}",
            if self.float_mode { "float" } else { "exact" },
            self.blocks,
            self.choices.len(),
            self.scales
        )?;
        writeln!(f, "choices: {:?}", self.choices)?;
        f.write_str(&flowc::mir::print(&self.graph))?;
        f.write_str(&print_inputs(&self.inputs))
    }
}

/// The inputs in MIR `const` syntax, one per line, for failure messages.
pub fn print_inputs(inputs: &[Tensor]) -> String {
    let mut out = String::new();
    for (k, t) in inputs.iter().enumerate() {
        let node = Node {
            kind: NodeKind::Const { value: t.clone() },
            outputs: vec![TensorTy::of(t)],
            label: format!("input {k}"),
            span: None,
        };
        out += &flowc::mir::print::print_node(NodeId::new(k), &node);
        out.push('\n');
    }
    out
}

/// Builds a case from a choice list.
pub fn build(choices: Vec<u32>, blocks: [usize; 2]) -> Case {
    let mut b = Builder {
        ch: Chooser::new(&choices),
        rng: Rng(0),
        float_mode: false,
        g: Graph::new(),
        vals: Vec::new(),
        inputs: Vec::new(),
        monoids: HashMap::new(),
        readers: Vec::new(),
    };
    b.run();
    let scales =
        b.g.outputs
            .iter()
            .map(|p| b.vals[p.node.index()][p.port as usize].scale)
            .collect();
    Case {
        graph: b.g,
        inputs: b.inputs,
        scales,
        float_mode: b.float_mode,
        blocks,
        choices,
    }
}

/// The proptest strategy of cases.
pub fn cases() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    (
        prop::collection::vec(any::<u32>(), 0..360),
        2usize..=6,
        64usize..=100,
    )
        .prop_map(|(choices, tiny, medium)| build(choices, [tiny, medium]))
}

// ---------------------------------------------------------------------------------------------
// The builder.

struct Builder<'a> {
    ch: Chooser<'a>,
    rng: Rng,
    float_mode: bool,
    g: Graph,
    /// Per node, per port.
    vals: Vec<Vec<Val>>,
    inputs: Vec<Tensor>,
    monoids: HashMap<Lib, MonoidId>,
    /// How many nodes read each node.
    readers: Vec<usize>,
}

/// One read of a node being built: its dtype and what its values are.
#[derive(Clone, Copy)]
struct RInfo {
    dtype: DType,
    val: Val,
}

/// The scope of an expression.
#[derive(Clone, Copy)]
struct Cx<'r> {
    reads: &'r [RInfo],
    /// The extents of the index variables.
    vars: &'r [usize],
    /// Whether values with a non-zero scale may be used.
    taint: bool,
}

impl Cx<'_> {
    fn strict(self) -> Self {
        Cx {
            taint: false,
            ..self
        }
    }
}

impl Builder<'_> {
    fn run(&mut self) {
        self.float_mode = self.ch.chance(30);
        self.rng = Rng(self.ch.next() as u64);
        let n_inputs = 1 + self.ch.below(3);
        for k in 0..n_inputs {
            let dtype = self
                .ch
                .pick_w(&[(6, DType::F32), (3, DType::I64), (1, DType::Bool)]);
            let shape = self.gen_shape(3);
            let (t, v) = self.gen_tensor(dtype, &shape);
            self.inputs.push(t);
            let label = if self.ch.chance(30) {
                format!("x{k}")
            } else {
                String::new()
            };
            self.push(
                NodeKind::Input { index: k as u32 },
                vec![TensorTy::new(dtype, shape)],
                vec![v],
                label,
            );
        }
        let steps = 1 + self.ch.below(9);
        for _ in 0..steps {
            match self.ch.weighted(&[34, 28, 8, 6, 5, 6, 7, 6, 5, 8, 13]) {
                0 => self.gen_map(),
                1 => self.gen_reduce_group(1),
                2 => {
                    let n = 2 + self.ch.below(2);
                    self.gen_reduce_group(n)
                }
                3 => self.gen_const(),
                4 => self.gen_random(),
                5 => self.gen_slice(),
                6 => self.gen_concat(),
                7 => self.gen_chain(),
                8 => self.gen_normalize(),
                9 => self.gen_duplicate(),
                _ => self.gen_prim(),
            }
        }
        self.gen_outputs();
    }

    fn push(
        &mut self,
        kind: NodeKind,
        outputs: Vec<TensorTy>,
        vals: Vec<Val>,
        label: String,
    ) -> NodeId {
        for q in reads_of(&kind) {
            self.readers[q.node.index()] += 1;
        }
        let id = self.g.add(Node {
            kind,
            outputs,
            label,
            span: None,
        });
        self.vals.push(vals);
        self.readers.push(0);
        id
    }

    fn label(&mut self, prefix: &str) -> String {
        if self.ch.chance(25) {
            format!("{prefix}{}", self.g.nodes.len())
        } else {
            String::new()
        }
    }

    fn ty(&self, q: Port) -> &TensorTy {
        self.g.port_ty(q.node, q.port).expect("port exists")
    }

    fn val(&self, q: Port) -> Val {
        self.vals[q.node.index()][q.port as usize]
    }

    /// All ports accepted by `keep`, oldest first.
    fn ports(&self, keep: impl Fn(&TensorTy, Val) -> bool) -> Vec<Port> {
        let mut out = Vec::new();
        for (id, node) in self.g.nodes.iter_enumerated() {
            for (k, t) in node.outputs.iter().enumerate() {
                let q = Port {
                    node: id,
                    port: k as u32,
                };
                if keep(t, self.val(q)) {
                    out.push(q);
                }
            }
        }
        out
    }

    /// A port accepted by `keep`, most often a recent one; choice 0 is the newest.
    fn pick_port(&mut self, keep: impl Fn(&TensorTy, Val) -> bool) -> Option<Port> {
        let all = self.ports(keep);
        if all.is_empty() {
            return None;
        }
        let k = if self.ch.chance(40) {
            self.ch.below(all.len())
        } else {
            self.ch.below(all.len().min(3))
        };
        Some(all[all.len() - 1 - k])
    }

    fn any_port(&mut self) -> Port {
        self.pick_port(|_, _| true).expect("there is an input")
    }

    // -- shapes and data --------------------------------------------------------------------

    fn gen_extent(&mut self) -> usize {
        self.ch.pick_w(&[
            (10, 2),
            (10, 3),
            (8, 1),
            (8, 5),
            (6, 7),
            (6, 4),
            (3, 0),
            (4, 6),
            (3, 8),
            (2, 11),
            // Long enough for the native backend's vector loops and their tails.
            (2, 17),
            (1, 33),
        ])
    }

    fn gen_shape(&mut self, max_rank: usize) -> Vec<usize> {
        let rank = self
            .ch
            .pick_w(&[(40, 1usize), (35, 2), (10, 0), (15, 3)])
            .min(max_rank);
        let mut shape: Vec<usize> = (0..rank).map(|_| self.gen_extent()).collect();
        fit(&mut shape, MAX_VOLUME);
        shape
    }

    fn small_scalar(&mut self, dtype: DType) -> Scalar {
        match dtype {
            DType::F32 | DType::F64 => {
                let x = if self.float_mode && self.rng.chance(2) {
                    self.rng.range(-1000, 1000) as f64 / 125.0
                } else {
                    self.rng.range(-8, 8) as f64
                };
                Scalar::F64(x).cast(dtype)
            }
            DType::I32 | DType::I64 => Scalar::I64(self.rng.range(-8, 8)).cast(dtype),
            DType::U8 | DType::U32 | DType::U64 => Scalar::I64(self.rng.range(0, 8)).cast(dtype),
            DType::Bool => Scalar::Bool(self.rng.chance(2)),
        }
    }

    /// A tensor of small values; sometimes with special values (NaN, ±inf, -0.0, extreme
    /// integers).
    fn gen_tensor(&mut self, dtype: DType, shape: &[usize]) -> (Tensor, Val) {
        let n = volume(shape);
        let specials = self.ch.chance(12);
        let mut val = Val::exact(0.0, true);
        let mut data = Data::zeros(dtype, n);
        for i in 0..n {
            let s = if specials && self.rng.chance(6) {
                match dtype {
                    DType::F32 | DType::F64 => {
                        let x = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.5]
                            [self.rng.range(0, 4) as usize];
                        Scalar::F64(x).cast(dtype)
                    }
                    DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 => {
                        let x = [i64::MAX, i64::MIN, 1 << 40, -(1 << 33)]
                            [self.rng.range(0, 3) as usize];
                        Scalar::I64(x).cast(dtype)
                    }
                    DType::Bool => Scalar::Bool(true),
                }
            } else {
                self.small_scalar(dtype)
            };
            val = val.join(Val::of(s));
            data.set(i, s);
        }
        let t = Tensor::new(shape.to_vec(), data).expect("sizes agree");
        (t, val)
    }

    // -- nodes -------------------------------------------------------------------------------

    fn gen_const(&mut self) {
        let dtype = self
            .ch
            .pick_w(&[(6, DType::F32), (3, DType::I64), (1, DType::Bool)]);
        // Often a scalar constant, which fuse-maps inlines.
        let shape = if self.ch.chance(50) {
            Vec::new()
        } else {
            self.gen_shape(2)
        };
        let (t, v) = self.gen_tensor(dtype, &shape);
        let label = self.label("c");
        self.push(
            NodeKind::Const { value: t },
            vec![TensorTy::new(dtype, shape)],
            vec![v],
            label,
        );
    }

    fn gen_random(&mut self) {
        let shape = self.gen_shape(2);
        let dist = self.ch.pick(&[Dist::Uniform, Dist::Normal]);
        let seed = self.ch.below(1000) as u64;
        let bound = if dist == Dist::Uniform { 1.0 } else { 8.0 };
        let label = self.label("rnd");
        self.push(
            NodeKind::Random { dist, seed },
            vec![TensorTy::new(DType::F32, shape)],
            vec![Val::exact(bound, false)],
            label,
        );
    }

    /// A scan (inclusive or exclusive, along the last axis), a histogram or a scatter of a
    /// recent port (often a map, which `fuse-reduce` then fuses into it). Exact mode keeps
    /// exact monoids (integer `sum`, `max`, `min`); a float `sum` adds a tolerance. Indices are
    /// always in range (`(a·i0 + c) mod n`).
    fn gen_prim(&mut self) {
        let Some(src) = self
            .pick_port(|t, _| !t.shape.is_empty() && matches!(t.dtype, DType::F32 | DType::I64))
        else {
            return;
        };
        let ty = self.ty(src).clone();
        let v = self.val(src);
        let (dtype, space) = (ty.dtype, ty.shape.clone());
        let float_sum_ok = self.float_mode || dtype == DType::I64;
        let monoid = match self.ch.weighted(&[50, 25, 25]) {
            0 if float_sum_ok => BuiltinMonoid::Sum,
            1 | 0 => BuiltinMonoid::Max,
            _ => BuiltinMonoid::Min,
        };
        let read = Read {
            node: src.node,
            port: src.port,
            proj: identity(space.len()),
            edge: Edge::Strict,
        };
        let along = |n: usize| n.max(1) as f64;
        let folded = |n: usize| match monoid {
            BuiltinMonoid::Sum => Val {
                bound: cap(v.bound * along(n)),
                integral: v.integral,
                scale: cap(along(n)
                    * (v.scale
                        + if dtype == DType::F32 {
                            v.bound * 1e-6
                        } else {
                            0.0
                        })),
            },
            // max/min of no elements is the identity (±inf, or the integer extremes).
            _ => Val::exact(BIG, v.integral),
        };
        let label = self.label("pr");
        let kind = self.ch.weighted(&[35, 25, 40]);
        // A histogram's or scatter's index: `(i·a + c) mod rows`.
        let (a, c) = (1 + self.ch.below(3) as i64, self.ch.below(5) as i64);
        let index = |rows: usize| {
            bin(
                BinOp::Rem,
                bin(
                    BinOp::Add,
                    bin(BinOp::Mul, ScalarExpr::Index(0), c_i64(a)),
                    c_i64(c),
                ),
                c_i64(rows.max(1) as i64),
            )
        };
        // Over `i64`, often a user monoid: a parameterised one (`ModSum(m)`) or one with a
        // tuple state (`Affine`, no wrap, its argument the tuple; `MeanI`, wrap and an unwrap
        // to two ports): the scan or histogram has one output port per field.
        // Over exact `f32`, `MinMax` (a tuple state of two `f32`s).
        let user = match dtype {
            DType::I64 if kind < 2 && self.ch.chance(75) => Some(match self.ch.below(4) {
                0 => Lib::ModSum(2 + self.ch.below(40) as i64),
                1 | 2 => Lib::Affine,
                _ => Lib::MeanI,
            }),
            DType::F32 if kind < 2 && v.scale == 0.0 && self.ch.chance(50) => Some(Lib::MinMax),
            _ => None,
        };
        if let Some(lib) = user {
            let m = self.monoid(lib);
            let (args, ports) = match lib {
                Lib::ModSum(modulus) => (
                    vec![ScalarExpr::Read(0)],
                    vec![(DType::I64, Val::exact(modulus as f64, true))],
                ),
                Lib::Affine => (
                    vec![ScalarExpr::Tuple(vec![
                        ScalarExpr::Read(0),
                        ScalarExpr::Read(0),
                    ])],
                    vec![(DType::I64, Val::exact(BIG, true)); 2],
                ),
                // ±inf where no element reaches (an exclusive scan's first, an empty bin).
                Lib::MinMax => (
                    vec![ScalarExpr::Read(0)],
                    vec![(DType::F32, Val { bound: BIG, ..v }); 2],
                ),
                _ => (
                    vec![ScalarExpr::Read(0)],
                    vec![
                        (DType::I64, Val::exact(BIG, true)),
                        (DType::F32, Val::exact(BIG, false)),
                    ],
                ),
            };
            let shape = if kind == 0 {
                let exclusive = self.ch.chance(40);
                let kind = NodeKind::Scan {
                    space: space.clone(),
                    monoid: m,
                    exclusive,
                    reads: vec![read],
                    args,
                };
                (kind, space.clone())
            } else {
                let bins = 1 + self.ch.below(6);
                let kind = NodeKind::ReduceByIndex {
                    space: space.clone(),
                    bins,
                    monoid: m,
                    reads: vec![read],
                    index: index(bins),
                    args,
                };
                let out: Vec<usize> = std::iter::once(bins)
                    .chain(space[1..].iter().copied())
                    .collect();
                (kind, out)
            };
            let (node, out) = shape;
            let outputs = ports
                .iter()
                .map(|(dt, _)| TensorTy::new(*dt, out.clone()))
                .collect();
            let vals = ports.iter().map(|(_, v)| *v).collect();
            self.push(node, outputs, vals, label);
            return;
        }
        if kind == 0 || space.len() > 1 && kind == 1 {
            let exclusive = self.ch.chance(40);
            let val = folded(*space.last().expect("rank 1 or more"));
            self.push(
                NodeKind::Scan {
                    space: space.clone(),
                    monoid: MonoidRef::Builtin(monoid),
                    exclusive,
                    reads: vec![read],
                    args: vec![ScalarExpr::Read(0)],
                },
                vec![TensorTy::new(dtype, space)],
                vec![val],
                label,
            );
            return;
        }
        let n = space[0];
        if kind == 1 || space.len() > 1 {
            let bins = 1 + self.ch.below(6);
            let val = folded(n);
            self.push(
                NodeKind::ReduceByIndex {
                    space: space.clone(),
                    bins,
                    monoid: MonoidRef::Builtin(monoid),
                    reads: vec![read],
                    index: index(bins),
                    args: vec![ScalarExpr::Read(0)],
                },
                vec![TensorTy::new(
                    dtype,
                    std::iter::once(bins)
                        .chain(space[1..].iter().copied())
                        .collect(),
                )],
                vec![val],
                label,
            );
            return;
        }
        // A scatter into a 1-D port of the same type with at least one row, else into a fresh
        // constant of 1–8 rows.
        let dest =
            match self.pick_port(|t, _| t.shape.len() == 1 && t.shape[0] > 0 && t.dtype == dtype) {
                Some(q) => q,
                None => {
                    let rows = 1 + self.ch.below(8);
                    self.fresh_const(dtype, rows)
                }
            };
        let m = self.ty(dest).shape[0];
        let val = self.val(dest).join(v);
        let tuple = self.ch.chance(85);
        self.push(
            NodeKind::Scatter {
                dest,
                space: space.clone(),
                reads: vec![read.clone()],
                index: index(m),
                value: ScalarExpr::Read(0),
            },
            vec![TensorTy::new(dtype, vec![m])],
            vec![val],
            label,
        );
        if !tuple {
            return;
        }
        // A scatter into a tensor of tuples, as the checker splits it: one scatter per field
        // with the same space and indices (the winner of a duplicate index must be the same
        // in every field), the second field into its own destination (a fresh constant, or
        // another port of the length) with its own values (here the first field's values
        // doubled, or read from another port of the space).
        let dest2 = match self.pick_port(|t, _| t.shape == [m] && t.dtype == dtype) {
            Some(q) if q != dest && self.ch.chance(50) => q,
            _ => self.fresh_const(dtype, m),
        };
        let (value, v2) = if v.scale == 0.0 && self.ch.chance(50) {
            (
                bin(BinOp::Add, ScalarExpr::Read(0), ScalarExpr::Read(0)),
                v.add(v),
            )
        } else {
            (ScalarExpr::Read(0), v)
        };
        let val2 = self.val(dest2).join(v2);
        let label = self.label("pr");
        self.push(
            NodeKind::Scatter {
                dest: dest2,
                space,
                reads: vec![read],
                index: index(m),
                value,
            },
            vec![TensorTy::new(dtype, vec![m])],
            vec![val2],
            label,
        );
    }

    fn gen_slice(&mut self) {
        let src = self.any_port();
        let shape = self.ty(src).shape.clone();
        let mut start = Vec::new();
        let mut ext = Vec::new();
        for &d in &shape {
            let s = self.ch.below(d + 1);
            let e = if self.ch.chance(30) {
                d - s
            } else {
                self.ch.below(d - s + 1)
            };
            start.push(s);
            ext.push(e);
        }
        let dtype = self.ty(src).dtype;
        let v = self.val(src);
        let label = self.label("sl");
        self.push(
            NodeKind::Slice {
                src,
                start,
                shape: ext.clone(),
            },
            vec![TensorTy::new(dtype, ext)],
            vec![v],
            label,
        );
    }

    fn gen_concat(&mut self) {
        let Some(first) = self.pick_port(|t, _| !t.shape.is_empty()) else {
            return;
        };
        let fty = self.ty(first).clone();
        let axis = self.ch.below(fty.shape.len());
        let mut parts = vec![first];
        let n_more = 1 + self.ch.below(2);
        for _ in 0..n_more {
            let fits = |t: &TensorTy| {
                t.dtype == fty.dtype
                    && t.shape.len() == fty.shape.len()
                    && t.shape
                        .iter()
                        .zip(&fty.shape)
                        .enumerate()
                        .all(|(d, (a, b))| d == axis || a == b)
            };
            let q = if self.ch.chance(50) {
                // A fresh slice of the first part along the axis.
                let d = fty.shape[axis];
                let s = self.ch.below(d + 1);
                let e = self.ch.below(d - s + 1);
                let mut start = vec![0; fty.shape.len()];
                let mut shape = fty.shape.clone();
                start[axis] = s;
                shape[axis] = e;
                let v = self.val(first);
                let id = self.push(
                    NodeKind::Slice {
                        src: first,
                        start,
                        shape: shape.clone(),
                    },
                    vec![TensorTy::new(fty.dtype, shape)],
                    vec![v],
                    String::new(),
                );
                Port { node: id, port: 0 }
            } else {
                self.pick_port(|t, _| fits(t)).expect("the first part fits")
            };
            parts.push(q);
        }
        let mut shape = fty.shape.clone();
        shape[axis] = parts.iter().map(|q| self.ty(*q).shape[axis]).sum();
        if volume(&shape) > 2 * MAX_VOLUME {
            return;
        }
        let v = parts
            .iter()
            .map(|q| self.val(*q))
            .fold(Val::exact(0.0, true), Val::join);
        let label = self.label("cat");
        self.push(
            NodeKind::Concat { axis, parts },
            vec![TensorTy::new(fty.dtype, shape)],
            vec![v],
            label,
        );
    }

    /// A copy of a recent computing node (for `cse`).
    fn gen_duplicate(&mut self) {
        let candidates: Vec<NodeId> = self
            .g
            .nodes
            .iter_enumerated()
            .filter(|(_, n)| !matches!(n.kind, NodeKind::Input { .. }))
            .map(|(id, _)| id)
            .collect();
        if candidates.is_empty() {
            return self.gen_map();
        }
        // Often a node with a read that leaves its tensor (see below).
        let edged: Vec<NodeId> = candidates
            .iter()
            .copied()
            .filter(|&id| self.outside_reads(&self.g.nodes[id]).next().is_some())
            .collect();
        let id = if !edged.is_empty() && self.ch.chance(60) {
            edged[edged.len() - 1 - self.ch.below(edged.len().min(4))]
        } else {
            candidates[candidates.len() - 1 - self.ch.below(candidates.len().min(4))]
        };
        let mut node = self.g.nodes[id].clone();
        let vals = self.vals[id.index()].clone();
        // Most of the time a near copy that `cse` must tell apart: one read with the other
        // edge rule (`pad 0` and `clamp` swapped), a zero pad value, or shifted by one (kept
        // in bounds, else clamped). The new read yields the tensor's own values or 0, so the
        // generator's facts still hold.
        let outside: Vec<usize> = self.outside_reads(&node).collect();
        let bx: Vec<usize> = match &node.kind {
            NodeKind::Map { space, .. } => space.clone(),
            NodeKind::Reduce { space, red, .. } => space.iter().chain(red).copied().collect(),
            _ => Vec::new(),
        };
        // A gather's table stays a whole-tensor read.
        let tables: Vec<bool> = match &node.kind {
            NodeKind::Map {
                reads, body: es, ..
            }
            | NodeKind::Reduce {
                reads, args: es, ..
            } => (0..reads.len() as u32)
                .map(|k| es.iter().any(|e| e.gathers_from(k)))
                .collect(),
            _ => Vec::new(),
        };
        if let NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } = &mut node.kind {
            if !reads.is_empty() && self.ch.chance(70) {
                let k = if outside.is_empty() {
                    self.ch.below(reads.len())
                } else {
                    outside[self.ch.below(outside.len())]
                };
                if tables[k] {
                    let label = self.label("dup");
                    self.push(node.kind, node.outputs, vals, label);
                    return;
                }
                let r = &mut reads[k];
                let ty = self.g.port_ty(r.node, r.port).expect("read port").clone();
                let zero = Scalar::I64(0).cast(ty.dtype);
                let can_clamp = !ty.shape.contains(&0);
                let shift = if self.ch.chance(50) { 1 } else { -1 };
                let dim = self.ch.below(r.proj.len().max(1));
                match (r.edge, self.ch.below(3)) {
                    (Edge::Strict, _) if !r.proj.is_empty() => {
                        // Towards the side with room, so that the read usually stays strict.
                        let (lo, hi) = affine_range(&r.proj[dim], &bx);
                        r.proj[dim].konst += if hi + 1 < ty.shape[dim] as i128 {
                            1
                        } else if lo > 0 {
                            -1
                        } else {
                            shift
                        };
                        let (lo, hi) = affine_range(&r.proj[dim], &bx);
                        if !bx.contains(&0) && (lo < 0 || hi >= ty.shape[dim] as i128) {
                            r.edge = if can_clamp {
                                Edge::Clamp
                            } else {
                                Edge::Pad(zero)
                            };
                        }
                    }
                    (Edge::Clamp, 0) => r.edge = Edge::Pad(zero),
                    (Edge::Pad(_), 0) if can_clamp => r.edge = Edge::Clamp,
                    (Edge::Pad(v), 1) if v != zero => r.edge = Edge::Pad(zero),
                    (Edge::Pad(_) | Edge::Clamp, _) if !r.proj.is_empty() => {
                        r.proj[dim].konst += shift;
                    }
                    _ => {}
                }
            }
        }
        let label = self.label("dup");
        self.push(node.kind, node.outputs, vals, label);
    }

    /// The reads of a map or reduction that leave their tensor somewhere in the box.
    fn outside_reads<'n>(&'n self, node: &'n Node) -> impl Iterator<Item = usize> + 'n {
        let (bx, reads): (Vec<usize>, &[Read]) = match &node.kind {
            NodeKind::Map { space, reads, .. } => (space.clone(), reads),
            NodeKind::Reduce {
                space, red, reads, ..
            } => (space.iter().chain(red).copied().collect(), reads),
            _ => (Vec::new(), &[]),
        };
        (0..reads.len()).filter(move |&k| {
            let r = &reads[k];
            let ty = self.g.port_ty(r.node, r.port).expect("read port");
            !bx.contains(&0)
                && r.proj.iter().zip(&ty.shape).any(|(a, &d)| {
                    let (lo, hi) = affine_range(a, &bx);
                    lo < 0 || hi >= d as i128
                })
        })
    }

    /// A map, then a reduction over it: the classic chain that fusion targets.
    fn gen_chain(&mut self) {
        self.gen_map();
        self.gen_reduce_group(1);
    }

    /// The softmax pattern along the last axis of a float tensor `x`: `m = max(x)`,
    /// `e = f(x - m)` (a producer with two consumers), `s = sum(e)`, `y = e / (|s| + 1)`
    /// (or `e * s`), with `m` and `s` read by broadcast.
    fn gen_normalize(&mut self) {
        let Some(x) = self.pick_port(|t, _| t.dtype == DType::F32 && !t.shape.is_empty()) else {
            return self.gen_map();
        };
        let shape = self.ty(x).shape.clone();
        let r = shape.len();
        let outer = shape[..r - 1].to_vec();
        let last = shape[r - 1];
        let vx = self.val(x);
        let strict = |node: NodeId, proj: Vec<Affine>| Read {
            node,
            port: 0,
            proj,
            edge: Edge::Strict,
        };
        let read_x = Read {
            port: x.port,
            ..strict(x.node, identity(r))
        };
        let outer_proj = || identity(r - 1);
        // m = max over the last axis.
        let vm = Val {
            bound: if last == 0 { BIG } else { vx.bound },
            ..vx
        };
        let m = self.push(
            NodeKind::Reduce {
                space: outer.clone(),
                red: vec![last],
                monoid: MonoidRef::Builtin(BuiltinMonoid::Max),
                reads: vec![read_x.clone()],
                args: vec![ScalarExpr::Read(0)],
            },
            vec![TensorTy::new(DType::F32, outer.clone())],
            vec![vm],
            "max".into(),
        );
        // e = f(x - m).
        let diff = bin(BinOp::Sub, ScalarExpr::Read(0), ScalarExpr::Read(1));
        let vd = vx.add(vm);
        let (body, ve) = if self.float_mode && self.ch.chance(60) {
            (
                ScalarExpr::call(MathFn::Exp, ScalarExpr::call(MathFn::Tanh, diff)),
                Val {
                    bound: 2.72,
                    integral: false,
                    scale: 2.72 * vd.scale,
                },
            )
        } else {
            (diff, vd)
        };
        let e = self.push(
            NodeKind::Map {
                space: shape.clone(),
                reads: vec![read_x, strict(m, outer_proj())],
                body: vec![body],
            },
            vec![TensorTy::new(DType::F32, shape.clone())],
            vec![ve],
            "e".into(),
        );
        // s = sum of e over the last axis.
        let (arg, va, scale) = self.float_sum_arg(ScalarExpr::Read(0), ve, DType::F32, last, false);
        let vs = Val {
            bound: bmul(va.bound, last as f64),
            integral: va.integral,
            scale,
        };
        let s = self.push(
            NodeKind::Reduce {
                space: outer.clone(),
                red: vec![last],
                monoid: MonoidRef::Builtin(BuiltinMonoid::Sum),
                reads: vec![strict(e, identity(r))],
                args: vec![arg],
            },
            vec![TensorTy::new(DType::F32, outer)],
            vec![vs],
            "sum".into(),
        );
        // y = e / (|s| + 1), or e * s.
        let (body, vy) = if self.ch.chance(50) {
            (
                bin(BinOp::Mul, ScalarExpr::Read(0), ScalarExpr::Read(1)),
                ve.mul(vs),
            )
        } else {
            let den = bin(
                BinOp::Add,
                ScalarExpr::call(MathFn::Abs, ScalarExpr::Read(1)),
                c_f(DType::F32, 1.0),
            );
            (
                bin(BinOp::Div, ScalarExpr::Read(0), den),
                Val {
                    bound: ve.bound,
                    integral: false,
                    scale: cap(ve.scale + bmul(ve.bound, vs.scale)),
                },
            )
        };
        self.push(
            NodeKind::Map {
                space: shape.clone(),
                reads: vec![strict(e, identity(r)), strict(s, outer_proj())],
                body: vec![body],
            },
            vec![TensorTy::new(DType::F32, shape)],
            vec![vy],
            "y".into(),
        );
    }

    fn gen_map(&mut self) {
        let src = self.any_port();
        let sty = self.ty(src).clone();
        let d = sty.shape.clone();
        let r = d.len();
        // The space, and the projection of the primary read.
        let (space, proj): (Vec<usize>, Vec<Affine>) =
            match self.ch.weighted(&[40, 12, 10, 8, 10, 10, 10]) {
                // Elementwise.
                0 => (d.clone(), identity(r)),
                // A window: i_j + k with a smaller extent.
                1 if r > 0 => {
                    let j = self.ch.below(r);
                    let w = 1 + self.ch.below(3);
                    let mut space = d.clone();
                    space[j] = d[j].saturating_sub(w - 1);
                    let mut proj = identity(r);
                    proj[j] = Affine::var_plus(j as u32, self.ch.below(w) as i64);
                    (space, proj)
                }
                // Reversed along some dimensions.
                2 if r > 0 => {
                    let mut proj = identity(r);
                    for (j, a) in proj.iter_mut().enumerate() {
                        if j == 0 || self.ch.chance(50) {
                            *a = reversed(j as u32, d[j] as i64 - 1);
                        }
                    }
                    (d.clone(), proj)
                }
                // Transposed.
                3 if r >= 2 => {
                    let mut perm: Vec<usize> = (0..r).collect();
                    perm.rotate_left(1 + self.ch.below(r - 1));
                    // Space dimension k is tensor dimension perm[k].
                    let space: Vec<usize> = perm.iter().map(|&j| d[j]).collect();
                    let mut proj = vec![Affine::default(); r];
                    for (k, &j) in perm.iter().enumerate() {
                        proj[j] = Affine::var(k as u32);
                    }
                    (space, proj)
                }
                // Broadcast: an extra dimension that the read ignores.
                4 if r < 3 => {
                    let q = self.ch.below(r + 1);
                    let mut space = d.clone();
                    space.insert(q, self.gen_extent());
                    let proj = (0..r)
                        .map(|j| Affine::var(if j < q { j } else { j + 1 } as u32))
                        .collect();
                    (space, proj)
                }
                // Strided: 2·i_j (+1), out of bounds at the end for odd extents.
                5 if r > 0 => {
                    let j = self.ch.below(r);
                    let mut space = d.clone();
                    space[j] = d[j].div_ceil(2);
                    let mut proj = identity(r);
                    proj[j] = Affine {
                        konst: self.ch.below(2) as i64,
                        coeffs: vec![(j as u32, 2)],
                    };
                    (space, proj)
                }
                // A fresh space and a generic projection.
                _ => {
                    let space = self.gen_shape(3);
                    let proj = self.gen_proj(&space, &d);
                    (space, proj)
                }
            };
        let mut space = space;
        fit(&mut space, MAX_VOLUME);
        let mut reads = vec![self.make_read(src, proj, &space)];
        let n_extra = self.ch.pick_w(&[(50, 0usize), (35, 1), (15, 2)]);
        for _ in 0..n_extra {
            let q = self.any_port();
            let shape = self.ty(q).shape.clone();
            let proj = self.gen_proj(&space, &shape);
            reads.push(self.make_read(q, proj, &space));
        }
        let infos = self.read_infos(&reads);
        let cx = Cx {
            reads: &infos,
            vars: &space,
            taint: true,
        };
        let n_ports = 1 + usize::from(self.ch.chance(20));
        let mut body = Vec::new();
        let mut outs = Vec::new();
        let mut vals = Vec::new();
        for k in 0..n_ports {
            // The first port prefers the primary read's type.
            let dtype = if k == 0 && self.ch.chance(60) && sty.dtype != DType::I32 {
                sty.dtype
            } else {
                self.ch.pick_w(&[
                    (50, DType::F32),
                    (28, DType::I64),
                    (12, DType::Bool),
                    (5, DType::F64),
                    (5, DType::I32),
                ])
            };
            let depth = 1 + self.ch.below(3) as u32;
            let (e, v) = self.expr(cx, dtype, depth);
            body.push(e);
            outs.push(TensorTy::new(dtype, space.clone()));
            vals.push(v);
        }
        if self.ch.chance(15) {
            self.gen_gather(&space, &mut reads, &mut body, &mut vals, &outs);
        }
        let label = self.label("m");
        self.push(NodeKind::Map { space, reads, body }, outs, vals, label);
    }

    /// Replaces a port's body by a gather from a tensor of its type: every coordinate is
    /// `(c·i + k) mod extent` of an index variable (in range, but not affine), so passes see
    /// a table read that they must leave whole.
    fn gen_gather(
        &mut self,
        space: &[usize],
        reads: &mut Vec<Read>,
        body: &mut [ScalarExpr],
        vals: &mut [Val],
        outs: &[TensorTy],
    ) {
        let port = self.ch.below(body.len());
        let dtype = outs[port].dtype;
        let Some(q) =
            self.pick_port(|t, _| t.dtype == dtype && !t.shape.is_empty() && !t.shape.contains(&0))
        else {
            return;
        };
        let shape = self.ty(q).shape.clone();
        let coords = shape
            .iter()
            .map(|&e| {
                let c = 1 + self.ch.below(5) as i64;
                let k = self.ch.below(e) as i64;
                let i = if space.is_empty() {
                    c_i64(self.ch.below(7) as i64)
                } else {
                    ScalarExpr::Index(self.ch.below(space.len()) as u32)
                };
                let x = bin(BinOp::Add, bin(BinOp::Mul, i, c_i64(c)), c_i64(k));
                bin(BinOp::Rem, x, c_i64(e as i64))
            })
            .collect();
        reads.push(Read {
            node: q.node,
            port: q.port,
            proj: vec![Affine::konst(0); shape.len()],
            edge: Edge::Strict,
        });
        body[port] = ScalarExpr::Gather(reads.len() as u32 - 1, coords);
        vals[port] = self.val(q);
    }

    fn read_infos(&self, reads: &[Read]) -> Vec<RInfo> {
        reads
            .iter()
            .map(|r| {
                let q = r.src();
                let mut val = self.val(q);
                if let Edge::Pad(s) = r.edge {
                    val = val.join(Val::of(s));
                }
                RInfo {
                    dtype: self.ty(q).dtype,
                    val,
                }
            })
            .collect()
    }

    /// A read of `q` through `proj` over the box `bx`, with an edge rule that makes it valid:
    /// `Strict` when the projection stays inside (usually), else `Pad` or `Clamp`.
    fn make_read(&mut self, q: Port, proj: Vec<Affine>, bx: &[usize]) -> Read {
        let ty = self.ty(q).clone();
        let empty_box = bx.contains(&0);
        let inside = empty_box
            || proj.iter().zip(&ty.shape).all(|(a, &d)| {
                let (lo, hi) = affine_range(a, bx);
                lo >= 0 && hi < d as i128
            });
        let can_clamp = empty_box || !ty.shape.contains(&0);
        let edge = match (inside, self.ch.weighted(&[80, 10, 10])) {
            (true, 0) => Edge::Strict,
            (_, 2) if can_clamp => Edge::Clamp,
            (false, 0) if can_clamp && self.ch.chance(50) => Edge::Clamp,
            _ => {
                let s = if self.ch.chance(50) {
                    Scalar::I64(0).cast(ty.dtype)
                } else {
                    self.small_scalar(ty.dtype)
                };
                Edge::Pad(s)
            }
        };
        Read {
            node: q.node,
            port: q.port,
            proj,
            edge,
        }
    }

    /// A projection of the box `bx` into a tensor of `shape`: per dimension, an offset,
    /// reversed, strided or windowed index variable, or a constant (broadcast), usually in
    /// bounds, sometimes not.
    fn gen_proj(&mut self, bx: &[usize], shape: &[usize]) -> Vec<Affine> {
        let mut used = vec![false; bx.len()];
        let mut proj = Vec::new();
        for &d in shape {
            let di = d as i64;
            // Variables that fit in this dimension, unused ones first.
            let mut fit_vars: Vec<usize> =
                (0..bx.len()).filter(|&v| bx[v] <= d && !used[v]).collect();
            if fit_vars.is_empty() {
                fit_vars = (0..bx.len()).filter(|&v| bx[v] <= d).collect();
            }
            let kind = self.ch.weighted(&[50, 12, 8, 8, 12, 10]);
            let a = if bx.is_empty() || (fit_vars.is_empty() && kind != 5) || kind == 4 {
                Affine::konst(self.ch.below(d.max(1)) as i64)
            } else if kind == 5 {
                // Wild: likely out of bounds.
                let v = self.ch.below(bx.len()) as u32;
                let c = self.ch.pick(&[1i64, -1, 3]);
                Affine {
                    konst: self.ch.below(5) as i64 - 2,
                    coeffs: vec![(v, c)],
                }
            } else {
                let v = fit_vars[self.ch.below(fit_vars.len())];
                used[v] = true;
                let e = bx[v] as i64;
                let slack = (di - e).max(0);
                match kind {
                    1 => reversed(v as u32, e - 1 + self.ch.below(slack as usize + 1) as i64),
                    2 if 2 * e - 1 <= di => Affine {
                        konst: self.ch.below((di - 2 * e + 2) as usize) as i64,
                        coeffs: vec![(v as u32, 2)],
                    },
                    3 => {
                        let w = self.ch.below(bx.len());
                        let room = di - e - bx[w] as i64 + 1;
                        if w != v && room >= 0 {
                            Affine {
                                konst: self.ch.below(room as usize + 1) as i64,
                                coeffs: vec![(v as u32, 1), (w as u32, 1)],
                            }
                        } else {
                            Affine::var(v as u32)
                        }
                    }
                    _ => Affine::var_plus(v as u32, self.ch.below(slack as usize + 1) as i64),
                }
            };
            proj.push(a);
        }
        proj
    }

    // -- reductions --------------------------------------------------------------------------

    /// `n` reductions (siblings when `n > 1`) over the same box reading the same tensor
    /// through the same projection, with different monoids.
    fn gen_reduce_group(&mut self, n: usize) {
        let src = self.any_port();
        let d = self.ty(src).shape.clone();
        let r = d.len();
        let (mut space, mut red, proj): (Vec<usize>, Vec<usize>, Vec<Affine>) =
            match self.ch.weighted(&[40, 12, 8, 12, 18, 6, 5]) {
                // Reduce some axes, keep the others (free ones first in the box).
                k @ (0 | 3) if r > 0 => {
                    // Often everything (a long reduction to a scalar), else some axes.
                    let all = self.ch.chance(30);
                    let mut reduce: Vec<bool> = (0..r).map(|_| all || self.ch.chance(50)).collect();
                    if !reduce.iter().any(|&x| x) {
                        let j = r - 1 - self.ch.below(r);
                        reduce[j] = true;
                    }
                    let free: Vec<usize> = (0..r).filter(|&j| !reduce[j]).collect();
                    let rdims: Vec<usize> = (0..r).filter(|&j| reduce[j]).collect();
                    let mut proj = vec![Affine::default(); r];
                    for (k, &j) in free.iter().chain(&rdims).enumerate() {
                        proj[j] = Affine::var(k as u32);
                    }
                    if k == 3 {
                        // Reversed reads of the reduced dimensions: the fold order matters.
                        for (k, &j) in rdims.iter().enumerate() {
                            proj[j] = reversed((free.len() + k) as u32, d[j] as i64 - 1);
                        }
                    }
                    (
                        free.iter().map(|&j| d[j]).collect(),
                        rdims.iter().map(|&j| d[j]).collect(),
                        proj,
                    )
                }
                // A sliding window: space d_j - w + 1, red [w], read i_j + i_w.
                1 if r > 0 => {
                    let j = self.ch.below(r);
                    let w = 1 + self.ch.below(3);
                    let mut space = d.clone();
                    space[j] = d[j].saturating_sub(w - 1);
                    let mut proj = identity(r);
                    proj[j] = Affine {
                        konst: 0,
                        coeffs: vec![(j as u32, 1), (r as u32, 1)],
                    };
                    (space, vec![w], proj)
                }
                // Strided pairs: 2·i_j + i_r.
                2 if r > 0 => {
                    let j = self.ch.below(r);
                    let mut space = d.clone();
                    space[j] = d[j].div_ceil(2);
                    let mut proj = identity(r);
                    proj[j] = Affine {
                        konst: 0,
                        coeffs: vec![(j as u32, 2), (r as u32, 1)],
                    };
                    (space, vec![2], proj)
                }
                // Everything reduced, plus an extra reduced dimension the read ignores.
                // (first or last): a long reduction to a scalar.
                4 => {
                    let mut extra = self.ch.pick(&[16, 8, 24, 5, 11]);
                    if self.ch.chance(70) {
                        // Long enough for the shard pass to split it at medium block sizes.
                        extra = extra.max(300usize.div_ceil(volume(&d).max(1))).min(MAX_BOX);
                    }
                    let mut red = d.clone();
                    let proj = if self.ch.chance(50) {
                        red.insert(0, extra);
                        (1..=r).map(|j| Affine::var(j as u32)).collect()
                    } else {
                        red.push(extra);
                        identity(r)
                    };
                    (Vec::new(), red, proj)
                }
                // An empty list of reduced dimensions: one element per fold.
                5 => (d.clone(), Vec::new(), identity(r)),
                // A fresh box and a generic projection.
                _ => {
                    let space = self.gen_shape(2);
                    let red = {
                        let mut red = self.gen_shape(2);
                        if red.is_empty() {
                            red.push(self.gen_extent());
                        }
                        red
                    };
                    let bx: Vec<usize> = space.iter().chain(&red).copied().collect();
                    let proj = self.gen_proj(&bx, &d);
                    (space, red, proj)
                }
            };
        // Keep the box small; shrinking extents keeps every projection valid or lets the
        // edge rule handle it (make_read checks bounds on the final box).
        fit(&mut red, MAX_BOX);
        let rv = volume(&red).max(1);
        fit(&mut space, (MAX_BOX / rv).max(1));
        let bx: Vec<usize> = space.iter().chain(&red).copied().collect();
        let primary = self.make_read(src, proj, &bx);
        let mut used = Vec::new();
        for k in 0..n {
            let mut reads = vec![primary.clone()];
            if self.ch.chance(30) {
                let q = self.any_port();
                let shape = self.ty(q).shape.clone();
                let proj = self.gen_proj(&bx, &shape);
                reads.push(self.make_read(q, proj, &bx));
            }
            let mut fold = self.pick_fold();
            // Siblings with distinct monoids are the interesting case.
            if used.contains(&fold) {
                fold = self.pick_fold();
            }
            used.push(fold);
            self.gen_reduce(space.clone(), red.clone(), reads, fold);
            if k + 1 < n && self.ch.chance(40) {
                self.gen_reader_of_last();
            }
        }
    }

    /// A map reading the newest node's first port at each point (`x * 1`, or `!x` for a
    /// bool), so that node has a reader before the next sibling reduction: `sum(x) / N`
    /// next to `sum(x * x) / N` (`fuse-siblings` then puts the fused node in the first's
    /// place).
    fn gen_reader_of_last(&mut self) {
        let q = Port {
            node: NodeId::new(self.g.nodes.len() - 1),
            port: 0,
        };
        let ty = self.ty(q).clone();
        let v = self.val(q);
        let x = ScalarExpr::Read(0);
        let (body, val) = match ty.dtype {
            DType::Bool => (ScalarExpr::unary(UnOp::Not, x), Val::boolean()),
            DType::I32 => (bin(BinOp::Mul, x, ScalarExpr::Const(Scalar::I32(1))), v),
            DType::I64 => (bin(BinOp::Mul, x, c_i64(1)), v),
            dt => (bin(BinOp::Mul, x, c_f(dt, 1.0)), v),
        };
        let read = Read {
            node: q.node,
            port: 0,
            proj: identity(ty.shape.len()),
            edge: Edge::Strict,
        };
        let label = self.label("per");
        self.push(
            NodeKind::Map {
                space: ty.shape.clone(),
                reads: vec![read],
                body: vec![body],
            },
            vec![ty],
            vec![val],
            label,
        );
    }

    /// A fresh constant `dtype[rows]` (a scatter's destination).
    fn fresh_const(&mut self, dtype: DType, rows: usize) -> Port {
        let (t, v) = self.gen_tensor(dtype, &[rows]);
        let node = self.push(
            NodeKind::Const { value: t },
            vec![TensorTy::new(dtype, vec![rows])],
            vec![v],
            String::new(),
        );
        Port { node, port: 0 }
    }

    fn pick_fold(&mut self) -> Fold {
        use BuiltinMonoid as B;
        self.ch
            .pick_w(&[
                (24, Fold::Builtin(B::Sum)),
                (9, Fold::Builtin(B::Max)),
                (7, Fold::Builtin(B::Min)),
                (7, Fold::Builtin(B::Prod)),
                (4, Fold::Builtin(B::Any)),
                (4, Fold::Builtin(B::All)),
                (8, Fold::User(Lib::Stats)),
                (5, Fold::User(Lib::ArgMax)),
                (4, Fold::User(Lib::ArgMaxIndex)),
                (4, Fold::User(Lib::Affine)),
                (3, Fold::User(Lib::AffineAt1)),
                (6, Fold::User(Lib::Hash)),
                (4, Fold::User(Lib::LastNonZero)),
                (5, Fold::User(Lib::MeanI)),
                (4, Fold::User(Lib::MinMax)),
                (5, Fold::User(Lib::ModSum(0))),
            ])
            .with_param(|| 2 + self.ch.below(40) as i64)
    }

    fn monoid(&mut self, lib: Lib) -> MonoidRef {
        if let Some(&id) = self.monoids.get(&lib) {
            return MonoidRef::User(id);
        }
        let id = self.g.add_monoid(lib_monoid(lib));
        self.monoids.insert(lib, id);
        MonoidRef::User(id)
    }

    /// The argument of a float sum (or of `Stats`, which also sums squares: `square`) over
    /// `n` terms, made exact when the mode asks for it. Returns the argument, its facts and
    /// the scale of the sum.
    fn float_sum_arg(
        &mut self,
        e: ScalarExpr,
        v: Val,
        dt: DType,
        n: usize,
        square: bool,
    ) -> (ScalarExpr, Val, f64) {
        let nf = n as f64;
        // Integer partial sums below this are exact in any grouping.
        let limit_exact = if dt == DType::F32 { 4.0e6 } else { 1.0e15 };
        let term = if square {
            bmul(v.bound, v.bound)
        } else {
            v.bound
        };
        if v.scale == 0.0 && v.integral && v.bound < BIG && bmul(term, nf) <= limit_exact {
            return (e, v, 0.0);
        }
        let limit = if square { 16.0 } else { 64.0 };
        if !self.float_mode || v.integral {
            let e = ScalarExpr::call(MathFn::Floor, clamp(e, dt, limit));
            return (e, Val::exact(limit, true), 0.0);
        }
        let (e, b) = if v.bound > limit {
            (clamp(e, dt, limit), limit)
        } else {
            (e, v.bound)
        };
        (e, Val::exact(b, false), bmul(nf, b))
    }

    fn gen_reduce(&mut self, space: Vec<usize>, red: Vec<usize>, reads: Vec<Read>, fold: Fold) {
        use BuiltinMonoid as B;
        let n = volume(&red);
        let bx: Vec<usize> = space.iter().chain(&red).copied().collect();
        let infos = self.read_infos(&reads);
        let cx = Cx {
            reads: &infos,
            vars: &bx,
            taint: false,
        };
        let depth = 1 + self.ch.below(3) as u32;
        let maybe_empty = |b: f64| if n == 0 { BIG } else { b };
        let (monoid, args, ports): (MonoidRef, Vec<ScalarExpr>, Vec<(DType, Val)>) = match fold {
            Fold::Builtin(m @ (B::Sum | B::Prod | B::Max | B::Min)) => {
                let dt = self.ch.pick_w(&[
                    (60, DType::F32),
                    (34, DType::I64),
                    (3, DType::F64),
                    (3, DType::I32),
                ]);
                let cx = Cx {
                    taint: self.float_mode && matches!(m, B::Max | B::Min),
                    ..cx
                };
                let (e, v) = self.expr(cx, dt, depth);
                let (e, out) = match (m, dt.is_float()) {
                    (B::Sum, true) => {
                        let (e, v, scale) = self.float_sum_arg(e, v, dt, n, false);
                        (
                            e,
                            Val {
                                bound: bmul(v.bound, n as f64),
                                integral: v.integral,
                                scale,
                            },
                        )
                    }
                    (B::Prod, true) => {
                        // Values in {-1, -1/2, 0, 1/2, 1}: products are exact in any grouping.
                        let c = |x| c_f(dt, x);
                        let e = ScalarExpr::select(
                            bin(BinOp::Gt, e.clone(), c(1.0)),
                            c(0.5),
                            ScalarExpr::select(
                                bin(BinOp::Lt, e.clone(), c(-1.0)),
                                c(-1.0),
                                ScalarExpr::select(
                                    bin(BinOp::Eq, e.clone(), c(0.0)),
                                    c(0.0),
                                    ScalarExpr::select(bin(BinOp::Lt, e, c(0.0)), c(-0.5), c(1.0)),
                                ),
                            ),
                        );
                        (e, Val::exact(1.0, false))
                    }
                    (B::Max | B::Min, _) => (
                        e,
                        Val {
                            bound: maybe_empty(v.bound),
                            ..v
                        },
                    ),
                    // Integer sums and products wrap: exact in any grouping.
                    _ => (e, Val::exact(BIG, true)),
                };
                (MonoidRef::Builtin(m), vec![e], vec![(dt, out)])
            }
            Fold::Builtin(m) => {
                let (e, _) = self.expr(cx, DType::Bool, depth);
                (
                    MonoidRef::Builtin(m),
                    vec![e],
                    vec![(DType::Bool, Val::boolean())],
                )
            }
            Fold::User(lib) => {
                let m = self.monoid(lib);
                match lib {
                    Lib::Stats => {
                        let (e, v) = self.expr(cx, DType::F32, depth);
                        let (e, v, scale) = self.float_sum_arg(e, v, DType::F32, n, true);
                        let b = v.bound;
                        let (mean_s, var_s) = if scale > 0.0 {
                            (b, 4.0 * b * b)
                        } else {
                            (0.0, 0.0)
                        };
                        (
                            m,
                            vec![e],
                            vec![
                                (
                                    DType::F32,
                                    Val {
                                        bound: b,
                                        integral: false,
                                        scale: mean_s,
                                    },
                                ),
                                (
                                    DType::F32,
                                    Val {
                                        bound: 2.0 * b * b,
                                        integral: false,
                                        scale: var_s,
                                    },
                                ),
                            ],
                        )
                    }
                    Lib::ArgMax | Lib::ArgMaxIndex => {
                        let (e, v) = self.expr(cx, DType::F32, depth);
                        let idx = self.reduced_index(&space, &red);
                        let mut ports = Vec::new();
                        if lib == Lib::ArgMax {
                            ports.push((
                                DType::F32,
                                Val {
                                    bound: maybe_empty(v.bound),
                                    ..v
                                },
                            ));
                        }
                        ports.push((DType::I64, Val::exact(BIG, true)));
                        (m, vec![e, idx], ports)
                    }
                    Lib::Affine | Lib::AffineAt1 => {
                        let (a, _) = self.expr(cx, DType::I64, depth);
                        let (b, _) = self.expr(cx, DType::I64, depth);
                        let ports = if lib == Lib::Affine { 2 } else { 1 };
                        (
                            m,
                            vec![ScalarExpr::Tuple(vec![a, b])],
                            vec![(DType::I64, Val::exact(BIG, true)); ports],
                        )
                    }
                    Lib::Hash | Lib::LastNonZero => {
                        let (e, v) = self.expr(cx, DType::I64, depth);
                        let out = if lib == Lib::Hash {
                            Val::exact(BIG, true)
                        } else {
                            v
                        };
                        (m, vec![e], vec![(DType::I64, out)])
                    }
                    Lib::MeanI => {
                        let (e, _) = self.expr(cx, DType::I64, depth);
                        (
                            m,
                            vec![e],
                            vec![
                                (DType::I64, Val::exact(BIG, true)),
                                (DType::F32, Val::exact(BIG, false)),
                            ],
                        )
                    }
                    Lib::ModSum(modulus) => {
                        let (e, _) = self.expr(cx, DType::I64, depth);
                        (
                            m,
                            vec![e],
                            vec![(DType::I64, Val::exact(modulus as f64, true))],
                        )
                    }
                    Lib::MinMax => {
                        let cx = Cx {
                            taint: self.float_mode,
                            ..cx
                        };
                        let (e, v) = self.expr(cx, DType::F32, depth);
                        let out = Val {
                            bound: maybe_empty(v.bound),
                            ..v
                        };
                        (m, vec![e], vec![(DType::F32, out), (DType::F32, out)])
                    }
                }
            }
        };
        let outputs = ports
            .iter()
            .map(|(dt, _)| TensorTy::new(*dt, space.clone()))
            .collect();
        let vals = ports.iter().map(|(_, v)| *v).collect();
        let label = self.label("r");
        self.push(
            NodeKind::Reduce {
                space,
                red,
                monoid,
                reads,
                args,
            },
            outputs,
            vals,
            label,
        );
    }

    /// An `i64` naming the position in the reduced box: usually the row-major linear index
    /// of the reduced variables (unique, so ties are broken by position), sometimes a single
    /// variable or a constant (so ties between equal indices occur too).
    fn reduced_index(&mut self, space: &[usize], red: &[usize]) -> ScalarExpr {
        let base = space.len() as u32;
        if red.is_empty() {
            return c_i64(0);
        }
        match self.ch.weighted(&[70, 20, 10]) {
            0 => {
                let mut e = ScalarExpr::Index(base);
                for (k, &ext) in red.iter().enumerate().skip(1) {
                    e = bin(
                        BinOp::Add,
                        bin(BinOp::Mul, e, c_i64(ext as i64)),
                        ScalarExpr::Index(base + k as u32),
                    );
                }
                e
            }
            1 => ScalarExpr::Index(base + self.ch.below(red.len()) as u32),
            _ => c_i64(self.ch.below(3) as i64),
        }
    }

    /// The outputs: the newest node, most other nodes nobody reads (so little of the graph
    /// is dead, but some is), and sometimes a port that is also read (which must stay
    /// materialized) or an input.
    fn gen_outputs(&mut self) {
        let mut outs = Vec::new();
        for id in (0..self.g.nodes.len()).rev().map(NodeId::new) {
            let node = &self.g.nodes[id];
            let sink = self.readers[id.index()] == 0
                && !matches!(node.kind, NodeKind::Input { .. } | NodeKind::Const { .. });
            let n_ports = node.outputs.len();
            if outs.len() < 4 && sink && (outs.is_empty() || !self.ch.chance(15)) {
                outs.push(Port {
                    node: id,
                    port: self.ch.below(n_ports) as u32,
                });
            }
        }
        if outs.is_empty() || self.ch.chance(30) {
            let q = self.any_port();
            outs.push(q);
        }
        if outs.len() > 1 && self.ch.chance(20) {
            outs.swap(0, 1);
        }
        self.g.outputs = outs;
    }

    // -- expressions -------------------------------------------------------------------------

    /// An expression of type `dt` and its facts.
    fn expr(&mut self, cx: Cx<'_>, dt: DType, depth: u32) -> (ScalarExpr, Val) {
        match dt {
            DType::F32 | DType::F64 => self.float_expr(cx, dt, depth),
            DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 => {
                self.int_expr(cx, dt, depth)
            }
            DType::Bool => self.bool_expr(cx, depth),
        }
    }

    /// A read of type `dt` usable in `cx`, if there is one.
    fn read_leaf(&mut self, cx: Cx<'_>, dt: DType) -> Option<(ScalarExpr, Val)> {
        let ok: Vec<usize> = (0..cx.reads.len())
            .filter(|&k| cx.reads[k].dtype == dt && (cx.taint || cx.reads[k].val.scale == 0.0))
            .collect();
        if ok.is_empty() {
            return None;
        }
        let k = ok[self.ch.below(ok.len())];
        Some((ScalarExpr::Read(k as u32), cx.reads[k].val))
    }

    fn index_leaf(&mut self, cx: Cx<'_>) -> Option<(ScalarExpr, Val)> {
        if cx.vars.is_empty() {
            return None;
        }
        let v = self.ch.below(cx.vars.len());
        Some((
            ScalarExpr::Index(v as u32),
            Val::exact(cx.vars[v].saturating_sub(1) as f64, true),
        ))
    }

    fn float_leaf(&mut self, cx: Cx<'_>, dt: DType) -> (ScalarExpr, Val) {
        match self.ch.weighted(&[55, 12, 12, 10, 6, 5]) {
            0 => self.read_leaf(cx, dt),
            1 => self
                .read_leaf(cx, DType::I64)
                .map(|(e, v)| (ScalarExpr::cast(e, dt), v)),
            2 => self
                .index_leaf(cx)
                .map(|(e, v)| (ScalarExpr::cast(e, dt), v)),
            4 => {
                let other = if dt == DType::F32 {
                    DType::F64
                } else {
                    DType::F32
                };
                self.read_leaf(cx, other)
                    .map(|(e, v)| (ScalarExpr::cast(e, dt), v))
            }
            5 => self
                .read_leaf(cx, DType::Bool)
                .map(|(e, _)| (ScalarExpr::cast(e, dt), Val::exact(1.0, true))),
            _ => None,
        }
        .unwrap_or_else(|| {
            // Any float read, else a constant.
            if let Some(x) = self.read_leaf(cx, dt) {
                return x;
            }
            let s = self.small_scalar(dt);
            (ScalarExpr::Const(s), Val::of(s))
        })
    }

    fn float_expr(&mut self, cx: Cx<'_>, dt: DType, depth: u32) -> (ScalarExpr, Val) {
        if depth == 0 {
            return self.float_leaf(cx, dt);
        }
        let d = depth - 1;
        let op = self
            .ch
            .weighted(&[14, 10, 10, 4, 4, 5, 5, 8, 12, 5, 3, 4, 6, 2, 3, 10]);
        match op {
            0..=2 | 5 | 6 => {
                let (a, va) = self.float_expr(cx, dt, d);
                let (b, vb) = self.float_expr(cx, dt, d);
                // min and max are 1-Lipschitz: the scale is the larger one.
                let (bop, v) = match op {
                    0 => (BinOp::Add, va.add(vb)),
                    1 => (BinOp::Sub, va.add(vb)),
                    2 => (BinOp::Mul, va.mul(vb)),
                    5 => (BinOp::Min, va.join(vb)),
                    _ => (BinOp::Max, va.join(vb)),
                };
                (bin(bop, a, b), v)
            }
            3 => {
                let (a, va) = self.float_expr(cx, dt, d);
                (ScalarExpr::unary(UnOp::Neg, a), va)
            }
            4 => {
                let (a, va) = self.float_expr(cx, dt, d);
                (ScalarExpr::call(MathFn::Abs, a), va)
            }
            7 => {
                let (c, _) = self.bool_expr(cx.strict(), d);
                let (a, va) = self.float_expr(cx, dt, d);
                let (b, vb) = self.float_expr(cx, dt, d);
                (ScalarExpr::select(c, a, b), va.join(vb))
            }
            8 => {
                // Continuous math on safe domains.
                let (a, va) = self.float_expr(cx, dt, d);
                let s = va.scale;
                match self.ch.below(5) {
                    0 => (
                        ScalarExpr::call(MathFn::Sin, a),
                        Val {
                            bound: 1.0,
                            integral: false,
                            scale: s,
                        },
                    ),
                    1 => (
                        ScalarExpr::call(MathFn::Cos, a),
                        Val {
                            bound: 1.0,
                            integral: false,
                            scale: s,
                        },
                    ),
                    2 => (
                        ScalarExpr::call(MathFn::Tanh, a),
                        Val {
                            bound: 1.0,
                            integral: false,
                            scale: s,
                        },
                    ),
                    3 => (
                        ScalarExpr::call(MathFn::Exp, ScalarExpr::call(MathFn::Tanh, a)),
                        Val {
                            bound: 2.72,
                            integral: false,
                            scale: 2.72 * s,
                        },
                    ),
                    _ => (
                        ScalarExpr::call(
                            MathFn::Log,
                            bin(BinOp::Add, ScalarExpr::call(MathFn::Abs, a), c_f(dt, 1.0)),
                        ),
                        Val {
                            bound: (va.bound + 1.0).ln().max(1.0),
                            integral: false,
                            scale: s,
                        },
                    ),
                }
            }
            9 => {
                // Discontinuous: floor, ceil, sqrt(|x|).
                let (a, va) = self.float_expr(cx.strict(), dt, d);
                match self.ch.below(3) {
                    0 => (
                        ScalarExpr::call(MathFn::Floor, a),
                        Val::exact(va.bound + 1.0, true),
                    ),
                    1 => (
                        ScalarExpr::call(MathFn::Ceil, a),
                        Val::exact(va.bound + 1.0, true),
                    ),
                    _ => (
                        ScalarExpr::call(MathFn::Sqrt, ScalarExpr::call(MathFn::Abs, a)),
                        Val::exact(va.bound.sqrt(), false),
                    ),
                }
            }
            10 => {
                // a / (|b| + 1).
                let (a, va) = self.float_expr(cx, dt, d);
                let (b, vb) = self.float_expr(cx, dt, d);
                let den = bin(BinOp::Add, ScalarExpr::call(MathFn::Abs, b), c_f(dt, 1.0));
                (
                    bin(BinOp::Div, a, den),
                    Val {
                        bound: va.bound,
                        integral: false,
                        scale: cap(va.scale + bmul(va.bound, vb.scale)),
                    },
                )
            }
            11 => {
                // a / 2, a * 0.5.
                let (a, va) = self.float_expr(cx, dt, d);
                let half = Val {
                    bound: va.bound / 2.0,
                    integral: false,
                    scale: va.scale / 2.0,
                };
                if self.ch.chance(50) {
                    (bin(BinOp::Mul, a, c_f(dt, 0.5)), half)
                } else {
                    (bin(BinOp::Div, a, c_f(dt, 2.0)), half)
                }
            }
            12 => {
                // From an integer expression.
                let from = self.ch.pick(&[DType::I64, DType::I64, DType::I32]);
                let (a, va) = self.int_expr(cx.strict(), from, d);
                (ScalarExpr::cast(a, dt), Val::exact(va.bound, true))
            }
            13 => {
                // Remainder by a positive constant (fmod).
                let (a, va) = self.float_expr(cx.strict(), dt, d);
                let c = self.ch.pick(&[2.0, 3.0, 5.0, 1.5]);
                (
                    bin(BinOp::Rem, a, c_f(dt, c)),
                    Val::exact(va.bound.min(c), va.integral && c.fract() == 0.0),
                )
            }
            14 => {
                // pow(a, 2).
                let (a, va) = self.float_expr(cx, dt, d);
                let sq = va.mul(va);
                (
                    bin(BinOp::Pow, a, c_f(dt, 2.0)),
                    Val {
                        integral: false,
                        ..sq
                    },
                )
            }
            _ => self.float_leaf(cx, dt),
        }
    }

    fn int_leaf(&mut self, cx: Cx<'_>, dt: DType) -> (ScalarExpr, Val) {
        match self.ch.weighted(&[45, 25, 10, 10, 5, 5]) {
            0 => self.read_leaf(cx, dt),
            1 => self.index_leaf(cx).map(|(e, v)| {
                if dt == DType::I64 {
                    (e, v)
                } else {
                    (ScalarExpr::cast(e, dt), v)
                }
            }),
            3 => self
                .read_leaf(cx.strict(), DType::F32)
                .map(|(e, v)| (ScalarExpr::cast(e, dt), Val::exact(v.bound, true))),
            4 => self
                .read_leaf(cx, DType::Bool)
                .map(|(e, _)| (ScalarExpr::cast(e, dt), Val::exact(1.0, true))),
            5 => {
                let x = self.ch.pick(&[i64::MAX, i64::MIN, 1 << 31, -7]);
                let s = Scalar::I64(x).cast(dt);
                Some((ScalarExpr::Const(s), Val::exact(BIG, true)))
            }
            _ => None,
        }
        .unwrap_or_else(|| {
            if let Some(x) = self.read_leaf(cx, dt) {
                return x;
            }
            let s = self.small_scalar(dt);
            (ScalarExpr::Const(s), Val::of(s))
        })
    }

    fn int_expr(&mut self, cx: Cx<'_>, dt: DType, depth: u32) -> (ScalarExpr, Val) {
        if depth == 0 {
            return self.int_leaf(cx, dt);
        }
        let d = depth - 1;
        let one = || ScalarExpr::Const(Scalar::I64(1).cast(dt));
        let op = self
            .ch
            .weighted(&[14, 10, 10, 4, 4, 5, 5, 5, 4, 4, 4, 8, 6, 4, 12, 4, 2]);
        let ints = |v: Val| Val::exact(v.bound, true);
        match op {
            0..=2 | 5 | 6 => {
                let (a, va) = self.int_expr(cx, dt, d);
                let (b, vb) = self.int_expr(cx, dt, d);
                let (bop, v) = match op {
                    0 => (BinOp::Add, va.add(vb)),
                    1 => (BinOp::Sub, va.add(vb)),
                    2 => (BinOp::Mul, va.mul(vb)),
                    5 => (BinOp::Min, va.join(vb)),
                    _ => (BinOp::Max, va.join(vb)),
                };
                (bin(bop, a, b), ints(v))
            }
            3 if dt.is_unsigned() => {
                // Unsigned values have no `neg`: `0 - a` wraps instead.
                let (a, _) = self.int_expr(cx, dt, d);
                let zero = ScalarExpr::Const(Scalar::I64(0).cast(dt));
                (bin(BinOp::Sub, zero, a), Val::exact(BIG, true))
            }
            3 => {
                let (a, va) = self.int_expr(cx, dt, d);
                (ScalarExpr::unary(UnOp::Neg, a), va)
            }
            4 => {
                let (a, va) = self.int_expr(cx, dt, d);
                (ScalarExpr::call(MathFn::Abs, a), va)
            }
            7 | 8 => {
                // a / max(|b|, 1) and a % max(|b|, 1): never divides by 0 or by -1.
                let (a, va) = self.int_expr(cx, dt, d);
                let (b, _) = self.int_expr(cx, dt, d);
                let den = bin(BinOp::Max, ScalarExpr::call(MathFn::Abs, b), one());
                let bop = if op == 7 { BinOp::Div } else { BinOp::Rem };
                (bin(bop, a, den), va)
            }
            9 => {
                let (a, va) = self.int_expr(cx, dt, d);
                let k = self.ch.below(4) as i64;
                (
                    bin(BinOp::Shl, a, ScalarExpr::Const(Scalar::I64(k).cast(dt))),
                    ints(Val::exact(va.bound * (1 << k) as f64, true)),
                )
            }
            10 => {
                let (a, va) = self.int_expr(cx, dt, d);
                let (b, _) = self.int_expr(cx, dt, d);
                (bin(BinOp::Shr, a, b), va)
            }
            11 => {
                let (c, _) = self.bool_expr(cx, d);
                let (a, va) = self.int_expr(cx, dt, d);
                let (b, vb) = self.int_expr(cx, dt, d);
                (ScalarExpr::select(c, a, b), va.join(vb))
            }
            12 => {
                // From a float (truncating, saturating, NaN to 0).
                let (a, va) = self.float_expr(cx.strict(), DType::F32, d);
                (ScalarExpr::cast(a, dt), ints(va))
            }
            13 => {
                // From another integer type: the other signed one, or an unsigned one whose
                // wrapping arithmetic, unsigned division, `>>` and `min`/`max` the graph then
                // computes (its values, cast back, may be anything).
                let other = match dt {
                    DType::I64 => DType::I32,
                    DType::I32 => DType::I64,
                    _ => DType::I64,
                };
                let other =
                    self.ch
                        .pick_w(&[(6, other), (1, DType::U8), (1, DType::U32), (1, DType::U64)]);
                let (a, va) = self.int_expr(cx, other, d);
                let v = if other.is_unsigned() || dt.is_unsigned() {
                    Val::exact(BIG, true)
                } else {
                    ints(va)
                };
                (ScalarExpr::cast(a, dt), v)
            }
            15 => {
                // Bitwise and, or, xor: within twice the larger operand's magnitude.
                let (a, va) = self.int_expr(cx, dt, d);
                let (b, vb) = self.int_expr(cx, dt, d);
                let bop = [BinOp::BitAnd, BinOp::BitOr, BinOp::BitXor][self.ch.below(3)];
                let bound = 2.0 * va.bound.max(vb.bound) + 1.0;
                (bin(bop, a, b), ints(Val::exact(bound, true)))
            }
            16 => {
                // The complement: `!a == -a - 1`.
                let (a, va) = self.int_expr(cx, dt, d);
                (
                    ScalarExpr::unary(UnOp::Not, a),
                    ints(Val::exact(va.bound + 1.0, true)),
                )
            }
            _ => self.int_leaf(cx, dt),
        }
    }

    fn bool_expr(&mut self, cx: Cx<'_>, depth: u32) -> (ScalarExpr, Val) {
        // Nothing boolean depends on a regrouped float: comparisons are discontinuous.
        let cx = cx.strict();
        let leaf_or = |b: &mut Self, cx: Cx<'_>| {
            if let Some(x) = b.read_leaf(cx, DType::Bool) {
                return x;
            }
            let s = Scalar::Bool(b.ch.chance(50));
            (ScalarExpr::Const(s), Val::boolean())
        };
        if depth == 0 && self.ch.chance(50) {
            return leaf_or(self, cx);
        }
        let d = depth.saturating_sub(1);
        match self.ch.weighted(&[40, 25, 8, 8, 6, 6, 7]) {
            0 | 1 => {
                let dt = if self.ch.chance(45) {
                    DType::I64
                } else {
                    DType::F32
                };
                let (a, _) = self.expr(cx, dt, d);
                let (b, _) = self.expr(cx, dt, d);
                let op = self.ch.pick(&[
                    BinOp::Lt,
                    BinOp::Eq,
                    BinOp::Le,
                    BinOp::Gt,
                    BinOp::Ge,
                    BinOp::Ne,
                ]);
                (bin(op, a, b), Val::boolean())
            }
            2 | 3 if depth > 0 => {
                let (a, _) = self.bool_expr(cx, d);
                let (b, _) = self.bool_expr(cx, d);
                let op = if self.ch.chance(50) {
                    BinOp::Or
                } else {
                    BinOp::And
                };
                (bin(op, a, b), Val::boolean())
            }
            4 if depth > 0 => {
                let (a, _) = self.bool_expr(cx, d);
                (ScalarExpr::unary(UnOp::Not, a), Val::boolean())
            }
            5 => {
                // A number as a bool (non-zero; NaN is true).
                let dt = self.ch.pick(&[DType::I64, DType::F32]);
                let (a, _) = self.expr(cx, dt, d);
                (ScalarExpr::cast(a, DType::Bool), Val::boolean())
            }
            6 => {
                // NaN test.
                let (a, _) = self.float_expr(cx, DType::F32, d);
                (bin(BinOp::Ne, a.clone(), a), Val::boolean())
            }
            _ => leaf_or(self, cx),
        }
    }
}

/// The ports a node kind reads.
fn reads_of(kind: &NodeKind) -> Vec<Port> {
    match kind {
        NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => {
            reads.iter().map(Read::src).collect()
        }
        NodeKind::Concat { parts, .. } => parts.clone(),
        NodeKind::Slice { src, .. } => vec![*src],
        NodeKind::Scan { reads, .. } | NodeKind::ReduceByIndex { reads, .. } => {
            reads.iter().map(Read::src).collect()
        }
        NodeKind::Scatter { dest, reads, .. } => std::iter::once(*dest)
            .chain(reads.iter().map(Read::src))
            .collect(),
        _ => Vec::new(),
    }
}

fn identity(rank: usize) -> Vec<Affine> {
    (0..rank).map(|j| Affine::var(j as u32)).collect()
}

/// `k - i_v`.
fn reversed(v: u32, k: i64) -> Affine {
    Affine {
        konst: k,
        coeffs: vec![(v, -1)],
    }
}

/// Shrinks the largest extents of `shape` until its volume is at most `max`.
fn fit(shape: &mut [usize], max: usize) {
    while volume(shape) > max {
        let (k, _) = shape
            .iter()
            .enumerate()
            .max_by_key(|(_, &e)| e)
            .expect("a shape over the limit has a dimension");
        shape[k] = (shape[k] / 2).max(1);
    }
}
