#!/usr/bin/env bash
# Times W2 (one-pass variance), W3 (row softmax) and an MLP training step on 1 process and on
# 2 and 4 MPI ranks of this machine (loopback/shared memory), with the bytes each dispatch
# moves (from `--stats`). Each workload runs as a loop of STEPS dispatches (each step's result
# observed); the time per dispatch is (time of 1 + N steps - time of 1 step) / N, so start-up,
# compilation and the first dispatch are not counted; `--no-cache`, so every step runs. Sizes are smaller than benches/ (the
# 2-core machine runs 4 ranks oversubscribed). Needs a flowc built with `--features mpi`:
#   cargo build --release -p flowc --features mpi && scripts/bench-mpi.sh target/release/flowc
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
main {
    let x = rand_uniform(2, [1 << 24]);
    for s in 0..STEPS {
        if variance(x) < 0.0 { print("never"); }
    }
    print("ok");
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
main {
    var x = rand_normal(3, [2048, 2048]);
    for s in 0..STEPS {
        x = softmax(x);
        if x[0, 0] < 0.0 { print("never"); }
    }
    print("ok");
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
main {
    let x = rand_normal(7, [1024, 512]);
    let t = rand_normal(8, [1024, 10]);
    var w1 = rand_normal(9, [512, 512]) * 0.03;
    var b1 = rand_normal(10, [512]) * 0.0;
    var w2 = rand_normal(11, [512, 10]) * 0.03;
    var b2 = rand_normal(12, [10]) * 0.0;
    for s in 0..STEPS {
        let vg = value_and_grad(objective, w1, b1, w2, b2, x, t, wrt = (0, 1, 2, 3));
        let g = vg.1;
        w1 = w1 - g.0 * 0.01;
        b1 = b1 - g.1 * 0.01;
        w2 = w2 - g.2 * 0.01;
        b2 = b2 - g.3 * 0.01;
        if vg.0 < 0.0 { print("never"); }
    }
    print("ok");
}
FLOW

# Seconds of one run of $1 (a program) with flags $2.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086 # $2 is a list of flags
    "$flowc" run --no-cache $2 "$1" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

echo "| workload | ranks × threads | ms per dispatch | sent from rank 0 per dispatch | rows exchanged per dispatch | moved in all per dispatch |"
echo "|---|---|---|---|---|---|"
for w in w2 w3 mlp; do
    sed "s/STEPS/1/" "$work/$w.flow" >"$work/${w}_1.flow"
    sed "s/STEPS/$((n + 1))/" "$work/$w.flow" >"$work/${w}_n.flow"
    for launch in "--threads 2" "--ranks 2 --threads 1" "--ranks 4 --threads 1"; do
        case "$launch" in --ranks*) launch="$launch --timeout 600 --stats" ;; esac
        t1=$(seconds "$work/${w}_1.flow" "$launch")
        tn=$(seconds "$work/${w}_n.flow" "$launch")
        ms=$(echo "($tn - $t1) * 1000 / $n" | bc -l)
        stats=$(grep '^mpi:' "$work/err" || true)
        sent=$(echo "$stats" | sed -n 's/.*sent from rank 0: [^(]*(\([^)]*\) per dispatch).*/\1/p')
        rows=$(echo "$stats" | sed -n 's/.*rows exchanged: [^(]*(\([^;)]*\) per dispatch[;)].*/\1/p')
        # Every byte moved (a flowc that prints it), per dispatch.
        moved=$(echo "$stats" | sed -n 's/.*moved in all: \([0-9]*\) B.*/\1/p')
        dispatches=$(echo "$stats" | sed -n 's/^mpi: [0-9]* ranks, \([0-9]*\) dispatch.*/\1/p')
        [ -n "$moved" ] && [ -n "$dispatches" ] && moved="$(echo "$moved / $dispatches / 1024" | bc) KiB"
        ranks=$(echo "$launch" | sed -n 's/.*--ranks \([0-9]*\).*/\1/p')
        threads=$(echo "$launch" | sed -n 's/.*--threads \([0-9]*\).*/\1/p')
        printf '| %s | %s × %s | %.1f | %s | %s | %s |\n' "$w" "${ranks:-1}" "$threads" "$ms" "${sent:--}" "${rows:--}" "${moved:--}"
    done
done
