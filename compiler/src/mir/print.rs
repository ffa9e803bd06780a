//! The canonical text form of a graph, one line per node. [`super::parse`] reads it back,
//! and `print(parse(text)) == text` for every text that `print` produces.
//!
//! The grammar, in the order the printer writes it (`*` repeats, `?` is optional, quoted
//! words are literal, `,`-lists may be empty):
//!
//! ```text
//! graph    := monoid* node* "output" port,*
//! monoid   := "monoid" "@"N STRING "{" "state" "(" field,* ")" "zero" "(" lit,* ")"
//!             ("wrap" "(" dtype,* ")" "=" expr)? "combine" "=" expr
//!             ("unwrap" "(" dtype,* ")" "=" expr)? "commutative"? ("d_combine" "=" expr)? "}"
//! field    := ((IDENT | STRING) ":")? dtype
//! node     := "%"N STRING? "=" kind ":" tensorty,* ("{" expr;* "}")?
//! kind     := "input" N
//!           | "const" tensorty "[" value,* "]"          (row-major elements, no suffix)
//!           | "random" ("uniform" | "normal") "seed" N
//!           | "map" shape reads?                          (then "{" one expr per port "}")
//!           | "reduce" shape "over" shape monoidref reads?  (then "{" the wrap args "}")
//!           | "scan" shape "exclusive"? monoidref reads?     (then "{" the wrap args "}")
//!           | "histogram" shape "bins" N monoidref reads?   (then "{" bin; the wrap args "}")
//!           | "scatter" port shape reads?                   (then "{" row; value "}")
//!           | "concat" "axis" N "(" port,* ")"
//!           | "slice" port "start" shape "shape" shape
//! monoidref:= "sum" | "prod" | "max" | "min" | "any" | "all" | "@"N
//! reads    := "reads" "(" read,* ")"
//! read     := port "[" affine,* "]" ("|" "pad" lit | "|" "clamp")?
//! affine   := ("-")? term (("+" | "-") term)*   with term := N | N "*" iK | iK
//! port     := "%"N "." N
//! tensorty := dtype shape ;  shape := "[" N,* "]"
//! expr     := lit | iK | rK | pK | OP "(" expr,* ")" | "cast" "(" expr "," dtype ")"
//!           | "tuple" "(" expr,* ")" | expr "." N
//! lit      := "true" | "false" | INT ("i32" | "i64" | "u8" | "u32" | "u64") | FLOAT ("f32" | "f64")
//! ```
//!
//! `iK`, `rK` and `pK` are index variable `K`, read `K` and parameter `K`. `OP` is an
//! operator or function name (`neg not add sub mul div rem shl shr eq ne lt le gt ge and or
//! min max pow atan2 abs exp log sqrt sin cos tanh floor ceil atan asin acos select`). A float literal is Rust's
//! `{:?}` text of the value (the shortest that reads back to the same bits) followed by its
//! suffix; the non-finite ones are `inff32`, `-inff32`, `nanf32`, and a NaN other than the
//! canonical one carries its bits, `nanf32(0xffc00000)`. An affine term list is written in
//! stored order, the constant last (`i0 + 1`), except that a positive constant goes first
//! when the first coefficient is negative (`3 - i0`). Example:
//!
//! ```text
//! %0 = input 0 : f32[4]
//! %1 "w" = const f32[2] [1.0, 2.0] : f32[2]
//! %2 "y" = map [4] reads(%0.0[i0]) : f32[4] { max(mul(r0, 2.0f32), 0.0f32) }
//! %3 = reduce [2] over [3] sum reads(%0.0[i0 + i1], %1.0[2 - i1 | pad 0.0f32]) : f32[2] { mul(r0, r1) }
//! output %2.0, %3.0
//! ```

use std::fmt::{self, Write};

use flow_runtime::Scalar;

use super::ir::{
    Affine, Edge, Graph, Monoid, MonoidId, MonoidRef, Node, NodeId, NodeKind, Port, Read,
    ScalarExpr, TensorTy,
};

/// The text form of a whole graph, ending in a newline.
pub fn print(g: &Graph) -> String {
    let mut out = String::new();
    for (id, m) in g.monoids.iter_enumerated() {
        write_monoid(&mut out, id, m);
    }
    for (id, node) in g.nodes.iter_enumerated() {
        out += &print_node(id, node);
        out.push('\n');
    }
    out.push_str("output");
    write_list(&mut out, " ", &g.outputs, |out, p| write_port(out, *p));
    out.push('\n');
    out
}

/// The text form of one node, without a newline.
pub fn print_node(id: NodeId, node: &Node) -> String {
    let mut out = format!("{id}");
    if !node.label.is_empty() {
        out.push(' ');
        write_string(&mut out, &node.label);
    }
    out.push_str(" = ");
    match &node.kind {
        NodeKind::Input { index } => {
            let _ = write!(out, "input {index}");
        }
        NodeKind::Const { value } => {
            let _ = write!(out, "const {} [", TensorTy::of(value));
            for k in 0..value.len() {
                if k > 0 {
                    out.push_str(", ");
                }
                write_lit(&mut out, value.get(k), false);
            }
            out.push(']');
        }
        NodeKind::Random { dist, seed } => {
            let _ = write!(out, "random {} seed {seed}", dist.name());
        }
        NodeKind::Map { space, reads, .. } => {
            out.push_str("map ");
            write_shape(&mut out, space);
            write_reads(&mut out, reads);
        }
        NodeKind::Reduce {
            space,
            red,
            monoid,
            reads,
            ..
        } => {
            out.push_str("reduce ");
            write_shape(&mut out, space);
            out.push_str(" over ");
            write_shape(&mut out, red);
            write_monoid_ref(&mut out, *monoid);
            write_reads(&mut out, reads);
        }
        NodeKind::Scan {
            space,
            monoid,
            exclusive,
            reads,
            ..
        } => {
            out.push_str("scan ");
            write_shape(&mut out, space);
            if *exclusive {
                out.push_str(" exclusive");
            }
            write_monoid_ref(&mut out, *monoid);
            write_reads(&mut out, reads);
        }
        NodeKind::ReduceByIndex {
            space,
            bins,
            monoid,
            reads,
            ..
        } => {
            out.push_str("histogram ");
            write_shape(&mut out, space);
            let _ = write!(out, " bins {bins}");
            write_monoid_ref(&mut out, *monoid);
            write_reads(&mut out, reads);
        }
        NodeKind::Scatter {
            dest, space, reads, ..
        } => {
            out.push_str("scatter ");
            write_port(&mut out, *dest);
            out.push(' ');
            write_shape(&mut out, space);
            write_reads(&mut out, reads);
        }
        NodeKind::Concat { axis, parts } => {
            let _ = write!(out, "concat axis {axis} (");
            write_list(&mut out, "", parts, |out, p| write_port(out, *p));
            out.push(')');
        }
        NodeKind::Slice { src, start, shape } => {
            out.push_str("slice ");
            write_port(&mut out, *src);
            out.push_str(" start ");
            write_shape(&mut out, start);
            out.push_str(" shape ");
            write_shape(&mut out, shape);
        }
    }
    out.push_str(" :");
    write_list(&mut out, " ", &node.outputs, |out, t| {
        let _ = write!(out, "{t}");
    });
    if let Some((_, exprs)) = node.kind.reads_and_exprs() {
        out.push_str(" {");
        for (k, e) in exprs.iter().enumerate() {
            out.push_str(if k == 0 { " " } else { "; " });
            write_expr(&mut out, e);
        }
        out.push_str(" }");
    }
    out
}

/// The text form of a scalar expression.
pub fn print_expr(e: &ScalarExpr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

/// The text form of an affine function.
pub fn print_affine(a: &Affine) -> String {
    let mut out = String::new();
    write_affine(&mut out, a);
    out
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}

impl fmt::Display for ScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_expr(self))
    }
}

impl fmt::Display for Affine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_affine(self))
    }
}

/// Writes a user monoid as a block of lines.
fn write_monoid(out: &mut String, id: MonoidId, m: &Monoid) {
    let _ = write!(out, "monoid {id} ");
    write_string(out, &m.name);
    out.push_str(" {\n    state (");
    for k in 0..m.state.len().max(m.field_names.len()) {
        if k > 0 {
            out.push_str(", ");
        }
        if let Some(Some(name)) = m.field_names.get(k) {
            if is_ident(name) {
                out.push_str(name);
            } else {
                write_string(out, name);
            }
            out.push_str(": ");
        }
        match m.state.get(k) {
            Some(d) => out.push_str(d.name()),
            // A field name without a type cannot be written; the verifier rejects it.
            None => out.push('?'),
        }
    }
    out.push_str(")\n    zero (");
    write_list(out, "", &m.zero, |out, s| write_lit(out, *s, true));
    out.push_str(")\n");
    if let Some(w) = &m.wrap {
        out.push_str("    wrap (");
        write_list(out, "", &w.params, |out, d| out.push_str(d.name()));
        out.push_str(") = ");
        write_expr(out, &w.body);
        out.push('\n');
    }
    out.push_str("    combine = ");
    write_expr(out, &m.combine);
    out.push('\n');
    if let Some(u) = &m.unwrap {
        out.push_str("    unwrap (");
        write_list(out, "", &u.ports, |out, d| out.push_str(d.name()));
        out.push_str(") = ");
        write_expr(out, &u.body);
        out.push('\n');
    }
    if m.commutative {
        out.push_str("    commutative\n");
    }
    if let Some(d) = &m.d_combine {
        out.push_str("    d_combine = ");
        write_expr(out, d);
        out.push('\n');
    }
    out.push_str("}\n");
}

/// Writes `prefix` and then the items separated by `", "`; nothing at all for no items.
fn write_list<T>(out: &mut String, prefix: &str, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    for (k, it) in items.iter().enumerate() {
        out.push_str(if k == 0 { prefix } else { ", " });
        f(out, it);
    }
}

/// Writes ` sum` or ` @0`.
fn write_monoid_ref(out: &mut String, monoid: MonoidRef) {
    out.push(' ');
    match monoid {
        MonoidRef::Builtin(b) => out.push_str(b.name()),
        MonoidRef::User(id) => {
            let _ = write!(out, "{id}");
        }
    }
}

/// Writes ` reads(...)`, or nothing when there are no reads.
fn write_reads(out: &mut String, reads: &[Read]) {
    if reads.is_empty() {
        return;
    }
    out.push_str(" reads(");
    write_list(out, "", reads, write_read);
    out.push(')');
}

/// Writes one read: `%0.0[i0 + 1 | pad 0.0f32]`.
fn write_read(out: &mut String, r: &Read) {
    write_port(out, r.src());
    out.push('[');
    write_list(out, "", &r.proj, write_affine);
    match r.edge {
        Edge::Strict => {}
        Edge::Pad(s) => {
            out.push_str(" | pad ");
            write_lit(out, s, true);
        }
        Edge::Clamp => out.push_str(" | clamp"),
    }
    out.push(']');
}

/// Writes `%node.port`.
fn write_port(out: &mut String, p: Port) {
    let _ = write!(out, "{p}");
}

/// Writes a shape as `[2, 3]`.
fn write_shape(out: &mut String, shape: &[usize]) {
    out.push('[');
    write_list(out, "", shape, |out, d| {
        let _ = write!(out, "{d}");
    });
    out.push(']');
}

/// Writes an affine function; see the module documentation for the term order.
fn write_affine(out: &mut String, a: &Affine) {
    let konst_first = a.konst > 0 && a.coeffs.first().is_some_and(|&(_, c)| c < 0);
    let mut first = true;
    if konst_first || a.coeffs.is_empty() {
        let _ = write!(out, "{}", a.konst);
        first = false;
    }
    for &(v, c) in &a.coeffs {
        let mag = c.unsigned_abs();
        match (first, c < 0) {
            (true, false) => {}
            (true, true) => out.push('-'),
            (false, false) => out.push_str(" + "),
            (false, true) => out.push_str(" - "),
        }
        if mag != 1 {
            let _ = write!(out, "{mag}*");
        }
        let _ = write!(out, "i{v}");
        first = false;
    }
    if !konst_first && !a.coeffs.is_empty() && a.konst != 0 {
        let sign = if a.konst < 0 { " - " } else { " + " };
        let _ = write!(out, "{sign}{}", a.konst.unsigned_abs());
    }
}

/// Writes a scalar expression in prefix form.
fn write_expr(out: &mut String, e: &ScalarExpr) {
    match e {
        ScalarExpr::Const(s) => write_lit(out, *s, true),
        ScalarExpr::Index(k) => {
            let _ = write!(out, "i{k}");
        }
        ScalarExpr::Read(k) => {
            let _ = write!(out, "r{k}");
        }
        ScalarExpr::Param(k) => {
            let _ = write!(out, "p{k}");
        }
        ScalarExpr::Unary(op, x) => write_call(out, op.name(), &[x]),
        ScalarExpr::Binary(op, a, b) => write_call(out, op.name(), &[a, b]),
        ScalarExpr::Cast(x, to) => {
            out.push_str("cast(");
            write_expr(out, x);
            let _ = write!(out, ", {to})");
        }
        ScalarExpr::Call(f, x) => write_call(out, f.name(), &[x]),
        ScalarExpr::Select(c, a, b) => write_call(out, "select", &[c, a, b]),
        ScalarExpr::Tuple(items) => {
            out.push_str("tuple(");
            write_list(out, "", items, write_expr);
            out.push(')');
        }
        ScalarExpr::Field(x, k) => {
            write_expr(out, x);
            let _ = write!(out, ".{k}");
        }
        ScalarExpr::Gather(k, coords) => {
            let _ = write!(out, "gather(r{k}");
            for c in coords {
                out.push_str(", ");
                write_expr(out, c);
            }
            out.push(')');
        }
    }
}

/// Writes `name(arg, ...)`.
fn write_call(out: &mut String, name: &str, args: &[&ScalarExpr]) {
    out.push_str(name);
    out.push('(');
    write_list(out, "", args, |out, a| write_expr(out, a));
    out.push(')');
}

/// Writes a scalar literal so that it reads back bit for bit, with its type suffix when
/// `suffix` is set (`bool`s never have one).
pub(crate) fn write_lit(out: &mut String, s: Scalar, suffix: bool) {
    let sfx = if suffix { s.dtype().name() } else { "" };
    match s {
        Scalar::Bool(v) => {
            let _ = write!(out, "{v}");
        }
        // Integers in decimal, as `print` writes them.
        Scalar::I32(_) | Scalar::I64(_) | Scalar::U8(_) | Scalar::U32(_) | Scalar::U64(_) => {
            let _ = write!(out, "{}{sfx}", flow_runtime::format_scalar(&s));
        }
        Scalar::F32(v) => write_float(
            out,
            v.is_nan(),
            v.to_bits() == f32::NAN.to_bits(),
            sfx,
            || (format!("{v:?}"), format!("{:#x}", v.to_bits())),
        ),
        Scalar::F64(v) => write_float(
            out,
            v.is_nan(),
            v.to_bits() == f64::NAN.to_bits(),
            sfx,
            || (format!("{v:?}"), format!("{:#x}", v.to_bits())),
        ),
    }
}

/// Writes a float given its `{:?}` text and hex bits: `1.5f32`, `-inff32`, `nanf32`,
/// `nanf32(0xffc00000)`.
fn write_float(
    out: &mut String,
    is_nan: bool,
    canonical_nan: bool,
    sfx: &str,
    text: impl Fn() -> (String, String),
) {
    let (debug, bits) = text();
    if !is_nan {
        // Rust's `{:?}` writes infinities as `inf` and `-inf`.
        let _ = write!(out, "{debug}{sfx}");
    } else if canonical_nan {
        let _ = write!(out, "nan{sfx}");
    } else {
        let _ = write!(out, "nan{sfx}({bits})");
    }
}

/// Writes a string literal with `"` and `\` escaped and control characters as `\u{..}`.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` can be written as a bare identifier.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
