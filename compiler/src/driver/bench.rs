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
    let cfg = stderr_config();
    let (opts, observed) = match run_options(flags, rt) {
        Ok(o) => o,
        Err(status) => return status,
    };
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
        let (median, min, max) = summarize(&r.times);
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        if json {
            rows.push(format!(
                "{{\"name\": {:?}, \"median_ms\": {median:.4}, \"min_ms\": {min:.4}, \"max_ms\": {max:.4}, \"runs\": {}, \"front_end_ms\": {:.3}, \"kernel_compile_ms\": {:.3}, \"kernels\": {}}}",
                r.name,
                r.times.len(),
                ms(front_end),
                ms(r.compile_time),
                r.kernels
            ));
        } else {
            outln!("bench {:<28} median {median:>10.3} ms   min {min:>10.3}   max {max:>10.3}   ({} runs)", r.name, r.times.len());
            outln!(
                "      compile: front end {:.2} ms, {} kernel(s) in {:.2} ms; passes {:.2} ms over all dispatches",
                ms(front_end),
                r.kernels,
                ms(r.compile_time),
                ms(r.pass_time)
            );
        }
    }
    if json {
        outln!("[{}]", rows.join(", "));
    }
    status.max(observed.finish())
}
