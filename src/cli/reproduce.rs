//! `apical reproduce` and `apical plot` (command-line edge of src/app/reproduce.rs and src/app/plot.rs).

use anyhow::{bail, Context, Result};
use apical::app::reproduce::{self, ReproduceOptions};
use apical::io::run_dir::RunDir;
use apical::model::config::ModelConfig;
use apical::model::overrides::Override;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// "all", or experiment names separated by commas (the "guerguiev-" prefix may be left
    /// out), e.g. `1h,0h,1h-fixed-hidden`; `NAME:N` gives one experiment N seeds of its
    /// own (`all,0h:3,1h:3,2h:3`: every experiment, three of them with three seeds).
    #[arg(default_value = "all")]
    experiments: String,
    /// Epochs per run (default: each model file's training.epochs, the paper's 60).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training examples per epoch (default: the model file's, 60,000).
    #[arg(long)]
    train_examples: Option<usize>,
    /// Test images per evaluation (default: the model file's, 10,000).
    #[arg(long)]
    test_examples: Option<usize>,
    /// Override a model-file field of every experiment: `--set neuron.g_A=0.05` (dotted
    /// path, TOML value; repeatable). A run directory holding a run without it is not reused
    /// (choose another --out).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Seeds 0..N-1 for every experiment.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Runs at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Directory of the run directories (<out>/<experiment>/seed<S>/).
    #[arg(long, default_value = "runs/reproduce")]
    out: PathBuf,
    /// The results page to write; its plots go to img/ beside it. Default:
    /// <out>/results.md, beside the runs (the repository's docs/results.md is rewritten
    /// only when named here).
    #[arg(long)]
    results: Option<PathBuf>,
    /// A Markdown file put on the results page under "Notes", after the table: what is
    /// understood of the differences from the paper (e.g. docs/full/notes.md).
    #[arg(long, value_name = "FILE")]
    notes: Option<PathBuf>,
    /// Training examples simulated from a checkpoint for the plateau and raster plots.
    #[arg(long, default_value_t = 50)]
    plot_examples: usize,
    /// At the end, test each run's final weights N times on its test images, each time with
    /// spike streams of their own (the paper's averaged test: 20), and show the mean ± sd on
    /// the results page; kept in `repeats.json` of each run directory (not redone when it
    /// holds N repeats of the same weights). Default: no averaged test.
    #[arg(long)]
    repeats: Option<usize>,
    /// Compare every training example's hidden update with backprop's and keep the mean of
    /// each block of 100 in `alignment_trace.csv` (the curve of the paper's Fig. 7A; plotted
    /// as img/alignment_trace.png). Costs one backprop pass per example.
    #[arg(long)]
    alignment_trace: bool,
    /// Worker threads of the tests (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Which end-of-epoch checkpoints each run keeps: `all`, or `last:N[,every:M]`.
    #[arg(long, value_name = "POLICY", default_value = "last:2,every:10", value_parser = crate::parse_keep)]
    keep_checkpoints: apical::io::run_dir::KeepCheckpoints,
    #[command(flatten)]
    data: crate::DataArgs,
}

#[derive(clap::Args)]
pub struct PlotArgs {
    /// A run directory (of `apical train` or `apical reproduce`).
    run_dir: PathBuf,
    /// Training examples simulated from the latest checkpoint for the plateau and raster plots.
    #[arg(long, default_value_t = 50)]
    examples: usize,
    /// MNIST directory (`--data`; default: the run's, from run.json) and its check.
    #[command(flatten)]
    data: crate::DataArgs,
}

/// The budget options as (flag, value given).
fn budget_flags(a: &ReproduceArgs) -> [(&'static str, Option<usize>); 3] {
    [
        ("--epochs", a.epochs),
        ("--train-examples", a.train_examples),
        ("--test-examples", a.test_examples),
    ]
}

/// The results page: `--results`, else `<out>/results.md` beside the runs.
fn results_path(a: &ReproduceArgs) -> PathBuf {
    a.results
        .clone()
        .unwrap_or_else(|| a.out.join("results.md"))
}

/// The command as it could be typed again (the defaults left out).
fn command_line(a: &ReproduceArgs) -> String {
    let mut c = format!("apical reproduce {}", a.experiments);
    for (flag, v) in budget_flags(a) {
        if let Some(v) = v {
            c.push_str(&format!(" {flag} {v}"));
        }
    }
    if let Some(n) = a.repeats {
        c.push_str(&format!(" --repeats {n}"));
    }
    if a.alignment_trace {
        c.push_str(" --alignment-trace");
    }
    for s in &a.set {
        c.push_str(&format!(
            " --set {}",
            apical::app::sweep::slurm::shell_quote(s)
        ));
    }
    c.push_str(&format!(
        " --seeds {} --jobs {} --out {}",
        a.seeds,
        a.jobs,
        a.out.display(),
    ));
    if let Some(r) = &a.results {
        c.push_str(&format!(" --results {}", r.display()));
    }
    if let Some(n) = &a.notes {
        c.push_str(&format!(" --notes {}", n.display()));
    }
    c
}

pub fn cmd_reproduce(a: ReproduceArgs) -> Result<ExitCode> {
    crate::set_threads(a.threads)?;
    let (exps, seed_counts) = reproduce::select_with_seeds(&a.experiments)?;
    let overrides = a
        .set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    // Every experiment's model with the overrides, checked before the data loads.
    for e in &exps {
        let origin = format!("models/{}.toml", e.name);
        ModelConfig::from_toml_str(e.model_toml, &origin)?.with_overrides(&overrides, &origin)?;
    }
    // The notes too: a typo in their path should not surface after hours of training.
    let notes = a
        .notes
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the notes file {}", p.display()))
        })
        .transpose()?;
    for (flag, v) in budget_flags(&a) {
        if v == Some(0) {
            bail!("{flag} must be at least 1");
        }
    }
    if a.seeds == 0 || a.jobs == 0 {
        bail!("--seeds and --jobs must be at least 1");
    }
    if a.repeats == Some(0) {
        bail!("--repeats must be at least 1");
    }
    let stop = crate::cli::signals::Stop::install(
        "every run finishes its current example and writes a checkpoint",
    )?;
    let spec = a.data.spec().unwrap_or_default();
    let data_dir = match (&spec, &a.data.dir) {
        (apical::io::dataset::DataSpec::Mnist, d) => {
            apical::io::mnist::find_data_dir(d.as_deref())?
        }
        (_, Some(d)) => d.clone(),
        (apical::io::dataset::DataSpec::Path(p), None) => p.clone(),
        (_, None) => PathBuf::new(),
    };
    let mut opts = ReproduceOptions {
        epochs: a.epochs,
        train_examples: a.train_examples,
        test_examples: a.test_examples,
        seeds: (0..a.seeds).collect(),
        overrides,
        jobs: a.jobs,
        out_dir: a.out.clone(),
        data_dir: std::fs::canonicalize(&data_dir).unwrap_or_else(|_| data_dir.clone()),
        data: None,
        alignment_trace: a.alignment_trace,
        keep_checkpoints: a.keep_checkpoints,
        seed_counts,
    };
    // Every run directory is locked before the data is read.
    let locks = reproduce::lock_runs(&exps, &opts)?;
    eprintln!("loading data set {spec}");
    let set = apical::io::dataset::load(&spec, a.data.dir.as_deref(), !a.data.no_verify)?;
    for e in &exps {
        let cfg = ModelConfig::from_toml_str(e.model_toml, e.name)?
            .with_overrides(&opts.overrides, e.name)?;
        apical::io::dataset::check_model_fits(&cfg, &set.data, &set.name)
            .map_err(|m| anyhow::anyhow!("{}: {m}", e.name))?;
    }
    if let Some(src) = &set.source {
        opts.data_dir = src.clone();
    }
    opts.data = Some(apical::io::run_dir::DataRecord::of(&set));
    let data = set.data;
    let started = Instant::now();
    let runs_total: usize = exps.iter().map(|e| opts.seeds_of(e).len()).sum();
    eprintln!(
        "reproducing {} experiment(s), {runs_total} run(s) ({} seed(s) each unless named), {} at once, in {}",
        exps.len(),
        a.seeds,
        a.jobs,
        a.out.display()
    );
    let mut runs = reproduce::run_all(&exps, &data, &opts, &locks, &stop.flag, &|line| {
        crate::cli::signals::note(&line)
    })?;
    if stop.raised() {
        crate::cli::signals::note(
            "stopped; run the same command again to continue (finished runs are reused, the others resume from their checkpoints)",
        );
        return Ok(ExitCode::from(stop.exit_code()));
    }
    if let Some(n) = a.repeats {
        reproduce::averaged_tests(&mut runs, &data, n, &|line| eprintln!("{line}"))?;
    }
    drop(locks);
    let results = results_path(&a);
    let img_dir = results
        .parent()
        .map_or_else(|| PathBuf::from("img"), |p| p.join("img"));
    // Without a font the plots cannot be drawn; the results page is still worth writing.
    let files = match apical::app::plot::ensure_font() {
        Ok(()) => reproduce::render_plots(&runs, &data, &img_dir, a.plot_examples)?,
        Err(e) => {
            eprintln!("warning: plots skipped: {e}");
            Vec::new()
        }
    };
    let rel: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().and_then(|n| n.to_str()))
        .map(|n| format!("img/{n}"))
        .collect();
    let full = a.epochs.is_none() && a.train_examples.is_none() && a.test_examples.is_none();
    let text = apical::app::results_page::render_results(
        &runs,
        &command_line(&a),
        &rel,
        full,
        notes.as_deref(),
    );
    reproduce::write_text(&results, &text)?;
    for r in &runs {
        let avg = r.averaged.as_ref().map_or(String::new(), |a| {
            format!(
                "; averaged test {:.2} ± {:.2} % ({} repeats)",
                a.mean, a.sd, a.repeats
            )
        });
        println!(
            "{:<34} seed {}: test error {:6.2} %{avg}{}",
            r.experiment.name,
            r.seed,
            r.test_error(),
            if r.reused { " (reused)" } else { "" }
        );
    }
    println!(
        "wrote {} and {} plot(s) in {} ({:.0} s)",
        results.display(),
        files.len(),
        img_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn cmd_plot(a: PlotArgs) -> Result<()> {
    let dir: &Path = &a.run_dir;
    if !dir.is_dir() {
        bail!("{} is not a run directory", dir.display());
    }
    // Said before the data set is loaded.
    if dir.join("sweep.toml").is_file() {
        bail!(
            "{} is a sweep directory: `apical sweep collect {}` draws its plots; `apical plot` draws one of its points (a run directory inside it)",
            dir.display(),
            dir.display()
        );
    }
    if !dir.join("metrics.json").is_file() {
        bail!(
            "{} is not a run directory (no metrics.json: no epoch finished there)",
            dir.display()
        );
    }
    // --dataset, else the run's own data set; for MNIST --data, else APICAL_DATA, else the
    // run's own folder (run.json), else the usual places: each error names its source.
    let info = RunDir::open(dir).and_then(|r| r.read_info()).ok();
    let own = info
        .as_ref()
        .map(|i| i.data_dir.clone())
        .filter(|d| d.is_dir());
    let spec = a.data.spec().unwrap_or_else(|| {
        info.as_ref()
            .and_then(|i| i.data.as_ref())
            .map_or_else(Default::default, |d| {
                apical::io::dataset::DataSpec::parse(&d.name)
            })
    });
    let folder = match (&spec, own) {
        (apical::io::dataset::DataSpec::Path(_), _) => None,
        (_, Some(d)) if a.data.dir.is_none() && apical::io::mnist::data_env().is_none() => Some(d),
        _ => a.data.dir.clone(),
    };
    eprintln!("loading data set {spec}");
    let set = apical::io::dataset::load(&spec, folder.as_deref(), !a.data.no_verify)?;
    if let Some(r) = info.as_ref().and_then(|i| i.data.as_ref()) {
        r.check_same(&set, &dir.display().to_string(), a.data.other_data)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let data = set.data;
    let files = apical::app::plot::plot_run(dir, &data.train, a.examples)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}
