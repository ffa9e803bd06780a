//! `rowfold`: times one shard of W3's softmax (16 rows of 4096 `f32`, what a shard of the
//! row group holds) through the passes that compute `e = exp(x - m)` and the lanes of its row
//! sum: as two routines, the row operation writing `e` and then the lane fold reading it back
//! (`flow_runtime::spanrows::row_binary_f32`, `lane_fold_f32`: what the kernels call one
//! after the other), against the one pass that folds each block of a row right after writing
//! it (`row_binary_fold_f32`: what the native executor runs for the pair). Interleaved batch
//! by batch; prints the minimum and the median of the batches in nanoseconds per element
//! (the minimum is the figure to read on a loaded machine), after checking that both give
//! the same bits.
//!
//! ```text
//! cargo run --release -p flow-bench --no-default-features --bin rowfold -- [--reps N] [--rows R] [--n N]
//! ```

use std::hint::black_box;
use std::time::Instant;

use flow_runtime::spanrows::{
    lane_fold_f32, row_binary_f32, row_binary_fold_f32, Fold, LaneShape, LaneSink, RowOp, RowShape,
    RowsOut, LANES,
};

/// One way of computing `e` and the lanes of its row sum.
type Candidate<'a> = (&'a str, &'a dyn Fn(&mut [f32], &mut [f32]));

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a whole number"))
        .unwrap_or(default)
}

fn main() {
    let (reps, rows, n) = (arg("--reps", 15), arg("--rows", 16), arg("--n", 4096));
    let m = n / LANES;
    let x: Vec<f32> = (0..rows * n)
        .map(|i| (i.wrapping_mul(2_654_435_761) % 2001) as f32 / 137.0 - 7.0)
        .collect();
    let d: Vec<f32> = (0..rows).map(|r| 7.0 + r as f32 / 8.0).collect();
    let shape = RowShape {
        n,
        x_stride: n,
        out_stride: n,
    };
    let lane_shape = LaneShape {
        rows,
        x_stride: n,
        lanes: LANES,
        lane_stride: LANES,
        m,
    };
    let (mut e, mut lanes) = (vec![0.0f32; rows * n], vec![0.0f32; rows * LANES]);
    let two_passes = |e: &mut [f32], lanes: &mut [f32]| {
        row_binary_f32(RowsOut::To(e, &x), &d, shape, RowOp::Sub, false, true);
        lane_fold_f32(lanes, e, lane_shape, Fold::Sum);
    };
    let one_pass = |e: &mut [f32], lanes: &mut [f32]| {
        let sink = LaneSink {
            out: lanes,
            m,
            fold: Fold::Sum,
        };
        row_binary_fold_f32(RowsOut::To(e, &x), &d, shape, RowOp::Sub, false, true, sink);
    };
    two_passes(&mut e, &mut lanes);
    let (mut e1, mut lanes1) = (vec![0.0f32; rows * n], vec![0.0f32; rows * LANES]);
    one_pass(&mut e1, &mut lanes1);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    assert!(
        bits(&e) == bits(&e1) && bits(&lanes) == bits(&lanes1),
        "different bits"
    );
    let batch = (1 << 22) / (rows * n).max(1) + 1;
    let candidates: [Candidate; 2] = [("two passes", &two_passes), ("one pass", &one_pass)];
    let mut times = vec![Vec::new(); candidates.len()];
    for _ in 0..reps {
        for (k, (_, f)) in candidates.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..batch {
                f(black_box(&mut e), black_box(&mut lanes));
            }
            let ns = t.elapsed().as_secs_f64() * 1e9 / (batch * rows * n) as f64;
            times[k].push(ns);
            if std::env::var_os("ROWFOLD_ALL").is_some() {
                print!("{k}:{ns:.3} ");
            }
        }
    }
    println!("{rows} rows of {n}, {reps} batches of {batch} calls; ns per element:");
    for ((name, _), t) in candidates.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!("{name:>12}  min {:.3}  median {:.3}", t[0], t[t.len() / 2]);
    }
}
