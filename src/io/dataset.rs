//! Data sets by name or by file: MNIST and Fashion-MNIST (pinned by checksum), a folder of
//! IDX files, a `.npz` archive, or arrays handed over in memory (the Python package), all
//! checked the same way and held as [`Mnist`] (images of `n_in` bytes 0-255, labels
//! 0..classes-1). Every set carries its name and a digest of its content, which a run
//! records and a resumed run or an evaluation compares.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::io::mnist::{self, DataError, Mnist, MnistSet, FASHION_MNIST, MNIST};
use sha2::{Digest, Sha256};

pub use crate::model::config::MAX_CLASSES;
/// Largest array read from a `.npz` (decompressed bytes), checked before allocating.
pub const MAX_ARRAY_BYTES: u64 = 1 << 32;
/// Largest `.npy` header read.
const MAX_NPY_HEADER: usize = 1 << 16;

/// Where a data set comes from: a name or a path (`--dataset NAME|PATH`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DataSpec {
    /// MNIST, found as `--data`, `APICAL_DATA` or the usual folders say.
    #[default]
    Mnist,
    /// Fashion-MNIST: `--data`, else `data/fashion-mnist`, else Debian's
    /// `/usr/share/datasets/fashion-mnist`.
    FashionMnist,
    /// A folder of IDX files or a `.npz` archive.
    Path(PathBuf),
}

impl DataSpec {
    /// `mnist`, `fashion-mnist`, or anything else as a path.
    pub fn parse(s: &str) -> Self {
        match s {
            "mnist" => DataSpec::Mnist,
            "fashion-mnist" => DataSpec::FashionMnist,
            p => DataSpec::Path(PathBuf::from(p)),
        }
    }

    /// The name a run records: `mnist`, `fashion-mnist`, or the path (absolute when it
    /// can be made so).
    pub fn label(&self) -> String {
        match self {
            DataSpec::Mnist => "mnist".into(),
            DataSpec::FashionMnist => "fashion-mnist".into(),
            DataSpec::Path(p) => std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
        }
    }
}

impl std::fmt::Display for DataSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSpec::Mnist => f.write_str("mnist"),
            DataSpec::FashionMnist => f.write_str("fashion-mnist"),
            DataSpec::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A loaded data set with its identity.
#[derive(Clone, Debug)]
pub struct DataSet {
    pub data: Mnist,
    /// What a run records as the data's name ([`DataSpec::label`], or `arrays` for data
    /// handed over in memory).
    pub name: String,
    /// The folder or file the data was read from (`None`: in memory).
    pub source: Option<PathBuf>,
    /// [`content_digest`] of `data`.
    pub sha256: String,
}

impl DataSet {
    /// Wraps data already checked ([`check_sets`]) with its name and digest.
    pub fn new(data: Mnist, name: String, source: Option<PathBuf>) -> Self {
        let sha256 = content_digest(&data);
        DataSet {
            data,
            name,
            source,
            sha256,
        }
    }

    /// Inputs per example.
    pub fn n_in(&self) -> usize {
        self.data.train.rows * self.data.train.cols
    }

    /// Number of classes: the largest label plus one.
    pub fn classes(&self) -> usize {
        classes(&self.data)
    }
}

/// Number of classes of `data`: its largest label plus one.
pub fn classes(data: &Mnist) -> usize {
    let max = |s: &MnistSet| s.labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    max(&data.train).max(max(&data.test))
}

/// SHA-256 (hex) of a data set's content: for the training then the test set, the number
/// of examples and inputs per example (u64 little-endian), the image bytes and the labels.
/// The same content gives the same digest whatever file it came from (IDX or `.npz`).
pub fn content_digest(data: &Mnist) -> String {
    let mut h = Sha256::new();
    for s in [&data.train, &data.test] {
        h.update((s.len() as u64).to_le_bytes());
        h.update(((s.rows * s.cols) as u64).to_le_bytes());
        h.update(&s.images);
        h.update(&s.labels);
    }
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Fashion-MNIST's folders, in order: `data/fashion-mnist`, then Debian's.
fn fashion_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("data/fashion-mnist"),
        PathBuf::from("/usr/share/datasets/fashion-mnist"),
    ]
}

/// Loads the data set `spec` names. `dir` (`--data`) is the folder of a named set's files
/// (default: as [`mnist::find_data_dir`] says for MNIST; `data/fashion-mnist`, then
/// `/usr/share/datasets/fashion-mnist` for Fashion-MNIST); `verify` checks a named set's
/// files against their pinned SHA-256.
pub fn load(spec: &DataSpec, dir: Option<&Path>, verify: bool) -> Result<DataSet, DataError> {
    match spec {
        DataSpec::Mnist => {
            let dir = mnist::find_data_dir(dir)?;
            let data = mnist::load_pinned(&dir, &MNIST, verify)?;
            Ok(DataSet::new(data, spec.label(), Some(abs(&dir))))
        }
        DataSpec::FashionMnist => {
            let dir = match dir {
                Some(d) => d.to_path_buf(),
                None => fashion_dirs()
                    .into_iter()
                    .find(|d| d.is_dir())
                    .ok_or_else(|| DataError::NotInstalled {
                        name: "fashion-mnist",
                        tried: fashion_dirs(),
                        hint: mnist::FASHION_HINT,
                    })?,
            };
            if !dir.is_dir() {
                return Err(DataError::DirNotFound {
                    path: dir,
                    source_name: "--data",
                });
            }
            let data = mnist::load_pinned(&dir, &FASHION_MNIST, verify)?;
            Ok(DataSet::new(data, spec.label(), Some(abs(&dir))))
        }
        DataSpec::Path(p) => {
            let data = if p.is_dir() {
                let data = mnist::load_idx_dir(p, (MAX_CLASSES - 1) as u8)?;
                check_sets(&data, p)?;
                data
            } else if p.is_file() {
                load_npz(p)?
            } else {
                return Err(DataError::NoSuchDataSet { path: p.clone() });
            };
            Ok(DataSet::new(data, spec.label(), Some(abs(p))))
        }
    }
}

fn abs(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Checks what every data set must be: non-empty sets, one input length in both.
pub fn check_sets(data: &Mnist, origin: &Path) -> Result<(), DataError> {
    let bad = |array: &str, problem: String| DataError::Array {
        path: origin.to_path_buf(),
        array: array.to_string(),
        problem,
    };
    if data.train.is_empty() {
        return Err(bad("x_train", "holds no examples".into()));
    }
    if data.test.is_empty() {
        return Err(bad("x_test", "holds no examples".into()));
    }
    let (a, b) = (
        data.train.rows * data.train.cols,
        data.test.rows * data.test.cols,
    );
    if a != b {
        return Err(bad(
            "x_test",
            format!("has {b} inputs per example but x_train has {a}"),
        ));
    }
    Ok(())
}

/// Images as handed over: bytes 0-255, or floats 0-1 (turned into bytes as `round(255 x)`,
/// the resolution of the input's rates; MNIST as `x / 255` gives its bytes back exactly).
pub enum Pixels {
    U8(Vec<u8>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Pixels {
    fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::F32(v) => v.len(),
            Pixels::F64(v) => v.len(),
        }
    }
}

/// One array of images: `shape[0]` examples of `shape[1..]` inputs.
pub struct ImageArray {
    pub shape: Vec<usize>,
    pub pixels: Pixels,
}

/// Checks one images array and one labels array (`xname`, `yname` in messages) and makes
/// them a set: 2-D or 3-D images (3-D keep their rows and columns for plots), as many
/// labels as images, labels 0..[`MAX_CLASSES`], pixels 0-255 or finite floats 0-1.
pub fn set_from_arrays(
    origin: &Path,
    (xname, x): (&str, ImageArray),
    (yname, y): (&str, &[i64]),
) -> Result<MnistSet, DataError> {
    let bad = |array: &str, problem: String| DataError::Array {
        path: origin.to_path_buf(),
        array: array.to_string(),
        problem,
    };
    let (n, rows, cols) = match x.shape.as_slice() {
        [n, d] => (*n, 1, *d),
        [n, r, c] => (*n, *r, *c),
        s => {
            return Err(bad(
                xname,
                format!(
                    "has shape {s:?}; expected (examples, inputs) or (examples, rows, columns)"
                ),
            ))
        }
    };
    let per = rows
        .checked_mul(cols)
        .filter(|&p| p > 0)
        .ok_or_else(|| bad(xname, format!("has shape {:?}: no inputs", x.shape)))?;
    if n == 0 {
        return Err(bad(xname, "holds no examples".into()));
    }
    if n.checked_mul(per) != Some(x.pixels.len()) {
        return Err(bad(
            xname,
            format!(
                "has {} values, not the {n} x {per} its shape says",
                x.pixels.len()
            ),
        ));
    }
    if y.len() != n {
        return Err(bad(
            yname,
            format!("has {} labels but {xname} has {n} examples", y.len()),
        ));
    }
    if let Some((i, &v)) = y
        .iter()
        .enumerate()
        .find(|(_, &v)| !(0..MAX_CLASSES as i64).contains(&v))
    {
        return Err(bad(
            yname,
            format!(
                "label at index {i} is {v}; labels are class numbers 0..{}",
                MAX_CLASSES - 1
            ),
        ));
    }
    let images = match x.pixels {
        Pixels::U8(v) => v,
        Pixels::F32(v) => floats_to_bytes(v.iter().map(|&f| f as f64), xname, &bad)?,
        Pixels::F64(v) => floats_to_bytes(v.iter().copied(), xname, &bad)?,
    };
    Ok(MnistSet {
        images,
        labels: y.iter().map(|&v| v as u8).collect(),
        rows,
        cols,
    })
}

fn floats_to_bytes(
    v: impl ExactSizeIterator<Item = f64>,
    name: &str,
    bad: &dyn Fn(&str, String) -> DataError,
) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::with_capacity(v.len());
    for (i, f) in v.enumerate() {
        if !f.is_finite() {
            return Err(bad(name, format!("value at flat index {i} is {f}")));
        }
        if !(0.0..=1.0).contains(&f) {
            return Err(bad(
                name,
                format!(
                    "value at flat index {i} is {f}; float images must lie in 0..1 (bytes: 0..255)"
                ),
            ));
        }
        out.push((f * 255.0).round() as u8);
    }
    Ok(out)
}

/// Builds a data set from four arrays (as a `.npz` holds them), checked as
/// [`set_from_arrays`] and [`check_sets`] say.
pub fn from_arrays(
    origin: &Path,
    x_train: ImageArray,
    y_train: &[i64],
    x_test: ImageArray,
    y_test: &[i64],
) -> Result<Mnist, DataError> {
    let train = set_from_arrays(origin, ("x_train", x_train), ("y_train", y_train))?;
    let test = set_from_arrays(origin, ("x_test", x_test), ("y_test", y_test))?;
    let data = Mnist { train, test };
    check_sets(&data, origin)?;
    Ok(data)
}

/// Loads a `.npz` archive holding `x_train`, `y_train`, `x_test` and `y_test`.
pub fn load_npz(path: &Path) -> Result<Mnist, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut zip =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| DataError::Array {
            path: path.to_path_buf(),
            array: "(archive)".into(),
            problem: format!("not a readable .npz (zip) archive: {e}"),
        })?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let mut get = |key: &str| -> Result<Npy, DataError> {
        let entry = format!("{key}.npy");
        if !names.contains(&entry) {
            let mut found: Vec<&str> = names
                .iter()
                .map(|n| n.strip_suffix(".npy").unwrap_or(n))
                .collect();
            found.sort_unstable();
            return Err(DataError::Array {
                path: path.to_path_buf(),
                array: key.into(),
                problem: format!(
                    "not in the archive, which holds [{}]; a data set .npz holds x_train, y_train, x_test and y_test",
                    found.join(", ")
                ),
            });
        }
        let f = zip.by_name(&entry).map_err(|e| DataError::Array {
            path: path.to_path_buf(),
            array: key.into(),
            problem: format!("cannot be read: {e}"),
        })?;
        let declared = f.size();
        read_npy(f, declared, path, key)
    };
    let xt = get("x_train")?;
    let yt = get("y_train")?;
    let xe = get("x_test")?;
    let ye = get("y_test")?;
    let yt = yt.labels(path, "y_train")?;
    let ye = ye.labels(path, "y_test")?;
    from_arrays(
        path,
        xt.images(path, "x_train")?,
        &yt,
        xe.images(path, "x_test")?,
        &ye,
    )
}

/// A `.npy` array's element type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    U8,
    I8,
    /// Integer of this many bytes, signed or not, big-endian or not.
    Int {
        bytes: usize,
        signed: bool,
        big: bool,
    },
    Float {
        bytes: usize,
        big: bool,
    },
    Bool,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        let (order, rest) = descr.split_at(1.min(descr.len()));
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        Some(match rest {
            "u1" => Dtype::U8,
            "i1" => Dtype::I8,
            "b1" => Dtype::Bool,
            "i2" | "i4" | "i8" | "u2" | "u4" | "u8" => Dtype::Int {
                bytes: rest[1..].parse().ok()?,
                signed: rest.starts_with('i'),
                big,
            },
            "f4" | "f8" => Dtype::Float {
                bytes: rest[1..].parse().ok()?,
                big,
            },
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 | Dtype::Bool => 1,
            Dtype::Int { bytes, .. } | Dtype::Float { bytes, .. } => bytes,
        }
    }
}

/// One array of a `.npz`: its dtype text, type, shape and raw bytes.
#[derive(Debug)]
struct Npy {
    descr: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Npy {
    fn images(self, path: &Path, key: &str) -> Result<ImageArray, DataError> {
        let pixels = match self.dtype {
            Dtype::U8 => Pixels::U8(self.data),
            Dtype::Float { bytes: 4, big } => Pixels::F32(
                self.data
                    .chunks_exact(4)
                    .map(|c| {
                        let b = c.try_into().expect("4 bytes");
                        if big {
                            f32::from_be_bytes(b)
                        } else {
                            f32::from_le_bytes(b)
                        }
                    })
                    .collect(),
            ),
            Dtype::Float { big, .. } => Pixels::F64(
                self.data
                    .chunks_exact(8)
                    .map(|c| {
                        let b = c.try_into().expect("8 bytes");
                        if big {
                            f64::from_be_bytes(b)
                        } else {
                            f64::from_le_bytes(b)
                        }
                    })
                    .collect(),
            ),
            _ => {
                return Err(DataError::Array {
                    path: path.to_path_buf(),
                    array: key.into(),
                    problem: format!(
                        "has dtype {}; images are uint8 (0-255) or float32/float64 (0-1)",
                        self.descr
                    ),
                })
            }
        };
        Ok(ImageArray {
            shape: self.shape,
            pixels,
        })
    }

    fn labels(&self, path: &Path, key: &str) -> Result<Vec<i64>, DataError> {
        let bad = |problem: String| DataError::Array {
            path: path.to_path_buf(),
            array: key.into(),
            problem,
        };
        if self.shape.len() != 1 {
            return Err(bad(format!(
                "has shape {:?}; labels are one integer per example (a 1-D array)",
                self.shape
            )));
        }
        match self.dtype {
            Dtype::U8 => Ok(self.data.iter().map(|&b| i64::from(b)).collect()),
            Dtype::I8 => Ok(self.data.iter().map(|&b| i64::from(b as i8)).collect()),
            Dtype::Int { bytes, signed, big } => Ok(self
                .data
                .chunks_exact(bytes)
                .map(|c| {
                    let mut b = [0u8; 8];
                    if big {
                        b[8 - bytes..].copy_from_slice(c);
                        b.reverse();
                    } else {
                        b[..bytes].copy_from_slice(c);
                    }
                    let u = u64::from_le_bytes(b);
                    if signed {
                        // Sign-extend from `bytes` bytes.
                        let shift = 64 - 8 * bytes as u32;
                        ((u << shift) as i64) >> shift
                    } else {
                        // Values past i64's range are out of any label range anyway.
                        i64::try_from(u).unwrap_or(i64::MAX)
                    }
                })
                .collect()),
            _ => Err(bad(format!(
                "has dtype {}; labels are integers (class numbers 0..n-1)",
                self.descr
            ))),
        }
    }
}

/// Reads one `.npy` stream of `declared` bytes (the zip entry's uncompressed size): the
/// header first, its shape's size checked against the limit and the entry before the data
/// is allocated.
fn read_npy(mut r: impl Read, declared: u64, path: &Path, key: &str) -> Result<Npy, DataError> {
    let bad = |problem: String| DataError::Array {
        path: path.to_path_buf(),
        array: key.into(),
        problem,
    };
    let read_err = |e: std::io::Error| bad(format!("cannot be read: {e}"));
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| bad("is not a .npy array (shorter than its magic number)".into()))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad(
            "is not a .npy array (no \\x93NUMPY magic number)".into()
        ));
    }
    let (hlen, pre_len) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(read_err)?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(read_err)?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(bad(format!("has .npy format version {v}; 1 to 3 are read"))),
    };
    if hlen > MAX_NPY_HEADER {
        return Err(bad(format!(
            "has a {hlen}-byte .npy header; at most {MAX_NPY_HEADER} are read"
        )));
    }
    let mut header = vec![0u8; hlen];
    r.read_exact(&mut header)
        .map_err(|_| bad("is truncated inside its .npy header".into()))?;
    let header = String::from_utf8_lossy(&header).into_owned();
    let descr = dict_value(&header, "descr")
        .and_then(|v| v.strip_prefix('\'').and_then(|v| v.split('\'').next()))
        .ok_or_else(|| bad(format!("has no readable dtype in its header {header:?}")))?
        .to_string();
    let dtype = Dtype::parse(&descr).ok_or_else(|| {
        bad(format!(
            "has dtype {descr}; images are uint8 or float32/float64, labels integers"
        ))
    })?;
    if dict_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad(
            "is stored in Fortran order; save it C-ordered (numpy.ascontiguousarray)".into(),
        ));
    }
    let shape_text = dict_value(&header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad(format!("has no readable shape in its header {header:?}")))?;
    let mut shape = Vec::new();
    for part in shape_text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        shape.push(
            part.parse::<usize>()
                .map_err(|_| bad(format!("has an unreadable shape ({shape_text})")))?,
        );
    }
    let bytes = shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&b| b <= MAX_ARRAY_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "has shape {shape:?} of {descr}: more than the {MAX_ARRAY_BYTES} bytes an array may hold"
            ))
        })?;
    let body = declared.saturating_sub((pre_len + hlen) as u64);
    if body != bytes {
        return Err(bad(format!(
            "holds {body} bytes of data but its shape {shape:?} of {descr} needs {bytes}"
        )));
    }
    let mut data = Vec::new();
    data.try_reserve_exact(bytes as usize).map_err(|_| {
        bad(format!(
            "needs {bytes} bytes of memory, which are not available"
        ))
    })?;
    r.take(bytes).read_to_end(&mut data).map_err(read_err)?;
    if data.len() as u64 != bytes {
        return Err(bad(format!(
            "is truncated: {} of {bytes} data bytes",
            data.len()
        )));
    }
    Ok(Npy {
        descr,
        dtype,
        shape,
        data,
    })
}

/// The text after `'key':` in a `.npy` header dict, left-trimmed.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = &header[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// Checks `data` against the model's sizes: `network.n_in` inputs and `network.classes`
/// classes (every label below it; the data's largest label plus one equal to it).
pub fn check_model_fits(
    cfg: &crate::model::config::ModelConfig,
    data: &Mnist,
    what: &str,
) -> Result<(), String> {
    let n_in = data.train.rows * data.train.cols;
    if n_in != cfg.network.n_in {
        return Err(format!(
            "the data set {what} has {n_in} inputs per example but the model has network.n_in = {}; set network.n_in = {n_in}",
            cfg.network.n_in
        ));
    }
    let k = classes(data);
    let want = cfg.network.classes;
    if k != want {
        return Err(format!(
            "the data set {what} has {k} classes (labels 0..{}) but the model has network.classes = {want} (network.n_out = {}); set network.classes = {k} and network.n_out to a multiple of it",
            k.saturating_sub(1),
            cfg.network.n_out
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    fn read(bytes: &[u8]) -> Result<Npy, DataError> {
        read_npy(bytes, bytes.len() as u64, Path::new("t.npz"), "x_train")
    }

    #[test]
    fn npy_header_and_dtypes() {
        let a = read(&npy("|u1", "(2, 3)", &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!((a.shape.clone(), a.dtype), (vec![2, 3], Dtype::U8));
        let l = npy(
            "<i8",
            "(2,)",
            &[
                7, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
            ],
        );
        assert_eq!(
            read(&l).unwrap().labels(Path::new("t"), "y").unwrap(),
            vec![7, -1]
        );
        let b = npy(">i2", "(1,)", &[1, 2]);
        assert_eq!(
            read(&b).unwrap().labels(Path::new("t"), "y").unwrap(),
            vec![258]
        );
    }

    #[test]
    fn npy_errors_name_the_array() {
        let e = read(&npy("<c8", "(1,)", &[0; 8])).unwrap_err().to_string();
        assert!(
            e.contains("t.npz") && e.contains("x_train") && e.contains("<c8"),
            "{e}"
        );
        // Absurd shape: refused before any allocation.
        let e = read(&npy("|u1", "(4294967296, 4294967296)", &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the"), "{e}");
        let e = read(&npy("|u1", "(2, 3)", &[1, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds 2 bytes") && e.contains("needs 6"), "{e}");
    }

    #[test]
    fn floats_become_the_bytes_they_scale() {
        let x: Vec<f32> = (0..=255u8).map(|b| b as f32 / 255.0).collect();
        let s = set_from_arrays(
            Path::new("m"),
            (
                "x",
                ImageArray {
                    shape: vec![1, 256],
                    pixels: Pixels::F32(x),
                },
            ),
            ("y", &[0]),
        )
        .unwrap();
        assert_eq!(s.images, (0..=255u8).collect::<Vec<_>>());
        let nan = set_from_arrays(
            Path::new("m"),
            (
                "x",
                ImageArray {
                    shape: vec![1, 2],
                    pixels: Pixels::F64(vec![0.5, f64::NAN]),
                },
            ),
            ("y", &[0]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            nan.contains("x") && nan.contains("flat index 1 is NaN"),
            "{nan}"
        );
    }
}
