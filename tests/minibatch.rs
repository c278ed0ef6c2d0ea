//! `[training] batch_size` (docs/model.md, section 12): a minibatch's update is the mean of
//! the per-example updates online learning computes from the same starting weights (backprop,
//! feedback alignment, BurstCCN with learned Y and Q, Burstprop), the model file refuses batch_size for
//! the rules and networks that learn one example at a time and out of range, and a run with
//! minibatches resumes from its mid-epoch checkpoints byte for byte.

mod common;

use apical::io::checkpoint::{epoch_file_name, list_checkpoints, Checkpoint};
use apical::model::config::ModelConfig;
use apical::model::params::LayerParams;
use apical::run::events::Quiet;
use apical::run::trainer::{TrainError, Trainer};
use apical::sim::network::Network;
use common::{
    metrics_without_wall, mnist, run_info, run_options, toy_rate_model, trainer, StopAt, MODEL_1H,
};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Four examples of the 6-input toy network, all different; input 4 is dark in all of them
/// (its weights must not move: the batch's first layer skips it).
const IMAGES: [([u8; 6], u8); 4] = [
    ([0, 40, 255, 128, 0, 200], 3),
    ([90, 0, 0, 255, 0, 10], 7),
    ([255, 255, 0, 0, 0, 1], 0),
    ([12, 140, 77, 0, 0, 99], 3),
];

/// Every learned value of a network, in a fixed order: W, b, Y of each layer, then Q.
fn values(net: &Network) -> Vec<f64> {
    let layer = |p: &LayerParams| {
        p.w.iter()
            .chain(&p.b)
            .chain(&p.y)
            .map(|&v| v as f64)
            .collect::<Vec<_>>()
    };
    net.params
        .iter()
        .flat_map(layer)
        .chain(net.rule_params.q.iter().flatten().map(|&v| v as f64))
        .collect()
}

/// Trains the batch of `IMAGES` on `cfg` once as a minibatch and once as four online
/// examples, each from the same starting network; the minibatch's change of every value
/// must be the mean of the four online changes, and its predictions theirs.
fn batch_is_the_mean_of_online_updates(cfg: ModelConfig) {
    let start = Network::new(cfg, 5);
    let before = values(&start);
    let mut mean = vec![0.0; before.len()];
    let mut online_preds = Vec::new();
    for (image, label) in IMAGES {
        let mut net = start.clone();
        let out = net.train_example(&image, label, 2, 0);
        online_preds.push(out.predicted);
        for ((m, a), b) in mean.iter_mut().zip(values(&net)).zip(&before) {
            *m += (a - b) / IMAGES.len() as f64;
        }
    }
    let mut net = start.clone();
    for (image, label) in IMAGES {
        net.push_batch_example(&image, label);
    }
    assert_eq!(net.batch_len(), 4);
    let mut preds = Vec::new();
    net.train_batch(&[2; 4], &mut preds);
    assert_eq!(net.batch_len(), 0, "the batch is cleared");
    assert_eq!(preds, online_preds);
    let after = values(&net);
    // Input 4's row of the first layer's W (`w[4 * n + i]`, first in `values`).
    let n = start.params[0].n;
    assert_eq!(
        after[4 * n..5 * n],
        before[4 * n..5 * n],
        "a dark input's weights moved"
    );
    let scale = mean.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(scale > 1e-3, "the updates are not all zero ({scale})");
    let mut changed = 0;
    for (i, ((a, b), m)) in after.iter().zip(&before).zip(&mean).enumerate() {
        let d = a - b;
        // f32 sums in another order: a few ulps of the values themselves.
        let tol = 1e-5 * scale + 4e-7 * b.abs();
        assert!(
            (d - m).abs() <= tol,
            "value {i}: minibatch change {d}, mean of online changes {m}"
        );
        changed += usize::from(m.abs() > tol);
    }
    assert!(changed > after.len() / 4, "only {changed} values changed");
}

#[test]
fn a_backprop_minibatch_applies_the_mean_of_its_examples_updates() {
    batch_is_the_mean_of_online_updates(toy_rate_model(
        "backprop",
        "[5, 4]",
        "next_layer",
        "[0.5, 0.5, 0.5]",
        "",
    ));
}

#[test]
fn a_feedback_alignment_minibatch_applies_the_mean_of_its_examples_updates() {
    batch_is_the_mean_of_online_updates(toy_rate_model(
        "feedback-alignment",
        "[5, 4]",
        "broadcast",
        "[0.5, 0.5, 0.5]",
        "",
    ));
}

#[test]
fn a_burstccn_minibatch_applies_the_mean_of_w_y_and_q_updates() {
    // Learned Y and Q: both follow the batch's mean too.
    batch_is_the_mean_of_online_updates(toy_rate_model(
        "burstccn",
        "[5, 4]",
        "next_layer",
        "[0.5, 0.5, 0.5]",
        "[burst]\ny_mode = \"random\"\nq_mode = \"symmetric\"\neta_y = 0.05\neta_q = 0.02",
    ));
    // Tied Y and Q are re-tied to the weights after the batch's update.
    let cfg = toy_rate_model(
        "burstccn",
        "[5, 4]",
        "next_layer",
        "[0.5, 0.5, 0.5]",
        "[burst]\ny_mode = \"tied\"\nq_mode = \"tied\"",
    );
    batch_is_the_mean_of_online_updates(cfg);
}

#[test]
fn a_burstprop_minibatch_applies_the_mean_of_its_examples_updates() {
    // Fixed random Y: W and b follow the mean of the per-example updates, each from the
    // burst probabilities with and without the teacher of its own example.
    batch_is_the_mean_of_online_updates(toy_rate_model(
        "burstprop",
        "[5, 4]",
        "next_layer",
        "[0.5, 0.5, 0.5]",
        "[burst]\ny_scale = 0.5",
    ));
    // A tied Y is re-tied to the weights after the batch's update.
    batch_is_the_mean_of_online_updates(toy_rate_model(
        "burstprop",
        "[5, 4]",
        "next_layer",
        "[0.5, 0.5, 0.5]",
        "[burst]\ny_mode = \"tied\"\ny_scale = 0.5",
    ));
}

/// The model text with `[training] batch_size = b` (and `extra` lines).
fn with_batch(text: &str, b: &str, extra: &str) -> Result<ModelConfig, String> {
    let t = if text.contains("[training]\n") {
        text.replace(
            "[training]\n",
            &format!("[training]\nbatch_size = {b}\n{extra}\n"),
        )
    } else {
        format!("{text}\n[training]\nbatch_size = {b}\n{extra}\n")
    };
    ModelConfig::from_toml_str(&t, "m.toml").map_err(|e| e.to_string())
}

#[test]
fn batch_size_is_refused_by_name_where_a_rule_learns_one_example_at_a_time() {
    let models = |name: &str| {
        fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models")
                .join(name),
        )
        .unwrap()
    };
    // Allowed: the gradient rules and the burst rules on the rate network; 1 everywhere.
    for name in [
        "baseline-backprop-1h.toml",
        "baseline-feedback-alignment-1h.toml",
        "burstccn-1h-rate.toml",
        "burstprop-1h-rate.toml",
    ] {
        let cfg = with_batch(&models(name), "32", "").unwrap();
        assert_eq!(cfg.training.batch_size, 32);
        // Written to the model text (and so to checkpoints) when not 1.
        assert!(cfg.to_toml_string().contains("batch_size = 32"));
    }
    for name in ["guerguiev-1h.toml", "guerguiev-1h-rate.toml"] {
        let cfg = with_batch(&models(name), "1", "").unwrap();
        // Absent from the model text at its default: online runs keep their bytes.
        assert!(!cfg.to_toml_string().contains("batch_size"));
        let err = with_batch(&models(name), "2", "").unwrap_err();
        assert!(
            err.contains("m.toml")
                && err.contains("training.batch_size")
                && err.contains("guerguiev"),
            "{err}"
        );
    }
    let err = with_batch(MODEL_1H, "4", "").unwrap_err();
    assert!(
        err.contains("training.batch_size") && err.contains("\"spiking\""),
        "{err}"
    );
    let fa = models("baseline-feedback-alignment-1h.toml");
    let err = with_batch(&fa, "0", "").unwrap_err();
    assert!(
        err.contains("training.batch_size") && err.contains("at least 1"),
        "{err}"
    );
    let fa_small = fa.replace("train_examples = 60000", "train_examples = 100");
    with_batch(&fa_small, "100", "").unwrap();
    let err = with_batch(&fa_small, "101", "").unwrap_err();
    assert!(
        err.contains("training.batch_size")
            && err.contains("at most training.train_examples = 100"),
        "{err}"
    );
    let err = with_batch(&fa, "2.5", "").unwrap_err();
    assert!(err.contains("batch_size"), "{err}");
}

/// Minibatches of 8 (a last one of 4 in each epoch of 300), periodic checkpoints asked every
/// 70 examples and quick tests every 100: both fall at the end of the batch that reaches
/// them, so every mid-epoch checkpoint is on a batch boundary (it holds no half batch). A
/// run stopped mid-epoch (the stop is seen at the batch's end) and continued writes the bytes
/// of the run that went straight; resumed from any of its checkpoints, the same weights and
/// records (see below for the firing rates).
#[test]
fn a_minibatch_run_resumes_from_mid_epoch_checkpoints_byte_for_byte() {
    let Some(data) = mnist() else {
        return;
    };
    let mut cfg = toy_rate_model(
        "burstccn",
        "[20, 10]",
        "next_layer",
        "[0.3, 0.3, 0.3]",
        "[burst]\neta_y = 0.01\n[training]\nbatch_size = 8\nquick_test_every = 100\nquick_test_examples = 20",
    );
    cfg.network.n_in = 784;
    let straight = tempfile::tempdir().unwrap();
    let mut t = trainer(&cfg, data, run_options(straight.path(), 2, 300, 0));
    t.run(&AtomicBool::new(false), &mut Quiet).unwrap();
    let want = fs::read(straight.path().join(epoch_file_name(2))).unwrap();

    let split = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let mut t = trainer(&cfg, data, run_options(split.path(), 2, 300, 70));
    let mut p = StopAt::new(2, 150, &stop);
    match t.run(&stop, &mut p) {
        Err(TrainError::Interrupted {
            epoch: 2,
            example: 152,
            ..
        }) => {}
        other => panic!("expected an interrupt at epoch 2 example 152, got {other:?}"),
    }
    let names: Vec<String> = list_checkpoints(split.path())
        .unwrap()
        .iter()
        .map(|(_, _, p)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "checkpoint-epoch-1.bin",
            "checkpoint-epoch-2-example-72.bin",
            "checkpoint-epoch-2-example-144.bin",
            "checkpoint-epoch-2-example-152.bin"
        ]
    );
    // From a mid-epoch checkpoint: the same weights, Q, errors and records byte for byte;
    // only the resumed epoch's firing rates differ, as for every rate-mode run resumed inside
    // an epoch (the rate sums are not saved: `LayerState::rate_sum`).
    let straight_ck = Checkpoint::load(&straight.path().join(epoch_file_name(2))).unwrap();
    let without_rates = |ck: &Checkpoint| {
        let mut h = ck.history.clone();
        h[1].rates_hz.clear();
        h
    };
    for name in &names[1..] {
        let ck = Checkpoint::load(&split.path().join(name)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::resume(ck, data, run_options(dir.path(), 2, 300, 0)).unwrap();
        t.run(&AtomicBool::new(false), &mut Quiet).unwrap();
        let got = Checkpoint::load(&dir.path().join(epoch_file_name(2))).unwrap();
        assert!(
            got.params == straight_ck.params,
            "resumed from {name}: W, b, Y differ"
        );
        assert!(
            got.rule_params == straight_ck.rule_params,
            "resumed from {name}: Q differs"
        );
        assert_eq!(without_rates(&got), without_rates(&straight_ck), "{name}");
    }
    // From the epoch boundary: the straight run's bytes.
    let ck = Checkpoint::load(&split.path().join(epoch_file_name(1))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut t1 = Trainer::resume(ck, data, run_options(dir.path(), 2, 300, 0)).unwrap();
    t1.run(&AtomicBool::new(false), &mut Quiet).unwrap();
    assert!(fs::read(dir.path().join(epoch_file_name(2))).unwrap() == want);
    // The interrupted trainer itself carries on to the same bytes and metrics.
    stop.store(false, Ordering::SeqCst);
    t.run(&stop, &mut Quiet).unwrap();
    assert!(fs::read(split.path().join(epoch_file_name(2))).unwrap() == want);
    assert_eq!(
        metrics_without_wall(straight.path()),
        metrics_without_wall(split.path())
    );
}

/// A run asked for fewer training examples than its batch is refused, naming the field.
#[test]
fn a_batch_larger_than_the_epoch_is_refused() {
    let Some(data) = mnist() else {
        return;
    };
    let cfg = toy_rate_model(
        "backprop",
        "[5]",
        "broadcast",
        "[0.5, 0.5]",
        "[training]\nbatch_size = 64",
    );
    let mut c = cfg;
    c.network.n_in = 784;
    let dir = tempfile::tempdir().unwrap();
    let o = run_options(&dir.path().join("r"), 2, 50, 0);
    let i = run_info(&o);
    let err = Trainer::new(c, data, o, &i)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("training.batch_size = 64") && err.contains("50 training examples"),
        "{err}"
    );
}
