//! Why a shard task failed ([`TaskError`], [`TaskErrorKind`]: a kernel's error code, a
//! panic, a failure in words, an injected fault; whether it is retried) and why the pool could
//! not start ([`PoolError`]), each worded in its `Display`.

use std::fmt;

use crate::abi;
use crate::fault::FaultKind;

/// Why a shard task failed, and which task it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    /// The task's number (its index in the dispatch or the [`TaskGraph`]).
    pub task: usize,
    /// What went wrong (at the last attempt).
    pub kind: TaskErrorKind,
    /// How many times the task was run (1 when it was not retried).
    pub attempts: u32,
}

/// What went wrong in a shard task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskErrorKind {
    /// A kernel returned a non-zero status code (one of the `abi::ERR_*` codes).
    Code(i32),
    /// The task panicked; the panic's message when it was a string.
    Panic(String),
    /// Any other failure, described in words.
    Message(String),
    /// A fault injected for testing (see [`crate::fault::Faults`]).
    Injected(FaultKind),
}

impl TaskErrorKind {
    /// Whether a task that failed this way is run again: every failure but a kernel's error
    /// code, which is a deterministic property of the program and its data (every attempt
    /// would fail the same way).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, TaskErrorKind::Code(_))
    }
}

impl fmt::Display for TaskErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskErrorKind::Code(code) => {
                write!(f, "{} (error code {code})", abi::error_message(*code))
            }
            TaskErrorKind::Panic(msg) => write!(f, "a panic: {msg}"),
            TaskErrorKind::Message(msg) => f.write_str(msg),
            TaskErrorKind::Injected(kind) => write!(f, "{kind}"),
        }
    }
}

impl TaskError {
    /// Task `task` failed with the kernel status `code`.
    pub fn code(task: usize, code: i32) -> TaskError {
        TaskError {
            task,
            kind: TaskErrorKind::Code(code),
            attempts: 1,
        }
    }

    /// Task `task` failed for the reason `message`.
    pub fn message(task: usize, message: impl Into<String>) -> TaskError {
        TaskError {
            task,
            kind: TaskErrorKind::Message(message.into()),
            attempts: 1,
        }
    }

    /// Task `task` failed with an injected fault of kind `kind`.
    pub fn injected(task: usize, kind: FaultKind) -> TaskError {
        TaskError {
            task,
            kind: TaskErrorKind::Injected(kind),
            attempts: 1,
        }
    }

    /// Task `task` failed with the kernel status `status` unless it is [`abi::OK`].
    pub fn check_status(task: usize, status: i32) -> Result<(), TaskError> {
        if status == abi::OK {
            Ok(())
        } else {
            Err(TaskError::code(task, status))
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.attempts) {
            (TaskErrorKind::Panic(msg), 1) => write!(f, "shard task {} panicked: {msg}", self.task),
            (kind, 1) => write!(f, "shard task {} failed: {kind}", self.task),
            (kind, n) => write!(
                f,
                "shard task {} failed {n} times (retries exhausted); the last failure: {kind}",
                self.task
            ),
        }
    }
}

impl std::error::Error for TaskError {}

/// The pool's threads could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolError {
    /// What the operating system or rayon said.
    pub message: String,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start the worker threads: {}", self.message)
    }
}

impl std::error::Error for PoolError {}
