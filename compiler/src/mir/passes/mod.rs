//! The rewrite passes over MIR and the one explicit pipeline. Every pass returns what it
//! rewrote and the law that makes each rewrite safe; the verifier runs after every pass when
//! [`PassConfig::verify`] is set (always in tests and debug builds).
//!
//! Rules every pass follows:
//! - never duplicate non-trivial work (a producer is recomputed in several consumers only when
//!   it is cheap and each consumer visits each of its points at most once);
//! - keep every index projection affine;
//! - reorder a reduction only as the monoid laws allow: partial reductions are combined in
//!   index order, whatever the thread count, and never reordered unless the monoid is
//!   commutative (none of the passes here needs to).
//!
//! Inlining of op calls and arrow chains happens earlier, while lowering (see
//! `mir/lower.rs`); the passes see one flat graph per dispatch.

mod cse;
mod dce;
mod fuse;
mod fuse_maps;
mod fuse_reduce;
mod fuse_siblings;
pub mod lanes;
pub mod shard;
mod unfused;
pub mod util;

pub use fuse::{Blocked, MAX_FUSED_COST};
pub use unfused::{unfused, Unfused};

use std::time::{Duration, Instant};

use super::ir::Graph;
use super::verify::{verify, VerifyError};

/// The law a rewrite relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// `map f ∘ map g = map (f ∘ g)`; projections compose as affine maps.
    Functor,
    /// The product of monoids is a monoid.
    ProductMonoid,
    /// A map commutes with splitting its index space.
    MapSplit,
    /// Associativity (any grouping) and identity (ragged or empty shards).
    Associativity,
    /// An expression may be replaced by its value, and equal expressions by one of them.
    ReferentialTransparency,
    /// An operation gives the same value every time, so it may be recomputed.
    Idempotence,
    Commutativity,
    /// A map before a monoid scan or histogram is the monoid's wrap (a map before a scatter
    /// computes its rows and values): the elements need no tensor.
    MonoidWrap,
}

impl Law {
    pub fn name(self) -> &'static str {
        match self {
            Law::Functor => "functor law",
            Law::ProductMonoid => "product of monoids",
            Law::MapSplit => "map law (splitting the index space)",
            Law::Associativity => "monoid associativity and identity",
            Law::ReferentialTransparency => "referential transparency",
            Law::Idempotence => "idempotence",
            Law::Commutativity => "monoid commutativity",
            Law::MonoidWrap => "a map before a scan or histogram is the monoid's wrap",
        }
    }

    /// The law in words a user understands.
    pub fn explain(self) -> &'static str {
        match self {
            Law::Functor => "applying g and then f to every element is the same as applying f(g(x)) once, so no intermediate tensor is needed",
            Law::ProductMonoid => "two reductions over the same elements can run as one reduction of pairs, because a pair of monoids is again a monoid",
            Law::MapSplit => "an elementwise computation gives the same result when its index space is cut into blocks computed separately",
            Law::Associativity => "a monoid's combine may be grouped in any way, and its zero changes nothing, so partial results of blocks can be combined in a fixed tree",
            Law::ReferentialTransparency => "an operation has no side effects, so equal computations can share one result and unused ones can be dropped",
            Law::Idempotence => "an operation gives the same value every time, so recomputing it is as good as storing it",
            Law::MonoidWrap => "a scan or histogram combines the wrap of each element, so the map that computes the elements can run as that wrap, element by element, with no tensor in between",
            Law::Commutativity => "a commutative monoid may fold its elements in any order, so interleaved lanes can fold independently and be combined afterwards",
        }
    }
}

/// One rewrite a pass made.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewrite {
    pub pass: &'static str,
    pub law: Law,
    pub detail: String,
}

/// Options of the pipeline.
#[derive(Clone, Debug)]
pub struct PassConfig {
    /// Run the verifier after every pass.
    pub verify: bool,
    /// The shard block size, in elements: a node over more than `2 · block` elements is split
    /// into blocks of about `block` elements. A function of the shape only, never of the
    /// thread count.
    pub block: usize,
    /// Whether the shard pass splits free dimensions into blocks concatenated in the graph.
    /// The native backend shards free dimensions itself (each shard task writes its rows of
    /// one buffer), so it turns this off and keeps only the splitting of reductions.
    pub split_free: bool,
    /// The lanes pass rewrites reductions whose innermost reduced extent is at least this
    /// (and at least `lanes::LANES`).
    pub lane_min: usize,
    /// Recompute instead of materializing: a producer map read by several consumers, or
    /// visited more than once per point, is fused into every consumer whatever its cost, so
    /// its tensor is never held. The coordinator asks for this when a graph's tensors would
    /// not fit in the memory budget (`--memory-limit`); idempotence makes it safe.
    pub recompute: bool,
}

/// The default [`PassConfig::lane_min`]: shorter rows gain little from SIMD lanes.
pub const DEFAULT_LANE_MIN: usize = 256;

/// The default block size: 2^16 elements (256 KiB of `f32`).
pub const DEFAULT_BLOCK: usize = 1 << 16;

impl Default for PassConfig {
    fn default() -> Self {
        PassConfig {
            verify: cfg!(debug_assertions),
            block: DEFAULT_BLOCK,
            split_free: true,
            lane_min: DEFAULT_LANE_MIN,
            recompute: false,
        }
    }
}

/// A pass: a name (its flag spelling), what it guarantees, and the rewrite function.
pub struct Pass {
    pub name: &'static str,
    pub description: &'static str,
    pub run: fn(&mut Graph, &PassConfig) -> Vec<Rewrite>,
}

pub const FUSE_MAPS: Pass = Pass {
    name: "fuse-maps",
    description: "fuses a producer map into the maps that read it, and inlines scalar constants",
    run: fuse_maps::run,
};

pub const FUSE_REDUCE: Pass = Pass {
    name: "fuse-reduce",
    description: "evaluates the map feeding a reduction inside the reduction",
    run: fuse_reduce::run,
};

pub const FUSE_SIBLINGS: Pass = Pass {
    name: "fuse-siblings",
    description: "runs reductions over the same input and index space as one pass (product monoid)",
    run: fuse_siblings::run,
};

pub const CSE: Pass = Pass {
    name: "cse",
    description: "merges nodes that compute the same thing",
    run: cse::run,
};

pub const DCE: Pass = Pass {
    name: "dce",
    description: "drops nodes no output needs",
    run: dce::run,
};

pub const SHARD: Pass = Pass {
    name: "shard",
    description: "splits large maps into blocks and large reductions into partial reductions combined in a fixed tree",
    run: shard::run,
};

/// The pipeline, in order.
pub const LANES: Pass = Pass {
    name: "lanes",
    description: "folds long contiguous reductions with a commutative monoid in interleaved lanes (SIMD accumulators)",
    run: lanes::run,
};

pub const PIPELINE: &[Pass] = &[
    CSE,
    FUSE_MAPS,
    FUSE_REDUCE,
    FUSE_SIBLINGS,
    CSE,
    DCE,
    SHARD,
    LANES,
];

/// The pass with this flag spelling.
pub fn pass_by_name(name: &str) -> Option<&'static Pass> {
    PIPELINE.iter().find(|p| p.name == name)
}

/// The passes named (by `--passes` or a test's `// passes:`), in the order given; an unknown
/// name is an error that lists every pass once (`cse` runs twice in the pipeline).
pub fn selected<S: AsRef<str>>(names: &[S]) -> Result<Vec<&'static Pass>, String> {
    names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            pass_by_name(n).ok_or_else(|| {
                let mut known: Vec<&str> = Vec::new();
                for p in PIPELINE {
                    if !known.contains(&p.name) {
                        known.push(p.name);
                    }
                }
                format!("unknown pass `{n}`; the passes are: {}", known.join(", "))
            })
        })
        .collect()
}

/// What a pipeline run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub rewrites: Vec<Rewrite>,
    pub timings: Vec<(&'static str, Duration)>,
}

/// A pass left the graph invalid: a compiler bug, reported with the pass's name.
#[derive(Debug)]
pub struct PassError {
    pub pass: &'static str,
    pub error: VerifyError,
    pub graph: String,
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "internal compiler error: pass `{}` broke the MIR: {}\n{}",
            self.pass, self.error, self.graph
        )
    }
}

/// Runs `passes` in order.
pub fn optimize(
    g: &mut Graph,
    passes: &[&'static Pass],
    cfg: &PassConfig,
) -> Result<Report, PassError> {
    let mut report = Report::default();
    for p in passes {
        let start = Instant::now();
        let rewrites = (p.run)(g, cfg);
        report.timings.push((p.name, start.elapsed()));
        report.rewrites.extend(rewrites);
        if cfg.verify {
            verify(g).map_err(|error| PassError {
                pass: p.name,
                error,
                graph: super::print(g),
            })?;
        }
    }
    Ok(report)
}

/// Runs the whole pipeline.
pub fn optimize_all(g: &mut Graph, cfg: &PassConfig) -> Result<Report, PassError> {
    let all: Vec<&'static Pass> = PIPELINE.iter().collect();
    optimize(g, &all, cfg)
}
