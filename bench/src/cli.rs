//! The command-line options that `baseline` and `compare` share, and their usage errors.

use std::process::ExitCode;

use crate::timing::Options;

/// `--threads N`, `--warmup N`, `--reps N` and `--only A,B,…`.
pub struct Common {
    /// Worker threads (default: all cores).
    pub threads: usize,
    pub opts: Options,
    /// Only these benchmarks, when given.
    pub only: Option<Vec<String>>,
}

impl Common {
    /// The defaults: every core, [`Options::default`], every benchmark.
    pub fn new() -> Common {
        Common {
            threads: flow_runtime::pool::default_threads(),
            opts: Options::default(),
            only: None,
        }
    }

    /// Takes `flag` and its value from `rest` if it is one of these options (`--only` must
    /// name some of `names`); `Ok(false)` if it is not.
    pub fn take(
        &mut self,
        flag: &str,
        rest: &mut dyn Iterator<Item = String>,
        names: &[&str],
    ) -> Result<bool, String> {
        match flag {
            "--threads" => self.threads = number(flag, rest)?.max(1),
            "--warmup" => self.opts.warmup = number(flag, rest)?,
            "--reps" => self.opts.reps = number(flag, rest)?.max(1),
            "--only" => {
                let list: Vec<String> = value(flag, rest)?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                if let Some(bad) = list.iter().find(|n| !names.contains(&n.as_str())) {
                    return Err(format!("unknown benchmark `{bad}`"));
                }
                self.only = Some(list);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether benchmark `name` is to run.
    pub fn selected(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }
}

impl Default for Common {
    fn default() -> Common {
        Common::new()
    }
}

/// The value after `flag`.
pub fn value(flag: &str, rest: &mut dyn Iterator<Item = String>) -> Result<String, String> {
    rest.next().ok_or(format!("{flag} needs a value"))
}

fn number(flag: &str, rest: &mut dyn Iterator<Item = String>) -> Result<usize, String> {
    let v = value(flag, rest)?;
    v.parse()
        .map_err(|_| format!("{flag} takes a number, not `{v}`"))
}

/// Prints `PROGRAM: MESSAGE` (unless the message is empty: `--help`) and the usage to
/// standard error; the exit status of a usage error.
pub fn usage_error(program: &str, message: &str, usage: &str) -> ExitCode {
    if !message.is_empty() {
        eprintln!("{program}: {message}");
    }
    eprintln!("{usage}");
    ExitCode::from(2)
}

/// Starts rayon's global pool with `threads` threads.
pub fn start_threads(threads: usize) -> Result<(), String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("cannot start {threads} threads: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_options_are_taken_and_others_left() {
        let mut c = Common::new();
        let mut rest = ["3", "W1,W3", "x"].map(String::from).into_iter();
        assert_eq!(c.take("--threads", &mut rest, &["W1"]), Ok(true));
        assert_eq!(c.threads, 3);
        assert!(c
            .take("--only", &mut rest, &["W1"])
            .unwrap_err()
            .contains("`W3`"));
        assert_eq!(c.take("--json", &mut rest, &["W1"]), Ok(false));
        assert!(c
            .take("--reps", &mut rest, &[])
            .unwrap_err()
            .contains("not `x`"));
        assert!(c
            .take("--warmup", &mut rest, &[])
            .unwrap_err()
            .contains("needs a value"));
        assert!(c.selected("W9"));
    }
}
