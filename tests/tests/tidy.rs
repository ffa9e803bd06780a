//! Tidy checks as ordinary tests (STYLE.md practice 17). The checks live in
//! `tests/src/tidy.rs`; each test here asserts one of them finds nothing.

use flow_tests::tidy::{self, SnapshotFamily};
use flow_tests::{cases_dir, conformance_dir, workspace_root};

fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    assert_clean(
        "missing `//!` headers",
        tidy::missing_doc_headers(&workspace_root()),
    );
}

#[test]
fn no_oversized_files() {
    assert_clean("oversized files", tidy::oversized_files(&workspace_root()));
}

#[test]
fn no_disabled_tests() {
    assert_clean("disabled tests", tidy::disabled_tests(&workspace_root()));
}

#[test]
fn modules_respect_the_layering() {
    assert_clean("layering", tidy::layering_violations(&workspace_root()));
}

#[test]
fn only_the_pipeline_names_the_passes() {
    assert_clean(
        "mir::passes outside the pipeline",
        tidy::passes_used_outside_pipeline(&workspace_root()),
    );
}

#[test]
fn known_layering_debts_are_still_real() {
    assert_clean(
        "stale exceptions",
        tidy::stale_exceptions(&workspace_root()),
    );
}

#[test]
fn io_only_at_the_edges() {
    assert_clean(
        "I/O outside driver/ and bin/",
        tidy::io_outside_edges(&workspace_root()),
    );
}

#[test]
fn runtime_depends_on_no_compiler_crate() {
    assert_clean(
        "runtime dependencies",
        tidy::runtime_dependency_violations(&workspace_root()),
    );
}

#[test]
fn no_orphan_snapshots() {
    let family = |prefix: &str, dir| SnapshotFamily {
        prefix: format!("all__{prefix}"),
        dir,
    };
    let families = [
        family("parse__conformance", conformance_dir()),
        family("parse__cases", cases_dir().join("parse")),
        family("check__conformance", conformance_dir()),
        family("check__cases", cases_dir().join("check")),
        family("errors__conformance", conformance_dir().join("errors")),
        family("errors__cases", cases_dir().join("errors")),
        family("mir__conformance_mir", conformance_dir()),
        family("passes__mir_cases", cases_dir().join("passes")),
        family("passes__flow_cases", cases_dir().join("passes")),
        family("passes__explain_cases", cases_dir().join("passes")),
    ];
    let snap_dir = workspace_root().join("tests/tests/snapshots");
    assert_clean(
        "orphan snapshots",
        tidy::orphan_snapshots(&snap_dir, &families),
    );
}

// The scanners themselves, on small inputs.

#[test]
fn scanner_expands_grouped_paths() {
    let code = tidy::strip_comments_and_strings(
        "use crate::{base::Span, check::{self, errors}};\n\
         // use crate::mir;\n\
         let s = \"crate::driver\";\n\
         let r = r#\"crate::exec\"#;\n\
         use std::{fs, io::Write};\n",
    );
    let mods = tidy::crate_modules(&code, "compiler/src/syntax/x.rs");
    assert_eq!(mods, ["base", "check", "check"]);
    let std: Vec<String> = tidy::paths_from(&code, "std")
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(std, ["std::fs", "std::io::Write"]);
}

#[test]
fn scanner_follows_super_to_the_root() {
    let code = "use super::span; use super::super::driver::x;";
    assert_eq!(
        tidy::crate_modules(code, "compiler/src/base/diag.rs"),
        ["driver"]
    );
    assert_eq!(
        tidy::crate_modules("use super::check;", "compiler/src/syntax/mod.rs"),
        ["check"]
    );
}

#[test]
fn scanner_finds_macros_but_not_lookalikes() {
    assert!(tidy::macro_used("fn f() { println!(\"\"); }", "println"));
    assert!(!tidy::macro_used("fn f() { eprintln!(\"\"); }", "println"));
    assert!(!tidy::macro_used("fn f() { eprintln!(\"\"); }", "print"));
    assert!(!tidy::macro_used("let printer = 1;", "print"));
}

#[test]
fn the_cli_page_names_every_command() {
    let help = flow_tests::flowc(["--help"], &workspace_root());
    assert_eq!(help.code, Some(0), "flowc --help failed:\n{}", help.stderr);
    let doc = std::fs::read_to_string(workspace_root().join("docs/cli.md"))
        .expect("docs/cli.md is readable");
    let missing: Vec<String> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help" && !doc.contains(&format!("flowc {c} ")))
        .map(str::to_string)
        .collect();
    assert!(
        missing.is_empty(),
        "docs/cli.md does not describe: {}",
        missing.join(", ")
    );
}
