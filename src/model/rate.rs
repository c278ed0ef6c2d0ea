//! The non-spiking (rate) mode of spec section 9 as pure functions over slices (equation
//! numbers of docs/model.md, section 9).
//!
//! Layers pass rates instead of spikes: the feedforward "PSP" of a presynaptic unit is its
//! rate itself (lambda_max x for an input, lambda_max sigma(C) for a neuron) with no kernel
//! factor, the apical input is the feedback source's rate of the previous step, and every
//! soma sits at its steady state instead of integrating. Phases, windows, the learning rules
//! (section 6) and the initialisation (section 7) are those of the spiking model.

use crate::model::neuron::{fast_rate, Dynamics};

/// Eqs. 9.2-9.3: adds sum_j r_j M[j, lo..lo + out.len()] to `out`, for a presynaptic (or
/// feedback) rate r_j given as (j, r_j) pairs and a matrix stored input-major (`m[j * n + i]`,
/// the layout of W and Y). Units of rate 0 add nothing and are skipped.
#[inline]
pub fn add_weighted_rows(
    out: &mut [f32],
    m: &[f32],
    n: usize,
    lo: usize,
    rates: impl IntoIterator<Item = (usize, f32)>,
) {
    let len = out.len();
    for (j, r) in rates {
        if r != 0.0 {
            let row = &m[j * n + lo..j * n + lo + len];
            for (o, &w) in out.iter_mut().zip(row) {
                *o += r * w;
            }
        }
    }
}

/// Eq. 9.4: hidden soma at its steady state, C = k_B B.
#[inline]
pub fn hidden_soma(d: &Dynamics, c: &mut [f32], basal: &[f32]) {
    for (c, &b) in c.iter_mut().zip(basal) {
        *c = d.k_b * b;
    }
}

/// Eq. 9.5: output soma at its steady state: C = k_D B in the forward phase (`g_e` None), and
/// C = (g_D B + g_E E_E + g_I E_I) / (g_L + g_D + g_E + g_I), g_I = 1 - g_E, with the
/// teaching conductances of the target phase.
#[inline]
pub fn output_soma(d: &Dynamics, c: &mut [f32], dendrite: &[f32], g_e: Option<&[f32]>) {
    match g_e {
        None => {
            for (c, &b) in c.iter_mut().zip(dendrite) {
                *c = d.k_d * b;
            }
        }
        Some(g_e) => {
            for ((c, &b), &ge) in c.iter_mut().zip(dendrite).zip(g_e) {
                *c = target_steady_state(d, b, ge);
            }
        }
    }
}

/// Eq. 9.5, target phase: the fixed point of eq. 4.2 with the teaching current of eq. 4.3,
/// (g_D B + g_E E_E + g_I E_I) / (g_L + g_D + g_E + g_I), g_I = 1 - g_E.
#[inline]
pub fn target_steady_state(d: &Dynamics, basal: f32, g_e: f32) -> f32 {
    let g_i = 1.0 - g_e;
    (d.g_d * basal + g_e * d.e_e + g_i * d.e_i) / (d.g_l + d.g_d + g_e + g_i)
}

/// Eq. 9.6: the rates r = lambda_max sigma(C) a layer passes on (eq. 3.4 without the spike
/// draw), with the same sigma as the spiking step (`fast_rate`).
#[inline]
pub fn rates(d: &Dynamics, soma: &[f32], rate: &mut [f32]) {
    for (r, &c) in rate.iter_mut().zip(soma) {
        *r = fast_rate(d, c);
    }
}

/// Eq. 9.7: one step of a window mean of presynaptic rates (s_f, s_A,f): adds `inv_window`
/// r_j to `mean[j]` for every (j, r_j).
#[inline]
pub fn add_to_window_mean(
    mean: &mut [f32],
    rates: impl IntoIterator<Item = (usize, f32)>,
    inv_window: f32,
) {
    for (j, r) in rates {
        mean[j] += inv_window * r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::NeuronConfig;

    fn dynamics() -> Dynamics {
        Dynamics::new(&NeuronConfig::default())
    }

    #[test]
    fn weighted_rows_are_a_matrix_vector_product_over_a_column_range() {
        // 3 inputs x 4 neurons, m[j * 4 + i] = 10 j + i; columns 1..3 of rates (2, 0, 0.5).
        let m: Vec<f32> = (0..3)
            .flat_map(|j| (0..4).map(move |i| (10 * j + i) as f32))
            .collect();
        let mut out = vec![1.0f32, -1.0];
        add_weighted_rows(&mut out, &m, 4, 1, [(0, 2.0), (1, 0.0), (2, 0.5)]);
        // neuron 1: 1 + 2 * 1 + 0.5 * 21 = 13.5; neuron 2: -1 + 2 * 2 + 0.5 * 22 = 14.
        assert_eq!(out, vec![13.5, 14.0]);
    }

    #[test]
    fn somata_sit_at_the_fixed_points_of_their_euler_updates() {
        let d = dynamics();
        // k_B = 0.6 / 0.7, k_D = 0.6 / 0.7 with the spec's conductances.
        let mut c = [0.0f32; 2];
        hidden_soma(&d, &mut c, &[1.4, -0.7]);
        assert!(
            (c[0] - 1.2).abs() < 1e-6 && (c[1] + 0.6).abs() < 1e-6,
            "{c:?}"
        );
        output_soma(&d, &mut c, &[0.7, 2.1], None);
        assert!(
            (c[0] - 0.6).abs() < 1e-6 && (c[1] - 1.8).abs() < 1e-6,
            "{c:?}"
        );
        // Target phase: (0.6 B +- 8) / 1.7, the fixed point eq. 4.2-4.3 converge to.
        output_soma(&d, &mut c, &[1.0, 1.0], Some(&[1.0, 0.0]));
        assert!((c[0] - 8.6 / 1.7).abs() < 1e-5, "{c:?}");
        assert!((c[1] + 7.4 / 1.7).abs() < 1e-5, "{c:?}");
        // A fixed point of the Euler step of eq. 4.2-4.3 stays put.
        for &(b, ge) in &[(1.0f32, 1.0f32), (-2.5, 0.0), (0.3, 0.25)] {
            let c0 = target_steady_state(&d, b, ge);
            let mut c1 = [c0];
            crate::model::neuron::output_soma_step(&d, &mut c1, &[b], Some(&[ge]));
            assert!((c1[0] - c0).abs() < 1e-5, "{b} {ge}: {c0} -> {}", c1[0]);
        }
    }

    #[test]
    fn rates_are_lambda_max_sigma_and_window_means_add_up() {
        let d = dynamics();
        let mut r = [0.0f32; 3];
        rates(&d, &[0.0, 2.0, -1.0], &mut r);
        for (&got, c) in r.iter().zip([0.0f64, 2.0, -1.0]) {
            let want = 0.2 / (1.0 + (-c).exp());
            assert!((got as f64 - want).abs() < 1e-7, "{got} vs {want}");
        }
        let mut mean = vec![0.0f32; 3];
        add_to_window_mean(&mut mean, [(0, 0.2), (2, 0.1)], 0.5);
        add_to_window_mean(&mut mean, [(0, 0.1)], 0.5);
        assert!((mean[0] - 0.15).abs() < 1e-7 && mean[1] == 0.0 && (mean[2] - 0.05).abs() < 1e-7);
    }
}
