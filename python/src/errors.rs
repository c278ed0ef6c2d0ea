//! Python exceptions: one base class, `apical.ApicalError`, and a subclass per kind of
//! library error. The message is the command line's (the error's text and its causes).

use apical::io::checkpoint::CheckpointError as LibCheckpointError;
use apical::io::mnist::DataError as LibDataError;
use apical::io::run_dir::RunDirError;
use apical::model::config::ConfigError as LibConfigError;
use apical::run::session::SessionError;
use apical::run::trainer::TrainError as LibTrainError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    apical,
    ApicalError,
    PyException,
    "Base class of every error apical raises; the message is the command line's."
);
create_exception!(
    apical,
    ConfigError,
    ApicalError,
    "A model file or override that cannot be read or is out of range (names the field)."
);
create_exception!(
    apical,
    DataError,
    ApicalError,
    "MNIST files missing, unreadable or not the original (wrong SHA-256)."
);
create_exception!(
    apical,
    CheckpointError,
    ApicalError,
    "A run directory or checkpoint that cannot be read, written or restored."
);
create_exception!(
    apical,
    TrainError,
    ApicalError,
    "Training failed (the simulation diverged, a file could not be written, ...)."
);
create_exception!(
    apical,
    TraceError,
    ApicalError,
    "A record spec that does not fit the model, or a trace file that cannot be read."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ApicalError", py.get_type::<ApicalError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("CheckpointError", py.get_type::<CheckpointError>())?;
    m.add("TrainError", py.get_type::<TrainError>())?;
    m.add("TraceError", py.get_type::<TraceError>())?;
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

pub fn config(e: LibConfigError) -> PyErr {
    ConfigError::new_err(error_text(&e))
}

pub fn data(e: LibDataError) -> PyErr {
    DataError::new_err(error_text(&e))
}

/// A data array (of `Dataset.from_arrays`) that is not what a data set holds.
pub fn data_problem(array: &str, problem: String) -> PyErr {
    DataError::new_err(format!("array {array} {problem}"))
}

pub fn checkpoint(e: LibCheckpointError) -> PyErr {
    CheckpointError::new_err(error_text(&e))
}

pub fn run_dir(e: RunDirError) -> PyErr {
    match e {
        RunDirError::Checkpoint(c) => checkpoint(c),
        e => CheckpointError::new_err(error_text(&e)),
    }
}

pub fn train(e: LibTrainError) -> PyErr {
    match e {
        LibTrainError::Checkpoint(c) => checkpoint(c),
        LibTrainError::RunDir(r) => run_dir(r),
        e => TrainError::new_err(error_text(&e)),
    }
}

/// The library's messages in the words of this package: its arguments (`data=`, `out=`)
/// for the command line's flags (`--data`, `--out`), `apical.resume("DIR")` for
/// `apical train --resume DIR`.
pub fn python_words(text: &str) -> String {
    let mut out = text.to_string();
    const CMD: &str = "`apical train --resume ";
    while let Some(start) = out.find(CMD) {
        let rest = &out[start + CMD.len()..];
        let Some(end) = rest.find('`') else { break };
        let dir = rest[..end].to_string();
        out.replace_range(
            start..start + CMD.len() + end + 1,
            &format!("apical.resume({dir:?})"),
        );
    }
    for (flag, arg) in [
        ("--train-examples", "train_examples="),
        ("--test-examples", "test_examples="),
        ("--epochs", "epochs="),
        ("--checkpoint-every", "checkpoint_every="),
        ("--keep-checkpoints", "keep_checkpoints="),
        ("--trace-compression", "trace_compression="),
        ("--threads", "threads="),
        ("--record", "record="),
        ("--data", "data="),
        ("--out", "out="),
        ("--set", "with_overrides"),
    ] {
        out = out.replace(flag, arg);
    }
    out
}

/// As `apical train` reports it, in this package's words ([`python_words`]): a resumed
/// run's checkpoint problems read "cannot resume: ...".
pub fn session(e: SessionError, resuming: bool) -> PyErr {
    let err = session_err(e, resuming);
    Python::attach(|py| {
        let text = python_words(&err.value(py).to_string());
        PyErr::from_type(err.get_type(py), text)
    })
}

fn session_err(e: SessionError, resuming: bool) -> PyErr {
    match e {
        SessionError::Config(c) => config(c),
        SessionError::Data(d) => data(d),
        SessionError::Train(LibTrainError::Checkpoint(c)) if resuming => {
            CheckpointError::new_err(format!("cannot resume: {}", error_text(&c)))
        }
        SessionError::RunDir(r) if resuming => {
            CheckpointError::new_err(format!("cannot resume: {}", error_text(&r)))
        }
        SessionError::Train(t) => train(t),
        SessionError::RunDir(r) => run_dir(r),
        // "--record: ..." as on the command line (the option is `record=` here).
        e @ SessionError::Record(_) => TraceError::new_err(error_text(&e)),
        e @ SessionError::Invalid(_) => ApicalError::new_err(error_text(&e)),
        // The machine has too little memory for the model: Python's own MemoryError.
        e @ SessionError::Memory(_) => pyo3::exceptions::PyMemoryError::new_err(error_text(&e)),
    }
}

/// An argument out of range, worded like the command line's check of the same option.
pub fn invalid(message: impl Into<String>) -> PyErr {
    ApicalError::new_err(message.into())
}
