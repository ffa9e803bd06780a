//! `flowc bench`: runs every `bench` block's setup once and its `measure` block after a
//! warm-up, and reports medians (text or JSON).

use super::{
    compile_or_report, report, run_error_diag, run_options, stderr_config, PassFlags, RuntimeFlags,
};

/// Median, minimum and maximum of timings, in milliseconds.
pub fn summarize(times: &[std::time::Duration]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    (median, ms[0], ms[n - 1])
}

/// `flowc bench FILE [--json] [--warmup N] [--reps N]`: runs the `bench` blocks.
pub fn cmd_bench(
    path: &std::path::Path,
    flags: &PassFlags,
    rt: &RuntimeFlags,
    json: bool,
    warmup: usize,
    reps: usize,
) -> i32 {
    super::on_ranks(flags, rt, |spread| {
        run_bench_blocks(path, flags, rt, (json, warmup, reps), spread)
    })
}

/// `flowc bench`, on one process or as rank 0 of an MPI job (`spread`, which the timings
/// then include).
fn run_bench_blocks(
    path: &std::path::Path,
    flags: &PassFlags,
    rt: &RuntimeFlags,
    (json, warmup, reps): (bool, usize, usize),
    spread: Option<std::rc::Rc<dyn crate::native::Spread>>,
) -> i32 {
    let cfg = stderr_config();
    let (mut opts, observed) = match run_options(flags, rt) {
        Ok(o) => o,
        Err(status) => return status,
    };
    opts.spread = spread;
    let start = std::time::Instant::now();
    let Some(c) = compile_or_report(path, cfg) else {
        return 1;
    };
    let front_end = start.elapsed();
    if c.program.benches.is_empty() {
        errln!("error: `{}` has no `bench` blocks", path.display());
        return 1;
    }
    let mut host = match flags.host(Vec::new()) {
        Ok(h) => h,
        Err(msg) => {
            errln!("error: {msg}");
            return 1;
        }
    };
    // With `--json`, standard output is the JSON document alone: what the program prints
    // goes to standard error.
    host.print_to_stderr = json;
    let results = crate::exec::run_benches(&c.program, &mut host, &opts, warmup, reps);
    host.report_warnings();
    let mut status = 0;
    let mut rows = Vec::new();
    for r in &results {
        if let Some(e) = &r.error {
            err!("{}", report::render(&c.sources, &run_error_diag(e), cfg));
            status = 1;
            continue;
        }
        if json {
            rows.push(json_row(r, front_end));
            continue;
        }
        let (median, min, max) = summarize(&r.times);
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        outln!(
            "bench {:<28} median {median:>10.3} ms   min {min:>10.3}   max {max:>10.3}   ({} runs)",
            r.name,
            r.times.len()
        );
        outln!(
            "      compile: front end {:.2} ms, {} kernel(s) in {:.2} ms; passes {:.2} ms over all dispatches",
            ms(front_end),
            r.kernels,
            ms(r.compile_time),
            ms(r.pass_time)
        );
    }
    if json {
        outln!("{}", json_document(rows));
    }
    status.max(observed.finish())
}

/// One `bench` block's result as a JSON object: its name, the median, minimum and maximum
/// and every timed run in milliseconds, and what compiling took.
fn json_row(r: &crate::exec::BenchOutcome, front_end: std::time::Duration) -> serde_json::Value {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let (median, min, max) = summarize(&r.times);
    serde_json::json!({
        "name": r.name,
        "median_ms": median,
        "min_ms": min,
        "max_ms": max,
        "runs": r.times.len(),
        "times_ms": r.times.iter().map(|&t| ms(t)).collect::<Vec<f64>>(),
        "front_end_ms": ms(front_end),
        "kernel_compile_ms": ms(r.compile_time),
        "pass_ms": ms(r.pass_time),
        "kernels": r.kernels,
    })
}

/// The document `flowc bench --json` prints: an array with one object per `bench` block that
/// ran (see [`json_row`]), in the order of the file.
fn json_document(rows: Vec<serde_json::Value>) -> String {
    serde_json::to_string_pretty(&serde_json::Value::Array(rows))
        .expect("a JSON value of strings and numbers serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_json_report_parses_and_carries_every_field() {
        let outcome = crate::exec::BenchOutcome {
            // A name that a hand-formatted string would have to escape.
            name: "quote \" and \\ tab\t ü".to_string(),
            times: vec![Duration::from_micros(1500), Duration::from_micros(500)],
            error: None,
            pass_time: Duration::from_micros(250),
            compile_time: Duration::from_millis(2),
            kernels: 3,
            evaluated: 2,
        };
        let text = json_document(vec![json_row(&outcome, Duration::from_millis(7))]);
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let row = &v.as_array().expect("an array")[0];
        assert_eq!(row["name"], outcome.name.as_str());
        assert_eq!(row["median_ms"], 1.0);
        assert_eq!(row["min_ms"], 0.5);
        assert_eq!(row["max_ms"], 1.5);
        assert_eq!(row["runs"], 2);
        assert_eq!(row["times_ms"], serde_json::json!([1.5, 0.5]));
        assert_eq!(row["front_end_ms"], 7.0);
        assert_eq!(row["kernel_compile_ms"], 2.0);
        assert_eq!(row["pass_ms"], 0.25);
        assert_eq!(row["kernels"], 3);
    }
}
