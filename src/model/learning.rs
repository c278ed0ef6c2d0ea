//! Local learning rules (section 6), applied at the end of each target phase from the
//! phase means, output layer first, then down.

use crate::base::rng::Rng;
use crate::model::config::FeedbackSource;
use crate::model::neuron::{plateau_potential, sigmoid, sigmoid_prime, Dynamics};
use crate::model::params::LayerParams;
use rand_distr::{Distribution, Normal};

/// Eq. 6.3: P_final = 20 / lambda_max^2, the output layer's learning rate factor.
pub(crate) fn p_final(lambda_max: f64) -> f64 {
    20.0 / (lambda_max * lambda_max)
}

/// Eq. 6.4: P_hidden = 20 / lambda_max, the hidden layers' learning rate factor.
pub(crate) fn p_hidden(lambda_max: f64) -> f64 {
    20.0 / lambda_max
}

/// Eq. 6.1: E_out = -(rbar_t - lambda_max sigma(Cbar_f)) k_D lambda_max sigma'(Cbar_f).
pub(crate) fn output_error(d: &Dynamics, rate_t: &[f32], c_f: &[f32], out: &mut [f32]) {
    for ((e, &r), &c) in out.iter_mut().zip(rate_t).zip(c_f) {
        *e = -(r - d.lambda_max * sigmoid(c)) * d.k_d * d.lambda_max * sigmoid_prime(c);
    }
}

/// Eq. 6.2: E_m = -(alpha_t - alpha_f) k_B lambda_max sigma'(Cbar_f), alpha = sigma(Abar).
pub(crate) fn hidden_error(d: &Dynamics, a_t: &[f32], a_f: &[f32], c_f: &[f32], out: &mut [f32]) {
    for (((e, &at), &af), &c) in out.iter_mut().zip(a_t).zip(a_f).zip(c_f) {
        *e = -(plateau_potential(at) - plateau_potential(af))
            * d.k_b
            * d.lambda_max
            * sigmoid_prime(c);
    }
}

/// Eq. 6.8 (backprop mode): E_m = (W_{m+1}^T E_{m+1}) k_B lambda_max sigma'(Cbar_f).
pub fn backprop_error(
    d: &Dynamics,
    above: &LayerParams,
    e_above: &[f32],
    c_f: &[f32],
    out: &mut [f32],
) {
    let na = above.n;
    for (j, (e, &c)) in out.iter_mut().zip(c_f).enumerate() {
        let row = &above.w[j * na..(j + 1) * na];
        let back: f32 = row.iter().zip(e_above).map(|(w, e)| w * e).sum();
        *e = back * d.k_b * d.lambda_max * sigmoid_prime(c);
    }
}

/// Eq. 10.2 (gradient rules): the output error of the cross-entropy loss of sigmoid units,
/// L = -sum_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)] with p = sigma(Cbar_f), as a derivative by
/// the basal potential: E_out = dL/dB = k_D (sigma(Cbar_f) - y).
pub(crate) fn cross_entropy_output_error(d: &Dynamics, c_f: &[f32], y: &[f32], out: &mut [f32]) {
    for ((e, &c), &t) in out.iter_mut().zip(c_f).zip(y) {
        *e = d.k_d * (sigmoid(c) - t);
    }
}

/// Eq. 10.4 (feedback alignment): E_m = (Y_m E_src) k_B lambda_max sigma'(Cbar_f), the error
/// of the layer's feedback source carried down by its fixed feedback weights instead of
/// W^T (`p.y[k * n + i]` = Y_m[i][k]).
pub(crate) fn feedback_alignment_error(
    d: &Dynamics,
    p: &LayerParams,
    e_src: &[f32],
    c_f: &[f32],
    out: &mut [f32],
) {
    let n = p.n;
    out.fill(0.0);
    for (k, &e) in e_src.iter().enumerate() {
        if e != 0.0 {
            for (o, &y) in out.iter_mut().zip(&p.y[k * n..(k + 1) * n]) {
                *o += y * e;
            }
        }
    }
    for (o, &c) in out.iter_mut().zip(c_f) {
        *o *= d.k_b * d.lambda_max * sigmoid_prime(c);
    }
}

/// Eq. 6.5: W <- W - step E s_f^T (step = eta P), in input order; rows of silent inputs
/// (s_j = 0) are skipped.
pub(crate) fn update_weight_rows(p: &mut LayerParams, e: &[f32], s_f: &[f32], step: f32) {
    let n = p.n;
    for (j, &s) in s_f.iter().enumerate() {
        if s != 0.0 {
            update_weight_row(&mut p.w[j * n..(j + 1) * n], e, s, step);
        }
    }
}

/// Eq. 6.5 for one input j: its weight row w_j. <- w_j. - (step s_j) E (each weight on its
/// own, so rows may be updated in any order or on any thread with the same result).
#[inline]
pub fn update_weight_row(row: &mut [f32], e: &[f32], s_j: f32, step: f32) {
    let k = step * s_j;
    for (w, &ei) in row.iter_mut().zip(e) {
        *w -= k * ei;
    }
}

/// Eq. 6.6: b <- b - step E.
pub fn update_bias(b: &mut [f32], e: &[f32], step: f32) {
    for (b, &ei) in b.iter_mut().zip(e) {
        *b -= step * ei;
    }
}

/// Eq. 6.9 (learned feedback): E_inv = -(lambda_max sigma(Cbar_f) - sigma(Abar_f)) sigma'(Abar_f);
/// Y <- Y - eta_b E_inv s_A,f^T and, with a feedback bias, c <- c - eta_b E_inv. Sparse
/// feedback keeps its zeros (and is not rescaled).
#[allow(clippy::too_many_arguments)]
pub(crate) fn learned_feedback_update(
    d: &Dynamics,
    p: &mut LayerParams,
    c_f: &[f32],
    a_f: &[f32],
    s_a_f: &[f32],
    eta_b: f32,
    bias: bool,
    e_inv: &mut [f32],
) {
    for ((e, &c), &a) in e_inv.iter_mut().zip(c_f).zip(a_f) {
        *e = -(d.lambda_max * sigmoid(c) - sigmoid(a)) * sigmoid_prime(a);
    }
    let n = p.n;
    for (k, &s) in s_a_f.iter().enumerate() {
        if s != 0.0 {
            for (y, &e) in p.y[k * n..(k + 1) * n].iter_mut().zip(e_inv.iter()) {
                *y -= eta_b * e * s;
            }
        }
    }
    if bias {
        for (c, &e) in p.c.iter_mut().zip(e_inv.iter()) {
            *c -= eta_b * e;
        }
    }
    if !p.y_keep.is_empty() {
        for (y, &keep) in p.y.iter_mut().zip(&p.y_keep) {
            if !keep {
                *y = 0.0;
            }
        }
    }
}

/// Eq. 6.7 (symmetric feedback): Y_{M-2} = W_{M-1}^T (+ N), Y_m = (W_{m+1}^T + N_m) Y_{m+1}
/// for broadcast feedback, Y_m = W_{m+1}^T (+ N_m) for next-layer feedback; sparse feedback
/// then keeps its mask and scale. N has sd `noise_sd` (0: none), drawn afresh each call.
pub(crate) fn symmetrize_feedback(
    layers: &mut [LayerParams],
    source: FeedbackSource,
    noise_sd: f64,
    sparse_scale: f32,
    rng: &mut Rng,
) {
    let m_layers = layers.len();
    let noise = Normal::new(0.0f64, noise_sd.max(0.0)).ok();
    let draw = |rng: &mut Rng| -> f32 {
        match &noise {
            Some(n) if noise_sd > 0.0 => n.sample(rng) as f32,
            _ => 0.0,
        }
    };
    for m in (0..m_layers.saturating_sub(1)).rev() {
        let (lower, upper) = layers.split_at_mut(m + 1);
        let below = &mut lower[m];
        let above = &upper[0];
        let (n, na) = (below.n, above.n);
        // (W_{m+1}^T + N)[i][j] = w_{m+1}[i * na + j] + N, stored as t[i * na + j].
        let t: Vec<f32> = above.w.iter().map(|&w| w + draw(rng)).collect();
        let broadcast_deeper = source == FeedbackSource::Broadcast && m + 2 < m_layers;
        if broadcast_deeper {
            // Y_m[i][k] = sum_j T[i][j] Y_{m+1}[j][k]; Y_{m+1} stored y[k * na + j].
            let n_fb = below.n_fb;
            for k in 0..n_fb {
                let yk = &above.y[k * na..(k + 1) * na];
                for i in 0..n {
                    let ti = &t[i * na..(i + 1) * na];
                    below.y[k * n + i] = ti.iter().zip(yk).map(|(a, b)| a * b).sum();
                }
            }
        } else {
            // Y_m[i][k] = W_{m+1}[k][i] (+ N), with k over the layer above.
            for i in 0..n {
                for k in 0..na {
                    below.y[k * n + i] = t[i * na + k];
                }
            }
        }
        if !below.y_keep.is_empty() {
            for (y, &keep) in below.y.iter_mut().zip(&below.y_keep) {
                *y = if keep { *y * sparse_scale } else { 0.0 };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::NeuronConfig;

    fn dynamics() -> Dynamics {
        // Defaults: lambda_max 0.2, g_L 0.1, g_B 0.6, g_A 0, g_D 0.6: k_B = k_D = 6/7.
        Dynamics::new(&NeuronConfig::default())
    }

    #[test]
    fn cross_entropy_error_is_k_d_times_p_minus_y() {
        let d = dynamics();
        let c = [0.0f32, 2.0, -1.0];
        let y = [1.0f32, 0.0, 0.0];
        let mut e = [9.0f32; 3];
        cross_entropy_output_error(&d, &c, &y, &mut e);
        let k = 6.0f32 / 7.0;
        assert!((d.k_d - k).abs() < 1e-6);
        // sigma(0) = 0.5, sigma(2) = 0.880797, sigma(-1) = 0.268941.
        let want = [k * (0.5 - 1.0), k * 0.880_797, k * 0.268_941];
        for (a, b) in e.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn feedback_alignment_error_carries_the_source_error_through_y() {
        let d = dynamics();
        // Layer of n = 2 neurons with 3 feedback inputs: y[k * 2 + i] = Y[i][k].
        // Y = [[1, 0, 2], [-1, 3, 0.5]].
        let p = LayerParams {
            n_pre: 1,
            n: 2,
            w: vec![0.0; 2],
            b: vec![0.0; 2],
            n_fb: 3,
            y: vec![1.0, -1.0, 0.0, 3.0, 2.0, 0.5],
            c: vec![0.0; 2],
            y_keep: Vec::new(),
        };
        let e_src = [0.5f32, -1.0, 0.25];
        let c_f = [0.0f32, 1.0];
        let mut out = [0.0f32; 2];
        feedback_alignment_error(&d, &p, &e_src, &c_f, &mut out);
        // Y e = [0.5 + 0 + 0.5, -0.5 - 3 + 0.125] = [1, -3.375]; sigma'(0) = 0.25,
        // sigma'(1) = 0.196612; factor k_B lambda_max = 6/7 * 0.2.
        let f = 6.0f32 / 7.0 * 0.2;
        let want = [1.0 * f * 0.25, -3.375 * f * 0.196_612];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
