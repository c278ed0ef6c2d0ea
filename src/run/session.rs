//! One training run from start to end, as `apical train` and the Python package run it:
//! open or create the run directory, load the data, set up the recorder, train, close the
//! traces. The caller owns signals: it passes a stop flag and gets
//! [`TrainError::Interrupted`] back with the checkpoint to resume from.

use crate::io::checkpoint::Checkpoint;
use crate::io::dataset::{self, DataSet, DataSpec};
use crate::io::memory::{self, MemoryError};
use crate::io::mnist::{DataError, TEST_LEN, TRAIN_LEN};
use crate::io::record::{
    keep_earlier, parse_spec, steps_before, Compression, RecordError, Recorder, RunEnd, StartPoint,
};
use crate::io::run_dir::{
    Budget, DataRecord, KeepCheckpoints, RunDir, RunDirError, RunInfo, RunLock, LOCK_FILE,
};
use crate::model::config::{ConfigError, ModelConfig};
use crate::model::record_plan::RecordPlan;
use crate::model::recording::DEFAULT_SPEC;
use crate::run::events::RunEvents;
use crate::run::trainer::{RunOptions, TrainError, Trainer};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What to train: a new run of a model, or the continuation of a run directory.
// One value per run: the size of `New` costs nothing, and callers (the CLI, the Python
// package) build it by name, which a boxed model would complicate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Start {
    /// A fresh run. `None` counts come from the model file's `[training]` section.
    New {
        model: ModelConfig,
        seed: u64,
        epochs: Option<usize>,
        train_examples: Option<usize>,
        test_examples: Option<usize>,
        /// Default: `runs/<model>-seed<S>`.
        out: Option<PathBuf>,
    },
    /// Continue the run in `dir` from its latest checkpoint, up to `epochs` in total
    /// (default: the run's own).
    Resume { dir: PathBuf, epochs: Option<usize> },
}

/// A training run's settings beyond the model.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub start: Start,
    /// The folder of a named data set's files (`None`: for MNIST `APICAL_DATA`,
    /// `data/mnist`, `../shared/data/mnist`; a resumed run first tries its own data folder).
    pub data: Option<PathBuf>,
    /// The data set (`None`: a resumed run's own, else MNIST).
    pub dataset: Option<DataSpec>,
    /// Data already loaded (the Python package's arrays): used instead of `dataset`.
    pub preloaded: Option<Arc<DataSet>>,
    /// Let a resumed run go on with data other than what it trained on.
    pub other_data: bool,
    /// Check the data files' SHA-256.
    pub verify: bool,
    /// A record spec (docs/traces.md); `None`: the model file's `[[record]]` tables, else
    /// the default (`metrics,weights`).
    pub record: Option<String>,
    pub compression: Compression,
    /// Mid-epoch checkpoint interval in examples (`None`: a resumed run's own, else 0).
    pub checkpoint_every: Option<usize>,
    /// Threads of training: layers wide enough share their neuron blocks among them
    /// ([`crate::sim::exec::Exec::for_threads`]; the default 784-500-10 model stays on one).
    /// `None`: as many as the current rayon pool has (the CLI's `--threads`, else the
    /// cores). Tests run on the rayon pool. Results do not depend on it.
    pub threads: Option<usize>,
    /// Which end-of-epoch checkpoints stay (`None`: a resumed run's own, else the default,
    /// the last two and every tenth).
    pub keep_checkpoints: Option<KeepCheckpoints>,
}

impl TrainRequest {
    /// A request with the run defaults that every entry point shares (`apical train`,
    /// `apical sweep`, `apical reproduce`, the Python package), so the same run writes the
    /// same files whichever door it comes through: MNIST (or the run's own data set) found
    /// the usual way and its SHA-256 checked, the model file's `[[record]]` tables else the default record spec
    /// (per-epoch metrics and weight snapshots), [`Compression::default`] (scale-offset:
    /// readable by every HDF5 reader, libsonata's wheels included), the run's own
    /// checkpoint settings, and as many training threads as the rayon pool has.
    pub fn new(start: Start) -> Self {
        TrainRequest {
            start,
            data: None,
            dataset: None,
            preloaded: None,
            other_data: false,
            verify: true,
            record: None,
            compression: Compression::default(),
            checkpoint_every: None,
            threads: None,
            keep_checkpoints: None,
        }
    }
}

/// Anything that stops a run before it trains, each naming its source.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error("--record: {0}")]
    Record(#[from] RecordError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("{0}")]
    Invalid(String),
}

/// How a run ended.
pub struct TrainOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// `Err(TrainError::Interrupted)` when the stop flag was raised (a checkpoint was
    /// written), other errors as they came.
    pub result: Result<(), TrainError>,
    /// The trace file, or why recording stopped early (the file keeps what was written).
    pub traces: Option<Result<PathBuf, RecordError>>,
}

/// Refuses example counts above what the data set holds (MNIST: 60,000 training and 10,000
/// test images); `train_from` and `test_from` name where each count came from.
pub fn check_counts(
    train_examples: usize,
    train_from: &str,
    test_examples: usize,
    test_from: &str,
) -> Result<(), String> {
    check_counts_in(
        (train_examples, train_from),
        (test_examples, test_from),
        (TRAIN_LEN, TEST_LEN),
        "MNIST",
    )
}

/// [`check_counts`] against a data set `name` of `(train, test)` examples.
pub fn check_counts_in(
    (train_examples, train_from): (usize, &str),
    (test_examples, test_from): (usize, &str),
    (n_train, n_test): (usize, usize),
    name: &str,
) -> Result<(), String> {
    if train_examples > n_train {
        return Err(format!(
            "{train_from} {train_examples} is more than the {n_train} training images of {name}; give at most {n_train}"
        ));
    }
    if test_examples > n_test {
        return Err(format!(
            "{test_from} {test_examples} is more than the {n_test} test images of {name}; give at most {n_test}"
        ));
    }
    Ok(())
}

/// Refuses a model whose training would need more memory than this process may use;
/// `record` is the run's record spec (`None`: the model's `[[record]]` tables, else the
/// default), which says whether weight snapshots are buffered.
pub fn check_memory(cfg: &ModelConfig, record: Option<&str>) -> Result<(), MemoryError> {
    let groups = match record {
        // A spec that does not parse is refused later, naming its fault; counted as
        // recording weights here.
        Some(s) => parse_spec(s).unwrap_or_else(|_| parse_spec(DEFAULT_SPEC).unwrap_or_default()),
        None if !cfg.record.is_empty() => cfg.record.clone(),
        None => parse_spec(DEFAULT_SPEC).unwrap_or_default(),
    };
    let snapshots = groups
        .iter()
        .any(|g| g.variables.iter().any(|v| v == "weights"));
    memory::check(
        crate::sim::memory::training_bytes(cfg, snapshots),
        &format!("the model {} ({})", cfg.name, cfg.sizes_string()),
    )
}

/// Trains as `request` says until done or until `stop` is raised (polled after every
/// example). Messages for the user go to `progress.notice`.
///
/// The run directory is locked first (before the data is read; a second writer of the same
/// directory is refused at once, naming the holder) and stays locked until this returns.
pub fn train(
    request: &TrainRequest,
    progress: &mut dyn RunEvents,
    stop: &AtomicBool,
) -> Result<TrainOutcome, SessionError> {
    let prepared = match &request.start {
        Start::Resume { dir, epochs } => prepare_resume(request, dir, *epochs, progress)?,
        Start::New {
            model,
            seed,
            epochs,
            train_examples,
            test_examples,
            out,
        } => prepare_new(
            request,
            model,
            *seed,
            (*epochs, *train_examples, *test_examples),
            out.as_deref(),
            progress,
        )?,
    };
    // Held until the run's end.
    let _lock = prepared.lock;
    let set = prepared.data;
    let data = &set.data;
    let mut trainer = match prepared.begin {
        Begin::Resume { ck, opts, info } => {
            let t = Trainer::resume(ck, data, opts)?;
            t.run.write_info(&info).map_err(TrainError::from)?;
            t
        }
        Begin::New { model, opts, info } => Trainer::new(model, data, opts, &info)?,
    };
    trainer
        .net
        .set_threads(request.threads.unwrap_or_else(rayon::current_num_threads));
    let exec = trainer.net.exec;
    if exec.threads > 1 {
        progress.notice(&format!(
            "training on {} threads: layers of at least {} neurons share their neuron blocks (one thread while that is faster)",
            exec.threads, exec.parallel_min
        ));
    }
    let resumed = matches!(request.start, Start::Resume { .. });
    let record = DataRecord::of(&set);
    let (result, traces) = run_recorded(
        &mut trainer,
        request.record.as_deref(),
        resumed,
        request.compression,
        Some(&record),
        stop,
        progress,
    )?;
    Ok(TrainOutcome {
        dir: trainer.run.dir.clone(),
        result,
        traces,
    })
}

/// The outcome of a run and of its trace file ([`TrainOutcome`]).
pub(crate) type Recorded = (Result<(), TrainError>, Option<Result<PathBuf, RecordError>>);

/// Trains `trainer` to its end (or until `stop`) with the trace recorder of the record
/// spec (`None`: the model file's `[[record]]` tables, else the default) and compression
/// `z`, naming the data set `data` (when not MNIST): the one way every entry point records
/// a run. A resumed run writes a new trace file whose time continues the run's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_recorded(
    trainer: &mut Trainer<'_>,
    record: Option<&str>,
    resumed: bool,
    z: Compression,
    data: Option<&DataRecord>,
    stop: &AtomicBool,
    progress: &mut dyn RunEvents,
) -> Result<Recorded, SessionError> {
    let mut recorder = make_recorder(trainer, record, resumed, z, data, progress)?;
    let result = match &mut recorder {
        Some(r) => trainer.run_recording(stop, progress, r),
        None => trainer.run(stop, progress),
    };
    let traces = recorder.map(|r| {
        let end = match &result {
            Ok(()) => RunEnd::Completed,
            Err(TrainError::Interrupted { .. }) => RunEnd::Interrupted,
            Err(e) => RunEnd::Failed(e.to_string()),
        };
        r.finish(end)
    });
    Ok((result, traces))
}

/// A run ready to train: its directory locked, the data loaded, and where it begins.
struct Prepared {
    lock: RunLock,
    data: Arc<DataSet>,
    begin: Begin,
}

/// Where a prepared run begins.
// Built once per run.
#[allow(clippy::large_enum_variant)]
enum Begin {
    Resume {
        ck: Checkpoint,
        opts: RunOptions,
        info: RunInfo,
    },
    New {
        model: ModelConfig,
        opts: RunOptions,
        info: RunInfo,
    },
}

/// A resumed run: the directory's latest checkpoint, checked against run.json and
/// model.toml, with the run's own settings where the request leaves them open.
fn prepare_resume(
    request: &TrainRequest,
    dir: &Path,
    epochs_asked: Option<usize>,
    progress: &mut dyn RunEvents,
) -> Result<Prepared, SessionError> {
    let run = RunDir::open(dir)?;
    // Nothing to resume: said without leaving a lock file in a directory that is
    // not a run's; a run still before its first checkpoint is named by its lock.
    if run.checkpoints()?.is_empty() {
        if run.dir.join(LOCK_FILE).exists() {
            drop(run.lock()?);
        }
        return Err(run.no_checkpoint().into());
    }
    let lock = run.lock()?;
    let (ck, latest) = run.latest_checkpoint()?;
    let check = run.verify_resume(&ck, &latest)?;
    for line in &check.repaired {
        progress.notice(line);
    }
    let cfg = check.cfg.clone();
    // A lost run.json: the total is unknown, so the run only completes the epoch it
    // is in unless --epochs says more.
    let own_epochs = check
        .info
        .as_ref()
        .map_or(ck.epochs_done + usize::from(ck.progress.is_some()), |i| {
            i.epochs
        });
    let epochs = epochs_asked.unwrap_or(own_epochs);
    if epochs < ck.epochs_done {
        return Err(SessionError::Invalid(format!(
            "{} already has {} epochs; --epochs gives the total and must be at least that",
            dir.display(),
            ck.epochs_done
        )));
    }
    check_memory(&cfg, request.record.as_deref())?;
    // The request's data set, else the run's own; for MNIST the request's folder (or
    // APICAL_DATA), else the run's own, else the usual places (a run directory copied from
    // another machine).
    let recorded = check.info.as_ref().and_then(|i| i.data.clone());
    let set = match &request.preloaded {
        Some(set) => set.clone(),
        None => {
            let spec = request.dataset.clone().unwrap_or_else(|| {
                recorded
                    .as_ref()
                    .map_or(DataSpec::Mnist, |r| DataSpec::parse(&r.name))
            });
            let own_dir = check
                .info
                .as_ref()
                .map(|i| i.data_dir.clone())
                .filter(|d| d.is_dir());
            let dir = match (&request.data, own_dir) {
                (Some(d), _) => Some(d.clone()),
                (None, _) if crate::io::mnist::data_env().is_some() => None,
                (None, Some(d)) if spec != DataSpec::Path(d.clone()) => Some(d),
                _ => None,
            };
            progress.notice(&format!("loading data set {spec}"));
            Arc::new(dataset::load(&spec, dir.as_deref(), request.verify)?)
        }
    };
    if let Some(r) = &recorded {
        r.check_same(&set, &dir.display().to_string(), request.other_data)
            .map_err(SessionError::Invalid)?;
    }
    dataset::check_model_fits(&cfg, &set.data, &set.name).map_err(SessionError::Invalid)?;
    let data_dir = set.source.clone().unwrap_or_default();
    let checkpoint_every = request
        .checkpoint_every
        .unwrap_or(check.info.as_ref().map_or(0, |i| i.checkpoint_every));
    let keep_checkpoints = request.keep_checkpoints.unwrap_or(
        check
            .info
            .as_ref()
            .map_or_else(Default::default, |i| i.keep_checkpoints),
    );
    let opts = RunOptions {
        epochs,
        // The checkpoint's seed and example counts replace these (Trainer::resume).
        train_examples: ck.train_examples,
        test_examples: ck.test_examples,
        seed: ck.seed,
        out_dir: dir.to_path_buf(),
        checkpoint_every,
        keep_checkpoints,
    };
    progress.notice(&format!(
        "resuming {} from {} ({}) up to {} epochs",
        dir.display(),
        latest.display(),
        position(&ck),
        epochs
    ));
    let info = match check.info {
        Some(info) => RunInfo {
            epochs,
            checkpoint_every,
            keep_checkpoints,
            data: Some(DataRecord::of(&set)),
            ..info
        },
        None => {
            if epochs_asked.is_none() {
                progress.notice(&format!(
                    "run.json held the run's total number of epochs; continuing to epoch {epochs} only (give --epochs for more)"
                ));
            }
            RunInfo {
                apical_version: env!("CARGO_PKG_VERSION").into(),
                model: cfg.name.clone(),
                seed: ck.seed,
                epochs,
                train_examples: ck.train_examples,
                test_examples: ck.test_examples,
                data_dir,
                checkpoint_every,
                keep_checkpoints,
                data: Some(DataRecord::of(&set)),
            }
        }
    };
    Ok(Prepared {
        lock,
        data: set,
        begin: Begin::Resume { ck, opts, info },
    })
}

/// A new run: counts from the request or the model file, checked; the run directory
/// created and locked.
fn prepare_new(
    request: &TrainRequest,
    model: &ModelConfig,
    seed: u64,
    (epochs, train_examples, test_examples): (Option<usize>, Option<usize>, Option<usize>),
    out: Option<&Path>,
    progress: &mut dyn RunEvents,
) -> Result<Prepared, SessionError> {
    if let Some(spec) = &request.record {
        RecordPlan::resolve(
            &parse_spec(spec).map_err(RecordError::from)?,
            &model.topology(),
            model.neuron.mode != crate::model::config::NeuronMode::Rate,
        )
        .map_err(RecordError::from)?;
    }
    let (train_from, test_from) = (
        if train_examples.is_some() {
            "--train-examples"
        } else {
            "the model's training.train_examples ="
        },
        if test_examples.is_some() {
            "--test-examples"
        } else {
            "the model's training.test_examples ="
        },
    );
    let epochs = epochs.unwrap_or(model.training.epochs);
    let train_examples = train_examples.unwrap_or(model.training.train_examples);
    let test_examples = test_examples.unwrap_or(model.training.test_examples);
    if epochs == 0 || train_examples == 0 || test_examples == 0 {
        return Err(SessionError::Invalid(
            "--epochs, --train-examples and --test-examples must be at least 1".into(),
        ));
    }
    if request.dataset.is_none() && request.preloaded.is_none() {
        // MNIST: refused before the data is read.
        check_counts(train_examples, train_from, test_examples, test_from)
            .map_err(SessionError::Invalid)?;
    }
    check_memory(model, request.record.as_deref())?;
    let out = out.map_or_else(
        || PathBuf::from(format!("runs/{}-seed{seed}", model.name)),
        Path::to_path_buf,
    );
    let (run, lock) = RunDir::create_locked(&out)?;
    run.refuse_checkpoints()?;
    refuse_symlink(&out.join("traces.h5"))?;
    let set = match &request.preloaded {
        Some(set) => set.clone(),
        None => {
            let spec = request.dataset.clone().unwrap_or_default();
            progress.notice(&format!("loading data set {spec}"));
            Arc::new(dataset::load(
                &spec,
                request.data.as_deref(),
                request.verify,
            )?)
        }
    };
    dataset::check_model_fits(model, &set.data, &set.name).map_err(SessionError::Invalid)?;
    check_counts_in(
        (train_examples, train_from),
        (test_examples, test_from),
        (set.data.train.len(), set.data.test.len()),
        &format!("the data set {}", set.name),
    )
    .map_err(SessionError::Invalid)?;
    let checkpoint_every = request.checkpoint_every.unwrap_or(0);
    let keep_checkpoints = request.keep_checkpoints.unwrap_or_default();
    let info = RunInfo {
        apical_version: env!("CARGO_PKG_VERSION").into(),
        model: model.name.clone(),
        seed,
        epochs,
        train_examples,
        test_examples,
        data_dir: set.source.clone().unwrap_or_default(),
        checkpoint_every,
        keep_checkpoints,
        data: Some(DataRecord::of(&set)),
    };
    let opts = RunOptions {
        epochs,
        train_examples,
        test_examples,
        seed,
        out_dir: out.clone(),
        checkpoint_every,
        keep_checkpoints,
    };
    progress.notice(&format!(
        "training {} ({}) for {} epoch(s) of {} examples, testing on {}; run directory {}",
        model.name,
        model.sizes_string(),
        epochs,
        train_examples,
        test_examples,
        out.display()
    ));
    Ok(Prepared {
        lock,
        data: set,
        begin: Begin::New {
            model: model.clone(),
            opts,
            info,
        },
    })
}

/// A trace file's name taken by a symbolic link: refused before the recorder opens it.
fn refuse_symlink(path: &Path) -> Result<(), SessionError> {
    crate::io::atomic::refuse_symlink(path).map_err(|e| SessionError::Invalid(e.to_string()))
}

/// "N epochs done" or "N epochs and K examples of epoch N+1 done".
fn position(ck: &Checkpoint) -> String {
    match &ck.progress {
        Some(p) => format!(
            "{} epochs and {} examples of epoch {} done",
            ck.epochs_done,
            p.example,
            ck.epochs_done + 1
        ),
        None => format!("{} epochs done", ck.epochs_done),
    }
}

/// The trace recorder of a run: the request's spec, else the model file's [[record]]
/// tables, else the default spec. A resumed run writes a new file whose time continues the
/// run's. A file already at the new file's name (the traces of a run killed before its
/// first checkpoint, or of a resume killed before its next) is kept under another name
/// ([`keep_earlier`]), which `progress` is told.
fn make_recorder(
    t: &Trainer<'_>,
    spec: Option<&str>,
    resumed: bool,
    z: Compression,
    data: Option<&DataRecord>,
    progress: &mut dyn RunEvents,
) -> Result<Option<Recorder>, SessionError> {
    let cfg = &t.net.model.cfg;
    let (groups, text) = match spec {
        Some(s) => (parse_spec(s).map_err(RecordError::from)?, s.to_string()),
        None if !cfg.record.is_empty() => (
            cfg.record.clone(),
            "[[record]] tables of the model file".to_string(),
        ),
        None => (
            parse_spec(DEFAULT_SPEC).expect("the default spec parses"),
            DEFAULT_SPEC.to_string(),
        ),
    };
    if groups.is_empty() {
        return Ok(None);
    }
    let epoch = t.history.len() + 1;
    let example = t.resume_progress.as_ref().map_or(0, |p| p.example);
    let n_train = t.opts.train_examples.min(t.data.train.len());
    let step = steps_before(cfg, t.opts.seed, n_train, epoch, example);
    let mut path = t.run.dir.join("traces.h5");
    if resumed && path.exists() {
        path = t
            .run
            .dir
            .join(format!("traces-from-epoch{epoch}-example{example}.h5"));
    }
    let start = StartPoint {
        epoch,
        example,
        step,
    };
    // The recorder would write through a link at the trace file's name.
    refuse_symlink(&path)?;
    let kept = keep_earlier(&path).map_err(|e| RecordError::Write {
        path: path.clone(),
        message: format!("cannot keep the earlier trace file at this name: {e}"),
    })?;
    if let Some(kept) = kept {
        progress.notice(&format!(
            "kept the traces of an earlier attempt at this run (it stopped before its next checkpoint) as {}; the new traces go to {}",
            kept.display(),
            path.display()
        ));
    }
    Ok(Recorder::create(
        &path,
        &groups,
        &text,
        cfg,
        &t.model_toml,
        t.opts.seed,
        start,
        Budget {
            epochs: t.opts.epochs,
            train_examples: t.opts.train_examples,
            test_examples: t.opts.test_examples,
        },
        z,
        data,
    )
    .map(Some)?)
}
