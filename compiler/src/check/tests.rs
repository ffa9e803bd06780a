//! Unit tests of the checker through one helper: sources in, typed program and diagnostic
//! codes out.

use crate::base::SourceMap;
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
