//! How many worker threads a run uses when not told, and how many it may ask for: one
//! policy for the command line and the Python package (`--threads`, `threads=`).

/// The CPUs this process may use: `SLURM_CPUS_PER_TASK`, else inside a Slurm job
/// `SLURM_CPUS_ON_NODE`, each at most the CPUs of the scheduler affinity
/// (`available_parallelism`), which is the answer outside Slurm. (Without cgroups or task
/// affinity, a Slurm task sees every CPU of the node but was given fewer.)
pub fn default_threads() -> usize {
    let avail = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads_from(avail, |k| std::env::var(k).ok())
}

/// [`default_threads`] for `avail` CPUs and the environment `env`.
pub fn threads_from(avail: usize, env: impl Fn(&str) -> Option<String>) -> usize {
    let count = |k: &str| {
        env(k)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    let slurm = count("SLURM_CPUS_PER_TASK").or_else(|| {
        env("SLURM_JOB_ID")
            .is_some()
            .then(|| count("SLURM_CPUS_ON_NODE"))
            .flatten()
    });
    slurm.map_or(avail, |n| n.min(avail))
}

/// The thread count of a run: `threads` when given (at least 1), else [`default_threads`].
pub fn resolve(threads: Option<usize>) -> Result<usize, String> {
    match threads {
        Some(n) => check_threads(n, "threads"),
        None => Ok(default_threads()),
    }
}

/// The most worker threads per CPU of the machine: more only adds switching (and 100,000
/// threads took minutes to start).
pub const THREADS_PER_CPU: usize = 4;
/// The limit on a machine with few CPUs.
pub const MIN_THREAD_LIMIT: usize = 64;

/// The most threads allowed on a machine of `cpus` CPUs.
pub fn thread_limit(cpus: usize) -> usize {
    (THREADS_PER_CPU * cpus).max(MIN_THREAD_LIMIT)
}

/// `n` if it is a thread count this machine should run (`what` names the setting in the
/// message, `--threads` or `threads`).
pub fn check_threads(n: usize, what: &str) -> Result<usize, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = thread_limit(cpus);
    if n == 0 {
        return Err(format!("{what} must be at least 1"));
    }
    if n > max {
        return Err(format!(
            "{what} {n} is more than {max} ({THREADS_PER_CPU} per CPU of the {cpus} this process may use, at least {MIN_THREAD_LIMIT}): more threads than CPUs only slow a run down"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn slurm_gives_the_count_within_the_affinity() {
        assert_eq!(threads_from(8, env(&[])), 8);
        assert_eq!(threads_from(8, env(&[("SLURM_CPUS_PER_TASK", "3")])), 3);
        assert_eq!(threads_from(2, env(&[("SLURM_CPUS_PER_TASK", "16")])), 2);
        // On-node count only inside a job; per-task count first.
        assert_eq!(threads_from(8, env(&[("SLURM_CPUS_ON_NODE", "4")])), 8);
        assert_eq!(
            threads_from(
                8,
                env(&[("SLURM_JOB_ID", "1"), ("SLURM_CPUS_ON_NODE", "4")])
            ),
            4
        );
        assert_eq!(
            threads_from(
                8,
                env(&[
                    ("SLURM_JOB_ID", "1"),
                    ("SLURM_CPUS_ON_NODE", "4"),
                    ("SLURM_CPUS_PER_TASK", "2")
                ])
            ),
            2
        );
        assert_eq!(threads_from(8, env(&[("SLURM_CPUS_PER_TASK", "0")])), 8);
        assert_eq!(threads_from(8, env(&[("SLURM_CPUS_PER_TASK", "x")])), 8);
        assert_eq!(resolve(Some(0)).unwrap_err(), "threads must be at least 1");
        assert_eq!(resolve(Some(5)), Ok(5));
    }

    #[test]
    fn zero_and_absurd_counts_are_refused_naming_the_setting() {
        assert_eq!(
            check_threads(0, "--threads").unwrap_err(),
            "--threads must be at least 1"
        );
        let e = check_threads(100_000, "threads").unwrap_err();
        assert!(e.starts_with("threads 100000 is more than "), "{e}");
        assert_eq!(check_threads(1, "threads"), Ok(1));
        assert_eq!(thread_limit(2), 64);
        assert_eq!(thread_limit(64), 256);
    }
}
