//! Monoids made explicit for rewriting: a built-in monoid as state, zero, wrap and combine
//! expressions like a user monoid, and the product of two monoids.

use flow_runtime::{DType, Scalar};

use crate::base::ops::{builtin_combine, builtin_identity};
use crate::mir::ir::{Graph, Monoid, MonoidRef, ScalarExpr, Unwrap, Wrap};

/// A monoid with every part spelled out.
#[derive(Clone, Debug)]
pub struct Explicit {
    pub name: String,
    pub state: Vec<DType>,
    pub names: Vec<Option<String>>,
    pub zero: Vec<Scalar>,
    /// The wrap's parameter types; the wrap yields a state value.
    pub params: Vec<DType>,
    pub wrap: ScalarExpr,
    /// Combines `Param(0)` and `Param(1)`, two state values.
    pub combine: ScalarExpr,
    pub unwrap: Option<Unwrap>,
    pub commutative: bool,
}

/// The explicit form of `m`; `dtype` is the element type of a built-in monoid's argument.
/// `None` for a user monoid without a wrap and with a tuple state (its input is a tuple).
pub fn explicit(g: &Graph, m: MonoidRef, dtype: DType) -> Option<Explicit> {
    match m {
        MonoidRef::Builtin(b) => Some(Explicit {
            name: b.name().to_string(),
            state: vec![dtype],
            names: vec![None],
            zero: vec![builtin_identity(b, dtype)?],
            params: vec![dtype],
            wrap: ScalarExpr::Param(0),
            combine: ScalarExpr::binary(
                builtin_combine(b),
                ScalarExpr::Param(0),
                ScalarExpr::Param(1),
            ),
            unwrap: None,
            commutative: true,
        }),
        MonoidRef::User(id) => {
            let u = &g.monoids[id];
            let (params, wrap) = match &u.wrap {
                Some(w) => (w.params.clone(), w.body.clone()),
                None if u.state.len() == 1 => (u.state.clone(), ScalarExpr::Param(0)),
                None => return None,
            };
            Some(Explicit {
                name: u.name.clone(),
                state: u.state.clone(),
                names: u.field_names.clone(),
                zero: u.zero.clone(),
                params,
                wrap,
                combine: u.combine.clone(),
                unwrap: u.unwrap.clone(),
                commutative: u.commutative,
            })
        }
    }
}

/// The fields of a state value `v` with `n` fields, as separate expressions.
pub fn fields(v: &ScalarExpr, n: usize) -> Vec<ScalarExpr> {
    if n == 1 {
        vec![v.clone()]
    } else {
        (0..n as u32)
            .map(|k| ScalarExpr::field(v.clone(), k))
            .collect()
    }
}

/// A state value made of the fields `off..off + n` of tuple `t`.
pub fn sub_state(t: &ScalarExpr, off: usize, n: usize) -> ScalarExpr {
    if n == 1 {
        ScalarExpr::field(t.clone(), off as u32)
    } else {
        ScalarExpr::Tuple(
            (off..off + n)
                .map(|k| ScalarExpr::field(t.clone(), k as u32))
                .collect(),
        )
    }
}

/// `e` with `Param(0)` and `Param(1)` replaced.
pub fn apply2(e: &ScalarExpr, a: &ScalarExpr, b: &ScalarExpr) -> ScalarExpr {
    e.rewrite(&mut |x| match x {
        ScalarExpr::Param(0) => Some(a.clone()),
        ScalarExpr::Param(1) => Some(b.clone()),
        _ => None,
    })
}

/// The output ports of a monoid's reduction, as expressions of its final state `s`.
pub fn outputs_of(m: &Explicit, s: &ScalarExpr) -> Vec<ScalarExpr> {
    match &m.unwrap {
        Some(u) => fields(&apply2(&u.body, s, s), u.ports.len()),
        None => fields(s, m.state.len()),
    }
}

/// The product of monoids `x` and `y`: state, inputs and outputs are `x`'s followed by `y`'s.
pub fn product(x: &Explicit, y: &Explicit) -> Monoid {
    let (nx, ny) = (x.state.len(), y.state.len());
    let px = x.params.len() as u32;
    let wrap_y = y.wrap.rewrite(&mut |e| match e {
        ScalarExpr::Param(k) => Some(ScalarExpr::Param(k + px)),
        _ => None,
    });
    let mut wrap_fields = fields(&x.wrap, nx);
    wrap_fields.extend(fields(&wrap_y, ny));
    let (a, b) = (ScalarExpr::Param(0), ScalarExpr::Param(1));
    let cx = apply2(&x.combine, &sub_state(&a, 0, nx), &sub_state(&b, 0, nx));
    let cy = apply2(&y.combine, &sub_state(&a, nx, ny), &sub_state(&b, nx, ny));
    let mut comb = fields(&cx, nx);
    comb.extend(fields(&cy, ny));
    let unwrap = if x.unwrap.is_none() && y.unwrap.is_none() {
        None
    } else {
        let mut body = outputs_of(x, &sub_state(&a, 0, nx));
        body.extend(outputs_of(y, &sub_state(&a, nx, ny)));
        let ports_of = |m: &Explicit| {
            m.unwrap
                .as_ref()
                .map(|u| u.ports.clone())
                .unwrap_or_else(|| m.state.clone())
        };
        let mut ports = ports_of(x);
        ports.extend(ports_of(y));
        Some(Unwrap {
            ports,
            body: ScalarExpr::Tuple(body),
        })
    };
    let mut params = x.params.clone();
    params.extend(y.params.iter().copied());
    Monoid {
        name: format!("{}*{}", x.name, y.name),
        state: x.state.iter().chain(&y.state).copied().collect(),
        field_names: x.names.iter().chain(&y.names).cloned().collect(),
        zero: x.zero.iter().chain(&y.zero).copied().collect(),
        wrap: Some(Wrap {
            params,
            body: ScalarExpr::Tuple(wrap_fields),
        }),
        combine: ScalarExpr::Tuple(comb),
        unwrap,
        commutative: x.commutative && y.commutative,
        // Products are made by the passes, after differentiation.
        d_combine: None,
    }
}
