//! Checkpoints: a trained (or half-trained) network in one self-checking binary file.
//!
//! Layout: 8-byte magic `APICALCK`, format version (u32 LE), payload length (u64 LE),
//! SHA-256 of the payload (32 bytes), then the payload: a bincode 2 (serde, standard
//! configuration) encoding of [`Checkpoint`]. No timestamps or paths are stored, so equal runs
//! give byte-identical files. Files are written atomically: a temporary file in the same
//! directory, fsync, rename, fsync of the directory. docs/checkpoints.md describes the format,
//! resuming and every error a user can meet.

use crate::base::rng::Rng;
pub use crate::io::atomic::write_atomic;
use crate::model::config::ModelConfig;
use crate::model::params::LayerParams;
use crate::sim::state::NetState;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"APICALCK";
/// Version 2 added the run's `train_examples` and `test_examples`; version 4 changed the
/// saved network state (input, basal traces: mid-epoch checkpoints only, see
/// [`OLDEST_READABLE`]).
pub const FORMAT_VERSION: u32 = 4;
/// Version 3 differs from 4 only in the mid-epoch network state, so its end-of-epoch
/// checkpoints are read as they are.
pub const OLDEST_READABLE: u32 = 3;
const HEADER_LEN: usize = 8 + 4 + 8 + 32;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write checkpoint {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an apical checkpoint (bad magic bytes)")]
    NotACheckpoint { path: PathBuf },
    #[error("checkpoint {path} has format version {found}; this apical reads version {expected} (and end-of-epoch checkpoints of version 3)")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "checkpoint {path} was taken inside an epoch by an older apical (format version \
         {found}); this version resumes only end-of-epoch checkpoints of that format: resume \
         from the last checkpoint-epoch-N.bin of the run"
    )]
    OldMidEpoch { path: PathBuf, found: u32 },
    #[error("checkpoint {path} is truncated: {found} bytes, expected {expected}")]
    Truncated {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error("checkpoint {path} is corrupt: {problem}")]
    Corrupt { path: PathBuf, problem: String },
}

/// Per-epoch results kept in checkpoints (no wall-clock times, so files are reproducible).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    pub train_examples: usize,
    /// Percent of forward phases whose prediction was wrong.
    pub train_error: f64,
    pub test_examples: usize,
    /// Percent of test images misclassified.
    pub test_error: f64,
    /// Mean firing rate of each layer during training, Hz.
    pub rates_hz: Vec<f64>,
}

/// Where a run stands inside an epoch (mid-epoch checkpoints only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochProgress {
    /// Training examples of the current epoch already done.
    pub example: usize,
    /// Of which predicted correctly in the forward phase.
    pub correct: usize,
    /// Simulation steps of the current epoch so far.
    pub steps: u64,
    /// Network state, random streams included.
    pub state: NetState,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The model file's text as the run used it.
    pub model_toml: String,
    /// SHA-256 of `model_toml`, hex.
    pub model_sha256: String,
    pub seed: u64,
    /// Training examples per epoch of the run (a mid-epoch position only means something
    /// with the same number).
    pub train_examples: usize,
    /// Test images per end-of-epoch evaluation of the run.
    pub test_examples: usize,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Set when the checkpoint was taken inside epoch `epochs_done + 1`.
    pub progress: Option<EpochProgress>,
    pub params: Vec<LayerParams>,
    /// Noise stream of symmetric feedback.
    pub feedback_rng: Rng,
    pub history: Vec<EpochRecord>,
}

/// SHA-256 of a text, hex.
pub fn sha256_hex(text: &[u8]) -> String {
    Sha256::digest(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Checkpoint {
    /// Encodes to the file format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("a checkpoint always encodes");
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes the file format; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let p = || path.to_path_buf();
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            if bytes.len() < 8 && MAGIC.starts_with(bytes) {
                return Err(CheckpointError::Truncated {
                    path: p(),
                    found: bytes.len(),
                    expected: HEADER_LEN,
                });
            }
            return Err(CheckpointError::NotACheckpoint { path: p() });
        }
        if bytes.len() < HEADER_LEN {
            return Err(CheckpointError::Truncated {
                path: p(),
                found: bytes.len(),
                expected: HEADER_LEN,
            });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
            return Err(CheckpointError::Version {
                path: p(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let expected = (HEADER_LEN as u64).saturating_add(len);
        if (bytes.len() as u64) < expected {
            return Err(CheckpointError::Truncated {
                path: p(),
                found: bytes.len(),
                expected: expected.min(usize::MAX as u64) as usize,
            });
        }
        if bytes.len() as u64 > expected {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: format!(
                    "{} trailing bytes after the payload",
                    bytes.len() as u64 - expected
                ),
            });
        }
        let payload = &bytes[HEADER_LEN..];
        if Sha256::digest(payload).as_slice() != &bytes[20..52] {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: "payload checksum mismatch".into(),
            });
        }
        let decoded = bincode::serde::decode_from_slice::<Checkpoint, _>(
            payload,
            bincode::config::standard(),
        );
        if version < FORMAT_VERSION && !matches!(&decoded, Ok((ck, _)) if ck.progress.is_none()) {
            // Only the mid-epoch state changed since: the checksum passed, so a payload
            // that does not decode as an end-of-epoch checkpoint is a mid-epoch one.
            return Err(CheckpointError::OldMidEpoch {
                path: p(),
                found: version,
            });
        }
        let (ck, used) = decoded.map_err(|e| CheckpointError::Corrupt {
            path: p(),
            problem: format!("cannot decode payload: {e}"),
        })?;
        if used != payload.len() {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: "payload has unused bytes".into(),
            });
        }
        if sha256_hex(ck.model_toml.as_bytes()) != ck.model_sha256 {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: "model text does not match its hash".into(),
            });
        }
        Ok(ck)
    }

    /// Parses the stored model and checks that everything else fits it: parameter shapes,
    /// the history length and the mid-epoch position. A file that passes its checksum can
    /// only fail here if it was made by hand (or by a buggy writer); this turns what would
    /// be an index panic later into an error naming the file.
    pub fn check(&self, path: &Path) -> Result<ModelConfig, CheckpointError> {
        let corrupt = |problem: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            problem,
        };
        let cfg = ModelConfig::from_toml_str(&self.model_toml, "the stored model")
            .map_err(|e| corrupt(e.to_string()))?;
        let topo = cfg.topology();
        let sparse = cfg.learning.feedback_sparsity > 0.0;
        if self.params.len() != topo.n_layers() {
            return Err(corrupt(format!(
                "{} parameter layers for a model with {}",
                self.params.len(),
                topo.n_layers()
            )));
        }
        for (m, p) in self.params.iter().enumerate() {
            let mut r = LayerParams::zeros(&topo, m);
            if sparse {
                // Sparse feedback keeps one mask entry per feedback weight.
                r.y_keep = vec![true; r.y.len()];
            }
            let shape = LayerParams::shape;
            if shape(p) != shape(&r) {
                return Err(corrupt(format!(
                    "layer {m} parameters have shape {:?}, the model needs {:?} \
                     (n_pre, n, n_fb, |W|, |b|, |Y|, |c|, |Y mask|)",
                    shape(p),
                    shape(&r)
                )));
            }
        }
        if self.history.len() != self.epochs_done {
            return Err(corrupt(format!(
                "{} epochs done but {} epoch records",
                self.epochs_done,
                self.history.len()
            )));
        }
        if self.train_examples == 0 || self.test_examples == 0 {
            return Err(corrupt("zero training or test examples per epoch".into()));
        }
        if let Some(p) = &self.progress {
            if p.example == 0 || p.example >= self.train_examples || p.correct > p.example {
                return Err(corrupt(format!(
                    "mid-epoch position {} ({} correct) does not fit {} examples per epoch",
                    p.example, p.correct, self.train_examples
                )));
            }
            let sizes = cfg.layer_sizes();
            let ok = p.state.layers.len() == sizes.len()
                && p.state.layers.iter().zip(&sizes).all(|(l, &n)| {
                    l.n == n
                        && l.blocks.last().map_or(0, |b| b.hi) == n
                        && l.blocks
                            .iter()
                            .all(|b| b.lo <= b.hi && b.soma.len() == b.hi - b.lo)
                });
            if !ok {
                return Err(corrupt(
                    "the saved network state does not fit the model".into(),
                ));
            }
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes atomically: the previous file at `path` stays intact until the new one is
    /// complete on disk.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomic(path, &self.to_bytes()).map_err(|source| CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The network a checkpoint holds: its parameters exactly as saved and the feedback noise
/// stream where the run left it. (`Network::from_params` alone would re-draw symmetric
/// feedback weights from a fresh stream; the saved ones are the ones the run used.)
pub fn restore_network(
    cfg: ModelConfig,
    params: Vec<LayerParams>,
    seed: u64,
    feedback_rng: Rng,
) -> crate::sim::network::Network {
    let mut net = crate::sim::network::Network::from_params(
        crate::sim::network::Model::new(cfg),
        params.clone(),
        seed,
    );
    net.params = params;
    net.feedback_rng = feedback_rng;
    net
}

/// File name of the checkpoint after `epoch` complete epochs.
pub fn epoch_file_name(epoch: usize) -> String {
    format!("checkpoint-epoch-{epoch}.bin")
}

/// File name of a mid-epoch checkpoint.
pub fn progress_file_name(epoch: usize, example: usize) -> String {
    format!("checkpoint-epoch-{epoch}-example-{example}.bin")
}

/// The checkpoints in a run directory, ordered by (epochs done, examples done).
pub fn list_checkpoints(dir: &Path) -> std::io::Result<Vec<(usize, usize, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(rest) = name
            .strip_prefix("checkpoint-epoch-")
            .and_then(|r| r.strip_suffix(".bin"))
        else {
            continue;
        };
        let key = match rest.split_once("-example-") {
            // A mid-epoch file is inside epoch e (1-based), i.e. after e-1 complete epochs.
            Some((e, k)) => e
                .parse::<usize>()
                .ok()
                .zip(k.parse::<usize>().ok())
                .map(|(e, k)| (e.saturating_sub(1), k)),
            None => rest.parse::<usize>().ok().map(|e| (e, 0)),
        };
        // A directory (or anything else) named like a checkpoint is not one.
        if let (Some((e, k)), true) = (key, path.is_file()) {
            found.push((e, k, path));
        }
    }
    found.sort();
    Ok(found)
}
