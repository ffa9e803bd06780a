//! Checker tests of monoids with run-time parameters (`monoid ModSum(m: i64) { … }`): how
//! they are declared and used, and their laws checked at sampled parameter values.

use super::tests::{codes_of, rejects};

const OFF: &str = "monoid Off(c: i64) { state = i64; zero = -c; combine(a, b) = a + b + c; }\n";

fn with_off(rest: &str) -> String {
    format!("{OFF}{rest}")
}

#[test]
fn a_parameterised_monoid_is_used_with_its_arguments() {
    let ok = with_off(
        "op f(x: i64[N], k: i64) -> i64 = reduce[i](Off(k * 2 + N), x[i])\n\
         op g(x: i64[N]) -> i64[N] = scan(Off(3), x)\n\
         op h(x: i64[N]) -> i64[N] = scan_excl(Off(N), x)\n\
         main { let k = 4; print(reduce_by_index(Off(k), 2, [0, 1], [5, 6]), f([1, 2], k)); }",
    );
    assert_eq!(codes_of(&ok), Vec::<String>::new());
}

#[test]
fn a_use_without_arguments_or_with_the_wrong_ones_is_bad_monoid() {
    rejects(
        &with_off("op f(x: i64[N]) -> i64 = reduce[i](Off, x[i])"),
        "bad-monoid",
    );
    rejects(
        &with_off("op f(x: i64[N]) -> i64 = reduce[i](Off(1, 2), x[i])"),
        "bad-monoid",
    );
    rejects(
        &with_off("op f(x: i64[N]) -> i64[N] = scan(Off, x)"),
        "bad-monoid",
    );
    rejects(
        "monoid Plain { state = i64; zero = 0; combine(a, b) = a + b; }\n\
         op f(x: i64[N]) -> i64 = reduce[i](Plain(1), x[i])",
        "bad-monoid",
    );
    rejects("op f(x: i64[N]) -> i64[N] = scan(sum(1), x)", "bad-monoid");
    rejects(
        &with_off("op f(x: i64[N]) -> i64 = reduce[i](Off(1.5), x[i])"),
        "type-mismatch",
    );
}

#[test]
fn an_argument_that_depends_on_an_index_is_bad_monoid() {
    rejects(
        &with_off("op f(x: i64[N]) -> i64 = reduce[i](Off(x[i]), x[i])"),
        "bad-monoid",
    );
    rejects(
        &with_off("op f(x: i64[N, M]) -> i64[N] { let y[j] = reduce[i](Off(j), x[j, i]); y }"),
        "bad-monoid",
    );
    // An index bound inside the argument is its own.
    let ok = with_off("op f(x: i64[N]) -> i64 = reduce[i](Off(sum[k](x[k])), x[i])");
    assert_eq!(codes_of(&ok), Vec::<String>::new());
}

#[test]
fn parameters_are_scalars_with_types() {
    rejects(
        "monoid M(v: f32[3]) { state = f32; zero = 0.0; combine(a, b) = a + b; }",
        "bad-monoid",
    );
    rejects(
        "monoid M(v) { state = f32; zero = 0.0; combine(a, b) = a + b; }",
        "bad-monoid",
    );
    rejects(
        "monoid M(a: f32) { state = f32; zero = 0.0; combine(a, b) = a + b; }",
        "bad-monoid",
    );
}

#[test]
fn a_law_that_fails_at_a_sampled_parameter_is_refused() {
    // Division by zero at m = 0.
    rejects(
        "monoid ModSum(m: i64) { state = i64; zero = 0; combine(a, b) = (a + b) % m; }",
        "bad-monoid",
    );
    // Associative at every s, but `1.0` is the identity only at s = 1.
    rejects(
        "monoid Scaled(s: f64) { state = f64; zero = 1.0; combine(a, b) = a * b * s; }",
        "monoid-identity",
    );
    // Not even an identity: `combine(0, a) = 2a + k`.
    rejects(
        "monoid Skew(k: i64) { state = i64; zero = 0; combine(a, b) = a + 2 * b + k; }",
        "monoid-identity",
    );
}

#[test]
fn the_counterexample_names_the_parameter_values() {
    let text = "monoid Scaled(s: f64) { state = f64; zero = 1.0; combine(a, b) = a * b * s; }";
    let mut sm = crate::base::SourceMap::new();
    let id = sm.add("user.flow", text);
    let (ast, _) = crate::syntax::parse(id, text);
    let (_, diags) = super::check(&[super::SourceFile {
        module: None,
        ast: &ast,
    }]);
    let msg = &diags[0].message;
    assert!(msg.contains("`Scaled(s = "), "{msg}");
}
