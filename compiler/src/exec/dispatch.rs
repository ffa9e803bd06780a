//! Dispatch: cutting out the part of the pending graph a lazy value needs, checking it
//! against the memory budget, optimizing it (through the graph cache), running it on the
//! backend (or serving it from the result cache) and remembering the result.

use std::collections::HashMap;
use std::rc::Rc;

use flow_runtime::Tensor;

use super::{cache, Backend, Machine, RResult, RunError, RunErrorKind};
use crate::base::Span;
use crate::mir::hash::Hash;
use crate::mir::ir::{Graph, Node, NodeKind, Port, TensorTy};
use crate::mir::passes::{optimize, PassConfig};
use crate::mir::Idx;
use crate::native::Native;

impl<'p, 'h> Machine<'p, 'h> {
    /// Cuts out the part of the pending graph that `target` needs, runs it and remembers the
    /// result.
    pub(super) fn dispatch(&mut self, target: Port, span: Span) -> RResult<Rc<Tensor>> {
        if let Some(t) = self.done.get(&target) {
            return Ok(t.clone());
        }
        self.segment_from = self.lower.graph.nodes.len();
        // An observation flushes every pending value bound to a variable, not only the one
        // observed: they share inputs (so fusion can read them once) and are needed later.
        self.prune_bound();
        let mut wanted = vec![target];
        wanted.extend(self.bound.iter().copied().filter(|p| *p != target));
        wanted.dedup();
        let src = &self.lower.graph;
        // Which nodes are needed, walking back from the wanted ports and stopping at computed
        // ones.
        let mut needed = vec![false; src.nodes.len()];
        let mut stack: Vec<_> = wanted.iter().map(|p| p.node).collect();
        let mut inputs_needed: Vec<Port> = Vec::new();
        while let Some(n) = stack.pop() {
            if needed[n.index()] {
                continue;
            }
            needed[n.index()] = true;
            for p in src.nodes[n].inputs() {
                if self.done.contains_key(&p) {
                    if !inputs_needed.contains(&p) {
                        inputs_needed.push(p);
                    }
                } else {
                    stack.push(p.node);
                }
            }
        }
        // The inputs in the order the needed nodes first read them (not the order the walk
        // found them, which depends on which values happen to be bound): the same
        // computation then gets the same graph, and the graph cache recognizes it.
        let mut seen: std::collections::HashSet<Port> = std::collections::HashSet::new();
        let found = inputs_needed.len();
        inputs_needed.clear();
        for (i, node) in src.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            for p in node.inputs() {
                if self.done.contains_key(&p) && seen.insert(p) {
                    inputs_needed.push(p);
                }
            }
        }
        debug_assert_eq!(found, inputs_needed.len());
        let mut g = Graph::new();
        g.monoids = src.monoids.clone();
        let mut map: HashMap<Port, Port> = HashMap::new();
        let mut inputs: Vec<Rc<Tensor>> = Vec::new();
        for p in &inputs_needed {
            let t = self.done[p].clone();
            let ty = crate::mir::ir::TensorTy::of(&t);
            let node = g.add(Node {
                kind: NodeKind::Input {
                    index: inputs.len() as u32,
                },
                outputs: vec![ty],
                label: String::new(),
                span: None,
            });
            inputs.push(t.clone());
            map.insert(*p, Port { node, port: 0 });
        }
        for (i, node) in src.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            let old = crate::mir::ir::NodeId::new(i);
            let mut node = node.clone();
            node.map_inputs(&mut |p| *map.get(&p).unwrap_or(&p));
            let new = g.add(node);
            for port in 0..g.nodes[new].outputs.len() as u32 {
                map.insert(Port { node: old, port }, Port { node: new, port });
            }
        }
        g.outputs = wanted.iter().map(|p| map[p]).collect();
        if self.keep_graphs {
            self.graphs.push(g.clone());
        }
        let err = |kind: RunErrorKind| RunError::new(kind, span);
        // Absurd shapes are rejected before anything is allocated.
        crate::mir::memory::check_sizes(&g).map_err(|m| err(RunErrorKind::Program(m)))?;
        self.dispatches += 1;
        self.host
            .dispatch_started(self.dispatches)
            .map_err(|m| err(RunErrorKind::Program(m)))?;
        let dispatch_start = std::time::Instant::now();
        self.caches.stats.dispatched += 1;
        let resident = self.resident_bytes();
        let mut opt = self.optimized(&g, false).map_err(err)?;
        let budget = match (self.opts.memory_limit, self.opts.machine_memory) {
            (Some(limit), _) => Some((limit, Budget::Flag)),
            (None, Some(machine)) => Some((machine, Budget::Machine)),
            (None, None) => None,
        };
        if let Some((limit, what)) = budget {
            let limit = limit as u128;
            let mut plan = crate::mir::memory::plan(&opt.graph);
            if resident + plan.peak > limit && self.opts.optimize {
                // Recompute rather than materialize: fuse every producer into its consumers.
                opt = self.optimized(&g, true).map_err(err)?;
                plan = crate::mir::memory::plan(&opt.graph);
            }
            if resident + plan.peak > limit {
                return Err(err(RunErrorKind::Program(over_budget(
                    &opt.graph, &plan, resident, limit, what,
                ))));
            }
        }
        let g = &opt.graph;
        // The result cache: the optimized graph's hash and the inputs' contents.
        // Not on MPI ranks: the key hashes the inputs' contents, and a dispatch's outputs
        // stay on the ranks that computed them until observed.
        let use_results = self.opts.result_cache && !self.spread_out();
        let key = if use_results {
            let hashes: Vec<Hash> = inputs_needed
                .iter()
                .map(|p| self.content_hash(*p))
                .collect();
            Some(cache::result_key(&opt.hash, &hashes))
        } else {
            None
        };
        let mut out: Option<Vec<Rc<Tensor>>> = None;
        if let Some(key) = &key {
            if let Some(hit) = self.caches.result(key) {
                self.caches.stats.memory_hits += 1;
                out = Some(hit);
            } else if let Some(payload) = self.host.cache_load(key) {
                let want: Vec<TensorTy> = g
                    .outputs
                    .iter()
                    .map(|p| g.nodes[p.node].outputs[p.port as usize].clone())
                    .collect();
                if let Some(ts) = cache::decode(&payload, &want) {
                    self.caches.stats.disk_hits += 1;
                    let ts: Vec<Rc<Tensor>> = ts.into_iter().map(Rc::new).collect();
                    if self.opts.memory_limit.is_none() {
                        self.caches.store_result(*key, &ts);
                    }
                    out = Some(ts);
                }
            }
        }
        let out = match out {
            Some(o) => o,
            None => {
                let res = self.evaluate(g, &inputs, span);
                if let Some(p) = &self.opts.hooks.profiler {
                    p.dispatch();
                    p.span(
                        format!("dispatch {}", self.dispatches),
                        "dispatch",
                        dispatch_start,
                        std::time::Instant::now(),
                        0,
                        vec![
                            ("nodes", g.nodes.len().to_string()),
                            ("outputs", g.outputs.len().to_string()),
                            ("ok", res.is_ok().to_string()),
                        ],
                    );
                }
                // A failed dispatch stores nothing: the error reaches the observation before
                // it prints, saves or compares anything.
                let (o, peak) = res?;
                self.caches.stats.evaluated += 1;
                self.caches.stats.peak_bytes = self.caches.stats.peak_bytes.max(resident + peak);
                if let Some(key) = &key {
                    // Under a memory budget no results are kept in memory beyond the values.
                    if self.opts.memory_limit.is_none() {
                        self.caches.store_result(*key, &o);
                    }
                    self.host.cache_store(key, &cache::encode(&o));
                }
                o
            }
        };
        for (p, t) in wanted.iter().zip(out) {
            self.done.insert(*p, t);
        }
        let held = self.resident_bytes();
        self.caches.stats.peak_bytes = self.caches.stats.peak_bytes.max(held);
        // Collected before the result is cloned (a clone would count as a use of the tensor);
        // the target itself is kept.
        self.collect(target);
        Ok(self.done[&target].clone())
    }

    /// Drops computed tensors no value can reach any more: no live handle to their port, no
    /// value sharing the tensor, not a tensor that entered the graph from a live value. Their
    /// memory goes back to the native backend's buffer pool.
    pub(super) fn collect(&mut self, target: Port) {
        self.tokens.retain(|_, w| w.strong_count() > 0);
        // The result cache's references are not uses, and neither are other computed ports
        // that share the tensor (a result served from the cache twice).
        let held = self.caches.held();
        let mut in_done: HashMap<*const Tensor, usize> = HashMap::new();
        for t in self.done.values() {
            *in_done.entry(Rc::as_ptr(t)).or_default() += 1;
        }
        // Nor is the MPI ranks' (they drop it when the coordinator does).
        let spread = self.opts.spread.clone();
        let others = |t: &Rc<Tensor>| {
            let ptr = Rc::as_ptr(t);
            let extra_ports = in_done.get(&ptr).map_or(0, |n| n.saturating_sub(1));
            Rc::strong_count(t)
                .saturating_sub(usize::from(held.contains(&ptr)))
                .saturating_sub(usize::from(spread.as_ref().is_some_and(|s| s.keeps(t))))
                .saturating_sub(extra_ports)
        };
        self.entered.retain(|_, (t, _)| others(t) > 2);
        let entered: std::collections::HashSet<Port> =
            self.entered.values().map(|(_, p)| *p).collect();
        let tokens = &self.tokens;
        let mut freed = Vec::new();
        self.done.retain(|p, t| {
            let keep =
                *p == target || tokens.contains_key(p) || entered.contains(p) || others(t) > 1;
            if !keep {
                freed.push(t.clone());
            }
            keep
        });
        let done = &self.done;
        self.hashes.retain(|p, _| done.contains_key(p));
        if let Some(native) = &mut self.native {
            for t in freed {
                if let Ok(t) = Rc::try_unwrap(t) {
                    native.recycle(t);
                }
            }
        }
    }

    /// Whether dispatches run on several MPI ranks.
    pub(super) fn spread_out(&self) -> bool {
        self.opts.spread.as_ref().is_some_and(|s| s.ranks() > 1)
    }

    /// A computed tensor the coordinator observes (prints, saves, branches on, checkpoints):
    /// on MPI ranks, its rows gathered from the ranks that computed them, the first time
    /// (every port that holds it holds the whole tensor from then on).
    pub(super) fn observed(&mut self, t: Rc<Tensor>) -> Rc<Tensor> {
        if self.opts.backend != Backend::Jit || !self.spread_out() {
            return t;
        }
        let Some(whole) = self.opts.spread.as_ref().and_then(|s| s.fetch(&t)) else {
            return t;
        };
        for v in self.done.values_mut() {
            if Rc::ptr_eq(v, &t) {
                *v = whole.clone();
            }
        }
        whole
    }

    /// The bytes of the distinct computed tensors the coordinator holds.
    pub(super) fn resident_bytes(&self) -> u128 {
        let mut seen = std::collections::HashSet::new();
        self.done
            .values()
            .filter(|t| seen.insert(Rc::as_ptr(t)))
            .map(|t| (t.len() * t.dtype().size_bytes()) as u128)
            .sum()
    }

    /// The content hash of a computed port, computed once.
    fn content_hash(&mut self, p: Port) -> Hash {
        if let Some(h) = self.hashes.get(&p) {
            return *h;
        }
        let h = crate::mir::hash::tensor_hash(&self.done[&p]);
        self.hashes.insert(p, h);
        h
    }

    /// The optimized form of a dispatched graph, from the graph cache when a graph of the
    /// same structure was optimized with the same passes and configuration before.
    fn optimized(
        &mut self,
        g: &Graph,
        recompute: bool,
    ) -> Result<Rc<cache::Optimized>, RunErrorKind> {
        let passes = self.opts.pipeline();
        let config = PassConfig {
            recompute,
            ..self.opts.config.clone()
        };
        let names: Vec<&str> = passes.iter().map(|p| p.name).collect();
        // Every field of the configuration (its `Debug` form), so a new option cannot be
        // forgotten in the key.
        let salt = format!("passes {names:?} config {config:?}");
        let key = crate::mir::hash::graph_hash(g, salt.as_bytes());
        if let Some(o) = self.caches.graphs.get(&key) {
            self.caches.stats.graphs_reused += 1;
            return Ok(o.clone());
        }
        let mut opt = g.clone();
        if !passes.is_empty() {
            let start = std::time::Instant::now();
            optimize(&mut opt, &passes, &config)?;
            self.pass_time += start.elapsed();
            if let Some(p) = &self.opts.hooks.profiler {
                p.span(
                    "passes",
                    "passes",
                    start,
                    std::time::Instant::now(),
                    0,
                    Vec::new(),
                );
            }
            self.caches.stats.optimized += 1;
        }
        let hash = crate::mir::hash::graph_hash(&opt, b"optimized");
        let o = Rc::new(cache::Optimized { graph: opt, hash });
        self.caches.graphs.insert(key, o.clone());
        Ok(o)
    }

    /// Runs an optimized graph on the backend; returns its outputs and the most bytes of
    /// computed tensors the backend held at once.
    fn evaluate(
        &mut self,
        g: &Graph,
        inputs: &[Rc<Tensor>],
        span: Span,
    ) -> RResult<(Vec<Rc<Tensor>>, u128)> {
        let err = |kind: RunErrorKind| RunError::new(kind, span);
        match self.opts.backend {
            Backend::Interp => {
                let owned: Vec<Tensor> = inputs.iter().map(|t| (**t).clone()).collect();
                let cfg = crate::interp::EvalConfig {
                    retry: self.opts.retry,
                    hooks: self.opts.hooks.clone(),
                    launch: self.dispatches << 32,
                };
                crate::interp::eval_measured(g, &owned, &cfg)
                    .map(|(v, peak)| (v.into_iter().map(Rc::new).collect(), peak))
                    .map_err(|e| err(RunErrorKind::Program(e.to_string())))
            }
            Backend::Jit => {
                if self.native.is_none() {
                    let Some(factory) = &self.opts.kernels else {
                        return Err(err(RunErrorKind::CompilerBug {
                            stage: "the coordinator".into(),
                            finding: "the native backend has no kernel source".into(),
                            graph: None,
                        }));
                    };
                    let kernels = factory().map_err(|e| err(e.into()))?;
                    let mut native =
                        Native::new(kernels, self.opts.threads).map_err(|e| err(e.into()))?;
                    native.set_retry(self.opts.retry);
                    native.set_hooks(self.opts.hooks.clone());
                    if let Some(s) = &self.opts.spread {
                        native.set_spread(s.clone());
                    }
                    if self.opts.memory_limit.is_some() {
                        // Pooled buffers are memory too.
                        native.set_pool_limit(0);
                    }
                    self.native = Some(native);
                }
                let native = self.native.as_mut().expect("created above");
                let out = native.eval(g, inputs).map_err(|e| err(e.into()))?;
                Ok((out, native.last_peak()))
            }
        }
    }
}

/// Where a dispatch's memory budget comes from.
#[derive(Clone, Copy)]
enum Budget {
    /// `--memory-limit`.
    Flag,
    /// The machine's RAM and swap.
    Machine,
}

/// The error when a graph does not fit in the memory budget even with recomputation: the
/// tensor being computed at the worst moment, its size, and what is live beside it.
fn over_budget(
    g: &Graph,
    plan: &crate::mir::memory::MemoryPlan,
    resident: u128,
    limit: u128,
    budget: Budget,
) -> String {
    use crate::mir::memory::{bytes_of, describe, format_bytes};
    let largest = match plan.peak_largest {
        Some(id) => {
            let node = &g.nodes[id];
            let size: u128 = node.outputs.iter().map(bytes_of).sum();
            let tys: Vec<String> = node.outputs.iter().map(|t| t.to_string()).collect();
            format!(
                " (the largest: tensor {}, {}, {})",
                describe(g, id),
                tys.join(", "),
                format_bytes(size)
            )
        }
        None => String::new(),
    };
    let (error, limit) = match budget {
        Budget::Flag => (
            "out of memory budget",
            format!("the limit of {} (--memory-limit)", format_bytes(limit)),
        ),
        Budget::Machine => (
            "out of memory",
            format!(
                "this machine's memory, {} (RAM and swap)",
                format_bytes(limit)
            ),
        ),
    };
    format!(
        "{error}: the graph needs {} of tensors at once{largest}, beside the {} of tensors already computed, more than {limit}, even recomputing instead of materializing",
        format_bytes(plan.peak),
        format_bytes(resident),
    )
}
