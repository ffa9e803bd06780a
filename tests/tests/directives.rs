//! The directive parser of `tests/src/directives.rs`.

use flow_tests::directives::parse;

#[test]
fn reads_every_directive() {
    let d = parse(
        "// expect-stdout: [1, 2]\n// expect-error: Shape\n  // expect-launches: 2\n\
         // backends: jit interp\n// command: run\n// A comment: with a colon.\nop f() -> f32 = 1.0\n",
    )
    .unwrap();
    assert_eq!(d.expect_stdout, ["[1, 2]"]);
    assert_eq!(d.expect_error, ["Shape"]);
    assert_eq!(d.expect_launches, Some(2));
    assert_eq!(d.backends, ["jit", "interp"]);
    assert_eq!(d.command.as_deref(), Some("run"));
}

#[test]
fn rejects_unknown_and_empty_expectations() {
    assert!(parse("// expect-stdot: 1\n").is_err());
    assert!(parse("// expect-error:\n").is_err());
    assert!(parse("// expect-launches: two\n").is_err());
    assert!(parse("// command: build\n").is_err());
}

#[test]
fn conformance_directives_parse() {
    for dir in [
        flow_tests::conformance_dir(),
        flow_tests::conformance_dir().join("errors"),
    ] {
        for path in flow_tests::flow_files(&dir) {
            let text = std::fs::read_to_string(&path).unwrap();
            let d = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let is_error = dir.ends_with("errors");
            assert_eq!(
                d.expect_error.is_empty(),
                !is_error,
                "{}: error programs, and only they, have `expect-error`",
                path.display()
            );
        }
    }
}
