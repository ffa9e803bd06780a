//! The MIR of every graph each conformance program dispatches, as lowered and after the
//! pipeline, as snapshots; and the text form reads back to the same graph.

use flowc::exec::{dispatched_graphs, MemoryHost};
use flowc::mir::passes::{optimize_all, PassConfig};
use flowc::mir::{self};

#[test]
fn conformance_mir() {
    insta::glob!("../conformance", "*.flow", |path| {
        let text = std::fs::read_to_string(path).expect("program is readable");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("p.flow")
            .to_string();
        let c = flowc::driver::compile_sources(&[(name, text.clone())])
            .unwrap_or_else(|f| panic!("{}", f.render(Default::default())));
        let (graphs, err) = dispatched_graphs(&c.program, &mut MemoryHost::default());
        assert!(err.is_none(), "{err:?}");
        let mut snap = String::new();
        for (i, g) in graphs.iter().enumerate() {
            let printed = mir::print(g);
            let back = mir::parse(&printed).unwrap_or_else(|e| panic!("{e:?}\n{printed}"));
            assert_eq!(&back, g, "parse(print(g)) != g");
            assert_eq!(mir::print(&back), printed, "print(parse(text)) != text");
            let mut opt = g.clone();
            optimize_all(
                &mut opt,
                &PassConfig {
                    verify: true,
                    ..PassConfig::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
            // Big constants and random tensors make long lines; the structure is what matters.
            let short = |s: String| {
                s.lines()
                    .map(|l| {
                        if l.len() > 400 {
                            format!("{}…", &l[..l.floor_char_boundary(400)])
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            snap.push_str(&format!(
                "----- GRAPH {i} (lowered)\n{}\n----- GRAPH {i} (optimized)\n{}\n",
                short(printed),
                short(mir::print(&opt))
            ));
        }
        insta::assert_snapshot!(snap);
    });
}
