//! `apical.Model`: a validated model file (docs/model.md), immutable.

use crate::errors;
use apical::model::config::{DEFAULT_MODEL_NAME, DEFAULT_MODEL_TOML};
use apical::{ModelConfig, Override};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::PathBuf;

/// A model: every parameter of a model file, validated as the command line validates it.
#[pyclass(module = "apical", frozen)]
pub struct Model {
    pub cfg: ModelConfig,
    /// The TOML text: the file as read, or the model as written after overrides.
    pub text: String,
    /// Where the model came from (a path, or a description), named in errors.
    pub origin: String,
}

impl Model {
    /// The default model (models/guerguiev-1h.toml, embedded in the library).
    pub fn default_model() -> PyResult<Self> {
        Self::from_text(
            DEFAULT_MODEL_TOML.to_string(),
            format!("models/{DEFAULT_MODEL_NAME}.toml (embedded)"),
        )
    }

    pub fn from_text(text: String, origin: String) -> PyResult<Self> {
        let cfg = ModelConfig::from_toml_str(&text, &origin).map_err(errors::config)?;
        Ok(Model { cfg, text, origin })
    }
}

#[pymethods]
impl Model {
    /// Reads and validates a model file (TOML); keeps the file's text.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let text = ModelConfig::read_text(&path).map_err(errors::config)?;
        let cfg = ModelConfig::from_toml_str(&text, &path.display().to_string())
            .map_err(errors::config)?;
        Ok(Model {
            cfg,
            text,
            origin: path.display().to_string(),
        })
    }

    /// The default model (models/guerguiev-1h.toml, 784-500-10), as the command line
    /// trains it without a model file.
    #[staticmethod]
    fn default() -> PyResult<Self> {
        Self::default_model()
    }

    /// Parses and validates model text; `origin` names it in error messages.
    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_toml(text: String, origin: &str) -> PyResult<Self> {
        Self::from_text(text, origin.to_string())
    }

    /// This model with `overrides` applied: `{"learning.eta": [0.2, 0.2],
    /// "network.hidden": [300]}`. The same code path as `apical train --set KEY=VALUE`:
    /// validated like a model file; an unknown key is named with the nearest valid one.
    /// A string value is a TOML string (`{"learning.feedback_mode": "symmetric"}`).
    fn with_overrides(&self, overrides: &Bound<'_, PyDict>) -> PyResult<Self> {
        let mut list = Vec::with_capacity(overrides.len());
        for (k, v) in overrides.iter() {
            let key: String = k.extract().map_err(|_| {
                errors::ConfigError::new_err(format!(
                    "override keys are dotted field names (str), got {}",
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
            let value = toml_value(&v)
                .map_err(|p| errors::ConfigError::new_err(format!("override `{key}`: {p}")))?;
            list.push(Override { key, value });
        }
        let cfg = self
            .cfg
            .with_overrides(&list, &self.origin)
            .map_err(errors::config)?;
        let text = cfg.to_toml_string();
        Ok(Model {
            cfg,
            text,
            origin: format!("{} with overrides", self.origin),
        })
    }

    /// The model's TOML text: the file as read, or the model with its overrides.
    fn to_toml(&self) -> String {
        self.text.clone()
    }

    /// The model's name (run directories are named after it).
    #[getter]
    fn name(&self) -> String {
        self.cfg.name.clone()
    }

    #[getter]
    fn description(&self) -> String {
        self.cfg.description.clone()
    }

    /// Where the model came from: its file, or a description.
    #[getter]
    fn origin(&self) -> String {
        self.origin.clone()
    }

    /// Units per layer: input, hidden layers, output.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.cfg.network.n_in];
        s.extend(self.cfg.layer_sizes());
        s
    }

    /// Every parameter, defaults filled in, as nested dicts (`m.config["learning"]["eta"]`).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = serde_json::to_string(&self.cfg).expect("a model config serialises");
        py.import("json")?.call_method1("loads", (json,))
    }

    fn __repr__(&self) -> String {
        let sizes: Vec<String> = self.sizes().iter().map(|n| n.to_string()).collect();
        format!(
            "Model(name={:?}, sizes={}, origin={:?})",
            self.cfg.name,
            sizes.join("-"),
            self.origin
        )
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.cfg == other.cfg
    }
}

/// The deepest nesting of lists and dicts an override value may have: far deeper than any
/// model field, shallow enough that a list containing itself (or 100,000 nested lists)
/// is an error instead of a stack overflow.
const MAX_DEPTH: usize = 32;

/// A TOML value from a Python value: bool, int, float, str, list/tuple, dict; numpy scalars
/// and arrays through their `tolist()`.
fn toml_value(v: &Bound<'_, PyAny>) -> Result<toml::Value, String> {
    toml_value_at(v, 0)
}

fn toml_value_at(v: &Bound<'_, PyAny>, depth: usize) -> Result<toml::Value, String> {
    use toml::Value;
    if depth > MAX_DEPTH {
        return Err(format!(
            "lists and dicts nested more than {MAX_DEPTH} deep (one that contains itself?)"
        ));
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(Value::Boolean(
            v.extract::<bool>().map_err(|e| e.to_string())?,
        ));
    }
    if v.is_instance_of::<PyInt>() {
        return v
            .extract::<i64>()
            .map(Value::Integer)
            .map_err(|_| "integer out of range".to_string());
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(v.extract::<f64>().map_err(|e| e.to_string())?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Value::String(
            v.extract::<String>().map_err(|e| e.to_string())?,
        ));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in v.try_iter().map_err(|e| e.to_string())? {
            out.push(toml_value_at(&item.map_err(|e| e.to_string())?, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, item) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| "table keys must be str".to_string())?;
            t.insert(k, toml_value_at(&item, depth + 1)?);
        }
        return Ok(Value::Table(t));
    }
    // numpy scalars and arrays
    if v.hasattr("tolist").unwrap_or(false) {
        let plain = v.call_method0("tolist").map_err(|e| e.to_string())?;
        if !plain.is(v) {
            return toml_value_at(&plain, depth + 1);
        }
    }
    Err(format!(
        "cannot be written in a model file: {}",
        v.repr().map(|r| r.to_string()).unwrap_or_default()
    ))
}
