//! The result cache, the graph cache and the memory budget through the `flowc` binary:
//! `--cache-dir` across runs, damaged and truncated entries (warned about, recomputed,
//! rewritten), `--no-cache`, `--memory-limit` (same output, lower peak, a clear error when
//! nothing fits) and `--stats`.

use std::path::{Path, PathBuf};

use flow_tests::{cases_dir, flowc, Output};

fn dir() -> PathBuf {
    cases_dir().join("run")
}

fn run(args: &[&str]) -> Output {
    let out = flowc(args, &dir());
    assert!(!out.crashed(), "{out:?}");
    out
}

/// A `--stats` number: `dispatched`, `optimized`, `reused` (from the graph cache), `run`,
/// `memory` (results from memory) or `directory` (results from the cache directory).
fn stat(out: &Output, what: &str) -> usize {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("stats:"))
        .unwrap_or_else(|| panic!("no stats line: {}", out.stderr));
    let head = line.split("peak").next().expect("text");
    let numbers: Vec<usize> = head
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let names = [
        "dispatched",
        "optimized",
        "reused",
        "run",
        "memory",
        "directory",
    ];
    assert_eq!(numbers.len(), names.len(), "{line}");
    numbers[names.iter().position(|n| *n == what).expect("a known name")]
}

fn peak(out: &Output) -> f64 {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("stats:"))
        .expect("stats");
    let tail = line.rsplit("peak tensor memory ").next().expect("peak");
    let (num, unit) = tail.split_once(' ').expect("a unit");
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        other => panic!("unit {other}"),
    };
    num.parse::<f64>().expect("a number") * scale
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flow-tests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn entries(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .expect("the cache directory exists")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn results_are_reused_in_memory_and_across_runs() {
    let plain = run(&["run", "cached.flow", "--stats"]);
    assert_eq!(plain.code, Some(0), "{plain:?}");
    // The loop's sum is the same graph on the same input from its second time on.
    assert!(stat(&plain, "memory") >= 2, "{}", plain.stderr);
    let off = run(&["run", "cached.flow", "--stats", "--no-cache"]);
    assert_eq!(off.stdout, plain.stdout);
    assert_eq!(stat(&off, "memory"), 0);
    assert!(stat(&off, "run") > stat(&plain, "run"));

    let cache = temp("cache");
    let c = cache.to_str().expect("utf-8");
    let first = run(&["run", "cached.flow", "--stats", "--cache-dir", c]);
    assert_eq!(first.stdout, plain.stdout);
    assert_eq!(stat(&first, "directory"), 0);
    let files = entries(&cache);
    assert!(!files.is_empty());
    assert!(files
        .iter()
        .all(|f| f.extension().is_some_and(|e| e == "flowres")));
    let second = run(&["run", "cached.flow", "--stats", "--cache-dir", c]);
    assert_eq!(second.stdout, plain.stdout);
    assert_eq!(stat(&second, "run"), 0, "{}", second.stderr);
    assert!(!second.stderr.contains("warning"), "{}", second.stderr);

    // Damage every entry: a flipped byte in one half, a truncation in the other.
    for (k, f) in files.iter().enumerate() {
        let mut b = std::fs::read(f).expect("entry");
        if k % 2 == 0 {
            let last = b.len() - 1;
            b[last] ^= 0x40;
        } else {
            b.truncate(b.len() / 2);
        }
        std::fs::write(f, b).expect("write");
    }
    let third = run(&["run", "cached.flow", "--stats", "--cache-dir", c]);
    assert_eq!(third.code, Some(0), "{third:?}");
    assert_eq!(
        third.stdout, plain.stdout,
        "damaged entries are never trusted"
    );
    assert_eq!(stat(&third, "directory"), 0, "{}", third.stderr);
    assert!(
        third.stderr.contains("checksum mismatch"),
        "{}",
        third.stderr
    );
    assert!(
        third.stderr.contains("truncated") || third.stderr.contains("payload bytes"),
        "{}",
        third.stderr
    );
    // Rewritten: the next run reads them all again.
    let fourth = run(&["run", "cached.flow", "--stats", "--cache-dir", c]);
    assert_eq!(fourth.stdout, plain.stdout);
    assert_eq!(stat(&fourth, "run"), 0, "{}", fourth.stderr);
    assert!(!fourth.stderr.contains("warning"), "{}", fourth.stderr);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn a_memory_limit_gives_the_same_output_in_less_memory() {
    for backend in ["jit", "interp"] {
        let free = run(&[
            "run",
            "cached.flow",
            "--stats",
            "--no-cache",
            "--backend",
            backend,
        ]);
        let tight = run(&[
            "run",
            "cached.flow",
            "--stats",
            "--no-cache",
            "--backend",
            backend,
            "--memory-limit",
            "100K",
        ]);
        assert_eq!(tight.code, Some(0), "{tight:?}");
        assert_eq!(tight.stdout, free.stdout);
        assert!(
            peak(&tight) < peak(&free),
            "{} / {}",
            tight.stderr,
            free.stderr
        );
        assert!(peak(&tight) <= 100.0 * 1024.0, "{}", tight.stderr);
    }
    let none = run(&["run", "cached.flow", "--memory-limit", "10K"]);
    assert_eq!(none.code, Some(1), "{none:?}");
    assert!(
        none.stderr.contains("out of memory budget"),
        "{}",
        none.stderr
    );
    assert!(none.stderr.contains("f32[128, 128]"), "{}", none.stderr);
    assert!(
        none.stderr.contains("cached.flow:"),
        "a location: {}",
        none.stderr
    );
    let bad = run(&["run", "cached.flow", "--memory-limit", "12Q"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("not a size"), "{}", bad.stderr);
}
