//! Programs that once crashed `flowc`, reached users as an internal error after a clean
//! `check`, or gave a silently wrong result (issue 14). Each is written to a scratch folder
//! and run through the `flowc` binary: it must not crash, and must print what it computes
//! or be refused with the expected diagnostic code and a location.

use std::path::PathBuf;

use flow_tests::{flowc, Output};

/// Writes `text` as `NAME.flow` in a scratch folder and runs `flowc COMMAND` on it.
fn flowc_text(command: &str, name: &str, text: &str) -> Output {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("flow-tests-robust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let file = format!("{name}.flow");
    std::fs::write(dir.join(&file), text).expect("the program is written");
    let out = flowc([command, file.as_str()], &dir);
    assert!(!out.crashed(), "{name}: flowc crashed:\n{}", out.stderr);
    assert!(
        !out.stderr.contains("internal error"),
        "{name}: an internal error reached the user:\n{}",
        out.stderr
    );
    out
}

/// Runs a program that must succeed; returns its standard output.
#[track_caller]
fn runs(name: &str, text: &str) -> String {
    let out = flowc_text("run", name, text);
    assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
    out.stdout
}

/// Runs `flowc COMMAND` on a program that must be refused with `code`, at a location.
#[track_caller]
fn refused(command: &str, name: &str, text: &str, code: &str) -> String {
    let out = flowc_text(command, name, text);
    assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{name}.flow:")) && first.contains(&format!("error[{code}]")),
        "{name}: expected a located `{code}`, got:\n{}",
        out.stderr
    );
    out.stderr
}

#[test]
fn a_tuple_result_of_an_fn_works_in_comprehensions_and_the_coordinator() {
    let f = "fn f(a: f32, b: i64) -> (f32, i64) = if a > 0.0 { (a, b) } else { (0.0, b) }\n";
    let out = runs(
        "tuple_fn",
        &format!(
            "{f}fn h(t: (f32, i64)) -> f32 = t.0 + t.1 as f32\n\
             main {{\n\
               let x = [1.0, -2.0, 3.0];\n\
               let y[i] = f(x[i], i).0;\n\
               let z[i] = f(x[i], i).1;\n\
               let w[i] = h((x[i], i));\n\
               print(y, z, w);\n\
               print(f(1.0, 2).0);\n\
               let t = f(-1.0, 3);\n\
               print(t.0, t.1);\n\
             }}\n"
        ),
    );
    assert_eq!(out, "[1, 0, 3] [0, 1, 2] [1, -1, 5]\n1\n0 3\n");
}

#[test]
fn random_sizes_from_the_coordinator_and_from_eval_in_place() {
    let out = runs(
        "random_sizes",
        "op cnt(x: f32[N], t: f32) -> i64 = sum[i](if x[i] > t { 1 } else { 0 })\n\
         main {\n\
           let n = 3;\n\
           let r = rand_uniform(0, [n]) as i64;\n\
           print(r);\n\
           let x = [1.0, 2.0, 3.0];\n\
           let a = rand_uniform(0, [eval(cnt(x, 1.5))]);\n\
           let m = eval(cnt(x, 1.5));\n\
           let b = rand_uniform(0, [m]);\n\
           print(a == b);\n\
         }\n",
    );
    assert_eq!(out, "[0, 0, 0]\n[true, true]\n");
}

#[test]
fn a_size_the_graph_computes_says_to_eval_it() {
    let err = refused(
        "run",
        "lazy_size",
        "op cnt(x: f32[N]) -> i64 = sum[i](if x[i] > 1.5 { 1 } else { 0 })\n\
         main { let x = [1.0, 2.0, 3.0]; let r = rand_uniform(0, [cnt(x)]); print(r); }\n",
        "runtime-error",
    );
    assert!(err.contains("eval"), "{err}");
}

#[test]
fn a_dimension_that_overflows_is_a_located_error() {
    refused(
        "run",
        "huge_dim",
        "op g(x: f32[N]) -> f32[4611686018427387904 * N] { let y[i < 4611686018427387904 * N] = x[0]; y }\n\
         main { let x = [1.0, 2.0]; print(g(x)); }\n",
        "runtime-error",
    );
}

#[test]
fn a_non_square_argument_names_both_extents() {
    let err = refused(
        "run",
        "non_square",
        "op sq(m: f32[N, N]) -> f32 = sum[i](m[i, i])\n\
         main { let n = 1000; let m = rand_uniform(0, [2, n]); print(sq(m)); }\n",
        "runtime-error",
    );
    assert!(
        err.contains("[2, 1000]") && err.contains("both 2 and 1000"),
        "{err}"
    );
}

#[test]
fn deep_nesting_is_too_deep_and_moderate_nesting_runs() {
    let n = 100_000;
    for (name, text) in [
        (
            "deep_add",
            format!("main {{ let x = {}; print(x); }}\n", vec!["1"; n].join("+")),
        ),
        (
            "deep_neg",
            format!("main {{ let x = {}1.0; print(x); }}\n", "-".repeat(n)),
        ),
        (
            "deep_not",
            format!("main {{ let x = {}true; print(x); }}\n", "!".repeat(n)),
        ),
        (
            "deep_lit",
            format!(
                "main {{ let x = {}1.0{}; print(x); }}\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
        ),
        (
            "deep_pipe",
            format!(
                "fn g(x: f32) -> f32 = x + 1.0\nmain {{ let x = 1.0{}; print(x); }}\n",
                " |> g".repeat(n)
            ),
        ),
    ] {
        refused("check", name, &text, "too-deep");
    }
    // Just under the limit, every stage copes.
    let terms = 4_900;
    let out = runs(
        "long_sum",
        &format!(
            "main {{ let x = {}; print(x); }}\n",
            vec!["1"; terms].join("+")
        ),
    );
    assert_eq!(out, format!("{terms}\n"));
}

#[test]
fn long_call_chains_run_and_deep_proc_recursion_is_a_clean_error() {
    let mut text = String::from("fn f0(x: f32) -> f32 = x + 1.0\n");
    for i in 1..5_000 {
        text.push_str(&format!("fn f{i}(x: f32) -> f32 = f{}(x) + 1.0\n", i - 1));
    }
    text.push_str("main { print(f4999(0.0)); let y[i < 3] = f4999(i as f32); print(y); }\n");
    assert_eq!(runs("fn_chain", &text), "5000\n[5000, 5001, 5002]\n");

    let rec = "proc r(n: i64) -> i64 { if n == 0 { 0 } else { r(n - 1) + 1 } }\n";
    assert_eq!(
        runs("proc_rec", &format!("{rec}main {{ print(r(5000)); }}\n")),
        "5000\n"
    );
    let err = refused(
        "run",
        "proc_too_deep",
        &format!("{rec}main {{ print(r(100000)); }}\n"),
        "runtime-error",
    );
    assert!(err.contains("too deep"), "{err}");
}

#[test]
fn a_constant_index_past_the_edge_is_refuted_when_checked() {
    refused(
        "check",
        "const_index",
        "main { let a = [1.0, 2.0, 3.0]; print(a[5]); }\n",
        "out-of-bounds",
    );
    refused(
        "check",
        "const_index_op",
        "op f(a: f32[N]) -> f32 = a[-1]\nmain {}\n",
        "out-of-bounds",
    );
}

#[test]
fn an_empty_literal_with_its_shape_annotated_runs() {
    let out = runs(
        "empty_lit",
        "main { let e: f32[0] = []; print(e); print(sum[i](e[i])); }\n",
    );
    assert_eq!(out, "[]\n0\n");
}

/// Every `.flow` file under `dir`, at any depth, sorted.
fn flow_files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "flow") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `flowc COMMAND FILE` on a copy of the file in the empty folder `scratch` (what a run
/// saves stays there), killed after `secs` seconds (a fuzz input may loop forever: that is
/// not a crash). `None` when it was killed.
fn flowc_bounded(
    command: &str,
    file: &std::path::Path,
    scratch: &std::path::Path,
    secs: u64,
) -> Option<Output> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).expect("a scratch folder");
    let name = file.file_name().expect("a file name");
    std::fs::copy(file, scratch.join(name)).expect("the input is copied");
    // Cut by coreutils' `timeout` (exit status 124): tests never wait on the clock themselves.
    let out = std::process::Command::new("timeout")
        .arg(secs.to_string())
        .arg(flow_tests::flowc_path())
        .arg(command)
        .arg(name)
        .current_dir(scratch)
        .env("NO_COLOR", "1")
        .output()
        .expect("timeout runs flowc");
    if out.status.code() == Some(124) {
        return None;
    }
    Some(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The bar, on every input the project keeps: no `flowc check` and no `flowc run` of
/// a case file, a conformance program or a fuzz-corpus program panics, dies by a signal or
/// prints an internal error (runs of corpus programs are cut after a few seconds: some loop).
#[test]
fn no_kept_input_crashes_flowc() {
    let root = flow_tests::workspace_root();
    let mut files = flow_files_under(&root.join("tests/cases"));
    files.extend(flow_files_under(&root.join("tests/conformance")));
    files.extend(
        std::fs::read_dir(root.join("tests/fuzz/corpus/flow"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    );
    assert!(files.len() > 100, "only {} inputs found", files.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..2 {
            let (next, failures, files) = (&next, &failures, &files);
            s.spawn(move || loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(file) = files.get(k) else { break };
                let scratch = std::env::temp_dir()
                    .join(format!("flow-tests-kept-inputs-{}-{t}", std::process::id()));
                for command in ["check", "run"] {
                    let Some(out) = flowc_bounded(command, file, &scratch, 10) else {
                        continue;
                    };
                    if out.crashed() || out.stderr.contains("internal error") {
                        failures.lock().expect("no poisoned lock").push(format!(
                            "flowc {command} {}: exit {:?}\n{}",
                            file.display(),
                            out.code,
                            out.stderr
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("no poisoned lock");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
