//! End to end through the `apical` binary: the default model learns MNIST like the
//! reference, runs are reproducible byte for byte, and bad input is reported.

mod common;

use apical::io::checkpoint::Checkpoint;
use common::{apical, data_dir};
use std::path::Path;
use std::process::Command;

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("apical runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "apical failed:\n{text}");
    text
}

/// The trained epochs of metrics.json (its first row, epoch 0, is the initial network's
/// test: checked here to be there and untrained).
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("metrics.json")).expect("metrics.json written");
    let mut rows: Vec<serde_json::Value> =
        serde_json::from_str(&text).expect("metrics.json parses");
    assert_eq!(rows[0]["epoch"], 0, "epoch 0 first");
    assert!(rows[0]["train_error"].is_null());
    rows.remove(0);
    rows
}

/// The regression setting of the reference: 784-500-10, one epoch of the first 10,000 of a
/// shuffle of the 60,000 training images, tested on a seeded random 2,000 test images.
///
/// Threshold from repeated real runs of this setting (`apical train --train-examples 10000
/// --test-examples 2000 --epochs 1 --seed S`, seeds 0-5): 18.90, 19.70, 18.05, 18.40, 14.70,
/// 21.65 % with the current random streams (mean 18.6, sd 2.3), and 16.75, 20.70, 15.15,
/// 18.00, 15.05, 18.80 % with the streams before the interleaved-lane generator; the
/// reference: 16.45 / 17.10 / 19.75 %. The test runs seed 0 and fails above 23 %: the worst of
/// the twelve runs plus 1.35 points, about mean + 2 sd.
#[test]
fn default_model_learns_like_the_reference_after_10000_examples() {
    let Some(data) = data_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let log = run_ok(
        apical()
            .args([
                "train",
                "--epochs",
                "1",
                "--train-examples",
                "10000",
                "--test-examples",
                "2000",
                "--seed",
                "0",
                "--quiet",
                "--out",
            ])
            .arg(&run)
            .arg("--data")
            .arg(&data),
    );
    eprintln!("{log}");
    let m = metrics(&run);
    assert_eq!(m.len(), 1);
    let test_error = m[0]["test_error"].as_f64().unwrap();
    let train_error = m[0]["train_error"].as_f64().unwrap();
    assert_eq!(m[0]["test_examples"].as_u64(), Some(2000));
    assert!(
        test_error < 23.0,
        "test error {test_error} % is above the 23 % threshold"
    );
    // Learning starts slowly: the online training error over the epoch is 44-47 % in the
    // reference (seeds 0-5 here: 42.9-46.0 %).
    assert!(
        (38.0..52.0).contains(&train_error),
        "train error {train_error} %"
    );
    // Firing rates during training: hidden ~95-135 Hz, output ~18-22 Hz in the reference.
    let rates = m[0]["rates_hz"].as_array().unwrap();
    let hidden = rates[0].as_f64().unwrap();
    let output = rates[1].as_f64().unwrap();
    assert!((85.0..140.0).contains(&hidden), "hidden rate {hidden} Hz");
    assert!((15.0..25.0).contains(&output), "output rate {output} Hz");
    // The run directory: model copy, run info, metrics, a loadable checkpoint.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,train_examples,train_error,test_examples,test_error"));
    assert_eq!(csv.lines().count(), 3, "header, epoch 0 and epoch 1");
    // Every row has a value under every header column, and they agree with metrics.json.
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    assert_eq!(
        header.len(),
        row.len(),
        "metrics.csv columns: {header:?} vs {row:?}"
    );
    let col = |name: &str| -> f64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        row[i].parse().unwrap()
    };
    assert!((col("test_error") - test_error).abs() < 1e-3);
    assert!((col("rate_hz_layer0") - hidden).abs() < 1e-2);
    let (train_s, test_s) = (col("train_seconds"), col("test_seconds"));
    assert!(train_s > 0.0 && test_s > 0.0);
    assert!((col("wall_seconds") - (train_s + test_s)).abs() < 0.01);
    let ck = Checkpoint::load(&run.join("checkpoint-epoch-1.bin")).unwrap();
    assert_eq!(ck.epochs_done, 1);
    assert_eq!(ck.seed, 0);
    assert_eq!(ck.history[0].test_error, test_error);
    assert!(run.join("model.toml").exists() && run.join("run.json").exists());
}

#[test]
fn equal_runs_give_byte_identical_checkpoints_at_1_and_2_threads() {
    let Some(data) = data_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let run = out.path().join(format!("t{threads}"));
        run_ok(
            apical()
                .args([
                    "train",
                    "--epochs",
                    "2",
                    "--train-examples",
                    "150",
                    "--test-examples",
                    "100",
                    "--seed",
                    "3",
                    "--quiet",
                    "--threads",
                    threads,
                    "--out",
                ])
                .arg(&run)
                .arg("--data")
                .arg(&data),
        );
        files.push((
            std::fs::read(run.join("checkpoint-epoch-2.bin")).unwrap(),
            metrics(&run),
        ));
    }
    assert!(
        files[0].0 == files[1].0,
        "checkpoints differ between 1 and 2 threads"
    );
    for (a, b) in files[0].1.iter().zip(&files[1].1) {
        assert_eq!(a["test_error"], b["test_error"]);
        assert_eq!(a["train_error"], b["train_error"]);
    }
}

#[test]
fn refuses_to_overwrite_a_run_and_reports_bad_model_files() {
    let Some(data) = data_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let args = [
        "train",
        "--epochs",
        "1",
        "--train-examples",
        "20",
        "--test-examples",
        "20",
        "--quiet",
        "--out",
    ];
    run_ok(apical().args(args).arg(&run).arg("--data").arg(&data));
    let again = apical()
        .args(args)
        .arg(&run)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let msg = String::from_utf8_lossy(&again.stderr);
    assert!(
        msg.contains("already holds checkpoints") && msg.contains("--resume"),
        "{msg}"
    );

    let bad = out.path().join("bad.toml");
    std::fs::write(&bad, "name = \"b\"\n[network]\nhidden = [500]\n[synapse]\ntau_s = -3.0\n[learning]\neta = [0.2, 0.2]\n").unwrap();
    let r = apical()
        .arg("train")
        .arg(&bad)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!r.status.success());
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(
        msg.contains("bad.toml") && msg.contains("synapse.tau_s"),
        "{msg}"
    );
}

#[test]
fn malformed_idx_file_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        // A labels header where an images file is expected, then nothing.
        std::fs::write(dir.path().join(name), [0u8, 0, 8, 1, 0, 0, 0, 5]).unwrap();
    }
    // With checksums on (the default) the header is checked before the digest (a read
    // bounded by what the header promises), so the file is named with its wrong magic ...
    // In the temporary directory: a run directory left in the working directory by an
    // earlier `apical train` must not answer first.
    let r = apical()
        .current_dir(dir.path())
        .args(["train", "--quiet", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!r.status.success());
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("bad IDX magic number 0x00000801"),
        "{msg}"
    );
    // ... and so it is without them.
    let r = apical()
        .current_dir(dir.path())
        .args(["train", "--quiet", "--no-verify", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!r.status.success());
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("magic"),
        "{msg}"
    );
}

/// Runs `apical train MODEL --epochs 1 --train-examples TRAIN --test-examples TEST --seed S`
/// into a temporary directory; returns (metrics.json's first epoch, alignment.csv's rows).
fn train_one_epoch(
    model: &str,
    train: usize,
    test: usize,
    seed: u64,
) -> Option<(
    serde_json::Value,
    Vec<apical::run::alignment::AlignmentRecord>,
)> {
    let data = data_dir()?;
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(format!("{model}.toml"));
    let log = run_ok(
        apical()
            .arg("train")
            .arg(&model)
            .args(["--epochs", "1", "--quiet", "--record", "none"])
            .args(["--train-examples", &train.to_string()])
            .args(["--test-examples", &test.to_string()])
            .args(["--seed", &seed.to_string()])
            .arg("--out")
            .arg(&run)
            .arg("--data")
            .arg(&data),
    );
    eprintln!("{log}");
    let m = metrics(&run);
    assert_eq!(m.len(), 1);
    let align = apical::run::alignment::parse_csv(
        &std::fs::read_to_string(run.join("alignment.csv")).expect("alignment.csv written"),
    );
    Some((m[0].clone(), align))
}

/// The rate mode (spec section 9) on a reduced budget: 784-500-10, one epoch of the first
/// 10,000 of a shuffle, 2,000 random test images, seed 0 (about 5 s).
///
/// Bands from real runs of this setting, seeds 0-9 (`apical train
/// models/guerguiev-1h-rate.toml --epochs 1 --train-examples 10000 --test-examples 2000
/// --seed S`; the rate mode is deterministic given the seed):
/// - test error 13.60, 13.20, 11.70, 12.20, 9.40, 13.10, 12.75, 12.85, 12.80, 17.05 %
///   (mean 12.9, sd 1.9): must lie in [5, 18] %, about mean + 2.7 sd above;
/// - online training error 22.9-26.4 %, and 56.7 % for seed 8 (its output layer saturates
///   for a while before it learns; its test error is 12.8 %): must lie in [15, 60] %;
/// - rates: hidden 102-110 Hz, output 18.6-19.0 Hz (25.3 for seed 8): hidden in [90, 125],
///   output in [15, 30] Hz;
/// - angle between the hidden update and backprop's over the last 100 examples: 50.7-58.3
///   deg (mean 56.2, sd 2.1): must lie in [45, 63]; angle between Y and W_1^T: 63.5-73.4
///   deg: below 78 (fixed random feedback starts near 90, so alignment must have happened).
#[test]
fn rate_model_learns_within_its_band_after_10000_examples() {
    let Some((m, align)) = train_one_epoch("guerguiev-1h-rate", 10_000, 2_000, 0) else {
        return;
    };
    let test_error = m["test_error"].as_f64().unwrap();
    let train_error = m["train_error"].as_f64().unwrap();
    assert!(
        (5.0..=18.0).contains(&test_error),
        "test error {test_error} %"
    );
    assert!(
        (15.0..=60.0).contains(&train_error),
        "train error {train_error} %"
    );
    let rates = m["rates_hz"].as_array().unwrap();
    let (hidden, output) = (rates[0].as_f64().unwrap(), rates[1].as_f64().unwrap());
    assert!((90.0..=125.0).contains(&hidden), "hidden rate {hidden} Hz");
    assert!((15.0..=30.0).contains(&output), "output rate {output} Hz");
    assert_eq!(align.len(), 1);
    let (u, f) = (align[0].update_angle_deg, align[0].feedback_angle_deg);
    assert!((45.0..=63.0).contains(&u), "update angle {u} deg");
    assert!(f < 78.0, "feedback angle {f} deg");
}

/// Opt-in (`cargo test --profile fast -- --ignored`, about a minute): the rate mode after one full
/// epoch (60,000 examples, all 10,000 test images), seed 0. Runs: 5.87 % (seed 0), 6.22 %
/// (seed 1); the reference code's rate mode: 5.8 %. Must be at most 7 % (the bar).
#[test]
#[ignore = "slow: one full epoch of the rate mode (about a minute)"]
fn rate_model_full_epoch_is_within_7_percent() {
    let Some((m, align)) = train_one_epoch("guerguiev-1h-rate", 60_000, 10_000, 0) else {
        return;
    };
    let test_error = m["test_error"].as_f64().unwrap();
    assert!(
        test_error <= 7.0,
        "test error {test_error} % after one full epoch"
    );
    // After a full epoch the rate-feedback update is well aligned with backprop's (47.4
    // deg for seed 0, the mean of the last 100 examples).
    assert!(align[0].update_angle_deg < 55.0, "{:?}", align[0]);
}

/// Opt-in (`cargo test --profile fast -- --ignored`, a few minutes): the spiking 784-500-10 model
/// after one full epoch, seed 0. Runs: 10.84 % (seed 0), 10.12 % (seed 1, docs/full and the
/// 60-epoch runs); the reference: 10.0 % (11.3 % with the narrower initial spread). Must be
/// at most 12.5 %.
#[test]
#[ignore = "slow: one full epoch of the spiking model (a few minutes)"]
fn spiking_model_full_epoch_is_like_the_reference() {
    let Some((m, _)) = train_one_epoch("guerguiev-1h", 60_000, 10_000, 0) else {
        return;
    };
    let test_error = m["test_error"].as_f64().unwrap();
    assert!(
        test_error <= 12.5,
        "test error {test_error} % after one full epoch"
    );
}
