//! Segregated dendrites (Guerguiev, Lillicrap & Richards 2017; docs/model.md, sections 5-6):
//! a forward phase, a target phase with the teacher on, and a local update of every layer
//! from the difference of its apical plateau potentials between the two phases.

use crate::base::rng::Rng;
use crate::model::config::FeedbackMode;
use crate::model::learning;
use crate::model::params::LayerParams;
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::{Observer, Phase};
use crate::sim::rules::{feedforward_update, forward_phase};
use crate::sim::schedule::run_phase;
use crate::sim::state::NetState;

/// One training example: forward phase of `l_f` steps, target phase of `l_t` steps teaching
/// `label`, then [`learn`] (sections 5-6). Returns the forward phase's prediction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_example<O: Observer>(
    model: &Model,
    params: &mut [LayerParams],
    state: &mut NetState,
    feedback_rng: &mut Rng,
    image: &[u8],
    label: u8,
    l_f: usize,
    l_t: usize,
    exec: &Exec,
    obs: &mut O,
) -> u8 {
    let predicted = forward_phase(model, params, state, image, label, l_f, exec, obs);
    let window = model.cfg.phases.integration_time;
    run_phase(model, params, state, Phase::Target, l_t, window, exec, obs);
    learn(model, params, state, feedback_rng, exec);
    predicted
}

/// Section 6: errors of every layer from the phase means (eqs. 6.1-6.2, or 6.8 in the
/// backprop feedback mode), then the updates (eqs. 6.5-6.6, 6.9 for learned feedback, 6.7
/// for symmetric feedback), on the threads `exec` gives wide layers.
pub(crate) fn learn(
    model: &Model,
    params: &mut [LayerParams],
    st: &mut NetState,
    feedback_rng: &mut Rng,
    exec: &Exec,
) {
    let cfg = &model.cfg;
    let d = &model.dynamics;
    let lambda_max = cfg.neuron.lambda_max;
    let m_layers = params.len();
    let mode = cfg.learning.feedback_mode;
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
            learning::backprop_error(d, &params[m + 1], &upper[0], &l.forward.c, &mut lower[m]);
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
                &mut params[m],
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
        let threads = exec.parallel(params[m].n).threads;
        feedforward_update(
            threads,
            &mut params[m],
            &st.errors[m],
            &st.presyn[m].mean,
            step,
        );
    }
    if mode == FeedbackMode::Symmetric {
        symmetrize(model, params, feedback_rng);
    }
}

/// Eq. 6.7: Y re-set from the forward weights (symmetric feedback), with fresh noise from
/// `feedback_rng`.
pub(crate) fn symmetrize(model: &Model, params: &mut [LayerParams], feedback_rng: &mut Rng) {
    let l = &model.cfg.learning;
    learning::symmetrize_feedback(
        params,
        model.topology.feedback,
        l.symmetric_noise_sd,
        l.feedback_sparse_scale as f32,
        feedback_rng,
    );
}
