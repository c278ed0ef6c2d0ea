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
use crate::model::burst::{BurstConfig, BurstInit, QMode, YMode};
use crate::model::learning;
use crate::model::neuron::sigmoid;
use crate::model::params::{LayerParams, RuleParams};
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::Observer;
use crate::sim::rules::{forward_phase, update_rows};
use crate::sim::state::NetState;
use rand_distr::{Distribution, Normal};

/// The model's `[burst]` settings (their defaults when the table is absent).
pub(crate) fn settings(model: &Model) -> BurstConfig {
    model.cfg.burst.clone().unwrap_or_default()
}

/// One training example: one phase of `l_f` steps with the teacher set (the output's
/// teacher does not act on the forward pass of the rate network: it enters eq. 11.2), then
/// [`learn`]. Returns the phase's prediction.
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

/// Eq. 11.6: the unit's error, bursts minus their baseline with the sign of a gradient:
/// delta = -(p - p_b) e.
#[inline]
pub fn burst_error(p: f32, p_b: f32, e: f32) -> f32 {
    -(p - p_b) * e
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

/// The learning step of one example (eqs. 11.1-11.7, 11.9-11.12) from the last phase's
/// window means: top down, the burst probabilities and errors of every layer from the
/// weights as they were, then W and b of every layer, then Y and Q.
pub(crate) fn learn(
    model: &Model,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
    st: &mut NetState,
    exec: &Exec,
) {
    let b = settings(model);
    let (p_b, beta) = (b.p_baseline as f32, b.beta as f32);
    let d = &model.dynamics;
    let m_layers = params.len();
    let top = m_layers - 1;
    let sc = &mut st.burst;
    sc.fit(&model.topology.sizes);
    // Eq. 11.1: e = sigma(Cbar) = sigma(W' e_below + b').
    for m in 0..m_layers {
        for (e, &c) in sc.e[m].iter_mut().zip(&st.layers[m].forward.c) {
            *e = sigmoid(c);
        }
    }
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
    // Eq. 11.7: W' <- W' - eta delta e_below^T, b' <- b' - eta delta, in the network's
    // units: W <- W - eta / (k lambda^2) delta r_below^T, b <- b - (eta / k) delta.
    let lambda = d.lambda_max;
    let cfg = &model.cfg;
    for m in (0..m_layers).rev() {
        if m < top && !cfg.learning.hidden_learning {
            continue;
        }
        let k = if m == top { d.k_d } else { d.k_b };
        let eta = cfg.learning.eta[m] as f32;
        let threads = exec.parallel(params[m].n).threads;
        update_rows(
            threads,
            &mut params[m],
            &st.errors[m],
            &st.presyn[m].mean,
            eta / (k * lambda * lambda),
        );
        learning::update_bias(&mut params[m].b, &st.errors[m], eta / k);
    }
    // Eqs. 11.11-11.12: Y <- Y - eta_Y e_above a^T, Q <- Q + eta_Q e_above a^T.
    let (eta_y, eta_q) = (b.eta_y as f32, b.eta_q() as f32);
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
    b: &BurstConfig,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
) {
    let top = params.len() - 1;
    for m in 0..top {
        if b.y_mode == YMode::Tied {
            let (lo, hi) = params.split_at_mut(m + 1);
            transpose_scaled(model, &hi[0], m + 1, b.y_scale as f32, &mut lo[m].y);
        }
        if b.q_mode == QMode::Tied {
            let p_b = b.p_baseline as f32;
            for (q, &y) in rule.q[m].iter_mut().zip(&params[m].y) {
                *q = p_b * y;
            }
        }
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
    let f = scale * k * d.lambda_max;
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
    let d = &model.dynamics;
    let top = params.len() - 1;
    let normal = |sd: f64| Normal::new(0.0f64, sd).expect("sd checked finite and >= 0");
    if b.init == BurstInit::Xavier {
        for (m, p) in params.iter_mut().enumerate() {
            let k = if m == top { d.k_d } else { d.k_b };
            let sd = b.init_gain * (2.0 / (p.n_pre + p.n) as f64).sqrt();
            let dist = normal(sd);
            let to_net = 1.0 / (k * d.lambda_max);
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
