//! The coordinator's window on the world: standard output, files, arguments and the
//! persistent result cache. The driver implements it for real; tests use [`MemoryHost`].

use std::collections::HashMap;

use crate::mir::hash::Hash;

pub trait Host {
    fn stdout(&mut self, text: &str);
    /// The bytes of the `.npy` file `path` (for `load`). A host that reads real files reads
    /// only regular files, header first, and no further than the header says the file goes.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String>;
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String>;
    fn args(&self) -> Vec<String>;

    /// The payload of the persistent result-cache entry `key` (`--cache-dir`), or `None`
    /// when there is none or it is damaged. A host checks the integrity of what it stored
    /// (the driver keeps a checksum); the coordinator still decodes the payload defensively.
    fn cache_load(&mut self, _key: &Hash) -> Option<Vec<u8>> {
        None
    }

    /// Stores a result-cache entry; failures are the host's to report (a cache is never
    /// necessary).
    fn cache_store(&mut self, _key: &Hash, _payload: &[u8]) {}

    /// Called under `flowc bench` before each repetition of a `measure` block (warm-up ones
    /// included; `rep` counts from 0), outside the timed region: `compare` (bench/) runs the
    /// Rust baselines here, so that their runs interleave with the program's.
    fn before_bench_rep(&mut self, _rep: usize) {}

    /// Whether `main` writes stage checkpoints (`--checkpoint DIR`; `checkpoint.rs`).
    fn checkpointing(&self) -> bool {
        false
    }

    /// The checkpoint a run of this same program with these same arguments left, if any.
    /// A host that has one of another program or other arguments, or a damaged one, says so
    /// and gives `None`.
    fn checkpoint_load(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Replaces the checkpoint, atomically: a run killed while storing leaves the previous
    /// one whole.
    fn checkpoint_store(&mut self, _payload: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// `main` ended without an error: the checkpoint is no longer needed.
    fn checkpoint_done(&mut self) {}

    /// Called as the run starts its `n`-th dispatch (from 1); an error stops the run there
    /// (how tests interrupt a run).
    fn dispatch_started(&mut self, _n: u64) -> Result<(), String> {
        Ok(())
    }
}

/// An in-memory host: captured output and a map of files.
#[derive(Default, Debug)]
pub struct MemoryHost {
    pub out: String,
    pub files: HashMap<String, Vec<u8>>,
    pub argv: Vec<String>,
    /// A persistent result cache when `Some`, entry by entry.
    pub cache: Option<HashMap<Hash, Vec<u8>>>,
    /// Checkpoints are written when `Some`: the last one stored, if any.
    pub checkpoint: Option<Option<Vec<u8>>>,
    /// The run stops with an error as it starts this dispatch (counted from 1).
    pub stop_at_dispatch: Option<u64>,
}

impl Host for MemoryHost {
    fn stdout(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.files.insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    fn args(&self) -> Vec<String> {
        self.argv.clone()
    }

    fn cache_load(&mut self, key: &Hash) -> Option<Vec<u8>> {
        self.cache.as_ref()?.get(key).cloned()
    }

    fn cache_store(&mut self, key: &Hash, payload: &[u8]) {
        if let Some(c) = &mut self.cache {
            c.insert(*key, payload.to_vec());
        }
    }

    fn checkpointing(&self) -> bool {
        self.checkpoint.is_some()
    }

    fn checkpoint_load(&mut self) -> Option<Vec<u8>> {
        self.checkpoint.clone().flatten()
    }

    fn checkpoint_store(&mut self, payload: &[u8]) -> Result<(), String> {
        self.checkpoint = Some(Some(payload.to_vec()));
        Ok(())
    }

    fn checkpoint_done(&mut self) {
        self.checkpoint = Some(None);
    }

    fn dispatch_started(&mut self, n: u64) -> Result<(), String> {
        match self.stop_at_dispatch {
            Some(k) if k == n => Err(format!("stopped at dispatch {n}")),
            _ => Ok(()),
        }
    }
}

/// A host that passes everything to `inner` and calls `before_rep` before each repetition of
/// a `measure` block ([`Host::before_bench_rep`]): how `compare` (bench/) interleaves its
/// baselines with a Flow program's runs.
pub struct WithRepHook<'a, F: FnMut(usize)> {
    pub inner: &'a mut dyn Host,
    pub before_rep: F,
}

impl<F: FnMut(usize)> Host for WithRepHook<'_, F> {
    fn stdout(&mut self, text: &str) {
        self.inner.stdout(text);
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.inner.read_file(path)
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.inner.write_file(path, bytes)
    }

    fn args(&self) -> Vec<String> {
        self.inner.args()
    }

    fn cache_load(&mut self, key: &Hash) -> Option<Vec<u8>> {
        self.inner.cache_load(key)
    }

    fn cache_store(&mut self, key: &Hash, payload: &[u8]) {
        self.inner.cache_store(key, payload);
    }

    fn before_bench_rep(&mut self, rep: usize) {
        (self.before_rep)(rep);
    }

    fn dispatch_started(&mut self, n: u64) -> Result<(), String> {
        self.inner.dispatch_started(n)
    }
}
