//! `apical sweep`: a grid of training runs over model fields and seeds, one run directory
//! per point, locally (`--jobs`) or as a Slurm job array (docs/sweeps.md).
//!
//! - [`spec`]: the sweep file (base model, budget, `[set]`, `[axes]`, `[zip]`), its points,
//!   their directory names and shards;
//! - [`runner`]: runs points through [`crate::run::session::train`] (the same entry point as
//!   `apical train`), skipping finished points and resuming unfinished ones; a point's state
//!   (done, running, unfinished, failed, not started);
//! - [`collect`]: `summary.csv`, `summary.md` and plots of a sweep directory;
//! - [`slurm`]: the `sbatch` job-array script.
//!
//! A sweep directory holds `sweep.toml` (the sweep as run, self-contained: a model file
//! base is copied beside it as `base-model.toml`), one run directory per point named after
//! the point, and after collecting `summary.csv`, `summary.md` and `plots/`.

pub mod collect;
pub mod runner;
pub mod slurm;
pub mod spec;

use crate::app::plot::PlotError;
use crate::model::config::ConfigError;
use std::path::{Path, PathBuf};

/// Errors of a sweep; each names the file, the field or the point.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A problem in the sweep file.
    #[error("sweep file {path}: {problem}")]
    Spec { path: PathBuf, problem: String },
    /// A point's model does not validate (an unknown key names the nearest valid one).
    #[error("sweep file {path}: point {point}: {source}")]
    Point {
        path: PathBuf,
        point: String,
        source: ConfigError,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{dir} holds a run with other settings ({problem}); remove it, or give the sweep another --out"
    )]
    Mismatch { dir: PathBuf, problem: String },
    /// A point's run directory that cannot be read (a corrupt run.json).
    #[error("{dir} is damaged ({problem}); repair or remove it")]
    Damaged { dir: PathBuf, problem: String },
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file unique to this process and thread, so
/// that several shards of one sweep may write the same file at once.
pub(crate) fn write_shared(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    crate::io::atomic::refuse_symlink(path).map_err(io_err(path))?;
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    crate::io::atomic::write_atomic(path, bytes).map_err(io_err(path))
}
