//! The generator's steps for the newer primitives: gathers, scans and histograms; and the
//! scans whose output starts with an infinite identity, checked on fixed graphs.

use super::*;

impl Gen {
    /// A gather from a recent node (a table of rank 1 or 2) at coordinates computed from the
    /// index (with repeats, so contributions meet) or from data (`floor` of a value: an
    /// integer coordinate, no gradient through it), in a map or a reduction's body.
    pub(super) fn gather(&mut self) {
        let rank = 1 + self.rng.below(2);
        let Some(p) = self.recent(Some(rank)) else {
            return;
        };
        let s = self.nodes[p].clone();
        let m = 2 + self.rng.below(4);
        let (k, c) = (1 + self.rng.below(4), self.rng.below(5));
        let at = |n: usize, var: &str| format!("rem(add(mul({var}, {k}i64), {c}i64), {n}i64)");
        let table = format!("%{p}.0[{}]", vec!["0"; s.len()].join(", "));
        let coords = match s.len() {
            1 => at(s[0], "i0"),
            _ => format!("{}, rem(add(i0, {c}i64), {}i64)", at(s[0], "i0"), s[1]),
        };
        match self.rng.below(3) {
            0 => {
                let kind = format!("map [{m}] reads({table})");
                self.add(kind, vec![m], &format!("tanh(gather(r0, {coords}))"));
            }
            1 => {
                // The coordinate from data: floor(3 |q[i]|) mod n, q a node of m elements.
                let Some(q) = self.node_of_shape(&[m]) else {
                    return;
                };
                let n = s[0];
                let data = format!("rem(cast(floor(mul(abs(r1), 3.0f64)), i64), {n}i64)");
                let coords = match s.len() {
                    1 => data,
                    _ => format!("{data}, rem(add(i0, {c}i64), {}i64)", s[1]),
                };
                let kind = format!("map [{m}] reads({table}, %{q}.0[i0])");
                self.add(
                    kind,
                    vec![m],
                    &format!("mul(gather(r0, {coords}), sin(r1))"),
                );
            }
            _ => {
                // Inside a reduction: a window of gathered elements per output element.
                let coords = coords.replace("i0", "add(i0, i1)");
                let kind = format!("reduce [{m}] over [3] sum reads({table})");
                let body = format!("mul(gather(r0, {coords}), gather(r0, {coords}))");
                self.add(kind, vec![m], &body);
            }
        }
    }

    /// A scan along the last axis of a recent vector or matrix (each row on its own), with
    /// `sum`, `prod`, `max` or `min`, inclusive or exclusive, of an elementwise body.
    pub(super) fn scan(&mut self) {
        let rank = 1 + self.rng.below(2);
        let Some(p) = self.recent(Some(rank)) else {
            return;
        };
        let s = self.nodes[p].clone();
        let m = *self.rng.pick(&["sum", "prod", "max", "min"]);
        // An exclusive max/min starts with an infinite identity, whose derivative through
        // later nodes is NaN: those are tested on their own ([`exclusive_max_and_min`]).
        let exclusive = matches!(m, "sum" | "prod") && self.rng.below(2) == 0;
        let ex = if exclusive { " exclusive" } else { "" };
        // prod of values near 1 and some exact zeros; sum/max/min of the values.
        let body = match m {
            "prod" => "select(gt(r0, 1.2f64), 0.0f64, add(1.0f64, mul(0.5f64, sin(r0))))",
            _ => "r0",
        };
        let kind = format!(
            "scan {}{ex} {m} reads(%{p}.0[{}])",
            shape_text(&s),
            ident(s.len())
        );
        self.add(kind, s, body);
    }

    /// A scan along the last axis of a recent vector or matrix with a user monoid that
    /// declares `d_combine` ([`MONOIDS`]: a scalar state, and pair states with wrap and
    /// unwrap, one not commutative). Exclusive only with `Affine`, whose identity unwraps to
    /// a finite value (the others' start at `-inf`, whose derivative through later nodes is
    /// NaN).
    pub(super) fn scan_monoid(&mut self) {
        let rank = 1 + self.rng.below(2);
        let Some(p) = self.recent(Some(rank)) else {
            return;
        };
        let s = self.nodes[p].clone();
        let (m, args) = *self.rng.pick(&[
            ("@0", "mul(r0, r0)"),
            ("@1", "sin(r0)"),
            ("@2", "add(1.0f64, mul(0.5f64, tanh(r0))); mul(0.5f64, r0)"),
            ("@3", "max(r0, -0.3f64)"),
        ]);
        let ex = if m == "@2" && self.rng.below(2) == 0 {
            " exclusive"
        } else {
            ""
        };
        let kind = format!(
            "scan {}{ex} {m} reads(%{p}.0[{}])",
            shape_text(&s),
            ident(s.len())
        );
        self.add(kind, s, args);
    }

    /// A histogram of a recent vector into fewer bins, at bins computed from the index
    /// (so values meet in a bin; for `max`/`min`, every bin gets one), with `sum` (a scatter-add), `max`, `min` or `prod` (of
    /// values near 1 with some exact zeros; two zeros in a bin happen too); or a scatter of
    /// it into another vector, with duplicate rows (the last write wins).
    pub(super) fn histogram(&mut self) {
        let Some(p) = self.recent(Some(1)) else {
            return;
        };
        let n = self.nodes[p][0];
        let bins = 1 + self.rng.below(n);
        let m = *self.rng.pick(&["sum", "max", "min", "prod", "scatter"]);
        // Every bin of a max/min gets a value (an empty one is ∓inf, whose derivative
        // through later nodes is NaN).
        let k = if matches!(m, "max" | "min") {
            1
        } else {
            1 + self.rng.below(3)
        };
        let value = match m {
            "prod" => "select(gt(r0, 0.9f64), 0.0f64, add(1.0f64, mul(0.5f64, sin(r0))))",
            _ => "sin(r0)",
        };
        if m == "scatter" {
            let Some(q) = self.recent(Some(1)) else {
                return;
            };
            let rows = self.nodes[q][0];
            let kind = format!("scatter %{q}.0 [{n}] reads(%{p}.0[i0])");
            let body = format!("rem(mul(i0, {k}i64), {rows}i64); {value}");
            self.add(kind, vec![rows], &body);
            return;
        }
        let kind = format!("histogram [{n}] bins {bins} {m} reads(%{p}.0[i0])");
        let body = format!("rem(mul(i0, {k}i64), {bins}i64); {value}");
        self.add(kind, vec![bins], &body);
    }
}

/// An exclusive `max`/`min` scan over the rows of a matrix, of squares (so ties occur), whose
/// identity at each row's start is replaced before the result goes on: the gradient against
/// central differences, and the JIT's against the interpreter's bit for bit.
#[test]
fn exclusive_max_and_min() {
    let mut jit = flowc::codegen::native(3).expect("the JIT starts");
    let mut checked = 0;
    for seed in seeds("exclusive") {
        let mut rng = Rng(seed);
        let (rows, n) = (1 + rng.below(3), 2 + rng.below(5));
        let (m, inf) = *rng.pick(&[("max", "-inff64"), ("min", "inff64")]);
        let text = format!(
            "%0 = input 0 : f64[{rows}, {n}]\n\
             %1 = input 1 : f64[{n}]\n\
             %2 = scan [{rows}, {n}] exclusive {m} reads(%0.0[i0, i1]) : f64[{rows}, {n}] \
             {{ mul(r0, r0) }}\n\
             %3 = map [{rows}, {n}] reads(%2.0[i0, i1], %1.0[i1]) : f64[{rows}, {n}] \
             {{ select(eq(r0, {inf}), r1, mul(r0, sin(r1))) }}\n\
             %4 = reduce [] over [{rows}, {n}] sum reads(%3.0[i0, i1]) : f64[] {{ tanh(r0) }}\n\
             output %4.0\n"
        );
        let g = mir::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let inputs = vec![
            tensor(
                &[rows, n],
                (0..rows * n).map(|_| rng.unit() * 1.5).collect(),
            ),
            tensor(&[n], (0..n).map(|_| rng.unit() * 1.5).collect()),
        ];
        checked += check_fd(seed, &g, &inputs);
        let mut d = gradient_graph(&g);
        let cfg = PassConfig {
            verify: true,
            ..PassConfig::default()
        };
        optimize_all(&mut d, &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let want = interp::eval(&d, &inputs).expect("the interpreter runs");
        let rc: Vec<std::rc::Rc<Tensor>> = inputs.iter().cloned().map(std::rc::Rc::new).collect();
        let got = jit.eval(&d, &rc).expect("the JIT runs");
        for (w, a) in want.iter().zip(&got) {
            let bits = |t: &Tensor| values(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(w), bits(a), "seed {seed}: JIT vs interpreter\n{text}");
        }
    }
    assert!(checked > 200, "only {checked} elements checked");
}
