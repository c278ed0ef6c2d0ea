//! Whole-number arguments of the Python API, checked in one place. They arrive as Python
//! ints of any sign ([`Int`]), so a negative or huge count is a ValueError naming its
//! parameter, as the command line names its option, instead of PyO3's "OverflowError:
//! can't convert negative int to unsigned" that named nothing (issue 25, item 19).

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// What a whole-number parameter is declared as: any Python int up to 2^127 in size.
pub type Int = i128;

fn bad(name: &str, v: Int, what: &str) -> pyo3::PyErr {
    PyValueError::new_err(format!("{name}={v}: {name} must be {what}"))
}

/// A count, an index or a size: 0 or more (and one that fits this machine's sizes).
pub fn count(name: &str, v: Int) -> PyResult<usize> {
    if v < 0 {
        return Err(bad(name, v, "a whole number >= 0"));
    }
    usize::try_from(v).map_err(|_| bad(name, v, &format!("at most {}", usize::MAX)))
}

/// [`count`] of an optional parameter (None stays None).
pub fn count_opt(name: &str, v: Option<Int>) -> PyResult<Option<usize>> {
    v.map(|v| count(name, v)).transpose()
}

/// A random seed: 0 to 2^64 - 1, as `--seed`.
pub fn seed(name: &str, v: Int) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| bad(name, v, &format!("a whole number from 0 to {}", u64::MAX)))
}

/// A class label: 0 or more, below 256 (a label's type in data sets); the model's own
/// bound (`network.classes`) is checked where the model is known.
pub fn label(name: &str, v: Int) -> PyResult<u8> {
    let n = count(name, v)?;
    u8::try_from(n).map_err(|_| bad(name, v, "a class label below 256"))
}
