//! The long fuzzing run: `cargo run --release -p flow-tests --bin fuzz -- [--secs N]
//! [--seed N] [flow|npy]...` fuzzes each named target (both by default) for N seconds
//! (default 60) and writes any crash to `target/fuzz-crashes/`. Exit status 1 on a crash.

use std::process::ExitCode;
use std::time::Duration;

use flow_tests::fuzz;

#[global_allocator]
static ALLOC: fuzz::TrackingAlloc = fuzz::TrackingAlloc;

fn main() -> ExitCode {
    let mut secs = 60.0;
    let mut seed = 1u64;
    let mut targets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).unwrap_or(secs),
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(seed),
            "flow" | "npy" => targets.push(a),
            other => {
                eprintln!("usage: fuzz [--secs N] [--seed N] [flow|npy]...; unknown `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    if targets.is_empty() {
        targets = vec!["flow".into(), "npy".into()];
    }
    // Panics are expected and caught; their messages would drown the report.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for name in &targets {
        let (target, dict, generate): (fuzz::Target, &[&str], Option<fuzz::Generator>) =
            match name.as_str() {
                "flow" => (
                    fuzz::target_flow,
                    fuzz::TOKENS,
                    Some(fuzz::generate_flow as fuzz::Generator),
                ),
                _ => (fuzz::target_npy, fuzz::NPY_WORDS, None),
            };
        let corpus: Vec<Vec<u8>> = fuzz::load_corpus(&fuzz::corpus_dir(name))
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let r = fuzz::run(
            target,
            &corpus,
            dict,
            generate,
            Duration::from_secs_f64(secs),
            seed,
        );
        println!(
            "{name}: {} runs, {} accepted, slowest {:?}, {} crash(es)",
            r.execs,
            r.accepted,
            r.slowest,
            r.crashes.len()
        );
        for (n, c) in r.crashes.iter().enumerate() {
            let path = fuzz::save_crash(name, n, c);
            println!("  {}: {}", path.display(), c.message);
            failed = true;
        }
    }
    ExitCode::from(u8::from(failed))
}
