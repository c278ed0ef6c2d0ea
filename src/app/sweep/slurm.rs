//! The Slurm job-array script of a sweep (`apical sweep --slurm`).
//!
//! One array task per point by default; task K runs `apical sweep DIR/sweep.toml --shard
//! K/N` (the sweep as saved in its directory), so the tasks together run every point once.
//! The script `exec`s apical, which makes apical the batch shell: `scancel`, `scontrol
//! requeue`, the time limit and `--signal=B:TERM@120` then deliver SIGTERM to apical
//! itself, which checkpoints the running point and exits 143; the requeued task
//! (`--requeue`) resumes it. `--open-mode=append` keeps a requeued task's
//! earlier log lines. Every path is absolute: Slurm runs a copy of the script from the
//! submission directory (docs/slurm-notes.md).

use crate::app::sweep::{io_err, SweepError};
use std::path::{Path, PathBuf};

/// The script's file name in the sweep directory.
pub const SCRIPT_FILE: &str = "sweep.sbatch";
/// The folder of the tasks' logs in the sweep directory.
pub const LOG_DIR: &str = "logs";
/// Seconds before the time limit at which Slurm sends SIGTERM (`--signal=B:TERM@120`).
pub const SIGNAL_SECONDS: u32 = 120;

/// What the job asks of Slurm. `None`: the cluster's default (nothing is written).
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// `--time` (e.g. `30`, `2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    /// `--mem` (e.g. `4G`).
    pub mem: Option<String>,
    pub cpus_per_task: Option<usize>,
    /// Array tasks (default: one per point; at most the number of points).
    pub tasks: Option<usize>,
    /// At most this many tasks at once (`--array=0-N%M`).
    pub max_running: Option<usize>,
    pub job_name: Option<String>,
    /// More `#SBATCH` lines, each an sbatch option such as `--account=abc`.
    pub extra: Vec<String>,
}

/// What each task runs.
#[derive(Clone, Debug)]
pub struct TaskCommand {
    /// The apical binary (absolute).
    pub apical: PathBuf,
    /// The sweep file (absolute): the copy kept in the sweep directory (`DIR/sweep.toml`),
    /// so that the tasks run the sweep as it was when the script was written.
    pub spec: PathBuf,
    /// The sweep directory (absolute).
    pub out: PathBuf,
    /// The MNIST folder (absolute).
    pub data: PathBuf,
    /// More arguments of `apical sweep` (e.g. `--set`, `--jobs`), passed on as they are.
    pub args: Vec<String>,
}

/// `s` quoted for bash where needed.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/.,:=+@%-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn plain(what: &str, s: &str) -> Result<(), SweepError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SweepError::Invalid(format!(
            "{what} {s:?} cannot go into an #SBATCH line (empty, or with spaces or control characters)"
        )));
    }
    Ok(())
}

/// Number of array tasks for `points` points.
pub fn task_count(points: usize, o: &SlurmOptions) -> Result<usize, SweepError> {
    match o.tasks {
        Some(0) => Err(SweepError::Invalid("--tasks must be at least 1".into())),
        Some(t) => Ok(t.min(points)),
        None => Ok(points),
    }
}

/// The batch script for a sweep of `points` points.
pub fn sbatch_script(
    cmd: &TaskCommand,
    points: usize,
    o: &SlurmOptions,
) -> Result<String, SweepError> {
    if points == 0 {
        return Err(SweepError::Invalid("the sweep has no points".into()));
    }
    for (what, p) in [
        ("the apical binary", &cmd.apical),
        ("the sweep file", &cmd.spec),
        ("the sweep directory", &cmd.out),
        ("the data folder", &cmd.data),
    ] {
        if !p.is_absolute() {
            return Err(SweepError::Invalid(format!(
                "{what} {} must be an absolute path in a batch script",
                p.display()
            )));
        }
    }
    let logs = cmd.out.join(LOG_DIR);
    let logs_text = logs.to_string_lossy();
    if logs_text.contains('%') {
        return Err(SweepError::Invalid(format!(
            "the sweep directory {} holds '%', which Slurm reads as a pattern in --output; choose another --out",
            cmd.out.display()
        )));
    }
    plain("the sweep directory", &logs_text)?;
    let n = task_count(points, o)?;
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# apical sweep as a Slurm job array: {n} task(s) for {points} point(s), written by\n\
         # `apical sweep --slurm`. Submit from any directory: sbatch [--wait] {script}\n\
         # Then: {apical} sweep collect {out}   (progress: {apical} sweep status {out})\n",
        script = shell_quote(&cmd.out.join(SCRIPT_FILE).to_string_lossy()),
        apical = shell_quote(&cmd.apical.to_string_lossy()),
        out = shell_quote(&cmd.out.to_string_lossy()),
    ));
    let name = o.job_name.clone().unwrap_or_else(|| {
        let dir = cmd
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let safe: String = dir
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
            .collect();
        format!("apical-sweep-{safe}")
    });
    plain("--job-name", &name)?;
    let mut lines = vec![
        format!("--job-name={name}"),
        match o.max_running {
            Some(0) => {
                return Err(SweepError::Invalid(
                    "--max-running must be at least 1".into(),
                ))
            }
            Some(m) => format!("--array=0-{}%{m}", n - 1),
            None => format!("--array=0-{}", n - 1),
        },
        format!("--output={logs_text}/%A_%a.out"),
        format!("--signal=B:TERM@{SIGNAL_SECONDS}"),
        "--requeue".into(),
        "--open-mode=append".into(),
    ];
    for (flag, v) in [
        ("--partition", &o.partition),
        ("--time", &o.time),
        ("--mem", &o.mem),
    ] {
        if let Some(v) = v {
            plain(flag, v)?;
            lines.push(format!("{flag}={v}"));
        }
    }
    if let Some(c) = o.cpus_per_task {
        if c == 0 {
            return Err(SweepError::Invalid(
                "--cpus-per-task must be at least 1".into(),
            ));
        }
        lines.push(format!("--cpus-per-task={c}"));
    }
    for e in &o.extra {
        plain("--sbatch-arg", e)?;
        if !e.starts_with('-') {
            return Err(SweepError::Invalid(format!(
                "--sbatch-arg {e:?} is not an sbatch option (e.g. --account=abc)"
            )));
        }
        lines.push(e.clone());
    }
    for l in lines {
        s.push_str(&format!("#SBATCH {l}\n"));
    }
    s.push_str(
        "if [ -z \"${SLURM_ARRAY_TASK_ID:-}\" ]; then\n    echo \"submit this script with sbatch (it is a job array)\" >&2\n    exit 2\nfi\n",
    );
    s.push_str(&format!(
        "echo \"apical sweep: task $SLURM_ARRAY_TASK_ID of {n}, job ${{SLURM_JOB_ID:-?}}, restart ${{SLURM_RESTART_COUNT:-0}}, on $(hostname) at $(date -Is)\"\n"
    ));
    let mut exec = vec![
        "exec".to_string(),
        shell_quote(&cmd.apical.to_string_lossy()),
        "sweep".into(),
        shell_quote(&cmd.spec.to_string_lossy()),
        "--out".into(),
        shell_quote(&cmd.out.to_string_lossy()),
        "--shard".into(),
        format!("\"$SLURM_ARRAY_TASK_ID/{n}\""),
        "--data".into(),
        shell_quote(&cmd.data.to_string_lossy()),
    ];
    exec.extend(cmd.args.iter().map(|a| shell_quote(a)));
    s.push_str(&exec.join(" "));
    s.push('\n');
    Ok(s)
}

/// Writes the script (and the log folder) into the sweep directory; returns its path.
pub fn write_script(out: &Path, script: &str) -> Result<PathBuf, SweepError> {
    let logs = out.join(LOG_DIR);
    std::fs::create_dir_all(&logs).map_err(io_err(&logs))?;
    let path = out.join(SCRIPT_FILE);
    crate::app::sweep::write_shared(&path, script.as_bytes())?;
    Ok(path)
}

/// Runs `sbatch SCRIPT`; returns what it printed (`Submitted batch job N`).
pub fn submit(script: &Path) -> Result<String, SweepError> {
    let out = std::process::Command::new("sbatch")
        .arg(script)
        .output()
        .map_err(|e| {
            SweepError::Invalid(format!(
                "cannot run sbatch ({e}); is Slurm installed here? The script is {}",
                script.display()
            ))
        })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(SweepError::Invalid(format!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(text)
}
