//! `apical.Dataset`: a data set by name or file (`Dataset.load`), or numpy arrays of the
//! user's own (`Dataset.from_arrays`), checked by the library exactly as `--dataset` is.

use crate::errors;
use apical::io::dataset::{self, DataSet, DataSpec, ImageArray, Pixels};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded, checked data set: training and test images (bytes 0-255, `n_in` per example)
/// and labels (0..classes-1), with its name and content digest.
#[pyclass(module = "apical", frozen)]
pub struct Dataset {
    pub(crate) set: Arc<DataSet>,
}

/// `x` as the library's images: uint8 as they are, floats (any width) as float64 0-1;
/// anything else is an error naming the array.
pub(crate) fn images_of<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<ImageArray> {
    let np = py.import("numpy")?;
    let a = np.call_method1("asarray", (x,))?;
    let dtype = a.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let size: usize = dtype.getattr("itemsize")?.extract()?;
    let shape: Vec<usize> = a.getattr("shape")?.extract()?;
    let contiguous = |a: Bound<'py, PyAny>, t: &str| -> PyResult<Bound<'py, PyAny>> {
        np.call_method1("ascontiguousarray", (a, t))
    };
    let pixels = match (kind.as_str(), size) {
        ("u", 1) => {
            let a = contiguous(a, "uint8")?;
            let a = a.cast::<PyArrayDyn<u8>>()?;
            Pixels::U8(a.readonly().as_slice()?.to_vec())
        }
        ("f", _) => {
            let a = contiguous(a, "float64")?;
            let a = a.cast::<PyArrayDyn<f64>>()?;
            Pixels::F64(a.readonly().as_slice()?.to_vec())
        }
        _ => {
            return Err(errors::data_problem(
                name,
                format!(
                    "has dtype {}; images are uint8 (0-255) or floats (0-1)",
                    dtype.str()?
                ),
            ))
        }
    };
    Ok(ImageArray { shape, pixels })
}

/// `y` as int64 labels; integer arrays only, one dimension.
fn labels(py: Python<'_>, y: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    let np = py.import("numpy")?;
    let a = np.call_method1("asarray", (y,))?;
    let dtype = a.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let shape: Vec<usize> = a.getattr("shape")?.extract()?;
    if kind != "i" && kind != "u" {
        return Err(errors::data_problem(
            name,
            format!(
                "has dtype {}; labels are integers (class numbers 0..n-1)",
                dtype.str()?
            ),
        ));
    }
    if shape.len() != 1 {
        return Err(errors::data_problem(
            name,
            format!("has shape {shape:?}; labels are one integer per example (a 1-D array)"),
        ));
    }
    // uint64 labels past int64's range are out of any label range: clipped, then refused.
    let a = if kind == "u" && dtype.getattr("itemsize")?.extract::<usize>()? == 8 {
        np.call_method1("minimum", (a, i64::MAX as u64))?
    } else {
        a
    };
    let a = np.call_method1("ascontiguousarray", (a, "int64"))?;
    let a = a.cast::<PyArrayDyn<i64>>()?;
    Ok(a.readonly().as_slice()?.to_vec())
}

/// A named or file data set, loaded once per process (`load` of MNIST takes a second).
pub(crate) fn load_cached(
    py: Python<'_>,
    spec: &DataSpec,
    dir: Option<&Path>,
    verify: bool,
) -> PyResult<Arc<DataSet>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<HashMap<(String, Option<PathBuf>, bool), Arc<DataSet>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (
        spec.label(),
        dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf())),
        verify,
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().expect("cache lock").get(&key) {
        // A file may have changed since: its digest is checked again when it is small.
        return Ok(s.clone());
    }
    let set = py
        .detach(|| dataset::load(spec, dir, verify))
        .map_err(errors::data)?;
    let set = Arc::new(set);
    cache.lock().expect("cache lock").insert(key, set.clone());
    Ok(set)
}

#[pymethods]
impl Dataset {
    /// A data set by name (`"mnist"`, `"fashion-mnist"`) or path (a folder of IDX files,
    /// or a .npz holding x_train, y_train, x_test, y_test), as `--dataset` reads it.
    /// `data` is the folder of a named set's files (default: found as the command line
    /// does); `verify` checks a named set's files against their SHA-256.
    #[staticmethod]
    #[pyo3(signature = (name_or_path, *, data=None, verify=true))]
    fn load(
        py: Python<'_>,
        name_or_path: PathBuf,
        data: Option<PathBuf>,
        verify: bool,
    ) -> PyResult<Self> {
        let text = name_or_path.to_string_lossy().into_owned();
        let spec = DataSpec::parse(&text);
        Ok(Dataset {
            set: load_cached(py, &spec, data.as_deref(), verify)?,
        })
    }

    /// A data set of numpy arrays: images (examples, inputs) or (examples, rows, columns)
    /// as uint8 0-255 or floats 0-1; labels integers 0..n-1. Checked as a .npz is (every
    /// error names the array); floats become bytes as round(255 x). `name` is what a run
    /// records (with the content digest).
    #[staticmethod]
    #[pyo3(signature = (x_train, y_train, x_test, y_test, *, name="arrays"))]
    fn from_arrays(
        py: Python<'_>,
        x_train: &Bound<'_, PyAny>,
        y_train: &Bound<'_, PyAny>,
        x_test: &Bound<'_, PyAny>,
        y_test: &Bound<'_, PyAny>,
        name: &str,
    ) -> PyResult<Self> {
        let xt = images_of(py, x_train, "x_train")?;
        let yt = labels(py, y_train, "y_train")?;
        let xe = images_of(py, x_test, "x_test")?;
        let ye = labels(py, y_test, "y_test")?;
        let origin = PathBuf::from(name);
        let set = py
            .detach(|| {
                dataset::from_arrays(&origin, xt, &yt, xe, &ye)
                    .map(|d| DataSet::new(d, name.to_string(), None))
            })
            .map_err(errors::data)?;
        Ok(Dataset { set: Arc::new(set) })
    }

    /// What a run records: `"mnist"`, `"fashion-mnist"`, the file's path, or the name given
    /// to `from_arrays`.
    #[getter]
    fn name(&self) -> String {
        self.set.name.clone()
    }

    /// SHA-256 of the content (the same for the same images and labels from any file).
    #[getter]
    fn sha256(&self) -> String {
        self.set.sha256.clone()
    }

    /// Inputs per example.
    #[getter]
    fn n_in(&self) -> usize {
        self.set.n_in()
    }

    /// Number of classes (largest label + 1).
    #[getter]
    fn classes(&self) -> usize {
        self.set.classes()
    }

    #[getter]
    fn n_train(&self) -> usize {
        self.set.data.train.len()
    }

    #[getter]
    fn n_test(&self) -> usize {
        self.set.data.test.len()
    }

    /// (rows, columns) of one image (rows 1 for flat inputs).
    #[getter]
    fn image_shape(&self) -> (usize, usize) {
        (self.set.data.train.rows, self.set.data.train.cols)
    }

    /// Training images as a uint8 (examples, n_in) array (a copy).
    #[getter]
    fn x_train<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        flat(py, &self.set.data.train)
    }

    #[getter]
    fn y_train<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.set
            .data
            .train
            .labels
            .clone()
            .into_pyarray(py)
            .into_any()
    }

    #[getter]
    fn x_test<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        flat(py, &self.set.data.test)
    }

    #[getter]
    fn y_test<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.set
            .data
            .test
            .labels
            .clone()
            .into_pyarray(py)
            .into_any()
    }

    fn __repr__(&self) -> String {
        format!(
            "Dataset({:?}, {} train / {} test, {} inputs, {} classes, sha256={}...)",
            self.set.name,
            self.set.data.train.len(),
            self.set.data.test.len(),
            self.set.n_in(),
            self.set.classes(),
            &self.set.sha256[..12]
        )
    }
}

fn flat<'py>(py: Python<'py>, s: &apical::MnistSet) -> PyResult<Bound<'py, PyAny>> {
    let a = ndarray::Array2::from_shape_vec((s.len(), s.rows * s.cols), s.images.clone())
        .map_err(|e| errors::invalid(e.to_string()))?;
    Ok(a.into_pyarray(py).into_any())
}

/// A `data=` / `dataset=` argument: a [`Dataset`], or a name or path.
pub(crate) enum DataArg {
    Loaded(Arc<DataSet>),
    Spec(DataSpec),
}

pub(crate) fn data_arg(v: &Bound<'_, PyAny>) -> PyResult<DataArg> {
    if let Ok(d) = v.cast::<Dataset>() {
        return Ok(DataArg::Loaded(d.get().set.clone()));
    }
    let p: PathBuf = v.extract().map_err(|_| {
        errors::invalid("dataset must be an apical.Dataset, \"mnist\", \"fashion-mnist\" or a path")
    })?;
    Ok(DataArg::Spec(DataSpec::parse(&p.to_string_lossy())))
}
