//! The real [`Host`]: the process's standard output, the file system, the command line and
//! the persistent result cache (`--cache-dir`).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::cache::DiskCache;
use super::checkpoint::DirCheckpoint;
use crate::exec::Host;
use crate::mir::hash::Hash;

pub struct FsHost {
    pub argv: Vec<String>,
    pub cache: Option<DiskCache>,
    /// The program's output goes to standard error instead (`flowc bench --json`, whose
    /// standard output is one JSON document).
    pub print_to_stderr: bool,
    /// Stage checkpoints (`flowc run --checkpoint DIR`).
    pub checkpoint: Option<DirCheckpoint>,
    /// `FLOW_DIE_AT_DISPATCH=K`: the process aborts as it starts its K-th dispatch, as if
    /// killed (the checkpoint tests).
    pub die_at_dispatch: Option<u64>,
}

impl FsHost {
    /// A host with the program's arguments and no cache directory.
    pub fn new(argv: Vec<String>) -> FsHost {
        FsHost {
            argv,
            cache: None,
            print_to_stderr: false,
            checkpoint: None,
            die_at_dispatch: std::env::var("FLOW_DIE_AT_DISPATCH")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// Writes the cache's warnings to standard error, once each.
    pub fn report_warnings(&mut self) {
        if let Some(c) = &mut self.cache {
            for w in c.warnings.drain(..) {
                errln!("warning: {w}");
            }
        }
    }
}

impl Host for FsHost {
    fn stdout(&mut self, text: &str) {
        if self.print_to_stderr {
            err!("{text}");
            return;
        }
        let mut out = std::io::stdout().lock();
        // A closed pipe (`flowc run f.flow | head`) is not an error of the program.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        read_npy_file(std::path::Path::new(path))
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

    fn checkpointing(&self) -> bool {
        self.checkpoint.is_some()
    }

    fn checkpoint_load(&mut self) -> Option<Vec<u8>> {
        let (payload, warning) = self.checkpoint.as_ref()?.load();
        if let Some(w) = warning {
            errln!("warning: {w}");
        }
        payload
    }

    fn checkpoint_store(&mut self, payload: &[u8]) -> Result<(), String> {
        match &self.checkpoint {
            Some(c) => c.store(payload),
            None => Ok(()),
        }
    }

    fn checkpoint_done(&mut self) {
        if let Some(c) = &self.checkpoint {
            c.remove();
        }
    }

    fn dispatch_started(&mut self, n: u64) -> Result<(), String> {
        if self.die_at_dispatch == Some(n) {
            errln!("flowc: injected death (FLOW_DIE_AT_DISPATCH) at dispatch {n}");
            std::process::abort();
        }
        Ok(())
    }
}

/// A host that reads real files but writes and prints nothing: the trace run of `flowc
/// build`, and `flowc ir`, `explain` and `graph`, which run `main` only to see its graphs.
pub struct ReadOnlyHost {
    pub argv: Vec<String>,
}

impl Host for ReadOnlyHost {
    fn stdout(&mut self, _text: &str) {}

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        read_npy_file(Path::new(path))
    }

    fn write_file(&mut self, _path: &str, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn args(&self) -> Vec<String> {
        self.argv.clone()
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it, so no half-written file
/// is left behind. A symbolic link is written through: its target is replaced and the link
/// kept. Anything but a regular file (a FIFO, a device such as `/dev/full`, a directory) is
/// refused: renaming over it would replace it by a regular file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let target = save_target(path)?;
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".flow-tmp");
    let tmp = PathBuf::from(tmp);
    // A stale temporary file (or a link in its place) is replaced, never written through.
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// The file a write to `path` replaces: `path` itself, or where its symbolic links lead.
/// An error when that exists and is not a regular file.
fn save_target(path: &Path) -> Result<PathBuf, String> {
    let mut at = path.to_path_buf();
    // As many links as Linux follows (`ELOOP` beyond).
    for _ in 0..40 {
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(at),
            Err(e) => return Err(e.to_string()),
        };
        if meta.is_file() {
            return Ok(at);
        }
        if !meta.file_type().is_symlink() {
            return Err(not_regular(&at, &meta));
        }
        let link = std::fs::read_link(&at).map_err(|e| e.to_string())?;
        at = match at.parent() {
            Some(dir) => dir.join(link),
            None => link,
        };
    }
    Err(format!(
        "too many levels of symbolic links from `{}`",
        path.display()
    ))
}

/// The error for a file that is not a regular file, saying what it is.
fn not_regular(path: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    let what = if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    format!(
        "`{}` is {what}; only regular files are read and written",
        path.display()
    )
}

/// How much of a file to read, decided from the bytes read so far.
pub enum Extent {
    /// Its first `n` bytes are needed to tell.
    AtLeast(usize),
    /// Its header says it has `n` bytes: reading stops after `n + 1` (one more shows that it
    /// is longer than it says).
    Total(u64),
    /// It cannot be what is expected: what was read is enough to say why.
    Stop,
}

/// The bytes of the `.npy` file `path`, read as far as its header says it extends.
pub fn read_npy_file(path: &Path) -> Result<Vec<u8>, String> {
    read_regular(
        path,
        &|prefix: &[u8]| match flow_runtime::npy::file_len(prefix) {
            Ok(flow_runtime::npy::FileLen::AtLeast(n)) => Extent::AtLeast(n),
            Ok(flow_runtime::npy::FileLen::Total(n)) => Extent::Total(n as u64),
            Err(_) => Extent::Stop,
        },
    )
}

/// Reads the regular file `path` (a symbolic link is followed; a device, FIFO or directory is
/// refused), header first: `extent` says from the bytes read so far how many more to read,
/// so a header is checked before the body is read and no read goes past the length the
/// header announces. The caller's decoder reports a file that is short, long or malformed.
pub fn read_regular(path: &Path, extent: &dyn Fn(&[u8]) -> Extent) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // The file may have been replaced since `metadata`.
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let (want, last) = match extent(&buf) {
            Extent::AtLeast(n) if n > buf.len() => (n as u64, false),
            Extent::Total(n) => (n.saturating_add(1), true),
            Extent::AtLeast(_) | Extent::Stop => return Ok(buf),
        };
        let more = want - buf.len() as u64;
        // Reserve what the file can hold, not what a header claims.
        let expected = more.min(meta.len().saturating_sub(buf.len() as u64) + 1);
        buf.try_reserve_exact(usize::try_from(expected).unwrap_or(usize::MAX))
            .map_err(|_| {
                format!(
                    "cannot allocate {expected} bytes to read `{}`",
                    path.display()
                )
            })?;
        (&mut file)
            .take(more)
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        // Done, or the file ended early (the decoder says it is truncated).
        if last || (buf.len() as u64) < want {
            return Ok(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_header_first_and_no_further_than_its_header_says() {
        let dir = std::env::temp_dir().join(format!("flowc-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("x.npy");
        // Not a `.npy` file: reading stops at its first bytes, however long it is.
        std::fs::write(&path, vec![b'x'; 1 << 20]).expect("write");
        let read = read_npy_file(&path).expect("readable");
        assert!(read.len() <= 16, "{} bytes read", read.len());
        assert_eq!(
            flow_runtime::read_npy(&read),
            Err(flow_runtime::NpyError::BadMagic)
        );
        // A `.npy` file with 1 MiB after its data: one byte past the length its header says
        // is read, enough to report the extra bytes.
        let t = flow_runtime::Tensor::zeros(flow_runtime::DType::F32, &[3]).expect("small");
        let npy = flow_runtime::write_npy(&t);
        let mut long = npy.clone();
        long.extend(vec![7u8; 1 << 20]);
        std::fs::write(&path, &long).expect("write");
        let read = read_npy_file(&path).expect("readable");
        assert_eq!(read.len(), npy.len() + 1);
        assert!(matches!(
            flow_runtime::read_npy(&read),
            Err(flow_runtime::NpyError::TrailingData { .. })
        ));
        // Exactly the file: read whole, and it loads.
        std::fs::write(&path, &npy).expect("write");
        let read = read_npy_file(&path).expect("readable");
        assert_eq!(read, npy);
        assert_eq!(flow_runtime::read_npy(&read), Ok(t));
        // Short files are read as far as they go, and reported truncated.
        for cut in [0, 5, 9, npy.len() / 2, npy.len() - 1] {
            std::fs::write(&path, &npy[..cut]).expect("write");
            assert_eq!(read_npy_file(&path).expect("readable"), &npy[..cut]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
