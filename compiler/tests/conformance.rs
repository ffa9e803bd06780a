//! End-to-end tests of the `flowc` binary: the conformance suite (`tests/conformance/`) (through its own
//! runner), the examples' expected output, and the MIR text form of every graph the
//! conformance programs dispatch.

use crate::common::{each_parallel, flow_files, flowc, repo};

use std::path::{Path, PathBuf};
use std::process::Command;

fn conformance_dir() -> PathBuf {
    repo().join("tests/conformance")
}

#[test]
fn conformance_runner_passes() {
    let out = Command::new("bash")
        .arg(conformance_dir().join("run.sh"))
        .arg(flowc())
        .output()
        .expect("bash runs the conformance runner");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "conformance failures:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.ends_with(" 0 failed")),
        "{text}"
    );
}

/// `// expect-stdout:` lines, in order, each a whole line of the output.
fn check_expected(path: &Path, stdout: &str) {
    let src = std::fs::read_to_string(path).expect("example is readable");
    let want = crate::common::directives::parse(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .expect_stdout;
    assert!(
        !want.is_empty(),
        "{} has no expect-stdout lines",
        path.display()
    );
    let mut lines = stdout.lines();
    for w in want {
        assert!(
            lines.any(|l| l.trim() == w),
            "{}: stdout lacks `{w}`:\n{stdout}",
            path.display()
        );
    }
}

#[test]
fn examples_print_what_they_promise() {
    let mut programs = flow_files(&repo().join("examples"));
    programs.extend(flow_files(&repo().join("benches")));
    for path in programs {
        // From the repository root, where the examples' relative data paths start.
        let out = Command::new(flowc())
            .arg("run")
            .arg(&path)
            .current_dir(repo())
            .output()
            .expect("flowc runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        check_expected(&path, &stdout);
    }
}

#[test]
fn mir_text_round_trips_for_every_dispatched_graph() {
    let mut graphs = 0;
    for path in flow_files(&conformance_dir()) {
        let out = Command::new(flowc())
            .args(["ir", "--stage", "mir"])
            .arg(&path)
            .output()
            .expect("flowc runs");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for chunk in text.split("// graph ").skip(1) {
            let body = chunk.split_once('\n').map(|x| x.1).unwrap_or("");
            let g = flowc::mir::parse(body)
                .unwrap_or_else(|e| panic!("{}: {e:?}\n{body}", path.display()));
            flowc::mir::verify(&g).unwrap_or_else(|e| panic!("{}: {e}\n{body}", path.display()));
            assert_eq!(
                flowc::mir::print(&g),
                body,
                "{}: print(parse(text)) != text",
                path.display()
            );
            graphs += 1;
        }
    }
    assert!(graphs > 20, "only {graphs} graphs were dispatched");
}

#[test]
fn test_command_reports_each_test_and_a_summary() {
    let out = Command::new(flowc())
        .arg("test")
        .arg(conformance_dir().join("10_tests.flow"))
        .output()
        .expect("flowc runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("double doubles") && text.contains("sum of doubled"),
        "{text}"
    );
    assert!(text.lines().last() == Some("2 passed, 0 failed"), "{text}");
}

#[test]
fn failing_test_gives_exit_one_and_names_the_location() {
    let dir = std::env::temp_dir().join(format!("flowc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let f = dir.join("bad.flow");
    std::fs::write(
        &f,
        "test \"wrong\" {\n    assert_close(1.0 + 1.0, 3.0);\n}\n",
    )
    .expect("write");
    let out = Command::new(flowc())
        .arg("test")
        .arg(&f)
        .output()
        .expect("flowc runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("FAIL") && stdout.contains("0 passed, 1 failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("bad.flow:2:5") && stderr.contains("assertion-failed"),
        "{stderr}"
    );
}

/// Runs `flowc run` with extra flags from the repository root; stdout, stderr and status.
fn run_with(path: &Path, flags: &[&str]) -> (String, String, Option<i32>) {
    let out = Command::new(flowc())
        .arg("run")
        .args(flags)
        .arg(path)
        .current_dir(repo())
        .output()
        .expect("flowc runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn backends_and_thread_counts_agree_bitwise() {
    let mut programs = flow_files(&conformance_dir());
    programs.extend(flow_files(&repo().join("examples")));
    // The benchmark programs' `main`s run the workloads at reduced sizes.
    programs.extend(flow_files(&repo().join("benches")));
    // Two programs at a time: the runs are independent processes.
    each_parallel(&programs, |path| {
        let reference = run_with(path, &["--backend", "interp"]);
        for threads in ["1", "2", "3", "8"] {
            let jit = run_with(path, &["--backend", "jit", "--threads", threads]);
            if jit != reference {
                return Err(format!(
                    "{} differs between the interpreter and the JIT on {threads} thread(s):\n{reference:?}\n{jit:?}",
                    path.display()
                ));
            }
        }
        Ok(())
    });
}

/// Runs `flowc run FLAGS PROGRAM` in the folder `dir/tag` (made here), asserting success;
/// returns that folder (where the program saved its files) and how long the run took.
fn run_in(
    dir: &std::path::Path,
    program: &std::path::Path,
    tag: &str,
    flags: &[&str],
) -> (std::path::PathBuf, std::time::Duration) {
    let here = dir.join(tag);
    std::fs::create_dir_all(&here).unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(flowc())
        .arg("run")
        .args(flags)
        .arg(program)
        .current_dir(&here)
        .output()
        .expect("flowc runs");
    assert!(
        out.status.success(),
        "{tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (here, started.elapsed())
}

/// GEMMs whose row group runs epilogue members inside the product, on each block of rows as
/// the packed GEMM finishes it (`flow_runtime::gemm::gemm_f32_then`): a bias and `max` over
/// the product, written over it (W4: three row blocks of 512, the last one short, each handed
/// over in blocks of 64 rows or more); an update `w - 0.01 · acc` with a column sum of another
/// tensor in its row group (W5's `step_w` and `step_b`, one launch: `flowc ir --stage
/// kernels`); and products of 10 columns on the narrow kernels (`flow_runtime::gemm_narrow`),
/// row-major (`z`, with its epilogue) and with `a` transposed (`n2`, W5's `hᵀ·d` with its
/// update), 1100 rows, past the narrow kernels' blocks of 8 and 32 rows and their blocks of
/// 64 rows handed to epilogues. 1100 columns (more than one packed block of columns), `k` past
/// the packed GEMM's block of 128: the same bits on both backends and on any thread count.
#[test]
fn gemm_epilogues_are_bitwise_equal_on_both_backends() {
    let dir = std::env::temp_dir().join(format!("flowc-gemm-epilogue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("epilogue.flow");
    std::fs::write(
        &program,
        "op layer(x: f32[B, M], w: f32[M, N], b: f32[N]) -> f32[B, N] {\n\
         let y[i, n] = max(b[n] + sum[k](x[i, k] * w[k, n]), 0.0);\n\
         y\n\
         }\n\
         op step(w: f32[M, H], a: f32[B, M], g: f32[B, H]) -> f32[M, H] {\n\
         let n[k, j] = w[k, j] - 0.01 * sum[i](a[i, k] * g[i, j]);\n\
         n\n\
         }\n\
         op colsum(g: f32[B, H]) -> f32[H] {\n\
         let s[j] = sum[i](g[i, j]);\n\
         s\n\
         }\n\
         main {\n\
         let x = rand_normal(1, [1100, 300]);\n\
         let w = rand_normal(2, [300, 1100]) * 0.05;\n\
         let y = layer(x, w, rand_normal(3, [1100]));\n\
         let g = rand_normal(4, [700, 300]);\n\
         let n = step(w, x, y);\n\
         let s = colsum(g);\n\
         let z = layer(x, rand_normal(5, [300, 10]), rand_normal(6, [10]));\n\
         let n2 = step(rand_normal(7, [300, 10]), x, rand_normal(8, [1100, 10]));\n\
         save(\"n2.npy\", n2);\n\
         save(\"y.npy\", y);\n\
         save(\"w.npy\", n);\n\
         save(\"s.npy\", s);\n\
         save(\"z.npy\", z);\n\
         }\n",
    )
    .unwrap();
    let outputs = |tag: &str, flags: &[&str]| {
        let (here, _) = run_in(&dir, &program, tag, flags);
        ["y", "w", "s", "z", "n2"].map(|f| std::fs::read(here.join(format!("{f}.npy"))).unwrap())
    };
    let reference = outputs("interp", &["--backend", "interp"]);
    for threads in ["1", "3"] {
        let jit = outputs(&format!("jit{threads}"), &["--threads", threads]);
        assert!(
            jit == reference,
            "the JIT on {threads} thread(s) and the interpreter differ"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A matrix product past every block boundary — more rows than one shard of the interpreter's
/// pipeline (255 rows of 257 columns), a reduced extent longer than the GEMM's K block —
/// gives the same bits on both backends and on any thread count, at the GEMM's speed on
/// both. (The interpreter's shard pass once split it into row blocks that were no longer
/// contractions: folded point by point, 1000x slower, with other bits from row 255 on.)
#[test]
fn a_large_matrix_product_is_bitwise_equal_on_both_backends() {
    let dir = std::env::temp_dir().join(format!("flowc-gemm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("mm.flow");
    std::fs::write(
        &program,
        "op mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {\n\
         let c[i, j] = sum[k](a[i, k] * b[k, j]);\n\
         c\n\
         }\n\
         main {\n\
         let a = rand_uniform(1, [600, 601]) - 0.5;\n\
         let b = rand_uniform(2, [601, 257]);\n\
         save(\"out.npy\", mm(a, b));\n\
         }\n",
    )
    .unwrap();
    let outputs = |tag: &str, flags: &[&str]| {
        let (here, elapsed) = run_in(&dir, &program, tag, flags);
        (std::fs::read(here.join("out.npy")).unwrap(), elapsed)
    };
    let (reference, interp_time) = outputs("interp", &["--backend", "interp"]);
    for threads in ["1", "3"] {
        let (jit, _) = outputs(&format!("jit{threads}"), &["--threads", threads]);
        assert!(
            jit == reference,
            "the JIT on {threads} thread(s) and the interpreter differ"
        );
    }
    // A GEMM takes milliseconds here; a fold point by point took seconds.
    assert!(
        interp_time.as_secs_f64() < 5.0,
        "the interpreter took {interp_time:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
