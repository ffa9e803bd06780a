//! Each baseline kernel at a tiny size against a naive reference.

use super::*;
use flow_runtime::rand::{fill_normal, fill_uniform};

fn normal(seed: u64, len: usize) -> Vec<f32> {
    let mut v = vec![0.0; len];
    fill_normal(seed, &mut v, 0);
    v
}

fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

/// A naive row-major `a[m, k] b[k, n]` in f64.
fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
        }
    }
    c
}

#[test]
fn w1_matches_the_definition_exactly() {
    // More than one block, and a ragged last one.
    let x = normal(1, ELEMENTWISE_BLOCK + 1001);
    let mut y = vec![f32::NAN; x.len()];
    w1(&x, &mut y);
    for (&x, &y) in x.iter().zip(&y) {
        let want = (1.5 * x + 0.25).max(0.0) * 0.75 + x * x;
        assert_eq!(y.to_bits(), want.to_bits());
    }
}

#[test]
fn w2_matches_a_naive_mean_and_variance() {
    for len in [1, 17, W2_BLOCK * 3 + 5] {
        let x = normal(2, len);
        let mut partials = vec![Moments::default(); len.div_ceil(W2_BLOCK)];
        let (mean, var) = w2(&x, &mut partials);
        let n = len as f64;
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let v = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
        assert!((mean - m).abs() < 1e-5, "{mean} vs {m}");
        assert!((var - v).abs() < 1e-5 * (1.0 + v), "{var} vs {v}");
        assert_eq!(partials.iter().map(|p| p.n).sum::<u64>(), len as u64);
    }
}

#[test]
fn exp_approx_is_accurate_to_a_few_ulp() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x < 88.0 {
        let want = (x as f64).exp();
        let rel = ((exp_approx(x) as f64 - want) / want).abs();
        worst = worst.max(rel);
        x += 0.0137;
    }
    assert!(worst < 3e-7, "worst relative error {worst}");
    assert_eq!(exp_approx(0.0), 1.0);
    assert!(exp_approx(f32::NEG_INFINITY) > 0.0 && exp_approx(-1000.0) < 1e-37);
    assert!(exp_approx(1000.0).is_finite());
}

#[test]
fn w3_matches_a_naive_softmax() {
    let (rows, cols) = (5, 37);
    let x = normal(3, rows * cols);
    let mut y = vec![0.0; x.len()];
    w3(&x, cols, &mut y);
    let mut want = vec![0.0f64; x.len()];
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for (j, &v) in row.iter().enumerate() {
            want[r * cols + j] = (v as f64 - m).exp() / s;
        }
    }
    assert_close(&y, &want, 1e-6);
}

#[test]
fn w4_matches_a_naive_linear_relu() {
    let (m, k, n) = (37, 19, 23);
    let (x, w, b) = (normal(4, m * k), normal(5, k * n), normal(6, n));
    for rows in [1, 8, 64] {
        let mut y = vec![f32::NAN; m * n];
        w4(&x, &w, &b, (m, k, n), &mut y, rows);
        let mut want = matmul(&x, &w, m, k, n);
        for (i, v) in want.iter_mut().enumerate() {
            *v = (*v + b[i % n] as f64).max(0.0);
        }
        assert_close(&y, &want, 1e-5);
    }
}

/// One SGD step of the MLP, naively, in f64.
fn naive_step(d: MlpDims, x: &[f32], t: &[f32], p: &MlpParams, lr: f64) -> (f64, [Vec<f64>; 4]) {
    let MlpDims {
        batch,
        d_in,
        d_hidden: hn,
        d_out,
    } = d;
    let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let (w1, b1, w2, b2) = (f64s(&p.w1), f64s(&p.b1), f64s(&p.w2), f64s(&p.b2));
    let mut pre = matmul(x, &p.w1, batch, d_in, hn);
    for (i, v) in pre.iter_mut().enumerate() {
        *v += b1[i % hn];
    }
    let h: Vec<f64> = pre.iter().map(|&v| v.max(0.0)).collect();
    let mut y = vec![0.0; batch * d_out];
    for r in 0..batch {
        for o in 0..d_out {
            y[r * d_out + o] = b2[o]
                + (0..hn)
                    .map(|j| h[r * hn + j] * w2[j * d_out + o])
                    .sum::<f64>();
        }
    }
    let loss = y
        .iter()
        .zip(t)
        .map(|(y, &t)| (y - t as f64).powi(2))
        .sum::<f64>()
        / (2.0 * batch as f64);
    let dy: Vec<f64> = y
        .iter()
        .zip(t)
        .map(|(y, &t)| (y - t as f64) / batch as f64)
        .collect();
    let mut dw2 = vec![0.0; hn * d_out];
    let mut db2 = vec![0.0; d_out];
    let mut dpre = vec![0.0; batch * hn];
    for r in 0..batch {
        for o in 0..d_out {
            db2[o] += dy[r * d_out + o];
            for j in 0..hn {
                dw2[j * d_out + o] += h[r * hn + j] * dy[r * d_out + o];
            }
        }
        for j in 0..hn {
            let g: f64 = (0..d_out)
                .map(|o| dy[r * d_out + o] * w2[j * d_out + o])
                .sum();
            dpre[r * hn + j] = if pre[r * hn + j] > 0.0 { g } else { 0.0 };
        }
    }
    let mut dw1 = vec![0.0; d_in * hn];
    let mut db1 = vec![0.0; hn];
    for r in 0..batch {
        for j in 0..hn {
            db1[j] += dpre[r * hn + j];
            for i in 0..d_in {
                dw1[i * hn + j] += x[r * d_in + i] as f64 * dpre[r * hn + j];
            }
        }
    }
    let step = |w: &[f64], g: &[f64]| w.iter().zip(g).map(|(w, g)| w - lr * g).collect();
    (
        loss,
        [
            step(&w1, &dw1),
            step(&b1, &db1),
            step(&w2, &dw2),
            step(&b2, &db2),
        ],
    )
}

#[test]
fn w5_matches_a_naive_training_step() {
    // More than one block of W5_ROWS rows, ragged.
    let d = MlpDims {
        batch: W5_ROWS + 9,
        d_in: 13,
        d_hidden: W5_ROWS + 3,
        d_out: 3,
    };
    let x = normal(7, d.batch * d.d_in);
    let t = normal(8, d.batch * d.d_out);
    let mut p = MlpParams {
        w1: normal(9, d.d_in * d.d_hidden),
        b1: normal(10, d.d_hidden),
        w2: normal(11, d.d_hidden * d.d_out),
        b2: normal(12, d.d_out),
    };
    let (want_loss, want) = naive_step(d, &x, &t, &p, 0.01);
    let mut s = MlpScratch::new(d);
    let loss = w5(d, &x, &t, &mut p, &mut s, 0.01);
    assert!(
        ((loss as f64 - want_loss) / want_loss).abs() < 1e-5,
        "{loss} vs {want_loss}"
    );
    assert_close(&p.w1, &want[0], 1e-4);
    assert_close(&p.b1, &want[1], 1e-4);
    assert_close(&p.w2, &want[2], 1e-4);
    assert_close(&p.b2, &want[3], 1e-4);
    // The scratch buffers are reusable: a second step from the same start gives the same.
    let mut p2 = MlpParams {
        w1: normal(9, d.d_in * d.d_hidden),
        b1: normal(10, d.d_hidden),
        w2: normal(11, d.d_hidden * d.d_out),
        b2: normal(12, d.d_out),
    };
    assert_eq!(
        w5(d, &x, &t, &mut p2, &mut s, 0.01).to_bits(),
        loss.to_bits()
    );
    assert_eq!(p2, p);
}

#[test]
fn w6_matches_the_definition_exactly() {
    let n = ELEMENTWISE_BLOCK + 2048 * 3 + 77;
    let mut x = vec![0.0; n + W6_TAPS - 1];
    fill_uniform(11, &mut x, 0);
    let mut w = [0.0; W6_TAPS];
    fill_uniform(12, &mut w, 0);
    let mut y = vec![f32::NAN; n];
    w6(&x, &w, &mut y);
    for (i, &y) in y.iter().enumerate() {
        let mut acc = 0.0f32;
        for k in 0..W6_TAPS {
            acc += w[k] * x[i + k];
        }
        assert_eq!(y.to_bits(), acc.to_bits(), "element {i}");
    }
}
