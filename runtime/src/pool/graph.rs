//! [`TaskGraph`]: tasks and the earlier tasks each must wait for, numbered in topological
//! order, with join tasks that do no work.

use std::ops::Range;

/// Tasks and the earlier tasks each must wait for.
///
/// Tasks are numbered in the order they are added, and a task may depend only on tasks added
/// before it, so the numbering is a topological order and the graph has no cycle. A *join*
/// task does no work (the executor never calls the task function for it); it exists so that
/// `m` tasks can wait for `n` others through `n + m` edges instead of `n * m`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskGraph {
    pub(super) deps: Vec<Vec<usize>>,
    pub(super) succs: Vec<Vec<usize>>,
    pub(super) join: Vec<bool>,
}

impl TaskGraph {
    /// An empty graph.
    pub fn new() -> TaskGraph {
        TaskGraph::default()
    }

    /// Adds a task that waits for `deps` and returns its number.
    ///
    /// # Panics
    /// If a dependency is not an earlier task.
    pub fn add(&mut self, deps: &[usize]) -> usize {
        self.push(deps, false)
    }

    /// Adds `n` tasks that each wait for `deps` (the shards of one kernel) and returns their
    /// numbers.
    ///
    /// # Panics
    /// If a dependency is not an earlier task.
    pub fn add_many(&mut self, n: usize, deps: &[usize]) -> Range<usize> {
        let start = self.len();
        for _ in 0..n {
            self.push(deps, false);
        }
        start..self.len()
    }

    /// Adds a join task, which does no work and completes once all of `deps` have, and returns
    /// its number.
    ///
    /// # Panics
    /// If a dependency is not an earlier task.
    pub fn join(&mut self, deps: &[usize]) -> usize {
        self.push(deps, true)
    }

    /// The number of tasks, joins included.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// The tasks that task `task` waits for.
    pub fn deps(&self, task: usize) -> &[usize] {
        &self.deps[task]
    }

    /// Whether task `task` is a join task.
    pub fn is_join(&self, task: usize) -> bool {
        self.join[task]
    }

    fn push(&mut self, deps: &[usize], join: bool) -> usize {
        let id = self.len();
        let mut deps = deps.to_vec();
        deps.sort_unstable();
        deps.dedup();
        for &d in &deps {
            assert!(
                d < id,
                "task {id} may depend only on earlier tasks, not on task {d}"
            );
            self.succs[d].push(id);
        }
        self.deps.push(deps);
        self.succs.push(Vec::new());
        self.join.push(join);
        id
    }
}
