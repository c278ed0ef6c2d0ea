//! Run directories under stress, through the built binary and the library: two writers of
//! one directory (the lock), resume checking run.json and model.toml against the
//! checkpoint, links at file names, checkpoints chosen by content, retention, bounded reads
//! of hostile files, models too large for the memory, missing fonts, example counts above
//! the data set, and errors that name where a setting came from. Each case was a defect of
//! apical 0.1 before these checks (docs/checkpoints.md).

mod common;

use apical::io::checkpoint::{self, epoch_file_name, list_checkpoints, Checkpoint};
use apical::io::mnist::{read_idx_labels, DataError};
use apical::io::run_dir::{
    model_text_of, KeepCheckpoints, LockHolder, RunDir, RunDirError, LOCK_FILE,
};
use common::{apical, data_dir, s, small_model_toml, small_model_with, wait_for, write_file};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn small_model_file(dir: &Path) -> PathBuf {
    write_file(dir, "small.toml", small_model_toml().as_bytes())
}

/// `train MODEL --train-examples N --test-examples 50 --epochs E --out OUT --quiet --record none`.
fn train_args(model: &Path, train: usize, epochs: usize, out: &Path) -> Vec<String> {
    [
        "train",
        s(model),
        "--train-examples",
        &train.to_string(),
        "--test-examples",
        "50",
        "--epochs",
        &epochs.to_string(),
        "--out",
        s(out),
        "--quiet",
        "--record",
        "none",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// Runs apical with `args`; (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("apical runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let (code, out, err) = run(apical().args(args));
    assert_eq!(code, Some(0), "apical failed:\n{out}\n{err}");
    err
}

/// Runs apical expecting exit status 1 and an `error: ` line; returns stderr.
fn fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    fails_with(apical().args(args))
}

fn fails_with(cmd: &mut Command) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, Some(1), "should fail with status 1:\n{out}\n{err}");
    assert!(err.contains("error: "), "{err}");
    err
}

fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

fn host() -> String {
    LockHolder::this_process().host
}

// ------------------------------------------------------------------------- the lock

#[test]
fn a_second_writer_is_refused_at_once_naming_the_holder_and_a_killed_holder_frees_the_directory() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run_dir = tmp.path().join("run");
    // A long first run under a Slurm job id.
    let mut first = apical()
        .args(train_args(&model, 20_000, 50, &run_dir))
        .env("SLURM_JOB_ID", "4242")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        &run_dir.join("run.json"),
        &mut first,
        Duration::from_secs(120),
    );
    let (info, model_toml) = (
        bytes(&run_dir.join("run.json")),
        bytes(&run_dir.join("model.toml")),
    );
    let holder = format!("process {} on host {} (Slurm job 4242)", first.id(), host());
    let lock_text = fs::read_to_string(run_dir.join(LOCK_FILE)).unwrap();
    assert!(
        lock_text.contains(&format!("\"pid\":{}", first.id())),
        "{lock_text}"
    );
    // Another seed into the same directory: refused before any data is read, and the
    // live run's run.json and model.toml are left alone (apical 0.1 rewrote them and
    // both runs trained into one directory).
    let mut second = train_args(&model, 20_000, 1, &run_dir);
    second.extend(["--seed".into(), "5".into()]);
    let t0 = Instant::now();
    let err = fails(&second);
    assert!(
        err.contains(&format!(
            "run directory {} is in use by {holder}",
            run_dir.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("loading data set"),
        "refused before the data: {err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(bytes(&run_dir.join("run.json")), info);
    assert_eq!(bytes(&run_dir.join("model.toml")), model_toml);
    // A resume of the live run is refused the same way.
    let err = fails(&["train", "--resume", s(&run_dir), "--quiet"]);
    assert!(err.contains(&holder), "{err}");
    // kill -9: the kernel releases the lock; the directory can be resumed.
    wait_for(
        &run_dir.join(epoch_file_name(1)),
        &mut first,
        Duration::from_secs(300),
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let err = ok(&[
        "train",
        "--resume",
        s(&run_dir),
        "--epochs",
        "1",
        "--quiet",
        "--record",
        "none",
    ]);
    assert!(err.contains("resuming"), "{err}");
}

#[test]
fn two_resumes_of_one_directory_one_runs_the_other_is_refused() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run_dir = tmp.path().join("run");
    ok(&train_args(&model, 300, 1, &run_dir));
    // Both at once (apical 0.1 ran both; they shared `.metrics.json.tmp` and one could
    // die with "metrics.json: No such file or directory").
    let resume = || {
        apical()
            .args([
                "train",
                "--resume",
                s(&run_dir),
                "--epochs",
                "3",
                "--quiet",
                "--record",
                "none",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (resume(), resume());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![Some(0), Some(1)],
        "exactly one runs: {codes:?}"
    );
    let refused = outs.iter().find(|o| o.status.code() == Some(1)).unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("is in use by process"), "{err}");
    assert!(temporaries(&run_dir).is_empty());
    // The run that ran equals a straight run.
    let straight = tmp.path().join("straight");
    ok(&train_args(&model, 300, 3, &straight));
    assert!(bytes(&run_dir.join(epoch_file_name(3))) == bytes(&straight.join(epoch_file_name(3))));
}

#[test]
fn the_lock_names_its_holder_and_goes_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let (rd, lock) = RunDir::create_locked(&dir).unwrap();
    let text = fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
    let holder: LockHolder = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.host, host());
    // A second lock, even in the same process (another open file), is refused.
    match rd.lock() {
        Err(RunDirError::Locked { dir: d, holder: h }) => {
            assert_eq!(d, dir);
            assert!(
                h.contains(&format!("process {}", std::process::id())),
                "{h}"
            );
        }
        other => panic!("second lock: {other:?}"),
    }
    drop(lock);
    // A directory created for a run in which nothing was written is removed again.
    assert!(!dir.exists());
    let (rd, lock) = RunDir::create_locked(&dir).unwrap();
    fs::write(dir.join("run.json"), "{}").unwrap();
    // Temporary files that a killed writer left behind go when the directory is locked
    // again; other dot files stay.
    drop(lock);
    for name in [
        ".run.json.123-4.tmp",
        ".checkpoint-epoch-3.bin.tmp",
        ".notes.tmp",
    ] {
        fs::write(dir.join(name), "x").unwrap();
    }
    let lock = rd.lock().unwrap();
    assert!(dir.join("run.json").exists());
    assert_eq!(temporaries(&dir), vec![".notes.tmp".to_string()]);
    drop(lock);
    assert!(dir.exists(), "a directory that holds a run stays");
    assert_eq!(fs::read_to_string(dir.join(LOCK_FILE)).unwrap(), "");
}

#[cfg(unix)]
#[test]
fn a_link_at_the_lock_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = write_file(tmp.path(), "victim", b"keep");
    let dir = tmp.path().join("run");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join(LOCK_FILE)).unwrap();
    let e = RunDir::open(&dir).unwrap().lock().unwrap_err().to_string();
    assert!(e.contains("symbolic link") && e.contains(LOCK_FILE), "{e}");
    assert_eq!(bytes(&target), b"keep");
}

#[test]
fn reproduce_refuses_a_run_directory_in_use() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let dir = out.join("guerguiev-0h").join("seed0");
    fs::create_dir_all(&dir).unwrap();
    let lock = RunDir::open(&dir).unwrap().lock().unwrap();
    let err = fails(&[
        "reproduce",
        "0h",
        "--epochs",
        "1",
        "--train-examples",
        "20",
        "--test-examples",
        "20",
        "--out",
        s(&out),
        "--results",
        s(&tmp.path().join("results.md")),
    ]);
    assert!(
        err.contains(&format!(
            "{} is in use by process {}",
            dir.display(),
            std::process::id()
        )),
        "{err}"
    );
    assert!(!err.contains("loading data set"), "{err}");
    drop(lock);
}

// ------------------------------------------------------------ links at file names

#[cfg(unix)]
#[test]
fn links_in_a_run_directory_are_never_written_through() {
    if data_dir().is_none() {
        return;
    }
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let victim = write_file(tmp.path(), "victim", b"someone else's file");
    // A link planted at a temporary name (apical 0.1 wrote its .run.json.tmp through it
    // into the victim).
    let run_dir = tmp.path().join("planted");
    fs::create_dir(&run_dir).unwrap();
    symlink(&victim, run_dir.join(".run.json.tmp")).unwrap();
    symlink(&victim, run_dir.join(".checkpoint-epoch-1.bin.tmp")).unwrap();
    ok(&train_args(&model, 30, 1, &run_dir));
    assert_eq!(bytes(&victim), b"someone else's file");
    assert!(Checkpoint::load(&run_dir.join(epoch_file_name(1))).is_ok());
    // A link at a final name is refused, naming it; the link and its target stay.
    for name in ["model.toml", "run.json"] {
        let run_dir = tmp.path().join(format!("final-{name}"));
        fs::create_dir(&run_dir).unwrap();
        symlink(&victim, run_dir.join(name)).unwrap();
        let mut args = train_args(&model, 30, 1, &run_dir);
        args.retain(|a| a != "--record" && a != "none");
        let err = fails(&args);
        assert!(
            err.contains(&format!(
                "{} is a symbolic link",
                run_dir.join(name).display()
            )),
            "{err}"
        );
        assert_eq!(bytes(&victim), b"someone else's file");
        assert!(fs::symlink_metadata(run_dir.join(name))
            .unwrap()
            .file_type()
            .is_symlink());
    }
    // traces.h5 as a link: refused before the recorder opens it (HDF5 would truncate the
    // target).
    let run_dir = tmp.path().join("traces");
    fs::create_dir(&run_dir).unwrap();
    symlink(&victim, run_dir.join("traces.h5")).unwrap();
    let mut args = train_args(&model, 30, 1, &run_dir);
    args.retain(|a| a != "--record" && a != "none");
    let err = fails(&args);
    assert!(err.contains("traces.h5 is a symbolic link"), "{err}");
    assert!(!err.contains("loading data set"), "{err}");
    assert_eq!(bytes(&victim), b"someone else's file");
}

// ---------------------------------------------------------- resume checks the run

/// A one-epoch run of the small model (seed 7) in `dir`.
fn one_epoch_run(model: &Path, dir: &Path) {
    let mut a = train_args(model, 200, 1, dir);
    a.extend(["--seed".into(), "7".into()]);
    ok(&a);
}

fn resume(dir: &Path, epochs: &str) -> Vec<String> {
    [
        "train",
        "--resume",
        s(dir),
        "--epochs",
        epochs,
        "--quiet",
        "--record",
        "none",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[test]
fn resume_repairs_a_lost_model_toml_and_run_json_from_the_checkpoint() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run_dir = tmp.path().join("run");
    one_epoch_run(&model, &run_dir);
    let model_toml = bytes(&run_dir.join("model.toml"));
    fs::remove_file(run_dir.join("model.toml")).unwrap();
    fs::write(run_dir.join("run.json"), "{\"apical_version\": \"0.1").unwrap();
    let err = ok(&resume(&run_dir, "2"));
    assert!(
        err.contains("model.toml was missing: rewritten from"),
        "{err}"
    );
    assert!(
        err.contains("run.json") && err.contains("rebuilt from"),
        "{err}"
    );
    // The model as it was; the budget block names the resumed run's 2 epochs (the run
    // trained 1 before).
    let (before, after) = (
        String::from_utf8(model_toml).unwrap(),
        fs::read_to_string(run_dir.join("model.toml")).unwrap(),
    );
    assert_eq!(model_text_of(&after), model_text_of(&before));
    assert!(
        before.contains("#   epochs = 1, train_examples = 200 per epoch"),
        "{before}"
    );
    assert_eq!(
        after,
        before.replace("#   epochs = 1,", "#   epochs = 2,"),
        "{after}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["seed"], 7);
    assert_eq!(info["epochs"], 2);
    assert_eq!(info["train_examples"], 200);
    assert_eq!(info["model"], "small");
    // The repaired run is the run: equal to a straight two-epoch run.
    let straight = tmp.path().join("straight");
    let mut a = train_args(&model, 200, 2, &straight);
    a.extend(["--seed".into(), "7".into()]);
    ok(&a);
    assert!(bytes(&run_dir.join(epoch_file_name(2))) == bytes(&straight.join(epoch_file_name(2))));
    // run.json lost and no --epochs: the total is unknown, so nothing more is trained.
    fs::remove_file(run_dir.join("run.json")).unwrap();
    let err = ok(&[
        "train",
        "--resume",
        s(&run_dir),
        "--quiet",
        "--record",
        "none",
    ]);
    assert!(err.contains("give --epochs for more"), "{err}");
    assert!(!run_dir.join(epoch_file_name(3)).exists());
}

#[test]
fn resume_refuses_run_json_and_model_toml_that_contradict_the_checkpoint() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run_dir = tmp.path().join("run");
    one_epoch_run(&model, &run_dir);
    let ck = run_dir.join(epoch_file_name(1));
    let info_path = run_dir.join("run.json");
    let info = fs::read_to_string(&info_path).unwrap();
    fs::write(&info_path, info.replace("\"seed\": 7", "\"seed\": 5")).unwrap();
    let err = fails(&resume(&run_dir, "2"));
    assert!(
        err.contains(&format!(
            "{} does not match checkpoint {}",
            info_path.display(),
            ck.display()
        )) && err.contains("seed 5 against 7"),
        "{err}"
    );
    fs::write(&info_path, &info).unwrap();
    // Another model in model.toml.
    let toml_path = run_dir.join("model.toml");
    let text = fs::read_to_string(&toml_path).unwrap();
    fs::write(&toml_path, text.replace("hidden = [20]", "hidden = [30]")).unwrap();
    let err = fails(&resume(&run_dir, "2"));
    assert!(
        err.contains(&format!(
            "{} does not match checkpoint {}",
            toml_path.display(),
            ck.display()
        )) && err.contains("784-30-10")
            && err.contains("784-20-10"),
        "{err}"
    );
    // The same model written differently (a comment) is the same model.
    fs::write(&toml_path, format!("# a note\n{text}")).unwrap();
    ok(&resume(&run_dir, "2"));
    assert!(run_dir.join(epoch_file_name(2)).exists());
}

#[test]
fn a_checkpoint_of_another_run_is_refused() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let other_model = write_file(
        tmp.path(),
        "other.toml",
        small_model_with("hidden = [20]", "hidden = [30]").as_bytes(),
    );
    let run_dir = tmp.path().join("run");
    one_epoch_run(&model, &run_dir);
    let other = tmp.path().join("other");
    ok(&train_args(&other_model, 100, 2, &other));
    // Its epoch-2 checkpoint copied in: newer than the run's own, of another model.
    let intruder = run_dir.join(epoch_file_name(2));
    fs::copy(other.join(epoch_file_name(2)), &intruder).unwrap();
    let err = fails(&resume(&run_dir, "3"));
    assert!(
        err.contains("belong to different runs")
            && err.contains(&intruder.display().to_string())
            && err.contains(&run_dir.join(epoch_file_name(1)).display().to_string())
            && err.contains("784-30-10"),
        "{err}"
    );
    // Alone in the run, it is caught by model.toml.
    fs::remove_file(run_dir.join(epoch_file_name(1))).unwrap();
    let err = fails(&resume(&run_dir, "3"));
    assert!(
        err.contains("model.toml does not match checkpoint"),
        "{err}"
    );
    assert!(!run_dir.join(epoch_file_name(3)).exists());
}

// ----------------------------------------------------- the latest checkpoint by content

#[test]
fn a_checkpoint_whose_name_and_content_disagree_is_refused() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run_dir = tmp.path().join("run");
    ok(&train_args(&model, 100, 2, &run_dir));
    let misnamed = run_dir.join(epoch_file_name(9));
    fs::copy(run_dir.join(epoch_file_name(1)), &misnamed).unwrap();
    // apical 0.1 resumed from it: epoch 2 trained again on top of epoch 1.
    let err = fails(&resume(&run_dir, "3"));
    assert!(
        err.contains(&format!(
            "checkpoint {} is named for 9 epochs done but holds 1 epochs done",
            misnamed.display()
        )),
        "{err}"
    );
    let err = fails(&["eval", s(&run_dir)]);
    assert!(err.contains("name and content disagree"), "{err}");
    fs::remove_file(&misnamed).unwrap();
    ok(&resume(&run_dir, "3"));
}

#[test]
fn eval_of_a_run_whose_latest_checkpoint_is_damaged_names_the_previous_one() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let run_dir = tmp.path().join("run");
    ok(&train_args(&model, 100, 2, &run_dir));
    let latest = run_dir.join(epoch_file_name(2));
    let mut raw = bytes(&latest);
    let mid = raw.len() / 2;
    raw[mid] ^= 0x40;
    fs::write(&latest, &raw).unwrap();
    let err = fails(&["eval", s(&run_dir), "--test-examples", "20"]);
    assert!(
        err.contains("checkpoint-epoch-2.bin is corrupt: payload checksum mismatch")
            && err.contains(&format!(
                "the previous one is {}",
                run_dir.join(epoch_file_name(1)).display()
            )),
        "{err}"
    );
}

// --------------------------------------------------------------------- retention

#[test]
fn retention_keeps_the_last_two_and_every_tenth_epoch_unless_told_otherwise() {
    let k = KeepCheckpoints::default();
    assert_eq!(k.to_string(), "last:2,every:10");
    let kept: Vec<usize> = (1..=23).filter(|&e| k.keeps(e, 23)).collect();
    assert_eq!(kept, vec![10, 20, 22, 23]);
    let k: KeepCheckpoints = "last:1".parse().unwrap();
    assert_eq!(
        (1..=5).filter(|&e| k.keeps(e, 5)).collect::<Vec<_>>(),
        vec![5]
    );
    let k: KeepCheckpoints = "every:3,last:2".parse().unwrap();
    assert_eq!(k, KeepCheckpoints::Some { last: 2, every: 3 });
    assert_eq!(k.to_string(), "last:2,every:3");
    assert_eq!(
        "all".parse::<KeepCheckpoints>().unwrap(),
        KeepCheckpoints::All
    );
    for bad in ["", "last:0", "every:2", "last:x", "keep:3", "last:2,last:3"] {
        let e = bad.parse::<KeepCheckpoints>().unwrap_err();
        assert!(e.contains("last:N"), "{bad}: {e}");
    }
    // run.json of apical 0.1 has no setting: the default.
    let info: apical::io::run_dir::RunInfo = serde_json::from_str(
        r#"{"apical_version":"0.1.0","model":"m","seed":0,"epochs":2,"train_examples":10,
            "test_examples":10,"data_dir":"d","checkpoint_every":0}"#,
    )
    .unwrap();
    assert_eq!(info.keep_checkpoints, KeepCheckpoints::default());
    let json = serde_json::to_string(&apical::io::run_dir::RunInfo {
        keep_checkpoints: KeepCheckpoints::All,
        ..info
    })
    .unwrap();
    assert!(json.contains("\"keep_checkpoints\":\"all\""), "{json}");
}

/// A checkpoint of the small model after `epochs` epochs (made by hand: no training).
fn hand_made_checkpoint(epochs: usize) -> Checkpoint {
    let cfg = apical::model::config::ModelConfig::from_toml_str(&small_model_toml(), "m").unwrap();
    Checkpoint {
        model_sha256: checkpoint::sha256_hex(cfg.to_toml_string().as_bytes()),
        model_toml: cfg.to_toml_string(),
        seed: 0,
        train_examples: 10,
        test_examples: 10,
        epochs_done: epochs,
        progress: None,
        params: apical::sim::network::Network::new(cfg, 0).params,
        feedback_rng: apical::base::rng::stream(0, apical::base::rng::Purpose::Feedback, &[]),
        rule_params: Default::default(),
        history: (1..=epochs)
            .map(|epoch| checkpoint::EpochRecord {
                epoch,
                train_examples: 10,
                train_error: 0.0,
                test_examples: 10,
                test_error: 0.0,
                rates_hz: vec![0.0, 0.0],
            })
            .collect(),
    }
}

#[test]
fn an_absurd_string_length_behind_a_valid_checksum_is_refused_before_allocating() {
    let raw = hand_made_checkpoint(1).to_bytes();
    let payload = &raw[52..];
    // The model text's length: bincode writes 251 and a u16 for lengths of 251..65535.
    assert_eq!(payload[0], 251);
    let mut forged = vec![253u8];
    forged.extend_from_slice(&(1u64 << 40).to_le_bytes());
    forged.extend_from_slice(&payload[3..]);
    let mut file = raw[..12].to_vec();
    file.extend_from_slice(&(forged.len() as u64).to_le_bytes());
    use sha2::Digest;
    file.extend_from_slice(&sha2::Sha256::digest(&forged));
    file.extend_from_slice(&forged);
    let e = Checkpoint::from_bytes(&file, Path::new("forged.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("forged.bin is corrupt: the model text is announced as 1099511627776 bytes"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = write_file(tmp.path(), "checkpoint-epoch-1.bin", &file);
    assert!(checkpoint::peek(&p)
        .unwrap_err()
        .to_string()
        .contains("announced as"));
}

#[test]
fn pruning_needs_the_newest_checkpoint_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rd = RunDir::open(dir).unwrap();
    let keep = KeepCheckpoints::Some { last: 1, every: 0 };
    for e in 1..=3 {
        hand_made_checkpoint(e)
            .save(&dir.join(epoch_file_name(e)))
            .unwrap();
    }
    // Epoch 4's file is not there (a failed write): nothing is deleted.
    assert!(rd.prune_checkpoints(keep, 4).is_err());
    assert_eq!(list_checkpoints(dir).unwrap().len(), 3);
    // A file named for epoch 4 that holds epoch 3: nothing is deleted either.
    fs::copy(dir.join(epoch_file_name(3)), dir.join(epoch_file_name(4))).unwrap();
    let e = rd.prune_checkpoints(keep, 4).unwrap_err().to_string();
    assert!(e.contains("does not hold 4 epochs"), "{e}");
    assert_eq!(list_checkpoints(dir).unwrap().len(), 4);
    fs::remove_file(dir.join(epoch_file_name(4))).unwrap();
    let deleted = rd.prune_checkpoints(keep, 3).unwrap();
    assert_eq!(
        deleted,
        vec![dir.join(epoch_file_name(1)), dir.join(epoch_file_name(2))]
    );
    let left: Vec<usize> = list_checkpoints(dir).unwrap().iter().map(|c| c.0).collect();
    assert_eq!(left, vec![3]);
    // The head of a checkpoint is what a full load says.
    let head = checkpoint::peek(&dir.join(epoch_file_name(3))).unwrap();
    let full = Checkpoint::load(&dir.join(epoch_file_name(3))).unwrap();
    assert_eq!(head.position(), full.position());
    assert_eq!(head.model_sha256, full.model_sha256);
}

#[test]
fn train_and_resume_apply_the_retention_policy() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let epochs_left =
        |dir: &Path| -> Vec<usize> { list_checkpoints(dir).unwrap().iter().map(|c| c.0).collect() };
    // The default: the last two and every tenth.
    let run_dir = tmp.path().join("default");
    ok(&train_args(&model, 20, 12, &run_dir));
    assert_eq!(epochs_left(&run_dir), vec![10, 11, 12]);
    // Everything, then a resume that keeps only the last (the run's own setting is
    // replaced by the flag and recorded).
    let run_dir = tmp.path().join("all");
    let mut a = train_args(&model, 20, 3, &run_dir);
    a.extend(["--keep-checkpoints".into(), "all".into()]);
    ok(&a);
    assert_eq!(epochs_left(&run_dir), vec![1, 2, 3]);
    let info = fs::read_to_string(run_dir.join("run.json")).unwrap();
    assert!(info.contains("\"keep_checkpoints\": \"all\""), "{info}");
    ok(&resume(&run_dir, "4"));
    assert_eq!(
        epochs_left(&run_dir),
        vec![1, 2, 3, 4],
        "the run's own setting"
    );
    let mut a = resume(&run_dir, "5");
    a.extend(["--keep-checkpoints".into(), "last:1".into()]);
    ok(&a);
    assert_eq!(epochs_left(&run_dir), vec![5]);
    // A bad policy is a usage error (status 2), before anything runs.
    let (code, _, err) = run(apical().args(["train", s(&model), "--keep-checkpoints", "last:0"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("\"last:0\" is not a checkpoint retention"),
        "{err}"
    );
}

// ------------------------------------------------------------------ bounded reads

#[test]
fn eval_of_a_device_is_refused_without_reading_it() {
    let mut child = apical()
        .args(["eval", "/dev/zero"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("apical eval /dev/zero still reading after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read checkpoint /dev/zero: not a regular file"),
        "{err}"
    );
}

#[test]
fn a_gzip_bomb_is_refused_after_what_its_header_promises() {
    let tmp = tempfile::tempdir().unwrap();
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    // A valid labels file of 10,000 labels, then 2 GiB of zeros in further gzip members
    // (2 MB on disk).
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&10_000u32.to_be_bytes());
    labels.extend(std::iter::repeat_n(3u8, 10_000));
    let mut file = gz(&labels);
    let zeros = gz(&vec![0u8; 16 << 20]);
    for _ in 0..128 {
        file.extend_from_slice(&zeros);
    }
    let path = write_file(tmp.path(), "t10k-labels-idx1-ubyte.gz", &file);
    let t0 = Instant::now();
    let e = read_idx_labels(&path).unwrap_err();
    assert!(matches!(e, DataError::TrailingBytes { .. }), "{e}");
    let msg = e.to_string();
    // Counted up to 1 MiB past the end, not inflated (apical 0.1 inflated 1 GiB and then
    // said "too large").
    assert!(
        msg.contains("expected 10008 bytes but the file has more than 1058584")
            && msg.contains("after gzip decompression"),
        "{msg}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

#[test]
fn a_checkpoint_too_large_for_the_memory_is_refused_before_it_is_read() {
    // A sparse 1.5 GiB file with a valid header: under `ulimit -v` 2 GB it cannot be read
    // (apical 0.1 read it whole and aborted).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("checkpoint-epoch-1.bin");
    let len: u64 = 3 << 29;
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(checkpoint::MAGIC).unwrap();
    f.write_all(&checkpoint::FORMAT_VERSION.to_le_bytes())
        .unwrap();
    f.write_all(&len.to_le_bytes()).unwrap();
    f.write_all(&[0u8; 32]).unwrap();
    f.set_len(52 + len).unwrap();
    drop(f);
    let err = fails_with(
        common::command("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 2000000 && exec {} eval {}",
                env!("CARGO_BIN_EXE_apical"),
                s(&path)
            ))
            .env_remove("APICAL_DATA"),
    );
    assert!(
        err.contains(&format!(
            "reading checkpoint {} needs about 3.0 GiB of memory",
            path.display()
        )) && err.contains("ulimit -v"),
        "{err}"
    );
}

// -------------------------------------------------------------- memory of a model

#[test]
fn a_model_too_large_for_the_memory_is_refused_with_what_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("huge");
    // 784 x 1,000,000 weights: 3.1 GB of parameters; under a 3 GB address-space limit
    // apical 0.1 aborted (status 134) allocating them.
    let err = fails_with(
        common::command("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 3000000 && exec {} train --set network.hidden=[1000000] --epochs 1 --out {} --quiet",
                env!("CARGO_BIN_EXE_apical"),
                s(&out)
            ))
            .env_remove("APICAL_DATA"),
    );
    assert!(
        err.contains("the model guerguiev-1h (784-1000000-10) needs about")
            && err.contains("GiB available (the limit is ulimit -v (RLIMIT_AS))"),
        "{err}"
    );
    assert!(!err.contains("loading data set"), "{err}");
    assert!(!out.exists(), "nothing left behind");
}

// ------------------------------------------------------ bad settings, named sources

#[test]
fn example_counts_above_the_data_set_are_errors_naming_the_maximum() {
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let out = tmp.path().join("run");
    let err = fails(&[
        "train",
        s(&model),
        "--train-examples",
        "60001",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("--train-examples 60001 is more than the 60000 training images of MNIST"),
        "{err}"
    );
    let err = fails(&[
        "train",
        s(&model),
        "--test-examples",
        "10001",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("--test-examples 10001 is more than the 10000 test images"),
        "{err}"
    );
    let big = write_file(
        tmp.path(),
        "big.toml",
        small_model_with("train_examples = 60000", "train_examples = 70000").as_bytes(),
    );
    let err = fails(&["train", s(&big), "--out", s(&out)]);
    assert!(
        err.contains("training.train_examples = 70000 is more than the 60000"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    let err = fails(&[
        "reproduce",
        "0h",
        "--train-examples",
        "60001",
        "--out",
        s(&out),
        "--results",
        s(&tmp.path().join("r.md")),
    ]);
    assert!(
        err.contains("--train-examples 60001 is more than the 60000"),
        "{err}"
    );
    // eval knows the test set once it has read the checkpoint's run (its data set).
    let run = tmp.path().join("tiny");
    let model = small_model_file(tmp.path());
    let (code, _, err) = common::run_apical(&[
        "train",
        s(&model),
        "--epochs",
        "1",
        "--train-examples",
        "20",
        "--test-examples",
        "10",
        "--out",
        s(&run),
        "--quiet",
        "--record",
        "none",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let ck = run.join("checkpoint-epoch-1.bin");
    let err = fails(&["eval", s(&ck), "--test-examples", "10001"]);
    assert!(
        err.contains("--test-examples 10001 is more than the 10000 test images of mnist"),
        "{err}"
    );
}

#[test]
fn errors_name_apical_data_when_it_is_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let model = small_model_file(tmp.path());
    let out = tmp.path().join("run");
    let err = fails_with(
        apical()
            .args(["train", s(&model), "--out", s(&out), "--epochs", "1"])
            .env("APICAL_DATA", "/nonexistent/mnist"),
    );
    assert!(
        err.contains("data directory /nonexistent/mnist (from APICAL_DATA) does not exist"),
        "{err}"
    );
    let err = fails(&[
        "train",
        s(&model),
        "--out",
        s(&out),
        "--data",
        "/nonexistent/mnist",
    ]);
    assert!(err.contains("(from --data)"), "{err}");
    // --data wins over APICAL_DATA and is named.
    let err = fails_with(
        apical()
            .args(["train", s(&model), "--out", s(&out), "--data", "/nowhere/a"])
            .env("APICAL_DATA", "/nowhere/b"),
    );
    assert!(err.contains("/nowhere/a (from --data)"), "{err}");
    assert!(!out.exists());
}

#[test]
fn implausible_time_steps_are_errors_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    for (value, want) in [
        ("1e-300", "below 0.001 ms can only be a mistake"),
        (
            "50.0",
            "longer than the membrane time constant synapse.tau_L (10 ms)",
        ),
    ] {
        let err = fails(&[
            "train",
            "--set",
            &format!("neuron.dt={value}"),
            "--out",
            s(&out),
        ]);
        assert!(
            err.contains("field `neuron.dt`") && err.contains(want),
            "{value}: {err}"
        );
    }
    assert!(!out.exists());
}

// ------------------------------------------------------------------------- fonts

#[test]
fn reproduce_without_a_font_writes_the_results_page_without_plots() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("docs/results.md");
    let (code, out, err) = run(apical()
        .args([
            "reproduce",
            "0h",
            "--epochs",
            "1",
            "--train-examples",
            "30",
            "--test-examples",
            "30",
            "--no-verify",
            "--out",
            s(&tmp.path().join("runs")),
            "--results",
            s(&results),
        ])
        .env("APICAL_FONT", tmp.path().join("no-such-font.ttf")));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(err.matches("warning: plots skipped").count(), 1, "{err}");
    assert!(err.contains("no-such-font.ttf (APICAL_FONT)"), "{err}");
    let page = fs::read_to_string(&results).unwrap();
    assert!(
        page.contains("guerguiev-0h") && !page.contains("## Plots"),
        "{page}"
    );
    assert!(tmp
        .path()
        .join("runs/guerguiev-0h/seed0/metrics.csv")
        .is_file());
    let pngs = fs::read_dir(tmp.path().join("docs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .count();
    assert_eq!(pngs, 0);
}
