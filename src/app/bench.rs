//! The benchmark harness behind `apical bench` (docs/performance.md): wall time of training
//! (learning included) and test evaluation on real MNIST images, for the model files and a
//! wide network, against the dense matrix-vector baseline in the same process.
//!
//! Training and test evaluation are timed at every thread count asked for (training shares
//! the neuron blocks of wide layers among the threads, tests run images in parallel), with
//! the repetitions of the thread counts interleaved so that a change of the machine's load
//! hits them alike. Separate tables time many short `apical train` processes at once
//! against one ([`sweep_throughput`]) and the start of a run ([`time_startup`]).
//!
//! Every number is the median of `reps` repeated measurements. Nothing here asserts a speed:
//! the quick mode only checks that the harness runs.

use crate::base::rng::{stream, Purpose};
use crate::io::mnist::Mnist;
use crate::model::config::ModelConfig;
use crate::model::phases::phase_lengths;
use crate::run::metrics::epoch_order;
use crate::sim::network::{Model, Network};
use crate::sim::observer::{Observer, Phase, StepInfo};
use crate::sim::state::NetState;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Repetitions of every measurement (the median is reported).
    pub reps: usize,
    /// Training examples per repetition.
    pub train_examples: usize,
    /// Test examples per repetition.
    pub test_examples: usize,
    /// Training examples per repetition of the dense baseline (it is slow).
    pub dense_examples: usize,
    /// Thread counts of training and test evaluation (the first is the reference of the
    /// speed-ups).
    pub threads: Vec<usize>,
    pub seed: u64,
}

impl BenchOptions {
    /// A few seconds in all: for CI, never a judgement on speed.
    pub fn quick() -> Self {
        BenchOptions {
            reps: 3,
            train_examples: 20,
            test_examples: 8,
            dense_examples: 2,
            threads: vec![1, 2],
            seed: 0,
        }
    }

    /// The numbers of docs/performance.md.
    pub fn full() -> Self {
        BenchOptions {
            reps: 5,
            train_examples: 1000,
            test_examples: 200,
            dense_examples: 40,
            threads: vec![1, 2],
            seed: 0,
        }
    }
}

/// Counts what a simulation did: steps and synaptic events (one event = one spike reaching
/// one postsynaptic compartment, feedforward and feedback).
#[derive(Default)]
pub(crate) struct EventCounter {
    pub steps: u64,
    pub events: u64,
    /// Fan-out of the input and of each layer's spikes (feedforward + feedback targets).
    fan_out: Vec<u64>,
    /// The current phase ran layer by layer (counted at its end).
    unwatched: bool,
}

impl EventCounter {
    pub fn new(model: &Model) -> Self {
        let cfg = &model.cfg;
        let sizes = cfg.layer_sizes();
        let m_layers = sizes.len();
        let broadcast = cfg.network.feedback == crate::model::config::FeedbackSource::Broadcast;
        // fan_out[0]: input; fan_out[m + 1]: layer m.
        let mut fan_out = vec![sizes[0] as u64];
        for m in 0..m_layers {
            let mut f = sizes.get(m + 1).copied().unwrap_or(0) as u64;
            if m + 1 == m_layers && broadcast {
                f += sizes[..m_layers - 1].iter().sum::<usize>() as u64;
            } else if m >= 1 && !broadcast {
                f += sizes[m - 1] as u64;
            }
            fan_out.push(f);
        }
        EventCounter {
            steps: 0,
            events: 0,
            fan_out,
            unwatched: false,
        }
    }
}

impl Observer for EventCounter {
    fn reads_apical(&self) -> bool {
        false
    }
    /// A phase run layer by layer is counted at its end, from the spikes of all its steps.
    fn watches_steps(&self) -> bool {
        false
    }
    fn on_steps_unwatched(&mut self, _phase: Phase, steps: usize) {
        self.steps += steps as u64;
        self.unwatched = true;
    }
    #[inline]
    fn on_step(&mut self, info: &StepInfo<'_>) {
        self.steps += 1;
        let s = info.state;
        let mut e = s.input.events.len() as u64 * self.fan_out[0];
        for (l, &f) in s.layers.iter().zip(&self.fan_out[1..]) {
            e += l.events.len() as u64 * f;
        }
        self.events += e;
    }
    fn on_phase_end(&mut self, _phase: Phase, s: &NetState) {
        if std::mem::take(&mut self.unwatched) {
            let mut e = s.input_seq.total() as u64 * self.fan_out[0];
            for (l, &f) in s.layers.iter().zip(&self.fan_out[1..]) {
                e += l.seq.total() as u64 * f;
            }
            self.events += e;
        }
    }
}

/// CPU time of the calling thread in seconds (/proc/thread-self/schedstat), when known.
/// On a busy machine it tells the cost of the work apart from the time spent waiting.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

/// One training measurement.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrainSample {
    pub seconds: f64,
    /// CPU seconds of the training thread (None where /proc does not tell).
    pub cpu_seconds: Option<f64>,
    pub examples: usize,
    pub steps: u64,
    pub events: u64,
    /// Threads that shared the blocks of the wide layers (1: none was shared).
    pub block_threads: usize,
}

/// Trains a fresh network (seed `seed`) on the first `n` examples of epoch 1's shuffle with
/// `threads` threads ([`Network::set_threads`]: only wide layers use more than one, and
/// they always do here) and times it (learning included, network construction excluded).
pub(crate) fn time_training(
    cfg: &ModelConfig,
    data: &Mnist,
    n: usize,
    seed: u64,
    dense: bool,
    threads: usize,
) -> TrainSample {
    let mut net = Network::new(cfg.clone(), seed);
    set_dense(&mut net, dense);
    net.start_epoch(seed, 1);
    net.set_threads(threads);
    // The team itself, every example (`apical train` also falls back to one thread where
    // the team is slower: Exec::adaptive).
    net.exec.adaptive = false;
    let train = &data.train;
    let order = epoch_order(seed, 1, train.len(), n);
    let (l_f, l_t) = phase_lengths(
        cfg,
        order.len(),
        &mut stream(seed, Purpose::PhaseLengths, &[1]),
    );
    let mut counter = EventCounter::new(&net.model);
    let cpu0 = thread_cpu_seconds();
    let t0 = Instant::now();
    let batch = cfg.training.batch_size;
    if batch > 1 {
        // Minibatches, as `apical train` runs them (docs/model.md, section 13).
        let mut preds = Vec::new();
        for (images, l_f) in order.chunks(batch).zip(l_f.chunks(batch)) {
            for &idx in images {
                net.push_batch_example(train.image(idx), train.label(idx));
            }
            net.train_batch(l_f, &mut preds);
            counter.steps += l_f.iter().sum::<usize>() as u64;
        }
    } else {
        for (k, &idx) in order.iter().enumerate() {
            net.train_example_observed(
                train.image(idx),
                train.label(idx),
                l_f[k],
                l_t[k],
                &mut counter,
            );
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_seconds = match (cpu0, thread_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    TrainSample {
        seconds,
        cpu_seconds,
        examples: order.len(),
        steps: counter.steps,
        events: counter.events,
        block_threads: net.exec.threads,
    }
}

/// Times the evaluation of `n` test images on a pool of `threads` threads; wall seconds.
pub(crate) fn time_test(net: &Network, data: &Mnist, n: usize, threads: usize, seed: u64) -> f64 {
    let idx: Vec<usize> = (0..n.min(data.test.len())).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool of a few threads can be built");
    // Warm the pool's threads first.
    pool.install(|| rayon::join(|| (), || ()));
    let t0 = Instant::now();
    let preds = pool.install(|| net.evaluate(seed, 0, &idx, |i| data.test.image(i)));
    let s = t0.elapsed().as_secs_f64();
    std::hint::black_box(preds);
    s
}

/// The median of `v` (the mean of the two middle values for an even count); 0 when empty.
pub(crate) fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        0.5 * (s[k - 1] + s[k])
    }
}

/// Peak resident memory of this process (VmHWM) in KiB, when /proc tells it.
pub(crate) fn peak_memory_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One row of the table: medians for one network.
#[derive(Clone, Debug, Default)]
pub struct BenchRow {
    pub name: String,
    pub sizes: String,
    /// Training, ms per example (learning included), at the first thread count.
    pub train_ms: f64,
    /// The same in CPU time of the training thread.
    pub train_cpu_ms: Option<f64>,
    /// Simulated seconds per wall second in training (first thread count).
    pub sim_per_wall: f64,
    /// Synaptic events per wall second in training (first thread count).
    pub events_per_s: f64,
    /// (threads asked, threads the wide layers used, ms per training example), for every
    /// thread count.
    pub train_threads: Vec<(usize, usize, f64)>,
    /// Dense baseline, ms per training example (one thread).
    pub dense_train_ms: f64,
    /// (threads, ms per test example of wall time at that thread count).
    pub test_ms: Vec<(usize, f64)>,
    /// Peak resident memory of the process after this row, MiB.
    pub peak_mib: Option<f64>,
}

impl BenchRow {
    /// Wall seconds per simulated second.
    pub(crate) fn wall_per_sim(&self) -> f64 {
        if self.sim_per_wall > 0.0 {
            1.0 / self.sim_per_wall
        } else {
            0.0
        }
    }

    /// Speed-up of training from the first to the last thread count.
    pub fn train_ratio(&self) -> f64 {
        match (self.train_threads.first(), self.train_threads.last()) {
            (Some(a), Some(b)) if b.2 > 0.0 => a.2 / b.2,
            _ => 0.0,
        }
    }

    /// Speed-up of test evaluation from the first to the last thread count.
    pub(crate) fn thread_ratio(&self) -> f64 {
        match (self.test_ms.first(), self.test_ms.last()) {
            (Some(a), Some(b)) if b.1 > 0.0 => a.1 / b.1,
            _ => 0.0,
        }
    }

    /// Speed-up of the event-driven step over the dense baseline (training).
    pub(crate) fn dense_ratio(&self) -> f64 {
        if self.train_ms > 0.0 {
            self.dense_train_ms / self.train_ms
        } else {
            0.0
        }
    }
}

/// Measures one network; `log` is told what is being run.
pub fn bench_model(
    name: &str,
    cfg: &ModelConfig,
    data: &Mnist,
    o: &BenchOptions,
    log: &mut dyn FnMut(&str),
) -> BenchRow {
    let mut sizes = vec![cfg.network.n_in];
    sizes.extend(cfg.layer_sizes());
    let sizes = sizes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let reps = o.reps.max(1);
    let threads = if o.threads.is_empty() {
        vec![1]
    } else {
        o.threads.clone()
    };
    log(&format!(
        "{name} ({sizes}): training, {reps} x {} examples on {} thread(s), interleaved",
        o.train_examples,
        threads
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut ms = vec![Vec::new(); threads.len()];
    let mut used = vec![1; threads.len()];
    let mut cpu = Vec::new();
    let mut spw = Vec::new();
    let mut eps = Vec::new();
    for r in 0..reps {
        for (i, &t) in threads.iter().enumerate() {
            let s = time_training(cfg, data, o.train_examples, o.seed + r as u64, false, t);
            ms[i].push(1000.0 * s.seconds / s.examples.max(1) as f64);
            used[i] = s.block_threads;
            if i == 0 {
                let sim_s = s.steps as f64 * cfg.neuron.dt / 1000.0;
                // The scheduler's count moves at ticks: a reading of 0 means "too short to
                // tell".
                if let Some(c) = s.cpu_seconds.filter(|&c| c > 0.0) {
                    cpu.push(1000.0 * c / s.examples.max(1) as f64);
                }
                spw.push(sim_s / s.seconds);
                eps.push(s.events as f64 / s.seconds);
            }
        }
    }
    let train_threads: Vec<(usize, usize, f64)> = threads
        .iter()
        .zip(&used)
        .zip(&ms)
        .map(|((&t, &u), v)| (t, u, median(v)))
        .collect();
    log(&format!(
        "{name}: dense baseline, {reps} x {} examples",
        o.dense_examples
    ));
    let dense: Vec<f64> = (0..reps)
        .map(|r| {
            let s = time_training(cfg, data, o.dense_examples, o.seed + r as u64, true, 1);
            1000.0 * s.seconds / s.examples.max(1) as f64
        })
        .collect();
    // Test evaluation with the initial weights (its cost does not depend on learning much).
    let net = Network::new(cfg.clone(), o.seed);
    let mut test_ms = Vec::new();
    for &t in &threads {
        log(&format!(
            "{name}: test, {reps} x {} images on {t} thread(s)",
            o.test_examples
        ));
        let v: Vec<f64> = (0..reps)
            .map(|_| {
                1000.0 * time_test(&net, data, o.test_examples, t, o.seed)
                    / o.test_examples.max(1) as f64
            })
            .collect();
        test_ms.push((t, median(&v)));
    }
    BenchRow {
        name: name.to_string(),
        sizes,
        train_ms: train_threads.first().map_or(0.0, |t| t.2),
        train_cpu_ms: (cpu.len() == reps).then(|| median(&cpu)),
        sim_per_wall: median(&spw),
        events_per_s: median(&eps),
        train_threads,
        dense_train_ms: median(&dense),
        test_ms,
        peak_mib: peak_memory_kib().map(|k| k as f64 / 1024.0),
    }
}

/// The 784-2000-10 network: the one-hidden-layer model made wide.
pub fn wide_model(base: &ModelConfig, width: usize) -> ModelConfig {
    let mut cfg = base.clone();
    cfg.name = format!("{}-wide{width}", base.name);
    cfg.network.hidden = vec![width];
    cfg
}

/// The table as Markdown. Training columns after the first marked `*` ran on fewer
/// threads than asked: the network has no layer wide enough to share (see
/// [`crate::sim::exec::Exec::for_threads`]).
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut s = String::new();
    let first = rows.first();
    let train_threads: Vec<usize> =
        first.map_or_else(Vec::new, |r| r.train_threads.iter().map(|t| t.0).collect());
    let test_threads: Vec<usize> =
        first.map_or_else(Vec::new, |r| r.test_ms.iter().map(|t| t.0).collect());
    let t0 = train_threads.first().copied().unwrap_or(1);
    s.push_str(&format!("| model | sizes | train ms/ex, {t0} thr | train CPU ms/example | sim s / wall s | wall s / sim s | synaptic events/s |"));
    for t in train_threads.iter().skip(1) {
        s.push_str(&format!(" train ms/ex, {t} thr |"));
    }
    s.push_str(" train speed-up |");
    for t in &test_threads {
        s.push_str(&format!(" test ms/ex, {t} thr |"));
    }
    s.push_str(" test speed-up | dense ms/example | dense / event-driven | peak MiB |\n");
    // model, sizes, 5 first-thread-count columns, the other training columns, train
    // speed-up, the test columns, test speed-up, dense, dense ratio, peak memory.
    let cols = 7 + train_threads.len().saturating_sub(1) + 1 + test_threads.len() + 4;
    s.push('|');
    for _ in 0..cols {
        s.push_str("---|");
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {} | {:.1} | {:.5} | {:.3e} |",
            r.name,
            r.sizes,
            r.train_ms,
            r.train_cpu_ms
                .map_or("-".to_string(), |v| format!("{v:.3}")),
            r.sim_per_wall,
            r.wall_per_sim(),
            r.events_per_s,
        ));
        for &(asked, used, ms) in r.train_threads.iter().skip(1) {
            let mark = if used < asked { "*" } else { "" };
            s.push_str(&format!(" {ms:.3}{mark} |"));
        }
        s.push_str(&format!(" {:.2}x |", r.train_ratio()));
        for (_, ms) in &r.test_ms {
            s.push_str(&format!(" {ms:.3} |"));
        }
        s.push_str(&format!(
            " {:.2}x | {:.3} | {:.1}x | {} |\n",
            r.thread_ratio(),
            r.dense_train_ms,
            r.dense_ratio(),
            r.peak_mib.map_or("-".to_string(), |m| format!("{m:.1}")),
        ));
    }
    if rows
        .iter()
        .any(|r| r.train_threads.iter().any(|&(a, u, _)| u < a))
    {
        s.push_str("\n`*`: fewer threads used than asked (no layer wide enough to share its neuron blocks; see `Exec::for_threads`).\n");
    }
    s
}

/// The cost of handing one step's neuron blocks to a team of threads and waiting for it,
/// rayon's `par_iter_mut` against [`crate::sim::team::Team`]: medians in microseconds per
/// step of `2 * threads` blocks.
#[derive(Clone, Debug)]
pub struct HandoffRow {
    pub threads: usize,
    /// Blocks that do nothing: the pure cost of the hand-over and the wait.
    pub rayon_empty_us: f64,
    pub team_empty_us: f64,
    /// Blocks of [`HANDOFF_WORK_US`] microseconds each: on one thread, rayon, the team.
    pub serial_work_us: f64,
    pub rayon_work_us: f64,
    pub team_work_us: f64,
}

/// Work of one block in [`time_handoff`], microseconds (about one 512-neuron block's
/// training step on the development machine).
pub const HANDOFF_WORK_US: f64 = 2.0;

/// Busy work of about `us` microseconds (a spin on the clock: no memory traffic).
fn busy(us: f64, x: &mut u64) {
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() * 1e6 < us {
        *x = x.wrapping_add(1);
    }
}

/// Times `steps` hand-overs of `2 * threads` blocks to `threads` threads, `reps` times.
pub fn time_handoff(threads: usize, steps: usize, reps: usize) -> HandoffRow {
    use rayon::prelude::*;
    let threads = threads.max(2);
    let mut items = vec![0u64; 2 * threads];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a small rayon pool can be built");
    let team = crate::sim::team::Team::new(threads);
    let per_step = |t0: Instant, n: usize| 1e6 * t0.elapsed().as_secs_f64() / n.max(1) as f64;
    let work_steps = (steps / 20).max(1);
    let mut v: [Vec<f64>; 5] = Default::default();
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        pool.install(|| {
            for _ in 0..steps {
                items.par_iter_mut().for_each(|x| *x += 1);
            }
        });
        v[0].push(per_step(t0, steps));
        let t0 = Instant::now();
        for _ in 0..steps {
            team.for_each_mut(&mut items, |x| *x += 1);
        }
        v[1].push(per_step(t0, steps));
        let t0 = Instant::now();
        for _ in 0..work_steps {
            items.iter_mut().for_each(|x| busy(HANDOFF_WORK_US, x));
        }
        v[2].push(per_step(t0, work_steps));
        let t0 = Instant::now();
        pool.install(|| {
            for _ in 0..work_steps {
                items.par_iter_mut().for_each(|x| busy(HANDOFF_WORK_US, x));
            }
        });
        v[3].push(per_step(t0, work_steps));
        let t0 = Instant::now();
        for _ in 0..work_steps {
            team.for_each_mut(&mut items, |x| busy(HANDOFF_WORK_US, x));
        }
        v[4].push(per_step(t0, work_steps));
    }
    std::hint::black_box(&items);
    HandoffRow {
        threads,
        rayon_empty_us: median(&v[0]),
        team_empty_us: median(&v[1]),
        serial_work_us: median(&v[2]),
        rayon_work_us: median(&v[3]),
        team_work_us: median(&v[4]),
    }
}

/// The hand-over table as Markdown.
pub fn format_handoff(rows: &[HandoffRow]) -> String {
    let mut s = format!(
        "| threads | blocks per step | hand-over, rayon (us/step) | hand-over, team (us/step) | {w} us blocks: 1 thread | rayon | team | team speed-up |\n|---|---|---|---|---|---|---|---|\n",
        w = HANDOFF_WORK_US
    );
    for r in rows {
        let speedup = if r.team_work_us > 0.0 {
            r.serial_work_us / r.team_work_us
        } else {
            0.0
        };
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x |\n",
            r.threads,
            2 * r.threads,
            r.rayon_empty_us,
            r.team_empty_us,
            r.serial_work_us,
            r.rayon_work_us,
            r.team_work_us,
            speedup
        ));
    }
    s
}

/// Anything that stops the process-level measurements.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{} {}` failed ({status})", exe.display(), args.join(" "))]
    Failed {
        exe: PathBuf,
        args: Vec<String>,
        status: std::process::ExitStatus,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Arguments of one short `apical train` run: `examples` training examples, `tests` test
/// images, one epoch, one thread, no traces, no progress bar.
fn train_args(data: &Path, out: &Path, seed: u64, examples: usize, tests: usize) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--record",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend([
        "--quiet".to_string(),
        "--train-examples".into(),
        examples.to_string(),
        "--test-examples".into(),
        tests.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--out".into(),
        out.display().to_string(),
        "--data".into(),
        data.display().to_string(),
    ]);
    a
}

/// Runs `exe args` for every argument list at once and waits for all; wall seconds.
fn run_concurrently(
    exe: &Path,
    runs: &[Vec<String>],
    env: &[(&str, &str)],
) -> Result<f64, BenchError> {
    let t0 = Instant::now();
    let mut children = Vec::new();
    for args in runs {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|source| BenchError::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
        children.push((child, args));
    }
    let mut failure = None;
    for (mut child, args) in children {
        let status = child.wait().map_err(|source| BenchError::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
        if !status.success() && failure.is_none() {
            failure = Some(BenchError::Failed {
                exe: exe.to_path_buf(),
                args: args.clone(),
                status,
            });
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(t0.elapsed().as_secs_f64()),
    }
}

/// A scratch directory for run directories, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!("apical-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| BenchError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Many short runs at once against one (a parameter sweep on one machine).
#[derive(Clone, Debug)]
pub struct SweepRow {
    /// Runs at once.
    pub runs: usize,
    pub train_examples: usize,
    pub test_examples: usize,
    /// Median wall seconds of one run alone.
    pub one_s: f64,
    /// Median wall seconds of `runs` runs started together, until the last ends.
    pub all_s: f64,
}

impl SweepRow {
    /// How many times longer the runs took together than one alone.
    pub fn slowdown(&self) -> f64 {
        if self.one_s > 0.0 {
            self.all_s / self.one_s
        } else {
            0.0
        }
    }

    /// Runs finished per wall second together, against one at a time.
    pub fn throughput_gain(&self) -> f64 {
        if self.all_s > 0.0 {
            self.runs as f64 * self.one_s / self.all_s
        } else {
            0.0
        }
    }
}

/// Times one `apical train` process (`exe`, one thread, `train_examples` examples and
/// `test_examples` test images of the default model) against `runs` of them started at
/// once, `reps` times each (alternating); medians.
pub fn sweep_throughput(
    exe: &Path,
    data: &Path,
    runs: usize,
    train_examples: usize,
    test_examples: usize,
    reps: usize,
    log: &mut dyn FnMut(&str),
) -> Result<SweepRow, BenchError> {
    let scratch = Scratch::new("sweep")?;
    let runs = runs.max(1);
    log(&format!(
        "sweep: {reps} x (1 run, then {runs} runs at once) of {train_examples} examples"
    ));
    let args = |rep: usize, k: usize| {
        let out = scratch.0.join(format!("rep{rep}-run{k}"));
        train_args(data, &out, k as u64, train_examples, test_examples)
    };
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for rep in 0..reps.max(1) {
        one.push(run_concurrently(exe, &[args(rep, 1000)], &[])?);
        let batch: Vec<Vec<String>> = (0..runs).map(|k| args(rep, k)).collect();
        all.push(run_concurrently(exe, &batch, &[])?);
    }
    Ok(SweepRow {
        runs,
        train_examples,
        test_examples,
        one_s: median(&one),
        all_s: median(&all),
    })
}

/// The sweep table as Markdown.
pub fn format_sweep(r: &SweepRow) -> String {
    format!(
        "| runs at once | examples per run (train / test) | wall s, 1 run | wall s, {k} runs at once | {k} runs / 1 run | throughput gain |\n|---|---|---|---|---|---|\n| {k} | {} / {} | {:.2} | {:.2} | {:.2}x | {:.2}x |\n",
        r.train_examples,
        r.test_examples,
        r.one_s,
        r.all_s,
        r.slowdown(),
        r.throughput_gain(),
        k = r.runs,
    )
}

/// Start-up of `apical train`: median wall seconds of a run of one training example and one
/// test image (loading and checking MNIST, creating the run directory, one checkpoint), for
/// each way of checking the data.
#[derive(Clone, Debug)]
pub struct StartupRow {
    /// Every start hashes every file (`APICAL_VERIFY_CACHE=off`, as before the cache).
    pub full_check_s: f64,
    /// Files checked once per identity (the default; the first start of the run fills the
    /// cache).
    pub cached_s: f64,
    /// `--no-verify`.
    pub no_check_s: f64,
    pub reps: usize,
}

/// Times the start of `apical train` `reps` times in each mode, modes interleaved.
pub fn time_startup(
    exe: &Path,
    data: &Path,
    reps: usize,
    log: &mut dyn FnMut(&str),
) -> Result<StartupRow, BenchError> {
    let scratch = Scratch::new("startup")?;
    let cache_dir = scratch.0.join("cache");
    let cache = cache_dir.display().to_string();
    log(&format!("start-up: {reps} x 3 runs of one example"));
    let (mut full, mut cached, mut none) = (Vec::new(), Vec::new(), Vec::new());
    let out = |k: &str, rep: usize| scratch.0.join(format!("{k}{rep}"));
    // Fill the cache first (that start checks in full).
    run_concurrently(
        exe,
        &[train_args(data, &out("fill", 0), 0, 1, 1)],
        &[("APICAL_CACHE_DIR", &cache)],
    )?;
    for rep in 0..reps.max(1) {
        full.push(run_concurrently(
            exe,
            &[train_args(data, &out("full", rep), 0, 1, 1)],
            &[("APICAL_VERIFY_CACHE", "off")],
        )?);
        cached.push(run_concurrently(
            exe,
            &[train_args(data, &out("cached", rep), 0, 1, 1)],
            &[("APICAL_CACHE_DIR", &cache)],
        )?);
        let mut a = train_args(data, &out("none", rep), 0, 1, 1);
        a.push("--no-verify".into());
        none.push(run_concurrently(exe, &[a], &[])?);
    }
    Ok(StartupRow {
        full_check_s: median(&full),
        cached_s: median(&cached),
        no_check_s: median(&none),
        reps: reps.max(1),
    })
}

/// The start-up table as Markdown.
pub fn format_startup(r: &StartupRow) -> String {
    format!(
        "| start of `apical train` (1 example, 1 test image), median of {} | wall s |\n|---|---|\n| SHA-256 of every file at every start (`APICAL_VERIFY_CACHE=off`) | {:.3} |\n| checked once per file identity (default) | {:.3} |\n| no check (`--no-verify`) | {:.3} |\n",
        r.reps, r.full_check_s, r.cached_s, r.no_check_s
    )
}

/// Switches a network's training state to the dense baseline of eq. 3.1 (B = W s + b over
/// every input each step, as the reference computes it) or back to the event-driven
/// update. Same model, same results (tests/dense.rs); only the benchmark uses it. The input
/// histories start empty.
pub fn set_dense(net: &mut Network, on: bool) {
    let topo = net.model.cfg.topology();
    for (m, l) in net.state.layers.iter_mut().enumerate() {
        l.set_dense(&net.model.kernel, on.then_some(topo.input_size(m)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mnist::MnistSet;
    use crate::model::config::DEFAULT_MODEL_TOML;

    fn synthetic(n: usize) -> MnistSet {
        let images = (0..n * 784)
            .map(|i| if (i % 784) % 9 < 2 { 180 } else { 0 })
            .collect();
        MnistSet {
            images,
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 28,
            cols: 28,
        }
    }

    #[test]
    fn handoff_measures_both_ways_and_formats_a_row() {
        let r = time_handoff(2, 50, 1);
        assert!(r.rayon_empty_us > 0.0 && r.team_empty_us > 0.0);
        // Four blocks of 2 us: at least 8 us on one thread.
        assert!(r.serial_work_us >= 4.0 * HANDOFF_WORK_US, "{r:?}");
        assert!(r.team_work_us > 0.0 && r.rayon_work_us > 0.0);
        let t = format_handoff(&[r]);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.starts_with("| threads |"), "{t}");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn fan_out_counts_feedforward_and_broadcast_feedback() {
        let cfg = ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, "default").unwrap();
        let c = EventCounter::new(&Model::new(cfg));
        // Input -> 500 hidden; hidden -> 10 outputs; outputs -> 500 apical compartments.
        assert_eq!(c.fan_out, vec![500, 10, 500]);
    }

    #[test]
    fn training_measurement_counts_steps_and_events() {
        let cfg = ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, "default").unwrap();
        let data = Mnist {
            train: synthetic(4),
            test: synthetic(2),
        };
        let s = time_training(&cfg, &data, 3, 0, false, 1);
        let (l_f, l_t) = phase_lengths(&cfg, 3, &mut stream(0, Purpose::PhaseLengths, &[1]));
        let steps: usize = l_f.iter().chain(&l_t).sum();
        assert_eq!(s.examples, 3);
        assert_eq!(s.steps, steps as u64);
        // About 174 active pixels at 0.14 spikes per step, 500 targets each: far above 0.
        assert!(
            s.events > s.steps * 1000,
            "{} events in {} steps",
            s.events,
            s.steps
        );
        let net = Network::new(cfg.clone(), 0);
        assert!(time_test(&net, &data, 2, 1, 0) > 0.0);
        let row = BenchRow {
            name: "x".into(),
            test_ms: vec![(1, 2.0), (2, 1.0)],
            train_ms: 1.0,
            train_threads: vec![(1, 1, 1.0), (2, 1, 1.0), (4, 4, 0.25)],
            dense_train_ms: 5.0,
            ..Default::default()
        };
        assert_eq!(row.thread_ratio(), 2.0);
        assert_eq!(row.train_ratio(), 4.0);
        assert_eq!(row.dense_ratio(), 5.0);
        let table = format_table(&[row]);
        assert!(table.contains("| 2.00x |"), "{table}");
        assert!(table.contains("| 4.00x |"), "{table}");
        assert!(table.contains(" 1.000* |"), "{table}");
        assert!(table.contains("train ms/ex, 4 thr"), "{table}");
        // Header and separator have as many columns as the row.
        let cols: Vec<usize> = table
            .lines()
            .take(3)
            .map(|l| l.matches('|').count())
            .collect();
        assert_eq!(cols[0], cols[1], "{table}");
        assert_eq!(cols[1], cols[2], "{table}");
        // A wide layer on two threads: the same steps and events as on one.
        let mut wide = cfg.clone();
        wide.network.hidden = vec![1100];
        let a = time_training(&wide, &data, 2, 0, false, 1);
        let b = time_training(&wide, &data, 2, 0, false, 2);
        assert_eq!((a.block_threads, b.block_threads), (1, 2));
        assert_eq!((a.steps, a.events), (b.steps, b.events));
    }
}
