//! Python exceptions: one base class, `apical.ApicalError`, and a subclass per kind of
//! library error. The message is the command line's (the error's text and its causes).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    apical,
    ApicalError,
    PyException,
    "Base class of every error apical raises."
);
create_exception!(
    apical,
    ConfigError,
    ApicalError,
    "A model file or override that cannot be read or is out of range (names the field)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ApicalError", py.get_type::<ApicalError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}

/// The error and its causes joined by ": ", leaving out a cause whose text is already in the
/// message (as the command line prints errors).
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

pub fn config(e: apical::config::ConfigError) -> PyErr {
    ConfigError::new_err(error_text(&e))
}
