//! The persistent result cache (`--cache-dir DIR`): one file per entry, named by its key.
//!
//! An entry is a header and a payload:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `FLOWRES\0` |
//! | 4 | format version, little-endian ([`VERSION`]) |
//! | 32 | the key (the file's name says it too) |
//! | 8 | payload length, little-endian |
//! | 32 | BLAKE3 hash of the payload |
//! | n | the payload (the coordinator's encoding of the result tensors) |
//!
//! Entries are written to a temporary file in the same directory and renamed, so a reader
//! sees a whole entry or none. An entry that is short, long, of another version or key, or
//! whose payload does not match its checksum is reported once as a warning, treated as a
//! miss (the result is recomputed) and overwritten by the fresh result; it is never trusted.

use std::path::{Path, PathBuf};

use crate::mir::hash::{hex, Hash};

/// The first bytes of every entry.
pub const MAGIC: &[u8; 8] = b"FLOWRES\0";
/// The format version; entries of another version are ignored.
pub const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 32 + 8 + 32;

/// A cache directory.
pub struct DiskCache {
    dir: PathBuf,
    /// Problems met, one line each (damaged entries, unwritable directory), for the user.
    pub warnings: Vec<String>,
    /// Whether the directory could not be written (reported once).
    write_failed: bool,
}

/// An entry file for `key` with `payload`.
pub fn encode_entry(key: &Hash, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + payload.len());
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(key);
    v.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    v.extend_from_slice(blake3::hash(payload).as_bytes());
    v.extend_from_slice(payload);
    v
}

/// The payload of an entry file, or what is wrong with it.
pub fn decode_entry<'a>(key: &Hash, bytes: &'a [u8]) -> Result<&'a [u8], String> {
    if bytes.len() < HEADER {
        return Err(format!(
            "truncated: {} bytes, shorter than its {HEADER}-byte header",
            bytes.len()
        ));
    }
    if &bytes[0..8] != MAGIC {
        return Err("not a Flow cache entry (bad magic bytes)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("format version {version}, expected {VERSION}"));
    }
    if &bytes[12..44] != key {
        return Err("its key does not match its name".into());
    }
    let len = u64::from_le_bytes(bytes[44..52].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(format!(
            "{} payload bytes, its header says {len}",
            payload.len()
        ));
    }
    if blake3::hash(payload).as_bytes() != &bytes[52..84] {
        return Err("checksum mismatch (the payload is damaged)".into());
    }
    Ok(payload)
}

/// How much of an entry file to read: its header, then as much payload as the header says.
fn entry_extent(prefix: &[u8]) -> super::fs_host::Extent {
    use super::fs_host::Extent;
    if prefix.len() < HEADER {
        return Extent::AtLeast(HEADER);
    }
    if &prefix[0..8] != MAGIC {
        return Extent::Stop;
    }
    let len = u64::from_le_bytes(prefix[44..52].try_into().expect("8 bytes"));
    Extent::Total((HEADER as u64).saturating_add(len))
}

impl DiskCache {
    /// The cache in `dir`, created if needed.
    pub fn open(dir: &Path) -> Result<DiskCache, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the cache directory `{}`: {e}", dir.display()))?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            warnings: Vec::new(),
            write_failed: false,
        })
    }

    fn path(&self, key: &Hash) -> PathBuf {
        self.dir.join(format!("{}.flowres", hex(key)))
    }

    /// The payload of entry `key`, if present and sound.
    pub fn load(&mut self, key: &Hash) -> Option<Vec<u8>> {
        let path = self.path(key);
        // A missing entry is an ordinary miss.
        std::fs::symlink_metadata(&path).ok()?;
        let bytes = match super::fs_host::read_regular(&path, &entry_extent) {
            Ok(b) => b,
            Err(why) => {
                self.warnings.push(format!(
                    "ignoring cache entry `{}`: {why}; recomputing it",
                    path.display()
                ));
                return None;
            }
        };
        match decode_entry(key, &bytes) {
            Ok(p) => Some(p.to_vec()),
            Err(why) => {
                self.warnings.push(format!(
                    "ignoring damaged cache entry `{}`: {why}; recomputing it",
                    path.display()
                ));
                None
            }
        }
    }

    /// Writes entry `key` atomically: a temporary file, then a rename.
    pub fn store(&mut self, key: &Hash, payload: &[u8]) {
        let path = self.path(key);
        let tmp = self
            .dir
            .join(format!("{}.{}.tmp", hex(key), std::process::id()));
        let res = std::fs::write(&tmp, encode_entry(key, payload))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            if !self.write_failed {
                self.write_failed = true;
                self.warnings.push(format!(
                    "cannot write to the cache directory `{}`: {e}; results are not cached",
                    self.dir.display()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flowc-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let dir = temp_dir("unit");
        let mut c = DiskCache::open(&dir).expect("temp dir");
        let key = [7u8; 32];
        assert_eq!(c.load(&key), None);
        assert!(c.warnings.is_empty(), "a missing entry is no problem");
        c.store(&key, b"payload bytes");
        assert_eq!(c.load(&key).as_deref(), Some(&b"payload bytes"[..]));
        let path = c.path(&key);
        let good = std::fs::read(&path).expect("written");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);
        let mut damaged: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut flipped = good.clone();
        *flipped.last_mut().expect("payload") ^= 1;
        damaged.push(("checksum mismatch", flipped));
        damaged.push(("truncated", good[..20].to_vec()));
        damaged.push((
            "payload bytes, its header says",
            good[..good.len() - 3].to_vec(),
        ));
        let mut long = good.clone();
        long.push(0);
        damaged.push(("payload bytes, its header says", long));
        let mut magic = good.clone();
        magic[0] = b'X';
        damaged.push(("bad magic", magic));
        let mut version = good.clone();
        version[8] = 9;
        damaged.push(("format version 9", version));
        let mut other_key = good.clone();
        other_key[12] ^= 0xff;
        damaged.push(("key does not match", other_key));
        damaged.push(("truncated", Vec::new()));
        // A header that claims more than the file holds is read only as far as the file goes.
        let mut claims = good.clone();
        claims[44..52].copy_from_slice(&u64::MAX.to_le_bytes());
        damaged.push(("payload bytes, its header says", claims));
        for (why, bytes) in damaged {
            std::fs::write(&path, &bytes).expect("write");
            c.warnings.clear();
            assert_eq!(c.load(&key), None, "{why}");
            assert_eq!(c.warnings.len(), 1, "{why}");
            assert!(c.warnings[0].contains(why), "{why}: {}", c.warnings[0]);
            // Rewritten, it is good again.
            c.store(&key, b"payload bytes");
            assert_eq!(c.load(&key).as_deref(), Some(&b"payload bytes"[..]));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_entry_that_is_not_a_regular_file_is_a_miss_not_a_hang() {
        let dir = temp_dir("special");
        let mut c = DiskCache::open(&dir).expect("temp dir");
        let key = [9u8; 32];
        // `/dev/zero` never ends: reading it whole never returns.
        std::os::unix::fs::symlink("/dev/zero", c.path(&key)).expect("symlink");
        assert_eq!(c.load(&key), None);
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].contains("is a character device"),
            "{}",
            c.warnings[0]
        );
        // The fresh result replaces the link.
        c.store(&key, b"fresh");
        assert_eq!(c.load(&key).as_deref(), Some(&b"fresh"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
