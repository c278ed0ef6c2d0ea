//! The record of checked MNIST files (src/io/verify_cache.rs) seen from the binary: the
//! first start checks every file and records it, later starts skip the SHA-256, and a file
//! changed afterwards — in place with its size and modification time restored, even with a
//! forged cache entry for its new identity — is checked in full and rejected.

mod common;

use apical::io::verify_cache::{FileIdentity, VerifyCache, CACHE_FILE};
use common::{apical, data_dir, s};
use std::fs;
use std::io::Read;
use std::path::Path;

/// SHA-256 of the original t10k-labels-idx1-ubyte (decompressed).
const TEST_LABELS_SHA: &str = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2";

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `apical train` of one example and one test image on `data`, with the cache in `cache`;
/// returns (success, stderr).
fn start(data: &Path, cache: &Path, out: &Path) -> (bool, String) {
    let o = apical()
        .args([
            "train",
            "--train-examples",
            "1",
            "--test-examples",
            "1",
            "--threads",
            "1",
            "--record",
            "none",
            "--quiet",
            "--data",
            s(data),
            "--out",
            s(out),
        ])
        .env("APICAL_CACHE_DIR", cache)
        .env_remove("APICAL_VERIFY_CACHE")
        .output()
        .expect("apical runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_file_changed_after_its_check_is_checked_again_even_with_a_forged_entry() {
    let Some(real) = data_dir() else {
        return;
    };
    let real = fs::canonicalize(real).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    fs::create_dir_all(&data).unwrap();
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    ] {
        std::os::unix::fs::symlink(real.join(name), data.join(name)).unwrap();
    }
    // The test labels raw, so that a changed byte is not caught by gzip's own CRC.
    let labels_path = data.join("t10k-labels-idx1-ubyte");
    let labels = gunzip(&real.join("t10k-labels-idx1-ubyte.gz"));
    fs::write(&labels_path, &labels).unwrap();
    let cache_dir = tmp.path().join("cache");
    let cache = VerifyCache::at(cache_dir.join(CACHE_FILE));

    let (ok, err) = start(&data, &cache_dir, &tmp.path().join("run1"));
    assert!(ok, "{err}");
    assert!(cache.is_recorded(&labels_path, TEST_LABELS_SHA, &labels));
    let (ok, err) = start(&data, &cache_dir, &tmp.path().join("run2"));
    assert!(ok, "the cached start: {err}");

    // One label changed in place (still a valid label), size and mtime as before.
    let mtime = fs::metadata(&labels_path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut bad = labels.clone();
    bad[5000] = (bad[5000] + 1) % 10;
    fs::write(&labels_path, &bad).unwrap();
    fs::File::options()
        .write(true)
        .open(&labels_path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (ok, err) = start(&data, &cache_dir, &tmp.path().join("run3"));
    assert!(!ok, "a changed file must be checked in full");
    assert!(
        err.contains("SHA-256") && err.contains("t10k-labels"),
        "{err}"
    );

    // A forged entry: the changed file's identity now, with the original's digest and
    // CRC-32. The CRC-32 of what is read does not match it: checked in full, rejected.
    cache.record(
        FileIdentity::of(&labels_path).unwrap(),
        TEST_LABELS_SHA,
        crc32fast::hash(&labels),
    );
    let (ok, err) = start(&data, &cache_dir, &tmp.path().join("run4"));
    assert!(!ok, "a forged entry must not pass a changed file");
    assert!(
        err.contains("SHA-256") && err.contains("t10k-labels"),
        "{err}"
    );
    assert!(!cache.is_recorded(&labels_path, TEST_LABELS_SHA, &bad));

    // Restored content: checked in full again (its identity is new), passes, recorded.
    fs::write(&labels_path, &labels).unwrap();
    let (ok, err) = start(&data, &cache_dir, &tmp.path().join("run5"));
    assert!(ok, "{err}");
    assert!(cache.is_recorded(&labels_path, TEST_LABELS_SHA, &labels));
}
