//! Tests of the placement of shards on ranks and of the halo plan (`spread.rs`).

use super::*;

#[test]
fn shard_blocks_cover_every_shard_once_in_order() {
    for shards in 0..40 {
        for ranks in 1..9 {
            let mut next = 0;
            for r in 0..ranks {
                let s = shards_of(r, ranks, shards);
                assert_eq!(s.start, next, "{shards} shards on {ranks} ranks");
                next = s.end;
            }
            assert_eq!(next, shards);
        }
    }
    assert_eq!(shards_of(0, 4, 10), 0..3);
    assert_eq!(shards_of(3, 4, 10), 8..10);
}

#[test]
fn rows_stop_at_the_extent() {
    let l = LaunchRows {
        name: "x",
        shards: 3,
        rows: 4,
        extent0: 10,
        outputs: &[],
        needs: &[],
    };
    assert_eq!(rows_of(0, 2, &l), 0..8);
    assert_eq!(rows_of(1, 2, &l), 8..10);
}

/// Property: `RowSet::without` is exactly the rows of `want` outside `have`, and `joined`
/// is the union exactly when the union is one range.
#[test]
fn missing_rows_and_unions() {
    for ws in 0..7 {
        for we in ws..7 {
            for hs in 0..7 {
                for he in hs..7 {
                    let (want, have) = (ws..we, hs..he);
                    let m = RowSet::from(want.clone()).without(&have);
                    for x in 0..7 {
                        let lacked = want.contains(&x) && !have.contains(&x);
                        assert_eq!(m.contains(&x), lacked, "{want:?} {have:?} {x}");
                    }
                    let union: Vec<usize> = (0..7)
                        .filter(|x| want.contains(x) || have.contains(x))
                        .collect();
                    match joined(&want, &have) {
                        Some(j) => assert_eq!(j.collect::<Vec<_>>(), union),
                        None => assert!(union.windows(2).any(|w| w[1] != w[0] + 1)),
                    }
                }
            }
        }
    }
    assert_eq!(RowSet::from(0..10).without(&(3..10)), 0..3);
    assert!(RowSet::from(0..10).without(&(0..10)).is_empty());
    assert_eq!(RowSet::from(0..10).without(&(3..5)).ranges(), [0..3, 5..10]);
}

/// A small deterministic generator for the property tests (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// Every point of a box of free extents `space` with free index 0 in `block` and reduced
/// extents `red`.
fn points(space: &[usize], red: &[usize], block: &Range<usize>) -> Vec<Vec<i64>> {
    let mut dims: Vec<Range<usize>> = space.iter().map(|&n| 0..n).collect();
    if let Some(d) = dims.first_mut() {
        *d = block.clone();
    }
    dims.extend(red.iter().map(|&n| 0..n));
    let mut out = vec![Vec::new()];
    for d in dims {
        out = out
            .into_iter()
            .flat_map(|p| {
                d.clone().map(move |x| {
                    let mut p = p.clone();
                    p.push(x as i64);
                    p
                })
            })
            .collect();
    }
    if space.is_empty() && block.is_empty() {
        out.clear();
    }
    out
}

/// Property: the rows `rows_read` gives hold the (clamped) first coordinate of every
/// point of the box, and are the tightest such range: both ends are read.
#[test]
fn rows_read_cover_every_read_and_no_more() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        let space: Vec<usize> = (0..rng.below(3))
            .map(|_| rng.below(9) as usize + 1)
            .collect();
        let red: Vec<usize> = (0..rng.below(3)).map(|_| rng.below(5) as usize).collect();
        let vars = (space.len() + red.len()) as u64;
        let a = Affine {
            konst: rng.between(-6, 6),
            coeffs: (0..rng.below(4))
                .filter(|_| vars > 0)
                .map(|_| (rng.below(vars) as u32, rng.between(-3, 3)))
                .collect(),
        };
        let len = space.first().copied().unwrap_or(1);
        let lo = rng.below(len as u64 + 1) as usize;
        let block = lo..lo + rng.below((len - lo) as u64 + 1) as usize;
        let extent0 = rng.below(20) as usize + 1;
        let got = rows_read(&a, &space, &red, block.clone(), extent0);
        let read: Vec<usize> = points(&space, &red, &block)
            .iter()
            .map(|p| {
                let x = a.konst
                    + a.coeffs
                        .iter()
                        .map(|&(v, c)| c * p[v as usize])
                        .sum::<i64>();
                x.clamp(0, extent0 as i64 - 1) as usize
            })
            .collect();
        let what =
            format!("case {case}: {a:?} over {space:?} x {red:?}, rows {block:?} of {extent0}");
        match got {
            None => assert!(read.is_empty(), "{what}: no rows, but {read:?} are read"),
            Some(r) => {
                assert!(!read.is_empty(), "{what}: {r:?}, but the box is empty");
                assert!(
                    read.iter().all(|x| r.contains(x)),
                    "{what}: {r:?} misses a read of {read:?}"
                );
                assert!(
                    read.contains(&r.start) && read.contains(&(r.end - 1)),
                    "{what}: {r:?} is wider than the reads"
                );
            }
        }
    }
}

/// Property: for random shard plans of a stencil's reader on 1 to 5 ranks, the rows a
/// rank needs hold every row its shards read (brute force over the shards' points).
#[test]
fn halo_needs_cover_every_shard_read() {
    let text = "%0 = input 0 : f32[37, 5]\n\
        %1 = map [37, 5] reads(%0.0[i0 - 2, i1 | pad 0.0f32], %0.0[i0 + 1, i1 | clamp]) : f32[37, 5] { add(r0, r1) }\n\
        %2 = map [37, 5] reads(%1.0[i0, i1], %0.0[i0, i1]) : f32[37, 5] { mul(r0, r1) }\n\
        %3 = reduce [] over [37, 5] sum reads(%2.0[i0, i1]) : f32[] { r0 }\n\
        output %3.0\n";
    let g = crate::mir::parse(text).expect("the test graph parses");
    let mut rng = Rng(7);
    for _ in 0..200 {
        let ranks = rng.below(5) as usize + 1;
        let rows = rng.below(12) as usize + 1;
        let shards = 37usize.div_ceil(rows);
        let plan = Some((rows, shards));
        let placed = vec![None, plan, plan, Some((1, 1))];
        let needs = rows_needed(&g, &placed, ranks);
        // %2 is read by %3, a scalar reduction run by the rank of shard 0: that rank
        // needs every row, the others none.
        let n2 = &needs[&Port {
            node: crate::mir::ir::NodeId(2),
            port: 0,
        }];
        assert_eq!(n2[0], 0..37);
        assert!(n2[1..].iter().all(|r| r.is_empty()));
        let port = |n| Port {
            node: crate::mir::ir::NodeId(n),
            port: 0,
        };
        let (n0s, n1s) = (&needs[&port(0)], &needs[&port(1)]);
        assert_eq!((n0s.len(), n1s.len()), (ranks, ranks));
        for (q, (n0, n1)) in n0s.iter().zip(n1s).enumerate() {
            let s = shards_of(q, ranks, shards);
            let block = (s.start * rows).min(37)..(s.end * rows).min(37);
            for i in block.clone() {
                for d in [-2i64, 1, 0] {
                    let row = (i as i64 + d).clamp(0, 36) as usize;
                    assert!(
                        n0.contains(&row),
                        "rank {q} of {ranks}, rows {block:?}: %0 row {row} not in {n0:?}"
                    );
                }
                assert!(n1.contains(&i), "rank {q}: %1 row {i} not in {n1:?}");
            }
            // %1 is read at its own rows only: nothing moves.
            if block.is_empty() {
                assert!(n1.is_empty(), "rank {q} of {ranks}: {n1:?}");
            } else {
                assert_eq!(*n1, block, "rank {q} of {ranks}");
            }
        }
    }
}

/// A contraction is placed by its GEMM blocks of rows, kernel or not: a block reads its
/// rows of `x[i, k]` and every row of `w[k, j]` or of a transposed `x[k, i]`, so only
/// the rank that runs blocks of the transposed product needs all of `x`.
#[test]
fn gemm_blocks_read_their_rows_of_the_left_operand() {
    let text = "%0 = input 0 : f32[1024, 8]\n\
        %1 = input 1 : f32[8, 4]\n\
        %2 = reduce [1024, 4] over [8] sum reads(%0.0[i0, i2], %1.0[i2, i1]) : f32[1024, 4] { mul(r0, r1) }\n\
        %3 = reduce [8, 4] over [1024] sum reads(%0.0[i2, i0], %2.0[i2, i1]) : f32[8, 4] { mul(r0, r1) }\n\
        output %2.0, %3.0\n";
    let g = crate::mir::parse(text).expect("the test graph parses");
    let schedule = crate::mir::schedule::plan(&g);
    let n = g.nodes.len();
    let placed = placements(&g, &schedule, &vec![None; n], &vec![None; n]);
    // 1024 rows: two blocks of 512; 8 rows: one block of 32.
    assert_eq!(placed, [None, None, Some((512, 2)), Some((32, 1))]);
    let port = |n| Port {
        node: crate::mir::ir::NodeId(n),
        port: 0,
    };
    let needs = rows_needed(&g, &placed, 2);
    assert_eq!(needs[&port(0)], [0..1024, 512..1024], "{needs:?}");
    assert_eq!(needs[&port(1)], [0..8, 0..8]);
    assert_eq!(needs[&port(2)], [0..1024, 0..0]);
    assert_eq!(needs[&port(3)], [0..0, 0..0]);
    // Each rank holds the rows of the product it computed.
    assert_eq!(
        held(&g, port(2), &placed, needs.get(&port(2)), 2),
        Held::Rows {
            own: vec![0..512, 512..1024],
            have: vec![0..1024, 512..1024],
        }
    );
}

/// A random fill of two dimensions whose blocks of elements hold whole rows is placed by
/// rows (its launch's own blocks), so a reader by rows takes only its rows of it; one
/// whose rows straddle blocks goes whole.
#[test]
fn random_fills_are_placed_by_rows_when_blocks_hold_whole_rows() {
    let n = shard_elements();
    assert_eq!(random_rows(&[3 * n + 1]), Some((n, 4)));
    assert_eq!(random_rows(&[5, n]), Some((1, 5)));
    assert_eq!(random_rows(&[5, 2 * n]), None);
    assert_eq!((random_rows(&[5, 0]), random_rows(&[])), (None, None));
    let text = format!(
        "%0 = random uniform seed 0 : f32[8, {n}]\n\
         %1 = map [8, {n}] reads(%0.0[i0, i1]) : f32[8, {n}] {{ r0 }}\n\
         output %1.0\n"
    );
    let g = crate::mir::parse(&text).expect("the test graph parses");
    let s = crate::mir::schedule::plan(&g);
    let placed = placements(&g, &s, &[None, None], &[None, None]);
    assert_eq!(placed[0], Some((1, 8)));
    let needs = rows_needed(&g, &[placed[0], Some((1, 8))], 2);
    let port = Port {
        node: crate::mir::ir::NodeId(0),
        port: 0,
    };
    assert_eq!(needs[&port], [0..4, 4..8], "{needs:?}");
}

/// A scan and a histogram of plain reads are placed by their routine's blocks: their
/// inputs are needed by rows (a rank's blocks), and their outputs stay by rows (a
/// histogram's by the rows of a map over its bins: 10 bins are one block, on rank 0); with
/// a fused producer too (each rank computes the elements of its blocks).
#[test]
fn scans_and_histograms_of_plain_reads_are_placed_by_blocks() {
    use flow_runtime::prims::{HISTOGRAM_SHARD, SCAN_BLOCK};
    let n = 4 * SCAN_BLOCK + 5;
    let text = format!(
        "%0 = input 0 : f32[{n}]\n\
         %1 = input 1 : i64[{n}]\n\
         %2 = scan [{n}] sum reads(%0.0[i0]) : f32[{n}] {{ r0 }}\n\
         %3 = histogram [{n}] bins 10 sum reads(%1.0[i0], %0.0[i0]) : f32[10] {{ r0; r1 }}\n\
         %4 = scan [{n}] sum reads(%0.0[i0]) : f32[{n}] {{ mul(r0, 2.0f32) }}\n\
         output %2.0, %3.0, %4.0\n"
    );
    let g = crate::mir::parse(&text).expect("the test graph parses");
    let s = crate::mir::schedule::plan(&g);
    let k = g.nodes.len();
    let placed = placements(&g, &s, &vec![None; k], &vec![None; k]);
    let shards = n.div_ceil(HISTOGRAM_SHARD);
    assert_eq!(
        placed,
        [
            None,
            None,
            Some((SCAN_BLOCK, 5)),
            Some((HISTOGRAM_SHARD, shards)),
            Some((SCAN_BLOCK, 5))
        ]
    );
    let port = |n| Port {
        node: crate::mir::ir::NodeId(n),
        port: 0,
    };
    let needs = rows_needed(&g, &placed, 2);
    // %0 is read by rows by both scans, the one with a producer (%4) too: each rank
    // computes its blocks' elements.
    assert_eq!(needs[&port(0)], [0..3 * SCAN_BLOCK, 3 * SCAN_BLOCK..n]);
    assert_eq!(needs[&port(1)], [0..3 * SCAN_BLOCK, 3 * SCAN_BLOCK..n]);
    assert_eq!(needs[&port(3)], [0..0, 0..0]);
    assert_eq!(
        held(&g, port(3), &placed, needs.get(&port(3)), 2),
        Held::Rows {
            own: vec![0..10, 10..10],
            have: vec![0..10, 10..10],
        }
    );
    assert_eq!(
        held(&g, port(2), &placed, needs.get(&port(2)), 2),
        Held::Rows {
            own: vec![0..3 * SCAN_BLOCK, 3 * SCAN_BLOCK..n],
            have: vec![0..3 * SCAN_BLOCK, 3 * SCAN_BLOCK..n],
        }
    );
}

/// A gather's table goes to every rank whole; a graph output of a placed producer
/// that nothing reads goes nowhere (it stays on the ranks that computed it), one of a
/// producer not placed goes to every rank whole.
#[test]
fn gathers_and_outputs_need_every_row() {
    let text = "%0 = random uniform seed 0 : f32[16]\n\
        %1 = map [8] reads(%0.0[0]) : f32[8] { gather(r0, mul(2i64, i0)) }\n\
        output %1.0\n";
    let g = crate::mir::parse(text).expect("the test graph parses");
    let port = |n| Port {
        node: crate::mir::ir::NodeId(n),
        port: 0,
    };
    let needs = rows_needed(&g, &[None, Some((2, 4))], 3);
    assert_eq!(needs.len(), 1, "{needs:?}");
    assert_eq!(needs[&port(1)], vec![0..0; 3]);
    let needs = rows_needed(&g, &[None, None], 3);
    assert!(needs.is_empty(), "{needs:?}");
    // The stencil's input, a random fill of two dimensions, goes whole.
    let text = "%0 = random uniform seed 0 : f32[16, 4]\n\
        %1 = map [16, 4] reads(%0.0[i0 + 1, i1 | pad 0.0f32]) : f32[16, 4] { r0 }\n\
        output %1.0\n";
    let g = crate::mir::parse(text).expect("the test graph parses");
    let needs = rows_needed(&g, &[None, Some((2, 8))], 3);
    assert_eq!(needs.keys().collect::<Vec<_>>(), [&port(1)], "{needs:?}");
}

/// A scatter of plain reads is placed by blocks of `BLOCK` pairs: its index and values are
/// needed by rows (a rank's blocks), its output stays by rows; with a fused producer too.
/// With an unsigned index, it runs whole, and reads its destination whole.
#[test]
fn scatters_of_plain_reads_are_placed_by_blocks() {
    use flow_runtime::prims::BLOCK;
    let n = 4 * BLOCK + 5;
    let text = format!(
        "%0 = input 0 : f32[{n}]\n\
         %1 = input 1 : i64[{n}]\n\
         %2 = input 2 : f32[100]\n\
         %3 = scatter %2.0 [{n}] reads(%1.0[i0], %0.0[i0]) : f32[100] {{ r0; r1 }}\n\
         %4 = input 3 : i64[{n}]\n\
         %5 = scatter %2.0 [{n}] reads(%4.0[i0], %0.0[i0]) : f32[100] {{ r0; mul(r1, 2.0f32) }}\n\
         %6 = input 4 : u32[{n}]\n\
         %7 = scatter %2.0 [{n}] reads(%6.0[i0], %0.0[i0]) : f32[100] {{ r0; r1 }}\n\
         output %3.0, %5.0, %7.0\n"
    );
    let g = crate::mir::parse(&text).expect("the test graph parses");
    let s = crate::mir::schedule::plan(&g);
    let k = g.nodes.len();
    let placed = placements(&g, &s, &vec![None; k], &vec![None; k]);
    assert_eq!(
        placed,
        [
            None,
            None,
            None,
            Some((BLOCK, 5)),
            None,
            Some((BLOCK, 5)),
            None,
            None
        ]
    );
    let port = |n| Port {
        node: crate::mir::ir::NodeId(n),
        port: 0,
    };
    let needs = rows_needed(&g, &placed, 2);
    // %0 is read by rows by the scatter with a producer (%5) too, and by the one with an
    // unsigned index (%7), which runs whole, whole.
    assert!(!needs.contains_key(&port(0)), "{needs:?}");
    assert_eq!(needs[&port(1)], [0..3 * BLOCK, 3 * BLOCK..n]);
    assert_eq!(needs[&port(4)], [0..3 * BLOCK, 3 * BLOCK..n]);
    // The destination is read whole by the scatter not placed (%7); the placed ones'
    // outputs stay by rows (100 elements: one block, on rank 0), the other's is whole.
    assert!(!needs.contains_key(&port(2)), "{needs:?}");
    assert_eq!(needs[&port(3)], [0..0, 0..0]);
    assert_eq!(
        held(&g, port(3), &placed, needs.get(&port(3)), 2),
        Held::Rows {
            own: vec![0..100, 100..100],
            have: vec![0..100, 100..100],
        }
    );
    assert_eq!(needs[&port(5)], [0..0, 0..0]);
    assert!(!needs.contains_key(&port(7)), "{needs:?}");
    assert_eq!(held(&g, port(7), &placed, None, 2), Held::Whole);
}

/// A histogram's and a scatter's results, placed by blocks, are left on the ranks by the
/// rows of a map over their shape ([`output_rows`]): an elementwise reader of them (placed
/// by its own shards, the same rows) moves nothing, a stencil one halo row; the scatter
/// needs its destination's rows of its own result; a graph output is held by rows. Not
/// placed, they are whole and the destination is read whole. On 1 to 5 ranks.
#[test]
fn histogram_and_scatter_results_stay_by_rows() {
    use flow_runtime::prims::HISTOGRAM_SHARD;
    let n = 4 * HISTOGRAM_SHARD + 5;
    let b = 4 * shard_elements() + 3;
    let text = format!(
        "%0 = input 0 : f32[{n}]\n\
         %1 = input 1 : i64[{n}]\n\
         %2 = input 2 : f32[{b}]\n\
         %3 = histogram [{n}] bins {b} sum reads(%1.0[i0], %0.0[i0]) : f32[{b}] {{ r0; r1 }}\n\
         %4 = scatter %2.0 [{n}] reads(%1.0[i0], %0.0[i0]) : f32[{b}] {{ r0; r1 }}\n\
         %5 = map [{b}] reads(%3.0[i0], %4.0[i0], %2.0[i0]) : f32[{b}] {{ add(add(r0, r1), r2) }}\n\
         %6 = map [{b}] reads(%3.0[i0 + 1 | pad 0.0f32]) : f32[{b}] {{ r0 }}\n\
         output %5.0, %6.0, %4.0\n"
    );
    let g = crate::mir::parse(&text).expect("the test graph parses");
    let s = crate::mir::schedule::plan(&g);
    let k = g.nodes.len();
    let id = crate::mir::ir::NodeId;
    let mut placed = placements(&g, &s, &vec![None; k], &vec![None; k]);
    let shards = n.div_ceil(b.max(HISTOGRAM_SHARD));
    assert_eq!(placed[3], Some((b.max(HISTOGRAM_SHARD), shards)));
    assert!(placed[4].is_some());
    // The maps as the executor places kernels run alone: by their own shards.
    placed[5] = Some(shard_plan(&g, id(5)));
    placed[6] = Some(shard_plan(&g, id(6)));
    let plan = shard_plan(&g, id(5));
    assert_eq!(plan, (shard_elements(), 5));
    assert_eq!(output_rows(&g, id(3), &placed), Some(plan));
    assert_eq!(output_rows(&g, id(4), &placed), Some(plan));
    assert_eq!(output_rows(&g, id(5), &placed), Some(plan));
    let port = |n| Port {
        node: id(n),
        port: 0,
    };
    for ranks in 1..6 {
        let needs = rows_needed(&g, &placed, ranks);
        let own: Vec<Range<usize>> = (0..ranks)
            .map(|q| {
                let s = shards_of(q, ranks, plan.1);
                (s.start * plan.0).min(b)..(s.end * plan.0).min(b)
            })
            .collect();
        // The elementwise reader and the scatter read their own rows only.
        assert_eq!(needs[&port(2)], own, "{ranks} ranks");
        assert_eq!(needs[&port(4)], own, "{ranks} ranks");
        // The stencil reads the row after each rank's block too.
        for (q, need) in needs[&port(3)].iter().enumerate() {
            let want = if own[q].is_empty() {
                0..0
            } else {
                own[q].start..(own[q].end + 1).min(b)
            };
            assert_eq!(*need, want, "rank {q} of {ranks}");
        }
        assert_eq!(
            held(&g, port(4), &placed, needs.get(&port(4)), ranks),
            Held::Rows {
                own: own.clone(),
                have: own.clone(),
            }
        );
        // The index and values by the scatter's and histogram's blocks of pairs.
        assert!(needs.contains_key(&port(0)) && needs.contains_key(&port(1)));
    }
    // Not placed (e.g. with a fused producer): every rank runs them whole.
    placed[3] = None;
    placed[4] = None;
    assert_eq!(output_rows(&g, id(3), &placed), None);
    let needs = rows_needed(&g, &placed, 3);
    assert!(!needs.contains_key(&port(2)), "{needs:?}");
    assert!(!needs.contains_key(&port(3)), "{needs:?}");
    assert!(!needs.contains_key(&port(4)), "{needs:?}");
    assert_eq!(held(&g, port(4), &placed, None, 3), Held::Whole);
}

/// A rank's need is the union of its readers' rows, not their hull: rank 0 reads the first
/// rows for a reduction's blocks and the last row for a scalar, and needs nothing between.
#[test]
fn needs_are_the_union_of_the_reads() {
    let text = "%0 = input 0 : f32[100]\n\
        %1 = reduce [10] over [10] sum reads(%0.0[10 * i0 + i1]) : f32[10] { r0 }\n\
        %2 = map [] reads(%0.0[99]) : f32[] { r0 }\n\
        output %1.0, %2.0\n";
    let g = crate::mir::parse(text).expect("the test graph parses");
    let port = Port {
        node: crate::mir::ir::NodeId(0),
        port: 0,
    };
    let needs = rows_needed(&g, &[None, Some((1, 10)), Some((1, 1))], 2);
    let mut rank0 = RowSet::from(0..50);
    rank0.insert(99..100);
    assert_eq!(needs[&port], [rank0, RowSet::from(50..100)], "{needs:?}");
}

/// Row sets: joined when they overlap or touch, in order; what is in a block, what is
/// outside a range, and a range extended by what touches it.
#[test]
fn row_sets() {
    let mut s = RowSet::default();
    for r in [10..20, 40..50, 0..5, 20..25, 45..60, 7..7] {
        s.insert(r);
    }
    assert_eq!(s.ranges(), [0..5, 10..25, 40..60]);
    assert_eq!(s.rows(), 5 + 15 + 20);
    assert!(s.contains(&12) && !s.contains(&30));
    assert_eq!(s.within(&(3..42)).ranges(), [3..5, 10..25, 40..42]);
    assert_eq!(s.without(&(12..45)).ranges(), [0..5, 10..12, 45..60]);
    assert_eq!(s.without(&(0..0)), s);
    assert_eq!(s.joined_to(&(5..10)), 0..25);
    assert_eq!(s.joined_to(&(30..35)), 30..35);
    assert_eq!(s.scaled(2).ranges(), [0..10, 20..50, 80..120]);
    assert_eq!(s.nth_rows(0, 7).ranges(), [0..5, 10..12]);
    assert_eq!(s.nth_rows(3, 20).ranges(), [3..5, 10..25, 40..43]);
    assert_eq!(s.nth_rows(20, 100), 40..60);
    assert!(s.nth_rows(40, 5).is_empty());
    assert_eq!(RowSet::from(3..3), 0..0);
    assert!(RowSet::from(3..3).is_empty());
}
