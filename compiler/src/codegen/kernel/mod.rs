//! One MIR `Map` or `Reduce` node to one Cranelift function that computes the rows
//! `lo..hi` of its outermost free dimension (all of it for a rank-0 space): a loop nest over
//! the shard's box, reads through affine projections with their edge rules, and a fold over
//! the reduced box in row-major order from the monoid's zero — exactly the interpreter's
//! order, so results are bitwise identical.
//!
//! Signature: `extern "C" fn(bufs: *const *mut u8, dims: *const i64, lo: i64, hi: i64) -> i32`,
//! where `bufs` holds one pointer per read followed by one per output port, `dims` holds the
//! extents laid out by [`kernel_dims`](crate::native::kernel_dims) (so one compiled kernel serves every shape of the same
//! structure: kernels are shape-polymorphic), and the result is 0, or an error code:
//! [`ERR_DIV_ZERO`], [`ERR_DIV_OVERFLOW`], [`ERR_INDEX`].
//!
//! Speed: every strict read and every store is an *address stream*: its byte offset is an
//! affine function of the loop counters, computed once per loop level (strength reduction),
//! so the innermost loop adds one product per stream. When the innermost free dimension is
//! contiguous in every stream (or not used by it) and the body is made of operations that
//! have 128-bit SIMD forms, that dimension runs in vectors of 16 bytes, several vectors per
//! iteration, with a scalar loop for the tail ([`vector_plan`]). A reduction vectorizes across
//! its free points — each lane folds its own point in the interpreter's order — so SIMD never
//! changes a result.
//!
//! Memory safety: every `Strict` read was proved in bounds over the whole box by the verifier
//! (which runs before compilation, on the concrete shapes that `dims` then carries); a gather
//! checks each coordinate against its extent before it loads; `Pad`
//! reads branch around the load when out of bounds; `Clamp` reads clamp each coordinate.
//! Stores go to the row-major position of the current point inside the output, whose box is
//! the node's space.
//!
//! Layout: this file holds the loop nest, the address streams, reads and stores, and
//! [`generate`]; `expr.rs` emits scalar expressions; `ops.rs` the operators on Cranelift
//! values; `vector.rs` decides whether the innermost dimension runs in SIMD vectors.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Signature, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use flow_runtime::{DType, Scalar};

use crate::mir::ir::{Edge, Graph, Node, NodeKind, Read, ScalarExpr};
use crate::mir::monoid::{explicit, Explicit};

mod expr;
mod ops;
mod span;
mod vector;

#[cfg(test)]
pub(super) use span::exp_argument as span_exp_argument;
#[cfg(test)]
pub(super) use span::{
    lane_fold as span_lane_fold, moments_fold as span_moments_fold, row_binary as span_row_binary,
    window_dot as span_window_dot,
};
pub use span::{
    EXP_SPAN_SYMBOL, LANE_FOLD_SYMBOL, MOMENTS_FOLD_SYMBOL, ROW_BINARY_SYMBOL, WINDOW_DOT_SYMBOL,
};

use vector::{coef_kind, vector_plan};

pub const ERR_DIV_ZERO: i64 = 1;
pub const ERR_DIV_OVERFLOW: i64 = 2;
/// A gather's coordinate outside its table: the native executor asks the interpreter for the
/// first such point, to report the tensor, the index and the shape.
pub const ERR_INDEX: i64 = 3;

/// The runtime math functions kernels call, declared in the function being built, in the
/// order of [`CALLED`]: first the `f32` versions, then the `f64` ones; last the span
/// functions [`EXP_SPAN_SYMBOL`], [`WINDOW_DOT_SYMBOL`], [`ROW_BINARY_SYMBOL`],
/// [`LANE_FOLD_SYMBOL`] and [`MOMENTS_FOLD_SYMBOL`].
#[derive(Clone, Debug)]
pub struct Imports {
    pub funcs: Vec<cranelift_codegen::ir::FuncRef>,
}

/// The math functions that are calls, by name (`exp` is `flow_exp_f32` and `flow_exp_f64`),
/// and their arity.
pub const CALLED: [(&str, usize); 11] = [
    ("exp", 1),
    ("log", 1),
    ("sin", 1),
    ("cos", 1),
    ("tanh", 1),
    ("atan", 1),
    ("asin", 1),
    ("acos", 1),
    ("pow", 2),
    ("atan2", 2),
    ("rem", 2),
];

impl Imports {
    fn get(&self, name: &str, d: DType) -> cranelift_codegen::ir::FuncRef {
        let k = CALLED
            .iter()
            .position(|(n, _)| *n == name)
            .expect("a called function");
        let off = if d == DType::F32 { 0 } else { CALLED.len() };
        self.funcs[off + k]
    }
}

pub fn clif_type(d: DType) -> Type {
    match d {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I32 | DType::U32 => types::I32,
        DType::I64 | DType::U64 => types::I64,
        DType::Bool | DType::U8 => types::I8,
    }
}

/// Memory flags of kernel loads and stores: they cannot trap (every access is proved in
/// bounds), but vectors are not aligned to 16 bytes, so no alignment is claimed.
fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Memory flags for reinterpreting vector bits (lane order is little-endian).
fn vector_bits() -> MemFlagsData {
    MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little)
}

/// The Cranelift type of `d` in `lanes` lanes (a mask of the lane width for `Bool`).
fn lane_type(d: DType, lanes: u32) -> Type {
    match (d, lanes) {
        (_, 1) => clif_type(d),
        (DType::F32, 4) => types::F32X4,
        (DType::I32 | DType::Bool, 4) => types::I32X4,
        (DType::F64, 2) => types::F64X2,
        (DType::I64 | DType::Bool, 2) => types::I64X2,
        // Four-byte values among eight-byte ones: the low two lanes are the values.
        (DType::F32, 2) => types::F32X4,
        (DType::I32, 2) => types::I32X4,
        _ => panic!("internal error: {d} in {lanes} lanes"),
    }
}

pub fn kernel_signature(sig: &mut Signature, ptr: Type) {
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I32));
}

/// A value during code generation: a scalar (one Cranelift value per vector group; one in
/// scalar code) with its element type, or a tuple.
#[derive(Clone, Debug)]
enum CVal {
    S(Vec<Value>, DType),
    T(Vec<CVal>),
}

impl CVal {
    fn s(&self) -> (Vec<Value>, DType) {
        match self {
            CVal::S(v, d) => (v.clone(), *d),
            CVal::T(_) => panic!("internal error: a tuple where a scalar is needed"),
        }
    }

    /// The one value of a scalar in scalar code.
    fn one(&self) -> (Value, DType) {
        let (v, d) = self.s();
        (v[0], d)
    }

    fn flatten(&self, out: &mut Vec<(Vec<Value>, DType)>) {
        match self {
            CVal::S(v, d) => out.push((v.clone(), *d)),
            CVal::T(xs) => xs.iter().for_each(|x| x.flatten(out)),
        }
    }
}

/// The shape of a value, to rebuild it from flat block parameters.
fn shape_of(v: &CVal) -> CShape {
    match v {
        CVal::S(_, d) => CShape::S(*d),
        CVal::T(xs) => CShape::T(xs.iter().map(shape_of).collect()),
    }
}

#[derive(Clone, Debug)]
enum CShape {
    S(DType),
    T(Vec<CShape>),
}

fn rebuild(shape: &CShape, flat: &mut impl Iterator<Item = Value>) -> CVal {
    match shape {
        CShape::S(d) => CVal::S(vec![flat.next().expect("enough values")], *d),
        CShape::T(xs) => CVal::T(xs.iter().map(|s| rebuild(s, flat)).collect()),
    }
}

fn flat_types(shape: &CShape, out: &mut Vec<DType>) {
    match shape {
        CShape::S(d) => out.push(*d),
        CShape::T(xs) => xs.iter().for_each(|s| flat_types(s, out)),
    }
}

/// How a stream's byte offset moves with one index variable.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coef {
    /// The variable does not move it.
    Zero,
    /// One element per step: the variable appears only in the last coordinate, with
    /// coefficient 1 (the last dimension is contiguous).
    Unit,
    /// Any other number of bytes per step, computed from the extents at entry.
    Dyn(Value),
}

/// The address of a strict read or of an output at the current point, kept as partial sums
/// per loop level.
#[derive(Clone, Debug)]
struct Stream {
    /// Per index variable.
    coef: Vec<Coef>,
    /// `addr[0]` is the base plus the constant part; `addr[k + 1]` adds variable `k`'s term.
    addr: Vec<Value>,
    /// Bytes per element.
    elem: i64,
}

/// The code generation mode of the current loop body: `lanes` lanes per vector (1 for
/// scalar code) and `groups` vectors side by side.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mode {
    lanes: u32,
    groups: usize,
}

const SCALAR: Mode = Mode {
    lanes: 1,
    groups: 1,
};

/// Generates the body of kernel `node` into `b`, whose entry block has the four parameters.
struct Gen<'a, 'f> {
    b: &'a mut FunctionBuilder<'f>,
    imports: Imports,
    /// The current value of each index variable.
    idx: Vec<Value>,
    reads: Vec<Read>,
    /// Extents of the tensors read.
    read_ext: Vec<Vec<Value>>,
    read_types: Vec<DType>,
    /// Base pointers of the reads (for the non-strict ones).
    read_bases: Vec<Value>,
    /// One stream per read (`None` for `Pad` and `Clamp` reads), then one per output port.
    streams: Vec<Option<Stream>>,
    mode: Mode,
    /// The index variable that vector code runs along: the innermost free one.
    vec_var: usize,
    /// The block that returns an error code (its one parameter).
    fail: cranelift_codegen::ir::Block,
}

impl Gen<'_, '_> {
    fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// `v` in every lane of every group.
    fn splat(&mut self, v: Value, d: DType) -> Vec<Value> {
        if self.mode.lanes == 1 {
            return vec![v];
        }
        let v = if d == DType::Bool {
            // A scalar bool (0 or 1) becomes a lane mask (all zeros or all ones).
            let wide = lane_type(d, 1.max(self.mode.lanes)).lane_type();
            let x = self.b.ins().uextend(wide, v);
            self.b.ins().ineg(x)
        } else {
            v
        };
        let s = self.b.ins().splat(lane_type(d, self.mode.lanes), v);
        vec![s; self.mode.groups]
    }

    fn constant(&mut self, s: Scalar) -> CVal {
        let v = match s {
            Scalar::F32(x) => self.b.ins().f32const(x),
            Scalar::F64(x) => self.b.ins().f64const(x),
            Scalar::I32(x) => self.b.ins().iconst(types::I32, x as i64),
            Scalar::I64(x) => self.b.ins().iconst(types::I64, x),
            Scalar::U8(x) => self.b.ins().iconst(types::I8, i64::from(x)),
            Scalar::U32(x) => self.b.ins().iconst(types::I32, i64::from(x)),
            Scalar::U64(x) => self.b.ins().iconst(types::I64, x as i64),
            Scalar::Bool(x) => self.b.ins().iconst(types::I8, x as i64),
        };
        CVal::S(self.splat(v, s.dtype()), s.dtype())
    }

    fn affine(&mut self, a: &crate::mir::ir::Affine) -> Value {
        let mut acc = self.iconst(a.konst);
        for (v, c) in &a.coeffs {
            let i = self.idx[*v as usize];
            let term = if *c == 1 {
                i
            } else {
                self.b.ins().imul_imm_s(i, *c)
            };
            acc = self.b.ins().iadd(acc, term);
        }
        acc
    }

    /// Enters a loop level: index variable `v` (the next one) takes value `i`, and every
    /// stream's address gains its term.
    fn push_index(&mut self, i: Value) {
        let v = self.idx.len();
        self.idx.push(i);
        for s in self.streams.iter_mut().flatten() {
            let last = *s.addr.last().expect("a base address");
            let next = match s.coef[v] {
                Coef::Zero => last,
                Coef::Unit => {
                    let bytes = self.b.ins().imul_imm_s(i, s.elem);
                    self.b.ins().iadd(last, bytes)
                }
                Coef::Dyn(c) => {
                    let bytes = self.b.ins().imul(i, c);
                    self.b.ins().iadd(last, bytes)
                }
            };
            s.addr.push(next);
        }
    }

    fn pop_index(&mut self) {
        self.idx.pop();
        for s in self.streams.iter_mut().flatten() {
            s.addr.pop();
        }
    }

    /// The value of read `k` at the current point.
    fn read(&mut self, k: usize) -> CVal {
        let d = self.read_types[k];
        let ty = clif_type(d);
        if let Some(s) = &self.streams[k] {
            let addr = *s.addr.last().expect("an address");
            let unit = s.coef.get(self.vec_var) == Some(&Coef::Unit);
            let flags = mem();
            if self.mode.lanes > 1 && unit {
                let vty = lane_type(d, self.mode.lanes);
                let lanes = self.mode.lanes as usize;
                let step = lanes * d.size_bytes();
                let vals = (0..self.mode.groups)
                    .map(|u| {
                        let off = (u * step) as i32;
                        if step == 16 {
                            return self.b.ins().load(vty, flags, addr, off);
                        }
                        // Two four-byte values: one eight-byte load into the low lanes.
                        let x = self.b.ins().load(types::F64, flags, addr, off);
                        let x = self.b.ins().scalar_to_vector(types::F64X2, x);
                        self.b.ins().bitcast(vty, vector_bits(), x)
                    })
                    .collect();
                return CVal::S(vals, d);
            }
            let v = self.b.ins().load(ty, flags, addr, 0);
            return CVal::S(self.splat(v, d), d);
        }
        let r = self.reads[k].clone();
        let ext = self.read_ext[k].clone();
        let mut coords: Vec<Value> = r.proj.iter().map(|a| self.affine(a)).collect();
        if let Edge::Clamp = r.edge {
            for (c, n) in coords.iter_mut().zip(&ext) {
                let zero = self.iconst(0);
                let last = self.b.ins().iadd_imm_s(*n, -1);
                let x = self.b.ins().smax(*c, zero);
                *c = self.b.ins().smin(x, last);
            }
        }
        let offset = self.linear(&coords, &ext);
        let bytes = self.b.ins().imul_imm_s(offset, d.size_bytes() as i64);
        let addr = self.b.ins().iadd(self.read_bases[k], bytes);
        match r.edge {
            Edge::Strict | Edge::Clamp => CVal::S(vec![self.b.ins().load(ty, mem(), addr, 0)], d),
            Edge::Pad(p) => {
                // In bounds when every coordinate is in 0..extent (an unsigned compare).
                let mut inb = self.b.ins().iconst(types::I8, 1);
                for (c, n) in coords.iter().zip(&ext) {
                    let ok = self.b.ins().icmp(IntCC::UnsignedLessThan, *c, *n);
                    inb = self.b.ins().band(inb, ok);
                }
                let load_b = self.b.create_block();
                let pad_b = self.b.create_block();
                let join = self.b.create_block();
                let res = self.b.append_block_param(join, ty);
                self.b.ins().brif(inb, load_b, &[], pad_b, &[]);
                self.b.switch_to_block(load_b);
                self.b.seal_block(load_b);
                let v = self.b.ins().load(ty, mem(), addr, 0);
                self.b.ins().jump(join, &[BlockArg::Value(v)]);
                self.b.switch_to_block(pad_b);
                self.b.seal_block(pad_b);
                let (pv, _) = self.constant(p).one();
                self.b.ins().jump(join, &[BlockArg::Value(pv)]);
                self.b.switch_to_block(join);
                self.b.seal_block(join);
                CVal::S(vec![res], d)
            }
        }
    }

    /// The element of read `k`'s whole tensor at run-time coordinates `at` (scalar code only:
    /// `vector_plan` refuses a gather). A coordinate outside its extent (one unsigned
    /// comparison each) returns [`ERR_INDEX`] before any load.
    fn gather(&mut self, k: usize, at: &[Value]) -> CVal {
        let d = self.read_types[k];
        let ext = self.read_ext[k].clone();
        let mut bad = self.b.ins().iconst(types::I8, 0);
        for (c, n) in at.iter().zip(&ext) {
            let out = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, *c, *n);
            bad = self.b.ins().bor(bad, out);
        }
        self.fail_with(bad, ERR_INDEX);
        let offset = self.linear(at, &ext);
        let bytes = self.b.ins().imul_imm_s(offset, d.size_bytes() as i64);
        let addr = self.b.ins().iadd(self.read_bases[k], bytes);
        CVal::S(vec![self.b.ins().load(clif_type(d), mem(), addr, 0)], d)
    }

    /// Row-major linear position of `coords` in a tensor of extents `ext`.
    fn linear(&mut self, coords: &[Value], ext: &[Value]) -> Value {
        let mut acc = self.iconst(0);
        for (c, n) in coords.iter().zip(ext) {
            acc = self.b.ins().imul(acc, *n);
            acc = self.b.ins().iadd(acc, *c);
        }
        acc
    }

    // ---- loops ----

    /// `for i in lo..hi { body(i) }` with the counter in a variable.
    fn for_loop(&mut self, lo: Value, hi: Value, body: &mut dyn FnMut(&mut Self, Value)) {
        self.stepped_loop(lo, hi, 1, body);
    }

    /// `i = lo; while i + step <= hi { body(i); i += step }`; returns the final `i`.
    fn stepped_loop(
        &mut self,
        lo: Value,
        hi: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value),
    ) -> Value {
        let var: Variable = self.b.declare_var(types::I64);
        self.b.def_var(var, lo);
        let limit = self.b.ins().iadd_imm_s(hi, 1 - step);
        let head = self.b.create_block();
        let body_b = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let i = self.b.use_var(var);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, i, limit);
        self.b.ins().brif(more, body_b, &[], exit, &[]);
        self.b.switch_to_block(body_b);
        self.b.seal_block(body_b);
        body(self, i);
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(var, next);
        self.b.ins().jump(head, &[]);
        self.b.seal_block(head);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        self.b.use_var(var)
    }

    /// Loops over dimensions `ext[k..]` (the first free dimension from `lo` to `hi` when
    /// `k == 0` and `range0` is given), pushing index values, then calls `inner`. With a
    /// vector `plan`, the last dimension runs in vectors first, then in scalars.
    fn nest(
        &mut self,
        ext: &[Value],
        k: usize,
        range0: Option<(Value, Value)>,
        plan: Option<Mode>,
        inner: &mut dyn FnMut(&mut Self),
    ) {
        if k == ext.len() {
            inner(self);
            return;
        }
        let (lo, hi) = match (k, range0) {
            (0, Some(r)) => r,
            _ => (self.iconst(0), ext[k]),
        };
        let mut body = |g: &mut Self, i: Value| {
            g.push_index(i);
            g.nest(ext, k + 1, range0, plan, inner);
            g.pop_index();
        };
        match plan {
            Some(mode) if k + 1 == ext.len() => {
                let step = (mode.lanes as usize * mode.groups) as i64;
                self.mode = mode;
                let rest = self.stepped_loop(lo, hi, step, &mut body);
                self.mode = SCALAR;
                self.for_loop(rest, hi, &mut body);
            }
            _ => self.for_loop(lo, hi, &mut body),
        }
    }

    /// Stores `vals` (one per group) to output `port` at the current point.
    fn store(&mut self, port: usize, vals: &[Value]) {
        let s = self.streams[self.reads.len() + port]
            .as_ref()
            .expect("outputs are streams");
        let addr = *s.addr.last().expect("an address");
        let step = self.mode.lanes as usize * s.elem as usize;
        for (u, v) in vals.iter().enumerate() {
            let off = (u * step) as i32;
            let v = if self.mode.lanes > 1 && step < 16 {
                // The low two lanes of four-byte values, as one eight-byte store.
                let x = self.b.ins().bitcast(types::F64X2, vector_bits(), *v);
                self.b.ins().extractlane(x, 0)
            } else {
                *v
            };
            self.b.ins().store(mem(), v, addr, off);
        }
    }
}

/// Generates a whole kernel for `node` (a `Map` or `Reduce`) of graph `g`.
pub fn generate(g: &Graph, node: &Node, b: &mut FunctionBuilder<'_>, imports: Imports, ptr: Type) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let (bufs, dims, lo, hi) = (params[0], params[1], params[2], params[3]);
    let fail = b.create_block();
    let code = b.append_block_param(fail, types::I32);
    let (space_n, red_n, reads): (usize, usize, Vec<Read>) = match &node.kind {
        NodeKind::Map { space, reads, .. } => (space.len(), 0, reads.clone()),
        NodeKind::Reduce {
            space, red, reads, ..
        } => (space.len(), red.len(), reads.clone()),
        _ => panic!("internal error: only maps and reductions are kernels"),
    };
    let flags = mem();
    let mut next_dim = 0;
    let mut dim = |b: &mut FunctionBuilder<'_>| {
        let v = b.ins().load(types::I64, flags, dims, 8 * next_dim);
        next_dim += 1;
        v
    };
    let space_ext: Vec<Value> = (0..space_n).map(|_| dim(b)).collect();
    let red_ext: Vec<Value> = (0..red_n).map(|_| dim(b)).collect();
    let read_types: Vec<DType> = reads
        .iter()
        .map(|r| g.nodes[r.node].outputs[r.port as usize].dtype)
        .collect();
    let read_ext: Vec<Vec<Value>> = reads
        .iter()
        .map(|r| (0..r.proj.len()).map(|_| dim(b)).collect())
        .collect();
    let load_base = |b: &mut FunctionBuilder<'_>, k: usize| {
        b.ins()
            .load(ptr, flags, bufs, (k * ptr.bytes() as usize) as i32)
    };
    let read_bases: Vec<Value> = (0..reads.len()).map(|k| load_base(b, k)).collect();
    let nvars = space_n + red_n;
    let mut streams: Vec<Option<Stream>> = Vec::new();
    for (k, r) in reads.iter().enumerate() {
        if r.edge != Edge::Strict {
            streams.push(None);
            continue;
        }
        let elem = read_types[k].size_bytes() as i64;
        let strides = byte_strides(b, &read_ext[k], elem);
        let mut konst = b.ins().iconst(types::I64, 0);
        for (a, s) in r.proj.iter().zip(&strides) {
            if a.konst != 0 {
                let t = b.ins().imul_imm_s(*s, a.konst);
                konst = b.ins().iadd(konst, t);
            }
        }
        let coef = (0..nvars as u32)
            .map(|v| match coef_kind(r, v) {
                (false, _) => Coef::Zero,
                (true, true) => Coef::Unit,
                (true, false) => {
                    let mut acc = b.ins().iconst(types::I64, 0);
                    for (a, s) in r.proj.iter().zip(&strides) {
                        for (w, c) in &a.coeffs {
                            if *w == v {
                                let t = b.ins().imul_imm_s(*s, *c);
                                acc = b.ins().iadd(acc, t);
                            }
                        }
                    }
                    Coef::Dyn(acc)
                }
            })
            .collect();
        let base = b.ins().iadd(read_bases[k], konst);
        streams.push(Some(Stream {
            coef,
            addr: vec![base],
            elem,
        }));
    }
    for (port, t) in node.outputs.iter().enumerate() {
        let elem = t.dtype.size_bytes() as i64;
        let strides = byte_strides(b, &space_ext, elem);
        let coef = (0..nvars)
            .map(|v| match v {
                _ if v + 1 == space_n => Coef::Unit,
                _ if v < space_n => Coef::Dyn(strides[v]),
                _ => Coef::Zero,
            })
            .collect();
        let base = load_base(b, reads.len() + port);
        streams.push(Some(Stream {
            coef,
            addr: vec![base],
            elem,
        }));
    }
    let plan = vector_plan(g, node);
    let mut gen = Gen {
        b,
        imports,
        idx: Vec::new(),
        reads,
        read_ext,
        read_types,
        read_bases,
        streams,
        mode: SCALAR,
        vec_var: space_n.wrapping_sub(1),
        fail,
    };
    let range = (space_n > 0).then_some((lo, hi));
    match &node.kind {
        NodeKind::Map { .. } if range.is_some() && span::row_binary(g, node).is_some() => {
            let rb = span::row_binary(g, node).expect("checked");
            span::rows_binary(&mut gen, rb, &space_ext, lo, hi);
        }
        NodeKind::Map { body, .. } => {
            let exp_arg = span::exp_argument(node);
            let body = exp_arg.map_or(&body[..], std::slice::from_ref);
            // `exp(x[i, j] - m[i])`: the argument is a row operation too.
            let arg_rows = exp_arg
                .filter(|_| range.is_some())
                .and_then(|e| span::row_binary_expr(g, node, e));
            if let Some(rb) = arg_rows {
                // One pass: the row operation applies `exp` to each result itself.
                let rb = span::RowBinary {
                    code: rb.code | span::ROW_THEN_EXP,
                    ..rb
                };
                span::rows_binary(&mut gen, rb, &space_ext, lo, hi);
            } else {
                gen.nest(&space_ext, 0, range, plan, &mut |g| {
                    let vals: Vec<CVal> = body.iter().map(|e| g.expr(e, &[])).collect();
                    for (port, v) in vals.iter().enumerate() {
                        let (v, _) = v.s();
                        g.store(port, &v);
                    }
                });
            }
            if exp_arg.is_some() && arg_rows.is_none() {
                span::exp_over_rows(&mut gen, &space_ext, lo, hi);
            }
        }
        NodeKind::Reduce { .. }
            if range.is_some()
                && span::reduce_over_rows(&mut gen, g, node, &space_ext, &red_ext, lo, hi) => {}
        NodeKind::Reduce { monoid, args, .. } => {
            let m = kernel_monoid(g, *monoid, node.outputs[0].dtype);
            gen.nest(&space_ext, 0, range, plan, &mut |g| {
                reduce_point(g, &m, &red_ext, args)
            });
        }
        _ => unreachable!("checked above"),
    }
    let ok = gen.b.ins().iconst(types::I32, 0);
    gen.b.ins().return_(&[ok]);
    gen.b.switch_to_block(fail);
    gen.b.seal_block(fail);
    gen.b.ins().return_(&[code]);
}

/// Row-major strides in bytes of a tensor with extents `ext`.
fn byte_strides(b: &mut FunctionBuilder<'_>, ext: &[Value], elem: i64) -> Vec<Value> {
    let mut strides = vec![b.ins().iconst(types::I64, elem); ext.len()];
    for d in (0..ext.len().saturating_sub(1)).rev() {
        strides[d] = b.ins().imul(strides[d + 1], ext[d + 1]);
    }
    strides
}

/// At one free point (or one vector of free points): fold the reduced box from the zero, in
/// row-major order, then store the (unwrapped) result.
fn reduce_point(g: &mut Gen<'_, '_>, m: &Explicit, red: &[Value], args: &[ScalarExpr]) {
    let mode = g.mode;
    let vars: Vec<Vec<Variable>> = m
        .state
        .iter()
        .map(|d| {
            (0..mode.groups)
                .map(|_| g.b.declare_var(lane_type(*d, mode.lanes)))
                .collect()
        })
        .collect();
    for (var, z) in vars.iter().zip(&m.zero) {
        let (v, _) = g.constant(*z).s();
        for (var, v) in var.iter().zip(v) {
            g.b.def_var(*var, v);
        }
    }
    let state = |g: &mut Gen<'_, '_>, vars: &[Vec<Variable>]| -> CVal {
        let fields: Vec<CVal> = vars
            .iter()
            .zip(&m.state)
            .map(|(v, d)| CVal::S(v.iter().map(|v| g.b.use_var(*v)).collect(), *d))
            .collect();
        if fields.len() == 1 {
            fields.into_iter().next().expect("one field")
        } else {
            CVal::T(fields)
        }
    };
    let free = g.idx.len();
    // The reduced loops run in scalar steps; inside them, values keep the free point's mode.
    g.mode = SCALAR;
    g.nest(red, 0, None, None, &mut |g| {
        g.mode = mode;
        let xs: Vec<CVal> = args.iter().map(|a| g.expr(a, &[])).collect();
        let x = g.expr(&m.wrap, &xs);
        let acc = state(g, &vars);
        let new = g.expr(&m.combine, &[acc, x]);
        let mut flat = Vec::new();
        new.flatten(&mut flat);
        for (var, (v, _)) in vars.iter().zip(flat) {
            for (var, v) in var.iter().zip(v) {
                g.b.def_var(*var, v);
            }
        }
        g.mode = SCALAR;
    });
    g.mode = mode;
    debug_assert_eq!(g.idx.len(), free);
    let acc = state(g, &vars);
    let out = match &m.unwrap {
        Some(u) => g.expr(&u.body, &[acc]),
        None => acc,
    };
    let mut flat = Vec::new();
    out.flatten(&mut flat);
    for (port, (v, _)) in flat.into_iter().enumerate() {
        g.store(port, &v);
    }
}

/// The monoid of a reduction with every part spelled out; a user monoid without a wrap takes
/// its state (perhaps a tuple) as its one argument.
fn kernel_monoid(g: &Graph, m: crate::mir::ir::MonoidRef, dtype: DType) -> Explicit {
    if let Some(e) = explicit(g, m, dtype) {
        return e;
    }
    let crate::mir::ir::MonoidRef::User(id) = m else {
        unreachable!("built-in monoids are always explicit")
    };
    let u = &g.monoids[id];
    Explicit {
        name: u.name.clone(),
        state: u.state.clone(),
        names: u.field_names.clone(),
        zero: u.zero.clone(),
        params: u.state.clone(),
        wrap: ScalarExpr::Param(0),
        combine: u.combine.clone(),
        unwrap: u.unwrap.clone(),
        commutative: u.commutative,
    }
}
