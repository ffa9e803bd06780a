//! An in-tree mutation fuzzer that needs no nightly toolchain: deterministic (a seed and a
//! time budget), runnable in `cargo test` for a few seconds and for as long as one likes with
//! the `fuzz` binary (`cargo run --release -p flow-tests --bin fuzz -- --secs 600`).
//!
//! Inputs are mutants of a committed seed corpus (`tests/fuzz/corpus/{flow,npy}/`): bit
//! flips, byte insertions and deletions, interesting integers (lengths and sizes near
//! limits), chunk duplications, splices of two corpus entries and tokens spliced in from a
//! dictionary (Flow's tokens, `.npy` header words). A mutant a target accepts may join the
//! working set, so mutations stack. There is no coverage feedback; the dictionaries and the
//! splices make up for some of it.
//!
//! For the front end, one input in eight is generated instead ([`generate_flow`]): a program
//! nested thousands of levels deep (parentheses, blocks, `if`s, calls, reductions, loops…)
//! or thousands of statements, functions or terms long, which mutations of the corpus do
//! not reach.
//!
//! Targets:
//! - [`target_flow`]: the front end and checker (`flowc::driver::compile_sources` on the
//!   text) return diagnostics, never panic; a rejected program has an error, whose spans lie
//!   inside the file, and the diagnostics render.
//! - [`target_npy`]: `flow_runtime::read_npy` returns a tensor or an error, never panics,
//!   never makes an allocation much larger than the file (the header cannot ask for memory
//!   the data is not there for), and what it accepts round-trips through `write_npy`.
//!
//! A crash is written to `target/fuzz-crashes/` by the caller and kept, once fixed, in the
//! corpus as `regress-*.{flow,npy}`, which every run replays first.
//!
//! Long file: the mutator, the program generator and the two targets share the corpus and
//! dictionary types and the one budgeted loop; a few lines over the limit, it stays one room.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flowc::base::{Diagnostic, SourceMap};
use flowc::driver::{compile_sources, RenderConfig};

/// Every keyword and punctuation token, a few names, numbers and strings (with
/// interpolations, escapes and broken ones), and some characters that are not Flow at all.
pub const TOKENS: &[&str] = &[
    // Keywords.
    "fn",
    "op",
    "monoid",
    "proc",
    "main",
    "test",
    "use",
    "let",
    "var",
    "for",
    "in",
    "while",
    "if",
    "else",
    "as",
    "state",
    "true",
    "false",
    "sum",
    "prod",
    "max",
    "min",
    "any",
    "all",
    "reduce",
    // Punctuation.
    "_",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ":",
    "::",
    ".",
    "..",
    "->",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "<<",
    ">>",
    "|>",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&&",
    "||",
    "!",
    // Names: values, shape variables, types, built-ins, stdlib.
    "x",
    "y",
    "i",
    "j",
    "k",
    "N",
    "M",
    "B",
    "f",
    "g",
    "relu",
    "f32",
    "f64",
    "i32",
    "i64",
    "bool",
    "str",
    "zero",
    "wrap",
    "combine",
    "unwrap",
    "commutative",
    "print",
    "load",
    "save",
    "args",
    "len",
    "exp",
    "map",
    "zip_with",
    "pad",
    "clamp_edge",
    "rand_uniform",
    "eval",
    "assert_close",
    "inf",
    "nan",
    "std",
    "t",
    "_x",
    // Numbers.
    "0",
    "1",
    "2",
    "3",
    "10",
    "0.5",
    "1.0",
    "1e-5",
    "2.5e3",
    "0.1",
    "99999999999999999999",
    "1e999",
    // Strings.
    "\"hi\"",
    "\"{x}\"",
    "\"{x + 1} and {{braces}}\"",
    "\"{\"",
    "\"}\"",
    "\"{}\"",
    "\"{1 +}\"",
    "\"\\q\"",
    "\"{\"{x}\"}\"",
    "\"unterminated",
    // Not Flow.
    "@",
    "$",
    "#",
    "`",
    "é",
    "\u{0}",
    "\\",
    "'",
    "?",
    "~",
    "^",
    "&",
    "|",
    "\n",
    "//",
];

/// Words of `.npy` headers, and header fragments.
pub const NPY_WORDS: &[&str] = &[
    "NUMPY",
    "\x01\x00",
    "\x02\x00",
    "\x03\x00",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    "'descr'",
    "'fortran_order'",
    "'shape'",
    "'<f4'",
    "'<f8'",
    "'<i4'",
    "'<i8'",
    "'|b1'",
    "'>f4'",
    "'<u2'",
    "True",
    "False",
    "(",
    ")",
    "()",
    "(0,)",
    "(1,)",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    " ",
    "\n",
    "-1",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999999",
    "1e9",
];

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The longest input the fuzzer makes.
pub const MAX_LEN: usize = 1 << 16;

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
];

/// One mutant of `input`: one to four stacked mutations.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(v.len() + 1);
        match rng.below(9) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let b = [
                    0u8, 0xff, b'{', b'}', b'"', b'\n', b'0', b'9', b'[', b'(', b'\\',
                ];
                v.insert(pos, b[rng.below(b.len())]);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = (1 + rng.below(8)).min(v.len() - i);
                v.drain(i..i + n);
            }
            3 => {
                let t = dict[rng.below(dict.len())].as_bytes();
                v.splice(pos..pos, t.iter().copied());
            }
            4 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = (1 + rng.below(6)).min(v.len() - i);
                let t = dict[rng.below(dict.len())].as_bytes();
                v.splice(i..i + n, t.iter().copied());
            }
            5 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = (1 + rng.below(32)).min(v.len() - i);
                let chunk = v[i..i + n].to_vec();
                v.splice(pos..pos, chunk);
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let j = rng.below(other.len() + 1);
                v.truncate(pos);
                v.extend_from_slice(&other[j..]);
            }
            7 if !v.is_empty() => {
                let i = rng.below(v.len());
                let val = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.below(4)].min(v.len() - i);
                v[i..i + width].copy_from_slice(&val.to_le_bytes()[..width]);
            }
            8 => {
                let t = INTERESTING[rng.below(INTERESTING.len())].to_string();
                v.splice(pos..pos, t.bytes());
            }
            _ => {}
        }
    }
    v.truncate(MAX_LEN);
    v
}

/// Makes an input from nothing (beside the mutants of the corpus): see [`generate_flow`].
pub type Generator = fn(&mut Rng) -> Vec<u8>;

/// The deepest nesting [`generate_flow`] makes.
pub const MAX_DEPTH: usize = 1 << 13;

/// How a generated program nests or repeats: a wrapper `(prefix, suffix)` applied again and
/// again around an expression or a statement, or a piece repeated to make a long program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Parentheses: `((((x))))`.
    Parens,
    /// Unary minus: `- - - x`.
    Negations,
    /// `while` loops in `while` loops.
    WhileStatements,
    /// `if` expressions in `if` expressions.
    Ifs,
    /// Calls in calls: `f(f(f(x)))`.
    Calls,
    /// Right-nested sums: `1.0 + (1.0 + (…))`.
    RightSums,
    /// Tensor literals in tensor literals: `[[[x]]]`.
    TensorLiterals,
    /// Reductions in reductions, each over its own index.
    Reductions,
    /// Casts of casts: `((x as f64) as f32)`.
    Casts,
    /// `if` statements in `if` statements.
    IfStatements,
    /// `for` loops in `for` loops.
    Loops,
    /// A long flat sum: `1.0 + 1.0 + … + 1.0`.
    LongSum,
    /// Many statements, each using the one before.
    ManyStatements,
    /// Many functions, each calling the one before.
    ManyFunctions,
    /// A long tensor literal.
    LongTensorLiteral,
    /// A long arrow chain: `x |> f >> f >> … >> f`.
    LongArrowChain,
    /// A very long name and a very long string.
    LongNames,
}

impl Shape {
    pub const ALL: [Shape; 17] = [
        Shape::Parens,
        Shape::Negations,
        Shape::WhileStatements,
        Shape::Ifs,
        Shape::Calls,
        Shape::RightSums,
        Shape::TensorLiterals,
        Shape::Reductions,
        Shape::Casts,
        Shape::IfStatements,
        Shape::Loops,
        Shape::LongSum,
        Shape::ManyStatements,
        Shape::ManyFunctions,
        Shape::LongTensorLiteral,
        Shape::LongArrowChain,
        Shape::LongNames,
    ];
}

/// A deeply nested or very long program: a random [`Shape`], nested or repeated up to
/// [`MAX_DEPTH`] times (at most [`MAX_LEN`] bytes). Mutations may then break it.
pub fn generate_flow(rng: &mut Rng) -> Vec<u8> {
    let shape = Shape::ALL[rng.below(Shape::ALL.len())];
    let bits = 1 + rng.below(13);
    let n = 1 + rng.below(1 << bits);
    deep_program(shape, n)
}

/// The program of `shape` nested or repeated `n` times (fewer when it would be longer than
/// [`MAX_LEN`]).
pub fn deep_program(shape: Shape, n: usize) -> Vec<u8> {
    let n = n.clamp(1, MAX_DEPTH);
    let fits = |piece: usize| n.min(MAX_LEN / 2 / piece.max(1)).max(1);
    let nest = |pre: &str, post: &str, core: &str| -> String {
        let k = fits(pre.len() + post.len());
        let mut out = String::with_capacity(k * (pre.len() + post.len()) + core.len());
        for _ in 0..k {
            out.push_str(pre);
        }
        out.push_str(core);
        for _ in 0..k {
            out.push_str(post);
        }
        out
    };
    let in_main = |body: &str| format!("fn f(x: f32) -> f32 = x + 1.0\nmain {{\n{body}\n}}\n");
    let expr = |e: String| in_main(&format!("  let v = {e};\n  print(v);"));
    let text = match shape {
        Shape::Parens => expr(nest("(", ")", "1.0")),
        Shape::Negations => expr(nest("-", "", "1.0")),
        Shape::Ifs => expr(nest("if true { ", " } else { 0.0 }", "1.0")),
        Shape::Calls => expr(nest("f(", ")", "1.0")),
        Shape::RightSums => expr(nest("1.0 + (", ")", "1.0")),
        Shape::TensorLiterals => expr(nest("[", "]", "1.0")),
        Shape::Reductions => {
            let k = fits(40);
            let mut e = String::from("x[0]");
            for d in 0..k {
                e = format!("sum[i{d}](x[i{d}] + {e})");
            }
            in_main(&format!(
                "  let x = rand_uniform(1, [2]);\n  let v = {e};\n  print(v);"
            ))
        }
        Shape::Casts => expr(nest("((", " as f64) as f32)", "1.0")),
        Shape::WhileStatements => in_main(&nest("while false {\n", "}\n", "print(1);\n")),
        Shape::IfStatements => in_main(&nest("if true {\n", "}\n", "print(1);\n")),
        Shape::Loops => {
            let k = fits(30);
            let mut body = String::from("print(1);\n");
            for d in (0..k).rev() {
                body = format!("for i{d} in 0..1 {{\n{body}}}\n");
            }
            in_main(&body)
        }
        Shape::LongSum => {
            let k = fits(6);
            expr(vec!["1.0"; k].join(" + "))
        }
        Shape::ManyStatements => {
            let k = fits(32);
            let mut body = String::from("  let v0 = 1.0;\n");
            for d in 1..k {
                body.push_str(&format!("  let v{d} = v{} + 1.0;\n", d - 1));
            }
            body.push_str(&format!("  print(v{});", k - 1));
            in_main(&body)
        }
        Shape::ManyFunctions => {
            let k = fits(48);
            let mut text = String::from("fn g0(x: f32) -> f32 = x + 1.0\n");
            for d in 1..k {
                text.push_str(&format!("fn g{d}(x: f32) -> f32 = g{}(x) + 1.0\n", d - 1));
            }
            text.push_str(&format!("main {{\n  print(g{}(1.0));\n}}\n", k - 1));
            text
        }
        Shape::LongTensorLiteral => {
            let k = fits(5);
            expr(format!("[{}]", vec!["1.0"; k].join(", ")))
        }
        Shape::LongArrowChain => {
            let k = fits(5);
            let mut text = String::from("op g(x: f32[N]) -> f32[N] = x + 1.0\n");
            text.push_str(&format!(
                "main {{\n  let x = rand_uniform(1, [4]);\n  let y = x |> {};\n  print(y);\n}}\n",
                vec!["g"; k].join(" >> ")
            ));
            text
        }
        Shape::LongNames => {
            let k = fits(2);
            let name = "n".repeat(k);
            let string = "s".repeat(k);
            in_main(&format!(
                "  let {name} = 1.0;\n  print({name}, \"{string}\");"
            ))
        }
    };
    let mut bytes = text.into_bytes();
    bytes.truncate(MAX_LEN);
    bytes
}

/// What a target made of an input: accepted (a program that compiles, a file that loads),
/// rejected cleanly, or a broken property (the message says which).
pub type Verdict = Result<bool, String>;

/// A fuzz target.
pub type Target = fn(&[u8]) -> Verdict;

/// A crash: the input and what went wrong.
#[derive(Clone, Debug)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub execs: usize,
    pub accepted: usize,
    pub crashes: Vec<Crash>,
    /// The slowest input's time.
    pub slowest: Duration,
}

/// One input through a target: a panic or a broken property is a crash, and so is an input
/// slower than `slow` (the target cannot be interrupted, so a hang shows as a slow input or
/// as a test that never ends).
pub fn check(target: fn(&[u8]) -> Verdict, input: &[u8], slow: Duration) -> Result<bool, String> {
    let start = Instant::now();
    let res = catch_unwind(AssertUnwindSafe(|| target(input)));
    let took = start.elapsed();
    let verdict = match res {
        Ok(v) => v,
        Err(p) => Err(format!("panic: {}", panic_message(&p))),
    }?;
    if took > slow {
        return Err(format!("too slow: {took:?}"));
    }
    Ok(verdict)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic)".into()
    }
}

/// Replays `corpus`, then fuzzes mutants of it for `budget`, starting from `seed`; with a
/// `generate`, one input in eight is a fresh one of its own (mutated half the time).
pub fn run(
    target: fn(&[u8]) -> Verdict,
    corpus: &[Vec<u8>],
    dict: &[&str],
    generate: Option<Generator>,
    budget: Duration,
    seed: u64,
) -> Report {
    let slow = Duration::from_secs(10);
    let mut report = Report::default();
    let mut pool: Vec<Vec<u8>> = corpus.to_vec();
    let exec = |input: &[u8], report: &mut Report| -> bool {
        let start = Instant::now();
        let res = check(target, input, slow);
        report.slowest = report.slowest.max(start.elapsed());
        report.execs += 1;
        match res {
            Ok(accepted) => {
                report.accepted += usize::from(accepted);
                accepted
            }
            Err(message) => {
                report.crashes.push(Crash {
                    input: input.to_vec(),
                    message,
                });
                false
            }
        }
    };
    for c in corpus {
        exec(c, &mut report);
    }
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    while start.elapsed() < budget && report.crashes.len() < 10 {
        let m = match generate {
            Some(generate) if rng.below(8) == 0 => {
                let fresh = generate(&mut rng);
                if rng.below(2) == 0 {
                    fresh
                } else {
                    mutate(&mut rng, &fresh, &pool, dict)
                }
            }
            _ => {
                let base = if pool.is_empty() {
                    Vec::new()
                } else {
                    pool[rng.below(pool.len())].clone()
                };
                mutate(&mut rng, &base, &pool, dict)
            }
        };
        if exec(&m, &mut report) && rng.below(8) == 0 {
            // Accepted mutants are interesting starting points.
            if pool.len() < 512 {
                pool.push(m);
            } else {
                let i = corpus.len() + rng.below(pool.len() - corpus.len());
                pool[i] = m;
            }
        }
    }
    report
}

/// The corpus directory of a target: `tests/fuzz/corpus/<name>/`.
pub fn corpus_dir(name: &str) -> PathBuf {
    crate::workspace_root().join("tests/fuzz/corpus").join(name)
}

/// The files of a corpus directory, sorted by name.
pub fn load_corpus(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, b)
        })
        .collect()
}

/// Writes a crash to `target/fuzz-crashes/<target>-<n>` and returns the path.
pub fn save_crash(target: &str, n: usize, c: &Crash) -> PathBuf {
    let dir = crate::workspace_root().join("target/fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{n}"));
    let _ = std::fs::write(&path, &c.input);
    path
}

/// The stack `flowc` runs the front end on (`driver::STACK_BYTES`, reserved, not committed):
/// [`target_flow`] runs on a thread with this stack, so that a program nested deeper than the
/// front end can take crashes here as it crashes `flowc`, and no sooner (a test thread has
/// 2 MiB).
pub const FRONT_END_STACK: usize = flowc::driver::STACK_BYTES;

/// The front end and the checker on a source text, on a thread with [`FRONT_END_STACK`].
pub fn target_flow(bytes: &[u8]) -> Verdict {
    let bytes = bytes.to_vec();
    let worker = std::thread::Builder::new()
        .stack_size(FRONT_END_STACK)
        .spawn(move || front_end(&bytes))
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match worker.join() {
        Ok(verdict) => verdict,
        // A panic is the caller's to catch, as if the target had run on its thread.
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn front_end(bytes: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut sm = SourceMap::new();
    let id = sm.add("fuzz.flow", &text);
    let (_tree, diags) = flowc::syntax::parse(id, &text);
    spans_inside(&sm, &diags)?;
    let _ = flowc::driver::dump_ast("fuzz.flow", &text);
    match compile_sources(&[("fuzz.flow".to_string(), text)]) {
        Ok(c) => {
            let _ = flowc::hir::dump::dump_program(&c.program);
            Ok(true)
        }
        Err(f) => {
            if !f.diags.iter().any(Diagnostic::is_error) {
                return Err("rejected without an error diagnostic".into());
            }
            spans_inside(&f.sources, &f.diags)?;
            let rendered = f.render(RenderConfig::default());
            if !rendered.contains("error[") {
                return Err(format!("rendering lacks `error[`: {rendered}"));
            }
            Ok(false)
        }
    }
}

fn spans_inside(sm: &SourceMap, diags: &[Diagnostic]) -> Result<(), String> {
    for d in diags {
        for l in &d.labels {
            let len = sm.text(l.span.file).len() as u32;
            if !(l.span.lo <= l.span.hi && l.span.hi <= len) {
                return Err(format!(
                    "span {:?} outside its file ({len} bytes) in `{}`",
                    l.span, d.message
                ));
            }
        }
    }
    Ok(())
}

/// The `.npy` reader on a file's bytes.
pub fn target_npy(bytes: &[u8]) -> Verdict {
    let (res, largest) = largest_allocation(|| flow_runtime::read_npy(bytes));
    // The data is decoded into at most a few times the file's size (a `bool` per byte, say).
    if let Some(largest) = largest {
        let bound = 4 * bytes.len() + (64 << 10);
        if largest > bound {
            return Err(format!(
                "an allocation of {largest} bytes for a {}-byte file",
                bytes.len()
            ));
        }
    }
    match res {
        Ok(t) => {
            let again = flow_runtime::write_npy(&t);
            match flow_runtime::read_npy(&again) {
                Ok(u) if u.shape == t.shape && u.dtype() == t.dtype() => {}
                other => return Err(format!("accepted, but does not round-trip: {other:?}")),
            }
            Ok(true)
        }
        Err(e) => {
            if e.to_string().is_empty() {
                return Err("an error with no message".into());
            }
            Ok(false)
        }
    }
}

// ---- the largest allocation, for binaries that install `TrackingAlloc` ----

/// A global allocator (the system's) that records the largest allocation a thread makes while
/// [`largest_allocation`] watches it. Install it in a binary with
/// `#[global_allocator] static A: flow_tests::fuzz::TrackingAlloc = flow_tests::fuzz::TrackingAlloc;`.
pub struct TrackingAlloc;

static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping touches
// only `const`-initialized thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the largest single allocation it made on this thread,
/// or `None` when `TrackingAlloc` is not the global allocator.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, Option<usize>) {
    // Any allocation marks the allocator as installed.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
    LARGEST.with(|l| l.set(0));
    WATCHING.with(|w| w.set(true));
    let out = f();
    WATCHING.with(|w| w.set(false));
    let largest = LARGEST.with(|l| l.get());
    (out, INSTALLED.load(Ordering::Relaxed).then_some(largest))
}
