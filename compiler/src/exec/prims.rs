//! The built-ins the coordinator computes on the runtime's parallel primitives
//! (`flow_runtime::prims`): `filter`, `partition`, `sort` and `sort_by_key`. Each is its own
//! observation: its arguments are dispatched, the routine runs on the worker pool, and its
//! result is a computed tensor that later graphs read like any other (the length of a
//! `filter` becomes a shape the coordinator knows). `filter`, `partition` and the values of
//! `sort_by_key` may be tensors of tuples: every field follows the one compaction or
//! permutation. Both backends share this code, so they
//! agree by construction; the routines' results never depend on the thread count.

use std::rc::Rc;

use flow_runtime::pool::{Pool, TaskError};
use flow_runtime::prims::{compact, sort};
use flow_runtime::tensor::Data;
use flow_runtime::{Scalar, Tensor};

use super::scans::output;
use super::{bug, fail, Frame, Machine, RResult, Value};
use crate::base::Span;
use crate::hir::{self, Builtin};

/// `$body` for the vector `$x` of every element type, giving data of the same type.
macro_rules! per_type {
    ($data:expr, $x:ident => $body:expr) => {
        match $data {
            Data::F32($x) => Data::F32($body),
            Data::F64($x) => Data::F64($body),
            Data::I32($x) => Data::I32($body),
            Data::I64($x) => Data::I64($body),
            Data::Bool($x) => Data::Bool($body),
            Data::U8($x) => Data::U8($body),
            Data::U32($x) => Data::U32($body),
            Data::U64($x) => Data::U64($body),
        }
    };
}

/// `$body` for the vector `$x` of every sortable (numeric) element type; `$bool` for `bool`.
macro_rules! per_key_type {
    ($data:expr, $x:ident => $body:expr, $bool:expr) => {
        match $data {
            Data::F32($x) => $body,
            Data::F64($x) => $body,
            Data::I32($x) => $body,
            Data::I64($x) => $body,
            Data::U8($x) => $body,
            Data::U32($x) => $body,
            Data::U64($x) => $body,
            Data::Bool(_) => $bool,
        }
    };
}

impl<'p, 'h> Machine<'p, 'h> {
    pub(super) fn prim(
        &mut self,
        frame: &mut Frame<'p>,
        b: Builtin,
        args: &'p [hir::Expr],
        e: &'p hir::Expr,
    ) -> RResult<Value> {
        let span = e.span;
        // Every argument's tensors: one, or one per field of a tensor of tuples (`tupled`).
        let mut ts = Vec::new();
        let mut tupled = Vec::new();
        for a in args {
            let v = self.eval(frame, a)?;
            let v = self.force(v, a.span)?;
            tupled.push(matches!(v, Value::Tuple(_)));
            let fields = match v {
                Value::Tuple(vs) => vs,
                v => vec![v],
            };
            let mut tensors = Vec::new();
            for f in fields {
                match self.force(f, a.span)? {
                    Value::Tensor(t) => tensors.push(t),
                    _ => {
                        return bug(
                            a.span,
                            format!("`{}` of a value that is not a tensor", b.name()),
                        )
                    }
                }
            }
            ts.push(tensors);
        }
        let n = ts[0].first().map_or(0, |t| t.len());
        if ts
            .iter()
            .flatten()
            .any(|t| t.shape.len() != 1 || t.len() != n)
        {
            return bug(
                span,
                format!("`{}` of tensors that are not 1-D of one length", b.name()),
            );
        }
        // The buffer of an earlier result the program has dropped, if any, for this one (fresh
        // memory costs a page fault per 4 KiB: a filter of 2^25 elements is 2x slower on it).
        let mut spare = if matches!(b, Builtin::Filter | Builtin::Partition | Builtin::Sort) {
            self.spare_buffer()
        } else {
            None
        };
        let pool = self.prims_pool(span)?;
        let failed = |x: TaskError| {
            fail::<Value>(
                span,
                format!("`{}` failed in task {}: {}", b.name(), x.task, x.kind),
            )
        };
        let vector = |data: Data| {
            let n = data.len();
            Tensor::new(vec![n], data).map(|t| Value::Tensor(Rc::new(t)))
        };
        // The result's fields as a tensor, or as a tensor of tuples when `tupled`.
        let tensors = |fields: Vec<Data>, tupled: bool| {
            let mut vs = fields
                .into_iter()
                .map(vector)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match vs.len() {
                1 if !tupled => vs.remove(0),
                _ => Value::Tuple(vs),
            })
        };
        let out = match b {
            Builtin::Filter | Builtin::Partition => {
                let Data::Bool(mask) = &ts[1][0].data else {
                    return bug(span, "a mask that is not `bool`");
                };
                let c = match compact::Compaction::new(pool, mask) {
                    Ok(c) => c,
                    Err(x) => return failed(x),
                };
                let len = if b == Builtin::Filter {
                    c.kept()
                } else {
                    mask.len()
                };
                // The fields of a tensor of tuples share the one compaction.
                let mut fields = Vec::new();
                for t in &ts[0] {
                    let result: Result<(), TaskError>;
                    let data = per_type!(&t.data, x => {
                        let mut out = output(spare.take(), len, Default::default());
                        result = if b == Builtin::Filter {
                            c.filter(pool, x, &mut out)
                        } else {
                            c.partition(pool, x, &mut out)
                        };
                        out
                    });
                    if let Err(x) = result {
                        return failed(x);
                    }
                    fields.push(data);
                }
                let items = tensors(fields, tupled[0]);
                if b == Builtin::Filter {
                    items
                } else {
                    items
                        .map(|t| Value::Tuple(vec![t, Value::Scalar(Scalar::I64(c.kept() as i64))]))
                }
            }
            Builtin::Sort => {
                let mut data = per_type!(&ts[0][0].data, x => {
                    let mut out = output(spare.take(), x.len(), Default::default());
                    out.copy_from_slice(x);
                    out
                });
                let result = per_key_type!(&mut data, x => sort::sort(pool, x), Ok(()));
                if let Err(x) = result {
                    return failed(x);
                }
                vector(data)
            }
            Builtin::SortByKey if !tupled[1] => {
                let mut keys = ts[0][0].data.clone();
                let mut vals = ts[1][0].data.clone();
                let result = per_key_type!(&mut keys, k => {
                    let r: Result<(), TaskError>;
                    per_type!(&mut vals, v => {
                        r = sort::sort_by_key(pool, k, v);
                        Vec::new()
                    });
                    r
                }, Ok(()));
                if let Err(x) = result {
                    return failed(x);
                }
                vector(keys).and_then(|k| Ok(Value::Tuple(vec![k, vector(vals)?])))
            }
            Builtin::SortByKey => {
                // A tensor of tuples: the keys sort a permutation, which every field follows.
                let mut keys = ts[0][0].data.clone();
                let mut perm: Vec<i64> = (0..n as i64).collect();
                let result =
                    per_key_type!(&mut keys, k => sort::sort_by_key(pool, k, &mut perm), Ok(()));
                if let Err(x) = result {
                    return failed(x);
                }
                let fields = ts[1]
                    .iter()
                    .map(|t| per_type!(&t.data, x => perm.iter().map(|&p| x[p as usize]).collect()))
                    .collect();
                vector(keys).and_then(|k| Ok(Value::Tuple(vec![k, tensors(fields, true)?])))
            }
            _ => return bug(span, format!("`{}` is not a primitive", b.name())),
        };
        let out = out.or_else(|x| fail(span, format!("`{}`: {x}", b.name())))?;
        match &out {
            Value::Tensor(t) if b != Builtin::SortByKey => self.keep_result(t),
            Value::Tuple(items) if b == Builtin::Partition => {
                if let Some(Value::Tensor(t)) = items.first() {
                    self.keep_result(t);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// The worker pool of the primitives, on the run's thread count and retry policy.
    pub(super) fn prims_pool(&mut self, span: Span) -> RResult<&Pool> {
        if self.prims.is_none() {
            let mut pool = match Pool::new(self.opts.threads.max(1)) {
                Ok(p) => p,
                Err(x) => {
                    return fail(span, format!("cannot start the worker pool: {}", x.message))
                }
            };
            pool.set_retries(self.opts.retry.retries);
            self.prims = Some(pool);
        }
        match &self.prims {
            Some(p) => Ok(p),
            None => bug(span, "the primitives' pool"),
        }
    }
}
