//! Types, shapes and dimensions of the checked program, printed in user terms.

use std::collections::BTreeMap;
use std::fmt;

pub use flow_runtime::DType;

/// An affine dimension: `konst + Σ coeff · var` over shape variables such as `N`.
/// Terms are kept sorted by variable and never have a zero coefficient, so structural
/// equality is semantic equality.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Dim {
    pub konst: i64,
    pub terms: BTreeMap<String, i64>,
}

impl Dim {
    pub fn known(n: i64) -> Dim {
        Dim {
            konst: n,
            terms: BTreeMap::new(),
        }
    }

    pub fn var(name: impl Into<String>) -> Dim {
        let mut terms = BTreeMap::new();
        terms.insert(name.into(), 1);
        Dim { konst: 0, terms }
    }

    pub fn as_known(&self) -> Option<i64> {
        self.terms.is_empty().then_some(self.konst)
    }

    /// The variable if this dimension is exactly one variable.
    pub fn as_var(&self) -> Option<&str> {
        match (self.konst, self.terms.len()) {
            (0, 1) => self
                .terms
                .iter()
                .next()
                .filter(|t| *t.1 == 1)
                .map(|t| t.0.as_str()),
            _ => None,
        }
    }

    pub fn add(&self, other: &Dim) -> Dim {
        let mut res = self.clone();
        res.konst = res.konst.saturating_add(other.konst);
        for (v, c) in &other.terms {
            let e = res.terms.entry(v.clone()).or_insert(0);
            *e = e.saturating_add(*c);
            if *e == 0 {
                res.terms.remove(v);
            }
        }
        res
    }

    pub fn scale(&self, k: i64) -> Dim {
        if k == 0 {
            return Dim::known(0);
        }
        Dim {
            konst: self.konst.saturating_mul(k),
            terms: self
                .terms
                .iter()
                .map(|(v, c)| (v.clone(), c.saturating_mul(k)))
                .collect(),
        }
    }

    pub fn sub(&self, other: &Dim) -> Dim {
        self.add(&other.scale(-1))
    }

    /// `Some(true)` when `self >= 0` for every non-negative value of the variables,
    /// `Some(false)` when it is negative for all of them, `None` when it depends.
    pub fn nonneg(&self) -> Option<bool> {
        if self.terms.is_empty() {
            return Some(self.konst >= 0);
        }
        if self.konst >= 0 && self.terms.values().all(|c| *c > 0) {
            return Some(true);
        }
        if self.konst < 0 && self.terms.values().all(|c| *c < 0) {
            return Some(false);
        }
        None
    }

    /// Substitutes variables by dimensions.
    pub fn subst(&self, f: &dyn Fn(&str) -> Option<Dim>) -> Dim {
        let mut res = Dim::known(self.konst);
        for (v, c) in &self.terms {
            let d = f(v).unwrap_or_else(|| Dim::var(v.clone()));
            res = res.add(&d.scale(*c));
        }
        res
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.terms.keys().map(|s| s.as_str())
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (v, c) in &self.terms {
            let (sign, mag) = if *c < 0 { ("-", -c) } else { ("+", *c) };
            if first {
                if sign == "-" {
                    f.write_str("-")?;
                }
            } else {
                write!(f, " {sign} ")?;
            }
            if mag != 1 {
                write!(f, "{mag} * ")?;
            }
            // A call's instance `?N3` of a shape variable `N` is shown as `N`.
            let shown = match v.strip_prefix('?') {
                Some(rest) => rest.trim_end_matches(|c: char| c.is_ascii_digit()),
                None => v,
            };
            f.write_str(shown)?;
            first = false;
        }
        if first {
            write!(f, "{}", self.konst)
        } else if self.konst > 0 {
            write!(f, " + {}", self.konst)
        } else if self.konst < 0 {
            write!(f, " - {}", -self.konst)
        } else {
            Ok(())
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Scalar(DType),
    /// A tensor of rank one or more.
    Tensor(DType, Vec<Dim>),
    Tuple(Vec<(Option<String>, Ty)>),
    Str,
    List(Box<Ty>),
    Unit,
    /// The type of an expression that already has an error; it unifies with everything.
    Error,
}

impl Ty {
    pub fn tensor(dtype: DType, dims: Vec<Dim>) -> Ty {
        if dims.is_empty() {
            Ty::Scalar(dtype)
        } else {
            Ty::Tensor(dtype, dims)
        }
    }

    pub fn dtype(&self) -> Option<DType> {
        match self {
            Ty::Scalar(d) | Ty::Tensor(d, _) => Some(*d),
            _ => None,
        }
    }

    pub fn dims(&self) -> &[Dim] {
        match self {
            Ty::Tensor(_, dims) => dims,
            _ => &[],
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }

    pub fn is_numeric_scalar(&self) -> bool {
        matches!(self, Ty::Scalar(d) if *d != DType::Bool)
    }

    /// Applies `f` to every dimension.
    pub fn map_dims(&self, f: &dyn Fn(&Dim) -> Dim) -> Ty {
        match self {
            Ty::Tensor(d, dims) => Ty::Tensor(*d, dims.iter().map(f).collect()),
            Ty::Tuple(fs) => {
                Ty::Tuple(fs.iter().map(|(n, t)| (n.clone(), t.map_dims(f))).collect())
            }
            Ty::List(t) => Ty::List(Box::new(t.map_dims(f))),
            other => other.clone(),
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Scalar(d) => write!(f, "{d}"),
            Ty::Tensor(d, dims) => {
                write!(f, "{d}[")?;
                for (i, dim) in dims.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{dim}")?;
                }
                f.write_str("]")
            }
            Ty::Tuple(fields) => {
                f.write_str("(")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match n {
                        Some(n) => write!(f, "{n}: {t}")?,
                        None => write!(f, "{t}")?,
                    }
                }
                f.write_str(")")
            }
            Ty::Str => f.write_str("str"),
            Ty::List(t) => write!(f, "[{t}]"),
            Ty::Unit => f.write_str("()"),
            Ty::Error => f.write_str("{error}"),
        }
    }
}
