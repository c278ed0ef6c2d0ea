//! The network: layers stacked on the Poisson input, run through the forward and target
//! phases of a training example (section 5) or the forward phase of a test (section 8).

use crate::base::rng::{stream, Purpose, Rng};
use crate::model::config::LearningRule;
use crate::model::config::{FeedbackMode, ModelConfig};
use crate::model::init::init_params;
use crate::model::params::{LayerParams, RuleParams};
use crate::model::readout::predict;
pub use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::{NoObserver, Observer, Phase};
use crate::sim::pace::Pace;
use crate::sim::rules;
use crate::sim::rules::batch::{self, BatchScratch};
use crate::sim::rules::gradient::Feedback;
use crate::sim::schedule::run_phase;
use crate::sim::state::NetState;
use rayon::prelude::*;
use std::time::Instant;

/// The outcome of one training example.
#[derive(Clone, Copy, Debug)]
pub struct ExampleOutcome {
    /// Forward-phase prediction (training error counts these).
    pub predicted: u8,
    /// Steps the rule simulated for the example (both phases of the segregated-dendrite
    /// rule, the one forward phase of the others): the denominator of the rates in metrics.
    pub steps: usize,
}

/// A network: its model, learned parameters and state.
#[derive(Clone, Debug)]
pub struct Network {
    pub model: Model,
    pub params: Vec<LayerParams>,
    /// Learned matrices of the rule beyond W, b and Y (BurstCCN's Q; empty otherwise).
    pub rule_params: RuleParams,
    pub state: NetState,
    /// How the simulation runs (parallel blocks, instruction set); never what it computes.
    pub exec: Exec,
    /// Noise stream of symmetric feedback.
    pub feedback_rng: Rng,
    /// Timings of training examples on the team and on one thread (`exec.adaptive`).
    pub pace: Pace,
    /// The minibatch being gathered (`[training] batch_size` > 1; empty otherwise).
    pub(crate) batch: BatchScratch,
}

impl Network {
    /// A fresh network with weights drawn from the seed's initialisation stream.
    pub fn new(cfg: ModelConfig, seed: u64) -> Self {
        let model = Model::new(cfg);
        let mut init_rng = stream(seed, Purpose::Init, &[]);
        let mut params = init_params(&model.cfg, &mut init_rng);
        let rule_params = rules::init_rule_params(&model, &mut params, &mut init_rng);
        let mut net = Self::from_params(model, params, seed);
        net.rule_params = rule_params;
        net
    }

    /// A network with given parameters and a zero state for epoch 0.
    pub fn from_params(model: Model, params: Vec<LayerParams>, seed: u64) -> Self {
        let state = NetState::new(&model, seed, Purpose::TrainSpikes, &[0]);
        let mut net = Network {
            model,
            params,
            rule_params: RuleParams::default(),
            state,
            exec: Exec::default(),
            feedback_rng: stream(seed, Purpose::Feedback, &[]),
            pace: Pace::default(),
            batch: BatchScratch::default(),
        };
        if net.model.cfg.learning.feedback_mode == FeedbackMode::Symmetric {
            rules::guerguiev::symmetrize(&net.model, &mut net.params, &mut net.feedback_rng);
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
            ..Exec::for_threads(threads, &self.model.topology, cfg.training.block_size)
        };
    }

    /// Resets the state and gives it the training streams of `epoch`.
    pub fn start_epoch(&mut self, seed: u64, epoch: usize) {
        self.state.reset();
        self.state
            .reseed(seed, Purpose::TrainSpikes, &[epoch as u64]);
        self.state.burst.start_epoch();
    }

    /// One training example under the model's learning rule ([`crate::sim::rules`]): for the
    /// segregated-dendrite rule a forward phase of `l_f` steps, a target phase of `l_t` steps
    /// and learning (sections 5-6); for the gradient rules of section 10 one forward phase of
    /// `l_f` steps and learning (`l_t` is not used). With a thread team (`exec.threads` > 1)
    /// and `exec.adaptive`, the example runs on the team or on one thread, whichever [`Pace`]
    /// has timed faster (the same result).
    ///
    /// Not generic: the simulation is compiled once, here, for all callers; to follow the
    /// steps, [`Network::train_example_observed`].
    pub fn train_example(
        &mut self,
        image: &[u8],
        label: u8,
        l_f: usize,
        l_t: usize,
    ) -> ExampleOutcome {
        self.train_example_observed(image, label, l_f, l_t, &mut NoObserver)
    }

    /// [`Network::train_example`] with `obs` following every step. Generic in the observer
    /// (the step loop calls it without dynamic dispatch), so each observer type compiles the
    /// simulation anew where it is used.
    pub fn train_example_observed<O: Observer>(
        &mut self,
        image: &[u8],
        label: u8,
        l_f: usize,
        l_t: usize,
        obs: &mut O,
    ) -> ExampleOutcome {
        let timed = self.exec.threads > 1 && self.exec.adaptive;
        let exec = if timed && !self.pace.use_team() {
            self.exec.sequential()
        } else {
            self.exec
        };
        let started = timed.then(Instant::now);
        let (model, params, state) = (&self.model, &mut self.params[..], &mut self.state);
        let rule_params = &mut self.rule_params;
        let (predicted, steps) = match model.rule {
            LearningRule::Guerguiev => (
                rules::guerguiev::train_example(
                    model,
                    params,
                    state,
                    &mut self.feedback_rng,
                    image,
                    label,
                    l_f,
                    l_t,
                    &exec,
                    obs,
                ),
                l_f + l_t,
            ),
            LearningRule::Backprop => (
                rules::backprop::train_example(model, params, state, image, label, l_f, &exec, obs),
                l_f,
            ),
            LearningRule::FeedbackAlignment => (
                rules::feedback_alignment::train_example(
                    model, params, state, image, label, l_f, &exec, obs,
                ),
                l_f,
            ),
            LearningRule::Burstccn if model.cfg.draws_bursts() => (
                rules::burstccn_spiking::train_example(
                    model,
                    params,
                    rule_params,
                    state,
                    image,
                    label,
                    l_f,
                    &exec,
                    obs,
                ),
                l_f,
            ),
            LearningRule::Burstccn => (
                rules::burstccn::train_example(
                    model,
                    params,
                    rule_params,
                    state,
                    image,
                    label,
                    l_f,
                    &exec,
                    obs,
                ),
                l_f,
            ),
            LearningRule::Burstprop => (
                rules::burstprop::train_example(
                    model, params, state, image, label, l_f, &exec, obs,
                ),
                l_f,
            ),
        };
        if let Some(t0) = started {
            self.pace
                .record(t0.elapsed().as_secs_f64() / steps.max(1) as f64);
        }
        ExampleOutcome { predicted, steps }
    }

    /// Adds a training example to the minibatch being gathered ([`Network::train_batch`]).
    pub fn push_batch_example(&mut self, image: &[u8], label: u8) {
        self.batch.push(&self.model, &mut self.state, image, label);
    }

    /// Examples gathered for the next [`Network::train_batch`].
    pub fn batch_len(&self) -> usize {
        self.batch.len
    }

    /// Trains the gathered minibatch (`[training] batch_size` > 1; docs/model.md, section
    /// 13): every example forward on the current weights, then the mean of their updates,
    /// applied once. Writes each example's forward prediction, in order, to `predicted`;
    /// `l_f[i]` is example i's forward-phase length (the firing rates count its steps).
    /// Only for the rules that allow minibatches on the rate network (the model file's
    /// check refuses the others).
    pub fn train_batch(&mut self, l_f: &[usize], predicted: &mut Vec<u8>) {
        assert_eq!(l_f.len(), self.batch.len, "one phase length per example");
        let (model, params, state) = (&self.model, &mut self.params[..], &mut self.state);
        let b = &mut self.batch;
        match model.rule {
            LearningRule::Backprop => {
                batch::train_gradient(model, params, state, b, l_f, predicted, Feedback::Transpose)
            }
            LearningRule::FeedbackAlignment => {
                batch::train_gradient(model, params, state, b, l_f, predicted, Feedback::Fixed)
            }
            LearningRule::Burstccn => {
                let rule = &mut self.rule_params;
                batch::train_burstccn(model, params, rule, state, b, l_f, predicted)
            }
            LearningRule::Burstprop => {
                batch::train_burstprop(model, params, state, b, l_f, predicted)
            }
            LearningRule::Guerguiev => {
                unreachable!("training.batch_size > 1 is refused for the guerguiev rule")
            }
        }
    }

    /// Whether every value the last minibatch computed is finite.
    pub(crate) fn batch_is_finite(&self) -> bool {
        self.batch.is_finite()
    }

    /// The learning step of the model's rule from the state the last phases left (for the
    /// segregated-dendrite rule, section 6: errors from the phase means, then the updates).
    pub fn learn(&mut self) {
        let exec = self.exec;
        let (model, params, state) = (&self.model, &mut self.params[..], &mut self.state);
        match model.rule {
            LearningRule::Guerguiev => {
                rules::guerguiev::learn(model, params, state, &mut self.feedback_rng, &exec)
            }
            LearningRule::Backprop => rules::backprop::learn(model, params, state, &exec),
            LearningRule::FeedbackAlignment => {
                rules::feedback_alignment::learn(model, params, state, &exec)
            }
            LearningRule::Burstccn if model.cfg.draws_bursts() => {
                // From the last phase's spike log (eqs. 11.13-11.15).
                let rule = &mut self.rule_params;
                rules::burstccn_spiking::prepare(model, params, rule, state);
                rules::burstccn::apply_updates(model, params, rule, state, &exec)
            }
            LearningRule::Burstccn => {
                rules::burstccn::learn(model, params, &mut self.rule_params, state, &exec)
            }
            LearningRule::Burstprop => rules::burstprop::learn(model, params, state, &exec),
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

    /// [`Network::test_example`] without an observer, compiled once here (not in each crate
    /// that instantiates the generic [`Network::evaluate`]).
    fn test_unobserved(
        model: &Model,
        params: &[LayerParams],
        state: &mut NetState,
        image: &[u8],
        exec: &Exec,
    ) -> u8 {
        Self::test_example(model, params, state, image, exec, &mut NoObserver)
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
                    Self::test_unobserved(model, params, st, images(idx), &exec)
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
            rules::set_teacher(&mut st.teach, label, per_class);
            let w = p.integration_time.min(steps);
            run_phase(model, params, &mut st, Phase::Target, steps, w, &exec, obs);
        }
        predicted
    }

    /// Whether every weight, bias, rule matrix and potential is finite.
    pub fn is_finite(&self) -> bool {
        self.state.is_finite()
            && self.params.iter().all(|p| p.is_finite())
            && self.rule_params.is_finite()
    }
}
