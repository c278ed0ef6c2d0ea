//! Learning rules: what differs between rules on the same neurons, data, test and traces
//! (docs/model.md, sections 6 and 10; docs/architecture.md, "Adding a rule").
//!
//! A rule owns, for one training example: which phases run and how long (the schedule of
//! the example), what drives the output layer's target (the teacher) and each layer's
//! error, which weights change and how. The network's state and the per-step schedule are
//! shared by all rules. [`crate::sim::network::Network::train_example`] matches the model's
//! [`crate::model::config::LearningRule`] once per example and calls the rule's
//! `train_example`; nothing is dispatched per neuron or per step.
//!
//! The registry is that match (and `Network::learn`'s) plus the enum in the model file's
//! schema: a new rule is one file here, one variant there, one arm in each match.
//!
//! May use: [`crate::base`], [`crate::model`], the rest of [`crate::sim`].

pub mod backprop;
pub(crate) mod batch;
pub mod burstccn;
pub(crate) mod burstccn_spiking;
pub mod burstprop;
pub mod feedback_alignment;
pub(crate) mod gradient;
pub mod guerguiev;

use crate::base::rng::Rng;
use crate::model::config::LearningRule;
use crate::model::learning;
use crate::model::params::{LayerParams, RuleParams};
use crate::model::readout::predict;
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::{Observer, Phase};
use crate::sim::schedule::run_phase;
use crate::sim::state::NetState;
use crate::sim::team::with_team;

/// The learned matrices of the model's rule beyond W, b and Y, drawn from the
/// initialisation stream `rng` after section 7's weights (a rule may also redraw those:
/// the burst rules' `init = "xavier"`). Empty for rules that keep none.
pub(crate) fn init_rule_params(
    model: &Model,
    params: &mut [LayerParams],
    rng: &mut Rng,
) -> RuleParams {
    match model.rule {
        LearningRule::Burstccn => burstccn::init(model, params, rng),
        LearningRule::Burstprop => burstprop::init(model, params, rng),
        LearningRule::Guerguiev | LearningRule::Backprop | LearningRule::FeedbackAlignment => {
            RuleParams::default()
        }
    }
}

/// The forward phase every rule starts an example with: the image on the input, the
/// label's teacher set (eq. 4.3; the segregated-dendrite rule's target phase and the other
/// rules' errors read it), `l_f` steps, and the phase's prediction (eq. 8.1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_phase<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    image: &[u8],
    label: u8,
    l_f: usize,
    exec: &Exec,
    obs: &mut O,
) -> u8 {
    let window = model.cfg.phases.integration_time;
    let per_class = model.units_per_class();
    state.input.set_image(image);
    set_teacher(&mut state.teach, label, per_class);
    run_phase(model, params, state, Phase::Forward, l_f, window, exec, obs);
    predict(&state.output().forward.c, per_class)
}

/// The teaching conductances g_E of `label` (eq. 4.3): 1 on the label's `per_class` output
/// units, 0 elsewhere. The segregated-dendrite rule's target phase drives the output with
/// them; the gradient rules take them as the target y of eq. 10.1.
pub(crate) fn set_teacher(teach: &mut [f32], label: u8, per_class: usize) {
    for (i, g) in teach.iter_mut().enumerate() {
        *g = if i / per_class == label as usize {
            1.0
        } else {
            0.0
        };
    }
}

/// Eqs. 6.5-6.6 (and 10.5-10.6): W <- W - step E s_f^T, b <- b - step E, on `threads`
/// threads of this thread's team when more than one (the weight rows of the inputs shared
/// among them: each weight is updated on its own, so the result is the same; rows of silent
/// inputs are skipped as in [`learning::update_weight_rows`]).
pub(crate) fn feedforward_update(
    threads: usize,
    p: &mut LayerParams,
    e: &[f32],
    s_f: &[f32],
    step: f32,
) {
    update_rows(threads, p, e, s_f, step);
    learning::update_bias(&mut p.b, e, step);
}

/// W <- W - step E s_f^T on `threads` threads of this thread's team (one thread: in input
/// order); the biases are left to the caller.
pub(crate) fn update_rows(threads: usize, p: &mut LayerParams, e: &[f32], s_f: &[f32], step: f32) {
    if threads <= 1 {
        learning::update_weight_rows(p, e, s_f, step);
        return;
    }
    let n = p.n;
    with_team(threads, |team| {
        team.for_each_chunk_mut(&mut p.w, n, |j, row| {
            let s = s_f[j];
            if s != 0.0 {
                learning::update_weight_row(row, e, s, step);
            }
        })
    });
}
