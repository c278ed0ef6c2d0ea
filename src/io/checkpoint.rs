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
use crate::model::config::{LearningRule, ModelConfig};
use crate::model::params::{LayerParams, RuleParams};
use crate::sim::state::NetState;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"APICALCK";
/// Version 2 added the run's `train_examples` and `test_examples`; version 4 changed the
/// saved network state (input, basal traces: mid-epoch checkpoints only, see
/// `OLDEST_READABLE`); version 5 appends the rule's own matrices ([`RuleParams`], BurstCCN's
/// Q) after version 4's payload. A network without them is written as version 4, byte for
/// byte what it was before version 5.
pub const FORMAT_VERSION: u32 = 5;
/// The version written for a network whose rule keeps no matrices of its own.
pub const PLAIN_VERSION: u32 = 4;
/// Version 3 differs from 4 only in the mid-epoch network state, so its end-of-epoch
/// checkpoints are read as they are.
pub(crate) const OLDEST_READABLE: u32 = 3;
const HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// Largest payload read (a 784-500-10 checkpoint is 1.6 MB; the largest model a model file
/// may describe would not fit any machine's memory long before this).
pub const MAX_PAYLOAD: u64 = 1 << 38;
/// Bytes of the payload [`peek`] reads first (the model text comes first and is a few KiB).
const PEEK_BYTES: u64 = 64 << 10;

/// The fixed-size header of a checkpoint file.
struct Header {
    version: u32,
    /// Payload length in bytes.
    len: u64,
    sha256: [u8; 32],
}

impl Header {
    /// Parses the header from `head` (the file's first `min(HEADER_LEN, file_len)` bytes)
    /// and checks it against the length of the whole file.
    fn parse(head: &[u8], file_len: u64, path: &Path) -> Result<Self, CheckpointError> {
        let p = || path.to_path_buf();
        let found = usize::try_from(file_len).unwrap_or(usize::MAX);
        if head.len() < 8 || &head[..8] != MAGIC {
            if head.len() < 8 && MAGIC.starts_with(head) {
                return Err(CheckpointError::Truncated {
                    path: p(),
                    found,
                    expected: HEADER_LEN,
                });
            }
            return Err(CheckpointError::NotACheckpoint { path: p() });
        }
        if head.len() < HEADER_LEN {
            return Err(CheckpointError::Truncated {
                path: p(),
                found,
                expected: HEADER_LEN,
            });
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
            return Err(CheckpointError::Version {
                path: p(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
        let expected = (HEADER_LEN as u64).saturating_add(len);
        if file_len < expected {
            return Err(CheckpointError::Truncated {
                path: p(),
                found,
                expected: expected.min(usize::MAX as u64) as usize,
            });
        }
        if file_len > expected {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: format!("{} trailing bytes after the payload", file_len - expected),
            });
        }
        if len > MAX_PAYLOAD {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: format!(
                    "its header announces a payload of {len} bytes, more than any checkpoint apical reads ({MAX_PAYLOAD})"
                ),
            });
        }
        Ok(Header {
            version,
            len,
            sha256: head[20..52].try_into().expect("32 bytes"),
        })
    }
}

/// Opens a checkpoint file and reads and checks its header against the file's size; the
/// file is left positioned at the payload.
fn open_checked(path: &Path) -> Result<(Header, fs::File), CheckpointError> {
    let read_err = |source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a checkpoint is a checkpoint-*.bin file)",
        )));
    }
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let header = Header::parse(&head, meta.len().max(head.len() as u64), path)?;
    Ok((header, file))
}

/// A bincode varint (standard configuration) at `at`: the value and the position after it;
/// None when `bytes` ends first.
fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let le = |n: usize| -> Option<u64> {
        let b = bytes.get(at + 1..at + 1 + n)?;
        let mut v = [0u8; 16];
        v[..n].copy_from_slice(b);
        u64::try_from(u128::from_le_bytes(v))
            .ok()
            .or(Some(u64::MAX))
    };
    match *bytes.get(at)? {
        b @ 0..=250 => Some((u64::from(b), at + 1)),
        251 => Some((le(2)?, at + 3)),
        252 => Some((le(4)?, at + 5)),
        253 => Some((le(8)?, at + 9)),
        _ => Some((le(16)?, at + 17)),
    }
}

/// The payload starts with two strings (the model text and its hash). bincode allocates a
/// string's announced length before reading it, so each length is checked against the
/// `payload_len` bytes there are first (`bytes`: the payload or its beginning).
fn strings_fit(bytes: &[u8], payload_len: u64, path: &Path) -> Result<(), CheckpointError> {
    let mut at = 0;
    for what in ["model text", "model hash"] {
        let Some((len, after)) = varint(bytes, at) else {
            return Ok(());
        };
        let end = (after as u64).saturating_add(len);
        if end > payload_len {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                problem: format!(
                    "the {what} is announced as {len} bytes, more than the payload holds"
                ),
            });
        }
        at = end as usize;
    }
    Ok(())
}

/// What a checkpoint says about itself: the first fields of its payload, read without
/// reading (or checksumming) the rest. Fields and order are those of [`Checkpoint`], so
/// bincode decodes them from the payload's beginning.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckpointHead {
    pub model_toml: String,
    pub model_sha256: String,
    pub seed: u64,
    pub train_examples: usize,
    pub test_examples: usize,
    pub epochs_done: usize,
    pub progress: Option<ProgressHead>,
}

/// The first fields of [`EpochProgress`].
#[derive(Clone, Debug, Deserialize)]
pub struct ProgressHead {
    pub example: usize,
    pub correct: usize,
}

impl CheckpointHead {
    /// (epochs done, examples done in the next epoch), the order of checkpoints in a run.
    pub fn position(&self) -> (usize, usize) {
        (
            self.epochs_done,
            self.progress.as_ref().map_or(0, |p| p.example),
        )
    }
}

impl Checkpoint {
    /// (epochs done, examples done in the next epoch), the order of checkpoints in a run.
    pub fn position(&self) -> (usize, usize) {
        (
            self.epochs_done,
            self.progress.as_ref().map_or(0, |p| p.example),
        )
    }
}

/// The head of a checkpoint file ([`CheckpointHead`]): its header checked against the
/// file size, then the first few KiB of the payload decoded. The payload's checksum is
/// not checked (that needs the whole file: [`Checkpoint::load`]).
pub fn peek(path: &Path) -> Result<CheckpointHead, CheckpointError> {
    let (header, mut file) = open_checked(path)?;
    let mut prefix = Vec::new();
    let mut want = header.len.min(PEEK_BYTES);
    loop {
        (&mut file)
            .take(want - prefix.len() as u64)
            .read_to_end(&mut prefix)
            .map_err(|source| CheckpointError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        strings_fit(&prefix, header.len, path)?;
        match bincode::serde::decode_from_slice::<CheckpointHead, _>(
            &prefix,
            bincode::config::standard(),
        ) {
            Ok((head, _)) => return Ok(head),
            // A model text longer than the first read: read up to the whole payload.
            Err(_) if want < header.len && prefix.len() as u64 == want => want = header.len,
            Err(e) => {
                return Err(CheckpointError::Corrupt {
                    path: path.to_path_buf(),
                    problem: format!("cannot decode payload: {e}"),
                })
            }
        }
    }
}

/// Checks a checkpoint file without decoding it: its header against the file's size (a
/// truncated or padded file is named as such) and its payload against the header's
/// SHA-256 (a damaged one), read in pieces of 64 KiB. A file that passes is the file
/// apical wrote. Cheaper than [`Checkpoint::load`] in memory (no payload buffer, no network).
pub fn verify(path: &Path) -> Result<(), CheckpointError> {
    let (header, file) = open_checked(path)?;
    let mut hasher = Sha256::new();
    let mut payload = file.take(header.len);
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0u64;
    loop {
        let n = payload
            .read(&mut buf)
            .map_err(|source| CheckpointError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    if read != header.len {
        // The file shrank while it was read.
        return Err(CheckpointError::Truncated {
            path: path.to_path_buf(),
            found: usize::try_from(HEADER_LEN as u64 + read).unwrap_or(usize::MAX),
            expected: usize::try_from(HEADER_LEN as u64 + header.len).unwrap_or(usize::MAX),
        });
    }
    if hasher.finalize().as_slice() != header.sha256 {
        return Err(CheckpointError::Corrupt {
            path: path.to_path_buf(),
            problem: "payload checksum mismatch".into(),
        });
    }
    Ok(())
}

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
    #[error(transparent)]
    Memory(#[from] crate::io::memory::MemoryError),
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
    /// The rule's own matrices (version 5: encoded after the fields above, only when not
    /// empty).
    #[serde(skip)]
    pub rule_params: RuleParams,
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
        // One buffer: the payload is encoded behind a header whose length and checksum are
        // filled in afterwards (the file holds the payload once in memory, not twice).
        let mut out = vec![0u8; HEADER_LEN];
        bincode::serde::encode_into_std_write(self, &mut out, bincode::config::standard())
            .expect("a checkpoint always encodes");
        let version = if self.rule_params.is_empty() {
            PLAIN_VERSION
        } else {
            bincode::serde::encode_into_std_write(
                &self.rule_params,
                &mut out,
                bincode::config::standard(),
            )
            .expect("rule matrices always encode");
            FORMAT_VERSION
        };
        let len = (out.len() - HEADER_LEN) as u64;
        let digest = Sha256::digest(&out[HEADER_LEN..]);
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&version.to_le_bytes());
        out[12..20].copy_from_slice(&len.to_le_bytes());
        out[20..52].copy_from_slice(&digest);
        out
    }

    /// Decodes the file format; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let header = Header::parse(
            &bytes[..bytes.len().min(HEADER_LEN)],
            bytes.len() as u64,
            path,
        )?;
        Self::from_payload(&header, &bytes[HEADER_LEN..], path)
    }

    /// Checks the payload against the header's checksum and decodes it.
    fn from_payload(header: &Header, payload: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let p = || path.to_path_buf();
        if Sha256::digest(payload).as_slice() != header.sha256 {
            return Err(CheckpointError::Corrupt {
                path: p(),
                problem: "payload checksum mismatch".into(),
            });
        }
        strings_fit(payload, payload.len() as u64, path)?;
        let decoded = bincode::serde::decode_from_slice::<Checkpoint, _>(
            payload,
            bincode::config::standard(),
        );
        if header.version < PLAIN_VERSION
            && !matches!(&decoded, Ok((ck, _)) if ck.progress.is_none())
        {
            // Only the mid-epoch state changed since: the checksum passed, so a payload
            // that does not decode as an end-of-epoch checkpoint is a mid-epoch one.
            return Err(CheckpointError::OldMidEpoch {
                path: p(),
                found: header.version,
            });
        }
        let (mut ck, mut used) = decoded.map_err(|e| CheckpointError::Corrupt {
            path: p(),
            problem: format!("cannot decode payload: {e}"),
        })?;
        if header.version > PLAIN_VERSION {
            let (rule, more) = bincode::serde::decode_from_slice::<RuleParams, _>(
                &payload[used..],
                bincode::config::standard(),
            )
            .map_err(|e| CheckpointError::Corrupt {
                path: p(),
                problem: format!("cannot decode the rule's matrices: {e}"),
            })?;
            ck.rule_params = rule;
            used += more;
        }
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
        let want_q: Vec<usize> = if cfg.learning.rule == LearningRule::Burstccn {
            (0..topo.n_layers() - 1)
                .map(|m| topo.sizes[m] * topo.feedback_size(m))
                .collect()
        } else {
            Vec::new()
        };
        let have_q: Vec<usize> = self.rule_params.q.iter().map(Vec::len).collect();
        if have_q != want_q {
            return Err(corrupt(format!(
                "the rule's Q matrices have sizes {have_q:?}, the model (learning.rule = \"{}\") \
                 needs {want_q:?}",
                cfg.learning.rule.name()
            )));
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

    /// Reads and checks a checkpoint file. The header is read first and checked against
    /// the file's size, so a file is never read further than its header promises: a
    /// device or a pipe is refused, a truncated or padded file is named as such before
    /// its payload is read, and the payload buffer is reserved fallibly.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let (header, mut file) = open_checked(path)?;
        // The payload and the network decoded from it are in memory together.
        crate::io::memory::check(
            header.len.saturating_mul(2),
            &format!("reading checkpoint {}", path.display()),
        )?;
        let read_err = |source| CheckpointError::Read {
            path: path.to_path_buf(),
            source,
        };
        let len = usize::try_from(header.len).map_err(|_| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("a payload of {} bytes", header.len),
        })?;
        let mut payload = Vec::new();
        payload.try_reserve_exact(len).map_err(|_| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot allocate {len} bytes for its payload"),
            ))
        })?;
        (&mut file)
            .take(header.len)
            .read_to_end(&mut payload)
            .map_err(read_err)?;
        if payload.len() != len {
            // The file shrank while it was read.
            return Err(CheckpointError::Truncated {
                path: path.to_path_buf(),
                found: HEADER_LEN + payload.len(),
                expected: HEADER_LEN + len,
            });
        }
        Self::from_payload(&header, &payload, path)
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
pub(crate) fn restore_network(
    cfg: ModelConfig,
    params: Vec<LayerParams>,
    rule_params: RuleParams,
    seed: u64,
    feedback_rng: Rng,
) -> crate::sim::network::Network {
    let mut net = crate::sim::network::Network::from_params(
        crate::sim::network::Model::new(cfg),
        params.clone(),
        seed,
    );
    net.params = params;
    net.rule_params = rule_params;
    net.feedback_rng = feedback_rng;
    net
}

/// File name of the checkpoint after `epoch` complete epochs.
pub fn epoch_file_name(epoch: usize) -> String {
    format!("checkpoint-epoch-{epoch}.bin")
}

/// File name of a mid-epoch checkpoint.
pub(crate) fn progress_file_name(epoch: usize, example: usize) -> String {
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
