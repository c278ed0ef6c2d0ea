//! `apical.Network`: a trained network restored from a checkpoint, to evaluate, to simulate
//! one example step by step, and to read its weights.

use crate::args::{self, Int};
use crate::dataset::{data_arg, load_cached, DataArg};
use crate::errors;
use crate::interrupt::until_interrupted;
use crate::model::Model;
use crate::train::with_threads;
use apical::io::dataset::{self, DataSet, DataSpec};
use apical::io::run_dir::{self, DataRecord, RunInfo};
use apical::run::metrics::evaluate_repeats_until;
use apical::run::stepper::Stepper;
use apical::{Checkpoint, Observer, Phase, RunDir, StepInfo};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Population names as trace files have them: "input", "hidden0", ..., "output".
fn population_names(cfg: &apical::ModelConfig) -> Vec<String> {
    let mut v = vec!["input".to_string()];
    v.extend((0..cfg.network.hidden.len()).map(|m| format!("hidden{m}")));
    v.push("output".into());
    v
}

/// A network: restored exactly as a checkpoint saved it (`from_run`, `from_checkpoint`), or
/// the one a new run would start from (`new`); it learns one example at a time
/// (`train_example`) through the library's [`Stepper`], the trainer's code path.
#[pyclass(module = "apical")]
pub struct Network {
    step: Stepper,
    ck: Checkpoint,
    /// The checkpoint file it came from (`None`: built by `new`).
    path: Option<PathBuf>,
    /// The data folder given, else the run's own (run.json), else found as the CLI does.
    data: Option<PathBuf>,
    /// The data the run trained on (run.json).
    recorded: Option<DataRecord>,
    verify: bool,
}

impl Network {
    fn origin(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "the new network".into(), |p| p.display().to_string())
    }

    /// The data to test on: `data` (a Dataset, name or path), else the run's own, else
    /// MNIST; refused when it is not the run's (unless `other_data`) or does not fit the model.
    fn test_data(
        &self,
        py: Python<'_>,
        data: Option<&Bound<'_, PyAny>>,
        other_data: bool,
    ) -> PyResult<Arc<DataSet>> {
        let arg = match data {
            Some(d) => data_arg(d)?,
            None => DataArg::Spec(
                self.recorded
                    .as_ref()
                    .map_or(DataSpec::Mnist, |r| DataSpec::parse(&r.name)),
            ),
        };
        let set = match arg {
            DataArg::Loaded(s) => s,
            DataArg::Spec(spec) => {
                let folder = match spec {
                    DataSpec::Path(_) => None,
                    _ => self.data.clone(),
                };
                load_cached(py, &spec, folder.as_deref(), self.verify)?
            }
        };
        if let Some(r) = &self.recorded {
            r.check_same(&set, &self.origin(), other_data)
                .map_err(errors::invalid)?;
        }
        dataset::check_model_fits(&self.step.net.model.cfg, &set.data, &set.name)
            .map_err(|e| errors::invalid(format!("{}: {e}", self.origin())))?;
        Ok(set)
    }

    fn layer(&self, layer: Int) -> PyResult<&apical::model::params::LayerParams> {
        let layer = args::count("layer", layer)?;
        self.step.net.params.get(layer).ok_or_else(|| {
            errors::invalid(format!(
                "layer {layer} does not exist: this network has weight layers 0..{} (0: input -> first layer)",
                self.step.net.params.len() - 1
            ))
        })
    }

    fn restored(
        net: apical::Network,
        ck: Checkpoint,
        path: PathBuf,
        data: Option<PathBuf>,
        recorded: Option<DataRecord>,
        verify: bool,
    ) -> Self {
        let step = Stepper::from_network(net, ck.seed, ck.epochs_done);
        Network {
            step,
            ck,
            path: Some(path),
            data,
            recorded,
            verify,
        }
    }
}

/// Pixels of one example: uint8 0-255 or floats 0-1 (as a data set's), `n_in` of them.
fn example_pixels(py: Python<'_>, image: &Bound<'_, PyAny>, n_in: usize) -> PyResult<Vec<u8>> {
    let np = py.import("numpy")?;
    let a = np.call_method1("asarray", (image,))?;
    let n: usize = a.getattr("size")?.extract()?;
    if n != n_in {
        return Err(errors::invalid(format!(
            "the image has {n} inputs; the model has network.n_in = {n_in}"
        )));
    }
    let x = crate::dataset::images_of(py, &a.call_method1("reshape", ((1usize, n),))?, "image")?;
    let set =
        dataset::set_from_arrays(std::path::Path::new("image"), ("image", x), ("label", &[0]))
            .map_err(errors::data)?;
    Ok(set.images)
}

/// (neuron, input)-indexed matrix from an input-major Vec (`v[j * n + i]`), without a copy:
/// the transposed view of the (n_in, n) array.
fn post_pre<'py>(
    py: Python<'py>,
    v: Vec<f32>,
    n_pre: usize,
    n: usize,
) -> Bound<'py, PyArray2<f32>> {
    ndarray::Array2::from_shape_vec((n_pre, n), v)
        .expect("parameter sizes match")
        .reversed_axes()
        .into_pyarray(py)
}

#[pymethods]
impl Network {
    /// The latest checkpoint of a run directory, restored exactly (a damaged latest
    /// checkpoint is an error that names the one before it).
    #[staticmethod]
    #[pyo3(signature = (dir, *, data=None, verify=true))]
    fn from_run(dir: PathBuf, data: Option<PathBuf>, verify: bool) -> PyResult<Self> {
        let run = RunDir::open(&dir).map_err(errors::run_dir)?;
        let (net, ck, path) = run.restore().map_err(errors::run_dir)?;
        let info = run.read_info().ok();
        // The run's data folder when no other is given and it still exists.
        let data = data.or_else(|| {
            std::env::var_os("APICAL_DATA")
                .is_none()
                .then(|| info.as_ref().map(|i| i.data_dir.clone()))
                .flatten()
                .filter(|d| d.is_dir())
        });
        let recorded = info.and_then(|i| i.data);
        Ok(Network::restored(net, ck, path, data, recorded, verify))
    }

    /// A checkpoint file (checkpoint-epoch-N.bin or a mid-epoch one), restored exactly.
    #[staticmethod]
    #[pyo3(signature = (path, *, data=None, verify=true))]
    fn from_checkpoint(path: PathBuf, data: Option<PathBuf>, verify: bool) -> PyResult<Self> {
        let ck = Checkpoint::load(&path).map_err(errors::checkpoint)?;
        let net = run_dir::restore(&ck, &path).map_err(errors::run_dir)?;
        // run.json beside the checkpoint names the run's data.
        let recorded = path
            .parent()
            .and_then(|d| RunDir::open(d).ok())
            .and_then(|r| r.read_info().ok())
            .and_then(|i| i.data);
        Ok(Network::restored(net, ck, path, data, recorded, verify))
    }

    /// The network a new run of `model` with `seed` starts from (the same initial weights
    /// as `apical train --seed`), ready to learn one example at a time.
    #[staticmethod]
    #[pyo3(signature = (model=None, seed=0, *, data=None, verify=true))]
    fn new(
        model: Option<PyRef<'_, Model>>,
        seed: Int,
        data: Option<PathBuf>,
        verify: bool,
    ) -> PyResult<Self> {
        let seed = args::seed("seed", seed)?;
        let cfg = match model {
            Some(m) => m.cfg.clone(),
            None => Model::default_model()?.cfg,
        };
        let step = Stepper::new(cfg.clone(), seed);
        let ck = step.checkpoint(cfg.training.train_examples, cfg.training.test_examples);
        Ok(Network {
            step,
            ck,
            path: None,
            data,
            recorded: None,
            verify,
        })
    }

    /// Learns from one example, as a training run does (forward phase, target phase,
    /// learning: the trainer's `train_example`). `image`: `n_in` values, uint8 0-255 or
    /// floats 0-1, any shape; `label`: its class. Returns {"prediction": the forward
    /// phase's class (before learning), "label", "correct", "errors": [per layer array],
    /// "plateau_differences": [per hidden layer alpha_t - alpha_f], "spike_counts": [per
    /// layer], "l_f", "l_t": the phase lengths, "examples": learned so far}.
    fn train_example<'py>(
        &mut self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        label: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cfg = &self.step.net.model.cfg;
        let pixels = example_pixels(py, image, cfg.network.n_in)?;
        if label < 0 || label as usize >= cfg.network.classes {
            return Err(errors::invalid(format!(
                "label {label} is not a class of the model (network.classes = {}: labels 0..{})",
                cfg.network.classes,
                cfg.network.classes - 1
            )));
        }
        let step = &mut self.step;
        let out = py
            .detach(|| step.train_example(&pixels, label as u8))
            .map_err(errors::invalid)?;
        let d = PyDict::new(py);
        d.set_item("prediction", out.predicted)?;
        d.set_item("label", label)?;
        d.set_item("correct", i64::from(out.predicted) == label)?;
        let arrays = |v: Vec<Vec<f32>>| -> Vec<Bound<'py, PyArray1<f32>>> {
            v.into_iter().map(|e| e.into_pyarray(py)).collect()
        };
        d.set_item("errors", arrays(out.errors))?;
        d.set_item("plateau_differences", arrays(out.plateau_differences))?;
        d.set_item("spike_counts", out.spike_counts)?;
        d.set_item("l_f", out.l_f)?;
        d.set_item("l_t", out.l_t)?;
        d.set_item("examples", self.step.examples)?;
        Ok(d)
    }

    /// The predicted class of each image of `images` ((examples, n_in) or (examples, rows,
    /// columns); uint8 0-255 or floats 0-1), each tested as `apical eval` tests (a test
    /// phase with spike streams of its own, keyed by `seed` and the position). Ctrl-C stops
    /// it between chunks of 256 images (a KeyboardInterrupt).
    #[pyo3(signature = (images, *, seed=0, threads=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        seed: Int,
        threads: Option<Int>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let seed = args::seed("seed", seed)?;
        let threads = args::count_opt("threads", threads)?;
        let n_in = self.step.net.model.cfg.network.n_in;
        let x = crate::dataset::images_of(py, images, "images")?;
        let n = x.shape.first().copied().unwrap_or(0);
        let labels = vec![0i64; n];
        let set = dataset::set_from_arrays(
            std::path::Path::new("images"),
            ("images", x),
            ("labels", &labels),
        )
        .map_err(errors::data)?;
        if set.rows * set.cols != n_in {
            return Err(errors::invalid(format!(
                "the images have {} inputs; the model has network.n_in = {n_in}",
                set.rows * set.cols
            )));
        }
        let key = apical::base::rng::Key::Eval {
            epochs_done: self.ck.epochs_done,
        }
        .value();
        let net = &self.step.net;
        let stop = AtomicBool::new(false);
        let out = until_interrupted(py, &stop, || {
            with_threads(threads, || {
                let mut out = Vec::with_capacity(n);
                for start in (0..n).step_by(256) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let idx: Vec<usize> = (start..(start + 256).min(n)).collect();
                    let preds = net.evaluate(seed, key, &idx, |i| set.image(i));
                    out.extend(preds.into_iter().map(i64::from));
                }
                out
            })
        })??;
        Ok(out.into_pyarray(py))
    }

    /// Saves the network as a run directory the command line continues: model.toml,
    /// run.json and a checkpoint (the network as it is now, as a run's start after its
    /// checkpoint's epochs). `apical train --resume DIR` trains it one epoch more (or up
    /// to `--epochs`), `apical eval DIR` tests it. `dataset` (a Dataset) is recorded in
    /// run.json as the run's data. A directory holding checkpoints is refused. Returns the
    /// checkpoint's path.
    #[pyo3(signature = (dir, *, dataset=None))]
    fn save(
        &self,
        dir: PathBuf,
        dataset: Option<PyRef<'_, crate::dataset::Dataset>>,
    ) -> PyResult<PathBuf> {
        let net = &self.step.net;
        let ck = Checkpoint {
            params: net.params.clone(),
            feedback_rng: net.feedback_rng.clone(),
            rule_params: net.rule_params.clone(),
            progress: None,
            ..self.ck.clone()
        };
        let record = dataset.map(|d| DataRecord::of(&d.set));
        if let Some(r) = &record {
            let cfg = &net.model.cfg;
            if r.n_in != cfg.network.n_in || r.classes != cfg.network.classes {
                return Err(errors::invalid(format!(
                    "the data set {} has {} inputs and {} classes but the network has network.n_in = {} and network.classes = {}",
                    r.name, r.n_in, r.classes, cfg.network.n_in, cfg.network.classes
                )));
            }
        }
        let info = RunInfo {
            apical_version: env!("CARGO_PKG_VERSION").into(),
            model: net.model.cfg.name.clone(),
            seed: ck.seed,
            epochs: ck.epochs_done + 1,
            train_examples: ck.train_examples,
            test_examples: ck.test_examples,
            data_dir: dataset_dir(record.as_ref()),
            checkpoint_every: 0,
            keep_checkpoints: Default::default(),
            data: record,
        };
        let (run, _lock) = RunDir::create_locked(&dir).map_err(errors::run_dir)?;
        run.refuse_checkpoints().map_err(errors::run_dir)?;
        let run = RunDir::create(&dir, &ck.model_toml, &info).map_err(errors::run_dir)?;
        let path = run
            .dir
            .join(apical::io::checkpoint::epoch_file_name(ck.epochs_done));
        ck.save(&path).map_err(errors::checkpoint)?;
        Ok(path)
    }

    /// Examples learned through `train_example` since this object was made.
    #[getter]
    fn examples_trained(&self) -> usize {
        self.step.examples
    }

    /// The checkpoint file this network came from.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    /// Epochs trained (complete ones; a mid-epoch checkpoint is inside the next).
    #[getter]
    fn epochs_done(&self) -> usize {
        self.ck.epochs_done
    }

    /// The run's seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.ck.seed
    }

    /// The model the network was trained with (its text as the run stored it).
    #[getter]
    fn model(&self) -> PyResult<Model> {
        Model::from_text(self.ck.model_toml.clone(), self.origin())
    }

    /// Units per population: input, hidden layers, output.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        let cfg = &self.step.net.model.cfg;
        let mut s = vec![cfg.network.n_in];
        s.extend(cfg.layer_sizes());
        s
    }

    /// Population names: "input", "hidden0", ..., "output" (as in trace files).
    #[getter]
    fn populations(&self) -> Vec<String> {
        population_names(&self.step.net.model.cfg)
    }

    /// Per-epoch records kept in the checkpoint (epoch, errors, rates).
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = serde_json::to_string(&self.ck.history).expect("history serialises");
        py.import("json")?.call_method1("loads", (json,))
    }

    /// Number of weight layers (hidden layers + 1).
    #[getter]
    fn n_layers(&self) -> usize {
        self.step.net.params.len()
    }

    /// Feedforward weights W of weight layer `layer` (0: input -> first layer) as an
    /// (neurons, inputs) float32 array: `W[i, j]` is the weight from input j to neuron i.
    fn weights<'py>(&self, py: Python<'py>, layer: Int) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.layer(layer)?;
        Ok(post_pre(py, p.w.clone(), p.n_pre, p.n))
    }

    /// Basal biases b of weight layer `layer`.
    fn biases<'py>(&self, py: Python<'py>, layer: Int) -> PyResult<Bound<'py, PyArray1<f32>>> {
        Ok(self.layer(layer)?.b.clone().into_pyarray(py))
    }

    /// Feedback weights Y of hidden layer `layer` as (neurons, feedback inputs): `Y[i, k]`
    /// from feedback unit k (the output layer's, or the next layer's) to neuron i. The output
    /// layer has none: asking for it is an error.
    fn feedback<'py>(&self, py: Python<'py>, layer: Int) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.layer(layer)?;
        let layer = args::count("layer", layer)?;
        if layer + 1 == self.step.net.params.len() {
            return Err(errors::invalid(format!(
                "layer {layer} is the output layer: it has no feedback weights (those of the hidden layers are feedback(0) to feedback({}))",
                layer.saturating_sub(1)
            )));
        }
        Ok(post_pre(py, p.y.clone(), p.n_fb, p.n))
    }

    /// The learning rule the network trains with (`[learning] rule`: "guerguiev",
    /// "backprop", "feedback-alignment", "burstccn" or "burstprop"; docs/model.md, sections
    /// 10-12).
    #[getter]
    fn rule(&self) -> &'static str {
        self.step.net.model.rule.name()
    }

    /// A learned or fixed matrix of the network by name: "weights" (W), "biases" (b, as a
    /// (n, 1) array), "feedback" (Y: the segregated-dendrite rule's feedback weights, and
    /// feedback alignment's fixed matrix B; BurstCCN's and Burstprop's burst feedback Y),
    /// "apical_bias" (c,
    /// (n, 1); (n, 0) where the layer has none) or "event_feedback" (BurstCCN's Q, hidden
    /// layers only), of weight layer `layer`. The names a rule's state goes by, whatever
    /// the rule.
    fn matrix<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        layer: Int,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.layer(layer)?;
        let layer = args::count("layer", layer)?;
        match name {
            "weights" => Ok(post_pre(py, p.w.clone(), p.n_pre, p.n)),
            "feedback" => Ok(post_pre(py, p.y.clone(), p.n_fb, p.n)),
            "biases" => Ok(post_pre(py, p.b.clone(), 1, p.n)),
            "apical_bias" if p.c.len() == p.n => Ok(post_pre(py, p.c.clone(), 1, p.n)),
            "apical_bias" => Ok(post_pre(py, Vec::new(), 0, p.n)),
            "event_feedback" => match self.step.net.rule_params.q.get(layer) {
                Some(q) => Ok(post_pre(py, q.clone(), p.n_fb, p.n)),
                None => Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "matrix \"event_feedback\" (BurstCCN's Q) exists only for the hidden layers \
                     of a network with rule \"burstccn\"; this one has rule {:?} and layer {layer}",
                    self.step.net.model.rule.name()
                ))),
            },
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "matrix name {other:?} is not one of \"weights\", \"biases\", \"feedback\", \"apical_bias\", \"event_feedback\""
            ))),
        }
    }

    /// Tests on `test_examples` test images (a seeded subset below all of them) of `data`
    /// (a Dataset, a name or a path; default: the run's own data set, else MNIST), as
    /// `apical eval`: data other than the run's is refused unless `other_data`. Returns
    /// {"error": % (repeat 0, what `apical eval` prints), "errors": [% per
    /// repeat], "confusion": classes x classes counts summed over repeats [true, predicted],
    /// "indices": the test images, "test_examples": n}; with repeats > 1 also "mean" and "sd"
    /// of the repeats' errors. Ctrl-C raises KeyboardInterrupt between chunks of images.
    #[pyo3(signature = (test_examples=10_000, *, seed=0, threads=None, repeats=1, data=None, other_data=false))]
    #[allow(clippy::too_many_arguments)]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        test_examples: Int,
        seed: Int,
        threads: Option<Int>,
        repeats: Int,
        data: Option<&Bound<'py, PyAny>>,
        other_data: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let test_examples = args::count("test_examples", test_examples)?;
        let seed = args::seed("seed", seed)?;
        let threads = args::count_opt("threads", threads)?;
        let repeats = args::count("repeats", repeats)?;
        if test_examples == 0 {
            return Err(errors::invalid("test_examples must be at least 1"));
        }
        if repeats == 0 {
            return Err(errors::invalid("repeats must be at least 1"));
        }
        let set = self.test_data(py, data, other_data)?;
        let data = &set.data;
        // As `apical eval --test-examples`: more than the test set is an error, not the
        // whole set quietly.
        if test_examples > data.test.len() {
            return Err(errors::invalid(format!(
                "test_examples {test_examples} is more than the {} test images; give at most {}",
                data.test.len(),
                data.test.len()
            )));
        }
        let net = &self.step.net;
        let epochs = self.ck.epochs_done;
        // Ctrl-C stops it between chunks of images (a KeyboardInterrupt).
        let stop = AtomicBool::new(false);
        let ev = until_interrupted(py, &stop, || {
            with_threads(threads, || {
                evaluate_repeats_until(net, &data.test, seed, epochs, test_examples, repeats, &stop)
            })
        })??
        .ok_or_else(|| pyo3::exceptions::PyKeyboardInterrupt::new_err("evaluate stopped"))?;
        let d = PyDict::new(py);
        d.set_item("error", ev.errors[0])?;
        d.set_item("errors", ev.errors.clone())?;
        let k = ev.confusion.len();
        let flat: Vec<u64> = ev.confusion.iter().flatten().copied().collect();
        let conf = ndarray::Array2::from_shape_vec((k, k), flat).expect("classes x classes");
        d.set_item("confusion", conf.into_pyarray(py))?;
        d.set_item("test_examples", ev.indices.len())?;
        let (mean, sd) = ev.mean_sd();
        let indices: Vec<u64> = ev.indices.iter().map(|&i| i as u64).collect();
        d.set_item("indices", indices.into_pyarray(py))?;
        if repeats > 1 {
            d.set_item("mean", mean)?;
            d.set_item("sd", sd)?;
        }
        Ok(d)
    }

    /// Simulates one example without learning and returns what `record` asks for.
    ///
    /// `image` is an index into the MNIST test set or 784 pixel values (0..255, any shape
    /// with 784 elements). `phase`: "forward" (a forward phase of `steps` steps, default the
    /// test length l_f_test = 250), "test" (exactly a test example: with an index and the
    /// same seed it predicts what `evaluate(seed=...)` predicted), or "target" (a forward
    /// phase of l_f steps, then a target phase of `steps` steps, default l_t, teaching the
    /// label). `record`: any of "spikes", "soma", "basal", "apical", "potentials" (the
    /// three), "rate".
    ///
    /// Returns a dict: "time_ms" (steps,), "prediction", "label", "target_start_step"
    /// (phase "target"), "spikes" {population: (times_ms, ids)}, and
    /// "soma"/"basal"/"apical"/"rate_hz" {layer: (steps, neurons) array}. Ctrl-C raises
    /// KeyboardInterrupt at the next step.
    #[pyo3(signature = (image, phase="forward", steps=None, record=None, *, seed=0, label=None))]
    #[allow(clippy::too_many_arguments)]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        phase: &str,
        steps: Option<Int>,
        record: Option<&Bound<'py, PyAny>>,
        seed: Int,
        label: Option<Int>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let steps = args::count_opt("steps", steps)?;
        let seed = args::seed("seed", seed)?;
        let label = label.map(|l| args::label("label", l)).transpose()?;
        let cfg = &self.step.net.model.cfg;
        let record: Vec<String> = match record {
            None => vec!["spikes".into(), "soma".into(), "apical".into()],
            Some(r) if r.is_instance_of::<PyString>() => vec![r.extract()?],
            Some(r) => r.extract()?,
        };
        let index = if image.is_instance_of::<PyBool>() {
            None
        } else {
            image.extract::<i64>().ok()
        };
        let (pixels, label, stream_index) = match index {
            Some(i) => {
                let set = self.test_data(py, None, false)?;
                let data = &set.data;
                if i < 0 || i as usize >= data.test.len() {
                    return Err(errors::invalid(format!(
                        "image index {i} is out of range: the test set has {} images",
                        data.test.len()
                    )));
                }
                let i = i as usize;
                (
                    data.test.image(i).to_vec(),
                    Some(label.unwrap_or(data.test.label(i))),
                    i as u64,
                )
            }
            None => {
                let a = py
                    .import("numpy")?
                    .call_method1("asarray", (image, "float64"))?
                    .call_method1("reshape", (-1,))?;
                let a: PyReadonlyArray1<'py, f64> = a.extract()?;
                let v = a.as_array();
                if v.len() != cfg.network.n_in {
                    return Err(errors::invalid(format!(
                        "the image has {} pixels; the model has network.n_in = {}",
                        v.len(),
                        cfg.network.n_in
                    )));
                }
                if !v
                    .iter()
                    .all(|&x| (0.0..=255.0).contains(&x) && x.fract() == 0.0)
                {
                    return Err(errors::invalid(
                        "image pixels must be whole numbers in 0..255 (as MNIST's)",
                    ));
                }
                (v.iter().map(|&x| x as u8).collect(), label, u64::MAX)
            }
        };
        let stop = AtomicBool::new(false);
        let mut rec = Recorder::new(&record, cfg.neuron.dt, &stop)?;
        let p = &cfg.phases;
        let (phase, n, target_start) = match phase {
            "test" => (Phase::Test, steps.unwrap_or(p.l_f_test), None),
            "forward" => (Phase::Forward, steps.unwrap_or(p.l_f_test), None),
            "target" => (Phase::Target, steps.unwrap_or(p.l_t), Some(p.l_f)),
            other => {
                return Err(errors::invalid(format!(
                    "phase must be \"forward\", \"target\" or \"test\", got {other:?}"
                )))
            }
        };
        if phase == Phase::Target && label.is_none() {
            return Err(errors::invalid(
                "phase \"target\" needs the label of the image (label=...)",
            ));
        }
        if n > MAX_SIMULATE_STEPS {
            return Err(errors::invalid(format!(
                "steps={n}: one simulate call runs at most {MAX_SIMULATE_STEPS} steps ({} s of model time)",
                MAX_SIMULATE_STEPS as f64 * cfg.neuron.dt / 1000.0
            )));
        }
        let classes = cfg.network.classes;
        if let Some(l) = label.filter(|&l| usize::from(l) >= classes) {
            return Err(errors::invalid(format!(
                "label {l} is not a class of the model: labels are 0..{}",
                classes - 1
            )));
        }
        // What the recording will hold, checked before the simulation allocates it: an
        // absurd `steps` is a MemoryError, not an abort of the interpreter.
        let neurons: u64 = cfg.layer_sizes().iter().map(|&n| n as u64).sum();
        let per_step = 8 + 4 * neurons * rec.continuous_variables() as u64;
        let needed = (n as u64).saturating_mul(per_step);
        apical::io::memory::check(needed, &format!("simulate(steps={n}, record={record:?})"))
            .map_err(|e| pyo3::exceptions::PyMemoryError::new_err(e.to_string()))?;
        let net = &self.step.net;
        let epochs = self.ck.epochs_done;
        // Ctrl-C ends the phase at the next step (the recorder asks the schedule to stop);
        // the simulation runs on a state of its own, so the network is unchanged.
        let prediction = until_interrupted(py, &stop, || {
            net.simulate(
                &pixels,
                stream_index,
                seed,
                epochs,
                phase,
                n,
                label.unwrap_or(0),
                &mut rec,
            )
        })?;
        let names = population_names(cfg);
        rec.into_dict(py, &names, prediction, label, target_start)
    }

    fn __repr__(&self) -> String {
        let sizes: Vec<String> = self.sizes().iter().map(|n| n.to_string()).collect();
        format!(
            "Network({}, {}, epochs_done={}, path={:?})",
            self.step.net.model.cfg.name,
            sizes.join("-"),
            self.ck.epochs_done,
            self.origin()
        )
    }
}

/// The most steps of one `simulate` call: far beyond any phase of the model (hundreds of
/// steps), short of calls that run for hours (ten million steps) with no way to stop them.
const MAX_SIMULATE_STEPS: usize = 1_000_000;

/// Collects the requested variables of every step (an [`Observer`]: reads only, and asks
/// the schedule to stop once `stop` is raised).
struct Recorder<'a> {
    stop: &'a AtomicBool,
    dt: f64,
    spikes: bool,
    soma: bool,
    basal: bool,
    apical: bool,
    rate: bool,
    steps: usize,
    /// Per population (input first): spike times (ms) and neuron ids.
    spike_times: Vec<Vec<f64>>,
    spike_ids: Vec<Vec<u32>>,
    /// Per layer (hidden first): values of every step, step-major.
    soma_v: Vec<Vec<f32>>,
    basal_v: Vec<Vec<f32>>,
    apical_v: Vec<Vec<f32>>,
    rate_v: Vec<Vec<f32>>,
}

impl<'a> Recorder<'a> {
    /// Variables recorded at every step for every neuron (soma, basal, apical, rate).
    fn continuous_variables(&self) -> usize {
        [self.soma, self.basal, self.apical, self.rate]
            .iter()
            .filter(|&&b| b)
            .count()
    }

    fn new(record: &[String], dt: f64, stop: &'a AtomicBool) -> PyResult<Self> {
        let mut r = Recorder {
            stop,
            dt,
            spikes: false,
            soma: false,
            basal: false,
            apical: false,
            rate: false,
            steps: 0,
            spike_times: Vec::new(),
            spike_ids: Vec::new(),
            soma_v: Vec::new(),
            basal_v: Vec::new(),
            apical_v: Vec::new(),
            rate_v: Vec::new(),
        };
        for v in record {
            match v.as_str() {
                "spikes" => r.spikes = true,
                "soma" => r.soma = true,
                "basal" => r.basal = true,
                "apical" => r.apical = true,
                "rate" => r.rate = true,
                "potentials" => {
                    r.soma = true;
                    r.basal = true;
                    r.apical = true;
                }
                other => {
                    return Err(errors::invalid(format!(
                        "record: unknown variable {other:?}; known: spikes, soma, basal, apical, potentials, rate"
                    )))
                }
            }
        }
        Ok(r)
    }

    fn into_dict<'py>(
        self,
        py: Python<'py>,
        names: &[String],
        prediction: u8,
        label: Option<u8>,
        target_start: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let time: Vec<f64> = (0..self.steps).map(|k| k as f64 * self.dt).collect();
        d.set_item("time_ms", time.into_pyarray(py))?;
        d.set_item("prediction", prediction)?;
        d.set_item("label", label)?;
        d.set_item("target_start_step", target_start)?;
        if self.spikes {
            let s = PyDict::new(py);
            for ((name, t), ids) in names.iter().zip(self.spike_times).zip(self.spike_ids) {
                s.set_item(name, (t.into_pyarray(py), ids.into_pyarray(py)))?;
            }
            d.set_item("spikes", s)?;
        }
        let steps = self.steps;
        let layers = &names[1..];
        let put = |key: &str, values: Vec<Vec<f32>>, hidden_only: bool| -> PyResult<()> {
            let s = PyDict::new(py);
            let n_layers = values.len();
            for (m, v) in values.into_iter().enumerate() {
                if hidden_only && m + 1 == n_layers {
                    continue;
                }
                let n = v.len().checked_div(steps).unwrap_or(0);
                let a = ndarray::Array2::from_shape_vec((steps, n), v).expect("steps x n");
                s.set_item(&layers[m], a.into_pyarray(py))?;
            }
            d.set_item(key, s)
        };
        if self.soma {
            put("soma", self.soma_v, false)?;
        }
        if self.basal {
            put("basal", self.basal_v, false)?;
        }
        if self.apical {
            put("apical", self.apical_v, true)?;
        }
        if self.rate {
            put("rate_hz", self.rate_v, false)?;
        }
        Ok(d)
    }
}

impl Observer for Recorder<'_> {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        let st = info.state;
        let t = self.steps as f64 * self.dt;
        self.steps += 1;
        let n_layers = st.layers.len();
        if self.spikes {
            if self.spike_times.is_empty() {
                self.spike_times = vec![Vec::new(); n_layers + 1];
                self.spike_ids = vec![Vec::new(); n_layers + 1];
            }
            for p in 0..=n_layers {
                let ev = if p == 0 {
                    &st.input.events
                } else {
                    &st.layers[p - 1].events
                };
                for &i in ev {
                    self.spike_times[p].push(t);
                    self.spike_ids[p].push(i);
                }
            }
        }
        let hz = (1000.0 / self.dt) as f32;
        for (on, store, which) in [
            (self.soma, &mut self.soma_v, 0),
            (self.basal, &mut self.basal_v, 1),
            (self.apical, &mut self.apical_v, 2),
            (self.rate, &mut self.rate_v, 3),
        ] {
            if !on {
                continue;
            }
            if store.is_empty() {
                *store = vec![Vec::new(); n_layers];
            }
            for (m, l) in st.layers.iter().enumerate() {
                for b in &l.blocks {
                    match which {
                        0 => store[m].extend_from_slice(&b.soma),
                        1 => store[m].extend_from_slice(&b.basal),
                        2 => store[m].extend_from_slice(&b.apical),
                        _ => store[m].extend(b.rate.iter().map(|r| r * hz)),
                    }
                }
            }
        }
    }

    fn reads_apical(&self) -> bool {
        self.apical
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The data folder a saved run names: the data set's when it is a file or folder.
fn dataset_dir(record: Option<&DataRecord>) -> PathBuf {
    match record.map(|r| DataSpec::parse(&r.name)) {
        Some(DataSpec::Path(p)) => p,
        _ => PathBuf::new(),
    }
}
