//! Checkpoints through the library: the file format's error handling (truncation, flipped
//! bytes, versions, foreign files, hand-made inconsistent files), atomic writes that fail
//! (full disk, unwritable directory), resume equal to an uninterrupted run bit for bit (at an
//! epoch boundary, from a periodic mid-epoch checkpoint, after an interrupt), and divergence
//! (NaN weights, an absurd learning rate) stopping with the last good checkpoint kept.

mod common;

use apical::base::rng::Key;
use apical::io::checkpoint::{
    self, epoch_file_name, list_checkpoints, Checkpoint, CheckpointError, FORMAT_VERSION, MAGIC,
    PLAIN_VERSION,
};
use apical::io::mnist::Mnist;
use apical::io::run_dir::{trained, EpochMetrics};
use apical::model::config::ModelConfig;
use apical::model::params::LayerParams;
use apical::run::events::{Quiet, RunEvents};
use apical::run::metrics::evaluate;
use apical::run::trainer::{RunOptions, TrainError, Trainer};
use apical::sim::network::Network;
use common::{
    metrics_without_wall, mnist, run_options, small_model_toml, small_model_with, trainer, StopAt,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

fn new_trainer<'a>(model: &str, data: &'a Mnist, o: RunOptions) -> Trainer<'a> {
    let cfg = ModelConfig::from_toml_str(model, "test model").expect("valid test model");
    trainer(&cfg, data, o)
}

/// Trains a fresh run to completion.
fn train(model: &str, data: &Mnist, o: RunOptions) {
    let mut t = new_trainer(model, data, o);
    t.run(&AtomicBool::new(false), &mut Quiet)
        .expect("run completes");
}

fn bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// A small trained checkpoint (1 epoch of 60 examples), made once per test binary: its
/// bytes and the path it had, which only names it in messages. The directory it was
/// trained in is removed at once (a static is never dropped, so a kept `TempDir` would
/// stay behind in the system's temporary directory after every `cargo test`).
fn small_checkpoint() -> Option<(Vec<u8>, PathBuf)> {
    use std::sync::OnceLock;
    static CK: OnceLock<Option<(Vec<u8>, PathBuf)>> = OnceLock::new();
    CK.get_or_init(|| {
        let data = mnist()?;
        let dir = tempfile::tempdir().expect("tempdir");
        train(&small_model_toml(), data, run_options(dir.path(), 1, 60, 0));
        let p = dir.path().join(epoch_file_name(1));
        let raw = bytes(&p);
        dir.close().expect("the training directory is removed");
        Some((raw, p))
    })
    .clone()
}

#[test]
fn the_shared_small_checkpoint_leaves_no_directory_behind() {
    let Some((_, path)) = small_checkpoint() else {
        return;
    };
    let dir = path.parent().expect("a file in a directory");
    assert!(
        !dir.exists(),
        "{} is left in the temporary directory",
        dir.display()
    );
}

#[test]
fn checkpoint_round_trips_and_holds_the_run() {
    let Some((raw, path)) = small_checkpoint() else {
        return;
    };
    let ck = Checkpoint::from_bytes(&raw, &path).expect("loads");
    assert_eq!(ck.to_bytes(), raw, "decode + encode gives the same bytes");
    assert_eq!(&raw[..8], MAGIC);
    // A segregated-dendrite network keeps no rule matrices: version 4, as before version 5.
    assert_eq!(
        u32::from_le_bytes(raw[8..12].try_into().unwrap()),
        PLAIN_VERSION
    );
    assert_eq!(ck.epochs_done, 1);
    assert_eq!(ck.history.len(), 1);
    assert_eq!(ck.history[0].train_examples, 60);
    assert_eq!((ck.seed, ck.train_examples, ck.test_examples), (7, 60, 100));
    assert!(ck.progress.is_none());
    assert_eq!(
        ck.model_sha256,
        checkpoint::sha256_hex(ck.model_toml.as_bytes())
    );
    let cfg = ck.check(&path).expect("consistent");
    assert_eq!(cfg.network.hidden, vec![20]);
}

#[test]
fn truncated_at_every_byte_is_an_error_naming_the_file() {
    let Some((raw, path)) = small_checkpoint() else {
        return;
    };
    for len in 0..raw.len() {
        match Checkpoint::from_bytes(&raw[..len], &path) {
            Err(e @ CheckpointError::Truncated { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("truncated"), "{msg}");
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
            Err(e) => panic!("truncated at {len}: expected a truncation error, got {e}"),
            Ok(_) => panic!(
                "a checkpoint truncated to {len} of {} bytes loaded",
                raw.len()
            ),
        }
    }
    // And a truncated file on disk through `load`.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.bin");
    fs::write(&p, &raw[..raw.len() / 2]).unwrap();
    let msg = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(
        msg.contains("cut.bin") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn flipped_bytes_are_detected() {
    let Some((raw, path)) = small_checkpoint() else {
        return;
    };
    // Every header byte and a spread of payload bytes (each payload check hashes the file).
    let positions: Vec<usize> = (0..52).chain((52..raw.len()).step_by(211)).collect();
    for &i in &positions {
        let mut bad = raw.clone();
        bad[i] ^= 0x5a;
        let err = match Checkpoint::from_bytes(&bad, &path) {
            Err(e) => e,
            Ok(_) => panic!("a checkpoint with byte {i} flipped loaded"),
        };
        let msg = err.to_string();
        match i {
            0..=7 => assert!(
                matches!(err, CheckpointError::NotACheckpoint { .. }),
                "{msg}"
            ),
            8..=11 => assert!(matches!(err, CheckpointError::Version { .. }), "{msg}"),
            // The length: too long reads as truncated, too short leaves trailing bytes.
            12..=19 => assert!(
                matches!(
                    err,
                    CheckpointError::Truncated { .. } | CheckpointError::Corrupt { .. }
                ),
                "{msg}"
            ),
            _ => assert!(msg.contains("checksum mismatch"), "byte {i}: {msg}"),
        }
    }
    // Appended bytes.
    let mut long = raw.clone();
    long.push(0);
    let msg = Checkpoint::from_bytes(&long, &path)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("trailing bytes"), "{msg}");
}

#[test]
fn old_versions_and_foreign_files_get_clear_errors() {
    let Some((raw, _)) = small_checkpoint() else {
        return;
    };
    let p = Path::new("runs/x/checkpoint-epoch-1.bin");
    let mut old = raw.clone();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    let msg = Checkpoint::from_bytes(&old, p).unwrap_err().to_string();
    assert!(
        msg.contains("format version 1")
            && msg.contains(&format!("reads version {FORMAT_VERSION}"))
            && msg.contains("runs/x/checkpoint-epoch-1.bin"),
        "{msg}"
    );
    for foreign in [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
        b"name = \"guerguiev-1h\"\n[network]\n",
        &[0u8; 100][..],
    ] {
        let msg = Checkpoint::from_bytes(foreign, p).unwrap_err().to_string();
        assert!(msg.contains("is not an apical checkpoint"), "{msg}");
    }
    let msg = Checkpoint::from_bytes(b"", p).unwrap_err().to_string();
    assert!(msg.contains("truncated: 0 bytes"), "{msg}");

    // Version 3 differs only in the mid-epoch state: its end-of-epoch files load as they
    // are, its mid-epoch files get an error that says what to resume from instead.
    let mut v3 = raw.clone();
    v3[8..12].copy_from_slice(&3u32.to_le_bytes());
    let ck = Checkpoint::from_bytes(&v3, p).expect("a version-3 end-of-epoch checkpoint loads");
    assert_eq!(ck.to_bytes(), raw, "and is the same checkpoint");
    let mut mid = ck.clone();
    let cfg = mid.check(p).expect("consistent");
    let model = apical::sim::network::Model::new(cfg);
    mid.progress = Some(checkpoint::EpochProgress {
        example: 10,
        correct: 3,
        steps: 1000,
        state: apical::sim::state::NetState::new(
            &model,
            7,
            apical::base::rng::Purpose::TrainSpikes,
            &[2],
        ),
    });
    let mut mid_v3 = mid.to_bytes();
    assert!(
        Checkpoint::from_bytes(&mid_v3, p).is_ok(),
        "version 4 mid-epoch loads"
    );
    mid_v3[8..12].copy_from_slice(&3u32.to_le_bytes());
    match Checkpoint::from_bytes(&mid_v3, p) {
        Err(e @ CheckpointError::OldMidEpoch { found: 3, .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("runs/x/checkpoint-epoch-1.bin")
                    && msg.contains("inside an epoch")
                    && msg.contains("checkpoint-epoch-N.bin"),
                "{msg}"
            );
        }
        other => panic!("expected OldMidEpoch, got {other:?}"),
    }
    let msg = Checkpoint::load(Path::new("/nonexistent/ck.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cannot read checkpoint /nonexistent/ck.bin"),
        "{msg}"
    );
}

#[test]
fn hand_made_inconsistent_checkpoints_fail_the_check() {
    let Some((raw, path)) = small_checkpoint() else {
        return;
    };
    let good = Checkpoint::from_bytes(&raw, &path).unwrap();
    // Re-encoded with a valid checksum, so only the consistency check can catch these.
    let reload = |ck: &Checkpoint| Checkpoint::from_bytes(&ck.to_bytes(), &path);

    let mut ck = good.clone();
    ck.params[0].w.pop();
    let msg = reload(&ck).unwrap().check(&path).unwrap_err().to_string();
    assert!(msg.contains("layer 0 parameters have shape"), "{msg}");

    let mut ck = good.clone();
    ck.params.pop();
    let msg = reload(&ck).unwrap().check(&path).unwrap_err().to_string();
    assert!(
        msg.contains("1 parameter layers for a model with 2"),
        "{msg}"
    );

    let mut ck = good.clone();
    ck.epochs_done = 3;
    let msg = reload(&ck).unwrap().check(&path).unwrap_err().to_string();
    assert!(msg.contains("3 epochs done but 1 epoch records"), "{msg}");

    let mut ck = good.clone();
    ck.model_toml = ck.model_toml.replace("tau_s = 3.0", "tau_s = -3.0");
    ck.model_sha256 = checkpoint::sha256_hex(ck.model_toml.as_bytes());
    let msg = reload(&ck).unwrap().check(&path).unwrap_err().to_string();
    assert!(
        msg.contains("synapse.tau_s") && msg.contains(&path.display().to_string()),
        "{msg}"
    );

    let mut ck = good.clone();
    ck.model_toml.push_str("\n# edited\n");
    let msg = reload(&ck).unwrap_err().to_string();
    assert!(msg.contains("model text does not match its hash"), "{msg}");
}

#[test]
fn failed_writes_name_the_path_and_keep_the_previous_file() {
    let Some((raw, _)) = small_checkpoint() else {
        return;
    };
    let ck = Checkpoint::from_bytes(&raw, Path::new("x")).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A directory that cannot exist: a path under a regular file.
    let file = dir.path().join("plain-file");
    fs::write(&file, b"not a directory").unwrap();
    let target = file.join("checkpoint-epoch-1.bin");
    let msg = ck.save(&target).unwrap_err().to_string();
    assert!(
        msg.contains("cannot write checkpoint") && msg.contains(&target.display().to_string()),
        "{msg}"
    );
    assert_eq!(bytes(&file), b"not a directory");

    // A write that fails half-way (the unit tests of src/io/atomic.rs fill the disk with
    // /dev/full): here the final name is taken by a directory, so the rename fails after
    // the temporary file was written; the error names the file and nothing is left over.
    let path = dir.path().join("checkpoint-epoch-2.bin");
    fs::create_dir(&path).unwrap();
    let msg = ck.save(&path).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("cannot write checkpoint {}", path.display())),
        "{msg}"
    );
    assert!(path.is_dir());
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // A symbolic link at the final name is refused, and its target is left alone (apical
    // before this check wrote through the link's target).
    #[cfg(unix)]
    {
        let target = dir.path().join("someone-elses-file");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("checkpoint-epoch-3.bin");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let msg = ck.save(&link).unwrap_err().to_string();
        assert!(
            msg.contains(&link.display().to_string()) && msg.contains("symbolic link"),
            "{msg}"
        );
        assert_eq!(bytes(&target), b"keep");
        let e = checkpoint::write_atomic(&link, &raw).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(bytes(&target), b"keep");
    }
}

#[test]
fn resume_at_an_epoch_boundary_equals_the_straight_run() {
    resume_at_epoch_boundary(&small_model_toml());
}

/// Symmetric feedback re-draws its noise after every update from a stream the checkpoint
/// must carry, and the saved Y must not be re-drawn on loading.
#[test]
fn resume_with_noisy_symmetric_feedback_equals_the_straight_run() {
    resume_at_epoch_boundary(&small_model_with(
        "feedback_mode = \"random\"",
        "feedback_mode = \"symmetric\"\nsymmetric_noise_sd = 0.05",
    ));
}

fn resume_at_epoch_boundary(model: &str) {
    let Some(data) = mnist() else {
        return;
    };
    let straight = tempfile::tempdir().unwrap();
    train(model, data, run_options(straight.path(), 2, 300, 0));

    let split = tempfile::tempdir().unwrap();
    train(model, data, run_options(split.path(), 1, 300, 0));
    assert!(!split.path().join(epoch_file_name(2)).exists());
    let ck = Checkpoint::load(&split.path().join(epoch_file_name(1))).unwrap();
    // Options other than the epochs come from the checkpoint, whatever is passed.
    let mut o = run_options(split.path(), 2, 999, 0);
    o.seed = 12345;
    o.test_examples = 5;
    let mut t = Trainer::resume(ck, data, o).unwrap();
    t.run(&AtomicBool::new(false), &mut Quiet).unwrap();

    for e in 1..=2 {
        let f = epoch_file_name(e);
        assert!(
            bytes(&straight.path().join(&f)) == bytes(&split.path().join(&f)),
            "{f} differs between the straight and the resumed run"
        );
    }
    assert_eq!(
        metrics_without_wall(straight.path()),
        metrics_without_wall(split.path())
    );
}

#[test]
fn resume_from_mid_epoch_checkpoints_equals_the_straight_run() {
    let Some(data) = mnist() else {
        return;
    };
    // Quick tests reset the state mid-epoch: resuming must get that right too.
    let model = small_model_with(
        "quick_test_every = 0",
        "quick_test_every = 100\nquick_test_examples = 20",
    );
    let straight = tempfile::tempdir().unwrap();
    train(&model, data, run_options(straight.path(), 2, 300, 0));
    let want = bytes(&straight.path().join(epoch_file_name(2)));

    // Periodic checkpoints every 70 examples; "Ctrl-C" after 150 examples of epoch 2.
    let split = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let mut t = new_trainer(&model, data, run_options(split.path(), 2, 300, 70));
    let mut p = StopAt::new(2, 150, &stop);
    match t.run(&stop, &mut p) {
        Err(TrainError::Interrupted {
            epoch: 2,
            example: 150,
            checkpoint,
        }) => assert!(checkpoint.ends_with("checkpoint-epoch-2-example-150.bin")),
        other => panic!("expected an interrupt at epoch 2 example 150, got {other:?}"),
    }
    let names: Vec<String> = list_checkpoints(split.path())
        .unwrap()
        .iter()
        .map(|(_, _, p)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Epoch 1's mid-epoch files were removed when epoch 1 ended.
    assert_eq!(
        names,
        [
            "checkpoint-epoch-1.bin",
            "checkpoint-epoch-2-example-70.bin",
            "checkpoint-epoch-2-example-140.bin",
            "checkpoint-epoch-2-example-150.bin"
        ]
    );

    // (a) The same Trainer, run again, carries on from where it stopped.
    stop.store(false, Ordering::SeqCst);
    let snapshot = tempfile::tempdir().unwrap();
    for (_, _, p) in list_checkpoints(split.path()).unwrap() {
        fs::copy(&p, snapshot.path().join(p.file_name().unwrap())).unwrap();
    }
    t.run(&stop, &mut Quiet).unwrap();
    assert!(
        bytes(&split.path().join(epoch_file_name(2))) == want,
        "continued run differs"
    );
    assert_eq!(
        metrics_without_wall(straight.path()),
        metrics_without_wall(split.path())
    );

    // (b) Resumed from each saved mid-epoch file (the interrupt's and a periodic one).
    for name in [
        "checkpoint-epoch-2-example-150.bin",
        "checkpoint-epoch-2-example-70.bin",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpoint::load(&snapshot.path().join(name)).unwrap();
        assert_eq!(ck.epochs_done, 1);
        let at = ck.progress.as_ref().expect("mid-epoch").example;
        assert_eq!(format!("checkpoint-epoch-2-example-{at}.bin"), name);
        let mut t = Trainer::resume(ck, data, run_options(dir.path(), 2, 300, 0)).unwrap();
        t.run(&AtomicBool::new(false), &mut Quiet).unwrap();
        assert!(
            bytes(&dir.path().join(epoch_file_name(2))) == want,
            "resumed from {name}: epoch 2 checkpoint differs"
        );
    }
}

#[test]
fn nan_weights_stop_the_run_and_keep_the_last_good_checkpoint() {
    let Some(data) = mnist() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut t = new_trainer(
        &small_model_toml(),
        data,
        run_options(dir.path(), 1, 50, 20),
    );
    let stop = AtomicBool::new(false);
    t.run(&stop, &mut Quiet).unwrap();
    let good = bytes(&dir.path().join(epoch_file_name(1)));
    let saved = t.net.params.clone();

    // (a) A NaN bias reaches the potentials at once: caught after the first example.
    t.net.params[0].b[3] = f32::NAN;
    t.opts.epochs = 2;
    let err = t.run(&stop, &mut Quiet).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFinite {
                epoch: 2,
                example: 1,
                ..
            }
        ),
        "{err:?}"
    );

    // (b) Input 0 is a corner pixel, dark in every MNIST image: a NaN weight there never
    // reaches a potential. The weight check before the periodic save (every 20 examples)
    // catches it, so no file with a NaN is written.
    t.net.params = saved;
    t.net.params[0].w[0] = f32::NAN;
    let err = t.run(&stop, &mut Quiet).unwrap_err();
    match &err {
        TrainError::NonFinite {
            epoch: 2,
            example: 20,
            last_checkpoint: Some(p),
        } => assert!(p.ends_with(epoch_file_name(1))),
        other => panic!("expected divergence at epoch 2 example 20, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("NaN or infinite in epoch 2 after training example 20")
            && msg.contains("checkpoint-epoch-1.bin, is kept"),
        "{msg}"
    );
    assert_eq!(bytes(&dir.path().join(epoch_file_name(1))), good);
    let names: Vec<_> = list_checkpoints(dir.path()).unwrap();
    assert_eq!(
        names.len(),
        1,
        "nothing saved after the divergence: {names:?}"
    );
}

#[test]
fn an_absurd_learning_rate_diverges_with_a_clear_error() {
    let Some(data) = mnist() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = small_model_with("eta = [0.21, 0.21]", "eta = [1e300, 1e300]");
    let mut t = new_trainer(&model, data, run_options(dir.path(), 1, 100, 10));
    let err = t.run(&AtomicBool::new(false), &mut Quiet).unwrap_err();
    let TrainError::NonFinite {
        epoch: 1, example, ..
    } = err
    else {
        panic!("expected divergence in epoch 1, got {err:?}");
    };
    assert!((1..=100).contains(&example), "example {example}");
    let msg = err.to_string();
    assert!(
        msg.contains("diverged") && msg.contains("learning.eta"),
        "{msg}"
    );
    // Any checkpoint written before the divergence holds finite values only.
    for (_, _, p) in list_checkpoints(dir.path()).unwrap() {
        let ck = Checkpoint::load(&p).unwrap();
        assert!(ck.params.iter().all(|l| l.is_finite()), "{}", p.display());
    }
}

#[test]
fn resume_repairs_metrics_left_short_by_a_kill() {
    let Some(data) = mnist() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    train(&small_model_toml(), data, run_options(dir.path(), 2, 40, 0));
    let want = metrics_without_wall(dir.path());
    assert_eq!(want.len(), 4, "header, the initial test and two epochs");
    // As if killed after checkpoint-epoch-2.bin was written but before the metrics were.
    let csv = fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let short: Vec<&str> = csv.lines().take(3).collect();
    fs::write(dir.path().join("metrics.csv"), short.join("\n") + "\n").unwrap();
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    let initial = json[0].clone();
    let first_wall = json[1]["wall_seconds"].as_f64().unwrap();
    fs::write(
        dir.path().join("metrics.json"),
        serde_json::to_string(&json[..2]).unwrap(),
    )
    .unwrap();

    let ck = Checkpoint::load(&dir.path().join(epoch_file_name(2))).unwrap();
    let mut t = Trainer::resume(ck, data, run_options(dir.path(), 2, 40, 0)).unwrap();
    t.run(&AtomicBool::new(false), &mut Quiet).unwrap();
    assert_eq!(metrics_without_wall(dir.path()), want);
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(json.len(), 3);
    assert_eq!(json[0], initial, "the initial test is kept as it was");
    assert_eq!(json[1]["wall_seconds"].as_f64(), Some(first_wall), "kept");
    assert!(json[2]["wall_seconds"].is_null(), "unknown, not invented");
}

/// Counts the tests a run announces, by epoch.
#[derive(Default)]
struct Tests {
    announced: Vec<usize>,
    ended: Vec<usize>,
}

impl RunEvents for Tests {
    fn testing(&mut self, epoch: usize, _n: usize) {
        self.announced.push(epoch);
    }
    fn epoch_end(&mut self, m: &EpochMetrics, _params: &[LayerParams]) {
        self.ended.push(m.record.epoch);
    }
}

fn metrics_json(dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn the_initial_network_is_tested_once_as_epoch_0_and_training_is_unchanged() {
    let Some(data) = mnist() else {
        return;
    };
    let model = small_model_toml();
    let dir = tempfile::tempdir().unwrap();
    let mut t = new_trainer(&model, data, run_options(dir.path(), 2, 40, 0));
    let mut seen = Tests::default();
    t.run(&AtomicBool::new(false), &mut seen).unwrap();
    assert_eq!(seen.announced, [0, 1, 2]);
    assert_eq!(seen.ended, [0, 1, 2], "the progress sees epoch 0 first");

    // Epoch 0 is the test of the network a new run starts from, on the per-epoch test's
    // budget with streams keyed by epoch 0: computed here from the seed alone.
    let cfg = ModelConfig::from_toml_str(&model, "test model").unwrap();
    let fresh = Network::new(cfg, 7);
    let key = Key::EpochTest { epoch: 0 }.value();
    let (idx, preds) = evaluate(&fresh, &data.test, 7, key, 100);
    let wrong = idx
        .iter()
        .zip(&preds)
        .filter(|(&i, &p)| data.test.label(i) != p)
        .count();
    let json = metrics_json(dir.path());
    assert_eq!(json.len(), 3, "epoch 0 and two trained epochs");
    let e0 = &json[0];
    assert_eq!(e0["epoch"], 0);
    assert_eq!(e0["train_examples"], 0);
    assert!(e0["train_error"].is_null(), "nothing trained: {e0}");
    assert_eq!(e0["test_examples"], 100);
    assert_eq!(e0["test_error"].as_f64(), Some(wrong as f64));
    assert_eq!(e0["rates_hz"], serde_json::json!([]));
    assert_eq!(json[1]["epoch"], 1);
    let csv = fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let row0: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(
        row0[..5],
        ["0", "0", "NaN", "100", &format!("{wrong}.0000")]
    );
    assert!(row0[9..].iter().all(|r| *r == "NaN"), "no rates: {row0:?}");
    // The library reads the row back as it was written.
    let back: Vec<EpochMetrics> =
        serde_json::from_str(&fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    assert!(back[0].is_initial() && back[0].record.train_error.is_nan());
    assert_eq!(back[0].record.test_error, wrong as f64);
    assert_eq!(trained(&back).len(), 2);

    // The test changes nothing that is trained: without it the checkpoints are the same
    // bytes, and metrics.json has no epoch 0.
    let off = tempfile::tempdir().unwrap();
    let model_off = small_model_with(
        "quick_test_every = 0",
        "quick_test_every = 0\ntest_initial = false",
    );
    let mut t = new_trainer(&model_off, data, run_options(off.path(), 2, 40, 0));
    let mut seen = Tests::default();
    t.run(&AtomicBool::new(false), &mut seen).unwrap();
    assert_eq!(seen.announced, [1, 2]);
    assert_eq!(metrics_json(off.path())[0]["epoch"], 1);
    for e in [1, 2] {
        let (a, b) = (
            Checkpoint::load(&dir.path().join(epoch_file_name(e))).unwrap(),
            Checkpoint::load(&off.path().join(epoch_file_name(e))).unwrap(),
        );
        assert_eq!(a.params, b.params, "epoch {e}: weights");
        assert_eq!(
            a.history, b.history,
            "epoch {e}: the trained epochs' records"
        );
    }
    // The model's text is the same while the option is on (unwritten at its default).
    assert!(!ModelConfig::from_toml_str(&model, "m")
        .unwrap()
        .to_toml_string()
        .contains("test_initial"));
}

#[test]
fn a_resumed_run_keeps_its_epoch_0_and_does_not_test_it_again() {
    let Some(data) = mnist() else {
        return;
    };
    let model = small_model_toml();
    let straight = tempfile::tempdir().unwrap();
    train(&model, data, run_options(straight.path(), 2, 60, 0));

    // Stopped inside epoch 1, before any epoch ended: only epoch 0 is in the metrics.
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let mut t = new_trainer(&model, data, run_options(dir.path(), 2, 60, 0));
    let mut p = StopAt::new(1, 25, &stop);
    assert!(matches!(
        t.run(&stop, &mut p),
        Err(TrainError::Interrupted { epoch: 1, .. })
    ));
    let before = metrics_json(dir.path());
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["epoch"], 0);
    drop(t);

    let (_, _, latest) = list_checkpoints(dir.path()).unwrap().pop().unwrap();
    let ck = Checkpoint::load(&latest).unwrap();
    let mut t = Trainer::resume(ck, data, run_options(dir.path(), 2, 60, 0)).unwrap();
    let mut seen = Tests::default();
    t.run(&AtomicBool::new(false), &mut seen).unwrap();
    assert_eq!(seen.announced, [1, 2], "epoch 0 is not tested again");
    let after = metrics_json(dir.path());
    assert_eq!(after[0], before[0], "epoch 0 read back as it was");
    assert_eq!(
        metrics_without_wall(dir.path()),
        metrics_without_wall(straight.path())
    );
    assert!(
        bytes(&dir.path().join(epoch_file_name(2)))
            == bytes(&straight.path().join(epoch_file_name(2)))
    );
}
