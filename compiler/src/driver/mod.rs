//! The I/O edge of the compiler: reads source files, loads stdlib modules, runs the pipeline
//! and renders diagnostics. The only module (with `bin/`) that touches the file system and
//! the process's standard streams.

pub mod fs_host;
pub mod report;
pub mod stdlib;

use crate::base::{Code, Diagnostic, FileId, SourceMap};
use crate::check;
use crate::hir;
use crate::syntax::{self, ast};

pub use report::RenderConfig;

/// A program checked without errors, with the sources it came from.
pub struct Compiled {
    pub sources: SourceMap,
    pub program: hir::Program,
    pub warnings: Vec<Diagnostic>,
}

/// A compilation that failed: the sources and every diagnostic.
pub struct Failed {
    pub sources: SourceMap,
    pub diags: Vec<Diagnostic>,
}

impl Failed {
    pub fn render(&self, cfg: RenderConfig) -> String {
        report::render_all(&self.sources, &self.diags, cfg)
    }
}

/// Parses and checks in-memory sources `(name, text)`: the user's files of one program.
pub fn compile_sources(files: &[(String, String)]) -> Result<Compiled, Failed> {
    let mut sm = SourceMap::new();
    let mut parsed: Vec<(Option<String>, ast::File)> = Vec::new();
    let mut diags = Vec::new();
    let mut wanted: Vec<(String, crate::base::Span)> = Vec::new();
    for (name, text) in files {
        let id = sm.add(name.clone(), text.clone());
        let (file, d) = syntax::parse(id, text);
        diags.extend(d);
        collect_uses(&file, &mut wanted);
        parsed.push((None, file));
    }
    let mut loaded: Vec<String> = Vec::new();
    while let Some((module, span)) = wanted.pop() {
        if loaded.contains(&module) {
            continue;
        }
        let Some(text) = stdlib::source(&module) else {
            diags.push(
                Diagnostic::error(
                    Code::UnknownModule,
                    format!("there is no module `std::{module}`"),
                    span,
                )
                .with_note(format!(
                    "the standard library has: {}",
                    stdlib::MODULES
                        .iter()
                        .map(|(m, _)| format!("std::{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            continue;
        };
        loaded.push(module.clone());
        let id: FileId = sm.add(format!("<std::{module}>"), text);
        let (file, d) = syntax::parse(id, text);
        diags.extend(d);
        collect_uses(&file, &mut wanted);
        parsed.push((Some(module), file));
    }
    if diags.iter().any(|d| d.is_error()) {
        return Err(Failed { sources: sm, diags });
    }
    let inputs: Vec<check::SourceFile<'_>> = parsed
        .iter()
        .map(|(m, f)| check::SourceFile {
            module: m.clone(),
            ast: f,
        })
        .collect();
    let (program, d) = check::check(&inputs);
    diags.extend(d);
    if diags.iter().any(|d| d.is_error()) {
        return Err(Failed { sources: sm, diags });
    }
    Ok(Compiled {
        sources: sm,
        program,
        warnings: diags,
    })
}

/// Parses and checks files from disk. An unreadable file is reported as a failure.
pub fn compile_paths(paths: &[std::path::PathBuf]) -> Result<Compiled, CompileError> {
    let mut files = Vec::new();
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => files.push((p.display().to_string(), text)),
            Err(e) => {
                return Err(CompileError::Io(format!(
                    "cannot read `{}`: {e}",
                    p.display()
                )))
            }
        }
    }
    compile_sources(&files).map_err(CompileError::Diagnostics)
}

pub enum CompileError {
    Io(String),
    Diagnostics(Failed),
}

impl CompileError {
    pub fn render(&self, cfg: RenderConfig) -> String {
        match self {
            CompileError::Io(msg) => format!("error: {msg}\n"),
            CompileError::Diagnostics(f) => f.render(cfg),
        }
    }
}

fn collect_uses(file: &ast::File, out: &mut Vec<(String, crate::base::Span)>) {
    for item in &file.items {
        if let ast::Item::Use(u) = item {
            let names: Vec<&str> = u.path.iter().map(|p| p.name.as_str()).collect();
            match names.as_slice() {
                ["std", m] => out.push((m.to_string(), u.span)),
                _ => out.push((names.join("::"), u.span)),
            }
        }
    }
}

/// Whether standard error is a terminal (colour on) or not (plain text).
pub fn stderr_config() -> RenderConfig {
    use std::io::IsTerminal;
    RenderConfig {
        color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// `flowc check FILE...`: exit status 0 when every file checks, 1 otherwise.
pub fn cmd_check(paths: &[std::path::PathBuf]) -> i32 {
    let cfg = stderr_config();
    let mut status = 0;
    for p in paths {
        match compile_paths(std::slice::from_ref(p)) {
            Ok(c) => {
                eprint!("{}", report::render_all(&c.sources, &c.warnings, cfg));
            }
            Err(e) => {
                eprint!("{}", e.render(cfg));
                status = 1;
            }
        }
    }
    status
}

/// The AST dump of one source text, with any syntax diagnostics rendered after it.
pub fn dump_ast(name: &str, text: &str) -> String {
    let mut sm = SourceMap::new();
    let id = sm.add(name, text);
    let (file, diags) = syntax::parse(id, text);
    let mut out = syntax::dump::dump_file(&file);
    if !diags.is_empty() {
        out.push_str("----- DIAGNOSTICS\n");
        out.push_str(&report::render_all(&sm, &diags, RenderConfig::default()));
    }
    out
}

/// The typed dump of one program, or its rendered diagnostics.
pub fn dump_typed(name: &str, text: &str) -> String {
    match compile_sources(&[(name.to_string(), text.to_string())]) {
        Ok(c) => hir::dump::dump_program(&c.program),
        Err(f) => f.render(RenderConfig::default()),
    }
}

/// A run-time error as a diagnostic.
pub fn run_error_diag(e: &crate::exec::RunError) -> Diagnostic {
    let code = match e.kind {
        crate::exec::RunErrorKind::Assertion => Code::AssertionFailed,
        crate::exec::RunErrorKind::Other => Code::RuntimeError,
    };
    Diagnostic::error(code, e.message.clone(), e.span)
}

/// `flowc run FILE [-- ARGS]`: runs `main`. Exit status 1 on any error.
pub fn cmd_run(path: &std::path::Path, args: Vec<String>) -> i32 {
    let cfg = stderr_config();
    let c = match compile_paths(&[path.to_path_buf()]) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", e.render(cfg));
            return 1;
        }
    };
    if c.program.main.is_none() {
        eprintln!(
            "error[{}]: `{}` has no `main` block to run",
            Code::MissingMain,
            path.display()
        );
        return 1;
    }
    let mut host = fs_host::FsHost { argv: args };
    match crate::exec::run_main(&c.program, &mut host) {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{}", report::render(&c.sources, &run_error_diag(&e), cfg));
            1
        }
    }
}

/// `flowc test FILE|DIR`: runs every `test` block of every `.flow` file, one line per test,
/// and a closing `N passed, M failed`. Exit status 1 on any failure.
pub fn cmd_test(path: &std::path::Path) -> i32 {
    let cfg = stderr_config();
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut v: Vec<_> = match std::fs::read_dir(path) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "flow"))
                .collect(),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", path.display());
                return 1;
            }
        };
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let c = match compile_paths(std::slice::from_ref(f)) {
            Ok(c) => c,
            Err(e) => {
                eprint!("{}", e.render(cfg));
                failed += 1;
                continue;
            }
        };
        let mut host = fs_host::FsHost { argv: Vec::new() };
        for t in crate::exec::run_tests(&c.program, &mut host) {
            match t.error {
                None => {
                    passed += 1;
                    println!("ok    {}: {}", f.display(), t.name);
                }
                Some(e) => {
                    failed += 1;
                    println!("FAIL  {}: {}", f.display(), t.name);
                    eprint!("{}", report::render(&c.sources, &run_error_diag(&e), cfg));
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}

/// `flowc ir FILE --stage mir`: runs `main` with output discarded and prints the MIR of every
/// graph it dispatches.
pub fn cmd_ir(path: &std::path::Path, args: Vec<String>) -> i32 {
    let cfg = stderr_config();
    let c = match compile_paths(&[path.to_path_buf()]) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", e.render(cfg));
            return 1;
        }
    };
    let mut host = crate::exec::MemoryHost {
        argv: args,
        ..Default::default()
    };
    let (graphs, err) = crate::exec::dispatched_graphs(&c.program, &mut host);
    for (i, g) in graphs.iter().enumerate() {
        println!("// graph {i}");
        print!("{}", crate::mir::print(g));
    }
    match err {
        None => 0,
        Some(e) => {
            eprint!("{}", report::render(&c.sources, &run_error_diag(&e), cfg));
            1
        }
    }
}
