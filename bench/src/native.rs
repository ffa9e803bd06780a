//! The baselines built for this CPU, in a second process: `compare` builds this crate's
//! `baseline` binary again with `RUSTFLAGS="-C target-cpu=native"` (by default) into its own
//! target folder, `target/native`, starts it with `--serve`, and asks it for one timed run of
//! a workload at a time, so that its runs interleave with the portable baseline's and the
//! Flow program's in the same run.
//!
//! The protocol, one line each way (standard input and output of the child; its progress
//! messages go to standard error):
//!
//! | parent | child |
//! |---|---|
//! | (start) | `features avx avx2 fma …` (the target features it was compiled with) |
//! | `prepare W3` | `ready`, or `error MESSAGE` |
//! | `once` | the time of one run in milliseconds, or `error MESSAGE` |
//! | (end of input) | exits |

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::workloads::{self, Prepared};

/// The flags of the native build unless `compare --native-rustflags` says otherwise: what a
/// performance-minded user ships for their own machine.
pub const DEFAULT_RUSTFLAGS: &str = "-C target-cpu=native";

/// The x86-64 vector and arithmetic features this crate was compiled with (those that change
/// the code of the kernels), in the order of their introduction.
pub fn target_features() -> Vec<&'static str> {
    let mut f = Vec::new();
    macro_rules! feature {
        ($($name:tt),*) => {$(
            if cfg!(target_feature = $name) {
                f.push($name);
            }
        )*};
    }
    feature!("sse2", "sse4.1", "avx", "avx2", "fma", "avx512f", "avx512vl", "avx512bw");
    f
}

/// Builds the `baseline` binary with `rustflags` into `ROOT/target/native` (other flags:
/// `target/native-FLAGS`, so that builds with different flags do not replace each other;
/// cargo does nothing when one is up to date) and returns its path. Cargo's output goes to
/// standard error.
pub fn build(root: &Path, rustflags: &str) -> Result<PathBuf, String> {
    let target_dir = root.join("target").join(target_dir_name(rustflags));
    // The cargo that built this binary, else the one on the PATH.
    let cargo = option_env!("CARGO")
        .filter(|c| Path::new(c).exists())
        .unwrap_or("cargo");
    eprintln!(
        "building the native baseline: RUSTFLAGS=\"{rustflags}\" cargo build --release -p flow-bench \
         --no-default-features --bin baseline --target-dir {}",
        target_dir.display()
    );
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "flow-bench",
            "--no-default-features",
        ])
        .args(["--bin", "baseline", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", rustflags)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("the native build failed ({status})"));
    }
    let exe = target_dir
        .join("release")
        .join(format!("baseline{}", std::env::consts::EXE_SUFFIX));
    if exe.exists() {
        Ok(exe)
    } else {
        Err(format!("the native build made no {}", exe.display()))
    }
}

/// `native` for [`DEFAULT_RUSTFLAGS`], else `native-` and the flags with every run of
/// characters other than letters, digits, `_` and `.` made one `-`.
fn target_dir_name(rustflags: &str) -> String {
    if rustflags == DEFAULT_RUSTFLAGS {
        return "native".to_string();
    }
    let mut name = "native".to_string();
    for c in rustflags.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name
}

/// A running `baseline --serve`.
pub struct Server {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    /// The target features the child was compiled with, as it reported them.
    pub features: Vec<String>,
}

impl Server {
    /// Starts `exe --serve --threads N` and reads its features line.
    pub fn start(exe: &Path, threads: usize) -> Result<Server, String> {
        let mut child = Command::new(exe)
            .args(["--serve", "--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut s = Server {
            child,
            input,
            output,
            features: Vec::new(),
        };
        let line = s.read_line()?;
        let Some(list) = line.strip_prefix("features") else {
            return Err(format!(
                "the native baseline said `{line}`, not its features"
            ));
        };
        s.features = list.split_whitespace().map(str::to_string).collect();
        Ok(s)
    }

    /// Builds the workload's inputs in the child.
    pub fn prepare(&mut self, name: &str) -> Result<(), String> {
        match self.ask(&format!("prepare {name}"))?.as_str() {
            "ready" => Ok(()),
            other => Err(format!("the native baseline said `{other}`")),
        }
    }

    /// One timed run of the prepared workload in the child, in milliseconds.
    pub fn time_once(&mut self) -> Result<f64, String> {
        let reply = self.ask("once")?;
        reply
            .parse()
            .map_err(|_| format!("the native baseline said `{reply}`, not a time"))
    }

    fn ask(&mut self, line: &str) -> Result<String, String> {
        let input = self.input.as_mut().expect("open until dropped");
        writeln!(input, "{line}")
            .and_then(|()| input.flush())
            .map_err(|e| format!("the native baseline is gone: {e}"))?;
        self.read_line()
    }

    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.output.read_line(&mut line) {
            Ok(0) => Err("the native baseline exited".to_string()),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(format!("cannot read the native baseline: {e}")),
        }
    }
}

impl Drop for Server {
    /// Closes the child's input (it exits at the end of it) and waits for it.
    fn drop(&mut self) {
        drop(self.input.take());
        let _ = self.child.wait();
    }
}

/// The child's side (`baseline --serve`): answers the protocol above on `input` and `output`
/// until the end of `input`. Rayon's global pool must already have `threads` threads.
pub fn serve(threads: usize, input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    writeln!(output, "features {}", target_features().join(" "))?;
    output.flush()?;
    let mut prepared: Option<Prepared> = None;
    for line in input.lines() {
        let line = line?;
        let reply = match line.split_once(' ') {
            Some(("prepare", name)) => {
                drop(prepared.take()); // free the last workload's buffers first
                prepared = workloads::prepare(name, threads);
                match prepared {
                    Some(_) => "ready".to_string(),
                    None => format!("error no benchmark `{name}`"),
                }
            }
            _ if line == "once" => match prepared.as_mut() {
                Some(p) => p.time_once().to_string(),
                None => "error nothing prepared".to_string(),
            },
            _ => format!("error unknown request `{line}`"),
        };
        writeln!(output, "{reply}")?;
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_set_of_flags_has_its_own_target_folder() {
        assert_eq!(target_dir_name(DEFAULT_RUSTFLAGS), "native");
        assert_eq!(
            target_dir_name("-C target-cpu=x86-64-v3"),
            "native-C-target-cpu-x86-64-v3"
        );
        assert_eq!(
            target_dir_name("-Ctarget-feature=+avx2,+fma"),
            "native-Ctarget-feature-avx2-fma"
        );
    }

    #[test]
    fn the_server_prepares_times_and_refuses_what_it_does_not_know() {
        let input = "once\nprepare W9\nprepare pool.run\nonce\nonce\nfly\n";
        let mut out = Vec::new();
        serve(2, input.as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 7, "{out}");
        assert!(
            lines[0].starts_with("features") && lines[0].contains("sse2"),
            "{out}"
        );
        assert_eq!(lines[1], "error nothing prepared");
        assert_eq!(lines[2], "error no benchmark `W9`");
        assert_eq!(lines[3], "ready");
        for t in &lines[4..6] {
            assert!(t.parse::<f64>().is_ok_and(|ms| ms >= 0.0), "{out}");
        }
        assert_eq!(lines[6], "error unknown request `fly`");
    }
}
