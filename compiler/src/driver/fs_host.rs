//! The real [`Host`]: the process's standard output, the file system, the command line and
//! the persistent result cache (`--cache-dir`).

use std::io::Write;

use super::cache::DiskCache;
use crate::exec::Host;
use crate::mir::hash::Hash;

pub struct FsHost {
    pub argv: Vec<String>,
    pub cache: Option<DiskCache>,
}

impl FsHost {
    /// A host with the program's arguments and no cache directory.
    pub fn new(argv: Vec<String>) -> FsHost {
        FsHost { argv, cache: None }
    }

    /// Writes the cache's warnings to standard error, once each.
    pub fn report_warnings(&mut self) {
        if let Some(c) = &mut self.cache {
            for w in c.warnings.drain(..) {
                eprintln!("warning: {w}");
            }
        }
    }
}

impl Host for FsHost {
    fn stdout(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`flowc run f.flow | head`) is not an error of the program.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| e.to_string())
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        write_atomically(std::path::Path::new(path), bytes)
    }

    fn args(&self) -> Vec<String> {
        self.argv.clone()
    }

    fn cache_load(&mut self, key: &Hash) -> Option<Vec<u8>> {
        self.cache.as_mut()?.load(key)
    }

    fn cache_store(&mut self, key: &Hash, payload: &[u8]) {
        if let Some(c) = &mut self.cache {
            c.store(key, payload);
        }
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it, so no half-written file
/// is left behind.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".flow-tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}
