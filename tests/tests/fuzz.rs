//! Property tests of the front end and the checker: arbitrary text, soups of Flow tokens,
//! and conformance programs with a few tokens spliced in or cut out. Whatever the input,
//! `syntax::parse`, the dumps and `compile_sources` return without panicking; a rejected
//! program has at least one error; every diagnostic's spans lie inside its file; and the
//! diagnostics render.

use std::sync::OnceLock;

use flowc::base::{Diagnostic, SourceMap};
use flowc::driver::{compile_sources, RenderConfig};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

/// Every keyword and punctuation token, a few names, numbers and strings (with
/// interpolations, escapes and broken ones), and some characters that are not Flow at all.
const TOKENS: &[&str] = &[
    // Keywords.
    "fn",
    "op",
    "monoid",
    "proc",
    "main",
    "test",
    "use",
    "let",
    "var",
    "for",
    "in",
    "while",
    "if",
    "else",
    "as",
    "state",
    "true",
    "false",
    "sum",
    "prod",
    "max",
    "min",
    "any",
    "all",
    "reduce",
    // Punctuation.
    "_",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ":",
    "::",
    ".",
    "..",
    "->",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "<<",
    ">>",
    "|>",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&&",
    "||",
    "!",
    // Names: values, shape variables, types, built-ins, stdlib.
    "x",
    "y",
    "i",
    "j",
    "k",
    "N",
    "M",
    "B",
    "f",
    "g",
    "relu",
    "f32",
    "f64",
    "i32",
    "i64",
    "bool",
    "str",
    "zero",
    "wrap",
    "combine",
    "unwrap",
    "commutative",
    "print",
    "load",
    "save",
    "args",
    "len",
    "exp",
    "map",
    "zip_with",
    "pad",
    "clamp_edge",
    "rand_uniform",
    "eval",
    "assert_close",
    "inf",
    "nan",
    "std",
    "t",
    "_x",
    // Numbers.
    "0",
    "1",
    "2",
    "3",
    "10",
    "0.5",
    "1.0",
    "1e-5",
    "2.5e3",
    "0.1",
    "99999999999999999999",
    "1e999",
    // Strings.
    "\"hi\"",
    "\"{x}\"",
    "\"{x + 1} and {{braces}}\"",
    "\"{\"",
    "\"}\"",
    "\"{}\"",
    "\"{1 +}\"",
    "\"\\q\"",
    "\"{\"{x}\"}\"",
    "\"unterminated",
    // Not Flow.
    "@",
    "$",
    "#",
    "`",
    "é",
    "\u{0}",
    "\\",
    "'",
    "?",
    "~",
    "^",
    "&",
    "|",
    "\n",
    "//",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(TOKENS).prop_map(str::to_string),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        1 => "[0-9]{1,4}(\\.[0-9]{1,3})?",
        1 => "\"[a-z{} +]{0,8}\"",
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text(text in any::<String>()) {
        survives(&text)?;
    }

    #[test]
    fn token_soup(tokens in prop::collection::vec(token(), 0..64)) {
        survives(&tokens.join(" "))?;
    }

    #[test]
    fn spliced_conformance_programs(
        program in any::<Index>(),
        at in any::<Index>(),
        cut in 0..3usize,
        insert in prop::collection::vec(token(), 0..4),
    ) {
        let programs = conformance_words();
        let words = &programs[program.index(programs.len())];
        let at = at.index(words.len() + 1);
        let mut spliced: Vec<String> = words[..at].to_vec();
        spliced.extend(insert);
        spliced.extend(words[(at + cut).min(words.len())..].iter().cloned());
        survives(&spliced.join(" "))?;
    }
}

/// The conformance programs as words, comments dropped and line breaks kept as `"\n"`.
fn conformance_words() -> &'static [Vec<String>] {
    static WORDS: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    WORDS.get_or_init(|| {
        flow_tests::flow_files(&flow_tests::conformance_dir())
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("readable");
                text.lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .flat_map(|l| {
                        l.split_whitespace()
                            .map(str::to_string)
                            .chain(["\n".into()])
                    })
                    .collect()
            })
            .collect()
    })
}

fn survives(text: &str) -> Result<(), TestCaseError> {
    let mut sm = SourceMap::new();
    let id = sm.add("fuzz.flow", text);
    let (_tree, diags) = flowc::syntax::parse(id, text);
    spans_inside(&sm, &diags)?;
    let _ = flowc::driver::dump_ast("fuzz.flow", text);
    match compile_sources(&[("fuzz.flow".to_string(), text.to_string())]) {
        Ok(c) => {
            let _ = flowc::hir::dump::dump_program(&c.program);
        }
        Err(f) => {
            prop_assert!(
                f.diags.iter().any(Diagnostic::is_error),
                "rejected without an error diagnostic"
            );
            spans_inside(&f.sources, &f.diags)?;
            let rendered = f.render(RenderConfig::default());
            prop_assert!(
                rendered.contains("error["),
                "rendering lacks `error[`: {rendered}"
            );
        }
    }
    Ok(())
}

fn spans_inside(sm: &SourceMap, diags: &[Diagnostic]) -> Result<(), TestCaseError> {
    for d in diags {
        for l in &d.labels {
            let len = sm.text(l.span.file).len() as u32;
            prop_assert!(
                l.span.lo <= l.span.hi && l.span.hi <= len,
                "span {:?} outside its file ({len} bytes) in `{}`",
                l.span,
                d.message
            );
        }
    }
    Ok(())
}
