//! Scalar expression emission for a kernel: one MIR `ScalarExpr` at the current point to
//! Cranelift values, one per lane group ([`Gen::expr`]), with `select` as a branch that
//! evaluates only the taken arm and integer division checked for zero and overflow
//! ([`Gen::fail_with`]). The loop nest and the address streams that feed it are in `mod.rs`.

use cranelift_codegen::ir::{types, BlockArg, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use flow_runtime::{DType, Scalar};

use super::{clif_type, flat_types, lane_type, rebuild, shape_of, CVal, Gen};
use crate::mir::ir::{BinOp, ScalarExpr, UnOp};

impl Gen<'_, '_> {
    /// Applies `f` to each group's value.
    pub(super) fn each(
        &mut self,
        xs: &[Value],
        f: impl Fn(&mut FunctionBuilder<'_>, Value) -> Value,
    ) -> Vec<Value> {
        xs.iter().map(|x| f(self.b, *x)).collect()
    }

    /// Applies `f` to each group's pair of values.
    pub(super) fn each2(
        &mut self,
        xs: &[Value],
        ys: &[Value],
        f: impl Fn(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) -> Vec<Value> {
        xs.iter().zip(ys).map(|(x, y)| f(self.b, *x, *y)).collect()
    }

    /// Generates `e`; `params` are the values of `Param(k)`.
    pub(super) fn expr(&mut self, e: &ScalarExpr, params: &[CVal]) -> CVal {
        let vector = self.mode.lanes > 1;
        match e {
            ScalarExpr::Const(s) => self.constant(*s),
            ScalarExpr::Index(v) => CVal::S(vec![self.idx[*v as usize]], DType::I64),
            ScalarExpr::Read(k) => self.read(*k as usize),
            ScalarExpr::Gather(k, coords) => {
                let at: Vec<Value> = coords
                    .iter()
                    .map(|c| self.expr(c, params).one().0)
                    .collect();
                self.gather(*k as usize, &at)
            }
            ScalarExpr::Param(k) => params[*k as usize].clone(),
            ScalarExpr::Tuple(xs) => CVal::T(xs.iter().map(|x| self.expr(x, params)).collect()),
            ScalarExpr::Field(x, k) => match self.expr(x, params) {
                CVal::T(mut xs) => xs.swap_remove(*k as usize),
                s => s,
            },
            ScalarExpr::Unary(op, a) => {
                let (v, d) = self.expr(a, params).s();
                let r = match (op, d) {
                    (UnOp::Neg, DType::F32 | DType::F64) => self.each(&v, |b, x| b.ins().fneg(x)),
                    (UnOp::Neg, _) => self.each(&v, |b, x| b.ins().ineg(x)),
                    // A scalar `bool` is a byte holding 0 or 1; a vector mask is all ones or
                    // all zeros; an integer's `!` is its complement.
                    (UnOp::Not, DType::Bool) if !vector => {
                        self.each(&v, |b, x| b.ins().bxor_imm_s(x, 1))
                    }
                    (UnOp::Not, _) => self.each(&v, |b, x| b.ins().bnot(x)),
                };
                CVal::S(r, d)
            }
            ScalarExpr::Cast(a, to) => {
                let (v, from) = self.expr(a, params).s();
                let r = v.iter().map(|x| self.cast(*x, from, *to)).collect();
                CVal::S(r, *to)
            }
            ScalarExpr::Call(f, a) => {
                let (v, d) = self.expr(a, params).s();
                let r = v.iter().map(|x| self.math(*f, *x, d)).collect();
                CVal::S(r, d)
            }
            ScalarExpr::Select(c, a, b) if vector => {
                let (cv, _) = self.expr(c, params).s();
                let (av, d) = self.expr(a, params).s();
                let (bv, _) = self.expr(b, params).s();
                let ty = lane_type(d, self.mode.lanes);
                let lanes =
                    MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
                let r = (0..cv.len())
                    .map(|u| {
                        // The mask, reinterpreted as the selected values' type.
                        let c = if matches!(d, DType::F32 | DType::F64) {
                            self.b.ins().bitcast(ty, lanes, cv[u])
                        } else {
                            cv[u]
                        };
                        self.b.ins().bitselect(c, av[u], bv[u])
                    })
                    .collect();
                CVal::S(r, d)
            }
            ScalarExpr::Select(c, a, b) => {
                let (cv, _) = self.expr(c, params).one();
                self.branch(cv, |g| g.expr(a, params), |g| g.expr(b, params))
            }
            ScalarExpr::Binary(op @ (BinOp::And | BinOp::Or), a, b) if vector => {
                let (x, d) = self.expr(a, params).s();
                let (y, _) = self.expr(b, params).s();
                let r = if *op == BinOp::And {
                    self.each2(&x, &y, |b, x, y| b.ins().band(x, y))
                } else {
                    self.each2(&x, &y, |b, x, y| b.ins().bor(x, y))
                };
                CVal::S(r, d)
            }
            ScalarExpr::Binary(BinOp::And, a, b) => {
                let (x, _) = self.expr(a, params).one();
                let f = |g: &mut Self| g.constant(Scalar::Bool(false));
                self.branch(x, |g| g.expr(b, params), f)
            }
            ScalarExpr::Binary(BinOp::Or, a, b) => {
                let (x, _) = self.expr(a, params).one();
                let t = |g: &mut Self| g.constant(Scalar::Bool(true));
                self.branch(x, t, |g| g.expr(b, params))
            }
            ScalarExpr::Binary(op, a, b) => {
                let (x, d) = self.expr(a, params).s();
                let (y, _) = self.expr(b, params).s();
                let mut out = Vec::with_capacity(x.len());
                let mut rd = d;
                for (x, y) in x.into_iter().zip(y) {
                    let (v, t) = self.binary(*op, x, y, d);
                    out.push(v);
                    rd = t;
                }
                CVal::S(out, rd)
            }
        }
    }

    /// `if c { then } else { els }`, evaluating only the taken arm (scalar code only).
    pub(super) fn branch(
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
        let jump = |g: &mut Self, v: CVal| {
            let mut flat = Vec::new();
            v.flatten(&mut flat);
            let args: Vec<BlockArg> = flat.iter().map(|(v, _)| BlockArg::Value(v[0])).collect();
            g.b.ins().jump(join, &args);
        };
        jump(self, tv);
        self.b.switch_to_block(eb);
        self.b.seal_block(eb);
        let ev = els(self);
        jump(self, ev);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
        rebuild(&shape, &mut params.into_iter())
    }

    pub(super) fn fail_with(&mut self, cond: Value, code: i64) {
        let ok = self.b.create_block();
        let code = self.b.ins().iconst(types::I32, code);
        self.b
            .ins()
            .brif(cond, self.fail, &[BlockArg::Value(code)], ok, &[]);
        self.b.switch_to_block(ok);
        self.b.seal_block(ok);
    }
}
