//! `apical._apical`: the Rust side of the Python package `apical` (python/apical/ holds the
//! pure-Python layer and the type stubs). Everything here calls the `apical` library; no
//! simulation code lives in this crate.

use pyo3::prelude::*;

mod args;
mod dataset;
mod errors;
mod interrupt;
mod model;
mod network;
mod traces;
mod train;

#[pymodule]
fn _apical(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The command line's thread policy (Slurm's CPUs, else the affinity's) for calls
    // without `threads=`; a pool already started by the host program is left as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(apical::run::threads::default_threads())
        .build_global();
    // NumPy's C API is loaded on the first array made. Loaded here, at import: loaded later,
    // a Ctrl-C that arrives just as a long call returns its arrays made the load fail, which
    // the numpy crate turns into a panic (a PanicException instead of KeyboardInterrupt).
    drop(numpy::PyArray1::<f32>::zeros(m.py(), 0, false));
    errors::register(m)?;
    m.add_class::<model::Model>()?;
    m.add_class::<network::Network>()?;
    m.add_class::<dataset::Dataset>()?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(traces::_h5_read, m)?)?;
    m.add_function(wrap_pyfunction!(traces::_h5_attrs, m)?)?;
    m.add_function(wrap_pyfunction!(traces::_h5_members, m)?)?;
    Ok(())
}
