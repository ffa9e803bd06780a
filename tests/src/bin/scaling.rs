//! How compile time grows with the size of one dispatched graph:
//! `cargo run --release -p flow-tests --bin scaling -- [chain N | mlp N]...` (by default
//! `chain 1000 chain 10000 chain 100000 mlp 4000`).
//!
//! - `chain N`: `var x = [1.0, 2.0]; for s in 0..N { x = step(x); } print(x);` with `step`
//!   one map of two operations: the loop observes nothing until its end, so the one dispatch
//!   is a chain of `N` maps.
//! - `mlp N`: `examples/mlp.flow` trained for `N` steps with one print at the end (and the
//!   final accuracy): one dispatch of about 20 nodes per step.
//!
//! For each it prints the nodes of the dispatched graph, the time of the pass pipeline on
//! it (`passes`), the wall time of the whole run on the JIT with 2 threads (coordinator,
//! lowering, passes, kernel compilation and kernels: what `flowc run` does after checking)
//! and the process's peak resident memory so far
//! (`VmHWM`; cases run in the order given, so order them by size). Nothing here is a test:
//! times depend on the machine; `docs/performance.md` records a run.

use std::process::ExitCode;
use std::time::Instant;

use flowc::driver::jit_options;
use flowc::exec::{dispatched_graphs_with, run_main, MemoryHost};
use flowc::mir::passes::{optimize_all, PassConfig};

fn chain(n: usize) -> String {
    format!(
        "op step(x: f32[N]) -> f32[N] {{\n    let y[i] = x[i] * 0.5 + 1.0;\n    y\n}}\n\
         main {{\n    var x = [1.0, 2.0];\n    for s in 0..{n} {{\n        x = step(x);\n    }}\n    print(x);\n}}\n"
    )
}

fn mlp(n: usize) -> Result<String, String> {
    let path = flow_tests::workspace_root().join("examples/mlp.flow");
    let src = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = src
        .replace("for step in 0..301", &format!("for step in 0..{n}"))
        .replace("if step % 100 == 0", "if step == -1");
    if out == src {
        return Err("examples/mlp.flow changed: its loop is not `for step in 0..301`".into());
    }
    Ok(out)
}

/// The peak resident memory of this process so far, in MiB (Linux).
fn peak_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0}", kb / 1024.0))
}

fn measure(name: &str, src: &str) -> Result<(), String> {
    let c = flowc::driver::compile_sources(&[(format!("{name}.flow"), src.to_string())])
        .map_err(|f| f.render(Default::default()))?;
    // The graph the run dispatches, and the pipeline on it alone.
    let opts = jit_options(2);
    let (graphs, err) = dispatched_graphs_with(&c.program, &mut MemoryHost::default(), &opts);
    if let Some(e) = err {
        return Err(format!("{e:?}"));
    }
    let g = graphs
        .iter()
        .max_by_key(|g| g.nodes.len())
        .ok_or("no dispatch")?;
    let nodes = g.nodes.len();
    let mut opt = g.clone();
    let start = Instant::now();
    optimize_all(
        &mut opt,
        &PassConfig {
            verify: false,
            ..PassConfig::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let passes = start.elapsed();
    drop(graphs);
    // The whole run, as `flowc run` does it.
    let start = Instant::now();
    let mut host = MemoryHost::default();
    run_main(&c.program, &mut host, &opts).map_err(|e| format!("{e:?}"))?;
    let run = start.elapsed();
    println!(
        "{name:<14} {nodes:>9} {:>12.1} {:>10.1} {:>9}",
        passes.as_secs_f64() * 1e3,
        run.as_secs_f64() * 1e3,
        peak_mib()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = if args.is_empty() {
        [
            "chain", "1000", "chain", "10000", "chain", "100000", "mlp", "4000",
        ]
        .map(String::from)
        .to_vec()
    } else {
        args
    };
    println!(
        "{:<14} {:>9} {:>12} {:>10} {:>9}",
        "case", "nodes", "passes (ms)", "run (ms)", "peak MiB"
    );
    for pair in args.chunks(2) {
        let (Some(kind), Some(n)) = (pair.first(), pair.get(1).and_then(|n| n.parse().ok())) else {
            eprintln!("usage: scaling [chain N | mlp N]...");
            return ExitCode::from(2);
        };
        let src = match kind.as_str() {
            "chain" => Ok(chain(n)),
            "mlp" => mlp(n),
            _ => Err(format!("unknown case `{kind}`: chain or mlp")),
        };
        if let Err(e) = src.and_then(|s| measure(&format!("{kind} {n}"), &s)) {
            eprintln!("{kind} {n}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
