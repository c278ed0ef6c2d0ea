//! BurstCCN (Greedy, Zhu, Pemberton, Mellor & Costa, NeurIPS 2022; docs/model.md, section
//! 11) on the rate network: one phase per example with the teacher always on. Each unit's
//! event rate e is its sigmoid unit's output; the output layer's burst probability is moved
//! from its baseline by the teacher, a hidden layer's by its apical potential (bursts of the
//! layer above through Y minus its events through Q), and every weight follows the bursts
//! minus their baseline, p_b e. The rule keeps Q (`RuleParams::q`) beside the weights.
//!
//! Units: the rate network passes lambda_max-scaled rates and its somata sit at k B
//! (section 9), so the paper's sigmoid network is this one with W' = k lambda_max W and
//! b' = k b (k = k_B for hidden layers, k_D for the output). The rule computes in the paper's
//! units (e = sigma(Cbar), learning rates as the paper's) and converts the weight steps.

use crate::base::rng::Rng;
use crate::model::burst::{BurstInit, BurstSettings, QMode, YMode};
use crate::model::config::{NeuronMode, PspKernel};
use crate::model::learning;
use crate::model::neuron::sigmoid;
use crate::model::params::{LayerParams, RuleParams};
use crate::model::synapse::PresynapticWindow;
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::Observer;
use crate::sim::rules::{forward_phase, update_rows};
use crate::sim::state::NetState;
use rand_distr::{Distribution, Normal};

/// The model's `[burst]` settings under its rule (the rule's defaults when the table is
/// absent); Burstprop reads them too.
pub(crate) fn settings(model: &Model) -> BurstSettings {
    model
        .cfg
        .burst
        .clone()
        .unwrap_or_default()
        .settings(model.rule)
}

/// One training example of the rate network: one phase of `l_f` steps with the teacher set
/// (the output's teacher does not act on the forward pass: it enters eq. 11.2), then
/// [`learn`]. Returns the phase's prediction. (Spiking networks:
/// `burstccn_spiking::train_example`.)
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_example<O: Observer>(
    model: &Model,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
    state: &mut NetState,
    image: &[u8],
    label: u8,
    l_f: usize,
    exec: &Exec,
    obs: &mut O,
) -> u8 {
    let predicted = forward_phase(model, params, state, image, label, l_f, exec, obs);
    learn(model, params, rule, state, exec);
    predicted
}

/// The rate at which the paper's event rate e in [0, 1] reaches the next layer's basal
/// dendrites: lambda_max on the rate network; lambda_max times the PSP kernel's sum on a
/// spiking one (B = sum_d kappa(d) W n(t-d+1), mean sum(kappa) lambda_max e W). The paper's
/// weights are W' = k lambda W with this lambda.
pub(crate) fn lambda_eff(model: &Model) -> f32 {
    let lambda = model.dynamics.lambda_max;
    if model.cfg.neuron.mode == NeuronMode::Rate {
        return lambda;
    }
    let k = &model.kernel;
    let lags = match k.kind {
        PspKernel::Truncated => k.taps.len(),
        // The full kernel's tail beyond 100 tau_L is below 1e-40 of its sum.
        PspKernel::Full => 1 + (100.0 * model.cfg.synapse.tau_l / model.cfg.neuron.dt) as usize,
    };
    let sum: f64 = (1..=lags).map(|d| k.at_lag(d)).sum();
    lambda * sum as f32
}

/// Eq. 11.2: the output layer's burst probability under the teacher y,
/// p = p_b ((y - e)(1 - e) + 1).
#[inline]
pub fn output_burst_probability(p_b: f32, e: f32, y: f32) -> f32 {
    p_b * ((y - e) * (1.0 - e) + 1.0)
}

/// Eq. 11.5: a hidden unit's burst probability from its apical potential,
/// p = sigma(beta a (1 - e)).
#[inline]
pub fn hidden_burst_probability(beta: f32, a: f32, e: f32) -> f32 {
    sigmoid(beta * a * (1.0 - e))
}

/// Eq. 11.6 (12.5): the unit's error, bursts minus their expected number with the sign of a
/// gradient: delta = -(p - p_ref) e, where p_ref is the burst probability without the
/// teacher's signal (BurstCCN: the baseline p_b; Burstprop: the teacher-free pass's pbar).
#[inline]
pub fn burst_error(p: f32, p_ref: f32, e: f32) -> f32 {
    -(p - p_ref) * e
}

/// Eq. 11.15: a spiking unit's error from its window counts, -(bursts - p_b events) times
/// `norm` = 1 / (lambda window), an estimate of eq. 11.6's -(p - p_b) e.
#[inline]
pub fn burst_error_counts(bursts: u32, events: u32, p_b: f32, norm: f32) -> f32 {
    -(bursts as f32 - p_b * events as f32) * norm
}

/// Eq. 11.4: a_i = sum_k (p_k e_k) Y[k, i] - sum_k e_k Q[k, i] over the units k of the layer
/// above; `y` and `q` are feedback-input-major (`y[k * n + i]`), as `LayerParams::y`.
pub fn apical_potential(y: &[f32], q: &[f32], p_above: &[f32], e_above: &[f32], a: &mut [f32]) {
    let n = a.len();
    a.fill(0.0);
    for (k, (&pk, &ek)) in p_above.iter().zip(e_above).enumerate() {
        let burst = pk * ek;
        let (yk, qk) = (&y[k * n..(k + 1) * n], &q[k * n..(k + 1) * n]);
        for ((ai, &yi), &qi) in a.iter_mut().zip(yk).zip(qk) {
            *ai += burst * yi - ek * qi;
        }
    }
}

/// Eq. 11.1 (12.1): every layer's event rate e = sigma(Cbar) = sigma(W' e_below + b') from
/// the last phase's somatic window means, into the burst scratch (sized here).
pub(crate) fn event_rates(model: &Model, st: &mut NetState) {
    let sc = &mut st.burst;
    sc.fit(&model.topology.sizes);
    for (e, layer) in sc.e.iter_mut().zip(&st.layers) {
        for (e, &c) in e.iter_mut().zip(&layer.forward.c) {
            *e = sigmoid(c);
        }
    }
}

/// Eq. 11.7 (12.6): W' <- W' - eta delta e_below^T, b' <- b' - eta delta for every layer
/// (hidden layers only with `hidden_learning`), in the network's units:
/// W <- W - eta / (k lambda^2) delta r_below^T, b <- b - (eta / k) delta (r_below the
/// presynaptic window means, lambda e_below in the mean; lambda: [`lambda_eff`]).
pub(crate) fn update_forward(
    model: &Model,
    params: &mut [LayerParams],
    errors: &[Vec<f32>],
    presyn: &[PresynapticWindow],
    exec: &Exec,
) {
    let d = &model.dynamics;
    let lambda = lambda_eff(model);
    let cfg = &model.cfg;
    let top = params.len() - 1;
    for m in (0..params.len()).rev() {
        if m < top && !cfg.learning.hidden_learning {
            continue;
        }
        let k = if m == top { d.k_d } else { d.k_b };
        let eta = cfg.learning.eta[m] as f32;
        let threads = exec.parallel(params[m].n).threads;
        update_rows(
            threads,
            &mut params[m],
            &errors[m],
            &presyn[m].mean,
            eta / (k * lambda * lambda),
        );
        learning::update_bias(&mut params[m].b, &errors[m], eta / k);
    }
}

/// The learning step of one example of the rate network (eqs. 11.1-11.7, 11.9-11.12) from
/// the last phase's window means: top down, the burst probabilities and errors of every
/// layer from the weights as they were, then [`apply_updates`].
pub(crate) fn learn(
    model: &Model,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
    st: &mut NetState,
    exec: &Exec,
) {
    let b = settings(model);
    let (p_b, beta) = (b.p_baseline as f32, b.beta as f32);
    let top = params.len() - 1;
    // Eq. 11.1: e = sigma(Cbar) = sigma(W' e_below + b').
    event_rates(model, st);
    let sc = &mut st.burst;
    // Eq. 11.2 and 11.6 at the output.
    for ((p, err), (&e, &y)) in sc.p[top]
        .iter_mut()
        .zip(st.errors[top].iter_mut())
        .zip(sc.e[top].iter().zip(&st.teach))
    {
        *p = output_burst_probability(p_b, e, y);
        *err = burst_error(*p, p_b, e);
    }
    // Eqs. 11.4-11.6 in the hidden layers, top down.
    for m in (0..top).rev() {
        let (lo_p, hi_p) = sc.p.split_at_mut(m + 1);
        apical_potential(
            &params[m].y,
            &rule.q[m],
            &hi_p[0],
            &sc.e[m + 1],
            &mut sc.apical[m],
        );
        for (((p, err), &e), &a) in lo_p[m]
            .iter_mut()
            .zip(st.errors[m].iter_mut())
            .zip(&sc.e[m])
            .zip(&sc.apical[m])
        {
            *p = hidden_burst_probability(beta, a, e);
            *err = burst_error(*p, p_b, e);
        }
    }
    apply_updates(model, params, rule, st, exec);
}

/// Eqs. 11.7, 11.11-11.12 and the tied matrices (11.9-11.10) from the errors, event rates
/// and apical potentials already in `st` (eqs. 11.1-11.6, or 11.13-11.15 when spiking).
pub(crate) fn apply_updates(
    model: &Model,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
    st: &mut NetState,
    exec: &Exec,
) {
    let b = settings(model);
    let sc = &st.burst;
    update_forward(model, params, &st.errors, &st.presyn, exec);
    // Eqs. 11.11-11.12: Y <- Y - eta_Y e_above a^T, Q <- Q + eta_Q e_above a^T.
    let (eta_y, eta_q) = (b.eta_y as f32, b.eta_q as f32);
    for (m, (p, q)) in params.iter_mut().zip(rule.q.iter_mut()).enumerate() {
        let n = p.n;
        let a = &sc.apical[m];
        for (k, &ek) in sc.e[m + 1].iter().enumerate() {
            if eta_y != 0.0 {
                learning::update_weight_row(&mut p.y[k * n..(k + 1) * n], a, ek, eta_y);
            }
            if eta_q != 0.0 {
                learning::update_weight_row(&mut q[k * n..(k + 1) * n], a, ek, -eta_q);
            }
        }
    }
    tie(model, &b, params, rule);
}

/// Eqs. 11.9-11.10 for tied modes: Y_m = y_scale W'_{m+1}^T and Q_m = p_b Y_m, re-set after
/// every update.
pub(crate) fn tie(
    model: &Model,
    b: &BurstSettings,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
) {
    tie_y(model, b, params);
    if b.q_mode == QMode::Tied {
        let p_b = b.p_baseline as f32;
        for (q, p) in rule.q.iter_mut().zip(params.iter()) {
            for (q, &y) in q.iter_mut().zip(&p.y) {
                *q = p_b * y;
            }
        }
    }
}

/// Eq. 11.9 (12.7) with `y_mode = "tied"`: Y_m = y_scale W'_{m+1}^T, re-set after every
/// update (nothing otherwise).
pub(crate) fn tie_y(model: &Model, b: &BurstSettings, params: &mut [LayerParams]) {
    if b.y_mode != YMode::Tied {
        return;
    }
    for m in 0..params.len() - 1 {
        let (lo, hi) = params.split_at_mut(m + 1);
        transpose_scaled(model, &hi[0], m + 1, b.y_scale as f32, &mut lo[m].y);
    }
}

/// out[k * n + i] = scale W'_{m}[k, i] = scale k_m lambda W_m[k, i] for the weights of layer
/// `m` (the layer above the feedback's receiver), feedback-input-major.
fn transpose_scaled(model: &Model, above: &LayerParams, m: usize, scale: f32, out: &mut [f32]) {
    let d = &model.dynamics;
    let k = if m + 1 == model.topology.sizes.len() {
        d.k_d
    } else {
        d.k_b
    };
    let f = scale * k * lambda_eff(model);
    let (n_above, n) = (above.n, above.n_pre);
    for kk in 0..n_above {
        for i in 0..n {
            out[kk * n + i] = f * above.w[i * n_above + kk];
        }
    }
}

/// Eq. 11.8-11.10: the rule's initial weights. With `init = "xavier"` W and b are redrawn as
/// the authors draw them (W' ~ N(0, (gain sqrt(2 / (fan_in + fan_out)))^2), b' = 0, in the
/// paper's units); then Y (random, or y_scale W'^T) and Q (p_b q_scale Y, or random).
/// Draws from `rng` after section 7's initialisation, so a seed gives one network.
pub(crate) fn init(model: &Model, params: &mut [LayerParams], rng: &mut Rng) -> RuleParams {
    let b = settings(model);
    init_w_and_y(model, &b, params, rng);
    let top = params.len() - 1;
    let q = (0..top)
        .map(|m| match b.q_mode {
            QMode::Random => {
                let dist = normal(b.q_scale);
                (0..params[m].y.len())
                    .map(|_| dist.sample(rng) as f32)
                    .collect()
            }
            QMode::Symmetric | QMode::Tied => {
                let f = (b.p_baseline * b.q_scale) as f32;
                params[m].y.iter().map(|&y| f * y).collect()
            }
        })
        .collect();
    let mut rule = RuleParams { q };
    tie(model, &b, params, &mut rule);
    rule
}

fn normal(sd: f64) -> Normal<f64> {
    Normal::new(0.0f64, sd).expect("sd checked finite and >= 0")
}

/// Eqs. 11.8-11.9 (12.7): W and b (redrawn with `init = "xavier"`), then Y, from `rng`.
pub(crate) fn init_w_and_y(
    model: &Model,
    b: &BurstSettings,
    params: &mut [LayerParams],
    rng: &mut Rng,
) {
    let d = &model.dynamics;
    let top = params.len() - 1;
    if b.init == BurstInit::Xavier {
        for (m, p) in params.iter_mut().enumerate() {
            let k = if m == top { d.k_d } else { d.k_b };
            let sd = b.init_gain * (2.0 / (p.n_pre + p.n) as f64).sqrt();
            let dist = normal(sd);
            let to_net = 1.0 / (k * lambda_eff(model));
            // Drawn in (neuron, input) order, as the authors' matrices are laid out.
            for i in 0..p.n {
                for j in 0..p.n_pre {
                    p.w[j * p.n + i] = dist.sample(rng) as f32 * to_net;
                }
            }
            p.b.fill(0.0);
        }
    }
    for m in 0..top {
        match b.y_mode {
            YMode::Random => {
                let dist = normal(b.y_scale);
                for y in params[m].y.iter_mut() {
                    *y = dist.sample(rng) as f32;
                }
            }
            YMode::Symmetric | YMode::Tied => {
                let (lo, hi) = params.split_at_mut(m + 1);
                transpose_scaled(model, &hi[0], m + 1, b.y_scale as f32, &mut lo[m].y);
            }
        }
    }
}
