//! Expectations written inside a `.flow` file as `// directive: value` comment lines, in one
//! format for test cases, examples and the conformance programs (STYLE.md practice 12).
//!
//! Known directives:
//! - `// expect-stdout: TEXT` — a whole line the program prints, in order with the others.
//! - `// expect-error: TEXT` — text the diagnostics contain (compared case-insensitively);
//!   under `tests/cases/errors/` it is the diagnostic code the file is named after.
//! - `// command: run` — the `flowc` subcommand that must reject a file under an `errors/`
//!   folder (`check`, the default, `run` or `test`).
//! - `// expect-launches: N`, `// expect-not-materialized: LABEL`, `// passes: NAME...`,
//!   `// block: N` and `// backends: NAME...` — for the MIR, pass and run suites.
//!
//! A comment line that starts with `expect-` but names no known directive is an error, so a
//! typo cannot silently turn an expectation off.

/// The directives of one source file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub expect_stdout: Vec<String>,
    pub expect_error: Vec<String>,
    pub command: Option<String>,
    pub expect_launches: Option<usize>,
    pub expect_not_materialized: Vec<String>,
    pub passes: Vec<String>,
    pub block: Option<usize>,
    pub backends: Vec<String>,
}

/// Reads every directive of `text`. Fails on an unknown `expect-` directive or a bad value.
pub fn parse(text: &str) -> Result<Directives, String> {
    let mut out = Directives::default();
    for (line_idx, line) in text.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix("//") else {
            continue;
        };
        let comment = comment.trim();
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        let line_no = line_idx + 1;
        match key.trim() {
            "expect-stdout" => out.expect_stdout.push(value),
            "expect-error" => {
                if value.is_empty() {
                    return Err(format!("line {line_no}: `expect-error:` needs a text"));
                }
                out.expect_error.push(value);
            }
            "command" => {
                if !["check", "run", "test"].contains(&value.as_str()) {
                    return Err(format!(
                        "line {line_no}: `command: {value}` is not `check`, `run` or `test`"
                    ));
                }
                out.command = Some(value);
            }
            "expect-launches" => {
                let n = value.parse().map_err(|_| {
                    format!("line {line_no}: `expect-launches: {value}` is not a count")
                })?;
                out.expect_launches = Some(n);
            }
            "expect-not-materialized" => out.expect_not_materialized.push(value),
            "passes" => out.passes.extend(
                value
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "block" => {
                let n = value
                    .parse()
                    .map_err(|_| format!("line {line_no}: `block: {value}` is not a count"))?;
                out.block = Some(n);
            }
            "backends" => out
                .backends
                .extend(value.split_whitespace().map(str::to_string)),
            other if other.starts_with("expect-") && !other.contains(' ') => {
                return Err(format!("line {line_no}: unknown directive `{other}:`"));
            }
            _ => {}
        }
    }
    Ok(out)
}
