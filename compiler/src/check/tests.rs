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
fn check_files(files: &[(Option<&str>, &str)]) -> (hir::Program, Vec<String>) {
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
        .map_err(|e| e.message)
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
