//! Run-time errors as data. A [`RunError`] is a [`RunErrorKind`] — what went wrong, with its
//! facts — at a source location. The kind words itself (its `Display`) and names its
//! diagnostic code ([`RunErrorKind::code`]) here and nowhere else. An internal invariant
//! failure (a rewrite pass that leaves the MIR invalid, invalid MIR reaching a backend) is a
//! [`RunErrorKind::CompilerBug`]: reported with its own code, `compiler-bug`, and a request
//! to report it, never as an error of the program.

use crate::base::{Code, Span};
use crate::mir::lower::LowerError;
use crate::mir::passes::PassError;
use crate::native::NativeError;

/// A run-time error with the source location it belongs to.
#[derive(Clone, Debug)]
pub struct RunError {
    /// Boxed to keep `Result<_, RunError>` small.
    pub kind: Box<RunErrorKind>,
    pub span: Span,
    /// Other places the error involves, each with what it says about them.
    pub related: Vec<(Span, String)>,
}

/// What went wrong while running.
#[derive(Clone, Debug, PartialEq)]
pub enum RunErrorKind {
    /// A failed `assert` or `assert_close`.
    Assertion(Assertion),
    /// The run reached [`super::RunOptions::deadline`].
    TimeLimit,
    /// The native backend failed (a shard, an allocation, the code generator).
    Backend(NativeError),
    /// An internal invariant broke: `stage` says where (``the pass `fuse-maps` left the MIR
    /// invalid``, `the coordinator`), `finding` what is wrong (for a pass, the verifier's
    /// finding).
    CompilerBug {
        stage: String,
        finding: String,
        /// The offending graph, printed, when there is one (a diagnostic shows it as a note).
        graph: Option<String>,
    },
    /// Any other error of the program or its data, in words (a shape that does not fit, a
    /// bad file, a division by zero, the memory budget).
    Program(String),
}

/// How an assertion failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Assertion {
    /// `assert(c)` or `assert(c, message)` with `c` false: the message, or the default one.
    False { message: String },
    /// `assert_close` of tensors of different shapes.
    ShapesDiffer { a: Vec<usize>, b: Vec<usize> },
    /// `assert_close` of values further apart than allowed, at the worst element: its index
    /// (`None` for scalars), both values (formatted), their distance and the tolerance.
    NotClose {
        at: Option<String>,
        a: String,
        b: String,
        distance: f64,
        tolerance: f64,
    },
}

pub(super) type RResult<T> = Result<T, RunError>;

impl RunError {
    /// An error of `kind` at `span`.
    pub fn new(kind: RunErrorKind, span: Span) -> RunError {
        RunError {
            kind: Box::new(kind),
            span,
            related: Vec::new(),
        }
    }

    /// A broken invariant of the coordinator (one the checker guarantees), at `span`.
    pub fn bug(span: Span, finding: impl Into<String>) -> RunError {
        RunError::new(
            RunErrorKind::CompilerBug {
                stage: "the coordinator".into(),
                finding: finding.into(),
                graph: None,
            },
            span,
        )
    }

    /// An error of the program or its data, in words, at `span`.
    pub fn program(span: Span, message: impl Into<String>) -> RunError {
        RunError::new(RunErrorKind::Program(message.into()), span)
    }

    /// The error's text, as a diagnostic shows it.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// The error's diagnostic code.
    pub fn code(&self) -> Code {
        self.kind.code()
    }
}

impl From<LowerError> for RunError {
    /// Lowering a coordinator expression failed: an error of the program at its span, or a
    /// compiler bug when an invariant of lowering broke.
    fn from(e: LowerError) -> RunError {
        if e.kind.is_internal() {
            RunError::bug(e.span, e.to_string())
        } else {
            RunError::program(e.span, e.to_string())
        }
    }
}

impl From<PassError> for RunErrorKind {
    fn from(e: PassError) -> RunErrorKind {
        RunErrorKind::CompilerBug {
            stage: format!("the pass `{}` left the MIR invalid", e.pass),
            finding: e.error.to_string(),
            graph: Some(e.graph),
        }
    }
}

impl From<NativeError> for RunErrorKind {
    fn from(e: NativeError) -> RunErrorKind {
        RunErrorKind::Backend(e)
    }
}

impl RunErrorKind {
    /// The diagnostic code of this kind of error.
    pub fn code(&self) -> Code {
        match self {
            RunErrorKind::Assertion(_) => Code::AssertionFailed,
            RunErrorKind::CompilerBug { .. } => Code::CompilerBug,
            RunErrorKind::Backend(e) if e.is_compiler_bug() => Code::CompilerBug,
            RunErrorKind::Backend(_) | RunErrorKind::TimeLimit | RunErrorKind::Program(_) => {
                Code::RuntimeError
            }
        }
    }

    /// Whether this is an internal invariant failure rather than an error of the program.
    pub fn is_compiler_bug(&self) -> bool {
        self.code() == Code::CompilerBug
    }
}

/// The request that closes every compiler-bug message.
pub const REPORT_REQUEST: &str =
    "this is a bug in flowc, not in your program; please report it with the program that \
     triggered it";

impl std::fmt::Display for RunErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunErrorKind::Assertion(a) => a.fmt(f),
            RunErrorKind::TimeLimit => f.write_str("the run reached its time limit"),
            RunErrorKind::Backend(e) if e.is_compiler_bug() => {
                write!(f, "{e}; {REPORT_REQUEST}")
            }
            RunErrorKind::Backend(e) => e.fmt(f),
            RunErrorKind::CompilerBug { stage, finding, .. } => {
                write!(
                    f,
                    "internal compiler error: {stage}: {finding}; {REPORT_REQUEST}"
                )
            }
            RunErrorKind::Program(message) => f.write_str(message),
        }
    }
}

impl std::fmt::Display for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assertion::False { message } => write!(f, "assertion failed: {message}"),
            Assertion::ShapesDiffer { a, b } => write!(
                f,
                "assert_close: shapes differ: {} and {}",
                flow_runtime::format_shape(a),
                flow_runtime::format_shape(b)
            ),
            Assertion::NotClose {
                at,
                a,
                b,
                distance,
                tolerance,
            } => {
                let at = at
                    .as_ref()
                    .map_or(String::new(), |i| format!(" at index {i}"));
                write!(
                    f,
                    "assert_close failed{at}: {a} vs {b} (|a - b| = {distance}, allowed \
                     {tolerance} * (1 + |b|))"
                )
            }
        }
    }
}
