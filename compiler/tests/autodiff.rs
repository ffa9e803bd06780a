//! Property tests of reverse-mode differentiation (`flowc::mir::ad`) on generated graphs.
//!
//! **Graphs.** Two `f64` inputs, `x0: [A, B]` and `x1: [B]` (`A`, `B` in 2..=4), then 2–6
//! generated nodes, each reading recent ones: elementwise maps with every differentiable
//! scalar built-in (`tanh sin cos exp log sqrt abs pow atan asin acos atan2`, `max`/`min` against a constant,
//! selects, division, `neg`), binary maps (same shape, or a vector broadcast along the rows),
//! reductions over a row or a column (`sum max min prod`), contractions (plain and
//! transposed), windows (`x[i] * x[i + 1]`, `sum[k < 2](x[i + k])`), reversed, strided,
//! zero-padded and edge-clamped reads, reductions with user monoids that declare `d_combine` (see
//! [`MONOIDS`]: scalar and pair states, wrap, unwrap, not commutative), gathers (`x[c(i)]`
//! from a vector or a matrix at coordinates computed from the index, with repeats, or from
//! data through `floor`; in maps and in reduction bodies), scans along the last axis
//! (`sum prod max min`, inclusive and exclusive; products with exact zeros), histograms
//! with `sum`, `max`, `min`, `prod` and the user monoids (rows of a vector or a matrix,
//! each column on its own), and scatters; the result is a `sum` of `tanh` of the last node, a scalar.
//!
//! **Properties** (each over `FLOW_AD_CASES` cases, 150 by default):
//! - the gradient with respect to both inputs equals central finite differences
//!   `(f(x + h) - f(x - h)) / 2h` with `h = 1e-5`, within `1e-6 · (1 + |ad| + |fd|)`. An
//!   element whose difference quotient with `h / 4` disagrees with the one with `h` by more
//!   than that tolerance sits within `h` of a kink (a `max`, `abs` or `select` boundary) and
//!   is skipped;
//! - the gradient graph verifies, and after the full pass pipeline the JIT (on 1 and 3
//!   threads) gives the interpreter's results bit for bit; so does the pipeline with
//!   `recompute` (checkpointing, as `--memory-limit` runs a plan over budget: every producer
//!   recomputed in its consumers), on both backends, and it shrinks at least a quarter of
//!   the graphs (so the law is exercised).
//!
//! **Reproducing a failure.** The failing graph's MIR text and seed are printed; rerun with
//! `FLOW_AD_SEED=<seed> cargo test -p flowc --test all autodiff::`.

mod prims;

use crate::gen::Rng;
use flow_runtime::{Scalar, Tensor};
use flowc::interp;
use flowc::mir::passes::{optimize_all, PassConfig};
use flowc::mir::{self, Graph, Idx, NodeKind, Port, TensorTy};

/// The suite's choices, on the equivalence generator's SplitMix64.
trait Choose {
    fn below(&mut self, n: usize) -> usize;
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T;
    fn unit(&mut self) -> f64;
}

impl Choose for Rng {
    fn below(&mut self, n: usize) -> usize {
        self.range(0, n as i64 - 1) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// User monoids that declare their derivative (`d_combine`), every graph has them: a
/// log-sum-exp (scalar state, no wrap, identity `-inf`), a `(max, sum)` pair with a wrap and
/// an unwrap, the composition of affine maps `x ↦ a x + b`, which is not commutative (a
/// tree that reordered the fold would get its value, and so its gradient, wrong), and
/// `std::reduce`'s `LogSumExp` in `f64` (state `(m, s)`, whose `combine` switches branch at
/// `a.m == b.m`; its inputs are clamped below so that ties occur), and the opposite of
/// `Affine` (operands swapped: the derivative by the left operand depends on the order of
/// the right one, so a histogram's suffix folded out of order shows).
const MONOIDS: &str = r#"monoid @0 "LogSumExp" {
    state (f64)
    zero (-inff64)
    combine = select(eq(max(p0, p1), -inff64), max(p0, p1), add(max(p0, p1), log(add(exp(sub(p0, max(p0, p1))), exp(sub(p1, max(p0, p1)))))))
    d_combine = tuple(mul(p2, exp(sub(p0, select(eq(max(p0, p1), -inff64), max(p0, p1), add(max(p0, p1), log(add(exp(sub(p0, max(p0, p1))), exp(sub(p1, max(p0, p1)))))))))), mul(p2, exp(sub(p1, select(eq(max(p0, p1), -inff64), max(p0, p1), add(max(p0, p1), log(add(exp(sub(p0, max(p0, p1))), exp(sub(p1, max(p0, p1)))))))))))
}
monoid @1 "MaxSum" {
    state (m: f64, s: f64)
    zero (-inff64, 0.0f64)
    wrap (f64) = tuple(p0, mul(p0, p0))
    combine = tuple(max(p0.0, p1.0), add(p0.1, p1.1))
    unwrap (f64) = add(p0.0, mul(0.25f64, p0.1))
    commutative
    d_combine = tuple(tuple(select(gt(p0.0, p1.0), p2.0, 0.0f64), p2.1), tuple(select(gt(p0.0, p1.0), 0.0f64, p2.0), p2.1))
}
monoid @2 "Affine" {
    state (a: f64, b: f64)
    zero (1.0f64, 0.0f64)
    wrap (f64, f64) = tuple(p0, p1)
    combine = tuple(mul(p0.0, p1.0), add(mul(p1.0, p0.1), p1.1))
    unwrap (f64) = add(p0.0, p0.1)
    d_combine = tuple(tuple(mul(p2.0, p1.0), mul(p2.1, p1.0)), tuple(add(mul(p2.0, p0.0), mul(p2.1, p0.1)), p2.1))
}
monoid @3 "LogSumExpPair" {
    state (m: f64, s: f64)
    zero (-inff64, 0.0f64)
    wrap (f64) = tuple(p0, 1.0f64)
    combine = select(eq(p0.1, 0.0f64), p1, select(eq(p1.1, 0.0f64), p0, select(eq(p0.0, p1.0), tuple(p0.0, add(p0.1, p1.1)), select(gt(p0.0, p1.0), tuple(p0.0, add(p0.1, mul(p1.1, exp(sub(p1.0, p0.0))))), tuple(p1.0, add(p1.1, mul(p0.1, exp(sub(p0.0, p1.0)))))))))
    unwrap (f64) = add(p0.0, log(p0.1))
    commutative
    d_combine = select(eq(p0.1, 0.0f64), tuple(tuple(0.0f64, 0.0f64), p2), select(eq(p1.1, 0.0f64), tuple(p2, tuple(0.0f64, 0.0f64)), select(ge(p0.0, p1.0), tuple(tuple(sub(p2.0, mul(mul(p2.1, p1.1), select(eq(p0.0, p1.0), 1.0f64, exp(sub(p1.0, p0.0))))), p2.1), tuple(mul(mul(p2.1, p1.1), select(eq(p0.0, p1.0), 1.0f64, exp(sub(p1.0, p0.0)))), mul(p2.1, select(eq(p0.0, p1.0), 1.0f64, exp(sub(p1.0, p0.0)))))), tuple(tuple(mul(mul(p2.1, p0.1), exp(sub(p0.0, p1.0))), mul(p2.1, exp(sub(p0.0, p1.0)))), tuple(sub(p2.0, mul(mul(p2.1, p0.1), exp(sub(p0.0, p1.0)))), p2.1)))))
}
monoid @4 "AffineOpposite" {
    state (a: f64, b: f64)
    zero (1.0f64, 0.0f64)
    wrap (f64, f64) = tuple(p0, p1)
    combine = tuple(mul(p0.0, p1.0), add(mul(p0.0, p1.1), p0.1))
    unwrap (f64) = add(p0.0, p0.1)
    d_combine = tuple(tuple(add(mul(p2.0, p1.0), mul(p2.1, p1.1)), p2.1), tuple(mul(p2.0, p0.0), mul(p2.1, p0.0)))
}
"#;

/// Elementwise bodies of one read `r0`, smooth or with kinks of measure zero.
const UNARY: &[&str] = &[
    "tanh(r0)",
    "sin(r0)",
    "cos(r0)",
    "exp(tanh(r0))",
    "sqrt(add(1.0f64, mul(r0, r0)))",
    "log(add(1.5f64, sin(r0)))",
    "abs(r0)",
    "max(r0, 0.1f64)",
    "min(r0, -0.2f64)",
    "mul(r0, r0)",
    "neg(r0)",
    "div(r0, add(2.0f64, mul(r0, r0)))",
    "select(gt(r0, 0.3f64), mul(r0, 2.0f64), sin(r0))",
    "pow(add(1.5f64, tanh(r0)), 1.7f64)",
    "pow(1.3f64, tanh(r0))",
    "add(r0, cast(floor(r0), f64))",
    "atan(r0)",
    "asin(mul(0.5f64, tanh(r0)))",
    "acos(mul(0.5f64, tanh(r0)))",
];

/// Bodies of two reads `r0`, `r1`.
const BINARY: &[&str] = &[
    "add(r0, r1)",
    "sub(r0, r1)",
    "mul(r0, r1)",
    "div(r0, add(2.0f64, mul(r1, r1)))",
    "max(r0, r1)",
    "min(r0, r1)",
    "select(lt(r0, r1), r0, mul(r1, r1))",
    "pow(add(2.0f64, tanh(r0)), tanh(r1))",
    "atan2(r0, add(2.0f64, mul(r1, r1)))",
];

struct Gen {
    rng: Rng,
    lines: Vec<String>,
    /// The `f64` nodes so far, with their shapes.
    nodes: Vec<Vec<usize>>,
}

fn shape_text(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn ident(rank: usize) -> String {
    (0..rank)
        .map(|k| format!("i{k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Gen {
    fn add(&mut self, kind: String, shape: Vec<usize>, body: &str) {
        let id = self.nodes.len();
        self.lines.push(format!(
            "%{id} = {kind} : f64{} {{ {body} }}",
            shape_text(&shape)
        ));
        self.nodes.push(shape);
    }

    /// A random node of exactly `shape`, if there is one.
    fn node_of_shape(&mut self, shape: &[usize]) -> Option<usize> {
        let of: Vec<usize> = (0..self.nodes.len())
            .filter(|&k| self.nodes[k] == shape)
            .collect();
        (!of.is_empty()).then(|| *self.rng.pick(&of))
    }

    /// A recent node (the last one most often), optionally of a given rank.
    fn recent(&mut self, rank: Option<usize>) -> Option<usize> {
        let n = self.nodes.len();
        let ok: Vec<usize> = (0..n)
            .rev()
            .filter(|&k| rank.is_none_or(|r| self.nodes[k].len() == r))
            .take(3)
            .collect();
        if ok.is_empty() {
            return None;
        }
        Some(ok[self.rng.below(ok.len()).min(self.rng.below(ok.len()))])
    }

    fn step(&mut self) {
        match self.rng.below(15) {
            14 => self.histogram_monoid(),
            10 => self.gather(),
            11 => self.scan(),
            12 => self.histogram(),
            13 => self.scan_monoid(),
            0 | 1 => {
                let p = self.recent(None).expect("inputs exist");
                let s = self.nodes[p].clone();
                let body = self.rng.pick(UNARY).to_string();
                let kind = format!("map {} reads(%{p}.0[{}])", shape_text(&s), ident(s.len()));
                self.add(kind, s, &body);
            }
            2 => {
                let p = self.recent(None).expect("inputs exist");
                let s = self.nodes[p].clone();
                let body = self.rng.pick(BINARY).to_string();
                let Some(q) = self.node_of_shape(&s) else {
                    return;
                };
                let kind = format!(
                    "map {} reads(%{p}.0[{}], %{q}.0[{}])",
                    shape_text(&s),
                    ident(s.len()),
                    ident(s.len())
                );
                self.add(kind, s, &body);
            }
            3 => {
                // A row vector broadcast along the rows of a matrix.
                let Some(p) = self.recent(Some(2)) else {
                    return;
                };
                let s = self.nodes[p].clone();
                let Some(q) = self.node_of_shape(&[s[1]]) else {
                    return;
                };
                let body = self.rng.pick(BINARY).to_string();
                let kind = format!("map {} reads(%{p}.0[i0, i1], %{q}.0[i1])", shape_text(&s));
                self.add(kind, s, &body);
            }
            4 => {
                // A reduction over the columns (or, transposed, the rows) of a matrix.
                let Some(p) = self.recent(Some(2)) else {
                    return;
                };
                let s = self.nodes[p].clone();
                let m = *self.rng.pick(&["sum", "max", "min", "prod"]);
                let body = if m == "prod" { "tanh(r0)" } else { "r0" };
                let (kind, out) = if self.rng.below(2) == 0 {
                    (
                        format!(
                            "reduce [{}] over [{}] {m} reads(%{p}.0[i0, i1])",
                            s[0], s[1]
                        ),
                        vec![s[0]],
                    )
                } else {
                    (
                        format!(
                            "reduce [{}] over [{}] {m} reads(%{p}.0[i1, i0])",
                            s[1], s[0]
                        ),
                        vec![s[1]],
                    )
                };
                self.add(kind, out, body);
            }
            5 => {
                // Contractions: a matrix times a vector, or a transposed matrix product.
                let Some(p) = self.recent(Some(2)) else {
                    return;
                };
                let s = self.nodes[p].clone();
                if self.rng.below(2) == 0 {
                    let Some(q) = self.node_of_shape(&[s[1]]) else {
                        return;
                    };
                    let kind = format!(
                        "reduce [{}] over [{}] sum reads(%{p}.0[i0, i1], %{q}.0[i1])",
                        s[0], s[1]
                    );
                    self.add(kind, vec![s[0]], "mul(r0, r1)");
                } else {
                    let Some(q) = self.node_of_shape(&s) else {
                        return;
                    };
                    let kind = format!(
                        "reduce [{}, {}] over [{}] sum reads(%{p}.0[i2, i0], %{q}.0[i2, i1])",
                        s[1], s[1], s[0]
                    );
                    self.add(kind, vec![s[1], s[1]], "mul(r0, r1)");
                }
            }
            6 => {
                // Windows: neighbours, a windowed sum.
                let Some(p) = self.recent(Some(1)) else {
                    return;
                };
                let n = self.nodes[p][0];
                if n < 2 {
                    return;
                }
                if self.rng.below(2) == 0 {
                    let kind = format!("map [{}] reads(%{p}.0[i0], %{p}.0[i0 + 1])", n - 1);
                    self.add(kind, vec![n - 1], "mul(r0, r1)");
                } else {
                    let kind = format!("reduce [{}] over [2] sum reads(%{p}.0[i0 + i1])", n - 1);
                    self.add(kind, vec![n - 1], "sin(r0)");
                }
            }
            7 => {
                // Reversed, strided and zero-padded reads.
                let Some(p) = self.recent(Some(1)) else {
                    return;
                };
                let n = self.nodes[p][0];
                match self.rng.below(5) {
                    0 => {
                        let kind = format!("map [{n}] reads(%{p}.0[{} - i0])", n - 1);
                        self.add(kind, vec![n], "r0");
                    }
                    1 => {
                        let kind = format!("map [{}] reads(%{p}.0[2*i0])", n.div_ceil(2));
                        self.add(kind, vec![n.div_ceil(2)], "r0");
                    }
                    2 => {
                        let kind = format!(
                            "map [{}] reads(%{p}.0[i0 - 1 | pad 0.0f64], %{p}.0[i0 | pad 0.0f64])",
                            n + 1
                        );
                        self.add(kind, vec![n + 1], "mul(r0, add(r0, 1.0f64))");
                    }
                    3 => {
                        // Edge-clamped neighbours, past both ends (`clamp_edge(x)[i - 1]`).
                        let kind = format!(
                            "map [{}] reads(%{p}.0[i0 - 2 | clamp], %{p}.0[i0 + 1 | clamp])",
                            n + 2
                        );
                        self.add(kind, vec![n + 2], "mul(r0, add(r1, 1.0f64))");
                    }
                    _ => {
                        // A clamped window over a matrix built from the vector.
                        let kind = format!(
                            "map [{}, 3] reads(%{p}.0[i0 + i1 - 1 | clamp], %{p}.0[2*i0 - i1 | clamp])",
                            n
                        );
                        self.add(kind, vec![n, 3], "add(sin(r0), mul(0.5f64, r1))");
                    }
                }
            }
            8 => {
                // A reduction with a user monoid that declares its derivative: over a row,
                // a column or the whole of a matrix.
                let Some(p) = self.recent(Some(2)) else {
                    return;
                };
                let s = self.nodes[p].clone();
                let (over, read, out) = match self.rng.below(3) {
                    0 => (format!("[{}] over [{}]", s[0], s[1]), "i0, i1", vec![s[0]]),
                    1 => (format!("[{}] over [{}]", s[1], s[0]), "i1, i0", vec![s[1]]),
                    _ => (format!("[] over [{}, {}]", s[0], s[1]), "i0, i1", vec![]),
                };
                let (m, args) = *self.rng.pick(&[
                    ("@0", "mul(r0, r0)"),
                    ("@1", "sin(r0)"),
                    ("@2", "add(1.0f64, mul(0.5f64, tanh(r0))); mul(0.5f64, r0)"),
                    ("@3", "max(r0, -0.3f64)"),
                ]);
                let kind = format!("reduce {over} {m} reads(%{p}.0[{read}])");
                self.add(kind, out, args);
            }
            _ => {
                // An outer product: a matrix from two vectors.
                let Some(p) = self.recent(Some(1)) else {
                    return;
                };
                let Some(q) = self.recent(Some(1)) else {
                    return;
                };
                let (a, b) = (self.nodes[p][0], self.nodes[q][0]);
                let kind = format!("map [{a}, {b}] reads(%{p}.0[i0], %{q}.0[i1])");
                self.add(kind, vec![a, b], "mul(r0, r1)");
            }
        }
    }
}

/// A generated graph and its inputs.
fn generate(seed: u64) -> (Graph, Vec<Tensor>) {
    let mut rng = Rng(seed);
    let a = 2 + rng.below(3);
    let b = 2 + rng.below(3);
    let inputs = vec![
        tensor(&[a, b], (0..a * b).map(|_| rng.unit() * 1.5).collect()),
        tensor(&[b], (0..b).map(|_| rng.unit() * 1.5).collect()),
    ];
    let mut g = Gen {
        rng,
        lines: vec![
            format!("%0 = input 0 : f64[{a}, {b}]"),
            format!("%1 = input 1 : f64[{b}]"),
        ],
        nodes: vec![vec![a, b], vec![b]],
    };
    let steps = 2 + g.rng.below(5);
    for _ in 0..steps {
        g.step();
    }
    let last = g.nodes.len() - 1;
    let s = g.nodes[last].clone();
    let id = g.nodes.len();
    g.lines.push(format!(
        "%{id} = reduce [] over {} sum reads(%{last}.0[{}]) : f64[] {{ tanh(r0) }}",
        shape_text(&s),
        ident(s.len())
    ));
    g.lines.push(format!("output %{id}.0"));
    let text = format!("{MONOIDS}{}\n", g.lines.join("\n"));
    let graph = mir::parse(&text).unwrap_or_else(|e| panic!("generator bug: {e}\n{text}"));
    (graph, inputs)
}

/// The gradient graph: the graph's output differentiated with respect to both inputs.
fn gradient_graph(g: &Graph) -> Graph {
    let mut d = g.clone();
    let out = d.outputs[0];
    let ct = d.add(mir::Node {
        kind: NodeKind::Const {
            value: Tensor::from_scalar(Scalar::F64(1.0)),
        },
        outputs: vec![TensorTy::new(flow_runtime::DType::F64, Vec::new())],
        label: String::new(),
        span: None,
    });
    let wrt = [0, 1].map(|n| Port {
        node: mir::NodeId::new(n),
        port: 0,
    });
    let grads = mir::ad::vjp(&mut d, &wrt, out, Port { node: ct, port: 0 })
        .unwrap_or_else(|e| panic!("vjp fails: {e}\n{}", mir::print(g)));
    d.outputs = grads;
    d
}

/// A tensor's elements as `f64`s.
fn values(t: &Tensor) -> Vec<f64> {
    (0..t.len()).map(|k| t.get(k).as_f64()).collect()
}

/// An `f64` tensor.
fn tensor(shape: &[usize], v: Vec<f64>) -> Tensor {
    let mut t = Tensor::zeros(flow_runtime::DType::F64, shape).expect("a small tensor");
    for (k, x) in v.into_iter().enumerate() {
        t.set(k, Scalar::F64(x));
    }
    t
}

fn scalar_of(t: &Tensor) -> f64 {
    values(t)[0]
}

fn f_at(g: &Graph, inputs: &[Tensor]) -> f64 {
    scalar_of(&interp::eval(g, inputs).expect("the forward graph evaluates")[0])
}

/// Central differences of the output with respect to element `e` of input `k`.
fn central(g: &Graph, inputs: &[Tensor], k: usize, e: usize, h: f64) -> f64 {
    let bump = |d: f64| {
        let mut xs = inputs.to_vec();
        let mut v = values(&xs[k]);
        v[e] += d;
        xs[k] = tensor(&xs[k].shape.clone(), v);
        xs
    };
    (f_at(g, &bump(h)) - f_at(g, &bump(-h))) / (2.0 * h)
}

fn cases() -> u64 {
    std::env::var("FLOW_AD_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}

fn seeds(test: &str) -> Vec<u64> {
    match std::env::var("FLOW_AD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => {
            let base = test.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            (0..cases()).map(|k| base.wrapping_add(k)).collect()
        }
    }
}

const H: f64 = 1e-5;
const TOL: f64 = 1e-6;

/// Compares the derived gradient of `g` at `inputs` with central differences (see the
/// module's doc) and returns how many elements were compared.
fn check_fd(seed: u64, g: &Graph, inputs: &[Tensor]) -> usize {
    let mut checked = 0;
    let d = gradient_graph(g);
    mir::verify(&d).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", mir::print(&d)));
    let grads =
        interp::eval(&d, inputs).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", mir::print(&d)));
    for (k, x) in inputs.iter().enumerate() {
        assert_eq!(grads[k].shape, x.shape, "seed {seed}: gradient shape");
        let ad = values(&grads[k]);
        for (e, &a) in ad.iter().enumerate() {
            let fd = central(g, inputs, k, e, H);
            let fd4 = central(g, inputs, k, e, H / 4.0);
            let tol = |x: f64, y: f64| TOL * (1.0 + x.abs() + y.abs());
            if (fd - fd4).abs() > tol(fd, fd4) {
                continue; // within h of a kink
            }
            checked += 1;
            assert!(
                (a - fd).abs() <= tol(a, fd),
                "seed {seed}: d/dx{k}[{e}]: derived {a}, central differences {fd}\n{}",
                mir::print(g)
            );
        }
    }
    checked
}

#[test]
fn gradients_match_central_differences() {
    let mut checked = 0usize;
    let mut with_monoid = 0usize;
    let mut with_gather = 0usize;
    let mut with_scan = 0usize;
    let mut with_user_scan = 0usize;
    let mut with_bins = 0usize;
    let mut with_user_bins = 0usize;
    for seed in seeds("fd") {
        let (g, inputs) = generate(seed);
        with_gather += usize::from(g.nodes.iter().any(|n| match &n.kind {
            NodeKind::Map { body, .. } => body.iter().any(|e| e.has_gather()),
            NodeKind::Reduce { args, .. } => args.iter().any(|e| e.has_gather()),
            _ => false,
        }));
        with_scan += usize::from(
            g.nodes
                .iter()
                .any(|n| matches!(n.kind, NodeKind::Scan { .. })),
        );
        with_user_scan += usize::from(g.nodes.iter().any(|n| {
            matches!(
                n.kind,
                NodeKind::Scan {
                    monoid: mir::MonoidRef::User(_),
                    ..
                }
            )
        }));
        with_bins += usize::from(g.nodes.iter().any(|n| match &n.kind {
            NodeKind::ReduceByIndex { monoid, .. } => {
                *monoid != mir::MonoidRef::Builtin(mir::BuiltinMonoid::Sum)
            }
            NodeKind::Scatter { .. } => true,
            _ => false,
        }));
        with_user_bins += usize::from(g.nodes.iter().any(|n| {
            matches!(
                n.kind,
                NodeKind::ReduceByIndex {
                    monoid: mir::MonoidRef::User(_),
                    ..
                }
            )
        }));
        with_monoid += usize::from(g.nodes.iter().any(|n| {
            matches!(
                n.kind,
                NodeKind::Reduce {
                    monoid: mir::MonoidRef::User(_),
                    ..
                }
            )
        }));
        checked += check_fd(seed, &g, &inputs);
    }
    assert!(checked > 500, "only {checked} elements checked");
    let want = seeds("fd").len() / 10;
    assert!(
        with_monoid >= want,
        "only {with_monoid} graphs reduce with a user monoid"
    );
    assert!(with_gather >= want, "only {with_gather} graphs gather");
    assert!(with_scan >= want, "only {with_scan} graphs scan");
    let few = seeds("fd").len() / 20;
    assert!(
        with_user_scan >= few,
        "only {with_user_scan} graphs scan with a user monoid"
    );
    assert!(
        with_user_bins >= few,
        "only {with_user_bins} graphs have a histogram with a user monoid"
    );
    assert!(
        with_bins >= few,
        "only {with_bins} graphs have a max/min/prod histogram or a scatter"
    );
}

#[test]
fn gradient_graphs_run_alike_on_jit_and_interpreter() {
    let mut jits: Vec<flowc::native::Native> = [1, 3]
        .iter()
        .map(|t| flowc::codegen::native(*t).expect("the JIT starts"))
        .collect();
    let mut fewer = 0usize;
    for seed in seeds("jit") {
        let (g, inputs) = generate(seed);
        fewer += usize::from(assert_alike(seed, &g, &inputs, &mut jits));
    }
    let want = seeds("jit").len() / 4;
    assert!(
        fewer >= want,
        "recomputing shrank only {fewer} of the derived graphs"
    );
}

/// Derives `g`'s gradient graph and asserts that, after the full pass pipeline, stored or
/// recomputed (checkpointing), the interpreter and the JIT on 1 and 3 threads (`jits`) give
/// the same bits. True when recomputing left fewer nodes.
fn assert_alike(
    seed: u64,
    g: &Graph,
    inputs: &[Tensor],
    jits: &mut [flowc::native::Native],
) -> bool {
    let derived = gradient_graph(g);
    let mut d = derived.clone();
    let cfg = PassConfig {
        verify: true,
        ..PassConfig::default()
    };
    optimize_all(&mut d, &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    // Checkpointing: the passes as `--memory-limit` runs them over budget, recomputing
    // every producer in its consumers instead of storing it.
    let mut r = derived;
    let recompute = PassConfig {
        recompute: true,
        ..cfg
    };
    optimize_all(&mut r, &recompute).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let fewer = r.nodes.len() < d.nodes.len();
    let want = interp::eval(&d, inputs).expect("the interpreter runs");
    let rc: Vec<std::rc::Rc<Tensor>> = inputs.iter().cloned().map(std::rc::Rc::new).collect();
    let recomputed = interp::eval(&r, inputs).expect("the interpreter runs");
    let runs = jits.iter_mut().flat_map(|jit| {
        [&d, &r].map(|graph| {
            jit.eval(graph, &rc)
                .unwrap_or_else(|e| panic!("seed {seed}: the JIT fails: {e}"))
                .iter()
                .map(|t| (**t).clone())
                .collect::<Vec<Tensor>>()
        })
    });
    let runs: Vec<Vec<Tensor>> = std::iter::once(recomputed).chain(runs).collect();
    for (run, got) in runs.into_iter().enumerate() {
        for (w, a) in want.iter().zip(&got) {
            let (w, a) = (values(w), values(a));
            let same = w
                .iter()
                .zip(&a)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
            assert!(
                same,
                "seed {seed}: run {run} (0: interpreter, recomputed; then JIT stored, \
                 recomputed on 1, then 3 threads) {a:?} vs the interpreter on the stored \
                 graph {w:?}\n{}\n{}",
                mir::print(&d),
                mir::print(&r)
            );
        }
    }
    fewer
}

/// Derivatives taken per element: in a comprehension body, in a reduction body, in a `fn`
/// applied with `map`, and `grad` of an op inside an op; each equals its closed form.
const PER_ELEMENT: &str = r#"fn cube(x: f32) -> f32 = x * x * x
fn at2(a: f32, b: f32) -> f32 = atan2(a, b)
fn slope(x: f32) -> f32 = grad(cube, x)
op total(x: f32[N]) -> f32 = sum[i](cube(x[i]))
op twice(x: f32[N]) -> f32[N] = grad(total, x) * 2.0
op per_element(x: f32[N], y: f32[N]) -> f32[N] {
    let d[i] = grad(cube, x[i]);
    let s[i] = sum[k < 2](grad(at2, x[i] + (k as f32), y[i], wrt = 1));
    let v[i] = value_and_grad(cube, x[i]).1 + vjp(cube, y[i], 2.0);
    d + s + v
}
op closed_form(x: f32[N], y: f32[N]) -> f32[N] {
    let s[i] = sum[k < 2](-(x[i] + (k as f32)) / ((x[i] + (k as f32)) * (x[i] + (k as f32)) + y[i] * y[i]));
    let c[i] = 6.0 * x[i] * x[i] + s[i] + 6.0 * y[i] * y[i];
    c
}
test "per element" {
    let x: f32[4] = [1.0, 2.0, -3.0, 0.5];
    let y: f32[4] = [0.5, -1.0, 2.0, 1.5];
    assert_close(map(slope, x), 3.0 * x * x);
    assert_close(twice(x), 6.0 * x * x);
    assert_close(per_element(x, y), closed_form(x, y));
}
"#;

#[test]
fn derivatives_per_element_run_in_ops_and_bodies() {
    let dir = std::env::temp_dir().join(format!("flowc-ad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let f = dir.join("per_element.flow");
    std::fs::write(&f, PER_ELEMENT).expect("writable");
    for backend in ["interp", "jit"] {
        let out = std::process::Command::new(crate::common::flowc())
            .args(["test", "--backend", backend, f.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .output()
            .expect("flowc runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("1 passed, 0 failed"),
            "{backend}:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
