//! Unit tests of the checker through one helper: sources in, typed program and diagnostic
//! codes out.

use flow_runtime::{DType, Scalar};

use crate::base::SourceMap;
use crate::check::eval::{eval_body, Value};
use crate::check::{check, SourceFile};
use crate::hir;
use crate::syntax;

/// Checks `(module, text)` files, a `None` module being the user's; returns the program and
/// the codes of its diagnostics.
pub(super) fn check_files(files: &[(Option<&str>, &str)]) -> (hir::Program, Vec<String>) {
    let mut sm = SourceMap::new();
    let parsed: Vec<_> = files
        .iter()
        .map(|(m, text)| {
            let id = sm.add(m.unwrap_or("user.flow"), *text);
            let (ast, diags) = syntax::parse(id, text);
            assert!(diags.is_empty(), "syntax errors in the fixture");
            (m.map(str::to_string), ast)
        })
        .collect();
    let inputs: Vec<SourceFile<'_>> = parsed
        .iter()
        .map(|(module, ast)| SourceFile {
            module: module.clone(),
            ast,
        })
        .collect();
    let (prog, diags) = check(&inputs);
    let codes = diags.iter().map(|d| d.code.to_string()).collect();
    (prog, codes)
}

#[test]
fn a_literal_only_if_arm_takes_the_type_of_the_other_arm() {
    // Nothing outside the `if` asks for a type (it is the operand of `as`), so the arms must
    // agree by themselves: the weak `nan` / `1.0` arm becomes `f64`.
    let (_, codes) = check_files(&[(
        None,
        "fn f(c: bool, m: f64) -> f32 = (if c { nan } else { m }) as f32\n\
         fn g(c: bool, m: f64) -> f32 = (if c { m } else { 1.0 }) as f32\n",
    )]);
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn an_if_arm_with_statements_is_not_weak() {
    let (_, codes) = check_files(&[(
        None,
        "fn f(c: bool, m: f64) -> f64 = if c { let y = 1.0; y } else { m }\n",
    )]);
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c == "type-mismatch"),
        "{codes:?}"
    );
}

#[test]
fn tests_of_a_used_module_are_not_the_programs_tests() {
    let (prog, codes) = check_files(&[
        (None, "test \"mine\" { assert(true, \"t\"); }\n"),
        (
            Some("m"),
            "fn one() -> f32 = 1.0\ntest \"theirs\" { assert(true, \"t\"); }\n",
        ),
    ]);
    assert!(codes.is_empty(), "{codes:?}");
    let names: Vec<&str> = prog.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["mine"]);
}

/// The codes of a single user file's diagnostics, syntax errors included.
pub(super) fn codes_of(text: &str) -> Vec<String> {
    let mut sm = SourceMap::new();
    let id = sm.add("user.flow", text);
    let (ast, mut diags) = syntax::parse(id, text);
    let (_, more) = check(&[SourceFile {
        module: None,
        ast: &ast,
    }]);
    diags.extend(more);
    diags.iter().map(|d| d.code.to_string()).collect()
}

/// Asserts that `text` is rejected with `code` (and with nothing else).
#[track_caller]
pub(super) fn rejects(text: &str, code: &str) {
    let codes = codes_of(text);
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c == code),
        "expected only `{code}` for\n{text}\ngot {codes:?}"
    );
}

#[test]
fn a_float_literal_never_becomes_an_integer_or_a_bool() {
    for body in [
        "let n = 7; print(n < 7.5);",
        "let n = 7; print(n * 0.5);",
        "let n = 7; print(n / 2.0);",
        "let n = 7; print(n + inf);",
        "let b: bool = 0.5;",
        "let b: bool = 1;",
        "print([1.0, true]);",
        "let x = true; print(x == 1);",
        "if 1 { print(1); }",
        "while 0 { print(1); }",
        "assert(1, \"x\");",
        "let k: i64 = 2.0;",
        "let k: i32 = 1 + 0.5;",
    ] {
        rejects(&format!("main {{ {body} }}\n"), "type-mismatch");
    }
    rejects(
        "op s(x: i64[N]) -> i64[N] = x * 1.5\nmain {}\n",
        "type-mismatch",
    );
}

#[test]
fn an_integer_literal_still_takes_any_number_type() {
    let codes = codes_of(
        "fn f(x: f32) -> f32 = x * 2 + 1\nfn g(x: i32) -> i32 = x + 2147483647\n\
         main { let a: f64 = 3; let b: i32 = -5; let c = [1, 2.5]; print(a, b, c, f(1), g(0)); }\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn an_integer_literal_out_of_its_types_range_is_bad_literal() {
    rejects(
        "main { let z: i32 = 3000000000; print(z); }\n",
        "bad-literal",
    );
    rejects(
        "fn f(x: i32) -> i32 = x + 2147483648\nmain {}\n",
        "bad-literal",
    );
}

#[test]
fn an_item_may_not_take_a_builtins_name() {
    for item in [
        "proc assert(b: bool, m: str) {}",
        "fn print(x: f32) -> f32 = x",
        "proc args() -> f32 { 1.0 }",
        "fn exp(a: f32) -> f32 = a",
        "fn select(c: bool, a: f32, b: f32) -> f32 = a",
        "op map(x: f32[N]) -> f32[N] = x",
    ] {
        rejects(
            &format!("{item}\nmain {{ assert(false, \"x\"); }}\n"),
            "duplicate-definition",
        );
    }
}

#[test]
fn a_comprehension_or_reduction_in_the_coordinator_is_an_operation() {
    let q = "proc q(x: f32) -> f32 { x + 1.0 }\n";
    rejects(
        &format!("{q}main {{ let y[i < 3] = q(1.0); print(y); }}\n"),
        "proc-in-operation",
    );
    rejects(
        &format!("{q}main {{ let s = sum[i < 3](q(2.0)); print(s); }}\n"),
        "proc-in-operation",
    );
    for body in [
        "let y[i < 3] = len(args());",
        "let y[i < 3] = parse_f64(args()[0]);",
        "let s = args(); let y[i < 3] = len(s);",
        "let y[i < 3] = eval(1.0);",
        "let s = sum[i < 3](eval(2.0));",
    ] {
        rejects(&format!("main {{ {body} }}\n"), "io-in-operation");
    }
    // Outside the comprehension all of it is fine.
    let codes = codes_of(&format!(
        "{q}main {{ let v = q(1.0); let n = len(args()); let y[i < 3] = v + n as f32; print(y); }}\n"
    ));
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn recursion_through_a_monoid_is_found() {
    rejects(
        "monoid M { state = f32; zero = 0.0; combine(a, b) = reduce[i < 2](M, a); }\nmain {}\n",
        "recursion",
    );
    rejects(
        "fn f(a: f32) -> f32 = reduce[i < 2](M, a)\n\
         monoid M { state = f32; zero = 0.0; combine(a, b) = f(a) + b; }\nmain {}\n",
        "recursion",
    );
    rejects(
        "fn g(a: f32) -> f32 = reduce[i < 2](M, a)\n\
         monoid M { state = f32; zero = 0.0; wrap(x: f32) = g(x); combine(a, b) = a + b; }\nmain {}\n",
        "recursion",
    );
    // A reduction with a monoid from an fn the monoid does not use is fine.
    let codes = codes_of(
        "fn g(a: f32) -> f32 = reduce[i < 2](M, a)\n\
         monoid M { state = f32; zero = 0.0; combine(a, b) = a + b; }\nmain { print(g(1.0)); }\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn an_unbound_index_does_not_cascade_into_a_shape_mismatch() {
    rejects(
        "op f(x: i32[N]) -> i32[N] { let y[i] = x[0]; y }\nmain {}\n",
        "index-unbound",
    );
}

#[test]
fn a_tuple_result_maps_over_a_tensor_into_a_tensor_of_tuples() {
    let codes = codes_of(
        "fn f(a: f32) -> (f32, f32) = (a, a + 1.0)\nmain { let y = map(f, [1.0, 2.0]); print(y); }\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn a_random_seed_or_size_may_not_depend_on_an_index() {
    rejects(
        "main { let z[i < 3] = rand_uniform(i, [1])[0]; print(z); }\n",
        "type-mismatch",
    );
    rejects(
        "main { let z[i < 3] = sum[j < 2](rand_normal(7, [i + 1])[0]); print(z); }\n",
        "type-mismatch",
    );
}

#[test]
fn a_block_of_100000_lets_checks_in_linear_time() {
    let n = 100_000;
    let mut text = String::from("main {\n");
    for i in 0..n {
        text.push_str(&format!(
            "let x{i} = {};\n",
            if i == 0 {
                "1".into()
            } else {
                format!("x{} + 1", i - 1)
            }
        ));
    }
    text.push_str(&format!("print(x{});\n}}\n", n - 1));
    let start = std::time::Instant::now();
    let codes = codes_of(&text);
    let took = start.elapsed();
    assert!(codes.is_empty(), "{codes:?}");
    // A scan of every binding at every lookup took minutes here.
    assert!(took.as_secs() < 30, "checking {n} statements took {took:?}");
}

#[test]
fn nesting_100000_deep_is_too_deep_not_a_crash() {
    let n = 100_000;
    let deep = [
        format!("main {{ let x = {}; print(x); }}\n", vec!["1"; n].join("+")),
        format!("main {{ let x = {}1.0; print(x); }}\n", "-".repeat(n)),
        format!("main {{ let x = {}true; print(x); }}\n", "!".repeat(n)),
        format!(
            "main {{ let x = {}1.0{}; print(x); }}\n",
            "[".repeat(n),
            "]".repeat(n)
        ),
        format!(
            "fn g(x: f32) -> f32 = x\nmain {{ let x = 1.0{}; print(x); }}\n",
            " |> g".repeat(n)
        ),
        format!(
            "main {{ {}print(1);{} }}\n",
            "if true { ".repeat(n),
            " }".repeat(n)
        ),
        format!(
            "fn f(x: f32[{}1]) -> f32 = 1.0\nmain {{}}\n",
            "1 + ".repeat(n)
        ),
    ];
    for text in deep {
        let codes = codes_of(&text);
        assert_eq!(codes, ["too-deep"], "{}", &text[..60]);
    }
    // Parentheses are not nodes of the tree: any number of them is fine.
    let parens = format!(
        "main {{ let x = {}1.0{}; print(x); }}\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert!(codes_of(&parens).is_empty());
}

#[test]
fn a_byte_order_mark_starts_a_file() {
    let codes = codes_of("\u{feff}main { print(1); }\n");
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn duplicate_monoid_members_tests_and_benches_are_refused() {
    rejects(
        "monoid M { state = f32; zero = 0.0; zero = 1.0; combine(a, b) = a + b; }\nmain {}\n",
        "duplicate-definition",
    );
    rejects(
        "monoid M { state = f32; zero = 0.0; combine(a, b) = a + b; commutative; commutative; }\nmain {}\n",
        "duplicate-definition",
    );
    rejects(
        "test \"t\" { assert(true, \"a\"); }\ntest \"t\" { assert(true, \"b\"); }\n",
        "duplicate-definition",
    );
    let codes =
        codes_of("test \"t\" { assert(true, \"a\"); }\nbench \"t\" { measure { print(1); } }\n");
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn bench_structure_has_its_own_code() {
    rejects("bench \"b\" { let x = 1; }\n", "bad-bench");
    rejects("main { measure { print(1); } }\n", "bad-bench");
}

#[test]
fn an_empty_literal_takes_its_type_and_shape_from_the_annotation() {
    let codes = codes_of("main { let e: f32[0] = []; print(e); }\n");
    assert!(codes.is_empty(), "{codes:?}");
    rejects("main { let e = []; print(e); }\n", "type-mismatch");
    rejects("main { let e: f32[2] = []; print(e); }\n", "type-mismatch");
}

#[test]
fn a_constant_index_past_the_edge_is_out_of_bounds() {
    rejects("op f(a: f32[3]) -> f32 = a[5]\nmain {}\n", "out-of-bounds");
    rejects("op f(a: f32[N]) -> f32 = a[-1]\nmain {}\n", "out-of-bounds");
    rejects(
        "main { let a = [1.0, 2.0, 3.0]; print(a[3]); }\n",
        "out-of-bounds",
    );
    let codes =
        codes_of("op f(a: f32[3]) -> f32 = a[2]\nop g(a: f32[N]) -> f32 = a[N - 1]\nmain {}\n");
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn a_local_named_like_an_op_is_not_a_call_of_it() {
    // `mean` the parameter is not `mean` the op: no cycle through the monoid.
    let codes = codes_of(
        "monoid M { state = f32; zero = 0.0; combine(a, b) = a + b; unwrap(s) = g(s); }\n\
         fn g(mean: f32) -> f32 = mean\n\
         op mean(x: f32[N]) -> f32 = reduce[i](M, x[i])\nmain {}\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn a_computed_index_outside_a_comprehension_is_a_gather() {
    let codes = codes_of("main { let a = [1.0, 2.0, 3.0]; let k = 1; print(a[k]); }\n");
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn a_computed_index_past_the_edge_outside_a_comprehension_is_not_said_to_be_about_its_indices() {
    let text = "main { let a = [1.0, 2.0, 3.0]; let k = 1; print(pad(a, 0.0)[k]); }\n";
    let mut sm = SourceMap::new();
    let id = sm.add("user.flow", text);
    let (ast, _) = syntax::parse(id, text);
    let (_, diags) = check(&[SourceFile {
        module: None,
        ast: &ast,
    }]);
    let [d] = diags.as_slice() else {
        panic!("{diags:?}")
    };
    assert_eq!(d.code.to_string(), "non-affine-index");
    assert!(
        !d.message.contains("comprehension indices"),
        "{}",
        d.message
    );
    assert!(d.message.contains("not a constant"), "{}", d.message);
}

#[test]
fn a_gather_index_must_be_an_integer() {
    let codes =
        codes_of("op g(x: f32[N], f: f32[N]) -> f32[N] { let y[i] = x[f[i]]; y }\nmain {}\n");
    assert_eq!(codes, ["non-affine-index"]);
}

/// The value of `f` on each pair, computed by the checker's evaluator (the monoid-law
/// tester's) and by the program itself: a map over tensors `load`ed from an in-memory host, run
/// by the reference interpreter. An operator that fails gives `None` (the checker) or a run-time
/// error (the interpreter).
fn checker_and_interpreter(
    f: &str,
    in_ty: DType,
    out_ty: DType,
    pairs: &[(Scalar, Scalar)],
) -> (Vec<Option<Scalar>>, Result<Vec<Scalar>, String>) {
    use crate::exec::{run_main, MemoryHost, RunOptions};
    use flow_runtime::{read_npy, write_npy, Data, Tensor};

    let src = format!(
        "{f}\nmain {{ let p: {in_ty}[2, N] = load(\"p.npy\"); let r[i] = f(p[0, i], p[1, i]); \
         save(\"r.npy\", r); }}"
    );
    let (prog, codes) = check_files(&[(None, &src)]);
    assert!(codes.is_empty(), "{f}: {codes:?}");
    let func = prog.funcs.iter().find(|x| x.name == "f").expect("fn f");
    let by_checker = pairs
        .iter()
        .map(|(a, b)| {
            let args = vec![Value::Scalar(*a), Value::Scalar(*b)];
            match eval_body(&prog, &func.body, args) {
                Ok(Value::Scalar(s)) => Some(s),
                _ => None,
            }
        })
        .collect();
    let n = pairs.len();
    let mut data = Data::zeros(in_ty, 2 * n);
    for (i, (a, b)) in pairs.iter().enumerate() {
        data.set(i, *a);
        data.set(n + i, *b);
    }
    let mut host = MemoryHost::default();
    let p = Tensor::new(vec![2, n], data).expect("the operands");
    host.files.insert("p.npy".into(), write_npy(&p));
    let by_interpreter = run_main(&prog, &mut host, &RunOptions::default())
        .map_err(|e| e.message())
        .map(|()| {
            let r = read_npy(&host.files["r.npy"]).expect("r.npy");
            assert_eq!(r.dtype(), out_ty);
            (0..r.len()).map(|i| r.get(i)).collect()
        });
    (by_checker, by_interpreter)
}

/// The bits of a scalar, so that `-0.0` differs from `0.0` and every NaN is one value.
fn bits(s: Scalar) -> (DType, u64) {
    let b = match s {
        Scalar::F32(v) if v.is_nan() => u64::MAX,
        Scalar::F64(v) if v.is_nan() => u64::MAX,
        Scalar::F32(v) => v.to_bits() as u64,
        Scalar::F64(v) => v.to_bits(),
        Scalar::I32(v) => v as u32 as u64,
        Scalar::I64(v) => v as u64,
        Scalar::Bool(v) => v as u64,
        Scalar::U8(v) => v as u64,
        Scalar::U32(v) => v as u64,
        Scalar::U64(v) => v,
    };
    (s.dtype(), b)
}

fn assert_agree(f: &str, in_ty: DType, out_ty: DType, pairs: &[(Scalar, Scalar)]) {
    let (checker, interp) = checker_and_interpreter(f, in_ty, out_ty, pairs);
    let interp = interp.unwrap_or_else(|e| panic!("`{f}` failed at run time: {e}"));
    for ((p, c), r) in pairs.iter().zip(&checker).zip(&interp) {
        let c = c.unwrap_or_else(|| panic!("`{f}` on {p:?}: the checker found no value"));
        assert_eq!(
            bits(c),
            bits(*r),
            "`{f}` on {p:?}: checker {c:?}, interpreter {r:?}"
        );
    }
}

#[test]
fn the_checker_evaluates_scalars_exactly_as_the_interpreter_runs_them() {
    use Scalar::{F32, F64, I32, I64};
    let zeros_nan = |w: fn(f64) -> Scalar| {
        let vals = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut pairs = Vec::new();
        for a in vals {
            for b in vals {
                pairs.push((w(a), w(b)));
            }
        }
        pairs
    };
    for (ty, pairs) in [
        (DType::F32, zeros_nan(|v| F32(v as f32))),
        (DType::F64, zeros_nan(F64)),
    ] {
        for body in ["max(a, b)", "min(a, b)", "a / b", "pow(a, b)", "a - b"] {
            let f = format!("fn f(a: {ty}, b: {ty}) -> {ty} = {body}");
            assert_agree(&f, ty, ty, &pairs);
        }
        for (to, body) in [(DType::I32, "a as i32"), (DType::I64, "(a * 1e30) as i64")] {
            let f = format!("fn f(a: {ty}, b: {ty}) -> {to} = {body}");
            assert_agree(&f, ty, to, &pairs);
        }
    }
    let ints = [
        (I32(i32::MIN), I32(-1)),
        (I32(7), I32(-2)),
        (I32(-8), I32(33)),
        (I32(1), I32(-1)),
        (I32(i32::MAX), I32(31)),
    ];
    for body in [
        "a % b",
        "a << b",
        "a >> b",
        "a * b + a",
        "abs(a)",
        "max(a, b)",
    ] {
        assert_agree(
            &format!("fn f(a: i32, b: i32) -> i32 = {body}"),
            DType::I32,
            DType::I32,
            &ints,
        );
    }
    assert_agree(
        "fn f(a: i32, b: i32) -> f32 = a as f32 / b as f32",
        DType::I32,
        DType::F32,
        &ints,
    );
    let longs: Vec<_> = ints
        .iter()
        .map(|(a, b)| (a.cast(DType::I64), b.cast(DType::I64)))
        .chain([(I64(i64::MIN), I64(-1)), (I64(-1), I64(64))])
        .collect();
    for body in ["a % b", "a << b", "a >> b", "a - b"] {
        assert_agree(
            &format!("fn f(a: i64, b: i64) -> i64 = {body}"),
            DType::I64,
            DType::I64,
            &longs,
        );
    }
    // `MIN / -1` has no value: an error in both, never a wrapped quotient in one of them.
    for (ty, min) in [(DType::I32, I32(i32::MIN)), (DType::I64, I64(i64::MIN))] {
        let minus_one = I32(-1).cast(ty);
        let f = format!("fn f(a: {ty}, b: {ty}) -> {ty} = a / b");
        let (checker, interp) = checker_and_interpreter(&f, ty, ty, &[(min, minus_one)]);
        assert_eq!(checker, vec![None]);
        let err = interp.expect_err("MIN / -1 must fail at run time");
        assert!(err.contains("MIN / -1"), "{err}");
    }
}

/// The laws are tested on the constants a monoid is written with and their neighbours, so a
/// combine that misbehaves only inside a narrow window of values is rejected too.
#[test]
fn a_combine_that_is_not_associative_only_in_a_window_is_rejected() {
    let window = |ty: &str, lo: &str, hi: &str| {
        format!(
            "monoid W {{ state = {ty}; zero = 0.0; combine(a, b) = \
             if a > {lo} && a < {hi} && b > {lo} && b < {hi} {{ a + b + 1.0 }} else {{ a + b }}; }}"
        )
    };
    for src in [
        window("f32", "50.5", "151.5"),
        window("f64", "50.5", "151.5"),
        window("f32", "1000.25", "1000.75"),
        // The window's bounds are in a `fn` that the combine calls.
        "fn inside(x: f32) -> bool = x > 50.5 && x < 151.5\n\
         monoid W { state = f32; zero = 0.0; combine(a, b) = \
         if inside(a) && inside(b) { a + b + 1.0 } else { a + b }; }"
            .to_string(),
        "monoid W { state = i64; zero = 0; combine(a, b) = \
         if a > 50 && a < 60 && b > 50 && b < 60 { a + b + 1 } else { a + b }; }"
            .to_string(),
    ] {
        let (_, codes) = check_files(&[(None, &src)]);
        assert_eq!(codes, ["monoid-associativity"], "{src}");
    }
    // Sums of values of very different magnitudes regroup with rounding errors only.
    for ty in ["f32", "f64"] {
        let src =
            format!("monoid S {{ state = {ty}; zero = 0.0; combine(a, b) = a + b; commutative; }}");
        let (_, codes) = check_files(&[(None, &src)]);
        assert!(codes.is_empty(), "{src}: {codes:?}");
    }
}

#[test]
fn index_ranges_that_differ_by_constants_intersect() {
    let ok = |src: &str| {
        let codes = codes_of(src);
        assert!(codes.is_empty(), "{src}: {codes:?}");
    };
    ok("op f(a: f32[N, M]) -> f32[N - 2, M] {\n let b[i, j] = a[i, j] + a[i + 2, j];\n b\n}\nmain {}\n");
    ok("op f(a: f32[N]) -> f32[N - 2] {\n let b[i] = a[i + 1] + a[i + 2] + a[i];\n b\n}\nmain {}\n");
    ok("op f(a: f32[N, M]) -> f32[N - 2, M - 2] {\n let b[i, j] = sum[u < 3, v < 3](a[i + u, j + v]);\n b\n}\nmain {}\n");
    // The declared shape bounds the index; the read past it is still refuted.
    ok("op f(a: f32[N]) -> f32[N - 3] {\n let b[i]: f32[N - 3] = a[i + 1];\n b\n}\nmain {}\n");
    rejects(
        "op f(a: f32[N]) -> f32[N] {\n let b[i]: f32[N] = a[i + 1];\n b\n}\nmain {}\n",
        "out-of-bounds",
    );
    // The intersection is what the op returns: declaring the un-intersected shape is refused.
    rejects(
        "op f(a: f32[N]) -> f32[N] {\n let b[i] = a[i] + a[i + 1];\n b\n}\nmain {}\n",
        "shape-mismatch",
    );
    // Plain uses whose extents differ by a constant intersect too.
    ok("op f(a: f32[N], c: f32[N - 1]) -> f32[N - 1] {\n let b[i] = a[i] * c[i];\n b\n}\nmain {}\n");
    // Plain uses of different shape variables still disagree; indices start at 0.
    rejects(
        "op f(a: f32[N], c: f32[M]) -> f32 = sum[i](a[i] + c[i])\nmain {}\n",
        "index-disagree",
    );
    rejects(
        "op f(a: f32[N]) -> f32[N] {\n let b[i] = a[i] + a[i - 1];\n b\n}\nmain {}\n",
        "out-of-bounds",
    );
}

#[test]
fn bitwise_operators_take_integers_and_rotate_a_tensor() {
    let codes = codes_of(
        "main { let x = iota(4); print(x & 1, x | 2, x ^ 3, !x, 1 << 2 & 7, rotate(x, -1)); }\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
    rejects("main { print(1.0 & 2.0); }\n", "type-mismatch");
    rejects("main { print(true ^ false); }\n", "type-mismatch");
    rejects("main { print(!1.5); }\n", "type-mismatch");
    rejects("main { print(rotate(1.0, 1)); }\n", "type-mismatch");
    rejects("main { print(rotate(iota(3), 1.5)); }\n", "type-mismatch");
    rejects("main { print(len(1.0)); }\n", "type-mismatch");
}

#[test]
fn scans_histograms_and_scatters_check_their_monoid_and_arguments() {
    // Not a monoid, a monoid of the wrong elements (a pair-wrapping one of a plain tensor),
    // a scalar to scan.
    rejects("main { print(scan(1, [1.0])); }", "type-mismatch");
    rejects(
        "fn f(a: f32) -> f32 = a\nmain { print(scan(f, [1.0])); }",
        "type-mismatch",
    );
    rejects("main { print(scan(sum, [true])); }", "type-mismatch");
    rejects("main { print(scan(any, [1.0])); }", "type-mismatch");
    rejects("main { print(scan_excl(max, 1.0)); }", "type-mismatch");
    rejects(
        "monoid W { state = f32; zero = 0.0; wrap(x: f32, k: i64) = x; combine(a, b) = a + b; }\n\
         main { print(scan(W, [1.0])); }",
        "type-mismatch",
    );
    rejects("main { print(scan(nope, [1.0])); }", "unknown-name");
    // Indices are integers as long as the values; scatter's values are the destination's type.
    rejects(
        "main { print(reduce_by_index(sum, 2, [0.5], [1.0])); }",
        "type-mismatch",
    );
    rejects(
        "main { print(reduce_by_index(sum, 2, [0, 1], [1.0])); }",
        "shape-mismatch",
    );
    rejects(
        "main { print(scatter([1.0], [0], [true])); }",
        "type-mismatch",
    );
    // Graph nodes: in an op where every size is static, never in a comprehension body.
    assert!(codes_of(
        "op f(x: f32[N], k: i64[N], s: i64[B]) -> (f32[N], f32[B]) = (scan(sum, x), reduce_by_index(sum, B, k, x))\n\
         main { print(f([1.0], [0], [0, 0])); }"
    )
    .is_empty());
    rejects(
        "op f(x: f32[N], k: i64[N], n: i64) -> f32 { let h = reduce_by_index(sum, n, k, x); sum[i](h[i]) }\n\
         main { print(f([1.0], [0], 1)); }",
        "dynamic-size-in-operation",
    );
    rejects(
        "main { let x = [1.0]; let y[i] = scan(sum, x)[i]; print(y); }",
        "io-in-operation",
    );
    assert!(codes_of(
        "monoid L { state = i64; zero = 0; combine(a, b) = if b != 0 { b } else { a }; }\n\
         main { print(scan(sum, [1.0]), scan_excl(L, [0, 1]), reduce_by_index(L, 2, [0], [3]),\
         scatter([1.0, 2.0], [1], [5.0])); }"
    )
    .is_empty());
}

#[test]
fn a_tensor_of_tuples_is_the_tuple_of_its_field_tensors() {
    use hir::{Dim, Ty};
    // The spelling `(d: f32, i: i64)[N]`, a comprehension with a tuple body, `zip` and a
    // reduction over the pairs all give one tensor per field, of one shape.
    let (prog, codes) = check_files(&[(
        None,
        "monoid ArgMin {\n\
             state = (d: f32, i: i64);\n\
             zero = (inf, 9223372036854775807);\n\
             combine(a, b) = if b.d < a.d || (b.d == a.d && b.i < a.i) { b } else { a };\n\
         }\n\
         op pairs(x: f32[N]) -> (d: f32, i: i64)[N] {\n\
             let p[i] = (x[i], i);\n\
             p\n\
         }\n\
         op zipped(x: f32[N], k: i64[N]) -> (f32, i64)[N] = zip(x, k)\n\
         op best(p: (d: f32, i: i64)[N]) -> i64 = reduce[i](ArgMin, p[i]).i\n\
         op dist(x: f32[P, D], c: f32[K, D]) -> i64[P] {\n\
             let d[p, k] = (sum[j](x[p, j] - c[k, j]), k);\n\
             let b[p] = reduce[k](ArgMin, d[p, k]);\n\
             b.i\n\
         }\n",
    )]);
    assert!(codes.is_empty(), "{codes:?}");
    let n = || vec![Dim::var("N")];
    let pairs = prog
        .funcs
        .iter()
        .find(|f| f.name == "pairs")
        .expect("pairs");
    assert_eq!(
        pairs.ret,
        Ty::Tuple(vec![
            (Some("d".into()), Ty::Tensor(DType::F32, n())),
            (Some("i".into()), Ty::Tensor(DType::I64, n())),
        ])
    );
    let zipped = prog
        .funcs
        .iter()
        .find(|f| f.name == "zipped")
        .expect("zipped");
    assert_eq!(zipped.body.expr.ty, zipped.ret);
}

#[test]
fn misused_tensors_of_tuples_are_reported() {
    let cases = [
        // Fields of different shapes take no index.
        (
            "op f(p: (f32[N], i64[M])) -> f32 = sum[i](p[i].0)",
            "shape-mismatch",
        ),
        // A field out of range.
        (
            "op f(p: (f32, i64)[N]) -> f32 = sum[i](p[i].2)",
            "unknown-field",
        ),
        // A tuple where a number is needed.
        (
            "op f(p: (f32, i64)[N]) -> f32 = sum[i](p[i])",
            "type-mismatch",
        ),
        (
            "op f(p: (f32, i64)[N]) -> f32[N] = p + 1.0",
            "type-mismatch",
        ),
        // `zip` of different shapes, or of a scalar.
        (
            "op f(a: f32[N], b: i64[M]) -> i64[N] = zip(a, b).1",
            "shape-mismatch",
        ),
        ("op f(a: f32[N]) -> f32[N] = zip(a, 1.0).0", "type-mismatch"),
        ("op f(a: f32[N]) -> f32[N] = zip(a).0", "wrong-arity"),
        // A field of a tensor of tuples is a scalar type; a body field a scalar.
        (
            "op f(p: ((f32, i64), f32)[N]) -> f32 = 1.0",
            "type-mismatch",
        ),
        (
            "op f(x: f32[N]) -> f32 { let q[i] = (x[i], x); 1.0 }",
            "type-mismatch",
        ),
        // Padding is per field.
        (
            "op f(p: (f32, i64)[N]) -> f32 = sum[i](pad(p, 0.0)[i - 1].0)",
            "type-mismatch",
        ),
        // A tuple with a scalar field is not a tensor of tuples.
        (
            "op f(p: (f32[N], i64)) -> f32 = sum[i](p[i].0)",
            "type-mismatch",
        ),
    ];
    for (src, code) in cases {
        let (_, codes) = check_files(&[(None, src)]);
        assert_eq!(codes, vec![code.to_string()], "{src}");
    }
}
