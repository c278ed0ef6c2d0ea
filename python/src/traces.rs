//! Reading trace files (docs/traces.md) into numpy: the few generic HDF5 reads the
//! pure-Python `apical.Traces` is built on (a dataset, the attributes of an object, the
//! members of a group), with the HDF5 library the traces were written with.

use crate::errors;
use apical::io::record::Sorting;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{File, Location};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

fn h5_err<'a>(path: &'a Path, what: &str) -> impl FnOnce(hdf5::Error) -> PyErr + 'a {
    let what = what.to_string();
    move |e| errors::TraceError::new_err(format!("trace file {}: {what}: {e}", path.display()))
}

fn open(path: &Path) -> PyResult<File> {
    if !path.exists() {
        return Err(errors::TraceError::new_err(format!(
            "{}: no such trace file",
            path.display()
        )));
    }
    apical::io::record::open_traces(path).map_err(|e| errors::TraceError::new_err(e.to_string()))
}

/// A dataset or group the file does not hold, said in words (not HDF5's "component not
/// found").
fn absent(path: &Path, name: &str) -> impl FnOnce(hdf5::Error) -> PyErr {
    let text = format!(
        "trace file {}: holds no {name} (it was not recorded; `apical inspect {}` lists what it holds)",
        path.display(),
        path.display()
    );
    move |_| errors::TraceError::new_err(text)
}

/// A typed array of any dimension, read without conversion and handed over without a copy.
macro_rules! read_as {
    ($py:expr, $ds:expr, $t:ty, $path:expr, $name:expr) => {
        $ds.read_dyn::<$t>()
            .map_err(h5_err($path, $name))
            .map(|a| a.into_pyarray($py).into_any())
    };
}

/// The dataset `name` (e.g. "/spikes/hidden0/timestamps") as a numpy array of its own type.
#[pyfunction]
pub fn _h5_read<'py>(py: Python<'py>, path: PathBuf, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let f = open(&path)?;
    let ds = f.dataset(name).map_err(absent(&path, name))?;
    let td = ds
        .dtype()
        .and_then(|d| d.to_descriptor())
        .map_err(h5_err(&path, name))?;
    let p = path.as_path();
    match td {
        TypeDescriptor::Float(FloatSize::U8) => read_as!(py, ds, f64, p, name),
        TypeDescriptor::Float(_) => read_as!(py, ds, f32, p, name),
        TypeDescriptor::Unsigned(IntSize::U1) => read_as!(py, ds, u8, p, name),
        TypeDescriptor::Unsigned(IntSize::U2) => read_as!(py, ds, u16, p, name),
        TypeDescriptor::Unsigned(IntSize::U4) => read_as!(py, ds, u32, p, name),
        TypeDescriptor::Unsigned(IntSize::U8) => read_as!(py, ds, u64, p, name),
        TypeDescriptor::Integer(IntSize::U1) => read_as!(py, ds, i8, p, name),
        TypeDescriptor::Integer(IntSize::U2) => read_as!(py, ds, i16, p, name),
        TypeDescriptor::Integer(IntSize::U4) => read_as!(py, ds, i32, p, name),
        TypeDescriptor::Integer(IntSize::U8) => read_as!(py, ds, i64, p, name),
        TypeDescriptor::Boolean => read_as!(py, ds, bool, p, name),
        other => Err(errors::TraceError::new_err(format!(
            "trace file {}: {name}: cannot read a dataset of type {other}",
            path.display()
        ))),
    }
}

fn attr_value<'py>(py: Python<'py>, loc: &Location, name: &str) -> hdf5::Result<Bound<'py, PyAny>> {
    let a = loc.attr(name)?;
    let td = a.dtype()?.to_descriptor()?;
    let scalar = a.ndim() == 0;
    Ok(match td {
        TypeDescriptor::VarLenUnicode => a
            .read_scalar::<VarLenUnicode>()?
            .as_str()
            .into_pyobject(py)?
            .into_any(),
        TypeDescriptor::VarLenAscii => a
            .read_scalar::<VarLenAscii>()?
            .as_str()
            .into_pyobject(py)?
            .into_any(),
        TypeDescriptor::Boolean => a
            .read_scalar::<bool>()?
            .into_pyobject(py)?
            .to_owned()
            .into_any(),
        TypeDescriptor::Integer(_) if scalar => {
            a.read_scalar::<i64>()?.into_pyobject(py)?.into_any()
        }
        TypeDescriptor::Unsigned(_) if scalar => {
            a.read_scalar::<u64>()?.into_pyobject(py)?.into_any()
        }
        TypeDescriptor::Float(_) if scalar => a.read_scalar::<f64>()?.into_pyobject(py)?.into_any(),
        TypeDescriptor::Integer(_) => a.read_dyn::<i64>()?.into_pyarray(py).into_any(),
        TypeDescriptor::Unsigned(_) => a.read_dyn::<u64>()?.into_pyarray(py).into_any(),
        TypeDescriptor::Float(_) => a.read_dyn::<f64>()?.into_pyarray(py).into_any(),
        // The SONATA `sorting` enum of spike groups: its member name.
        TypeDescriptor::Enum(_) => match a.read_scalar::<Sorting>() {
            Ok(s) => format!("{s:?}").into_pyobject(py)?.into_any(),
            Err(_) => py.None().into_bound(py),
        },
        _ => py.None().into_bound(py),
    })
}

/// The attributes of the object `name` ("/" for the file) as a dict: strings, numbers,
/// bools, numeric arrays as numpy arrays.
#[pyfunction]
pub fn _h5_attrs<'py>(py: Python<'py>, path: PathBuf, name: &str) -> PyResult<Bound<'py, PyDict>> {
    let f = open(&path)?;
    let d = PyDict::new(py);
    let loc: Location = if name == "/" {
        (**f).clone()
    } else if let Ok(g) = f.group(name) {
        (*g).clone()
    } else {
        let ds = f.dataset(name).map_err(absent(&path, name))?;
        (**ds).clone()
    };
    for an in loc.attr_names().map_err(h5_err(&path, name))? {
        let v =
            attr_value(py, &loc, &an).map_err(h5_err(&path, &format!("{name} attribute {an}")))?;
        d.set_item(an, v)?;
    }
    Ok(d)
}

/// The members of group `name`: a dict of member name -> "group" or "dataset"; an absent
/// group gives an empty dict.
#[pyfunction]
pub fn _h5_members<'py>(
    py: Python<'py>,
    path: PathBuf,
    name: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let f = open(&path)?;
    let d = PyDict::new(py);
    if name != "/" && !f.link_exists(name.trim_start_matches('/')) {
        return Ok(d);
    }
    let g = f.group(name).map_err(h5_err(&path, name))?;
    let mut names = g.member_names().map_err(h5_err(&path, name))?;
    names.sort();
    for m in names {
        let kind = if g.group(&m).is_ok() {
            "group"
        } else {
            "dataset"
        };
        d.set_item(m, kind)?;
    }
    Ok(d)
}
