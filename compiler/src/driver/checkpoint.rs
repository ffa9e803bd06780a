//! `flowc run --checkpoint DIR`: where stage checkpoints live (what is in one, and when it
//! is written, is `exec/checkpoint.rs`).
//!
//! One file, `DIR/checkpoint.flowckpt`: the bytes `FLOWCKPT`, the run's key (32 bytes), the
//! BLAKE3 hash of the payload (32 bytes) and the payload. The key is a BLAKE3 hash of
//! flowc's version, every source file of the program (names and texts), the program's
//! arguments and whether math is portable — what decides the results; threads, ranks and
//! backend do not, so a run may resume with others. A write goes to a temporary file that is
//! then renamed over the checkpoint: a run killed while writing leaves the previous one
//! whole. Under MPI only rank 0 runs the coordinator, so only rank 0 writes.
//!
//! A checkpoint of another program or other arguments, or a damaged one, is not used: the
//! run says so on standard error, starts from the beginning, and replaces it.

use std::path::{Path, PathBuf};

use super::fs_host::write_atomically;

const MAGIC: &[u8; 8] = b"FLOWCKPT";
const FILE: &str = "checkpoint.flowckpt";

/// The checkpoint of a run in its directory.
pub struct DirCheckpoint {
    path: PathBuf,
    key: [u8; 32],
}

impl DirCheckpoint {
    /// The checkpoint in `dir` (created if missing) of the program of `sources` run with
    /// `args`.
    pub fn open(
        dir: &Path,
        sources: &crate::base::SourceMap,
        args: &[String],
    ) -> Result<DirCheckpoint, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the checkpoint directory `{}`: {e}",
                dir.display()
            )
        })?;
        let mut h = blake3::Hasher::new();
        h.update(b"flowc checkpoint\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        let mut part = |b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        for (_, f) in sources.files() {
            part(f.name.as_bytes());
            part(f.text.as_bytes());
        }
        for a in args {
            part(a.as_bytes());
        }
        part(&[u8::from(flow_runtime::portable::portable_math())]);
        Ok(DirCheckpoint {
            path: dir.join(FILE),
            key: *h.finalize().as_bytes(),
        })
    }

    /// The payload of the checkpoint, if there is one of this run; a warning when there is
    /// one that cannot be used.
    pub fn load(&self) -> (Option<Vec<u8>>, Option<String>) {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, None),
            Err(e) => {
                return (
                    None,
                    Some(format!(
                        "cannot read the checkpoint `{}`: {e}; starting from the beginning",
                        self.path.display()
                    )),
                )
            }
        };
        let head = MAGIC.len() + 64;
        let damaged = || {
            Some(format!(
                "the checkpoint `{}` is damaged; starting from the beginning (it will be replaced)",
                self.path.display()
            ))
        };
        if bytes.len() < head || !bytes.starts_with(MAGIC) {
            return (None, damaged());
        }
        let (key, sum, payload) = (&bytes[8..40], &bytes[40..72], &bytes[head..]);
        if key != self.key {
            return (
                None,
                Some(format!(
                    "the checkpoint `{}` is of another program, other arguments or another flowc; starting from the beginning (it will be replaced)",
                    self.path.display()
                )),
            );
        }
        if blake3::hash(payload).as_bytes() != sum {
            return (None, damaged());
        }
        (Some(payload.to_vec()), None)
    }

    /// Replaces the checkpoint by `payload`, atomically.
    pub fn store(&self, payload: &[u8]) -> Result<(), String> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(self.key);
        bytes.extend(blake3::hash(payload).as_bytes());
        bytes.extend(payload);
        write_atomically(&self.path, &bytes).map_err(|e| format!("`{}`: {e}", self.path.display()))
    }

    /// Removes the checkpoint: the run it belongs to is over.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
