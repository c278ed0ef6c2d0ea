//! `apical sweep SPEC --out DIR`, `apical sweep collect DIR`, `apical sweep status DIR`
//! (command-line edge of src/app/sweep/).

use crate::cli::signals::{note, Stop};
use anyhow::{bail, Context, Result};
use apical::app::sweep::collect;
use apical::app::sweep::runner::{self, RunSettings};
use apical::app::sweep::slurm::{self, SlurmOptions, TaskCommand};
use apical::app::sweep::spec::{Shard, SweepSpec, SWEEP_FILE};
use apical::io::mnist::find_data_dir;
use apical::io::record::Compression;
use apical::model::overrides::Override;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    action: Option<SweepAction>,
    /// The sweep file (TOML: base model, `[training]`, `[set]`, `[axes]`, `[zip]`;
    /// docs/sweeps.md).
    #[arg(required = true)]
    spec: Option<PathBuf>,
    /// The sweep directory: one run directory per point, sweep.toml, the summaries.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Points trained at once (they share the worker threads).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Only the K-th of N slices of the points (K in 0..N-1): those whose index is K mod N.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Override a model-file field of every point (dotted path, TOML value; repeatable),
    /// as `apical train --set`; a swept key cannot be set. `training.epochs`,
    /// `training.train_examples`, `training.test_examples` and the other keys of the sweep
    /// file's [training] table set every point's budget (replacing the file's).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Epochs of every point (replaces the sweep file's [training] epochs).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training examples per epoch of every point (the first N of each epoch's shuffle).
    #[arg(long)]
    train_examples: Option<usize>,
    /// Test images per evaluation of every point (a seeded random subset below 10,000).
    #[arg(long)]
    test_examples: Option<usize>,
    /// Worker threads (default: the CPUs this process may use: SLURM_CPUS_PER_TASK, else
    /// the CPU affinity). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    data: crate::DataArgs,
    /// Compression of each run's traces.h5, as `apical train --trace-compression`
    /// (default: the same, scaleoffset).
    #[arg(long, value_name = "COMPRESSION", value_parser = crate::parse_compression)]
    trace_compression: Option<Compression>,
    /// Run nothing: write DIR/sweep.sbatch, a Slurm job array whose tasks run the points
    /// (one task per point unless --tasks), each checkpointing on SIGTERM and requeueable.
    #[arg(long, conflicts_with = "shard")]
    slurm: bool,
    /// Also submit DIR/sweep.sbatch with sbatch.
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// Slurm partition (default: the cluster's).
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Time limit of each task, in sbatch's form (30, 2:00:00, 1-00:00:00); SIGTERM comes
    /// 120 s before it, the point checkpoints and the requeued task resumes it.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// Memory of each task (e.g. 4G).
    #[arg(long, requires = "slurm")]
    mem: Option<String>,
    /// CPUs of each task (apical uses as many threads).
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<usize>,
    /// Array tasks (default: one per point); each runs its shard of the points.
    #[arg(long, requires = "slurm")]
    tasks: Option<usize>,
    /// At most this many tasks at once.
    #[arg(long, requires = "slurm")]
    max_running: Option<usize>,
    /// Job name (default: `apical-sweep-` and the sweep directory's name).
    #[arg(long, requires = "slurm")]
    job_name: Option<String>,
    /// A further sbatch option for the script, e.g. --sbatch-arg=--account=abc (repeatable).
    #[arg(
        long = "sbatch-arg",
        value_name = "OPTION",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    sbatch_arg: Vec<String>,
}

#[derive(Subcommand)]
enum SweepAction {
    /// Write DIR/summary.csv (one row per point), DIR/summary.md (mean ± sd over seeds) and
    /// the plots in DIR/plots/ from the points' run directories.
    Collect {
        /// The sweep directory (`apical sweep SPEC --out DIR`).
        dir: PathBuf,
    },
    /// List the points: done, running, unfinished (resumable), failed, not started.
    Status {
        /// The sweep directory (`apical sweep SPEC --out DIR`).
        dir: PathBuf,
    },
}

pub fn cmd_sweep(a: SweepArgs) -> Result<ExitCode> {
    match &a.action {
        Some(SweepAction::Collect { dir }) => cmd_collect(dir).map(|()| ExitCode::SUCCESS),
        Some(SweepAction::Status { dir }) => {
            print!("{}", collect::status_text(dir)?);
            Ok(ExitCode::SUCCESS)
        }
        None => cmd_run(a),
    }
}

fn cmd_collect(dir: &Path) -> Result<()> {
    let c = collect::collect(dir)?;
    for w in &c.warnings {
        note(&format!("warning: {w}"));
    }
    println!(
        "{} of {} point(s) done; wrote {} and {}{}",
        c.done,
        c.points,
        c.csv.display(),
        c.md.display(),
        match c.plots.len() {
            0 => String::new(),
            n => format!(" and {n} plot(s) in {}", dir.join("plots").display()),
        }
    );
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{}", p.display()))
}

fn cmd_run(a: SweepArgs) -> Result<ExitCode> {
    let (Some(spec_path), Some(out)) = (a.spec.as_deref(), a.out.as_deref()) else {
        bail!("give a sweep file and --out DIR");
    };
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    // The run defaults of `apical train` (TrainRequest::new) unless given.
    let compression = a.trace_compression.unwrap_or_default();
    let overrides = a
        .set
        .iter()
        .map(String::as_str)
        .chain(budget_sets(&a).iter().map(String::as_str))
        .map(Override::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut spec = SweepSpec::from_file(spec_path)?.with_set(&overrides)?;
    // --dataset replaces the file's; the sweep as saved names the data its points use.
    if let Some(d) = a.data.spec() {
        spec.dataset = Some(d.label());
    }
    let runs = spec.resolve_all()?;
    // Every point's settings, before anything is written or submitted.
    runner::check_points(&runs, spec_path)?;
    // A directory of another sweep or budget is refused before anything is written.
    runner::check_existing(&runs, out)?;
    runner::check_same_sweep(&spec, out)?;
    let data = find_data_dir(a.data.dir.as_deref())?;
    if a.slurm {
        return write_slurm(&a, out, &spec, runs.len(), &data);
    }
    crate::set_threads(a.threads)?;
    let stop = Stop::install("the running point(s) finish the current example and checkpoint")?;
    spec.save(out)?;
    let selected: Vec<_> = match a.shard {
        Some(sh) => runs.into_iter().filter(|r| sh.contains(&r.point)).collect(),
        None => runs,
    };
    let total = spec.points().len();
    if selected.is_empty() {
        note(&format!(
            "shard {} holds no point (the sweep has {total}); nothing to do",
            a.shard.map_or_else(String::new, |s| s.to_string())
        ));
        return Ok(ExitCode::SUCCESS);
    }
    note(&format!(
        "sweep {}: {total} point(s){}, {} at once, in {}",
        spec_path.display(),
        a.shard
            .map_or_else(String::new, |s| format!(", shard {s}: {}", selected.len())),
        a.jobs,
        out.display()
    ));
    let settings = RunSettings {
        out: out.to_path_buf(),
        data: Some(std::fs::canonicalize(&data).unwrap_or(data)),
        dataset: spec
            .dataset
            .as_deref()
            .map(apical::io::dataset::DataSpec::parse),
        verify: !a.data.no_verify,
        jobs: a.jobs,
        compression,
    };
    let started = Instant::now();
    let report = runner::run_points(&selected, &settings, &stop.flag, &|l| note(&l))?;
    note(&format!(
        "{} trained, {} already done, {} stopped, {} not started, {} run elsewhere, {} failed ({:.0} s)",
        report.completed.len(),
        report.skipped.len(),
        report.interrupted.len(),
        report.not_started.len(),
        report.busy.len(),
        report.failed.len(),
        started.elapsed().as_secs_f64()
    ));
    if stop.raised() {
        note("stopped; run the same command again to continue (finished points are skipped, the others resume from their checkpoints)");
        return Ok(ExitCode::from(stop.exit_code()));
    }
    match a.shard {
        None => cmd_collect(out)?,
        Some(s) => note(&format!(
            "shard {s} finished; when every shard has, collect with: apical sweep collect {}",
            out.display()
        )),
    }
    if !report.failed.is_empty() {
        let list: Vec<String> = report
            .failed
            .iter()
            .map(|(p, e)| format!("{p}: {e}"))
            .collect();
        bail!(
            "{} point(s) failed:\n  {}",
            report.failed.len(),
            list.join("\n  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The budget flags as `--set training.KEY=N` (applied after the `--set`s: a flag wins).
fn budget_sets(a: &SweepArgs) -> Vec<String> {
    [
        ("epochs", a.epochs),
        ("train_examples", a.train_examples),
        ("test_examples", a.test_examples),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|n| format!("training.{k}={n}")))
    .collect()
}

/// `--slurm`: the sweep saved into DIR and DIR/sweep.sbatch written (and submitted). The
/// tasks run the saved DIR/sweep.toml, which holds the `--set`s, the budget flags and
/// `--dataset`: the sweep file given may change or go away once the script is written.
fn write_slurm(
    a: &SweepArgs,
    out: &Path,
    spec: &SweepSpec,
    points: usize,
    data: &Path,
) -> Result<ExitCode> {
    spec.save(out)?;
    let mut args = Vec::new();
    if a.jobs > 1 {
        args.extend(["--jobs".to_string(), a.jobs.to_string()]);
    }
    if let Some(t) = a.threads {
        args.extend(["--threads".to_string(), t.to_string()]);
    }
    if a.data.no_verify {
        args.push("--no-verify".into());
    }
    if let Some(z) = a.trace_compression {
        args.extend(["--trace-compression".to_string(), z.to_string()]);
    }
    let apical = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find the apical binary's path")?;
    let out = absolute(out)?;
    let cmd = TaskCommand {
        apical,
        spec: out.join(SWEEP_FILE),
        out,
        data: absolute(data)?,
        args,
    };
    let opts = SlurmOptions {
        partition: a.partition.clone(),
        time: a.time.clone(),
        mem: a.mem.clone(),
        cpus_per_task: a.cpus_per_task,
        tasks: a.tasks,
        max_running: a.max_running,
        job_name: a.job_name.clone(),
        extra: a.sbatch_arg.clone(),
    };
    let script = slurm::sbatch_script(&cmd, points, &opts)?;
    let path = slurm::write_script(&cmd.out, &script)?;
    let tasks = slurm::task_count(points, &opts)?;
    if let Some(asked) = a.tasks.filter(|&t| t > tasks) {
        note(&format!(
            "--tasks {asked} is more than the {points} point(s): {tasks} array task(s), one per point"
        ));
    }
    println!(
        "wrote {} ({tasks} array task(s) for {points} point(s))",
        path.display()
    );
    // The hints are commands to paste: paths quoted for the shell.
    let q = |p: &Path| slurm::shell_quote(&p.display().to_string());
    if a.submit {
        println!("{}", slurm::submit(&path)?);
    } else {
        println!("submit with: sbatch {}", q(&path));
    }
    println!("then: {} sweep collect {}", q(&cmd.apical), q(&cmd.out));
    Ok(ExitCode::SUCCESS)
}
