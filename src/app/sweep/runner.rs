//! Running a sweep's points, and what state each is in.
//!
//! A point runs through [`session::train`], the entry point of `apical train`, in the run
//! directory `<out>/<point name>/`, so its checkpoints are byte-identical to
//! `apical train --set ... --seed S --out ...` with the same budget. A finished point is
//! skipped; an unfinished one resumes from its latest checkpoint (mid-epoch ones included),
//! which continues the run exactly.
//!
//! While a point runs, its process holds an advisory lock (`flock`) on
//! `<point>/sweep.lock`; the lock goes with the process, however it ends, so a point is
//! *running* exactly while some process holds that lock (on a cluster file system that
//! supports `flock`, from any node). A point whose run ended in an error other than an
//! interruption gets `<point>/sweep-failed.txt` with the error; the next attempt removes it.

use crate::app::sweep::spec::{PointRun, SweepSpec};
use crate::app::sweep::{io_err, SweepError};
use crate::io::checkpoint::list_checkpoints;
use crate::io::record::Compression;
use crate::io::run_dir::{model_text_of, trained, EpochMetrics, RunDir};
use crate::model::params::LayerParams;
use crate::run::events::RunEvents;
use crate::run::session::{self, Start, TrainRequest};
use crate::run::trainer::TrainError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The lock file a running point's process holds.
pub const LOCK_FILE: &str = "sweep.lock";
/// Written when a point's run failed (its first line is the error).
pub const FAILED_FILE: &str = "sweep-failed.txt";

/// Where a point stands.
#[derive(Clone, Debug, PartialEq)]
pub enum PointState {
    /// Not started: no run directory, or one without a checkpoint.
    NotStarted,
    /// A process holds the point's lock; `holder` is what it wrote into it.
    Running { holder: String },
    /// Stopped with checkpoints and not finished (interrupted, killed): the next run
    /// resumes it.
    Unfinished {
        epochs_done: usize,
        examples_done: usize,
    },
    /// The last attempt failed with this error.
    Failed(String),
    /// All its epochs are done.
    Done,
    /// Its run directory cannot be read as this point's run (a corrupt run.json, a
    /// model.toml edited by hand): `apical sweep status` and `collect` report it and go on
    /// with the other points.
    Damaged(String),
}

impl PointState {
    /// One word for tables: done, running, unfinished, failed, not-started.
    pub fn word(&self) -> &'static str {
        match self {
            PointState::NotStarted => "not-started",
            PointState::Running { .. } => "running",
            PointState::Unfinished { .. } => "unfinished",
            PointState::Failed(_) => "failed",
            PointState::Done => "done",
            PointState::Damaged(_) => "damaged",
        }
    }
}

/// A point's run directory.
pub fn point_dir(out: &Path, run: &PointRun) -> PathBuf {
    out.join(&run.point.name)
}

/// How a non-blocking `flock` went.
enum Flock {
    Taken,
    /// Another open file holds a conflicting lock.
    Busy,
    /// The file system has no locks (or another error).
    Unsupported,
}

/// `flock(fd, op | LOCK_NB)` (std's `File::try_lock` needs Rust 1.89, above this crate's
/// rust-version). The lock belongs to the open file and goes when it is closed.
fn try_flock(file: &File, op: libc::c_int) -> Flock {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` owns an open descriptor for the duration of the call; flock reads
    // nothing from memory.
    let r = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if r == 0 {
        return Flock::Taken;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EWOULDBLOCK) => Flock::Busy,
        _ => Flock::Unsupported,
    }
}

/// The lock of a running point; released when dropped (or when the process ends).
pub struct PointLock {
    _file: File,
}

impl PointLock {
    /// Takes the lock of the point in `dir`, or `None` when another process holds it. A
    /// momentary holder (`apical sweep status` testing it) is waited for up to a second.
    /// Where the file system has no locks, the point runs without one.
    pub fn acquire(dir: &Path) -> Result<Option<Self>, SweepError> {
        let path = dir.join(LOCK_FILE);
        crate::io::atomic::refuse_symlink(&path).map_err(io_err(&path))?;
        let mut o = OpenOptions::new();
        o.create(true).truncate(false).write(true);
        // Never through a link planted at the lock's name (refused above; O_NOFOLLOW
        // refuses one made meanwhile).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = o.open(&path).map_err(io_err(&path))?;
        for attempt in 0..20 {
            match try_flock(&file, libc::LOCK_EX) {
                Flock::Taken => {
                    let holder = format!(
                        "pid {} on {}\n",
                        std::process::id(),
                        std::fs::read_to_string("/proc/sys/kernel/hostname")
                            .map(|h| h.trim().to_string())
                            .unwrap_or_else(|_| "this host".into())
                    );
                    file.set_len(0)
                        .and_then(|()| file.write_all(holder.as_bytes()))
                        .map_err(io_err(&path))?;
                    return Ok(Some(PointLock { _file: file }));
                }
                Flock::Busy if attempt < 19 => std::thread::sleep(Duration::from_millis(50)),
                Flock::Busy => return Ok(None),
                // A file system without locks (flock unsupported): run unlocked; the
                // point then never shows as running.
                Flock::Unsupported => return Ok(Some(PointLock { _file: file })),
            }
        }
        Ok(None)
    }
}

/// Whether a process holds the lock of the point in `dir`; its holder text if so.
fn lock_holder(dir: &Path) -> Option<String> {
    let path = dir.join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    // A shared lock conflicts with the runner's exclusive one and needs only read access
    // (where flock is emulated with POSIX locks, as on NFS).
    match try_flock(&file, libc::LOCK_SH) {
        Flock::Taken | Flock::Unsupported => None,
        Flock::Busy => Some(
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_string())
                .unwrap_or_default(),
        ),
    }
}

/// Checks that the run in `dir` (if any) is this point's: the same model text, seed and
/// example counts. The number of epochs may differ (more are resumed, fewer are done).
fn check_settings(run: &PointRun, dir: &Path) -> Result<(), SweepError> {
    if !dir.join("run.json").exists() {
        return Ok(());
    }
    let mismatch = |problem: String| SweepError::Mismatch {
        dir: dir.to_path_buf(),
        problem,
    };
    // An unreadable run.json is a damaged point, not one with other settings.
    let info = RunDir::open(dir)
        .and_then(|r| r.read_info())
        .map_err(|e| SweepError::Damaged {
            dir: dir.to_path_buf(),
            problem: e.to_string(),
        })?;
    if (info.seed, info.train_examples, info.test_examples)
        != (run.point.seed, run.train_examples, run.test_examples)
    {
        return Err(mismatch(format!(
            "seed {}, {} training examples per epoch, {} test images; this point: seed {}, {}, {}",
            info.seed,
            info.train_examples,
            info.test_examples,
            run.point.seed,
            run.train_examples,
            run.test_examples
        )));
    }
    let model = std::fs::read_to_string(dir.join("model.toml")).unwrap_or_default();
    if model_text_of(&model) != run.model.to_toml_string() {
        return Err(mismatch(
            "its model.toml is not this point's model (the sweep's base model or [set] changed?)"
                .into(),
        ));
    }
    Ok(())
}

/// Checks every setting of every point that `apical train` would check only when the
/// point runs (example counts within MNIST, the record spec against the point's model), so
/// that a Slurm array is never submitted with a setting each task fails on.
pub fn check_points(runs: &[PointRun], sweep_file: &Path) -> Result<(), SweepError> {
    for r in runs {
        let bad = |problem: String| SweepError::Spec {
            path: sweep_file.to_path_buf(),
            problem: format!("point {}: {problem}", r.point.name),
        };
        crate::run::session::check_counts(
            r.train_examples,
            "[training] train_examples =",
            r.test_examples,
            "[training] test_examples =",
        )
        .map_err(bad)?;
        if let Some(spec) = &r.record {
            let groups = crate::model::recording::parse_spec(spec)
                .map_err(|e| bad(format!("[training] record: {e}")))?;
            let spiking = r.model.neuron.mode != crate::model::config::NeuronMode::Rate;
            crate::model::record_plan::RecordPlan::resolve(&groups, &r.model.topology(), spiking)
                .map_err(|e| bad(format!("[training] record: {e}")))?;
        }
    }
    Ok(())
}

/// Refuses to run `spec` into a sweep directory `out` whose saved sweep has points `spec`
/// does not: they would silently leave sweep.toml and the summary (a different sweep
/// file run into the same --out). A sweep that keeps every saved point (more seeds, say)
/// may run there.
pub fn check_same_sweep(spec: &SweepSpec, out: &Path) -> Result<(), SweepError> {
    if !out.join(crate::app::sweep::spec::SWEEP_FILE).is_file() {
        return Ok(());
    }
    let saved = SweepSpec::load_dir(out).map_err(|e| {
        SweepError::Invalid(format!(
            "{} holds a sweep that cannot be read ({e}); give another --out",
            out.display()
        ))
    })?;
    let names: std::collections::HashSet<String> =
        spec.points().into_iter().map(|p| p.name).collect();
    let dropped: Vec<String> = saved
        .points()
        .into_iter()
        .map(|p| p.name)
        .filter(|n| !names.contains(n))
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    Err(SweepError::Invalid(format!(
        "{} holds another sweep: {} of its point(s) are not in this sweep file ({}{}); nothing was changed. Give this sweep another --out, or continue that one with `apical sweep {} --out {}`",
        out.display(),
        dropped.len(),
        dropped[..dropped.len().min(3)].join(", "),
        if dropped.len() > 3 { ", ..." } else { "" },
        out.join(crate::app::sweep::spec::SWEEP_FILE).display(),
        out.display()
    )))
}

/// Checks that every existing run directory of `runs` under `out` holds its point's run
/// (model text, seed, example counts), before anything is written.
pub fn check_existing(runs: &[PointRun], out: &Path) -> Result<(), SweepError> {
    runs.iter()
        .try_for_each(|r| check_settings(r, &point_dir(out, r)))
}

/// The epochs of a run directory's metrics.json (empty when absent or unreadable).
pub fn read_metrics(dir: &Path) -> Vec<EpochMetrics> {
    std::fs::read_to_string(dir.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The state of a point, not looking at locks.
fn settled_state(run: &PointRun, dir: &Path) -> Result<PointState, SweepError> {
    if !dir.is_dir() {
        return Ok(PointState::NotStarted);
    }
    check_settings(run, dir)?;
    let checkpoints = list_checkpoints(dir).map_err(io_err(dir))?;
    if let Some((epochs_done, examples_done, last)) = checkpoints.last() {
        let (epochs_done, examples_done) = (*epochs_done, *examples_done);
        // Complete epochs only count; a later mid-epoch checkpoint (of a run once asked for
        // more epochs) does not make the asked ones undone.
        if epochs_done >= run.epochs && trained(&read_metrics(dir)).len() >= run.epochs {
            // Done only with a final checkpoint that is whole: a truncated or damaged one
            // (a disk that filled up, a copy cut short) is named, not counted as done.
            crate::io::checkpoint::verify(last).map_err(|e| SweepError::Damaged {
                dir: dir.to_path_buf(),
                problem: format!("its final checkpoint cannot be read: {e}"),
            })?;
            return Ok(PointState::Done);
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(FAILED_FILE)) {
            return Ok(PointState::Failed(
                text.lines().next().unwrap_or_default().to_string(),
            ));
        }
        return Ok(PointState::Unfinished {
            epochs_done,
            examples_done,
        });
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(FAILED_FILE)) {
        return Ok(PointState::Failed(
            text.lines().next().unwrap_or_default().to_string(),
        ));
    }
    Ok(PointState::NotStarted)
}

/// The state of a point whose run directory is `dir`. A directory holding another run
/// (other model, seed or example counts) is an error.
pub fn point_state(run: &PointRun, dir: &Path) -> Result<PointState, SweepError> {
    if let Some(holder) = lock_holder(dir) {
        return Ok(PointState::Running { holder });
    }
    settled_state(run, dir)
}

/// How to run the points.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The sweep directory.
    pub out: PathBuf,
    /// The MNIST folder (as `apical train --data`).
    pub data: Option<PathBuf>,
    /// The data set (as `apical train --dataset`; `None`: MNIST).
    pub dataset: Option<crate::io::dataset::DataSpec>,
    pub verify: bool,
    /// Points at once.
    pub jobs: usize,
    pub compression: Compression,
}

/// What happened to each point a call to [`run_points`] was given (point names).
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    /// Trained to the end in this call.
    pub completed: Vec<String>,
    /// Already done before.
    pub skipped: Vec<String>,
    /// Stopped by the stop flag, with a checkpoint.
    pub interrupted: Vec<String>,
    /// Not started because of the stop flag.
    pub not_started: Vec<String>,
    /// Run by another process at the time.
    pub busy: Vec<String>,
    /// (point, error).
    pub failed: Vec<(String, String)>,
}

enum Outcome {
    Completed,
    Skipped,
    Interrupted,
    Busy,
    Failed(String),
}

/// Lines of one point's run, prefixed with its name.
struct PointProgress<'a> {
    name: &'a str,
    log: &'a (dyn Fn(String) + Sync),
}

impl RunEvents for PointProgress<'_> {
    fn notice(&mut self, message: &str) {
        (self.log)(format!("[{}] {message}", self.name));
    }
    fn epoch_end(&mut self, m: &EpochMetrics, _params: &[LayerParams]) {
        let r = &m.record;
        if m.is_initial() {
            (self.log)(format!(
                "[{}] epoch 0 (initial network): test error {:.2} % ({} images), {:.1} s",
                self.name, r.test_error, r.test_examples, m.wall_seconds
            ));
            return;
        }
        (self.log)(format!(
            "[{}] epoch {}: train error {:.2} %, test error {:.2} % ({} images), {:.1} s",
            self.name, r.epoch, r.train_error, r.test_error, r.test_examples, m.wall_seconds
        ));
    }
}

/// Runs `runs` (points of one sweep), `settings.jobs` at once, until each is done or `stop` is
/// raised (running points then checkpoint; no new point starts). Points already done are
/// skipped, unfinished ones resumed. Before anything runs, every existing run directory is
/// checked to hold its point's run. `log` gets a line per event.
pub fn run_points(
    runs: &[PointRun],
    settings: &RunSettings,
    stop: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
) -> Result<SweepReport, SweepError> {
    let mut report = SweepReport::default();
    let mut todo: Vec<&PointRun> = Vec::new();
    for r in runs {
        match settled_state(r, &point_dir(&settings.out, r)) {
            Ok(PointState::Done) => report.skipped.push(r.point.name.clone()),
            // A point whose final checkpoint is damaged fails; the others run.
            Err(e @ SweepError::Damaged { .. }) => {
                log(format!("[{}] {e}", r.point.name));
                report.failed.push((r.point.name.clone(), e.to_string()));
            }
            Err(e) => return Err(e),
            Ok(_) => todo.push(r),
        }
    }
    if !report.skipped.is_empty() {
        log(format!(
            "{} point(s) already done, {} to run",
            report.skipped.len(),
            todo.len()
        ));
    }
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..todo.len()).map(|_| None).collect());
    let worker = || loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= todo.len() {
            break;
        }
        let o = run_one(todo[i], settings, stop, log);
        outcomes.lock().expect("no panic holds the lock")[i] = Some(o);
    };
    std::thread::scope(|s| {
        for _ in 0..settings.jobs.clamp(1, todo.len().max(1)) {
            s.spawn(worker);
        }
    });
    let outcomes = outcomes.into_inner().expect("workers finished");
    for (r, o) in todo.iter().zip(outcomes) {
        let name = r.point.name.clone();
        match o {
            None => report.not_started.push(name),
            Some(Outcome::Completed) => report.completed.push(name),
            Some(Outcome::Skipped) => report.skipped.push(name),
            Some(Outcome::Interrupted) => report.interrupted.push(name),
            Some(Outcome::Busy) => report.busy.push(name),
            Some(Outcome::Failed(e)) => report.failed.push((name, e)),
        }
    }
    Ok(report)
}

fn run_one(
    run: &PointRun,
    settings: &RunSettings,
    stop: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
) -> Outcome {
    let name = run.point.name.as_str();
    let dir = point_dir(&settings.out, run);
    let fail = |message: String| {
        log(format!("[{name}] failed: {message}"));
        let _ = crate::io::atomic::write_atomic(
            &dir.join(FAILED_FILE),
            format!("{message}\n").as_bytes(),
        );
        Outcome::Failed(message)
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Outcome::Failed(format!("{}: {e}", dir.display()));
    }
    let _lock = match PointLock::acquire(&dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            log(format!("[{name}] is being run by another process; skipped"));
            return Outcome::Busy;
        }
        Err(e) => return fail(e.to_string()),
    };
    // Under the lock: another process may have finished it since the first look.
    let has_checkpoints = match settled_state(run, &dir) {
        Ok(PointState::Done) => return Outcome::Skipped,
        Ok(_) => list_checkpoints(&dir).is_ok_and(|l| !l.is_empty()),
        Err(e) => return fail(e.to_string()),
    };
    let _ = std::fs::remove_file(dir.join(FAILED_FILE));
    let start = if has_checkpoints {
        Start::Resume {
            dir: dir.clone(),
            epochs: Some(run.epochs),
        }
    } else {
        log(format!("[{name}] {}", run.point.label()));
        Start::New {
            model: run.model.clone(),
            seed: run.point.seed,
            epochs: Some(run.epochs),
            train_examples: Some(run.train_examples),
            test_examples: Some(run.test_examples),
            out: Some(dir.clone()),
        }
    };
    let request = TrainRequest {
        start,
        data: settings.data.clone(),
        dataset: Some(settings.dataset.clone().unwrap_or_default()),
        preloaded: None,
        other_data: false,
        verify: settings.verify,
        record: run.record.clone(),
        compression: settings.compression,
        // A resumed run keeps its own interval unless the sweep gives one.
        checkpoint_every: run.checkpoint_every,
        keep_checkpoints: run.keep_checkpoints,
        // The points running at once share the cores: a wide layer's neuron blocks get
        // this point's part of them (one thread when there are as many points as cores).
        threads: Some((rayon::current_num_threads() / settings.jobs.max(1)).max(1)),
    };
    let mut progress = PointProgress { name, log };
    match session::train(&request, &mut progress, stop) {
        Ok(outcome) => {
            if let Some(Err(e)) = &outcome.traces {
                log(format!(
                    "[{name}] warning: trace recording stopped early: {e}"
                ));
            }
            match outcome.result {
                Ok(()) => {
                    log(format!("[{name}] done"));
                    Outcome::Completed
                }
                Err(TrainError::Interrupted {
                    epoch,
                    example,
                    checkpoint,
                }) => {
                    log(format!(
                        "[{name}] stopped in epoch {epoch} after {example} examples; checkpoint {}",
                        checkpoint.display()
                    ));
                    Outcome::Interrupted
                }
                Err(e) => fail(e.to_string()),
            }
        }
        Err(e) => fail(e.to_string()),
    }
}
