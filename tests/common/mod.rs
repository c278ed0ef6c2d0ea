//! Helpers shared by the robustness tests: a small model, MNIST (skipping when absent) and
//! the built `apical` binary.
#![allow(dead_code)]

use apical::io::mnist::{find_data_dir, load_mnist, Mnist};
use apical::io::run_dir::{KeepCheckpoints, RunInfo};
use apical::model::config::ModelConfig;
use apical::model::params::LayerParams;
use apical::run::events::{ExampleDone, RunEvents};
use apical::run::trainer::{RunOptions, Trainer};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A 6-input rate network with hidden layers `hidden` and 10 outputs under learning rule
/// `rule` (learning rates `eta`), the tables of `tail` after its `[learning]` section: the
/// toy network of the rule tests (tests/rules.rs, tests/burst.rs).
pub fn toy_rate_model(
    rule: &str,
    hidden: &str,
    feedback: &str,
    eta: &str,
    tail: &str,
) -> apical::model::config::ModelConfig {
    let text = format!(
        r#"
        name = "toy-{rule}"
        [network]
        n_in = 6
        hidden = {hidden}
        n_out = 10
        feedback = "{feedback}"
        [neuron]
        mode = "rate"
        [synapse]
        psp_window_steps = 1
        [phases]
        l_f = 2
        use_rand_phase_lengths = false
        integration_time = 1
        l_f_test = 2
        integration_time_test = 1
        [learning]
        rule = "{rule}"
        eta = {eta}
        {tail}
    "#
    );
    apical::model::config::ModelConfig::from_toml_str(&text, "toy").expect("valid toy model")
}

/// The image and label the toy network of [`toy_rate_model`] learns in the rule tests.
pub const TOY_IMAGE: [u8; 6] = [0, 40, 255, 128, 7, 200];
pub const TOY_LABEL: u8 = 3;

/// The default model file's text.
pub const MODEL_1H: &str = include_str!("../../models/guerguiev-1h.toml");

/// A 784-20-10 version of the default model (fast: ~0.2 ms per training example).
pub fn small_model_toml() -> String {
    let t = MODEL_1H
        .replace("hidden = [500]", "hidden = [20]")
        .replace("name = \"guerguiev-1h\"", "name = \"small\"");
    assert!(t.contains("hidden = [20]") && t.contains("name = \"small\""));
    t
}

/// The small model with every occurrence of `from` replaced by `to` (which must occur).
pub fn small_model_with(from: &str, to: &str) -> String {
    let t = small_model_toml();
    assert!(t.contains(from), "the model text has no {from:?}");
    t.replace(from, to)
}

/// The MNIST directory, or None (with a message) when it is absent.
pub fn data_dir() -> Option<PathBuf> {
    match find_data_dir(None) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipping: MNIST not available ({e})");
            None
        }
    }
}

/// MNIST, loaded once per test binary; None (with a message) when it is absent.
pub fn mnist() -> Option<&'static Mnist> {
    static DATA: OnceLock<Option<Mnist>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = data_dir()?;
        Some(load_mnist(&dir, false).expect("MNIST in the data directory loads"))
    })
    .as_ref()
}

/// `Command::new(program)` whose child keeps only its standard input, output and error:
/// every other descriptor of this process is closed when the child execs. HDF5 opens files
/// without close-on-exec and locks them, so a child started while another test of this
/// binary has a trace file open would hold that lock for its whole life, and that test's
/// next open of the file would fail ("unable to lock file, errno = 11").
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    // SAFETY: between fork and exec the closure makes one system call (async-signal-safe)
    // and allocates nothing. Without close_range (Linux before 5.11) it changes nothing.
    unsafe {
        c.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    c
}

/// A command running the built `apical` binary with MNIST found automatically.
pub fn apical() -> Command {
    let mut c = command(env!("CARGO_BIN_EXE_apical"));
    c.env_remove("APICAL_DATA");
    c
}

/// Runs `apical args...`; returns (exit code, stdout, stderr).
pub fn run_apical(args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = apical().args(args).output().expect("apical runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `apical args...` and panics with its stderr unless it succeeds.
pub fn apical_ok(args: &[&str]) {
    let (code, _, err) = run_apical(args);
    assert_eq!(code, Some(0), "apical {}: {err}", args.join(" "));
}

/// A run directory's metrics.json, parsed (one object per epoch, epoch 0 first).
pub fn metrics_json(dir: &Path) -> serde_json::Value {
    let text = fs::read_to_string(dir.join("metrics.json")).expect("metrics.json");
    serde_json::from_str(&text).expect("metrics.json parses")
}

/// Waits until `path` exists while `child` runs (a panic when `child` exits first or
/// `limit` passes).
pub fn wait_for(path: &Path, child: &mut std::process::Child, limit: Duration) {
    let t0 = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().expect("the child's status") {
            panic!(
                "apical exited ({status}) before {} appeared",
                path.display()
            );
        }
        assert!(t0.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The fields of one CSV line; a quoted field (the eta values of a summary.csv, "[0.2,
/// 0.2]") may hold commas.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field at least").push(c),
        }
    }
    out
}

/// A CSV file (a sweep's summary.csv) as (header, rows of fields).
pub fn read_csv(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut lines = text.lines();
    let header = csv_fields(lines.next().expect("a header line"));
    (header, lines.map(csv_fields).collect())
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// A path as &str (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// metrics.csv without its wall-clock columns.
pub fn metrics_without_wall(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let wall: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.contains("seconds"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(wall.len(), 4, "four wall-clock columns in {header:?}");
    text.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| !wall.contains(i))
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// The run options of the library-level run tests (tests/checkpoint.rs, tests/minibatch.rs):
/// 100 test images, seed 7, a periodic checkpoint every `every` examples (0: none), every
/// checkpoint kept (the tests compare them).
pub fn run_options(dir: &Path, epochs: usize, train: usize, every: usize) -> RunOptions {
    RunOptions {
        epochs,
        train_examples: train,
        test_examples: 100,
        seed: 7,
        out_dir: dir.to_path_buf(),
        checkpoint_every: every,
        keep_checkpoints: KeepCheckpoints::All,
    }
}

/// The run.json of a run with options `o`.
pub fn run_info(o: &RunOptions) -> RunInfo {
    RunInfo {
        apical_version: "test".into(),
        model: "test".into(),
        seed: o.seed,
        epochs: o.epochs,
        train_examples: o.train_examples,
        test_examples: o.test_examples,
        data_dir: PathBuf::from("unused"),
        checkpoint_every: o.checkpoint_every,
        keep_checkpoints: o.keep_checkpoints,
        data: None,
    }
}

/// A fresh run of `cfg` on `data`.
pub fn trainer<'a>(cfg: &ModelConfig, data: &'a Mnist, o: RunOptions) -> Trainer<'a> {
    let i = run_info(&o);
    Trainer::new(cfg.clone(), data, o, &i).expect("trainer starts")
}

/// Raises `stop` (as Ctrl-C does) once `example` examples of epoch `epoch` are done.
pub struct StopAt<'s> {
    epoch: usize,
    example: usize,
    current: usize,
    stop: &'s AtomicBool,
}

impl<'s> StopAt<'s> {
    pub fn new(epoch: usize, example: usize, stop: &'s AtomicBool) -> Self {
        StopAt {
            epoch,
            example,
            current: 0,
            stop,
        }
    }
}

impl RunEvents for StopAt<'_> {
    fn epoch_start(&mut self, epoch: usize, _first: usize, _n: usize, _p: &[LayerParams]) {
        self.current = epoch;
    }
    fn example_end(&mut self, done: &ExampleDone, _params: &[LayerParams]) {
        assert_eq!(done.epoch, self.current);
        if self.current == self.epoch && done.example + 1 == self.example {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}
