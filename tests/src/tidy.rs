//! Mechanical checks of the source tree (STYLE.md practices 2 and 17): `//!` headers, no
//! disabled tests, the module layering of `compiler/src`, I/O only at the edges, a runtime
//! crate free of compiler dependencies, and no orphan snapshots.
//!
//! Unit-test modules (`tests.rs` or a `tests/` folder under `#[cfg(test)]`) are exempt from the layering rules,
//! not from the others.
//!
//! Each check returns the list of violations, one readable line each; the tests in
//! `tests/tests/tidy.rs` assert that the lists are empty. Source is scanned after comments
//! and the contents of string literals are blanked out (see [`strip_comments_and_strings`]),
//! so a doc comment that mentions `crate::mir` is not an import.

use std::path::{Path, PathBuf};

/// The folders whose `.rs` files the checks scan, relative to the workspace root.
pub const RUST_DIRS: &[&str] = &[
    "compiler/src",
    "compiler/build.rs",
    "compiler/tests",
    "runtime/src",
    "tests/src",
    "tests/tests",
];

/// The top-level modules of `compiler/src`.
pub const MODULES: &[&str] = &[
    "base", "syntax", "hir", "check", "mir", "interp", "native", "codegen", "exec", "driver",
];

/// One layering rule: files under `compiler/src/<module>/` may not refer to the modules in
/// `forbidden` through `crate::…` paths, except the files listed in `allowed` (permanent
/// exceptions by design) and in `KNOWN_VIOLATIONS` (debts to pay).
pub struct Layer {
    pub module: &'static str,
    pub forbidden: &'static [&'static str],
    /// `(path, module)`: a file, or every file under a folder (a path ending in `/`), that may
    /// use one otherwise forbidden module.
    pub allowed: &'static [(&'static str, &'static str)],
}

/// The layering table of STYLE.md: a module may use only modules at lower levels, and never
/// a sibling at its own level.
pub const LAYERS: &[Layer] = &[
    Layer {
        module: "base",
        forbidden: &[
            "syntax", "hir", "check", "mir", "interp", "native", "codegen", "exec", "driver",
        ],
        allowed: &[],
    },
    Layer {
        module: "syntax",
        forbidden: &[
            "hir", "check", "mir", "interp", "native", "codegen", "exec", "driver",
        ],
        allowed: &[],
    },
    Layer {
        module: "hir",
        forbidden: &[
            "syntax", "check", "mir", "interp", "native", "codegen", "exec", "driver",
        ],
        allowed: &[],
    },
    Layer {
        module: "check",
        forbidden: &["mir", "interp", "native", "codegen", "exec", "driver"],
        allowed: &[],
    },
    Layer {
        module: "mir",
        forbidden: &[
            "syntax", "hir", "check", "interp", "native", "codegen", "exec", "driver",
        ],
        allowed: &[("compiler/src/mir/lower/", "hir")],
    },
    Layer {
        module: "interp",
        forbidden: &[
            "syntax", "hir", "check", "native", "codegen", "exec", "driver",
        ],
        allowed: &[],
    },
    // The executor of native kernels; it runs a node without a kernel on the interpreter.
    Layer {
        module: "native",
        forbidden: &["syntax", "hir", "check", "codegen", "exec", "driver"],
        allowed: &[],
    },
    Layer {
        module: "codegen",
        forbidden: &["syntax", "hir", "check", "interp", "exec", "driver"],
        allowed: &[],
    },
    // The coordinator never names the code generator: it gets kernels through a
    // `native::Kernels` source, so an executable made by `flowc build` links no Cranelift.
    Layer {
        module: "exec",
        forbidden: &["syntax", "check", "codegen", "driver"],
        allowed: &[],
    },
];

/// Exceptions to the layering that the tree has today and that should go away. Each is
/// `(file, module, why)`. A test checks that every entry is still needed, so fixing one
/// forces removing it here.
pub const KNOWN_VIOLATIONS: &[(&str, &str, &str)] = &[(
    "compiler/src/hir/mod.rs",
    "syntax",
    "re-exports `syntax::ast::FuncKind`; it belongs in `base` or `hir`",
)];

/// Files that may touch the file system or the process's standard streams.
pub const IO_EDGES: &[&str] = &["compiler/src/driver/", "compiler/src/bin/"];

/// The only file that may use `ariadne`.
pub const ARIADNE_FILE: &str = "compiler/src/driver/report.rs";

/// The only file that may use the `mpi` crate (the `mpi` feature): the rest of the compiler
/// reaches MPI ranks through `native::Spread`, so the default build needs no MPI.
pub const MPI_FILE: &str = "compiler/src/driver/mpi_run.rs";

/// The only folder that may use `cranelift_*`.
pub const CRANELIFT_DIR: &str = "compiler/src/codegen/";

/// Crates the runtime must never depend on.
pub const RUNTIME_BANNED_DEPS: &[&str] = &[
    "flowc",
    "flow-tests",
    "cranelift",
    "logos",
    "lalrpop",
    "ariadne",
];

/// Every `.rs` file under `RUST_DIRS`, as paths relative to `root`, sorted.
pub fn rust_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in RUST_DIRS {
        collect_rs(&root.join(dir), &mut out);
    }
    let mut rel: Vec<String> = out
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    rel.sort();
    rel
}

fn collect_rs(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        // Snapshot folders hold no Rust, and `target/` is never under these folders.
        if p.file_name().is_some_and(|n| n == "snapshots") {
            continue;
        }
        collect_rs(&p, out);
    }
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_default()
}

/// Files that do not start with a `//!` module doc.
pub fn missing_doc_headers(root: &Path) -> Vec<String> {
    rust_files(root)
        .into_iter()
        .filter(|f| !read(root, f).starts_with("//!"))
        .map(|f| format!("{f}: does not start with a `//!` comment saying what it is"))
        .collect()
}

/// The most lines a source file may have without saying why (issue 15: rooms a newcomer can
/// read). A longer file states its reason in a `//! Long file: …` line of its header.
pub const MAX_FILE_LINES: usize = 800;

/// Files longer than [`MAX_FILE_LINES`] whose module doc gives no `Long file:` reason.
pub fn oversized_files(root: &Path) -> Vec<String> {
    rust_files(root)
        .into_iter()
        .filter_map(|f| {
            let text = read(root, &f);
            let lines = text.lines().count();
            let header_says_why = text.lines().take_while(|l| l.starts_with("//!")).any(|l| {
                l.trim_start_matches("//!")
                    .trim_start()
                    .starts_with("Long file:")
            });
            (lines > MAX_FILE_LINES && !header_says_why).then(|| {
                format!(
                    "{f}: {lines} lines (more than {MAX_FILE_LINES}): split it along a seam, or \
                     say why it is one room in a `//! Long file: …` header line"
                )
            })
        })
        .collect()
}

/// Uses of attributes that switch tests off or turn failures into passes.
pub fn disabled_tests(root: &Path) -> Vec<String> {
    let banned = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    let mut out = Vec::new();
    for f in rust_files(root) {
        let code = strip_comments_and_strings(&read(root, &f));
        for b in banned {
            if code.contains(b) {
                out.push(format!("{f}: uses `{b}]`; fix or delete the test instead"));
            }
        }
    }
    out
}

/// `crate::…` references that break the layering table.
pub fn layering_violations(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in rust_files(root) {
        let Some(module) = compiler_module(&f) else {
            continue;
        };
        let Some(layer) = LAYERS.iter().find(|l| l.module == module) else {
            continue;
        };
        if is_unit_test_module(root, &f) {
            continue;
        }
        let code = strip_comments_and_strings(&read(root, &f));
        let mut seen = Vec::new();
        for used in crate_modules(&code, &f) {
            let excused = layer.allowed.iter().any(|(path, m)| {
                *m == used && (*path == f || (path.ends_with('/') && f.starts_with(path)))
            }) || KNOWN_VIOLATIONS
                .iter()
                .any(|(file, m, _)| *file == f && *m == used);
            if !layer.forbidden.contains(&used.as_str()) || excused || seen.contains(&used) {
                continue;
            }
            out.push(format!(
                "{f}: `{module}` may not use `crate::{used}` (see the layering table in docs/architecture.md)"
            ));
            seen.push(used);
        }
    }
    out
}

/// The modules that run the rewrite pipeline and may therefore name `mir::passes`: every
/// other stage uses what the pipeline produces (helpers every stage needs live in `mir::ir`
/// and `mir::monoid`, the schedule in `mir::schedule`).
pub const PASS_PIPELINE_USERS: &[&str] = &[
    "compiler/src/mir/passes/",
    "compiler/src/exec/",
    "compiler/src/driver/",
];

/// Files outside [`PASS_PIPELINE_USERS`] that name `mir::passes` (as `crate::mir::passes` or,
/// from inside `mir/`, `super::passes`).
pub fn passes_used_outside_pipeline(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in rust_files(root) {
        if !f.starts_with("compiler/src/")
            || PASS_PIPELINE_USERS.iter().any(|d| f.starts_with(d))
            || is_unit_test_module(root, &f)
        {
            continue;
        }
        let code = strip_comments_and_strings(&read(root, &f));
        let via_crate = paths_from(&code, "crate").iter().any(|p| {
            p.get(1).is_some_and(|m| m == "mir") && p.get(2).is_some_and(|m| m == "passes")
        });
        let in_mir = f.starts_with("compiler/src/mir/") && !f.ends_with("/mod.rs");
        let via_super = in_mir
            && paths_from(&code, "super")
                .iter()
                .any(|p| p.get(1).is_some_and(|m| m == "passes"));
        if via_crate || via_super {
            out.push(format!(
                "{f}: only the pass pipeline's users ({}) may name `mir::passes`",
                PASS_PIPELINE_USERS.join(", ")
            ));
        }
    }
    out
}

/// Entries of `KNOWN_VIOLATIONS` that the tree no longer needs.
pub fn stale_exceptions(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (file, used, _) in KNOWN_VIOLATIONS {
        let code = strip_comments_and_strings(&read(root, file));
        if !crate_modules(&code, file).iter().any(|m| m == used) {
            out.push(format!(
                "{file} no longer uses `crate::{used}`: remove it from KNOWN_VIOLATIONS in tests/src/tidy.rs"
            ));
        }
    }
    out
}

/// File system, standard streams and ariadne outside the I/O edges; cranelift outside codegen;
/// `flowc::` paths other than `flowc::driver` in the binary.
pub fn io_outside_edges(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in rust_files(root) {
        if !f.starts_with("compiler/src/") {
            continue;
        }
        let code = strip_comments_and_strings(&read(root, &f));
        let at_edge = IO_EDGES.iter().any(|e| f.starts_with(e));
        if !at_edge {
            for path in paths_from(&code, "std") {
                let p = path.join("::");
                if p.starts_with("std::fs")
                    || p.starts_with("std::io::stdout")
                    || p.starts_with("std::io::stderr")
                    || p.starts_with("std::io::stdin")
                {
                    out.push(format!(
                        "{f}: uses `{p}`; I/O lives in compiler/src/driver/"
                    ));
                }
            }
            // `fs::read(…)` after `use std::{fs, …}` is caught above, at the `use`.
            for mac in ["println", "eprintln", "print", "eprint"] {
                if macro_used(&code, mac) {
                    out.push(format!(
                        "{f}: uses `{mac}!`; output lives in compiler/src/driver/"
                    ));
                }
            }
        }
        if f != ARIADNE_FILE && identifiers(&code).any(|i| i == "ariadne") {
            out.push(format!(
                "{f}: uses `ariadne`; only {ARIADNE_FILE} renders diagnostics"
            ));
        }
        if f != MPI_FILE && identifiers(&code).any(|i| i == "mpi") {
            out.push(format!("{f}: uses the `mpi` crate; only {MPI_FILE} may"));
        }
        if !f.starts_with(CRANELIFT_DIR) && identifiers(&code).any(|i| i.starts_with("cranelift")) {
            out.push(format!("{f}: uses cranelift; only {CRANELIFT_DIR} may"));
        }
        if f.starts_with("compiler/src/bin/") {
            for path in paths_from(&code, "flowc") {
                if path.get(1).map(String::as_str) != Some("driver") {
                    out.push(format!(
                        "{f}: uses `{}`; the binary calls the driver only",
                        path.join("::")
                    ));
                }
            }
        }
    }
    out
}

/// Dependencies of `runtime/Cargo.toml` (any section) on the compiler's crates.
pub fn runtime_dependency_violations(root: &Path) -> Vec<String> {
    let text = read(root, "runtime/Cargo.toml");
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let section = line.trim_matches(|c| c == '[' || c == ']');
            in_deps = section.ends_with("dependencies");
            // `[dependencies.name]` tables.
            if let Some((head, name)) = section.rsplit_once('.') {
                if head.ends_with("dependencies") {
                    in_deps = false;
                    check_dep(name, &mut out);
                }
            }
            continue;
        }
        if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                check_dep(name.trim().trim_matches('"'), &mut out);
            }
        }
    }
    out
}

fn check_dep(name: &str, out: &mut Vec<String>) {
    let name = name.split('.').next().unwrap_or(name);
    if RUNTIME_BANNED_DEPS.iter().any(|b| {
        name == *b || name.starts_with(&format!("{b}-")) || name.starts_with(&format!("{b}_"))
    }) {
        out.push(format!(
            "runtime/Cargo.toml depends on `{name}`; the runtime depends on no compiler crate"
        ));
    }
}

/// A snapshot family: snapshots named `<prefix>@<file>.snap` whose input is `dir/<file>`.
pub struct SnapshotFamily {
    pub prefix: String,
    pub dir: PathBuf,
}

/// `.snap` files in `snap_dir` that belong to no family or whose input file is gone.
pub fn orphan_snapshots(snap_dir: &Path, families: &[SnapshotFamily]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(snap_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snap"))
        .collect();
    names.sort();
    for name in names {
        let stem = name.trim_end_matches(".snap");
        let Some((prefix, input)) = stem.split_once('@') else {
            out.push(format!("{name}: not made by any test; delete it"));
            continue;
        };
        match families.iter().find(|f| f.prefix == prefix) {
            None => out.push(format!(
                "{name}: no test makes `{prefix}` snapshots; delete it"
            )),
            Some(f) if !f.dir.join(input).is_file() => out.push(format!(
                "{name}: its input `{}` is gone; delete it",
                f.dir.join(input).display()
            )),
            Some(_) => {}
        }
    }
    out
}

/// Whether `file` is a `tests.rs` (or in a `tests/` folder) that its parent `mod.rs` declares
/// as `#[cfg(test)] mod tests;`. Such a module is compiled only for unit tests and may build its fixtures with
/// any layer (the exec tests parse and check Flow source, say); the layering rules are
/// about the code the compiler ships.
fn is_unit_test_module(root: &Path, file: &str) -> bool {
    // `m/tests.rs`, or any file of a `m/tests/` folder (`m/tests/mod.rs` and its children).
    let Some(dir) = file
        .strip_suffix("/tests.rs")
        .or_else(|| file.rsplit_once("/tests/").map(|(dir, _)| dir))
    else {
        return false;
    };
    let parent = strip_comments_and_strings(&read(root, &format!("{dir}/mod.rs")));
    let squashed: String = parent.split_whitespace().collect();
    squashed.contains("#[cfg(test)]modtests;")
}

// ---- scanning Rust source ----

/// The top-level module a file under `compiler/src/` belongs to.
fn compiler_module(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("compiler/src/")?;
    let (module, _) = rest.split_once('/')?;
    MODULES.contains(&module).then_some(module)
}

/// The top-level modules of the crate that `code` (the text of `file`) refers to, through
/// `crate::…` paths or `super::…` paths that climb to the crate root.
pub fn crate_modules(code: &str, file: &str) -> Vec<String> {
    let mut out: Vec<String> = paths_from(code, "crate")
        .into_iter()
        .filter_map(|p| p.get(1).cloned())
        .collect();
    // `super` from `compiler/src/m/x.rs` is `crate::m`; from `m/mod.rs` it is the root.
    let depth = file
        .strip_prefix("compiler/src/")
        .map(|r| r.matches('/').count())
        .unwrap_or(0);
    let is_mod = file.ends_with("/mod.rs");
    for p in paths_from(code, "super") {
        let supers = p.iter().take_while(|s| *s == "super").count();
        // How many `super`s climb from this file's module to the crate root.
        let levels = if is_mod { depth } else { depth + 1 };
        if supers >= levels {
            if let Some(m) = p.get(supers) {
                out.push(m.clone());
            }
        }
    }
    out
}

/// Every path that starts with the segment `root` (`crate`, `std`, `super`…), with `{…}`
/// groups expanded: `use crate::{a, b::c}` gives `crate::a` and `crate::b::c`.
pub fn paths_from(code: &str, root: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find(root) {
        let at = from + pos;
        from = at + root.len();
        let before_ok = at == 0 || {
            let b = bytes[at - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        };
        if !before_ok || !code[from..].starts_with("::") {
            continue;
        }
        let mut paths = Vec::new();
        parse_tree(code, from, vec![root.to_string()], &mut paths);
        out.extend(paths);
    }
    out
}

/// Parses the rest of a path after `prefix`, at byte `at` (which points at `::` or at the
/// end of the path).
fn parse_tree(code: &str, at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes = code.as_bytes();
    let mut i = at;
    let mut path = prefix;
    loop {
        let j = skip_ws(bytes, i);
        if !code[j..].starts_with("::") {
            out.push(path);
            return i;
        }
        i = skip_ws(bytes, j + 2);
        if bytes.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i = skip_ws(bytes, i);
                match bytes.get(i) {
                    None => return i,
                    Some(b'}') => return i + 1,
                    Some(b',') => i += 1,
                    Some(_) => {
                        let (seg, end) = ident_at(code, i);
                        if seg.is_empty() {
                            // `*` or something unexpected: skip one byte.
                            i += 1;
                            continue;
                        }
                        let mut p = path.clone();
                        p.push(seg);
                        i = parse_tree(code, end, p, out);
                    }
                }
            }
        }
        let (seg, end) = ident_at(code, i);
        if seg.is_empty() {
            out.push(path);
            return i;
        }
        path.push(seg);
        i = end;
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

fn ident_at(code: &str, i: usize) -> (String, usize) {
    let len = code[i..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    (code[i..i + len].to_string(), i + len)
}

/// The identifiers in `code`, in order.
pub fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|s| !s.is_empty() && !s.starts_with(|c: char| c.is_ascii_digit()))
}

/// Whether `name!` is invoked somewhere in `code`.
pub fn macro_used(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let ident_before = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let rest = code[at + name.len()..].trim_start();
        !ident_before && rest.starts_with('!') && !rest.starts_with("!=")
    })
}

/// Rust source with comments removed and string and character literals emptied, keeping
/// everything else (so paths and macro names can be found by plain search).
pub fn strip_comments_and_strings(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if src[i..].starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if src[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if src[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        // Raw strings: r"…", r#"…"#, br"…".
        if !ident_before && (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r'))) {
            let start = if c == b'b' { i + 2 } else { i + 1 };
            let hashes = b[start..].iter().take_while(|&&x| x == b'#').count();
            if b.get(start + hashes) == Some(&b'"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let body = start + hashes + 1;
                let end = src[body..]
                    .find(&close)
                    .map_or(b.len(), |p| body + p + close.len());
                out.push_str("\"\"");
                i = end;
                continue;
            }
        }
        if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
            continue;
        }
        if c == b'\'' {
            // A character literal ('x', '\n', '\''), or else a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                j += 1;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
                continue;
            }
            let ch_len = src[i + 1..].chars().next().map_or(0, char::len_utf8);
            if ch_len > 0 && b.get(i + 1 + ch_len) == Some(&b'\'') {
                out.push_str("' '");
                i += 2 + ch_len;
                continue;
            }
        }
        let ch = src[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}
