//! `apical reproduce`: every experiment of Guerguiev, Lillicrap & Richards (eLife 2017) as a
//! model file, run with the normal [`Trainer`] in its own run directory
//! (`<out>/<experiment>/seed<S>/`), several at once, then a results page (docs/results.md)
//! with the paper's number beside apical's and the plots.
//!
//! The paper's numbers live in one table, `EXPERIMENTS`; the model files are embedded so
//! the binary runs anywhere.

use crate::app::plot::{self, PlotError, Series};
use crate::io::memory::MemoryError;
use crate::io::mnist::Mnist;
use crate::io::run_dir::{
    model_text_of, trained, EpochMetrics, KeepCheckpoints, RunDir, RunDirError, RunInfo, RunLock,
};
use crate::model::config::{ConfigError, ModelConfig};
use crate::model::overrides::Override;
use crate::run::events::Quiet;
use crate::run::metrics::evaluate_repeats;
use crate::run::session::{run_recorded, SessionError, Start, TrainRequest};
use crate::run::trainer::{RunOptions, TrainError, Trainer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub use crate::app::experiments::Experiment;
pub(crate) use crate::app::experiments::EXPERIMENTS;

#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    #[error("unknown experiment {0:?}; known: all, {1}")]
    Unknown(String, String),
    #[error("embedded model {0}: {1}")]
    Model(&'static str, ConfigError),
    #[error("{experiment} seed {seed}: {source}")]
    Train {
        experiment: String,
        seed: u64,
        source: TrainError,
    },
    #[error(
        "{dir} holds a run with other settings or an unfinished run ({problem}); remove it or choose another --out"
    )]
    Mismatch { dir: PathBuf, problem: String },
    #[error("{experiment} seed {seed}: {source}")]
    Recording {
        experiment: String,
        seed: u64,
        source: Box<SessionError>,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("{0}")]
    Budget(String),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The experiments named by `spec`: "all", or a comma-separated list of names (the
/// "guerguiev-" prefix may be left out).
pub fn select(spec: &str) -> Result<Vec<&'static Experiment>, ReproduceError> {
    Ok(select_with_seeds(spec)?.0)
}

/// [`select`], where a name may carry its own number of seeds (`0h:3`: seeds 0, 1 and 2
/// of 0h, whatever `--seeds` says), and "all" may stand beside such names: `all,0h:3,1h:3`
/// is every experiment, 0h and 1h with three seeds. Returns the experiments in the order of
/// the results table when "all" is given (else as named, each once) and the seed counts
/// given by name.
#[allow(clippy::type_complexity)]
pub fn select_with_seeds(
    spec: &str,
) -> Result<(Vec<&'static Experiment>, Vec<(&'static str, u64)>), ReproduceError> {
    let mut picked: Vec<&'static Experiment> = Vec::new();
    let mut counts = Vec::new();
    let mut all = false;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "all" {
            all = true;
            continue;
        }
        let (name, count) = match item.split_once(':') {
            Some((n, c)) => {
                let c: u64 = c.trim().parse().ok().filter(|&c| c >= 1).ok_or_else(|| {
                    ReproduceError::Budget(format!(
                        "\"{item}\": the number of seeds after ':' must be a whole number of at least 1"
                    ))
                })?;
                (n.trim(), Some(c))
            }
            None => (item, None),
        };
        let e = EXPERIMENTS
            .iter()
            .find(|e| e.name == name || e.name.strip_prefix("guerguiev-") == Some(name))
            .ok_or_else(|| {
                ReproduceError::Unknown(
                    name.to_string(),
                    EXPERIMENTS
                        .iter()
                        .map(|e| e.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })?;
        if !picked.iter().any(|p| p.name == e.name) {
            picked.push(e);
        }
        if let Some(c) = count {
            counts.retain(|(n, _)| *n != e.name);
            counts.push((e.name, c));
        }
    }
    if all {
        picked = EXPERIMENTS.iter().collect();
    }
    Ok((picked, counts))
}

/// The budget and where to put things.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// None: each model file's own training section (the paper's budget).
    pub epochs: Option<usize>,
    pub train_examples: Option<usize>,
    pub test_examples: Option<usize>,
    pub seeds: Vec<u64>,
    /// Applied to every experiment's model (`--set`), validated like the file.
    pub overrides: Vec<Override>,
    /// Runs at once.
    pub jobs: usize,
    pub out_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The data set the runs train on (recorded in run.json; a run directory of other
    /// data is not reused). `None`: not recorded (tests).
    pub data: Option<crate::io::run_dir::DataRecord>,
    /// Record the per-block alignment trace of every run (alignment_trace.csv; see
    /// [`crate::run::alignment::AlignmentLog::with_trace`]).
    pub alignment_trace: bool,
    /// Which end-of-epoch checkpoints each run keeps.
    pub keep_checkpoints: KeepCheckpoints,
    /// Experiments run with seeds 0..N of their own instead of `seeds` (`0h:3`).
    pub seed_counts: Vec<(&'static str, u64)>,
}

impl ReproduceOptions {
    /// The seeds experiment `e` runs with.
    pub fn seeds_of(&self, e: &Experiment) -> Vec<u64> {
        match self.seed_counts.iter().find(|(n, _)| *n == e.name) {
            Some(&(_, n)) => (0..n).collect(),
            None => self.seeds.clone(),
        }
    }
}

/// The finished run of one (experiment, seed).
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub experiment: &'static Experiment,
    pub seed: u64,
    pub dir: PathBuf,
    pub metrics: Vec<EpochMetrics>,
    /// Whether an earlier finished run with the same settings was reused.
    pub reused: bool,
    /// The averaged test of the final weights ([`averaged_tests`]), when asked for.
    pub averaged: Option<AveragedTest>,
    /// The data set's name (`None`: not recorded, MNIST).
    pub data: Option<String>,
}

/// Repeated spiking tests of a run's final weights (`repeats.json` in its run directory):
/// the paper's averaged test (20 repeats).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AveragedTest {
    /// Epochs the tested weights were trained for.
    pub epochs_done: usize,
    pub repeats: usize,
    pub test_examples: usize,
    /// Test error of each repeat, percent.
    pub errors: Vec<f64>,
    /// Mean and sample sd of `errors`.
    pub mean: f64,
    pub sd: f64,
}

/// File name of the averaged test in a run directory.
pub const REPEATS_FILE: &str = "repeats.json";

/// Tests every run's final weights `repeats` times on its run's number of test images
/// ([`evaluate_repeats`]: the same images, fresh spike streams each time) and keeps the
/// result in its `repeats.json`; a run whose file already holds that many repeats of the
/// same weights is not tested again. Sets [`RunSummary::averaged`].
pub fn averaged_tests(
    runs: &mut [RunSummary],
    data: &Mnist,
    repeats: usize,
    log: &(dyn Fn(String) + Sync),
) -> Result<(), ReproduceError> {
    for r in runs.iter_mut() {
        let epochs_done = trained(&r.metrics).len();
        let test_examples = r.metrics.last().map_or(0, |m| m.record.test_examples);
        let path = r.dir.join(REPEATS_FILE);
        let kept: Option<AveragedTest> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .filter(|a: &AveragedTest| {
                (a.epochs_done, a.repeats, a.test_examples) == (epochs_done, repeats, test_examples)
            });
        if let Some(a) = kept {
            r.averaged = Some(a);
            continue;
        }
        let (net, ck) = plot::load_latest(&r.dir)?;
        log(format!(
            "{} seed {}: {repeats} tests of the weights after epoch {} on {test_examples} images",
            r.experiment.name, r.seed, ck.epochs_done
        ));
        let ev = evaluate_repeats(
            &net,
            &data.test,
            ck.seed,
            ck.epochs_done,
            test_examples,
            repeats,
        );
        let (mean, sd) = ev.mean_sd();
        let a = AveragedTest {
            epochs_done: ck.epochs_done,
            repeats,
            test_examples: ev.indices.len(),
            errors: ev.errors,
            mean,
            sd,
        };
        let text = serde_json::to_string_pretty(&a).expect("an averaged test serialises");
        write_text(&path, &text)?;
        r.averaged = Some(a);
    }
    Ok(())
}

impl RunSummary {
    pub fn test_error(&self) -> f64 {
        self.metrics
            .last()
            .map_or(f64::NAN, |m| m.record.test_error)
    }
    pub fn wall_seconds(&self) -> f64 {
        self.metrics.iter().map(|m| m.wall_seconds).sum()
    }
}

/// Run directory of one experiment and seed.
pub fn run_dir(out: &Path, name: &str, seed: u64) -> PathBuf {
    out.join(name).join(format!("seed{seed}"))
}

fn budget(
    e: &Experiment,
    o: &ReproduceOptions,
) -> Result<(ModelConfig, usize, usize, usize), ReproduceError> {
    let origin = format!("models/{}.toml", e.name);
    let cfg = ModelConfig::from_toml_str(e.model_toml, &origin)
        .and_then(|c| c.with_overrides(&o.overrides, &origin))
        .map_err(|err| ReproduceError::Model(e.name, err))?;
    let t = &cfg.training;
    let (ep, tr, te) = (
        o.epochs.unwrap_or(t.epochs),
        o.train_examples.unwrap_or(t.train_examples),
        o.test_examples.unwrap_or(t.test_examples),
    );
    let from = |flag: bool, field: &str| {
        if flag {
            format!("--{field}")
        } else {
            format!(
                "models/{}.toml: training.{} =",
                e.name,
                field.replace('-', "_")
            )
        }
    };
    crate::run::session::check_counts(
        tr,
        &from(o.train_examples.is_some(), "train-examples"),
        te,
        &from(o.test_examples.is_some(), "test-examples"),
    )
    .map_err(ReproduceError::Budget)?;
    Ok((cfg, ep, tr, te))
}

/// What a run directory holds for the requested run.
enum Existing {
    /// Nothing (or no checkpoint yet): start from scratch.
    Fresh,
    /// Finished: the metrics of its first `epochs` epochs.
    Done(Vec<EpochMetrics>),
    /// Same settings, fewer epochs done: continue from the latest checkpoint.
    Resume,
}

/// Checks `dir` against the requested run: the same model text, seed and example counts.
fn existing(
    dir: &Path,
    cfg: &ModelConfig,
    seed: u64,
    (epochs, train, test): (usize, usize, usize),
    data: Option<&crate::io::run_dir::DataRecord>,
) -> Result<Existing, ReproduceError> {
    if !dir.join("run.json").exists() {
        return Ok(Existing::Fresh);
    }
    let mismatch = |problem: String| ReproduceError::Mismatch {
        dir: dir.to_path_buf(),
        problem,
    };
    let info = RunDir {
        dir: dir.to_path_buf(),
    }
    .read_info()
    .map_err(|e| mismatch(e.to_string()))?;
    let settings = (
        info.model.as_str(),
        info.seed,
        info.train_examples,
        info.test_examples,
    );
    if settings != (cfg.name.as_str(), seed, train, test) {
        return Err(mismatch(format!(
            "model {}, seed {}, {} examples per epoch, {} test images",
            info.model, info.seed, info.train_examples, info.test_examples
        )));
    }
    // A run of apical before data sets recorded none: it trained on MNIST.
    let own = info.data.as_ref().map_or("mnist", |d| d.name.as_str());
    match (info.data.as_ref(), data) {
        (Some(a), Some(b)) if a.sha256 != b.sha256 => {
            return Err(mismatch(format!(
                "it was trained on data set {} and this reproduction uses {}",
                a.name, b.name
            )))
        }
        (None, Some(b)) if b.name != "mnist" => {
            return Err(mismatch(format!(
                "it was trained on data set {own} and this reproduction uses {}",
                b.name
            )))
        }
        _ => {}
    }
    let model = std::fs::read_to_string(dir.join("model.toml")).unwrap_or_default();
    if model_text_of(&model) != cfg.to_toml_string() {
        return Err(mismatch(
            "its model.toml differs from the current model file".into(),
        ));
    }
    let checkpoints = RunDir::open(dir)
        .and_then(|r| r.checkpoints())
        .map_err(|e| mismatch(e.to_string()))?;
    if checkpoints.is_empty() {
        return Ok(Existing::Fresh);
    }
    let metrics = plot::read_metrics(dir).unwrap_or_default();
    if trained(&metrics).len() >= epochs {
        // The initial test (epoch 0, when the run has it) and the first `epochs` epochs.
        return Ok(Existing::Done(
            metrics
                .into_iter()
                .filter(|m| m.record.epoch <= epochs)
                .collect(),
        ));
    }
    Ok(Existing::Resume)
}

/// The locks of every run directory of a reproduction ([`lock_runs`]).
pub struct RunLocks(Vec<RunLock>);

impl RunLocks {
    fn holds(&self, dir: &Path) -> bool {
        self.0.iter().any(|l| l.dir() == dir)
    }
}

/// Checks every run's settings (budget, memory) and locks every run directory, creating
/// them: before the data is read, so a reproduction that another process is running (in
/// whole or in part) is refused at once, naming the holder. A directory created here that
/// ends up holding nothing is removed again when the locks are dropped.
pub fn lock_runs(
    exps: &[&'static Experiment],
    opts: &ReproduceOptions,
) -> Result<RunLocks, ReproduceError> {
    let mut locks = Vec::new();
    for &e in exps {
        let (cfg, ..) = budget(e, opts)?;
        crate::run::session::check_memory(&cfg, None)?;
        for seed in opts.seeds_of(e) {
            let (_, lock) = RunDir::create_locked(&run_dir(&opts.out_dir, e.name, seed))?;
            locks.push(lock);
        }
    }
    Ok(RunLocks(locks))
}

/// Runs every (experiment, seed) not already done, `opts.jobs` at a time, in run
/// directories locked by [`lock_runs`]. `log` gets one line per started and finished run.
pub fn run_all(
    exps: &[&'static Experiment],
    data: &Mnist,
    opts: &ReproduceOptions,
    locks: &RunLocks,
    stop: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
) -> Result<Vec<RunSummary>, ReproduceError> {
    let jobs: Vec<(&'static Experiment, u64)> = exps
        .iter()
        .flat_map(|&e| opts.seeds_of(e).into_iter().map(move |s| (e, s)))
        .collect();
    // Settings are checked before anything runs.
    for &(e, seed) in &jobs {
        budget(e, opts)?;
        let dir = run_dir(&opts.out_dir, e.name, seed);
        if !locks.holds(&dir) {
            return Err(ReproduceError::Budget(format!(
                "{} is not locked: lock every run directory with lock_runs first",
                dir.display()
            )));
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunSummary, ReproduceError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= jobs.len() || stop.load(Ordering::SeqCst) {
            break;
        }
        let (e, seed) = jobs[i];
        let r = run_one(e, seed, data, opts, stop, log);
        let failed = r.is_err();
        results.lock().expect("no panics while holding the lock")[i] = Some(r);
        if failed {
            break;
        }
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, jobs.len().max(1)) {
            s.spawn(worker);
        }
    });
    let mut out = Vec::new();
    for r in results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .flatten()
    {
        out.push(r?);
    }
    Ok(out)
}

fn run_one(
    e: &'static Experiment,
    seed: u64,
    data: &Mnist,
    opts: &ReproduceOptions,
    stop: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
) -> Result<RunSummary, ReproduceError> {
    let (cfg, epochs, train_examples, test_examples) = budget(e, opts)?;
    let dir = run_dir(&opts.out_dir, e.name, seed);
    let state = existing(
        &dir,
        &cfg,
        seed,
        (epochs, train_examples, test_examples),
        opts.data.as_ref(),
    )?;
    if let Existing::Done(metrics) = state {
        log(format!(
            "{} seed {seed}: already done in {}",
            e.name,
            dir.display()
        ));
        return Ok(RunSummary {
            experiment: e,
            seed,
            dir,
            metrics,
            reused: true,
            averaged: None,
            data: opts.data.as_ref().map(|d| d.name.clone()),
        });
    }
    let train_err = |source: TrainError| ReproduceError::Train {
        experiment: e.name.to_string(),
        seed,
        source,
    };
    let info = RunInfo {
        apical_version: env!("CARGO_PKG_VERSION").into(),
        model: e.name.to_string(),
        seed,
        epochs,
        train_examples,
        test_examples,
        data_dir: opts.data_dir.clone(),
        checkpoint_every: 0,
        keep_checkpoints: opts.keep_checkpoints,
        data: opts.data.clone(),
    };
    let ropts = RunOptions {
        epochs,
        train_examples,
        test_examples,
        seed,
        out_dir: dir.clone(),
        checkpoint_every: 0,
        keep_checkpoints: opts.keep_checkpoints,
    };
    log(format!(
        "{} seed {seed}: {epochs} epoch(s) of {train_examples} examples, {test_examples} test images -> {}",
        e.name,
        dir.display()
    ));
    let started = Instant::now();
    let mut trainer = if matches!(state, Existing::Resume) {
        // The latest checkpoint by content, checked against run.json and model.toml.
        let run = RunDir { dir: dir.clone() };
        let (ck, latest) = run.latest_checkpoint()?;
        let check = run.verify_resume(&ck, &latest)?;
        for line in check.repaired {
            log(format!("{} seed {seed}: {line}", e.name));
        }
        log(format!(
            "{} seed {seed}: resuming from {}",
            e.name,
            latest.display()
        ));
        run.write_info(&info).map_err(|e| train_err(e.into()))?;
        Trainer::resume(ck, data, ropts).map_err(train_err)?
    } else {
        Trainer::new(cfg, data, ropts, &info).map_err(train_err)?
    };
    trainer.alignment_trace = opts.alignment_trace;
    // Recorded like every other run (traces.h5 with the run defaults of
    // `TrainRequest::new`: the model file's [[record]] tables or metrics and weights,
    // the default compression).
    let defaults = TrainRequest::new(Start::Resume {
        dir: dir.clone(),
        epochs: None,
    });
    let (result, traces) = run_recorded(
        &mut trainer,
        defaults.record.as_deref(),
        matches!(state, Existing::Resume),
        defaults.compression,
        None,
        stop,
        &mut Quiet,
    )
    .map_err(|source| ReproduceError::Recording {
        experiment: e.name.to_string(),
        seed,
        source: Box::new(source),
    })?;
    if let Some(Err(err)) = traces {
        log(format!(
            "{} seed {seed}: warning: trace recording stopped early: {err}",
            e.name
        ));
    }
    result.map_err(train_err)?;
    let metrics = plot::read_metrics(&dir)?;
    log(format!(
        "{} seed {seed}: test error {:.2} % ({:.0} s)",
        e.name,
        metrics.last().map_or(f64::NAN, |m| m.record.test_error),
        started.elapsed().as_secs_f64()
    ));
    Ok(RunSummary {
        experiment: e,
        seed,
        dir,
        metrics,
        reused: false,
        averaged: None,
        data: opts.data.as_ref().map(|d| d.name.clone()),
    })
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// The same colour for an experiment in every chart.
fn palette_index(e: &Experiment) -> Option<usize> {
    EXPERIMENTS.iter().position(|x| x.name == e.name)
}

/// Mean test error after epoch `epoch` (0: the initial network's test) over the runs that
/// have it; NaN when none has.
pub(crate) fn epoch_mean(rs: &[&RunSummary], epoch: usize) -> f64 {
    let v: Vec<f64> = rs
        .iter()
        .filter_map(|r| {
            r.metrics
                .iter()
                .find(|m| m.record.epoch == epoch)
                .map(|m| m.record.test_error)
        })
        .collect();
    if v.is_empty() {
        return f64::NAN;
    }
    mean_sd(&v).0
}

/// Runs grouped by experiment, in table order.
pub(crate) fn by_experiment(runs: &[RunSummary]) -> Vec<(&'static Experiment, Vec<&RunSummary>)> {
    EXPERIMENTS
        .iter()
        .filter_map(|e| {
            let mut rs: Vec<&RunSummary> = runs
                .iter()
                .filter(|r| r.experiment.name == e.name)
                .collect();
            rs.sort_by_key(|r| r.seed);
            (!rs.is_empty()).then_some((e, rs))
        })
        .collect()
}

/// The plots of a set of runs into `img_dir`: learning curves and alignment angles of every
/// experiment (first seed), and plateau differences and a raster of the 784-500-10 model
/// (or the first experiment run). Returns the files.
pub fn render_plots(
    runs: &[RunSummary],
    data: &Mnist,
    img_dir: &Path,
    examples: usize,
) -> Result<Vec<PathBuf>, ReproduceError> {
    crate::io::atomic::create_output_dir(img_dir).map_err(|source| ReproduceError::Io {
        path: img_dir.to_path_buf(),
        source,
    })?;
    let groups = by_experiment(runs);
    let mut files = Vec::new();
    let most = groups.iter().map(|(_, rs)| rs.len()).max().unwrap_or(1);
    let fewest = groups.iter().map(|(_, rs)| rs.len()).min().unwrap_or(1);
    let over = match (fewest, most) {
        (_, 1) => "one seed".to_string(),
        (f, m) if f == m => format!("mean over {m} seeds, band: min-max"),
        (f, m) => format!("mean over {f}-{m} seeds, band: min-max"),
    };
    let curves: Vec<Series> = groups
        .iter()
        .map(|(e, rs)| {
            let per_seed: Vec<Vec<(f64, f64)>> = rs
                .iter()
                .map(|r| plot::learning_series(e.name, &r.metrics, None).points)
                .collect();
            Series {
                reference: e.paper_error,
                color: palette_index(e),
                ..plot::mean_and_spread(e.name, &per_seed)
            }
        })
        .collect();
    let mut curves = curves;
    let last = groups
        .iter()
        .flat_map(|(_, rs)| rs.iter().filter_map(|r| r.metrics.last()))
        .map(|m| m.record.epoch)
        .max()
        .unwrap_or(1);
    let classes = groups
        .first()
        .and_then(|(e, _)| ModelConfig::from_toml_str(e.model_toml, e.name).ok())
        .map_or(10, |c| c.network.classes);
    let chance = plot::chance_series(&curves, classes, last as f64);
    curves.extend(chance);
    let p = img_dir.join("learning_curves.png");
    plot::line_chart(
        &p,
        &format!("Test error before training and after each epoch ({over})"),
        "epoch",
        "test error (%)",
        &curves,
        None,
    )?;
    files.push(p);
    let angles: Vec<Series> = groups
        .iter()
        .filter_map(|(e, rs)| {
            let per_seed: Vec<Vec<(f64, f64)>> = rs
                .iter()
                .map(|r| plot::alignment_series(e.name, &plot::read_alignment(&r.dir), 0).points)
                .filter(|p| !p.is_empty())
                .collect();
            (!per_seed.is_empty()).then(|| Series {
                color: palette_index(e),
                ..plot::mean_and_spread(e.name, &per_seed)
            })
        })
        .collect();
    if !angles.is_empty() {
        let p = img_dir.join("alignment.png");
        plot::line_chart(
            &p,
            &format!("Hidden update vs backprop's, last 100 examples of each epoch ({over})"),
            "epoch",
            "angle (degrees)",
            &angles,
            Some((0.0, 120.0)),
        )?;
        files.push(p);
    }
    let traces: Vec<Series> = groups
        .iter()
        .filter_map(|(e, rs)| {
            let per_seed: Vec<Vec<(f64, f64)>> = rs
                .iter()
                .map(|r| {
                    let n = r.metrics.last().map_or(1, |m| m.record.train_examples);
                    let t = plot::read_alignment_trace(&r.dir);
                    plot::alignment_trace_series(e.name, &t, 0, n, 10).points
                })
                .filter(|p| !p.is_empty())
                .collect();
            (!per_seed.is_empty()).then(|| Series {
                color: palette_index(e),
                ..plot::mean_and_spread(e.name, &per_seed)
            })
        })
        .collect();
    if !traces.is_empty() {
        let p = img_dir.join("alignment_trace.png");
        plot::line_chart(
            &p,
            &format!("Hidden update vs backprop's, mean of every 1,000 examples ({over})"),
            "epoch",
            "angle (degrees)",
            &traces,
            Some((0.0, 120.0)),
        )?;
        files.push(p);
    }
    let pick = groups
        .iter()
        .find(|(e, _)| e.name == "guerguiev-1h")
        .or_else(|| groups.iter().find(|(e, _)| !e.name.ends_with("-0h")))
        .or_else(|| groups.first());
    if let Some((_, rs)) = pick {
        let (net, ck) = plot::load_latest(&rs[0].dir)?;
        let traces = rs[0].dir.join("traces.h5");
        files.extend(plot::network_plots(
            &net,
            &data.train,
            ck.seed,
            examples,
            img_dir,
            &net.model.cfg.name,
            traces.is_file().then_some(traces.as_path()),
        )?);
    }
    Ok(files)
}

/// Writes `text` to `path` (atomically), creating the directory.
pub fn write_text(path: &Path, text: &str) -> Result<(), ReproduceError> {
    let io = |source| ReproduceError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p).map_err(io)?;
    }
    crate::io::checkpoint::write_atomic(path, text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_model_parses_and_is_named_after_its_file() {
        for e in EXPERIMENTS {
            let cfg = ModelConfig::from_toml_str(e.model_toml, e.name).unwrap();
            assert_eq!(cfg.name, e.name);
        }
        let mut names: Vec<_> = EXPERIMENTS.iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EXPERIMENTS.len());
    }

    #[test]
    fn every_model_file_is_an_experiment() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // models/sweeps/ holds sweep files, not models.
            if !path.is_file() {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap()
                .to_string();
            let e = EXPERIMENTS.iter().find(|e| e.name == stem);
            let e = e.unwrap_or_else(|| panic!("{} is not in EXPERIMENTS", path.display()));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), e.model_toml);
        }
    }

    #[test]
    fn selection_by_name_prefix_and_all() {
        assert_eq!(select("all").unwrap().len(), EXPERIMENTS.len());
        let s = select("0h,guerguiev-1h-fixed-hidden").unwrap();
        assert_eq!(s[0].name, "guerguiev-0h");
        assert_eq!(s[1].name, "guerguiev-1h-fixed-hidden");
        let e = select("3h").unwrap_err().to_string();
        assert!(e.contains("\"3h\"") && e.contains("guerguiev-2h"), "{e}");
    }

    #[test]
    fn a_name_may_carry_its_own_seed_count() {
        let (exps, counts) = select_with_seeds("all,0h:3,guerguiev-1h:2").unwrap();
        assert_eq!(exps.len(), EXPERIMENTS.len());
        assert_eq!(counts, vec![("guerguiev-0h", 3), ("guerguiev-1h", 2)]);
        let (exps, counts) = select_with_seeds("2h:3,1h,2h").unwrap();
        let names: Vec<&str> = exps.iter().map(|e| e.name).collect();
        assert_eq!(names, ["guerguiev-2h", "guerguiev-1h"]);
        assert_eq!(counts, vec![("guerguiev-2h", 3)]);
        for bad in ["1h:0", "1h:x", "1h:-1"] {
            let e = select_with_seeds(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("seeds"), "{e}");
        }
        let opts = ReproduceOptions {
            epochs: None,
            train_examples: None,
            test_examples: None,
            seeds: vec![0],
            overrides: Vec::new(),
            jobs: 1,
            out_dir: PathBuf::from("runs"),
            data_dir: PathBuf::from("data"),
            data: None,
            alignment_trace: false,
            keep_checkpoints: KeepCheckpoints::default(),
            seed_counts: counts,
        };
        assert_eq!(opts.seeds_of(exps[0]), vec![0, 1, 2]);
        assert_eq!(opts.seeds_of(exps[1]), vec![0]);
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[16.75, 20.70, 15.15]);
        assert!((m - 17.5333).abs() < 1e-3);
        assert!((sd - 2.8567).abs() < 1e-3, "{sd}");
    }
}
