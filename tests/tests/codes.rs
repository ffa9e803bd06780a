//! One case file per diagnostic code (STYLE.md practice 6): every `Code::ALL` variant has
//! `tests/cases/errors/<code>.flow`, which starts with `// expect-error: <code>` and whose
//! diagnostics include that code. Codes reported while a program runs have a
//! `// command: run` line. The `errors` suite snapshots and CLI-checks the same files.

use std::path::PathBuf;

use flow_tests::{cases_dir, command, compile, flow_files, load_case, rejection};
use flowc::base::Code;

/// Codes without a case file yet, with the reason. When the reason is gone, add the file and
/// remove the entry (a test fails until you do).
const PENDING: &[(&str, &str)] = &[];

fn case_path(code: Code) -> PathBuf {
    cases_dir()
        .join("errors")
        .join(format!("{}.flow", code.as_str()))
}

#[test]
fn every_code_has_its_case() {
    let mut problems = Vec::new();
    for &code in Code::ALL {
        let path = case_path(code);
        let pending = PENDING.iter().any(|(c, _)| *c == code.as_str());
        match (path.is_file(), pending) {
            (true, true) => problems.push(format!(
                "{}: has a case file now; remove it from PENDING in tests/tests/codes.rs",
                code.as_str()
            )),
            (false, false) => problems.push(format!(
                "{}: add tests/cases/errors/{}.flow starting with `// expect-error: {}`",
                code.as_str(),
                code.as_str(),
                code.as_str()
            )),
            _ => {}
        }
    }
    for (c, _) in PENDING {
        if !Code::ALL.iter().any(|code| code.as_str() == *c) {
            problems.push(format!(
                "{c}: in PENDING but not a diagnostic code any more"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_case_reports_its_code() {
    let mut problems = Vec::new();
    for path in flow_files(&cases_dir().join("errors")) {
        let case = load_case(&path);
        let stem = case.name.trim_end_matches(".flow");
        let Some(code) = Code::ALL.iter().find(|c| c.as_str() == stem) else {
            problems.push(format!("{}: not named after a diagnostic code", case.name));
            continue;
        };
        if case.directives.expect_error != [code.as_str()] {
            problems.push(format!(
                "{}: must have exactly one directive, `// expect-error: {}`",
                case.name,
                code.as_str()
            ));
        }
        if !case.text.starts_with("// expect-error:") {
            problems.push(format!(
                "{}: must start with its `// expect-error:` line",
                case.name
            ));
        }
        if command(&case) == "check" && compile(&case).is_ok() {
            problems.push(format!("{}: compiles, but must report `{code}`", case.name));
            continue;
        }
        let text = rejection(&case);
        if !text.contains(&format!("error[{code}]")) {
            problems.push(format!("{}: no `error[{code}]` among:\n{text}", case.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn codes_are_kebab_case_and_explained() {
    for code in Code::ALL {
        let s = code.as_str();
        assert!(
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "`{s}` is not kebab-case"
        );
        assert!(!code.explanation().is_empty(), "`{s}` has no explanation");
    }
    let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Code::ALL.len(), "two codes share a name");
}

#[test]
fn the_language_reference_lists_every_code() {
    let doc = std::fs::read_to_string(flow_tests::workspace_root().join("docs/language.md"))
        .expect("docs/language.md is readable");
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !doc.contains(&format!("| `{c}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/language.md's table of diagnostics lacks: {}",
        missing.join(", ")
    );
}
