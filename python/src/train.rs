//! `apical._apical.train`: one training run through the library's `session::train`, the
//! code path of `apical train`, so the same model, seed and counts give byte-identical
//! checkpoints.
//!
//! The run goes on a thread of its own, with the GIL released. The calling (main) thread
//! waits for its messages and does everything that needs Python: progress output, the
//! per-epoch callback, and Ctrl-C (`check_signals` every 100 ms). A KeyboardInterrupt or a
//! callback that returns False raises the trainer's stop flag: it finishes the current
//! example, writes a checkpoint and returns.

use crate::args::{self, Int};
use crate::errors;
use crate::model::Model;
use apical::io::record::Compression;
use apical::io::run_dir::{EpochMetrics, KeepCheckpoints};
use apical::model::params::LayerParams;
use apical::run::events::{ExampleDone, RunEvents};
use apical::run::session::{self, Start, TrainRequest};
use apical::run::trainer::TrainError;
use pyo3::prelude::*;
use pyo3::types::PyBool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the training thread tells the calling thread.
enum Msg {
    /// A message for the user.
    Notice(String),
    /// Progress inside an epoch (sent at most every `TICK`).
    Examples {
        epoch: usize,
        done: usize,
        total: usize,
        per_second: f64,
        train_error: f64,
    },
    Testing {
        epoch: usize,
        n: usize,
    },
    QuickTest(String),
    /// An epoch ended; the trainer waits for the answer: whether to go on.
    Epoch {
        json: String,
        line: String,
        reply: mpsc::Sender<bool>,
    },
}

const TICK: Duration = Duration::from_millis(250);

/// The library's progress events, sent to the calling thread.
struct Relay {
    tx: mpsc::Sender<Msg>,
    epoch: usize,
    total: usize,
    first: usize,
    started: Instant,
    last: Instant,
}

impl RunEvents for Relay {
    fn notice(&mut self, message: &str) {
        let _ = self.tx.send(Msg::Notice(message.to_string()));
    }
    fn epoch_start(&mut self, epoch: usize, done: usize, examples: usize, _params: &[LayerParams]) {
        self.epoch = epoch;
        self.total = examples;
        self.first = done;
        self.started = Instant::now();
        self.last = self.started;
    }
    fn example_end(&mut self, e: &ExampleDone, _params: &[LayerParams]) {
        let (done, train_error) = (e.example + 1, e.train_error);
        let now = Instant::now();
        if now.duration_since(self.last) < TICK && done < self.total {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-9);
        let _ = self.tx.send(Msg::Examples {
            epoch: self.epoch,
            done,
            total: self.total,
            per_second: (done - self.first) as f64 / secs,
            train_error,
        });
    }
    fn testing(&mut self, epoch: usize, n: usize) {
        let _ = self.tx.send(Msg::Testing { epoch, n });
    }
    fn quick_test(&mut self, epoch: usize, example: usize, error: f64) {
        let _ = self.tx.send(Msg::QuickTest(format!(
            "epoch {epoch} example {example}: quick test error {error:.1} %"
        )));
    }
    fn epoch_end(&mut self, m: &EpochMetrics, _params: &[LayerParams]) {
        let (reply, answer) = mpsc::channel();
        let msg = Msg::Epoch {
            json: serde_json::to_string(m).expect("metrics serialise"),
            line: apical::run::events::epoch_line(m),
            reply,
        };
        if self.tx.send(msg).is_ok() {
            // No answer (the caller is gone): go on; the stop flag decides.
            let _ = answer.recv();
        }
    }
}

/// Writes to Python's sys.stderr (a notebook shows it).
fn write_stderr(py: Python<'_>, text: &str) -> PyResult<()> {
    let err = py.import("sys")?.getattr("stderr")?;
    if err.is_none() {
        return Ok(());
    }
    err.call_method1("write", (text,))?;
    err.call_method0("flush")?;
    Ok(())
}

/// Runs `f` on `threads` worker threads (a pool of its own), or on rayon's global pool.
pub fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    match threads {
        None => Ok(f()),
        Some(n) => {
            let n = apical::run::threads::check_threads(n, "threads").map_err(errors::invalid)?;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| errors::invalid(format!("cannot start the thread pool: {e}")))?;
            Ok(pool.install(f))
        }
    }
}

/// The outcome handed to the Python layer: (run dir, how it ended, detail, trace file or
/// None, trace warning or None). How it ended: "completed", "stopped" (the callback said
/// False), "interrupted" (Ctrl-C: the Python layer re-raises KeyboardInterrupt).
type Outcome = (PathBuf, String, String, Option<PathBuf>, Option<String>);

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (model=None, *, resume=None, epochs=None, train_examples=None,
    test_examples=None, seed=0, out=None, record=None, trace_compression=None,
    checkpoint_every=None, keep_checkpoints=None, threads=None, progress=true, data=None, verify=true, callback=None, dataset=None, other_data=false))]
pub fn train(
    py: Python<'_>,
    model: Option<PyRef<'_, Model>>,
    resume: Option<PathBuf>,
    epochs: Option<Int>,
    train_examples: Option<Int>,
    test_examples: Option<Int>,
    seed: Int,
    out: Option<PathBuf>,
    record: Option<String>,
    trace_compression: Option<&str>,
    checkpoint_every: Option<Int>,
    keep_checkpoints: Option<&str>,
    threads: Option<Int>,
    progress: bool,
    data: Option<Bound<'_, PyAny>>,
    verify: bool,
    callback: Option<Py<PyAny>>,
    dataset: Option<Bound<'_, PyAny>>,
    other_data: bool,
) -> PyResult<Outcome> {
    let epochs = args::count_opt("epochs", epochs)?;
    let train_examples = args::count_opt("train_examples", train_examples)?;
    let test_examples = args::count_opt("test_examples", test_examples)?;
    let seed = args::seed("seed", seed)?;
    let checkpoint_every = args::count_opt("checkpoint_every", checkpoint_every)?;
    let threads = args::count_opt("threads", threads)?;
    for (name, v) in [
        ("epochs", epochs),
        ("train_examples", train_examples),
        ("test_examples", test_examples),
    ] {
        if v == Some(0) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{name}=0: {name} must be at least 1"
            )));
        }
    }
    // `data`: an apical.Dataset, or (as before data sets) the MNIST folder; `dataset`: a
    // Dataset, a name or a path, as --dataset.
    let (mut folder, mut spec, mut preloaded) = (None, None, None);
    if let Some(d) = &data {
        match d.cast::<crate::dataset::Dataset>() {
            Ok(ds) => preloaded = Some(ds.get().set.clone()),
            Err(_) => folder = Some(d.extract::<PathBuf>()?),
        }
    }
    if let Some(d) = &dataset {
        if preloaded.is_some() {
            return Err(errors::invalid(
                "give the data set once: data=Dataset or dataset=..., not both",
            ));
        }
        match crate::dataset::data_arg(d)? {
            crate::dataset::DataArg::Loaded(s) => preloaded = Some(s),
            crate::dataset::DataArg::Spec(s) => spec = Some(s),
        }
    }
    // None: the run defaults every entry point shares (TrainRequest::new).
    let compression: Compression = trace_compression
        .map(str::parse)
        .transpose()
        .map_err(|e: String| errors::invalid(format!("trace_compression: {e}")))?
        .unwrap_or_default();
    let keep_checkpoints = keep_checkpoints
        .map(|k| k.parse::<KeepCheckpoints>())
        .transpose()
        .map_err(|e| errors::invalid(format!("keep_checkpoints: {e}")))?;
    let start = match (resume, model) {
        (Some(_), Some(_)) => {
            return Err(errors::invalid(
                "give either a model (a new run) or resume= (a run directory), not both",
            ))
        }
        (Some(dir), None) => Start::Resume { dir, epochs },
        (None, model) => {
            let model = match model {
                Some(m) => m.cfg.clone(),
                None => Model::default_model()?.cfg,
            };
            Start::New {
                model,
                seed,
                epochs,
                train_examples,
                test_examples,
                out,
            }
        }
    };
    let resuming = matches!(start, Start::Resume { .. });
    let request = TrainRequest {
        start,
        data: folder.take(),
        dataset: spec.take(),
        preloaded: preloaded.take(),
        other_data,
        verify,
        record,
        compression,
        checkpoint_every,
        keep_checkpoints,
        // Training shares a wide layer's neuron blocks among as many threads as the run's
        // pool has (`threads=`, else every core).
        threads,
    };
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Msg>();
    // Waited on with the GIL released, which needs a Sync receiver.
    let rx = std::sync::Mutex::new(rx);
    let mut relay = Relay {
        tx,
        epoch: 0,
        total: 0,
        first: 0,
        started: Instant::now(),
        last: Instant::now(),
    };
    // A Ctrl-C or an exception of the callback, raised again once the run has stopped.
    let mut pending: Option<PyErr> = None;
    let mut stopped_by_callback = false;
    let mut bar_open = false;
    let result = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let r = with_threads(threads, || session::train(&request, &mut relay, &stop));
            // Dropping the relay closes the channel: the loop below ends.
            drop(relay);
            r
        });
        loop {
            let msg = py.detach(|| {
                rx.lock()
                    .expect("only this thread receives")
                    .recv_timeout(Duration::from_millis(100))
            });
            match msg {
                Ok(m) => {
                    let end_bar = |bar_open: &mut bool| {
                        if std::mem::take(bar_open) {
                            let _ = write_stderr(py, "\n");
                        }
                    };
                    match m {
                        Msg::Notice(t) | Msg::QuickTest(t) => {
                            if progress {
                                end_bar(&mut bar_open);
                                let _ = write_stderr(py, &format!("{t}\n"));
                            }
                        }
                        Msg::Examples {
                            epoch,
                            done,
                            total,
                            per_second,
                            train_error,
                        } => {
                            if progress {
                                bar_open = true;
                                let _ = write_stderr(
                                    py,
                                    &format!(
                                        "\repoch {epoch} {} {done}/{total} {per_second:.0}/s train err {train_error:.1} %",
                                        bar(done, total)
                                    ),
                                );
                            }
                        }
                        Msg::Testing { epoch, n } => {
                            if progress {
                                end_bar(&mut bar_open);
                                let _ = write_stderr(
                                    py,
                                    &format!("epoch {epoch}: testing on {n} images ...\n"),
                                );
                            }
                        }
                        Msg::Epoch { json, line, reply } => {
                            if progress {
                                end_bar(&mut bar_open);
                                let _ = write_stderr(py, &format!("{line}\n"));
                            }
                            let mut go_on = true;
                            if let (Some(cb), None) = (&callback, &pending) {
                                let called = py
                                    .import("json")
                                    .and_then(|j| j.call_method1("loads", (json,)))
                                    .and_then(|d| cb.call1(py, (d,)));
                                match called {
                                    Ok(v) => {
                                        let v = v.bind(py);
                                        if v.is_instance_of::<PyBool>() && !v.is_truthy()? {
                                            go_on = false;
                                            stopped_by_callback = true;
                                        }
                                    }
                                    Err(e) => {
                                        go_on = false;
                                        pending = Some(e);
                                    }
                                }
                            }
                            if !go_on {
                                stop.store(true, Ordering::SeqCst);
                            }
                            let _ = reply.send(go_on);
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::SeqCst);
                if pending.is_none() {
                    if progress {
                        if std::mem::take(&mut bar_open) {
                            let _ = write_stderr(py, "\n");
                        }
                        let _ = write_stderr(
                            py,
                            "interrupt: finishing the current example and writing a checkpoint\n",
                        );
                    }
                    pending = Some(e);
                }
            }
        }
        if bar_open && progress {
            let _ = write_stderr(py, "\n");
        }
        let joined = py.detach(|| worker.join());
        Ok::<_, PyErr>(joined.expect("the training thread does not panic"))
    })?;
    let outcome = result?.map_err(|e| errors::session(e, resuming))?;
    let (traces, warning) = match outcome.traces {
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (
            None,
            Some(format!(
                "trace recording stopped early: {}; the file keeps everything written before (see its last_epoch and last_example attributes)",
                errors::error_text(&e)
            )),
        ),
        None => (None, None),
    };
    match outcome.result {
        Ok(()) => {
            if let Some(e) = pending {
                // The callback raised after the last epoch: nothing left to stop.
                return Err(e);
            }
            Ok((
                outcome.dir,
                "completed".into(),
                String::new(),
                traces,
                warning,
            ))
        }
        Err(TrainError::Interrupted {
            epoch,
            example,
            checkpoint,
        }) => {
            let detail = format!(
                "stopped in epoch {epoch} after {example} examples; checkpoint {}",
                checkpoint.display()
            );
            if let Some(e) = pending {
                if progress {
                    let _ = write_stderr(
                        py,
                        &format!(
                            "{detail}\nresume with: apical.train(resume={:?})\n",
                            outcome.dir.display().to_string()
                        ),
                    );
                }
                return Err(e);
            }
            let how = if stopped_by_callback {
                "stopped"
            } else {
                "interrupted"
            };
            Ok((outcome.dir, how.into(), detail, traces, warning))
        }
        Err(e) => Err(errors::train(e)),
    }
}

/// A 30-character text bar.
fn bar(done: usize, total: usize) -> String {
    let width = 30;
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    for i in 0..width {
        s.push(if i < filled {
            '='
        } else if i == filled {
            '>'
        } else {
            ' '
        });
    }
    s.push(']');
    s
}
