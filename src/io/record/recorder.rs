//! The recorder: an observer of the simulation that streams what the plan selects into the
//! trace file.

use super::compression::{Compression, Filters};
use super::layout::*;
use super::writer::*;
use super::{
    FLUSH_BYTES, FLUSH_INTERVAL, FORMAT_VERSION, POTENTIAL_UNITS, SONATA_MAGIC, SONATA_VERSION,
};
use crate::base::rng::{stream, Purpose};
use crate::io::atomic::PendingFile;
use crate::io::checkpoint::EpochRecord;
use crate::io::run_dir::Budget;
use crate::model::config::ModelConfig;
use crate::model::neuron::plateau_potential;
use crate::model::params::LayerParams;
use crate::model::phases::phase_lengths;
use crate::model::record_plan::{RecordPlan, ELEMENT_APICAL, ELEMENT_BASAL, ELEMENT_SOMA};
use crate::model::recording::RecordGroup;
use crate::sim::observer::{Observer, Phase, StepInfo};
use crate::sim::state::NetState;
use hdf5::File;
use std::path::{Path, PathBuf};

/// How a recorded run ended (root attributes `complete` and `stop_reason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    Completed,
    Interrupted,
    Failed(String),
}

/// Where a run starts: epoch (1-based), example in it, and training steps before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartPoint {
    pub epoch: usize,
    pub example: usize,
    pub step: u64,
}

/// Writes traces of a training run as it goes. Create it with [`Recorder::create`], pass it
/// to [`crate::run::trainer::Trainer::run`] as the observer, then call [`Recorder::finish`]. If it is
/// dropped without `finish`, it still flushes and marks the file incomplete.
pub struct Recorder {
    file: Option<File>,
    writer: Writer,
    path: PathBuf,
    plan: RecordPlan,
    dt: f64,
    m_layers: usize,
    /// Global training step of the next step.
    step: u64,
    /// Whether any per-step recording is on for the current example.
    step_active: bool,
    /// The file's groups and columns.
    out: Outputs,
    // The current example.
    epoch: usize,
    n_examples: usize,
    example: usize,
    image: usize,
    label: u8,
    example_row: Option<u64>,
    example_start: u64,
    forward_steps: u32,
    target_steps: u32,
    /// (epoch, examples done in it) of the last example handed to the buffers.
    last_done: (usize, usize),
    flush_bytes: usize,
    /// A flush at the end of an example when the last one is this old.
    flush_interval: std::time::Duration,
    last_flush: std::time::Instant,
    /// `APICAL_TRACE_FLUSH_LOG`: a file to which every completed flush appends a line.
    flush_log: Option<PathBuf>,
    error: Option<RecordError>,
    finished: bool,
    inject_failure: bool,
    /// The example at whose start `inject_failure` is set (tests).
    inject_at: Option<usize>,
}

impl Recorder {
    /// Creates the trace file (truncating one that exists) and writes its root attributes,
    /// the run's `budget` among them (`budget_epochs`, `budget_train_examples`,
    /// `budget_test_examples`).
    /// `spec_text` is stored as given, for the record. `data`: the data set, written as the
    /// root attributes `dataset` and `dataset_sha256` unless it is MNIST (a file without
    /// them, as every file before data sets, is of a run on MNIST).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        path: &Path,
        groups: &[RecordGroup],
        spec_text: &str,
        cfg: &ModelConfig,
        model_toml: &str,
        seed: u64,
        start: StartPoint,
        budget: Budget,
        z: Compression,
        data: Option<&crate::io::run_dir::DataRecord>,
    ) -> Result<Self, RecordError> {
        let spiking = cfg.neuron.mode != crate::model::config::NeuronMode::Rate;
        let plan = RecordPlan::resolve(groups, &cfg.topology(), spiking)?;
        let he = |what: &str| {
            let what = what.to_string();
            let path = path.to_path_buf();
            move |source| RecordError::Hdf5 { path, what, source }
        };
        // Laid out under a temporary name and renamed when complete: a process killed while
        // the file is being laid out leaves no half-written traces.h5.
        // The part file is created exclusively (a link or leftover at its name is removed,
        // never written through) before HDF5 opens it.
        let part = part_path(path);
        let pending = PendingFile::create_at(path, &part).map_err(|e| RecordError::Write {
            path: path.to_path_buf(),
            message: format!("cannot create {}: {e}", part.display()),
        })?;
        let file = create_file(&part).map_err(he("cannot create the file"))?;
        let m_layers = cfg.layer_sizes().len();
        let dt = cfg.neuron.dt;
        let z = Filters::new(z, dt);
        let build = || -> hdf5::Result<Recorder> {
            write_root_attributes(&file, cfg, model_toml, spec_text, seed, start, z)?;
            // The budget run, beside the model (whose [training] is the model file's).
            put_attr(&file, "budget_epochs", &(budget.epochs as u64))?;
            put_attr(
                &file,
                "budget_train_examples",
                &(budget.train_examples as u64),
            )?;
            put_attr(
                &file,
                "budget_test_examples",
                &(budget.test_examples as u64),
            )?;
            if let Some(d) = data.filter(|d| d.name != "mnist") {
                put_str(&file, "dataset", &d.name)?;
                put_str(&file, "dataset_sha256", &d.sha256)?;
            }
            let out = lay_out(&file, &plan, cfg, z)?;
            file.flush()?;
            Ok(Recorder {
                file: None,
                writer: Writer {
                    tx: None,
                    thread: None,
                    failed: Default::default(),
                },
                path: PathBuf::new(),
                plan: plan.clone(),
                dt,
                m_layers,
                step: start.step,
                step_active: false,
                out,
                epoch: start.epoch,
                n_examples: 0,
                example: start.example,
                image: 0,
                label: 0,
                example_row: None,
                example_start: start.step,
                forward_steps: 0,
                target_steps: 0,
                last_done: (start.epoch.saturating_sub(1), 0),
                flush_bytes: FLUSH_BYTES,
                flush_interval: FLUSH_INTERVAL,
                last_flush: std::time::Instant::now(),
                flush_log: std::env::var_os("APICAL_TRACE_FLUSH_LOG").map(PathBuf::from),
                error: None,
                finished: false,
                inject_failure: false,
                inject_at: None,
            })
        };
        let mut r = build().map_err(he("cannot lay out the file"))?;
        pending.commit().map_err(|e| RecordError::Write {
            path: path.to_path_buf(),
            message: format!("cannot rename {} to it: {e}", part.display()),
        })?;
        if start.example > 0 {
            r.last_done = (start.epoch, start.example);
        }
        r.file = Some(file);
        r.path = path.to_path_buf();
        r.writer = Writer::spawn().map_err(|e| RecordError::Write {
            path: path.to_path_buf(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        Ok(r)
    }

    /// The trace file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush when this many bytes are buffered at the end of an example (default
    /// `FLUSH_BYTES`).
    pub fn set_flush_bytes(&mut self, bytes: usize) {
        self.flush_bytes = bytes;
    }

    /// Flush at the end of an example when the last flush is this old (default
    /// 1 s).
    pub fn set_flush_interval(&mut self, interval: std::time::Duration) {
        self.flush_interval = interval;
    }

    /// Makes the first flush after example `example` (of any epoch) starts fail as a write
    /// error would (for tests of that path).
    #[doc(hidden)]
    pub fn inject_write_failure_at(&mut self, example: usize) {
        self.inject_at = Some(example);
    }

    /// The first write error, if recording stopped on one (the run itself goes on).
    pub fn error(&self) -> Option<&RecordError> {
        self.error.as_ref()
    }

    fn buffered_bytes(&self) -> usize {
        let mut b = 0;
        for s in self.out.spikes.iter().flatten() {
            b += s.timestamps.bytes() + s.node_ids.bytes();
            b += s.bursts.as_ref().map_or(0, |c| c.bytes());
        }
        for r in self.out.reports.iter().chain(&self.out.rates).flatten() {
            b += r.bytes();
        }
        for p in self.out.plateaus.iter().flatten() {
            b += p.forward.bytes() + p.target.bytes() + p.row.bytes();
        }
        for w in self.out.weights.iter().flatten() {
            b += w.w.bytes() + w.b.bytes();
            b += w.y.as_ref().map_or(0, |c| c.bytes()) + w.c.as_ref().map_or(0, |c| c.bytes());
        }
        b
    }

    fn fail(&mut self, what: &str, source: hdf5::Error) {
        if self.error.is_none() {
            self.error = Some(RecordError::Hdf5 {
                path: self.path.clone(),
                what: what.to_string(),
                source,
            });
        }
    }

    /// Hands every buffer to the writer thread, with an update of the progress attributes.
    /// Blocks while the writer is still busy with the batch before the last one, so at
    /// most two batches are in flight.
    fn flush_all(&mut self, last: bool) {
        let mut jobs: Vec<Job> = Vec::new();
        if std::mem::take(&mut self.inject_failure) {
            jobs.push(Box::new(|| {
                Err(hdf5::Error::from("injected write failure (test)"))
            }));
        }
        let j = &mut jobs;
        for s in self.out.spikes.iter_mut().flatten() {
            s.timestamps.flush(j, last);
            s.node_ids.flush(j, last);
            if let Some(c) = &mut s.bursts {
                c.flush(j, last);
            }
        }
        for r in self
            .out
            .reports
            .iter_mut()
            .chain(self.out.rates.iter_mut())
            .flatten()
        {
            r.flush(j, last);
        }
        for p in self.out.plateaus.iter_mut().flatten() {
            p.row.flush(j, last);
            p.forward.flush(j, last);
            p.target.flush(j, last);
        }
        for w in self.out.weights.iter_mut().flatten() {
            w.w.flush(j, last);
            w.b.flush(j, last);
            if let Some(c) = &mut w.y {
                c.flush(j, last);
            }
            if let Some(c) = &mut w.c {
                c.flush(j, last);
            }
        }
        if let Some(s) = &mut self.out.snaps {
            s.epoch.flush(j, last);
            s.example.flush(j, last);
            s.time.flush(j, last);
        }
        if let Some(e) = &mut self.out.examples {
            e.epoch.flush(j, last);
            e.example.flush(j, last);
            e.image.flush(j, last);
            e.label.flush(j, last);
            e.prediction.flush(j, last);
            e.start_time.flush(j, last);
            e.forward_steps.flush(j, last);
            e.target_steps.flush(j, last);
        }
        let e = &mut self.out.epochs;
        e.epoch.flush(j, last);
        e.train_examples.flush(j, last);
        e.train_error.flush(j, last);
        e.test_examples.flush(j, last);
        e.test_error.flush(j, last);
        e.rates_hz.flush(j, last);
        e.end_time.flush(j, last);
        if let Some(f) = &self.file {
            let f = f.clone();
            let (epoch, example) = (self.last_done.0 as u64, self.last_done.1 as u64);
            let end = self.step as f64 * self.dt;
            let log = self.flush_log.clone().map(|p| {
                let rows: Vec<String> = self
                    .out
                    .spikes
                    .iter()
                    .map(|s| s.as_ref().map_or(0, |s| s.timestamps.rows).to_string())
                    .collect();
                (p, rows.join(" "))
            });
            jobs.push(Box::new(move || {
                put_attr(&f, "last_epoch", &epoch)?;
                put_attr(&f, "last_example", &example)?;
                put_attr(&f, "end_time", &end)?;
                f.flush()?;
                if let Some((p, rows)) = log {
                    log_flush(&p, &rows);
                }
                Ok(())
            }));
        }
        let sent = self.writer.tx.as_ref().map(|tx| tx.send(jobs));
        if !matches!(sent, Some(Ok(()))) {
            self.writer_failed("the writer thread stopped".into());
        }
    }

    fn writer_failed(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(RecordError::Write {
                path: self.path.clone(),
                message,
            });
        }
    }

    /// Takes the writer thread's first error, if it had one.
    fn check_writer(&mut self) {
        let msg = self
            .writer
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(m) = msg {
            self.writer_failed(m);
        }
    }

    fn try_flush(&mut self, last: bool) {
        self.check_writer();
        if self.error.is_some() {
            return;
        }
        self.last_flush = std::time::Instant::now();
        self.flush_all(last);
    }

    /// Best effort after a write error: say so in the file (writer thread joined).
    fn mark_failed(&mut self) {
        if let (Some(f), Some(err)) = (&self.file, &self.error) {
            let _ = put_attr(f, "complete", &false);
            let _ = put_str(f, "stop_reason", &format!("write error: {err}"));
            let _ = f.flush();
        }
    }

    fn snapshot(&mut self, params: &[LayerParams], epoch: usize, example: usize) {
        if self.error.is_some() {
            return;
        }
        let Some(s) = &mut self.out.snaps else {
            return;
        };
        if s.last == Some((epoch, example)) {
            return;
        }
        s.last = Some((epoch, example));
        s.epoch.push(epoch as u32);
        s.example.push(example as u32);
        s.time.push(self.step as f64 * self.dt);
        for (w, p) in self.out.weights.iter_mut().zip(params) {
            let Some(w) = w else { continue };
            // W[i, j] = w[j * n + i]: store neuron-major, as (post, pre).
            transpose_into(&p.w, p.n_pre, p.n, &mut w.scratch);
            w.w.extend(&w.scratch);
            w.b.extend(&p.b);
            if let Some(y) = &mut w.y {
                transpose_into(&p.y, p.n_fb, p.n, &mut w.scratch);
                y.extend(&w.scratch);
            }
            if let Some(c) = &mut w.c {
                c.extend(&p.c);
            }
        }
    }

    /// Flushes, writes the final status and closes the file. Returns the first write error,
    /// if any happened during the run.
    pub fn finish(mut self, end: RunEnd) -> Result<PathBuf, RecordError> {
        self.finish_inner(end);
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.path.clone()),
        }
    }

    fn finish_inner(&mut self, end: RunEnd) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.try_flush(true);
        // Let the writer finish every batch, then write the status from this thread.
        self.writer.tx = None;
        if let Some(t) = self.writer.thread.take() {
            if t.join().is_err() {
                self.writer_failed("the writer thread panicked".into());
            }
        }
        self.check_writer();
        if self.error.is_some() {
            self.mark_failed();
        } else {
            if let Some(f) = &self.file {
                let (complete, reason) = match &end {
                    RunEnd::Completed => (true, "completed".to_string()),
                    RunEnd::Interrupted => (false, "interrupted".to_string()),
                    RunEnd::Failed(m) => (false, format!("failed: {m}")),
                };
                let r = put_attr(f, "complete", &complete)
                    .and_then(|_| put_str(f, "stop_reason", &reason))
                    .and_then(|_| f.flush());
                if let Err(e) = r {
                    self.fail("cannot write the final status", e);
                }
            }
        }
        if let Some(f) = self.file.take() {
            if let Err(e) = f.close() {
                self.fail("cannot close the file", e);
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish_inner(RunEnd::Failed(
            "the recorder was dropped before the run ended".into(),
        ));
    }
}

fn transpose_into(src: &[f32], rows: usize, cols: usize, out: &mut Vec<f32>) {
    // src is [rows][cols]; out becomes [cols][rows].
    out.clear();
    out.resize(rows * cols, 0.0);
    for r in 0..rows {
        for (c, &v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
}

impl Observer for Recorder {
    fn reads_apical(&self) -> bool {
        self.out
            .reports
            .iter()
            .flatten()
            .any(|r| r.elements.contains(&ELEMENT_APICAL))
    }

    /// Only while this example records spikes or potentials.
    fn watches_steps(&self) -> bool {
        self.step_active
    }

    fn on_steps_unwatched(&mut self, phase: Phase, steps: usize) {
        if phase == Phase::Test {
            return;
        }
        self.step += steps as u64;
        let n = u32::try_from(steps).unwrap_or(u32::MAX);
        match phase {
            Phase::Forward => self.forward_steps += n,
            _ => self.target_steps += n,
        }
    }

    #[inline]
    fn on_step(&mut self, info: &StepInfo<'_>) {
        if info.phase == Phase::Test {
            return;
        }
        let k = self.step;
        self.step += 1;
        match info.phase {
            Phase::Forward => self.forward_steps += 1,
            _ => self.target_steps += 1,
        }
        if !self.step_active {
            return;
        }
        let t = k as f64 * self.dt;
        let st: &NetState = info.state;
        for (p, s) in self.out.spikes.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            if !s.active {
                continue;
            }
            let ev = if p == 0 {
                &st.input.events
            } else {
                &st.layers[p - 1].events
            };
            for &i in ev {
                s.timestamps.push(t);
                s.node_ids.push(i as u64);
            }
            s.example_spikes += ev.len();
        }
        for (m, r) in self.out.reports.iter_mut().enumerate() {
            let Some(r) = r else { continue };
            if !r.active || k % r.interval != 0 {
                continue;
            }
            r.first_time.get_or_insert(t);
            r.times.push(t);
            for b in &st.layers[m].blocks {
                for i in 0..b.soma.len() {
                    for &e in &r.elements {
                        r.data.push(match e {
                            ELEMENT_SOMA => b.soma[i],
                            ELEMENT_BASAL => b.basal[i],
                            _ => b.apical[i],
                        });
                    }
                }
            }
        }
        let hz = 1000.0 / self.dt as f32;
        for (m, r) in self.out.rates.iter_mut().enumerate() {
            let Some(r) = r else { continue };
            if !r.active || k % r.interval != 0 {
                continue;
            }
            r.first_time.get_or_insert(t);
            r.times.push(t);
            for b in &st.layers[m].blocks {
                for &v in &b.rate {
                    r.data.push(v * hz);
                }
            }
        }
    }

    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        if phase == Phase::Test {
            return;
        }
        let Some(row) = self.example_row else { return };
        for (m, p) in self.out.plateaus.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            if !p.active {
                continue;
            }
            let l = &state.layers[m];
            match phase {
                Phase::Forward => {
                    p.row.push(row);
                    for &a in &l.forward.a {
                        p.forward.push(plateau_potential(a));
                    }
                }
                _ => {
                    for &a in &l.target.a {
                        p.target.push(plateau_potential(a));
                    }
                }
            }
        }
    }

    /// The burst flags of the example's spikes, beside them (layer m is population m + 1).
    /// A layer whose spikes this example did not record has none to flag.
    fn on_bursts(&mut self, bursts: &[Vec<bool>]) {
        for (s, flags) in self.out.spikes.iter_mut().skip(1).zip(bursts) {
            let Some(s) = s else { continue };
            let Some(col) = &mut s.bursts else { continue };
            if !s.active {
                continue;
            }
            // One flag per recorded spike: the burst rule logs the spikes the recorder saw,
            // step by step in the same order.
            debug_assert_eq!(flags.len(), s.example_spikes);
            for k in 0..s.example_spikes {
                col.push(u8::from(flags.get(k).copied().unwrap_or(false)));
            }
        }
    }
}

impl Recorder {
    /// Run event: an epoch starts (or resumes at example `first`).
    pub(crate) fn epoch_start(
        &mut self,
        epoch: usize,
        first: usize,
        n: usize,
        params: &[LayerParams],
    ) {
        self.epoch = epoch;
        self.n_examples = n;
        if epoch == 1 && first == 0 {
            self.snapshot(params, 0, 0);
        }
    }

    /// Run event: a training example is about to run.
    pub(crate) fn example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        if self.inject_at == Some(example) {
            self.inject_failure = true;
        }
        self.epoch = epoch;
        self.example = example;
        self.image = image;
        self.label = label;
        self.example_start = self.step;
        self.forward_steps = 0;
        self.target_steps = 0;
        let n = self.n_examples;
        if self.error.is_some() {
            self.step_active = false;
            self.example_row = None;
            return;
        }
        self.example_row = if self.plan.example_selected(example, n) {
            self.out
                .examples
                .as_ref()
                .map(|e| e.epoch.total_rows() as u64)
        } else {
            None
        };
        let mut any = false;
        for s in self.out.spikes.iter_mut().flatten() {
            s.active = s.examples.selects(example, n);
            s.example_spikes = 0;
            any |= s.active;
        }
        for r in self
            .out
            .reports
            .iter_mut()
            .chain(self.out.rates.iter_mut())
            .flatten()
        {
            r.active = r.examples.selects(example, n);
            any |= r.active;
        }
        for p in self.out.plateaus.iter_mut().flatten() {
            p.active = p.examples.selects(example, n);
        }
        self.step_active = any;
    }

    /// Run event: the example ran (its prediction; `params` after learning).
    pub(crate) fn example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        if let (Some(_), Some(e)) = (self.example_row, &mut self.out.examples) {
            e.epoch.push(self.epoch as u32);
            e.example.push(self.example as u32);
            e.image.push(self.image as u32);
            e.label.push(self.label);
            e.prediction.push(predicted);
            e.start_time.push(self.example_start as f64 * self.dt);
            e.forward_steps.push(self.forward_steps);
            e.target_steps.push(self.target_steps);
        }
        self.step_active = false;
        self.example_row = None;
        self.last_done = (self.epoch, self.example + 1);
        let (k, n) = (self.example, self.n_examples);
        if self
            .out
            .weights
            .iter()
            .flatten()
            .any(|w| w.examples.selects(k, n))
        {
            self.snapshot(params, self.epoch, k + 1);
        }
        // After a write error, example_start turns recording off; the run goes on.
        self.check_writer();
        if self.buffered_bytes() >= self.flush_bytes
            || self.last_flush.elapsed() >= self.flush_interval
        {
            self.try_flush(false);
        }
    }

    /// Run event: the epoch ended and was tested.
    pub(crate) fn epoch_end(&mut self, record: &EpochRecord, params: &[LayerParams]) {
        let e = &mut self.out.epochs;
        e.epoch.push(record.epoch as u32);
        e.train_examples.push(record.train_examples as u32);
        e.train_error.push(record.train_error);
        e.test_examples.push(record.test_examples as u32);
        e.test_error.push(record.test_error);
        let mut rates = record.rates_hz.clone();
        rates.resize(self.m_layers, f64::NAN);
        e.rates_hz.extend(&rates);
        e.end_time.push(self.step as f64 * self.dt);
        self.last_done = (record.epoch, record.train_examples);
        self.snapshot(params, record.epoch, record.train_examples);
        self.try_flush(false);
    }
}

/// Training steps of a run before example `example` of `epoch` (1-based): the global time
/// origin of a resumed run's trace file. Phase lengths are drawn from their own stream, so
/// this replays no simulation.
pub fn steps_before(
    cfg: &ModelConfig,
    seed: u64,
    n_train: usize,
    epoch: usize,
    example: usize,
) -> u64 {
    let mut steps = 0u64;
    for e in 1..=epoch {
        let (f, t) = phase_lengths(
            cfg,
            n_train,
            &mut stream(seed, Purpose::PhaseLengths, &[e as u64]),
        );
        let upto = if e == epoch {
            example.min(n_train)
        } else {
            n_train
        };
        steps += f[..upto]
            .iter()
            .chain(&t[..upto])
            .map(|&l| l as u64)
            .sum::<u64>();
    }
    steps
}

/// Appends `<unix time in ms> <spike rows of each population>` to the flush log (a
/// diagnostic of the crash tests: which rows a completed flush had written, and when).
fn log_flush(path: &Path, rows: &str) {
    use std::io::Write as _;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = writeln!(f, "{ms} {rows}");
    }
}

/// `traces.h5.part` beside `traces.h5`: where the file is laid out before it is renamed.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// The trace file's groups and columns, one writer per recorded variable and population.
struct Outputs {
    spikes: Vec<Option<SpikeOut>>,
    reports: Vec<Option<ReportOut>>,
    rates: Vec<Option<ReportOut>>,
    plateaus: Vec<Option<PlateauOut>>,
    weights: Vec<Option<WeightsOut>>,
    snaps: Option<SnapIndex>,
    examples: Option<ExamplesOut>,
    epochs: EpochsOut,
}

/// Lays out what `plan` records: `spikes/`, `report/`, `rates/`, `plateau/`, `weights/`
/// per population, then the `examples` and `epochs` tables (docs/traces.md).
fn lay_out(file: &File, plan: &RecordPlan, cfg: &ModelConfig, z: Filters) -> hdf5::Result<Outputs> {
    let names = cfg.topology().population_names();
    let sizes = cfg.layer_sizes();
    let m_layers = sizes.len();
    let dt = cfg.neuron.dt;
    let mut pre = vec![cfg.network.n_in];
    pre.extend_from_slice(&sizes[..m_layers - 1]);
    let fb = |m: usize| -> usize {
        match cfg.network.feedback {
            crate::model::config::FeedbackSource::Broadcast => cfg.network.n_out,
            crate::model::config::FeedbackSource::NextLayer => sizes[m + 1],
        }
    };
    let (_, spikes) = per_population(file, "spikes", &plan.spikes, |sg, p, ex| {
        let n = if p == 0 {
            cfg.network.n_in
        } else {
            sizes[p - 1]
        };
        // Spiking BurstCCN flags the spikes of its layers that were bursts.
        let bursts = p > 0 && cfg.draws_bursts();
        SpikeOut::create(z.spikes(n), sg, &names[p], *ex, bursts)
    })?;
    let (_, reports) = per_population(file, "report", &plan.report, |rg, m, r| {
        ReportOut::create(
            z,
            rg,
            &names[m + 1],
            sizes[m],
            &r.elements,
            r.examples,
            r.interval,
            dt,
            POTENTIAL_UNITS,
        )
    })?;
    let (_, rates) = per_population(file, "rates", &plan.rate, |g, m, (ex, iv)| {
        ReportOut::create(
            z,
            g,
            &names[m + 1],
            sizes[m],
            &[ELEMENT_SOMA],
            *ex,
            *iv,
            dt,
            "Hz",
        )
    })?;
    let (_, plateaus) = per_population(file, "plateau", &plan.plateau, |pg, m, ex| {
        PlateauOut::create(z, pg, &names[m + 1], sizes[m], *ex)
    })?;
    let (wg, weights) = per_population(file, "weights", &plan.weights, |wg, m, ex| {
        // Feedback weights Y (n x feedback size) and c: hidden layers only.
        let feedback = (m + 1 < m_layers).then(|| fb(m));
        WeightsOut::create(z, wg, &names[m + 1], sizes[m], pre[m], feedback, *ex)
    })?;
    let snaps = wg.as_ref().map(|wg| SnapIndex::create(z, wg)).transpose()?;
    let per_example = plan.spikes.iter().any(Option::is_some)
        || plan.report.iter().any(Option::is_some)
        || plan.rate.iter().any(Option::is_some)
        || plan.plateau.iter().any(Option::is_some)
        || plan.labels.is_some();
    let examples = if per_example {
        Some(ExamplesOut::create(z, file)?)
    } else {
        None
    };
    let epochs = EpochsOut::create(z, file, m_layers)?;
    Ok(Outputs {
        spikes,
        reports,
        rates,
        plateaus,
        weights,
        snaps,
        examples,
        epochs,
    })
}

/// The root attributes: SONATA's `magic` and `version`, then what the file holds and how
/// the run went so far (`complete`, `stop_reason` and the last example are updated as it
/// runs).
fn write_root_attributes(
    file: &File,
    cfg: &ModelConfig,
    model_toml: &str,
    spec_text: &str,
    seed: u64,
    start: StartPoint,
    z: Filters,
) -> hdf5::Result<()> {
    let dt = cfg.neuron.dt;
    let sizes = cfg.layer_sizes();
    let names = cfg.topology().population_names();
    // SONATA's two root attributes of every SONATA HDF5 file.
    put_attr(file, "magic", &SONATA_MAGIC)?;
    file.new_attr_builder()
        .with_data(&SONATA_VERSION[..])
        .create("version")?;
    put_str(file, "format", "apical-traces")?;
    put_attr(file, "format_version", &FORMAT_VERSION)?;
    put_str(file, "apical_version", env!("CARGO_PKG_VERSION"))?;
    put_str(file, "model_name", &cfg.name)?;
    put_str(file, "model_toml", model_toml)?;
    put_attr(file, "seed", &seed)?;
    put_attr(file, "dt", &dt)?;
    put_str(file, "time_units", "ms")?;
    put_str(file, "potential_units", POTENTIAL_UNITS)?;
    put_str(file, "rate_units", "Hz")?;
    put_str(file, "record_spec", spec_text)?;
    put_str(file, "compression", &z.z.to_string())?;
    put_str(file, "populations", &names.join(","))?;
    let sz: Vec<u64> = std::iter::once(cfg.network.n_in as u64)
        .chain(sizes.iter().map(|&s| s as u64))
        .collect();
    file.new_attr_builder()
        .with_data(&sz[..])
        .create("population_sizes")?;
    put_attr(file, "start_epoch", &(start.epoch as u64))?;
    put_attr(file, "start_example", &(start.example as u64))?;
    put_attr(file, "start_time", &(start.step as f64 * dt))?;
    put_attr(file, "complete", &false)?;
    put_str(file, "stop_reason", "running")?;
    put_attr(file, "last_epoch", &(start.epoch.saturating_sub(1) as u64))?;
    put_attr(file, "last_example", &0u64)?;
    put_attr(file, "end_time", &(start.step as f64 * dt))?;

    Ok(())
}

/// Creates the trace file so that a process killed at any moment leaves a file that every
/// reader opens as it is, with every row of the last flushes (docs/traces.md, Crash safety):
///
/// - the HDF5 1.8 format (superblock version 2): the 1.10 format's superblock flags a file
///   "open for write" while it is, and readers refuse a file whose writer died until
///   `h5clear -s` clears the flag;
/// - no metadata evictions between flushes: HDF5 writes metadata only inside `H5Fflush`
///   (raw data first, then metadata), never a dataset's new length before its chunks;
///   the cache holds the metadata of one flush interval.
fn create_file(path: &Path) -> hdf5::Result<File> {
    use hdf5::file::{CacheDecreaseMode, CacheIncreaseMode, FlashIncreaseMode};
    let mdc = hdf5::file::MetadataCacheConfig {
        evictions_enabled: false,
        set_initial_size: true,
        initial_size: 2 << 20,
        min_size: 1 << 20,
        max_size: 32 << 20,
        incr_mode: CacheIncreaseMode::Off,
        flash_incr_mode: FlashIncreaseMode::Off,
        decr_mode: CacheDecreaseMode::Off,
        ..Default::default()
    };
    File::with_options()
        .with_fapl(|p| p.libver_v18().mdc_config(&mdc))
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names() {
        assert_eq!("none".parse(), Ok(Compression::None));
        assert_eq!("deflate".parse(), Ok(Compression::Deflate(1)));
        assert_eq!("deflate:6".parse(), Ok(Compression::Deflate(6)));
        assert!("deflate:10".parse::<Compression>().is_err());
        assert!("gzip"
            .parse::<Compression>()
            .unwrap_err()
            .contains("\"gzip\""));
        assert_eq!(Compression::Deflate(6).to_string(), "deflate:6");
    }
}
