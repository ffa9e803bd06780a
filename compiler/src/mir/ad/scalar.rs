//! The chain rule for one scalar expression: given the adjoint `g` of an expression's value at
//! a point, the adjoint each of its reads receives there.
//!
//! Expressions are trees (no sharing), so one walk from the root to the leaves suffices. A
//! contribution that flows through a branch that may not be taken (an arm of a select, the
//! winning side of `max`/`min`, the sign of `abs`) is *guarded*: it is wrapped in a select on
//! the branch's condition, so it is only evaluated where the branch is taken and an arm's
//! undefined derivative (`log` of a negative number in an arm not chosen) never leaks.
//!
//! Conventions at non-differentiable points (stated in `docs/language.md`):
//! `max(a, b)` sends the adjoint to `a` where `a > b` and to `b` otherwise (ties go to the
//! second operand, so `max(x, 0.0)` has derivative 0 at 0, the usual ReLU convention);
//! `min(a, b)` to `a` where `a < b`, else `b`; `abs` has derivative 0 at 0; `floor`, `ceil`,
//! comparisons and casts to integers have derivative 0; `pow(a, b)` gives `b` no adjoint
//! where `a <= 0`.

use flow_runtime::{DType, Scalar};

use crate::mir::ir::{BinOp, MathFn, ScalarExpr, UnOp};
use crate::mir::typeck::{type_of, ExprCx};
use crate::mir::Ty;

use super::AdError;

/// The adjoint of one gather `x[c₀, …]` at a point: `contribution` goes to the table read
/// `read` at the coordinates `coords` (integer expressions of the same point).
#[derive(Clone, Debug)]
pub(super) struct GatherAdjoint {
    pub read: u32,
    pub coords: Vec<ScalarExpr>,
    pub contribution: ScalarExpr,
}

/// The adjoints the reads of an expression receive at a point: through each affine read
/// (summed per read), and through each gather (one entry per gather evaluated).
#[derive(Clone, Debug, Default)]
pub(super) struct Adjoints {
    pub reads: Vec<Option<ScalarExpr>>,
    pub gathers: Vec<GatherAdjoint>,
}

impl Adjoints {
    /// No adjoint yet, for `n` reads.
    pub(super) fn new(n: usize) -> Adjoints {
        Adjoints {
            reads: vec![None; n],
            gathers: Vec::new(),
        }
    }
}

/// What is known about the reads of the node being differentiated.
pub(super) struct Cx<'a> {
    /// The type context of the node's expressions.
    pub types: ExprCx<'a>,
    /// Whether each read depends on a differentiated argument (and is a float).
    pub active: &'a [bool],
}

/// A float constant of type `d`.
pub(super) fn fconst(d: DType, v: f64) -> ScalarExpr {
    ScalarExpr::Const(match d {
        DType::F64 => Scalar::F64(v),
        _ => Scalar::F32(v as f32),
    })
}

fn mul(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinOp::Mul, a, b)
}

fn div(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinOp::Div, a, b)
}

fn neg(a: ScalarExpr) -> ScalarExpr {
    ScalarExpr::unary(UnOp::Neg, a)
}

impl Cx<'_> {
    /// The element type of `e`, when it is a float scalar.
    fn float(&self, e: &ScalarExpr) -> Option<DType> {
        match type_of(e, &self.types) {
            Ok(Ty::Scalar(d)) if d.is_float() => Some(d),
            _ => None,
        }
    }

    /// Whether `e` depends on an active read.
    pub(super) fn is_active(&self, e: &ScalarExpr) -> bool {
        let mut found = false;
        e.rewrite(&mut |x| {
            if let ScalarExpr::Read(k) | ScalarExpr::Gather(k, _) = x {
                found |= self.active.get(*k as usize).copied().unwrap_or(false);
            }
            None
        });
        found
    }

    /// Adds to `out.reads[k]` the adjoint that read `k` receives from `e` when `e`'s adjoint
    /// is `g` (and to `out.gathers` what each gather from an active table receives),
    /// under `guards` (conditions and the polarity under which the contribution flows).
    pub(super) fn back(
        &self,
        e: &ScalarExpr,
        g: ScalarExpr,
        guards: &mut Vec<(ScalarExpr, bool)>,
        out: &mut Adjoints,
    ) -> Result<(), AdError> {
        if !self.is_active(e) {
            return Ok(());
        }
        let Some(d) = self.float(e) else {
            // Integers and booleans carry no gradient: the path through them is constant
            // almost everywhere.
            return match e {
                ScalarExpr::Tuple(_) | ScalarExpr::Field(..) => Err(AdError(
                    "a tuple-valued expression (a user monoid's state) cannot be differentiated"
                        .into(),
                )),
                _ => Ok(()),
            };
        };
        match e {
            ScalarExpr::Read(k) => {
                let term = guarded(g, guards, d);
                let slot = &mut out.reads[*k as usize];
                *slot = Some(match slot.take() {
                    None => term,
                    Some(prev) => ScalarExpr::binary(BinOp::Add, prev, term),
                });
            }
            // The table receives the adjoint at the gathered coordinates (a scatter-add,
            // `super::gather`); the integer coordinates carry no gradient.
            ScalarExpr::Gather(k, coords) => {
                if self.active.get(*k as usize).copied().unwrap_or(false) {
                    out.gathers.push(GatherAdjoint {
                        read: *k,
                        coords: coords.clone(),
                        contribution: guarded(g, guards, d),
                    });
                }
            }
            ScalarExpr::Const(_) | ScalarExpr::Index(_) | ScalarExpr::Param(_) => {}
            ScalarExpr::Unary(UnOp::Neg, a) => self.back(a, neg(g), guards, out)?,
            ScalarExpr::Unary(UnOp::Not, _) => {}
            ScalarExpr::Binary(op, a, b) => self.binary(*op, a, b, g, d, guards, out)?,
            ScalarExpr::Cast(a, _) => {
                if let Some(from) = self.float(a) {
                    let g = if from == d {
                        g
                    } else {
                        ScalarExpr::cast(g, from)
                    };
                    self.back(a, g, guards, out)?;
                }
            }
            ScalarExpr::Call(f, a) => {
                let a1 = || (**a).clone();
                let g = match f {
                    MathFn::Exp => mul(g, ScalarExpr::call(MathFn::Exp, a1())),
                    MathFn::Log => div(g, a1()),
                    MathFn::Sqrt => {
                        div(g, mul(fconst(d, 2.0), ScalarExpr::call(MathFn::Sqrt, a1())))
                    }
                    MathFn::Sin => mul(g, ScalarExpr::call(MathFn::Cos, a1())),
                    MathFn::Cos => neg(mul(g, ScalarExpr::call(MathFn::Sin, a1()))),
                    MathFn::Tanh => {
                        let t = ScalarExpr::call(MathFn::Tanh, a1());
                        mul(
                            g,
                            ScalarExpr::binary(BinOp::Sub, fconst(d, 1.0), mul(t.clone(), t)),
                        )
                    }
                    MathFn::Abs => {
                        let pos = ScalarExpr::binary(BinOp::Gt, a1(), fconst(d, 0.0));
                        let negv = ScalarExpr::binary(BinOp::Lt, a1(), fconst(d, 0.0));
                        guards.push((pos, true));
                        self.back(a, g.clone(), guards, out)?;
                        guards.pop();
                        guards.push((negv, true));
                        self.back(a, neg(g), guards, out)?;
                        guards.pop();
                        return Ok(());
                    }
                    // atan' = 1 / (1 + x²); asin' = 1 / √(1 - x²); acos' = -asin'.
                    MathFn::Atan => div(
                        g,
                        ScalarExpr::binary(BinOp::Add, fconst(d, 1.0), mul(a1(), a1())),
                    ),
                    MathFn::Asin | MathFn::Acos => {
                        let root = ScalarExpr::call(
                            MathFn::Sqrt,
                            ScalarExpr::binary(BinOp::Sub, fconst(d, 1.0), mul(a1(), a1())),
                        );
                        let q = div(g, root);
                        if *f == MathFn::Acos {
                            neg(q)
                        } else {
                            q
                        }
                    }
                    MathFn::Floor | MathFn::Ceil => return Ok(()),
                };
                self.back(a, g, guards, out)?;
            }
            ScalarExpr::Select(c, a, b) => {
                guards.push(((**c).clone(), true));
                self.back(a, g.clone(), guards, out)?;
                guards.pop();
                guards.push(((**c).clone(), false));
                self.back(b, g, guards, out)?;
                guards.pop();
            }
            ScalarExpr::Tuple(_) | ScalarExpr::Field(..) => {
                return Err(AdError(
                    "a tuple-valued expression (a user monoid's state) cannot be differentiated"
                        .into(),
                ))
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &self,
        op: BinOp,
        a: &ScalarExpr,
        b: &ScalarExpr,
        g: ScalarExpr,
        d: DType,
        guards: &mut Vec<(ScalarExpr, bool)>,
        out: &mut Adjoints,
    ) -> Result<(), AdError> {
        let (a1, b1) = (a.clone(), b.clone());
        match op {
            BinOp::Add => {
                self.back(a, g.clone(), guards, out)?;
                self.back(b, g, guards, out)?;
            }
            BinOp::Sub => {
                self.back(a, g.clone(), guards, out)?;
                self.back(b, neg(g), guards, out)?;
            }
            BinOp::Mul => {
                if self.is_active(a) {
                    self.back(a, mul(g.clone(), b1), guards, out)?;
                }
                self.back(b, mul(g, a1), guards, out)?;
            }
            BinOp::Div => {
                if self.is_active(a) {
                    self.back(a, div(g.clone(), b1.clone()), guards, out)?;
                }
                if self.is_active(b) {
                    // d(a / b)/db = -a / b²
                    let gb = neg(div(mul(g, a1), mul(b1.clone(), b1)));
                    self.back(b, gb, guards, out)?;
                }
            }
            BinOp::Rem => {
                // a % b = a - b·trunc(a / b), and trunc(a / b) = (a - a % b) / b.
                self.back(a, g.clone(), guards, out)?;
                if self.is_active(b) {
                    let q = div(
                        ScalarExpr::binary(
                            BinOp::Sub,
                            a1.clone(),
                            ScalarExpr::binary(BinOp::Rem, a1, b1.clone()),
                        ),
                        b1,
                    );
                    self.back(b, neg(mul(g, q)), guards, out)?;
                }
            }
            BinOp::Max | BinOp::Min => {
                let cmp = if op == BinOp::Max {
                    BinOp::Gt
                } else {
                    BinOp::Lt
                };
                let wins = ScalarExpr::binary(cmp, a1, b1);
                guards.push((wins.clone(), true));
                self.back(a, g.clone(), guards, out)?;
                guards.pop();
                guards.push((wins, false));
                self.back(b, g, guards, out)?;
                guards.pop();
            }
            BinOp::Pow => {
                let pow = |x: ScalarExpr, y: ScalarExpr| ScalarExpr::binary(BinOp::Pow, x, y);
                if self.is_active(a) {
                    let e1 = ScalarExpr::binary(BinOp::Sub, b1.clone(), fconst(d, 1.0));
                    let ga = mul(g.clone(), mul(b1.clone(), pow(a1.clone(), e1)));
                    self.back(a, ga, guards, out)?;
                }
                if self.is_active(b) {
                    let gb = mul(
                        g,
                        mul(
                            ScalarExpr::call(MathFn::Log, a1.clone()),
                            pow(a1.clone(), b1),
                        ),
                    );
                    guards.push((ScalarExpr::binary(BinOp::Gt, a1, fconst(d, 0.0)), true));
                    self.back(b, gb, guards, out)?;
                    guards.pop();
                }
            }
            BinOp::Atan2 => {
                // atan2(a, b): d/da = b / (a² + b²), d/db = -a / (a² + b²).
                let r2 = ScalarExpr::binary(
                    BinOp::Add,
                    mul(a1.clone(), a1.clone()),
                    mul(b1.clone(), b1.clone()),
                );
                if self.is_active(a) {
                    self.back(a, div(mul(g.clone(), b1), r2.clone()), guards, out)?;
                }
                if self.is_active(b) {
                    self.back(b, neg(div(mul(g, a1), r2)), guards, out)?;
                }
            }
            // Comparisons, logic and shifts yield booleans or integers: no gradient.
            _ => {}
        }
        Ok(())
    }
}

/// `term` where every guard holds (with its polarity), else zero.
fn guarded(term: ScalarExpr, guards: &[(ScalarExpr, bool)], d: DType) -> ScalarExpr {
    guards.iter().rev().fold(term, |t, (c, pol)| {
        if *pol {
            ScalarExpr::select(c.clone(), t, fconst(d, 0.0))
        } else {
            ScalarExpr::select(c.clone(), fconst(d, 0.0), t)
        }
    })
}
