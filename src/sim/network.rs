//! The network: layers stacked on the Poisson input, run through the forward and target
//! phases of a training example (section 5) or the forward phase of a test (section 8).

use crate::base::rng::{stream, Purpose, Rng};
use crate::model::config::{FeedbackMode, ModelConfig};
use crate::model::init::init_params;
use crate::model::learning;
use crate::model::neuron::Dynamics;
use crate::model::params::LayerParams;
use crate::model::readout::predict;
use crate::model::synapse::Kernel;
use crate::sim::exec::Exec;
use crate::sim::observer::{NoObserver, Observer, Phase};
use crate::sim::pace::Pace;
use crate::sim::schedule::run_phase;
use crate::sim::state::NetState;
use crate::sim::team::with_team;
use rayon::prelude::*;
use std::time::Instant;

/// Everything fixed by the model file, derived once.
#[derive(Clone, Debug)]
pub struct Model {
    pub cfg: ModelConfig,
    pub dynamics: Dynamics,
    pub kernel: Kernel,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        let dynamics = Dynamics::new(&cfg.neuron);
        let kernel = Kernel::new(&cfg.synapse, cfg.neuron.dt);
        Model {
            cfg,
            dynamics,
            kernel,
        }
    }

    /// Output units per class.
    pub fn units_per_class(&self) -> usize {
        self.cfg.network.n_out / self.cfg.network.classes
    }

    /// Apical history kept per hidden neuron (stochastic plateau times only).
    pub(crate) fn hist_len(&self) -> usize {
        let p = &self.cfg.phases;
        if p.stochastic_plateau_times {
            p.integration_time + p.plateau_time_max_offset
        } else {
            0
        }
    }
}

/// [`learning::apply_feedforward_update`] with the weight rows of the inputs shared among
/// the `threads` threads of this thread's team (each weight is updated on its own, so the
/// result is the same; rows of silent inputs are skipped as there).
fn shared_feedforward_update(
    threads: usize,
    p: &mut LayerParams,
    e: &[f32],
    s_f: &[f32],
    step: f32,
) {
    let n = p.n;
    with_team(threads, |team| {
        team.for_each_chunk_mut(&mut p.w, n, |j, row| {
            let s = s_f[j];
            if s != 0.0 {
                learning::update_weight_row(row, e, s, step);
            }
        })
    });
    learning::update_bias(&mut p.b, e, step);
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
    /// How the simulation runs (parallel blocks, instruction set); never what it computes.
    pub exec: Exec,
    /// Noise stream of symmetric feedback.
    pub feedback_rng: Rng,
    /// Timings of training examples on the team and on one thread (`exec.adaptive`).
    pub pace: Pace,
}

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
            exec: Exec::default(),
            feedback_rng: stream(seed, Purpose::Feedback, &[]),
            pace: Pace::default(),
        };
        if net.model.cfg.learning.feedback_mode == FeedbackMode::Symmetric {
            net.symmetrize();
        }
        net
    }

    /// Runs this network's training on `threads` threads where its layers are wide enough
    /// to pay ([`Exec::for_threads`]); tests keep running examples in parallel on the
    /// rayon pool. The results do not depend on it.
    pub fn set_threads(&mut self, threads: usize) {
        let cfg = &self.model.cfg;
        self.exec = Exec {
            simd: self.exec.simd,
            ..Exec::for_threads(threads, &cfg.topology(), cfg.training.block_size)
        };
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
    /// With a thread team (`exec.threads` > 1) and `exec.adaptive`, the example runs on the
    /// team or on one thread, whichever [`Pace`] has timed faster (the same result).
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
        let timed = self.exec.threads > 1 && self.exec.adaptive;
        let exec = if timed && !self.pace.use_team() {
            self.exec.sequential()
        } else {
            self.exec
        };
        let started = timed.then(Instant::now);
        run_phase(
            &self.model,
            &self.params,
            &mut self.state,
            Phase::Forward,
            l_f,
            window,
            &exec,
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
            &exec,
            obs,
        );
        self.learn_with(&exec);
        if let Some(t0) = started {
            let steps = (l_f + l_t).max(1) as f64;
            self.pace.record(t0.elapsed().as_secs_f64() / steps);
        }
        ExampleOutcome { predicted }
    }

    /// Section 6: errors of every layer from the phase means, then the updates.
    pub fn learn(&mut self) {
        let exec = self.exec;
        self.learn_with(&exec);
    }

    /// [`Network::learn`] on the threads `exec` gives wide layers.
    fn learn_with(&mut self, exec: &Exec) {
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
            let threads = exec.parallel(self.params[m].n).threads;
            if threads > 1 {
                shared_feedforward_update(
                    threads,
                    &mut self.params[m],
                    &st.errors[m],
                    &st.presyn[m].mean,
                    step,
                );
            } else {
                learning::apply_feedforward_update(
                    &mut self.params[m],
                    &st.errors[m],
                    &st.presyn[m].mean,
                    step,
                );
            }
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
        exec: &Exec,
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
            &exec.sequential(),
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
        let exec = self.exec;
        indices
            .par_iter()
            .map_init(
                || NetState::new(model, seed, Purpose::TestExample, &[key, 0]),
                |st, &idx| {
                    st.reseed(seed, Purpose::TestExample, &[key, idx as u64]);
                    Self::test_example(model, params, st, images(idx), &exec, &mut NoObserver)
                },
            )
            .collect()
    }

    /// One example on a state of its own, without learning, for watching the dynamics with
    /// an observer (the Python package's `Network.simulate`). The streams are those of
    /// `apical eval`'s test of test image `index` after `epochs_done` epochs (repeat 0), so
    /// [`Phase::Test`] with `steps` = l_f_test predicts what that test predicted.
    /// [`Phase::Forward`]: a forward phase of `steps` steps. [`Phase::Target`]: a forward
    /// phase of l_f steps, then `steps` target-phase steps teaching `label`. Returns the
    /// prediction of the (last) forward or test phase.
    #[allow(clippy::too_many_arguments)]
    pub fn simulate<O: Observer>(
        &self,
        image: &[u8],
        index: u64,
        seed: u64,
        epochs_done: usize,
        phase: Phase,
        steps: usize,
        label: u8,
        obs: &mut O,
    ) -> u8 {
        let key = crate::base::rng::Key::Eval { epochs_done }.value();
        let model = &self.model;
        let p = &model.cfg.phases;
        let per_class = model.units_per_class();
        let mut st = NetState::new(model, seed, Purpose::TestExample, &[key, index]);
        st.reset();
        st.input.set_image(image);
        let (exec, first, window) = match phase {
            Phase::Test => (self.exec.sequential(), steps, p.integration_time_test),
            Phase::Forward => (self.exec, steps, p.integration_time),
            Phase::Target => (self.exec, p.l_f, p.integration_time),
        };
        let first_phase = if phase == Phase::Test {
            Phase::Test
        } else {
            Phase::Forward
        };
        let params = &self.params[..];
        run_phase(
            model,
            params,
            &mut st,
            first_phase,
            first,
            window.min(first),
            &exec,
            obs,
        );
        let predicted = predict(&st.output().forward.c, per_class);
        if phase == Phase::Target {
            for (i, g) in st.teach.iter_mut().enumerate() {
                *g = if i / per_class == label as usize {
                    1.0
                } else {
                    0.0
                };
            }
            let w = p.integration_time.min(steps);
            run_phase(model, params, &mut st, Phase::Target, steps, w, &exec, obs);
        }
        predicted
    }

    /// Whether every weight, bias and potential is finite.
    pub fn is_finite(&self) -> bool {
        self.state.is_finite() && self.params.iter().all(|p| p.is_finite())
    }
}
