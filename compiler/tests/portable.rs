//! `--portable-math` (and `FLOW_PORTABLE_MATH=1`): machine-independent bits. A program of
//! math built-ins on `f32` and `f64`, a contraction and a stencil prints the bits of the
//! portable definitions — `libm`'s functions, products added in order along `k` with no fused
//! multiply-add — computed here in Rust, on both backends, at any thread count, under the
//! flag, the variable and in an executable made by `flowc build --portable-math`.

use crate::common::{flowc, Scratch};

use flow_runtime::rand::uniform;
use std::process::Command;

const PROGRAM: &str = "\
op wide(x: f32[N]) -> f64[N] {
    let y[i] = x[i] as f64;
    y
}
op st(x: f32[N], w: f32[9]) -> f32[N - 8] {
    let y[i] = sum[k](w[k] * x[i + k]);
    y
}
op mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] {
    let c[i, j] = sum[k](a[i, k] * b[k, j]);
    c
}
main {
    let x = rand_uniform(7, [40]) * 6.0 - 3.0;
    let d = wide(x);
    print(tanh(x));
    print(log(abs(x)));
    print(sin(x * 9.0));
    print(pow(abs(x), 0.37));
    print(atan2(x, 0.7));
    print(tanh(d));
    print(exp(d));
    print(cos(d * 9.0));
    print(mm(rand_uniform(8, [3, 61]) - 0.5, rand_uniform(9, [61, 4]) - 0.5));
    print(st(x, rand_uniform(10, [9]) - 0.5));
}
";

/// `[a, b, …]` as `print` writes a vector.
fn list<T: ToString>(xs: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = xs.into_iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// What the program prints under the portable definitions.
fn expected() -> String {
    let x: Vec<f32> = (0..40).map(|i| uniform(7, i) * 6.0 - 3.0).collect();
    let d: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut lines = vec![
        list(x.iter().map(|&v| libm::tanhf(v))),
        list(x.iter().map(|&v| libm::logf(v.abs()))),
        list(x.iter().map(|&v| libm::sinf(v * 9.0))),
        list(x.iter().map(|&v| libm::powf(v.abs(), 0.37))),
        list(x.iter().map(|&v| libm::atan2f(v, 0.7))),
        list(d.iter().map(|&v| libm::tanh(v))),
        list(d.iter().map(|&v| libm::exp(v))),
        list(d.iter().map(|&v| libm::cos(v * 9.0))),
    ];
    let (m, k, n) = (3u64, 61u64, 4u64);
    let a = |i: u64, p: u64| uniform(8, i * k + p) - 0.5;
    let b = |p: u64, j: u64| uniform(9, p * n + j) - 0.5;
    let rows: Vec<String> = (0..m)
        .map(|i| list((0..n).map(|j| (0..k).fold(0f32, |acc, p| acc + a(i, p) * b(p, j)))))
        .collect();
    lines.push(format!("[{}]", rows.join(", ")));
    // The stencil (the runtime's windowed dot product): from 0, one rounded product per tap.
    let w: Vec<f32> = (0..9).map(|k| uniform(10, k) - 0.5).collect();
    lines.push(list(
        (0..32).map(|i| (0..9).fold(0f32, |acc, k| acc + w[k] * x[i + k])),
    ));
    lines.join("\n") + "\n"
}

fn run(dir: &Scratch, args: &[&str], env: Option<&str>) -> String {
    let mut cmd = Command::new(flowc());
    cmd.args(args)
        .current_dir(&dir.0)
        .env("NO_COLOR", "1")
        .env_remove("FLOW_FAULTS")
        .env_remove("FLOW_PORTABLE_MATH");
    if let Some(v) = env {
        cmd.env("FLOW_PORTABLE_MATH", v);
    }
    let out = cmd.output().expect("flowc runs");
    assert!(
        out.status.success(),
        "flowc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn portable_math_gives_the_portable_bits_on_both_backends_at_any_thread_count() {
    let dir = Scratch::new("portable-math");
    dir.file("p.flow", PROGRAM);
    let want = expected();
    for args in [
        &["run", "--portable-math", "--backend", "interp", "p.flow"][..],
        &["run", "--portable-math", "--threads", "1", "p.flow"],
        &["run", "--portable-math", "--threads", "2", "p.flow"],
        &[
            "run",
            "--portable-math",
            "--threads",
            "3",
            "--no-opt",
            "p.flow",
        ],
    ] {
        assert_eq!(run(&dir, args, None), want, "flowc {args:?}");
    }
    assert_eq!(
        run(&dir, &["run", "p.flow"], Some("1")),
        want,
        "FLOW_PORTABLE_MATH=1"
    );
    // `0` and empty leave the machine's math; on this machine's glibc and GEMM the output
    // may or may not differ, but both backends agree on it.
    let native = run(&dir, &["run", "p.flow"], Some("0"));
    assert_eq!(
        run(&dir, &["run", "--backend", "interp", "p.flow"], None),
        native
    );
}

#[test]
fn an_executable_built_with_portable_math_computes_the_portable_bits() {
    let dir = Scratch::new("portable-math-aot");
    dir.file("p.flow", PROGRAM);
    let build = Command::new(flowc())
        .args(["build", "--portable-math", "p.flow", "-o", "p"])
        .current_dir(&dir.0)
        .env_remove("FLOW_PORTABLE_MATH")
        .output()
        .expect("flowc runs");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let out = Command::new(dir.0.join("p"))
        .args(["--threads", "2"])
        .env_remove("FLOW_PORTABLE_MATH")
        .output()
        .expect("the executable runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected());
}
