//! Coordinator values: a [`Value`] is a scalar, a string, a tuple, a computed tensor or a
//! [`Lazy`] handle on a port of the pending graph. Here are the conversions between values
//! and the lowering's graph values (`TVal`), forcing a lazy value (dispatching it), and how
//! `print` shows a value.

use std::rc::Rc;

use flow_runtime::{format_scalar, format_tensor, Scalar, Tensor};

use super::{bug, Machine, RResult};
use crate::base::Span;
use crate::mir::ir::Port;
use crate::mir::lower::TVal;

/// A coordinator value.
#[derive(Clone, Debug)]
pub enum Value {
    Scalar(Scalar),
    Tensor(Rc<Tensor>),
    /// Not computed yet: a port of the pending graph.
    Lazy(Lazy),
    Tuple(Vec<Value>),
    Str(String),
    List(Vec<Value>),
    Unit,
}

/// A handle on a value of the pending graph. While a handle to a port is alive, its computed
/// tensor is kept; once none is, the tensor may be dropped (and recomputed, by idempotence, if
/// a pending node still needs it).
#[derive(Clone, Debug)]
pub struct Lazy {
    pub port: Port,
    /// Held, never read: its strong count is the liveness of the port.
    #[allow(dead_code)]
    token: Rc<()>,
}

impl<'p, 'h> Machine<'p, 'h> {
    /// The graph value of a coordinator value.
    pub(super) fn tval(&mut self, v: &Value, span: Span) -> RResult<TVal> {
        Ok(match v {
            Value::Scalar(s) => TVal::Port(self.lower.scalar(*s)),
            Value::Lazy(l) => TVal::Port(l.port),
            Value::Tensor(t) => {
                let key = Rc::as_ptr(t);
                if let Some((_, p)) = self.entered.get(&key) {
                    TVal::Port(*p)
                } else {
                    let p = self.lower.constant((**t).clone());
                    self.done.insert(p, t.clone());
                    self.entered.insert(key, (t.clone(), p));
                    TVal::Port(p)
                }
            }
            Value::Tuple(vs) => TVal::Tuple(
                vs.iter()
                    .map(|x| self.tval(x, span))
                    .collect::<RResult<_>>()?,
            ),
            other => return bug(span, format!("{other:?} cannot enter an operation")),
        })
    }

    /// A handle on port `p`, sharing the token of a live handle when there is one.
    pub(super) fn handle(&mut self, p: Port) -> Value {
        let token = match self.tokens.get(&p).and_then(std::rc::Weak::upgrade) {
            Some(t) => t,
            None => {
                let t = Rc::new(());
                self.tokens.insert(p, Rc::downgrade(&t));
                t
            }
        };
        Value::Lazy(Lazy { port: p, token })
    }

    pub(super) fn value_of_tval(&mut self, t: TVal) -> Value {
        match t {
            TVal::Port(p) => self.handle(p),
            TVal::Tuple(vs) => {
                Value::Tuple(vs.into_iter().map(|v| self.value_of_tval(v)).collect())
            }
        }
    }

    /// Computes a value: dispatches every lazy part of it.
    pub(super) fn force(&mut self, v: Value, span: Span) -> RResult<Value> {
        Ok(match v {
            Value::Lazy(l) => {
                let t = self.dispatch(l.port, span)?;
                let t = self.observed(t);
                if t.shape.is_empty() {
                    Value::Scalar(t.get(0))
                } else {
                    Value::Tensor(t)
                }
            }
            // A tuple (a tensor of tuples is one tensor per field) is observed as one value:
            // its pending fields are noted as bound, so the first field's dispatch computes
            // them all in one graph (one dispatch per operation, not one per field; the
            // fields of `scatter(p, idx, v)` read `idx` once and fuse together).
            Value::Tuple(vs) => Value::Tuple({
                vs.iter().for_each(|x| self.note_bound(x));
                vs.into_iter()
                    .map(|x| self.force(x, span))
                    .collect::<RResult<_>>()?
            }),
            other => other,
        })
    }

    pub(super) fn shape_of(&self, v: &Value) -> Option<Vec<usize>> {
        match v {
            Value::Tensor(t) => Some(t.shape.clone()),
            Value::Lazy(l) => Some(self.lower.ty(l.port).shape.clone()),
            Value::Scalar(_) => Some(Vec::new()),
            _ => None,
        }
    }
}

/// How `print` and string interpolation write a (forced) value.
pub fn show(v: &Value) -> String {
    match v {
        Value::Scalar(s) => format_scalar(s),
        Value::Tensor(t) => format_tensor(t),
        Value::Lazy(l) => format!("<lazy {}>", l.port),
        Value::Tuple(vs) => format!("({})", vs.iter().map(show).collect::<Vec<_>>().join(", ")),
        Value::Str(s) => s.clone(),
        Value::List(vs) => format!(
            "[{}]",
            vs.iter()
                .map(|v| match v {
                    Value::Str(s) => format!("{s:?}"),
                    other => show(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Unit => "()".into(),
    }
}
