//! Monoids with run-time parameters end to end: the graphs they lower to (one monoid per
//! distinct argument values, with the values as constants) round-trip through the MIR text
//! form, verify and hash apart; both backends agree bitwise at 1 and 3 threads; a lazy
//! scalar argument is computed first.

use crate::exec::{dispatched_graphs, run_main, Backend, MemoryHost, RunOptions};
use crate::mir::{hash::graph_hash, parse::parse, print::print, verify::verify};

use super::compile;

const SRC: &str = r#"
fn canon(x: i64, m: i64) -> i64 {
    let r = x % m;
    if r < 0 { r + m } else { r }
}
fn add_mod(a: i64, b: i64, m: i64) -> i64 {
    if a >= m - b { a - (m - b) } else { a + b }
}
monoid ModSum(m: i64) {
    state = i64;
    zero = 0;
    wrap(x: i64) = canon(x, max(m, 1));
    combine(a, b) = add_mod(a, b, max(m, 1));
    commutative;
}
monoid Off(c: i64) {
    state = i64;
    zero = -c;
    combine(a, b) = a + b + c;
}
monoid Joined(sep: f32) {
    state = f32;
    zero = -sep;
    combine(a, b) = a + sep + b;
}
op residue(x: i64[N], m: i64) -> i64 = reduce[i](ModSum(m), x[i])
op rows(x: i64[R, C], m: i64) -> i64[R] { let y[r] = reduce[c](ModSum(m + 1), x[r, c]); y }
op widths(w: f32[N], sep: f32) -> f32[N] = scan(Joined(sep), w)
main {
    let x = iota(100003);
    print(residue(x, 3), residue(x, 5));
    let m[r < 100, c < 1000] = x[r * 1000 + c] * 7 - 3;
    print(rows(m, 10));
    let w = rand_uniform(5, [70001]);
    let s = sum[i](w[i]);
    let y = widths(w, s);
    print(y[70000], y[123]);
    print(reduce_by_index(Off(4), 3, iota(9) % 3, iota(9) * 5));
}
"#;

fn run_on(backend: Backend, threads: usize) -> String {
    let prog = compile(SRC);
    let opts = match backend {
        Backend::Jit => crate::driver::jit_options(threads),
        Backend::Interp => RunOptions {
            backend: Backend::Interp,
            ..RunOptions::default()
        },
    };
    let mut host = MemoryHost::default();
    run_main(&prog, &mut host, &opts).unwrap_or_else(|e| panic!("{}", e.message()));
    host.out
}

#[test]
fn parameterised_monoids_agree_on_both_backends_at_any_thread_count() {
    let reference = run_on(Backend::Interp, 1);
    // 0 + 1 + … + 100002 = 5000250003, which is 0 mod 3 and 3 mod 5.
    assert!(reference.starts_with("0 3\n"), "{reference}");
    assert!(reference.ends_with("[53, 68, 83]\n"), "{reference}");
    for threads in [1, 3] {
        assert_eq!(
            run_on(Backend::Jit, threads),
            reference,
            "{threads} thread(s)"
        );
    }
}

#[test]
fn each_argument_value_is_its_own_monoid_of_the_graph() {
    let prog = compile(SRC);
    let mut host = MemoryHost::default();
    let (graphs, err) = dispatched_graphs(&prog, &mut host);
    assert!(err.is_none(), "{err:?}");
    let names: Vec<String> = graphs
        .iter()
        .flat_map(|g| g.monoids.iter().map(|m| m.name.clone()))
        .collect();
    for want in [
        "ModSum(m = 3)",
        "ModSum(m = 5)",
        "ModSum(m = 11)",
        "Off(c = 4)",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    for g in &graphs {
        let text = print(g);
        let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(print(&back), text);
        assert_eq!(verify(&back), Ok(()), "{text}");
    }
    // The same graph with ModSum(m = 5) in place of ModSum(m = 3) hashes apart.
    let find = |name: &str| {
        graphs.iter().find_map(|g| {
            g.monoids
                .iter_enumerated()
                .find(|(_, m)| m.name == name)
                .map(|(id, m)| (g.clone(), id, m.clone()))
        })
    };
    let (g3, id3, m3) = find("ModSum(m = 3)").expect("m = 3");
    let (_, _, m5) = find("ModSum(m = 5)").expect("m = 5");
    assert_ne!(m3.combine, m5.combine);
    let mut g5 = g3.clone();
    g5.monoids[id3] = m5;
    assert_ne!(graph_hash(&g3, b""), graph_hash(&g5, b""));
}

#[test]
fn a_computed_argument_inside_an_operation_is_refused_with_advice() {
    let src = r#"
monoid Joined(sep: i64) {
    state = i64;
    zero = -sep;
    combine(a, b) = a + sep + b;
}
op f(w: i64[N]) -> i64 = reduce[i](Joined(sum[k](w[k])), w[i])
op g(w: i64[N]) -> i64 = reduce[i](Joined(w[0]), w[i])
main { print(g([1, 2, 3])); print(f([1, 2, 3])); }
"#;
    let mut host = MemoryHost::default();
    let err = run_main(&compile(src), &mut host, &RunOptions::default())
        .expect_err("the sum is computed by the graph");
    // `w[0]` of a constant is known: 1 + 1 + 2 + 1 + 3.
    assert_eq!(host.out, "8\n");
    assert!(
        err.message()
            .contains("must be known when the graph is built"),
        "{}",
        err.message()
    );
}

#[test]
fn a_parameterised_monoid_with_d_combine_is_differentiable() {
    // A soft maximum at temperature t (clamped so every sampled t is well-conditioned):
    // at t = 1 its gradient is the softmax.
    let src = r#"
fn lse2(a: f64, b: f64, t: f64) -> f64 {
    let m = max(a, b);
    if m == -inf { m } else { m + t * log(exp((a - m) / t) + exp((b - m) / t)) }
}
fn temp(t: f64) -> f64 = min(max(t, 0.25), 4.0)
monoid SoftMax(t: f64) {
    state = f64;
    zero = -inf;
    combine(a, b) = lse2(a, b, temp(t));
    d_combine(a, b, g) = (
        g * exp((a - lse2(a, b, temp(t))) / temp(t)),
        g * exp((b - lse2(a, b, temp(t))) / temp(t))
    );
    commutative;
}
op soft(x: f64[N], t: f64) -> f64 = reduce[i](SoftMax(t), x[i])
main {
    let x: f64[3] = [1.0, 2.0, 3.0];
    let g = grad(soft, x, 1.0);
    let e: f64[3] = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219];
    assert_close(g, e, 1e-12);
    print(g);
}
"#;
    let prog = compile(src);
    let mut outs = Vec::new();
    for opts in [
        RunOptions {
            backend: Backend::Interp,
            ..RunOptions::default()
        },
        crate::driver::jit_options(3),
    ] {
        let mut host = MemoryHost::default();
        run_main(&prog, &mut host, &opts).unwrap_or_else(|e| panic!("{}", e.message()));
        outs.push(host.out);
    }
    assert_eq!(outs[0], outs[1]);
}
