//! One MIR `Map` or `Reduce` node to one Cranelift function that computes the rows
//! `lo..hi` of its outermost free dimension (all of it for a rank-0 space): a loop nest over
//! the shard's box, reads through affine projections with their edge rules, and a fold over
//! the reduced box in row-major order from the monoid's zero — exactly the interpreter's
//! order, so results are bitwise identical.
//!
//! Signature: `extern "C" fn(bufs: *const *mut u8, lo: i64, hi: i64) -> i32`, where `bufs`
//! holds one pointer per read followed by one per output port, and the result is 0, or an
//! error code: [`ERR_DIV_ZERO`], [`ERR_DIV_OVERFLOW`].
//!
//! Memory safety: every `Strict` read was proved in bounds over the whole box by the verifier
//! (which runs before compilation); `Pad` reads branch around the load when out of bounds;
//! `Clamp` reads clamp each coordinate. Stores go to the row-major position of the current
//! point inside the output, whose box is the node's space.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Signature, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use flow_runtime::{DType, Scalar};

use crate::mir::ir::{BinOp, Edge, Graph, MathFn, Node, NodeKind, Read, ScalarExpr, UnOp};
use crate::mir::passes::monoid::{explicit, Explicit};

pub const ERR_DIV_ZERO: i64 = 1;
pub const ERR_DIV_OVERFLOW: i64 = 2;

/// The runtime math functions kernels call, declared in the function being built, in the
/// order of [`CALLED`]: first the `f32` versions, then the `f64` ones.
#[derive(Clone, Debug)]
pub struct Imports {
    pub funcs: Vec<cranelift_codegen::ir::FuncRef>,
}

/// The math functions that are calls, by name (`exp` is `flow_exp_f32` and `flow_exp_f64`),
/// and their arity.
pub const CALLED: [(&str, usize); 7] = [
    ("exp", 1),
    ("log", 1),
    ("sin", 1),
    ("cos", 1),
    ("tanh", 1),
    ("pow", 2),
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
        DType::I32 => types::I32,
        DType::I64 => types::I64,
        DType::Bool => types::I8,
    }
}

pub fn kernel_signature(sig: &mut Signature, ptr: Type) {
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I32));
}

/// A value during code generation: a scalar with its type, or a tuple.
#[derive(Clone, Debug)]
enum CVal {
    S(Value, DType),
    T(Vec<CVal>),
}

impl CVal {
    fn s(&self) -> (Value, DType) {
        match self {
            CVal::S(v, d) => (*v, *d),
            CVal::T(_) => panic!("internal error: a tuple where a scalar is needed"),
        }
    }

    fn flatten(&self, out: &mut Vec<(Value, DType)>) {
        match self {
            CVal::S(v, d) => out.push((*v, *d)),
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
        CShape::S(d) => CVal::S(flat.next().expect("enough values"), *d),
        CShape::T(xs) => CVal::T(xs.iter().map(|s| rebuild(s, flat)).collect()),
    }
}

fn flat_types(shape: &CShape, out: &mut Vec<DType>) {
    match shape {
        CShape::S(d) => out.push(*d),
        CShape::T(xs) => xs.iter().for_each(|s| flat_types(s, out)),
    }
}

/// Generates the body of kernel `node` into `b`, whose entry block has the three parameters.
pub struct Gen<'a, 'f> {
    pub b: &'a mut FunctionBuilder<'f>,
    pub imports: Imports,
    pub ptr: Type,
    /// Base pointers of the reads, then of the outputs.
    pub bases: Vec<Value>,
    /// The current value of each index variable.
    pub idx: Vec<Value>,
    pub reads: Vec<Read>,
    /// Extents of the tensors read.
    pub read_shapes: Vec<Vec<usize>>,
    pub read_types: Vec<DType>,
    /// The block that returns an error code (its one parameter).
    pub fail: cranelift_codegen::ir::Block,
}

impl Gen<'_, '_> {
    fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    fn constant(&mut self, s: Scalar) -> CVal {
        let v = match s {
            Scalar::F32(x) => self.b.ins().f32const(x),
            Scalar::F64(x) => self.b.ins().f64const(x),
            Scalar::I32(x) => self.b.ins().iconst(types::I32, x as i64),
            Scalar::I64(x) => self.b.ins().iconst(types::I64, x),
            Scalar::Bool(x) => self.b.ins().iconst(types::I8, x as i64),
        };
        CVal::S(v, s.dtype())
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

    /// The value of read `k` at the current point.
    fn read(&mut self, k: usize) -> CVal {
        let r = self.reads[k].clone();
        let shape = self.read_shapes[k].clone();
        let d = self.read_types[k];
        let ty = clif_type(d);
        let size = d.size_bytes() as i64;
        let mut coords: Vec<Value> = r.proj.iter().map(|a| self.affine(a)).collect();
        if let Edge::Clamp = r.edge {
            for (c, n) in coords.iter_mut().zip(&shape) {
                let zero = self.iconst(0);
                let last = self.iconst(*n as i64 - 1);
                let x = self.b.ins().smax(*c, zero);
                *c = self.b.ins().smin(x, last);
            }
        }
        let offset = self.linear(&coords, &shape);
        let bytes = self.b.ins().imul_imm_s(offset, size);
        let addr = self.b.ins().iadd(self.bases[k], bytes);
        match r.edge {
            Edge::Strict | Edge::Clamp => {
                CVal::S(self.b.ins().load(ty, MemFlagsData::trusted(), addr, 0), d)
            }
            Edge::Pad(p) => {
                // In bounds when every coordinate is in 0..extent (an unsigned compare).
                let mut inb = self.b.ins().iconst(types::I8, 1);
                for (c, n) in coords.iter().zip(&shape) {
                    let ok = self
                        .b
                        .ins()
                        .icmp_imm_s(IntCC::UnsignedLessThan, *c, *n as i64);
                    inb = self.b.ins().band(inb, ok);
                }
                let load_b = self.b.create_block();
                let pad_b = self.b.create_block();
                let join = self.b.create_block();
                let res = self.b.append_block_param(join, ty);
                self.b.ins().brif(inb, load_b, &[], pad_b, &[]);
                self.b.switch_to_block(load_b);
                self.b.seal_block(load_b);
                let v = self.b.ins().load(ty, MemFlagsData::trusted(), addr, 0);
                self.b.ins().jump(join, &[BlockArg::Value(v)]);
                self.b.switch_to_block(pad_b);
                self.b.seal_block(pad_b);
                let CVal::S(pv, _) = self.constant(p) else {
                    unreachable!("a scalar")
                };
                self.b.ins().jump(join, &[BlockArg::Value(pv)]);
                self.b.switch_to_block(join);
                self.b.seal_block(join);
                CVal::S(res, d)
            }
        }
    }

    /// Row-major linear position of `coords` in a tensor of extents `shape`.
    fn linear(&mut self, coords: &[Value], shape: &[usize]) -> Value {
        let mut acc = self.iconst(0);
        for (c, n) in coords.iter().zip(shape) {
            acc = self.b.ins().imul_imm_s(acc, *n as i64);
            acc = self.b.ins().iadd(acc, *c);
        }
        acc
    }

    /// Generates `e`; `params` are the values of `Param(k)`.
    fn expr(&mut self, e: &ScalarExpr, params: &[CVal]) -> CVal {
        match e {
            ScalarExpr::Const(s) => self.constant(*s),
            ScalarExpr::Index(v) => CVal::S(self.idx[*v as usize], DType::I64),
            ScalarExpr::Read(k) => self.read(*k as usize),
            ScalarExpr::Param(k) => params[*k as usize].clone(),
            ScalarExpr::Tuple(xs) => CVal::T(xs.iter().map(|x| self.expr(x, params)).collect()),
            ScalarExpr::Field(x, k) => match self.expr(x, params) {
                CVal::T(mut xs) => xs.swap_remove(*k as usize),
                s => s,
            },
            ScalarExpr::Unary(op, a) => {
                let (v, d) = self.expr(a, params).s();
                let r = match (op, d) {
                    (UnOp::Neg, DType::F32 | DType::F64) => self.b.ins().fneg(v),
                    (UnOp::Neg, _) => self.b.ins().ineg(v),
                    (UnOp::Not, _) => self.b.ins().bxor_imm_s(v, 1),
                };
                CVal::S(r, d)
            }
            ScalarExpr::Cast(a, to) => {
                let (v, from) = self.expr(a, params).s();
                CVal::S(self.cast(v, from, *to), *to)
            }
            ScalarExpr::Call(f, a) => {
                let (v, d) = self.expr(a, params).s();
                CVal::S(self.math(*f, v, d), d)
            }
            ScalarExpr::Select(c, a, b) => {
                let (cv, _) = self.expr(c, params).s();
                self.branch(cv, |g| g.expr(a, params), |g| g.expr(b, params))
            }
            ScalarExpr::Binary(BinOp::And, a, b) => {
                let (x, _) = self.expr(a, params).s();
                let f = |g: &mut Self| g.constant(Scalar::Bool(false));
                self.branch(x, |g| g.expr(b, params), f)
            }
            ScalarExpr::Binary(BinOp::Or, a, b) => {
                let (x, _) = self.expr(a, params).s();
                let t = |g: &mut Self| g.constant(Scalar::Bool(true));
                self.branch(x, t, |g| g.expr(b, params))
            }
            ScalarExpr::Binary(op, a, b) => {
                let (x, d) = self.expr(a, params).s();
                let (y, _) = self.expr(b, params).s();
                self.binary(*op, x, y, d)
            }
        }
    }

    /// `if c { then } else { els }`, evaluating only the taken arm.
    fn branch(
        &mut self,
        c: Value,
        then: impl FnOnce(&mut Self) -> CVal,
        els: impl FnOnce(&mut Self) -> CVal,
    ) -> CVal {
        let tb = self.b.create_block();
        let eb = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(c, tb, &[], eb, &[]);
        self.b.switch_to_block(tb);
        self.b.seal_block(tb);
        let tv = then(self);
        let shape = shape_of(&tv);
        let mut tys = Vec::new();
        flat_types(&shape, &mut tys);
        let params: Vec<Value> = tys
            .iter()
            .map(|d| self.b.append_block_param(join, clif_type(*d)))
            .collect();
        let mut flat = Vec::new();
        tv.flatten(&mut flat);
        let args: Vec<BlockArg> = flat.iter().map(|(v, _)| BlockArg::Value(*v)).collect();
        self.b.ins().jump(join, &args);
        self.b.switch_to_block(eb);
        self.b.seal_block(eb);
        let ev = els(self);
        let mut flat = Vec::new();
        ev.flatten(&mut flat);
        let args: Vec<BlockArg> = flat.iter().map(|(v, _)| BlockArg::Value(*v)).collect();
        self.b.ins().jump(join, &args);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
        rebuild(&shape, &mut params.into_iter())
    }

    fn fail_with(&mut self, cond: Value, code: i64) {
        let ok = self.b.create_block();
        let code = self.b.ins().iconst(types::I32, code);
        self.b
            .ins()
            .brif(cond, self.fail, &[BlockArg::Value(code)], ok, &[]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }

    fn binary(&mut self, op: BinOp, x: Value, y: Value, d: DType) -> CVal {
        let float = matches!(d, DType::F32 | DType::F64);
        let cmp = |g: &mut Self, icc: IntCC, fcc: FloatCC| {
            let v = if float {
                g.b.ins().fcmp(fcc, x, y)
            } else {
                g.b.ins().icmp(icc, x, y)
            };
            CVal::S(v, DType::Bool)
        };
        match op {
            BinOp::Eq => return cmp(self, IntCC::Equal, FloatCC::Equal),
            BinOp::Ne => return cmp(self, IntCC::NotEqual, FloatCC::NotEqual),
            BinOp::Lt => return cmp(self, IntCC::SignedLessThan, FloatCC::LessThan),
            BinOp::Le => return cmp(self, IntCC::SignedLessThanOrEqual, FloatCC::LessThanOrEqual),
            BinOp::Gt => return cmp(self, IntCC::SignedGreaterThan, FloatCC::GreaterThan),
            BinOp::Ge => {
                return cmp(
                    self,
                    IntCC::SignedGreaterThanOrEqual,
                    FloatCC::GreaterThanOrEqual,
                )
            }
            _ => {}
        }
        let v = match (op, float) {
            (BinOp::Add, true) => self.b.ins().fadd(x, y),
            (BinOp::Sub, true) => self.b.ins().fsub(x, y),
            (BinOp::Mul, true) => self.b.ins().fmul(x, y),
            (BinOp::Div, true) => self.b.ins().fdiv(x, y),
            (BinOp::Min, true) => self.b.ins().fmin(x, y),
            (BinOp::Max, true) => self.b.ins().fmax(x, y),
            (BinOp::Rem, true) => self.call2(d, "rem", x, y),
            (BinOp::Pow, true) => self.call2(d, "pow", x, y),
            (BinOp::Add, false) => self.b.ins().iadd(x, y),
            (BinOp::Sub, false) => self.b.ins().isub(x, y),
            (BinOp::Mul, false) => self.b.ins().imul(x, y),
            (BinOp::Min, false) => self.b.ins().smin(x, y),
            (BinOp::Max, false) => self.b.ins().smax(x, y),
            (BinOp::Shl, false) => self.b.ins().ishl(x, y),
            (BinOp::Shr, false) => self.b.ins().sshr(x, y),
            (BinOp::And, false) => self.b.ins().band(x, y),
            (BinOp::Or, false) => self.b.ins().bor(x, y),
            (BinOp::Div, false) => {
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                self.fail_with(zero, ERR_DIV_ZERO);
                let min = if d == DType::I32 {
                    i32::MIN as i64
                } else {
                    i64::MIN
                };
                let is_min = self.b.ins().icmp_imm_s(IntCC::Equal, x, min);
                let is_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let both = self.b.ins().band(is_min, is_m1);
                self.fail_with(both, ERR_DIV_OVERFLOW);
                self.b.ins().sdiv(x, y)
            }
            (BinOp::Rem, false) => {
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                self.fail_with(zero, ERR_DIV_ZERO);
                // `MIN % -1` is 0; avoid the trapping instruction for a divisor of -1.
                let is_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let one = self.b.ins().iconst(clif_type(d), 1);
                let safe = self.b.ins().select(is_m1, one, y);
                self.b.ins().srem(x, safe)
            }
            (op, _) => panic!("internal error: `{}` on {d}", op.name()),
        };
        CVal::S(v, d)
    }

    fn call2(&mut self, d: DType, name: &str, x: Value, y: Value) -> Value {
        let f = self.imports.get(name, d);
        let call = self.b.ins().call(f, &[x, y]);
        self.b.inst_results(call)[0]
    }

    fn math(&mut self, f: MathFn, v: Value, d: DType) -> Value {
        let float = matches!(d, DType::F32 | DType::F64);
        match f {
            MathFn::Abs if float => self.b.ins().fabs(v),
            MathFn::Abs => self.b.ins().iabs(v),
            MathFn::Sqrt => self.b.ins().sqrt(v),
            MathFn::Floor => self.b.ins().floor(v),
            MathFn::Ceil => self.b.ins().ceil(v),
            MathFn::Exp | MathFn::Log | MathFn::Sin | MathFn::Cos | MathFn::Tanh => {
                let func = self.imports.get(f.name(), d);
                let call = self.b.ins().call(func, &[v]);
                self.b.inst_results(call)[0]
            }
        }
    }

    /// Rust `as` between element types.
    fn cast(&mut self, v: Value, from: DType, to: DType) -> Value {
        use DType::*;
        if from == to {
            return v;
        }
        let ins = self.b.ins();
        match (from, to) {
            (F32, F64) => ins.fpromote(types::F64, v),
            (F64, F32) => ins.fdemote(types::F32, v),
            (F32 | F64, I32 | I64) => ins.fcvt_to_sint_sat(clif_type(to), v),
            (I32 | I64, F32 | F64) => ins.fcvt_from_sint(clif_type(to), v),
            (Bool, F32 | F64) => ins.fcvt_from_uint(clif_type(to), v),
            (I32, I64) => ins.sextend(types::I64, v),
            (I64, I32) => ins.ireduce(types::I32, v),
            (Bool, I32 | I64) => ins.uextend(clif_type(to), v),
            (I32 | I64, Bool) => ins.icmp_imm_s(IntCC::NotEqual, v, 0),
            (F32, Bool) => {
                let z = self.b.ins().f32const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, v, z)
            }
            (F64, Bool) => {
                let z = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, v, z)
            }
            _ => v,
        }
    }

    // ---- loops ----

    /// `for i in lo..hi { body(i) }` with the counter in a variable.
    fn for_loop(&mut self, lo: Value, hi: Value, body: &mut dyn FnMut(&mut Self, Value)) {
        let var: Variable = self.b.declare_var(types::I64);
        self.b.def_var(var, lo);
        let head = self.b.create_block();
        let body_b = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let i = self.b.use_var(var);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, i, hi);
        self.b.ins().brif(more, body_b, &[], exit, &[]);
        self.b.switch_to_block(body_b);
        self.b.seal_block(body_b);
        body(self, i);
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var, next);
        self.b.ins().jump(head, &[]);
        self.b.seal_block(head);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// Loops over dimensions `dims[k..]` (the first free dimension from `lo` to `hi` when
    /// `k == 0` and `shard`), pushing index values, then calls `inner`.
    fn nest(
        &mut self,
        dims: &[usize],
        k: usize,
        range0: Option<(Value, Value)>,
        inner: &mut dyn FnMut(&mut Self),
    ) {
        if k == dims.len() {
            inner(self);
            return;
        }
        let (lo, hi) = match (k, range0) {
            (0, Some(r)) => r,
            _ => (self.iconst(0), self.iconst(dims[k] as i64)),
        };
        self.for_loop(lo, hi, &mut |g, i| {
            g.idx.push(i);
            g.nest(dims, k + 1, range0, inner);
            g.idx.pop();
        });
    }

    fn store(&mut self, port: usize, space: &[usize], v: Value, d: DType) {
        let idx: Vec<Value> = self.idx[..space.len()].to_vec();
        let offset = self.linear(&idx, space);
        let bytes = self.b.ins().imul_imm_s(offset, d.size_bytes() as i64);
        let base = self.bases[self.reads.len() + port];
        let addr = self.b.ins().iadd(base, bytes);
        self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
    }
}

/// Generates a whole kernel for `node` (a `Map` or `Reduce`) of graph `g`.
pub fn generate(g: &Graph, node: &Node, b: &mut FunctionBuilder<'_>, imports: Imports, ptr: Type) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let (bufs, lo, hi) = (params[0], params[1], params[2]);
    let fail = b.create_block();
    let code = b.append_block_param(fail, types::I32);
    let reads: Vec<Read> = match &node.kind {
        NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => reads.clone(),
        _ => panic!("internal error: only maps and reductions are kernels"),
    };
    let n_bufs = reads.len() + node.outputs.len();
    let bases: Vec<Value> = (0..n_bufs)
        .map(|k| {
            b.ins().load(
                ptr,
                MemFlagsData::trusted(),
                bufs,
                (k * ptr.bytes() as usize) as i32,
            )
        })
        .collect();
    let read_shapes = reads
        .iter()
        .map(|r| g.nodes[r.node].outputs[r.port as usize].shape.clone())
        .collect();
    let read_types = reads
        .iter()
        .map(|r| g.nodes[r.node].outputs[r.port as usize].dtype)
        .collect();
    let mut gen = Gen {
        b,
        imports,
        ptr,
        bases,
        idx: Vec::new(),
        reads,
        read_shapes,
        read_types,
        fail,
    };
    match &node.kind {
        NodeKind::Map { space, body, .. } => {
            let range = (!space.is_empty()).then_some((lo, hi));
            gen.nest(space, 0, range, &mut |g| {
                let vals: Vec<CVal> = body.iter().map(|e| g.expr(e, &[])).collect();
                for (port, v) in vals.iter().enumerate() {
                    let (v, d) = v.s();
                    g.store(port, space, v, d);
                }
            });
        }
        NodeKind::Reduce {
            space,
            red,
            monoid,
            args,
            ..
        } => {
            let m = kernel_monoid(g, *monoid, node.outputs[0].dtype);
            let range = (!space.is_empty()).then_some((lo, hi));
            gen.nest(space, 0, range, &mut |g| {
                reduce_point(g, &m, space, red, args)
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

/// At one free point: fold the reduced box from the zero, in row-major order, then store the
/// (unwrapped) result.
fn reduce_point(
    g: &mut Gen<'_, '_>,
    m: &Explicit,
    space: &[usize],
    red: &[usize],
    args: &[ScalarExpr],
) {
    let vars: Vec<Variable> = m
        .state
        .iter()
        .map(|d| g.b.declare_var(clif_type(*d)))
        .collect();
    for (var, z) in vars.iter().zip(&m.zero) {
        let (v, _) = g.constant(*z).s();
        g.b.def_var(*var, v);
    }
    let state = |g: &mut Gen<'_, '_>, vars: &[Variable]| -> CVal {
        let fields: Vec<CVal> = vars
            .iter()
            .zip(&m.state)
            .map(|(v, d)| CVal::S(g.b.use_var(*v), *d))
            .collect();
        if fields.len() == 1 {
            fields.into_iter().next().expect("one field")
        } else {
            CVal::T(fields)
        }
    };
    let free = g.idx.len();
    g.nest_from(red, &mut |g| {
        let xs: Vec<CVal> = args.iter().map(|a| g.expr(a, &[])).collect();
        let x = g.expr(&m.wrap, &xs);
        let acc = state(g, &vars);
        let new = g.expr(&m.combine, &[acc, x]);
        let mut flat = Vec::new();
        new.flatten(&mut flat);
        for (var, (v, _)) in vars.iter().zip(flat) {
            g.b.def_var(*var, v);
        }
    });
    debug_assert_eq!(g.idx.len(), free);
    let acc = state(g, &vars);
    let out = match &m.unwrap {
        Some(u) => g.expr(&u.body, &[acc]),
        None => acc,
    };
    let mut flat = Vec::new();
    out.flatten(&mut flat);
    for (port, (v, d)) in flat.into_iter().enumerate() {
        g.store(port, space, v, d);
    }
}

impl Gen<'_, '_> {
    /// Loops over `dims` from zero, pushing index values after the current ones.
    fn nest_from(&mut self, dims: &[usize], inner: &mut dyn FnMut(&mut Self)) {
        self.nest(dims, 0, None, inner);
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
