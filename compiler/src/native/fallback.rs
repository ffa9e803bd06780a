//! What the native backend hands to the reference interpreter: a node with no kernel
//! (`Native::interpret`), and the wording of a gather's out-of-range error, which a kernel
//! signals only by its error code (`Native::explain_gather`).

use super::*;

impl Native {
    /// The interpreter's error for node `id` after its kernel found a gather out of range:
    /// the node and what it needs that is not computed yet (members of its row group) run on
    /// the interpreter, from the tensors at hand, and its first bad point is reported with
    /// the tensor, the index and the shape (`None` when an input is not at hand, or if the
    /// interpreter finds nothing wrong). Only on this error path.
    pub(crate) fn explain_gather(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        values: &[Vec<Rc<Tensor>>],
    ) -> Option<NativeError> {
        let at_hand = |n: NodeId| {
            n != id
                && values
                    .get(n.index())
                    .is_some_and(|v| !v.is_empty() && v.len() == g.nodes[n].outputs.len())
        };
        // The cone of `id` down to the tensors at hand.
        let mut needed = vec![false; id.index() + 1];
        needed[id.index()] = true;
        for k in (0..=id.index()).rev() {
            let n = NodeId::new(k);
            if needed[k] && !at_hand(n) {
                for p in g.nodes[n].inputs() {
                    needed[p.node.index()] = true;
                }
            }
        }
        let mut sub = Graph::new();
        sub.monoids = g.monoids.clone();
        let mut inputs: Vec<Tensor> = Vec::new();
        let mut ports: HashMap<Port, Port> = HashMap::new();
        for k in (0..=id.index()).filter(|&k| needed[k]) {
            let (n, old) = (NodeId::new(k), &g.nodes[NodeId::new(k)]);
            if at_hand(n) {
                for (p, t) in values[k].iter().enumerate() {
                    let new = sub.add(Node {
                        kind: NodeKind::Input {
                            index: inputs.len() as u32,
                        },
                        outputs: vec![old.outputs[p].clone()],
                        label: old.label.clone(),
                        span: None,
                    });
                    inputs.push((**t).clone());
                    ports.insert(
                        Port {
                            node: n,
                            port: p as u32,
                        },
                        Port { node: new, port: 0 },
                    );
                }
                continue;
            }
            if matches!(old.kind, NodeKind::Input { .. }) {
                return None;
            }
            let mut copy = old.clone();
            let mut missing = false;
            copy.map_inputs(&mut |p| {
                ports.get(&p).copied().unwrap_or_else(|| {
                    missing = true;
                    p
                })
            });
            if missing {
                return None;
            }
            let new = sub.add(copy);
            for p in 0..old.outputs.len() as u32 {
                ports.insert(Port { node: n, port: p }, Port { node: new, port: p });
            }
        }
        let at = ports.get(&Port { node: id, port: 0 })?.node;
        sub.outputs = (0..node.outputs.len() as u32)
            .map(|port| Port { node: at, port })
            .collect();
        let cfg = crate::interp::EvalConfig {
            // Explaining injects no faults: the kernel's error is the program's.
            retry: RetryPolicy {
                faults: None,
                ..self.retry
            },
            hooks: Default::default(),
            launch: self.launch_id(id),
        };
        let cause = match crate::interp::eval_with(&sub, &inputs, &cfg).err()? {
            // The node is named once, as the JIT names it.
            crate::interp::InterpError::At { problem, .. } => problem.to_string(),
            e => e.to_string(),
        };
        Some(NativeError::Interpreted {
            op: describe(id, node),
            cause,
        })
    }

    /// Runs node `id` on the reference interpreter: a graph of the node alone, reading one
    /// input per distinct port it reads, evaluated with the same retry policy and hooks.
    pub(super) fn interpret(
        &mut self,
        g: &Graph,
        id: NodeId,
        node: &Node,
        values: &[Vec<Rc<Tensor>>],
    ) -> Result<Vec<Tensor>, NativeError> {
        self.interpreted += 1;
        let mut sub = Graph::new();
        sub.monoids = g.monoids.clone();
        let mut ports: Vec<Port> = Vec::new();
        let mut inputs: Vec<Tensor> = Vec::new();
        for r in node.inputs() {
            if !ports.contains(&r) {
                let t = &values[r.node.0 as usize][r.port as usize];
                sub.add(Node {
                    kind: NodeKind::Input {
                        index: ports.len() as u32,
                    },
                    outputs: vec![g.nodes[r.node].outputs[r.port as usize].clone()],
                    // The tensor's name, for errors that name it (a gather's table).
                    label: g.nodes[r.node].label.clone(),
                    span: None,
                });
                ports.push(r);
                inputs.push((**t).clone());
            }
        }
        let mut alone = node.clone();
        alone.map_inputs(&mut |r| {
            let k = ports
                .iter()
                .position(|p| *p == r)
                .expect("every port read was entered above");
            Port {
                node: NodeId(k as u32),
                port: 0,
            }
        });
        let n_outputs = alone.outputs.len() as u32;
        let at = sub.add(alone);
        sub.outputs = (0..n_outputs).map(|port| Port { node: at, port }).collect();
        let cfg = crate::interp::EvalConfig {
            retry: self.retry,
            hooks: self.hooks.clone(),
            launch: self.launch_id(id),
        };
        crate::interp::eval_with(&sub, &inputs, &cfg).map_err(|e| NativeError::Interpreted {
            op: describe(id, node),
            cause: match e {
                // The node is named by `op` already; the sub-graph's own numbering of it
                // would only contradict that.
                crate::interp::InterpError::At { problem, .. } if !problem.is_retryable() => {
                    problem.to_string()
                }
                e => e.to_string(),
            },
        })
    }
}
