//! A record of data files already checked by SHA-256, so that a start does not hash the
//! whole data set again when the file has not changed (docs/performance.md, "Start-up").
//!
//! An entry holds a file's identity — canonical path, size, modification and status-change
//! times, device and inode — with the SHA-256 it was checked against and the CRC-32 of its
//! (decompressed) content at that time. A file whose identity matches an entry and whose
//! content still has that CRC-32 counts as checked; anything else is checked in full and
//! recorded again. So an edited, replaced, truncated or touched file is always checked in
//! full (writing changes the size or the times; the status-change time cannot be set back
//! by a user), and content that changed without any of that (a bit flip on the disk, a
//! forged or stale entry) fails the CRC-32 and is checked in full too. CRC-32 runs at
//! several GB/s, SHA-256 at well under one on CPUs without SHA instructions.
//!
//! What it does not defend against: someone who can write the cache file can forge an
//! entry whose CRC-32 matches chosen content (CRC-32 is not a cryptographic hash). The
//! cache file therefore lives in the user's own cache directory, is created readable and
//! writable by its owner only, and is ignored when group or others may write it; a user
//! who can write there can equally replace the program. `APICAL_VERIFY_CACHE=off` turns
//! the cache off (every start hashes every file); `--no-verify` skips the check.
//!
//! The cache is best effort: an unreadable, damaged or unwritable cache file means a full
//! check, never an error.

use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Environment variable: `off` (or `0`) disables the cache.
pub const CACHE_ENV: &str = "APICAL_VERIFY_CACHE";
/// Environment variable naming the cache directory (default `$XDG_CACHE_HOME/apical`,
/// else `~/.cache/apical`).
pub const CACHE_DIR_ENV: &str = "APICAL_CACHE_DIR";
/// File name of the cache inside its directory.
pub const CACHE_FILE: &str = "verified-data.json";
/// Entries kept (the oldest go first): a few data directories' worth.
const MAX_ENTRIES: usize = 64;

/// What identifies a file on disk without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    /// Status-change time (Unix; 0 elsewhere): moves on every write, rename or chmod.
    pub ctime_ns: i128,
    pub dev: u64,
    pub inode: u64,
}

impl FileIdentity {
    /// The identity of `path` now (None where it cannot be read).
    pub fn of(path: &Path) -> Option<Self> {
        let path = fs::canonicalize(path).ok()?;
        let meta = fs::metadata(&path).ok()?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let (ctime_ns, dev, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                meta.dev(),
                meta.ino(),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, dev, inode) = (0, 0, 0);
        Some(FileIdentity {
            path,
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            dev,
            inode,
        })
    }
}

/// One checked file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    file: FileIdentity,
    /// The SHA-256 (hex) the content was found to have.
    sha256: String,
    /// CRC-32 of the content that was hashed.
    crc32: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    entries: Vec<Entry>,
}

/// The cache of checked files, or none (every check in full).
#[derive(Clone, Debug)]
pub struct VerifyCache {
    file: Option<PathBuf>,
}

impl VerifyCache {
    /// The user's cache: `$APICAL_CACHE_DIR`, `$XDG_CACHE_HOME/apical` or
    /// `~/.cache/apical`, `verified-data.json`; none with `APICAL_VERIFY_CACHE=off` or
    /// where no directory is known.
    pub fn user() -> Self {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if env(CACHE_ENV).is_some_and(|v| v == "off" || v == "0") {
            return Self::disabled();
        }
        let dir = env(CACHE_DIR_ENV)
            .map(PathBuf::from)
            .or_else(|| env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("apical")))
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache").join("apical")));
        VerifyCache {
            file: dir.map(|d| d.join(CACHE_FILE)),
        }
    }

    /// A cache kept in the file `file` (its directory is created when first written).
    pub fn at(file: impl Into<PathBuf>) -> Self {
        VerifyCache {
            file: Some(file.into()),
        }
    }

    /// No cache: every check in full.
    pub fn disabled() -> Self {
        VerifyCache { file: None }
    }

    /// Where the cache is kept, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether the data file `path`, whose (decompressed) content is `content`, was found
    /// to have the SHA-256 `sha256` as it is now: the cache has an entry for its present
    /// identity with that digest and the CRC-32 of `content`. When not, the caller hashes
    /// the content and, when the digest is right, calls [`VerifyCache::remember`].
    pub fn is_recorded(&self, path: &Path, sha256: &str, content: &[u8]) -> bool {
        self.is_recorded_crc(path, sha256, crc32fast::hash(content))
    }

    /// [`VerifyCache::is_recorded`] for content whose CRC-32 is `crc32`
    /// ([`VerifyCache::crc32`]).
    pub fn is_recorded_crc(&self, path: &Path, sha256: &str, crc32: u32) -> bool {
        let (Some(cache_file), Some(id)) = (&self.file, FileIdentity::of(path)) else {
            return false;
        };
        lookup(cache_file, &id, sha256, crc32)
    }

    /// Records that the file `path`, as it is now, has content `content` with the SHA-256
    /// `sha256` (best effort).
    pub fn remember(&self, path: &Path, sha256: &str, content: &[u8]) {
        self.remember_crc(path, sha256, crc32fast::hash(content));
    }

    /// [`VerifyCache::remember`] for content whose CRC-32 is `crc32`.
    pub fn remember_crc(&self, path: &Path, sha256: &str, crc32: u32) {
        if self.file.is_some() {
            if let Some(id) = FileIdentity::of(path) {
                self.record(id, sha256, crc32);
            }
        }
    }

    /// The CRC-32 of content given in consecutive parts (that of their concatenation).
    pub fn crc32(parts: &[&[u8]]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for p in parts {
            h.update(p);
        }
        h.finalize()
    }

    /// Records that the file with identity `file` has digest `sha256` and content CRC-32
    /// `crc32` (best effort: a cache that cannot be written is left alone).
    pub fn record(&self, file: FileIdentity, sha256: &str, crc32: u32) {
        let Some(cache_file) = &self.file else {
            return;
        };
        let mut cache = read_cache(cache_file);
        cache.entries.retain(|e| e.file.path != file.path);
        cache.entries.push(Entry {
            file,
            sha256: sha256.to_ascii_lowercase(),
            crc32,
        });
        let excess = cache.entries.len().saturating_sub(MAX_ENTRIES);
        cache.entries.drain(..excess);
        let _ = write_cache(cache_file, &cache);
    }
}

/// Whether the cache file has an entry for exactly this file, digest and CRC-32.
fn lookup(cache_file: &Path, id: &FileIdentity, sha256: &str, crc32: u32) -> bool {
    read_cache(cache_file)
        .entries
        .iter()
        .any(|e| e.file == *id && e.sha256.eq_ignore_ascii_case(sha256) && e.crc32 == crc32)
}

/// The entries of the cache file; none when it is missing, damaged or writable by others.
fn read_cache(path: &Path) -> CacheFile {
    let Ok(meta) = fs::metadata(path) else {
        return CacheFile::default();
    };
    if !private(&meta) || meta.len() > 1 << 20 {
        return CacheFile::default();
    }
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Whether only the owner may write the file.
fn private(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o022 == 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// Writes the cache through a private temporary file and a rename (concurrent starts each
/// write a whole file; the last one wins).
fn write_cache(path: &Path, cache: &CacheFile) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let bytes = serde_json::to_vec_pretty(cache).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{CACHE_FILE}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        std::io::Write::write_all(&mut opts.open(&tmp)?, &bytes)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    const SHA: &str = "00aa";

    /// A start as `mnist::verify` makes it: a full check (which passes) unless the
    /// cache knows the file; tells whether the full check ran.
    fn full_check_ran(cache: &VerifyCache, path: &Path) -> bool {
        let content = fs::read(path).unwrap();
        if cache.is_recorded(path, SHA, &content) {
            return false;
        }
        cache.remember(path, SHA, &content);
        true
    }

    fn set_mtime(path: &Path, t: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn a_file_is_hashed_once_until_its_size_or_time_changes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.bin");
        fs::write(&data, b"0123456789").unwrap();
        let cache = VerifyCache::at(dir.path().join("cache").join(CACHE_FILE));
        assert!(full_check_ran(&cache, &data), "first start: full check");
        assert!(!full_check_ran(&cache, &data), "second start: cached");
        assert!(!full_check_ran(&cache, &data));

        // Another modification time (the content unchanged): checked again, then cached.
        let old = fs::metadata(&data).unwrap().modified().unwrap();
        set_mtime(&data, old - Duration::from_secs(3600));
        assert!(full_check_ran(&cache, &data), "changed mtime");
        assert!(!full_check_ran(&cache, &data));

        // Another size.
        fs::write(&data, b"0123456789A").unwrap();
        assert!(full_check_ran(&cache, &data), "changed size");
        assert!(!full_check_ran(&cache, &data));

        // Another digest asked for (another data set's file of that name): not known.
        let content = fs::read(&data).unwrap();
        assert!(cache.is_recorded(&data, SHA, &content));
        assert!(!cache.is_recorded(&data, "00ab", &content));
    }

    #[test]
    fn an_edit_that_restores_size_and_mtime_is_still_checked() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.bin");
        fs::write(&data, b"0123456789").unwrap();
        let cache = VerifyCache::at(dir.path().join(CACHE_FILE));
        assert!(full_check_ran(&cache, &data));
        let mtime = fs::metadata(&data).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // Same size, same inode, modification time set back: the status-change time moved.
        fs::write(&data, b"0123456780").unwrap();
        set_mtime(&data, mtime);
        assert!(full_check_ran(&cache, &data));
    }

    #[test]
    fn a_forged_entry_for_changed_content_fails_the_crc_and_is_checked_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.bin");
        let good = b"the original content".to_vec();
        fs::write(&data, &good).unwrap();
        let cache = VerifyCache::at(dir.path().join(CACHE_FILE));
        assert!(full_check_ran(&cache, &data));
        // Corrupt the file in place, then forge an entry: the corrupted file's identity
        // as it is now, with the digest and CRC-32 of the good content.
        fs::write(&data, b"the origiNal content").unwrap();
        let id = FileIdentity::of(&data).unwrap();
        cache.record(id, SHA, crc32fast::hash(&good));
        assert!(full_check_ran(&cache, &data), "CRC-32 mismatch: full check");
        // The same forgery for the good content is accepted: the identity is what it was.
        assert!(!full_check_ran(&cache, &data));
    }

    #[test]
    fn a_cache_others_may_write_is_ignored_and_a_damaged_one_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.bin");
        fs::write(&data, b"x").unwrap();
        let file = dir.path().join(CACHE_FILE);
        let cache = VerifyCache::at(&file);
        assert!(full_check_ran(&cache, &data));
        assert!(!full_check_ran(&cache, &data));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
            assert!(
                full_check_ran(&cache, &data),
                "world-writable cache ignored"
            );
        }
        fs::write(&file, b"{ not json").unwrap();
        assert!(full_check_ran(&cache, &data));
        // A cache in a place that cannot be created: full checks, no error.
        let blocked = VerifyCache::at(data.join("sub").join(CACHE_FILE));
        assert!(full_check_ran(&blocked, &data));
        assert!(full_check_ran(&blocked, &data));
        assert!(full_check_ran(&VerifyCache::disabled(), &data));
    }
}
