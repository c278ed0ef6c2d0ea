//! Learning rules: a hand-computed update, and feedback alignment after training.

use apical::base::rng::{stream, Purpose};
use apical::io::mnist::{find_data_dir, load_mnist};
use apical::model::config::ModelConfig;
use apical::model::learning;
use apical::model::phases::phase_lengths;
use apical::sim::network::Network;
use approx::assert_relative_eq;

fn tiny_config() -> ModelConfig {
    let text = r#"
        name = "tiny"
        [network]
        n_in = 4
        hidden = [3]
        n_out = 10
        [learning]
        eta = [0.21, 0.21]
    "#;
    ModelConfig::from_toml_str(text, "tiny").expect("valid tiny model")
}

#[test]
fn one_update_equals_the_hand_computed_value() {
    let mut net = Network::new(tiny_config(), 0);
    let w0 = net.params.clone();
    let st = &mut net.state;
    // Output unit 0: Cbar_f = 0 (sigma = 0.5, sigma' = 0.25), rbar_t = 0.15.
    // Other output units: Cbar_f = 0, rbar_t = 0.1 = lambda_max sigma(0): no error.
    st.layers[1].forward.c.fill(0.0);
    st.layers[1].target.rate.fill(0.1);
    st.layers[1].target.rate[0] = 0.15;
    // Hidden unit 1: Abar_f = 0, Abar_t = 1, Cbar_f = 0; units 0 and 2 have no plateau change.
    st.layers[0].forward.c.fill(0.0);
    st.layers[0].forward.a.fill(0.3);
    st.layers[0].target.a.fill(0.3);
    st.layers[0].forward.a[1] = 0.0;
    st.layers[0].target.a[1] = 1.0;
    // s_f: input 2 has mean PSP 0.5, hidden unit 1 has 0.3; the rest are silent.
    st.presyn[0].mean.fill(0.0);
    st.presyn[0].mean[2] = 0.5;
    st.presyn[1].mean.fill(0.0);
    st.presyn[1].mean[1] = 0.3;
    net.learn();
    // Output: E = -(0.15 - 0.1) * (0.6/0.7) * 0.2 * 0.25 = -0.00214286;
    // dW = -eta * P_final * E * s = -0.21 * 500 * (-0.00214286) * 0.3 = +0.0675.
    let dw_out = net.params[1].weight(0, 1) - w0[1].weight(0, 1);
    assert_relative_eq!(dw_out, 0.0675, max_relative = 1e-4);
    // db = -0.21 * 500 * E = 0.225
    assert_relative_eq!(net.params[1].b[0] - w0[1].b[0], 0.225, max_relative = 1e-4);
    // Hidden: E = -(sigma(1) - sigma(0)) * (0.6/0.7) * 0.2 * 0.25 = -0.0099025;
    // dW = -eta * P_hidden * E * s = -0.21 * 100 * (-0.0099025) * 0.5 = +0.103976.
    let dw_hid = net.params[0].weight(1, 2) - w0[0].weight(1, 2);
    assert_relative_eq!(dw_hid, 0.103_976, max_relative = 1e-4);
    assert_relative_eq!(
        net.params[0].b[1] - w0[0].b[1],
        0.207_952,
        max_relative = 1e-4
    );
    // Nothing else moved: silent inputs, and units without error.
    for i in 0..10 {
        for j in 0..3 {
            if (i, j) != (0, 1) {
                assert_eq!(
                    net.params[1].weight(i, j),
                    w0[1].weight(i, j),
                    "W1[{i},{j}]"
                );
            }
        }
    }
    for i in 0..3 {
        for j in 0..4 {
            if (i, j) != (1, 2) {
                assert_eq!(
                    net.params[0].weight(i, j),
                    w0[0].weight(i, j),
                    "W0[{i},{j}]"
                );
            }
        }
    }
    // Feedback weights are fixed.
    assert_eq!(net.params[0].y, w0[0].y);
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

/// Trains `n` examples from `from` and returns (mean per-example cosine, cosine of the summed
/// updates) between the hidden update and the backprop update. The hidden update is
/// E_0 s_f^T and the backprop update E_bp s_f^T with the same s_f, so their per-example angle
/// is the angle between E_0 and E_bp.
fn probe_alignment(
    net: &mut Network,
    data: &apical::io::mnist::Mnist,
    from: usize,
    n: usize,
    l_f: &[usize],
    l_t: &[usize],
) -> (f64, f64) {
    let mut cos_sum = 0.0;
    let mut counted = 0;
    let mut sum_fa = vec![0.0f32; 500 * 784];
    let mut sum_bp = vec![0.0f32; 500 * 784];
    for k in from..from + n {
        let w_out_before = net.params[1].clone();
        net.train_example(data.train.image(k), data.train.label(k), l_f[k], l_t[k]);
        let st = &net.state;
        let mut e_bp = vec![0.0; 500];
        learning::backprop_error(
            &net.model.dynamics,
            &w_out_before,
            &st.errors[1],
            &st.layers[0].forward.c,
            &mut e_bp,
        );
        for (j, &s) in st.presyn[0].mean.iter().enumerate() {
            if s != 0.0 {
                for i in 0..500 {
                    sum_fa[j * 500 + i] += st.errors[0][i] * s;
                    sum_bp[j * 500 + i] += e_bp[i] * s;
                }
            }
        }
        let c = cosine(&st.errors[0], &e_bp);
        if c.is_finite() && st.errors[1].iter().any(|&e| e != 0.0) {
            cos_sum += c;
            counted += 1;
        }
    }
    assert!(counted > n / 2);
    (cos_sum / counted as f64, cosine(&sum_fa, &sum_bp))
}

#[test]
fn hidden_updates_align_with_backprop_after_training() {
    let Ok(dir) = find_data_dir(None) else {
        eprintln!("skipping: no MNIST data directory found (run scripts/fetch-mnist.sh)");
        return;
    };
    let data = load_mnist(&dir, false).expect("MNIST loads");
    let cfg = ModelConfig::default_model();
    let mut net = Network::new(cfg.clone(), 11);
    let (n_train, n_probe) = (5000, 300);
    let (l_f, l_t) = phase_lengths(
        &cfg,
        n_train + n_probe,
        &mut stream(11, Purpose::PhaseLengths, &[1]),
    );
    net.start_epoch(11, 1);
    let (before, before_sum) = probe_alignment(&mut net, &data, 0, n_probe, &l_f, &l_t);
    for k in n_probe..n_train {
        net.train_example(data.train.image(k), data.train.label(k), l_f[k], l_t[k]);
    }
    let (after, after_sum) = probe_alignment(&mut net, &data, n_train, n_probe, &l_f, &l_t);
    let deg = |c: f64| c.clamp(-1.0, 1.0).acos().to_degrees();
    eprintln!(
        "mean cosine with backprop: first {n_probe} examples {before:.3} ({:.1} deg, summed {:.1} deg); after {n_train}: {after:.3} ({:.1} deg, summed {:.1} deg)",
        deg(before),
        deg(before_sum),
        deg(after),
        deg(after_sum)
    );
    // Feedback alignment: after training the hidden update points within 90 degrees of
    // the backprop update on average (seed 11 measured 76.9 deg), and closer than at the start.
    assert!(
        after > 0.0 && after_sum > 0.0,
        "mean angle {:.1} deg is not below 90 deg",
        deg(after)
    );
    assert!(after > before, "alignment did not grow with training");
}
