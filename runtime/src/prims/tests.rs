//! Tests of the parallel primitives: sequential references, thread-count independence (1, 2,
//! 3 and 8 threads give the same bits), edge cases and property tests.
//!
//! Long file: one room, the tests of every routine of `prims/` against the same helpers.

use proptest::prelude::*;

use super::compact::{filter, partition, Compaction};
use super::histogram::reduce_by_index;
use super::scan::{scan, scan_reference, ScanKind};
use super::scatter::{gather, scatter};
use super::sort::{sort, sort_by_key, SortKey};
use super::*;
use crate::pool::Pool;

const THREADS: [usize; 4] = [1, 2, 3, 8];

fn pools() -> Vec<Pool> {
    THREADS.iter().map(|&t| Pool::new(t).unwrap()).collect()
}

/// Deterministic pseudo-random floats with varied magnitudes and signs (so float sums round).
fn floats(n: usize, seed: u64) -> Vec<f32> {
    let mut xs = vec![0f32; n];
    crate::rand::fill_normal(seed, &mut xs, 0);
    xs.iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x *= (1 + i % 7) as f32 * 1000.0);
    xs
}

/// Deterministic pseudo-random integers in `lo..hi`.
fn ints(n: usize, seed: u64, lo: i64, hi: i64) -> Vec<i64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (s % (hi - lo) as u64) as i64
        })
        .collect()
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// The affine map `x -> a x + b` (wrapping): composing them is associative, not commutative,
/// and exact, so any bracketing gives the sequential result.
type Affine = (i64, i64);

/// `f` then `g`.
fn compose(f: Affine, g: Affine) -> Affine {
    (
        g.0.wrapping_mul(f.0),
        g.0.wrapping_mul(f.1).wrapping_add(g.1),
    )
}

fn affine_monoid() -> FnMonoid<'static, Affine> {
    FnMonoid {
        identity: (1, 0),
        combine: &compose,
    }
}

fn affines(n: usize, seed: u64) -> Vec<Affine> {
    let a = ints(n, seed, -3, 4);
    let b = ints(n, seed + 1, -100, 100);
    a.into_iter().zip(b).collect()
}

fn sequential_scan<T: Copy>(kind: ScanKind, id: T, f: impl Fn(T, T) -> T, xs: &[T]) -> Vec<T> {
    let mut acc = id;
    xs.iter()
        .map(|&x| {
            let before = acc;
            acc = f(acc, x);
            if kind == ScanKind::Inclusive {
                acc
            } else {
                before
            }
        })
        .collect()
}

fn run_scan<M: Monoid>(
    pool: &Pool,
    m: &M,
    kind: ScanKind,
    row_len: usize,
    x: &[M::T],
) -> Vec<M::T> {
    let mut y = vec![m.identity(); x.len()];
    scan(pool, m, kind, row_len, x, &mut y).unwrap();
    y
}

#[test]
fn float_scans_are_the_same_bits_at_every_thread_count() {
    // One row of several blocks (the last one short), rows of several blocks, short rows.
    let cases = [
        (3 * SCAN_BLOCK + 17, 3 * SCAN_BLOCK + 17),
        (3 * (2 * SCAN_BLOCK + 5), 2 * SCAN_BLOCK + 5),
        (7 * 1000, 7),
        (SCAN_BLOCK, SCAN_BLOCK),
    ];
    for (n, row_len) in cases {
        let x = floats(n, n as u64);
        for kind in [ScanKind::Inclusive, ScanKind::Exclusive] {
            let spec = scan_reference(&Sum::<f32>::new(), kind, row_len, &x);
            for pool in pools() {
                let y = run_scan(&pool, &Sum::<f32>::new(), kind, row_len, &x);
                assert_eq!(bits(&y), bits(&spec), "{n} {row_len} {kind:?} {pool:?}");
            }
        }
    }
}

#[test]
fn exact_scans_are_the_sequential_scan() {
    let n = 2 * SCAN_BLOCK + 3;
    let x = ints(n, 3, -1000, 1000);
    for kind in [ScanKind::Inclusive, ScanKind::Exclusive] {
        let want = sequential_scan(kind, 0, i64::wrapping_add, &x);
        let mx = sequential_scan(kind, i64::MIN, i64::max, &x);
        let aff = affines(n, 9);
        let want_aff = sequential_scan(kind, (1, 0), compose, &aff);
        for pool in pools() {
            assert_eq!(run_scan(&pool, &Sum::<i64>::new(), kind, n, &x), want);
            assert_eq!(run_scan(&pool, &Max::<i64>::new(), kind, n, &x), mx);
            // Non-commutative: combined in index order.
            assert_eq!(run_scan(&pool, &affine_monoid(), kind, n, &aff), want_aff);
        }
    }
}

#[test]
fn a_segmented_scan_is_a_user_monoid_on_flag_value_pairs() {
    // (starts a segment, sum): (f1, v1) ⊕ (f2, v2) = (f1 | f2, if f2 { v2 } else { v1 + v2 }).
    let seg = |a: (bool, i64), b: (bool, i64)| (a.0 | b.0, if b.0 { b.1 } else { a.1 + b.1 });
    let m = FnMonoid {
        identity: (false, 0),
        combine: &seg,
    };
    let n = SCAN_BLOCK + 999;
    let flags = ints(n, 4, 0, 50);
    let vals = ints(n, 5, -9, 10);
    let x: Vec<(bool, i64)> = flags.iter().map(|&f| f == 0).zip(vals.clone()).collect();
    let mut want = Vec::new();
    let mut acc = 0;
    for &(f, v) in &x {
        acc = if f { v } else { acc + v };
        want.push(acc);
    }
    for pool in pools() {
        let y = run_scan(&pool, &m, ScanKind::Inclusive, n, &x);
        assert_eq!(y.iter().map(|p| p.1).collect::<Vec<_>>(), want);
    }
}

#[test]
fn scan_edge_cases() {
    let pool = Pool::new(3).unwrap();
    let m = Sum::<f32>::new();
    assert!(run_scan(&pool, &m, ScanKind::Inclusive, 0, &[]).is_empty());
    assert_eq!(
        run_scan(&pool, &m, ScanKind::Inclusive, 1, &[2.5]),
        vec![2.5]
    );
    assert_eq!(
        run_scan(&pool, &m, ScanKind::Exclusive, 1, &[2.5]),
        vec![0.0]
    );
    // -0.0 is kept: the first element is not added to the identity.
    let y = run_scan(&pool, &m, ScanKind::Inclusive, 2, &[-0.0, -0.0]);
    assert_eq!(bits(&y), bits(&[-0.0, -0.0]));
    // Rows are independent.
    let y = run_scan(
        &pool,
        &Sum::<i64>::new(),
        ScanKind::Inclusive,
        2,
        &[1, 2, 3, 4],
    );
    assert_eq!(y, vec![1, 3, 3, 7]);
    let y = run_scan(
        &pool,
        &Sum::<i64>::new(),
        ScanKind::Exclusive,
        2,
        &[1, 2, 3, 4],
    );
    assert_eq!(y, vec![0, 1, 0, 3]);
}

#[test]
fn a_panicking_combine_is_a_task_error() {
    let boom = |a: i64, b: i64| {
        if b == 7 {
            panic!("bad element");
        }
        a + b
    };
    let m = FnMonoid {
        identity: 0,
        combine: &boom,
    };
    let mut x = vec![1i64; 3 * SCAN_BLOCK];
    x[2 * SCAN_BLOCK + 5] = 7;
    let mut y = vec![0; x.len()];
    let mut pool = Pool::new(2).unwrap();
    pool.set_retries(0);
    let e = scan(&pool, &m, ScanKind::Inclusive, x.len(), &x, &mut y).unwrap_err();
    assert_eq!(
        e.kind,
        crate::pool::TaskErrorKind::Panic("bad element".into())
    );
}

fn sequential_histogram<T: Copy>(
    n_bins: usize,
    id: T,
    f: impl Fn(T, T) -> T,
    idx: &[i64],
    vals: &[T],
) -> (Vec<T>, usize) {
    let mut bins = vec![id; n_bins];
    let mut ignored = 0;
    for (&i, &v) in idx.iter().zip(vals) {
        match usize::try_from(i).ok().filter(|&k| k < n_bins) {
            Some(k) => bins[k] = f(bins[k], v),
            None => ignored += 1,
        }
    }
    (bins, ignored)
}

fn run_hist<M: Monoid>(
    pool: &Pool,
    m: &M,
    n_bins: usize,
    idx: &[i64],
    vals: &[M::T],
) -> (Vec<M::T>, usize) {
    let mut bins = vec![m.identity(); n_bins];
    let ignored = reduce_by_index(pool, m, idx, vals, &mut bins).unwrap();
    (bins, ignored)
}

#[test]
fn histograms_with_few_and_many_bins() {
    // 256 bins over many shards; 100 000 bins (shards as long as the bins, bins split into
    // ranges); one shard with more bins than elements.
    for (n, n_bins) in [
        (5 * HISTOGRAM_SHARD + 3, 256),
        (300_001, 100_000),
        (1000, 70_000),
    ] {
        // Some indices out of range on both sides.
        let idx = ints(n, n as u64, -3, n_bins as i64 + 3);
        let vi = ints(n, 7, -50, 50);
        let want = sequential_histogram(n_bins, 0, i64::wrapping_add, &idx, &vi);
        let aff = affines(n, 11);
        let want_aff = sequential_histogram(n_bins, (1, 0), compose, &idx, &aff);
        let vf = floats(n, 8);
        let mut float_bits = None;
        for pool in pools() {
            assert_eq!(run_hist(&pool, &Sum::<i64>::new(), n_bins, &idx, &vi), want);
            assert_eq!(
                run_hist(&pool, &affine_monoid(), n_bins, &idx, &aff),
                want_aff
            );
            let (f, ig) = run_hist(&pool, &Sum::<f32>::new(), n_bins, &idx, &vf);
            assert_eq!(ig, want.1);
            let b = bits(&f);
            assert_eq!(float_bits.get_or_insert_with(|| b.clone()), &b, "{pool:?}");
        }
    }
}

#[test]
fn histogram_edge_cases() {
    let pool = Pool::new(2).unwrap();
    let m = Sum::<f32>::new();
    let mut bins = vec![5.0f32; 3];
    assert_eq!(
        reduce_by_index(&pool, &m, &[] as &[i64], &[], &mut bins),
        Ok(0)
    );
    assert_eq!(bins, vec![0.0; 3]);
    let mut none: Vec<f32> = vec![];
    assert_eq!(
        reduce_by_index(&pool, &m, &[0i64, 1], &[1.0, 2.0], &mut none),
        Ok(2)
    );
    let mut bins = vec![0.0f32; 2];
    assert_eq!(
        reduce_by_index(&pool, &m, &[1u32, 1, 9], &[1.0, 2.0, 4.0], &mut bins),
        Ok(1)
    );
    assert_eq!(bins, vec![0.0, 3.0]);
}

#[test]
fn scatter_lets_the_last_writer_win() {
    for (n, n_dest) in [
        (3 * BLOCK + 11, 1000),
        (BLOCK / 2, 3 * BLOCK),
        (0, 5),
        (5, 0),
    ] {
        let idx = ints(n, 21, -2, n_dest as i64 + 2);
        let vals = ints(n, 22, -1000, 1000);
        let mut want = ints(n_dest, 23, 0, 5);
        let init = want.clone();
        let mut ignored = 0;
        for (&i, &v) in idx.iter().zip(&vals) {
            match usize::try_from(i).ok().filter(|&k| k < n_dest) {
                Some(k) => want[k] = v,
                None => ignored += 1,
            }
        }
        for pool in pools() {
            let mut dest = init.clone();
            assert_eq!(scatter(&pool, &mut dest, &idx, &vals), Ok(ignored));
            assert_eq!(dest, want);
        }
    }
}

#[test]
fn gather_reads_rows_and_reports_the_first_bad_index() {
    let table: Vec<i64> = (0..30).collect(); // shape [10, 3]
    let idx = ints(3 * BLOCK + 5, 31, 0, 10);
    let want: Vec<i64> = idx
        .iter()
        .flat_map(|&i| (0..3).map(move |j| 3 * i + j))
        .collect();
    let flat: Vec<i64> = idx.iter().map(|&i| 2 * i).collect();
    for pool in pools() {
        let mut out = vec![0; want.len()];
        gather(&pool, &table, &[10, 3], &idx, &mut out).unwrap();
        assert_eq!(out, want);
        let mut out = vec![0; idx.len()];
        gather(&pool, &table, &[30], &idx, &mut out).unwrap();
        assert_eq!(out.iter().zip(&idx).filter(|(o, i)| o != i).count(), 0);
        let mut out = vec![0; idx.len()];
        gather(&pool, &table[..20], &[20], &flat, &mut out).unwrap();
        let mut bad = idx.clone();
        bad[2 * BLOCK + 7] = 10;
        bad[BLOCK + 1] = -4;
        let e = gather(&pool, &table, &[10, 3], &bad, &mut vec![0; want.len()]).unwrap_err();
        let GatherError::Index(e) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (e.index, e.position, e.shape.clone()),
            (-4, BLOCK + 1, vec![10, 3])
        );
        assert_eq!(
            e.to_string(),
            format!(
                "index -4 (at position {}) is out of bounds for a table of shape [10, 3]",
                BLOCK + 1
            )
        );
    }
    let pool = Pool::new(2).unwrap();
    let mut out: Vec<f32> = vec![0.0; 1];
    let e = gather(&pool, &[] as &[f32], &[0], &[0i64], &mut out).unwrap_err();
    assert!(e.to_string().contains("index 0 (at position 0)"), "{e}");
    gather(&pool, &[1.0f32], &[1], &[] as &[i64], &mut []).unwrap();
    // Rows of no element: the indices are checked all the same.
    gather(&pool, &[] as &[f32], &[4, 0], &[3i64, 0], &mut []).unwrap();
    let e = gather(&pool, &[] as &[f32], &[4, 0], &[3i64, 4], &mut []).unwrap_err();
    assert!(e.to_string().contains("index 4 (at position 1)"), "{e}");
}

fn check_compaction(pool: &Pool, x: &[i64], mask: &[bool]) {
    let kept: Vec<i64> = x.iter().zip(mask).filter(|p| *p.1).map(|p| *p.0).collect();
    let mut parted = kept.clone();
    parted.extend(x.iter().zip(mask).filter(|p| !*p.1).map(|p| *p.0));
    assert_eq!(filter(pool, x, mask).unwrap(), kept);
    assert_eq!(partition(pool, x, mask).unwrap(), (parted, kept.len()));
    assert_eq!(Compaction::new(pool, mask).unwrap().kept(), kept.len());
}

#[test]
fn filter_and_partition_are_stable() {
    let n = 3 * BLOCK + 77;
    let x = ints(n, 41, -1000, 1000);
    let half: Vec<bool> = ints(n, 42, 0, 2).iter().map(|&b| b == 1).collect();
    // Kept elements only at the very start of a block, none after.
    let sparse: Vec<bool> = (0..n).map(|i| i % BLOCK == 0).collect();
    for pool in pools() {
        for mask in [&half, &sparse, &vec![true; n], &vec![false; n]] {
            check_compaction(&pool, &x, mask);
        }
        check_compaction(&pool, &[], &[]);
        check_compaction(&pool, &[4], &[true]);
        check_compaction(&pool, &[4], &[false]);
    }
}

fn check_sort<K: SortKey + std::fmt::Debug>(
    keys: &[K],
    cmp: impl Fn(&K, &K) -> std::cmp::Ordering,
    eq: impl Fn(&[K], &[K]) -> bool,
) {
    let mut want = keys.to_vec();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| cmp(&keys[a], &keys[b]));
    want.sort_by(&cmp);
    for pool in pools() {
        let mut k = keys.to_vec();
        sort(&pool, &mut k).unwrap();
        assert!(eq(&k, &want));
        let mut k = keys.to_vec();
        let mut v: Vec<usize> = (0..keys.len()).collect();
        sort_by_key(&pool, &mut k, &mut v).unwrap();
        assert!(eq(&k, &want));
        // Stable: equal keys keep their input order.
        assert_eq!(v, order);
    }
}

#[test]
fn radix_sorts_match_a_stable_comparison_sort() {
    let n = 2 * BLOCK + 999;
    let small = ints(n, 51, -300, 300);
    let big = ints(n, 52, i64::MIN / 2, i64::MAX / 2);
    let eq = |a: &[i64], b: &[i64]| a == b;
    check_sort(&small, i64::cmp, eq);
    check_sort(&big, i64::cmp, eq);
    let i32s: Vec<i32> = small.iter().map(|&x| x as i32 * 7_000_001).collect();
    check_sort(&i32s, i32::cmp, |a, b| a == b);
    let u32s: Vec<u32> = big.iter().map(|&x| x as u32).collect();
    check_sort(&u32s, u32::cmp, |a, b| a == b);
    let u8s: Vec<u8> = big.iter().map(|&x| x as u8).collect();
    check_sort(&u8s, u8::cmp, |a, b| a == b);
    let u64s: Vec<u64> = big.iter().map(|&x| (x as u64).rotate_left(1)).collect();
    check_sort(&u64s, u64::cmp, |a, b| a == b);
    let mut f = floats(n, 53);
    f[..12].copy_from_slice(&[
        f32::NAN,
        -f32::NAN,
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        f32::MAX,
        f32::MIN,
    ]);
    f[500] = 3.0;
    f[900] = 3.0;
    let feq = |a: &[f32], b: &[f32]| bits(a) == bits(b);
    check_sort(&f, f32::total_cmp, feq);
    let d: Vec<f64> = f.iter().map(|&x| f64::from(x) * 1e200).collect();
    check_sort(&d, f64::total_cmp, |a, b| {
        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    });
    // The stated order of the special values.
    let pool = Pool::new(2).unwrap();
    let mut s = vec![f32::NAN, 1.0, -0.0, 0.0, -f32::NAN, f32::NEG_INFINITY, -0.0];
    sort(&pool, &mut s).unwrap();
    let want = [-f32::NAN, f32::NEG_INFINITY, -0.0, -0.0, 0.0, 1.0, f32::NAN];
    assert_eq!(bits(&s), bits(&want));
    // Edge cases.
    let mut e: Vec<u32> = vec![];
    sort(&pool, &mut e).unwrap();
    let mut one = vec![7u64];
    sort(&pool, &mut one).unwrap();
    assert_eq!(one, vec![7]);
}

#[test]
fn fields_pack_and_unpack() {
    let a = [1.5f32, -0.0, f32::NAN];
    let b = [-3i64, 4, i64::MIN];
    let c = [true, false, true];
    let d = [-1i32, 2, 3];
    let e = [0.25f64, -1e300, 2.0];
    let mut recs = vec![[0u64; 5]; 3];
    pack_fields(
        &[
            Column::F32(&a),
            Column::I64(&b),
            Column::Bool(&c),
            Column::I32(&d),
            Column::F64(&e),
        ],
        &mut recs,
    );
    let (mut a2, mut b2, mut c2, mut d2, mut e2) =
        ([0f32; 3], [0i64; 3], [false; 3], [0i32; 3], [0f64; 3]);
    unpack_fields(
        &recs,
        &mut [
            ColumnMut::F32(&mut a2),
            ColumnMut::I64(&mut b2),
            ColumnMut::Bool(&mut c2),
            ColumnMut::I32(&mut d2),
            ColumnMut::F64(&mut e2),
        ],
    );
    assert_eq!(bits(&a2), bits(&a));
    assert_eq!((b2, c2, d2, e2), (b, c, d, e));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn prop_scan_is_the_sequential_scan(
        n in 0usize..(2 * SCAN_BLOCK + 100),
        rows in 1usize..4,
        seed in any::<u64>(),
        threads in 1usize..5,
    ) {
        let x = ints(n * rows, seed, -1 << 40, 1 << 40);
        let pool = Pool::new(threads).unwrap();
        for kind in [ScanKind::Inclusive, ScanKind::Exclusive] {
            let y = run_scan(&pool, &Sum::<i64>::new(), kind, n.max(1), &x);
            let want: Vec<i64> = x
                .chunks(n.max(1))
                .flat_map(|r| sequential_scan(kind, 0, i64::wrapping_add, r))
                .collect();
            prop_assert_eq!(y, want);
        }
    }

    #[test]
    fn prop_histogram_scatter_filter_sort(
        n in 0usize..(3 * BLOCK),
        n_bins in 0usize..5000,
        seed in any::<u64>(),
        threads in 1usize..5,
    ) {
        let pool = Pool::new(threads).unwrap();
        let idx = ints(n, seed, -2, n_bins as i64 + 2);
        let vals = ints(n, seed ^ 1, -100, 100);
        prop_assert_eq!(
            run_hist(&pool, &Sum::<i64>::new(), n_bins, &idx, &vals),
            sequential_histogram(n_bins, 0, i64::wrapping_add, &idx, &vals)
        );
        let mut dest = vec![0i64; n_bins];
        let mut want = dest.clone();
        for (&i, &v) in idx.iter().zip(&vals) {
            if let Some(k) = usize::try_from(i).ok().filter(|&k| k < n_bins) {
                want[k] = v;
            }
        }
        scatter(&pool, &mut dest, &idx, &vals).unwrap();
        prop_assert_eq!(dest, want);
        let mask: Vec<bool> = vals.iter().map(|&v| v > 0).collect();
        let kept: Vec<i64> = idx.iter().zip(&mask).filter(|p| *p.1).map(|p| *p.0).collect();
        prop_assert_eq!(filter(&pool, &idx, &mask).unwrap(), kept);
        let mut keys = idx.clone();
        let mut order: Vec<usize> = (0..n).collect();
        sort_by_key(&pool, &mut keys, &mut order).unwrap();
        let mut want_order: Vec<usize> = (0..n).collect();
        want_order.sort_by_key(|&i| idx[i]);
        prop_assert_eq!(order, want_order);
    }
}

/// A compiled-style combine: records (count, sum of f64 bits), the state of a mean.
unsafe extern "C" fn mean_combine(a: *const u64, b: *const u64, out: *mut u64) {
    // SAFETY: the routines pass two words at each pointer.
    unsafe {
        *out = (*a).wrapping_add(*b);
        *out.add(1) = (f64::from_bits(*a.add(1)) + f64::from_bits(*b.add(1))).to_bits();
    }
}

#[test]
fn a_record_monoid_calls_a_compiled_combine() {
    // SAFETY: `mean_combine` reads and writes two words.
    let m = unsafe { RecordMonoid::new([0, 0f64.to_bits()], mean_combine) };
    let n = 2 * SCAN_BLOCK + 5;
    let vals: Vec<f64> = floats(n, 61).iter().map(|&x| f64::from(x)).collect();
    let ones = vec![1i64; n];
    let mut recs = vec![[0u64; 2]; n];
    pack_fields(&[Column::I64(&ones), Column::F64(&vals)], &mut recs);
    let idx = ints(n, 62, 0, 7);
    let mut first: Option<Vec<[u64; 2]>> = None;
    for pool in pools() {
        let mut bins = vec![[0u64; 2]; 7];
        reduce_by_index(&pool, &m, &idx, &recs, &mut bins).unwrap();
        let counts: u64 = bins.iter().map(|b| b[0]).sum();
        assert_eq!(counts, n as u64);
        let mut y = vec![[0u64; 2]; n];
        scan(&pool, &m, ScanKind::Inclusive, n, &recs, &mut y).unwrap();
        let (mut c, mut s) = (vec![0i64; n], vec![0f64; n]);
        unpack_fields(&y, &mut [ColumnMut::I64(&mut c), ColumnMut::F64(&mut s)]);
        assert_eq!(c, (1..=n as i64).collect::<Vec<_>>());
        bins.extend(y);
        assert_eq!(first.get_or_insert_with(|| bins.clone()), &bins);
    }
}

/// A producer of `x[i] * 2 + 1` (float) from `x`, counting the elements it computed.
fn doubled<'a>(
    x: &'a [f32],
    calls: &'a std::sync::atomic::AtomicUsize,
) -> impl Fn(usize, usize, *mut f32) -> i32 + Sync + 'a {
    move |lo, hi, out| {
        calls.fetch_add(hi - lo, std::sync::atomic::Ordering::Relaxed);
        for (k, &v) in x[lo..hi].iter().enumerate() {
            // SAFETY: the routine gives room for `hi - lo` elements.
            unsafe { *out.add(k) = v * 2.0 + 1.0 };
        }
        0
    }
}

#[test]
fn produced_scans_are_the_bits_of_scans_of_the_tensor() {
    use super::scan::scan_elements;
    use super::source::Elements;
    use std::sync::atomic::AtomicUsize;
    let cases = [
        (3 * SCAN_BLOCK + 17, 3 * SCAN_BLOCK + 17),
        (3 * (2 * SCAN_BLOCK + 5), 2 * SCAN_BLOCK + 5),
        (7 * 1000, 7),
        (SCAN_BLOCK, SCAN_BLOCK),
        (1, 1),
        (0, 0),
    ];
    for (n, row_len) in cases {
        let x = floats(n, n as u64 + 5);
        let mapped: Vec<f32> = x.iter().map(|v| v * 2.0 + 1.0).collect();
        for kind in [ScanKind::Inclusive, ScanKind::Exclusive] {
            let spec = scan_reference(&Sum::<f32>::new(), kind, row_len.max(1), &mapped);
            for pool in pools() {
                let calls = AtomicUsize::new(0);
                let fill = doubled(&x, &calls);
                let mut y = vec![0.0; n];
                let src = Elements::Produced {
                    len: n,
                    unit: 1,
                    fill: &fill,
                };
                scan_elements(&pool, &Sum::<f32>::new(), kind, row_len, src, &mut y).unwrap();
                assert_eq!(bits(&y), bits(&spec), "{n} {row_len} {kind:?} {pool:?}");
                // Every block is produced once, into `y`.
                let produced = calls.load(std::sync::atomic::Ordering::Relaxed);
                assert_eq!(produced, n, "{n} {row_len}");
            }
        }
    }
    // A non-commutative monoid keeps index order; a failing producer is the task's error.
    let a = affines(2 * SCAN_BLOCK + 3, 9);
    // Fails (status 7) on the block holding element `bad`, when there is one.
    let fill = |bad: usize| {
        let a = &a;
        move |lo: usize, hi: usize, out: *mut Affine| {
            // SAFETY: room for `hi - lo` elements.
            (lo..hi).for_each(|i| unsafe { *out.add(i - lo) = a[i] });
            if (lo..hi).contains(&bad) {
                7
            } else {
                0
            }
        }
    };
    let m = affine_monoid();
    let spec = sequential_scan(ScanKind::Inclusive, m.identity, compose, &a);
    for pool in pools() {
        let mut y = vec![m.identity; a.len()];
        let (failing, ok) = (fill(a.len() - 1), fill(a.len()));
        let src = Elements::Produced {
            len: a.len(),
            unit: 1,
            fill: &failing,
        };
        let e = scan_elements(&pool, &m, ScanKind::Inclusive, a.len(), src, &mut y).unwrap_err();
        assert_eq!(e.kind, crate::pool::TaskErrorKind::Code(7));
        let src = Elements::Produced {
            len: a.len(),
            unit: 1,
            fill: &ok,
        };
        scan_elements(&pool, &m, ScanKind::Inclusive, a.len(), src, &mut y).unwrap();
        assert_eq!(y, spec);
    }
}

#[test]
fn produced_histograms_and_scatters_match_those_of_tensors() {
    use super::histogram::reduce_by_index_pairs;
    use super::scatter::scatter_pairs;
    use super::source::Pairs;
    for (n, n_bins) in [
        (3 * SCAN_BLOCK + 11, 256),
        (2 * SCAN_BLOCK + 9, 3 * HISTOGRAM_SHARD),
        (1, 4),
        (0, 4),
    ] {
        let x = floats(n, 31);
        let idx = ints(n, 32, -2, n_bins as i64 + 2);
        let vals: Vec<f32> = x.iter().map(|v| v * 2.0 + 1.0).collect();
        // Indices and values from one producer (`idx` shifted by one and back, the values mapped).
        let fill = |lo: usize, hi: usize, pi: *mut i64, pv: *mut f32| {
            for i in lo..hi {
                // SAFETY: room for `hi - lo` elements in each stream.
                unsafe {
                    *pi.add(i - lo) = (idx[i] + 1) - 1;
                    *pv.add(i - lo) = x[i] * 2.0 + 1.0;
                }
            }
            0
        };
        let m = Sum::<f32>::new();
        for pool in pools() {
            let mut want = vec![0.0f32; n_bins];
            let w = reduce_by_index(&pool, &m, &idx, &vals, &mut want).unwrap();
            let mut got = vec![9.0f32; n_bins];
            let src = Pairs::Produced {
                len: n,
                fill: &fill,
            };
            assert_eq!(reduce_by_index_pairs(&pool, &m, src, &mut got), Ok(w));
            assert_eq!(bits(&got), bits(&want), "{n} {n_bins} {pool:?}");
            let init = floats(n_bins, 33);
            let (mut want, mut got) = (init.clone(), init);
            let w = scatter(&pool, &mut want, &idx, &vals).unwrap();
            assert_eq!(scatter_pairs(&pool, &mut got, src), Ok(w));
            assert_eq!(bits(&got), bits(&want), "scatter {n} {n_bins} {pool:?}");
        }
    }
}

#[test]
fn a_histogram_of_rows_is_the_histogram_of_each_column() {
    use super::histogram::reduce_by_index_rows;
    use super::source::Pairs;
    // Rows of 1, 3 and 4 lanes; few bins, many bins (split into ranges), one shard, several
    // shards and a tail, and no rows.
    for (rows, lanes, n_bins) in [
        (2 * HISTOGRAM_SHARD + 17, 3, 256),
        (HISTOGRAM_SHARD + 5, 4, 7),
        (3 * HISTOGRAM_SHARD + 1, 1, 100),
        (5 * 4096 + 3, 2, 2 * HISTOGRAM_SHARD + 3),
        (7, 4, 5),
        (0, 3, 5),
    ] {
        let n = rows * lanes;
        let vals = floats(n, 41);
        // An index per pair (lanes of one row may fall into different bins), some out of range.
        let idx = ints(n, 42, -1, n_bins as i64 + 1);
        let column = |v: &[f32], l: usize| -> Vec<f32> {
            v.iter().skip(l).step_by(lanes).copied().collect()
        };
        let icol = |l: usize| -> Vec<i64> { idx.iter().skip(l).step_by(lanes).copied().collect() };
        // Produced in whole rows: the fill checks it is asked for them.
        let fill = |lo: usize, hi: usize, pi: *mut i64, pv: *mut f32| {
            if !lo.is_multiple_of(lanes) || !hi.is_multiple_of(lanes) {
                return 7;
            }
            for i in lo..hi {
                // SAFETY: room for `hi - lo` elements in each stream.
                unsafe {
                    *pi.add(i - lo) = idx[i];
                    *pv.add(i - lo) = vals[i];
                }
            }
            0
        };
        let m = Sum::<f32>::new();
        for pool in pools() {
            let mut ignored = 0;
            let mut want = vec![0.0f32; n_bins * lanes];
            for l in 0..lanes {
                let mut b = vec![0.0f32; n_bins];
                ignored += reduce_by_index(&pool, &m, &icol(l), &column(&vals, l), &mut b).unwrap();
                for (k, v) in b.into_iter().enumerate() {
                    want[k * lanes + l] = v;
                }
            }
            for src in [
                Pairs::Slices(&idx, &vals),
                Pairs::Produced {
                    len: n,
                    fill: &fill,
                },
            ] {
                let mut got = vec![9.0f32; n_bins * lanes];
                assert_eq!(
                    reduce_by_index_rows(&pool, &m, lanes, src, &mut got),
                    Ok(ignored)
                );
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{rows}x{lanes} into {n_bins} {pool:?}"
                );
            }
        }
    }
}

#[test]
fn a_scatter_of_rows_is_the_scatter_of_each_column() {
    use super::scatter::scatter_rows;
    use super::source::Pairs;
    // Rows of 1, 3 and 4 lanes into few and many rows (many duplicates, few), several blocks
    // and a tail, one row, no rows; some indices out of range, lanes of one row at different
    // rows.
    for (rows, lanes, n_dest) in [
        (2 * BLOCK + 17, 3, 256),
        (BLOCK / 4 + 5, 4, 3 * BLOCK),
        (3 * BLOCK + 1, 1, 100),
        (1, 4, 5),
        (7, 4, 5),
        (0, 3, 5),
        (5, 2, 0),
    ] {
        let n = rows * lanes;
        let vals = floats(n, 51);
        // An index per pair, and one per row (`by_row`), both with indices out of range.
        let per_pair = ints(n, 52, -1, n_dest as i64 + 1);
        let per_row: Vec<i64> = ints(rows, 54, -1, n_dest as i64 + 1)
            .into_iter()
            .flat_map(|k| std::iter::repeat_n(k, lanes))
            .collect();
        let init = floats(n_dest * lanes, 53);
        for (idx, by_rows) in [(&per_pair, &[false][..]), (&per_row, &[false, true][..])] {
            let column = |v: &[f32], l: usize| -> Vec<f32> {
                v.iter().skip(l).step_by(lanes).copied().collect()
            };
            let icol =
                |l: usize| -> Vec<i64> { idx.iter().skip(l).step_by(lanes).copied().collect() };
            // Produced in whole rows (the fill checks it is asked for them); fails with status
            // 7 on the pair `bad`.
            let fill = |bad: usize| {
                let vals = &vals;
                move |lo: usize, hi: usize, pi: *mut i64, pv: *mut f32| {
                    if !lo.is_multiple_of(lanes)
                        || !hi.is_multiple_of(lanes)
                        || (lo..hi).contains(&bad)
                    {
                        return 7;
                    }
                    for i in lo..hi {
                        // SAFETY: room for `hi - lo` elements in each stream.
                        unsafe {
                            *pi.add(i - lo) = idx[i];
                            *pv.add(i - lo) = vals[i];
                        }
                    }
                    0
                }
            };
            let (ok, failing) = (fill(n), fill(n / 2));
            for pool in pools() {
                let mut ignored = 0;
                let mut want = init.clone();
                for l in 0..lanes {
                    let mut d = column(&init, l);
                    ignored += scatter(&pool, &mut d, &icol(l), &column(&vals, l)).unwrap();
                    for (k, v) in d.into_iter().enumerate() {
                        want[k * lanes + l] = v;
                    }
                }
                for &by_row in by_rows {
                    for src in [
                        Pairs::Slices(idx, &vals),
                        Pairs::Produced { len: n, fill: &ok },
                    ] {
                        let mut got = init.clone();
                        let r = scatter_rows(&pool, &mut got, lanes, by_row, src);
                        assert_eq!(r, Ok(ignored));
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{rows}x{lanes} into {n_dest} {by_row} {pool:?}"
                        );
                    }
                    if n > 0 {
                        let src = Pairs::Produced {
                            len: n,
                            fill: &failing,
                        };
                        let e = scatter_rows(&pool, &mut init.clone(), lanes, by_row, src);
                        assert_eq!(e.unwrap_err().kind, crate::pool::TaskErrorKind::Code(7));
                    }
                }
            }
        }
    }
}

#[test]
fn a_producer_of_units_of_rows_is_asked_for_whole_units() {
    use super::scan::scan_elements;
    use super::source::Elements;
    use std::sync::atomic::AtomicUsize;
    // Rows of 7 in units of 3 rows (a `[u, 3, 7]` map), of 37 in units of 3000 rows (units
    // longer than a block), of 5 in units of 1 row, one unit of one element, none.
    for (units, unit_rows, row_len) in [
        (2 * SCAN_BLOCK / 21 + 5, 3, 7),
        (13, 3000, 37),
        (SCAN_BLOCK / 5 + 1, 1, 5),
        (1, 1, 1),
        (0, 4, 3),
    ] {
        let (unit, n) = (unit_rows * row_len, units * unit_rows * row_len);
        let x = floats(n, n as u64 + 9);
        let mapped: Vec<f32> = x.iter().map(|v| v * 2.0 + 1.0).collect();
        for kind in [ScanKind::Inclusive, ScanKind::Exclusive] {
            let spec = scan_reference(&Sum::<f32>::new(), kind, row_len, &mapped);
            for pool in pools() {
                let calls = AtomicUsize::new(0);
                let doubled = doubled(&x, &calls);
                // Status 7 for a range that is not whole units.
                let fill = |lo: usize, hi: usize, out: *mut f32| {
                    if !lo.is_multiple_of(unit) || !hi.is_multiple_of(unit) {
                        return 7;
                    }
                    doubled(lo, hi, out)
                };
                let mut y = vec![0.0; n];
                let src = Elements::Produced {
                    len: n,
                    unit,
                    fill: &fill,
                };
                scan_elements(&pool, &Sum::<f32>::new(), kind, row_len, src, &mut y).unwrap();
                assert_eq!(
                    bits(&y),
                    bits(&spec),
                    "{units}x{unit_rows}x{row_len} {pool:?}"
                );
                assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), n);
            }
        }
    }
}

/// Splits `0..n` into `parts` contiguous parts as the MPI executor places blocks on ranks
/// (the first ones one longer when the count does not divide).
fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let (base, extra) = (n / parts, n % parts);
    (0..parts)
        .map(|r| {
            let start = r * base + r.min(extra);
            start..start + base + usize::from(r < extra)
        })
        .collect()
}

/// A histogram's `total` shards folded in `parts` (as ranks do) and combined in shard order.
fn histogram_in_parts<M: Monoid<T = f32>>(
    pool: &Pool,
    m: &M,
    lanes: usize,
    (idx, x): (&[i64], &[f32]),
    bins: usize,
    total: usize,
    parts: usize,
) -> Vec<f32> {
    let mut partials = Vec::new();
    for p in split(total, parts) {
        let mut part = vec![0f32; p.len() * bins * lanes];
        let mut ignored = vec![0; p.len()];
        let pairs = source::Pairs::Slices(idx, x);
        histogram::shard_partials(pool, m, lanes, &pairs, bins, p, &mut part, &mut ignored)
            .unwrap();
        partials.extend(part);
    }
    let mut got = vec![f32::NAN; bins * lanes];
    histogram::combine_shards(pool, m, &partials, total, &mut got).unwrap();
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A long row scanned in parts (each part's totals, the carries of all of them, each
    /// part seeded with its carries: what ranks do) has the bits of the whole scan, for a
    /// non-commutative monoid too.
    #[test]
    fn a_scan_in_parts_is_the_whole_scan(
        blocks in 2usize..6,
        tail in 0usize..SCAN_BLOCK,
        parts in 1usize..5,
        exclusive in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let n = (blocks - 1) * SCAN_BLOCK + tail.max(1);
        let kind = if exclusive { ScanKind::Exclusive } else { ScanKind::Inclusive };
        let x = floats(n, seed);
        let pool = Pool::new(2).unwrap();
        let m = Sum::<f32>::new();
        let mut want = vec![0f32; n];
        scan(&pool, &m, kind, n, &x, &mut want).unwrap();
        let nb = n.div_ceil(SCAN_BLOCK);
        let mut totals = Vec::new();
        for p in split(nb, parts) {
            totals.extend(scan::part_totals(&pool, &m, &x, p).unwrap());
        }
        let carries = scan::carries_of(&m, &totals);
        let mut got = vec![f32::NAN; n];
        for p in split(nb, parts) {
            scan::scan_part(&pool, &m, kind, &x, &mut got, p.clone(), &carries[p]).unwrap();
        }
        prop_assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
        // `(a, b) ⊕ (c, d) = (a·c, b·c + d)` on the bits of an integer pair: not commutative.
        let affine = |a: u64, b: u64| {
            let (a0, a1) = (a >> 32, a & 0xffff_ffff);
            let (b0, b1) = (b >> 32, b & 0xffff_ffff);
            (a0.wrapping_mul(b0) & 0xffff_ffff) << 32 | (a1.wrapping_mul(b0).wrapping_add(b1) & 0xffff_ffff)
        };
        let m = FnMonoid { identity: 1u64 << 32, combine: &affine };
        let xi: Vec<u64> = ints(n, seed, 0, 1 << 40).iter().map(|&v| v as u64).collect();
        let mut want = vec![0u64; n];
        scan(&pool, &m, kind, n, &xi, &mut want).unwrap();
        let mut totals = Vec::new();
        for p in split(nb, parts) {
            totals.extend(scan::part_totals(&pool, &m, &xi, p).unwrap());
        }
        let carries = scan::carries_of(&m, &totals);
        let mut got = vec![0u64; n];
        for p in split(nb, parts) {
            scan::scan_part(&pool, &m, kind, &xi, &mut got, p.clone(), &carries[p]).unwrap();
        }
        prop_assert_eq!(want, got);
    }

    /// A histogram's shards folded in parts and combined in shard order has the bits of the
    /// whole histogram, rows of lanes and a non-commutative monoid included.
    #[test]
    fn a_histogram_in_parts_is_the_whole_histogram(
        shards in 1usize..5,
        lanes in 1usize..3,
        bins in 1usize..40,
        parts in 1usize..5,
        seed in 0u64..1000,
    ) {
        let rows = shards * HISTOGRAM_SHARD - seed as usize % 100;
        let n = rows * lanes;
        let idx = ints(n, seed, 0, bins as i64);
        let x = floats(n, seed + 1);
        let pool = Pool::new(2).unwrap();
        let m = Sum::<f32>::new();
        let mut want = vec![0f32; bins * lanes];
        histogram::reduce_by_index_rows(&pool, &m, lanes, source::Pairs::Slices(&idx, &x), &mut want).unwrap();
        let total = rows.div_ceil(histogram::shard_rows(bins));
        let got = histogram_in_parts(&pool, &m, lanes, (&idx, &x), bins, total, parts);
        prop_assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
        // The last value of each bin wins: not commutative.
        let last = |_a: f32, b: f32| b;
        let m = FnMonoid { identity: -1f32, combine: &last };
        histogram::reduce_by_index_rows(&pool, &m, lanes, source::Pairs::Slices(&idx, &x), &mut want).unwrap();
        let got = histogram_in_parts(&pool, &m, lanes, (&idx, &x), bins, total, parts);
        prop_assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
