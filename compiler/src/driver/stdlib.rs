//! The standard library, written in Flow and embedded in the compiler. `use std::NAME;` loads
//! `stdlib/NAME.flow` before the user's files.

/// `(module name, source)` for every stdlib module.
pub const MODULES: &[(&str, &str)] = &[];

pub fn source(module: &str) -> Option<&'static str> {
    MODULES.iter().find(|(m, _)| *m == module).map(|(_, s)| *s)
}
