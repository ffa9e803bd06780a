//! What the integration-test suites share: the `flowc` binary, the repository root, the
//! `.flow` files of a folder, and running checks over files two at a time.

#![allow(dead_code)] // not every suite uses every helper, nor every directive field

use std::path::{Path, PathBuf};

/// The one parser of `// directive:` lines, shared with the `flow-tests` harness (which
/// depends on flowc, so flowc's tests include the file rather than depend on the crate).
#[path = "../../../tests/src/directives.rs"]
pub mod directives;

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

/// Runs `f` on every item on two threads (the machines have two cores), and panics with every
/// failure.
pub fn each_parallel(items: &[PathBuf], f: impl Fn(&Path) -> Result<(), String> + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(k) else { break };
                if let Err(e) = f(item) {
                    failures.lock().expect("no poisoned lock").push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().expect("no poisoned lock");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("flowc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
