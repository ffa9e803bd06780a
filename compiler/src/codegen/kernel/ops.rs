//! The operators of kernel bodies, emitted on one group of values (a scalar, or the vectors
//! of one step of a vector loop): binary operations with their integer checks, casts, and
//! math functions — `exp` on `f32` inline (the polynomial of `flow_runtime::fastmath`, so
//! the interpreter computes the same bits), the others as calls of the runtime's built-ins.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use flow_runtime::DType;

use super::{clif_type, lane_type, Gen, ERR_DIV_OVERFLOW, ERR_DIV_ZERO};
use crate::mir::ir::{BinOp, MathFn};

impl Gen<'_, '_> {
    /// One binary operation on one group; the result and its element type.
    pub(super) fn binary(&mut self, op: BinOp, x: Value, y: Value, d: DType) -> (Value, DType) {
        let float = matches!(d, DType::F32 | DType::F64);
        let unsigned = d.is_unsigned();
        let cmp = |g: &mut Self, icc: IntCC, fcc: FloatCC| {
            let v = if float {
                g.b.ins().fcmp(fcc, x, y)
            } else if unsigned {
                g.b.ins().icmp(icc.unsigned(), x, y)
            } else {
                g.b.ins().icmp(icc, x, y)
            };
            (v, DType::Bool)
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
        if unsigned {
            return (self.unsigned_binary(op, x, y, d), d);
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
            (BinOp::Atan2, true) => self.call2(d, "atan2", x, y),
            (BinOp::Add, false) => self.b.ins().iadd(x, y),
            (BinOp::Sub, false) => self.b.ins().isub(x, y),
            (BinOp::Mul, false) => self.b.ins().imul(x, y),
            (BinOp::Min, false) => self.b.ins().smin(x, y),
            (BinOp::Max, false) => self.b.ins().smax(x, y),
            (BinOp::Shl, false) => self.b.ins().ishl(x, y),
            (BinOp::Shr, false) => self.b.ins().sshr(x, y),
            (BinOp::And, false) => self.b.ins().band(x, y),
            (BinOp::Or, false) => self.b.ins().bor(x, y),
            (BinOp::BitAnd, false) => self.b.ins().band(x, y),
            (BinOp::BitOr, false) => self.b.ins().bor(x, y),
            (BinOp::BitXor, false) => self.b.ins().bxor(x, y),
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
        (v, d)
    }

    /// The arithmetic of unsigned integers (`u8`, `u32`, `u64`; scalar code only): `udiv`,
    /// `urem` (a zero divisor fails; nothing else can), `umin`/`umax` and the logical `ushr`.
    /// The operators that do not depend on signedness are the signed ones' instructions.
    fn unsigned_binary(&mut self, op: BinOp, x: Value, y: Value, d: DType) -> Value {
        let ins = self.b.ins();
        match op {
            BinOp::Add => ins.iadd(x, y),
            BinOp::Sub => ins.isub(x, y),
            BinOp::Mul => ins.imul(x, y),
            BinOp::Min => ins.umin(x, y),
            BinOp::Max => ins.umax(x, y),
            BinOp::Shl => ins.ishl(x, y),
            BinOp::Shr => ins.ushr(x, y),
            BinOp::BitAnd => ins.band(x, y),
            BinOp::BitOr => ins.bor(x, y),
            BinOp::BitXor => ins.bxor(x, y),
            BinOp::Div | BinOp::Rem => {
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                self.fail_with(zero, ERR_DIV_ZERO);
                if op == BinOp::Div {
                    self.b.ins().udiv(x, y)
                } else {
                    self.b.ins().urem(x, y)
                }
            }
            op => panic!("internal error: `{}` on {d}", op.name()),
        }
    }

    fn call2(&mut self, d: DType, name: &str, x: Value, y: Value) -> Value {
        let f = self.imports.get(name, d);
        let call = self.b.ins().call(f, &[x, y]);
        self.b.inst_results(call)[0]
    }

    pub(super) fn math(&mut self, f: MathFn, v: Value, d: DType) -> Value {
        let float = matches!(d, DType::F32 | DType::F64);
        match f {
            MathFn::Abs if float => self.b.ins().fabs(v),
            MathFn::Abs if d.is_unsigned() => v,
            MathFn::Abs => self.b.ins().iabs(v),
            MathFn::Sqrt => self.b.ins().sqrt(v),
            MathFn::Floor => self.b.ins().floor(v),
            MathFn::Ceil => self.b.ins().ceil(v),
            MathFn::Exp if d == DType::F32 => self.exp_f32(v),
            MathFn::Exp
            | MathFn::Log
            | MathFn::Sin
            | MathFn::Cos
            | MathFn::Tanh
            | MathFn::Atan
            | MathFn::Asin
            | MathFn::Acos => {
                let func = self.imports.get(f.name(), d);
                let call = self.b.ins().call(func, &[v]);
                self.b.inst_results(call)[0]
            }
        }
    }

    /// `flow_runtime::fastmath::exp_f32`, operation for operation, on a scalar or a vector.
    fn exp_f32(&mut self, x: Value) -> Value {
        use flow_runtime::fastmath::{EXP_HI, EXP_LO, EXP_MAGIC, EXP_P, LN2_HI, LN2_LO, LOG2E};
        let lanes = self.mode.lanes;
        let fconst = |g: &mut Self, c: f32| {
            let v = g.b.ins().f32const(c);
            if lanes == 1 {
                v
            } else {
                g.b.ins().splat(types::F32X4, v)
            }
        };
        let vbits = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        // `if a < b { c } else { x }` with `c` one of `a`, `b`: a select (a bit select of the
        // mask in vectors). Written as `c < x ? c : x` and `x < c ? c : x`, the forms x64
        // lowers to one `minps`/`maxps` (`minss`/`maxss`), which keep a NaN `x` as these do.
        let pick = |g: &mut Self, (a, b): (Value, Value), c: Value, x: Value| {
            let m = g.b.ins().fcmp(FloatCC::LessThan, a, b);
            if lanes == 1 {
                g.b.ins().select(m, c, x)
            } else {
                let m = g.b.ins().bitcast(types::F32X4, vbits, m);
                g.b.ins().bitselect(m, c, x)
            }
        };
        // `if x > EXP_HI { EXP_HI } else { x }`, then `if x < EXP_LO { EXP_LO } else { x }`.
        let hi = fconst(self, EXP_HI);
        let x = pick(self, (hi, x), hi, x);
        let lo = fconst(self, EXP_LO);
        let x = pick(self, (x, lo), lo, x);
        let (log2e, magic) = (fconst(self, LOG2E), fconst(self, EXP_MAGIC));
        let t = self.b.ins().fmul(x, log2e);
        let rounded = self.b.ins().fadd(t, magic);
        let fl = self.b.ins().fsub(rounded, magic);
        let (hi, lo) = (fconst(self, LN2_HI), fconst(self, LN2_LO));
        let t = self.b.ins().fmul(fl, hi);
        let r = self.b.ins().fsub(x, t);
        let t = self.b.ins().fmul(fl, lo);
        let r = self.b.ins().fsub(r, t);
        let mut p = fconst(self, EXP_P[0]);
        for c in &EXP_P[1..] {
            let k = fconst(self, *c);
            let t = self.b.ins().fmul(p, r);
            p = self.b.ins().fadd(t, k);
        }
        let r2 = self.b.ins().fmul(r, r);
        let y = self.b.ins().fmul(p, r2);
        let y = self.b.ins().fadd(y, r);
        let one = fconst(self, 1.0);
        let y = self.b.ins().fadd(y, one);
        let ity = if lanes == 1 { types::I32 } else { types::I32X4 };
        let fty = if lanes == 1 { types::F32 } else { types::F32X4 };
        let flags = if lanes == 1 {
            MemFlagsData::new()
        } else {
            vbits
        };
        let tbits = self.b.ins().bitcast(ity, flags, rounded);
        let mbits = EXP_MAGIC.to_bits() as i64;
        let n = if lanes == 1 {
            self.b.ins().iadd_imm_s(tbits, -mbits)
        } else {
            let k = self.b.ins().iconst(types::I32, mbits);
            let k = self.b.ins().splat(types::I32X4, k);
            self.b.ins().isub(tbits, k)
        };
        let n1 = self.b.ins().sshr_imm_u(n, 1);
        let n2 = self.b.ins().isub(n, n1);
        let scale = |g: &mut Self, n: Value| {
            let e = if lanes == 1 {
                g.b.ins().iadd_imm_s(n, 127)
            } else {
                let k = g.b.ins().iconst(types::I32, 127);
                let k = g.b.ins().splat(types::I32X4, k);
                g.b.ins().iadd(n, k)
            };
            let bits = g.b.ins().ishl_imm_u(e, 23);
            let flags = if lanes == 1 {
                MemFlagsData::new()
            } else {
                vbits
            };
            g.b.ins().bitcast(fty, flags, bits)
        };
        let s1 = scale(self, n1);
        let s2 = scale(self, n2);
        let y = self.b.ins().fmul(y, s1);
        self.b.ins().fmul(y, s2)
    }

    /// Rust `as` between element types (in vector code, only `i32` ↔ `f32`).
    pub(super) fn cast(&mut self, v: Value, from: DType, to: DType) -> Value {
        use DType::*;
        if from == to {
            return v;
        }
        if from.is_unsigned() || to.is_unsigned() {
            return self.cast_unsigned(v, from, to);
        }
        let ty = lane_type(to, self.mode.lanes);
        if self.mode.lanes == 2 && (from, to) == (F32, F64) {
            return self.b.ins().fvpromote_low(v);
        }
        let ins = self.b.ins();
        match (from, to) {
            (F32, F64) => ins.fpromote(types::F64, v),
            (F64, F32) => ins.fdemote(types::F32, v),
            (F32 | F64, I32 | I64) => ins.fcvt_to_sint_sat(ty, v),
            (I32 | I64, F32 | F64) => ins.fcvt_from_sint(ty, v),
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

    /// Rust `as` from or to an unsigned type (scalar code only): integers are extended by
    /// the source's signedness or truncated to their low bits, floats convert saturating
    /// (NaN and negatives to 0), and a number is `true` when it is not zero.
    fn cast_unsigned(&mut self, v: Value, from: DType, to: DType) -> Value {
        use DType::*;
        let ins = self.b.ins();
        let ty = clif_type(to);
        match (from, to) {
            (_, Bool) if from.is_int() => ins.icmp_imm_s(IntCC::NotEqual, v, 0),
            (F32 | F64, Bool) => unreachable!("only casts with an unsigned side come here"),
            (F32 | F64, U8) => {
                // Saturate in `i32`, then clamp to 0..=255 (no 8-bit float conversion).
                let w = ins.fcvt_to_sint_sat(types::I32, v);
                let lo = self.b.ins().iconst(types::I32, 0);
                let hi = self.b.ins().iconst(types::I32, 255);
                let w = self.b.ins().smax(w, lo);
                let w = self.b.ins().smin(w, hi);
                self.b.ins().ireduce(types::I8, w)
            }
            (F32 | F64, _) => ins.fcvt_to_uint_sat(ty, v),
            (U8, F32 | F64) => {
                let w = ins.uextend(types::I32, v);
                self.b.ins().fcvt_from_uint(ty, w)
            }
            (_, F32 | F64) => ins.fcvt_from_uint(ty, v),
            _ => {
                // Integer (or `bool`) to integer: by width.
                let (fb, tb) = (clif_type(from).bits(), ty.bits());
                if fb < tb && from.is_signed_int() {
                    self.b.ins().sextend(ty, v)
                } else if fb < tb {
                    self.b.ins().uextend(ty, v)
                } else if fb > tb {
                    self.b.ins().ireduce(ty, v)
                } else {
                    v
                }
            }
        }
    }
}
