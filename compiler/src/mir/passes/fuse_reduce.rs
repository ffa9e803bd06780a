//! Pass `fuse-reduce`: the map feeding a reduction is evaluated inside the reduction, so no
//! intermediate tensor is written (see `fuse.rs` for the rule and its guarantees).
//!
//! Law: the functor law — a reduction of `map f` over a map `g` is a reduction of
//! `map (f ∘ g)`.

use super::fuse::{fuse, Consumers, Recompute};
use super::{PassConfig, Rewrite};
use crate::mir::ir::Graph;

pub fn run(g: &mut Graph, cfg: &PassConfig) -> Vec<Rewrite> {
    fuse(g, Consumers::Reductions, Recompute::of(cfg))
}
