//! The run directory: the model as run, run.json, metrics and checkpoints, in one place
//! (file names in README.md). Train, eval, plot and reproduce all open runs through it.

use crate::io::atomic::write_atomic;
use crate::io::checkpoint::{self, Checkpoint, CheckpointError, EpochRecord};
use crate::sim::network::Network;
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
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
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

    pub(crate) fn write_info(&self, info: &RunInfo) -> Result<(), RunDirError> {
        let p = self.dir.join("run.json");
        let text = serde_json::to_string_pretty(info).expect("run info serialises");
        write_atomic(&p, text.as_bytes()).map_err(io_err(&p))
    }

    /// An existing run directory.
    pub fn open(dir: &Path) -> Result<Self, RunDirError> {
        if !dir.is_dir() {
            return Err(RunDirError::Invalid(format!(
                "{}: no such run directory",
                dir.display()
            )));
        }
        Ok(RunDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The run's checkpoints, ordered by (epochs done, examples done).
    pub fn checkpoints(&self) -> Result<Vec<(usize, usize, PathBuf)>, RunDirError> {
        checkpoint::list_checkpoints(&self.dir).map_err(io_err(&self.dir))
    }

    /// The latest checkpoint, loaded and checked. A damaged one is an error that names the
    /// checkpoint before it.
    pub(crate) fn latest_checkpoint(&self) -> Result<(Checkpoint, PathBuf), RunDirError> {
        let list = self.checkpoints()?;
        let Some((_, _, latest)) = list.last() else {
            return Err(RunDirError::Invalid(format!(
                "{} holds no checkpoint",
                self.dir.display()
            )));
        };
        let loaded = Checkpoint::load(latest).and_then(|ck| ck.check(latest).map(|_| ck));
        loaded.map(|ck| (ck, latest.clone())).map_err(|e| {
            let previous = match list.len() {
                0 | 1 => String::new(),
                n => format!(
                    "; to use the checkpoint before it, move {} away (the previous one is {})",
                    latest.display(),
                    list[n - 2].2.display()
                ),
            };
            RunDirError::Invalid(format!("{e}{previous}"))
        })
    }

    /// The network of the latest checkpoint exactly as the run saved it: parameters,
    /// feedback weights and the feedback noise stream (see `checkpoint::restore_network`).
    pub fn restore(&self) -> Result<(Network, Checkpoint, PathBuf), RunDirError> {
        let (ck, path) = self.latest_checkpoint()?;
        let net = restore(&ck, &path)?;
        Ok((net, ck, path))
    }

    /// run.json.
    pub fn read_info(&self) -> Result<RunInfo, RunDirError> {
        let p = self.dir.join("run.json");
        let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        serde_json::from_str(&text)
            .map_err(|e| RunDirError::Invalid(format!("{}: {e}", p.display())))
    }

    /// Wall times [train, test] of earlier epochs from metrics.json (for resumed runs); NaN
    /// where unknown (metrics.json writes an unknown time as null).
    pub(crate) fn read_wall_times(&self) -> Vec<[f64; 2]> {
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
    pub(crate) fn write_metrics(&self, metrics: &[EpochMetrics]) -> Result<(), RunDirError> {
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

/// The network a checkpoint file holds, exactly as saved (feedback weights and streams
/// included); `path` names the file in errors.
pub fn restore(ck: &Checkpoint, path: &Path) -> Result<Network, RunDirError> {
    let cfg = ck.check(path)?;
    Ok(checkpoint::restore_network(
        cfg,
        ck.params.clone(),
        ck.seed,
        ck.feedback_rng.clone(),
    ))
}
