//! MNIST data: IDX parsing (raw or gzip'd), validation, checksums and data-directory discovery.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::io::verify_cache::VerifyCache;
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

/// Pixels in one MNIST image (28 x 28).
pub const IMAGE_PIXELS: usize = 784;
/// Side length of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Images in the MNIST training set.
pub const TRAIN_LEN: usize = 60_000;
/// Images in the MNIST test set.
pub const TEST_LEN: usize = 10_000;

/// IDX magic number of an unsigned-byte, 3-dimensional (images) file.
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic number of an unsigned-byte, 1-dimensional (labels) file.
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Largest (decompressed) IDX file accepted, to bound memory on hostile input.
const MAX_IDX_BYTES: u64 = 1 << 30;
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Environment variable naming the MNIST data directory.
pub const DATA_ENV: &str = "APICAL_DATA";

const FETCH_HINT: &str =
    "run scripts/fetch-mnist.sh, or set APICAL_DATA / --data to a directory holding the MNIST files";

/// One MNIST file: its base name and the SHA-256 of its decompressed IDX bytes.
struct Expected {
    stem: &'static str,
    kind: &'static str,
    sha256: &'static str,
}

const TRAIN_IMAGES: Expected = Expected {
    stem: "train-images",
    kind: "idx3-ubyte",
    sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
};
const TRAIN_LABELS: Expected = Expected {
    stem: "train-labels",
    kind: "idx1-ubyte",
    sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
const TEST_IMAGES: Expected = Expected {
    stem: "t10k-images",
    kind: "idx3-ubyte",
    sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
};
const TEST_LABELS: Expected = Expected {
    stem: "t10k-labels",
    kind: "idx1-ubyte",
    sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

impl Expected {
    /// Accepted file names, in order of preference.
    fn candidates(&self) -> [String; 3] {
        [
            format!("{}-{}.gz", self.stem, self.kind),
            format!("{}-{}", self.stem, self.kind),
            format!("{}.{}", self.stem, self.kind),
        ]
    }
}

/// Errors from loading MNIST; every message names the file (or directory) concerned.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{}: cannot read file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{}: corrupt gzip stream: {source}", path.display())]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The (decompressed) file exceeds the size limit.
    #[error("{}: file is too large: more than {limit} bytes of IDX data", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// Wrong IDX magic number.
    #[error(
        "{}: bad IDX magic number 0x{found:08x}, expected 0x{expected:08x} ({what}){hint}",
        path.display()
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
        hint: &'static str,
    },
    /// A dimension in the header is zero.
    #[error("{}: IDX header has a zero dimension ({dims})", path.display())]
    ZeroDimension { path: PathBuf, dims: String },
    /// The file is shorter than its header says.
    #[error(
        "{}: IDX file is truncated: {what} needs {expected} bytes but the file has {actual}{note}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        what: String,
        expected: u64,
        actual: u64,
        note: &'static str,
    },
    /// The file is longer than its header says.
    #[error(
        "{}: IDX file has trailing bytes: expected {expected} bytes but the file has {actual}{note}",
        path.display()
    )]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        actual: u64,
        note: &'static str,
    },
    /// The header's dimensions multiply past what any file could hold.
    #[error(
        "{}: IDX header dimensions {dims} overflow; the file has only {actual} bytes",
        path.display()
    )]
    HeaderOverflow {
        path: PathBuf,
        dims: String,
        actual: u64,
    },
    /// A label outside 0..=9.
    #[error("{}: label at index {index} is {value}, expected 0..=9", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        value: u8,
    },
    /// Image and label files disagree on the number of items.
    #[error(
        "count mismatch: {} has {images} images but {} has {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    /// The data set does not have MNIST's shape.
    #[error("{}: expected {expected}, found {found}", path.display())]
    UnexpectedShape {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// SHA-256 of the decompressed file differs from the original MNIST file's.
    #[error(
        "{}: SHA-256 of the decompressed data is {actual}, expected {expected}: \
         the file is corrupt or not the original MNIST {name}",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        name: String,
        expected: String,
        actual: String,
    },
    /// One of the four MNIST files is not in the data directory.
    #[error(
        "MNIST file {name} not found in {}: tried {}; {FETCH_HINT}",
        dir.display(),
        tried.join(", ")
    )]
    MissingFile {
        dir: PathBuf,
        name: String,
        tried: Vec<String>,
    },
    /// A data directory given explicitly (or by APICAL_DATA) does not exist.
    #[error("data directory {} (from {source_name}) does not exist or is not a directory; {FETCH_HINT}", path.display())]
    DirNotFound {
        path: PathBuf,
        source_name: &'static str,
    },
    /// No data directory found in any default place.
    #[error(
        "no MNIST data directory found; tried {}; {FETCH_HINT}",
        list_paths(tried)
    )]
    NoDataDir { tried: Vec<PathBuf> },
}

fn list_paths(paths: &[PathBuf]) -> String {
    let mut out = String::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&p.display().to_string());
    }
    out
}

/// One labelled image set; images are stored contiguously, row-major per image.
#[derive(Clone, Debug)]
pub struct MnistSet {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl MnistSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `i` (`rows * cols` bytes). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.images[i * size..(i + 1) * size]
    }

    /// Label of image `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }
}

/// The MNIST training and test sets.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: MnistSet,
    pub test: MnistSet,
}

/// Reads a file, refusing ones over the size limit.
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_IDX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_IDX_BYTES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_IDX_BYTES,
        });
    }
    Ok(bytes)
}

/// Decompresses a gzip stream (one or more members), bounded by the size limit.
fn gunzip(bytes: &[u8], origin: &Path) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(MAX_IDX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: origin.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > MAX_IDX_BYTES {
        return Err(DataError::TooLarge {
            path: origin.to_path_buf(),
            limit: MAX_IDX_BYTES,
        });
    }
    Ok(out)
}

/// Returns `bytes`, gunzipped first if it starts with the gzip magic.
fn decompress<'a>(bytes: &'a [u8], origin: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        gunzip(bytes, origin).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// Suffix for byte counts that refer to decompressed data.
fn note(gz: bool) -> &'static str {
    if gz {
        " (after gzip decompression)"
    } else {
        ""
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number and header length; `bytes` must be raw IDX.
fn check_header(
    bytes: &[u8],
    origin: &Path,
    gz: bool,
    expected: u32,
    header: usize,
) -> Result<(), DataError> {
    let actual = bytes.len() as u64;
    let truncated_header = || DataError::Truncated {
        path: origin.to_path_buf(),
        what: "the IDX header".to_string(),
        expected: header as u64,
        actual,
        note: note(gz),
    };
    if bytes.len() < 4 {
        return Err(truncated_header());
    }
    let found = be_u32(bytes, 0);
    if found != expected {
        let (what, other, other_hint) = if expected == IDX_IMAGES_MAGIC {
            (
                "images file",
                IDX_LABELS_MAGIC,
                "; this looks like an IDX labels file",
            )
        } else {
            (
                "labels file",
                IDX_IMAGES_MAGIC,
                "; this looks like an IDX images file",
            )
        };
        return Err(DataError::BadMagic {
            path: origin.to_path_buf(),
            found,
            expected,
            what,
            hint: if found == other { other_hint } else { "" },
        });
    }
    if bytes.len() < header {
        return Err(truncated_header());
    }
    Ok(())
}

/// Checks that a raw IDX file is exactly `header + prod(dims)` bytes long.
fn check_length(
    bytes: &[u8],
    origin: &Path,
    gz: bool,
    header: usize,
    dims: &[u32],
) -> Result<(), DataError> {
    let dims_text = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" x ");
    if dims.contains(&0) {
        return Err(DataError::ZeroDimension {
            path: origin.to_path_buf(),
            dims: dims_text,
        });
    }
    let actual = bytes.len() as u64;
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .and_then(|body| body.checked_add(header as u64));
    let Some(expected) = expected else {
        return Err(DataError::HeaderOverflow {
            path: origin.to_path_buf(),
            dims: dims_text,
            actual,
        });
    };
    if actual < expected {
        return Err(DataError::Truncated {
            path: origin.to_path_buf(),
            what: format!("a {header}-byte header plus {dims_text} data bytes"),
            expected,
            actual,
            note: note(gz),
        });
    }
    if actual > expected {
        return Err(DataError::TrailingBytes {
            path: origin.to_path_buf(),
            expected,
            actual,
            note: note(gz),
        });
    }
    Ok(())
}

fn images_from_raw(
    bytes: &[u8],
    origin: &Path,
    gz: bool,
) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    check_header(bytes, origin, gz, IDX_IMAGES_MAGIC, IMAGES_HEADER)?;
    let dims = [be_u32(bytes, 4), be_u32(bytes, 8), be_u32(bytes, 12)];
    check_length(bytes, origin, gz, IMAGES_HEADER, &dims)?;
    let [n, rows, cols] = dims.map(|d| d as usize);
    Ok((bytes[IMAGES_HEADER..].to_vec(), n, rows, cols))
}

fn labels_from_raw(bytes: &[u8], origin: &Path, gz: bool) -> Result<Vec<u8>, DataError> {
    check_header(bytes, origin, gz, IDX_LABELS_MAGIC, LABELS_HEADER)?;
    check_length(bytes, origin, gz, LABELS_HEADER, &[be_u32(bytes, 4)])?;
    let labels = &bytes[LABELS_HEADER..];
    if let Some((index, &value)) = labels.iter().enumerate().find(|(_, &v)| v > 9) {
        return Err(DataError::BadLabel {
            path: origin.to_path_buf(),
            index,
            value,
        });
    }
    Ok(labels.to_vec())
}

/// Parses an IDX images file (raw or gzip'd) into `(pixels, n, rows, cols)`.
/// `origin` is used only in error messages.
pub fn parse_idx_images(
    bytes: &[u8],
    origin: &Path,
) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let gz = bytes.starts_with(&GZIP_MAGIC);
    images_from_raw(&decompress(bytes, origin)?, origin, gz)
}

/// Parses an IDX labels file (raw or gzip'd); every label must be in 0..=9.
/// `origin` is used only in error messages.
pub fn parse_idx_labels(bytes: &[u8], origin: &Path) -> Result<Vec<u8>, DataError> {
    let gz = bytes.starts_with(&GZIP_MAGIC);
    labels_from_raw(&decompress(bytes, origin)?, origin, gz)
}

/// Reads an IDX images file (raw or gzip'd) into `(pixels, n, rows, cols)`.
pub fn read_idx_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    parse_idx_images(&read_file(path)?, path)
}

/// Reads an IDX labels file (raw or gzip'd); every label must be in 0..=9.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    parse_idx_labels(&read_file(path)?, path)
}

fn assemble(
    (images, n, rows, cols): (Vec<u8>, usize, usize, usize),
    images_path: &Path,
    labels: Vec<u8>,
    labels_path: &Path,
) -> Result<MnistSet, DataError> {
    if n != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: n,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok(MnistSet {
        images,
        labels,
        rows,
        cols,
    })
}

/// Loads an images file and a labels file (each raw or gzip'd) as one set,
/// checking that their counts agree and that labels are in 0..=9.
pub fn load_set(images: &Path, labels: &Path) -> Result<MnistSet, DataError> {
    let parsed = read_idx_images(images)?;
    let label_vec = read_idx_labels(labels)?;
    assemble(parsed, images, label_vec, labels)
}

/// Finds the file for `expected` in `dir` under any accepted name.
fn locate(dir: &Path, expected: &Expected) -> Result<PathBuf, DataError> {
    let tried = expected.candidates();
    for name in &tried {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        name: format!("{}-{}", expected.stem, expected.kind),
        tried: tried.to_vec(),
    })
}

/// Reads and decompresses one MNIST file, verifying its checksum if asked.
/// Returns the raw IDX bytes and whether the file was gzip'd.
fn read_verified(
    path: &Path,
    expected: &Expected,
    verify: bool,
) -> Result<(Vec<u8>, bool), DataError> {
    let bytes = read_file(path)?;
    let gz = bytes.starts_with(&GZIP_MAGIC);
    let raw = if gz { gunzip(&bytes, path)? } else { bytes };
    // Hashed once per file identity, again on any change (io::verify_cache).
    let cache = VerifyCache::user();
    if verify && !cache.is_recorded(path, expected.sha256, &raw) {
        let digest = Sha256::digest(&raw);
        let mut actual = String::with_capacity(64);
        for b in digest {
            let _ = write!(actual, "{b:02x}");
        }
        if actual != expected.sha256 {
            return Err(DataError::Checksum {
                path: path.to_path_buf(),
                name: format!("{}-{}", expected.stem, expected.kind),
                expected: expected.sha256.to_string(),
                actual,
            });
        }
        cache.remember(path, expected.sha256, &raw);
    }
    Ok((raw, gz))
}

fn load_mnist_set(
    dir: &Path,
    images: &Expected,
    labels: &Expected,
    n: usize,
    verify: bool,
) -> Result<MnistSet, DataError> {
    let images_path = locate(dir, images)?;
    let labels_path = locate(dir, labels)?;
    let (raw, gz) = read_verified(&images_path, images, verify)?;
    let parsed = images_from_raw(&raw, &images_path, gz)?;
    drop(raw);
    let (found_n, rows, cols) = (parsed.1, parsed.2, parsed.3);
    if (found_n, rows, cols) != (n, IMAGE_SIDE, IMAGE_SIDE) {
        return Err(DataError::UnexpectedShape {
            path: images_path,
            expected: format!("{n} images of {IMAGE_SIDE}x{IMAGE_SIDE}"),
            found: format!("{found_n} images of {rows}x{cols}"),
        });
    }
    let (raw, gz) = read_verified(&labels_path, labels, verify)?;
    let label_vec = labels_from_raw(&raw, &labels_path, gz)?;
    assemble(parsed, &images_path, label_vec, &labels_path)
}

/// Loads MNIST from `dir`, accepting `NAME.gz`, `NAME` or the dotted `train-images.idx3-ubyte`
/// form for each file. With `verify`, checks each file's decompressed SHA-256 against the
/// originals. Requires 60000 training and 10000 test images of 28x28.
pub fn load_mnist(dir: &Path, verify_checksums: bool) -> Result<Mnist, DataError> {
    // Locate all four first so a missing file is reported before any slow reading.
    for e in [&TRAIN_IMAGES, &TRAIN_LABELS, &TEST_IMAGES, &TEST_LABELS] {
        locate(dir, e)?;
    }
    let train = load_mnist_set(
        dir,
        &TRAIN_IMAGES,
        &TRAIN_LABELS,
        TRAIN_LEN,
        verify_checksums,
    )?;
    let test = load_mnist_set(dir, &TEST_IMAGES, &TEST_LABELS, TEST_LEN, verify_checksums)?;
    Ok(Mnist { train, test })
}

/// Picks the MNIST directory: `explicit` if given; else `$APICAL_DATA`; else the first existing
/// of `data/mnist`, `../shared/data/mnist` and the same two relative to this crate's source.
pub fn find_data_dir(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    if let Some(dir) = explicit {
        return if dir.is_dir() {
            Ok(dir.to_path_buf())
        } else {
            Err(DataError::DirNotFound {
                path: dir.to_path_buf(),
                source_name: "--data",
            })
        };
    }
    if let Some(dir) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(DataError::DirNotFound {
                path: dir,
                source_name: DATA_ENV,
            })
        };
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tried = vec![
        PathBuf::from("data/mnist"),
        PathBuf::from("../shared/data/mnist"),
        manifest.join("data/mnist"),
        manifest.join("../shared/data/mnist"),
    ];
    match tried.iter().find(|p| p.is_dir()) {
        Some(dir) => Ok(dir.clone()),
        None => Err(DataError::NoDataDir { tried }),
    }
}
