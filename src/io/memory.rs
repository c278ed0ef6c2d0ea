//! How much memory this process may still use: the smallest of the kernel's estimate of
//! available memory (`MemAvailable` in /proc/meminfo), the cgroup's limit (v2
//! `memory.max`, v1 `memory.limit_in_bytes`, each less what the cgroup already uses) and
//! the process's address-space and data limits (`ulimit -v`, `ulimit -d`, less what the
//! process already maps). A model that needs more is refused with a message instead of
//! aborting half-way through its allocation.

use std::path::{Path, PathBuf};

/// Bytes in a GiB.
const GIB: f64 = (1u64 << 30) as f64;
/// A cgroup "limit" at or above this is no limit (v1 writes 2^63 - 4096).
const UNLIMITED: u64 = 1 << 62;

/// The tightest memory bound found, and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Available {
    pub bytes: u64,
    /// "MemAvailable in /proc/meminfo", "cgroup memory.max (/sys/fs/cgroup/...)",
    /// "ulimit -v (RLIMIT_AS)", ...
    pub source: String,
}

/// A model too large for the memory there is.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} needs about {:.1} GiB of memory, {:.1} GiB available (the limit is {}); use a smaller model or run where more memory is available",
    *needed as f64 / GIB,
    available.bytes as f64 / GIB,
    available.source
)]
pub struct MemoryError {
    pub what: String,
    pub needed: u64,
    pub available: Available,
}

/// Refuses `needed` bytes for `what` when they are more than [`available`] says.
pub fn check(needed: u64, what: &str) -> Result<(), MemoryError> {
    match available() {
        Some(a) if needed > a.bytes => Err(MemoryError {
            what: what.to_string(),
            needed,
            available: a,
        }),
        _ => Ok(()),
    }
}

/// The tightest of the bounds that can be read (None when none can: not Linux).
pub fn available() -> Option<Available> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut found: Vec<Available> = Vec::new();
    if let Some(kb) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| kib_field(&t, "MemAvailable:"))
    {
        found.push(Available {
            bytes: kb * 1024,
            source: "MemAvailable in /proc/meminfo".into(),
        });
    }
    found.extend(cgroup_limits());
    #[cfg(unix)]
    {
        for (resource, name, used_field) in [
            (libc::RLIMIT_AS, "ulimit -v (RLIMIT_AS)", "VmSize:"),
            (libc::RLIMIT_DATA, "ulimit -d (RLIMIT_DATA)", "VmData:"),
        ] {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit struct through a valid pointer.
            let ok = unsafe { libc::getrlimit(resource, &mut lim) } == 0;
            if ok && lim.rlim_cur != libc::RLIM_INFINITY {
                let used = kib_field(&status, used_field).unwrap_or(0) * 1024;
                found.push(Available {
                    bytes: lim.rlim_cur.saturating_sub(used),
                    source: name.into(),
                });
            }
        }
    }
    found.into_iter().min_by_key(|a| a.bytes)
}

/// A "Name:   123 kB" line of /proc/meminfo or /proc/self/status, in KiB.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Limits of this process's cgroup and its ancestors, less their use.
fn cgroup_limits() -> Vec<Available> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(rel)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (base, limit_file, usage_file) = if id == "0" && controllers.is_empty() {
            (
                PathBuf::from("/sys/fs/cgroup"),
                "memory.max",
                "memory.current",
            )
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                PathBuf::from("/sys/fs/cgroup/memory"),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        // The cgroup's own directory and every ancestor up to the mount point (inside a
        // container the path may not exist below the mount: then the mount's own files).
        let mut dir = base.join(rel.trim_start_matches('/'));
        loop {
            if let Some(limit) = read_u64(&dir.join(limit_file)).filter(|&l| l < UNLIMITED) {
                let used = read_u64(&dir.join(usage_file)).unwrap_or(0);
                out.push(Available {
                    bytes: limit.saturating_sub(used),
                    source: format!("cgroup {}", dir.join(limit_file).display()),
                });
            }
            if dir == base || !dir.pop() || !dir.starts_with(&base) {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_proc_files_are_read_in_kib() {
        let t = "MemTotal:       24000000 kB\nMemAvailable:   21000000 kB\n";
        assert_eq!(kib_field(t, "MemAvailable:"), Some(21_000_000));
        assert_eq!(kib_field(t, "VmSize:"), None);
    }

    #[test]
    fn something_is_known_on_linux_and_the_error_names_both_sizes() {
        if cfg!(target_os = "linux") {
            let a = available().expect("MemAvailable at least");
            assert!(a.bytes > 0, "{a:?}");
        }
        let e = MemoryError {
            what: "the model 784-1000000-10".into(),
            needed: 13 << 30,
            available: Available {
                bytes: 3 << 29,
                source: "ulimit -v (RLIMIT_AS)".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "the model 784-1000000-10 needs about 13.0 GiB of memory, 1.5 GiB available (the \
             limit is ulimit -v (RLIMIT_AS)); use a smaller model or run where more memory is \
             available"
        );
        assert!(check(u64::MAX, "everything").is_err() || available().is_none());
        assert!(check(1, "a byte").is_ok());
    }
}
