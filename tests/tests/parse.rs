//! AST dump snapshots: every conformance program and every `tests/cases/parse/*.flow`
//! (syntax forms, and `*_err.flow` files that show error recovery).

use flow_tests::{ast_snapshot, load_case};

#[test]
fn conformance() {
    insta::glob!("../conformance", "*.flow", |path| {
        insta::assert_snapshot!(ast_snapshot(&load_case(path)));
    });
}

#[test]
fn cases() {
    insta::glob!("../cases/parse", "*.flow", |path| {
        let case = load_case(path);
        let snap = ast_snapshot(&case);
        // A file that shows recovery must have diagnostics; any other must have none.
        let has_diags = snap.contains("----- DIAGNOSTICS");
        assert_eq!(
            has_diags,
            case.name.ends_with("_err.flow"),
            "{}: only `*_err.flow` cases may have syntax errors\n{snap}",
            case.name
        );
        insta::assert_snapshot!(snap);
    });
}
