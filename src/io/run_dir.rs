//! The run directory: the model as run, run.json, metrics and checkpoints, in one place
//! (file names in README.md). Train, eval, plot and reproduce all open runs through it.
//!
//! One process writes a run directory at a time: [`RunDir::lock`] takes an OS file lock on
//! `apical.lock` (released by the kernel when the process ends, however it ends) and
//! writes who holds it; a second writer is refused at once with the holder's name.

use crate::io::atomic::{is_temporary_name, write_atomic};
use crate::io::checkpoint::{self, Checkpoint, CheckpointError, CheckpointHead};
use crate::io::metrics_file;
pub use crate::io::metrics_file::{trained, EpochMetrics};
use crate::model::config::ModelConfig;
use crate::sim::network::Network;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The lock file of a run directory.
pub const LOCK_FILE: &str = "apical.lock";

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
    #[error(
        "run directory {} is in use by {holder} (lock file {}); wait for that run to end or stop it: the lock is released when its process ends, however it ends",
        dir.display(),
        dir.join(LOCK_FILE).display()
    )]
    Locked { dir: PathBuf, holder: String },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.to_path_buf(),
        source,
    }
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
    /// Which end-of-epoch checkpoints are kept (runs of apical before 0.1's retention:
    /// the default).
    #[serde(default)]
    pub keep_checkpoints: KeepCheckpoints,
    /// The data the run trained on (runs of apical before data sets: MNIST, not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataRecord>,
}

impl RunInfo {
    /// The budget the run trains.
    pub fn budget(&self) -> Budget {
        Budget {
            epochs: self.epochs,
            train_examples: self.train_examples,
            test_examples: self.test_examples,
        }
    }
}

/// The budget a run trains: epochs, training examples per epoch and test images, from the
/// command line (or a sweep's budget) where given, else from the model file's `[training]`
/// section. Shown beside the model wherever the model is: the run directory's model.toml
/// ([`model_file_text`]), the trace file's root attributes and the NWB export, so that a
/// run shortened from the command line is never read as the model file's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub epochs: usize,
    pub train_examples: usize,
    pub test_examples: usize,
}

impl std::fmt::Display for Budget {
    /// "2 epochs of 500 training examples, 1000 test images".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} epoch{} of {} training examples, {} test images",
            self.epochs,
            if self.epochs == 1 { "" } else { "s" },
            self.train_examples,
            self.test_examples
        )
    }
}

/// The first words of the comment block that opens a run directory's model.toml.
const BUDGET_BLOCK: &str = "# The budget this run trained";

/// The text of a run directory's model.toml: a comment block naming the budget the run
/// trains (and whether it replaced the model file's `[training]` section), a blank line,
/// then `model_toml`, the model as run, byte for byte the checkpoint's copy. Comments are
/// all the block adds: the file loads as the model it holds ([`model_text_of`] gives the
/// model text back).
pub fn model_file_text(model_toml: &str, seed: u64, budget: Budget) -> String {
    let own = ModelConfig::from_toml_str(model_toml, "the model").map(|c| Budget {
        epochs: c.training.epochs,
        train_examples: c.training.train_examples,
        test_examples: c.training.test_examples,
    });
    let whose = match own {
        Ok(own) if own == budget => "the model file's own ([training] below):".to_string(),
        Ok(own) => format!(
            "set when it was started (command-line flags, a sweep's\n\
             # budget or Python's arguments) in place of the model file's [training] section below\n\
             # ({own}):"
        ),
        Err(_) => "(the [training] section below is the model file's):".to_string(),
    };
    format!(
        "{BUDGET_BLOCK}, {whose}\n#   epochs = {}, train_examples = {} per epoch, test_examples = {}, seed = {seed}\n\n{model_toml}",
        budget.epochs, budget.train_examples, budget.test_examples
    )
}

/// The model text of a run directory's model.toml: without the budget comment block of
/// [`model_file_text`] (the model.toml of a run written before the block: as it is).
pub fn model_text_of(file: &str) -> &str {
    match file.strip_prefix(BUDGET_BLOCK) {
        Some(rest) => rest.find("\n\n").map_or(file, |i| &rest[i + 2..]),
        None => file,
    }
}

/// Which data a run saw: the data set's name (`mnist`, `fashion-mnist`, a path, `arrays`)
/// and the SHA-256 of its content ([`crate::io::dataset::content_digest`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    pub name: String,
    pub sha256: String,
    /// Inputs per example and classes.
    pub n_in: usize,
    pub classes: usize,
}

impl DataRecord {
    /// The record of `set`.
    pub fn of(set: &crate::io::dataset::DataSet) -> Self {
        DataRecord {
            name: set.name.clone(),
            sha256: set.sha256.clone(),
            n_in: set.n_in(),
            classes: set.classes(),
        }
    }

    /// Refuses `set` when it is not the data of this record (unless `allow`), naming both
    /// and the flag that allows it. `what` is the run or checkpoint concerned.
    pub fn check_same(
        &self,
        set: &crate::io::dataset::DataSet,
        what: &str,
        allow: bool,
    ) -> Result<(), String> {
        if allow || self.sha256 == set.sha256 {
            return Ok(());
        }
        Err(format!(
            "{what} was trained on data set {} (content SHA-256 {}) but the data given is {} (SHA-256 {}); \
             give --dataset {} to use the run's data, or --other-data to go on with this data anyway",
            self.name, short(&self.sha256), set.name, short(&set.sha256), self.name
        ))
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(16)]
}

/// Which end-of-epoch checkpoints a run keeps: `all`, or the last `last` (at least 1)
/// plus every `every`-th epoch (0: none). Written `all`, `last:2,every:10`, `last:3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeepCheckpoints {
    All,
    Some { last: usize, every: usize },
}

impl Default for KeepCheckpoints {
    /// The last two and every tenth epoch.
    fn default() -> Self {
        KeepCheckpoints::Some { last: 2, every: 10 }
    }
}

impl KeepCheckpoints {
    /// Whether the checkpoint after `epoch` epochs stays once `latest` epochs are done.
    pub fn keeps(&self, epoch: usize, latest: usize) -> bool {
        match *self {
            KeepCheckpoints::All => true,
            KeepCheckpoints::Some { last, every } => {
                epoch + last.max(1) > latest || (every > 0 && epoch % every == 0)
            }
        }
    }
}

impl std::fmt::Display for KeepCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            KeepCheckpoints::All => write!(f, "all"),
            KeepCheckpoints::Some { last, every: 0 } => write!(f, "last:{last}"),
            KeepCheckpoints::Some { last, every } => write!(f, "last:{last},every:{every}"),
        }
    }
}

impl std::str::FromStr for KeepCheckpoints {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "all" {
            return Ok(KeepCheckpoints::All);
        }
        let bad = || {
            format!(
                "{s:?} is not a checkpoint retention: give `all`, or `last:N` (N >= 1) optionally followed by `,every:M`, e.g. `last:2,every:10`"
            )
        };
        let (mut last, mut every) = (None, 0);
        for part in s.split(',') {
            let (key, value) = part.trim().split_once(':').ok_or_else(bad)?;
            let value: usize = value.trim().parse().map_err(|_| bad())?;
            match key.trim() {
                "last" if last.is_none() && value >= 1 => last = Some(value),
                "every" => every = value,
                _ => return Err(bad()),
            }
        }
        Ok(KeepCheckpoints::Some {
            last: last.ok_or_else(bad)?,
            every,
        })
    }
}

impl TryFrom<String> for KeepCheckpoints {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<KeepCheckpoints> for String {
    fn from(k: KeepCheckpoints) -> String {
        k.to_string()
    }
}

/// Who holds a run directory's lock, as written into its lock file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    /// `SLURM_JOB_ID` of the holder, when it ran under Slurm.
    #[serde(default)]
    pub slurm_job_id: Option<String>,
}

impl LockHolder {
    /// This process.
    pub fn this_process() -> Self {
        LockHolder {
            pid: std::process::id(),
            host: host_name(),
            slurm_job_id: std::env::var("SLURM_JOB_ID")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on host {}", self.pid, self.host)?;
        if let Some(job) = &self.slurm_job_id {
            write!(f, " (Slurm job {job})")?;
        }
        Ok(())
    }
}

/// An exclusive `flock` on `file` without waiting: Ok(false) when another open file holds
/// one. (`File::try_lock` does the same from Rust 1.89; this crate builds with 1.85.)
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this File owns for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Without flock, no lock (apical's platform is Linux).
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into the buffer.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
}

/// The holder named in a lock file held by another process. A process writes its name
/// just after it takes the lock, so a lock taken a moment ago may still be nameless: look
/// again for up to about 200 ms before giving up.
fn read_holder(file: &mut File) -> Option<LockHolder> {
    use std::io::Seek;
    for attempt in 0..40 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut text = String::new();
        if file.rewind().is_err() {
            return None;
        }
        let _ = (&mut *file).take(4096).read_to_string(&mut text);
        if let Ok(h) = serde_json::from_str::<LockHolder>(&text) {
            return Some(h);
        }
    }
    None
}

/// The lock of a run directory, held until dropped (or until the process ends: the kernel
/// releases it then, however the process ends). A directory that [`RunDir::create_locked`]
/// created and in which nothing else was written is removed again on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    created: bool,
}

impl RunLock {
    /// The directory locked.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn acquire(dir: &Path, created: bool) -> Result<Self, RunDirError> {
        let path = dir.join(LOCK_FILE);
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(libc::O_NOFOLLOW).mode(0o644);
        }
        let mut file = o.open(&path).map_err(|e| {
            if crate::io::atomic::refuse_symlink(&path).is_err() {
                RunDirError::Invalid(format!(
                    "{} is a symbolic link; apical does not write through links: remove it",
                    path.display()
                ))
            } else {
                RunDirError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        let locked = |holder: String| RunDirError::Locked {
            dir: dir.to_path_buf(),
            holder,
        };
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => {
                let holder = read_holder(&mut file)
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "another process".into());
                return Err(locked(holder));
            }
            Err(e) => {
                return Err(RunDirError::Io {
                    path: path.clone(),
                    source: e,
                })
            }
        }
        // The file locked must still be the one at the path (a run that failed before
        // training removes the directory it created, lock file included).
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let same = match (file.metadata(), fs::symlink_metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if !same {
                return Err(locked("a run that was just removing it".into()));
            }
        }
        let holder =
            serde_json::to_string(&LockHolder::this_process()).expect("a lock holder serialises");
        let io = |source| RunDirError::Io {
            path: path.clone(),
            source,
        };
        file.set_len(0).map_err(io)?;
        (&file)
            .write_all(format!("{holder}\n").as_bytes())
            .map_err(io)?;
        remove_stale_temporaries(dir);
        Ok(RunLock {
            file,
            path,
            dir: dir.to_path_buf(),
            created,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The holder's name goes with the lock (a killed process leaves its name behind;
        // the kernel releases its lock all the same).
        let _ = self.file.set_len(0);
        if self.created {
            let only_lock = fs::read_dir(&self.dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .all(|e| e.file_name() == LOCK_FILE)
                })
                .unwrap_or(false);
            if only_lock {
                let _ = fs::remove_file(&self.path);
                let _ = fs::remove_dir(&self.dir);
            }
        }
    }
}

/// Removes temporary files of atomic writes that a killed writer left behind (only the
/// lock holder writes in a run directory, so none of them is being written).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_temporary_name(&name) && is_run_file(temporary_target(&name)) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The file a temporary file `.NAME.PID-N.tmp` (or `.NAME.tmp`) stands for.
fn temporary_target(tmp: &str) -> &str {
    let inner = &tmp[1..tmp.len() - 4];
    match inner.rsplit_once('.') {
        Some((name, suffix))
            if suffix
                .split_once('-')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u64>().is_ok()) =>
        {
            name
        }
        _ => inner,
    }
}

/// The files of a run directory that are written atomically.
fn is_run_file(name: &str) -> bool {
    matches!(
        name,
        "model.toml" | "run.json" | "metrics.csv" | "metrics.json" | "alignment.csv"
    ) || (name.starts_with("checkpoint-epoch-") && name.ends_with(".bin"))
}

/// What a resume found in run.json and model.toml ([`RunDir::verify_resume`]).
#[derive(Debug)]
pub struct ResumeCheck {
    /// The checkpoint's model.
    pub cfg: ModelConfig,
    /// run.json, or None when it was missing or unreadable (the caller writes a new one).
    pub info: Option<RunInfo>,
    /// One line per file repaired or to be rewritten, for the user.
    pub repaired: Vec<String>,
}

/// A run directory: model copy, run.json, metrics, checkpoints.
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory; refuses one that already holds checkpoints.
    pub fn create(dir: &Path, cfg_toml: &str, info: &RunInfo) -> Result<Self, RunDirError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let rd = RunDir {
            dir: dir.to_path_buf(),
        };
        rd.refuse_checkpoints()?;
        rd.write_model(cfg_toml, info.seed, info.budget())?;
        rd.write_info(info)?;
        Ok(rd)
    }

    /// Writes model.toml: the model text as run under the comment block that names the
    /// run's budget ([`model_file_text`]). A resumed run writes it again (its epochs may
    /// have grown).
    pub fn write_model(
        &self,
        model_toml: &str,
        seed: u64,
        budget: Budget,
    ) -> Result<(), RunDirError> {
        let p = self.dir.join("model.toml");
        let text = model_file_text(model_toml, seed, budget);
        write_atomic(&p, text.as_bytes()).map_err(io_err(&p))
    }

    /// Creates `dir` (and its parents) if needed and locks it; a directory created here in
    /// which nothing but the lock file was written is removed again when the lock is
    /// dropped (a run that fails before it trains leaves nothing behind).
    pub fn create_locked(dir: &Path) -> Result<(Self, RunLock), RunDirError> {
        let created = !dir.exists();
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = RunLock::acquire(dir, created)?;
        Ok((
            RunDir {
                dir: dir.to_path_buf(),
            },
            lock,
        ))
    }

    /// Locks the run directory for writing: no other process can lock it until the lock
    /// is dropped or this process ends. Refused at once, naming the holder (process id,
    /// host, Slurm job), when another process holds it.
    pub fn lock(&self) -> Result<RunLock, RunDirError> {
        RunLock::acquire(&self.dir, false)
    }

    /// Refuses a directory that already holds checkpoints (a new run would overwrite them).
    pub fn refuse_checkpoints(&self) -> Result<(), RunDirError> {
        if self.checkpoints()?.is_empty() {
            return Ok(());
        }
        Err(RunDirError::Invalid(format!(
            "run directory {} already holds checkpoints; continue it with `apical train --resume {}` or choose another --out",
            self.dir.display(),
            self.dir.display()
        )))
    }

    pub fn write_info(&self, info: &RunInfo) -> Result<(), RunDirError> {
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

    /// The latest checkpoint, loaded and checked. The latest is chosen by content (epochs
    /// done, then examples done in the next epoch): every checkpoint's head is read, and a
    /// file whose name and content disagree, or which belongs to another run (model,
    /// seed or example counts differ from the latest's), is an error naming it. A damaged
    /// latest checkpoint is an error that names the checkpoint before it.
    pub fn latest_checkpoint(&self) -> Result<(Checkpoint, PathBuf), RunDirError> {
        let list = self.checkpoints()?;
        if list.is_empty() {
            return Err(self.no_checkpoint());
        }
        // Heads of the readable files (a damaged file's head may be garbage: whatever it
        // claims is confirmed by a full load before it is held against it).
        let heads: Vec<Option<CheckpointHead>> = list
            .iter()
            .map(|(_, _, p)| checkpoint::peek(p).ok())
            .collect();
        let confirmed = |p: &Path| Checkpoint::load(p).is_ok();
        for ((e, k, p), head) in list.iter().zip(&heads) {
            if let Some(h) = head {
                if h.position() != (*e, *k) && confirmed(p) {
                    return Err(RunDirError::Invalid(format!(
                        "checkpoint {} is named for {} but holds {}: its name and content disagree (a renamed or copied file?); move it away",
                        p.display(),
                        describe_position(*e, *k),
                        describe_position(h.epochs_done, h.position().1)
                    )));
                }
            }
        }
        let n = list.len();
        let latest = &list[n - 1].2;
        let loaded = Checkpoint::load(latest).and_then(|ck| ck.check(latest).map(|_| ck));
        let ck = loaded.map_err(|e| {
            let previous = match n {
                1 => String::new(),
                n => format!(
                    "; to use the checkpoint before it, move {} away (the previous one is {})",
                    latest.display(),
                    list[n - 2].2.display()
                ),
            };
            RunDirError::Invalid(format!("{e}{previous}"))
        })?;
        for ((_, _, p), head) in list.iter().zip(&heads).take(n - 1) {
            if let Some(h) = head {
                let same = h.model_sha256 == ck.model_sha256
                    && (h.seed, h.train_examples, h.test_examples)
                        == (ck.seed, ck.train_examples, ck.test_examples);
                if !same && confirmed(p) {
                    return Err(RunDirError::Invalid(format!(
                        "checkpoints {} and {} belong to different runs: {} against {}; move the one that does not belong to this run away",
                        latest.display(),
                        p.display(),
                        describe_run(&ck.model_toml, &ck.model_sha256, ck.seed, ck.train_examples, ck.test_examples),
                        describe_run(&h.model_toml, &h.model_sha256, h.seed, h.train_examples, h.test_examples),
                    )));
                }
            }
        }
        Ok((ck, latest.clone()))
    }

    /// "D holds no checkpoint" (and, without run.json, "is not a run directory").
    pub fn no_checkpoint(&self) -> RunDirError {
        let what = if self.dir.join("run.json").exists() {
            ""
        } else {
            " and no run.json: it is not a run directory"
        };
        RunDirError::Invalid(format!("{} holds no checkpoint{what}", self.dir.display()))
    }

    /// Checks run.json and model.toml against the checkpoint a resume continues from
    /// (`ck`, read from `ck_path`): the model (text, or the same model written
    /// differently), its name, the seed and the example counts must agree; a conflict is an
    /// error naming both files. A missing or unparsable model.toml is rewritten from the
    /// checkpoint; a missing or unparsable run.json is reported as `info: None` for the
    /// caller to write anew.
    pub fn verify_resume(
        &self,
        ck: &Checkpoint,
        ck_path: &Path,
    ) -> Result<ResumeCheck, RunDirError> {
        let ck_cfg = ck.check(ck_path)?;
        let mut repaired = Vec::new();
        let model_path = self.dir.join("model.toml");
        let damaged = match fs::read_to_string(&model_path) {
            Ok(text) if model_text_of(&text) == ck.model_toml => None,
            Ok(text) => match ModelConfig::from_toml_str(&text, &model_path.display().to_string()) {
                Ok(cfg) if cfg == ck_cfg => None,
                Ok(cfg) => {
                    return Err(RunDirError::Invalid(format!(
                        "{} does not match checkpoint {}: model.toml describes {}, the checkpoint {}; they are not one run: restore the run's model.toml (the checkpoint's model is the run's), or move the checkpoint away if it belongs to another run",
                        model_path.display(),
                        ck_path.display(),
                        describe_model(&cfg, &checkpoint::sha256_hex(text.as_bytes())),
                        describe_model(&ck_cfg, &ck.model_sha256),
                    )))
                }
                Err(e) => Some(format!("could not be parsed ({e})")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("was missing".into()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Some("was not UTF-8 text".into())
            }
            Err(e) => return Err(io_err(&model_path)(e)),
        };
        if let Some(why) = damaged {
            write_atomic(&model_path, ck.model_toml.as_bytes()).map_err(io_err(&model_path))?;
            repaired.push(format!(
                "{} {why}: rewritten from {}",
                model_path.display(),
                ck_path.display()
            ));
        }
        let info_path = self.dir.join("run.json");
        let info = match self.read_info() {
            Ok(info) => {
                let mut conflicts = Vec::new();
                if info.model != ck_cfg.name {
                    conflicts.push(format!("model {:?} against {:?}", info.model, ck_cfg.name));
                }
                for (what, a, b) in [
                    ("seed", info.seed, ck.seed),
                    (
                        "train_examples",
                        info.train_examples as u64,
                        ck.train_examples as u64,
                    ),
                    (
                        "test_examples",
                        info.test_examples as u64,
                        ck.test_examples as u64,
                    ),
                ] {
                    if a != b {
                        conflicts.push(format!("{what} {a} against {b}"));
                    }
                }
                if !conflicts.is_empty() {
                    return Err(RunDirError::Invalid(format!(
                        "{} does not match checkpoint {} ({}); they are not one run: restore the run's run.json (or remove it: it is rebuilt from the checkpoint), or move the checkpoint away if it belongs to another run",
                        info_path.display(),
                        ck_path.display(),
                        conflicts.join(", ")
                    )));
                }
                Some(info)
            }
            Err(RunDirError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                repaired.push(format!(
                    "{} was missing: rebuilt from {}",
                    info_path.display(),
                    ck_path.display()
                ));
                None
            }
            Err(RunDirError::Invalid(problem)) => {
                repaired.push(format!("{problem}: rebuilt from {}", ck_path.display()));
                None
            }
            Err(e) => return Err(e),
        };
        Ok(ResumeCheck {
            cfg: ck_cfg,
            info,
            repaired,
        })
    }

    /// Deletes the end-of-epoch checkpoints before epoch `latest` that `keep` does not
    /// keep (mid-epoch files are removed by the trainer when their epoch ends). Call only
    /// once checkpoint `latest` is on disk: it is checked to be complete and to hold
    /// `latest` epochs first, and nothing is deleted otherwise. Returns what was deleted.
    pub fn prune_checkpoints(
        &self,
        keep: KeepCheckpoints,
        latest: usize,
    ) -> Result<Vec<PathBuf>, RunDirError> {
        if keep == KeepCheckpoints::All {
            return Ok(Vec::new());
        }
        let newest = self.dir.join(checkpoint::epoch_file_name(latest));
        let head = checkpoint::peek(&newest)?;
        if head.position() != (latest, 0) {
            return Err(RunDirError::Invalid(format!(
                "{} does not hold {latest} epochs; no checkpoint was deleted",
                newest.display()
            )));
        }
        let mut deleted = Vec::new();
        for (e, k, p) in self.checkpoints()? {
            if k == 0 && e < latest && !keep.keeps(e, latest) {
                fs::remove_file(&p).map_err(io_err(&p))?;
                deleted.push(p);
            }
        }
        Ok(deleted)
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

    /// The initial network's test (epoch 0) from metrics.json, for a resumed run: it is
    /// never measured again. None when the run has none (or its metrics were lost).
    pub(crate) fn read_initial(&self) -> Option<EpochMetrics> {
        metrics_file::read_initial(&self.dir)
    }

    /// The burst probabilities of every trained epoch in metrics.json (empty where none),
    /// for a resumed run.
    pub(crate) fn read_burst_probabilities(&self) -> Vec<Vec<f64>> {
        metrics_file::read_burst_probabilities(&self.dir)
    }

    /// Wall times [train, test, train per example] of earlier trained epochs from
    /// metrics.json (for resumed runs; the initial test's row is not one); NaN where unknown.
    pub(crate) fn read_wall_times(&self) -> Vec<[f64; 3]> {
        metrics_file::read_wall_times(&self.dir)
    }

    /// Rewrites metrics.csv and metrics.json with every epoch so far (the initial test,
    /// epoch 0, first when the run has it).
    pub(crate) fn write_metrics(&self, metrics: &[EpochMetrics]) -> Result<(), RunDirError> {
        let p = self.dir.join("metrics.csv");
        write_atomic(&p, metrics_file::csv_text(metrics).as_bytes()).map_err(io_err(&p))?;
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
        ck.rule_params.clone(),
        ck.seed,
        ck.feedback_rng.clone(),
    ))
}

/// "epoch 9" (an end-of-epoch file) or "epoch 3 example 500" (inside epoch 3).
fn describe_position(epochs_done: usize, example: usize) -> String {
    if example == 0 {
        format!("{epochs_done} epochs done")
    } else {
        format!(
            "{epochs_done} epochs and {example} examples of epoch {} done",
            epochs_done + 1
        )
    }
}

/// "guerguiev-2h 784-500-100-10 (model SHA-256 1a2b3c4d...)".
fn describe_model(cfg: &ModelConfig, sha: &str) -> String {
    format!(
        "{} {} (model SHA-256 {}...)",
        cfg.name,
        cfg.sizes_string(),
        &sha[..sha.len().min(12)]
    )
}

fn describe_run(toml: &str, sha: &str, seed: u64, train: usize, test: usize) -> String {
    let model = match ModelConfig::from_toml_str(toml, "the stored model") {
        Ok(cfg) => describe_model(&cfg, sha),
        Err(_) => format!("model SHA-256 {}...", &sha[..sha.len().min(12)]),
    };
    format!("{model}, seed {seed}, {train} training / {test} test examples")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = include_str!("../../models/guerguiev-0h.toml");

    #[test]
    fn model_toml_names_the_budget_run_and_loads_as_the_model() {
        let cfg = ModelConfig::from_toml_str(MODEL, "m").unwrap();
        let text = cfg.to_toml_string();
        let short = Budget {
            epochs: 2,
            train_examples: 500,
            test_examples: 1000,
        };
        let file = model_file_text(&text, 3, short);
        assert_eq!(
            file,
            format!(
                "# The budget this run trained, set when it was started (command-line flags, a sweep's\n\
                 # budget or Python's arguments) in place of the model file's [training] section below\n\
                 # (60 epochs of 60000 training examples, 10000 test images):\n\
                 #   epochs = 2, train_examples = 500 per epoch, test_examples = 1000, seed = 3\n\n{text}"
            )
        );
        // Comments only: the file loads as the model, whose [training] is the model file's.
        assert_eq!(ModelConfig::from_toml_str(&file, "m").unwrap(), cfg);
        assert_eq!(model_text_of(&file), text);
        // The model file's own budget is said to be that.
        let own = Budget {
            epochs: 60,
            train_examples: 60000,
            test_examples: 10000,
        };
        let file = model_file_text(&text, 0, own);
        assert!(file.starts_with(
            "# The budget this run trained, the model file's own ([training] below):\n\
             #   epochs = 60, train_examples = 60000 per epoch, test_examples = 10000, seed = 0\n\n"
        ));
        assert_eq!(model_text_of(&file), text);
        // A model.toml of a run before the block is its own model text.
        assert_eq!(model_text_of(&text), text);
        assert_eq!(
            short.to_string(),
            "2 epochs of 500 training examples, 1000 test images"
        );
    }
}
