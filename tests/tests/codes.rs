//! One case file per diagnostic code (STYLE.md practice 6): every `Code::ALL` variant has
//! `tests/cases/errors/<code>.flow`, which starts with `// expect-error: <code>` and whose
//! diagnostics include that code. Codes reported while a program runs have a
//! `// command: run` line. The `errors` suite snapshots and CLI-checks the same files.
//! Internal codes ([`INTERNAL`]), which no program can produce from a correct compiler, have
//! no case file; each names the unit test that produces it instead.

use std::path::PathBuf;

use flow_tests::{cases_dir, command, compile, flow_files, load_case, rejection};
use flowc::base::Code;

/// Codes without a case file yet, with the reason. When the reason is gone, add the file and
/// remove the entry (a test fails until you do).
const PENDING: &[(&str, &str)] = &[];

/// Codes of internal invariant failures: a program that produced one would have found a bug,
/// so no case file can. Each entry names the unit test that produces the code by breaking an
/// invariant on purpose; such a code must have no case file.
const INTERNAL: &[(&str, &str)] = &[(
    "compiler-bug",
    "compiler/src/exec/tests/mod.rs: a_pass_that_breaks_the_mir_is_a_compiler_bug",
)];

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
        let pending = PENDING
            .iter()
            .chain(INTERNAL)
            .any(|(c, _)| *c == code.as_str());
        if INTERNAL.iter().any(|(c, _)| *c == code.as_str()) {
            if path.is_file() {
                problems.push(format!(
                    "{}: an internal code (INTERNAL in tests/tests/codes.rs) has no case file",
                    code.as_str()
                ));
            }
            continue;
        }
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
    for (c, test) in INTERNAL {
        let (file, name) = test.split_once(": ").expect("`FILE: TEST`");
        let text =
            std::fs::read_to_string(flow_tests::workspace_root().join(file)).unwrap_or_default();
        if !text.contains(&format!("fn {name}()"))
            || !text.contains(&format!("Code::{}", pascal(c)))
        {
            problems.push(format!(
                "{c}: {file} has no test `{name}` that checks for the code"
            ));
        }
    }
    for (c, _) in PENDING.iter().chain(INTERNAL) {
        if !Code::ALL.iter().any(|code| code.as_str() == *c) {
            problems.push(format!(
                "{c}: in PENDING or INTERNAL but not a diagnostic code any more"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `compiler-bug` as its `Code` variant, `CompilerBug`.
fn pascal(code: &str) -> String {
    code.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
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
