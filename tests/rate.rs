//! The rate mode of spec section 9 against hand computation: a 2-input, 2-hidden, 10-output
//! network with weights set by hand, one training example (forward phase, target phase,
//! learning) and one test, every value recomputed here in f64 from the equations of
//! docs/model.md (sections 6 and 9).
// Index loops mirror the equations' subscripts (W[i][j], Y[i][k]).
#![allow(clippy::needless_range_loop)]

use apical::model::config::{ModelConfig, NeuronMode};
use apical::sim::network::Network;
use approx::assert_relative_eq;

const LAMBDA: f64 = 0.2;
const G_L: f64 = 0.1;
const G_B: f64 = 0.6;
const G_D: f64 = 0.6;
const K_B: f64 = G_B / (G_L + G_B);
const K_D: f64 = G_D / (G_L + G_D);
const ETA: [f64; 2] = [0.21, 0.19];

fn toy_config(phase_len: usize) -> ModelConfig {
    let text = format!(
        r#"
        name = "toy-rate"
        [network]
        n_in = 2
        hidden = [2]
        n_out = 10
        [neuron]
        mode = "rate"
        [phases]
        l_f = {phase_len}
        l_t = {phase_len}
        use_rand_phase_lengths = false
        integration_time = 1
        l_f_test = 2
        integration_time_test = 1
        [learning]
        eta = [{}, {}]
    "#,
        ETA[0], ETA[1]
    );
    ModelConfig::from_toml_str(&text, "toy").expect("valid toy model")
}

fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn sigma_prime(x: f64) -> f64 {
    sigma(x) * (1.0 - sigma(x))
}

/// Hand-set parameters: W0 (2 inputs -> 2 hidden), b0, Y (10 outputs -> 2 hidden), W1 (2
/// hidden -> 10 outputs), b1, in the usual (neuron, input) indexing.
struct Hand {
    w0: [[f64; 2]; 2],
    b0: [f64; 2],
    y: [[f64; 10]; 2],
    w1: [[f64; 2]; 10],
    b1: [f64; 10],
}

fn hand() -> Hand {
    let mut y = [[0.0; 10]; 2];
    let mut w1 = [[0.0; 2]; 10];
    let mut b1 = [0.0; 10];
    for k in 0..10 {
        let kf = k as f64;
        y[0][k] = 0.3 * (kf - 4.5);
        y[1][k] = 0.2 - 0.05 * kf;
        w1[k] = [2.0 - 0.4 * kf, -1.0 + 0.3 * kf];
        b1[k] = 0.1 * (kf - 5.0);
    }
    Hand {
        w0: [[3.0, -2.0], [-1.5, 4.0]],
        b0: [0.5, -0.25],
        y,
        w1,
        b1,
    }
}

fn network_with(h: &Hand, phase_len: usize) -> Network {
    let mut net = Network::new(toy_config(phase_len), 0);
    assert_eq!(net.model.cfg.neuron.mode, NeuronMode::Rate);
    let (l0, l1) = net.params.split_at_mut(1);
    let (p0, p1) = (&mut l0[0], &mut l1[0]);
    for i in 0..2 {
        for j in 0..2 {
            p0.w[j * 2 + i] = h.w0[i][j] as f32;
        }
        p0.b[i] = h.b0[i] as f32;
        for k in 0..10 {
            p0.y[k * 2 + i] = h.y[i][k] as f32;
        }
    }
    for k in 0..10 {
        for j in 0..2 {
            p1.w[j * 10 + k] = h.w1[k][j] as f32;
        }
        p1.b[k] = h.b1[k] as f32;
    }
    net
}

/// The forward pass of eq. 9.1-9.6 from input rates: (B0, C0, r0, B1, C1_forward, r1).
#[allow(clippy::type_complexity)]
fn forward(
    h: &Hand,
    r_in: [f64; 2],
) -> (
    [f64; 2],
    [f64; 2],
    [f64; 2],
    [f64; 10],
    [f64; 10],
    [f64; 10],
) {
    let mut b0 = [0.0; 2];
    let mut c0 = [0.0; 2];
    let mut r0 = [0.0; 2];
    for i in 0..2 {
        b0[i] = h.w0[i][0] * r_in[0] + h.w0[i][1] * r_in[1] + h.b0[i];
        c0[i] = K_B * b0[i];
        r0[i] = LAMBDA * sigma(c0[i]);
    }
    let mut b1 = [0.0; 10];
    let mut c1 = [0.0; 10];
    let mut r1 = [0.0; 10];
    for k in 0..10 {
        b1[k] = h.w1[k][0] * r0[0] + h.w1[k][1] * r0[1] + h.b1[k];
        c1[k] = K_D * b1[k];
        r1[k] = LAMBDA * sigma(c1[k]);
    }
    (b0, c0, r0, b1, c1, r1)
}

/// A = Y r (eq. 9.3, no feedback bias).
fn apical(h: &Hand, r_out: &[f64; 10]) -> [f64; 2] {
    let mut a = [0.0; 2];
    for i in 0..2 {
        a[i] = (0..10).map(|k| h.y[i][k] * r_out[k]).sum();
    }
    a
}

fn close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= 2e-5 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs hand-computed {w}"
        );
    }
}

#[test]
fn one_training_example_and_update_equal_the_hand_computation() {
    let h = hand();
    let mut net = network_with(&h, 2);
    let before = net.params.clone();
    // Pixels 255 and 102: x = (1, 0.4), input rates lambda_max x.
    let image = [255u8, 102];
    let label = 3u8;
    let r_in = [LAMBDA, LAMBDA * 102.0 / 255.0];
    let out = net.train_example(&image, label, 2, 2);

    // Forward phase (2 steps, window = the last). B and C do not depend on A (g_A = 0), so
    // both steps have the same C; A of the second step is Y times the output rates of the
    // first.
    let (b0, c0, r0, b1, c1_f, r1_f) = forward(&h, r_in);
    let a_f = apical(&h, &r1_f);
    let l0 = &net.state.layers[0];
    let l1 = &net.state.layers[1];
    close(&l0.forward.c, &c0, "hidden Cbar_f");
    close(&l0.forward.rate, &r0, "hidden rbar_f");
    close(&l0.forward.a, &a_f, "hidden Abar_f");
    close(&l1.forward.c, &c1_f, "output Cbar_f");
    close(&l1.forward.rate, &r1_f, "output rbar_f");
    close(
        &net.state.presyn[0].mean,
        &r_in,
        "s_f of the hidden layer (input rates)",
    );
    close(
        &net.state.presyn[1].mean,
        &r0,
        "s_f of the output layer (hidden rates)",
    );
    // The forward prediction: argmax of C_f, from B = W1 r0 + b1.
    let best = (0..10)
        .max_by(|&a, &b| c1_f[a].partial_cmp(&c1_f[b]).unwrap())
        .unwrap();
    assert_eq!(out.predicted as usize, best);

    // Target phase: the output soma at (g_D B + g_E E_E + g_I E_I) / (g_L + g_D + 1), the
    // hidden apical input Y times the target-phase output rates of the first step.
    let mut c1_t = [0.0; 10];
    let mut r1_t = [0.0; 10];
    for k in 0..10 {
        let g_e = if k == label as usize { 1.0 } else { 0.0 };
        c1_t[k] = (G_D * b1[k] + g_e * 8.0 + (1.0 - g_e) * -8.0) / (G_L + G_D + 1.0);
        r1_t[k] = LAMBDA * sigma(c1_t[k]);
    }
    let a_t = apical(&h, &r1_t);
    close(&l0.target.a, &a_t, "hidden Abar_t");
    close(&l0.target.c, &c0, "hidden Cbar_t");
    close(&l1.target.c, &c1_t, "output Cbar_t");
    close(&l1.target.rate, &r1_t, "output rbar_t");
    let basal: Vec<f32> = l0.basal().collect();
    close(&basal, &b0, "hidden B");

    // Errors (eqs. 6.1, 6.2) ...
    let mut e_out = [0.0; 10];
    for k in 0..10 {
        e_out[k] = -(r1_t[k] - LAMBDA * sigma(c1_f[k])) * K_D * LAMBDA * sigma_prime(c1_f[k]);
    }
    let mut e_hid = [0.0; 2];
    for i in 0..2 {
        e_hid[i] = -(sigma(a_t[i]) - sigma(a_f[i])) * K_B * LAMBDA * sigma_prime(c0[i]);
    }
    close(&net.state.errors[1], &e_out, "E_out");
    close(&net.state.errors[0], &e_hid, "E_hidden");
    // The hidden error is not trivially zero: the plateaus differ between the phases.
    assert!(e_hid.iter().all(|e| e.abs() > 1e-5), "{e_hid:?}");

    // ... and one update of every weight and bias (eqs. 6.3-6.6): W <- W - eta P E s_f^T.
    let p_final = 20.0 / (LAMBDA * LAMBDA);
    let p_hidden = 20.0 / LAMBDA;
    for k in 0..10 {
        for j in 0..2 {
            let want = h.w1[k][j] - ETA[1] * p_final * e_out[k] * r0[j];
            assert_relative_eq!(
                net.params[1].weight(k, j) as f64,
                want,
                max_relative = 2e-5,
                epsilon = 1e-6
            );
        }
        let want_b = h.b1[k] - ETA[1] * p_final * e_out[k];
        assert_relative_eq!(
            net.params[1].b[k] as f64,
            want_b,
            max_relative = 2e-5,
            epsilon = 1e-6
        );
    }
    for i in 0..2 {
        for j in 0..2 {
            let want = h.w0[i][j] - ETA[0] * p_hidden * e_hid[i] * r_in[j];
            assert_relative_eq!(
                net.params[0].weight(i, j) as f64,
                want,
                max_relative = 2e-5,
                epsilon = 1e-6
            );
            // The update moved the weight by a visible amount.
            assert!((net.params[0].weight(i, j) - before[0].weight(i, j)).abs() > 1e-4);
        }
        let want_b = h.b0[i] - ETA[0] * p_hidden * e_hid[i];
        assert_relative_eq!(
            net.params[0].b[i] as f64,
            want_b,
            max_relative = 2e-5,
            epsilon = 1e-6
        );
    }
    // Feedback weights are fixed; no spikes anywhere.
    assert_eq!(net.params[0].y, before[0].y);
    assert!(net
        .state
        .layers
        .iter()
        .all(|l| l.events.is_empty() && l.spike_count == 0));
    // The expected spike count over the 4 steps: sum of the rates.
    let hidden_sum = 4.0 * (r0[0] + r0[1]);
    assert_relative_eq!(
        net.state.layers[0].rate_sum,
        hidden_sum,
        max_relative = 1e-5
    );
}

/// With 1-step phases the window is the phase's only step, and A sees the output rates of
/// the step before: the last step of the previous phase (zero after a reset).
#[test]
fn the_apical_input_is_the_output_rate_of_the_previous_step() {
    let h = hand();
    let mut net = network_with(&h, 1);
    let image = [51u8, 204];
    let label = 7u8;
    let r_in = [LAMBDA * 0.2, LAMBDA * 0.8];
    net.train_example(&image, label, 1, 1);
    let (_, _, _, b1, _, r1_f) = forward(&h, r_in);
    let l0 = &net.state.layers[0];
    close(
        &l0.forward.a,
        &[0.0, 0.0],
        "A of the first step after a reset",
    );
    close(
        &l0.target.a,
        &apical(&h, &r1_f),
        "A_t = Y r_out of the forward step",
    );
    // The target-phase output rates then feed the next example's first forward step.
    let mut r1_t = [0.0; 10];
    for k in 0..10 {
        let g_e = if k == label as usize { 1.0 } else { 0.0 };
        r1_t[k] = LAMBDA * sigma((G_D * b1[k] + 16.0 * g_e - 8.0) / 1.7);
    }
    let snapshot = net.params.clone();
    net.train_example(&image, label, 1, 1);
    let mut a = [0.0f64; 2];
    for (i, ai) in a.iter_mut().enumerate() {
        *ai = (0..10)
            .map(|k| snapshot[0].feedback(i, k) as f64 * r1_t[k])
            .sum();
    }
    close(
        &net.state.layers[0].forward.a,
        &a,
        "A_f of the second example",
    );
}

/// A test (section 8 in the rate mode): a reset, 2 steps, the prediction from C = k_D B of
/// the last step; no randomness, so the same answer on every repeat.
#[test]
fn a_test_is_the_argmax_of_the_steady_output_and_deterministic() {
    let h = hand();
    let net = network_with(&h, 2);
    for image in [[255u8, 0], [0, 255], [128, 128], [10, 240]] {
        let r_in = [
            LAMBDA * image[0] as f64 / 255.0,
            LAMBDA * image[1] as f64 / 255.0,
        ];
        let (_, _, _, _, c1, _) = forward(&h, r_in);
        let want = (0..10)
            .max_by(|&a, &b| c1[a].partial_cmp(&c1[b]).unwrap())
            .unwrap();
        for key in 0..3 {
            let got = net.evaluate(0, key, &[0], |_| &image[..]);
            assert_eq!(got, vec![want as u8], "image {image:?}");
        }
    }
}

#[test]
fn the_rate_mode_is_validated_and_left_out_of_spiking_model_text() {
    let spiking = ModelConfig::default_model();
    assert!(!spiking.to_toml_string().contains("\nmode = "));
    let rate = toy_config(2);
    let text = rate.to_toml_string();
    assert!(text.contains("mode = \"rate\""), "{text}");
    assert_eq!(ModelConfig::from_toml_str(&text, "again").unwrap(), rate);
    let bad = text.replace("g_A = 0.0", "g_A = 0.05");
    assert_ne!(bad, text);
    let e = ModelConfig::from_toml_str(&bad, "bad")
        .unwrap_err()
        .to_string();
    assert!(e.contains("neuron.g_A") && e.contains("rate"), "{e}");
    let bad = text.replace(
        "stochastic_plateau_times = false",
        "stochastic_plateau_times = true",
    );
    let e = ModelConfig::from_toml_str(&bad, "bad")
        .unwrap_err()
        .to_string();
    assert!(e.contains("phases.stochastic_plateau_times"), "{e}");
    let e = ModelConfig::from_toml_str(&text.replace("\"rate\"", "\"rates\""), "bad")
        .unwrap_err()
        .to_string();
    assert!(e.contains("mode") || e.contains("rates"), "{e}");
}
