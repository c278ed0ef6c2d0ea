//! How many worker threads a run may ask for: at least 1, at most a few per CPU (the
//! command line's `--threads` and Python's `threads=` share this check).

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
