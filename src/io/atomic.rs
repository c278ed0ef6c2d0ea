//! Atomic file writes: a reader sees the old file or the new one, never a mix.
//!
//! The temporary file has a name of its own (`.NAME.PID-N.tmp`: process id and a
//! per-process counter), is created exclusively (`O_CREAT | O_EXCL`, which never follows a
//! link) and is renamed over `NAME` once it is complete on disk. Two writers of one file
//! never share a temporary file, and a symbolic link at `NAME` is refused, so nothing is
//! ever written through a link.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a temporary file of its own, fsync and rename. A
/// symbolic link at `path` is an error (`InvalidInput`) and is left as it is.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, create_exclusive)
}

/// Whether `name` is the name of a temporary file of [`write_atomic`] (or of the
/// `.NAME.tmp` files of apical before 0.1's unique names).
pub fn is_temporary_name(name: &str) -> bool {
    name.len() > 5 && name.starts_with('.') && name.ends_with(".tmp")
}

/// Refuses a symbolic link at `path` (an error naming it); anything else, or nothing,
/// passes.
pub fn refuse_symlink(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link; apical does not write through links: remove the link or write elsewhere",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

fn create_exclusive(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o644);
    }
    o.open(path)
}

/// A temporary name in `dir` for `name` no other writer uses: the process id and a counter
/// (unique within the process), so two processes, or two threads, never meet.
fn temporary_path(dir: &Path, name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// [`write_atomic`] with the temporary file opened by `create` (which must create it
/// exclusively); tests open a file that fails its writes.
pub(crate) fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    create: impl Fn(&Path) -> io::Result<File>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    refuse_symlink(path)?;
    // A name taken by another host's process of the same id (a shared file system): the
    // next counter value.
    let mut attempt = 0;
    let (tmp, mut f) = loop {
        let tmp = temporary_path(dir, &name);
        match create(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // Checked again just before the rename: a link made meanwhile is refused too (the
        // rename would replace the link itself, never its target).
        refuse_symlink(path)?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporaries(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| is_temporary_name(n))
            .collect()
    }

    #[test]
    fn concurrent_writers_of_one_file_never_meet() {
        // On apical before unique names, the writers shared `.f.json.tmp`: one renamed the
        // other's half-written file away and failed with "No such file or directory".
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let texts: Vec<Vec<u8>> = (0..4u8).map(|t| vec![b'a' + t; 20_000]).collect();
        std::thread::scope(|s| {
            for text in &texts {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..200 {
                        write_atomic(path, text).expect("every write succeeds");
                        let now = fs::read(path).unwrap();
                        assert!(texts_contain(&now), "a mixed file");
                    }
                });
            }
        });
        fn texts_contain(b: &[u8]) -> bool {
            b.len() == 20_000 && b.iter().all(|&c| c == b[0]) && (b'a'..b'e').contains(&b[0])
        }
        assert!(texts_contain(&fs::read(&path).unwrap()));
        assert!(temporaries(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn links_are_refused_at_the_final_name_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.txt");
        fs::write(&target, b"not yours").unwrap();
        let link = dir.path().join("run.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_atomic(&link, b"{}").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(
            msg.contains(&link.display().to_string()) && msg.contains("symbolic link"),
            "{msg}"
        );
        assert_eq!(fs::read(&target).unwrap(), b"not yours");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        // A dangling link: nothing is created at its target either.
        let nowhere = dir.path().join("nowhere");
        let dangling = dir.path().join("model.toml");
        std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
        assert!(write_atomic(&dangling, b"x").is_err());
        assert!(!nowhere.exists());
        // A link planted at a temporary name is never written through: the temporary
        // names are new each time and created exclusively.
        let planted = dir.path().join(".metrics.csv.tmp");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        write_atomic(&dir.path().join("metrics.csv"), b"a,b\n").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"not yours");
        assert_eq!(fs::read(dir.path().join("metrics.csv")).unwrap(), b"a,b\n");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file_and_removes_its_temporary() {
        if !Path::new("/dev/full").exists() {
            eprintln!("skipping: no /dev/full");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint-epoch-1.bin");
        fs::write(&path, b"previous checkpoint").unwrap();
        // The temporary file is created as usual, but its writes go to /dev/full: a disk
        // that fills up half-way through.
        let e = write_atomic_with(&path, &[7u8; 100_000], |tmp| {
            create_exclusive(tmp)?;
            OpenOptions::new().write(true).open("/dev/full")
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs::read(&path).unwrap(), b"previous checkpoint");
        assert!(temporaries(dir.path()).is_empty(), "temporary removed");
    }
}
