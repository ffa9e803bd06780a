//! The standard library, written in Flow and embedded in the compiler. `use std::NAME;` loads
//! `stdlib/NAME.flow` before the user's files. A module may `use` another; every module's
//! items share the program's one namespace, so no two modules define the same name.
//!
//! When a module is loaded by `use`, its `main` and its `test` blocks are ignored (its tests
//! run with `flowc test stdlib/NAME.flow`, where the file is the user's program).

/// `(module name, source)` for every stdlib module.
pub const MODULES: &[(&str, &str)] = &[
    ("linalg", include_str!("../../../stdlib/linalg.flow")),
    ("nn", include_str!("../../../stdlib/nn.flow")),
    ("random", include_str!("../../../stdlib/random.flow")),
    ("reduce", include_str!("../../../stdlib/reduce.flow")),
];

pub fn source(module: &str) -> Option<&'static str> {
    MODULES.iter().find(|(m, _)| *m == module).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::MODULES;
    use crate::driver::compile_sources;

    fn compile(src: &str) -> crate::driver::Compiled {
        match compile_sources(&[("user.flow".to_string(), src.to_string())]) {
            Ok(c) => c,
            Err(f) => panic!("{}", f.render(Default::default())),
        }
    }

    #[test]
    fn every_module_checks_when_used() {
        for (m, _) in MODULES {
            compile(&format!("use std::{m};\nmain {{ }}\n"));
        }
    }

    #[test]
    fn all_modules_together_have_no_clashing_names() {
        let uses: String = MODULES
            .iter()
            .map(|(m, _)| format!("use std::{m};\n"))
            .collect();
        compile(&format!("{uses}main {{ }}\n"));
    }

    #[test]
    fn a_used_module_contributes_items_but_not_its_tests() {
        let c = compile(
            "use std::reduce;\ntest \"mine\" { assert_close(mean([1.0, 3.0]), 2.0); }\nmain { }\n",
        );
        let names: Vec<&str> = c.program.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["mine"]);
        assert!(c.program.funcs.iter().any(|f| f.name == "mean"));
    }
}
