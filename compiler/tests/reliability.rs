//! End-to-end tests of the run-time flags of the `flowc` binary: fault injection and retries
//! (`FLOW_FAULTS`, `--faults`, `--retries`) on the conformance programs, the error when
//! retries are exhausted, `--profile`, `--trace` and the silence of the progress bar when
//! standard error is not a terminal.

use crate::common::{flow_files, flowc, repo, Scratch};

use std::path::{Path, PathBuf};
use std::process::Command;

fn conformance_programs() -> Vec<PathBuf> {
    flow_files(&repo().join("tests/conformance"))
}

/// The output of one `flowc` command.
#[derive(Debug, PartialEq, Eq)]
struct Out {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

/// Runs `flowc ARGS` in `dir` with the environment variables `env` (and without an
/// inherited `FLOW_FAULTS`).
fn flowc_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(flowc());
    cmd.args(args).current_dir(dir).env_remove("FLOW_FAULTS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("flowc runs");
    Out {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code(),
    }
}

#[test]
fn fault_injected_conformance_runs_equal_fault_free_runs() {
    let scratch = Scratch::new("faults");
    let programs = conformance_programs();
    assert!(programs.len() >= 10);
    let mut retried_somewhere = false;
    for path in &programs {
        let p = path.to_str().expect("utf-8 path");
        for backend in [
            &["--backend", "jit", "--threads", "3"][..],
            &["--backend", "interp"],
        ] {
            let run = |env: &[(&str, &str)], extra: &[&str]| {
                let mut args = vec!["run"];
                args.extend_from_slice(backend);
                args.extend_from_slice(extra);
                args.push(p);
                flowc_in(&scratch.0, &args, env)
            };
            let clean = run(&[], &[]);
            assert_eq!(clean.status, Some(0), "{p}: {}", clean.stderr);
            // Retries are generous so that no shard fails 11 times in a row (0.2^11).
            let faulty = run(&[("FLOW_FAULTS", "0.2,7")], &["--retries", "10"]);
            assert_eq!(faulty, clean, "{p} {backend:?}: faults changed the run");
            // The same through the flag, with the profile showing that shards were retried.
            let profiled = run(&[], &["--faults", "0.2,7", "--retries", "10", "--profile"]);
            assert_eq!(profiled.stdout, clean.stdout, "{p} {backend:?}");
            let summary = profiled.stderr.lines().last().unwrap_or_default();
            assert!(
                summary.ends_with(" shard retries") || summary.ends_with(" shard retry"),
                "{summary}"
            );
            retried_somewhere |= !summary.ends_with(" 0 shard retries");
        }
    }
    assert!(retried_somewhere, "no fault was injected anywhere");
    // `flowc test` runs its test blocks through the same executor.
    let tests = repo().join("tests/conformance/10_tests.flow");
    let tests = tests.to_str().expect("utf-8 path");
    let clean = flowc_in(&scratch.0, &["test", tests], &[]);
    assert_eq!(clean.status, Some(0), "{}", clean.stderr);
    let faulty = flowc_in(
        &scratch.0,
        &["test", "--retries", "10", tests],
        &[("FLOW_FAULTS", "0.2,11")],
    );
    assert_eq!(faulty, clean);
}

#[test]
fn exhausted_retries_are_a_runtime_error_that_names_op_shard_and_cause() {
    let scratch = Scratch::new("exhausted");
    let src = "op scale(x: f32[N]) -> f32[N] = x * 2.0\nmain {\n    print(\"before\");\n    let y = scale([1.0, 2.0, 3.0]);\n    save(\"y.npy\", y);\n    print(\"after\");\n}\n";
    let f = scratch.file("exhausted.flow", src);
    let p = f.to_str().expect("utf-8 path");
    let out = flowc_in(
        &scratch.0,
        &["run", "--faults", "1.0,1", "--retries", "2", p],
        &[],
    );
    assert_eq!(out.status, Some(1), "{out:?}");
    assert_eq!(out.stdout, "before\n");
    assert!(
        !scratch.0.join("y.npy").exists(),
        "nothing half-done is saved"
    );
    // The error at the observation that needed the failed dispatch (`save`), as a
    // diagnostic with the op, the shard's index box and the cause of the last failure.
    let first = out.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("{p}:5:19: error[runtime-error]: op \"scale\" (node %1), shard 0 of 1 (index box [0..3]) failed 3 times, retries exhausted; the last failure: injected fault after writing part of its output")
    );
    assert!(!out.stderr.contains("panicked at"), "{}", out.stderr);
    // The interpreter retries whole nodes.
    let out = flowc_in(
        &scratch.0,
        &[
            "run",
            "--backend",
            "interp",
            "--faults",
            "1,1",
            "--retries",
            "0",
            p,
        ],
        &[],
    );
    assert_eq!(out.status, Some(1));
    assert!(
        out.stderr.starts_with(&format!(
            "{p}:5:19: error[runtime-error]: op \"scale\" (node %1) failed: injected "
        )),
        "{}",
        out.stderr
    );
    // The environment variable does the same; a bad value is a usage error.
    let out = flowc_in(&scratch.0, &["run", p], &[("FLOW_FAULTS", "1,9")]);
    assert_eq!(out.status, Some(1));
    assert!(out.stderr.contains("retries exhausted"), "{}", out.stderr);
    let out = flowc_in(&scratch.0, &["run", p], &[("FLOW_FAULTS", "often")]);
    assert_eq!(out.status, Some(2));
    assert_eq!(
        out.stderr,
        "error: FLOW_FAULTS: expected `RATE,SEED` (such as `0.2,7`), found `often`\n"
    );
    let out = flowc_in(&scratch.0, &["run", "--faults", "2,1", p], &[]);
    assert_eq!(out.status, Some(2));
    assert_eq!(
        out.stderr,
        "error: --faults: the fault rate must be a probability between 0 and 1, not 2\n"
    );
}

/// The rows of a `--profile` table: name, calls, shards, milliseconds, bytes, GB/s.
fn profile_rows(stderr: &str) -> Vec<(String, u64, u64, f64, String, f64)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("kernel ") && l.ends_with("GB/s"))
        .unwrap_or_else(|| panic!("no profile header:\n{stderr}"));
    let mut rows = Vec::new();
    for l in &lines[start + 1..lines.len() - 1] {
        // From the right: GB/s, bytes (number and unit), ms, shards, calls; the rest is the name.
        let mut f: Vec<&str> = l.split_whitespace().collect();
        let gbs: f64 = f.pop().and_then(|x| x.parse().ok()).expect("GB/s");
        let unit = f.pop().expect("unit");
        let bytes = format!("{} {unit}", f.pop().expect("bytes"));
        let ms: f64 = f.pop().and_then(|x| x.parse().ok()).expect("ms");
        let shards: u64 = f.pop().and_then(|x| x.parse().ok()).expect("shards");
        let calls: u64 = f.pop().and_then(|x| x.parse().ok()).expect("calls");
        rows.push((f.join(" "), calls, shards, ms, bytes, gbs));
    }
    rows
}

#[test]
fn profile_prints_one_row_per_kernel() {
    let scratch = Scratch::new("profile");
    let src = "op norm(x: f32[N]) -> f32[N] {\n    let m = sum[i](x[i]) / 4096.0;\n    let y[i] = x[i] - m;\n    y\n}\nmain {\n    var x = rand_normal(1, [400000]);\n    for k in 0..3 { x = norm(x); }\n    print(sum[i](x[i] * x[i]) > 0.0);\n}\n";
    let f = scratch.file("profile.flow", src);
    let p = f.to_str().expect("utf-8 path");
    let plain = flowc_in(&scratch.0, &["run", p], &[]);
    for backend in ["jit", "interp"] {
        let out = flowc_in(
            &scratch.0,
            &[
                "run",
                "--backend",
                backend,
                "--threads",
                "2",
                "--profile",
                p,
            ],
            &[],
        );
        assert_eq!(out.status, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, plain.stdout);
        let rows = profile_rows(&out.stderr);
        assert!(rows.len() >= 3, "{}", out.stderr);
        let mut names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            rows.len(),
            "one row per kernel:\n{}",
            out.stderr
        );
        for (name, calls, shards, ms, bytes, gbs) in &rows {
            assert!(*calls >= 1 && shards >= calls, "{name}");
            assert!(*ms >= 0.0 && gbs.is_finite() && *gbs >= 0.0, "{name}");
            assert!(!bytes.starts_with("0 "), "{name}: {bytes}");
        }
        // Sorted by time, slowest first.
        assert!(rows.windows(2).all(|w| w[0].3 >= w[1].3), "{}", out.stderr);
        // The random fill of 400 000 f32 (1.6 MB) is one of them.
        assert!(
            rows.iter()
                .any(|r| r.0.starts_with("random normal") && r.4 == "1.6 MB"),
            "{}",
            out.stderr
        );
        let summary = out.stderr.lines().last().unwrap_or_default();
        assert!(
            summary.starts_with(&format!("{} kernel(s), ", rows.len()))
                && summary.ends_with(" 0 shard retries"),
            "{summary}"
        );
    }
    // `test` and `bench` take the flag too.
    let tests = repo().join("tests/conformance/10_tests.flow");
    let out = flowc_in(
        &scratch.0,
        &["test", "--profile", tests.to_str().expect("path")],
        &[],
    );
    assert_eq!(out.status, Some(0));
    assert!(!profile_rows(&out.stderr).is_empty(), "{}", out.stderr);
    let bench = scratch.file(
        "b.flow",
        "bench \"b\" {\n    let x = rand_uniform(2, [100000]);\n    measure { print(sum[i](x[i]) > 0.0); }\n}\n",
    );
    let out = flowc_in(
        &scratch.0,
        &[
            "bench",
            "--reps",
            "2",
            "--warmup",
            "0",
            "--profile",
            bench.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(!profile_rows(&out.stderr).is_empty(), "{}", out.stderr);
}

#[test]
fn trace_writes_chrome_trace_events() {
    let scratch = Scratch::new("trace");
    let src = "op scale(x: f32[N]) -> f32[N] = x * 2.0\nmain {\n    let y = scale(rand_uniform(3, [200000]));\n    print(sum[i](y[i]) > 0.0);\n}\n";
    let f = scratch.file("trace.flow", src);
    let trace = scratch.0.join("out.json");
    let out = flowc_in(
        &scratch.0,
        &[
            "run",
            "--threads",
            "2",
            "--faults",
            "0.3,5",
            "--retries",
            "20",
            "--trace",
            trace.to_str().expect("path"),
            f.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "true\n");
    assert_eq!(out.stderr, "", "--trace alone prints nothing");
    let text = std::fs::read_to_string(&trace).expect("the trace was written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents");
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    for e in &complete {
        assert!(e["name"].is_string() && e["cat"].is_string(), "{e}");
        assert!(e["ts"].as_f64().is_some_and(|t| t >= 0.0), "{e}");
        assert!(e["dur"].as_f64().is_some_and(|t| t >= 0.0), "{e}");
        assert_eq!(e["pid"], 1);
        assert!(e["tid"].is_u64(), "{e}");
    }
    let cats = |c: &str| complete.iter().filter(|e| e["cat"] == c).count();
    assert!(cats("dispatch") >= 1 && cats("compile") >= 1 && cats("kernel") >= 2);
    assert!(cats("passes") >= 1);
    // 200 000 elements are many shards, run on the workers (threads 1 and 2), some failing
    // and retried.
    let shards: Vec<&&serde_json::Value> =
        complete.iter().filter(|e| e["cat"] == "shard").collect();
    assert!(shards.len() > 10);
    assert!(shards.iter().any(|e| e["tid"].as_u64() > Some(0)));
    assert!(shards
        .iter()
        .all(|e| e["args"]["rows"].is_string() && e["args"]["attempt"].is_string()));
    assert!(shards.iter().any(|e| e["args"]["failed"].is_string()));
    // Thread names for the viewer.
    assert!(events
        .iter()
        .any(|e| e["ph"] == "M" && e["args"]["name"] == "coordinator"));
    // A dispatch span contains its kernels.
    let d = complete
        .iter()
        .find(|e| e["cat"] == "dispatch")
        .expect("dispatch");
    let (d0, d1) = (
        d["ts"].as_f64().unwrap_or(0.0),
        d["ts"].as_f64().unwrap_or(0.0) + d["dur"].as_f64().unwrap_or(0.0),
    );
    assert!(complete
        .iter()
        .filter(|e| e["cat"] == "kernel")
        .any(|e| e["ts"].as_f64().is_some_and(|t| t >= d0 && t <= d1)));
    // An unwritable trace is an error after the run.
    let out = flowc_in(
        &scratch.0,
        &[
            "run",
            "--trace",
            "/nonexistent-dir/t.json",
            f.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(out.status, Some(1));
    assert_eq!(out.stdout, "true\n");
    assert!(out
        .stderr
        .starts_with("error: cannot write the trace `/nonexistent-dir/t.json`"));
}

#[test]
fn progress_is_silent_when_stderr_is_not_a_terminal() {
    // One dispatch of the interpreter over 4 million points runs for more than the second
    // after which a terminal would show a bar.
    let scratch = Scratch::new("progress");
    let f = scratch.file(
        "long.flow",
        "main {\n    let x = rand_uniform(1, [4000000]);\n    let y[i] = x[i] * x[i] + 1.0;\n    print(sum[i](y[i]) > 0.0);\n}\n",
    );
    let start = std::time::Instant::now();
    let out = flowc_in(
        &scratch.0,
        &["run", "--backend", "interp", f.to_str().expect("path")],
        &[],
    );
    assert!(
        start.elapsed() > std::time::Duration::from_secs(1),
        "the run is long enough"
    );
    assert_eq!(out.status, Some(0));
    assert_eq!(out.stdout, "true\n");
    assert_eq!(out.stderr, "");
}
