//! The `apical` command line.

use anyhow::{bail, Context, Result};
use apical::io::checkpoint::{self, Checkpoint};
use apical::io::mnist::{self, Mnist};
use apical::io::record::{self, Compression, Recorder, RunEnd, StartPoint};
use apical::io::run_dir::{EpochMetrics, RunInfo};
use apical::model::config::{ModelConfig, DEFAULT_MODEL_NAME, DEFAULT_MODEL_TOML};
use apical::run::trainer::{Progress, RunOptions, TrainError, Trainer};
use apical::sim::observer::NoObserver;
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
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, conflicts_with_all = ["model", "seed", "out", "train_examples", "test_examples"])]
    resume: Option<PathBuf>,
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
    let mut trainer_holder;
    let data_holder: Mnist;
    if let Some(dir) = &a.resume {
        let info = apical::io::run_dir::RunDir::read_info(dir)?;
        let list = checkpoint::list_checkpoints(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?;
        let Some((_, _, latest)) = list.last() else {
            bail!("{} holds no checkpoint to resume from", dir.display());
        };
        // Checked here too (Trainer::resume checks again) so the error names the file.
        let loaded = Checkpoint::load(latest).and_then(|ck| ck.check(latest).map(|_| ck));
        let ck = loaded.map_err(|e| {
            let previous = match list.len() {
                0 | 1 => String::new(),
                n => format!(
                    "; to resume from the checkpoint before it, move {} away (the previous one is {})",
                    latest.display(),
                    list[n - 2].2.display()
                ),
            };
            anyhow::anyhow!("cannot resume: {e}{previous}")
        })?;
        let epochs = a.epochs.unwrap_or(info.epochs);
        if epochs < ck.epochs_done {
            bail!(
                "{} already has {} epochs; --epochs gives the total and must be at least that",
                dir.display(),
                ck.epochs_done
            );
        }
        // --data / APICAL_DATA, else the run's data directory, else the usual places (a run
        // directory copied from another machine).
        let data_dir = match &a.data.dir {
            Some(d) => d.clone(),
            None if info.data_dir.is_dir() => info.data_dir.clone(),
            None => mnist::find_data_dir(None)?,
        };
        let (d, _) = load_data(Some(&data_dir), a.data.no_verify)?;
        data_holder = d;
        let checkpoint_every = a.checkpoint_every.unwrap_or(info.checkpoint_every);
        let opts = RunOptions {
            epochs,
            // The checkpoint's seed and example counts replace these (Trainer::resume).
            train_examples: ck.train_examples,
            test_examples: ck.test_examples,
            seed: ck.seed,
            out_dir: dir.clone(),
            checkpoint_every,
            progress: !a.quiet,
        };
        let at = match &ck.progress {
            Some(p) => format!(
                "{} epochs and {} examples of epoch {} done",
                ck.epochs_done,
                p.example,
                ck.epochs_done + 1
            ),
            None => format!("{} epochs done", ck.epochs_done),
        };
        eprintln!(
            "resuming {} from {} ({at}) up to {} epochs",
            dir.display(),
            latest.display(),
            epochs
        );
        trainer_holder = Trainer::resume(ck, &data_holder, opts)?;
        let mut info = info;
        info.epochs = epochs;
        info.checkpoint_every = checkpoint_every;
        trainer_holder.run.write_info(&info)?;
    } else {
        let cfg = match &a.model {
            Some(p) => ModelConfig::from_file(p)?,
            None => ModelConfig::from_toml_str(
                DEFAULT_MODEL_TOML,
                &format!("models/{DEFAULT_MODEL_NAME}.toml (embedded)"),
            )?,
        };
        if let Some(spec) = &a.record {
            record::RecordPlan::resolve(&record::parse_spec(spec).context("--record")?, &cfg)
                .context("--record")?;
        }
        let (d, data_dir) = load_data(a.data.dir.as_deref(), a.data.no_verify)?;
        data_holder = d;
        let epochs = a.epochs.unwrap_or(cfg.training.epochs);
        let train_examples = a.train_examples.unwrap_or(cfg.training.train_examples);
        let test_examples = a.test_examples.unwrap_or(cfg.training.test_examples);
        if epochs == 0 || train_examples == 0 || test_examples == 0 {
            bail!("--epochs, --train-examples and --test-examples must be at least 1");
        }
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", cfg.name, a.seed)));
        let info = RunInfo {
            apical_version: env!("CARGO_PKG_VERSION").into(),
            model: cfg.name.clone(),
            seed: a.seed,
            epochs,
            train_examples,
            test_examples,
            data_dir: std::fs::canonicalize(&data_dir).unwrap_or(data_dir),
            checkpoint_every: a.checkpoint_every.unwrap_or(0),
        };
        let opts = RunOptions {
            epochs,
            train_examples,
            test_examples,
            seed: a.seed,
            out_dir: out.clone(),
            checkpoint_every: a.checkpoint_every.unwrap_or(0),
            progress: !a.quiet,
        };
        eprintln!(
            "training {} ({}) for {} epoch(s) of {} examples, testing on {}; run directory {}",
            cfg.name,
            sizes_string(&cfg),
            epochs,
            train_examples,
            test_examples,
            out.display()
        );
        trainer_holder = Trainer::new(cfg, &data_holder, opts, &info)?;
    }
    let mut bar = Bar {
        bar: None,
        quiet: a.quiet,
    };
    let mut recorder = make_recorder(
        &trainer_holder,
        a.record.as_deref(),
        a.resume.is_some(),
        a.trace_compression,
    )?;
    let result = match &mut recorder {
        Some(r) => trainer_holder.run(&stop, &mut bar, r),
        None => trainer_holder.run(&stop, &mut bar, &mut NoObserver),
    };
    if let Some(r) = recorder {
        let end = match &result {
            Ok(()) => RunEnd::Completed,
            Err(TrainError::Interrupted { .. }) => RunEnd::Interrupted,
            Err(e) => RunEnd::Failed(e.to_string()),
        };
        match r.finish(end) {
            Ok(p) => eprintln!("traces in {}", p.display()),
            Err(e) => eprintln!("warning: trace recording stopped early: {e}; the file keeps everything written before (see its last_epoch and last_example attributes)"),
        }
    }
    match result {
        Ok(()) => {
            println!("done: results in {}", trainer_holder.run.dir.display());
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
                trainer_holder.run.dir.display()
            );
            // 128 + SIGINT, as shells report a process stopped by Ctrl-C.
            Ok(ExitCode::from(130))
        }
        Err(e) => Err(e.into()),
    }
}

/// The trace recorder of a run: `--record`, else the model file's [[record]] tables, else
/// the default spec. A resumed run writes a new file whose time continues the run's.
fn make_recorder(
    t: &Trainer<'_>,
    spec: Option<&str>,
    resumed: bool,
    z: Compression,
) -> Result<Option<Recorder>> {
    let cfg = &t.net.model.cfg;
    let (groups, text) = match spec {
        Some(s) => (record::parse_spec(s).context("--record")?, s.to_string()),
        None if !cfg.record.is_empty() => (
            cfg.record.clone(),
            "[[record]] tables of the model file".to_string(),
        ),
        None => (
            record::parse_spec(record::DEFAULT_SPEC).expect("the default spec parses"),
            record::DEFAULT_SPEC.to_string(),
        ),
    };
    if groups.is_empty() {
        return Ok(None);
    }
    let epoch = t.history.len() + 1;
    let example = t.resume_progress.as_ref().map_or(0, |p| p.example);
    let n_train = t.opts.train_examples.min(t.data.train.len());
    let step = record::steps_before(cfg, t.opts.seed, n_train, epoch, example);
    let mut path = t.run.dir.join("traces.h5");
    if resumed && path.exists() {
        path = t
            .run
            .dir
            .join(format!("traces-from-epoch{epoch}-example{example}.h5"));
    }
    let start = StartPoint {
        epoch,
        example,
        step,
    };
    let r = Recorder::create(
        &path,
        &groups,
        &text,
        cfg,
        &t.model_toml,
        t.opts.seed,
        start,
        z,
    )
    .context("--record")?;
    Ok(Some(r))
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

fn sizes_string(cfg: &ModelConfig) -> String {
    let mut s = vec![cfg.network.n_in];
    s.extend(cfg.layer_sizes());
    s.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("-")
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
    let (data, _) = load_data(a.data.as_deref(), true)?;
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
        let wide = bench::wide_model(&default, 2000);
        models.push((wide.name.clone(), wide));
    }
    let mut rows = Vec::new();
    for (name, cfg) in &models {
        rows.push(bench::bench_model(name, cfg, &data, &o, &mut |m| {
            eprintln!("{m}")
        }));
    }
    println!(
        "apical bench: medians of {} repetitions; training {} examples (dense baseline {}), test {} images; 1 thread unless stated",
        o.reps, o.train_examples, o.dense_examples, o.test_examples
    );
    print!("{}", bench::format_table(&rows));
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    set_threads(a.threads)?;
    let path = if a.checkpoint.is_dir() {
        let list = checkpoint::list_checkpoints(&a.checkpoint)
            .with_context(|| format!("cannot list {}", a.checkpoint.display()))?;
        match list.last() {
            Some((_, _, p)) => p.clone(),
            None => bail!("{} holds no checkpoint", a.checkpoint.display()),
        }
    } else {
        a.checkpoint.clone()
    };
    if a.test_examples == 0 {
        bail!("--test-examples must be at least 1");
    }
    let ck = Checkpoint::load(&path)?;
    let cfg = ck.check(&path)?;
    let (data, _) = load_data(a.data.dir.as_deref(), a.data.no_verify)?;
    let pixels = data.test.rows * data.test.cols;
    if pixels != cfg.network.n_in {
        bail!(
            "the model in {} has network.n_in = {} inputs but the test images have {pixels} pixels",
            path.display(),
            cfg.network.n_in
        );
    }
    let net = checkpoint::restore_network(cfg, ck.params, ck.seed, ck.feedback_rng);
    let key = (2u64 << 48) | ck.epochs_done as u64;
    let (idx, preds) =
        apical::run::metrics::evaluate(&net, &data.test, a.seed, key, a.test_examples);
    let err = apical::run::metrics::error_percent(&data.test, &idx, &preds);
    println!(
        "{}: {} epochs trained; test error {:.2} % on {} images",
        path.display(),
        ck.epochs_done,
        err,
        idx.len()
    );
    let mut conf = [[0usize; 10]; 10];
    for (&i, &p) in idx.iter().zip(&preds) {
        conf[data.test.label(i) as usize][p as usize] += 1;
    }
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
