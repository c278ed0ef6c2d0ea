//! Tests of the MNIST data module: IDX parsing, validation, loading and discovery.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use apical::io::mnist::{
    find_data_dir, load_mnist, load_set, parse_idx_images, parse_idx_labels, read_idx_images,
    read_idx_labels, DataError, IMAGE_PIXELS,
};
use flate2::write::GzEncoder;
use flate2::Compression;

/// IDX images file: magic 0x803, n, rows, cols, then pixels.
fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// IDX labels file: magic 0x801, n, then labels.
fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Three 2x2 images with distinct pixels.
fn tiny_pixels() -> Vec<u8> {
    (0..12u8).map(|i| i * 20).collect()
}

const TINY_LABELS: [u8; 3] = [5, 0, 9];

fn tiny_images_file() -> Vec<u8> {
    idx_images(3, 2, 2, &tiny_pixels())
}

fn tiny_labels_file() -> Vec<u8> {
    idx_labels(&TINY_LABELS)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// Asserts `result` is an error whose message contains every one of `parts`.
fn assert_err<T: std::fmt::Debug>(result: Result<T, DataError>, parts: &[&str]) -> String {
    let msg = result.expect_err("expected an error").to_string();
    for part in parts {
        assert!(msg.contains(part), "{msg:?} should contain {part:?}");
    }
    msg
}

fn check_tiny_set(images: &Path, labels: &Path) {
    let (pixels, n, rows, cols) = read_idx_images(images).unwrap();
    assert_eq!((n, rows, cols), (3, 2, 2));
    assert_eq!(pixels, tiny_pixels());
    assert_eq!(read_idx_labels(labels).unwrap(), TINY_LABELS);
    let set = load_set(images, labels).unwrap();
    assert_eq!(set.len(), 3);
    assert!(!set.is_empty());
    assert_eq!((set.rows, set.cols), (2, 2));
    assert_eq!(set.image(0), &[0, 20, 40, 60]);
    assert_eq!(set.image(2), &[160, 180, 200, 220]);
    assert_eq!(set.label(0), 5);
    assert_eq!(set.label(2), 9);
}

#[test]
fn tiny_idx_round_trips_raw() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(dir.path(), "imgs-idx3-ubyte", &tiny_images_file());
    let labels = write(dir.path(), "lbls-idx1-ubyte", &tiny_labels_file());
    check_tiny_set(&images, &labels);
}

#[test]
fn tiny_idx_round_trips_gzip_detected_by_magic() {
    let dir = tempfile::tempdir().unwrap();
    // A .gz name, and a gzip'd file without one: detection is by content.
    let images = write(dir.path(), "imgs-idx3-ubyte.gz", &gzip(&tiny_images_file()));
    let labels = write(dir.path(), "lbls-idx1-ubyte", &gzip(&tiny_labels_file()));
    check_tiny_set(&images, &labels);
    // A raw file under a .gz name is still read as raw.
    let raw_named_gz = write(dir.path(), "raw.gz", &tiny_labels_file());
    assert_eq!(read_idx_labels(&raw_named_gz).unwrap(), TINY_LABELS);
}

#[test]
fn wrong_magic_is_reported_with_found_and_expected() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(dir.path(), "labels-as-images", &tiny_labels_file());
    assert_err(
        read_idx_images(&labels),
        &[
            "labels-as-images",
            "magic",
            "0x00000801",
            "0x00000803",
            "looks like an IDX labels file",
        ],
    );
    let images = write(dir.path(), "images-as-labels", &tiny_images_file());
    assert_err(
        read_idx_labels(&images),
        &["images-as-labels", "magic", "0x00000803", "0x00000801"],
    );
    let mut junk = tiny_images_file();
    junk[..4].copy_from_slice(b"PK\x03\x04");
    let junk = write(dir.path(), "zip-file", &junk);
    assert_err(
        read_idx_images(&junk),
        &["zip-file", "magic", "0x504b0304", "0x00000803"],
    );
}

#[test]
fn every_truncation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let images = tiny_images_file();
    let labels = tiny_labels_file();
    for len in 0..images.len() {
        let path = write(dir.path(), "cut-images", &images[..len]);
        assert_err(read_idx_images(&path), &["cut-images", "truncated"]);
    }
    for len in 0..labels.len() {
        let path = write(dir.path(), "cut-labels", &labels[..len]);
        assert_err(read_idx_labels(&path), &["cut-labels", "truncated"]);
    }
    // Expected and actual byte counts are named.
    let path = write(dir.path(), "short", &images[..images.len() - 1]);
    assert_err(read_idx_images(&path), &["short", "28 bytes", "has 27"]);
    // Truncated gzip streams: always an error, never a panic.
    for (name, full) in [("cut.gz", gzip(&images)), ("cutl.gz", gzip(&labels))] {
        for len in 0..full.len() {
            let path = write(dir.path(), name, &full[..len]);
            let msg = if name == "cut.gz" {
                read_idx_images(&path).map(|_| ()).unwrap_err()
            } else {
                read_idx_labels(&path).map(|_| ()).unwrap_err()
            }
            .to_string();
            assert!(msg.contains(name), "{msg}");
        }
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = tiny_images_file();
    images.push(0);
    let path = write(dir.path(), "long-images", &images);
    assert_err(
        read_idx_images(&path),
        &["long-images", "trailing bytes", "28", "29"],
    );
    let mut labels = tiny_labels_file();
    labels.extend_from_slice(&[1, 2]);
    let path = write(dir.path(), "long-labels.gz", &gzip(&labels));
    assert_err(
        read_idx_labels(&path),
        &["long-labels.gz", "trailing bytes", "11", "13"],
    );
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(dir.path(), "three-images", &tiny_images_file());
    let labels = write(dir.path(), "two-labels", &idx_labels(&[1, 2]));
    assert_err(
        load_set(&images, &labels),
        &["three-images", "two-labels", "3 images", "2 labels"],
    );
}

#[test]
fn label_out_of_range_names_index_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad-labels", &idx_labels(&[3, 10, 4]));
    assert_err(
        read_idx_labels(&path),
        &["bad-labels", "index 1", "is 10", "0..=9"],
    );
    let images = write(dir.path(), "images", &tiny_images_file());
    assert_err(load_set(&images, &path), &["bad-labels", "index 1"]);
}

#[test]
fn corrupt_gzip_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = gzip(&tiny_images_file());
    // Damage the deflate body (after the 10-byte header), and the CRC trailer separately.
    let mut body = gz.clone();
    for b in &mut body[10..gz.len() - 8] {
        *b ^= 0x5a;
    }
    let path = write(dir.path(), "damaged.gz", &body);
    assert_err(read_idx_images(&path), &["damaged.gz", "gzip"]);
    let n = gz.len();
    gz[n - 8] ^= 0xff;
    let path = write(dir.path(), "bad-crc.gz", &gz);
    assert_err(read_idx_images(&path), &["bad-crc.gz", "gzip"]);
    let path = write(dir.path(), "magic-only.gz", &[0x1f, 0x8b]);
    assert_err(read_idx_labels(&path), &["magic-only.gz", "gzip"]);
}

#[test]
fn zero_and_absurd_dimensions_are_errors() {
    let origin = Path::new("hdr-test");
    assert_err(
        parse_idx_images(&idx_images(0, 28, 28, &[]), origin),
        &["hdr-test", "zero dimension", "0 x 28 x 28"],
    );
    assert_err(
        parse_idx_images(&idx_images(3, 0, 2, &[]), origin),
        &["hdr-test", "zero dimension"],
    );
    assert_err(
        parse_idx_labels(&idx_labels(&[]), origin),
        &["hdr-test", "zero dimension"],
    );
    // Overflows u64: must fail without trying to allocate.
    let max = u32::MAX;
    assert_err(
        parse_idx_images(&idx_images(max, max, max, &[1, 2, 3]), origin),
        &["hdr-test", "overflow"],
    );
    // Huge but representable: reported as truncated, with the claimed size.
    assert_err(
        parse_idx_images(&idx_images(max, 28, 28, &[1, 2, 3]), origin),
        &[
            "hdr-test",
            "truncated",
            &(16 + u64::from(max) * 784).to_string(),
        ],
    );
    let mut labels = idx_labels(&[1]);
    labels[4..8].copy_from_slice(&max.to_be_bytes());
    assert_err(
        parse_idx_labels(&labels, origin),
        &["hdr-test", "truncated"],
    );
}

#[test]
fn missing_file_lists_names_tried_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let msg = assert_err(
        load_mnist(dir.path(), false),
        &[
            "train-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte,",
            "train-images.idx3-ubyte",
            "scripts/fetch-mnist.sh",
            "APICAL_DATA",
            "--data",
        ],
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
fn load_mnist_accepts_all_names_and_checks_shape_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Blank images with MNIST's shape: loadable, but not the original files.
    let train_px = vec![0u8; 60_000 * IMAGE_PIXELS];
    write(
        d,
        "train-images.idx3-ubyte",
        &idx_images(60_000, 28, 28, &train_px),
    );
    write(d, "train-labels-idx1-ubyte", &idx_labels(&[1u8; 60_000]));
    let test_px = vec![7u8; 10_000 * IMAGE_PIXELS];
    write(
        d,
        "t10k-images-idx3-ubyte.gz",
        &gzip(&idx_images(10_000, 28, 28, &test_px)),
    );
    write(d, "t10k-labels.idx1-ubyte", &idx_labels(&[2u8; 10_000]));

    let mnist = load_mnist(d, false).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    assert_eq!(mnist.test.image(9_999), &test_px[..IMAGE_PIXELS]);
    assert_eq!((mnist.train.label(0), mnist.test.label(0)), (1, 2));

    assert_err(
        load_mnist(d, true),
        &[
            "train-images.idx3-ubyte",
            "SHA-256",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "corrupt or not the original MNIST",
        ],
    );

    // Wrong shape is rejected even without checksums.
    write(
        d,
        "t10k-images-idx3-ubyte.gz",
        &gzip(&idx_images(10_000, 2, 392, &test_px)),
    );
    assert_err(
        load_mnist(d, false),
        &[
            "t10k-images-idx3-ubyte.gz",
            "10000 images of 28x28",
            "2x392",
        ],
    );
}

#[test]
fn explicit_data_dir_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(find_data_dir(Some(dir.path())).unwrap(), dir.path());
    let missing = dir.path().join("nope");
    assert_err(
        find_data_dir(Some(&missing)),
        &["nope", "does not exist", "scripts/fetch-mnist.sh"],
    );
}

#[test]
fn real_mnist_loads_with_checksums() {
    let dir = match find_data_dir(None) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("skipping real_mnist_loads_with_checksums: {e}");
            return;
        }
    };
    let mnist = match load_mnist(&dir, true) {
        Ok(m) => m,
        Err(DataError::MissingFile { .. }) => {
            eprintln!("skipping real_mnist_loads_with_checksums: no MNIST files in {dir:?}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    for set in [&mnist.train, &mnist.test] {
        assert_eq!((set.rows, set.cols), (28, 28));
        assert_eq!(set.images.len(), set.len() * IMAGE_PIXELS);
        assert!(set.labels.iter().all(|&l| l <= 9));
    }
    assert_eq!(mnist.train.len(), 60_000);
    assert_eq!(mnist.test.len(), 10_000);
    assert_eq!(mnist.train.label(0), 5);
    assert_eq!(mnist.test.label(0), 7);
    assert_eq!(mnist.train.image(0).len(), IMAGE_PIXELS);
}

/// Seeded xorshift64 generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Randomly mutates `buf`: flips bytes, rewrites header words, truncates or extends.
fn mutate(rng: &mut XorShift, mut buf: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] = rng.next() as u8;
            }
            1 if buf.len() >= 16 => {
                // Rewrite a header word with a small or extreme value.
                let at = 4 * rng.below(4);
                let v = match rng.below(3) {
                    0 => rng.below(8) as u32,
                    1 => u32::MAX - rng.below(3) as u32,
                    _ => rng.next() as u32,
                };
                buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            2 => buf.truncate(rng.below(buf.len() + 1)),
            3 => {
                let len = rng.below(8);
                let extra = rng.bytes(len);
                buf.extend_from_slice(&extra);
            }
            _ => {}
        }
    }
    buf
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let origin = Path::new("fuzz-input");
    let valid = [
        tiny_images_file(),
        tiny_labels_file(),
        gzip(&tiny_images_file()),
        gzip(&tiny_labels_file()),
    ];
    let (mut ok, mut err) = (0, 0);
    for case in 0..2_000 {
        let buf = match case % 4 {
            0 => {
                let len = rng.below(48);
                rng.bytes(len)
            }
            1 => {
                // A plausible header followed by random bytes.
                let magic = if rng.below(2) == 0 { 0x803u32 } else { 0x801 };
                let mut b = magic.to_be_bytes().to_vec();
                let len = rng.below(40);
                b.extend(rng.bytes(len).into_iter().map(|x| x % 4));
                b
            }
            _ => {
                let base = valid[rng.below(valid.len())].clone();
                mutate(&mut rng, base)
            }
        };
        match parse_idx_images(&buf, origin) {
            Ok((px, n, rows, cols)) => {
                assert_eq!(px.len(), n * rows * cols);
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("fuzz-input"), "{e}");
                err += 1;
            }
        }
        match parse_idx_labels(&buf, origin) {
            Ok(labels) => {
                assert!(!labels.is_empty() && labels.iter().all(|&l| l <= 9));
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("fuzz-input"), "{e}");
                err += 1;
            }
        }
    }
    assert_eq!(ok + err, 4_000);
    assert!(err > 0);
}
