//! A recording run killed with SIGKILL at random moments leaves a trace file that opens as
//! it is (the hdf5 crate, no flag clearing, no SWMR), whose spike rows are a prefix of what
//! an uninterrupted run with the same seed writes, in time order, and that holds every row
//! a flush had written more than a second before the kill; `apical inspect` reads it
//! (docs/traces.md, Crash safety).
//!
//! A few kills by default; `APICAL_CRASH_KILLS=50` for more, `APICAL_CRASH_SEED` to choose
//! the random moments. Needs MNIST (skips without it).

mod common;

use common::{apical, data_dir, s};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Training examples of each run: a few seconds of the default model with every spike.
const EXAMPLES: usize = 1500;

fn train(out: &Path, data: &Path) -> std::process::Command {
    let mut c = apical();
    c.args([
        "train",
        "--epochs",
        "1",
        "--train-examples",
        &EXAMPLES.to_string(),
        "--test-examples",
        "10",
        "--seed",
        "3",
        "--threads",
        "1",
        "--record",
        "spikes",
        "--quiet",
        "--data",
        s(data),
        "--out",
        s(out),
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Per population: (name, timestamps, node ids).
type Spikes = Vec<(String, Vec<f64>, Vec<u64>)>;

fn spikes(path: &Path) -> Spikes {
    let f = hdf5::File::open(path)
        .unwrap_or_else(|e| panic!("{} does not open as it is: {e}", path.display()));
    let Ok(g) = f.group("spikes") else {
        return Vec::new();
    };
    // In the file's population order (input, hidden..., output), as the flush log.
    let order: hdf5::types::VarLenUnicode = f.attr("populations").unwrap().read_scalar().unwrap();
    let names = g.member_names().unwrap();
    order
        .as_str()
        .split(',')
        .filter(|p| names.iter().any(|n| n == p))
        .map(str::to_string)
        .map(|p| {
            let read = |d: &str| {
                g.dataset(&format!("{p}/{d}"))
                    .unwrap_or_else(|e| panic!("{p}/{d}: {e}"))
            };
            let t: Vec<f64> = read("timestamps")
                .read_raw()
                .unwrap_or_else(|e| panic!("{p}/timestamps does not read whole: {e}"));
            let n: Vec<u64> = read("node_ids")
                .read_raw()
                .unwrap_or_else(|e| panic!("{p}/node_ids does not read whole: {e}"));
            (p, t, n)
        })
        .collect()
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Spike rows per population (file order: input, hidden..., output) that the flushes
/// completed before `before` (unix ms) had written, from the recorder's flush log.
fn flushed_before(log: &Path, before: u128) -> Vec<usize> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let t: u128 = it.next().and_then(|v| v.parse().ok()).unwrap_or(u128::MAX);
        if t <= before {
            rows = it.map(|v| v.parse().unwrap_or(0)).collect();
        }
    }
    rows
}

/// A small deterministic generator for the kill moments.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn a_run_killed_at_random_moments_leaves_a_prefix_of_the_uninterrupted_spikes() {
    let Some(data) = data_dir() else {
        return;
    };
    let kills: usize = std::env::var("APICAL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("APICAL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_170_000);
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let t0 = Instant::now();
    let status = train(&reference, &data).status().unwrap();
    assert!(status.success(), "the uninterrupted run failed: {status}");
    let wall = t0.elapsed();
    let full = spikes(&reference.join("traces.h5"));
    assert!(full.iter().all(|(_, t, _)| !t.is_empty()));

    let mut rng = Lcg(seed);
    let (mut rows_checked, mut with_file, mut old_rows_checked) = (0usize, 0usize, 0usize);
    for k in 0..kills {
        let out = tmp.path().join(format!("killed{k}"));
        let log = tmp.path().join(format!("flushes{k}.log"));
        // Anywhere from the start to the end of a run (a few past it: then nothing is lost).
        let delay = Duration::from_secs_f64(wall.as_secs_f64() * 1.05 * rng.unit());
        let mut child = train(&out, &data)
            .env("APICAL_TRACE_FLUSH_LOG", &log)
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let killed_at = unix_ms();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let what = format!("kill {k} after {:.2} s (seed {seed})", delay.as_secs_f64());
        if !out.is_dir() {
            continue; // killed before the run created its directory: nothing written
        }

        let inspect = apical().args(["inspect", s(&out)]).output().unwrap();
        assert!(
            inspect.status.success(),
            "{what}: apical inspect failed: {}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let path = out.join("traces.h5");
        if !path.exists() {
            continue; // killed before the file was laid out: nothing to read, nothing lost
        }
        with_file += 1;
        let got = spikes(&path);
        let old = flushed_before(&log, killed_at.saturating_sub(1000));
        for (i, ((pop, t, n), (rpop, rt, rn))) in got.iter().zip(&full).enumerate() {
            assert_eq!(pop, rpop, "{what}");
            assert_eq!(
                t.len(),
                n.len(),
                "{what}: {pop}: timestamps and node_ids differ"
            );
            assert!(
                t.len() <= rt.len(),
                "{what}: {pop}: more rows than the full run"
            );
            assert!(
                t[..] == rt[..t.len()] && n[..] == rn[..t.len()],
                "{what}: {pop}: the {} rows are not the full run's first rows",
                t.len()
            );
            if let Some(&o) = old.get(i) {
                assert!(
                    t.len() >= o,
                    "{what}: {pop}: {o} rows were flushed a second before the kill, {} survive",
                    t.len()
                );
                old_rows_checked += o;
            }
            rows_checked += t.len();
        }
    }
    eprintln!(
        "{kills} kills, {with_file} left a trace file; {rows_checked} spike rows checked against \
         the uninterrupted run, {old_rows_checked} of them flushed more than a second before their kill"
    );
}
