//! How many worker threads a run uses when not told: one policy for the command line and
//! the Python package.

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
        Some(0) => Err("threads must be at least 1".into()),
        Some(n) => Ok(n),
        None => Ok(default_threads()),
    }
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
}
