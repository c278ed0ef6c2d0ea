//! The `apical` binary facing interruptions and bad input: a run killed between epochs and
//! resumed, Ctrl-C (SIGINT) mid-epoch, `apical eval`, damaged MNIST files, bad model files,
//! unwritable output directories and a diverging model. Each error must name the problem
//! and leave what was already written intact.

mod common;

use apical::io::checkpoint::{epoch_file_name, list_checkpoints, Checkpoint};
use common::{
    apical, data_dir, metrics_without_wall, run_apical, s, small_model_toml, small_model_with,
    wait_for, write_file,
};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Small model file in `dir`.
fn small_model_file(dir: &Path) -> PathBuf {
    write_file(dir, "small.toml", small_model_toml().as_bytes())
}

/// `apical train MODEL --train-examples N --test-examples 100 --epochs E --out OUT --quiet`.
fn train_args(model: &Path, train: usize, epochs: usize, out: &Path) -> Vec<String> {
    [
        "train",
        s(model),
        "--train-examples",
        &train.to_string(),
        "--test-examples",
        "100",
        "--epochs",
        &epochs.to_string(),
        "--out",
        s(out),
        "--quiet",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn run_ok(args: &[String]) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run_apical(&a);
    assert_eq!(code, Some(0), "apical {args:?} failed:\n{out}\n{err}");
    err
}

/// Runs apical expecting failure (exit status 1); returns stderr.
fn run_err(args: &[&str]) -> String {
    let (code, out, err) = run_apical(args);
    assert_eq!(code, Some(1), "apical {args:?} should fail:\n{out}\n{err}");
    assert!(
        err.starts_with("error: ") || err.contains("\nerror: "),
        "{err}"
    );
    err
}

#[test]
fn killed_between_epochs_then_resumed_equals_the_straight_run() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let killed = tmp.path().join("killed");
    // Many epochs requested: the process is killed long before it could finish.
    let args = train_args(&model, 2000, 50, &killed);
    let mut child = apical()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        &killed.join(epoch_file_name(1)),
        &mut child,
        Duration::from_secs(120),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join(epoch_file_name(2)).exists(),
        "the kill came too late to test anything (epoch 2 already done)"
    );

    let err = run_ok(&[
        "train".into(),
        "--resume".into(),
        s(&killed).into(),
        "--epochs".into(),
        "2".into(),
        "--quiet".into(),
    ]);
    assert!(
        err.contains("resuming") && err.contains("(1 epochs done) up to 2 epochs"),
        "{err}"
    );
    let info = fs::read_to_string(killed.join("run.json")).unwrap();
    assert!(info.contains("\"epochs\": 2"), "{info}");

    let straight = tmp.path().join("straight");
    run_ok(&train_args(&model, 2000, 2, &straight));
    assert!(
        bytes(&killed.join(epoch_file_name(2))) == bytes(&straight.join(epoch_file_name(2))),
        "resumed and straight runs differ"
    );
    assert_eq!(
        metrics_without_wall(&killed),
        metrics_without_wall(&straight)
    );

    // Asking for fewer epochs than are done is refused; asking for as many does nothing.
    let err = run_err(&["train", "--resume", s(&killed), "--epochs", "1", "--quiet"]);
    assert!(err.contains("already has 2 epochs"), "{err}");
    run_ok(&[
        "train".into(),
        "--resume".into(),
        s(&killed).into(),
        "--quiet".into(),
        "--epochs".into(),
        "2".into(),
    ]);
    assert!(!killed.join(epoch_file_name(3)).exists());

    // A fresh run may not reuse a run directory: nothing in it is overwritten.
    let before = bytes(&killed.join(epoch_file_name(1)));
    let a = train_args(&model, 100, 1, &killed);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let err = run_err(&a);
    assert!(
        err.contains("already holds checkpoints") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(bytes(&killed.join(epoch_file_name(1))), before);
}

#[test]
fn ctrl_c_writes_a_mid_epoch_checkpoint_and_resume_completes_the_run() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run = tmp.path().join("run");
    let args = train_args(&model, 3000, 50, &run);
    let mut child = apical()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The handler is installed before the data loads; "training ..." comes just before the
    // first example.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no training line: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with("training small") {
            break;
        }
    }
    let pid = child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "stderr: {seen}{rest}");
    let resume_hint = format!("resume with: apical train --resume {}", run.display());
    assert!(rest.contains(&resume_hint), "{rest}");
    assert!(rest.contains("stopped in epoch 1 after"), "{rest}");

    let list = list_checkpoints(&run).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let (done, example, path) = &list[0];
    assert_eq!(*done, 0, "interrupted inside epoch 1");
    assert!(*example > 0 && *example < 3000, "mid-epoch: {example}");
    let ck = Checkpoint::load(path).unwrap();
    assert_eq!(ck.progress.as_ref().map(|p| p.example), Some(*example));
    assert!(rest.contains(&path.display().to_string()), "{rest}");

    let err = run_ok(&[
        "train".into(),
        "--resume".into(),
        s(&run).into(),
        "--epochs".into(),
        "1".into(),
        "--quiet".into(),
    ]);
    assert!(
        err.contains(&format!("{example} examples of epoch 1 done")),
        "{err}"
    );
    let straight = tmp.path().join("straight");
    run_ok(&train_args(&model, 3000, 1, &straight));
    assert!(
        bytes(&run.join(epoch_file_name(1))) == bytes(&straight.join(epoch_file_name(1))),
        "resumed and straight runs differ"
    );
    // The mid-epoch file was superseded and removed.
    assert_eq!(list_checkpoints(&run).unwrap().len(), 1);
    // The resumed epoch's time per example is over the examples trained after the
    // checkpoint, not the whole epoch.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    // Row 0 is the initial network's test (epoch 0), row 1 the resumed epoch.
    assert_eq!(m[1]["epoch"], 1);
    let train_s = m[1]["train_seconds"].as_f64().unwrap();
    let per = m[1]["seconds_per_train_example"].as_f64().unwrap();
    let trained = (3000 - example) as f64;
    assert!(
        (per - train_s / trained).abs() <= 1e-9 * per.max(1e-12) + 1e-15,
        "{per} s per example, {train_s} s for {trained} examples"
    );
}

#[test]
fn eval_reports_error_and_confusion_matrix() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run = tmp.path().join("run");
    run_ok(&train_args(&model, 300, 1, &run));
    let ck = run.join(epoch_file_name(1));
    for target in [&ck, &run] {
        let (code, out, err) = run_apical(&["eval", s(target), "--test-examples", "200"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains(": 1 epoch trained; test error"), "{out}");
        assert!(out.contains("on 200 images"), "{out}");
        let rows: Vec<Vec<usize>> = out
            .lines()
            .skip_while(|l| !l.starts_with("confusion matrix"))
            .skip(2)
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .map(|v| v.parse().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 10, "{out}");
        assert!(rows.iter().all(|r| r.len() == 10), "{out}");
        let total: usize = rows.iter().flatten().sum();
        assert_eq!(total, 200);
        // The reported error is the off-diagonal share.
        let wrong: usize = (0..10)
            .map(|t| rows[t].iter().sum::<usize>() - rows[t][t])
            .sum();
        let want = format!("test error {:.2} %", 100.0 * wrong as f64 / 200.0);
        assert!(out.contains(&want), "{want} in {out}");
    }
    // --set changes the test phase only: the model's own values give the same test, a
    // 500-step phase is reported and runs, a field that shapes the network is refused.
    let plain = run_apical(&["eval", s(&ck), "--test-examples", "200", "--repeats", "2"]);
    let same = run_apical(&[
        "eval",
        s(&ck),
        "--test-examples",
        "200",
        "--repeats",
        "2",
        "--set",
        "phases.l_f_test=250",
        "--set",
        "phases.integration_time_test=220",
    ]);
    assert_eq!(same.0, Some(0), "{}", same.2);
    // Repeats: the confusion matrix says it sums the tests, and its total is 2 x 200.
    assert!(
        plain
            .1
            .contains("confusion matrix, summed over the 2 tests"),
        "{}",
        plain.1
    );
    let total: usize = plain
        .1
        .lines()
        .skip_while(|l| !l.starts_with("confusion matrix"))
        .skip(2)
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|v| v.parse::<usize>().unwrap())
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(total, 400, "{}", plain.1);
    let after_phase_line = |o: &str| -> String {
        o.lines()
            .filter(|l| !l.starts_with("test phase:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(after_phase_line(&same.1), after_phase_line(&plain.1));
    assert!(
        same.1
            .contains("test phase: 250 steps, prediction from the mean of the last 220"),
        "{}",
        same.1
    );
    let long = run_apical(&[
        "eval",
        s(&ck),
        "--test-examples",
        "200",
        "--set",
        "phases.l_f_test=500",
        "--set",
        "phases.integration_time_test=470",
    ]);
    assert_eq!(long.0, Some(0), "{}", long.2);
    assert!(
        long.1
            .contains("test phase: 500 steps, prediction from the mean of the last 470"),
        "{}",
        long.1
    );
    let err = run_err(&["eval", s(&ck), "--set", "neuron.g_A=0.05"]);
    assert!(
        err.contains("`neuron.g_A` cannot change for a test of trained weights"),
        "{err}"
    );
    let err = run_err(&["eval", s(&ck), "--set", "phases.integration_time_test=600"]);
    assert!(err.contains("phases.integration_time_test"), "{err}");
    // Damaged, foreign or missing checkpoints.
    let mut raw = bytes(&ck);
    let mid = raw.len() / 2;
    raw[mid] ^= 1;
    let bad = write_file(tmp.path(), "flipped.bin", &raw);
    let err = run_err(&["eval", s(&bad)]);
    assert!(
        err.contains("flipped.bin") && err.contains("checksum mismatch"),
        "{err}"
    );
    let cut = write_file(tmp.path(), "cut.bin", &bytes(&ck)[..1000]);
    let err = run_err(&["eval", s(&cut)]);
    assert!(
        err.contains("cut.bin") && err.contains("truncated"),
        "{err}"
    );
    let err = run_err(&["eval", s(&model)]);
    assert!(
        err.contains("small.toml is not an apical checkpoint"),
        "{err}"
    );
    let err = run_err(&["eval", s(&tmp.path().join("none.bin"))]);
    assert!(
        err.contains("cannot read checkpoint") && err.contains("none.bin"),
        "{err}"
    );
    let err = run_err(&["eval", s(tmp.path())]);
    assert!(err.contains("holds no checkpoint"), "{err}");
}

#[test]
fn resume_problems_are_explained() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let err = run_err(&["train", "--resume", s(tmp.path())]);
    assert!(err.contains("run.json"), "{err}");

    let run = tmp.path().join("run");
    run_ok(&train_args(&model, 100, 2, &run));
    // A damaged latest checkpoint: the error says which earlier one to fall back on.
    let latest = run.join(epoch_file_name(2));
    let mut raw = bytes(&latest);
    raw.truncate(raw.len() - 10);
    fs::write(&latest, &raw).unwrap();
    let err = run_err(&["train", "--resume", s(&run), "--epochs", "3", "--quiet"]);
    assert!(
        err.contains("checkpoint-epoch-2.bin is truncated")
            && err.contains("move")
            && err.contains("checkpoint-epoch-1.bin"),
        "{err}"
    );
    fs::rename(&latest, tmp.path().join("moved.bin")).unwrap();
    run_ok(&[
        "train".into(),
        "--resume".into(),
        s(&run).into(),
        "--epochs".into(),
        "2".into(),
        "--quiet".into(),
    ]);
    assert!(run.join(epoch_file_name(2)).exists());

    // A run directory whose recorded data directory is gone (copied from another machine)
    // finds MNIST in the usual places.
    let info_path = run.join("run.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&info_path).unwrap()).unwrap();
    info["data_dir"] = "/nonexistent/mnist".into();
    fs::write(&info_path, info.to_string()).unwrap();
    run_ok(&[
        "train".into(),
        "--resume".into(),
        s(&run).into(),
        "--epochs".into(),
        "3".into(),
        "--quiet".into(),
    ]);
    assert!(run.join(epoch_file_name(3)).exists());
    let info = fs::read_to_string(&info_path).unwrap();
    assert!(info.contains("\"epochs\": 3"), "{info}");
}

// ---------------------------------------------------------------- bad MNIST files

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A data directory linking the real files, with `t10k-labels` replaced by `labels`
/// (raw bytes written as `t10k-labels-idx1-ubyte`), or left out when None.
fn data_dir_with_labels(real: &Path, dir: &Path, labels: Option<&[u8]>) {
    fs::create_dir_all(dir).unwrap();
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    ] {
        std::os::unix::fs::symlink(real.join(name), dir.join(name)).unwrap();
    }
    if let Some(l) = labels {
        fs::write(dir.join("t10k-labels-idx1-ubyte"), l).unwrap();
    }
}

#[test]
fn damaged_mnist_files_are_reported_by_the_binary() {
    let Some(real) = data_dir() else {
        return;
    };
    let real = fs::canonicalize(real).unwrap();
    let labels = gunzip(&real.join("t10k-labels-idx1-ubyte.gz"));
    assert_eq!(labels.len(), 10_008);
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());

    let mut flipped = labels.clone();
    flipped[5000] = (flipped[5000] + 1) % 10;
    let mut magic = labels.clone();
    magic[3] = 3;
    let mut short = labels[..10_007].to_vec();
    short[4..8].copy_from_slice(&9_999u32.to_be_bytes());
    let gz = gzip(&labels);
    // (name, replacement labels file or None for missing, --no-verify, expected parts)
    type Case<'a> = (&'a str, Option<Vec<u8>>, bool, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "missing",
            None,
            false,
            vec!["MNIST file t10k-labels-idx1-ubyte not found in"],
        ),
        (
            "checksum",
            Some(flipped),
            false,
            vec!["t10k-labels-idx1-ubyte: SHA-256", "corrupt"],
        ),
        (
            "truncated",
            Some(labels[..5_000].to_vec()),
            true,
            vec!["t10k-labels-idx1-ubyte: IDX file is truncated"],
        ),
        (
            "truncated-gz",
            Some(gz[..gz.len() / 2].to_vec()),
            true,
            vec!["t10k-labels-idx1-ubyte", "gzip"],
        ),
        (
            "magic",
            Some(magic),
            true,
            vec!["t10k-labels-idx1-ubyte: bad IDX magic number 0x00000803"],
        ),
        (
            "count",
            Some(short),
            true,
            vec!["count mismatch", "10000 images", "9999 labels"],
        ),
    ];
    for (name, file, no_verify, want) in cases {
        let dir = tmp.path().join(name);
        data_dir_with_labels(&real, &dir, file.as_deref());
        let out = tmp.path().join(format!("out-{name}"));
        let mut args = vec![
            "train",
            s(&model),
            "--epochs",
            "1",
            "--train-examples",
            "10",
            "--data",
            s(&dir),
            "--out",
            s(&out),
            "--quiet",
        ];
        if no_verify {
            args.push("--no-verify");
        }
        let err = run_err(&args);
        for w in want {
            assert!(err.contains(w), "{name}: {w:?} not in {err}");
        }
        assert!(
            !out.exists(),
            "{name}: nothing is written before the data loads"
        );
    }
    let err = run_err(&["eval", "x.bin", "--data", "/nonexistent/mnist"]);
    assert!(err.contains("x.bin"), "the checkpoint is read first: {err}");
    let err = run_err(&["train", s(&model), "--data", "/nonexistent/mnist"]);
    assert!(err.contains("data directory /nonexistent/mnist"), "{err}");
}

// ---------------------------------------------------------------- bad model files

#[test]
fn bad_model_files_are_reported_by_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            small_model_with("g_B = 0.6", "g_B = 0.6\ng_X = 1.0"),
            vec!["unknown field `g_X`", "line 19"],
        ),
        (
            small_model_with("tau_L = 10.0", "tau_L = \"ten\""),
            vec!["invalid type", "tau_L", "line 25"],
        ),
        (
            small_model_with("tau_s = 3.0", "tau_s = -3.0"),
            vec!["field `synapse.tau_s`", "-3"],
        ),
        (
            small_model_with("l_t = 50", "l_t = 0"),
            vec!["field `phases.l_t`", "phase length", "got 0"],
        ),
        (
            small_model_with("hidden = [20]", "hidden = [20, 0]\n")
                .replace("eta = [0.21, 0.21]", "eta = [0.2, 0.2, 0.2]"),
            vec!["field `network.hidden`", "layer 1 has size 0"],
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = write_file(tmp.path(), &format!("bad{i}.toml"), text.as_bytes());
        let out = tmp.path().join(format!("out{i}"));
        let err = run_err(&["train", s(&p), "--out", s(&out), "--quiet"]);
        assert!(err.contains(&format!("bad{i}.toml")), "{err}");
        for w in want {
            assert!(err.contains(w), "case {i}: {w:?} not in {err}");
        }
        assert!(!out.exists());
    }
    let err = run_err(&["train", s(&tmp.path().join("absent.toml"))]);
    assert!(
        err.contains("cannot read model file") && err.contains("absent.toml"),
        "{err}"
    );
}

// ---------------------------------------------------------------- output and divergence

#[test]
fn an_unwritable_output_directory_is_named() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let file = write_file(tmp.path(), "a-file", b"keep me");
    let out = file.join("run");
    let a = train_args(&model, 10, 1, &out);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let err = run_err(&a);
    assert!(err.contains(&out.display().to_string()), "{err}");
    assert_eq!(
        err.matches("Not a directory").count(),
        1,
        "said once: {err}"
    );
    assert_eq!(bytes(&file), b"keep me");

    // A checkpoint that cannot be written at the second epoch (its name is taken by a
    // directory, so the rename fails after the data was written, like a full disk; the
    // unit tests of src/io/atomic.rs fill a disk with /dev/full). The run stops naming the
    // file; epoch 1's checkpoint is intact and resumable.
    let run = tmp.path().join("full");
    let target = run.join(epoch_file_name(2));
    fs::create_dir_all(&target).unwrap();
    let a = train_args(&model, 30, 2, &run);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let err = run_err(&a);
    assert!(
        err.contains(&format!("cannot write checkpoint {}", target.display())),
        "{err}"
    );
    assert!(target.is_dir());
    let ck = Checkpoint::load(&run.join(epoch_file_name(1))).unwrap();
    assert_eq!(ck.epochs_done, 1);
    let left: Vec<String> = fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    fs::remove_dir(&target).unwrap();
    run_ok(&[
        "train".into(),
        "--resume".into(),
        s(&run).into(),
        "--quiet".into(),
    ]);
    assert_eq!(Checkpoint::load(&target).unwrap().epochs_done, 2);
}

#[test]
fn a_diverging_model_stops_with_epoch_and_example() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = write_file(
        tmp.path(),
        "wild.toml",
        small_model_with("eta = [0.21, 0.21]", "eta = [1e300, 1e300]").as_bytes(),
    );
    let out = tmp.path().join("run");
    let a = train_args(&model, 50, 1, &out);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let err = run_err(&a);
    assert!(
        err.contains("diverged") && err.contains("in epoch 1 after training example"),
        "{err}"
    );
    assert!(list_checkpoints(&out).unwrap().is_empty());
}
