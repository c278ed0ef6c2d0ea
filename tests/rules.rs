//! The learning rules of docs/model.md, section 10 (`[learning] rule`): backprop's update is
//! the gradient of the loss (eq. 10.1) by finite differences, feedback alignment's uses Y,
//! backprop's hidden updates are at 0 degrees to backprop in alignment.csv, a baseline run
//! resumes bit-identically, and the model file is checked for what each rule reads.

// Index loops mirror the equations' subscripts (Y[i][k]).
#![allow(clippy::needless_range_loop)]

mod common;

use apical::model::config::{LearningRule, ModelConfig};
use apical::run::alignment::{cosine, degrees, AlignmentLog};
use apical::sim::network::Network;
use common::{apical, data_dir, s, toy_rate_model, TOY_IMAGE, TOY_LABEL};
use std::fs;

/// A 6-input, 4-hidden(, 3-hidden), 10-output rate network under `rule`.
fn toy(rule: &str, hidden: &str, feedback: &str, eta: &str) -> ModelConfig {
    toy_rate_model(
        rule,
        hidden,
        feedback,
        eta,
        "[init]\nweight_optimisation = false",
    )
}

/// Eq. 10.1 for the network's current weights: one forward phase without learning (eta 0
/// in a copy), then the cross-entropy of sigma(C_out) against the label, in f64.
fn loss(net: &Network) -> f64 {
    let mut probe = net.clone();
    for p in &mut probe.model.cfg.learning.eta {
        *p = 0.0;
    }
    probe.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    let c = &probe.state.output().forward.c;
    c.iter()
        .enumerate()
        .map(|(i, &c)| {
            let p = 1.0 / (1.0 + (-(c as f64)).exp());
            if i == TOY_LABEL as usize {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum()
}

/// The central difference of the loss by weight `k` of layer `m` (step h).
fn numeric_gradient(net: &Network, m: usize, k: usize, h: f32) -> f64 {
    let mut plus = net.clone();
    plus.params[m].w[k] += h;
    let mut minus = net.clone();
    minus.params[m].w[k] -= h;
    (loss(&plus) - loss(&minus)) / (2.0 * h as f64)
}

#[test]
fn backprop_update_is_the_gradient_of_the_cross_entropy() {
    for hidden in ["[4]", "[4, 3]"] {
        let eta = if hidden == "[4]" {
            "[0.5, 0.5]"
        } else {
            "[0.5, 0.5, 0.5]"
        };
        let cfg = toy("backprop", hidden, "next_layer", eta);
        let net = Network::new(cfg, 7);
        let mut trained = net.clone();
        trained.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
        let mut checked = 0;
        for m in 0..net.params.len() {
            for k in (0..net.params[m].w.len()).step_by(3) {
                let g = numeric_gradient(&net, m, k, 1e-2);
                let dw = (trained.params[m].w[k] - net.params[m].w[k]) as f64;
                // W <- W - eta dL/dW (eq. 10.5): dW = -0.5 g.
                let want = -0.5 * g;
                assert!(
                    (dw - want).abs() <= 2e-3 * want.abs().max(1e-3) + 2e-6,
                    "{hidden} layer {m} weight {k}: update {dw}, -eta dL/dW {want}"
                );
                if g.abs() > 1e-4 {
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 10,
            "{hidden}: only {checked} non-zero gradients compared"
        );
    }
}

#[test]
fn feedback_alignment_sends_the_error_through_y_not_w() {
    let cfg = toy("feedback-alignment", "[4]", "broadcast", "[0.5, 0.5]");
    let net = Network::new(cfg.clone(), 7);
    // The output layer's update is backprop's (eq. 10.2 is shared).
    let mut bp_cfg = cfg;
    bp_cfg.learning.rule = LearningRule::Backprop;
    let mut bp = net.clone();
    bp.model = apical::sim::network::Model::new(bp_cfg);
    let mut fa = net.clone();
    fa.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    bp.train_example(&TOY_IMAGE, TOY_LABEL, 2, 2);
    assert_eq!(fa.params[1].w, bp.params[1].w);
    assert_eq!(fa.state.errors[1], bp.state.errors[1]);
    // The hidden error is (Y E_out) k_B lambda_max sigma'(C), recomputed here.
    let d = &net.model.dynamics;
    let p = &net.params[0];
    let e_out = &fa.state.errors[1];
    let c = &fa.state.layers[0].forward.c;
    for i in 0..p.n {
        let ye: f64 = (0..p.n_fb)
            .map(|k| p.y[k * p.n + i] as f64 * e_out[k] as f64)
            .sum();
        let s = 1.0 / (1.0 + (-(c[i] as f64)).exp());
        let want = ye * (d.k_b * d.lambda_max) as f64 * s * (1.0 - s);
        let got = fa.state.errors[0][i] as f64;
        assert!(
            (got - want).abs() < 1e-6 * want.abs().max(1e-3),
            "neuron {i}: {got} vs {want}"
        );
    }
    // ... which is not backprop's: Y is not W^T.
    let a = degrees(cosine(&fa.state.errors[0], &bp.state.errors[0]).unwrap());
    assert!(
        a > 1.0,
        "feedback alignment's hidden error at {a} degrees to backprop's"
    );
    // Y never changes.
    assert_eq!(fa.params[0].y, net.params[0].y);
}

#[test]
fn alignment_angle_is_zero_under_backprop_and_not_under_feedback_alignment() {
    for (rule, zero) in [("backprop", true), ("feedback-alignment", false)] {
        let cfg = toy(rule, "[4, 3]", "next_layer", "[0.3, 0.3, 0.3]");
        let mut net = Network::new(cfg, 11);
        let mut log = AlignmentLog::default();
        for k in 0..20u8 {
            let mut img = TOY_IMAGE;
            img[(k % 6) as usize] = k.wrapping_mul(37);
            log.before_example(&net);
            net.train_example(&img, k % 10, 2, 2);
            log.after_example(&net);
        }
        log.end_epoch(1, &net);
        assert_eq!(log.records.len(), 2);
        for r in &log.records {
            assert_eq!(r.update_examples, 20, "{rule} layer {}", r.layer);
            if zero {
                assert!(
                    r.update_angle_deg < 0.05,
                    "{rule} layer {}: {}",
                    r.layer,
                    r.update_angle_deg
                );
            } else {
                assert!(
                    r.update_angle_deg > 1.0,
                    "{rule} layer {}: {}",
                    r.layer,
                    r.update_angle_deg
                );
            }
            assert!(r.pinv_angle_deg.is_finite(), "{rule} layer {}", r.layer);
        }
    }
}

#[test]
fn model_files_name_what_a_rule_does_not_read() {
    let base = fs::read_to_string("models/baseline-backprop-1h.toml").unwrap();
    let bad = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        ModelConfig::from_toml_str(&text, "m.toml")
            .unwrap_err()
            .to_string()
    };
    let e = bad("rule = \"backprop\"", "rule = \"hebb\"");
    assert!(
        e.contains("m.toml") && e.contains("rule") && e.contains("feedback-alignment"),
        "{e}"
    );
    let e = bad("mode = \"rate\"", "mode = \"spiking\"");
    assert!(
        e.contains("learning.rule") && e.contains("neuron.mode = \"rate\""),
        "{e}"
    );
    let e = bad(
        "rule = \"backprop\"",
        "rule = \"backprop\"\nfeedback_mode = \"symmetric\"",
    );
    assert!(
        e.contains("learning.feedback_mode") && e.contains("not read"),
        "{e}"
    );
    let e = bad(
        "rule = \"backprop\"",
        "rule = \"backprop\"\neta_feedback = [0.1]",
    );
    assert!(e.contains("learning.eta_feedback"), "{e}");
    let e = bad(
        "rule = \"backprop\"",
        "rule = \"backprop\"\nfeedback_sparsity = 0.8",
    );
    assert!(e.contains("learning.feedback_sparsity"), "{e}");
    let e = bad("eta = [3.0, 3.0]", "eta = [3.0]");
    assert!(e.contains("learning.eta"), "{e}");
    // The default rule is not written out, so a segregated-dendrite model's text (and so
    // every checkpoint) is what it was before rules could be chosen; another one is.
    let g = ModelConfig::default_model();
    assert!(!g.to_toml_string().contains("rule"));
    let b = ModelConfig::from_toml_str(&base, "b").unwrap();
    let text = b.to_toml_string();
    assert!(text.contains("rule = \"backprop\""), "{text}");
    assert_eq!(ModelConfig::from_toml_str(&text, "again").unwrap(), b);
}

#[test]
fn every_baseline_model_file_loads() {
    for (f, rule) in [
        ("baseline-backprop-1h", LearningRule::Backprop),
        ("baseline-backprop-2h", LearningRule::Backprop),
        (
            "baseline-feedback-alignment-1h",
            LearningRule::FeedbackAlignment,
        ),
        (
            "baseline-feedback-alignment-2h",
            LearningRule::FeedbackAlignment,
        ),
    ] {
        let cfg =
            ModelConfig::from_file(std::path::Path::new(&format!("models/{f}.toml"))).unwrap();
        assert_eq!(cfg.learning.rule, rule, "{f}");
        assert_eq!(cfg.name, f);
    }
}

#[test]
fn a_baseline_run_resumes_bit_identically() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, extra: &[&str]| {
        let mut c = apical();
        c.args([
            "train",
            "models/baseline-feedback-alignment-1h.toml",
            "--train-examples",
            "300",
        ])
        .args([
            "--test-examples",
            "100",
            "--data",
            s(&data),
            "--quiet",
            "--out",
            s(out),
        ])
        .args(extra);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&a, &["--epochs", "2"]);
    run(&b, &["--epochs", "1"]);
    let mut c = apical();
    c.args([
        "train",
        "--resume",
        s(&b),
        "--epochs",
        "2",
        "--quiet",
        "--data",
        s(&data),
    ]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = "checkpoint-epoch-2.bin";
    assert_eq!(fs::read(a.join(ck)).unwrap(), fs::read(b.join(ck)).unwrap());
    let metrics = fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        4,
        "header, epoch 0 and two epochs: {metrics}"
    );
    let align = fs::read_to_string(a.join("alignment.csv")).unwrap();
    assert!(align.starts_with(
        "epoch,layer,update_angle_deg,update_examples,feedback_angle_deg,pinv_angle_deg"
    ));
}

/// The rates in metrics are spikes (or expected spikes) per simulated step: a one-phase
/// rule simulates no target phase, so its rates do not depend on `l_t`, which it does not
/// read (they were once divided by l_f + l_t steps).
#[test]
fn a_one_phase_rules_rates_are_per_step_it_simulated() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rates = |l_t: &str| {
        let out = tmp.path().join(format!("lt{l_t}"));
        let o = apical()
            .args([
                "train",
                "models/baseline-backprop-1h.toml",
                "--data",
                s(&data),
                "--epochs",
                "1",
                "--train-examples",
                "200",
                "--test-examples",
                "50",
                "--set",
                &format!("phases.l_t={l_t}"),
                "--out",
                s(&out),
                "--quiet",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
        // The last row: epoch 1 (epoch 0, the initial test, has no rates).
        let last = m.as_array().unwrap().last().unwrap();
        assert_eq!(last["epoch"], 1);
        let r: Vec<f64> = last["rates_hz"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        r
    };
    let (a, b) = (rates("50"), rates("2"));
    assert_eq!(a, b);
    // lambda_max sigma(C) with lambda_max = 200 Hz: every unit between 0 and 200 Hz, and
    // sigmoid units of an untrained-ish network far from silent on average.
    assert!(a.iter().all(|&r| r > 5.0 && r < 200.0), "{a:?}");
}
