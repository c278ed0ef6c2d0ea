//! The benchmark harness behind `apical bench` (docs/performance.md): wall time of training
//! (learning included) and test evaluation on real MNIST images, for the model files and a
//! wide network, against the dense matrix-vector baseline in the same process.
//!
//! Every number is the median of `reps` repeated measurements. Nothing here asserts a speed:
//! the quick mode only checks that the harness runs.

use crate::base::rng::{stream, Purpose};
use crate::io::mnist::Mnist;
use crate::model::config::ModelConfig;
use crate::model::phases::phase_lengths;
use crate::run::metrics::epoch_order;
use crate::sim::exec::DEFAULT_PARALLEL_MIN;
use crate::sim::network::{Model, Network};
use crate::sim::observer::{Observer, StepInfo};
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
    /// Thread counts for test evaluation (the first is the reference of the ratio).
    pub threads: Vec<usize>,
    /// Also time training with the layers' neuron blocks in parallel on the largest thread
    /// count.
    pub parallel_blocks: bool,
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
            parallel_blocks: true,
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
            parallel_blocks: true,
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
        }
    }
}

impl Observer for EventCounter {
    fn reads_apical(&self) -> bool {
        false
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
}

/// Trains a fresh network (seed `seed`) on the first `n` examples of epoch 1's shuffle and
/// times it (learning included, network construction excluded).
pub(crate) fn time_training(
    cfg: &ModelConfig,
    data: &Mnist,
    n: usize,
    seed: u64,
    dense: bool,
    parallel_min: usize,
) -> TrainSample {
    let mut net = Network::new(cfg.clone(), seed);
    set_dense(&mut net, dense);
    net.start_epoch(seed, 1);
    net.exec.parallel_min = parallel_min;
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
    for (k, &idx) in order.iter().enumerate() {
        net.train_example(
            train.image(idx),
            train.label(idx),
            l_f[k],
            l_t[k],
            &mut counter,
        );
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
    /// Training, ms per example (learning included), serial.
    pub train_ms: f64,
    /// The same in CPU time of the training thread.
    pub train_cpu_ms: Option<f64>,
    /// Simulated seconds per wall second in training.
    pub sim_per_wall: f64,
    /// Synaptic events per wall second in training.
    pub events_per_s: f64,
    /// Training with the blocks of each layer in parallel (largest thread count).
    pub train_par_ms: Option<f64>,
    /// Dense baseline, ms per training example.
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
    let serial_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool can be built");
    log(&format!(
        "{name} ({sizes}): training, {reps} x {} examples",
        o.train_examples
    ));
    let mut ms = Vec::new();
    let mut cpu = Vec::new();
    let mut spw = Vec::new();
    let mut eps = Vec::new();
    for r in 0..reps {
        let s = serial_pool.install(|| {
            time_training(
                cfg,
                data,
                o.train_examples,
                o.seed + r as u64,
                false,
                DEFAULT_PARALLEL_MIN,
            )
        });
        let sim_s = s.steps as f64 * cfg.neuron.dt / 1000.0;
        ms.push(1000.0 * s.seconds / s.examples.max(1) as f64);
        // The scheduler's count moves at ticks: a reading of 0 means "too short to tell".
        if let Some(c) = s.cpu_seconds.filter(|&c| c > 0.0) {
            cpu.push(1000.0 * c / s.examples.max(1) as f64);
        }
        spw.push(sim_s / s.seconds);
        eps.push(s.events as f64 / s.seconds);
    }
    let train_par_ms = if o.parallel_blocks {
        let t = o.threads.iter().copied().max().unwrap_or(1);
        log(&format!(
            "{name}: training with parallel blocks on {t} threads"
        ));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("a small rayon pool can be built");
        let v: Vec<f64> = (0..reps)
            .map(|r| {
                let s = pool.install(|| {
                    time_training(cfg, data, o.train_examples, o.seed + r as u64, false, 0)
                });
                1000.0 * s.seconds / s.examples.max(1) as f64
            })
            .collect();
        Some(median(&v))
    } else {
        None
    };
    log(&format!(
        "{name}: dense baseline, {reps} x {} examples",
        o.dense_examples
    ));
    let dense: Vec<f64> = (0..reps)
        .map(|r| {
            let s = serial_pool.install(|| {
                time_training(
                    cfg,
                    data,
                    o.dense_examples,
                    o.seed + r as u64,
                    true,
                    DEFAULT_PARALLEL_MIN,
                )
            });
            1000.0 * s.seconds / s.examples.max(1) as f64
        })
        .collect();
    // Test evaluation with the initial weights (its cost does not depend on learning much).
    let net = Network::new(cfg.clone(), o.seed);
    let mut test_ms = Vec::new();
    for &t in &o.threads {
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
        train_ms: median(&ms),
        train_cpu_ms: (cpu.len() == reps).then(|| median(&cpu)),
        sim_per_wall: median(&spw),
        events_per_s: median(&eps),
        train_par_ms,
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

/// The table as Markdown.
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut s = String::new();
    let threads: Vec<usize> = rows
        .first()
        .map(|r| r.test_ms.iter().map(|t| t.0).collect())
        .unwrap_or_default();
    s.push_str("| model | sizes | train ms/example | train CPU ms/example | sim s / wall s | wall s / sim s | synaptic events/s | train ms/ex, parallel blocks |");
    for t in &threads {
        s.push_str(&format!(" test ms/ex, {t} thr |"));
    }
    s.push_str(" test speed-up | dense ms/example | dense / event-driven | peak MiB |\n");
    s.push_str("|---|---|---|---|---|---|---|---|");
    for _ in &threads {
        s.push_str("---|");
    }
    s.push_str("---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {} | {:.1} | {:.5} | {:.3e} | {} |",
            r.name,
            r.sizes,
            r.train_ms,
            r.train_cpu_ms
                .map_or("-".to_string(), |v| format!("{v:.3}")),
            r.sim_per_wall,
            r.wall_per_sim(),
            r.events_per_s,
            r.train_par_ms
                .map_or("-".to_string(), |v| format!("{v:.3}")),
        ));
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
    s
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
        let s = time_training(&cfg, &data, 3, 0, false, usize::MAX);
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
        let net = Network::new(cfg, 0);
        assert!(time_test(&net, &data, 2, 1, 0) > 0.0);
        let row = BenchRow {
            name: "x".into(),
            test_ms: vec![(1, 2.0), (2, 1.0)],
            train_ms: 1.0,
            dense_train_ms: 5.0,
            ..Default::default()
        };
        assert_eq!(row.thread_ratio(), 2.0);
        assert_eq!(row.dense_ratio(), 5.0);
        assert!(format_table(&[row]).contains("| 2.00x |"));
    }
}
