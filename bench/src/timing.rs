//! The timing harness: run a closure after a warm-up, time each repetition, and report the
//! median, minimum and maximum in milliseconds as a table or as JSON.
//!
//! It knows nothing about what it times, so the baselines of this crate and Flow programs
//! (through the compiler's driver) can be timed by the same code in the same run, and their
//! ratios compared without the drift between runs that shared machines show.

use std::fmt::Write as _;
use std::time::Instant;

/// How many untimed and timed runs to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Runs before timing starts (page faults, caches, lazy initialisation).
    pub warmup: usize,
    /// Timed runs; the statistics are over these (at least one is made).
    pub reps: usize,
}

impl Default for Options {
    /// Two warm-up runs and ten timed ones.
    fn default() -> Options {
        Options {
            warmup: 2,
            reps: 10,
        }
    }
}

/// The timings of one benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// A short name (`W1`), unique within a report.
    pub name: String,
    /// What was timed, in a few words.
    pub what: String,
    /// The time of each timed run, in milliseconds, in the order they ran.
    pub samples_ms: Vec<f64>,
}

impl Timing {
    /// The median sample (the mean of the two middle ones for an even count); 0 with none.
    pub fn median_ms(&self) -> f64 {
        let mut s = self.samples_ms.clone();
        s.sort_by(f64::total_cmp);
        match s.len() {
            0 => 0.0,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    /// The smallest sample; 0 with none.
    pub fn min_ms(&self) -> f64 {
        self.samples_ms
            .iter()
            .copied()
            .reduce(f64::min)
            .unwrap_or(0.0)
    }

    /// The largest sample; 0 with none.
    pub fn max_ms(&self) -> f64 {
        self.samples_ms
            .iter()
            .copied()
            .reduce(f64::max)
            .unwrap_or(0.0)
    }
}

/// Times `f`: `opts.warmup` untimed calls, then `opts.reps` timed ones. `f` must run its work
/// to completion before it returns.
pub fn time(name: &str, what: &str, opts: &Options, f: impl FnMut()) -> Timing {
    time_batched(name, what, opts, 1, f)
}

/// Like [`time`], but `setup` runs untimed before every call of `f` (a sort that needs its
/// unsorted input back).
pub fn time_with_setup(
    name: &str,
    what: &str,
    opts: &Options,
    setup: &mut dyn FnMut(),
    f: &mut dyn FnMut(),
) -> Timing {
    for _ in 0..opts.warmup {
        setup();
        f();
    }
    let samples_ms = (0..opts.reps.max(1))
        .map(|_| {
            setup();
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    Timing {
        name: name.to_string(),
        what: what.to_string(),
        samples_ms,
    }
}

/// Like [`time`], but each sample times `batch` calls and records their mean: for work of a few
/// microseconds, where one call is below the clock's resolution.
pub fn time_batched(
    name: &str,
    what: &str,
    opts: &Options,
    batch: usize,
    mut f: impl FnMut(),
) -> Timing {
    let batch = batch.max(1);
    for _ in 0..opts.warmup * batch {
        f();
    }
    let samples_ms = (0..opts.reps.max(1))
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_secs_f64() * 1e3 / batch as f64
        })
        .collect();
    Timing {
        name: name.to_string(),
        what: what.to_string(),
        samples_ms,
    }
}

/// A plain-text table: one line per benchmark with its median, minimum and maximum.
pub fn render_table(timings: &[Timing]) -> String {
    let name_w = timings
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let what_w = timings
        .iter()
        .map(|t| t.what.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<name_w$}  {:<what_w$}  {:>12}  {:>12}  {:>12}\n",
        "name", "what", "median ms", "min ms", "max ms"
    );
    for t in timings {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<what_w$}  {:>12}  {:>12}  {:>12}",
            t.name,
            t.what,
            fmt_ms(t.median_ms()),
            fmt_ms(t.min_ms()),
            fmt_ms(t.max_ms())
        );
    }
    out
}

/// A JSON object `{ <context…>, "results": [ {"name", "what", "median_ms", "min_ms",
/// "max_ms", "samples_ms"}, … ] }`. `context` adds top-level fields whose values are written
/// as JSON already (numbers, or strings made with [`json_string`]).
pub fn render_json(context: &[(&str, String)], timings: &[Timing]) -> String {
    let mut out = String::from("{\n");
    for (k, v) in context {
        let _ = writeln!(out, "  {}: {v},", json_string(k));
    }
    out.push_str("  \"results\": [\n");
    for (i, t) in timings.iter().enumerate() {
        let samples: Vec<String> = t.samples_ms.iter().map(|&s| json_number(s)).collect();
        let _ = write!(
            out,
            "    {{\"name\": {}, \"what\": {}, \"median_ms\": {}, \"min_ms\": {}, \"max_ms\": {}, \"samples_ms\": [{}]}}",
            json_string(&t.name),
            json_string(&t.what),
            json_number(t.median_ms()),
            json_number(t.min_ms()),
            json_number(t.max_ms()),
            samples.join(", ")
        );
        out.push_str(if i + 1 < timings.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ]\n}\n");
    out
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite number as JSON (non-finite ones, which JSON cannot write, become `null`).
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        "null".to_string()
    }
}

/// Milliseconds with three significant digits after the point for small values.
fn fmt_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(samples: &[f64]) -> Timing {
        Timing {
            name: "W0".into(),
            what: "a \"quoted\" thing".into(),
            samples_ms: samples.to_vec(),
        }
    }

    #[test]
    fn statistics() {
        let t = timing(&[3.0, 1.0, 2.0]);
        assert_eq!((t.median_ms(), t.min_ms(), t.max_ms()), (2.0, 1.0, 3.0));
        assert_eq!(timing(&[4.0, 1.0, 2.0, 3.0]).median_ms(), 2.5);
        assert_eq!(timing(&[]).median_ms(), 0.0);
    }

    #[test]
    fn runs_warmup_and_reps() {
        let mut calls = 0;
        let t = time_batched("x", "y", &Options { warmup: 2, reps: 3 }, 4, || calls += 1);
        assert_eq!(calls, (2 + 3) * 4);
        assert_eq!(t.samples_ms.len(), 3);
        assert!(t.samples_ms.iter().all(|&s| s >= 0.0));
    }

    #[test]
    fn renders_json_and_table() {
        let t = timing(&[1.5, 0.5]);
        let json = render_json(&[("threads", "2".into())], std::slice::from_ref(&t));
        assert!(json.contains("\"threads\": 2,"));
        assert!(json.contains(
            "{\"name\": \"W0\", \"what\": \"a \\\"quoted\\\" thing\", \"median_ms\": 1.000000"
        ));
        assert!(json.contains("\"samples_ms\": [1.500000, 0.500000]}"));
        let table = render_table(&[t]);
        assert!(table.lines().nth(1).unwrap().starts_with("W0  "));
        assert!(table.contains("1.00"));
        assert_eq!(json_string("a\u{1}\n"), "\"a\\u0001\\n\"");
    }
}
