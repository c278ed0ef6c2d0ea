//! `apical.Network`: a trained network restored from a checkpoint, to evaluate, to simulate
//! one example step by step, and to read its weights.

use crate::errors;
use crate::model::Model;
use crate::train::with_threads;
use apical::io::run_dir;
use apical::{
    evaluate_repeats, find_data_dir, load_mnist, Checkpoint, Mnist, Observer, Phase, RunDir,
    StepInfo,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Population names as trace files have them: "input", "hidden0", ..., "output".
fn population_names(cfg: &apical::ModelConfig) -> Vec<String> {
    let mut v = vec!["input".to_string()];
    v.extend((0..cfg.network.hidden.len()).map(|m| format!("hidden{m}")));
    v.push("output".into());
    v
}

/// MNIST loaded once per folder and process (loading and checking takes about a second).
fn mnist(dir: &Path, verify: bool) -> PyResult<Arc<Mnist>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Mnist>>>> = OnceLock::new();
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.lock().expect("cache lock").get(&key) {
        return Ok(m.clone());
    }
    let m = Arc::new(load_mnist(dir, verify).map_err(errors::data)?);
    cache.lock().expect("cache lock").insert(key, m.clone());
    Ok(m)
}

/// A trained network, restored exactly as its checkpoint saved it.
#[pyclass(module = "apical", frozen)]
pub struct Network {
    net: apical::Network,
    ck: Checkpoint,
    path: PathBuf,
    /// The MNIST folder given, else the run's own (run.json), else found as the CLI does.
    data: Option<PathBuf>,
    verify: bool,
}

impl Network {
    fn data_dir(&self) -> PyResult<PathBuf> {
        find_data_dir(self.data.as_deref()).map_err(errors::data)
    }

    fn mnist(&self) -> PyResult<Arc<Mnist>> {
        let m = mnist(&self.data_dir()?, self.verify)?;
        let pixels = m.test.rows * m.test.cols;
        if pixels != self.net.model.cfg.network.n_in {
            return Err(errors::invalid(format!(
                "the model in {} has network.n_in = {} inputs but the test images have {pixels} pixels",
                self.path.display(),
                self.net.model.cfg.network.n_in
            )));
        }
        Ok(m)
    }

    fn layer(&self, layer: usize) -> PyResult<&apical::model::params::LayerParams> {
        self.net.params.get(layer).ok_or_else(|| {
            errors::invalid(format!(
                "layer {layer} does not exist: this network has weight layers 0..{} (0: input -> first layer)",
                self.net.params.len() - 1
            ))
        })
    }
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
        // The run's data folder when no other is given and it still exists.
        let data = data.or_else(|| {
            std::env::var_os("APICAL_DATA")
                .is_none()
                .then(|| run.read_info().ok())
                .flatten()
                .map(|i| i.data_dir)
                .filter(|d| d.is_dir())
        });
        Ok(Network {
            net,
            ck,
            path,
            data,
            verify,
        })
    }

    /// A checkpoint file (checkpoint-epoch-N.bin or a mid-epoch one), restored exactly.
    #[staticmethod]
    #[pyo3(signature = (path, *, data=None, verify=true))]
    fn from_checkpoint(path: PathBuf, data: Option<PathBuf>, verify: bool) -> PyResult<Self> {
        let ck = Checkpoint::load(&path).map_err(errors::checkpoint)?;
        let net = run_dir::restore(&ck, &path).map_err(errors::run_dir)?;
        Ok(Network {
            net,
            ck,
            path,
            data,
            verify,
        })
    }

    /// The checkpoint file this network came from.
    #[getter]
    fn path(&self) -> PathBuf {
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
        Model::from_text(self.ck.model_toml.clone(), self.path.display().to_string())
    }

    /// Units per population: input, hidden layers, output.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        let cfg = &self.net.model.cfg;
        let mut s = vec![cfg.network.n_in];
        s.extend(cfg.layer_sizes());
        s
    }

    /// Population names: "input", "hidden0", ..., "output" (as in trace files).
    #[getter]
    fn populations(&self) -> Vec<String> {
        population_names(&self.net.model.cfg)
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
        self.net.params.len()
    }

    /// Feedforward weights W of weight layer `layer` (0: input -> first layer) as an
    /// (neurons, inputs) float32 array: `W[i, j]` is the weight from input j to neuron i.
    fn weights<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.layer(layer)?;
        Ok(post_pre(py, p.w.clone(), p.n_pre, p.n))
    }

    /// Basal biases b of weight layer `layer`.
    fn biases<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyArray1<f32>>> {
        Ok(self.layer(layer)?.b.clone().into_pyarray(py))
    }

    /// Feedback weights Y of hidden layer `layer` as (neurons, feedback inputs): `Y[i, k]`
    /// from feedback unit k (the output layer's, or the next layer's) to neuron i. The output
    /// layer has none: asking for it is an error.
    fn feedback<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.layer(layer)?;
        if layer + 1 == self.net.params.len() {
            return Err(errors::invalid(format!(
                "layer {layer} is the output layer: it has no feedback weights (those of the hidden layers are feedback(0) to feedback({}))",
                layer.saturating_sub(1)
            )));
        }
        Ok(post_pre(py, p.y.clone(), p.n_fb, p.n))
    }

    /// The learning rule the network trains with (`[learning] rule`: "guerguiev",
    /// "backprop" or "feedback-alignment"; docs/model.md, section 10).
    #[getter]
    fn rule(&self) -> &'static str {
        self.net.model.rule.name()
    }

    /// A learned or fixed matrix of the network by name: "weights" (W), "biases" (b, as a
    /// (n, 1) array), "feedback" (Y: the segregated-dendrite rule's feedback weights, and
    /// feedback alignment's fixed matrix B) or "apical_bias" (c, (n, 1); (n, 0) where the layer has none), of weight layer
    /// `layer`. The names a rule's state goes by, whatever the rule.
    fn matrix<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        layer: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.layer(layer)?;
        match name {
            "weights" => Ok(post_pre(py, p.w.clone(), p.n_pre, p.n)),
            "feedback" => Ok(post_pre(py, p.y.clone(), p.n_fb, p.n)),
            "biases" => Ok(post_pre(py, p.b.clone(), 1, p.n)),
            "apical_bias" if p.c.len() == p.n => Ok(post_pre(py, p.c.clone(), 1, p.n)),
            "apical_bias" => Ok(post_pre(py, Vec::new(), 0, p.n)),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "matrix name {other:?} is not one of \"weights\", \"biases\", \"feedback\", \"apical_bias\""
            ))),
        }
    }

    /// Tests on `test_examples` MNIST test images (a seeded subset below 10,000), as
    /// `apical eval`: {"error": % (repeat 0, what `apical eval` prints), "errors": [% per
    /// repeat], "confusion": 10x10 counts summed over repeats [true, predicted],
    /// "indices": the test images, "test_examples": n}; with repeats > 1 also "mean" and "sd"
    /// of the repeats' errors.
    #[pyo3(signature = (test_examples=10_000, *, seed=0, threads=None, repeats=1))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        test_examples: usize,
        seed: u64,
        threads: Option<usize>,
        repeats: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        if test_examples == 0 {
            return Err(errors::invalid("test_examples must be at least 1"));
        }
        if repeats == 0 {
            return Err(errors::invalid("repeats must be at least 1"));
        }
        let data = self.mnist()?;
        // As `apical eval --test-examples`: more than the test set is an error, not the
        // whole set quietly.
        if test_examples > data.test.len() {
            return Err(errors::invalid(format!(
                "test_examples {test_examples} is more than the {} test images; give at most {}",
                data.test.len(),
                data.test.len()
            )));
        }
        let net = &self.net;
        let epochs = self.ck.epochs_done;
        let ev = py.detach(|| {
            with_threads(threads, || {
                evaluate_repeats(net, &data.test, seed, epochs, test_examples, repeats)
            })
        })?;
        let d = PyDict::new(py);
        d.set_item("error", ev.errors[0])?;
        d.set_item("errors", ev.errors.clone())?;
        let flat: Vec<u64> = ev.confusion.iter().flatten().copied().collect();
        let conf = ndarray::Array2::from_shape_vec((10, 10), flat).expect("10x10");
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
    /// "soma"/"basal"/"apical"/"rate_hz" {layer: (steps, neurons) array}.
    #[pyo3(signature = (image, phase="forward", steps=None, record=None, *, seed=0, label=None))]
    #[allow(clippy::too_many_arguments)]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        phase: &str,
        steps: Option<usize>,
        record: Option<&Bound<'py, PyAny>>,
        seed: u64,
        label: Option<u8>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cfg = &self.net.model.cfg;
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
                let data = self.mnist()?;
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
        let mut rec = Recorder::new(&record, cfg.neuron.dt)?;
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
        let n_out = cfg.network.n_out;
        if let Some(l) = label.filter(|&l| usize::from(l) >= n_out) {
            return Err(errors::invalid(format!(
                "label {l} is not a class of the model: labels are 0..{}",
                n_out - 1
            )));
        }
        // What the recording will hold, checked before the simulation allocates it: an
        // absurd `steps` is a MemoryError, not an abort of the interpreter.
        let neurons: u64 = cfg.layer_sizes().iter().map(|&n| n as u64).sum();
        let per_step = 8 + 4 * neurons * rec.continuous_variables() as u64;
        let needed = (n as u64).saturating_mul(per_step);
        apical::io::memory::check(needed, &format!("simulate(steps={n}, record={record:?})"))
            .map_err(|e| pyo3::exceptions::PyMemoryError::new_err(e.to_string()))?;
        let net = &self.net;
        let epochs = self.ck.epochs_done;
        let prediction = py.detach(|| {
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
        });
        let names = population_names(cfg);
        rec.into_dict(py, &names, prediction, label, target_start)
    }

    fn __repr__(&self) -> String {
        let sizes: Vec<String> = self.sizes().iter().map(|n| n.to_string()).collect();
        format!(
            "Network({}, {}, epochs_done={}, path={:?})",
            self.net.model.cfg.name,
            sizes.join("-"),
            self.ck.epochs_done,
            self.path.display().to_string()
        )
    }
}

/// The most steps of one `simulate` call: far beyond any phase of the model (hundreds of
/// steps), short of calls that run for hours (ten million steps) with no way to stop them.
const MAX_SIMULATE_STEPS: usize = 1_000_000;

/// Collects the requested variables of every step (an [`Observer`]: reads only).
struct Recorder {
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

impl Recorder {
    /// Variables recorded at every step for every neuron (soma, basal, apical, rate).
    fn continuous_variables(&self) -> usize {
        [self.soma, self.basal, self.apical, self.rate]
            .iter()
            .filter(|&&b| b)
            .count()
    }

    fn new(record: &[String], dt: f64) -> PyResult<Self> {
        let mut r = Recorder {
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

impl Observer for Recorder {
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
}
