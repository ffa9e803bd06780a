//! Stage checkpoints (`checkpoint.rs`): a run stopped at any dispatch and rerun from its
//! checkpoint prints exactly what an uninterrupted run prints.

use super::compile;
use crate::exec::{run_main, MemoryHost, RunOptions};

/// Statements before and after two loops of `main`, a `for` whose end depends on a variable
/// the loop changes, a `while`, and every kind of value a variable can hold.
const PROGRAM: &str = r#"
op step(u: f32[N]) -> f32[N] {
    let v[i] = u[i] * 0.5 + pad(u, 1.0)[i + 1] * 0.25;
    v
}
main {
    var u = rand_uniform(3, [64]);
    var n = 6;
    var name = "start";
    var pair = (1, 2.5);
    print("before", sum[i](u[i]));
    for s in 0..n {
        u = step(u);
        n = n + 1;
        name = "step {s}";
        pair = (s, sum[i](u[i]));
        print(name, pair);
    }
    var k = 0;
    while k < 4 {
        u = step(u);
        print("while", k, max[i](u[i]));
        k = k + 1;
    }
    print("after", n, name, sum[i](u[i]));
}
"#;

#[test]
fn a_run_stopped_at_any_dispatch_resumes_with_the_same_output() {
    let prog = compile(PROGRAM);
    let opts = RunOptions::default();
    let mut whole = MemoryHost::default();
    run_main(&prog, &mut whole, &opts).unwrap();
    // Checkpointing changes nothing, and a finished run leaves no checkpoint.
    let mut host = MemoryHost {
        checkpoint: Some(None),
        ..MemoryHost::default()
    };
    run_main(&prog, &mut host, &opts).unwrap();
    assert_eq!(host.out, whole.out);
    assert_eq!(host.checkpoint, Some(None));
    let mut resumed_some = false;
    for k in 1..40 {
        let mut first = MemoryHost {
            checkpoint: Some(None),
            stop_at_dispatch: Some(k),
            ..MemoryHost::default()
        };
        if run_main(&prog, &mut first, &opts).is_ok() {
            break;
        }
        let saved = first.checkpoint.clone().flatten();
        resumed_some |= saved.is_some();
        let mut again = MemoryHost {
            checkpoint: Some(saved),
            ..MemoryHost::default()
        };
        run_main(&prog, &mut again, &opts).unwrap();
        assert_eq!(again.out, whole.out, "stopped at dispatch {k}");
        assert_eq!(again.checkpoint, Some(None));
    }
    assert!(resumed_some);
}

#[test]
fn a_damaged_checkpoint_is_an_error_not_a_wrong_result() {
    let prog = compile(PROGRAM);
    let mut first = MemoryHost {
        checkpoint: Some(None),
        stop_at_dispatch: Some(5),
        ..MemoryHost::default()
    };
    assert!(run_main(&prog, &mut first, &RunOptions::default()).is_err());
    let saved = first
        .checkpoint
        .flatten()
        .expect("a checkpoint after 4 dispatches");
    for cut in [0, 8, 20, saved.len() - 1] {
        let mut again = MemoryHost {
            checkpoint: Some(Some(saved[..cut].to_vec())),
            ..MemoryHost::default()
        };
        let err = run_main(&prog, &mut again, &RunOptions::default())
            .unwrap_err()
            .message();
        assert!(err.contains("cannot resume from the checkpoint"), "{err}");
    }
}
