//! The run directory: the model as run, run.json, metrics and checkpoints, in one place
//! (file names in README.md). Train, eval, plot and reproduce all open runs through it.

use crate::io::atomic::write_atomic;
use crate::io::checkpoint::{self, EpochRecord};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of a run directory; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Metrics of one epoch as written to metrics.csv / metrics.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    #[serde(flatten)]
    pub record: EpochRecord,
    /// Wall-clock seconds of the epoch (training and test).
    pub wall_seconds: f64,
    /// Wall-clock seconds of the training part (learning included, test excluded).
    pub train_seconds: f64,
    /// Wall-clock seconds of the test at the end of the epoch.
    pub test_seconds: f64,
    /// Wall-clock seconds per training example (train_seconds / train_examples).
    pub seconds_per_train_example: f64,
}

/// Run metadata stored beside the checkpoints (run.json).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    pub apical_version: String,
    pub model: String,
    pub seed: u64,
    pub epochs: usize,
    pub train_examples: usize,
    pub test_examples: usize,
    pub data_dir: PathBuf,
    /// Mid-epoch checkpoint interval in examples (0: epoch ends only).
    #[serde(default)]
    pub checkpoint_every: usize,
}

/// A run directory: model copy, run.json, metrics, checkpoints.
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory; refuses one that already holds checkpoints.
    pub fn create(dir: &Path, cfg_toml: &str, info: &RunInfo) -> Result<Self, RunDirError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if !checkpoint::list_checkpoints(dir)
            .map_err(io_err(dir))?
            .is_empty()
        {
            return Err(RunDirError::Invalid(format!(
                "run directory {} already holds checkpoints; continue it with `apical train --resume {}` or choose another --out",
                dir.display(),
                dir.display()
            )));
        }
        let rd = RunDir {
            dir: dir.to_path_buf(),
        };
        let model_path = dir.join("model.toml");
        write_atomic(&model_path, cfg_toml.as_bytes()).map_err(io_err(&model_path))?;
        rd.write_info(info)?;
        Ok(rd)
    }

    pub fn write_info(&self, info: &RunInfo) -> Result<(), RunDirError> {
        let p = self.dir.join("run.json");
        let text = serde_json::to_string_pretty(info).expect("run info serialises");
        write_atomic(&p, text.as_bytes()).map_err(io_err(&p))
    }

    pub fn read_info(dir: &Path) -> Result<RunInfo, RunDirError> {
        let p = dir.join("run.json");
        let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        serde_json::from_str(&text)
            .map_err(|e| RunDirError::Invalid(format!("{}: {e}", p.display())))
    }

    /// Wall times [train, test] of earlier epochs from metrics.json (for resumed runs); NaN
    /// where unknown (metrics.json writes an unknown time as null).
    pub fn read_wall_times(&self) -> Vec<[f64; 2]> {
        std::fs::read_to_string(self.dir.join("metrics.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
            .map(|m| {
                m.iter()
                    .map(|e| {
                        [
                            e["train_seconds"].as_f64().unwrap_or(f64::NAN),
                            e["test_seconds"].as_f64().unwrap_or(f64::NAN),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rewrites metrics.csv and metrics.json with every epoch so far.
    pub fn write_metrics(&self, metrics: &[EpochMetrics]) -> Result<(), RunDirError> {
        let layers = metrics.first().map_or(0, |m| m.record.rates_hz.len());
        let mut csv = String::from(
            "epoch,train_examples,train_error,test_examples,test_error,wall_seconds,train_seconds,test_seconds,seconds_per_train_example",
        );
        for l in 0..layers {
            csv.push_str(&format!(",rate_hz_layer{l}"));
        }
        csv.push('\n');
        for m in metrics {
            let r = &m.record;
            csv.push_str(&format!(
                "{},{},{:.4},{},{:.4},{:.3},{:.3},{:.3},{:.6e}",
                r.epoch,
                r.train_examples,
                r.train_error,
                r.test_examples,
                r.test_error,
                m.wall_seconds,
                m.train_seconds,
                m.test_seconds,
                m.seconds_per_train_example
            ));
            for hz in &r.rates_hz {
                csv.push_str(&format!(",{hz:.3}"));
            }
            csv.push('\n');
        }
        let p = self.dir.join("metrics.csv");
        write_atomic(&p, csv.as_bytes()).map_err(io_err(&p))?;
        let p = self.dir.join("metrics.json");
        let json = serde_json::to_string_pretty(metrics).expect("metrics serialise");
        write_atomic(&p, json.as_bytes()).map_err(io_err(&p))
    }
}
