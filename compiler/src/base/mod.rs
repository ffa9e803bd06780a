//! Shared vocabulary that every layer of the compiler may use: source spans, the source map
//! and diagnostics as data. Nothing here renders, reads files or knows about later stages.

pub mod diag;
pub mod span;

pub use diag::{Code, Diagnostic, Label};
pub use span::{FileId, SourceMap, Span};
