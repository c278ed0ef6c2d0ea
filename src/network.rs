//! The network: layers stacked on the Poisson input, run through the forward and target
//! phases of a training example (section 5) or the forward phase of a test (section 8).

use crate::config::{FeedbackMode, FeedbackSource, ModelConfig};
use crate::init::init_params;
use crate::input::PoissonInput;
use crate::layer::{LayerParams, LayerState};
use crate::learning;
use crate::neuron::Dynamics;
use crate::rng::{stream, LaneRng, Purpose, Rng};
use crate::synapse::{Kernel, PresynapticWindow};
use rand_distr::{Distribution, InverseGaussian, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Everything fixed by the model file, derived once.
#[derive(Clone, Debug)]
pub struct Model {
    pub cfg: ModelConfig,
    pub dynamics: Dynamics,
    pub kernel: Kernel,
    /// Dense baseline (benchmarks only): B = W s every step over all inputs, as the
    /// reference computes it, instead of the event-driven update. Same model.
    pub dense: bool,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        let dynamics = Dynamics::new(&cfg.neuron);
        let kernel = Kernel::new(&cfg.synapse, cfg.neuron.dt);
        Model {
            cfg,
            dynamics,
            kernel,
            dense: false,
        }
    }

    pub fn n_layers(&self) -> usize {
        self.cfg.network.hidden.len() + 1
    }

    /// Output units per class.
    pub fn units_per_class(&self) -> usize {
        self.cfg.network.n_out / 10
    }

    /// Apical history kept per hidden neuron (stochastic plateau times only).
    fn hist_len(&self) -> usize {
        let p = &self.cfg.phases;
        if p.stochastic_plateau_times {
            p.integration_time + p.plateau_time_max_offset
        } else {
            0
        }
    }
}

/// Which phase a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Forward,
    Target,
    Test,
}

/// What an observer is told after every step (for recording traces).
pub struct StepInfo<'a> {
    pub phase: Phase,
    /// Step within the phase.
    pub step: usize,
    /// Steps since the state was last reset.
    pub time_step: u64,
    pub state: &'a NetState,
}

/// Watches a simulation without changing it. `NoObserver` compiles to nothing.
///
/// `on_step` and `on_phase_end` are called by [`run_phase`]; the per-example and per-epoch
/// hooks by [`crate::train::Trainer::run`] (training only: test phases never reach them).
/// Epochs are 1-based, examples are 0-based positions in the epoch.
pub trait Observer {
    fn on_step(&mut self, _info: &StepInfo<'_>) {}
    /// Whether `on_step` reads the apical potentials A. When no observer does, A does not
    /// drive the soma (g_A = 0) and plateau times are fixed, A is only computed in the
    /// integration windows, and elsewhere holds the value of its last window.
    fn reads_apical(&self) -> bool {
        true
    }
    fn on_phase_end(&mut self, _phase: Phase, _state: &NetState) {}
    /// An epoch starts (or resumes at example `first`) with `n_examples` examples.
    fn on_epoch_start(
        &mut self,
        _epoch: usize,
        _first: usize,
        _n_examples: usize,
        _params: &[LayerParams],
    ) {
    }
    /// Training example `example` of `epoch` (training image `image`) is about to run.
    fn on_example_start(&mut self, _epoch: usize, _example: usize, _image: usize, _label: u8) {}
    /// The example ran: its forward-phase prediction; `params` after learning.
    fn on_example_end(&mut self, _predicted: u8, _params: &[LayerParams]) {}
    /// The epoch ended and was tested.
    fn on_epoch_end(&mut self, _record: &crate::checkpoint::EpochRecord, _params: &[LayerParams]) {}
}

/// An observer that does nothing.
pub struct NoObserver;
impl Observer for NoObserver {
    fn reads_apical(&self) -> bool {
        false
    }
}

/// Two observers side by side (e.g. a recorder and a test's own counter).
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        self.0.on_step(info);
        self.1.on_step(info);
    }
    fn reads_apical(&self) -> bool {
        self.0.reads_apical() || self.1.reads_apical()
    }
    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        self.0.on_phase_end(phase, state);
        self.1.on_phase_end(phase, state);
    }
    fn on_epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        self.0.on_epoch_start(epoch, first, n, params);
        self.1.on_epoch_start(epoch, first, n, params);
    }
    fn on_example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        self.0.on_example_start(epoch, example, image, label);
        self.1.on_example_start(epoch, example, image, label);
    }
    fn on_example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        self.0.on_example_end(predicted, params);
        self.1.on_example_end(predicted, params);
    }
    fn on_epoch_end(&mut self, record: &crate::checkpoint::EpochRecord, params: &[LayerParams]) {
        self.0.on_epoch_end(record, params);
        self.1.on_epoch_end(record, params);
    }
}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        (**self).on_step(info);
    }
    fn reads_apical(&self) -> bool {
        (**self).reads_apical()
    }
    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        (**self).on_phase_end(phase, state);
    }
    fn on_epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        (**self).on_epoch_start(epoch, first, n, params);
    }
    fn on_example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        (**self).on_example_start(epoch, example, image, label);
    }
    fn on_example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        (**self).on_example_end(predicted, params);
    }
    fn on_epoch_end(&mut self, record: &crate::checkpoint::EpochRecord, params: &[LayerParams]) {
        (**self).on_epoch_end(record, params);
    }
}

/// The dynamic state of a network: potentials, PSP histories, random streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetState {
    pub input: PoissonInput,
    pub input_rng: LaneRng,
    pub layers: Vec<LayerState>,
    /// s_f of each layer: window-mean PSP of its feedforward input (eq. 5.6).
    pub presyn: Vec<PresynapticWindow>,
    /// s_A,f of each hidden layer's feedback input (learned feedback only, else empty).
    pub presyn_fb: Vec<PresynapticWindow>,
    /// Plateau time offsets of each hidden layer (stochastic plateau times).
    pub plateau_offsets: Vec<Vec<u8>>,
    pub plateau_rng: Rng,
    /// Teaching conductance g_E of each output unit in the target phase.
    pub teach: Vec<f32>,
    /// Errors of each layer at the last learning step.
    pub errors: Vec<Vec<f32>>,
    /// Steps since the last reset.
    pub time_step: u64,
}

impl NetState {
    /// A zero state whose streams are keyed by `(seed, purpose, key)`.
    pub fn new(model: &Model, seed: u64, purpose: Purpose, key: &[u64]) -> Self {
        let cfg = &model.cfg;
        let sizes = cfg.layer_sizes();
        let m_layers = sizes.len();
        let hist = model.hist_len();
        let block = cfg.training.block_size;
        let mut layers: Vec<LayerState> = sizes
            .iter()
            .enumerate()
            .map(|(m, &n)| {
                let hidden = m + 1 < m_layers;
                LayerState::new(
                    &model.kernel,
                    n,
                    hidden,
                    block,
                    if hidden { hist } else { 0 },
                    |b| block_stream(seed, purpose, key, m, b),
                )
            })
            .collect();
        if model.dense {
            for (m, l) in layers.iter_mut().enumerate() {
                let n_pre = if m == 0 {
                    cfg.network.n_in
                } else {
                    sizes[m - 1]
                };
                l.set_dense(&model.kernel, Some(n_pre));
            }
        }
        let window = cfg.phases.integration_time;
        let presyn = (0..m_layers)
            .map(|m| {
                let n_pre = if m == 0 {
                    cfg.network.n_in
                } else {
                    sizes[m - 1]
                };
                PresynapticWindow::new(&model.kernel, n_pre, window)
            })
            .collect();
        let presyn_fb = if cfg.learning.feedback_mode == FeedbackMode::Learned {
            (0..m_layers - 1)
                .map(|m| PresynapticWindow::new(&model.kernel, fb_size(cfg, &sizes, m), window))
                .collect()
        } else {
            Vec::new()
        };
        NetState {
            input: PoissonInput::new(
                cfg.network.n_in,
                cfg.neuron.lambda_max,
                cfg.input.spike_draw,
            ),
            input_rng: input_stream(seed, purpose, key),
            layers,
            presyn,
            presyn_fb,
            plateau_offsets: sizes[..m_layers - 1].iter().map(|&n| vec![0; n]).collect(),
            plateau_rng: stream(seed, Purpose::Plateau, key),
            teach: vec![0.0; cfg.network.n_out],
            errors: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            time_step: 0,
        }
    }

    /// Zero potentials and empty spike/PSP histories, input included (section 5).
    pub fn reset(&mut self) {
        self.input.clear();
        for l in &mut self.layers {
            l.reset();
        }
        for p in self.presyn.iter_mut().chain(self.presyn_fb.iter_mut()) {
            p.reset();
        }
        self.time_step = 0;
    }

    /// New random streams keyed by `(seed, purpose, key)`, as `new` would give.
    pub fn reseed(&mut self, seed: u64, purpose: Purpose, key: &[u64]) {
        self.input_rng = input_stream(seed, purpose, key);
        self.plateau_rng = stream(seed, Purpose::Plateau, key);
        for (m, l) in self.layers.iter_mut().enumerate() {
            l.reseed(|b| block_stream(seed, purpose, key, m, b));
        }
    }

    pub fn output(&self) -> &LayerState {
        self.layers.last().expect("a network has an output layer")
    }

    /// Whether every potential is finite.
    pub fn is_finite(&self) -> bool {
        self.layers.iter().all(|l| l.is_finite())
    }
}

fn fb_size(cfg: &ModelConfig, sizes: &[usize], m: usize) -> usize {
    match cfg.network.feedback {
        FeedbackSource::Broadcast => cfg.network.n_out,
        FeedbackSource::NextLayer => sizes[m + 1],
    }
}

fn input_stream(seed: u64, purpose: Purpose, key: &[u64]) -> LaneRng {
    let mut k = key.to_vec();
    k.push(u64::MAX);
    LaneRng::new(stream(seed, purpose, &k))
}

fn block_stream(seed: u64, purpose: Purpose, key: &[u64], layer: usize, block: usize) -> Rng {
    let mut k = key.to_vec();
    k.push(((layer as u64) << 32) | block as u64);
    stream(seed, purpose, &k)
}

/// Class scores: the mean of each class's block of output values (section 1).
pub fn class_scores(values: &[f32], per_class: usize) -> [f32; 10] {
    let mut s = [0.0f32; 10];
    for (c, v) in s.iter_mut().enumerate() {
        let blk = &values[c * per_class..(c + 1) * per_class];
        *v = blk.iter().sum::<f32>() / per_class as f32;
    }
    s
}

/// Eq. 8.1: the predicted class, argmax of the class-grouped mean somatic potential (the
/// first maximum on ties).
pub fn predict(c_mean: &[f32], per_class: usize) -> u8 {
    let s = class_scores(c_mean, per_class);
    let mut best = 0;
    for (i, &v) in s.iter().enumerate() {
        if v > s[best] {
            best = i;
        }
    }
    best as u8
}

/// Runs one phase of `len` steps on the image already set on the input.
/// `learn` keeps the presynaptic window means s_f (forward phase of training).
///
/// On x86-64 CPUs with AVX2 or AVX-512 the same code is run compiled for them (wider
/// vectors, no FMA: every operation rounds as in the SSE2 build, so the results are
/// bit-identical; see [`crate::simd`]).
#[allow(clippy::too_many_arguments)]
pub fn run_phase<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    len: usize,
    window: usize,
    parallel_min: usize,
    obs: &mut O,
) {
    #[cfg(target_arch = "x86_64")]
    match crate::simd::level() {
        crate::simd::Level::Avx512 => {
            // SAFETY: the CPU has AVX-512 F/VL/BW/DQ, checked at run time by simd::level.
            unsafe {
                run_phase_avx512(model, params, state, phase, len, window, parallel_min, obs)
            };
            return;
        }
        crate::simd::Level::Avx2 => {
            // SAFETY: the CPU has AVX2, checked at run time by simd::level.
            unsafe { run_phase_avx2(model, params, state, phase, len, window, parallel_min, obs) };
            return;
        }
        crate::simd::Level::Baseline => {}
    }
    run_phase_impl(model, params, state, phase, len, window, parallel_min, obs);
}

/// [`run_phase`] compiled for a wider instruction set (`$features`), still without fused
/// multiply-add.
macro_rules! run_phase_compiled_for {
    ($name:ident, $features:literal) => {
        /// [`run_phase`] compiled with the target features in its attribute.
        ///
        /// # Safety
        /// Only call on a CPU that has those features.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name<O: Observer>(
            model: &Model,
            params: &[LayerParams],
            state: &mut NetState,
            phase: Phase,
            len: usize,
            window: usize,
            parallel_min: usize,
            obs: &mut O,
        ) {
            run_phase_impl(model, params, state, phase, len, window, parallel_min, obs);
        }
    };
}
run_phase_compiled_for!(run_phase_avx2, "avx2");
run_phase_compiled_for!(run_phase_avx512, "avx2,avx512f,avx512vl,avx512bw,avx512dq");

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_phase_impl<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    len: usize,
    window: usize,
    parallel_min: usize,
    obs: &mut O,
) {
    let m_layers = params.len();
    let kernel = &model.kernel;
    let d = &model.dynamics;
    let broadcast = model.cfg.network.feedback == FeedbackSource::Broadcast;
    let learn = phase == Phase::Forward;
    let track_presyn = phase != Phase::Test;
    // A drives the soma only when g_A > 0, and the stochastic plateau times keep its
    // history; otherwise it is read only by the window means (and maybe the observer).
    let apical_always =
        d.g_a != 0.0 || model.cfg.phases.stochastic_plateau_times || obs.reads_apical();
    if learn {
        for p in state.presyn.iter_mut().chain(state.presyn_fb.iter_mut()) {
            p.start_phase();
        }
    }
    for t in 0..len {
        let to_end = len - 1 - t;
        let in_window = to_end < window;
        let NetState {
            input,
            input_rng,
            layers,
            presyn,
            presyn_fb,
            teach,
            ..
        } = state;
        input.step(input_rng);
        for m in 0..m_layers {
            let (below, cur) = layers.split_at_mut(m);
            let in_ev: &[u32] = if m == 0 {
                &input.events
            } else {
                &below[m - 1].events
            };
            let teach = (phase == Phase::Target && m + 1 == m_layers).then_some(&teach[..]);
            let parallel = params[m].n >= parallel_min;
            let need_apical = in_window || apical_always;
            cur[0].step(
                &params[m],
                kernel,
                d,
                in_ev,
                teach,
                in_window,
                need_apical,
                parallel,
            );
            if track_presyn {
                presyn[m].add_step(kernel, in_ev, if learn { to_end } else { usize::MAX });
            }
        }
        // Feedback reaches the apical compartments at the next step (section 2).
        for m in 0..m_layers - 1 {
            let (lower, upper) = layers.split_at_mut(m + 1);
            let src = if broadcast { m_layers - 1 } else { m + 1 };
            let fb_ev = &upper[src - m - 1].events;
            lower[m].push_feedback(&params[m], kernel, fb_ev);
            if let Some(pf) = presyn_fb.get_mut(m) {
                // A(t) sees the feedback PSP of step t-1: shift the window by one step.
                let q = if learn && to_end >= 1 {
                    to_end - 1
                } else {
                    usize::MAX
                };
                pf.add_step(kernel, fb_ev, q);
            }
        }
        state.time_step += 1;
        obs.on_step(&StepInfo {
            phase,
            step: t,
            time_step: state.time_step,
            state,
        });
    }
    let forward = phase != Phase::Target;
    let stochastic = model.cfg.phases.stochastic_plateau_times && phase != Phase::Test;
    if stochastic {
        draw_plateau_offsets(model, state);
    }
    for (m, l) in state.layers.iter_mut().enumerate() {
        let offsets = (stochastic && m + 1 < m_layers).then(|| &state.plateau_offsets[m][..]);
        l.end_phase(forward, window, offsets);
    }
    obs.on_phase_end(phase, state);
}

/// Eq. 5.5: per hidden neuron, offset = min(|trunc(N(0, sd))|, max) steps before phase end.
fn draw_plateau_offsets(model: &Model, state: &mut NetState) {
    let p = &model.cfg.phases;
    let normal = Normal::new(0.0, p.plateau_time_sd).ok();
    for offs in &mut state.plateau_offsets {
        for o in offs.iter_mut() {
            let x = normal
                .as_ref()
                .map_or(0.0, |n| n.sample(&mut state.plateau_rng));
            *o = (x.trunc().abs() as usize).min(p.plateau_time_max_offset) as u8;
        }
    }
}

/// Phase lengths of one epoch: all forward lengths, then all target lengths (section 5).
pub fn phase_lengths(cfg: &ModelConfig, n: usize, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let p = &cfg.phases;
    if !p.use_rand_phase_lengths {
        return (vec![p.l_f; n], vec![p.l_t; n]);
    }
    let wald = InverseGaussian::new(p.wald_mean, p.wald_shape).expect("validated Wald parameters");
    let mut draw = |base: usize| -> Vec<usize> {
        (0..n)
            .map(|_| base + wald.sample(rng).floor().clamp(0.0, 1e6) as usize)
            .collect()
    };
    let f = draw(p.l_f);
    let t = draw(p.l_t);
    (f, t)
}

/// The outcome of one training example.
#[derive(Clone, Copy, Debug)]
pub struct ExampleOutcome {
    /// Forward-phase prediction (training error counts these).
    pub predicted: u8,
}

/// A network: its model, learned parameters and state.
#[derive(Clone, Debug)]
pub struct Network {
    pub model: Model,
    pub params: Vec<LayerParams>,
    pub state: NetState,
    /// Layers at least this wide update their neuron blocks in parallel.
    pub parallel_min: usize,
    /// Noise stream of symmetric feedback.
    pub feedback_rng: Rng,
}

/// Default width from which a layer's blocks are updated in parallel (see docs/performance.md).
pub const DEFAULT_PARALLEL_MIN: usize = usize::MAX;

impl Network {
    /// A fresh network with weights drawn from the seed's initialisation stream.
    pub fn new(cfg: ModelConfig, seed: u64) -> Self {
        let model = Model::new(cfg);
        let mut init_rng = stream(seed, Purpose::Init, &[]);
        let params = init_params(&model.cfg, &mut init_rng);
        Self::from_params(model, params, seed)
    }

    /// A network with given parameters and a zero state for epoch 0.
    pub fn from_params(model: Model, params: Vec<LayerParams>, seed: u64) -> Self {
        let state = NetState::new(&model, seed, Purpose::TrainSpikes, &[0]);
        let mut net = Network {
            model,
            params,
            state,
            parallel_min: DEFAULT_PARALLEL_MIN,
            feedback_rng: stream(seed, Purpose::Feedback, &[]),
        };
        if net.model.cfg.learning.feedback_mode == FeedbackMode::Symmetric {
            net.symmetrize();
        }
        net
    }

    /// Switches the dense baseline on or off (see [`Model::dense`]); the state's input
    /// histories start empty.
    pub fn set_dense(&mut self, on: bool) {
        self.model.dense = on;
        let cfg = &self.model.cfg;
        let sizes = cfg.layer_sizes();
        for (m, l) in self.state.layers.iter_mut().enumerate() {
            let n_pre = if m == 0 {
                cfg.network.n_in
            } else {
                sizes[m - 1]
            };
            l.set_dense(&self.model.kernel, on.then_some(n_pre));
        }
    }

    /// Resets the state and gives it the training streams of `epoch`.
    pub fn start_epoch(&mut self, seed: u64, epoch: usize) {
        self.state.reset();
        self.state
            .reseed(seed, Purpose::TrainSpikes, &[epoch as u64]);
    }

    fn symmetrize(&mut self) {
        let l = &self.model.cfg.learning;
        learning::symmetrize_feedback(
            &mut self.params,
            self.model.cfg.network.feedback,
            l.symmetric_noise_sd,
            l.feedback_sparse_scale as f32,
            &mut self.feedback_rng,
        );
    }

    /// One training example: forward phase, target phase, then learning (sections 5-6).
    pub fn train_example<O: Observer>(
        &mut self,
        image: &[u8],
        label: u8,
        l_f: usize,
        l_t: usize,
        obs: &mut O,
    ) -> ExampleOutcome {
        let window = self.model.cfg.phases.integration_time;
        let per_class = self.model.units_per_class();
        {
            self.state.input.set_image(image);
        }
        for (i, g) in self.state.teach.iter_mut().enumerate() {
            *g = if i / per_class == label as usize {
                1.0
            } else {
                0.0
            };
        }
        let pm = self.parallel_min;
        run_phase(
            &self.model,
            &self.params,
            &mut self.state,
            Phase::Forward,
            l_f,
            window,
            pm,
            obs,
        );
        let predicted = predict(&self.state.output().forward.c, per_class);
        run_phase(
            &self.model,
            &self.params,
            &mut self.state,
            Phase::Target,
            l_t,
            window,
            pm,
            obs,
        );
        self.learn();
        ExampleOutcome { predicted }
    }

    /// Section 6: errors of every layer from the phase means, then the updates.
    pub fn learn(&mut self) {
        let cfg = &self.model.cfg;
        let d = &self.model.dynamics;
        let lambda_max = cfg.neuron.lambda_max;
        let m_layers = self.params.len();
        let mode = cfg.learning.feedback_mode;
        let st = &mut self.state;
        // All errors first, from the means, top down (backprop mode needs the one above).
        {
            let out = &st.layers[m_layers - 1];
            learning::output_error(
                d,
                &out.target.rate,
                &out.forward.c,
                &mut st.errors[m_layers - 1],
            );
        }
        for m in (0..m_layers - 1).rev() {
            let (lower, upper) = st.errors.split_at_mut(m + 1);
            let l = &st.layers[m];
            if mode == FeedbackMode::Backprop {
                learning::backprop_error(
                    d,
                    &self.params[m + 1],
                    &upper[0],
                    &l.forward.c,
                    &mut lower[m],
                );
            } else {
                learning::hidden_error(d, &l.target.a, &l.forward.a, &l.forward.c, &mut lower[m]);
            }
        }
        // Updates, output layer first, then down; learned Y before W of the same layer.
        for m in (0..m_layers).rev() {
            let hidden = m + 1 < m_layers;
            if hidden && mode == FeedbackMode::Learned {
                let l = &st.layers[m];
                let eta_b = cfg.learning.eta_feedback[m] as f32;
                let mut e_inv = vec![0.0; l.n];
                learning::learned_feedback_update(
                    d,
                    &mut self.params[m],
                    &l.forward.c,
                    &l.forward.a,
                    &st.presyn_fb[m].mean,
                    eta_b,
                    cfg.learning.feedback_bias,
                    &mut e_inv,
                );
            }
            if hidden && !cfg.learning.hidden_learning {
                continue;
            }
            let p = if hidden {
                learning::p_hidden(lambda_max)
            } else {
                learning::p_final(lambda_max)
            };
            let step = (cfg.learning.eta[m] * p) as f32;
            learning::apply_feedforward_update(
                &mut self.params[m],
                &st.errors[m],
                &st.presyn[m].mean,
                step,
            );
        }
        if mode == FeedbackMode::Symmetric {
            self.symmetrize();
        }
    }

    /// Tests one image on a state of its own (section 8): reset, one forward phase of
    /// l_f_test steps, prediction from the last integration_time_test steps.
    pub fn test_example<O: Observer>(
        model: &Model,
        params: &[LayerParams],
        state: &mut NetState,
        image: &[u8],
        obs: &mut O,
    ) -> u8 {
        let p = &model.cfg.phases;
        state.reset();
        {
            state.input.set_image(image);
        }
        run_phase(
            model,
            params,
            state,
            Phase::Test,
            p.l_f_test,
            p.integration_time_test,
            usize::MAX,
            obs,
        );
        predict(&state.output().forward.c, model.units_per_class())
    }

    /// Predictions for `images(i)` of the given test indices, in parallel across examples.
    /// Example i uses streams keyed by (key, index), so the result does not depend on the
    /// thread count or the order of `indices`.
    pub fn evaluate<'a, F>(&self, seed: u64, key: u64, indices: &[usize], images: F) -> Vec<u8>
    where
        F: Fn(usize) -> &'a [u8] + Sync,
    {
        let model = &self.model;
        let params = &self.params[..];
        indices
            .par_iter()
            .map_init(
                || NetState::new(model, seed, Purpose::TestExample, &[key, 0]),
                |st, &idx| {
                    st.reseed(seed, Purpose::TestExample, &[key, idx as u64]);
                    Self::test_example(model, params, st, images(idx), &mut NoObserver)
                },
            )
            .collect()
    }

    /// Whether every weight, bias and potential is finite.
    pub fn is_finite(&self) -> bool {
        self.state.is_finite() && self.params.iter().all(|p| p.is_finite())
    }
}
