//! Training runs: epochs of online learning, per-epoch tests, metrics and checkpoints in a
//! run directory. A run is a pure function of (model, data, seed): every random stream is
//! keyed by the seed and the epoch, and each epoch starts from a reset state.

use crate::base::rng::{stream, Purpose};
use crate::io::checkpoint::{self, Checkpoint, CheckpointError, EpochProgress, EpochRecord};
use crate::io::mnist::Mnist;
use crate::io::record::Recorder;
use crate::io::run_dir::{Budget, EpochMetrics, KeepCheckpoints, RunDir, RunDirError, RunInfo};
use crate::model::config::ModelConfig;
use crate::model::phases::phase_lengths;
use crate::run::alignment::AlignmentLog;
use crate::run::events::{ExampleDone, RunEvents};
use crate::run::metrics::{epoch_order, epoch_test_key, error_percent, evaluate, quick_test_key};
use crate::sim::network::Network;
use crate::sim::observer::{NoObserver, Observer, Phase};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(
        "the simulation diverged: a potential or weight was NaN or infinite in epoch {epoch} after training example {example}; {}",
        match last_checkpoint {
            Some(p) => format!("the last good checkpoint, {}, is kept (nothing after it was saved); lower the learning rates (learning.eta) or check the model's constants", p.display()),
            None => "no checkpoint was written; lower the learning rates (learning.eta) or check the model's constants".to_string(),
        }
    )]
    NonFinite {
        epoch: usize,
        /// 1-based training example of the epoch after which the values were found.
        example: usize,
        last_checkpoint: Option<PathBuf>,
    },
    #[error("interrupted in epoch {epoch} after {example} examples; state saved to {checkpoint}")]
    Interrupted {
        epoch: usize,
        example: usize,
        checkpoint: PathBuf,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to run; the model file gives the defaults.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub epochs: usize,
    pub train_examples: usize,
    pub test_examples: usize,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// Write a mid-epoch checkpoint every this many examples (0: only at epoch ends).
    pub checkpoint_every: usize,
    /// Which end-of-epoch checkpoints stay once later ones are written.
    pub keep_checkpoints: KeepCheckpoints,
}

/// A training run in progress.
pub struct Trainer<'a> {
    pub net: Network,
    pub data: &'a Mnist,
    pub opts: RunOptions,
    pub run: RunDir,
    pub model_toml: String,
    pub history: Vec<EpochRecord>,
    /// Wall-clock seconds of each epoch: [training, test, training per example trained by
    /// the process that finished it (a resumed epoch times only those after its checkpoint)].
    pub wall: Vec<[f64; 3]>,
    /// Burst probabilities of each finished epoch (spiking BurstCCN; else empty).
    bursts: Vec<Vec<f64>>,
    /// Position inside the next epoch, when resuming from a mid-epoch checkpoint.
    pub resume_progress: Option<EpochProgress>,
    /// Compare every training example's hidden update with backprop's and write the means
    /// of blocks of 100 to `alignment_trace.csv` (the curve of the paper's Fig. 7A; see
    /// [`AlignmentLog::with_trace`]). Off by default: it costs one backprop pass per example.
    pub alignment_trace: bool,
    /// The test of the initial network (epoch 0 of the metrics): measured by a new run
    /// before its first example, read back from metrics.json by a resumed one (which never
    /// measures it again); `None` when the run has none (`training.test_initial = false`).
    pub initial: Option<EpochMetrics>,
    /// Whether [`Trainer::run`] still has to measure [`Trainer::initial`] (a new run whose
    /// model asks for it).
    initial_pending: bool,
}

impl<'a> Trainer<'a> {
    /// A fresh run.
    pub fn new(
        cfg: ModelConfig,
        data: &'a Mnist,
        opts: RunOptions,
        info: &RunInfo,
    ) -> Result<Self, TrainError> {
        check_data(&cfg, data)?;
        check_batch(&cfg, opts.train_examples.min(data.train.len()))?;
        let model_toml = cfg.to_toml_string();
        let run = RunDir::create(&opts.out_dir, &model_toml, info)?;
        let initial_pending = cfg.training.test_initial;
        let net = Network::new(cfg, opts.seed);
        Ok(Trainer {
            net,
            data,
            opts,
            run,
            model_toml,
            history: Vec::new(),
            wall: Vec::new(),
            bursts: Vec::new(),
            resume_progress: None,
            alignment_trace: false,
            initial: None,
            initial_pending,
        })
    }

    /// Continues from a checkpoint of the run directory `opts.out_dir`. The seed and the
    /// numbers of training and test examples are the checkpoint's (they override `opts`), so
    /// the continued run is the run that wrote the checkpoint.
    pub fn resume(
        ck: Checkpoint,
        data: &'a Mnist,
        mut opts: RunOptions,
    ) -> Result<Self, TrainError> {
        let cfg = ck.check(&opts.out_dir)?;
        check_data(&cfg, data)?;
        opts.seed = ck.seed;
        opts.train_examples = ck.train_examples;
        opts.test_examples = ck.test_examples;
        let run = RunDir {
            dir: opts.out_dir.clone(),
        };
        let net =
            checkpoint::restore_network(cfg, ck.params, ck.rule_params, ck.seed, ck.feedback_rng);
        let mut wall = run.read_wall_times();
        wall.resize(ck.history.len(), [f64::NAN; 3]);
        let mut bursts = run.read_burst_probabilities();
        bursts.resize(ck.history.len(), Vec::new());
        let initial = run.read_initial();
        let t = Trainer {
            net,
            data,
            opts,
            run,
            model_toml: ck.model_toml,
            history: ck.history,
            wall,
            bursts,
            resume_progress: ck.progress,
            alignment_trace: false,
            initial,
            initial_pending: false,
        };
        // model.toml names the budget, whose epochs a resume may have changed.
        t.run.write_model(
            &t.model_toml,
            t.opts.seed,
            Budget {
                epochs: t.opts.epochs,
                train_examples: t.opts.train_examples,
                test_examples: t.opts.test_examples,
            },
        )?;
        // A run killed between its checkpoint and its metrics left them one epoch short.
        if !t.history.is_empty() || t.initial.is_some() {
            t.run.write_metrics(&t.metrics())?;
        }
        Ok(t)
    }

    fn checkpoint(&self, epochs_done: usize, progress: Option<EpochProgress>) -> Checkpoint {
        Checkpoint {
            model_sha256: checkpoint::sha256_hex(self.model_toml.as_bytes()),
            model_toml: self.model_toml.clone(),
            seed: self.opts.seed,
            train_examples: self.opts.train_examples,
            test_examples: self.opts.test_examples,
            epochs_done,
            progress,
            params: self.net.params.clone(),
            feedback_rng: self.net.feedback_rng.clone(),
            history: self.history.clone(),
            rule_params: self.net.rule_params.clone(),
        }
    }

    /// Every row of metrics.json: the initial test (when the run has one), then the trained
    /// epochs.
    fn metrics(&self) -> Vec<EpochMetrics> {
        let trained = self.history.iter().zip(&self.wall).zip(&self.bursts).map(
            |((r, &[train, test, per_example]), bursts)| EpochMetrics {
                record: r.clone(),
                wall_seconds: train + test,
                train_seconds: train,
                test_seconds: test,
                seconds_per_train_example: per_example,
                burst_probability: bursts.clone(),
            },
        );
        self.initial.iter().cloned().chain(trained).collect()
    }

    /// Tests the initial network before the first example (epoch 0 of the metrics) on the
    /// per-epoch test's budget and code path, with streams of its own
    /// ([`epoch_test_key`]`(0)`). The test reads the network and changes nothing, so the
    /// weights trained after it are those of a run without it. Written to metrics.csv/json
    /// at once, so a resumed run reads it back instead of testing again.
    fn test_initial<E: RunEvents>(&mut self, events: &mut E) -> Result<(), TrainError> {
        self.initial_pending = false;
        let started = Instant::now();
        events.testing(0, self.opts.test_examples);
        let (idx, preds) = evaluate(
            &self.net,
            &self.data.test,
            self.opts.seed,
            epoch_test_key(0),
            self.opts.test_examples,
        );
        let m = EpochMetrics::initial(
            idx.len(),
            error_percent(&self.data.test, &idx, &preds),
            started.elapsed().as_secs_f64(),
        );
        self.initial = Some(m.clone());
        self.run.write_metrics(&self.metrics())?;
        events.epoch_end(&m, &self.net.params);
        Ok(())
    }

    /// Trains up to `opts.epochs` epochs in total. `stop` is polled after every example.
    /// Every run event goes to `progress`. Not generic: the simulation is compiled once, in
    /// the library, for every caller (as [`Trainer::run_recording`]); to follow the steps
    /// with an observer of one's own, [`Trainer::run_observed`].
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn RunEvents,
    ) -> Result<(), TrainError> {
        self.run_observed(stop, progress, &mut NoObserver)
    }

    /// [`Trainer::run`] with the trace recorder following the run and its steps.
    pub fn run_recording(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn RunEvents,
        recorder: &mut Recorder,
    ) -> Result<(), TrainError> {
        self.run_observed(stop, progress, recorder)
    }

    /// [`Trainer::run`] with every run event going to `progress` and to `obs` alike; `obs`
    /// also follows the steps of each example. Generic in the observer (the step loop
    /// calls it without dynamic dispatch), so each observer type compiles the simulation
    /// anew where it is used.
    pub fn run_observed<O: RunEvents + Observer>(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn RunEvents,
        obs: &mut O,
    ) -> Result<(), TrainError> {
        let seed = self.opts.seed;
        let cfg = self.net.model.cfg.clone();
        let train = &self.data.train;
        let n_train = self.opts.train_examples.min(train.len());
        // Feedback alignment diagnostics (read-only: they do not change the run).
        let mut align = AlignmentLog::load(&self.run.dir, self.history.len());
        if self.alignment_trace {
            align = align.with_trace(&self.run.dir, self.history.len());
        }
        if self.initial_pending && self.history.is_empty() && self.resume_progress.is_none() {
            self.test_initial(&mut (&mut *progress, &mut *obs))?;
        }
        while self.history.len() < self.opts.epochs {
            let epoch = self.history.len() + 1;
            let started = Instant::now();
            let order = epoch_order(seed, epoch, train.len(), n_train);
            let (l_f, l_t) = phase_lengths(
                &cfg,
                n_train,
                &mut stream(seed, Purpose::PhaseLengths, &[epoch as u64]),
            );
            let (mut start, mut correct, mut steps) = (0, 0, 0u64);
            match self.resume_progress.take() {
                Some(p) => {
                    start = p.example;
                    correct = p.correct;
                    steps = p.steps;
                    self.net.state = p.state;
                }
                None => {
                    self.net.start_epoch(seed, epoch);
                    for l in &mut self.net.state.layers {
                        l.spike_count = 0;
                        l.rate_sum = 0.0;
                    }
                }
            }
            (&mut *progress, &mut *obs).epoch_start(epoch, start, n_train, &self.net.params);
            let quick = cfg.training.quick_test_every;
            let mut preds = Vec::new();
            let batch_size = cfg.training.batch_size;
            let mut k = start;
            while k < n_train {
                // Online learning trains example k; a minibatch the examples up to the next
                // multiple of batch_size (or the epoch's end), on the weights of its start.
                let end = if batch_size > 1 {
                    (k / batch_size + 1) * batch_size
                } else {
                    k + 1
                }
                .min(n_train);
                if batch_size > 1 {
                    self.train_minibatch(&order[k..end], &l_f[k..end], &mut preds);
                    // The events of each example, in order, after the batch's update: its
                    // start, its forward phase's `l_f` steps (unwatched: a minibatch runs no
                    // steps one by one) and its end, with the weights after the update.
                    for (i, &p) in (k..end).zip(&preds) {
                        let idx = order[i];
                        (&mut *progress, &mut *obs).example_start(epoch, i, idx, train.label(idx));
                        if obs.watches_steps() {
                            return Err(TrainError::Invalid(format!(
                                "training.batch_size = {batch_size} trains a minibatch in one \
                                 pass, without steps to record: record metrics and weights only \
                                 (e.g. --record metrics,weights) or set batch_size = 1"
                            )));
                        }
                        obs.on_steps_unwatched(Phase::Forward, l_f[i]);
                        // One forward phase per example (these rules have no target phase).
                        steps += l_f[i] as u64;
                        if p == train.label(idx) {
                            correct += 1;
                        }
                        let done = ExampleDone {
                            epoch,
                            example: i,
                            predicted: p,
                            train_error: 100.0 * (i + 1 - correct) as f64 / (i + 1) as f64,
                        };
                        (&mut *progress, &mut *obs).example_end(&done, &self.net.params);
                    }
                    if !self.net.batch_is_finite() || !example_is_finite(&self.net) {
                        return Err(self.non_finite(epoch, end));
                    }
                } else {
                    let idx = order[k];
                    let probe = align.compares(k, n_train);
                    if probe {
                        align.before_example(&self.net);
                    }
                    (&mut *progress, &mut *obs).example_start(epoch, k, idx, train.label(idx));
                    let out = self.net.train_example_observed(
                        train.image(idx),
                        train.label(idx),
                        l_f[k],
                        l_t[k],
                        obs,
                    );
                    if probe {
                        align.after_example_at(&self.net, epoch, k, n_train);
                    }
                    steps += out.steps as u64;
                    if out.predicted == train.label(idx) {
                        correct += 1;
                    }
                    // Cheap per-example check (potentials, errors, presynaptic means: a few
                    // thousand values); the weights (~400k) are checked before every save.
                    if !example_is_finite(&self.net) {
                        return Err(self.non_finite(epoch, k + 1));
                    }
                    let done = ExampleDone {
                        epoch,
                        example: k,
                        predicted: out.predicted,
                        train_error: 100.0 * (k + 1 - correct) as f64 / (k + 1) as f64,
                    };
                    (&mut *progress, &mut *obs).example_end(&done, &self.net.params);
                }
                let done = end;
                // Whether a multiple of `every` lies in (k, done]: after every `every`
                // examples online, at the end of the batch that reaches it with minibatches
                // (the weights between are those of the batch's start).
                let first = k;
                let reached = |every: usize| every > 0 && done / every > first / every;
                k = end;
                if reached(quick) && done < n_train {
                    let n = cfg.training.quick_test_examples;
                    let key = quick_test_key(epoch, done / quick);
                    let (idx, preds) = evaluate(&self.net, &self.data.test, seed, key, n);
                    let error = error_percent(&self.data.test, &idx, &preds);
                    (&mut *progress, &mut *obs).quick_test(epoch, done, error);
                    // Every test resets the state; training resumes from zero (section 5).
                    self.net.state.reset();
                }
                let interrupted = stop.load(Ordering::SeqCst);
                let periodic = reached(self.opts.checkpoint_every) && done < n_train;
                if (interrupted || periodic) && done < n_train {
                    let (path, progress_state) = self.save_progress(epoch, done, correct, steps)?;
                    if interrupted {
                        // Calling `run` again continues exactly where this call stopped.
                        self.resume_progress = progress_state;
                        return Err(TrainError::Interrupted {
                            epoch,
                            example: done,
                            checkpoint: path,
                        });
                    }
                }
            }
            self.end_epoch(
                EpochTally {
                    epoch,
                    n_train,
                    first: start,
                    correct,
                    steps,
                    started,
                },
                &mut (&mut *progress, &mut *obs),
                &mut align,
            )?;
            if stop.load(Ordering::SeqCst) && self.history.len() < self.opts.epochs {
                return Err(TrainError::Interrupted {
                    epoch,
                    example: n_train,
                    checkpoint: self.run.dir.join(checkpoint::epoch_file_name(epoch)),
                });
            }
        }
        Ok(())
    }
}

impl Trainer<'_> {
    /// Trains the training images `images` as one minibatch (docs/model.md, section 13)
    /// and leaves their predictions in `preds`.
    fn train_minibatch(&mut self, images: &[usize], l_f: &[usize], preds: &mut Vec<u8>) {
        let train = &self.data.train;
        for &idx in images {
            self.net
                .push_batch_example(train.image(idx), train.label(idx));
        }
        self.net.train_batch(l_f, preds);
    }

    /// A mid-epoch checkpoint after `done` examples of `epoch`: its path, and the progress
    /// it holds (to continue from when the run stops here). Never saves non-finite values:
    /// the previous checkpoint then stays the last.
    fn save_progress(
        &mut self,
        epoch: usize,
        done: usize,
        correct: usize,
        steps: u64,
    ) -> Result<(PathBuf, Option<EpochProgress>), TrainError> {
        if !self.net.is_finite() {
            return Err(self.non_finite(epoch, done));
        }
        let ck = self.checkpoint(
            epoch - 1,
            Some(EpochProgress {
                example: done,
                correct,
                steps,
                state: self.net.state.clone(),
            }),
        );
        let path = self
            .run
            .dir
            .join(checkpoint::progress_file_name(epoch, done));
        ck.save(&path)?;
        Ok((path, ck.progress))
    }

    /// The end of an epoch: firing rates, the test, the epoch's record and checkpoint,
    /// retention, alignment and metrics files.
    fn end_epoch<E: RunEvents>(
        &mut self,
        tally: EpochTally,
        events: &mut E,
        align: &mut AlignmentLog,
    ) -> Result<(), TrainError> {
        let EpochTally {
            epoch,
            n_train,
            first,
            correct,
            steps,
            started,
        } = tally;
        let seed = self.opts.seed;
        let dt_ms = self.net.model.cfg.neuron.dt;
        if !self.net.is_finite() {
            return Err(self.non_finite(epoch, n_train));
        }
        let rates_hz = self
            .net
            .state
            .layers
            .iter()
            // Spikes, or in the rate mode the expected spikes (one of the two is zero).
            .map(|l| {
                (l.spike_count as f64 + l.rate_sum) / (l.n as f64 * steps.max(1) as f64) * 1000.0
                    / dt_ms
            })
            .collect();
        let train_seconds = started.elapsed().as_secs_f64();
        let test_started = Instant::now();
        events.testing(epoch, self.opts.test_examples);
        let (idx, preds) = evaluate(
            &self.net,
            &self.data.test,
            seed,
            epoch_test_key(epoch),
            self.opts.test_examples,
        );
        let record = EpochRecord {
            epoch,
            train_examples: n_train,
            train_error: 100.0 * (n_train - correct) as f64 / n_train.max(1) as f64,
            test_examples: idx.len(),
            test_error: error_percent(&self.data.test, &idx, &preds),
            rates_hz,
        };
        self.history.push(record);
        // A resumed epoch timed only the examples after its checkpoint.
        self.wall.push([
            train_seconds,
            test_started.elapsed().as_secs_f64(),
            train_seconds / (n_train - first).max(1) as f64,
        ]);
        self.bursts.push(self.net.state.burst.burst_fractions());
        // The test reset the state: the next epoch starts from zero.
        self.net.state.reset();
        let ck = self.checkpoint(epoch, None);
        ck.save(&self.run.dir.join(checkpoint::epoch_file_name(epoch)))?;
        drop(ck);
        // Mid-epoch files of this epoch are superseded by the epoch's checkpoint.
        if let Ok(list) = checkpoint::list_checkpoints(&self.run.dir) {
            for (e, k, p) in list {
                if k > 0 && e < epoch {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        // Older epochs' checkpoints the retention policy does not keep (the one just
        // written is on disk: `save` synced it and its directory).
        self.run
            .prune_checkpoints(self.opts.keep_checkpoints, epoch)?;
        align.end_epoch(epoch, &self.net);
        align.write(&self.run.dir).map_err(io_err(&self.run.dir))?;
        let metrics = self.metrics();
        self.run.write_metrics(&metrics)?;
        if let Some(m) = metrics.last() {
            events.epoch_end(m, &self.net.params);
        }
        Ok(())
    }
}

/// What an epoch's training loop counted.
struct EpochTally {
    epoch: usize,
    n_train: usize,
    /// Examples of the epoch trained before this process took it up (a resumed epoch).
    first: usize,
    correct: usize,
    steps: u64,
    started: Instant,
}

impl Trainer<'_> {
    fn non_finite(&self, epoch: usize, example: usize) -> TrainError {
        let last = checkpoint::list_checkpoints(&self.run.dir)
            .ok()
            .and_then(|l| l.last().map(|(_, _, p)| p.clone()));
        TrainError::NonFinite {
            epoch,
            example,
            last_checkpoint: last,
        }
    }
}

/// Whether the values one training example computes are finite: potentials, the errors of
/// every layer and the presynaptic window means the weight updates are made of. A weight
/// can only become non-finite through non-finite terms here or by overflow, which makes the
/// next example's potentials infinite; [`Network::is_finite`] covers the rest before saves.
fn example_is_finite(net: &Network) -> bool {
    let st = &net.state;
    let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    st.is_finite()
        && st.errors.iter().all(|e| finite(e))
        && st
            .presyn
            .iter()
            .chain(&st.presyn_fb)
            .all(|p| finite(&p.mean))
}

/// `training.batch_size` against the examples an epoch trains (the model file's check
/// compares it with its own `training.train_examples`; a run may train fewer).
fn check_batch(cfg: &ModelConfig, n_train: usize) -> Result<(), TrainError> {
    let b = cfg.training.batch_size;
    if b > n_train {
        return Err(TrainError::Invalid(format!(
            "training.batch_size = {b} is more than the {n_train} training examples of an epoch; \
             set batch_size to at most {n_train} or train more examples"
        )));
    }
    Ok(())
}

fn check_data(cfg: &ModelConfig, data: &Mnist) -> Result<(), TrainError> {
    let pixels = data.train.rows * data.train.cols;
    if pixels != cfg.network.n_in || data.test.rows * data.test.cols != cfg.network.n_in {
        return Err(TrainError::Invalid(format!(
            "the model has network.n_in = {} inputs but the images have {} pixels; set network.n_in = {}",
            cfg.network.n_in, pixels, pixels
        )));
    }
    if data.train.is_empty() || data.test.is_empty() {
        return Err(TrainError::Invalid(
            "the training or test set is empty".into(),
        ));
    }
    let classes = crate::io::dataset::classes(data);
    if classes > cfg.network.classes {
        return Err(TrainError::Invalid(format!(
            "the data has labels up to {} ({classes} classes) but the model has network.classes = {}; set network.classes = {classes} and network.n_out to a multiple of it",
            classes - 1,
            cfg.network.classes
        )));
    }
    Ok(())
}
