//! `flowc run-mir FILE.mir...`: evaluates MIR graph files (the text form of `mir::print`)
//! with inputs from NumPy files, and prints a digest of every output — on one process, or
//! on MPI ranks like `flowc run` (`--ranks N`, or under `mpirun`). It exists so that the
//! graphs of the equivalence property generator (compiler/tests/equivalence.rs dumps them
//! with `FLOW_EQUIV_DUMP=DIR`) can be run on ranks and compared bit for bit with one process
//! (scripts/test-mpi.sh).
//!
//! The inputs of `case.mir` are `case.in0.npy`, `case.in1.npy`, … (one per `input` node, by
//! its index). Each graph goes through the same passes as a graph `flowc run` dispatches
//! (the pass flags choose them), then runs on the chosen backend; each output prints as
//! `FILE output K: TYPE HASH`, the hash the content hash of its type, shape and bits.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use flow_runtime::Tensor;

use super::{run_options, PassFlags, RuntimeFlags};
use crate::mir::passes::optimize;
use crate::native::{Native, Spread};

/// `flowc run-mir FILE...`; returns the exit status (1 when a file cannot be read or run).
pub fn cmd_run_mir(files: &[PathBuf], flags: &PassFlags, rt: &RuntimeFlags) -> i32 {
    super::on_ranks(flags, rt, |spread| run_files(files, flags, rt, spread))
}

/// Runs every file in turn, on rank 0 of a job when `spread` is given.
fn run_files(
    files: &[PathBuf],
    flags: &PassFlags,
    rt: &RuntimeFlags,
    spread: Option<Rc<dyn Spread>>,
) -> i32 {
    let (opts, observed) = match run_options(flags, rt) {
        Ok(o) => o,
        Err(status) => return status,
    };
    let mut native = match &opts.kernels {
        None => None,
        Some(factory) => {
            let made = factory()
                .map_err(|e| e.to_string())
                .and_then(|k| Native::new(k, opts.threads).map_err(|e| e.to_string()));
            match made {
                Ok(mut n) => {
                    n.set_retry(opts.retry);
                    n.set_hooks(opts.hooks.clone());
                    if let Some(s) = spread.clone() {
                        n.set_spread(s);
                    }
                    Some(n)
                }
                Err(e) => {
                    errln!("error: cannot start the native backend: {e}");
                    return 1;
                }
            }
        }
    };
    let pipeline = opts.pipeline();
    let mut status = 0;
    for f in files {
        let mut run = || -> Result<Vec<Rc<Tensor>>, String> {
            let (mut g, inputs) = read_case(f)?;
            if !pipeline.is_empty() {
                optimize(&mut g, &pipeline, &opts.config).map_err(|e| e.to_string())?;
            }
            match native.as_mut() {
                // The outputs stay on the ranks that computed them: rank 0 gathers them to
                // print their digests.
                Some(n) => n.eval(&g, &inputs).map_err(|e| e.to_string()).map(|o| {
                    o.into_iter()
                        .map(|t| match &spread {
                            Some(s) if s.ranks() > 1 => s.fetch(&t).unwrap_or(t),
                            _ => t,
                        })
                        .collect()
                }),
                None => {
                    let inputs: Vec<Tensor> = inputs.iter().map(|t| (**t).clone()).collect();
                    crate::interp::eval(&g, &inputs)
                        .map(|o| o.into_iter().map(Rc::new).collect())
                        .map_err(|e| e.to_string())
                }
            }
        };
        match run() {
            Ok(outputs) => {
                for (k, t) in outputs.iter().enumerate() {
                    let hash = crate::mir::hash::tensor_hash(t);
                    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
                    outln!(
                        "{} output {k}: {}{} {hex}",
                        f.display(),
                        t.dtype(),
                        flow_runtime::format_shape(&t.shape)
                    );
                }
            }
            Err(e) => {
                errln!("error: {}: {e}", f.display());
                status = 1;
            }
        }
    }
    status.max(observed.finish())
}

/// The graph of `f` and its inputs (`STEM.inK.npy` beside it, one per input node).
fn read_case(f: &Path) -> Result<(crate::mir::Graph, Vec<Rc<Tensor>>), String> {
    let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read it: {e}"))?;
    let g = crate::mir::parse(&text).map_err(|e| e.to_string())?;
    crate::mir::verify(&g).map_err(|e| format!("invalid MIR: {e}"))?;
    let count = g
        .nodes
        .iter()
        .filter_map(|n| match n.kind {
            crate::mir::NodeKind::Input { index } => Some(index as usize + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut inputs = Vec::new();
    for k in 0..count {
        let p = f.with_extension(format!("in{k}.npy"));
        let bytes =
            std::fs::read(&p).map_err(|e| format!("cannot read input `{}`: {e}", p.display()))?;
        let t = flow_runtime::npy::read_npy(&bytes)
            .map_err(|e| format!("input `{}`: {e}", p.display()))?;
        inputs.push(Rc::new(t));
    }
    Ok((g, inputs))
}
