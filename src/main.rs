//! The `apical` command line.

use anyhow::{bail, Context, Result};
use apical::io::checkpoint::Checkpoint;
use apical::io::mnist::{self, Mnist};
use apical::io::record::{self, Compression};
use apical::io::run_dir::{self, EpochMetrics, RunDir};
use apical::model::config::{ModelConfig, DEFAULT_MODEL_NAME, DEFAULT_MODEL_TOML};
use apical::model::overrides::Override;
use apical::run::metrics::evaluate_repeats;
use apical::run::session::{self, SessionError, Start, TrainRequest};
use apical::run::trainer::{Progress, TrainError};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// Directory of the model files (models/guerguiev-{0,1,2}h.toml).
    #[arg(long, default_value = "models")]
    models: PathBuf,
    #[arg(long, env = "APICAL_DATA")]
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
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run directory (default: runs/<model name>-seed<S>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads (default: all cores): tests run images in parallel, and training
    /// shares the neuron blocks of layers of 1024+ neurons among them. Results do not
    /// depend on it.
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
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// What to record into <run dir>/traces.h5, e.g. `spikes` or
    /// `spikes,soma:layers=hidden0;examples=every:10;interval=5` (docs/traces.md);
    /// `none` writes no trace file. Default: the model file's [[record]] tables, else
    /// per-epoch metrics and weight snapshots.
    #[arg(long, value_name = "SPEC")]
    record: Option<String>,
    /// Compression of traces.h5: deflate, deflate:0..9 or none (libsonata's PyPI wheels read
    /// only uncompressed files).
    #[arg(long, default_value = "deflate:1", value_parser = parse_compression)]
    trace_compression: Compression,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse()
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A checkpoint file, or a run directory (its latest checkpoint).
    checkpoint: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    test_examples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Spiking tests of the same weights, each with its own spike streams: prints each
    /// one's error and their mean +- sd (the paper averages 20)
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long)]
    threads: Option<usize>,
}

/// Where the MNIST files are, and whether to check them: shared by every command that reads
/// them.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Directory holding the four MNIST files (raw or .gz).
    #[arg(long = "data", env = "APICAL_DATA")]
    pub dir: Option<PathBuf>,
    /// Skip the SHA-256 check of the MNIST files.
    #[arg(long)]
    pub no_verify: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => cmd_eval(a).map(|()| ExitCode::SUCCESS),
        Command::Inspect(a) => cmd_inspect(a).map(|()| ExitCode::SUCCESS),
        Command::Bench(a) => cmd_bench(a).map(|()| ExitCode::SUCCESS),
        Command::Reproduce(a) => cli::reproduce::cmd_reproduce(a).map(|()| ExitCode::SUCCESS),
        Command::Plot(a) => cli::reproduce::cmd_plot(a).map(|()| ExitCode::SUCCESS),
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

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start the thread pool")?;
    }
    Ok(())
}

fn load_data(dir: Option<&Path>, no_verify: bool) -> Result<(Mnist, PathBuf)> {
    let dir = mnist::find_data_dir(dir)?;
    eprintln!("loading MNIST from {}", dir.display());
    let m = mnist::load_mnist(&dir, !no_verify)?;
    Ok((m, dir))
}

struct Bar {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Bar {
    fn style() -> ProgressStyle {
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> ")
    }
}

impl Progress for Bar {
    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
    fn start_epoch(&mut self, epoch: usize, examples: usize, done: usize) {
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
    fn example_done(&mut self, done: usize, train_error: f64) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            if done % 100 == 0 {
                b.set_message(format!("train err {train_error:.1} %"));
            }
        }
    }
    fn testing(&mut self, _epoch: usize, n: usize) {
        if let Some(b) = &self.bar {
            b.set_message(format!("testing on {n} images ..."));
        }
    }
    fn quick_test(&mut self, epoch: usize, example: usize, error: f64) {
        let line = format!("epoch {epoch} example {example}: quick test error {error:.1} %");
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
    fn end_epoch(&mut self, m: &EpochMetrics) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let r = &m.record;
        let rates: Vec<String> = r.rates_hz.iter().map(|h| format!("{h:.1}")).collect();
        println!(
            "epoch {}: train error {:.2} %, test error {:.2} % ({} images), rates [{}] Hz, train {:.1} s ({:.3} ms/example), test {:.1} s",
            r.epoch,
            r.train_error,
            r.test_error,
            r.test_examples,
            rates.join(", "),
            m.train_seconds,
            1000.0 * m.seconds_per_train_example,
            m.test_seconds
        );
    }
}

fn cmd_train(a: TrainArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: finishing the current example and writing a checkpoint (Ctrl-C again to quit at once)");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
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
    let request = TrainRequest {
        start,
        data: a.data.dir.clone(),
        verify: !a.data.no_verify,
        record: a.record.clone(),
        compression: a.trace_compression,
        checkpoint_every: a.checkpoint_every,
        threads: a.threads,
    };
    let mut bar = Bar {
        bar: None,
        quiet: a.quiet,
    };
    let outcome = session::train(&request, &mut bar, &stop).map_err(|e| match e {
        SessionError::Train(TrainError::Checkpoint(c)) if a.resume.is_some() => {
            anyhow::anyhow!("cannot resume: {c}")
        }
        SessionError::RunDir(r) if a.resume.is_some() => {
            anyhow::anyhow!("cannot resume: {r}")
        }
        e => e.into(),
    })?;
    match outcome.traces {
        Some(Ok(p)) => eprintln!("traces in {}", p.display()),
        Some(Err(e)) => eprintln!("warning: trace recording stopped early: {e}; the file keeps everything written before (see its last_epoch and last_example attributes)"),
        None => {}
    }
    match outcome.result {
        Ok(()) => {
            println!("done: results in {}", outcome.dir.display());
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
            eprintln!(
                "stopped in epoch {epoch} after {example} examples; checkpoint {}\nresume with: apical train --resume {}",
                checkpoint.display(),
                outcome.dir.display()
            );
            // 128 + SIGINT, as shells report a process stopped by Ctrl-C.
            Ok(ExitCode::from(130))
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
        bail!("{}: no such trace file", path.display());
    }
    print!("{}", record::inspect(&path)?);
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
    if a.default_only {
        models.push((default.name.clone(), default.clone()));
    } else {
        for h in ["0h", "1h", "2h"] {
            let path = a.models.join(format!("guerguiev-{h}.toml"));
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
            eprintln!("hand-over of a step to {t} threads: rayon against the team");
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
    let (net, ck, path) = if a.checkpoint.is_dir() {
        RunDir::open(&a.checkpoint)?.restore()?
    } else {
        let ck = Checkpoint::load(&a.checkpoint)?;
        let net = run_dir::restore(&ck, &a.checkpoint)?;
        (net, ck, a.checkpoint.clone())
    };
    let cfg = &net.model.cfg;
    let (data, _) = load_data(a.data.dir.as_deref(), a.data.no_verify)?;
    let pixels = data.test.rows * data.test.cols;
    if pixels != cfg.network.n_in {
        bail!(
            "the model in {} has network.n_in = {} inputs but the test images have {pixels} pixels",
            path.display(),
            cfg.network.n_in
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
    if a.repeats == 1 {
        println!(
            "{}: {} epochs trained; test error {:.2} % on {n} images",
            path.display(),
            ck.epochs_done,
            ev.errors[0]
        );
    } else {
        for (r, e) in ev.errors.iter().enumerate() {
            println!("repeat {r}: test error {e:.2} %");
        }
        let (mean, sd) = ev.mean_sd();
        println!(
            "{}: {} epochs trained; test error {mean:.2} +- {sd:.2} % (mean +- sd of {} spiking tests on {n} images)",
            path.display(),
            ck.epochs_done,
            a.repeats
        );
    }
    let conf = ev.confusion;
    println!("confusion matrix (rows: true class, columns: predicted)");
    print!("     ");
    for c in 0..10 {
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
