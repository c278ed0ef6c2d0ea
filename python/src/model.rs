//! `apical.Model`: a validated model file (docs/model.md), immutable.

use crate::errors;
use apical::config::{ModelConfig, DEFAULT_MODEL_NAME, DEFAULT_MODEL_TOML};
use pyo3::prelude::*;
use pyo3::types::PyAny;
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
        let cfg = ModelConfig::from_file(&path).map_err(errors::config)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| errors::ConfigError::new_err(format!("{}: {e}", path.display())))?;
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
        Self::from_text(
            DEFAULT_MODEL_TOML.to_string(),
            format!("models/{DEFAULT_MODEL_NAME}.toml (embedded)"),
        )
    }

    /// Parses and validates model text; `origin` names it in error messages.
    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_toml(text: String, origin: &str) -> PyResult<Self> {
        Self::from_text(text, origin.to_string())
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
