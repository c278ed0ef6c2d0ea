//! Burstprop (Payeur, Guerguiev, Zenke, Richards & Naud, Nat. Neurosci. 2021; docs/model.md,
//! section 12) on the rate network, in the discrete-time ("ensemble") form of the authors'
//! code: one phase per example; every unit's event rate e is its sigmoid unit's output, its
//! burst probability is set by the bursts of the layer above through Y (the output's by the
//! teacher), and every weight follows the bursts with the teacher minus the bursts the same
//! network makes without it. No state beyond W, b and Y.
//!
//! Units as BurstCCN's (burstccn.rs): the rule computes in the paper's units and converts
//! the weight steps. The equations it shares with BurstCCN are BurstCCN's functions.

use crate::base::rng::Rng;
use crate::model::params::{LayerParams, RuleParams};
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::Observer;
use crate::sim::rules::burstccn::{
    burst_error, event_rates, hidden_burst_probability, init_w_and_y, output_burst_probability,
    settings, tie_y, update_forward,
};
use crate::sim::rules::forward_phase;
use crate::sim::state::NetState;

/// One training example: one phase of `l_f` steps with the teacher set (read by eq. 12.2
/// only), then [`learn`]. Returns the phase's prediction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_example<O: Observer>(
    model: &Model,
    params: &mut [LayerParams],
    state: &mut NetState,
    image: &[u8],
    label: u8,
    l_f: usize,
    exec: &Exec,
    obs: &mut O,
) -> u8 {
    let predicted = forward_phase(model, params, state, image, label, l_f, exec, obs);
    learn(model, params, state, exec);
    predicted
}

/// Eq. 12.3: a_i = sum_k (p_k e_k) Y[k, i] over the units k of the layer above (the bursts
/// it sends down); `y` is feedback-input-major (`y[k * n + i]`), as `LayerParams::y`.
pub fn burst_feedback(y: &[f32], p_above: &[f32], e_above: &[f32], a: &mut [f32]) {
    let n = a.len();
    a.fill(0.0);
    for (k, (&pk, &ek)) in p_above.iter().zip(e_above).enumerate() {
        let burst = pk * ek;
        for (ai, &yi) in a.iter_mut().zip(&y[k * n..(k + 1) * n]) {
            *ai += burst * yi;
        }
    }
}

/// The learning step of one example (eqs. 12.1-12.6) from the last phase's window means:
/// top down, the burst probabilities without the teacher (pbar) and with it (p) of every
/// layer from the weights as they were, each unit's error -(p - pbar) e, then W and b of
/// every layer (and a tied Y).
pub(crate) fn learn(model: &Model, params: &mut [LayerParams], st: &mut NetState, exec: &Exec) {
    let b = settings(model);
    let (p_b, beta) = (b.p_baseline as f32, b.beta as f32);
    let top = params.len() - 1;
    // Eq. 12.1.
    event_rates(model, st);
    let sc = &mut st.burst;
    // Eqs. 12.2 and 12.5 at the output: pbar = p_b, p moved by the teacher.
    sc.p_base[top].fill(p_b);
    for ((p, err), (&e, &y)) in sc.p[top]
        .iter_mut()
        .zip(st.errors[top].iter_mut())
        .zip(sc.e[top].iter().zip(&st.teach))
    {
        *p = output_burst_probability(p_b, e, y);
        *err = burst_error(*p, p_b, e);
    }
    // Eqs. 12.3-12.5 in the hidden layers, top down, without and with the teacher.
    for m in (0..top).rev() {
        let y = &params[m].y;
        burst_feedback(y, &sc.p_base[m + 1], &sc.e[m + 1], &mut sc.apical_base[m]);
        burst_feedback(y, &sc.p[m + 1], &sc.e[m + 1], &mut sc.apical[m]);
        let (pb, p, e) = (&mut sc.p_base[m], &mut sc.p[m], &sc.e[m]);
        let (ab, a) = (&sc.apical_base[m], &sc.apical[m]);
        for i in 0..e.len() {
            pb[i] = hidden_burst_probability(beta, ab[i], e[i]);
            p[i] = hidden_burst_probability(beta, a[i], e[i]);
            st.errors[m][i] = burst_error(p[i], pb[i], e[i]);
        }
    }
    // Eq. 12.6.
    update_forward(model, params, &st.errors, &st.presyn, exec);
    tie_y(model, &b, params);
}

/// Eq. 12.7: W and b (redrawn with `init = "xavier"`) and Y, as BurstCCN draws them; no
/// matrices of its own.
pub(crate) fn init(model: &Model, params: &mut [LayerParams], rng: &mut Rng) -> RuleParams {
    let b = settings(model);
    init_w_and_y(model, &b, params, rng);
    tie_y(model, &b, params);
    RuleParams::default()
}
