//! Unit tests of the checker's rules for tuple-state scans and histograms, histograms of
//! rows, unsigned indices, the coordinator's primitives on tensors of tuples, tensor literals
//! of tuples and the one index of a scatter of tuples (the helpers are `tests.rs`'s).

use flow_runtime::DType;

use super::tests::{check_files, codes_of, rejects};
use crate::hir::{Dim, Ty};

const ARGMAX: &str = "monoid ArgMax {\n\
     state = (v: f32, i: i64);\n\
     zero = (-inf, 9223372036854775807);\n\
     wrap(v: f32, i: i64) = (v, i);\n\
     combine(a, b) = if b.v > a.v || (b.v == a.v && b.i < a.i) { b } else { a };\n\
 }\n\
 monoid Pick {\n\
     state = (v: f32, i: i64);\n\
     zero = (-inf, 9223372036854775807);\n\
     combine(a, b) = if b.v > a.v || (b.v == a.v && b.i < a.i) { b } else { a };\n\
     unwrap(s) = s.i;\n\
 }\n";

/// The result type of the function `name` of the checked `src` (which must check cleanly).
fn body_ty(src: &str, name: &str) -> Ty {
    let text = format!("{ARGMAX}{src}");
    let (prog, codes) = check_files(&[(None, &text)]);
    assert!(codes.is_empty(), "{codes:?} for\n{src}");
    let f = prog.funcs.iter().find(|f| f.name == name).expect("the op");
    assert_eq!(f.body.expr.ty, f.ret, "{src}");
    f.body.expr.ty.clone()
}

fn n() -> Vec<Dim> {
    vec![Dim::var("N")]
}

#[test]
fn a_tuple_state_scan_gives_a_tensor_of_its_result() {
    let pair = |dims: Vec<Dim>| {
        Ty::Tuple(vec![
            (Some("v".into()), Ty::Tensor(DType::F32, dims.clone())),
            (Some("i".into()), Ty::Tensor(DType::I64, dims)),
        ])
    };
    // A wrap of two fields takes a tensor of pairs; the state's tuple is the result.
    assert_eq!(
        body_ty(
            "op f(x: f32[N]) -> (v: f32, i: i64)[N] = scan(ArgMax, zip(x, iota(N)))",
            "f"
        ),
        pair(n())
    );
    // An unwrap to a scalar gives a plain tensor; an exclusive scan the same type.
    assert_eq!(
        body_ty("op f(p: (f32, i64)[N]) -> i64[N] = scan_excl(Pick, p)", "f"),
        Ty::Tensor(DType::I64, n())
    );
    // A tuple-state histogram of rows: `[N, 2]` values into `[3, 2]` bins.
    assert_eq!(
        body_ty(
            "op f(x: f32[N, 2], k: i64[N, 2], b: u8[N]) -> (v: f32, i: i64)[3, 2] = reduce_by_index(ArgMax, 3, b, zip(x, k))",
            "f"
        ),
        pair(vec![Dim::known(3), Dim::known(2)])
    );
}

#[test]
fn histograms_take_rows_and_unsigned_indices() {
    assert_eq!(
        body_ty(
            "op f(x: f32[N, K], b: u32[N]) -> f32[4, K] = reduce_by_index(sum, 4, b, x)",
            "f"
        ),
        Ty::Tensor(DType::F32, vec![Dim::known(4), Dim::var("K")])
    );
    for ty in ["u8", "u32", "u64", "i32", "i64"] {
        let src = format!(
            "op f(x: f32[N], b: {ty}[N], d: f32[M]) -> (f32[2], f32[M]) = (reduce_by_index(sum, 2, b, x), scatter(d, b, x))"
        );
        body_ty(&src, "f");
    }
    // Still not floats or bools; the values' first dimension is the indices' length.
    rejects(
        "main { print(reduce_by_index(sum, 2, [true], [1.0])); }",
        "type-mismatch",
    );
    rejects(
        "main { print(reduce_by_index(sum, 2, [0, 1], [[1.0, 2.0]])); }",
        "shape-mismatch",
    );
}

#[test]
fn a_scan_or_histogram_with_the_wrong_elements_is_reported() {
    let cases = [
        // A pair-wrapping monoid of a plain tensor, of pairs of other types, of a scalar.
        "main { print(scan(ArgMax, [1.0, 2.0])); }",
        "main { print(scan(ArgMax, zip([1, 2], [1, 2]))); }",
        "main { print(scan(ArgMax, (1.0, 2))); }",
        "main { print(reduce_by_index(ArgMax, 2, [0], zip([1.0], [true]))); }",
        // A built-in monoid of a tensor of tuples.
        "main { print(scan(sum, zip([1.0], [2.0]))); }",
    ];
    for src in cases {
        let text = format!("{ARGMAX}{src}");
        let codes = codes_of(&text);
        assert_eq!(codes, vec!["type-mismatch".to_string()], "{src}");
    }
}

#[test]
fn the_coordinators_primitives_take_tensors_of_tuples() {
    let text = "main {\n\
         let p = zip([1.0, 2.0], [3, 4]);\n\
         let f = filter(p, [true, false]);\n\
         let q = partition(p, [true, false]);\n\
         let s = sort_by_key([2, 1], p);\n\
         print(f.1, q.items.0, s.vals.1);\n\
     }";
    let (prog, codes) = check_files(&[(None, text)]);
    assert!(codes.is_empty(), "{codes:?}");
    let main = prog.main.as_ref().expect("main");
    let local = |name: &str| {
        main.locals
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.ty.clone())
            .expect("a local")
    };
    // A filter's fields share one fresh length.
    let Ty::Tuple(fs) = local("f") else {
        panic!("filter of pairs is a tuple: {:?}", local("f"))
    };
    assert_eq!(fs.len(), 2);
    assert!(matches!(&fs[0].1, Ty::Tensor(DType::F32, d) if d.len() == 1));
    assert_eq!(fs[0].1.dims(), fs[1].1.dims());
    assert!(matches!(local("s"), Ty::Tuple(ref kv) if matches!(kv[1].1, Ty::Tuple(_))));
    // Not a 2-D tensor, nor values of another length.
    rejects(
        "main { print(filter(zip([[1.0]], [[2]]), [true])); }",
        "type-mismatch",
    );
    rejects(
        "main { print(sort_by_key([1, 2], zip([1.0], [2]))); }",
        "shape-mismatch",
    );
}

#[test]
fn a_tensor_of_tuples_is_saved_and_loaded_by_type() {
    let (_, codes) = check_files(&[(
        None,
        "main { let p = zip([1.0], [2]); save(\"p.npy\", p); let q: (f32, i64)[N] = load(\"p.npy\"); print(q); }",
    )]);
    assert!(codes.is_empty(), "{codes:?}");
    // A tuple of tensors of different shapes is not one.
    rejects(
        "main { let q: (f32[2], i64[3]) = load(\"p.npy\"); print(q); }",
        "type-mismatch",
    );
}

#[test]
fn a_tensor_literal_of_tuples_is_one_literal_per_field() {
    let pair = |names: [Option<&str>; 2], d: (DType, DType), dims: Vec<Dim>| {
        Ty::Tuple(vec![
            (names[0].map(String::from), Ty::Tensor(d.0, dims.clone())),
            (names[1].map(String::from), Ty::Tensor(d.1, dims)),
        ])
    };
    let k = |n| vec![Dim::known(n)];
    // Weak literals take the usual element types; rows give rank 2.
    assert_eq!(
        body_ty("op f() -> (f32, i64)[2] = [(1.0, 2), (3.0, 4)]", "f"),
        pair([None, None], (DType::F32, DType::I64), k(2))
    );
    assert_eq!(
        body_ty("op f() -> (f32, i64)[2, 1] = [[(1.0, 2)], [(3.0, 4)]]", "f"),
        pair(
            [None, None],
            (DType::F32, DType::I64),
            vec![Dim::known(2), Dim::known(1)]
        )
    );
    // A declared type gives the field types and names; `[]` is empty where it says so.
    assert_eq!(
        body_ty("op f() -> (d: f64, i: u32)[2] = [(1.0, 2), (3.0, 4)]", "f"),
        pair([Some("d"), Some("i")], (DType::F64, DType::U32), k(2))
    );
    assert_eq!(
        body_ty("op f() -> (f32, bool)[0] = []", "f"),
        pair([None, None], (DType::F32, DType::Bool), k(0))
    );
    // A pair next to a triple or a scalar, a field of two types, rows of two lengths, a
    // nested tuple, `[]` of a tensor of tuples that is not empty.
    rejects("main { print([(1.0, 2), (3.0, 4, 5)]); }", "type-mismatch");
    rejects("main { print([(1.0, 2), 3.0]); }", "type-mismatch");
    rejects("main { print([(1.0, 2), (true, 4)]); }", "type-mismatch");
    rejects(
        "main { let p: (f32, i64)[2] = [(1.0, 2.5), (3.0, 4)]; print(p); }",
        "type-mismatch",
    );
    rejects(
        "main { print([[(1.0, 2)], [(3.0, 4), (5.0, 6)]]); }",
        "shape-mismatch",
    );
    rejects("main { print([((1.0, 2), 3)]); }", "type-mismatch");
    rejects(
        "main { let e: (f32, i64)[1] = []; print(e); }",
        "type-mismatch",
    );
}

#[test]
fn a_scatter_of_tuples_binds_a_computed_index_once() {
    let text = "op f(p: (f32, i64)[N], k: i64[M], v: (f32, i64)[M]) -> (f32, i64)[N] = scatter(p, (k + 1) % N, v)";
    let (prog, codes) = check_files(&[(None, text)]);
    assert!(codes.is_empty(), "{codes:?}");
    let f = prog.funcs.iter().find(|f| f.name == "f").expect("the op");
    // One `let` of the index, read by both fields' scatters.
    let crate::hir::ExprKind::Block(b) = &f.body.expr.kind else {
        panic!("a block binding the index: {:?}", f.body.expr.kind)
    };
    assert_eq!(b.stmts.len(), 1);
    let crate::hir::Stmt::Let { local, .. } = &b.stmts[0] else {
        panic!("a let")
    };
    let Some(crate::hir::ExprKind::Tuple(items)) = b.tail.as_ref().map(|t| &t.kind) else {
        panic!("a tuple of scatters")
    };
    for item in items {
        let crate::hir::ExprKind::Builtin(_, args) = &item.kind else {
            panic!("a scatter")
        };
        assert!(matches!(args[1].kind, crate::hir::ExprKind::Local(l) if l == *local));
    }
    // A plain local index needs no binding.
    let text =
        "op f(p: (f32, i64)[N], k: i64[M], v: (f32, i64)[M]) -> (f32, i64)[N] = scatter(p, k, v)";
    let (prog, _) = check_files(&[(None, text)]);
    let f = prog.funcs.iter().find(|f| f.name == "f").expect("the op");
    assert!(matches!(f.body.expr.kind, crate::hir::ExprKind::Tuple(_)));
}
