//! MNIST data: IDX parsing (raw or gzip'd), validation, checksums and data-directory discovery.

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
pub(crate) const IMAGE_SIDE: usize = 28;
/// Images in the MNIST training set.
pub const TRAIN_LEN: usize = 60_000;
/// Images in the MNIST test set.
pub const TEST_LEN: usize = 10_000;

/// IDX magic number of an unsigned-byte, 3-dimensional (images) file.
pub(crate) const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic number of an unsigned-byte, 1-dimensional (labels) file.
pub(crate) const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Largest (decompressed) IDX file accepted, to bound memory on hostile input.
const MAX_IDX_BYTES: u64 = 1 << 30;
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Environment variable naming the MNIST data directory.
pub const DATA_ENV: &str = "APICAL_DATA";

const FETCH_HINT: &str =
    "run scripts/fetch-mnist.sh, or set APICAL_DATA / --data to a directory holding the MNIST files";
/// How to get Fashion-MNIST (Debian's package; its files are the originals, recompressed).
pub(crate) const FASHION_HINT: &str =
    "install Debian's package with `apt-get install dataset-fashion-mnist` \
     (scripts/setup.sh does), or give --data a directory holding the four Fashion-MNIST IDX files";

/// One MNIST file: its base name and the SHA-256 of its decompressed IDX bytes.
struct Expected {
    stem: &'static str,
    kind: &'static str,
    sha256: &'static str,
}

/// A data set whose four files are pinned by checksum: its name and how to get it.
pub(crate) struct Pinned {
    pub(crate) name: &'static str,
    files: [Expected; 4],
    pub(crate) hint: &'static str,
}

/// The original MNIST (LeCun, Cortes & Burges).
pub(crate) const MNIST: Pinned = Pinned {
    name: "MNIST",
    files: [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS],
    hint: FETCH_HINT,
};

/// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), as Debian's `dataset-fashion-mnist`
/// installs it: SHA-256 of the decompressed IDX files (Debian recompressed the archives, so
/// the content is pinned, not the .gz).
pub(crate) const FASHION_MNIST: Pinned = Pinned {
    name: "Fashion-MNIST",
    files: [
        Expected {
            stem: "train-images",
            kind: "idx3-ubyte",
            sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        },
        Expected {
            stem: "train-labels",
            kind: "idx1-ubyte",
            sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
        Expected {
            stem: "t10k-images",
            kind: "idx3-ubyte",
            sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
        Expected {
            stem: "t10k-labels",
            kind: "idx1-ubyte",
            sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ],
    hint: FASHION_HINT,
};

/// The four files of any IDX data set (a folder given as --dataset): found under the
/// same names, not pinned.
const ANY_IDX: [Expected; 4] = [
    Expected {
        sha256: "",
        ..TRAIN_IMAGES
    },
    Expected {
        sha256: "",
        ..TRAIN_LABELS
    },
    Expected {
        sha256: "",
        ..TEST_IMAGES
    },
    Expected {
        sha256: "",
        ..TEST_LABELS
    },
];

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
        "{}: IDX file has trailing bytes: expected {expected} bytes but the file has {more}{actual}{note}",
        path.display()
    )]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        actual: u64,
        /// "more than " when the rest was not read to its end (a gzip stream is not
        /// inflated further than needed to know it is too long).
        more: &'static str,
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
    /// A label outside 0..=max.
    #[error("{}: label at index {index} is {value}, expected 0..={max}", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        value: u8,
        max: u8,
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
    /// SHA-256 of the decompressed file differs from the original's.
    #[error(
        "{}: SHA-256 of the decompressed data is {actual}, expected {expected}: \
         the file is corrupt or not the original {set} {name}",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        set: &'static str,
        name: String,
        expected: String,
        actual: String,
    },
    /// One of the four files of a data set is not in its directory.
    #[error(
        "{set} file {name} not found in {}: tried {}; {hint}",
        dir.display(),
        tried.join(", ")
    )]
    MissingFile {
        dir: PathBuf,
        set: &'static str,
        name: String,
        tried: Vec<String>,
        hint: &'static str,
    },
    /// A data directory given explicitly (or by APICAL_DATA) does not exist.
    #[error("data directory {} (from {source_name}) does not exist or is not a directory; {FETCH_HINT}", path.display())]
    DirNotFound {
        path: PathBuf,
        source_name: &'static str,
    },
    /// A named data set is not installed in any of its places.
    #[error("data set {name} not found; tried {}; {hint}", list_paths(tried))]
    NotInstalled {
        name: &'static str,
        tried: Vec<PathBuf>,
        hint: &'static str,
    },
    /// `--dataset PATH` names neither a folder nor a file.
    #[error(
        "data set {}: no such folder or file; --dataset takes mnist, fashion-mnist, a folder of IDX files or a .npz file",
        path.display()
    )]
    NoSuchDataSet { path: PathBuf },
    /// An array of a data set (a `.npz` member, or one handed over in memory) is not what a
    /// data set holds.
    #[error("{}: array {array} {problem}", path.display())]
    Array {
        path: PathBuf,
        array: String,
        problem: String,
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

/// Bytes read past the end an IDX header promises before a file is called too long (the
/// excess is counted up to this, not inflated to its end).
const TRAILING_PROBE: u64 = 1 << 20;

/// What a header must say before the body is read (the expected shape of an MNIST file),
/// checked on the header's dimensions.
type HeaderCheck<'a> = &'a dyn Fn(&[u32]) -> Result<(), DataError>;

/// An IDX file's header fields and body (the bytes after the header).
struct Idx {
    dims: Vec<u32>,
    body: Vec<u8>,
}

/// The kind of IDX file expected: its magic number and header length.
#[derive(Clone, Copy)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Images => IDX_IMAGES_MAGIC,
            Kind::Labels => IDX_LABELS_MAGIC,
        }
    }
    fn header(self) -> usize {
        match self {
            Kind::Images => IMAGES_HEADER,
            Kind::Labels => LABELS_HEADER,
        }
    }
}

/// A stream of IDX bytes: `src` (already decompressed when `gz`), `raw_len` its length when
/// known (a raw regular file or a slice).
struct Source<'a> {
    src: Box<dyn Read + 'a>,
    raw_len: Option<u64>,
    gz: bool,
}

impl<'a> Source<'a> {
    /// A byte slice, gunzipped as it is read if it starts with the gzip magic.
    fn slice(bytes: &'a [u8]) -> Self {
        if bytes.starts_with(&GZIP_MAGIC) {
            Source {
                src: Box::new(MultiGzDecoder::new(bytes)),
                raw_len: None,
                gz: true,
            }
        } else {
            Source {
                src: Box::new(bytes),
                raw_len: Some(bytes.len() as u64),
                gz: false,
            }
        }
    }

    /// A file, gunzipped as it is read if it starts with the gzip magic; the length of a
    /// raw regular file is known from its metadata (a device or a pipe has none).
    fn file(path: &Path) -> Result<Self, DataError> {
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let mut start = Vec::with_capacity(2);
        (&mut file).take(2).read_to_end(&mut start).map_err(io)?;
        let gz = start == GZIP_MAGIC;
        let stream = std::io::Cursor::new(start).chain(file);
        Ok(if gz {
            Source {
                src: Box::new(MultiGzDecoder::new(std::io::BufReader::new(stream))),
                raw_len: None,
                gz: true,
            }
        } else {
            Source {
                src: Box::new(stream),
                raw_len: meta.is_file().then_some(meta.len()),
                gz: false,
            }
        })
    }
}

/// Reads one IDX file from `s` without reading past what its header promises: the header
/// first (magic number, dimensions), then its length against the file's (raw files) and
/// `check`, then exactly the body, then at most [`TRAILING_PROBE`] bytes more to tell a
/// file that is too long. With `head_out`, the header's bytes are copied there (the
/// checksum covers them and the body).
fn read_idx(
    mut s: Source<'_>,
    origin: &Path,
    kind: Kind,
    check: HeaderCheck<'_>,
    head_out: Option<&mut Vec<u8>>,
) -> Result<Idx, DataError> {
    let gz = s.gz;
    let read_err = |source: std::io::Error| {
        if gz {
            DataError::Gzip {
                path: origin.to_path_buf(),
                source,
            }
        } else {
            DataError::Io {
                path: origin.to_path_buf(),
                source,
            }
        }
    };
    let header = kind.header();
    let mut head = Vec::with_capacity(header);
    (&mut s.src)
        .take(header as u64)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let actual = s.raw_len.unwrap_or(head.len() as u64);
    check_header(&head, actual, origin, gz, kind.magic(), header)?;
    let dims: Vec<u32> = (4..header).step_by(4).map(|at| be_u32(&head, at)).collect();
    let expected = check_length(s.raw_len, origin, gz, header, &dims)?;
    check(&dims)?;
    let body_len = expected - header as u64;
    if body_len > MAX_IDX_BYTES {
        return Err(DataError::TooLarge {
            path: origin.to_path_buf(),
            limit: MAX_IDX_BYTES,
        });
    }
    let mut body = Vec::new();
    if s.raw_len.is_some() {
        // The file holds the whole body (checked above): reserve it at once, fallibly.
        body.try_reserve_exact(body_len as usize).map_err(|_| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot allocate {body_len} bytes"),
            ))
        })?;
    }
    (&mut s.src)
        .take(body_len)
        .read_to_end(&mut body)
        .map_err(read_err)?;
    if (body.len() as u64) < body_len {
        return Err(DataError::Truncated {
            path: origin.to_path_buf(),
            what: format!(
                "a {header}-byte header plus {} data bytes",
                dims_text(&dims)
            ),
            expected,
            actual: header as u64 + body.len() as u64,
            note: note(gz),
        });
    }
    if s.raw_len.is_none() {
        // A stream of unknown length (gzip, a device): it must end here. Reading to its
        // end also checks a gzip member's CRC.
        let extra = std::io::copy(&mut (&mut s.src).take(TRAILING_PROBE), &mut std::io::sink())
            .map_err(read_err)?;
        if extra > 0 {
            return Err(DataError::TrailingBytes {
                path: origin.to_path_buf(),
                expected,
                actual: expected + extra,
                more: if extra == TRAILING_PROBE {
                    "more than "
                } else {
                    ""
                },
                note: note(gz),
            });
        }
    }
    if let Some(h) = head_out {
        h.clone_from(&head);
    }
    Ok(Idx { dims, body })
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

/// Checks the magic number and header length; `head` is the (decompressed) header as far
/// as the file has one, `actual` the file's length when known (else `head`'s).
fn check_header(
    head: &[u8],
    actual: u64,
    origin: &Path,
    gz: bool,
    expected: u32,
    header: usize,
) -> Result<(), DataError> {
    let truncated_header = || DataError::Truncated {
        path: origin.to_path_buf(),
        what: "the IDX header".to_string(),
        expected: header as u64,
        actual,
        note: note(gz),
    };
    if head.len() < 4 {
        return Err(truncated_header());
    }
    let found = be_u32(head, 0);
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
    if head.len() < header {
        return Err(truncated_header());
    }
    Ok(())
}

fn dims_text(dims: &[u32]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" x ")
}

/// The length `header + prod(dims)` a raw IDX file must have, checked against the file's
/// length `actual` when it is known.
fn check_length(
    actual: Option<u64>,
    origin: &Path,
    gz: bool,
    header: usize,
    dims: &[u32],
) -> Result<u64, DataError> {
    if dims.contains(&0) {
        return Err(DataError::ZeroDimension {
            path: origin.to_path_buf(),
            dims: dims_text(dims),
        });
    }
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .and_then(|body| body.checked_add(header as u64));
    let Some(expected) = expected else {
        return Err(DataError::HeaderOverflow {
            path: origin.to_path_buf(),
            dims: dims_text(dims),
            actual: actual.unwrap_or(header as u64),
        });
    };
    match actual {
        Some(actual) if actual < expected => Err(DataError::Truncated {
            path: origin.to_path_buf(),
            what: format!("a {header}-byte header plus {} data bytes", dims_text(dims)),
            expected,
            actual,
            note: note(gz),
        }),
        Some(actual) if actual > expected => Err(DataError::TrailingBytes {
            path: origin.to_path_buf(),
            expected,
            actual,
            more: "",
            note: note(gz),
        }),
        _ => Ok(expected),
    }
}

fn no_check(_: &[u32]) -> Result<(), DataError> {
    Ok(())
}

fn images_from(
    s: Source<'_>,
    origin: &Path,
    check: HeaderCheck<'_>,
    head_out: Option<&mut Vec<u8>>,
) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let idx = read_idx(s, origin, Kind::Images, check, head_out)?;
    let [n, rows, cols] = [idx.dims[0], idx.dims[1], idx.dims[2]].map(|d| d as usize);
    Ok((idx.body, n, rows, cols))
}

fn labels_from(
    s: Source<'_>,
    origin: &Path,
    check: HeaderCheck<'_>,
    head_out: Option<&mut Vec<u8>>,
) -> Result<Vec<u8>, DataError> {
    labels_upto(s, origin, check, head_out, MNIST_MAX_LABEL)
}

/// The largest label of MNIST and Fashion-MNIST (ten classes).
const MNIST_MAX_LABEL: u8 = 9;

fn labels_upto(
    s: Source<'_>,
    origin: &Path,
    check: HeaderCheck<'_>,
    head_out: Option<&mut Vec<u8>>,
    max: u8,
) -> Result<Vec<u8>, DataError> {
    let labels = read_idx(s, origin, Kind::Labels, check, head_out)?.body;
    if let Some((index, &value)) = labels.iter().enumerate().find(|(_, &v)| v > max) {
        return Err(DataError::BadLabel {
            path: origin.to_path_buf(),
            index,
            value,
            max,
        });
    }
    Ok(labels)
}

/// Parses an IDX images file (raw or gzip'd) into `(pixels, n, rows, cols)`.
/// `origin` is used only in error messages.
pub fn parse_idx_images(
    bytes: &[u8],
    origin: &Path,
) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    images_from(Source::slice(bytes), origin, &no_check, None)
}

/// Parses an IDX labels file (raw or gzip'd); every label must be in 0..=9.
/// `origin` is used only in error messages.
pub fn parse_idx_labels(bytes: &[u8], origin: &Path) -> Result<Vec<u8>, DataError> {
    labels_from(Source::slice(bytes), origin, &no_check, None)
}

/// Reads an IDX images file (raw or gzip'd) into `(pixels, n, rows, cols)`, never reading
/// (or inflating) more than its header promises.
pub fn read_idx_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    images_from(Source::file(path)?, path, &no_check, None)
}

/// Reads an IDX labels file (raw or gzip'd); every label must be in 0..=9.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    labels_from(Source::file(path)?, path, &no_check, None)
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

/// Finds the file for `expected` of `set` in `dir` under any accepted name.
fn locate(dir: &Path, expected: &Expected, set: &Pinned) -> Result<PathBuf, DataError> {
    let tried = expected.candidates();
    for name in &tried {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        set: set.name,
        name: format!("{}-{}", expected.stem, expected.kind),
        tried: tried.to_vec(),
        hint: set.hint,
    })
}

/// Compares a file's SHA-256 (of its decompressed bytes: `head` and `body`) with the
/// original's, unless the verify cache knows the file as it is now with that digest and
/// the content's CRC-32 ([`crate::io::verify_cache`]): hashed once per file identity.
fn verify(
    path: &Path,
    set: &'static str,
    expected: &Expected,
    cache: &VerifyCache,
    head: &[u8],
    body: &[u8],
) -> Result<(), DataError> {
    let crc = VerifyCache::crc32(&[head, body]);
    if cache.is_recorded_crc(path, expected.sha256, crc) {
        return Ok(());
    }
    let mut hasher = Sha256::new();
    hasher.update(head);
    hasher.update(body);
    let mut actual = String::with_capacity(64);
    for b in hasher.finalize() {
        let _ = write!(actual, "{b:02x}");
    }
    if actual != expected.sha256 {
        return Err(DataError::Checksum {
            path: path.to_path_buf(),
            set,
            name: format!("{}-{}", expected.stem, expected.kind),
            expected: expected.sha256.to_string(),
            actual,
        });
    }
    cache.remember_crc(path, expected.sha256, crc);
    Ok(())
}

fn load_pinned_set(
    dir: &Path,
    set: &Pinned,
    (images, labels): (&Expected, &Expected),
    n: usize,
    verify_checksums: bool,
) -> Result<MnistSet, DataError> {
    let images_path = locate(dir, images, set)?;
    let labels_path = locate(dir, labels, set)?;
    // The shape is checked on the header, before the body is read.
    let shape = |dims: &[u32]| {
        let found: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        if found != [n, IMAGE_SIDE, IMAGE_SIDE] {
            return Err(DataError::UnexpectedShape {
                path: images_path.clone(),
                expected: format!("{n} images of {IMAGE_SIDE}x{IMAGE_SIDE}"),
                found: format!("{} images of {}x{}", found[0], found[1], found[2]),
            });
        }
        Ok(())
    };
    let cache = VerifyCache::user();
    let mut head = Vec::new();
    let parsed = images_from(
        Source::file(&images_path)?,
        &images_path,
        &shape,
        Some(&mut head),
    )?;
    if verify_checksums {
        verify(&images_path, set.name, images, &cache, &head, &parsed.0)?;
    }
    let count = |dims: &[u32]| {
        if dims[0] as usize != n {
            return Err(DataError::CountMismatch {
                images_path: images_path.clone(),
                images: n,
                labels_path: labels_path.clone(),
                labels: dims[0] as usize,
            });
        }
        Ok(())
    };
    let mut head = Vec::new();
    let label_vec = labels_from(
        Source::file(&labels_path)?,
        &labels_path,
        &count,
        Some(&mut head),
    )?;
    if verify_checksums {
        verify(&labels_path, set.name, labels, &cache, &head, &label_vec)?;
    }
    assemble(parsed, &images_path, label_vec, &labels_path)
}

/// Loads a pinned data set of MNIST's shape (60000 training and 10000 test images of 28x28,
/// labels 0..=9) from `dir`; with `verify`, checks each file's decompressed SHA-256.
pub(crate) fn load_pinned(
    dir: &Path,
    set: &Pinned,
    verify_checksums: bool,
) -> Result<Mnist, DataError> {
    let [ti, tl, ei, el] = &set.files;
    // Locate all four first so a missing file is reported before any slow reading.
    for e in &set.files {
        locate(dir, e, set)?;
    }
    let train = load_pinned_set(dir, set, (ti, tl), TRAIN_LEN, verify_checksums)?;
    let test = load_pinned_set(dir, set, (ei, el), TEST_LEN, verify_checksums)?;
    Ok(Mnist { train, test })
}

/// Loads MNIST from `dir`, accepting `NAME.gz`, `NAME` or the dotted `train-images.idx3-ubyte`
/// form for each file. With `verify`, checks each file's decompressed SHA-256 against the
/// originals. Requires 60000 training and 10000 test images of 28x28.
pub fn load_mnist(dir: &Path, verify_checksums: bool) -> Result<Mnist, DataError> {
    load_pinned(dir, &MNIST, verify_checksums)
}

/// Loads any IDX data set from `dir` (the four files under MNIST's names, raw or .gz): any
/// image size and count, labels 0..=`max_label`; train and test images of one size.
pub(crate) fn load_idx_dir(dir: &Path, max_label: u8) -> Result<Mnist, DataError> {
    let set = Pinned {
        name: "IDX",
        files: ANY_IDX,
        hint: "a data set folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, \
               t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz)",
    };
    let mut paths = Vec::with_capacity(4);
    for e in &set.files {
        paths.push(locate(dir, e, &set)?);
    }
    let one = |images: &Path, labels: &Path| -> Result<MnistSet, DataError> {
        let parsed = images_from(Source::file(images)?, images, &no_check, None)?;
        let l = labels_upto(Source::file(labels)?, labels, &no_check, None, max_label)?;
        assemble(parsed, images, l, labels)
    };
    let train = one(&paths[0], &paths[1])?;
    let test = one(&paths[2], &paths[3])?;
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(DataError::UnexpectedShape {
            path: paths[2].clone(),
            expected: format!(
                "images of {}x{} as in {}",
                train.rows,
                train.cols,
                paths[0].display()
            ),
            found: format!("{}x{}", test.rows, test.cols),
        });
    }
    Ok(Mnist { train, test })
}

/// `$APICAL_DATA` when set and not empty.
pub fn data_env() -> Option<PathBuf> {
    std::env::var_os(DATA_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
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
    if let Some(dir) = data_env() {
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
