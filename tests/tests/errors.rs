//! Programs that must be rejected: every `tests/conformance/errors/*.flow` and every
//! `tests/cases/errors/*.flow`. `flowc check FILE` (or the file's `// command: run`) must
//! exit with 1 without a crash, with each `// expect-error:` text (any case) and a
//! `FILE:LINE:COL` location on stderr; the rendered diagnostics are a snapshot per file.

use std::path::Path;

use flow_tests::{
    cases_dir, cli_rejects, conformance_dir, diagnostics_snapshot, flow_files, load_case,
};

fn cli_rejects_all(dir: &Path) {
    let files = flow_files(dir);
    assert!(files.len() > 1, "no error programs in {}", dir.display());
    let failures: Vec<String> = files
        .iter()
        .map(|p| load_case(p))
        .filter_map(|c| cli_rejects(&c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn conformance_rejected_by_cli() {
    cli_rejects_all(&conformance_dir().join("errors"));
}

#[test]
fn cases_rejected_by_cli() {
    cli_rejects_all(&cases_dir().join("errors"));
}

#[test]
fn conformance() {
    insta::glob!("../conformance/errors", "*.flow", |path| {
        insta::assert_snapshot!(diagnostics_snapshot(&load_case(path)));
    });
}

#[test]
fn cases() {
    insta::glob!("../cases/errors", "*.flow", |path| {
        insta::assert_snapshot!(diagnostics_snapshot(&load_case(path)));
    });
}
