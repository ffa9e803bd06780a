//! The checker on programs that must compile: every conformance program checks without
//! errors, and its typed dump (signatures, types, shapes, index ranges) is a snapshot; the
//! same for `tests/cases/check/*.flow`.

use flow_tests::{compile, conformance_dir, flow_files, load_case, render, typed_snapshot};

#[test]
fn conformance_programs_compile() {
    let files = flow_files(&conformance_dir());
    assert!(!files.is_empty(), "no conformance programs found");
    let mut failures = Vec::new();
    for path in files {
        let case = load_case(&path);
        if let Err(f) = compile(&case) {
            failures.push(format!("{}:\n{}", case.name, render(&f)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn conformance() {
    insta::glob!("../conformance", "*.flow", |path| {
        insta::assert_snapshot!(typed_snapshot(&load_case(path)));
    });
}

#[test]
fn cases() {
    insta::glob!("../cases/check", "*.flow", |path| {
        let case = load_case(path);
        if let Err(f) = compile(&case) {
            panic!("{} must compile:\n{}", case.name, render(&f));
        }
        insta::assert_snapshot!(typed_snapshot(&case));
    });
}
