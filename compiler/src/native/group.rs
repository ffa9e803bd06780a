//! Running one launch of the schedule: a row group of kernels (and a GEMM) over its shards,
//! every member on a shard's rows in turn, with in-place writes; or one kernel node alone.

use super::contraction::{gemm_rows, gemm_rows_then};
use std::rc::Rc;

use flow_runtime::pool::TaskErrorKind;
use flow_runtime::{Data, Tensor};

use super::{
    alloc_error, data_ptr, data_ptr_mut, describe_short, kernel_dims, kernel_name, space_of,
    tensor_bytes, Kernel, KernelFn, Launch, Native, NativeError, SendPtr, SendPtrs,
};
use crate::mir::contract::{contraction, Contraction};
use crate::mir::ir::{Graph, Node, NodeId, NodeKind, Port};
use crate::mir::schedule::{self, shard_plan, Member, Schedule, Work};
use crate::mir::Idx;

impl Native {
    /// Runs one kernel node on its own: a contraction as GEMMs, a node with a kernel over
    /// its shards, a node without one on the interpreter.
    pub(super) fn run_kernel(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        kernels: &[Option<Kernel>],
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, NativeError> {
        let reads = match &node.kind {
            NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => reads,
            _ => unreachable!("only kernels"),
        };
        let (rows, n_tasks) = shard_plan(g, id);
        if n_tasks == 0 {
            return self.outputs(id, node);
        }
        if let Some(c) = contraction(g, node) {
            let mut outs = self.outputs(id, node)?;
            let a = &values[reads[c.a.0].node.0 as usize][reads[c.a.0].port as usize];
            let b = &values[reads[c.b.0].node.0 as usize][reads[c.b.0].port as usize];
            let read = tensor_bytes(a) + tensor_bytes(b);
            self.run_contraction(id, node, &c, (a, b), read, &mut outs[0])?;
            return Ok(outs);
        }
        if kernels[id.index()].is_none() {
            return self.interpret(g, id, node, values);
        }
        let launch = schedule::Launch {
            members: vec![Member {
                node: id,
                work: Work::Kernel,
            }],
            rows,
            shards: n_tasks,
            in_place: Vec::new(),
        };
        Ok(self
            .run_group(g, &launch, kernels, values)?
            .pop()
            .expect("one member"))
    }

    /// Fresh (pooled) output tensors of a node.
    pub(super) fn outputs(&mut self, id: NodeId, node: &Node) -> Result<Vec<Tensor>, NativeError> {
        node.outputs
            .iter()
            .map(|t| {
                self.output(t.dtype, &t.shape)
                    .map_err(alloc_error(Some(id)))
            })
            .collect()
    }

    /// The kernel of every kernel member of a launch that has shards (in graph order, so
    /// kernels are numbered as they are met), and, for each node that starts a row group of
    /// two or more, that launch. A launch with a member the kernel source has no kernel for
    /// (an executable's table lacks its structure) runs member by member instead, that
    /// member on the interpreter: the same bits, only without the group's cache reuse.
    #[allow(clippy::type_complexity)]
    pub(super) fn kernels_of(
        &mut self,
        g: &Graph,
        schedule: &Schedule,
    ) -> Result<(Vec<Option<Kernel>>, Vec<Option<usize>>), NativeError> {
        let mut kernels: Vec<Option<Kernel>> = vec![None; g.nodes.len()];
        let mut first_of: Vec<Option<usize>> = vec![None; g.nodes.len()];
        for (k, launch) in schedule.launches.iter().enumerate() {
            if launch.shards == 0 {
                continue;
            }
            let mut complete = true;
            for m in &launch.members {
                if m.work == Work::Kernel {
                    let kernel = self.kernels.kernel(g, m.node, &self.hooks)?;
                    complete &= kernel.is_some();
                    kernels[m.node.index()] = kernel;
                }
            }
            if launch.members.len() > 1 && complete {
                first_of[launch.members[0].node.index()] = Some(k);
            }
        }
        Ok((kernels, first_of))
    }

    /// Runs the kernels of a group over its shards, every member on a shard's rows in turn;
    /// returns each member's outputs.
    pub(super) fn run_group(
        &mut self,
        g: &Graph,
        group: &schedule::Launch,
        kernels: &[Option<Kernel>],
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Vec<Tensor>>, NativeError> {
        if group.members.len() > 1 {
            self.grouped += group.members.len();
        }
        let first = group.members[0].node;
        let space = match &g.nodes[first].kind {
            NodeKind::Map { space, .. } | NodeKind::Reduce { space, .. } => space.clone(),
            _ => unreachable!("only kernels"),
        };
        let extent0 = space.first().copied().unwrap_or(1);
        let in_place = &group.in_place;
        self.in_place += in_place.len();
        let mut outs: Vec<Vec<Tensor>> = Vec::new();
        for (k, m) in group.members.iter().enumerate() {
            let id = m.node;
            let node = &g.nodes[id];
            let mut os = Vec::new();
            for (p, t) in node.outputs.iter().enumerate() {
                if in_place.iter().any(|d| d.writer == (k, p)) {
                    // Written over a dead member's output: no buffer of its own (yet).
                    os.push(Tensor {
                        shape: t.shape.clone(),
                        data: Data::zeros(t.dtype, 0),
                    });
                } else {
                    os.push(
                        self.output(t.dtype, &t.shape)
                            .map_err(alloc_error(Some(id)))?,
                    );
                }
            }
            outs.push(os);
        }
        // Every output's buffer, for the kernels that write it and those that read it.
        let mut out_ptrs: Vec<Vec<*mut u8>> = outs
            .iter_mut()
            .map(|os| os.iter_mut().map(|o| data_ptr_mut(&mut o.data)).collect())
            .collect();
        for d in in_place {
            out_ptrs[d.writer.0][d.writer.1] = out_ptrs[d.dead.0][d.dead.1];
        }
        let mut outputs = Vec::new();
        let mut need = Vec::new();
        let mut calls = Vec::new();
        let (mut read_bytes, mut written) = (0, 0);
        let mut seen: Vec<Port> = Vec::new();
        // After a GEMM, the members that run inside it on each block of rows it finishes:
        // `1..epilogue`, those that read rows written in the group before them (the GEMM's,
        // or such a member's). The others (a column sum of another tensor) run after the
        // GEMM on the shard's whole rows, reading longer runs of their inputs.
        let mut epilogue = 1;
        for (k, member) in group.members.iter().enumerate() {
            let node = &g.nodes[member.node];
            let reads = match &node.kind {
                NodeKind::Map { reads, .. } | NodeKind::Reduce { reads, .. } => reads,
                _ => unreachable!("only kernels"),
            };
            if k == epilogue
                && reads
                    .iter()
                    .any(|r| group.members[..k].iter().any(|m| m.node == r.node))
            {
                epilogue += 1;
            }
            if let Work::Gemm(c) = &member.work {
                // The first member: both operands come from outside the group.
                let [a, b] = [c.a.0, c.b.0]
                    .map(|r| &values[reads[r].node.0 as usize][reads[r].port as usize]);
                read_bytes += tensor_bytes(a) + tensor_bytes(b);
                let t = &node.outputs[0];
                outputs.push((out_ptrs[k][0], c.dims.2 * t.dtype.size_bytes(), t.dtype));
                need.push(self.need(Port {
                    node: member.node,
                    port: 0,
                }));
                written += (c.dims.0 * c.dims.2 * t.dtype.size_bytes()) as u64;
                calls.push(Call::Gemm {
                    c: c.clone(),
                    a: SendPtr(data_ptr(&a.data) as *mut u8),
                    b: SendPtr(data_ptr(&b.data) as *mut u8),
                    out: SendPtr(out_ptrs[k][0]),
                });
                continue;
            }
            let Some(kernel) = kernels[member.node.index()] else {
                unreachable!("a launch runs as a group only when every kernel member has a kernel")
            };
            let mut bufs: Vec<*mut u8> = Vec::new();
            for r in reads {
                match group.members.iter().position(|m| m.node == r.node) {
                    Some(j) => bufs.push(out_ptrs[j][r.port as usize]),
                    None => {
                        let t = &values[r.node.0 as usize][r.port as usize];
                        if !seen.contains(&r.src()) {
                            seen.push(r.src());
                            read_bytes += tensor_bytes(t);
                        }
                        bufs.push(data_ptr(&t.data) as *mut u8);
                    }
                }
            }
            for (p, (t, &ptr)) in node.outputs.iter().zip(&out_ptrs[k]).enumerate() {
                let row: usize = t.shape.iter().skip(1).product();
                outputs.push((ptr, row * t.dtype.size_bytes(), t.dtype));
                need.push(self.need(Port {
                    node: member.node,
                    port: p as u32,
                }));
                bufs.push(ptr);
                written += (t.shape.iter().product::<usize>() * t.dtype.size_bytes()) as u64;
            }
            calls.push(Call::Kernel(kernel.f, SendPtrs(bufs), kernel_dims(g, node)));
        }
        let name = group
            .members
            .iter()
            .map(|m| match (&m.work, kernels[m.node.index()]) {
                (Work::Gemm(_), _) => format!("{} gemm", describe_short(&g.nodes[m.node])),
                (_, Some(k)) => kernel_name(&g.nodes[m.node], k.number),
                (_, None) => unreachable!("every kernel member has a kernel"),
            })
            .collect::<Vec<_>>()
            .join(" + ");
        let launch = Launch {
            name,
            kernel: self.launch_id(first),
            shards: group.shards,
            rows: group.rows,
            extent0,
            outputs,
            need,
            read: read_bytes,
            written,
        };
        // Which member failed with an error code, by shard.
        let failed = std::sync::Mutex::new(Vec::<(usize, usize)>::new());
        let rows = group.rows;
        // Members `from..to` on rows `r0..r1` of the shard starting at `lo`; the first
        // status that is not 0 (which member returned it is recorded), or 0.
        let run_calls = |from: usize, to: usize, lo: usize, r0: usize, r1: usize| -> i32 {
            for (k, call) in calls.iter().enumerate().take(to).skip(from) {
                let status = match call {
                    // SAFETY: each kernel reads only inside its input buffers (proved by the
                    // verifier; a member's rows r0..r1, which it reads, were written just
                    // before) and writes only rows r0..r1 of its outputs, which no other task
                    // writes.
                    Call::Kernel(f, bufs, dims) => unsafe {
                        f(bufs.as_ptr(), dims.as_ptr(), r0 as i64, r1 as i64)
                    },
                    Call::Gemm { c, a, b, out } => {
                        gemm_rows(c, (a, b, out), r0, r1);
                        0
                    }
                };
                if status != 0 {
                    if let Ok(mut v) = failed.lock() {
                        v.push((lo / rows, k));
                    }
                    return status;
                }
            }
            0
        };
        let res = self
            .launch(&launch, &|lo, hi| match calls.first() {
                // A GEMM's epilogue members run on each block of rows the GEMM finishes,
                // while those rows are in cache (every member computes each row as alone, so
                // this changes no bit; see `flow_runtime::gemm::gemm_f32_then`), the rest
                // after it.
                Some(Call::Gemm { c, a, b, out }) if epilogue > 1 => {
                    let mut status = 0;
                    gemm_rows_then(c, (a, b, out), lo, hi, &mut |r0, r1| {
                        status = run_calls(1, epilogue, lo, r0, r1);
                        status == 0
                    });
                    if status != 0 {
                        return status;
                    }
                    run_calls(epilogue, calls.len(), lo, lo, hi)
                }
                _ => run_calls(0, calls.len(), lo, lo, hi),
            })
            .map_err(|e| {
                let k = failed
                    .lock()
                    .ok()
                    .and_then(|v| v.iter().find(|(task, _)| *task == e.task).map(|x| x.1))
                    .unwrap_or(0);
                (group.members[k].node, e)
            });
        if let Err((id, e)) = res {
            let node = &g.nodes[id];
            if e.kind == TaskErrorKind::Code(flow_runtime::abi::ERR_INDEX) {
                // A gather out of range: the interpreter finds the first bad point and words
                // it with the tensor, the index and the shape (the same error at every
                // thread count, and the interpreter's own).
                if let Some(err) = self.explain_gather(g, id, node, values) {
                    return Err(err);
                }
            }
            return Err(NativeError::shard(id, node, &space_of(node), rows, &e));
        }
        // The buffers written in place now belong to their writers.
        for d in in_place {
            let dead = &mut outs[d.dead.0][d.dead.1];
            let empty = Data::zeros(dead.dtype(), 0);
            let data = std::mem::replace(&mut dead.data, empty);
            outs[d.writer.0][d.writer.1].data = data;
        }
        Ok(outs)
    }
}

/// One member's work on a shard's rows.
enum Call {
    Kernel(KernelFn, SendPtrs, Vec<i64>),
    Gemm {
        c: Contraction,
        a: SendPtr,
        b: SendPtr,
        out: SendPtr,
    },
}
