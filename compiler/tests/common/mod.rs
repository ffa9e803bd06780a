//! What the end-to-end test binaries share: the `flowc` binary, the repository root, and the
//! `.flow` files of a folder.

#![allow(dead_code)] // each test binary uses its own part of it

use std::path::{Path, PathBuf};

/// The `flowc` binary cargo built for these tests.
pub fn flowc() -> &'static str {
    env!("CARGO_BIN_EXE_flowc")
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `.flow` files directly in `dir`, sorted.
pub fn flow_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .collect();
    v.sort();
    v
}
