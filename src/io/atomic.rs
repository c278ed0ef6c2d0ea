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
    name.len() > 5
        && name.starts_with('.')
        && (name.ends_with(".tmp") || name.ends_with(".tmp.png"))
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
/// (unique within the process), so two processes, or two threads, never meet. A PNG's
/// keeps its extension (`.NAME.PID-N.tmp.png`): the image encoder chooses the format by it.
fn temporary_path(dir: &Path, name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let ext = if name.ends_with(".png") { ".png" } else { "" };
    dir.join(format!(".{name}.{}-{n}.tmp{ext}", std::process::id()))
}

/// A file being written under a temporary name beside its final name, which it becomes on
/// [`PendingFile::commit`] (fsync, rename, fsync of the directory). The temporary file is
/// created exclusively (`O_CREAT | O_EXCL`: never through a link); a symbolic link at the
/// final name is refused when it is made and again just before the rename; a pending file
/// never committed is removed when dropped. Writers that need a path (HDF5, PNG) write to
/// [`PendingFile::temporary`], a regular file this process has just created.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl PendingFile {
    /// A new pending file for `path`, under a temporary name no other writer uses.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, create_exclusive)
    }

    /// A new pending file for `path` under the fixed temporary name `tmp` (a name that says
    /// what it is, like `traces.h5.part`): whatever is at `tmp` that is not a directory (a
    /// leftover of a killed run, a planted link) is removed first, never written through.
    pub fn create_at(path: &Path, tmp: &Path) -> io::Result<Self> {
        let (dir, _) = split(path);
        refuse_symlink(path)?;
        match fs::symlink_metadata(tmp) {
            Ok(m) if !m.is_dir() => fs::remove_file(tmp)?,
            _ => {}
        }
        let file = create_exclusive(tmp)?;
        Ok(PendingFile {
            tmp: tmp.to_path_buf(),
            path: path.to_path_buf(),
            dir,
            file: Some(file),
            committed: false,
        })
    }

    fn create_with(path: &Path, create: impl Fn(&Path) -> io::Result<File>) -> io::Result<Self> {
        let (dir, name) = split(path);
        refuse_symlink(path)?;
        // A name taken by another host's process of the same id (a shared file system):
        // the next counter value.
        let mut attempt = 0;
        loop {
            let tmp = temporary_path(&dir, &name);
            match create(&tmp) {
                Ok(f) => {
                    return Ok(PendingFile {
                        tmp,
                        path: path.to_path_buf(),
                        dir,
                        file: Some(f),
                        committed: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The temporary file's path (a regular file this process created).
    pub fn temporary(&self) -> &Path {
        &self.tmp
    }

    /// The final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        if self.file.is_none() {
            // Only after a writer by path has had it: opened again, never through a link.
            self.file = open_no_follow(&self.tmp).ok();
        }
        self.file
            .as_mut()
            .expect("a pending file's temporary file stays open")
    }

    /// Makes the temporary file `path`: fsync, rename, fsync of the directory. A link
    /// made at `path` meanwhile is refused (the rename would replace the link itself,
    /// never its target; refusing says so).
    pub fn commit(mut self) -> io::Result<()> {
        let f = match self.file.take() {
            Some(f) => f,
            None => open_no_follow(&self.tmp)?,
        };
        f.sync_all()?;
        drop(f);
        refuse_symlink(&self.path)?;
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Closes the temporary file (for a writer by path that needs it closed).
    pub fn close(&mut self) {
        self.file = None;
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn split(path: &Path) -> (PathBuf, String) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

/// Creates the directory `dir` (and its parents) for files apical writes, and refuses a
/// symbolic link at `dir` itself: a `plots/` planted as a link to elsewhere is never
/// written into.
pub fn create_output_dir(dir: &Path) -> io::Result<()> {
    refuse_symlink(dir)?;
    fs::create_dir_all(dir)?;
    refuse_symlink(dir)
}

/// [`write_atomic`] with the temporary file opened by `create` (which must create it
/// exclusively); tests open a file that fails its writes.
pub(crate) fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    create: impl Fn(&Path) -> io::Result<File>,
) -> io::Result<()> {
    let mut p = PendingFile::create_with(path, create)?;
    p.file().write_all(bytes)?;
    p.commit()
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
