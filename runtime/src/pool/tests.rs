//! The pool's tests: every thread count gives the same results and the same (lowest-numbered)
//! error; retries, injected faults, task graphs, blocks and the combine tree.

use super::*;
use crate::abi;
use std::ops::Range;
use std::sync::atomic::AtomicU32;

const THREADS: [usize; 4] = [1, 2, 3, 8];

fn pools() -> Vec<Pool> {
    THREADS.iter().map(|&t| Pool::new(t).unwrap()).collect()
}

/// A blocked f32 sum: block partials in parallel tasks, then the fixed combine tree.
fn blocked_sum(pool: &Pool, xs: &[f32], block: usize) -> f32 {
    let ranges: Vec<Range<usize>> = blocks(xs.len(), block).collect();
    let slots: Vec<AtomicU32> = ranges.iter().map(|_| AtomicU32::new(0)).collect();
    pool.run(ranges.len(), &|t, _| {
        let s: f32 = xs[ranges[t].clone()].iter().sum();
        slots[t].store(s.to_bits(), Ordering::Relaxed);
        Ok(())
    })
    .unwrap();
    let partials = slots
        .iter()
        .map(|a| f32::from_bits(a.load(Ordering::Relaxed)))
        .collect();
    combine_tree(partials, |a, b| a + b).unwrap_or(0.0)
}

#[test]
fn thread_counts_are_validated_and_capped() {
    assert_eq!(parse_threads("1"), Ok(1));
    assert_eq!(parse_threads(&MAX_THREADS.to_string()), Ok(MAX_THREADS));
    for bad in ["0", "1025", "100000", "-1", "two", ""] {
        let e = parse_threads(bad).unwrap_err();
        assert!(e.contains(&MAX_THREADS.to_string()), "{bad}: {e}");
    }
    assert!(Pool::new(MAX_THREADS + 1).is_err());
    assert!((1..=MAX_THREADS).contains(&default_threads()));
}

#[test]
fn results_are_bitwise_identical_for_any_thread_count() {
    let mut xs = vec![0.0f32; 100_003];
    crate::rand::fill_normal(5, &mut xs, 0);
    let sums: Vec<u32> = pools()
        .iter()
        .map(|p| blocked_sum(p, &xs, 1000).to_bits())
        .collect();
    assert!(sums.iter().all(|&s| s == sums[0]), "{sums:?}");
    // And the same as running the blocks by hand, in order.
    let partials = blocks(xs.len(), 1000)
        .map(|r| xs[r].iter().sum::<f32>())
        .collect();
    assert_eq!(
        combine_tree(partials, |a, b| a + b).unwrap().to_bits(),
        sums[0]
    );
}

#[test]
fn every_task_runs_exactly_once() {
    for pool in pools() {
        for n in [0, 1, 2, 7, 1000] {
            let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, &|t, _| {
                counts[t].fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }
}

#[test]
fn the_lowest_numbered_failure_is_reported() {
    let failing = [999, 37, 50, 38];
    for pool in pools() {
        for _ in 0..20 {
            let err = pool
                .run(1000, &|t, _| {
                    if failing.contains(&t) {
                        Err(TaskError::code(t, abi::ERR_DIV_ZERO))
                    } else {
                        Ok(())
                    }
                })
                .unwrap_err();
            assert_eq!(err, TaskError::code(37, abi::ERR_DIV_ZERO));
        }
    }
}

/// Pools that never retry.
fn pools_without_retries() -> Vec<Pool> {
    let mut ps = pools();
    ps.iter_mut().for_each(|p| p.set_retries(0));
    ps
}

#[test]
fn panics_become_task_errors_naming_the_task() {
    for pool in pools_without_retries() {
        let err = pool
            .run(64, &|t, _| {
                if t == 5 || t == 40 {
                    panic!("boom in {t}");
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.task, 5);
        assert_eq!(err.kind, TaskErrorKind::Panic("boom in 5".to_string()));
        assert_eq!(err.to_string(), "shard task 5 panicked: boom in 5");
        // The pool still works afterwards.
        assert_eq!(pool.run(10, &|_, _| Ok(())), Ok(()));
    }
}

#[test]
fn failed_tasks_are_retried_until_they_succeed() {
    for pool in pools() {
        assert_eq!(pool.retries(), DEFAULT_RETRIES);
        let before = pool.retried();
        let runs: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
        // Task t fails at its first t % 4 attempts, each way a task can fail.
        pool.run(100, &|t, attempt| {
            runs[t].fetch_add(1, Ordering::SeqCst);
            if (attempt as usize) < t % 4 {
                match t % 3 {
                    0 => panic!("flaky {t}"),
                    1 => crate::fault::inject_panic(),
                    _ => return Err(TaskError::injected(t, FaultKind::AfterWritingPart)),
                }
            }
            Ok(())
        })
        .unwrap();
        assert!((0..100).all(|t| runs[t].load(Ordering::SeqCst) == t % 4 + 1));
        let retried: usize = (0..100).map(|t| t % 4).sum();
        assert_eq!(pool.retried() - before, retried as u64);
    }
}

#[test]
fn exhausted_retries_report_the_attempts_and_the_last_cause() {
    for mut pool in pools() {
        pool.set_retries(2);
        let runs = AtomicUsize::new(0);
        let err = pool
            .run(10, &|t, attempt| {
                if t == 7 {
                    runs.fetch_add(1, Ordering::SeqCst);
                    if attempt == 2 {
                        crate::fault::inject_panic();
                    }
                    return Err(TaskError::message(t, "the disk is gone"));
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(
            err,
            TaskError {
                task: 7,
                kind: TaskErrorKind::Injected(FaultKind::Panic),
                attempts: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "shard task 7 failed 3 times (retries exhausted); the last failure: injected panic"
        );
    }
}

#[test]
fn kernel_error_codes_are_not_retried() {
    for pool in pools() {
        let runs = AtomicUsize::new(0);
        let err = pool
            .run(3, &|t, _| {
                if t == 1 {
                    runs.fetch_add(1, Ordering::SeqCst);
                    return Err(TaskError::code(t, abi::ERR_DIV_ZERO));
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(err, TaskError::code(1, abi::ERR_DIV_ZERO));
    }
}

#[test]
fn graph_tasks_are_retried_before_their_dependants_run() {
    let g = layered_graph();
    for pool in pools() {
        let done: Vec<AtomicUsize> = (0..g.len()).map(|_| AtomicUsize::new(0)).collect();
        pool.run_graph(&g, &|t, attempt| {
            if attempt == 0 && t % 2 == 0 {
                return Err(TaskError::injected(t, FaultKind::BeforeWriting));
            }
            // Every dependency (through joins) has completed.
            let mut ancestors = g.deps(t).to_vec();
            while let Some(a) = ancestors.pop() {
                if g.is_join(a) {
                    ancestors.extend_from_slice(g.deps(a));
                } else {
                    assert_eq!(done[a].load(Ordering::SeqCst), 1, "{a} before {t}");
                }
            }
            done[t].store(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert!((0..g.len()).all(|t| g.is_join(t) || done[t].load(Ordering::SeqCst) == 1));
    }
}

#[test]
fn thread_counts() {
    assert_eq!(Pool::new(0).unwrap().threads(), 1);
    assert_eq!(Pool::new(3).unwrap().threads(), 3);
    assert!(default_threads() >= 1);
    let p: &dyn Executor = &Pool::new(2).unwrap();
    assert_eq!(p.threads(), 2);
}

#[test]
fn a_task_may_dispatch_nested_tasks() {
    for pool in pools() {
        let total = AtomicUsize::new(0);
        pool.run(4, &|_, _| {
            pool.run(5, &|_, _| {
                total.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
        })
        .unwrap();
        assert_eq!(total.load(Ordering::Relaxed), 20);
    }
}

/// Three kernels of 8 shards, each kernel after the previous one through a join.
fn layered_graph() -> TaskGraph {
    let mut g = TaskGraph::new();
    let k0 = g.add_many(8, &[]);
    let j0 = g.join(&k0.collect::<Vec<_>>());
    let k1 = g.add_many(8, &[j0]);
    let j1 = g.join(&k1.collect::<Vec<_>>());
    g.add_many(8, &[j1]);
    g
}

#[test]
fn graph_tasks_run_after_their_dependencies() {
    let g = layered_graph();
    assert_eq!(g.len(), 26);
    assert!(g.is_join(8) && g.is_join(17) && !g.is_join(0));
    for pool in pools() {
        for _ in 0..10 {
            let clock = AtomicUsize::new(0);
            let stamp: Vec<AtomicUsize> =
                (0..g.len()).map(|_| AtomicUsize::new(usize::MAX)).collect();
            pool.run_graph(&g, &|t, _| {
                assert!(!g.is_join(t), "join task {t} was run");
                let now = clock.fetch_add(1, Ordering::SeqCst);
                stamp[t].store(now, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
            assert_eq!(clock.load(Ordering::SeqCst), 24);
            for t in (0..g.len()).filter(|&t| !g.is_join(t)) {
                let mine = stamp[t].load(Ordering::SeqCst);
                assert_ne!(mine, usize::MAX, "task {t} did not run");
                // Through joins: every non-join task reachable as an ancestor ran before.
                let mut ancestors = g.deps(t).to_vec();
                while let Some(a) = ancestors.pop() {
                    if g.is_join(a) {
                        ancestors.extend_from_slice(g.deps(a));
                    } else {
                        assert!(stamp[a].load(Ordering::SeqCst) < mine);
                    }
                }
            }
        }
    }
}

#[test]
fn graph_failures_are_deterministic_and_stop_dependants() {
    let g = layered_graph();
    for pool in pools_without_retries() {
        for _ in 0..10 {
            let ran: Vec<AtomicUsize> = (0..g.len()).map(|_| AtomicUsize::new(0)).collect();
            let err = pool
                .run_graph(&g, &|t, _| {
                    ran[t].fetch_add(1, Ordering::SeqCst);
                    if t == 12 || t == 3 || t == 20 {
                        return Err(TaskError::message(t, "bad shard"));
                    }
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(err, TaskError::message(3, "bad shard"));
            assert_eq!(err.to_string(), "shard task 3 failed: bad shard");
            // Kernel 1 and 2 depend on task 3 through the join: none of them ran.
            assert!((9..17)
                .chain(18..26)
                .all(|t| ran[t].load(Ordering::SeqCst) == 0));
            // Tasks before 3 always ran.
            assert!((0..3).all(|t| ran[t].load(Ordering::SeqCst) == 1));
        }
    }
}

#[test]
fn an_empty_graph_and_a_graph_of_joins() {
    for pool in pools() {
        assert_eq!(pool.run_graph(&TaskGraph::new(), &|_, _| Ok(())), Ok(()));
        let mut g = TaskGraph::new();
        let a = g.join(&[]);
        g.join(&[a, a]);
        assert_eq!(g.deps(1), &[0]);
        assert_eq!(
            pool.run_graph(&g, &|t, _| Err(TaskError::message(t, "no"))),
            Ok(())
        );
    }
}

#[test]
fn blocks_cover_the_extent_in_order() {
    let b: Vec<_> = blocks(10, 4).collect();
    assert_eq!(b, vec![0..4, 4..8, 8..10]);
    assert_eq!(blocks(8, 4).collect::<Vec<_>>(), vec![0..4, 4..8]);
    assert_eq!(blocks(0, 4).count(), 0);
    assert_eq!(blocks(3, 100).collect::<Vec<_>>(), vec![0..3]);
    assert_eq!(blocks(10, 4).len(), n_blocks(10, 4));
    assert_eq!(blocks(10, 4).next_back(), Some(8..10));
}

#[test]
fn the_combine_tree_has_a_fixed_shape() {
    let leaves = |n: usize| (0..n).map(|i| ((b'a' + i as u8) as char).to_string());
    let tree = |n| combine_tree(leaves(n).collect(), |a, b| format!("({a}{b})"));
    assert_eq!(tree(0), None);
    assert_eq!(tree(1).as_deref(), Some("a"));
    assert_eq!(tree(4).as_deref(), Some("((ab)(cd))"));
    assert_eq!(tree(5).as_deref(), Some("(((ab)(cd))e)"));
    assert_eq!(tree(6).as_deref(), Some("(((ab)(cd))(ef))"));
}

#[test]
fn kernel_statuses_become_errors() {
    assert_eq!(TaskError::check_status(4, abi::OK), Ok(()));
    let e = TaskError::check_status(4, abi::ERR_DIV_OVERFLOW).unwrap_err();
    assert_eq!(e, TaskError::code(4, abi::ERR_DIV_OVERFLOW));
    assert!(e
        .to_string()
        .starts_with("shard task 4 failed: integer division overflow"));
}
