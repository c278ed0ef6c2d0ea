//! Bounded reads of the small text files a user names (model files, sweep files): a path
//! to a device or a huge file (`/dev/zero`) is an error after at most the limit, never an
//! unbounded allocation.

use std::io::{self, Read};
use std::path::Path;

/// The largest model or sweep file read (bytes): far above any real one.
pub const MAX_TEXT_FILE: u64 = 4 << 20;

/// Reads the UTF-8 text file `path`, refusing one longer than `max` bytes (an
/// `InvalidData` error saying so) after reading at most `max + 1` bytes.
pub fn read_text_at_most(path: &Path, max: u64) -> io::Result<String> {
    let f = std::fs::File::open(path)?;
    if f.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a directory, not a file",
        ));
    }
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {max} bytes; not a model or sweep file"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_refused_after_the_limit() {
        if !Path::new("/dev/zero").exists() {
            return;
        }
        let e = read_text_at_most(Path::new("/dev/zero"), 1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("longer than 1000 bytes"), "{e}");
    }

    #[test]
    fn a_file_at_the_limit_is_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.toml");
        std::fs::write(&p, "x".repeat(1000)).unwrap();
        assert_eq!(read_text_at_most(&p, 1000).unwrap().len(), 1000);
        assert!(read_text_at_most(&p, 999).is_err());
    }
}
