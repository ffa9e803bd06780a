//! Property tests of the front end and the checker: arbitrary text, soups of Flow tokens,
//! conformance programs with a few tokens spliced in or cut out, and the generator's deeply
//! nested and very long programs; and bounded runs of the
//! mutation fuzzer (`flow_tests::fuzz`) over the committed corpus, on the front end and on the
//! `.npy` reader (`FLOW_FUZZ_SECS` sets their time, 2 s each by default; `FLOW_FUZZ_SEED`
//! their seed). Whatever the input,
//! `syntax::parse`, the dumps and `compile_sources` return without panicking; a rejected
//! program has at least one error; every diagnostic's spans lie inside its file; and the
//! diagnostics render.

use std::sync::OnceLock;

use flowc::base::{Diagnostic, SourceMap};
use flowc::driver::{compile_sources, RenderConfig};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

use flow_tests::fuzz::{self, TOKENS};

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

// ---- the mutation fuzzer, bounded ----

fn fuzz_budget() -> std::time::Duration {
    let secs = std::env::var("FLOW_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    std::time::Duration::from_secs_f64(secs)
}

fn fuzz_seed() -> u64 {
    std::env::var("FLOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f10e)
}

fn bounded_fuzz(
    name: &str,
    target: fn(&[u8]) -> fuzz::Verdict,
    dict: &[&str],
    generate: Option<fuzz::Generator>,
) {
    let corpus = fuzz::load_corpus(&fuzz::corpus_dir(name));
    assert!(corpus.len() >= 5, "the {name} corpus is missing");
    let inputs: Vec<Vec<u8>> = corpus.iter().map(|(_, b)| b.clone()).collect();
    let report = fuzz::run(target, &inputs, dict, generate, fuzz_budget(), fuzz_seed());
    let crashes: Vec<String> = report
        .crashes
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let path = fuzz::save_crash(name, n, c);
            format!("{}: {}", path.display(), c.message)
        })
        .collect();
    assert!(
        crashes.is_empty(),
        "{} crash(es) in {} runs:\n{}",
        crashes.len(),
        report.execs,
        crashes.join("\n")
    );
    assert!(report.execs > inputs.len(), "{report:?}");
    assert!(report.accepted > 0, "no input was accepted: {report:?}");
}

#[test]
fn bounded_fuzz_front_end() {
    bounded_fuzz("flow", fuzz::target_flow, TOKENS, Some(fuzz::generate_flow));
}

#[test]
fn bounded_fuzz_npy() {
    bounded_fuzz("npy", fuzz::target_npy, fuzz::NPY_WORDS, None);
}

#[test]
fn deep_and_long_programs_reach_the_front_end() {
    // Every shape the generator makes, at its largest and at a modest size, once per run
    // whatever the budget, through `flowc check` (a process each: a stack overflow aborts
    // its process): a diagnostic or success, never a crash.
    let dir = std::env::temp_dir().join(format!("flow-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let mut failures = Vec::new();
    for shape in fuzz::Shape::ALL {
        for n in [fuzz::MAX_DEPTH, 64] {
            let text = fuzz::deep_program(shape, n);
            assert!(text.len() <= fuzz::MAX_LEN);
            let name = format!("{shape:?}-{n}.flow");
            std::fs::write(dir.join(&name), &text).expect("write");
            let out = flow_tests::flowc(["check", name.as_str()], &dir);
            if out.crashed() || !matches!(out.code, Some(0 | 1)) {
                let tail: String = out.stderr.chars().take(300).collect();
                failures.push(format!("{name}: exit {:?}: {tail}", out.code));
            }
        }
    }
    // The modest ones are valid programs: the generator makes Flow, not noise.
    for shape in fuzz::Shape::ALL {
        let text = String::from_utf8(fuzz::deep_program(shape, 3)).expect("utf-8");
        if let Err(f) = compile_sources(&[("gen.flow".to_string(), text.clone())]) {
            failures.push(format!(
                "{shape:?} x3 does not compile:\n{text}\n{}",
                f.render(RenderConfig::default())
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_fuzzer_finds_a_planted_bug() {
    // The harness itself can fail: a target that panics on a token from the dictionary.
    fn planted(b: &[u8]) -> fuzz::Verdict {
        assert!(!b.windows(5).any(|w| w == b"monoi"), "planted bug");
        Ok(true)
    }
    let report = fuzz::run(
        planted,
        &[b"fn f(x: f32) -> f32 = x".to_vec()],
        &["monoi", "fn", "(", ")"],
        None,
        std::time::Duration::from_secs(5),
        1,
    );
    assert!(!report.crashes.is_empty(), "{report:?}");
    assert!(report.crashes[0].message.contains("planted bug"));
}

#[test]
fn the_allocation_probe_sees_a_large_allocation() {
    let (v, largest) = fuzz::largest_allocation(|| vec![1u8; 3 << 20]);
    assert_eq!(v.len(), 3 << 20);
    assert!(largest.is_some_and(|l| l >= 3 << 20), "{largest:?}");
}

#[test]
fn fuzz_regressions_stay_fixed() {
    // Every crash the fuzzer found, kept in the corpus as `regress-*` once fixed.
    let mut seen = 0;
    for (name, target) in [
        ("flow", fuzz::target_flow as fuzz::Target),
        ("npy", fuzz::target_npy),
    ] {
        for (path, bytes) in fuzz::load_corpus(&fuzz::corpus_dir(name)) {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            if !file.starts_with("regress-") {
                continue;
            }
            seen += 1;
            let slow = std::time::Duration::from_secs(10);
            if let Err(e) = fuzz::check(target, &bytes, slow) {
                panic!("{}: {e}", path.display());
            }
        }
    }
    assert!(seen >= 1, "the regression cases are missing");
}
