//! Weight initialisation (section 7, the reference's "weight optimisation").

use crate::base::rng::{open_unit_f64, Rng};
use crate::model::config::{InitConfig, InitSpread, ModelConfig};
use crate::model::params::LayerParams;
use rand::seq::index::sample;
use rand::Rng as _;

/// sqrt(12): uniform half-width that gives sd 2 W_sd (the reference's final code).
pub(crate) const SPREAD_FINAL: f64 = 3.465;
/// sqrt(3): half-width that gives sd W_sd (the paper and earlier reference versions).
pub(crate) const SPREAD_NARROW: f64 = 1.7325;

/// Eqs. 7.1-7.3: mean and sd of the weights for fan-in `n`, given lambda_max.
pub fn weight_stats(init: &InitConfig, lambda_max: f64, n: usize) -> (f64, f64) {
    let nf = n as f64;
    let nu = lambda_max / 4.0;
    let v_avg = init.v_avg;
    let v_sm = init.v_sd * init.v_sd + v_avg * v_avg;
    let b_avg = init.b_avg;
    let w_avg = (v_avg - b_avg) / (nu * nf * v_avg);
    let w_sm = (v_sm + nu * nu * (nf - nf * nf) * w_avg * w_avg * v_avg * v_avg
        - 2.0 * nf * nu * b_avg * v_avg * w_avg
        - b_avg * b_avg)
        / (nf * nu * nu * v_sm);
    let w_sd = (w_sm - w_avg * w_avg).max(0.0).sqrt();
    (w_avg, w_sd)
}

/// The uniform half-width factor h / sd of the chosen spread.
pub(crate) fn spread_factor(s: InitSpread) -> f64 {
    match s {
        InitSpread::Final => SPREAD_FINAL,
        InitSpread::Narrow => SPREAD_NARROW,
    }
}

/// A uniform draw in [-1, 1).
#[inline]
fn sym_uniform(rng: &mut Rng) -> f64 {
    2.0 * open_unit_f64(rng.next_u64()) - 1.0
}

/// Fills `out` with avg + h U(-1, 1).
fn uniform_fill(out: &mut [f32], avg: f64, h: f64, rng: &mut Rng) {
    for v in out {
        *v = (avg + h * sym_uniform(rng)) as f32;
    }
}

/// Initial parameters of every layer, drawn in the reference's order: for m = M-1 down to 0,
/// W_m, b_m, then Y_{m-1} (section 7). Sparse feedback masks are applied here once.
pub fn init_params(cfg: &ModelConfig, rng: &mut Rng) -> Vec<LayerParams> {
    let sizes = cfg.layer_sizes();
    let m_layers = sizes.len();
    let _n_out = cfg.network.n_out;
    let init = &cfg.init;
    let lambda_max = cfg.neuron.lambda_max;
    let h_factor = spread_factor(init.init_spread);
    let topo = cfg.topology();
    let mut layers: Vec<LayerParams> = (0..m_layers)
        .map(|m| LayerParams::zeros(&topo, m))
        .collect();
    // Row-major (neuron i, input j) draw order, stored input-major.
    let fill_matrix = |w: &mut [f32], n: usize, n_pre: usize, avg: f64, h: f64, rng: &mut Rng| {
        for i in 0..n {
            for j in 0..n_pre {
                w[j * n + i] = (avg + h * sym_uniform(rng)) as f32;
            }
        }
    };
    for m in (0..m_layers).rev() {
        let (n, n_pre) = (layers[m].n, layers[m].n_pre);
        if init.weight_optimisation {
            let (w_avg, w_sd) = weight_stats(init, lambda_max, n_pre);
            fill_matrix(&mut layers[m].w, n, n_pre, w_avg, h_factor * w_sd, rng);
            uniform_fill(&mut layers[m].b, init.b_avg, h_factor * init.b_sd, rng);
        } else {
            fill_matrix(&mut layers[m].w, n, n_pre, 0.0, 0.1, rng);
            uniform_fill(&mut layers[m].b, 0.0, 1.0, rng);
        }
        if m > 0 {
            let below = &mut layers[m - 1];
            let (nb, nfb) = (below.n, below.n_fb);
            if init.weight_optimisation {
                // Y is drawn with the stats of a fan-in equal to the receiving layer's size.
                let (y_avg, y_sd) = weight_stats(init, lambda_max, nb);
                fill_matrix(&mut below.y, nb, nfb, y_avg, h_factor * y_sd, rng);
            } else {
                fill_matrix(&mut below.y, nb, nfb, 0.0, 1.0, rng);
            }
        }
    }
    if cfg.learning.feedback_sparsity > 0.0 {
        for l in layers.iter_mut().filter(|l| l.n_fb > 0) {
            l.y_keep = sparse_mask(l.y.len(), cfg.learning.feedback_sparsity, rng);
            apply_sparse_mask(
                &mut l.y,
                &l.y_keep,
                cfg.learning.feedback_sparse_scale as f32,
            );
        }
    }
    layers
}

/// Which entries of a feedback matrix are zeroed: `fraction` of them, without replacement.
pub(crate) fn sparse_mask(len: usize, fraction: f64, rng: &mut Rng) -> Vec<bool> {
    let zeroed = (fraction * len as f64).round() as usize;
    let mut keep = vec![true; len];
    for i in sample(rng, len, zeroed.min(len)).iter() {
        keep[i] = false;
    }
    keep
}

/// Zeroes the masked entries and scales the rest.
pub(crate) fn apply_sparse_mask(y: &mut [f32], keep: &[bool], scale: f32) {
    for (v, &k) in y.iter_mut().zip(keep) {
        *v = if k { *v * scale } else { 0.0 };
    }
}
