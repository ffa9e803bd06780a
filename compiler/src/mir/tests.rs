//! Tests of the MIR text form and verifier.

use flow_runtime::{DType, Data, Scalar, Tensor};

use super::verify::{ExprSite, Problem, Site};
use super::*;

/// Every node kind, both user-monoid shapes, pad and clamp edges and reversed reads.
const FULL: &str = r#"monoid @0 "Stats" {
    state (n: f64, s: f64, ss: f64)
    zero (0.0f64, 0.0f64, 0.0f64)
    wrap (f32) = tuple(1.0f64, cast(p0, f64), mul(cast(p0, f64), cast(p0, f64)))
    combine = tuple(add(p0.0, p1.0), add(p0.1, p1.1), add(p0.2, p1.2))
    unwrap (f64) = sub(div(p0.2, p0.0), mul(div(p0.1, p0.0), div(p0.1, p0.0)))
    commutative
}
monoid @1 "ArgMax" {
    state (v: f32, i: i64)
    zero (-inff32, 9223372036854775807i64)
    wrap (f32, i64) = tuple(p0, p1)
    combine = select(or(gt(p1.0, p0.0), and(eq(p1.0, p0.0), lt(p1.1, p0.1))), p1, p0)
}
monoid @2 "odd \"name\"\n" {
    state (i32, "a b": bool)
    zero (0i32, false)
    combine = tuple(add(p0.0, p1.0), or(p0.1, p1.1))
    unwrap (i32, bool, f64) = tuple(p0.0, p0.1, 1.5e-7f64)
}
%0 "x" = input 0 : f32[4]
%1 "w" = const f32[2] [1.0, -2.5] : f32[2]
%2 = const f64[2, 2] [inf, -inf, nan, nan(0xfff8000000000001)] : f64[2, 2]
%3 = const bool[] [true] : bool[]
%4 = const i64[0] [] : i64[0]
%5 = random uniform seed 42 : f32[8]
%6 = random normal seed 18446744073709551615 : f32[2, 3]
%7 "y" = map [4] reads(%0.0[i0]) : f32[4] { max(add(mul(r0, 2.0f32), 1.0f32), 0.0f32) }
%8 "rev" = map [4] reads(%0.0[3 - i0], %0.0[-i0 - 3 | pad 0.0f32], %0.0[2*i0 - 3*i0 + 3]) : f32[4] { r0 }
%9 = map [4] reads(%0.0[i0 - 1 | pad 0.0f32], %0.0[i0 + 1 | clamp]) : f32[4], i64[4] { r0; add(i0, 1i64) }
%10 = map [] : f32[], i32[], f64[] { -0.0f32; -2147483648i32; nanf64(0x7ff0000000000001) }
%11 = reduce [2] over [3] sum reads(%0.0[i0 + i1], %1.0[i0]) : f32[2] { mul(r0, r1) }
%12 = reduce [] over [4] @0 reads(%0.0[i0]) : f64[] { r0 }
%13 = reduce [] over [4] @1 reads(%0.0[i0]) : f32[], i64[] { r0; i0 }
%14 = reduce [2] over [0] prod reads(%0.0[i0]) : f32[2] { r0 }
%15 = reduce [4] over [] any : bool[4] { not(eq(rem(i0, 2i64), 0i64)) }
%16 = concat axis 0 (%7.0, %8.0, %9.0) : f32[12]
%17 = slice %16.0 start [1] shape [4] : f32[4]
%18 = map [3] : f32[3] { select(lt(i0, 1i64), cast(shl(i0, 3i64), f32), exp(neg(1e-40f32))) }
%19 = map [2] : f32[2] { tuple(1.0f32, tuple(2.0f32, 3.0f32)).1.0 }
output %7.0, %9.1, %17.0
"#;

/// A small graph in the form the lowering produces.
const LINEAR: &str = r#"%0 "x" = input 0 : f32[2, 3]
%1 "w" = input 1 : f32[3, 2]
%2 "b" = input 2 : f32[2]
%3 = reduce [2, 2] over [3] sum reads(%0.0[i0, i2], %1.0[i2, i1]) : f32[2, 2] { mul(r0, r1) }
%4 "y" = map [2, 2] reads(%2.0[i1], %3.0[i0, i1]) : f32[2, 2] { add(r0, r1) }
output %4.0
"#;

fn roundtrip(text: &str) -> Graph {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(print(&g), text);
    g
}

#[test]
fn print_parse_roundtrips() {
    roundtrip(FULL);
    let g = roundtrip(LINEAR);
    assert_eq!(verify(&g), Ok(()));
    roundtrip("output\n");
    roundtrip("%0 = map [3] : f32[3] { 1.0f32 }\n%1 = map [] : { }\noutput %0.0, %0.0\n");
}

#[test]
fn the_documented_example_roundtrips_and_verifies() {
    let doc = include_str!("print.rs");
    let start = doc.find("//! %0 = input 0").unwrap();
    let end = start + doc[start..].find("//! ```").unwrap();
    let text: String = doc[start..end]
        .lines()
        .map(|l| format!("{}\n", l.trim_start_matches("//! ")))
        .collect();
    let g = roundtrip(&text);
    assert_eq!(verify(&g), Ok(()));
}

#[test]
fn full_example_verifies() {
    assert_eq!(verify(&parse(FULL).unwrap()), Ok(()));
    let mixed = FULL.replace("%7.0, %8.0, %9.0", "%7.0, %8.0, %9.1");
    let err = verify(&parse(&mixed).unwrap()).unwrap_err();
    assert_eq!(err.site, Site::Node(NodeId(16), String::new()));
    assert!(
        matches!(*err.problem, Problem::ConcatPart { part: 2, .. }),
        "{err}"
    );
}

#[test]
fn graphs_built_in_code_roundtrip_exactly() {
    let mut g = Graph::new();
    let weird = [
        Scalar::F32(f32::from_bits(1)),
        Scalar::F32(f32::MAX),
        Scalar::F32(-0.0),
        Scalar::F32(f32::from_bits(0xffc0_0000)),
        Scalar::F32(0.1),
        Scalar::F32(1e16),
    ];
    let data = Data::F32(
        weird
            .iter()
            .map(|s| match s {
                Scalar::F32(v) => *v,
                _ => 0.0,
            })
            .collect(),
    );
    let c = g.add(Node {
        kind: NodeKind::Const {
            value: Tensor::new(vec![6], data).unwrap(),
        },
        outputs: vec![TensorTy::new(DType::F32, vec![6])],
        label: "tab\tquote\"back\\slash\u{1}é".to_string(),
        span: None,
    });
    let body = weird
        .iter()
        .map(|&s| ScalarExpr::binary(BinOp::Add, ScalarExpr::Read(0), ScalarExpr::Const(s)))
        .collect::<Vec<_>>();
    let m = g.add(Node {
        kind: NodeKind::Map {
            space: vec![6],
            reads: vec![Read {
                node: c,
                port: 0,
                proj: vec![Affine {
                    konst: i64::MIN,
                    coeffs: vec![(0, i64::MIN), (0, 0), (0, -1), (0, i64::MAX)],
                }],
                edge: Edge::Pad(Scalar::F32(f32::NEG_INFINITY)),
            }],
            body,
        },
        outputs: vec![TensorTy::new(DType::F32, vec![6]); 6],
        label: String::new(),
        span: None,
    });
    g.outputs.push(Port { node: m, port: 5 });
    let text = print(&g);
    let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(print(&back), text);
    // NaN != NaN, so compare the bits of every constant through the debug form of the bits.
    let bits = |g: &Graph| -> Vec<u32> {
        let NodeKind::Const { value } = &g.nodes[NodeId(0)].kind else {
            return Vec::new();
        };
        match &value.data {
            Data::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
            _ => Vec::new(),
        }
    };
    assert_eq!(bits(&g), bits(&back));
    assert_eq!(g.nodes[NodeId(0)].label, back.nodes[NodeId(0)].label);
    assert_eq!(g.nodes[NodeId(1)].outputs, back.nodes[NodeId(1)].outputs);
    let (NodeKind::Map { reads: r1, .. }, NodeKind::Map { reads: r2, .. }) =
        (&g.nodes[NodeId(1)].kind, &back.nodes[NodeId(1)].kind)
    else {
        panic!("map expected");
    };
    assert_eq!(r1[0].proj, r2[0].proj);
}

#[test]
fn affine_forms() {
    let cases = [
        ("i0", Affine::var(0)),
        ("i0 + 1", Affine::var_plus(0, 1)),
        ("i0 - 1", Affine::var_plus(0, -1)),
        (
            "3 - i0",
            Affine {
                konst: 3,
                coeffs: vec![(0, -1)],
            },
        ),
        (
            "-i0 - 3",
            Affine {
                konst: -3,
                coeffs: vec![(0, -1)],
            },
        ),
        (
            "2*i1 + i0",
            Affine {
                konst: 0,
                coeffs: vec![(1, 2), (0, 1)],
            },
        ),
        ("0", Affine::konst(0)),
        ("-7", Affine::konst(-7)),
    ];
    for (text, a) in cases {
        assert_eq!(print::print_affine(&a), text);
        let src = format!("%0 = input 0 : f32[9]\n%1 = map [1, 1] reads(%0.0[{text}]) : f32[1, 1] {{ r0 }}\noutput\n");
        let g = roundtrip(&src);
        let NodeKind::Map { reads, .. } = &g.nodes[NodeId(1)].kind else {
            panic!("map expected");
        };
        assert_eq!(reads[0].proj[0], a, "{text}");
    }
}

#[test]
fn parse_errors_have_positions() {
    let err = |text: &str| parse(text).unwrap_err();
    let e =
        err("%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0]) : f32[4] { frob(r0) }\noutput\n");
    assert_eq!((e.line, e.col), (2, 41), "{e}");
    assert!(e.message.contains("unknown operator `frob`"), "{e}");
    let e = err("%1 = input 0 : f32[4]\noutput\n");
    assert_eq!(
        (e.line, e.col, e.message.as_str()),
        (1, 1, "expected node %0, found %1")
    );
    let e = err("%0 = map [] : f32[] { 1.5 }\noutput\n");
    assert!(e.message.contains("type suffix"), "{e}");
    let e = err("%0 = map [] : i32[] { 3000000000i32 }\noutput\n");
    assert_eq!((e.line, e.col), (1, 23), "{e}");
    let e = err("%0 = const f32[1000000, 1000000] [1.0] : f32[2]\noutput\n");
    assert!(
        e.message.contains("needs 1000000000000 elements, found 1"),
        "{e}"
    );
    let e = err("%0 = map [] : f32[] { add(1.0f32) }\noutput\n");
    assert!(e.message.contains("takes 2 operands, found 1"), "{e}");
    let e = err("%0 = input 0 : f32[4] \"unterminated\noutput\n");
    assert_eq!(
        (e.line, e.col, e.message.as_str()),
        (1, 23, "unterminated string")
    );
    assert!(err("output %0.0 extra")
        .message
        .contains("expected the end"));
    let deep = format!("{}1.0f32{}", "neg(".repeat(600), ")".repeat(600));
    let e = err(&format!("%0 = map [] : f32[] {{ {deep} }}\noutput\n"));
    assert!(e.message.contains("nests deeper"), "{e}");
    assert_eq!(
        parse_expr("p0.1.2"),
        Ok(ScalarExpr::field(
            ScalarExpr::field(ScalarExpr::Param(0), 1),
            2
        ))
    );
}

#[test]
fn malformed_text_never_panics() {
    // Every prefix, and every single-character corruption, parses or fails cleanly.
    for text in [FULL, LINEAR] {
        let chars: Vec<char> = text.chars().collect();
        for n in 0..chars.len() {
            let prefix: String = chars[..n].iter().collect();
            let _ = parse(&prefix);
            for c in ['(', ')', '-', '.', '%', '@', '"', '9', 'x', ' ', '\\'] {
                let mut s = chars.clone();
                s[n] = c;
                let s: String = s.into_iter().collect();
                if let Ok(g) = parse(&s) {
                    let _ = verify(&g);
                    assert_eq!(parse(&print(&g)).map(|h| print(&h)), Ok(print(&g)));
                }
            }
        }
    }
}

fn problem(text: &str) -> (Site, Problem) {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let e = verify(&g).unwrap_err();
    assert!(!e.to_string().is_empty());
    (e.site, *e.problem)
}

#[test]
fn verifier_rejects_forward_and_self_references() {
    let (site, p) = problem(
        "%0 = map [4] reads(%1.0[i0]) : f32[4] { r0 }\n%1 = input 0 : f32[4]\noutput %0.0\n",
    );
    assert_eq!(site, Site::Node(NodeId(0), String::new()));
    assert_eq!(p, Problem::NotEarlier { target: NodeId(1) });
    let (_, p) = problem("%0 \"me\" = map [4] reads(%0.0[i0]) : f32[4] { r0 }\noutput\n");
    assert_eq!(p, Problem::NotEarlier { target: NodeId(0) });
    let (_, p) =
        problem("%0 = input 0 : f32[4]\n%1 = slice %0.1 start [0] shape [1] : f32[1]\noutput\n");
    assert!(matches!(p, Problem::NoSuchPort { ports: 1, .. }));
    let (site, p) = problem("%0 = input 0 : f32[4]\noutput %0.0, %3.0\n");
    assert_eq!(
        (site, p),
        (Site::Output(1), Problem::NotEarlier { target: NodeId(3) })
    );
}

#[test]
fn verifier_rejects_out_of_bounds_strict_reads() {
    let (_, p) = problem(
        "%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0 + 1]) : f32[4] { r0 }\noutput\n",
    );
    assert!(
        matches!(
            p,
            Problem::OutOfBounds {
                read: 0,
                dim: 0,
                min: 1,
                max: 4,
                extent: 4,
                ..
            }
        ),
        "{p}"
    );
    let (_, p) = problem(
        "%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[2 - i0]) : f32[4] { r0 }\noutput\n",
    );
    assert!(
        matches!(
            p,
            Problem::OutOfBounds {
                min: -1,
                max: 2,
                ..
            }
        ),
        "{p}"
    );
    // Reduced indices count too, and repeated variables are added up first.
    let (_, p) = problem(
        "%0 = input 0 : f32[6]\n%1 = reduce [4] over [4] sum reads(%0.0[i0 + i1]) : f32[4] { r0 }\noutput\n",
    );
    assert!(matches!(p, Problem::OutOfBounds { max: 6, .. }), "{p}");
    let ok = "%0 = input 0 : f32[6]\n%1 = reduce [3] over [4] sum reads(%0.0[i0 + i1], %0.0[2*i0 - i0 + i1 - i1]) : f32[3] { mul(r0, r1) }\n\
              %2 = map [0] reads(%0.0[i0 + 100]) : f32[0] { r0 }\n%3 = map [9] reads(%0.0[i0 - 3 | pad 0.0f32], %0.0[i0 - 3 | clamp]) : f32[9] { add(r0, r1) }\noutput\n";
    assert_eq!(verify(&parse(ok).unwrap()), Ok(()));
    let (_, p) =
        problem("%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i1]) : f32[4] { r0 }\noutput\n");
    assert!(
        matches!(
            p,
            Problem::ProjVar {
                var: 1,
                n_index: 1,
                ..
            }
        ),
        "{p}"
    );
    let (_, p) =
        problem("%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0, 0]) : f32[4] { r0 }\noutput\n");
    assert!(
        matches!(
            p,
            Problem::ProjRank {
                proj: 2,
                rank: 1,
                ..
            }
        ),
        "{p}"
    );
    let (_, p) = problem(
        "%0 = input 0 : f32[0]\n%1 = map [4] reads(%0.0[i0 | clamp]) : f32[4] { r0 }\noutput\n",
    );
    assert!(matches!(p, Problem::ClampEmpty { .. }), "{p}");
    let (_, p) = problem(
        "%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0 | pad 0i64]) : f32[4] { r0 }\noutput\n",
    );
    assert!(
        matches!(
            p,
            Problem::PadType {
                expected: DType::F32,
                found: DType::I64,
                ..
            }
        ),
        "{p}"
    );
}

#[test]
fn verifier_rejects_wrong_arity_and_types() {
    let monoid = "monoid @0 \"ArgMax\" {\n    state (v: f32, i: i64)\n    zero (-inff32, 9223372036854775807i64)\n    wrap (f32, i64) = tuple(p0, p1)\n    combine = select(gt(p1.0, p0.0), p1, p0)\n}\n%0 = input 0 : f32[4]\n";
    let (_, p) = problem(&format!(
        "{monoid}%1 = reduce [] over [4] @0 reads(%0.0[i0]) : f32[], i64[] {{ r0 }}\noutput\n"
    ));
    assert_eq!(
        p,
        Problem::Arity {
            expected: 2,
            found: 1
        }
    );
    let (_, p) = problem(&format!("{monoid}%1 = reduce [] over [4] @0 reads(%0.0[i0]) : f32[], i64[] {{ r0; cast(i0, i32) }}\noutput\n"));
    assert!(
        matches!(
            p,
            Problem::ExprType {
                at: ExprSite::Arg(1),
                ..
            }
        ),
        "{p}"
    );
    let (_, p) = problem(&format!(
        "{monoid}%1 = reduce [] over [4] @0 reads(%0.0[i0]) : f32[] {{ r0; i0 }}\noutput\n"
    ));
    assert_eq!(
        p,
        Problem::PortCount {
            expected: 2,
            found: 1
        }
    );
    let (_, p) = problem(&format!(
        "{monoid}%1 = reduce [] over [4] @1 reads(%0.0[i0]) : f32[] {{ r0 }}\noutput\n"
    ));
    assert_eq!(
        p,
        Problem::NoSuchMonoid {
            monoid: MonoidId(1)
        }
    );
    let (_, p) = problem("%0 = input 0 : f32[4]\n%1 = reduce [] over [4] sum reads(%0.0[i0]) : f32[] { r0; r0 }\noutput\n");
    assert_eq!(
        p,
        Problem::Arity {
            expected: 1,
            found: 2
        }
    );
    let (_, p) = problem("%0 = input 0 : f32[4]\n%1 = reduce [] over [4] any reads(%0.0[i0]) : bool[] { r0 }\noutput\n");
    assert!(matches!(p, Problem::BuiltinType { .. }), "{p}");
    // A dtype mismatch inside a body, between body and port, and in a monoid.
    let (_, p) = problem("%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0]) : f32[4] { add(r0, 1.0f64) }\noutput\n");
    assert!(
        matches!(
            p,
            Problem::Expr {
                at: ExprSite::Body(0),
                ..
            }
        ),
        "{p}"
    );
    let (_, p) =
        problem("%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0]) : f64[4] { r0 }\noutput\n");
    assert!(
        matches!(
            p,
            Problem::ExprType {
                at: ExprSite::Body(0),
                ..
            }
        ),
        "{p}"
    );
    let (_, p) =
        problem("%0 = input 0 : f32[4]\n%1 = map [4] reads(%0.0[i0]) : f32[3] { r0 }\noutput\n");
    assert!(matches!(p, Problem::PortType { port: 0, .. }), "{p}");
    let (site, p) = problem("monoid @0 \"m\" {\n    state (f32)\n    zero (0i32)\n    combine = add(p0, p1)\n}\noutput\n");
    assert_eq!(site, Site::Monoid(MonoidId(0)));
    assert!(matches!(p, Problem::ZeroType { .. }), "{p}");
    let (_, p) = problem("monoid @0 \"m\" {\n    state (f32)\n    zero (0.0f32)\n    combine = add(p0, i0)\n}\noutput\n");
    assert!(
        matches!(
            p,
            Problem::Expr {
                at: ExprSite::Combine,
                ..
            }
        ),
        "{p}"
    );
    let (_, p) = problem("%0 = map [] : f32[] { select(1i64, 1.0f32, 2.0f32) }\noutput\n");
    assert!(matches!(p, Problem::Expr { .. }), "{p}");
    let (_, p) = problem("%0 = random uniform seed 1 : f64[3]\noutput\n");
    assert!(matches!(p, Problem::PortType { .. }), "{p}");
}

#[test]
fn verifier_checks_concat_and_slice() {
    let head = "%0 = input 0 : f32[2, 3]\n%1 = input 1 : f32[4, 3]\n";
    let ok = format!("{head}%2 = concat axis 0 (%0.0, %1.0) : f32[6, 3]\n%3 = slice %2.0 start [1, 1] shape [5, 2] : f32[5, 2]\noutput %3.0\n");
    assert_eq!(verify(&parse(&ok).unwrap()), Ok(()));
    let (_, p) = problem(&format!(
        "{head}%2 = concat axis 1 (%0.0, %1.0) : f32[2, 6]\noutput\n"
    ));
    assert!(matches!(p, Problem::ConcatPart { part: 1, .. }), "{p}");
    let (_, p) = problem(&format!(
        "{head}%2 = concat axis 0 (%0.0, %1.0) : f32[5, 3]\noutput\n"
    ));
    assert!(matches!(p, Problem::PortType { .. }), "{p}");
    let (_, p) = problem(&format!(
        "{head}%2 = concat axis 2 (%0.0) : f32[2, 3]\noutput\n"
    ));
    assert!(matches!(p, Problem::ConcatAxis { axis: 2, rank: 2 }), "{p}");
    let (_, p) = problem(&format!(
        "{head}%2 = slice %1.0 start [1, 2] shape [3, 2] : f32[3, 2]\noutput\n"
    ));
    assert!(
        matches!(
            p,
            Problem::SliceBounds {
                dim: 1,
                start: 2,
                extent: 2,
                src_extent: 3
            }
        ),
        "{p}"
    );
    let (_, p) = problem(&format!(
        "{head}%2 = slice %1.0 start [1] shape [3] : f32[3]\noutput\n"
    ));
    assert!(matches!(p, Problem::SliceRank { .. }), "{p}");
}
