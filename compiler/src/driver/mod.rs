//! The I/O edge of the compiler: reads source files, loads stdlib modules, runs the pipeline
//! and renders diagnostics. The only module (with `bin/`) that touches the file system and
//! the process's standard streams.

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
