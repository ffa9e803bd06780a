#!/usr/bin/env bash
# Times W2 (one-pass variance), W3 (row softmax) and an MLP training step on 1 process and on
# 2 and 4 MPI ranks of this machine (loopback/shared memory), with the bytes each step moves
# (from `--stats`). Each workload is a `bench` block run by `flowc bench` (`--warmup 1 --reps
# N`): its setup (the inputs) runs once, then every repetition of its `measure` block — one
# step: the whole dispatch, to completion on every rank — is timed on rank 0, and the table
# gives the median (and the range) of those N wall times. Start-up, compilation, the setup and
# the warm-up are not in it, and no time is ever a difference of two totals (the former
# "(time of 1 + N steps - time of 1 step) / N" came out negative under load). The bytes are
# exact: `moved in all` of a run with N repetitions less that of a run with 1, over N - 1
# (byte counts do not depend on load). Sizes are smaller than benches/ (the 2-core machine
# runs 4 ranks oversubscribed). The load average before and after is printed: timings on a
# loaded machine say little. Needs a flowc built with `--features mpi`:
#   cargo build --release -p flowc --features mpi && scripts/bench-mpi.sh target/release/flowc [N]
# Prints a Markdown table (docs/performance.md, "On MPI ranks").
set -euo pipefail
flowc=$(realpath "${1:-target/release/flowc}")
n=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_MCA_mpi_yield_when_idle=1

cat >"$work/w2.flow" <<'FLOW'
monoid Moments {
    state = (n: f64, s: f64, ss: f64);
    zero = (0.0, 0.0, 0.0);
    wrap(x: f32) = (1.0, x as f64, (x as f64) * (x as f64));
    combine(a, b) = (a.n + b.n, a.s + b.s, a.ss + b.ss);
    commutative;
}
op variance(x: f32[N]) -> f64 {
    let p = reduce[i](Moments, x[i]);
    p.ss / p.n - (p.s / p.n) * (p.s / p.n)
}
bench "W2" {
    let x = rand_uniform(2, [1 << 24]);
    measure {
        let v = variance(x);
    }
}
FLOW
cat >"$work/w3.flow" <<'FLOW'
op softmax(x: f32[B, N]) -> f32[B, N] {
    let m[i] = max[j](x[i, j]);
    let e[i, j] = exp(x[i, j] - m[i]);
    let z[i] = sum[j](e[i, j]);
    let y[i, j] = e[i, j] / z[i];
    y
}
bench "W3" {
    let x = rand_normal(3, [2048, 2048]);
    measure {
        let y = softmax(x);
    }
}
FLOW
cat >"$work/mlp.flow" <<'FLOW'
op hidden(x: f32[B, M], w1: f32[M, H], b1: f32[H]) -> f32[B, H] {
    let h[i, j] = max(b1[j] + sum[k](x[i, k] * w1[k, j]), 0.0);
    h
}
op output(h: f32[B, H], w2: f32[H, C], b2: f32[C]) -> f32[B, C] {
    let y[i, c] = b2[c] + sum[j](h[i, j] * w2[j, c]);
    y
}
op loss(y: f32[B, C], t: f32[B, C]) -> f32 = sum[i](sum[c]((y[i, c] - t[i, c]) * (y[i, c] - t[i, c]))) / (2.0 * (B as f32))
op objective(w1: f32[M, H], b1: f32[H], w2: f32[H, C], b2: f32[C], x: f32[B, M], t: f32[B, C]) -> f32 =
    loss(output(hidden(x, w1, b1), w2, b2), t)
bench "MLP step" {
    let x = rand_normal(7, [1024, 512]);
    let t = rand_normal(8, [1024, 10]);
    let w1 = rand_normal(9, [512, 512]) * 0.03;
    let b1 = rand_normal(10, [512]) * 0.0;
    let w2 = rand_normal(11, [512, 10]) * 0.03;
    let b2 = rand_normal(12, [10]) * 0.0;
    measure {
        let vg = value_and_grad(objective, w1, b1, w2, b2, x, t, wrt = (0, 1, 2, 3));
        let g = vg.1;
        let w1n = w1 - g.0 * 0.01;
        let b1n = b1 - g.1 * 0.01;
        let w2n = w2 - g.2 * 0.01;
        let b2n = b2 - g.3 * 0.01;
    }
}
FLOW

# `flowc bench` of $1 with flags $2 and N repetitions $3; standard output in $work/out,
# standard error (with `--stats`' line) in $work/err.
bench() {
    # shellcheck disable=SC2086 # $2 is a list of flags
    "$flowc" bench --no-cache --warmup 1 --reps "$3" $2 "$1" >"$work/out" 2>"$work/err" \
        || { cat "$work/out" "$work/err" >&2; exit 1; }
}
moved() { sed -n 's/^mpi: .*moved in all: \([0-9]*\) B$/\1/p' "$work/err"; }
dispatches() { sed -n 's/^mpi: [0-9]* ranks, \([0-9]*\) dispatch.*/\1/p' "$work/err"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| workload | ranks × threads | ms per step, median (min–max of $n) | dispatches per step | moved per step |"
echo "|---|---|---|---|---|"
for w in w2 w3 mlp; do
    for launch in "--threads 2" "--ranks 2 --threads 1" "--ranks 4 --threads 1"; do
        case "$launch" in --ranks*) launch="$launch --timeout 600 --stats" ;; esac
        bench "$work/$w.flow" "$launch" "$n"
        line=$(grep '^bench ' "$work/out")
        median=$(echo "$line" | sed -n 's/.* median *\([0-9.]*\) ms.*/\1/p')
        min=$(echo "$line" | sed -n 's/.* min *\([0-9.]*\) .*/\1/p')
        max=$(echo "$line" | sed -n 's/.* max *\([0-9.]*\) .*/\1/p')
        per_step=- moved=-
        if [ "$launch" != "--threads 2" ] && [ "$n" -gt 1 ]; then
            b_n=$(moved) d_n=$(dispatches)
            bench "$work/$w.flow" "$launch" 1
            b_1=$(moved) d_1=$(dispatches)
            per_step=$(( (d_n - d_1) / (n - 1) ))
            moved="$(( (b_n - b_1) / (n - 1) / 1024 )) KiB"
        fi
        ranks=$(echo "$launch" | sed -n 's/.*--ranks \([0-9]*\).*/\1/p')
        threads=$(echo "$launch" | sed -n 's/.*--threads \([0-9]*\).*/\1/p')
        printf '| %s | %s × %s | %.1f (%.1f–%.1f) | %s | %s |\n' "$w" "${ranks:-1}" "$threads" "$median" "$min" "$max" "$per_step" "$moved"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
