//! Stage checkpoints (`flowc run --checkpoint DIR`): `main` run so that a rerun resumes
//! from the last completed iteration of one of its loops, with identical results.
//!
//! **When.** Only the loops that are statements of `main`'s own block (`for` and `while`)
//! checkpoint, at the end of an iteration, when the iteration dispatched at least one graph
//! since the last checkpoint and every value of `main`'s variables is computed (a pending
//! value would have to be dispatched just for the checkpoint, which would cut the graphs a
//! run builds; an observation, a segment dispatch or the end of the loop computes them).
//!
//! **What.** The position (the statement's number in `main`'s block; for a `for`, the next
//! index and the end evaluated when the loop started), every variable of `main` (scalars,
//! tensors as `.npy`, strings, tuples, lists), the shape variables bound so far, and what the
//! program printed so far. Random numbers have explicit seeds, so there is no generator
//! state. The host stores the bytes (atomically, keyed by the program and its arguments: see
//! `driver/fs_host.rs`) and gives them back to a rerun of the same program.
//!
//! **Resume.** The rerun prints the recorded output, restores the variables (a tensor comes
//! back computed; the values are the bits the interrupted run had), skips the statements
//! before the loop and continues the loop after its last completed iteration. When `main`
//! ends, the host removes the checkpoint: a later run starts from the beginning.

use std::collections::HashMap;
use std::rc::Rc;

use flow_runtime::Scalar;

use super::error::RResult;
use super::{fail, Frame, Machine, Value};
use crate::hir;

/// The first bytes of a checkpoint's payload (its format version).
const MAGIC: &[u8; 8] = b"FLOWCKP1";

/// What a loop calls at the end of each iteration, with where it would resume.
pub(super) type AfterIteration<'p, 'h> =
    dyn FnMut(&mut Machine<'p, 'h>, &mut Frame<'p>, Resume) -> RResult<()>;

/// Where a loop of `main` resumes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Resume {
    /// A `for`: the next index, and the end the loop evaluated when it started.
    For { next: i64, hi: i64 },
    /// A `while`: its condition is evaluated again.
    While,
}

/// The state of a run recorded at the end of a loop iteration.
struct State {
    stmt: usize,
    resume: Resume,
    printed: String,
    values: Vec<(usize, Value)>,
    shapes: Vec<(String, i64)>,
}

impl<'p, 'h> Machine<'p, 'h> {
    /// Runs `main` (whose body is `body`) with checkpoints, resuming from the host's
    /// checkpoint if it has one. A body that is not a block runs as usual.
    pub(super) fn run_main_checkpointed(&mut self, body: &'p hir::Body) -> RResult<()> {
        let hir::ExprKind::Block(block) = &body.expr.kind else {
            return self.run_body(body, Vec::new(), HashMap::new()).map(|_| ());
        };
        let mut frame = Frame {
            body,
            values: vec![None; body.locals.len()],
            shapes: HashMap::new(),
        };
        self.printed = Some(String::new());
        let mut start = 0;
        let mut resume = None;
        if let Some(bytes) = self.host.checkpoint_load() {
            let span = body.expr.span;
            let state = decode(&bytes, block.stmts.len(), body.locals.len())
                .or_else(|why| fail(span, format!("cannot resume from the checkpoint: {why}")))?;
            self.host.stdout(&state.printed);
            self.printed = Some(state.printed);
            for (i, v) in state.values {
                frame.values[i] = Some(v);
            }
            frame.shapes = state.shapes.into_iter().collect();
            start = state.stmt;
            resume = Some(state.resume);
        }
        self.checkpointed_dispatches = self.dispatches;
        for (k, s) in block.stmts.iter().enumerate().skip(start) {
            let resume = if k == start { resume.take() } else { None };
            match s {
                hir::Stmt::For {
                    local,
                    lo,
                    hi,
                    body,
                } => self.for_loop(
                    &mut frame,
                    *local,
                    lo,
                    hi,
                    body,
                    resume,
                    &mut move |m, f, r| m.checkpoint(f, k, r),
                )?,
                hir::Stmt::While { cond, body } => {
                    self.while_loop(&mut frame, cond, body, &mut move |m, f, r| {
                        m.checkpoint(f, k, r)
                    })?
                }
                _ => self.stmt(&mut frame, s)?,
            }
        }
        if let Some(t) = &block.tail {
            self.eval(&mut frame, t)?;
        }
        self.host.checkpoint_done();
        Ok(())
    }

    /// Records the run's state at the end of an iteration of the loop that is statement
    /// `stmt` of `main`, when it dispatched since the last checkpoint and every variable is
    /// computed (see the module documentation).
    fn checkpoint(&mut self, frame: &Frame<'p>, stmt: usize, resume: Resume) -> RResult<()> {
        if self.dispatches == self.checkpointed_dispatches {
            return Ok(());
        }
        let mut values = Vec::new();
        for (i, v) in frame.values.iter().enumerate() {
            if let Some(v) = v {
                let Some(v) = self.computed(v) else {
                    return Ok(());
                };
                values.push((i, v));
            }
        }
        let mut shapes: Vec<(String, i64)> =
            frame.shapes.iter().map(|(k, v)| (k.clone(), *v)).collect();
        shapes.sort();
        let state = State {
            stmt,
            resume,
            printed: self.printed.clone().unwrap_or_default(),
            values,
            shapes,
        };
        let span = frame.body.expr.span;
        self.host
            .checkpoint_store(&encode(&state))
            .or_else(|why| fail(span, format!("cannot write the checkpoint: {why}")))?;
        self.checkpointed_dispatches = self.dispatches;
        Ok(())
    }

    /// `v` with its pending parts replaced by their computed tensors, or `None` when a part
    /// is not computed yet.
    fn computed(&mut self, v: &Value) -> Option<Value> {
        Some(match v {
            Value::Lazy(l) => {
                let t = self.done.get(&l.port)?.clone();
                Value::Tensor(self.observed(t))
            }
            Value::Tuple(vs) => {
                Value::Tuple(vs.iter().map(|x| self.computed(x)).collect::<Option<_>>()?)
            }
            Value::List(vs) => {
                Value::List(vs.iter().map(|x| self.computed(x)).collect::<Option<_>>()?)
            }
            other => other.clone(),
        })
    }
}

fn encode(s: &State) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put_u64(&mut out, s.stmt as u64);
    match s.resume {
        Resume::For { next, hi } => {
            out.push(0);
            put_u64(&mut out, next as u64);
            put_u64(&mut out, hi as u64);
        }
        Resume::While => out.push(1),
    }
    put_bytes(&mut out, s.printed.as_bytes());
    put_u64(&mut out, s.values.len() as u64);
    for (i, v) in &s.values {
        put_u64(&mut out, *i as u64);
        put_value(&mut out, v);
    }
    put_u64(&mut out, s.shapes.len() as u64);
    for (name, n) in &s.shapes {
        put_bytes(&mut out, name.as_bytes());
        put_u64(&mut out, *n as u64);
    }
    out
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend(n.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend(b);
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Scalar(s) => {
            out.push(0);
            let (tag, bits) = match *s {
                Scalar::F32(x) => (0, u64::from(x.to_bits())),
                Scalar::F64(x) => (1, x.to_bits()),
                Scalar::I32(x) => (2, x as u32 as u64),
                Scalar::I64(x) => (3, x as u64),
                Scalar::Bool(x) => (4, u64::from(x)),
                Scalar::U8(x) => (5, u64::from(x)),
                Scalar::U32(x) => (6, u64::from(x)),
                Scalar::U64(x) => (7, x),
            };
            out.push(tag);
            put_u64(out, bits);
        }
        Value::Tensor(t) => {
            out.push(1);
            put_bytes(out, &flow_runtime::npy::write_npy(t));
        }
        Value::Str(s) => {
            out.push(2);
            put_bytes(out, s.as_bytes());
        }
        Value::Tuple(vs) | Value::List(vs) => {
            out.push(if matches!(v, Value::Tuple(_)) { 3 } else { 4 });
            put_u64(out, vs.len() as u64);
            vs.iter().for_each(|x| put_value(out, x));
        }
        Value::Unit => out.push(5),
        // `Machine::computed` replaced every pending value.
        Value::Lazy(_) => unreachable!("a pending value in a checkpoint"),
    }
}

/// Reads a checkpoint of a `main` with `stmts` statements and `locals` variables.
fn decode(bytes: &[u8], stmts: usize, locals: usize) -> Result<State, String> {
    let mut p = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("it is not a checkpoint of this version of flowc")?;
    let stmt = get_u64(&mut p)? as usize;
    if stmt >= stmts {
        return Err(format!("it names statement {stmt} of a `main` of {stmts}"));
    }
    let resume = match get(&mut p, 1)?[0] {
        0 => Resume::For {
            next: get_u64(&mut p)? as i64,
            hi: get_u64(&mut p)? as i64,
        },
        1 => Resume::While,
        k => return Err(format!("unknown loop kind {k}")),
    };
    let printed = get_string(&mut p)?;
    let n = get_u64(&mut p)?;
    let mut values = Vec::new();
    for _ in 0..n {
        let i = get_u64(&mut p)? as usize;
        if i >= locals {
            return Err(format!("it names variable {i} of a `main` of {locals}"));
        }
        values.push((i, get_value(&mut p, 0)?));
    }
    let n = get_u64(&mut p)?;
    let mut shapes = Vec::new();
    for _ in 0..n {
        shapes.push((get_string(&mut p)?, get_u64(&mut p)? as i64));
    }
    if !p.is_empty() {
        return Err("it has bytes after its end".into());
    }
    Ok(State {
        stmt,
        resume,
        printed,
        values,
        shapes,
    })
}

fn get<'a>(p: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if p.len() < n {
        return Err("it ends early".into());
    }
    let (head, rest) = p.split_at(n);
    *p = rest;
    Ok(head)
}

fn get_u64(p: &mut &[u8]) -> Result<u64, String> {
    Ok(u64::from_le_bytes(get(p, 8)?.try_into().expect("8 bytes")))
}

fn get_bytes<'a>(p: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let n = usize::try_from(get_u64(p)?).map_err(|e| e.to_string())?;
    get(p, n)
}

fn get_string(p: &mut &[u8]) -> Result<String, String> {
    String::from_utf8(get_bytes(p)?.to_vec()).map_err(|e| e.to_string())
}

/// Values nest at most this deep (tuples of lists of …): a damaged file cannot recurse
/// without end.
const MAX_NESTING: usize = 64;

fn get_value(p: &mut &[u8], depth: usize) -> Result<Value, String> {
    if depth > MAX_NESTING {
        return Err("its values nest too deep".into());
    }
    Ok(match get(p, 1)?[0] {
        0 => {
            let tag = get(p, 1)?[0];
            let bits = get_u64(p)?;
            Value::Scalar(match tag {
                0 => Scalar::F32(f32::from_bits(bits as u32)),
                1 => Scalar::F64(f64::from_bits(bits)),
                2 => Scalar::I32(bits as u32 as i32),
                3 => Scalar::I64(bits as i64),
                4 => Scalar::Bool(bits != 0),
                5 => Scalar::U8(bits as u8),
                6 => Scalar::U32(bits as u32),
                7 => Scalar::U64(bits),
                k => return Err(format!("unknown scalar type {k}")),
            })
        }
        1 => Value::Tensor(Rc::new(
            flow_runtime::npy::read_npy(get_bytes(p)?).map_err(|e| e.to_string())?,
        )),
        2 => Value::Str(get_string(p)?),
        k @ (3 | 4) => {
            let n = get_u64(p)?;
            let mut vs = Vec::new();
            for _ in 0..n {
                vs.push(get_value(p, depth + 1)?);
            }
            if k == 3 {
                Value::Tuple(vs)
            } else {
                Value::List(vs)
            }
        }
        5 => Value::Unit,
        k => return Err(format!("unknown value kind {k}")),
    })
}
