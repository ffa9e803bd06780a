//! The harness of Flow's integration tests. The tests themselves are one binary,
//! `tests/tests/all.rs`, with one module per suite; this library holds what they share:
//! where the inputs live, how a case file is loaded, how the `flowc` binary is found and
//! run, and how each kind of snapshot is laid out.
//!
//! Inputs are read in place, never copied: `tests/cases/**.flow` and the shared conformance
//! programs in `tests/conformance/` (the project's copy of the conformance suite, with its runner `run.sh`).
//!
//! Snapshots put the input and the output in one file, in sections that start with
//! `----- TITLE` lines (`----- SOURCE`, then `----- AST`, `----- TYPED` or
//! `----- DIAGNOSTICS`). Paths in them are relative, and trailing spaces are trimmed.
//!
//! Adding a test is adding a file:
//! - a syntax form: `tests/cases/parse/<form>.flow` (or `<form>_err.flow` to show recovery);
//! - a typing rule: `tests/cases/check/<topic>.flow` (must compile);
//! - a diagnostic code: `tests/cases/errors/<code>.flow` starting with
//!   `// expect-error: <code>` (plus `// command: run` when `flowc run` reports it).
//!
//! Then run `INSTA_UPDATE=always cargo test -p flow-tests` and read the new snapshots.

pub mod directives;
pub mod fuzz;
pub mod tidy;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flowc::driver::{compile_sources, Compiled, Failed, RenderConfig};

pub use directives::Directives;

/// The workspace root: the folder that holds `compiler/`, `runtime/` and `tests/`.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().expect("tests/ has a parent folder");
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// The conformance programs, `tests/conformance/`.
pub fn conformance_dir() -> PathBuf {
    let dir = workspace_root().join("tests/conformance");
    dir.canonicalize().unwrap_or(dir)
}

/// This crate's own case files, `tests/cases/`.
pub fn cases_dir() -> PathBuf {
    workspace_root().join("tests/cases")
}

/// The `.flow` files directly inside `dir`, sorted by name.
pub fn flow_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list `{}`: {e}", dir.display()));
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension() == Some(OsStr::new("flow")) && p.is_file())
        .collect();
    out.sort();
    out
}

/// One `.flow` file with its directives.
#[derive(Clone, Debug)]
pub struct Case {
    pub path: PathBuf,
    /// The file name, which is also the name the compiler reports locations with.
    pub name: String,
    pub text: String,
    pub directives: Directives,
}

/// Reads a case file and its directives; panics with the file name when either fails.
pub fn load_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
    let directives = directives::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Case {
        path: path.to_path_buf(),
        name,
        text,
        directives,
    }
}

/// Parses and checks a case as a one-file program, as `flowc check` does.
pub fn compile(case: &Case) -> Result<Compiled, Failed> {
    compile_sources(&[(case.name.clone(), case.text.clone())])
}

/// Diagnostics rendered as the CLI renders them, without colour.
pub fn render(failed: &Failed) -> String {
    failed.render(RenderConfig::default())
}

/// `----- SOURCE` + `----- AST`: the syntax tree (and any syntax diagnostics).
pub fn ast_snapshot(case: &Case) -> String {
    let dump = flowc::driver::dump_ast(&case.name, &case.text);
    // `dump_ast` appends its own `----- DIAGNOSTICS` section when there are any.
    snapshot(&[("SOURCE", &case.text), ("AST", &dump)])
}

/// `----- SOURCE` + `----- TYPED`: the typed dump (types, shapes and index ranges).
pub fn typed_snapshot(case: &Case) -> String {
    let dump = flowc::driver::dump_typed(&case.name, &case.text);
    snapshot(&[("SOURCE", &case.text), ("TYPED", &dump)])
}

/// `----- SOURCE` + `----- DIAGNOSTICS`: every rendered diagnostic of a program that must
/// be rejected. See [`rejection`].
pub fn diagnostics_snapshot(case: &Case) -> String {
    snapshot(&[("SOURCE", &case.text), ("DIAGNOSTICS", &rejection(case))])
}

/// The subcommand a case of an `errors/` folder is rejected by (`// command:`, default
/// `check`).
pub fn command(case: &Case) -> &str {
    case.directives.command.as_deref().unwrap_or("check")
}

/// The diagnostics that reject a program. For `check` cases, the driver's own rendering of
/// `compile_sources`; for `run`/`test` cases, what `flowc` writes to stderr. Panics if the
/// program is accepted.
pub fn rejection(case: &Case) -> String {
    if command(case) == "check" {
        return match compile(case) {
            Ok(_) => panic!("{}: compiled, but it must be rejected", case.path.display()),
            Err(f) => render(&f),
        };
    }
    let out = flowc_on(case);
    assert!(
        out.code != Some(0),
        "{}: `flowc {}` succeeded, but it must fail",
        case.path.display(),
        command(case)
    );
    out.stderr
}
/// Joins `(title, body)` sections into one normalized snapshot text.
pub fn snapshot(sections: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (title, body) in sections {
        out.push_str("----- ");
        out.push_str(title);
        out.push('\n');
        out.push_str(body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    normalize(&out)
}

/// Replaces machine-specific paths with placeholders and trims trailing whitespace, so that
/// snapshots are the same on every machine.
pub fn normalize(text: &str) -> String {
    let mut text = text.to_string();
    for (dir, placeholder) in [
        (conformance_dir(), "$CONFORMANCE"),
        (workspace_root(), "$WORKSPACE"),
    ] {
        let dir = dir.to_string_lossy().into_owned();
        if !dir.is_empty() {
            text = text.replace(&dir, placeholder);
        }
    }
    let mut out: String = text
        .lines()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

// ---- the flowc binary ----

/// What one run of `flowc` did.
#[derive(Clone, Debug)]
pub struct Output {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Whether the process crashed: a Rust panic (exit code 101 and `panicked at`) or a signal.
    pub fn crashed(&self) -> bool {
        self.code.is_none() || self.code == Some(101) || self.stderr.contains("panicked at")
    }
}

/// Runs `flowc COMMAND FILE` on a case, in the case's folder, so that locations and paths
/// in the output are the bare file name.
pub fn flowc_on(case: &Case) -> Output {
    let dir = case.path.parent().expect("a case file is in a folder");
    flowc([command(case), case.name.as_str()], dir)
}

/// Runs the `flowc` binary with `args` in the folder `cwd`.
pub fn flowc<I, S>(args: I, cwd: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(flowc_path())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", flowc_path().display()));
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The path of the `flowc` binary next to this test executable, built once per test run
/// when it is missing or older than any source it is made from. (`env!("CARGO_BIN_EXE_flowc")`
/// exists only inside the `flowc` package, so this crate asks cargo itself. Under
/// `cargo test --workspace` cargo has already built the binary, and nothing is rebuilt.)
pub fn flowc_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(build_flowc)
}

/// What the `flowc` binary is built from, relative to the workspace root.
const FLOWC_INPUTS: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "compiler",
    "grammar",
    "runtime",
    "stdlib",
];

fn build_flowc() -> PathBuf {
    // The test executable is `<target>/<profile>/deps/all-HASH`; the binary is
    // `<target>/<profile>/flowc`. This follows CARGO_TARGET_DIR and `--release`.
    let exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join(format!("flowc{}", std::env::consts::EXE_SUFFIX));
    let root = workspace_root();
    let newest_input = FLOWC_INPUTS
        .iter()
        .filter_map(|p| newest_mtime(&root.join(p)))
        .max();
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(newest)) = (built, newest_input) {
        if built >= newest {
            return bin;
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "flowc", "--bin", "flowc"])
        .current_dir(&root);
    if profile_dir.file_name() == Some(OsStr::new("release")) {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("cannot run cargo to build flowc");
    assert!(
        out.status.success(),
        "`cargo build -p flowc --bin flowc` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bin.is_file(),
        "cargo built flowc, but it is not at `{}`",
        bin.display()
    );
    bin
}

/// The latest modification time of a file, or of any file under a folder (skipping `tests/`
/// folders, which do not go into the binary).
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| e.file_name() != "tests")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// Checks the CLI contract for a program that must be rejected: `flowc check FILE` (or the
/// case's `// command:`) exits with 1 without crashing, and stderr holds every
/// `expect-error` text (any case) and a `FILE:LINE:COL` location. Returns what went wrong.
pub fn cli_rejects(case: &Case) -> Result<(), String> {
    if case.directives.expect_error.is_empty() {
        return Err("has no `// expect-error:` line".into());
    }
    let out = flowc_on(case);
    if out.crashed() {
        return Err(format!(
            "flowc crashed (exit {:?}):\n{}",
            out.code, out.stderr
        ));
    }
    if out.code != Some(1) {
        return Err(format!(
            "expected exit code 1, got {:?}; stderr:\n{}",
            out.code, out.stderr
        ));
    }
    let lower = out.stderr.to_lowercase();
    for want in &case.directives.expect_error {
        if !lower.contains(&want.to_lowercase()) {
            return Err(format!("stderr lacks `{want}`:\n{}", out.stderr));
        }
    }
    if !has_location(&out.stderr, &case.name) {
        return Err(format!(
            "stderr has no `{}:LINE:COL` location:\n{}",
            case.name, out.stderr
        ));
    }
    Ok(())
}

/// Whether `text` holds `NAME:LINE:COL` with numeric line and column.
pub fn has_location(text: &str, name: &str) -> bool {
    let pat = format!("{name}:");
    text.match_indices(&pat).any(|(at, _)| {
        let rest = &text[at + pat.len()..];
        let line_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Some(after) = rest[line_len..].strip_prefix(':') else {
            return false;
        };
        line_len > 0 && after.bytes().next().is_some_and(|b| b.is_ascii_digit())
    })
}
