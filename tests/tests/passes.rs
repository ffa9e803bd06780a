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
                DType::U8 => Data::U8((0..len).map(|i| v(i) as u8).collect()),
                DType::U32 => Data::U32((0..len).map(|i| v(i) as u32).collect()),
                DType::U64 => Data::U64((0..len).map(|i| v(i) as u64).collect()),
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

/// `flowc explain` on every program case: the rewrites with their laws, and every pair of
/// adjacent operations left unfused with the rule that stopped it and the `FILE:LINE:COL` of
/// both.
#[test]
fn explain_cases() {
    insta::glob!("../cases/passes", "*.flow", |path| {
        let text = std::fs::read_to_string(path).expect("case is readable");
        let dir = path.parent().expect("a case is in a folder");
        let name = path.file_name().expect("a file name");
        let out = flow_tests::flowc([std::ffi::OsStr::new("explain"), name], dir);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let file = name.to_string_lossy();
        // Every unfused pair points at the source of both nodes (nodes of the program's own
        // expressions all have a span).
        for line in out.stdout.lines().filter(|l| l.contains("[not fused]")) {
            assert!(line.contains(&format!("({file}:")), "no location: {line}");
        }
        insta::assert_snapshot!(format!(
            "----- SOURCE\n{}\n----- EXPLAIN\n{}",
            text.trim_end(),
            out.stdout
        ));
    });
}

/// A coordinator loop that observes nothing until its end builds one chain of 2,000 maps.
/// Fusion cuts it into kernels of at most `MAX_FUSED_COST` operations (not one kernel built
/// in quadratic time), the result is the unoptimized run's, bit for bit, and the whole chain
/// still runs as one launch (one row group). (A smoke test of scaling: nothing is timed here;
/// `cargo run --release -p flow-tests --bin scaling` measures.)
#[test]
fn long_chain_is_cut_into_bounded_kernels() {
    let src = "op step(x: f32[N]) -> f32[N] {\n    let y[i] = x[i] * 0.5 + 1.0;\n    y\n}\n\
               main {\n    var x = [1.0, 2.0, 3.0, 4.0];\n    for s in 0..2000 {\n        x = step(x);\n    }\n    print(x);\n}\n";
    let c = flowc::driver::compile_sources(&[("chain.flow".to_string(), src.to_string())])
        .unwrap_or_else(|f| panic!("{}", f.render(Default::default())));
    let (graphs, err) = dispatched_graphs(&c.program, &mut MemoryHost::default());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(graphs.len(), 1);
    let mut opt = graphs[0].clone();
    let cfg = PassConfig::default();
    optimize(&mut opt, &PIPELINE.iter().collect::<Vec<_>>(), &cfg).expect("optimizes");
    let maps: Vec<usize> = opt
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Map { body, .. } => Some(body.iter().map(flowc::mir::cost::cost).sum()),
            _ => None,
        })
        .collect();
    // 2 operations a step: 4,000 in all, in kernels of at most MAX_FUSED_COST.
    let max = flowc::mir::passes::MAX_FUSED_COST;
    assert!(maps.iter().all(|&c| c <= max), "{maps:?}");
    assert_eq!(maps.iter().sum::<usize>(), 4000);
    assert_eq!(maps.len(), 4000usize.div_ceil(max));
    assert_eq!(schedule::plan(&opt).launches.len(), 1);
    // The value, as Rust computes it, and as the unoptimized program prints it.
    let mut x = [1.0f32, 2.0, 3.0, 4.0];
    for _ in 0..2000 {
        x = x.map(|v| v * 0.5 + 1.0);
    }
    let mut fast = MemoryHost::default();
    run_main(&c.program, &mut fast, &RunOptions::default()).expect("runs");
    let mut plain = MemoryHost::default();
    let no_opt = RunOptions {
        optimize: false,
        ..RunOptions::default()
    };
    run_main(&c.program, &mut plain, &no_opt).expect("runs");
    assert_eq!(fast.out, plain.out);
    let want = Tensor::new(vec![4], Data::F32(x.to_vec())).expect("shape");
    assert_eq!(
        fast.out,
        format!("{}\n", flow_runtime::format_tensor(&want))
    );
}
