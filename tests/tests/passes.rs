//! The rewrite passes, one case file each, IR in and IR out: `tests/cases/passes/*.mir` are
//! MIR graphs run through the passes named by `// passes:` (with `// block:` for the shard
//! size), and `tests/cases/passes/*.flow` are programs whose dispatched graphs go through the
//! pipeline. Every case checks `// expect-launches: N` against the schedule (what the native
//! executor launches), that the
//! optimized graph computes what the original does (reference interpreter), and records the
//! input and output IR with the rewrites in a snapshot.

use flow_runtime::{DType, Data, Tensor};
use flow_tests::Directives;
use flowc::exec::{dispatched_graphs, run_main, MemoryHost, RunOptions};
use flowc::mir::passes::{optimize, Pass, PassConfig, PIPELINE};
use flowc::mir::{self, schedule, Graph, NodeKind};

/// The directives of a case file, read by the one directive parser (`flow_tests::directives`).
fn directives(path: &std::path::Path, src: &str) -> Directives {
    flow_tests::directives::parse(src).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The passes a case names with `// passes:`, else the whole pipeline.
fn selected(d: &Directives) -> Vec<&'static Pass> {
    if d.passes.is_empty() {
        return PIPELINE.iter().collect();
    }
    flowc::mir::passes::selected(&d.passes).unwrap_or_else(|e| panic!("{e}"))
}

/// Deterministic inputs for every `Input` node: small integers, so sums are exact.
fn inputs(g: &Graph) -> Vec<Tensor> {
    let mut ins: Vec<(u32, Tensor)> = Vec::new();
    for n in g.nodes.iter() {
        if let NodeKind::Input { index } = n.kind {
            let ty = &n.outputs[0];
            let len: usize = ty.shape.iter().product();
            let v = |i: usize| ((i * 7 + 3) % 11) as i64 - 5;
            let data = match ty.dtype {
                DType::F32 => Data::F32((0..len).map(|i| v(i) as f32 * 0.5).collect()),
                DType::F64 => Data::F64((0..len).map(|i| v(i) as f64 * 0.5).collect()),
                DType::I32 => Data::I32((0..len).map(|i| v(i) as i32).collect()),
                DType::I64 => Data::I64((0..len).map(v).collect()),
                DType::Bool => Data::Bool((0..len).map(|i| v(i) > 0).collect()),
            };
            ins.push((
                index,
                Tensor::new(ty.shape.clone(), data).expect("sizes agree"),
            ));
        }
    }
    ins.sort_by_key(|x| x.0);
    ins.into_iter().map(|x| x.1).collect()
}

fn assert_same(a: &[Tensor], b: &[Tensor], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: output count");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.shape, y.shape, "{what}: shapes");
        for i in 0..x.len() {
            let (p, q) = (x.get(i).as_f64(), y.get(i).as_f64());
            let ok = p == q
                || (p.is_nan() && q.is_nan())
                || (p - q).abs() <= 1e-5 * (1.0 + p.abs() + q.abs());
            assert!(ok, "{what}: element {i}: {p} vs {q}");
        }
    }
}

fn rewrites_text(rep: &flowc::mir::passes::Report) -> String {
    rep.rewrites
        .iter()
        .map(|r| format!("[{}] {} ({})\n", r.pass, r.detail, r.law.name()))
        .collect()
}

#[test]
fn mir_cases() {
    insta::glob!("../cases/passes", "*.mir", |path| {
        let text = std::fs::read_to_string(path).expect("case is readable");
        let g = mir::parse(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        mir::verify(&g).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let d = directives(path, &text);
        let block = d.block.unwrap_or(PassConfig::default().block);
        let cfg = PassConfig {
            verify: true,
            block,
            ..PassConfig::default()
        };
        let mut opt = g.clone();
        let rep = optimize(&mut opt, &selected(&d), &cfg).unwrap_or_else(|e| panic!("{e}"));
        let ins = inputs(&g);
        let before = flowc::interp::eval(&g, &ins).expect("the case runs");
        let after = flowc::interp::eval(&opt, &ins).expect("the optimized case runs");
        assert_same(&before, &after, &path.display().to_string());
        if let Some(k) = d.expect_launches {
            let plan = schedule::plan(&opt);
            assert_eq!(
                plan.launches.len(),
                k,
                "{}:\n{}",
                path.display(),
                mir::print(&opt)
            );
        }
        insta::assert_snapshot!(format!(
            "----- INPUT\n{}\n----- OUTPUT\n{}----- REWRITES\n{}",
            text.trim_end(),
            mir::print(&opt),
            rewrites_text(&rep)
        ));
    });
}

#[test]
fn flow_cases() {
    insta::glob!("../cases/passes", "*.flow", |path| {
        let text = std::fs::read_to_string(path).expect("case is readable");
        let d = directives(path, &text);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("case.flow")
            .to_string();
        let c = flowc::driver::compile_sources(&[(name, text.clone())])
            .unwrap_or_else(|f| panic!("{}", f.render(Default::default())));
        let (graphs, err) = dispatched_graphs(&c.program, &mut MemoryHost::default());
        assert!(err.is_none(), "{err:?}");
        // The whole pipeline, as `flowc run` optimizes: the schedule is what runs.
        let passes: Vec<&'static Pass> = PIPELINE.iter().collect();
        let mut snap = String::new();
        for (i, g) in graphs.iter().enumerate() {
            let mut opt = g.clone();
            optimize(
                &mut opt,
                &passes,
                &PassConfig {
                    verify: true,
                    ..PassConfig::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let plan = schedule::plan(&opt);
            if i == 0 {
                if let Some(k) = d.expect_launches {
                    assert_eq!(plan.launches.len(), k, "{}", schedule::print(&opt, &plan));
                }
                for label in &d.expect_not_materialized {
                    let bad = plan
                        .materialized(&opt)
                        .iter()
                        .any(|p| opt.nodes[p.node].label == *label);
                    let exists = g.nodes.iter().any(|n| n.label == *label);
                    assert!(
                        exists && !bad,
                        "`{label}` must exist before and not be materialized after:\n{}",
                        mir::print(&opt)
                    );
                }
            }
            snap.push_str(&format!(
                "----- GRAPH {i}\n{}----- KERNELS\n{}",
                mir::print(&opt),
                schedule::print(&opt, &plan)
            ));
        }
        // The optimized program prints what the unoptimized one does.
        let mut plain = MemoryHost::default();
        run_main(
            &c.program,
            &mut plain,
            &RunOptions {
                optimize: false,
                ..RunOptions::default()
            },
        )
        .expect("runs");
        let mut fast = MemoryHost::default();
        run_main(&c.program, &mut fast, &RunOptions::default()).expect("runs optimized");
        assert_eq!(plain.out, fast.out);
        insta::assert_snapshot!(format!(
            "----- SOURCE\n{}\n{snap}----- STDOUT\n{}",
            text.trim_end(),
            fast.out
        ));
    });
}
