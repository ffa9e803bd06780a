//! Diagnostics as data: a stable code, a message, labelled spans and notes. Rendering lives in
//! `driver/report.rs`; every phase words its own messages where it creates them.

use super::span::Span;

macro_rules! codes {
    ($($variant:ident => $text:literal, $doc:literal;)*) => {
        /// Stable kebab-case diagnostic codes. Each has one case file under
        /// `tests/cases/errors/<code>.flow`, and a tidy test checks that.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $(#[doc = $doc] $variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            pub fn explanation(self) -> &'static str {
                match self {
                    $(Code::$variant => $doc,)*
                }
            }
        }
    };
}

codes! {
    InvalidToken => "invalid-token", "A character or token the lexer does not recognize.";
    UnterminatedString => "unterminated-string", "A string literal without its closing quote.";
    SyntaxError => "syntax-error", "The parser expected something else at this point.";
    BadInterpolation => "bad-interpolation", "A `{...}` in a string is not a valid expression.";
    BadLiteral => "bad-literal", "A numeric literal that does not fit its type.";
    TooDeep => "too-deep", "An item nested deeper than the compiler's limit of 5,000 levels.";
    UnknownName => "unknown-name", "A name that is not defined in scope.";
    DuplicateDefinition => "duplicate-definition", "Two items, parameters, indices, monoid members, tests or benches with the same name, or an item named like a built-in.";
    WrongArity => "wrong-arity", "A call with the wrong number of arguments.";
    TypeMismatch => "type-mismatch", "A value of one type where another is required.";
    ShapeMismatch => "shape-mismatch", "Two tensor shapes that must agree do not.";
    RankMismatch => "rank-mismatch", "A tensor indexed with the wrong number of indices.";
    UnknownField => "unknown-field", "A tuple field that does not exist.";
    NonAffineIndex => "non-affine-index", "An index that is not an integer, or a non-affine index past the edge (`pad`, `clamp_edge`).";
    IndexDisagree => "index-disagree", "A comprehension index whose uses imply different ranges.";
    IndexUnbound => "index-unbound", "A comprehension index whose range cannot be inferred.";
    OutOfBounds => "out-of-bounds", "A read that the checker cannot prove stays inside its tensor.";
    IoInOperation => "io-in-operation", "I/O inside an fn, op or monoid.";
    AssignImmutable => "assign-immutable", "An assignment to a `let` binding, which is immutable.";
    MutationInOperation => "mutation-in-operation", "A mutable `var` or an assignment inside an fn, op or monoid.";
    LoopInOperation => "loop-in-operation", "A `for` or `while` loop inside an fn, op or monoid.";
    ProcInOperation => "proc-in-operation", "A call to a coordinator `proc` inside an fn, op or monoid.";
    Recursion => "recursion", "An fn or op that calls itself, directly or through others.";
    BadMonoid => "bad-monoid", "A monoid declaration that lacks or misuses a member.";
    BadBench => "bad-bench", "A `bench` block without exactly one top-level `measure` block, or a `measure` elsewhere.";
    MonoidIdentity => "monoid-identity", "A monoid whose zero is not an identity of its combine.";
    MonoidAssociativity => "monoid-associativity", "A monoid whose combine is not associative.";
    MonoidCommutativity => "monoid-commutativity", "A monoid declared commutative whose combine is not.";
    MonoidDerivative => "monoid-derivative", "A monoid whose declared `d_combine` disagrees with central differences of its combine.";
    MisplacedPlaceholder => "misplaced-placeholder", "A `_` outside a partial application in an arrow.";
    NotCallable => "not-callable", "A call of something that is not a function, op or proc.";
    NotDifferentiable => "not-differentiable", "A `grad`, `value_and_grad` or `vjp` with respect to an integer or boolean value, or of a function that reduces, scans or builds a histogram (`reduce_by_index`) with a user monoid that declares no `d_combine`.";
    DynamicSizeInOperation => "dynamic-size-in-operation", "A `filter`, `partition`, `sort` or `sort_by_key` inside an fn, op or monoid (the coordinator computes them, as their own observation), or a `reduce_by_index` there whose number of bins is not a constant or a shape.";
    MissingMain => "missing-main", "`flowc run` on a program without a `main` block.";
    UnknownModule => "unknown-module", "A `use` of a module that does not exist.";
    RuntimeError => "runtime-error", "An error while running: a shape that does not fit at dispatch, a bad file, a division by zero.";
    AssertionFailed => "assertion-failed", "A failed `assert` or `assert_close`.";
    CompilerBug => "compiler-bug", "An internal invariant of the compiler broke (a rewrite pass left the MIR invalid): a bug in flowc, not in the program; please report it.";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A span with a message; the primary label is where the diagnostic points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: vec![Label {
                span,
                message: String::new(),
                primary: true,
            }],
            notes: Vec::new(),
        }
    }

    /// Sets the message of the primary label.
    pub fn with_label_text(mut self, text: impl Into<String>) -> Diagnostic {
        if let Some(l) = self.labels.iter_mut().find(|l| l.primary) {
            l.message = text.into();
        }
        self
    }

    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: text.into(),
            primary: false,
        });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn primary_span(&self) -> Span {
        self.labels
            .iter()
            .find(|l| l.primary)
            .map(|l| l.span)
            .unwrap_or_default()
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
