//! Structural hashes of graphs and content hashes of tensors (BLAKE3, 256 bits).
//!
//! [`graph_hash`] covers everything that determines what a graph computes and how the passes
//! rewrite it: every node's kind, index spaces, reads and their projections, scalar
//! expressions, constants (their values too), random seeds, output types and labels, the
//! outputs and the user monoids. It never covers the *contents* of `Input` tensors, only
//! their types. Node ids enter only as positions in the node list; since the coordinator
//! numbers the nodes of a dispatched graph afresh from 0 (inputs first, in the order they
//! are first needed), two dispatches of the same computation hash alike whatever the ids of
//! their nodes in the coordinator's pending graph were.
//!
//! [`tensor_hash`] covers a tensor's element type, shape and elements (bit patterns, so
//! `-0.0` and `0.0`, or two NaNs with different payloads, differ).

use flow_runtime::{Data, Scalar, Tensor};

use super::ir::{Affine, Edge, Graph, MonoidRef, Node, NodeKind, Port, Read, ScalarExpr, TensorTy};

/// A 256-bit hash.
pub type Hash = [u8; 32];

/// The structural hash of one node without its label: what it computes (kind, index spaces,
/// reads of which ports through which projections, expressions with constants' bits, output
/// types). Two nodes with the same key compute the same tensors (common-subexpression
/// elimination merges them).
pub fn node_key(n: &Node) -> Hash {
    let mut h = Hasher(blake3::Hasher::new());
    h.bytes(b"flow-mir-node-v1");
    h.node_unlabelled(n);
    *h.0.finalize().as_bytes()
}

/// A hash in hexadecimal (64 characters).
pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The structural hash of `g`, with `salt` (say, the pass configuration) mixed in.
pub fn graph_hash(g: &Graph, salt: &[u8]) -> Hash {
    let mut h = Hasher(blake3::Hasher::new());
    h.bytes(b"flow-mir-graph-v1");
    h.bytes(salt);
    h.u64(g.monoids.len() as u64);
    for m in g.monoids.iter() {
        h.str(&m.name);
        h.u64(m.state.len() as u64);
        for d in &m.state {
            h.str(d.name());
        }
        for z in &m.zero {
            h.scalar(z);
        }
        match &m.wrap {
            Some(w) => {
                h.u8(1);
                h.u64(w.params.len() as u64);
                for d in &w.params {
                    h.str(d.name());
                }
                h.expr(&w.body);
            }
            None => h.u8(0),
        }
        h.expr(&m.combine);
        match &m.unwrap {
            Some(u) => {
                h.u8(1);
                h.u64(u.ports.len() as u64);
                for d in &u.ports {
                    h.str(d.name());
                }
                h.expr(&u.body);
            }
            None => h.u8(0),
        }
        h.u8(u8::from(m.commutative));
        // Hashed only when present, so the hashes of graphs without one do not change.
        if let Some(d) = &m.d_combine {
            h.u8(2);
            h.expr(d);
        }
    }
    h.u64(g.nodes.len() as u64);
    for n in g.nodes.iter() {
        h.node(n);
    }
    h.u64(g.outputs.len() as u64);
    for p in &g.outputs {
        h.port(*p);
    }
    *h.0.finalize().as_bytes()
}

/// The content hash of a tensor: element type, shape and the bits of every element.
pub fn tensor_hash(t: &Tensor) -> Hash {
    let mut h = Hasher(blake3::Hasher::new());
    h.bytes(b"flow-tensor-v1");
    h.tensor(t);
    *h.0.finalize().as_bytes()
}

struct Hasher(blake3::Hasher);

impl Hasher {
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.update(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn u8(&mut self, v: u8) {
        self.0.update(&[v]);
    }

    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.update(&v.to_le_bytes());
    }

    fn port(&mut self, p: Port) {
        self.u64(p.node.0 as u64);
        self.u64(p.port as u64);
    }

    fn shape(&mut self, s: &[usize]) {
        self.u64(s.len() as u64);
        for d in s {
            self.u64(*d as u64);
        }
    }

    fn ty(&mut self, t: &TensorTy) {
        self.str(t.dtype.name());
        self.shape(&t.shape);
    }

    fn scalar(&mut self, s: &Scalar) {
        match s {
            Scalar::F32(v) => {
                self.u8(0);
                self.0.update(&v.to_bits().to_le_bytes());
            }
            Scalar::F64(v) => {
                self.u8(1);
                self.0.update(&v.to_bits().to_le_bytes());
            }
            Scalar::I32(v) => {
                self.u8(2);
                self.0.update(&v.to_le_bytes());
            }
            Scalar::I64(v) => {
                self.u8(3);
                self.0.update(&v.to_le_bytes());
            }
            Scalar::Bool(v) => {
                self.u8(4);
                self.u8(u8::from(*v));
            }
            Scalar::U8(v) => {
                self.u8(5);
                self.u8(*v);
            }
            Scalar::U32(v) => {
                self.u8(6);
                self.0.update(&v.to_le_bytes());
            }
            Scalar::U64(v) => {
                self.u8(7);
                self.0.update(&v.to_le_bytes());
            }
        }
    }

    fn tensor(&mut self, t: &Tensor) {
        self.str(t.dtype().name());
        self.shape(&t.shape);
        // Elements go through a buffer: one `update` per element would be slow.
        fn feed<T: Copy, const N: usize>(h: &mut blake3::Hasher, v: &[T], f: fn(T) -> [u8; N]) {
            let mut buf = [0u8; 4096];
            for chunk in v.chunks(4096 / N) {
                for (k, x) in chunk.iter().enumerate() {
                    buf[k * N..(k + 1) * N].copy_from_slice(&f(*x));
                }
                h.update(&buf[..chunk.len() * N]);
            }
        }
        match &t.data {
            Data::F32(v) => feed(&mut self.0, v, |x: f32| x.to_bits().to_le_bytes()),
            Data::F64(v) => feed(&mut self.0, v, |x: f64| x.to_bits().to_le_bytes()),
            Data::I32(v) => feed(&mut self.0, v, i32::to_le_bytes),
            Data::I64(v) => feed(&mut self.0, v, i64::to_le_bytes),
            Data::Bool(v) => feed(&mut self.0, v, |x: bool| [u8::from(x)]),
            Data::U8(v) => feed(&mut self.0, v, |x: u8| [x]),
            Data::U32(v) => feed(&mut self.0, v, u32::to_le_bytes),
            Data::U64(v) => feed(&mut self.0, v, u64::to_le_bytes),
        }
    }

    fn affine(&mut self, a: &Affine) {
        self.i64(a.konst);
        self.u64(a.coeffs.len() as u64);
        for (v, c) in &a.coeffs {
            self.u64(*v as u64);
            self.i64(*c);
        }
    }

    fn read(&mut self, r: &Read) {
        self.port(r.src());
        self.u64(r.proj.len() as u64);
        for a in &r.proj {
            self.affine(a);
        }
        match r.edge {
            Edge::Strict => self.u8(0),
            Edge::Pad(s) => {
                self.u8(1);
                self.scalar(&s);
            }
            Edge::Clamp => self.u8(2),
        }
    }

    fn reads(&mut self, rs: &[Read]) {
        self.u64(rs.len() as u64);
        for r in rs {
            self.read(r);
        }
    }

    fn exprs(&mut self, es: &[ScalarExpr]) {
        self.u64(es.len() as u64);
        for e in es {
            self.expr(e);
        }
    }

    fn expr(&mut self, e: &ScalarExpr) {
        match e {
            ScalarExpr::Const(s) => {
                self.u8(0);
                self.scalar(s);
            }
            ScalarExpr::Index(k) => {
                self.u8(1);
                self.u64(*k as u64);
            }
            ScalarExpr::Read(k) => {
                self.u8(2);
                self.u64(*k as u64);
            }
            ScalarExpr::Param(k) => {
                self.u8(3);
                self.u64(*k as u64);
            }
            ScalarExpr::Gather(k, coords) => {
                self.u8(12);
                self.u64(*k as u64);
                self.exprs(coords);
            }
            ScalarExpr::Unary(op, a) => {
                self.u8(4);
                self.str(op.name());
                self.expr(a);
            }
            ScalarExpr::Binary(op, a, b) => {
                self.u8(5);
                self.str(op.name());
                self.expr(a);
                self.expr(b);
            }
            ScalarExpr::Cast(a, d) => {
                self.u8(6);
                self.str(d.name());
                self.expr(a);
            }
            ScalarExpr::Call(f, a) => {
                self.u8(7);
                self.str(f.name());
                self.expr(a);
            }
            ScalarExpr::Select(c, a, b) => {
                self.u8(8);
                self.expr(c);
                self.expr(a);
                self.expr(b);
            }
            ScalarExpr::Tuple(xs) => {
                self.u8(9);
                self.exprs(xs);
            }
            ScalarExpr::Field(a, k) => {
                self.u8(10);
                self.u64(*k as u64);
                self.expr(a);
            }
        }
    }

    fn monoid_ref(&mut self, monoid: MonoidRef) {
        match monoid {
            MonoidRef::Builtin(b) => {
                self.u8(0);
                self.str(b.name());
            }
            MonoidRef::User(m) => {
                self.u8(1);
                self.u64(m.0 as u64);
            }
        }
    }

    fn node(&mut self, n: &Node) {
        self.node_unlabelled(n);
        self.str(&n.label);
    }

    fn node_unlabelled(&mut self, n: &Node) {
        match &n.kind {
            NodeKind::Input { index } => {
                self.u8(0);
                self.u64(*index as u64);
            }
            NodeKind::Const { value } => {
                self.u8(1);
                self.tensor(value);
            }
            NodeKind::Random { dist, seed } => {
                self.u8(2);
                self.str(dist.name());
                self.u64(*seed);
            }
            NodeKind::Map { space, reads, body } => {
                self.u8(3);
                self.shape(space);
                self.reads(reads);
                self.exprs(body);
            }
            NodeKind::Reduce {
                space,
                red,
                monoid,
                reads,
                args,
            } => {
                self.u8(4);
                self.shape(space);
                self.shape(red);
                self.monoid_ref(*monoid);
                self.reads(reads);
                self.exprs(args);
            }
            NodeKind::Scan {
                space,
                monoid,
                exclusive,
                reads,
                args,
            } => {
                self.u8(7);
                self.shape(space);
                self.monoid_ref(*monoid);
                self.u8(*exclusive as u8);
                self.reads(reads);
                self.exprs(args);
            }
            NodeKind::ReduceByIndex {
                space,
                bins,
                monoid,
                reads,
                index,
                args,
            } => {
                self.u8(8);
                self.shape(space);
                self.u64(*bins as u64);
                self.monoid_ref(*monoid);
                self.reads(reads);
                self.expr(index);
                self.exprs(args);
            }
            NodeKind::Scatter {
                dest,
                space,
                reads,
                index,
                value,
            } => {
                self.u8(9);
                self.port(*dest);
                self.shape(space);
                self.reads(reads);
                self.expr(index);
                self.expr(value);
            }
            NodeKind::Concat { axis, parts } => {
                self.u8(5);
                self.u64(*axis as u64);
                self.u64(parts.len() as u64);
                for p in parts {
                    self.port(*p);
                }
            }
            NodeKind::Slice { src, start, shape } => {
                self.u8(6);
                self.port(*src);
                self.shape(start);
                self.shape(shape);
            }
        }
        self.u64(n.outputs.len() as u64);
        for t in &n.outputs {
            self.ty(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "%0 = input 0 : f32[6]
%1 \"affine\" = map [6] reads(%0.0[i0]) : f32[6] { add(mul(2.0f32, r0), 1.0f32) }
%2 \"relu\" = map [6] reads(%1.0[i0]) : f32[6] { max(r0, 0.0f32) }
output %2.0
";

    #[test]
    fn equal_graphs_hash_alike_and_every_change_shows() {
        let g = crate::mir::parse(TEXT).expect("valid MIR");
        let base = graph_hash(&g, b"");
        assert_eq!(
            base,
            graph_hash(&crate::mir::parse(TEXT).expect("valid"), b"")
        );
        assert_ne!(base, graph_hash(&g, b"other config"));
        for (from, to) in [
            ("2.0f32", "3.0f32"),
            ("f32[6]", "f32[7]"),
            ("[i0]) : f32[6] { max", "[5 - i0]) : f32[6] { max"),
            ("max(", "min("),
        ] {
            let changed = TEXT.replacen(from, to, 1);
            let h = crate::mir::parse(&changed).expect("valid MIR");
            assert_ne!(base, graph_hash(&h, b""), "{from} -> {to}");
        }
    }

    #[test]
    fn tensor_hash_covers_type_shape_and_bits() {
        let a = Tensor::new(vec![2], Data::F32(vec![0.0, 1.0])).expect("shape");
        let b = Tensor::new(vec![2], Data::F32(vec![-0.0, 1.0])).expect("shape");
        let c = Tensor::new(vec![1, 2], Data::F32(vec![0.0, 1.0])).expect("shape");
        let d = Tensor::new(vec![2], Data::I32(vec![0, 0x3f80_0000])).expect("shape");
        let hs = [
            tensor_hash(&a),
            tensor_hash(&b),
            tensor_hash(&c),
            tensor_hash(&d),
        ];
        for i in 0..hs.len() {
            for j in 0..i {
                assert_ne!(hs[i], hs[j]);
            }
        }
        assert_eq!(tensor_hash(&a), tensor_hash(&a.clone()));
        // Long tensors go through the buffer in several chunks.
        let long =
            Tensor::new(vec![5000], Data::F64((0..5000).map(f64::from).collect())).expect("shape");
        let mut other = long.clone();
        other.set(4999, Scalar::F64(0.5));
        assert_ne!(tensor_hash(&long), tensor_hash(&other));
    }
}
