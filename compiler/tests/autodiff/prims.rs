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

impl Gen {
    /// A histogram of a recent vector or matrix (its rows binned, each column on its own)
    /// with a user monoid that declares `d_combine` ([`MONOIDS`]), at bins computed from the
    /// index (and the column: a value's bin differs between columns), so values meet in a
    /// bin and, in a matrix, a bin's values interleave with others'. Every bin gets a value
    /// except with `Affine` and its opposite, whose empty bin unwraps to a finite value (the others' are
    /// `-inf`, whose derivative through later nodes is NaN).
    pub(super) fn histogram_monoid(&mut self) {
        let rank = 1 + self.rng.below(2);
        let Some(p) = self.recent(Some(rank)) else {
            return;
        };
        let s = self.nodes[p].clone();
        let n = s[0];
        let (m, args) = *self.rng.pick(&[
            ("@0", "mul(r0, r0)"),
            ("@1", "sin(r0)"),
            ("@2", "add(1.0f64, mul(0.5f64, tanh(r0))); mul(0.5f64, r0)"),
            ("@3", "max(r0, -0.3f64)"),
            ("@4", "add(1.0f64, mul(0.5f64, tanh(r0))); mul(0.5f64, r0)"),
        ]);
        let bins = 1 + self.rng.below(n);
        let k = if matches!(m, "@2" | "@4") {
            1 + self.rng.below(3)
        } else {
            1
        };
        let column = if rank == 2 { ", i1" } else { "" };
        let index = match rank {
            1 => format!("rem(mul(i0, {k}i64), {bins}i64)"),
            _ => format!("rem(add(mul(i0, {k}i64), i1), {bins}i64)"),
        };
        let mut out = s.clone();
        out[0] = bins;
        let kind = format!(
            "histogram {} bins {bins} {m} reads(%{p}.0[i0{column}])",
            shape_text(&s)
        );
        self.add(kind, out, &format!("{index}; {args}"));
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

/// Histograms with each user monoid of [`MONOIDS`] at a size where the sort takes several
/// passes (up to 40 rows into up to 37 bins, 1 to 3 columns), at bins computed from data
/// (so a bin's values interleave with others' and their order matters for `Affine`, which
/// is not commutative): the gradient against central differences, and the derived graph on
/// the JIT (1 and 3 threads) and the interpreter, stored and recomputed, bit for bit.
#[test]
fn user_monoid_histograms_at_size() {
    let mut jits: Vec<flowc::native::Native> = [1, 3]
        .iter()
        .map(|t| flowc::codegen::native(*t).expect("the JIT starts"))
        .collect();
    let mut checked = 0;
    for seed in seeds("user-bins").into_iter().take(40) {
        let mut rng = Rng(seed);
        let (n, cols) = (2 + rng.below(39), 1 + rng.below(3));
        let bins = 1 + rng.below(37);
        let (m, args) = *rng.pick(&[
            ("@0", "mul(0.5f64, r0)"),
            ("@1", "sin(r0)"),
            ("@2", "add(1.0f64, mul(0.3f64, tanh(r0))); mul(0.5f64, r0)"),
            ("@3", "max(r0, -0.3f64)"),
            ("@4", "add(1.0f64, mul(0.3f64, tanh(r0))); mul(0.5f64, r0)"),
        ]);
        let text = format!(
            "{MONOIDS}%0 = input 0 : f64[{n}, {cols}]\n\
             %1 = input 1 : f64[{n}]\n\
             %2 = histogram [{n}, {cols}] bins {bins} {m} reads(%0.0[i0, i1], %1.0[i0]) : \
             f64[{bins}, {cols}] {{ rem(add(cast(floor(mul(abs(r1), {bins}.0f64)), i64), i1), \
             {bins}i64); {args} }}\n\
             %3 = reduce [] over [{bins}, {cols}] sum reads(%2.0[i0, i1]) : f64[] \
             {{ select(eq(r0, -inff64), 0.0f64, tanh(mul(0.3f64, r0))) }}\n\
             output %3.0\n"
        );
        let g = mir::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let inputs = vec![
            tensor(
                &[n, cols],
                (0..n * cols).map(|_| rng.unit() * 1.5).collect(),
            ),
            tensor(&[n], (0..n).map(|_| rng.unit()).collect()),
        ];
        checked += check_fd(seed, &g, &inputs);
        assert_alike(seed, &g, &inputs, &mut jits);
    }
    assert!(checked > 1000, "only {checked} elements checked");
}

/// Derivatives through scans with a user monoid, histograms and scatters written in Flow,
/// inside ops: a cumulative log-sum-exp (`scan` with a monoid that declares `d_combine`)
/// against its closed form (`d/dx_i Σ_j y_j² = Σ_{j ≥ i} 2 y_j exp(x_i - y_j)`), inclusive
/// and exclusive; a `max` histogram, a `prod` histogram with a zero, and a scatter with a
/// duplicate row, against hand-computed gradients.
const BINNED: &str = r#"fn lse2(a: f64, b: f64) -> f64 {
    let m = max(a, b);
    if m == -inf { m } else { m + log(exp(a - m) + exp(b - m)) }
}
monoid LogSumExp {
    state = f64;
    zero = -inf;
    combine(a, b) = lse2(a, b);
    d_combine(a, b, g) = (g * exp(a - lse2(a, b)), g * exp(b - lse2(a, b)));
    commutative;
}
op cum(x: f64[N]) -> f64 {
    let y = scan(LogSumExp, x);
    sum[i](y[i] * y[i])
}
op cum_closed(x: f64[N]) -> f64[N] {
    let y = scan(LogSumExp, x);
    let d[i] = sum[j](if j >= i { 2.0 * y[j] * exp(x[i] - y[j]) } else { 0.0 });
    d
}
op cum_excl(x: f64[N]) -> f64 {
    let y = scan_excl(LogSumExp, x);
    sum[i](if i > 0 { y[i] * y[i] } else { 0.0 })
}
op cum_excl_closed(x: f64[N]) -> f64[N] {
    let y = scan(LogSumExp, x);
    let d[i] = sum[j](if j >= i && j < N - 1 { 2.0 * y[j] * exp(x[i] - y[j]) } else { 0.0 });
    d
}
op hl(x: f64[N], b: i64[N]) -> f64 {
    let h = reduce_by_index(LogSumExp, 5, b, x);
    sum[k](h[k] * h[k])
}
op hl_closed(x: f64[N], b: i64[N]) -> f64[N] {
    let h = reduce_by_index(LogSumExp, 5, b, x);
    let d[i] = 2.0 * h[b[i]] * exp(x[i] - h[b[i]]);
    d
}
op hmax(x: f64[N], b: i64[N]) -> f64 {
    let h = reduce_by_index(max, 3, b, x);
    sum[k](h[k] * h[k])
}
op hprod(x: f64[N], b: i64[N]) -> f64 {
    let h = reduce_by_index(prod, 3, b, x);
    sum[k](h[k])
}
op sc(d: f64[M], idx: i64[N], x: f64[N]) -> f64 {
    let y = scatter(d, idx, x);
    sum[i](y[i] * y[i])
}
test "scans, histograms and scatters" {
    let x: f64[6] = [1.0, 5.0, 2.0, 4.0, 3.0, 0.0];
    assert_close(grad(cum, x), cum_closed(x));
    assert_close(grad(cum_excl, x), cum_excl_closed(x));
    let lb: i64[6] = [3, 0, 3, 1, 0, 3];
    assert_close(grad(hl, x, lb), hl_closed(x, lb));
    let b: i64[6] = [0, 0, 1, 1, 2, 2];
    let hx: f64[6] = [0.0, 10.0, 0.0, 8.0, 6.0, 0.0];
    assert_close(grad(hmax, x, b), hx);
    let px: f64[6] = [5.0, 1.0, 4.0, 2.0, 0.0, 3.0];
    assert_close(grad(hprod, x, b), px);
    let d: f64[4] = [1.0, 2.0, 3.0, 4.0];
    let idx: i64[3] = [1, 3, 1];
    let v: f64[3] = [5.0, 6.0, 7.0];
    let dd: f64[4] = [2.0, 0.0, 6.0, 0.0];
    let dv: f64[3] = [0.0, 12.0, 14.0];
    assert_close(grad(sc, d, idx, v), dd);
    assert_close(grad(sc, d, idx, v, wrt = 2), dv);
}
"#;

/// A scan and a histogram with a user monoid that declares no `d_combine`: `grad` is
/// refused, naming it.
const UNDECLARED: &str = r#"monoid Mx {
    state = f32;
    zero = -inf;
    combine(a, b) = max(a, b);
    commutative;
}
op top(x: f32[N]) -> f32 {
    let y = scan(Mx, x);
    sum[i](y[i])
}
op binned(x: f32[N], b: i64[N]) -> f32 {
    let h = reduce_by_index(Mx, 2, b, x);
    sum[k](h[k])
}
main {
    let x = [1.0, 2.0];
    let b = [1, 0];
    print(grad(top, x));
    print(grad(binned, x, b));
}
"#;

fn run_flowc(args: &[&str], name: &str, text: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("flowc-ad-bins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let f = dir.join(name);
    std::fs::write(&f, text).expect("writable");
    let out = std::process::Command::new(crate::common::flowc())
        .args(args)
        .arg(&f)
        .env("NO_COLOR", "1")
        .output()
        .expect("flowc runs");
    let _ = std::fs::remove_file(&f);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn scans_histograms_and_scatters_in_ops() {
    for backend in ["interp", "jit"] {
        let (ok, text) = run_flowc(&["test", "--backend", backend], "binned.flow", BINNED);
        assert!(
            ok && text.contains("1 passed, 0 failed"),
            "{backend}:\n{text}"
        );
    }
    let (ok, text) = run_flowc(&["check"], "undeclared.flow", UNDECLARED);
    assert!(
        !ok && text.contains("[not-differentiable]")
            && text.contains("`grad` of `top`, which scans with the monoid `Mx`")
            && text.contains("`grad` of `binned`, which builds a histogram with the monoid `Mx`"),
        "{text}"
    );
}

/// An embedding's gradient with an id out of range: the forward node is dead (only the
/// table's adjoint is asked for), so the scatter-add's coordinate check fails first, and it
/// names the user's table, the index and the shape on both backends (not a derived node's
/// tensor: the fresh copy `grad` makes of `emb` carries its name onto the constant).
const EMBEDDING_OUT_OF_RANGE: &str = r#"op lookup(emb: f64[V, D], ids: i64[B], w: f64[B, D]) -> f64 =
    sum[b, d](emb[ids[b], d] * w[b, d])
main {
    let emb: f64[3, 2] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let ids: i64[2] = [1, 7];
    let w: f64[2, 2] = [[1.0, 1.0], [2.0, 2.0]];
    print(grad(lookup, emb, ids, w));
}
"#;

#[test]
fn a_gather_out_of_range_in_a_gradient_names_the_table() {
    for backend in ["interp", "jit"] {
        let (ok, text) = run_flowc(
            &["run", "--backend", backend],
            "embedding.flow",
            EMBEDDING_OUT_OF_RANGE,
        );
        assert!(
            !ok && text.contains("index [7, 0] is out of range for `emb` of shape [3, 2]"),
            "{backend}:\n{text}"
        );
    }
}
