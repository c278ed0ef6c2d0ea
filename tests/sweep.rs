//! `apical sweep`: the points of a sweep file (product, zip), their directory names, shards,
//! errors naming the key, the Slurm script, and real tiny sweeps: each point's checkpoint is
//! the one `apical train --set ... --seed S` writes, finished points are skipped, stopped ones
//! resume to the same result, SIGTERM checkpoints, and summary.csv holds the test errors the
//! checkpoints give when tested again.

mod common;

use apical::app::sweep::collect::{self, mean_sd};
use apical::app::sweep::runner::{self, PointLock, PointState, RunSettings};
use apical::app::sweep::slurm::{self, SlurmOptions, TaskCommand};
use apical::app::sweep::spec::{point_name, Shard, SweepSpec};
use apical::io::checkpoint::{epoch_file_name, list_checkpoints};
use apical::io::run_dir::RunDir;
use apical::run::events::Quiet;
use apical::run::metrics::evaluate;
use apical::run::session::{self, Start, TrainRequest};
use apical::run::trainer::TrainError;
use common::{apical, data_dir, mnist, read_csv, run_apical, s, small_model_toml, write_file};
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use toml::Value;

fn spec(dir: &Path, text: &str) -> SweepSpec {
    let p = write_file(dir, "sweep.toml", text.as_bytes());
    SweepSpec::from_file(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn spec_err(text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_file(tmp.path(), "sweep.toml", text.as_bytes());
    match SweepSpec::from_file(&p).and_then(|s| s.resolve_all().map(|_| ())) {
        Ok(()) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn f(v: &Value) -> f64 {
    v.as_float().unwrap()
}

/// (eta hidden, g_A, seed) of each point.
fn triples(sp: &SweepSpec) -> Vec<(f64, f64, i64)> {
    sp.points()
        .iter()
        .map(|p| {
            let get = |k: &str| &p.values.iter().find(|(pk, _)| pk == k).unwrap().1;
            let eta = get("learning.eta").as_array().unwrap()[0].clone();
            (
                f(&eta),
                f(get("neuron.g_A")),
                get("seed").as_integer().unwrap(),
            )
        })
        .collect()
}

#[test]
fn points_are_the_product_of_the_axes_the_last_key_fastest() {
    let tmp = tempfile::tempdir().unwrap();
    // Keys in non-alphabetical order in the file; nested-table form for one of them.
    let sp = spec(
        tmp.path(),
        r#"model = "1h"
[axes]
seed = [0, 1]
"neuron.g_A" = [0.05, 0.1, 0.2]
[axes.learning]
eta = [[0.1, 0.1], [0.3, 0.3]]
"#,
    );
    let mut expected = Vec::new();
    for eta in [0.1, 0.3] {
        for g in [0.05, 0.1, 0.2] {
            for seed in [0, 1] {
                expected.push((eta, g, seed));
            }
        }
    }
    assert_eq!(triples(&sp), expected);
    let points = sp.points();
    assert_eq!(points.len(), 12);
    assert!(points.iter().enumerate().all(|(i, p)| p.index == i));
    assert_eq!(
        sp.keys(),
        ["learning.eta", "neuron.g_A", "seed"].map(String::from)
    );
    // Each point's model holds its values.
    let r = sp.resolve(&points[7]).unwrap();
    assert_eq!(r.model.learning.eta, vec![0.3, 0.3]);
    assert_eq!(r.model.neuron.g_a, 0.05);
    assert_eq!(r.point.seed, 1);
    // No [training]: the model's own budget.
    assert_eq!(
        (r.epochs, r.train_examples, r.test_examples),
        (60, 60_000, 10_000)
    );
}

#[test]
fn zipped_lists_go_together_then_product_with_the_axes() {
    let tmp = tempfile::tempdir().unwrap();
    let sp = spec(
        tmp.path(),
        r#"model = "guerguiev-1h"
[training]
epochs = 2
train_examples = 300
[zip]
"learning.eta" = [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]
"neuron.g_A" = [0.05, 0.1, 0.2]
[axes]
seed = [4, 5]
"#,
    );
    let expected: Vec<(f64, f64, i64)> = [(0.1, 0.05), (0.2, 0.1), (0.3, 0.2)]
        .iter()
        .flat_map(|&(e, g)| [4, 5].map(|s| (e, g, s)))
        .collect();
    assert_eq!(triples(&sp), expected);
    let r = sp.resolve(&sp.points()[0]).unwrap();
    assert_eq!(
        (r.epochs, r.train_examples, r.test_examples),
        (2, 300, 10_000)
    );

    let e = spec_err(
        r#"model = "1h"
[zip]
"learning.eta" = [[0.1, 0.1], [0.2, 0.2]]
"neuron.g_A" = [0.05, 0.1, 0.2]
"#,
    );
    assert!(
        e.contains("`learning.eta` has 2 values, `neuron.g_A` has 3"),
        "{e}"
    );
}

#[test]
fn names_are_stable_safe_and_distinct() {
    let tmp = tempfile::tempdir().unwrap();
    let small = spec(
        tmp.path(),
        r#"model = "1h"
[axes]
"learning.eta" = [[0.19, 0.19], [0.23, 0.23]]
seed = [0, 1]
"#,
    );
    let names: Vec<String> = small.points().iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        names,
        [
            "learning.eta=0.19,0.19__seed=0",
            "learning.eta=0.19,0.19__seed=1",
            "learning.eta=0.23,0.23__seed=0",
            "learning.eta=0.23,0.23__seed=1"
        ]
    );
    // More values, another order in the file: the common points keep their names.
    let bigger = spec(
        tmp.path(),
        r#"model = "1h"
[axes]
seed = [2, 1, 0]
"learning.eta" = [[0.1, 0.1], [0.23, 0.23], [0.19, 0.19]]
"#,
    );
    let big: BTreeSet<String> = bigger.points().iter().map(|p| p.name.clone()).collect();
    assert_eq!(big.len(), 9);
    assert!(names.iter().all(|n| big.contains(n)), "{big:?}");
    // Integers and whole floats differ; seed is always named.
    let one = |v: Value| point_name(&[("x.y".into(), v), ("seed".into(), Value::Integer(0))]);
    assert_eq!(one(Value::Integer(1)), "x.y=1__seed=0");
    assert_eq!(one(Value::Float(1.0)), "x.y=1.0__seed=0");
    assert_eq!(
        one(Value::String("symmetric".into())),
        "x.y=symmetric__seed=0"
    );
    // Unsafe characters: replaced, and a hash keeps such names apart.
    let a = one(Value::String("a/b".into()));
    let b = one(Value::String("a b".into()));
    assert!(a.starts_with("x.y=a_b__seed=0-h") && a.len() == "x.y=a_b__seed=0-h".len() + 10);
    assert!(b.starts_with("x.y=a_b__seed=0-h"));
    assert_ne!(a, b);
    // Long names are cut, with the hash.
    let long = one(Value::Array(vec![Value::Float(0.123456789); 30]));
    assert!(long.len() <= 112, "{long}");
    let long2 = one(Value::Array(vec![Value::Float(0.123456788); 30]));
    assert_ne!(long, long2);
    for n in [&a, &b, &long] {
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._,=+-".contains(c)),
            "{n}"
        );
    }
}

#[test]
fn shards_cover_every_point_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let sp = spec(
        tmp.path(),
        r#"model = "1h"
[axes]
"neuron.g_A" = [0.05, 0.1, 0.2, 0.3, 0.4]
seed = [0, 1, 2]
"#,
    );
    let points = sp.points();
    for n in 1..=17 {
        let mut seen = vec![0; points.len()];
        for k in 0..n {
            let shard: Shard = format!("{k}/{n}").parse().unwrap();
            for p in points.iter().filter(|p| shard.contains(p)) {
                seen[p.index] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "n = {n}: {seen:?}");
    }
    for bad in ["3/3", "1/0", "a/2", "1", "-1/2"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

#[test]
fn sweep_file_errors_name_the_key() {
    let e = spec_err("model = \"1h\"\n[axes]\n\"learning.etaa\" = [[0.1, 0.1]]\n");
    assert!(
        e.contains("`learning.etaa` is not a model field; did you mean `learning.eta`?"),
        "{e}"
    );
    let e = spec_err("model = \"1h\"\n[axes]\n\"neuron.dt\" = [-1.0]\n");
    assert!(
        e.contains("neuron.dt") && e.contains("point neuron.dt=-1.0"),
        "{e}"
    );
    let e =
        spec_err("model = \"1h\"\n[set]\n\"neuron.g_A\" = 0.1\n[axes]\n\"neuron.g_A\" = [0.05]\n");
    assert!(
        e.contains("`neuron.g_A` is in both [set] and [axes]"),
        "{e}"
    );
    let e =
        spec_err("model = \"1h\"\n[training]\nepochs = 1\n[axes]\n\"training.epochs\" = [1, 2]\n");
    assert!(
        e.contains("`training.epochs` in [axes] has no effect"),
        "{e}"
    );
    let e = spec_err("model = \"1h\"\n[axes]\nseed = [0, -1]\n");
    assert!(e.contains("seed values must be whole numbers >= 0"), "{e}");
    let e = spec_err("model = \"1h\"\n[axes]\n\"neuron.g_A\" = []\n");
    assert!(e.contains("`neuron.g_A` must be a non-empty list"), "{e}");
    let e = spec_err("model = \"7h\"\n");
    assert!(e.contains("unknown experiment \"7h\""), "{e}");
    let e = spec_err("model = \"missing.toml\"\n");
    assert!(e.contains("missing.toml"), "{e}");
    let e = spec_err("model = \"1h\"\n[axis]\nseed = [0]\n");
    assert!(e.contains("unknown entry `axis`"), "{e}");
    let e = spec_err("model = \"1h\"\n[training]\nepoch = 1\n");
    assert!(e.contains("[training] has no field `epoch`"), "{e}");
    let e = spec_err("model = \"1h\"\n[training]\nkeep_checkpoints = \"last:x\"\n");
    assert!(e.contains("[training] keep_checkpoints:"), "{e}");
    let e = spec_err("model = \"1h\"\n[training]\nkeep_checkpoints = 2\n");
    assert!(e.contains("keep_checkpoints must be a string"), "{e}");
}

/// `[training] keep_checkpoints` reaches every point's run: with `last:1` a 3-epoch point
/// keeps only its final checkpoint, and the policy survives the saved sweep.
#[test]
fn the_sweep_retention_policy_reaches_every_point() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    write_file(tmp.path(), "small.toml", small_model_toml().as_bytes());
    let sp = spec(
        tmp.path(),
        "model = \"small.toml\"\n[training]\nepochs = 3\ntrain_examples = 20\n\
         test_examples = 10\nrecord = \"none\"\nkeep_checkpoints = \"last:1\"\n[axes]\nseed = [0]\n",
    );
    let out = tmp.path().join("out");
    sp.save(&out).unwrap();
    let runs = SweepSpec::load_dir(&out).unwrap().resolve_all().unwrap();
    assert_eq!(
        runs[0].keep_checkpoints,
        Some("last:1".parse().unwrap()),
        "the saved sweep keeps the policy"
    );
    let settings = RunSettings {
        out: out.clone(),
        data: Some(data),
        dataset: None,
        verify: false,
        jobs: 1,
        compression: "none".parse().unwrap(),
    };
    let report = runner::run_points(&runs, &settings, &AtomicBool::new(false), &|_| {}).unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let dir = runner::point_dir(&out, &runs[0]);
    let left: Vec<String> = list_checkpoints(&dir)
        .unwrap()
        .into_iter()
        .map(|(_, _, p)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![epoch_file_name(3)], "{left:?}");
}

#[test]
fn the_saved_sweep_is_self_contained() {
    let tmp = tempfile::tempdir().unwrap();
    write_file(tmp.path(), "small.toml", small_model_toml().as_bytes());
    let sp = spec(
        tmp.path(),
        r#"model = "small.toml"
[training]
test_examples = 50
[set]
"neuron.g_A" = 0.07
[axes]
"learning.eta" = [[0.1, 0.1], [0.2, 0.2]]
"#,
    );
    let out = tmp.path().join("out");
    sp.save(&out).unwrap();
    assert!(out.join("base-model.toml").is_file());
    let again = SweepSpec::load_dir(&out).unwrap();
    let a = sp.resolve_all().unwrap();
    let b = again.resolve_all().unwrap();
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.point, y.point);
        assert_eq!(x.model.to_toml_string(), y.model.to_toml_string());
        assert_eq!(x.model.neuron.g_a, 0.07);
        assert_eq!(x.test_examples, 50);
    }
}

#[test]
fn the_shipped_example_sweeps_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sweeps");
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let sp = SweepSpec::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let runs = sp.resolve_all().unwrap_or_else(|e| panic!("{e}"));
        assert!(runs.len() >= 12, "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 2);
}

fn task(tmp: &Path) -> TaskCommand {
    TaskCommand {
        apical: PathBuf::from("/opt/apical/bin/apical"),
        spec: tmp.join("grid.toml"),
        out: tmp.join("out dir"),
        data: PathBuf::from("/data/mnist"),
        args: vec!["--set".into(), "learning.eta=[0.2, 0.2]".into()],
    }
}

#[test]
fn the_slurm_script_is_a_job_array_that_execs_apical() {
    let tmp = tempfile::tempdir().unwrap();
    let t = task(tmp.path());
    // No whitespace in #SBATCH paths.
    let e = slurm::sbatch_script(&t, 4, &SlurmOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("cannot go into an #SBATCH line"),
        "{e}"
    );
    let t = TaskCommand {
        out: tmp.path().join("out"),
        ..t
    };
    let script = slurm::sbatch_script(&t, 4, &SlurmOptions::default()).unwrap();
    let lines: Vec<&str> = script.lines().collect();
    let sbatch: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#SBATCH "))
        .collect();
    let out = s(&t.out);
    assert_eq!(
        sbatch,
        [
            "--job-name=apical-sweep-out".to_string(),
            "--array=0-3".into(),
            format!("--output={out}/logs/%A_%a.out"),
            "--signal=B:TERM@120".into(),
            "--requeue".into(),
            "--open-mode=append".into(),
        ]
    );
    let exec = lines.last().unwrap();
    assert_eq!(
        *exec,
        format!(
            "exec /opt/apical/bin/apical sweep {} --out {out} --shard \"$SLURM_ARRAY_TASK_ID/4\" --data /data/mnist --set 'learning.eta=[0.2, 0.2]'",
            s(&t.spec)
        )
    );
    let o = SlurmOptions {
        partition: Some("gpu".into()),
        time: Some("2:00:00".into()),
        mem: Some("4G".into()),
        cpus_per_task: Some(2),
        tasks: Some(3),
        max_running: Some(2),
        job_name: Some("eta".into()),
        extra: vec!["--account=abc".into()],
    };
    let script = slurm::sbatch_script(&t, 10, &o).unwrap();
    for l in [
        "#SBATCH --job-name=eta",
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=2:00:00",
        "#SBATCH --mem=4G",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --account=abc",
    ] {
        assert!(script.lines().any(|x| x == l), "{l} missing:\n{script}");
    }
    assert!(script.contains("--shard \"$SLURM_ARRAY_TASK_ID/3\""));
    let rel = TaskCommand {
        spec: PathBuf::from("grid.toml"),
        ..t
    };
    assert!(slurm::sbatch_script(&rel, 2, &o)
        .unwrap_err()
        .to_string()
        .contains("must be an absolute path"));
}

// ------------------------------------------------------------------------------------------
// Real runs (skipped without MNIST).

const ETAS: [&str; 2] = ["[0.2, 0.2]", "[0.3, 0.3]"];

/// The small model (784-20-10) beside a sweep over two learning rates and `seeds`, 100
/// training examples and 50 test images.
fn small_sweep(dir: &Path, seeds: &str, train: usize) -> PathBuf {
    write_file(dir, "small.toml", small_model_toml().as_bytes());
    let text = format!(
        "model = \"small.toml\"\n[training]\nepochs = 1\ntrain_examples = {train}\ntest_examples = 50\n\
         [axes]\n\"learning.eta\" = [{}]\nseed = {seeds}\n",
        ETAS.join(", ")
    );
    write_file(dir, "sweep.toml", text.as_bytes())
}

fn run_ok(args: &[&str]) -> String {
    let (code, out, err) = run_apical(args);
    assert_eq!(code, Some(0), "apical {args:?}:\n{out}\n{err}");
    format!("{out}{err}")
}

/// `apical train small.toml --set learning.eta=ETA --seed S` with the sweep's budget.
fn train_reference(dir: &Path, eta: &str, seed: u64, train: usize, out: &Path) {
    run_ok(&[
        "train",
        s(&dir.join("small.toml")),
        "--set",
        &format!("learning.eta={eta}"),
        "--seed",
        &seed.to_string(),
        "--epochs",
        "1",
        "--train-examples",
        &train.to_string(),
        "--test-examples",
        "50",
        "--out",
        s(out),
        "--quiet",
    ]);
}

fn bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The end-of-epoch-1 test error of a run directory's checkpoint, tested again: the same
/// test images and spike streams as the trainer's test (keyed by the epoch, 1), errors
/// counted here.
fn retested_error(run: &Path) -> f64 {
    let data = mnist().unwrap();
    let (net, ck, _) = RunDir::open(run).unwrap().restore().unwrap();
    let (idx, preds) = evaluate(&net, &data.test, ck.seed, 1, ck.test_examples);
    assert_eq!(idx.len(), ck.test_examples);
    let wrong = idx
        .iter()
        .zip(&preds)
        .filter(|(&i, &p)| data.test.label(i) != p)
        .count();
    100.0 * wrong as f64 / idx.len() as f64
}

#[test]
fn a_sweep_trains_what_apical_train_trains_and_summarises_it() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sweep = small_sweep(tmp.path(), "[0, 1]", 100);
    let out = tmp.path().join("out");
    let log = run_ok(&["sweep", s(&sweep), "--out", s(&out), "--jobs", "2"]);
    assert!(log.contains("4 trained, 0 already done"), "{log}");
    assert!(log.contains("4 of 4 point(s) done; wrote"), "{log}");

    let (header, rows) = read_csv(&out.join("summary.csv"));
    assert_eq!(
        header,
        [
            "point",
            "learning.eta",
            "seed",
            "status",
            "epochs",
            "epochs_done",
            "train_examples",
            "test_examples",
            "final_test_error",
            "best_test_error",
            "best_test_error_epoch",
            "final_train_error",
            "wall_seconds"
        ]
    );
    assert_eq!(rows.len(), 4);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut finals: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
    for (i, row) in rows.iter().enumerate() {
        let (eta, seed) = (ETAS[i / 2], (i % 2) as u64);
        let eta_name = eta.trim_matches(['[', ']']).replace(' ', "");
        assert_eq!(row[0], format!("learning.eta={eta_name}__seed={seed}"));
        assert_eq!(row[col("learning.eta")], eta);
        assert_eq!(row[col("seed")], seed.to_string());
        assert_eq!(row[col("status")], "done");
        assert_eq!(row[col("epochs_done")], "1");
        assert_eq!(row[col("train_examples")], "100");
        assert_eq!(row[col("test_examples")], "50");
        // Byte-identical to `apical train --set --seed` with the same budget.
        let point = out.join(&row[0]);
        let reference = tmp.path().join(format!("ref-{i}"));
        train_reference(tmp.path(), eta, seed, 100, &reference);
        assert!(
            bytes(&point.join(epoch_file_name(1))) == bytes(&reference.join(epoch_file_name(1))),
            "{} differs from apical train's checkpoint",
            row[0]
        );
        assert_eq!(
            bytes(&point.join("model.toml")),
            bytes(&reference.join("model.toml"))
        );
        // The error is the checkpoint's, tested again from its weights.
        let err = retested_error(&point);
        assert_eq!(row[col("final_test_error")], format!("{err:.4}"));
        assert_eq!(row[col("best_test_error")], format!("{err:.4}"));
        assert_eq!(row[col("best_test_error_epoch")], "1");
        assert!(row[col("wall_seconds")].parse::<f64>().unwrap() > 0.0);
        finals[i / 2].push(err);
    }
    // Machine-independent: no absolute path.
    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(!csv.contains(s(tmp.path())), "{csv}");
    // summary.md: one row per learning rate with mean ± sd over the two seeds.
    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    for (eta, errs) in ETAS.iter().zip(&finals) {
        let (m, sd) = mean_sd(errs);
        let row = format!("| {eta} | 0, 1 | {m:.2} ± {sd:.2} |");
        assert!(md.contains(&row), "no {row:?} in\n{md}");
    }
    let status = run_ok(&["sweep", "status", s(&out)]);
    assert!(status.contains("4 point(s): 4 done, 0 running"), "{status}");

    // A second run skips every point and leaves the checkpoints alone.
    let ck = out.join(&rows[0][0]).join(epoch_file_name(1));
    let before = fs::metadata(&ck).unwrap().modified().unwrap();
    let log = run_ok(&["sweep", s(&sweep), "--out", s(&out)]);
    assert!(log.contains("0 trained, 4 already done"), "{log}");
    assert_eq!(fs::metadata(&ck).unwrap().modified().unwrap(), before);
    assert_eq!(fs::read_to_string(out.join("summary.csv")).unwrap(), csv);

    // Another budget in the same directory is refused, naming the point's directory.
    let other = small_sweep(tmp.path(), "[0, 1]", 120);
    let (code, _, err) = run_apical(&["sweep", s(&other), "--out", s(&out)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("holds a run with other settings"), "{err}");
}

#[test]
fn stopped_points_resume_to_the_uninterrupted_result() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sweep = small_sweep(tmp.path(), "[3]", 150);
    let sp = SweepSpec::from_file(&sweep).unwrap();
    let runs = sp.resolve_all().unwrap();
    let settings = |out: &Path| RunSettings {
        out: out.to_path_buf(),
        data: Some(data.clone()),
        dataset: None,
        verify: false,
        jobs: 2,
        compression: "none".parse().unwrap(),
    };
    let quiet = |_: String| {};
    let out = tmp.path().join("stopped");
    sp.save(&out).unwrap();
    let status = collect::status_text(&out).unwrap();
    assert!(
        status.contains("2 point(s): 0 done, 0 running, 0 unfinished, 0 failed, 2 not started"),
        "{status}"
    );

    // With the stop flag raised no point starts.
    let report =
        runner::run_points(&runs, &settings(&out), &AtomicBool::new(true), &quiet).unwrap();
    assert_eq!(report.not_started.len(), 2, "{report:?}");
    assert!(runs.iter().all(|r| !runner::point_dir(&out, r).exists()));
    // Points stopped after their first example, as a signal leaves them: the same entry
    // point with the flag raised writes a mid-epoch checkpoint each.
    for r in &runs {
        let request = TrainRequest {
            start: Start::New {
                model: r.model.clone(),
                seed: r.point.seed,
                epochs: Some(r.epochs),
                train_examples: Some(r.train_examples),
                test_examples: Some(r.test_examples),
                out: Some(runner::point_dir(&out, r)),
            },
            data: Some(data.clone()),
            dataset: None,
            preloaded: None,
            other_data: false,
            verify: false,
            record: None,
            compression: "none".parse().unwrap(),
            checkpoint_every: None,
            keep_checkpoints: None,
            threads: None,
        };
        let o = session::train(&request, &mut Quiet, &AtomicBool::new(true)).unwrap();
        assert!(
            matches!(o.result, Err(TrainError::Interrupted { example: 1, .. })),
            "{:?}",
            o.result.err()
        );
        let list = list_checkpoints(&o.dir).unwrap();
        assert_eq!(
            (list.len(), list[0].0, list[0].1),
            (1, 0, 1),
            "one example of epoch 1"
        );
    }
    let status = collect::status_text(&out).unwrap();
    assert!(
        status.contains("2 point(s): 0 done, 0 running, 2 unfinished"),
        "{status}"
    );

    // A point another process runs is left alone, and shown running.
    let held = runner::point_dir(&out, &runs[1]);
    fs::create_dir_all(&held).unwrap();
    let lock = PointLock::acquire(&held).unwrap().unwrap();
    let (_, results) = collect::survey(&out).unwrap();
    assert!(matches!(results[1].state, PointState::Running { .. }));
    let report =
        runner::run_points(&runs, &settings(&out), &AtomicBool::new(false), &quiet).unwrap();
    assert_eq!(report.busy, [runs[1].point.name.clone()]);
    assert_eq!(report.completed, [runs[0].point.name.clone()]);
    drop(lock);
    let report =
        runner::run_points(&runs, &settings(&out), &AtomicBool::new(false), &quiet).unwrap();
    assert_eq!(report.skipped, [runs[0].point.name.clone()]);
    assert_eq!(report.completed, [runs[1].point.name.clone()]);

    let straight = tmp.path().join("straight");
    let report =
        runner::run_points(&runs, &settings(&straight), &AtomicBool::new(false), &quiet).unwrap();
    assert_eq!(report.completed.len(), 2);
    for r in &runs {
        let a = out.join(&r.point.name);
        let b = straight.join(&r.point.name);
        assert!(
            bytes(&a.join(epoch_file_name(1))) == bytes(&b.join(epoch_file_name(1))),
            "{}: the resumed run differs from the straight one",
            r.point.name
        );
        assert_eq!(
            list_checkpoints(&a).unwrap().len(),
            1,
            "mid-epoch file removed"
        );
    }
    let (_, results) = collect::survey(&out).unwrap();
    assert!(results.iter().all(|r| r.state == PointState::Done));

    // A run that cannot start is marked failed, with its error, and shown so.
    let failing = tmp.path().join("failing");
    let mut bad = settings(&failing);
    bad.data = Some(tmp.path().join("no-such-data"));
    let report = runner::run_points(&runs[..1], &bad, &AtomicBool::new(false), &quiet).unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].1.contains("no-such-data"),
        "{:?}",
        report.failed
    );
    sp.save(&failing).unwrap();
    let status = collect::status_text(&failing).unwrap();
    assert!(status.contains("1 failed, 1 not started"), "{status}");
    assert!(status.contains("no-such-data"), "{status}");
}

/// Spawns apical, waits for a stderr line containing `ready`, sends `signal`; returns
/// (exit code, all of stderr).
fn signal_after(args: &[&str], ready: &str, signal: &str) -> (Option<i32>, String) {
    let mut child = apical()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no line with {ready:?}: {seen}"
        );
        seen.push_str(&line);
        if line.contains(ready) {
            break;
        }
    }
    let st = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    stderr.read_to_string(&mut seen).unwrap();
    (child.wait().unwrap().code(), seen)
}

#[test]
fn sigterm_and_sighup_checkpoint_like_ctrl_c() {
    if data_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = write_file(tmp.path(), "small.toml", small_model_toml().as_bytes());
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let run = tmp.path().join(signal);
        let (got, err) = signal_after(
            &[
                "train",
                s(&model),
                "--train-examples",
                "3000",
                "--test-examples",
                "50",
                "--epochs",
                "50",
                "--out",
                s(&run),
                "--quiet",
            ],
            "training small",
            signal,
        );
        assert_eq!(got, Some(code), "{err}");
        assert!(
            err.contains(&format!("SIG{signal}: finishing the current example")),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "resume with: apical train --resume {}",
                run.display()
            )),
            "{err}"
        );
        let list = list_checkpoints(&run).unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].1 > 0 && list[0].1 < 3000, "mid-epoch: {list:?}");
    }

    // The sweep: the running point checkpoints, exit 143; the rerun resumes it to the
    // result of the uninterrupted `apical train`.
    let sweep = small_sweep(tmp.path(), "[0]", 3000);
    let out = tmp.path().join("sweep");
    let (got, err) = signal_after(
        &["sweep", s(&sweep), "--out", s(&out), "--jobs", "2"],
        "] training small",
        "TERM",
    );
    assert_eq!(got, Some(143), "{err}");
    assert!(err.contains("stopped; run the same command again"), "{err}");
    let (_, results) = collect::survey(&out).unwrap();
    assert!(
        results
            .iter()
            .any(|r| matches!(r.state, PointState::Unfinished { epochs_done: 0, .. })),
        "{results:?}"
    );
    assert!(
        !out.join("summary.csv").exists(),
        "no summary of a stopped sweep"
    );
    let log = run_ok(&["sweep", s(&sweep), "--out", s(&out)]);
    assert!(log.contains("resuming"), "{log}");
    let reference = tmp.path().join("ref");
    train_reference(tmp.path(), ETAS[0], 0, 3000, &reference);
    let point = out.join("learning.eta=0.2,0.2__seed=0");
    assert!(bytes(&point.join(epoch_file_name(1))) == bytes(&reference.join(epoch_file_name(1))));
}

/// `apical sweep` takes `apical train`'s budget flags and `--set training.KEY=V` for the
/// keys of its [training] table: they replace the sweep file's budget for every point and
/// the sweep's own copy (sweep.toml in the sweep directory) records them.
#[test]
fn the_budget_of_a_sweep_is_set_from_the_command_line() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The file's budget: 300 examples and 50 test images.
    let sweep = small_sweep(tmp.path(), "[0]", 300);
    let out = tmp.path().join("out");
    run_ok(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&out),
        "--set",
        "training.train_examples=40",
        "--test-examples",
        "20",
        "--data",
        s(&data),
        "--no-verify",
    ]);
    let mut points = 0;
    for d in fs::read_dir(&out).unwrap() {
        let d = d.unwrap().path();
        if !d.join("run.json").is_file() {
            continue;
        }
        points += 1;
        let m: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(d.join("metrics.json")).unwrap()).unwrap();
        // Row 0: the initial network's test, on the same test budget.
        assert_eq!(m[0]["test_examples"].as_u64(), Some(20), "{}", d.display());
        assert_eq!(m[1]["train_examples"].as_u64(), Some(40), "{}", d.display());
        assert_eq!(m[1]["test_examples"].as_u64(), Some(20), "{}", d.display());
    }
    assert_eq!(points, ETAS.len());
    let saved = SweepSpec::from_file(&out.join("sweep.toml")).unwrap();
    assert_eq!(
        (
            saved.budget.epochs,
            saved.budget.train_examples,
            saved.budget.test_examples
        ),
        (Some(1), Some(40), Some(20))
    );
    // A budget key with a value of the wrong kind names the key.
    let (code, _, err) = run_apical(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&tmp.path().join("bad")),
        "--set",
        "training.epochs=two",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("training.epochs"), "{err}");
}

#[test]
fn set_errors_name_the_key_in_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = run_apical(&[
        "train",
        "--set",
        "neuron.gA=0.05",
        "--out",
        s(&tmp.path().join("t")),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("`neuron.gA` is not a model field; did you mean `neuron.g_A`?"),
        "{err}"
    );
    let (code, _, err) = run_apical(&[
        "reproduce",
        "1h",
        "--set",
        "learning.etaa=[0.1, 0.1]",
        "--out",
        s(&tmp.path().join("r")),
        "--results",
        s(&tmp.path().join("r.md")),
        "--data",
        s(&tmp.path().join("none")),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("`learning.etaa` is not a model field; did you mean `learning.eta`?"),
        "{err}"
    );
    let sweep = write_file(
        tmp.path(),
        "s.toml",
        b"model = \"1h\"\n[axes]\n\"neuron.g_A\" = [0.05, 0.1]\n",
    );
    let out = tmp.path().join("o");
    let (code, _, err) = run_apical(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&out),
        "--set",
        "learning.eat=[0.1, 0.1]",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("`learning.eat` is not a model field; did you mean `learning.eta`?"),
        "{err}"
    );
    let (code, _, err) = run_apical(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&out),
        "--set",
        "neuron.g_A=0.2",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("`neuron.g_A` is in both [set] and [axes]"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written for an invalid sweep");
}

#[test]
fn the_slurm_script_runs_every_shard_without_slurm() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sweep = small_sweep(tmp.path(), "[0]", 100);
    let out = tmp.path().join("slurm");
    let data = fs::canonicalize(data).unwrap();
    let log = run_ok(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&out),
        "--slurm",
        "--data",
        s(&data),
        "--time",
        "10",
    ]);
    assert!(log.contains("2 array task(s) for 2 point(s)"), "{log}");
    let script = out.join("sweep.sbatch");
    let text = fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --time=10\n"), "{text}");
    assert!(!text.contains("--partition"), "{text}");
    assert!(out.join("logs").is_dir());
    // Without Slurm's variables the script refuses to run.
    let st = common::command("bash")
        .arg(&script)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    // Each task as Slurm would start it, from another directory.
    for k in 0..2 {
        let st = common::command("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "task {k}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let err = String::from_utf8_lossy(&st.stderr);
        assert!(err.contains(&format!("shard {k}/2 finished")), "{err}");
    }
    run_ok(&["sweep", "collect", s(&out)]);
    let local = tmp.path().join("local");
    run_ok(&["sweep", s(&sweep), "--out", s(&local), "--jobs", "2"]);
    let strip = |p: &Path| -> Vec<String> {
        let (h, rows) = read_csv(p);
        let keep: Vec<usize> = (0..h.len())
            .filter(|&i| !h[i].contains("wall") && !h[i].contains("seconds"))
            .collect();
        std::iter::once(h)
            .chain(rows)
            .map(|r| {
                keep.iter()
                    .map(|&i| r[i].clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    assert_eq!(
        strip(&out.join("summary.csv")),
        strip(&local.join("summary.csv"))
    );
}
