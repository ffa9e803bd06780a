//! `flowc ir`, `flowc explain` and `flowc graph`: `main` runs as under `flowc run` (same
//! backend, files read, nothing printed or written), and the graphs it dispatches are shown
//! as lowered, after the passes, or as their schedule.

use super::{
    compile_or_report, fs_host, machine_memory, missing_main, report, run_error_diag,
    stderr_config, PassFlags,
};

/// Which form of the IR `flowc ir` and `flowc graph` show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// As lowered.
    Mir,
    /// After the passes.
    Opt,
    /// The schedule after the passes: the launches that run (`mir::schedule`).
    Kernels,
}

/// The graphs a program dispatches, each before and after the selected passes, with the
/// passes' reports; the sources they were lowered from; the pass configuration.
struct Dispatched {
    sources: crate::base::span::SourceMap,
    config: crate::mir::passes::PassConfig,
    graphs: Vec<(
        crate::mir::Graph,
        crate::mir::Graph,
        crate::mir::passes::Report,
    )>,
}

/// `Err` is the exit status after reporting.
fn dispatched(
    path: &std::path::Path,
    args: Vec<String>,
    flags: &PassFlags,
) -> Result<Dispatched, i32> {
    let cfg = stderr_config();
    let opts = flags.options().map_err(|msg| {
        errln!("error: {msg}");
        2
    })?;
    let c = compile_or_report(path, cfg).ok_or(1)?;
    if c.program.main.is_none() {
        err!("{}", report::render(&c.sources, &missing_main(path), cfg));
        return Err(1);
    }
    // `main` runs as under `flowc run` (same backend, files read), printing and writing
    // nothing; the graphs are recorded as dispatched.
    let mut run_opts = opts.clone();
    run_opts.machine_memory = machine_memory();
    let mut host = fs_host::ReadOnlyHost { argv: args };
    let (graphs, err) = crate::exec::dispatched_graphs_with(&c.program, &mut host, &run_opts);
    if let Some(e) = err {
        err!("{}", report::render(&c.sources, &run_error_diag(&e), cfg));
        return Err(1);
    }
    let passes = opts.pipeline();
    let mut out = Vec::new();
    for g in graphs {
        let mut opt = g.clone();
        let rep = crate::mir::passes::optimize(&mut opt, &passes, &opts.config).map_err(|e| {
            errln!("{e}");
            1
        })?;
        out.push((g, opt, rep));
    }
    Ok(Dispatched {
        sources: c.sources,
        config: opts.config,
        graphs: out,
    })
}

/// `flowc ir FILE --stage mir|opt|kernels [--passes …] [--time-passes]`.
pub fn cmd_ir(
    path: &std::path::Path,
    args: Vec<String>,
    stage: Stage,
    flags: &PassFlags,
    time_passes: bool,
) -> i32 {
    let start = std::time::Instant::now();
    let graphs = match dispatched(path, args, flags) {
        Ok(d) => d.graphs,
        Err(status) => return status,
    };
    for (i, (raw, opt, rep)) in graphs.iter().enumerate() {
        outln!("// graph {i}");
        match stage {
            Stage::Mir => out!("{}", crate::mir::print(raw)),
            Stage::Opt => out!("{}", crate::mir::print(opt)),
            Stage::Kernels => out!(
                "{}",
                crate::mir::schedule::print(opt, &crate::mir::schedule::plan(opt))
            ),
        }
        if time_passes {
            for (name, t) in &rep.timings {
                errln!(
                    "graph {i}: pass {name:<14} {:>9.3} ms",
                    t.as_secs_f64() * 1e3
                );
            }
        }
    }
    if time_passes {
        errln!(
            "total (parse, check, run the coordinator, passes): {:.3} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    0
}

/// `flowc explain FILE`: every rewrite the passes make, with the law behind it, and every
/// pair of adjacent operations left unfused, with the rule that stopped it.
pub fn cmd_explain(path: &std::path::Path, args: Vec<String>, flags: &PassFlags) -> i32 {
    let d = match dispatched(path, args, flags) {
        Ok(d) => d,
        Err(status) => return status,
    };
    for (i, (raw, opt, rep)) in d.graphs.iter().enumerate() {
        let before = crate::mir::schedule::plan(raw).launches.len();
        let plan = crate::mir::schedule::plan(opt);
        let after = plan.launches.len();
        outln!("graph {i}: {before} launch(es) as written, {after} after rewriting (`flowc ir --stage kernels` shows them)");
        // Op calls and arrow chains were inlined while lowering; node labels name the ops.
        let mut ops: Vec<&str> = raw
            .nodes
            .iter()
            .filter_map(|n| n.label.split('.').next())
            .filter(|l| !l.is_empty())
            .collect();
        ops.sort_unstable();
        ops.dedup();
        if !ops.is_empty() {
            outln!(
                "  [inline] op calls inlined into one graph while lowering: {}",
                ops.join(", ")
            );
            outln!("      why: arrow composition — composing operations is associative and has an identity, so a chain of calls is one graph");
        }
        if rep.rewrites.is_empty() {
            outln!("  no rewrites");
        }
        for r in &rep.rewrites {
            outln!("  [{}] {}", r.pass, r.detail);
            outln!("      why: {} — {}", r.law.name(), r.law.explain());
        }
        out!("{}", unfused_text(&d.sources, opt, &plan, &d.config));
    }
    0
}

/// The pairs of adjacent operations of an optimized graph that were not fused: each with its
/// nodes (ids of the optimized graph, labels, source locations), the rule that stopped the
/// fusion, and whether the two still run in one launch (a row group reads back from cache).
fn unfused_text(
    sources: &crate::base::span::SourceMap,
    g: &crate::mir::Graph,
    plan: &crate::mir::schedule::Schedule,
    cfg: &crate::mir::passes::PassConfig,
) -> String {
    use std::fmt::Write;
    let mut launch_of = vec![None; g.nodes.len()];
    for (k, l) in plan.launches.iter().enumerate() {
        for m in &l.members {
            launch_of[m.node.0 as usize] = Some(k);
        }
    }
    let name = |id: crate::mir::NodeId| {
        let n = &g.nodes[id];
        let mut s = id.to_string();
        if !n.label.is_empty() {
            let _ = write!(s, " \"{}\"", n.label);
        }
        if let Some(span) = n.span {
            let _ = write!(s, " ({})", sources.location(span));
        }
        s
    };
    let mut out = String::new();
    for u in crate::mir::passes::unfused(g, cfg) {
        let _ = writeln!(
            out,
            "  [not fused] {} -> {}",
            name(u.producer),
            name(u.consumer)
        );
        let _ = writeln!(out, "      why: {}", u.why.explain());
        let (a, b) = (
            launch_of[u.producer.0 as usize],
            launch_of[u.consumer.0 as usize],
        );
        if let (Some(a), Some(b)) = (a, b) {
            if a == b {
                let _ = writeln!(out, "      both run in launch l{a} (a row group): the producer's rows are read back from cache");
            }
        }
    }
    out
}

/// `flowc graph FILE [--stage mir|opt] [-o OUT.dot|OUT.svg]`: Graphviz drawings.
pub fn cmd_graph(
    path: &std::path::Path,
    args: Vec<String>,
    stage: Stage,
    flags: &PassFlags,
    out: Option<&std::path::Path>,
) -> i32 {
    let graphs = match dispatched(path, args, flags) {
        Ok(d) => d.graphs,
        Err(status) => return status,
    };
    let mut dot = String::new();
    for (i, (raw, opt, _)) in graphs.iter().enumerate() {
        let g = if stage == Stage::Mir { raw } else { opt };
        let schedule = (stage == Stage::Kernels).then(|| crate::mir::schedule::plan(g));
        dot.push_str(&crate::mir::dot::to_dot(
            g,
            &format!("{} graph {i}", path.display()),
            schedule.as_ref(),
        ));
    }
    let Some(out) = out else {
        out!("{dot}");
        return 0;
    };
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let format = match ext.as_deref() {
        None | Some("dot" | "gv") => None,
        Some(e) if IMAGE_FORMATS.contains(&e) => Some(e.to_string()),
        Some(e) => {
            errln!(
                "error: cannot tell how to write `{}`: `.{e}` is not a format `flowc graph` knows; use `.dot` (Graphviz's text) or an image: {}",
                out.display(),
                IMAGE_FORMATS
                    .iter()
                    .map(|f| format!(".{f}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return 1;
        }
    };
    let Some(format) = format else {
        return match std::fs::write(out, dot.as_bytes()) {
            Ok(()) => 0,
            Err(e) => {
                errln!("error: cannot write `{}`: {e}", out.display());
                1
            }
        };
    };
    // One graph per file for images: `dot` draws the first graph of its input.
    use std::io::Write;
    let child = std::process::Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => {
            errln!("error: writing `{}` (.{format}) needs Graphviz's `dot`, which is not installed; write `.dot` instead (`-o graph.dot`)", out.display());
            return 1;
        }
    };
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.write_all(dot.as_bytes());
    }
    match child.wait() {
        Ok(s) if s.success() => 0,
        _ => {
            errln!("error: `dot` failed to draw the graph");
            1
        }
    }
}

/// The image formats `flowc graph -o` asks Graphviz's `dot` for, by file extension.
const IMAGE_FORMATS: &[&str] = &["svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps"];
