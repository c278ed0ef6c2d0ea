//! BurstCCN (docs/model.md, section 11): the burst probabilities against their closed
//! forms, one single-phase update of a two-hidden-layer network against the paper's
//! equations computed independently here in f64 (in the paper's units, from the network's
//! weights converted by W' = k lambda W), the cancellation of the apical baseline by a tied
//! Q, tied Y following W, a run that resumes byte for byte with Q in its checkpoint, and
//! the model file's checks. Burstprop (section 12), which shares the burst probabilities:
//! eq. 12.3 and the probabilities by hand, one update against its equations in f64 (both
//! passes, without and with the teacher), a tied Y following W, its `[burst]` checks and
//! defaults, and a run that resumes byte for byte in a version-4 checkpoint.

// Index loops mirror the equations' subscripts (W[i][j], Y[k][i]).
#![allow(clippy::needless_range_loop)]

mod common;

use apical::io::checkpoint::{Checkpoint, FORMAT_VERSION, PLAIN_VERSION};
use apical::model::config::ModelConfig;
use apical::sim::network::Network;
use apical::sim::rules::burstccn::{
    apical_potential, burst_error, hidden_burst_probability, output_burst_probability,
};
use apical::sim::rules::burstprop::burst_feedback;
use common::{apical_ok, data_dir, metrics_json, s, toy_rate_model, TOY_IMAGE, TOY_LABEL};
use std::fs;

/// A 6-input, 4-3-hidden, 10-output rate network under BurstCCN with `burst` as its
/// `[burst]` table.
fn toy(burst: &str, eta: &str) -> ModelConfig {
    toy_rate_model(
        "burstccn",
        "[4, 3]",
        "next_layer",
        eta,
        &format!("[burst]\n{burst}"),
    )
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn burst_probabilities_follow_their_closed_forms() {
    // Eq. 11.2: the teacher moves the output's burst probability from p_b by
    // p_b (y - e)(1 - e); no error (y = e) leaves it at p_b.
    for (p_b, e, y) in [(0.5f32, 0.3f32, 1.0f32), (0.2, 0.9, 0.0), (0.5, 0.6, 0.6)] {
        let want = p_b as f64 * ((y as f64 - e as f64) * (1.0 - e as f64) + 1.0);
        let got = output_burst_probability(p_b, e, y);
        assert!(
            (got as f64 - want).abs() < 1e-7,
            "{p_b} {e} {y}: {got} vs {want}"
        );
    }
    assert_eq!(output_burst_probability(0.5, 0.6, 0.6), 0.5);
    // Eq. 11.5: sigma(beta a (1 - e)): 1/2 at a = 0, rising with a, flat for a saturated unit.
    assert_eq!(hidden_burst_probability(4.0, 0.0, 0.3), 0.5);
    let p = hidden_burst_probability(4.0, 0.25, 0.5);
    assert!((p as f64 - sig(0.5)).abs() < 1e-7, "{p}");
    assert_eq!(hidden_burst_probability(4.0, 3.0, 1.0), 0.5);
    assert!(hidden_burst_probability(4.0, -0.1, 0.2) < 0.5);
    // Eq. 11.6: bursts above baseline give a negative error (the weights grow).
    assert!((burst_error(0.7, 0.5, 0.4) - (-0.08)).abs() < 1e-7);
    assert_eq!(burst_error(0.5, 0.5, 0.9), 0.0);
    // Eq. 11.4 by hand: 2 units above, 3 below.
    let y = [1.0, 0.0, -1.0, 0.5, 2.0, 0.0];
    let q = [0.5, 0.0, -0.5, 0.25, 1.0, 0.0];
    let mut a = [9.0f32; 3];
    apical_potential(&y, &q, &[0.8, 0.5], &[0.5, 0.4], &mut a);
    // a_i = sum_k p_k e_k Y[k,i] - e_k Q[k,i]: bursts 0.4 and 0.2.
    let want = [
        0.4 * 1.0 + 0.2 * 0.5 - (0.5 * 0.5 + 0.4 * 0.25),
        0.2 * 2.0 - 0.4 * 1.0,
        -0.4 + 0.5 * 0.5,
    ];
    for i in 0..3 {
        assert!(
            (a[i] as f64 - want[i]).abs() < 1e-6,
            "a[{i}] = {} vs {}",
            a[i],
            want[i]
        );
    }
}

/// One layer's parameters in the paper's units, (neuron, input) indexed, f64.
struct Paper {
    w: Vec<Vec<f64>>,
    b: Vec<f64>,
}

fn to_paper(net: &Network) -> Vec<Paper> {
    let d = &net.model.dynamics;
    let top = net.params.len() - 1;
    net.params
        .iter()
        .enumerate()
        .map(|(m, p)| {
            let k = if m == top { d.k_d } else { d.k_b } as f64;
            let lam = d.lambda_max as f64;
            Paper {
                w: (0..p.n)
                    .map(|i| {
                        (0..p.n_pre)
                            .map(|j| k * lam * p.weight(i, j) as f64)
                            .collect()
                    })
                    .collect(),
                b: p.b.iter().map(|&b| k * b as f64).collect(),
            }
        })
        .collect()
}

/// The paper's forward pass of the toy image: e_m = sigma(W' e_{m-1} + b'), e_{-1} =
/// pixels / 255; `e[m + 1]` is layer m's event rate.
fn paper_events(before: &[Paper]) -> Vec<Vec<f64>> {
    let x: Vec<f64> = TOY_IMAGE.iter().map(|&v| v as f64 / 255.0).collect();
    let mut e = vec![x];
    for l in before {
        let below = e.last().unwrap();
        let next: Vec<f64> = (0..l.b.len())
            .map(|i| sig(l.b[i] + (0..below.len()).map(|j| l.w[i][j] * below[j]).sum::<f64>()))
            .collect();
        e.push(next);
    }
    e
}

/// The toy label's one-hot target y.
fn toy_teacher() -> Vec<f64> {
    (0..10)
        .map(|i| (i == TOY_LABEL as usize) as u8 as f64)
        .collect()
}

/// W' <- W' - eta delta e_below^T and b' <- b' - eta delta (eqs. 11.7, 12.6) hold for
/// every weight of `after` to 2e-5 relative; more than 20 weights moved.
fn assert_forward_update(
    before: &[Paper],
    after: &[Paper],
    e: &[Vec<f64>],
    delta: &[Vec<f64>],
    eta: f64,
) {
    let mut compared = 0;
    for m in 0..before.len() {
        for i in 0..before[m].b.len() {
            for j in 0..before[m].w[i].len() {
                let want = before[m].w[i][j] - eta * delta[m][i] * e[m][j];
                let got = after[m].w[i][j];
                assert!(
                    (got - want).abs() < 2e-5 * want.abs().max(1.0),
                    "W'[{m}][{i}][{j}]: {got} vs the paper's {want}"
                );
                if (want - before[m].w[i][j]).abs() > 1e-4 {
                    compared += 1;
                }
            }
            let want = before[m].b[i] - eta * delta[m][i];
            assert!((after[m].b[i] - want).abs() < 2e-5, "b'[{m}][{i}]");
        }
    }
    assert!(compared > 20, "only {compared} weights moved");
}

#[test]
fn one_example_updates_w_y_and_q_as_the_paper_computes_them() {
    let (eta, eta_y, eta_q, beta, p_b) = (0.2f64, 0.05f64, 0.03f64, 4.0f64, 0.4f64);
    let cfg = toy(
        "p_baseline = 0.4\neta_y = 0.05\neta_q = 0.03\nq_mode = \"random\"\nq_scale = 0.3",
        "[0.2, 0.2, 0.2]",
    );
    let net = Network::new(cfg, 11);
    assert_eq!(net.rule_params.q.len(), 2, "one Q per hidden layer");
    let before = to_paper(&net);
    let mut trained = net.clone();
    trained.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    let after = to_paper(&trained);

    let e = paper_events(&before);
    let top = before.len() - 1;
    let y_t = toy_teacher();
    let mut delta = vec![Vec::new(); before.len()];
    let mut p = vec![Vec::new(); before.len()];
    let mut apic = vec![Vec::new(); top];
    let eo = &e[top + 1];
    p[top] = (0..10)
        .map(|i| p_b * ((y_t[i] - eo[i]) * (1.0 - eo[i]) + 1.0))
        .collect();
    delta[top] = (0..10).map(|i| -(p[top][i] - p_b) * eo[i]).collect();
    for m in (0..top).rev() {
        let (n, above) = (net.params[m].n, &e[m + 2]);
        let y = &net.params[m].y;
        let q = &net.rule_params.q[m];
        apic[m] = (0..n)
            .map(|i| {
                (0..above.len())
                    .map(|k| {
                        p[m + 1][k] * above[k] * y[k * n + i] as f64
                            - above[k] * q[k * n + i] as f64
                    })
                    .sum::<f64>()
            })
            .collect();
        let em = &e[m + 1];
        p[m] = (0..n)
            .map(|i| sig(beta * apic[m][i] * (1.0 - em[i])))
            .collect();
        delta[m] = (0..n).map(|i| -(p[m][i] - p_b) * em[i]).collect();
    }
    assert_forward_update(&before, &after, &e, &delta, eta);
    for m in 0..top {
        let n = net.params[m].n;
        let above = &e[m + 2];
        for k in 0..above.len() {
            for i in 0..n {
                let ix = k * n + i;
                let y_want = net.params[m].y[ix] as f64 - eta_y * above[k] * apic[m][i];
                let q_want = net.rule_params.q[m][ix] as f64 + eta_q * above[k] * apic[m][i];
                assert!(
                    (trained.params[m].y[ix] as f64 - y_want).abs() < 1e-6,
                    "Y[{m}]"
                );
                assert!(
                    (trained.rule_params.q[m][ix] as f64 - q_want).abs() < 1e-6,
                    "Q[{m}]"
                );
            }
        }
        assert_ne!(
            trained.rule_params.q[m], net.rule_params.q[m],
            "Q[{m}] learned"
        );
    }
}

#[test]
fn a_tied_q_cancels_the_apical_baseline_and_a_tied_y_follows_w() {
    let cfg = toy("y_mode = \"tied\"\nq_mode = \"tied\"", "[0.5, 0.5, 0.5]");
    let mut net = Network::new(cfg, 3);
    let check_tied = |net: &Network| {
        let d = &net.model.dynamics;
        for m in 0..2 {
            let above = &net.params[m + 1];
            let k = if m + 1 == 2 { d.k_d } else { d.k_b };
            let n = net.params[m].n;
            for kk in 0..above.n {
                for i in 0..n {
                    let want = 0.5 * k * d.lambda_max * above.weight(kk, i);
                    let y = net.params[m].y[kk * n + i];
                    assert!(
                        (y - want).abs() <= 1e-6 * want.abs().max(1e-3),
                        "Y[{m}] = 0.5 W'^T"
                    );
                    assert_eq!(net.rule_params.q[m][kk * n + i], 0.5 * y, "Q[{m}] = p_b Y");
                }
            }
        }
    };
    check_tied(&net);
    net.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    check_tied(&net);
    // With the teacher equal to the output's event rate, the output bursts at baseline, so
    // each hidden apical potential Y^T (p_b e) - Q^T e is 0, its burst probability
    // sigma(0) = 1/2 = p_b and nothing learns (the single phase's cancellation).
    let before = net.clone();
    let out: Vec<f32> = net
        .state
        .output()
        .forward
        .c
        .iter()
        .map(|&c| 1.0 / (1.0 + (-c).exp()))
        .collect();
    net.state.teach.copy_from_slice(&out);
    net.learn();
    for m in 0..3 {
        for (a, b) in net.params[m].w.iter().zip(&before.params[m].w) {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "W[{m}] moved: {b} -> {a}"
            );
        }
    }
    for m in 0..2 {
        let a = &net.state.burst.apical[m];
        assert!(a.iter().all(|v| v.abs() < 1e-5), "apical[{m}] = {a:?}");
    }
}

#[test]
fn model_file_checks_name_the_burst_fields() {
    let bad = |text: &str| {
        ModelConfig::from_toml_str(text, "m.toml")
            .expect_err(text)
            .to_string()
    };
    let mut cfg = toy("", "[0.1, 0.1, 0.1]");
    cfg.burst = None;
    let base = cfg.to_toml_string();
    let with = |extra: &str| format!("{base}\n[burst]\n{extra}\n");
    let e = bad(&with("p_baseline = 1.5"));
    assert!(e.contains("burst.p_baseline") && e.contains("1.5"), "{e}");
    let e = bad(&with("eta_q = nan"));
    assert!(e.contains("burst.eta_q"), "{e}");
    let e = bad(&with("q_mode = \"tied\"\neta_q = 0.01"));
    assert!(e.contains("burst.eta_q") && e.contains("tied"), "{e}");
    let e = bad(&with("y_mode = \"mirror\""));
    assert!(e.contains("mirror"), "{e}");
    let e = bad(&with("burst_rate = 3"));
    assert!(e.contains("burst_rate"), "{e}");
    // A [burst] table under another rule, the spiking network, and broadcast feedback to
    // two hidden layers are refused by name.
    let e = bad(&base
        .replace("rule = \"burstccn\"", "rule = \"backprop\"")
        .replace("[learning]", "[burst]\np_baseline = 0.5\n\n[learning]"));
    assert!(e.contains("`burst`") && e.contains("backprop"), "{e}");
    // Spiking BurstCCN: the apical potential must not drive the soma, and trace_tau is
    // refused on the rate network.
    let spiking = base.replace("mode = \"rate\"", "mode = \"spiking\"");
    ModelConfig::from_toml_str(&spiking, "m.toml").expect("spiking BurstCCN is valid");
    assert!(spiking.contains("g_A = 0.0\n"), "{spiking}");
    let e = bad(&spiking.replace("g_A = 0.0\n", "g_A = 0.05\n"));
    assert!(e.contains("neuron.g_A") && e.contains("0.05"), "{e}");
    let e = bad(&with("trace_tau = 10.0"));
    assert!(
        e.contains("burst.trace_tau") && e.contains("spiking"),
        "{e}"
    );
    let e = bad(&format!("{spiking}\n[burst]\ntrace_tau = -1.0\n"));
    assert!(e.contains("burst.trace_tau"), "{e}");
    let e = bad(&base.replace("\"next_layer\"", "\"broadcast\""));
    assert!(
        e.contains("network.feedback") && e.contains("next_layer"),
        "{e}"
    );
}

/// Trains `cfg` (a toy with 784 inputs) for two epochs straight and for one epoch resumed
/// for a second, on 300 examples, asserts that the two epoch-2 checkpoints are the same
/// bytes, and returns those bytes with the straight run's directory (which holds epoch 1).
fn resumed_equals_straight(
    tmp: &std::path::Path,
    data: &std::path::Path,
    cfg: &ModelConfig,
) -> (Vec<u8>, std::path::PathBuf) {
    let model = tmp.join("b.toml");
    fs::write(&model, cfg.to_toml_string()).unwrap();
    let train = |out: &std::path::Path, epochs: &str| {
        apical_ok(&[
            "train",
            s(&model),
            "--data",
            s(data),
            "--train-examples",
            "300",
            "--test-examples",
            "100",
            "--epochs",
            epochs,
            "--out",
            s(out),
            "--quiet",
        ])
    };
    let straight = tmp.join("straight");
    train(&straight, "2");
    let split = tmp.join("split");
    train(&split, "1");
    apical_ok(&[
        "train",
        "--resume",
        s(&split),
        "--epochs",
        "2",
        "--quiet",
        "--data",
        s(data),
    ]);
    let a = fs::read(straight.join("checkpoint-epoch-2.bin")).unwrap();
    let b = fs::read(split.join("checkpoint-epoch-2.bin")).unwrap();
    assert!(a == b, "resumed checkpoint differs from the straight run's");
    (a, straight)
}

/// Two epochs straight and one epoch plus a resumed one give the same checkpoint bytes,
/// which hold Q (format version 5).
#[test]
fn a_burstccn_run_resumes_byte_for_byte_with_q_in_its_checkpoint() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = toy("", "[0.1, 0.1, 0.1]");
    cfg.network.n_in = 784;
    cfg.network.hidden = vec![20, 10];
    let (a, straight) = resumed_equals_straight(tmp.path(), &data, &cfg);
    assert_eq!(
        u32::from_le_bytes(a[8..12].try_into().unwrap()),
        FORMAT_VERSION
    );
    let path = straight.join("checkpoint-epoch-2.bin");
    let ck = Checkpoint::from_bytes(&a, &path).expect("loads");
    ck.check(&path).expect("consistent");
    assert_eq!(
        ck.rule_params.q.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![20 * 10, 10 * 10]
    );
    let first = Checkpoint::load(&straight.join("checkpoint-epoch-1.bin")).unwrap();
    assert_ne!(
        first.rule_params.q, ck.rule_params.q,
        "Q learned in epoch 2"
    );
    // A Q of the wrong size is refused by name.
    let mut bad = ck.clone();
    bad.rule_params.q[1].pop();
    let bytes = bad.to_bytes();
    let err = Checkpoint::from_bytes(&bytes, &path)
        .unwrap()
        .check(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Q matrices") && err.contains("burstccn"),
        "{err}"
    );
}

/// `init = "guerguiev"` keeps section 7's W and b (those of every other rule for the seed)
/// and draws only Y and Q; `"xavier"` redraws W with the authors' spread, biases 0.
#[test]
fn the_two_initialisations_draw_what_they_say() {
    let ours = Network::new(toy("init = \"guerguiev\"", "[0.1, 0.1, 0.1]"), 5);
    let mut fa = toy("", "[0.1, 0.1, 0.1]");
    fa.burst = None;
    fa.learning.rule = apical::model::config::LearningRule::FeedbackAlignment;
    let fa = Network::new(fa, 5);
    for m in 0..3 {
        assert_eq!(
            ours.params[m].w, fa.params[m].w,
            "W[{m}] as section 7 draws it"
        );
        assert_eq!(ours.params[m].b, fa.params[m].b, "b[{m}]");
    }
    let xavier = Network::new(toy("", "[0.1, 0.1, 0.1]"), 5);
    let d = &xavier.model.dynamics;
    for (m, p) in xavier.params.iter().enumerate() {
        assert!(p.b.iter().all(|&b| b == 0.0), "b[{m}] = 0");
        // In the paper's units the weights have sd 3.6 sqrt(2 / (fan_in + fan_out)).
        let k = if m == 2 { d.k_d } else { d.k_b } as f64 * d.lambda_max as f64;
        let sd =
            (p.w.iter().map(|&w| (k * w as f64).powi(2)).sum::<f64>() / p.w.len() as f64).sqrt();
        let want = 3.6 * (2.0 / (p.n_pre + p.n) as f64).sqrt();
        // 24, 12 and 30 weights: the sample sd within 45 % of the drawn one.
        assert!(
            (sd / want - 1.0).abs() < 0.45,
            "layer {m}: sd {sd} vs {want}"
        );
    }
    // Q = p_b Y at the start (q_mode = "symmetric", q_scale = 1).
    for m in 0..2 {
        for (q, y) in xavier.rule_params.q[m].iter().zip(&xavier.params[m].y) {
            assert_eq!(*q, 0.5 * y);
        }
    }
}

// Burstprop (docs/model.md, section 12).

/// The toy network of [`toy`] under Burstprop with `burst` as its `[burst]` table.
fn toy_burstprop(burst: &str, eta: &str) -> ModelConfig {
    toy_rate_model(
        "burstprop",
        "[4, 3]",
        "next_layer",
        eta,
        &format!("[burst]\n{burst}"),
    )
}

#[test]
fn burstprop_burst_probabilities_follow_their_closed_forms() {
    // Eq. 12.4 with the authors' plain sigmoid (beta = 1): p = 1 / (1 + exp(-a (1 - e))).
    for (a, e) in [
        (0.0f32, 0.3f32),
        (2.0, 0.25),
        (-1.5, 0.6),
        (0.7, 1.0),
        (30.0, 0.5),
    ] {
        let want = 1.0 / (1.0 + (-(a as f64) * (1.0 - e as f64)).exp());
        let got = hidden_burst_probability(1.0, a, e);
        assert!((got as f64 - want).abs() < 1e-7, "{a} {e}: {got} vs {want}");
    }
    // Eq. 12.3 by hand: 2 units above, 3 below: a_i = sum_k p_k e_k Y[k, i].
    let y = [1.0, 0.0, -1.0, 0.5, 2.0, 0.0];
    let mut a = [9.0f32; 3];
    burst_feedback(&y, &[0.8, 0.5], &[0.5, 0.4], &mut a);
    let want = [0.4 + 0.2 * 0.5, 0.2 * 2.0, -0.4];
    for i in 0..3 {
        assert!((a[i] as f64 - want[i]).abs() < 1e-6, "a[{i}] = {}", a[i]);
    }
    // Eq. 12.5: the same bursts with and without the teacher give no error; more bursts
    // with it give a negative error (the weights grow).
    assert_eq!(burst_error(0.35, 0.35, 0.8), 0.0);
    assert!((burst_error(0.6, 0.4, 0.5) - (-0.1)).abs() < 1e-7);
}

#[test]
fn one_burstprop_example_updates_w_as_the_paper_computes_it() {
    let (eta, beta, p_b) = (0.2f64, 1.5f64, 0.3f64);
    let cfg = toy_burstprop(
        "p_baseline = 0.3\nbeta = 1.5\ny_scale = 0.8",
        "[0.2, 0.2, 0.2]",
    );
    let net = Network::new(cfg, 11);
    assert!(net.rule_params.is_empty(), "no matrices beyond W, b, Y");
    let before = to_paper(&net);
    let mut trained = net.clone();
    trained.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    let after = to_paper(&trained);

    let e = paper_events(&before);
    let top = before.len() - 1;
    let y_t = toy_teacher();
    // Without the teacher the output bursts at p_b; with it at p_b ((y - e)(1 - e) + 1).
    let eo = &e[top + 1];
    let mut p_bar = vec![Vec::new(); before.len()];
    let mut p = vec![Vec::new(); before.len()];
    let mut delta = vec![Vec::new(); before.len()];
    p_bar[top] = vec![p_b; 10];
    p[top] = (0..10)
        .map(|i| p_b * ((y_t[i] - eo[i]) * (1.0 - eo[i]) + 1.0))
        .collect();
    delta[top] = (0..10).map(|i| -(p[top][i] - p_b) * eo[i]).collect();
    // Hidden layers, top down: both passes through the same Y.
    for m in (0..top).rev() {
        let (n, above) = (net.params[m].n, &e[m + 2]);
        let y = &net.params[m].y;
        let apical_of = |q: &[f64]| -> Vec<f64> {
            (0..n)
                .map(|i| {
                    (0..above.len())
                        .map(|k| q[k] * above[k] * y[k * n + i] as f64)
                        .sum()
                })
                .collect()
        };
        let (a_bar, a) = (apical_of(&p_bar[m + 1]), apical_of(&p[m + 1]));
        let em = &e[m + 1];
        p_bar[m] = (0..n)
            .map(|i| sig(beta * a_bar[i] * (1.0 - em[i])))
            .collect();
        p[m] = (0..n).map(|i| sig(beta * a[i] * (1.0 - em[i]))).collect();
        delta[m] = (0..n).map(|i| -(p[m][i] - p_bar[m][i]) * em[i]).collect();
        assert!(
            delta[m].iter().any(|d| d.abs() > 1e-4),
            "layer {m}'s error is not zero"
        );
    }
    assert_forward_update(&before, &after, &e, &delta, eta);
    for m in 0..top {
        assert_eq!(trained.params[m].y, net.params[m].y, "Y[{m}] fixed");
    }
}

#[test]
fn a_tied_burstprop_y_follows_w() {
    let mut net = Network::new(
        toy_burstprop("y_mode = \"tied\"\ny_scale = 0.5", "[0.5, 0.5, 0.5]"),
        3,
    );
    net.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    let paper = to_paper(&net);
    for m in 0..2 {
        let n = net.params[m].n;
        for (k, row) in paper[m + 1].w.iter().enumerate() {
            for (i, &w) in row.iter().enumerate() {
                let y = net.params[m].y[k * n + i] as f64;
                assert!(
                    (y - 0.5 * w).abs() < 1e-6,
                    "Y[{m}][{k}][{i}] = {y}, W' = {w}"
                );
            }
        }
    }
}

#[test]
fn burstprop_model_checks_refuse_burstccn_fields_and_fill_its_defaults() {
    let bad = |text: &str| {
        ModelConfig::from_toml_str(text, "m.toml")
            .expect_err(text)
            .to_string()
    };
    let mut cfg = toy_burstprop("", "[0.1, 0.1, 0.1]");
    cfg.burst = None;
    let base = cfg.to_toml_string();
    let with = |extra: &str| format!("{base}\n[burst]\n{extra}\n");
    for field in [
        "q_mode = \"tied\"",
        "q_scale = 1.0",
        "eta_q = 0.001",
        "eta_y = 0.01",
    ] {
        let e = bad(&with(field));
        let name = field.split(' ').next().unwrap();
        assert!(
            e.contains(&format!("burst.{name}")) && e.contains("burstccn"),
            "{e}"
        );
    }
    let e = bad(&with("p_baseline = nan"));
    assert!(e.contains("burst.p_baseline"), "{e}");
    let e = bad(&with("beta = -1"));
    assert!(e.contains("burst.beta"), "{e}");
    let e = bad(&with("y_scale = inf"));
    assert!(e.contains("burst.y_scale"), "{e}");
    let e = bad(&base.replace("mode = \"rate\"", "mode = \"spiking\""));
    assert!(
        e.contains("learning.rule") && e.contains("burstprop") && e.contains("rate"),
        "{e}"
    );
    let e = bad(&base.replace("\"next_layer\"", "\"broadcast\""));
    assert!(
        e.contains("network.feedback") && e.contains("burstprop"),
        "{e}"
    );
    let e = bad(&with("p_baseline = 0.2").replace("rule = \"burstprop\"", "rule = \"guerguiev\""));
    assert!(e.contains("`burst`") && e.contains("guerguiev"), "{e}");
    // An empty table takes Burstprop's defaults (the authors' Burstprop trainer's), written
    // out with the model; BurstCCN's empty table writes out BurstCCN's, Q's included, as
    // before Burstprop shared the table.
    let filled = ModelConfig::from_toml_str(&with(""), "m.toml").unwrap();
    let b = filled.burst.as_ref().unwrap();
    assert_eq!(
        (b.p_baseline, b.beta, b.y_scale, b.q_mode, b.q_scale),
        (Some(0.2), Some(1.0), Some(1.0), None, None)
    );
    let text = filled.to_toml_string();
    assert!(
        text.contains("p_baseline = 0.2") && !text.contains("q_mode"),
        "{text}"
    );
    let ccn = toy("", "[0.1, 0.1, 0.1]").to_toml_string();
    for line in [
        "p_baseline = 0.5",
        "beta = 4.0",
        "y_scale = 0.5",
        "q_mode = \"symmetric\"",
        "q_scale = 1.0",
    ] {
        assert!(ccn.contains(line), "{line} missing from\n{ccn}");
    }
    // The defaults without a table are the same as with an empty one.
    let none = Network::new(cfg, 4);
    let empty = Network::new(filled, 4);
    assert_eq!(none.params[0].y, empty.params[0].y);
}

/// Two epochs straight and one epoch plus a resumed one give the same checkpoint bytes, in
/// the plain format (version 4: Burstprop keeps nothing beyond W, b and Y).
#[test]
fn a_burstprop_run_resumes_byte_for_byte_in_a_plain_checkpoint() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = toy_burstprop("", "[0.3, 0.3, 0.3]");
    cfg.network.n_in = 784;
    cfg.network.hidden = vec![20, 10];
    let (a, straight) = resumed_equals_straight(tmp.path(), &data, &cfg);
    assert_eq!(
        u32::from_le_bytes(a[8..12].try_into().unwrap()),
        PLAIN_VERSION
    );
    let path = straight.join("checkpoint-epoch-2.bin");
    let ck = Checkpoint::from_bytes(&a, &path).expect("loads");
    ck.check(&path).expect("consistent");
    assert!(ck.rule_params.is_empty());
    let first = Checkpoint::load(&straight.join("checkpoint-epoch-1.bin")).unwrap();
    assert_ne!(first.params[0].w, ck.params[0].w, "W learned in epoch 2");
}

/// models/burstccn-1h.toml with `hidden` hidden neurons, written into `dir`.
fn burstccn_1h_with_hidden(dir: &std::path::Path, hidden: usize) -> std::path::PathBuf {
    let path = dir.join("burstccn.toml");
    let text = fs::read_to_string("models/burstccn-1h.toml")
        .unwrap()
        .replace("hidden = [500]", &format!("hidden = [{hidden}]"));
    assert!(text.contains(&format!("hidden = [{hidden}]")));
    fs::write(&path, text).unwrap();
    path
}

/// Spiking BurstCCN (docs/model.md, section 11, "Spiking mode"): a short run of a
/// 784-520-10 network gives the same checkpoint bytes on one thread straight and on two
/// threads resumed after its first epoch, and its metrics give each layer's bursts per
/// event, near p_b = 0.5 (the output's moved by the teacher, the hidden layer's by its
/// apical potential), beside the rates.
#[test]
fn a_spiking_burstccn_run_is_thread_independent_resumes_and_counts_bursts() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = burstccn_1h_with_hidden(tmp.path(), 520);
    let train = |out: &std::path::Path, epochs: &str, threads: &str| {
        apical_ok(&[
            "train",
            s(&model),
            "--data",
            s(&data),
            "--train-examples",
            "150",
            "--test-examples",
            "20",
            "--epochs",
            epochs,
            "--threads",
            threads,
            "--out",
            s(out),
            "--quiet",
        ])
    };
    let straight = tmp.path().join("straight");
    train(&straight, "2", "1");
    let split = tmp.path().join("split");
    train(&split, "1", "2");
    apical_ok(&[
        "train",
        "--resume",
        s(&split),
        "--epochs",
        "2",
        "--threads",
        "2",
        "--quiet",
        "--data",
        s(&data),
    ]);
    let a = fs::read(straight.join("checkpoint-epoch-2.bin")).unwrap();
    let b = fs::read(split.join("checkpoint-epoch-2.bin")).unwrap();
    assert!(
        a == b,
        "two threads, resumed, differ from one thread straight"
    );
    let m = metrics_json(&straight);
    // Epoch 0 (the initial network's test) trained nothing and has none.
    for e in m.as_array().unwrap().iter().filter(|e| e["epoch"] != 0) {
        let p: Vec<f64> = e["burst_probability"]
            .as_array()
            .expect("burst_probability in metrics.json")
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|&x| x > 0.3 && x < 0.7), "{p:?}");
    }
    let csv = fs::read_to_string(straight.join("metrics.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("burst_prob_layer0,burst_prob_layer1"),
        "{csv}"
    );
}

/// Spiking BurstCCN's trace file flags each recorded spike of the hidden and output layers
/// as a burst or not (`spikes/<pop>/bursts`, one row per spike), and the NWB export carries
/// the flags unit by unit (`/units/spike_bursts`). With the integration window the whole
/// phase, the learning rule counts every spike, so each layer's fraction of flagged rows
/// over the epoch is the epoch's `burst_probability` of metrics.json.
#[test]
fn spiking_burstccn_traces_flag_bursts_as_the_metrics_count_them() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = burstccn_1h_with_hidden(tmp.path(), 40);
    let out = tmp.path().join("run");
    apical_ok(&[
        "train",
        s(&model),
        "--data",
        s(&data),
        "--train-examples",
        "60",
        "--test-examples",
        "10",
        "--epochs",
        "1",
        "--record",
        "spikes",
        "--set",
        "phases.integration_time=100",
        "--out",
        s(&out),
        "--quiet",
    ]);
    let m = metrics_json(&out);
    let epoch1 = m
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["epoch"] == 1)
        .unwrap();
    let p: Vec<f64> = epoch1["burst_probability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let f = hdf5::File::open(out.join("traces.h5")).unwrap();
    assert!(
        !f.link_exists("spikes/input/bursts"),
        "input spikes are never bursts"
    );
    let mut flagged = 0u64;
    for (m, pop) in ["hidden0", "output"].iter().enumerate() {
        let ts: Vec<f64> = read_h5(&f, &format!("spikes/{pop}/timestamps"));
        let b: Vec<u8> = read_h5(&f, &format!("spikes/{pop}/bursts"));
        assert_eq!(b.len(), ts.len(), "{pop}: one flag per spike");
        assert!(b.iter().all(|&x| x <= 1), "{pop}: flags are 0 or 1");
        let ones = b.iter().filter(|&&x| x == 1).count();
        assert!(ones > 0 && ones < b.len(), "{pop}: {ones} of {}", b.len());
        let fraction = ones as f64 / b.len() as f64;
        assert!(
            (fraction - p[m]).abs() < 1e-9,
            "{pop}: {fraction} of the spikes flagged, metrics count {}",
            p[m]
        );
        flagged += ones as u64;
    }
    drop(f);
    // Exported by a child process, not in this one: a file this process wrote keeps its
    // HDF5 lock in every `apical` the other tests of this binary start meanwhile (the
    // descriptor is inherited), and reopening it would then fail (tests/suite.rs).
    let nwb = tmp.path().join("run.nwb");
    apical_ok(&["export", "nwb", s(&out), "--out", s(&nwb)]);
    let g = hdf5::File::open(&nwb).unwrap();
    let times: Vec<f64> = read_h5(&g, "units/spike_times");
    let bursts: Vec<u8> = read_h5(&g, "units/spike_bursts");
    assert_eq!(bursts.len(), times.len());
    assert_eq!(
        bursts.iter().map(|&x| u64::from(x)).sum::<u64>(),
        flagged,
        "the NWB file flags the trace file's bursts"
    );
    let a: Vec<u64> = read_h5(&g, "units/spike_times_index");
    let b: Vec<u64> = read_h5(&g, "units/spike_bursts_index");
    assert_eq!(a, b, "one flag per spike of each unit");
}

/// Dataset `name` of `f`, read whole.
fn read_h5<T: hdf5::H5Type>(f: &hdf5::File, name: &str) -> Vec<T> {
    f.dataset(name)
        .and_then(|d| d.read_raw())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}
