//! End-to-end tests of `flowc build`: every conformance program and example, built into an
//! executable and run, gives what `flowc run` gives (stdout, stderr, exit status and the files
//! it writes); a built program runs from another directory with its source deleted; kernels
//! the trace did not meet run on the interpreter with the same results; programs with errors
//! get `flowc check`'s diagnostics; a missing C compiler is a clear error; deep `proc`
//! recursion runs (and too deep a one is a clean error); and no Cranelift code is linked into
//! an executable.

use crate::common::{each_parallel, flow_files, flowc, repo};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty directory under the target directory's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("aot")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// What a run shows: exit status, stdout, stderr, and the files it left in its directory.
#[derive(Debug, PartialEq)]
struct Seen {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    files: BTreeMap<String, Vec<u8>>,
}

fn seen(out: Output, cwd: &Path, skip: &[&str]) -> Seen {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(cwd)
        .expect("the run's directory")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !skip.contains(&name.as_str()) && e.path().is_file() {
            files.insert(name, std::fs::read(e.path()).expect("a written file"));
        }
    }
    Seen {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        files,
    }
}

/// `flowc build FILE -o OUT -- ARGS` (ARGS for the trace run).
fn build(file: &Path, out: &Path, args: &[String]) -> Output {
    Command::new(flowc())
        .arg("build")
        .arg(file)
        .arg("-o")
        .arg(out)
        .arg("--")
        .args(args)
        .output()
        .expect("flowc runs")
}

/// The arguments a program is run with: the examples that read or write files get absolute
/// paths, so that they run from any directory.
fn program_args(file: &Path) -> Vec<String> {
    match file.file_name().and_then(|n| n.to_str()) {
        Some("stats.flow") => vec![repo()
            .join("examples/data/measurements.npy")
            .display()
            .to_string()],
        Some("heat.flow") => vec![".".into()],
        _ => Vec::new(),
    }
}

/// Builds `file`, then runs `flowc run` and the executable, each in a fresh directory, and
/// returns what each showed.
fn run_both(file: &Path, tag: &str) -> (Seen, Seen) {
    let dir = scratch(tag);
    let exe = dir.join("program");
    let args = program_args(file);
    let built = build(file, &exe, &args);
    let (run_dir, exe_dir) = (dir.join("run"), dir.join("exe"));
    for d in [&run_dir, &exe_dir] {
        std::fs::create_dir_all(d).expect("a run directory");
    }
    let run = Command::new(flowc())
        .current_dir(&run_dir)
        .arg("run")
        .arg(file)
        .arg("--")
        .args(&args)
        .output()
        .expect("flowc runs");
    let run = seen(run, &run_dir, &[]);
    if !built.status.success() {
        // Only a program that `flowc run` rejects too, with the same words.
        let b = seen(built, &dir, &["run", "exe"]);
        assert_eq!(
            (b.status, &b.stderr),
            (run.status, &run.stderr),
            "{}: flowc build failed where flowc run did not",
            file.display()
        );
        return (run, b);
    }
    let out = Command::new(&exe)
        .current_dir(&exe_dir)
        .args(&args)
        .output()
        .expect("the executable runs");
    (run, seen(out, &exe_dir, &[]))
}

#[test]
fn built_programs_behave_like_flowc_run() {
    let mut files = flow_files(&repo().join("tests/conformance"));
    files.extend(flow_files(&repo().join("examples")));
    assert!(files.len() >= 15, "the conformance programs and examples");
    each_parallel(&files, |file| {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
        let (run, exe) = run_both(file, &format!("same-{stem}"));
        if run == exe {
            Ok(())
        } else {
            Err(format!(
                "{}: the executable differs from flowc run\nflowc run: {run:?}\nexecutable: {exe:?}",
                file.display()
            ))
        }
    });
}

#[test]
fn programs_with_errors_get_the_diagnostics_of_flowc_check() {
    let files = flow_files(&repo().join("tests/conformance/errors"));
    assert!(!files.is_empty());
    each_parallel(&files, |file| {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
        let dir = scratch(&format!("error-{stem}"));
        let exe = dir.join("program");
        let built = build(file, &exe, &[]);
        let check = Command::new(flowc())
            .arg("check")
            .arg(file)
            .output()
            .expect("flowc runs");
        let (b, c) = (
            String::from_utf8_lossy(&built.stderr),
            String::from_utf8_lossy(&check.stderr),
        );
        if check.status.success() {
            // A run-time error: the build succeeds and the executable reports it like
            // `flowc run` (checked by the test above for the programs it covers).
            return Ok(());
        }
        if built.status.code() != Some(1) || b != c || exe.exists() {
            return Err(format!(
                "{}: flowc build exited {:?} and said\n{b}\nwhere flowc check said\n{c}",
                file.display(),
                built.status.code()
            ));
        }
        Ok(())
    });
}

#[test]
fn a_built_program_runs_elsewhere_without_its_source() {
    let dir = scratch("elsewhere");
    let src_dir = dir.join("src");
    let run_dir = dir.join("somewhere/else");
    std::fs::create_dir_all(&src_dir).expect("a source directory");
    std::fs::create_dir_all(&run_dir).expect("a run directory");
    let source = src_dir.join("stats.flow");
    std::fs::copy(repo().join("examples/stats.flow"), &source).expect("the example copies");
    let data = repo().join("examples/data/measurements.npy");
    let data = data.display().to_string();
    let expected = Command::new(flowc())
        .current_dir(&run_dir)
        .arg("run")
        .arg(&source)
        .arg("--")
        .arg(&data)
        .output()
        .expect("flowc runs");
    assert!(expected.status.success(), "{expected:?}");
    let exe = src_dir.join("stats");
    let built = build(&source, &exe, std::slice::from_ref(&data));
    assert!(built.status.success(), "{built:?}");
    std::fs::remove_file(&source).expect("the source is deleted");
    let moved = run_dir.join("stats-app");
    std::fs::rename(&exe, &moved).expect("the executable moves");
    for threads in ["1", "3"] {
        let out = Command::new(&moved)
            .current_dir(&run_dir)
            .args(["--threads", threads])
            .arg(&data)
            .output()
            .expect("the executable runs");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&expected.stdout),
            "--threads {threads}"
        );
    }
    // A bad thread count is an error, not a panic or a hang, and the executable and
    // `flowc run` accept the same counts (one validator) and say the same about the others.
    for bad in ["none", "0", "100000", "5000"] {
        let out = Command::new(&moved)
            .args(["--threads", bad])
            .output()
            .expect("the executable runs");
        assert_eq!(out.status.code(), Some(2), "--threads {bad}: {out:?}");
        let exe_says = String::from_utf8_lossy(&out.stderr).into_owned();
        let run = Command::new(flowc())
            .args(["run", "--threads", bad])
            .arg(repo().join("examples/stats.flow"))
            .output()
            .expect("flowc runs");
        assert_eq!(
            run.status.code(),
            Some(2),
            "flowc run --threads {bad}: {run:?}"
        );
        let run_says = String::from_utf8_lossy(&run.stderr).into_owned();
        let why = exe_says
            .split("--threads: ")
            .nth(1)
            .unwrap_or_else(|| panic!("--threads {bad}: {exe_says}"))
            .trim();
        assert!(why.contains("1024"), "--threads {bad}: {exe_says}");
        assert!(
            run_says.contains(why),
            "--threads {bad}: {run_says} vs {exe_says}"
        );
    }
    let out = Command::new(&moved)
        .current_dir(&run_dir)
        .arg("--threads=1024")
        .arg(&data)
        .output()
        .expect("the executable runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A program whose second branch the trace never takes: its kernels run on the interpreter,
/// with the results `flowc run` gives, and `FLOW_AOT_STATS` says so.
#[test]
fn kernels_the_trace_did_not_meet_run_on_the_interpreter() {
    let dir = scratch("fallback");
    let source = dir.join("branch.flow");
    std::fs::write(
        &source,
        r#"fn twice(v: f32) -> f32 = v * 2.0 + 1.0
fn bent(v: f32) -> f32 = exp(v) - v * v
op scaled(x: f32[N]) -> f32 = sum[i](twice(x[i]))
op shifted(x: f32[N]) -> f32 = sum[i](bent(x[i]))

main {
    let x = rand_uniform(7, [1000]);
    if len(args()) > 0 {
        print(shifted(x));
    } else {
        print(scaled(x));
    }
}
"#,
    )
    .expect("the program is written");
    let check = Command::new(flowc())
        .arg("check")
        .arg(&source)
        .output()
        .expect("flowc runs");
    assert!(check.status.success(), "{check:?}");
    let exe = dir.join("branch");
    let built = build(&source, &exe, &[]);
    assert!(built.status.success(), "{built:?}");
    for args in [vec![], vec!["other".to_string()]] {
        let want = Command::new(flowc())
            .arg("run")
            .arg(&source)
            .arg("--")
            .args(&args)
            .output()
            .expect("flowc runs");
        let got = Command::new(&exe)
            .args(&args)
            .env("FLOW_AOT_STATS", "1")
            .output()
            .expect("the executable runs");
        assert_eq!(got.status.code(), Some(0), "{got:?}");
        assert_eq!(got.stdout, want.stdout, "args {args:?}");
        let stats = String::from_utf8_lossy(&got.stderr);
        let interpreted = if args.is_empty() {
            "0 node(s) ran on the interpreter"
        } else {
            " node(s) ran on the interpreter"
        };
        assert!(stats.contains(interpreted), "{stats}");
        if !args.is_empty() {
            assert!(
                !stats.contains(" 0 node(s) ran on the interpreter"),
                "{stats}"
            );
        }
    }
}

/// A program that runs for ever does not make `flowc build` run for ever: the trace stops at
/// `--trace-time`.
#[test]
fn deep_proc_recursion_runs_in_an_executable_and_too_deep_is_a_clean_error() {
    let dir = scratch("recursion");
    let source = dir.join("rec.flow");
    std::fs::write(
        &source,
        "proc r(n: i64) -> i64 { if n == 0 { 0 } else { r(n - 1) + 1 } }\n\
         main { print(r(9000)); print(r(100000)); }\n",
    )
    .expect("the program is written");
    let exe = dir.join("rec");
    let out = build(&source, &exe, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The executable's coordinator recursed on the main thread's 8 MiB and died by a signal.
    let run = Command::new(&exe).output().expect("the executable runs");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "9000\n");
    assert!(err.contains("too deep: proc `r`"), "{err}");
}

#[test]
fn the_trace_run_stops_at_its_time_limit() {
    let dir = scratch("endless");
    let source = dir.join("endless.flow");
    std::fs::write(
        &source,
        "main {\n    let x = rand_uniform(1, [64]);\n    print(sum[i](x[i]) > 0.0);\n    var n = 0;\n    while n >= 0 {\n        n = n + 1;\n    }\n}\n",
    )
    .expect("the program is written");
    let exe = dir.join("endless");
    let start = std::time::Instant::now();
    let out = Command::new(flowc())
        .arg("build")
        .arg(&source)
        .args(["--trace-time", "0.5", "-o"])
        .arg(&exe)
        .output()
        .expect("flowc runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stopped after 0.5 s (--trace-time)"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
    assert!(exe.is_file());
}

#[test]
fn a_missing_c_compiler_is_a_clear_error() {
    let dir = scratch("no-cc");
    let exe = dir.join("program");
    // Builds mlp with the C compiler `cc`; exit status 1 and stderr.
    let build_with = |cc: &std::ffi::OsStr| {
        let out = Command::new(flowc())
            .env("CC", cc)
            .arg("build")
            .arg(repo().join("examples/mlp.flow"))
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("flowc runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!exe.exists());
        err
    };
    let err = build_with(dir.join("no-such-cc").as_os_str());
    assert!(
        err.contains("cannot link") && err.contains("no-such-cc") && err.contains("not found"),
        "{err}"
    );
    // A compiler that fails: its own words are shown.
    let err = build_with(std::ffi::OsStr::new("false"));
    assert!(err.contains("`false` failed"), "{err}");
}

#[test]
fn no_cranelift_code_is_linked_into_an_executable() {
    let dir = scratch("no-cranelift");
    let exe = dir.join("mlp");
    let built = build(&repo().join("examples/mlp.flow"), &exe, &[]);
    assert!(built.status.success(), "{built:?}");
    // Every function and datum the executable defines (the linker also keeps the names of
    // the archive members it opened, as file symbols, which `nm` does not list).
    let nm = Command::new("nm")
        .arg("--defined-only")
        .arg(&exe)
        .output()
        .expect("nm (binutils, installed with the C compiler) runs");
    assert!(nm.status.success(), "{nm:?}");
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(symbols.lines().count() > 1000, "the executable has symbols");
    let cranelift: Vec<&str> = symbols
        .lines()
        .filter(|l| l.contains("cranelift"))
        .take(5)
        .collect();
    assert!(
        cranelift.is_empty(),
        "Cranelift is linked in: {cranelift:?}"
    );
    // And the kernels are there: the executable is native code, not an interpreter.
    let out = Command::new(&exe)
        .env("FLOW_AOT_STATS", "1")
        .output()
        .expect("the executable runs");
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(
        stats.contains(" 0 node(s) ran on the interpreter"),
        "{stats}"
    );
}

/// `flowc build --mpi` needs a flowc built with MPI; without it the flag is a usage error
/// that says how to get one, before anything is compiled. (With MPI, scripts/test-mpi.sh
/// runs such executables under `mpirun`.)
#[test]
fn build_mpi_without_the_mpi_feature_says_how_to_get_it() {
    if cfg!(feature = "mpi") {
        return;
    }
    let dir = scratch("no-mpi");
    let exe = dir.join("program");
    let out = Command::new(flowc())
        .args(["build", "--mpi"])
        .arg(repo().join("examples/mlp.flow"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("flowc runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--features mpi"), "{err}");
    assert!(!exe.exists());
}

/// An executable takes `--checkpoint DIR` as `flowc run` does: killed in its loop (at the
/// first, a middle and the last dispatch) and rerun, it prints what an uninterrupted run
/// prints; the checkpoint file is the one `flowc run --checkpoint` writes (same format, same
/// key), so a killed `flowc run` resumes in the executable without a warning.
#[test]
fn a_killed_executable_resumes_from_its_checkpoint_with_the_same_output() {
    let dir = scratch("checkpoint");
    std::fs::write(
        dir.join("loop.flow"),
        "op step(u: f32[N]) -> f32[N] {\n  let v[i] = u[i] * 0.5 + pad(u, 1.0)[i + 1] * 0.25;\n  v\n}\nmain {\n  var u = rand_uniform(5, [1000]);\n  for s in 0..12 {\n    u = step(u);\n    print(s, sum[i](u[i]), args());\n  }\n  print(\"end\", max[i](u[i]));\n}\n",
    )
    .expect("the program is written");
    // Built and run from `dir` with the relative name, as `flowc run loop.flow` names it.
    let built = Command::new(flowc())
        .current_dir(&dir)
        .args(["build", "loop.flow", "-o", "prog"])
        .output()
        .expect("flowc runs");
    assert!(built.status.success(), "{built:?}");
    let flowc_in = |args: &[&str], die: Option<&str>| {
        let mut cmd = Command::new(flowc());
        cmd.current_dir(&dir).args(args).env_remove("FLOW_FAULTS");
        match die {
            Some(at) => cmd.env("FLOW_DIE_AT_DISPATCH", at),
            None => cmd.env_remove("FLOW_DIE_AT_DISPATCH"),
        };
        cmd.output().expect("flowc runs")
    };
    let exe = |args: &[&str], die: Option<&str>| {
        let mut cmd = Command::new(dir.join("prog"));
        cmd.current_dir(&dir).args(args).env_remove("FLOW_FAULTS");
        match die {
            Some(at) => cmd.env("FLOW_DIE_AT_DISPATCH", at),
            None => cmd.env_remove("FLOW_DIE_AT_DISPATCH"),
        };
        cmd.output().expect("the executable runs")
    };
    let whole = flowc_in(&["run", "loop.flow"], None);
    assert_eq!(whole.status.code(), Some(0), "{whole:?}");
    assert_eq!(exe(&[], None).stdout, whole.stdout);
    let ckpt = dir.join("ck/checkpoint.flowckpt");
    for at in ["1", "6", "12"] {
        let out = exe(&["--threads", "2", "--checkpoint", "ck"], Some(at));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), None, "killed at dispatch {at}: {err}");
        assert!(err.contains("injected death"), "{err}");
        assert_eq!(ckpt.exists(), at != "1", "after dispatch {at}");
        let again = exe(&["--checkpoint=ck", "--threads=1"], None);
        let err = String::from_utf8_lossy(&again.stderr);
        assert_eq!(again.status.code(), Some(0), "{err}");
        assert!(err.is_empty(), "{err}");
        assert_eq!(again.stdout, whole.stdout, "killed at dispatch {at}");
        assert!(!ckpt.exists(), "a finished run removes its checkpoint");
    }
    // `flowc run` killed, the executable resumes: the same file and key.
    let out = flowc_in(&["run", "--checkpoint", "ck", "loop.flow"], Some("6"));
    assert_eq!(out.status.code(), None, "{out:?}");
    let again = exe(&["--checkpoint", "ck"], None);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!((again.status.code(), err.as_ref()), (Some(0), ""));
    assert_eq!(again.stdout, whole.stdout);
    // The program's own arguments are part of the key: after `--`, `--checkpoint` is one.
    let out = exe(&["--checkpoint", "ck", "--", "--checkpoint"], Some("6"));
    assert_eq!(out.status.code(), None, "{out:?}");
    let again = exe(&["--checkpoint", "ck"], None);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("is of another program, other arguments"),
        "{err}"
    );
    assert_eq!(again.stdout, whole.stdout);
    let missing = exe(&["--checkpoint"], None);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{err}");
    assert!(err.contains("--checkpoint needs a directory"), "{err}");
}
