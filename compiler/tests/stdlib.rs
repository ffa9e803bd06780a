//! End-to-end tests of the standard library through the `flowc` binary: every module
//! type-checks on its own and passes its own `test` blocks, every public item has a test and a
//! line in its `docs/stdlib/` page, every `*_backward` has a gradient check, and a program that
//! uses the stdlib runs its own tests only. Also the examples' file outputs and inputs
//! (`examples/heat.flow` snapshots, `examples/stats.flow` with a file argument); their stdout
//! is checked by `conformance.rs`. And the worked example of `docs/stdlib/layers.md` prints
//! what the page shows.

use crate::common::{flowc, repo};

use std::process::{Command, Output};

use flow_runtime::{read_npy, write_npy, Data, Tensor};

/// Runs `flowc ARGS` from the repository root.
fn run(args: &[&str]) -> Output {
    Command::new(flowc())
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("flowc runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The stdlib modules, from the embedded list, after checking that it names exactly the
/// files of `stdlib/`.
fn modules() -> Vec<&'static str> {
    let mut embedded: Vec<&str> = flowc::driver::stdlib::MODULES
        .iter()
        .map(|(m, _)| *m)
        .collect();
    embedded.sort();
    let mut files: Vec<String> = std::fs::read_dir(repo().join("stdlib"))
        .expect("stdlib/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        embedded, files,
        "MODULES in driver/stdlib.rs vs stdlib/*.flow"
    );
    embedded
}

fn source(module: &str) -> String {
    std::fs::read_to_string(repo().join(format!("stdlib/{module}.flow"))).expect("readable")
}

/// The public items of a module: `fn`, `op`, `monoid` and `proc` definitions at the start of
/// a line whose name does not start with `_`.
fn public_items(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| {
            let rest = ["fn ", "op ", "monoid ", "proc "]
                .iter()
                .find_map(|k| l.strip_prefix(k))?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && !name.starts_with('_')).then_some(name)
        })
        .collect()
}

/// The names of the `test "…"` blocks of a source.
fn test_names(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| l.strip_prefix("test \""))
        .filter_map(|l| l.split_once('"').map(|x| x.0.to_string()))
        .collect()
}

/// Whether a test name is about `item`: the name is the item's, or starts with it and `:`.
fn names_item(test: &str, item: &str) -> bool {
    test == item || test.starts_with(&format!("{item}:"))
}

#[test]
fn every_module_checks_standalone() {
    for m in modules() {
        let path = format!("stdlib/{m}.flow");
        let out = run(&["check", &path]);
        assert!(out.status.success(), "{path}:\n{}", text(&out));
        assert!(
            out.stderr.is_empty(),
            "{path} has warnings:\n{}",
            text(&out)
        );
    }
}

/// The backends `flowc test --backend` offers (`interp`, and `jit` where it is built).
fn backends() -> Vec<&'static str> {
    let help = text(&run(&["test", "--help"]));
    ["interp", "jit"]
        .into_iter()
        .filter(|b| help.contains(&format!("- {b}:")))
        .collect()
}

#[test]
fn every_module_passes_its_tests_on_every_backend() {
    let backends = backends();
    assert!(backends.contains(&"interp"), "no interp backend");
    for b in backends {
        for m in modules() {
            let path = format!("stdlib/{m}.flow");
            let out = run(&["test", "--backend", b, &path]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{path} ({b}):\n{}", text(&out));
            let last = stdout.lines().last().unwrap_or("");
            let passed: usize = last
                .strip_suffix(" passed, 0 failed")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{path} ({b}): unexpected summary `{last}`"));
            assert_eq!(
                passed,
                test_names(&source(m)).len(),
                "{path} ({b}): every test block runs"
            );
        }
    }
}

#[test]
fn every_public_item_has_a_test_and_a_doc_entry() {
    for m in modules() {
        let src = source(m);
        let items = public_items(&src);
        assert!(!items.is_empty(), "{m} has no public items");
        let tests = test_names(&src);
        let page = std::fs::read_to_string(repo().join(format!("docs/stdlib/{m}.md")))
            .unwrap_or_else(|e| panic!("docs/stdlib/{m}.md: {e}"));
        for item in &items {
            assert!(
                tests.iter().any(|t| names_item(t, item)),
                "stdlib/{m}.flow: `{item}` has no test named after it"
            );
            assert!(
                page.contains(&format!("`{item}`")) || page.contains(&format!("`{item}(")),
                "docs/stdlib/{m}.md does not mention `{item}`"
            );
        }
    }
}

#[test]
fn every_backward_pass_has_a_gradient_check() {
    let mut checked = 0;
    for m in modules() {
        let src = source(m);
        let tests = test_names(&src);
        for item in public_items(&src)
            .iter()
            .filter(|i| i.ends_with("_backward"))
        {
            let want = format!("{item}: central differences");
            assert!(tests.contains(&want), "stdlib/{m}.flow: no test \"{want}\"");
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} backward passes");
}

#[test]
fn a_program_using_the_stdlib_runs_only_its_own_tests() {
    let dir = std::env::temp_dir().join(format!("flowc-stdlib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let uses: String = modules()
        .iter()
        .map(|m| format!("use std::{m};\n"))
        .collect();
    let f = dir.join("user.flow");
    std::fs::write(
        &f,
        format!(
            "{uses}test \"mine\" {{\n    assert_close(mean([1.0, 3.0]), 2.0);\n    \
             assert_close(matmul([[2.0]], [[3.0]]), [[6.0]]);\n}}\n"
        ),
    )
    .expect("write");
    let out = run(&["test", f.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn heat_example_saves_snapshots_that_load_back() {
    let dir = std::env::temp_dir().join(format!("flowc-heat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = run(&["run", "examples/heat.flow", "--", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut totals = Vec::new();
    for step in [0, 100, 200, 300, 400] {
        let path = dir.join(format!("heat_{step}.npy"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let t = read_npy(&bytes).expect("a valid .npy file");
        assert_eq!(t.shape, vec![32, 32]);
        let Data::F32(v) = &t.data else {
            panic!("{}: not f32", path.display())
        };
        totals.push(v.iter().map(|x| f64::from(*x)).sum::<f64>());
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!((totals[0] - 6400.0).abs() < 1e-3, "{totals:?}");
    assert!(totals.windows(2).all(|w| w[1] < w[0]), "{totals:?}");
}

#[test]
fn stats_example_reads_the_file_it_is_given() {
    let dir = std::env::temp_dir().join(format!("flowc-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Four rows: the columns have means 2.5, 25 and 0, and the first a std of sqrt(1.25).
    let t = Tensor::new(
        vec![4, 3],
        Data::F32(vec![
            1.0, 10.0, -1.0, 2.0, 20.0, 1.0, 3.0, 30.0, -1.0, 4.0, 40.0, 1.0,
        ]),
    )
    .expect("tensor");
    let f = dir.join("table.npy");
    std::fs::write(&f, write_npy(&t)).expect("write");
    let out = run(&["run", "examples/stats.flow", "--", f.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for want in [
        "rows: 4",
        "height: mean 2.5, std 1.12, skewness 0, excess kurtosis -1.36",
        "reaction: mean 25, std 11.18, skewness 0, excess kurtosis -1.36",
        "waiting: mean 0, std 1, skewness 0, excess kurtosis -2",
    ] {
        assert!(
            stdout.lines().any(|l| l == want),
            "no `{want}` in:\n{stdout}"
        );
    }
}

/// The fenced block of `lang` that follows the line `after` in `page`.
fn fenced(page: &str, after: &str, lang: &str) -> String {
    let start = page.find(after).expect("the marker is in the page");
    let open = format!("```{lang}\n");
    let from = start + page[start..].find(&open).expect("a fenced block") + open.len();
    let len = page[from..].find("\n```").expect("a closed block") + 1;
    page[from..from + len].to_string()
}

#[test]
fn the_layer_guide_runs() {
    // docs/stdlib/layers.md's worked example prints what the page says, on every backend.
    let page = std::fs::read_to_string(repo().join("docs/stdlib/layers.md")).expect("readable");
    let program = fenced(&page, "## A worked example", "flow");
    let want = fenced(&page, "It prints", "text");
    let dir = std::env::temp_dir().join(format!("flowc-guide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let f = dir.join("layer.flow");
    std::fs::write(&f, &program).expect("writable");
    let backends = backends();
    assert!(backends.contains(&"interp"), "no interp backend");
    for b in backends {
        let out = run(&["run", "--backend", b, f.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "the guide's example ({b}):\n{}",
            text(&out)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "its output ({b})"
        );
        for line in program.lines() {
            if let Some(l) = line.strip_prefix("// expect-stdout: ") {
                assert!(want.lines().any(|w| w == l), "the page shows `{l}`");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
