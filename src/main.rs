//! The `apical` command line.

use anyhow::{bail, Context, Result};
use apical::io::checkpoint::Checkpoint;
use apical::io::mnist::{self, Mnist};
use apical::io::record::{self, Compression};
use apical::io::run_dir::{self, EpochMetrics, KeepCheckpoints, RunDir};
use apical::model::config::{ModelConfig, DEFAULT_MODEL_NAME, DEFAULT_MODEL_TOML};
use apical::model::overrides::Override;
use apical::model::params::LayerParams;
use apical::run::events::{ExampleDone, RunEvents};
use apical::run::metrics::evaluate_repeats;
use apical::run::session::{self, SessionError, Start, TrainRequest};
use apical::run::trainer::TrainError;
use apical::sim::network::Model;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod cli;

#[derive(Parser)]
#[command(
    name = "apical",
    version,
    about = "Spiking segregated-dendrite networks that learn MNIST with local rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (the default 784-500-10 model when no file is given).
    Train(TrainArgs),
    /// Test a saved network and print its error and confusion matrix.
    Eval(EvalArgs),
    /// Measure simulation speed on real MNIST images (docs/performance.md).
    Bench(BenchArgs),
    /// Run the paper's experiments and write the results page (docs/results.md).
    Reproduce(cli::reproduce::ReproduceArgs),
    /// Plots of a run directory into RUN_DIR/plots/.
    Plot(cli::reproduce::PlotArgs),
    /// Print what a trace file (traces.h5) holds: groups, shapes, units, config.
    Inspect(InspectArgs),
    /// Train a grid of models (a sweep file's axes x seeds), locally or as a Slurm job
    /// array; `sweep collect DIR` summarises, `sweep status DIR` shows progress
    /// (docs/sweeps.md).
    Sweep(cli::sweep::SweepArgs),
    /// Convert a run's trace file to another format.
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Subcommand)]
enum ExportCommand {
    /// NWB 2.x (Neurodata Without Borders): spikes as Units, examples as trials, recorded
    /// potentials as TimeSeries, weight snapshots, the model and seed (docs/traces.md).
    Nwb(NwbArgs),
}

#[derive(clap::Args)]
struct NwbArgs {
    /// A run directory (its traces.h5) or a trace file.
    run: PathBuf,
    /// The NWB file to write (default: traces.nwb beside the trace file).
    #[arg(long, value_name = "FILE.nwb")]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// A trace file, or a run directory (its traces.h5).
    file: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// A few seconds in all, for CI: checks that the harness runs, never the speed.
    #[arg(long)]
    quick: bool,
    /// Repetitions of every measurement (medians are reported).
    #[arg(long)]
    reps: Option<usize>,
    /// Training examples per repetition.
    #[arg(long)]
    train_examples: Option<usize>,
    /// Test examples per repetition.
    #[arg(long)]
    test_examples: Option<usize>,
    /// Training examples per repetition of the dense baseline.
    #[arg(long)]
    dense_examples: Option<usize>,
    /// Only the default model (784-500-10).
    #[arg(long)]
    default_only: bool,
    /// Only the rate networks of 784-500-10 under each learning rule (guerguiev-1h-rate,
    /// baseline-backprop-1h, baseline-feedback-alignment-1h, burstccn-1h-rate,
    /// burstprop-1h-rate), and the gradient rules and the burst rules again with `batch_size = 32`
    /// (`-b32`): what scripts/bench-torch.sh compares with PyTorch (its two baselines,
    /// online and at batch 32).
    #[arg(long, conflicts_with = "default_only")]
    rules: bool,
    /// Only the spiking 784-500-10 networks under each rule (guerguiev-1h, burstccn-1h):
    /// spiking BurstCCN's speed beside the segregated-dendrite rule's.
    #[arg(long, conflicts_with_all = ["default_only", "rules"])]
    spiking_rules: bool,
    /// Thread counts of training and test evaluation, e.g. 1,2,4,8,16 (the first is the
    /// reference of the speed-ups).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Hidden widths of the wide one-hidden-layer networks (784-W-10), e.g. 2000,8000.
    #[arg(long, value_delimiter = ',', default_value = "2000")]
    wide: Vec<usize>,
    /// Short `apical train` processes started at once for the sweep table (default: the
    /// largest thread count; 0: neither the sweep nor the start-up table).
    #[arg(long)]
    sweep_runs: Option<usize>,
    /// Training examples of each sweep run (default 300; --quick: 10).
    #[arg(long)]
    sweep_examples: Option<usize>,
    /// Directory of the model files (models/guerguiev-{0,1,2}h.toml, the rate models).
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// MNIST directory (default: APICAL_DATA, else data/mnist or ../shared/data/mnist).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Model file (TOML); default: the embedded models/guerguiev-1h.toml.
    model: Option<PathBuf>,
    /// Epochs in total (default: the model file's training.epochs).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training examples per epoch: the first N of each epoch's shuffle.
    #[arg(long)]
    train_examples: Option<usize>,
    /// Test images per evaluation (a seeded random subset when below 10,000).
    #[arg(long)]
    test_examples: Option<usize>,
    /// Seed of every random draw of the run (initial weights, example order, spikes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run directory (default: runs/<model name>-seed<S>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads (default: the CPUs this process may use: SLURM_CPUS_PER_TASK, else
    /// the CPU affinity): tests run images in parallel, and training shares the neuron
    /// blocks of layers of 1024+ neurons among them. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, conflicts_with_all = ["model", "seed", "out", "train_examples", "test_examples"])]
    resume: Option<PathBuf>,
    /// Override a model-file field: `--set learning.eta=[0.2,0.2] --set neuron.g_A=0.05`
    /// (dotted path, TOML value; repeatable). The run's model.toml holds the result
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    set: Vec<String>,
    /// Also checkpoint every N training examples (0: only at epoch ends). A resumed run keeps
    /// the run's setting unless this is given.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Which end-of-epoch checkpoints to keep: `all`, or `last:N[,every:M]` (the last N
    /// and every M-th epoch). Default: `last:2,every:10`; a resumed run keeps its own
    /// unless this is given.
    #[arg(long, value_name = "POLICY", value_parser = parse_keep)]
    keep_checkpoints: Option<KeepCheckpoints>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// What to record into <run dir>/traces.h5, e.g. `spikes` or
    /// `spikes,soma:layers=hidden0;examples=every:10;interval=5` (docs/traces.md);
    /// `none` writes no trace file. Default: the model file's [[record]] tables, else
    /// per-epoch metrics and weight snapshots.
    #[arg(long, value_name = "SPEC")]
    record: Option<String>,
    /// Compression of traces.h5: scaleoffset (lossless HDF5 built-in filter on the spikes,
    /// opens in every reader), deflate, deflate:0..9 (about half the size; libsonata's
    /// PyPI wheels cannot read it) or none (docs/traces.md, Compression).
    #[arg(long, default_value_t = Compression::default(), value_parser = parse_compression)]
    trace_compression: Compression,
}

pub(crate) fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse()
}

pub(crate) fn parse_keep(s: &str) -> Result<KeepCheckpoints, String> {
    s.parse()
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A checkpoint file, or a run directory (its latest checkpoint).
    checkpoint: PathBuf,
    /// Test images (a seeded random subset when below 10,000).
    #[arg(long, default_value_t = 10_000)]
    test_examples: usize,
    /// Seed of the test's spike streams and of the subset of test images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Spiking tests of the same weights, each with its own spike streams: prints each
    /// one's error and their mean +- sd (the paper averages 20)
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    /// Change the test phase for this test (the weights stay the checkpoint's), e.g. the
    /// paper's 500-ms test: `--set phases.l_f_test=500 --set
    /// phases.integration_time_test=470`. Only those two fields.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Worker threads of the test (images in parallel; default: the CPUs this process may
    /// use). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

/// Where the MNIST files are, and whether to check them: shared by every command that reads
/// them.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Directory holding the four MNIST files (raw or .gz); default: the APICAL_DATA
    /// environment variable, else data/mnist or ../shared/data/mnist.
    // APICAL_DATA is not given to clap's `env`, so that an error names the variable, not --data.
    #[arg(long = "data")]
    pub dir: Option<PathBuf>,
    /// The data set: `mnist` (default), `fashion-mnist`, a folder of IDX files (.gz or
    /// not) or a .npz holding x_train, y_train, x_test, y_test (docs/datasets.md). A
    /// resumed run and eval default to the run's own.
    #[arg(long, value_name = "NAME|PATH")]
    pub dataset: Option<String>,
    /// Let --resume or eval use data other than the run's (by content digest).
    #[arg(long)]
    pub other_data: bool,
    /// Skip the SHA-256 check of the MNIST (or Fashion-MNIST) files.
    #[arg(long)]
    pub no_verify: bool,
}

impl DataArgs {
    /// `--dataset`, parsed.
    pub fn spec(&self) -> Option<apical::io::dataset::DataSpec> {
        self.dataset
            .as_deref()
            .map(apical::io::dataset::DataSpec::parse)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => cmd_eval(a).map(|()| ExitCode::SUCCESS),
        Command::Inspect(a) => cmd_inspect(a).map(|()| ExitCode::SUCCESS),
        Command::Export(ExportCommand::Nwb(a)) => cmd_export_nwb(a).map(|()| ExitCode::SUCCESS),
        Command::Bench(a) => cmd_bench(a).map(|()| ExitCode::SUCCESS),
        Command::Reproduce(a) => cli::reproduce::cmd_reproduce(a),
        Command::Plot(a) => cli::reproduce::cmd_plot(a).map(|()| ExitCode::SUCCESS),
        Command::Sweep(a) => cli::sweep::cmd_sweep(a),
    };
    // Returning (rather than `process::exit`) drops everything first: trace files close.
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by ": ", leaving out a cause whose text the message
/// already contains (library errors name their I/O cause in their own text).
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A `--threads` value checked (apical::run::threads, shared with Python).
fn checked_threads(n: usize) -> Result<usize> {
    apical::run::threads::check_threads(n, "--threads").map_err(anyhow::Error::msg)
}

/// Starts the worker threads: `threads` (checked: at least 1, at most a few per CPU), else
/// the library's default ([`apical::run::threads::default_threads`]: Slurm's CPUs, else the
/// affinity's). Results do not depend on the number.
fn set_threads(threads: Option<usize>) -> Result<()> {
    let n = match threads {
        Some(n) => checked_threads(n)?,
        None => apical::run::threads::default_threads(),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("cannot start the thread pool")
}

/// Examples per second as the progress bar shows it: whole numbers ("4338 examples/s"),
/// one decimal below 10.
fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        "- examples/s".into()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1} examples/s")
    } else {
        format!("{per_sec:.0} examples/s")
    }
}

/// "1 epoch trained", "3 epochs trained".
fn epochs_trained(n: usize) -> String {
    format!("{n} epoch{} trained", if n == 1 { "" } else { "s" })
}

fn load_data(dir: Option<&Path>, no_verify: bool) -> Result<(Mnist, PathBuf)> {
    let dir = mnist::find_data_dir(dir)?;
    eprintln!("loading MNIST from {}", dir.display());
    let m = mnist::load_mnist(&dir, !no_verify)?;
    Ok((m, dir))
}

/// The data set `--dataset` names (default `default`, else MNIST), loaded.
fn load_dataset(
    a: &DataArgs,
    default: Option<apical::io::dataset::DataSpec>,
) -> Result<apical::io::dataset::DataSet> {
    let spec = a.spec().or(default).unwrap_or_default();
    eprintln!("loading data set {spec}");
    Ok(apical::io::dataset::load(
        &spec,
        a.dir.as_deref(),
        !a.no_verify,
    )?)
}

struct Bar {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Bar {
    fn style() -> ProgressStyle {
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {rate} ETA {eta} {msg}")
            .expect("valid template")
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate_text(s.per_sec()));
                },
            )
            .progress_chars("=> ")
    }
}

impl RunEvents for Bar {
    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
    fn epoch_start(&mut self, epoch: usize, done: usize, examples: usize, _params: &[LayerParams]) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(examples as u64);
        bar.set_style(Self::style());
        bar.set_prefix(epoch.to_string());
        bar.set_position(done as u64);
        bar.enable_steady_tick(Duration::from_millis(500));
        self.bar = Some(bar);
    }
    fn example_end(&mut self, e: &ExampleDone, _params: &[LayerParams]) {
        if let Some(b) = &self.bar {
            let done = e.example + 1;
            b.set_position(done as u64);
            if done % 100 == 0 {
                b.set_message(format!("train err {:.1} %", e.train_error));
            }
        }
    }
    fn testing(&mut self, _epoch: usize, n: usize) {
        match &self.bar {
            Some(b) => b.set_message(format!("testing on {n} images ...")),
            // The initial network's test comes before any epoch's bar.
            None if !self.quiet => eprintln!("testing the initial network on {n} images ..."),
            None => {}
        }
    }
    fn quick_test(&mut self, epoch: usize, example: usize, error: f64) {
        let line = format!("epoch {epoch} example {example}: quick test error {error:.1} %");
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
    fn epoch_end(&mut self, m: &EpochMetrics, _params: &[LayerParams]) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        // Never panics: after SIGHUP the terminal may be gone while the run finishes.
        let _ = writeln!(std::io::stdout(), "{}", apical::run::events::epoch_line(m));
    }
}

fn cmd_train(a: TrainArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    let stop =
        cli::signals::Stop::install("finishing the current example and writing a checkpoint")?;
    let start = match &a.resume {
        Some(dir) => Start::Resume {
            dir: dir.clone(),
            epochs: a.epochs,
        },
        None => Start::New {
            model: {
                let (base, origin) = match &a.model {
                    Some(p) => (ModelConfig::from_file(p)?, p.display().to_string()),
                    None => {
                        let origin = format!("models/{DEFAULT_MODEL_NAME}.toml (embedded)");
                        (
                            ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, &origin)?,
                            origin,
                        )
                    }
                };
                let overrides = a
                    .set
                    .iter()
                    .map(|s| Override::parse(s))
                    .collect::<Result<Vec<_>, _>>()?;
                base.with_overrides(&overrides, &origin)?
            },
            seed: a.seed,
            epochs: a.epochs,
            train_examples: a.train_examples,
            test_examples: a.test_examples,
            out: a.out.clone(),
        },
    };
    let unreadable = a.trace_compression.unreadable_by();
    if !unreadable.is_empty() && a.record.as_deref() != Some("none") {
        eprintln!(
            "note: --trace-compression {}: traces.h5 will not open in {}; the default, scaleoffset, opens everywhere",
            a.trace_compression,
            unreadable.join("; ")
        );
    }
    let request = TrainRequest {
        start,
        data: a.data.dir.clone(),
        dataset: a.data.spec(),
        preloaded: None,
        other_data: a.data.other_data,
        verify: !a.data.no_verify,
        record: a.record.clone(),
        compression: a.trace_compression,
        checkpoint_every: a.checkpoint_every,
        threads: a.threads,
        keep_checkpoints: a.keep_checkpoints,
    };
    let mut bar = Bar {
        bar: None,
        quiet: a.quiet,
    };
    let outcome = session::train(&request, &mut bar, &stop.flag).map_err(|e| match e {
        SessionError::Train(TrainError::Checkpoint(c)) if a.resume.is_some() => {
            anyhow::anyhow!("cannot resume: {c}")
        }
        SessionError::RunDir(r) if a.resume.is_some() => {
            anyhow::anyhow!("cannot resume: {r}")
        }
        e => e.into(),
    })?;
    match outcome.traces {
        Some(Ok(p)) => cli::signals::note(&format!("traces in {}", p.display())),
        Some(Err(e)) => cli::signals::note(&format!("warning: trace recording stopped early: {e}; the file keeps everything written before (see its last_epoch and last_example attributes)")),
        None => {}
    }
    match outcome.result {
        Ok(()) => {
            let _ = writeln!(
                std::io::stdout(),
                "done: results in {}",
                outcome.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(TrainError::Interrupted {
            epoch,
            example,
            checkpoint,
        }) => {
            if let Some(b) = bar.bar.take() {
                b.abandon();
            }
            cli::signals::note(&format!(
                "stopped in epoch {epoch} after {example} examples; checkpoint {}\nresume with: apical train --resume {}",
                checkpoint.display(),
                outcome.dir.display()
            ));
            // 128 + the signal (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as shells
            // report a process the signal ended.
            Ok(ExitCode::from(stop.exit_code()))
        }
        Err(e) => Err(e.into()),
    }
}

fn cmd_inspect(a: InspectArgs) -> Result<()> {
    let path = if a.file.is_dir() {
        a.file.join("traces.h5")
    } else {
        a.file.clone()
    };
    if !path.exists() {
        if a.file.is_dir() {
            // A run stopped before its trace file was laid out (or one that records none).
            let part = a.file.join("traces.h5.part").exists();
            println!(
                "{}: no trace file{}",
                a.file.display(),
                if part {
                    " (traces.h5.part: the run stopped while laying it out)"
                } else {
                    ""
                }
            );
            return Ok(());
        }
        bail!("{}: no such trace file", path.display());
    }
    print!("{}", record::inspect(&path)?);
    Ok(())
}

fn cmd_export_nwb(a: NwbArgs) -> Result<()> {
    let traces = if a.run.is_dir() {
        a.run.join("traces.h5")
    } else {
        a.run.clone()
    };
    if !a.run.exists() {
        bail!("{}: no such run directory or trace file", a.run.display());
    }
    if a.run.is_dir() && !traces.exists() {
        bail!(
            "{}: no trace file in this directory (a run records one unless --record none; `apical train --record spikes` adds spikes)",
            a.run.display()
        );
    }
    // Not HDF5 (a metrics.csv, say): said in words, not in HDF5's.
    drop(record::open_traces(&traces)?);
    let out = a.out.unwrap_or_else(|| traces.with_extension("nwb"));
    let s = apical::io::nwb::export(&traces, &out)?;
    println!(
        "{}: {} units ({} spikes), {} trials, {} time series, {} weight snapshots",
        out.display(),
        s.units,
        s.spikes,
        s.trials,
        s.series,
        s.snapshots
    );
    Ok(())
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    use apical::app::bench;
    let mut o = if a.quick {
        bench::BenchOptions::quick()
    } else {
        bench::BenchOptions::full()
    };
    o.reps = a.reps.unwrap_or(o.reps);
    o.train_examples = a.train_examples.unwrap_or(o.train_examples);
    o.test_examples = a.test_examples.unwrap_or(o.test_examples);
    o.dense_examples = a.dense_examples.unwrap_or(o.dense_examples);
    if o.reps == 0 || o.train_examples == 0 || o.test_examples == 0 || o.dense_examples == 0 {
        bail!("--reps, --train-examples, --test-examples and --dense-examples must be at least 1");
    }
    if a.threads.is_empty() || a.threads.contains(&0) {
        bail!("--threads must list thread counts of at least 1, e.g. 1,2,4");
    }
    for &t in &a.threads {
        checked_threads(t)?;
    }
    if a.wide.contains(&0) {
        bail!("--wide must list widths of at least 1, e.g. 2000,8000");
    }
    o.threads = a.threads.clone();
    let (data, data_dir) = load_data(a.data.as_deref(), true)?;
    let default = ModelConfig::from_toml_str(
        DEFAULT_MODEL_TOML,
        &format!("models/{DEFAULT_MODEL_NAME}.toml (embedded)"),
    )?;
    let mut models: Vec<(String, ModelConfig)> = Vec::new();
    let rate_rules = [
        "guerguiev-1h-rate",
        "baseline-backprop-1h",
        "baseline-feedback-alignment-1h",
        "burstccn-1h-rate",
        "burstprop-1h-rate",
    ];
    let spiking_rules = ["guerguiev-1h", "burstccn-1h"];
    if a.default_only {
        models.push((default.name.clone(), default.clone()));
    } else if a.rules || a.spiking_rules {
        let names: &[&str] = if a.rules { &rate_rules } else { &spiking_rules };
        for &name in names {
            let cfg = ModelConfig::from_file(&a.models.join(format!("{name}.toml")))?;
            models.push((cfg.name.clone(), cfg));
        }
        // The rules that allow minibatches, with batches of 32 (docs/model.md, section 13).
        let minibatch = [
            "baseline-backprop-1h",
            "baseline-feedback-alignment-1h",
            "burstccn-1h-rate",
            "burstprop-1h-rate",
        ];
        for name in minibatch.iter().filter(|_| a.rules) {
            let mut cfg = ModelConfig::from_file(&a.models.join(format!("{name}.toml")))?;
            cfg.training.batch_size = 32;
            cfg.name = format!("{name}-b32");
            models.push((cfg.name.clone(), cfg));
        }
    } else {
        for name in [
            "guerguiev-0h",
            "guerguiev-1h",
            "guerguiev-2h",
            "burstccn-1h",
        ]
        .into_iter()
        .chain(rate_rules)
        {
            let path = a.models.join(format!("{name}.toml"));
            let cfg = ModelConfig::from_file(&path)?;
            models.push((cfg.name.clone(), cfg));
        }
        for &w in &a.wide {
            let wide = bench::wide_model(&default, w);
            models.push((wide.name.clone(), wide));
        }
    }
    let mut rows = Vec::new();
    for (name, cfg) in &models {
        rows.push(bench::bench_model(name, cfg, &data, &o, &mut |m| {
            eprintln!("{m}")
        }));
    }
    let handoff: Vec<bench::HandoffRow> = o
        .threads
        .iter()
        .filter(|&&t| t > 1)
        .map(|&t| {
            eprintln!(
                "hand-over of a step to {t} threads: rayon's pool against apical's own worker team"
            );
            bench::time_handoff(t, if a.quick { 2_000 } else { 100_000 }, o.reps)
        })
        .collect();
    let sweep_runs = a
        .sweep_runs
        .unwrap_or_else(|| o.threads.iter().copied().max().unwrap_or(1));
    let (sweep, startup) = if sweep_runs > 0 {
        let exe = std::env::current_exe().context("cannot find the apical executable")?;
        let examples = a.sweep_examples.unwrap_or(if a.quick { 10 } else { 300 });
        let tests = if a.quick { 10 } else { 100 };
        let reps = if a.quick { 1 } else { o.reps };
        let mut log = |m: &str| eprintln!("{m}");
        let sweep =
            bench::sweep_throughput(&exe, &data_dir, sweep_runs, examples, tests, reps, &mut log)?;
        let startup = bench::time_startup(&exe, &data_dir, reps, &mut log)?;
        (Some(sweep), Some(startup))
    } else {
        (None, None)
    };
    println!(
        "apical bench: medians of {} repetitions; training {} examples (dense baseline {}, one thread), test {} images; threads {}",
        o.reps,
        o.train_examples,
        o.dense_examples,
        o.test_examples,
        o.threads
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    print!("{}", bench::format_table(&rows));
    if !handoff.is_empty() {
        println!();
        print!("{}", bench::format_handoff(&handoff));
    }
    if let Some(s) = sweep {
        println!();
        print!("{}", bench::format_sweep(&s));
    }
    if let Some(s) = startup {
        println!();
        print!("{}", bench::format_startup(&s));
    }
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    set_threads(a.threads)?;
    if a.test_examples == 0 {
        bail!("--test-examples must be at least 1");
    }
    if a.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    // A run directory: its latest checkpoint (a damaged one names the one before it).
    let (mut net, ck, path) = if a.checkpoint.is_dir() {
        RunDir::open(&a.checkpoint)?.restore()?
    } else {
        let ck = Checkpoint::load(&a.checkpoint)?;
        let net = run_dir::restore(&ck, &a.checkpoint)?;
        (net, ck, a.checkpoint.clone())
    };
    if !a.set.is_empty() {
        let overrides = a
            .set
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let cfg = (net.model.cfg).with_test_overrides(&overrides, &path.display().to_string())?;
        net.model = Model::new(cfg);
    }
    let cfg = &net.model.cfg;
    // The run's own data set (run.json beside the checkpoint), unless --dataset says.
    let run_dir = if a.checkpoint.is_dir() {
        a.checkpoint.clone()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let recorded = RunDir::open(&run_dir)
        .and_then(|r| r.read_info())
        .ok()
        .and_then(|i| i.data);
    let set = load_dataset(
        &a.data,
        recorded
            .as_ref()
            .map(|r| apical::io::dataset::DataSpec::parse(&r.name)),
    )?;
    if let Some(r) = &recorded {
        r.check_same(&set, &path.display().to_string(), a.data.other_data)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    apical::io::dataset::check_model_fits(cfg, &set.data, &set.name)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let data = &set.data;
    if a.test_examples > data.test.len() {
        bail!(
            "--test-examples {} is more than the {} test images of {}; give at most {}",
            a.test_examples,
            data.test.len(),
            set.name,
            data.test.len()
        );
    }
    let ev = evaluate_repeats(
        &net,
        &data.test,
        a.seed,
        ck.epochs_done,
        a.test_examples,
        a.repeats,
    );
    let n = ev.indices.len();
    if !a.set.is_empty() {
        println!(
            "test phase: {} steps, prediction from the mean of the last {}",
            cfg.phases.l_f_test, cfg.phases.integration_time_test
        );
    }
    if a.repeats == 1 {
        println!(
            "{}: {}; test error {:.2} % on {n} images",
            path.display(),
            epochs_trained(ck.epochs_done),
            ev.errors[0]
        );
    } else {
        for (r, e) in ev.errors.iter().enumerate() {
            println!("repeat {r}: test error {e:.2} %");
        }
        let (mean, sd) = ev.mean_sd();
        println!(
            "{}: {}; test error {mean:.2} +- {sd:.2} % (mean +- sd of {} spiking tests on {n} images)",
            path.display(),
            epochs_trained(ck.epochs_done),
            a.repeats
        );
    }
    let conf = ev.confusion;
    if a.repeats == 1 {
        println!("confusion matrix (rows: true class, columns: predicted)");
    } else {
        println!(
            "confusion matrix, summed over the {} tests (rows: true class, columns: predicted; each image counted {} times)",
            a.repeats, a.repeats
        );
    }
    print!("     ");
    for c in 0..conf.len() {
        print!("{c:>6}");
    }
    println!();
    for (t, row) in conf.iter().enumerate() {
        print!("{t:>4} ");
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_rate_is_a_whole_number_of_examples_per_second() {
        assert_eq!(rate_text(4337.8807), "4338 examples/s");
        assert_eq!(rate_text(12.5), "12 examples/s");
        assert_eq!(rate_text(3.04), "3.0 examples/s");
        assert_eq!(rate_text(f64::NAN), "- examples/s");
    }

    #[test]
    fn one_epoch_is_singular() {
        assert_eq!(epochs_trained(1), "1 epoch trained");
        assert_eq!(epochs_trained(3), "3 epochs trained");
    }

    #[test]
    fn help_texts_speak_to_the_user() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        cmd.build();
        let mut stack = vec![cmd];
        let mut bad = Vec::new();
        while let Some(c) = stack.pop() {
            for a in c.get_arguments() {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                let name = format!("{} {}", c.get_name(), a.get_id());
                if help.is_empty() && a.get_id() != "help" && a.get_id() != "version" {
                    bad.push(format!("{name}: no help text"));
                }
                for internal in ["clap", "rayon", "the team"] {
                    if help.contains(internal) {
                        bad.push(format!("{name}: {help}"));
                    }
                }
            }
            stack.extend(c.get_subcommands().cloned());
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
