//! Trace files: what the recorder writes is what the simulator computed, recording never
//! changes a run, and an interrupted run leaves a readable file that says where it stopped.

mod common;

use apical::io::checkpoint::EpochRecord;
use apical::io::mnist::{Mnist, MnistSet};
use apical::io::record::{parse_spec, steps_before, Compression, Recorder, RunEnd, StartPoint};
use apical::io::run_dir::{Budget, EpochMetrics};
use apical::model::config::ModelConfig;
use apical::model::neuron::plateau_potential;
use apical::model::params::LayerParams;
use apical::run::events::{ExampleDone, Quiet, RunEvents};
use apical::run::trainer::{RunOptions, TrainError, Trainer};
use apical::sim::network::Network;
use apical::sim::observer::{Observer, Phase, StepInfo};
use apical::sim::state::NetState;
use std::path::Path;
use std::sync::atomic::AtomicBool;

const MODEL: &str = r#"
name = "traces-test"
[network]
n_in = 784
hidden = [20]
n_out = 10
[phases]
use_rand_phase_lengths = true
[learning]
eta = [0.21, 0.21]
[training]
block_size = 8
"#;

fn cfg() -> ModelConfig {
    ModelConfig::from_toml_str(MODEL, "test model").unwrap()
}

/// Synthetic digits: a few bright bars whose position depends on the label.
fn set(n: usize, salt: usize) -> MnistSet {
    let mut images = vec![0u8; n * 784];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = ((i * 7 + salt) % 10) as u8;
        labels.push(label);
        for p in 0..784 {
            let (r, c) = (p / 28, p % 28);
            let on = (r + 2 * label as usize) % 9 < 2 || (c + i + salt) % 13 == 0;
            images[i * 784 + p] = if on { 230 } else { ((p * 31 + i) % 7) as u8 };
        }
    }
    MnistSet {
        images,
        labels,
        rows: 28,
        cols: 28,
    }
}

fn data() -> Mnist {
    Mnist {
        train: set(40, 0),
        test: set(10, 3),
    }
}

fn trainer<'a>(data: &'a Mnist, dir: &Path, epochs: usize, n: usize) -> Trainer<'a> {
    trainer_with(cfg(), data, dir, epochs, n)
}

fn trainer_with<'a>(
    cfg: ModelConfig,
    data: &'a Mnist,
    dir: &Path,
    epochs: usize,
    n: usize,
) -> Trainer<'a> {
    let opts = RunOptions {
        epochs,
        train_examples: n,
        test_examples: 10,
        seed: 7,
        out_dir: dir.to_path_buf(),
        checkpoint_every: 0,
        keep_checkpoints: Default::default(),
    };
    let info = common::run_info(&opts);
    Trainer::new(cfg, data, opts, &info).unwrap()
}

fn recorder(t: &Trainer<'_>, path: &Path, spec: &str, z: Compression) -> Recorder {
    let groups = parse_spec(spec).unwrap();
    let start = StartPoint {
        epoch: 1,
        example: 0,
        step: 0,
    };
    Recorder::create(
        path,
        &groups,
        spec,
        &t.net.model.cfg,
        &t.model_toml,
        t.opts.seed,
        start,
        Budget {
            epochs: t.opts.epochs,
            train_examples: t.opts.train_examples,
            test_examples: t.opts.test_examples,
        },
        z,
        None,
    )
    .unwrap()
}

/// One step of one example: (global step, example, per layer [soma, basal, apical, rate]).
type Sample = (u64, usize, Vec<[Vec<f32>; 4]>);

/// The simulator's own view, step by step: every spike, every potential of every layer.
#[derive(Default)]
struct Counter {
    step: u64,
    example: usize,
    /// Per population: (global step, node id) of every spike.
    spikes: Vec<Vec<(u64, u64)>>,
    /// (global step, example, per layer: soma, basal, apical, rate).
    samples: Vec<Sample>,
    plateau_f: Vec<Vec<f32>>,
    plateau_t: Vec<Vec<f32>>,
    predictions: Vec<u8>,
    images: Vec<usize>,
    epochs_ended: Vec<EpochRecord>,
    initial: Option<Vec<LayerParams>>,
}

impl Observer for Counter {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        assert_ne!(info.phase, Phase::Test);
        let st = info.state;
        if self.spikes.is_empty() {
            self.spikes = vec![Vec::new(); st.layers.len() + 1];
        }
        for &i in &st.input.events {
            self.spikes[0].push((self.step, i as u64));
        }
        let mut layers = Vec::new();
        for (m, l) in st.layers.iter().enumerate() {
            for &i in &l.events {
                self.spikes[m + 1].push((self.step, i as u64));
            }
            let cat = |f: fn(&apical::sim::layer::NeuronBlock) -> &Vec<f32>| -> Vec<f32> {
                l.blocks.iter().flat_map(|b| f(b).iter().copied()).collect()
            };
            layers.push([
                cat(|b| &b.soma),
                cat(|b| &b.basal),
                cat(|b| &b.apical),
                cat(|b| &b.rate),
            ]);
        }
        self.samples.push((self.step, self.example, layers));
        self.step += 1;
    }
    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        let l = &state.layers[0];
        match phase {
            Phase::Forward => self
                .plateau_f
                .push(l.forward.a.iter().map(|&a| plateau_potential(a)).collect()),
            Phase::Target => self
                .plateau_t
                .push(l.target.a.iter().map(|&a| plateau_potential(a)).collect()),
            Phase::Test => panic!("test phases are not observed"),
        }
    }
}

impl RunEvents for Counter {
    fn epoch_start(&mut self, _e: usize, _f: usize, _n: usize, params: &[LayerParams]) {
        self.initial.get_or_insert_with(|| params.to_vec());
    }
    fn example_start(&mut self, _epoch: usize, example: usize, image: usize, _label: u8) {
        self.example = example;
        self.images.push(image);
    }
    fn example_end(&mut self, done: &ExampleDone, _params: &[LayerParams]) {
        assert_eq!(done.example, self.example);
        self.predictions.push(done.predicted);
    }
    fn epoch_end(&mut self, m: &EpochMetrics, _params: &[LayerParams]) {
        if !m.is_initial() {
            self.epochs_ended.push(m.record.clone());
        }
    }
}

fn read<T: hdf5::H5Type>(f: &hdf5::File, name: &str) -> Vec<T> {
    f.dataset(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_raw()
        .unwrap()
}

fn shape(f: &hdf5::File, name: &str) -> Vec<usize> {
    f.dataset(name).unwrap().shape()
}

fn attr_u64(f: &hdf5::File, name: &str) -> u64 {
    f.attr(name).unwrap().read_scalar().unwrap()
}

fn attr_str(f: &hdf5::File, name: &str) -> String {
    f.attr(name)
        .unwrap()
        .read_scalar::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .as_str()
        .to_string()
}

fn transpose(p: &LayerParams) -> Vec<f32> {
    let mut out = vec![0.0; p.w.len()];
    for i in 0..p.n {
        for j in 0..p.n_pre {
            out[i * p.n_pre + j] = p.weight(i, j);
        }
    }
    out
}

#[test]
fn recorded_spikes_potentials_plateaus_and_weights_equal_what_the_simulator_computed() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 12);
    let path = dir.path().join("traces.h5");
    let spec = "spikes|potentials,rate,plateau:layers=hidden0;examples=every:2;interval=3|soma:layers=output;examples=range:3..5|labels|weights:examples=every:5";
    let mut rec = recorder(&t, &path, spec, Compression::default());
    // Flush after nearly every example, so the file is built from many appends.
    rec.set_flush_bytes(1000);
    let mut obs = (rec, Counter::default());
    t.run_observed(&AtomicBool::new(false), &mut Quiet, &mut obs)
        .unwrap();
    let (rec, c) = obs;
    assert_eq!(rec.finish(RunEnd::Completed).unwrap(), path);

    let f = hdf5::File::open(&path).unwrap();
    let dt = t.net.model.cfg.neuron.dt;
    assert!(f.attr("complete").unwrap().read_scalar::<bool>().unwrap());
    assert_eq!(attr_str(&f, "stop_reason"), "completed");
    assert_eq!(
        (attr_u64(&f, "last_epoch"), attr_u64(&f, "last_example")),
        (1, 12)
    );
    assert_eq!(attr_u64(&f, "seed"), 7);
    assert_eq!(
        ModelConfig::from_toml_str(&attr_str(&f, "model_toml"), "file").unwrap(),
        t.net.model.cfg
    );

    // Spikes: exactly the simulator's events, in time order, time = global step x dt.
    for (p, pop) in ["input", "hidden0", "output"].iter().enumerate() {
        let ts: Vec<f64> = read(&f, &format!("spikes/{pop}/timestamps"));
        let ids: Vec<u64> = read(&f, &format!("spikes/{pop}/node_ids"));
        let want = &c.spikes[p];
        assert!(!want.is_empty(), "{pop} never spiked: a weak test");
        assert_eq!(ts.len(), want.len(), "{pop} spike count");
        for (k, &(s, i)) in want.iter().enumerate() {
            assert_eq!((ts[k], ids[k]), (s as f64 * dt, i), "{pop} spike {k}");
        }
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        let sorting = f
            .group(&format!("spikes/{pop}"))
            .unwrap()
            .attr("sorting")
            .unwrap()
            .read_scalar::<apical::io::record::Sorting>()
            .unwrap();
        assert_eq!(sorting, apical::io::record::Sorting::by_time);
        if p > 0 {
            // The layer's own counter over the epoch agrees.
            assert_eq!(t.net.state.layers[p - 1].spike_count, ts.len() as u64);
        }
    }

    // Hidden potentials: every 3rd global step of every 2nd example, soma/basal/apical
    // interleaved per neuron; rates in Hz.
    let rows: Vec<_> = c
        .samples
        .iter()
        .filter(|s| s.1 % 2 == 0 && s.0 % 3 == 0)
        .collect();
    let data_h: Vec<f32> = read(&f, "report/hidden0/data");
    assert_eq!(shape(&f, "report/hidden0/data"), vec![rows.len(), 60]);
    let times: Vec<f64> = read(&f, "report/hidden0/times");
    let rates: Vec<f32> = read(&f, "rates/hidden0/data");
    for (r, s) in rows.iter().enumerate() {
        assert_eq!(times[r], s.0 as f64 * dt);
        let [soma, basal, apical, rate] = &s.2[0];
        for i in 0..20 {
            let got = &data_h[r * 60 + i * 3..r * 60 + i * 3 + 3];
            assert_eq!(got, &[soma[i], basal[i], apical[i]], "row {r} neuron {i}");
            assert_eq!(rates[r * 20 + i], rate[i] * (1000.0 / dt as f32));
        }
    }
    let el: Vec<u32> = read(&f, "report/hidden0/mapping/element_ids");
    assert_eq!(&el[..6], &[0, 1, 2, 0, 1, 2]);
    let ptr: Vec<u64> = read(&f, "report/hidden0/mapping/index_pointers");
    assert_eq!((ptr[0], ptr[1], ptr[20]), (0, 3, 60));
    let tm: Vec<f64> = read(&f, "report/hidden0/mapping/time");
    assert_eq!(
        tm,
        vec![times[0], times[0] + rows.len() as f64 * 3.0 * dt, 3.0 * dt]
    );
    // Output soma: examples 3 and 4 only, every step.
    let out_rows: Vec<_> = c.samples.iter().filter(|s| (3..5).contains(&s.1)).collect();
    let data_o: Vec<f32> = read(&f, "report/output/data");
    assert_eq!(data_o.len(), out_rows.len() * 10);
    for (r, s) in out_rows.iter().enumerate() {
        assert_eq!(&data_o[r * 10..r * 10 + 10], &s.2[1][0][..]);
    }

    // Examples table: every example (labels), with the simulator's predictions.
    let img: Vec<u32> = read(&f, "examples/image");
    let lab: Vec<u8> = read(&f, "examples/label");
    let pred: Vec<u8> = read(&f, "examples/prediction");
    let start: Vec<f64> = read(&f, "examples/start_time");
    assert_eq!(img.len(), 12);
    for k in 0..12 {
        assert_eq!(img[k] as usize, c.images[k]);
        assert_eq!(lab[k], data.train.label(c.images[k]));
        assert_eq!(pred[k], c.predictions[k]);
        let first = c.samples.iter().position(|s| s.1 == k).unwrap() as u64;
        assert_eq!(start[k], first as f64 * dt);
        // The time origin of a resumed run's file is computed without the simulation.
        assert_eq!(steps_before(&t.net.model.cfg, 7, 12, 1, k), first);
    }

    // Plateaus of every 2nd example, both phases, alpha = sigma(mean A).
    let prow: Vec<u64> = read(&f, "plateau/hidden0/example_row");
    assert_eq!(prow, vec![0, 2, 4, 6, 8, 10]);
    let pf: Vec<f32> = read(&f, "plateau/hidden0/forward");
    let pt: Vec<f32> = read(&f, "plateau/hidden0/target");
    for (r, &k) in prow.iter().enumerate() {
        assert_eq!(&pf[r * 20..(r + 1) * 20], &c.plateau_f[k as usize][..]);
        assert_eq!(&pt[r * 20..(r + 1) * 20], &c.plateau_t[k as usize][..]);
    }
    assert_ne!(pf, pt, "forward and target plateaus should differ");

    // Weights: initial, after examples 0, 5, 10 (1, 6, 11 done) and at the epoch end.
    let we: Vec<u32> = read(&f, "weights/epoch");
    let wx: Vec<u32> = read(&f, "weights/example");
    assert_eq!(we, vec![0, 1, 1, 1, 1]);
    assert_eq!(wx, vec![0, 1, 6, 11, 12]);
    let w0: Vec<f32> = read(&f, "weights/hidden0/W");
    assert_eq!(shape(&f, "weights/hidden0/W"), vec![5, 20, 784]);
    let per = 20 * 784;
    let init = c.initial.as_ref().unwrap();
    assert_eq!(&w0[..per], &transpose(&init[0])[..]);
    assert_eq!(&w0[4 * per..], &transpose(&t.net.params[0])[..]);
    assert_ne!(&w0[..per], &w0[4 * per..], "the weights should have moved");
    let wo: Vec<f32> = read(&f, "weights/output/W");
    assert_eq!(&wo[4 * 200..], &transpose(&t.net.params[1])[..]);
    let b: Vec<f32> = read(&f, "weights/output/b");
    assert_eq!(&b[40..], &t.net.params[1].b[..]);

    // Epoch metrics.
    let te: Vec<f64> = read(&f, "epochs/test_error");
    assert_eq!(te, vec![t.history[0].test_error]);
    let rz: Vec<f64> = read(&f, "epochs/rates_hz");
    assert_eq!(rz, t.history[0].rates_hz);
    assert_eq!(c.epochs_ended.len(), 1);
    // Units where they apply.
    for ds in [
        "spikes/hidden0/timestamps",
        "report/hidden0/data",
        "report/hidden0/mapping/time",
        "rates/hidden0/data",
        "plateau/hidden0/forward",
        "weights/hidden0/W",
        "epochs/test_error",
    ] {
        assert!(
            f.dataset(ds).unwrap().attr("units").is_ok(),
            "{ds} has no units"
        );
    }
    let text = apical::io::record::inspect(&path).unwrap();
    for part in [
        "/spikes/hidden0/timestamps",
        "[5, 20, 784]",
        "units=ms",
        "[network]",
    ] {
        assert!(text.contains(part), "inspect output lacks {part}:\n{text}");
    }
}

fn bits(params: &[LayerParams]) -> Vec<u32> {
    params
        .iter()
        .flat_map(|p| p.w.iter().chain(&p.b).chain(&p.y).chain(&p.c))
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn recording_never_changes_the_run() {
    let data = data();
    let d0 = tempfile::tempdir().unwrap();
    let mut plain = trainer(&data, d0.path(), 2, 15);
    plain.run(&AtomicBool::new(false), &mut Quiet).unwrap();
    let d1 = tempfile::tempdir().unwrap();
    let mut rec_t = trainer(&data, d1.path(), 2, 15);
    let mut rec = recorder(
        &rec_t,
        &d1.path().join("traces.h5"),
        "spikes|potentials,rate,plateau:interval=2|labels|weights:examples=all",
        Compression::default(),
    );
    rec.set_flush_bytes(0);
    rec_t
        .run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    assert_eq!(bits(&plain.net.params), bits(&rec_t.net.params));
    let fp = |t: &Trainer<'_>| {
        t.history
            .iter()
            .map(|h| (h.train_error.to_bits(), h.test_error.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(fp(&plain), fp(&rec_t));
    assert_eq!(
        plain.net.feedback_rng, rec_t.net.feedback_rng,
        "random streams must not be touched"
    );
    assert_ne!(
        bits(&plain.net.params),
        bits(&Network::new(cfg(), 7).params),
        "the weights should have learned something"
    );
}

#[test]
fn an_interrupted_run_leaves_a_readable_file_that_says_where_it_stopped() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 12);
    let path = dir.path().join("traces.h5");
    let mut rec = recorder(&t, &path, "spikes|labels", Compression::default());
    // Ctrl-C already pressed: the trainer stops after the first example.
    let stop = AtomicBool::new(true);
    let err = t.run_recording(&stop, &mut Quiet, &mut rec).unwrap_err();
    assert!(
        matches!(err, TrainError::Interrupted { example: 1, .. }),
        "{err}"
    );
    rec.finish(RunEnd::Interrupted).unwrap();
    let f = hdf5::File::open(&path).unwrap();
    assert!(!f.attr("complete").unwrap().read_scalar::<bool>().unwrap());
    assert_eq!(attr_str(&f, "stop_reason"), "interrupted");
    assert_eq!(
        (attr_u64(&f, "last_epoch"), attr_u64(&f, "last_example")),
        (1, 1)
    );
    assert_eq!(read::<u32>(&f, "examples/example"), vec![0]);
    let n = read::<f64>(&f, "spikes/hidden0/timestamps").len();
    assert_eq!(n as u64, t.net.state.layers[0].spike_count);
    assert!(n > 0);
    assert_eq!(shape(&f, "epochs/epoch"), vec![0]);
}

#[test]
fn a_recorder_dropped_without_finish_still_flushes_and_marks_the_file_incomplete() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 4);
    let path = dir.path().join("traces.h5");
    {
        let mut rec = recorder(&t, &path, "spikes:layers=output", Compression::None);
        t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
            .unwrap();
    }
    let f = hdf5::File::open(&path).unwrap();
    assert!(!f.attr("complete").unwrap().read_scalar::<bool>().unwrap());
    assert!(attr_str(&f, "stop_reason").contains("dropped"));
    assert_eq!(
        (attr_u64(&f, "last_epoch"), attr_u64(&f, "last_example")),
        (1, 4)
    );
    let n = read::<f64>(&f, "spikes/output/timestamps").len() as u64;
    assert_eq!(n, t.net.state.layers[1].spike_count);
}

#[test]
fn a_write_error_stops_recording_but_not_the_run_and_the_file_says_where_it_stopped() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 8);
    let path = dir.path().join("traces.h5");
    // Unfiltered, so every flush writes every buffered row (the default's scale-offset
    // spike columns keep their last partial chunk until it fills or the file is closed).
    let mut rec = recorder(&t, &path, "spikes|labels", Compression::None);
    rec.set_flush_bytes(0); // flush after every example
    rec.inject_write_failure_at(3);
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    assert_eq!(t.history.len(), 1, "the run itself finished");
    let err = rec.finish(RunEnd::Completed).unwrap_err().to_string();
    assert!(err.contains("injected write failure"), "{err}");
    let f = hdf5::File::open(&path).unwrap();
    assert!(!f.attr("complete").unwrap().read_scalar::<bool>().unwrap());
    assert!(attr_str(&f, "stop_reason").starts_with("write error"));
    // Examples 0, 1, 2 were flushed; the flush after example 3 failed.
    assert_eq!(
        (attr_u64(&f, "last_epoch"), attr_u64(&f, "last_example")),
        (1, 3)
    );
    assert_eq!(read::<u32>(&f, "examples/example"), vec![0, 1, 2]);
    let start: Vec<f64> = read(&f, "examples/start_time");
    let ts: Vec<f64> = read(&f, "spikes/hidden0/timestamps");
    assert!(!ts.is_empty());
    let end = attr_str(&f, "stop_reason");
    assert!(end.contains("injected"), "{end}");
    let end_time: f64 = f.attr("end_time").unwrap().read_scalar().unwrap();
    assert!(*ts.last().unwrap() < end_time && start[2] < end_time);
}

/// Writes the files that scripts/check_traces.py validates in CI (scripts/ci-traces.sh):
/// target/tmp/traces-ci/traces.h5 (the default, scale-offset), traces-deflate.h5 and
/// traces-uncompressed.h5; libsonata must read the first and the last.
#[test]
fn writes_the_ci_trace_files() {
    let data = data();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("traces-ci");
    std::fs::create_dir_all(&out).unwrap();
    for (name, z) in [
        ("traces.h5", Compression::default()),
        ("traces-deflate.h5", Compression::Deflate(1)),
        ("traces-uncompressed.h5", Compression::None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = trainer(&data, dir.path(), 2, 10);
        let path = out.join(name);
        let spec = "spikes|potentials,rate,plateau:layers=hidden0;examples=every:3;interval=2|soma:layers=output;examples=last:2|labels|weights:examples=every:4";
        let mut rec = recorder(&t, &path, spec, z);
        rec.set_flush_bytes(4096);
        t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
            .unwrap();
        rec.finish(RunEnd::Completed).unwrap();
        let f = hdf5::File::open(&path).unwrap();
        assert_eq!(shape(&f, "epochs/epoch"), vec![2]);
    }
}

/// The filters of a dataset, by HDF5 filter id (1 deflate, 2 shuffle, 6 scale-offset).
fn filter_ids(f: &hdf5::File, name: &str) -> Vec<i32> {
    use hdf5::filters::Filter;
    f.dataset(name)
        .unwrap()
        .filters()
        .iter()
        .map(|x| match x {
            Filter::Deflate(_) => 1,
            Filter::Shuffle => 2,
            Filter::ScaleOffset(_) => 6,
            _ => 0,
        })
        .collect()
}

#[test]
fn the_file_has_the_sonata_root_attributes_and_sorted_report_ids() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 3);
    let path = dir.path().join("traces.h5");
    let mut rec = recorder(&t, &path, "spikes|soma", Compression::default());
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    let f = hdf5::File::open(&path).unwrap();
    assert_eq!(
        f.attr("magic").unwrap().read_scalar::<u32>().unwrap(),
        0x0A7A
    );
    assert_eq!(
        f.attr("version").unwrap().read_raw::<u32>().unwrap(),
        vec![0, 1]
    );
    let ids = f.dataset("report/hidden0/mapping/node_ids").unwrap();
    let sorted: apical::io::record::SonataBool = ids.attr("sorted").unwrap().read_scalar().unwrap();
    assert_eq!(sorted, apical::io::record::SonataBool::TRUE);
    assert_eq!(attr_str(&f, "compression"), "scaleoffset");
    // Scale-offset on the spike columns only (dt = 1 ms: times with decimal scale 0).
    assert_eq!(filter_ids(&f, "spikes/hidden0/node_ids"), vec![6]);
    assert_eq!(filter_ids(&f, "spikes/hidden0/timestamps"), vec![6]);
    assert_eq!(filter_ids(&f, "report/hidden0/data"), Vec::<i32>::new());
    assert_eq!(filter_ids(&f, "examples/start_time"), Vec::<i32>::new());
    // The 1.8 format (superblock version 2): no "open for write" flag a kill would leave.
    let sb = std::fs::read(&path).unwrap();
    assert_eq!(&sb[..8], b"\x89HDF\r\n\x1a\n");
    assert_eq!(sb[8], 2, "superblock version");
    assert!(!dir.path().join("traces.h5.part").exists());
}

/// Spike times of a model with time step `dt`, recorded with `z`, and the layer's count.
fn spike_times(dt: f64, z: Compression) -> (Vec<f64>, Vec<u64>, u64, Vec<i32>) {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{MODEL}\n[neuron]\ndt = {dt}\n");
    let cfg = ModelConfig::from_toml_str(&text, "dt model").unwrap();
    let mut t = trainer_with(cfg, &data, dir.path(), 1, 6);
    let path = dir.path().join("traces.h5");
    let mut rec = recorder(&t, &path, "spikes:layers=hidden0", z);
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    let f = hdf5::File::open(&path).unwrap();
    (
        read(&f, "spikes/hidden0/timestamps"),
        read(&f, "spikes/hidden0/node_ids"),
        t.net.state.layers[0].spike_count,
        filter_ids(&f, "spikes/hidden0/timestamps"),
    )
}

#[test]
fn scale_offset_spike_times_are_bit_identical_to_unfiltered_ones() {
    // dt = 0.25 ms: stored with decimal scale 2; dt = 0.1 ms has no exact scale and is
    // stored unfiltered (its node ids still scale-offset).
    for (dt, filtered) in [(1.0, true), (0.25, true), (0.1, false)] {
        let (t0, n0, count, f0) = spike_times(dt, Compression::None);
        let (t1, n1, _, f1) = spike_times(dt, Compression::ScaleOffset);
        assert_eq!(t0.len() as u64, count, "dt {dt}");
        assert!(
            count > 100,
            "dt {dt}: too few spikes to say anything ({count})"
        );
        assert!(f0.is_empty());
        assert_eq!(f1, if filtered { vec![6] } else { vec![] }, "dt {dt}");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&t0), bits(&t1), "dt {dt}");
        assert_eq!(n0, n1, "dt {dt}");
        // Every time is a whole number of steps: k * dt as the recorder computes it.
        for &x in &t1 {
            assert_eq!(
                x.to_bits(),
                (((x / dt).round() as u64) as f64 * dt).to_bits()
            );
        }
    }
}

/// A file as apical wrote them before the scale-offset default: the HDF5 1.10 format,
/// shuffle + deflate, no SONATA magic; `inspect` still reads it.
#[test]
fn inspect_reads_a_file_in_the_earlier_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.h5");
    {
        let f = hdf5::File::with_options()
            .with_fapl(|p| p.libver_v110())
            .create(&path)
            .unwrap();
        let s: hdf5::types::VarLenUnicode = "apical-traces".parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("format")
            .unwrap()
            .write_scalar(&s)
            .unwrap();
        let g = f
            .create_group("spikes")
            .unwrap()
            .create_group("hidden0")
            .unwrap();
        g.new_dataset::<f64>()
            .chunk(4)
            .shuffle()
            .deflate(1)
            .shape(hdf5::SimpleExtents::resizable([0]))
            .create("timestamps")
            .unwrap();
        let ds = g.dataset("timestamps").unwrap();
        ds.resize(6).unwrap();
        ds.write_raw(&[0.0, 1.0, 1.0, 2.0, 5.0, 8.0]).unwrap();
    }
    let text = apical::io::record::inspect(&path).unwrap();
    assert!(text.contains("format = apical-traces"), "{text}");
    assert!(text.contains("/spikes/hidden0/timestamps"), "{text}");
    assert!(text.contains("[6]"), "{text}");
}

/// What `apical plot` draws from a trace file (`recorded_spikes`): the last examples of
/// /examples that follow one another, and every spike row of the population between the
/// first one's start and the last one's end, read back from the raw columns by hand.
#[test]
fn the_last_examples_spikes_are_read_back_for_a_raster() {
    use apical::io::record::{recorded_spikes, ExampleSpan};
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 2, 6);
    let path = dir.path().join("traces.h5");
    let mut rec = recorder(&t, &path, "spikes", Compression::default());
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    let dt = t.net.model.cfg.neuron.dt;
    let w = recorded_spikes(&path, "hidden0", 3).unwrap().unwrap();

    let f = hdf5::File::open(&path).unwrap();
    let start: Vec<f64> = read(&f, "examples/start_time");
    let (epoch, example, fw, tg): (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) = (
        read(&f, "examples/epoch"),
        read(&f, "examples/example"),
        read(&f, "examples/forward_steps"),
        read(&f, "examples/target_steps"),
    );
    let ts: Vec<f64> = read(&f, "spikes/hidden0/timestamps");
    let ids: Vec<u64> = read(&f, "spikes/hidden0/node_ids");
    drop(f);
    assert_eq!(start.len(), 12);
    let want: Vec<ExampleSpan> = (9..12)
        .map(|k| ExampleSpan {
            epoch: epoch[k],
            example: example[k],
            start_ms: start[k],
            forward_steps: fw[k],
            target_steps: tg[k],
        })
        .collect();
    assert_eq!(w.examples, want);
    assert_eq!((want[0].epoch, want[0].example), (2, 3));
    assert_eq!(w.dt, dt);
    let (t0, t1) = (start[9], start[11] + f64::from(fw[11] + tg[11]) * dt);
    let spikes: Vec<(f64, u64)> = ts
        .iter()
        .zip(&ids)
        .filter(|(&t, _)| t >= t0 && t < t1)
        .map(|(&t, &i)| (t, i))
        .collect();
    assert!(spikes.len() > 10, "too few spikes for a test: {spikes:?}");
    assert!(spikes.len() < ts.len(), "the window is the whole file");
    assert_eq!(w.spikes, spikes);
    // A population the file did not record: nothing to draw.
    assert_eq!(recorded_spikes(&path, "hidden7", 3).unwrap(), None);

    // Every second example recorded: the last one only (the one before it is not adjacent).
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 6);
    let path = dir.path().join("traces.h5");
    let mut rec = recorder(&t, &path, "spikes:examples=every:2", Compression::default());
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    let w = recorded_spikes(&path, "hidden0", 3).unwrap().unwrap();
    assert_eq!(w.examples.len(), 1, "{:?}", w.examples);
    assert_eq!(w.examples[0].epoch, 1);
    // Metrics and weights only (the default): no spikes to draw.
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(&data, dir.path(), 1, 2);
    let path = dir.path().join("traces.h5");
    let mut rec = recorder(&t, &path, "metrics,weights", Compression::default());
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    assert_eq!(recorded_spikes(&path, "hidden0", 3).unwrap(), None);
}
