//! Whether and how a node's innermost free dimension runs in 128-bit vectors: every value
//! of the body must have a SIMD form of one lane width, and every address stream must be
//! contiguous along that dimension (or not use it). See [`vector_plan`].

use flow_runtime::DType;

use super::Mode;
use crate::mir::ir::{BinOp, Edge, Graph, MathFn, Node, NodeKind, Read, ScalarExpr, UnOp};
use crate::mir::monoid::explicit;

/// Element sizes and vector forms: the lane count of the vector plan, if every value of the
/// node has a SIMD form of one lane width.
struct VecCheck<'a> {
    read_types: &'a [DType],
    /// Whether four-byte and eight-byte values were seen.
    four: bool,
    eight: bool,
    /// Whether a boolean value was seen (masks have one width, so mixed widths exclude them).
    bools: bool,
}

/// The type of an expression for [`VecCheck`]: a scalar type or a tuple.
#[derive(Clone, Debug)]
enum VT {
    S(DType),
    T(Vec<VT>),
}

impl VecCheck<'_> {
    /// Notes a value of type `d`; unsigned integers have no vector form (their kernels run
    /// in scalar code).
    fn note(&mut self, d: DType) -> Option<DType> {
        if d.is_unsigned() {
            return None;
        }
        match d.size_bytes() {
            _ if d == DType::Bool => self.bools = true,
            4 => self.four = true,
            _ => self.eight = true,
        }
        Some(d)
    }

    /// The lane count: 4 for four-byte values, 2 for eight-byte ones, and 2 for a mix without
    /// booleans (four-byte values then fill the low two lanes and are widened by casts).
    fn lanes(&self) -> Option<u32> {
        match (self.four, self.eight) {
            (true, true) if self.bools => None,
            (_, true) => Some(2),
            (true, false) => Some(4),
            (false, false) => None,
        }
    }

    fn scalar(&mut self, e: &ScalarExpr, params: &[VT]) -> Option<DType> {
        match self.ty(e, params)? {
            VT::S(d) => Some(d),
            VT::T(_) => None,
        }
    }

    /// The type of `e` when it has a vector form.
    fn ty(&mut self, e: &ScalarExpr, params: &[VT]) -> Option<VT> {
        use DType::*;
        let t = match e {
            ScalarExpr::Const(s) => VT::S(self.note(s.dtype())?),
            ScalarExpr::Index(_) | ScalarExpr::Gather(..) => return None,
            ScalarExpr::Read(k) => VT::S(self.note(self.read_types[*k as usize])?),
            ScalarExpr::Param(k) => params.get(*k as usize)?.clone(),
            ScalarExpr::Tuple(xs) => VT::T(
                xs.iter()
                    .map(|x| self.ty(x, params))
                    .collect::<Option<_>>()?,
            ),
            ScalarExpr::Field(x, k) => match self.ty(x, params)? {
                VT::T(mut xs) if (*k as usize) < xs.len() => xs.swap_remove(*k as usize),
                VT::T(_) => return None,
                s => s,
            },
            ScalarExpr::Unary(op, a) => {
                let d = self.scalar(a, params)?;
                match (op, d) {
                    (UnOp::Neg, F32 | F64 | I32) | (UnOp::Not, Bool | I32) => VT::S(d),
                    _ => return None,
                }
            }
            ScalarExpr::Cast(a, to) => {
                let from = self.scalar(a, params)?;
                match (from, *to) {
                    (x, y) if x == y => VT::S(x),
                    (I32, F32) | (F32, I32) | (F32, F64) => VT::S(self.note(*to)?),
                    _ => return None,
                }
            }
            ScalarExpr::Call(f, a) => {
                let d = self.scalar(a, params)?;
                match (f, d) {
                    (MathFn::Abs, F32 | F64 | I32)
                    | (MathFn::Exp, F32)
                    | (MathFn::Sqrt | MathFn::Floor | MathFn::Ceil, F32 | F64) => VT::S(d),
                    _ => return None,
                }
            }
            ScalarExpr::Select(c, a, b) => {
                if self.scalar(c, params)? != Bool {
                    return None;
                }
                let (x, y) = (self.scalar(a, params)?, self.scalar(b, params)?);
                if x != y {
                    return None;
                }
                VT::S(x)
            }
            ScalarExpr::Binary(op, a, b) => {
                let d = self.scalar(a, params)?;
                if self.scalar(b, params)? != d {
                    return None;
                }
                let float = matches!(d, F32 | F64);
                match op {
                    // A comparison's mask has its operands' lane width: noted as a boolean,
                    // so that masks never meet values of another width (see `lanes`).
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                        if float || d == I32 =>
                    {
                        VT::S(self.note(Bool)?)
                    }
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Min | BinOp::Max
                        if float || d == I32 =>
                    {
                        VT::S(d)
                    }
                    BinOp::Div if float => VT::S(d),
                    BinOp::And | BinOp::Or if d == Bool || d == I32 => VT::S(d),
                    BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor if d == I32 => VT::S(d),
                    _ => return None,
                }
            }
        };
        Some(t)
    }
}

/// How a strict read's offset moves with index variable `v`.
pub(super) fn coef_kind(r: &Read, v: u32) -> (bool, bool) {
    // (used at all, only as the last coordinate with coefficient 1)
    let mut used = false;
    let mut unit = true;
    let last = r.proj.len().wrapping_sub(1);
    for (d, a) in r.proj.iter().enumerate() {
        for (w, c) in &a.coeffs {
            if *w == v && *c != 0 {
                used = true;
                if d != last || *c != 1 {
                    unit = false;
                }
            }
        }
    }
    (used, used && unit)
}

/// The vector plan of a kernel, if it has one: the innermost free dimension must be contiguous
/// in (or unused by) every read, every read strict, and every value of a SIMD-able type.
pub(super) fn vector_plan(g: &Graph, node: &Node) -> Option<Mode> {
    let (space, reads) = match &node.kind {
        NodeKind::Map { space, reads, .. } | NodeKind::Reduce { space, reads, .. } => {
            (space, reads)
        }
        _ => return None,
    };
    let v = space.len().checked_sub(1)? as u32;
    let read_types: Vec<DType> = reads
        .iter()
        .map(|r| g.nodes[r.node].outputs[r.port as usize].dtype)
        .collect();
    for (r, d) in reads.iter().zip(&read_types) {
        let (used, unit) = coef_kind(r, v);
        if r.edge != Edge::Strict || (used && !unit) || *d == DType::Bool {
            return None;
        }
    }
    let mut c = VecCheck {
        read_types: &read_types,
        four: false,
        eight: false,
        bools: false,
    };
    for t in &node.outputs {
        if t.dtype == DType::Bool {
            return None;
        }
        c.note(t.dtype)?;
    }
    let groups = match &node.kind {
        NodeKind::Map { body, .. } => {
            for e in body {
                c.scalar(e, &[])?;
            }
            2
        }
        NodeKind::Reduce { monoid, args, .. } => {
            let m = explicit(g, *monoid, node.outputs[0].dtype)?;
            let arg_types = args
                .iter()
                .map(|a| c.ty(a, &[]))
                .collect::<Option<Vec<VT>>>()?;
            let state = |ds: &[DType]| {
                if ds.len() == 1 {
                    VT::S(ds[0])
                } else {
                    VT::T(ds.iter().map(|d| VT::S(*d)).collect())
                }
            };
            for d in &m.state {
                if *d == DType::Bool {
                    return None;
                }
                c.note(*d)?;
            }
            let st = state(&m.state);
            c.ty(&m.wrap, &arg_types)?;
            c.ty(&m.combine, &[st.clone(), st.clone()])?;
            if let Some(u) = &m.unwrap {
                c.ty(&u.body, &[st])?;
            }
            4
        }
        _ => return None,
    };
    Some(Mode {
        lanes: c.lanes()?,
        groups,
    })
}
