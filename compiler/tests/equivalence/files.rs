//! The generated graphs as files, run by `flowc run-mir`: what lets the equivalence
//! generator's graphs run on MPI ranks (scripts/test-mpi.sh compares them at 1 process,
//! 2 ranks and 4 ranks bit for bit; docs/distributed.md).
//!
//! `graphs_run_from_files` writes cases (`case-NNN.mir`, the unoptimized graph as
//! `mir::print` writes it, and `case-NNN.inK.npy`, its inputs) to `FLOW_EQUIV_DUMP=DIR`, or to
//! a temporary folder, and checks that `flowc run-mir` on one process prints, for every
//! output, the content hash of what the JIT computes in this process from the same graph
//! after the native backend's passes — with the default shards and with
//! `FLOW_SHARD_ELEMENTS=3` (shards of a few elements: many per launch). So the files carry
//! the graphs and inputs exactly, and the command runs them as the executor does.
//! `FLOW_EQUIV_CASES` sets how many cases (12 by default), `FLOW_EQUIV_SEED` the seed.

use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

use flow_runtime::Tensor;
use flowc::mir::passes::{optimize, PassConfig, PIPELINE};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};

use crate::gen;

/// The line `flowc run-mir` prints for output `k` of the graph in `file`.
fn output_line(file: &str, k: usize, t: &Tensor) -> String {
    let hash = flowc::mir::hash::tensor_hash(t);
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{file} output {k}: {}{} {hex}",
        t.dtype(),
        flow_runtime::format_shape(&t.shape)
    )
}

#[test]
fn graphs_run_from_files() {
    let seed = super::seed();
    let cases: usize = std::env::var("FLOW_EQUIV_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let (dir, keep) = match std::env::var_os("FLOW_EQUIV_DUMP") {
        Some(d) => (PathBuf::from(d), true),
        None => (
            std::env::temp_dir().join(format!("flow-equiv-files-{}-{seed}", std::process::id())),
            false,
        ),
    };
    std::fs::create_dir_all(&dir).expect("the case folder can be made");
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    let strategy = gen::cases();
    let mut jit = flowc::codegen::native(1).expect("the JIT starts");
    let native = PassConfig {
        split_free: false,
        ..PassConfig::default()
    };
    let pipeline: Vec<_> = PIPELINE.iter().collect();
    let (mut files, mut want) = (Vec::new(), String::new());
    for n in 0..cases {
        let case = strategy
            .new_tree(&mut runner)
            .expect("the generator makes a case")
            .current();
        let file = dir.join(format!("case-{n:03}.mir"));
        std::fs::write(&file, flowc::mir::print(&case.graph)).expect("the case is written");
        for (k, t) in case.inputs.iter().enumerate() {
            std::fs::write(
                file.with_extension(format!("in{k}.npy")),
                flow_runtime::npy::write_npy(t),
            )
            .expect("an input is written");
        }
        let name = file.display().to_string();
        let mut g = case.graph.clone();
        optimize(&mut g, &pipeline, &native).expect("the passes run");
        let inputs: Vec<Rc<Tensor>> = case.inputs.iter().cloned().map(Rc::new).collect();
        // A graph the JIT fails on prints no line (its error goes to standard error).
        if let Ok(outs) = jit.eval(&g, &inputs) {
            for (k, t) in outs.iter().enumerate() {
                want.push_str(&output_line(&name, k, t));
                want.push('\n');
            }
        }
        files.push(name);
    }
    for shards in ["", "3"] {
        let out = Command::new(crate::common::flowc())
            .args(["run-mir", "--threads", "2"])
            .args(&files)
            .env("FLOW_SHARD_ELEMENTS", shards)
            .output()
            .expect("flowc runs");
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            got,
            want,
            "flowc run-mir (FLOW_SHARD_ELEMENTS={shards:?}, seed {seed}) differs from the JIT in this process; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
