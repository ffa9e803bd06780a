//! Coordinator tests through an in-memory host: printing, `.npy` files, assertions and
//! run-time errors.

use flow_runtime::{read_npy, write_npy, Data, Tensor};

use crate::base::FileId;
use crate::exec::{run_main, MemoryHost, RunErrorKind, RunOptions};
use crate::hir;

fn compile(src: &str) -> hir::Program {
    let (file, diags) = crate::syntax::parse(FileId(0), src);
    assert!(diags.is_empty(), "{diags:?}");
    let (prog, diags) = crate::check::check(&[crate::check::SourceFile {
        module: None,
        ast: &file,
    }]);
    assert!(diags.is_empty(), "{diags:?}");
    prog
}

fn run_with(src: &str, host: &mut MemoryHost) -> Result<(), String> {
    run_main(&compile(src), host, &RunOptions::default()).map_err(|e| e.message)
}

fn run(src: &str) -> Result<String, String> {
    let mut host = MemoryHost::default();
    run_with(src, &mut host).map(|()| host.out)
}

#[test]
fn prints_scalars_tensors_and_interpolation() {
    let out = run(
        r#"main { let x = [1.5, 2.0]; print(x); print("n = {3 + 4}, x0 = {x[0]}"); print(true); }"#,
    );
    assert_eq!(out.unwrap(), "[1.5, 2]\nn = 7, x0 = 1.5\ntrue\n");
}

#[test]
fn save_then_load_round_trips() {
    let mut host = MemoryHost::default();
    run_with(
        r#"main { save("a.npy", [[1.0, 2.0], [3.0, 4.0]]); let b: f32[2, 2] = load("a.npy"); print(b * 2.0); }"#,
        &mut host,
    )
    .unwrap();
    assert_eq!(host.out, "[[2, 4], [6, 8]]\n");
    let t = read_npy(&host.files["a.npy"]).unwrap();
    assert_eq!(t.shape, vec![2, 2]);
}

#[test]
fn a_shape_variable_bound_by_load_sizes_later_comprehensions() {
    let mut host = MemoryHost::default();
    let t = Tensor::new(vec![3, 2], Data::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    host.files.insert("x.npy".into(), write_npy(&t));
    run_with(
        r#"main { let x: f32[R, 2] = load("x.npy"); let c[r] = x[r, 1]; print(c); }"#,
        &mut host,
    )
    .unwrap();
    assert_eq!(host.out, "[2, 4, 6]\n");
}

#[test]
fn load_checks_dtype_and_shape() {
    let mut host = MemoryHost::default();
    let t = Tensor::new(vec![3], Data::I32(vec![1, 2, 3])).unwrap();
    host.files.insert("x.npy".into(), write_npy(&t));
    let err = run_with(
        r#"main { let x: f32[3] = load("x.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("i32") && err.contains("f32[3]"), "{err}");
    let err = run_with(
        r#"main { let x: i32[4] = load("x.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("[3]") && err.contains("i32[4]"), "{err}");
    host.files.insert("bad.npy".into(), b"not numpy".to_vec());
    let err = run_with(
        r#"main { let x: f32[3] = load("bad.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("bad.npy"), "{err}");
    let err = run_with(
        r#"main { let x: f32[3] = load("missing.npy"); print(x); }"#,
        &mut host,
    )
    .unwrap_err();
    assert!(err.contains("missing.npy"), "{err}");
}

#[test]
fn assert_close_reports_the_worst_element() {
    let err = run("main { assert_close([1.0, 2.0, 3.0], [1.0, 2.5, 3.0]); }").unwrap_err();
    assert!(err.contains("index [1]") && err.contains("2.5"), "{err}");
    assert!(run("main { assert_close([1.0, 2.0], [1.0, 2.01], 0.01); }").is_ok());
    let err = run("main { assert_close([1.0, 2.0], [1.0, 2.001], 0.0); }").unwrap_err();
    assert!(err.contains("assert_close"), "{err}");
}

#[test]
fn failed_assert_is_an_assertion_error() {
    let prog = compile(r#"main { assert(1 > 2, "one is small"); }"#);
    let e = run_main(&prog, &mut MemoryHost::default(), &RunOptions::default()).unwrap_err();
    assert_eq!(e.kind, RunErrorKind::Assertion);
    assert!(e.message.contains("one is small"));
}

#[test]
fn integer_division_by_zero_is_an_error() {
    let err = run("main { var z = 0; print(7 / z); }").unwrap_err();
    assert!(err.contains("division by zero"), "{err}");
    let err =
        run("op d(x: i64[N], y: i64[N]) -> i64[N] = x / y\nmain { print(d([1, 2], [1, 0])); }")
            .unwrap_err();
    assert!(err.to_lowercase().contains("division by zero"), "{err}");
}

#[test]
fn dispatch_shape_errors_name_both_shapes() {
    let src = "op head4(x: f32[N]) -> f32[4] {\n    let y[i < 4] = x[i];\n    y\n}\nmain { print(head4([1.0, 2.0])); }";
    let err = run(src).unwrap_err();
    assert!(err.contains("[2]") && err.contains("0..=3"), "{err}");
}

#[test]
fn coordinator_loops_and_procs() {
    let src = r#"
proc total(n: i64) -> i64 {
    var s = 0;
    for i in 0..n { s = s + i; }
    s
}
main {
    var k = 0;
    while k < 3 { k = k + 1; }
    print(total(5), k);
    print(len(args()));
}
"#;
    let mut host = MemoryHost {
        argv: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    run_with(src, &mut host).unwrap();
    assert_eq!(host.out, "10 3\n2\n");
}

#[test]
fn lazy_values_are_computed_once_per_dispatch_chain() {
    // A loop that observes only at the end still computes every step exactly.
    let src = "op step(x: f32[N]) -> f32[N] = x * 0.5 + 1.0\nmain { var x = [0.0, 4.0]; for i in 0..20 { x = step(x); } assert_close(x, [2.0, 2.0], 1e-5); print(\"ok\"); }";
    assert_eq!(run(src).unwrap(), "ok\n");
}
