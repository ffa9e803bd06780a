//! End-to-end tests of the `flowc` binary at the edges of its input and output: closed
//! pipes, thread counts, files that are not regular files, tensors larger than the machine,
//! shape variables of loaded files, and the commands that show the IR (`ir`, `explain`,
//! `graph`), `bench`'s flags and `--checkpoint`. Each test is a bug that once crashed, hung or gave a wrong
//! result.

use crate::common::{flowc, repo, Scratch};

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `flowc ARGS` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(flowc())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FLOW_FAULTS")
        .output()
        .expect("flowc runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a run crashed: a panic or a signal.
fn crashed(out: &Output) -> bool {
    out.status.code().is_none()
        || out.status.code() == Some(101)
        || stderr(out).contains("panicked")
}

/// Runs `flowc ARGS` in `dir` with standard output and standard error both writing into a
/// pipe whose reading end is already closed (`flowc … 2>&1 | head -0`): every write fails
/// with `EPIPE`. Returns the exit status.
fn with_closed_pipe(dir: &Path, args: &[&str]) -> std::process::ExitStatus {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let writer2 = writer.try_clone().expect("a second writer");
    Command::new(flowc())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FLOW_FAULTS")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .status()
        .expect("flowc runs")
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let dir = Scratch::new("cli-epipe");
    dir.file("bad.flow", "main { let x = ; }\n");
    dir.file(
        "ok.flow",
        "main {\n  let x = rand_uniform(1, [1000]);\n  print(sum[i](x[i]));\n  print(x);\n}\n",
    );
    // Exit 1 for the syntax error (not 101, a panic, nor a signal).
    let status = with_closed_pipe(&dir.0, &["check", "bad.flow"]);
    assert_eq!(status.code(), Some(1), "flowc check: {status:?}");
    for args in [
        &["run", "ok.flow", "--profile", "--stats"][..],
        &["ir", "ok.flow"],
        &["explain", "ok.flow"],
        &["graph", "ok.flow"],
        &["test", "ok.flow"],
    ] {
        let status = with_closed_pipe(&dir.0, args);
        assert_eq!(status.code(), Some(0), "flowc {args:?}: {status:?}");
    }
}

#[test]
fn thread_counts_are_validated_and_capped() {
    let dir = Scratch::new("cli-threads");
    dir.file(
        "p.flow",
        "main { print(sum[i](rand_uniform(1, [100])[i])); }\n",
    );
    for bad in ["0", "100000", "5000", "1025", "many"] {
        for cmd in ["run", "test", "ir", "build"] {
            let out = run_in(&dir.0, &[cmd, "p.flow", "--threads", bad]);
            assert_eq!(out.status.code(), Some(2), "{cmd} --threads {bad}: {out:?}");
            assert!(
                stderr(&out).contains("1024"),
                "{cmd} --threads {bad}: {out:?}"
            );
        }
    }
    let out = run_in(&dir.0, &["run", "p.flow", "--threads", "1024"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let docs = std::fs::read_to_string(repo().join("docs/cli.md")).expect("docs/cli.md");
    assert!(docs.contains("at most 1024"), "docs/cli.md says the limit");
}

#[test]
fn save_refuses_what_is_not_a_regular_file_and_writes_through_links() {
    use std::os::unix::fs::FileTypeExt;
    let dir = Scratch::new("cli-save");
    dir.file(
        "save.flow",
        "main {\n  save(args()[0], rand_uniform(1, [3]));\n  print(\"saved\");\n}\n",
    );
    // A FIFO stays a FIFO (a reader would block forever on the old code's rename target).
    let fifo = dir.0.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let out = run_in(&dir.0, &["run", "save.flow", "--", "fifo"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("`fifo` is a FIFO"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("save.flow:2:3"), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&fifo)
        .expect("still there")
        .file_type()
        .is_fifo());
    // A link to a device is refused too, and the link is kept.
    std::os::unix::fs::symlink("/dev/null", dir.0.join("null.npy")).expect("symlink");
    let out = run_in(&dir.0, &["run", "save.flow", "--", "null.npy"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("is a character device"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::symlink_metadata(dir.0.join("null.npy"))
        .expect("still there")
        .file_type()
        .is_symlink());
    // A directory is refused.
    std::fs::create_dir(dir.0.join("sub.npy")).expect("mkdir");
    let out = run_in(&dir.0, &["run", "save.flow", "--", "sub.npy"]);
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    // A link to a regular file (or to none yet) is written through: the link stays, its
    // target gets the data.
    std::os::unix::fs::symlink("data/real.npy", dir.0.join("link.npy")).expect("symlink");
    std::fs::create_dir(dir.0.join("data")).expect("mkdir");
    for _ in 0..2 {
        let out = run_in(&dir.0, &["run", "save.flow", "--", "link.npy"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(std::fs::symlink_metadata(dir.0.join("link.npy"))
            .expect("link")
            .file_type()
            .is_symlink());
        let data = std::fs::read(dir.0.join("data/real.npy")).expect("the target");
        assert!(data.starts_with(b"\x93NUMPY"));
    }
}

#[test]
fn load_reads_only_regular_files_and_no_further_than_the_header_says() {
    let dir = Scratch::new("cli-load");
    dir.file(
        "load.flow",
        "main {\n  let a: f32[N] = load(args()[0]);\n  print(a);\n}\n",
    );
    let fifo = dir.0.join("fifo.npy");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    std::os::unix::fs::symlink("/dev/zero", dir.0.join("zero.npy")).expect("symlink");
    for (file, why) in [
        ("/dev/zero", "is a character device"),
        ("zero.npy", "is a character device"),
        ("fifo.npy", "is a FIFO"),
        (".", "is a directory"),
    ] {
        let out = run_in(&dir.0, &["run", "load.flow", "--", file]);
        assert_eq!(out.status.code(), Some(1), "{file}: {out:?}");
        assert!(stderr(&out).contains(why), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains("load.flow:2:19"), "{}", stderr(&out));
    }
    // A cache entry that is a link to `/dev/zero` is ignored with a warning (the old code
    // read it forever).
    let cache = dir.0.join("cache");
    let data = repo().join("examples/data/measurements.npy");
    let data = data.to_str().expect("utf-8 path");
    dir.file(
        "sum.flow",
        "main {\n  let a: f32[R, C] = load(args()[0]);\n  print(sum[r, c](a[r, c]));\n}\n",
    );
    let first = run_in(
        &dir.0,
        &["run", "sum.flow", "--cache-dir", "cache", "--", data],
    );
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let mut entries = 0;
    for e in std::fs::read_dir(&cache).expect("the cache") {
        let p = e.expect("an entry").path();
        std::fs::remove_file(&p).expect("rm");
        std::os::unix::fs::symlink("/dev/zero", &p).expect("symlink");
        entries += 1;
    }
    assert!(entries > 0);
    let again = Command::new(flowc())
        .args(["run", "sum.flow", "--cache-dir", "cache", "--", data])
        .current_dir(&dir.0)
        .output()
        .expect("flowc runs");
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert_eq!(stdout(&again), stdout(&first));
    assert!(
        stderr(&again).contains("is a character device"),
        "{again:?}"
    );
}

/// The machine's RAM and swap, in bytes, as `/proc/meminfo` says.
fn machine_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    field("MemTotal:") + field("SwapTotal:")
}

#[test]
fn a_tensor_larger_than_the_machine_is_an_error_not_an_abort() {
    let dir = Scratch::new("cli-memory");
    // The smallest power of two of f32 elements that the machine cannot hold; under the
    // 1 TiB cap of any tensor on machines with less than 1 TiB of RAM and swap.
    let n = (machine_memory() / 4 + 1).next_power_of_two();
    assert!(
        n * 4 <= 1 << 40,
        "this machine has 1 TiB of memory or more: pick a larger tensor"
    );
    dir.file(
        "big.flow",
        &format!("main {{\n  let x = rand_uniform(1, [{n}]);\n  print(x[0]);\n}}\n"),
    );
    for backend in ["jit", "interp"] {
        let out = run_in(&dir.0, &["run", "big.flow", "--backend", backend]);
        assert!(!crashed(&out), "{backend}: {out:?}");
        assert_eq!(out.status.code(), Some(1), "{backend}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.contains("big.flow:3:9: error[runtime-error]: out of memory"),
            "{err}"
        );
        assert!(err.contains(&format!("f32[{n}]")), "{err}");
        assert!(err.contains("this machine's memory"), "{err}");
    }
}

#[test]
fn shape_variables_of_loaded_files_are_one_size() {
    let dir = Scratch::new("cli-shapevars");
    dir.file(
        "make.flow",
        "main {\n  save(\"m.npy\", rand_uniform(1, [2, 3]));\n  save(\"sq.npy\", rand_uniform(1, [2, 2]));\n  save(\"a.npy\", rand_uniform(1, [3]));\n  save(\"b.npy\", rand_uniform(1, [4]));\n  save(\"c.npy\", rand_uniform(2, [3]));\n}\n",
    );
    let out = run_in(&dir.0, &["run", "make.flow"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    dir.file(
        "square.flow",
        "main {\n  let a: f32[N, N] = load(args()[0]);\n  print(sum[i](a[i, i]));\n}\n",
    );
    dir.file(
        "two.flow",
        "main {\n  let a: f32[N] = load(args()[0]);\n  let b: f32[N] = load(args()[1]);\n  print(sum[i](a[i] * b[i]));\n}\n",
    );
    // A loop may load files of other sizes into the same annotation, one at a time.
    dir.file(
        "each.flow",
        "main {\n  for k in 0..len(args()) {\n    let x: f32[N] = load(args()[k]);\n    print(sum[i](x[i]));\n  }\n}\n",
    );
    for backend in ["jit", "interp"] {
        let run = |args: &[&str]| {
            let mut all = vec!["run", "--backend", backend];
            all.extend_from_slice(args);
            run_in(&dir.0, &all)
        };
        let out = run(&["square.flow", "--", "m.npy"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            stderr(&out).contains("square.flow:2:22: error[runtime-error]: `m.npy` has shape [2, 3], but the program expects `f32[N, N]`: `N` cannot be both 2 and 3"),
            "{}",
            stderr(&out)
        );
        assert_eq!(run(&["square.flow", "--", "sq.npy"]).status.code(), Some(0));
        let out = run(&["two.flow", "--", "a.npy", "b.npy"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = stderr(&out);
        assert!(
            err.contains("two.flow:3:19: error[runtime-error]: `b.npy` has shape [4], but the program expects `f32[N]` where `N` is 3, the size it has in `a.npy`"),
            "{err}"
        );
        // The annotation that gave `N` its size is shown too.
        assert!(err.contains("`N` is 3 in `a.npy`, loaded here"), "{err}");
        assert_eq!(stdout(&out), "");
        let out = run(&["two.flow", "--", "a.npy", "c.npy"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let out = run(&["each.flow", "--", "a.npy", "b.npy", "c.npy"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(stdout(&out).lines().count(), 3, "{out:?}");
    }
}

#[test]
fn ir_explain_and_graph_run_main_as_run_does() {
    // `main` reads its data file: the old in-memory host had none ("cannot read").
    for cmd in ["ir", "explain", "graph"] {
        let out = run_in(&repo(), &[cmd, "examples/stats.flow"]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {out:?}");
        assert!(!stdout(&out).is_empty(), "{cmd}");
        // Nothing the program prints.
        assert!(
            !stdout(&out).contains("rows: 500"),
            "{cmd}: {}",
            stdout(&out)
        );
    }
    // On the JIT: a program the interpreter needs tens of seconds for takes about as long as
    // under `flowc run` (the old code ran `ir` on the interpreter).
    let dir = Scratch::new("cli-ir");
    dir.file(
        "heavy.flow",
        "main {\n  let x = rand_uniform(1, [4000, 8000]);\n  let y[i] = sum[j](exp(x[i, j]) * x[i, j]);\n  print(sum[i](y[i]));\n}\n",
    );
    let timed = |args: &[&str]| {
        let start = std::time::Instant::now();
        let out = run_in(&dir.0, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        start.elapsed()
    };
    let run = timed(&["run", "heavy.flow"]);
    let ir = timed(&["ir", "heavy.flow"]);
    assert!(
        ir < run * 4 + std::time::Duration::from_secs(3),
        "flowc ir took {ir:?}, flowc run {run:?}"
    );
    // A program without `main` is an error, not an empty success.
    dir.file("nomain.flow", "fn f(x: f32) -> f32 = x + 1.0\n");
    for cmd in ["ir", "explain", "graph"] {
        let out = run_in(&dir.0, &[cmd, "nomain.flow"]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {out:?}");
        assert!(
            stderr(&out).contains("error[missing-main]: `nomain.flow` has no `main` block"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn graph_writes_the_format_its_file_name_asks_for() {
    let dir = Scratch::new("cli-graph");
    dir.file(
        "p.flow",
        "main { print(sum[i](rand_uniform(1, [100])[i])); }\n",
    );
    let out = run_in(&dir.0, &["graph", "p.flow", "-o", "g.dot"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let dot = std::fs::read_to_string(dir.0.join("g.dot")).expect("g.dot");
    assert!(dot.starts_with("digraph"), "{dot}");
    // An image: drawn by Graphviz when it is installed, else a clear error and no file
    // (the old code wrote DOT text into `g.png`).
    let has_dot = Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    let out = run_in(&dir.0, &["graph", "p.flow", "-o", "g.png"]);
    if has_dot {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let png = std::fs::read(dir.0.join("g.png")).expect("g.png");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    } else {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            stderr(&out).contains("needs Graphviz's `dot`, which is not installed"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.0.join("g.png").exists());
    }
    // A name that says no format it knows.
    let out = run_in(&dir.0, &["graph", "p.flow", "-o", "g.xyz"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("`.xyz` is not a format"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.0.join("g.xyz").exists());
}

#[test]
fn bench_needs_a_timed_run_and_passes_are_named_once() {
    let dir = Scratch::new("cli-flags");
    dir.file(
        "b.flow",
        "bench \"sum\" {\n  let x = rand_uniform(1, [100]);\n  measure {\n    print(sum[i](x[i]));\n  }\n}\n",
    );
    let out = run_in(&dir.0, &["bench", "b.flow", "--reps", "0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("--reps"), "{}", stderr(&out));
    let out = run_in(&dir.0, &["bench", "b.flow", "--reps", "2", "--warmup", "0"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("(2 runs)"), "{}", stdout(&out));
    // `--json`: standard output is one JSON document (what `measure` prints goes to
    // standard error), with a row per bench block and one sample per timed run.
    let out = run_in(&dir.0, &["bench", "b.flow", "--reps", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON on stdout");
    assert_eq!(v[0]["name"], "sum", "{v}");
    assert_eq!(v[0]["runs"], 3, "{v}");
    assert_eq!(v[0]["times_ms"].as_array().map(Vec::len), Some(3), "{v}");
    assert!(v[0]["median_ms"].as_f64().is_some_and(|m| m >= 0.0), "{v}");
    assert!(
        !stderr(&out).is_empty(),
        "the program's prints go to stderr"
    );
    // `--passes`: the help names every pass, and the error for an unknown one names each
    // once.
    let help = stdout(&run_in(&dir.0, &["run", "--help"]));
    let out = run_in(&dir.0, &["run", "b.flow", "--passes", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    for pass in flowc::mir::passes::PIPELINE {
        assert!(help.contains(pass.name), "`run --help` lacks {}", pass.name);
        assert_eq!(
            err.matches(&format!(" {},", pass.name))
                .chain(err.matches(&format!(" {}\n", pass.name)))
                .count(),
            1,
            "{}: {err}",
            pass.name
        );
    }
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_with_the_same_output() {
    let dir = Scratch::new("cli-checkpoint");
    dir.file(
        "loop.flow",
        "op step(u: f32[N]) -> f32[N] {\n  let v[i] = u[i] * 0.5 + pad(u, 1.0)[i + 1] * 0.25;\n  v\n}\nmain {\n  var u = rand_uniform(5, [1000]);\n  for s in 0..12 {\n    u = step(u);\n    print(s, sum[i](u[i]), args());\n  }\n  print(\"end\", max[i](u[i]));\n}\n",
    );
    let whole = run_in(&dir.0, &["run", "loop.flow"]);
    assert_eq!(whole.status.code(), Some(0), "{whole:?}");
    let killed = |at: &str, args: &[&str]| {
        let mut all = vec!["run", "--checkpoint", "ck", "loop.flow", "--"];
        all.extend_from_slice(args);
        Command::new(flowc())
            .args(&all)
            .current_dir(&dir.0)
            .env("FLOW_DIE_AT_DISPATCH", at)
            .output()
            .expect("flowc runs")
    };
    let ckpt = dir.0.join("ck/checkpoint.flowckpt");
    for at in ["1", "6", "12"] {
        let out = killed(at, &[]);
        assert_eq!(out.status.code(), None, "killed at dispatch {at}: {out:?}");
        assert!(stderr(&out).contains("injected death"), "{out:?}");
        assert_eq!(ckpt.exists(), at != "1", "after dispatch {at}");
        let again = run_in(&dir.0, &["run", "--checkpoint", "ck", "loop.flow"]);
        assert_eq!(again.status.code(), Some(0), "{again:?}");
        assert_eq!(stdout(&again), stdout(&whole), "killed at dispatch {at}");
        assert!(!ckpt.exists(), "a finished run removes its checkpoint");
    }
    // A checkpoint of other arguments is not used: the run says so and starts over.
    let out = killed("6", &["x"]);
    assert_eq!(out.status.code(), None, "{out:?}");
    let again = run_in(&dir.0, &["run", "--checkpoint", "ck", "loop.flow"]);
    assert_eq!(stdout(&again), stdout(&whole));
    assert!(
        stderr(&again).contains("is of another program, other arguments"),
        "{again:?}"
    );
    // A damaged one neither.
    let out = killed("6", &[]);
    assert_eq!(out.status.code(), None, "{out:?}");
    let mut bytes = std::fs::read(&ckpt).expect("a checkpoint");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&ckpt, bytes).expect("write");
    let again = run_in(&dir.0, &["run", "--checkpoint", "ck", "loop.flow"]);
    assert_eq!(stdout(&again), stdout(&whole));
    assert!(stderr(&again).contains("is damaged"), "{again:?}");
}

#[test]
fn a_tensor_of_tuples_is_saved_and_loaded_as_one_npy_per_field() {
    let dir = Scratch::new("cli-tuple-npy");
    dir.file(
        "save.flow",
        "main {\n  save(\"p.npy\", zip([3.0, 1.0], [7, 8] as u32));\n  save(\"bad.1.npy\", [1, 2, 3] as u32);\n}\n",
    );
    assert_eq!(run_in(&dir.0, &["run", "save.flow"]).status.code(), Some(0));
    // One plain .npy per field, by position; the first field's file is the plain tensor.
    assert!(dir.0.join("p.0.npy").is_file() && dir.0.join("p.1.npy").is_file());
    assert!(!dir.0.join("p.npy").exists());
    std::fs::copy(dir.0.join("p.0.npy"), dir.0.join("bad.0.npy")).expect("copy");
    dir.file(
        "load.flow",
        "main {\n  let q: (d: f32, i: u32)[N] = load(args()[0]);\n  print(q.i, q.d);\n}\n",
    );
    for backend in ["jit", "interp"] {
        let out = run_in(
            &dir.0,
            &["run", "--backend", backend, "load.flow", "--", "p.npy"],
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[7, 8] [3, 1]\n");
        // Fields of different lengths are refused, naming both files.
        let out = run_in(
            &dir.0,
            &["run", "--backend", backend, "load.flow", "--", "bad.npy"],
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = stderr(&out);
        assert!(
            err.contains("load.flow:2:32: error[runtime-error]")
                && err.contains("`bad.0.npy` has shape [2] and `bad.1.npy` [3]"),
            "{err}"
        );
    }
}
