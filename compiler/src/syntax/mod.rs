//! The front end: source text to an untyped syntax tree. `parse` never fails; it returns a
//! tree together with every lexical and syntax diagnostic it found.
//!
//! **Invariant:** nothing here knows about types, names or later stages.

pub mod ast;
pub mod depth;
pub mod dump;
pub mod lexer;
pub mod parser;
pub mod token;

use crate::base::{Diagnostic, FileId};

/// Parses one source file into a tree and its diagnostics.
pub fn parse(file: FileId, text: &str) -> (ast::File, Vec<Diagnostic>) {
    parser::parse_file(file, text)
}
