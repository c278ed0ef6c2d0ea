//! `apical._apical`: the Rust side of the Python package `apical` (python/apical/ holds the
//! pure-Python layer and the type stubs). Everything here calls the `apical` library; no
//! simulation code lives in this crate.

use pyo3::prelude::*;

mod errors;
mod model;

#[pymodule]
fn _apical(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", apical_version())?;
    errors::register(m)?;
    m.add_class::<model::Model>()?;
    Ok(())
}

/// The version of the `apical` library this module was built from.
fn apical_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
