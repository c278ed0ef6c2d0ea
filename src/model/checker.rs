//! The checks of model-file validation ([`crate::model::config::ModelConfig::validate`]):
//! each names the field (`section.field`) and what is allowed, and the error they build.

use crate::model::rule::LearningRule;

/// A model file that cannot be read, parsed or accepted, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read model file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("model file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("model file {path}: field `{field}` {problem}")]
    Invalid {
        path: String,
        field: String,
        problem: String,
    },
}

/// Builds the errors of [`crate::model::config::ModelConfig::validate`] for one model file (`origin`).
pub(crate) struct Checker<'a> {
    pub(crate) origin: &'a str,
}

impl Checker<'_> {
    /// `field` of the file is wrong: `problem` says how.
    pub(crate) fn bad(&self, field: &str, problem: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.origin.to_string(),
            field: field.to_string(),
            problem,
        }
    }

    pub(crate) fn positive(&self, field: &str, v: f64) -> Result<(), ConfigError> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(self.bad(field, format!("must be a positive finite number, got {v}")))
        }
    }

    pub(crate) fn finite(&self, field: &str, v: f64) -> Result<(), ConfigError> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(self.bad(field, format!("must be finite, got {v}")))
        }
    }

    pub(crate) fn nonneg(&self, field: &str, v: f64) -> Result<(), ConfigError> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(self.bad(field, format!("must be >= 0 and finite, got {v}")))
        }
    }

    /// `training.batch_size` = `batch`: an integer from 1 to `training.train_examples`, above
    /// 1 only for the rate rules that allow minibatches (`mode`: `neuron.mode` as written).
    pub(crate) fn batch_size(
        &self,
        batch: usize,
        train_examples: usize,
        mode: &str,
        rule: LearningRule,
    ) -> Result<(), ConfigError> {
        let field = "training.batch_size";
        if batch == 0 {
            return Err(self.bad(field, "must be at least 1, got 0".into()));
        }
        if batch > train_examples {
            return Err(self.bad(
                field,
                format!("must be at most training.train_examples = {train_examples}, got {batch}"),
            ));
        }
        if batch > 1 && (mode != "rate" || !rule.allows_minibatches()) {
            return Err(self.bad(
                field,
                format!(
                    "= {batch} needs a rate network (neuron.mode = \"rate\") and a rule that \
                     allows minibatches (backprop, feedback-alignment, burstccn, burstprop); this model \
                     has neuron.mode = \"{mode}\" and learning.rule = \"{}\", which learn one \
                     example at a time: set batch_size = 1",
                    rule.name()
                ),
            ));
        }
        Ok(())
    }
}
