//! Shared vocabulary that every layer of the compiler may use: source spans, the source map,
//! diagnostics as data, and the scalar operators with their one definition of meaning
//! ([`ops`]). Nothing here renders, reads files or knows about later stages.

pub mod diag;
pub mod ops;
pub mod span;

pub use diag::{Code, Diagnostic, Label};
pub use span::{FileId, SourceMap, Span};
