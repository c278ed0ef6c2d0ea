//! A careless or hostile user against the newer commands (issue 25): links planted at every
//! name a command writes (final and temporary names), failed writes that must keep the good
//! file, damaged trace files exported to NWB, damaged sweep points, sizes and thread counts
//! that must be bounded. Each test failed on apical before its fix (docs/testing.md).

mod common;

use apical::io::checkpoint::{epoch_file_name, list_checkpoints};
use common::{apical, data_dir, read_csv, s, small_model_toml, wait_for, write_file};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use tempfile::TempDir;

/// One test at a time: the tests spawn `apical` and open HDF5 files in this process, and a
/// child inherits an open HDF5 file (and its lock) of another test's thread.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What most tests start with: MNIST (`None`, with a message, when absent: the test is
/// skipped), the serial lock and a temporary directory.
fn serial_with_mnist() -> Option<(MutexGuard<'static, ()>, TempDir)> {
    data_dir()?;
    let guard = serial();
    Some((guard, tempfile::tempdir().unwrap()))
}

/// A temporary directory, for tests that run alone (`None` without MNIST).
fn with_mnist() -> Option<TempDir> {
    data_dir().map(|_| tempfile::tempdir().unwrap())
}

/// Owned arguments from string slices.
fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().expect("apical runs");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let (code, log) = run(apical().args(args));
    assert_eq!(code, Some(0), "apical {args:?} failed:\n{log}");
    log
}

/// Every file under `dir` (relative paths), links and directories excluded.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(root, &e.path(), out);
            } else if t.is_file() {
                out.insert(e.path().strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Copies the directory tree `from` to `to` (files and directories).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else if t.is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

const VICTIM: &[u8] = b"someone else's file: never written by apical\n";

/// A file outside every directory apical writes; the links point here.
fn victim(tmp: &Path, tag: &str) -> PathBuf {
    let p = tmp.join(format!("victim-{tag}"));
    fs::write(&p, VICTIM).unwrap();
    p
}

fn assert_untouched(victim: &Path, what: &str, log: &str) {
    assert_eq!(
        fs::read(victim).unwrap(),
        VICTIM,
        "{what}: the link's target was written\n{log}"
    );
}

/// The temporary names a writer might use for `name`: `.NAME.tmp` (apical 0.1) and
/// `NAME.part`.
fn temporary_names(name: &Path) -> Vec<PathBuf> {
    let file = name.file_name().unwrap().to_string_lossy().into_owned();
    [format!(".{file}.tmp"), format!("{file}.part")]
        .into_iter()
        .map(|n| name.with_file_name(n))
        .collect()
}

/// A command of the links test: `prepare` fills a fresh directory (a trained run, a sweep
/// file), `args` runs in it.
struct Case<'a> {
    what: &'a str,
    /// The directory the command writes (relative to the case directory).
    writes: &'a str,
    prepare: &'a dyn Fn(&Path),
    args: &'a dyn Fn(&Path) -> Vec<String>,
}

/// The links test of one command: learns the names it writes from a clean run, then for
/// each name plants a link to a victim there (in a fresh copy) and runs it again: the
/// command fails naming the link or succeeds, and no victim is ever written. Then links at
/// every temporary name at once: the command succeeds and writes no victim.
#[cfg(unix)]
fn links_case(tmp: &Path, case: &Case<'_>) -> usize {
    use std::os::unix::fs::symlink;
    let run_in = |d: &Path| {
        let args = (case.args)(d);
        run(apical().args(&args))
    };
    let clean = tmp.join(format!("{}-clean", case.what));
    fs::create_dir_all(&clean).unwrap();
    (case.prepare)(&clean);
    let root = clean.join(case.writes);
    let before: Vec<(PathBuf, Vec<u8>)> = files_under(&root)
        .into_iter()
        .map(|p| {
            let b = fs::read(root.join(&p)).unwrap();
            (p, b)
        })
        .collect();
    let (code, log) = run_in(&clean);
    assert_eq!(code, Some(0), "{}: {log}", case.what);
    // New files and files whose content changed.
    let written: Vec<PathBuf> = files_under(&root)
        .into_iter()
        .filter(|p| {
            before
                .iter()
                .find(|(q, _)| q == p)
                .is_none_or(|(_, b)| fs::read(root.join(p)).ok().as_ref() != Some(b))
        })
        .collect();
    assert!(!written.is_empty(), "{}: wrote nothing", case.what);
    for (k, name) in written.iter().enumerate() {
        let d = tmp.join(format!("{}-final-{k}", case.what));
        fs::create_dir_all(&d).unwrap();
        (case.prepare)(&d);
        let at = d.join(case.writes).join(name);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&at);
        let v = victim(tmp, &format!("{}-{k}", case.what));
        symlink(&v, &at).unwrap();
        let (code, log) = run_in(&d);
        assert_untouched(
            &v,
            &format!("{}: link at {}", case.what, name.display()),
            &log,
        );
        if code != Some(0) {
            assert_eq!(code, Some(1), "{}: {}: {log}", case.what, name.display());
            // Refused: as a link, or because what the link points to is read and is not
            // what belongs there (a checkpoint, run.json); never written.
            assert!(
                log.contains("error: "),
                "{}: {}: {log}",
                case.what,
                name.display()
            );
            eprintln!(
                "{}: link at {}: {}",
                case.what,
                name.display(),
                log.lines()
                    .find(|l| l.contains("error: "))
                    .unwrap_or_default()
            );
        }
    }
    // Links at every temporary name at once: never written through.
    let d = tmp.join(format!("{}-temporaries", case.what));
    fs::create_dir_all(&d).unwrap();
    (case.prepare)(&d);
    let v = victim(tmp, &format!("{}-tmp", case.what));
    for name in &written {
        for t in temporary_names(name) {
            let at = d.join(case.writes).join(t);
            fs::create_dir_all(at.parent().unwrap()).unwrap();
            symlink(&v, &at).unwrap();
        }
    }
    let (code, log) = run_in(&d);
    assert_untouched(
        &v,
        &format!("{}: links at temporary names", case.what),
        &log,
    );
    assert_eq!(code, Some(0), "{}: {log}", case.what);
    written.len()
}

fn train_args(model: &Path, out: &Path) -> Vec<String> {
    args(&[
        "train",
        s(model),
        "--train-examples",
        "30",
        "--test-examples",
        "50",
        "--epochs",
        "1",
        "--out",
        s(out),
        "--quiet",
    ])
}

fn trained_run(d: &Path) {
    let model = write_file(d, "small.toml", small_model_toml().as_bytes());
    ok(&train_args(&model, &d.join("run")));
}

#[cfg(unix)]
/// A child the tests start keeps no descriptor of the test process but 0-2
/// (`common::command`): HDF5 opens its files without close-on-exec and locks them, and a
/// child holding such a file kept its lock, so another test's next open of it failed.
/// Checked against a plain `Command`, whose child does inherit the descriptor.
#[test]
fn children_of_the_tests_inherit_no_descriptor() {
    // As HDF5 opens a file: without O_CLOEXEC.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2, "open: {}", std::io::Error::last_os_error());
    let probe = format!("if [ -e /proc/self/fd/{fd} ]; then echo open; else echo closed; fi");
    let seen = |mut c: Command| {
        let out = c.arg("-c").arg(&probe).output().expect("sh runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let plain = seen(Command::new("sh"));
    let helper = seen(common::command("sh"));
    unsafe { libc::close(fd) };
    assert_eq!(
        plain, "open",
        "the control: a plain Command's child inherits it"
    );
    assert_eq!(
        helper, "closed",
        "common::command's child must not inherit it"
    );
}

#[test]
fn no_command_writes_through_a_link_at_any_name_it_writes() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let tmp = tmp.path();
    // One trained run, copied into each case that needs it.
    let base = tmp.join("base");
    fs::create_dir_all(&base).unwrap();
    trained_run(&base);
    let with_run = |d: &Path| copy_tree(&base, d);
    let model_only = |d: &Path| {
        write_file(d, "small.toml", small_model_toml().as_bytes());
    };
    let sweep_file = |d: &Path| {
        sweep_of(d, &["0.21", "0.3"]);
    };
    let sweep_cmd = |d: &Path| {
        args(&[
            "sweep",
            s(&d.join("sweep.toml")),
            "--out",
            s(&d.join("sweep")),
        ])
    };
    let swept = |d: &Path| {
        sweep_file(d);
        ok(&sweep_cmd(d));
        // collect writes these again
        for f in ["summary.csv", "summary.md"] {
            let _ = fs::remove_file(d.join("sweep").join(f));
        }
        let _ = fs::remove_dir_all(d.join("sweep/plots"));
    };
    let cases = [
        Case {
            what: "train",
            writes: "run",
            prepare: &model_only,
            args: &|d| train_args(&d.join("small.toml"), &d.join("run")),
        },
        Case {
            what: "plot",
            writes: "run",
            prepare: &with_run,
            args: &|d| args(&["plot", s(&d.join("run")), "--examples", "3"]),
        },
        Case {
            what: "export",
            writes: "run",
            prepare: &with_run,
            args: &|d| args(&["export", "nwb", s(&d.join("run"))]),
        },
        Case {
            what: "export-out",
            writes: "out",
            prepare: &|d| {
                with_run(d);
                fs::create_dir_all(d.join("out")).unwrap();
            },
            args: &|d| {
                args(&[
                    "export",
                    "nwb",
                    s(&d.join("run")),
                    "--out",
                    s(&d.join("out/x.nwb")),
                ])
            },
        },
        Case {
            what: "sweep",
            writes: "sweep",
            prepare: &sweep_file,
            args: &sweep_cmd,
        },
        Case {
            what: "collect",
            writes: "sweep",
            prepare: &swept,
            args: &|d| args(&["sweep", "collect", s(&d.join("sweep"))]),
        },
        Case {
            what: "reproduce",
            writes: "docs",
            prepare: &|_| {},
            args: &|d| {
                args(&[
                    "reproduce",
                    "0h",
                    "--epochs",
                    "1",
                    "--train-examples",
                    "30",
                    "--test-examples",
                    "50",
                    "--plot-examples",
                    "3",
                    "--no-verify",
                    "--out",
                    s(&d.join("runs")),
                    "--results",
                    s(&d.join("docs/results.md")),
                ])
            },
        },
    ];
    for case in &cases {
        let n = links_case(tmp, case);
        eprintln!("{}: {n} names written, each refused as a link", case.what);
    }
}

/// Output directories apical creates (plots/, img/) planted as links to another directory:
/// nothing is written into it.
#[cfg(unix)]
#[test]
fn an_output_directory_that_is_a_link_is_refused() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    use std::os::unix::fs::symlink;
    let tmp = tmp.path();
    trained_run(tmp);
    let elsewhere = tmp.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, tmp.join("run/plots")).unwrap();
    let (code, log) = run(apical().args(["plot", s(&tmp.join("run")), "--examples", "3"]));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("plots is a symbolic link"), "{log}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

// ------------------------------------------------ NWB export of damaged trace files

/// A one-epoch run of the small model recording the hidden layer's spikes of the first
/// three examples; returns its trace file.
fn spiking_run(d: &Path) -> PathBuf {
    let model = write_file(d, "small.toml", small_model_toml().as_bytes());
    let mut args = train_args(&model, &d.join("run"));
    args.extend([
        "--record".into(),
        "spikes:layers=hidden0;examples=first:3".into(),
    ]);
    ok(&args);
    d.join("run/traces.h5")
}

/// A copy of `traces` as `name` beside it, changed by `damage` (the file open read-write).
fn damaged_copy(traces: &Path, name: &str, damage: impl FnOnce(&hdf5::File)) -> PathBuf {
    let p = traces.with_file_name(name);
    fs::copy(traces, &p).unwrap();
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        damage(&f);
        f.close().unwrap();
    }
    p
}

fn export_err(traces: &Path, out: &Path) -> String {
    match apical::io::nwb::export(traces, out) {
        Ok(s) => panic!("exported {s:?} from the damaged {}", traces.display()),
        Err(e) => e.to_string(),
    }
}

/// The names in `dir` (temporary files included).
fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_failed_export_keeps_the_good_nwb_file_and_leaves_no_partial_one() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let traces = spiking_run(tmp.path());
    let out_dir = tmp.path().join("nwb");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("run.nwb");
    let s = apical::io::nwb::export(&traces, &out).unwrap();
    assert!(s.spikes > 0, "{s:?}");
    let good = fs::read(&out).unwrap();
    // A trace file whose spike columns disagree fails half-way through the export.
    let bad = damaged_copy(&traces, "short.h5", |f| {
        let ids = f.dataset("spikes/hidden0/node_ids").unwrap();
        let n = ids.shape()[0];
        ids.resize(n - 1).unwrap();
    });
    export_err(&bad, &out);
    assert_eq!(
        fs::read(&out).unwrap(),
        good,
        "the good export was replaced"
    );
    assert_eq!(names_in(&out_dir), BTreeSet::from(["run.nwb".to_string()]));
    // A failed export to a new name leaves nothing behind.
    export_err(&bad, &out_dir.join("new.nwb"));
    assert_eq!(names_in(&out_dir), BTreeSet::from(["run.nwb".to_string()]));
}

/// A change made to a copy of a trace file.
type Damage = Box<dyn FnOnce(&hdf5::File)>;

#[test]
fn a_damaged_trace_file_is_refused_naming_the_dataset_at_fault() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let traces = spiking_run(tmp.path());
    let out = tmp.path().join("x.nwb");
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "short.h5",
            Box::new(|f| {
                let ids = f.dataset("spikes/hidden0/node_ids").unwrap();
                let n = ids.shape()[0];
                ids.resize(n - 1).unwrap();
            }),
            "/spikes/hidden0/node_ids has",
        ),
        (
            "id.h5",
            Box::new(|f| {
                let ids = f.dataset("spikes/hidden0/node_ids").unwrap();
                ids.write_slice(&[1000u64], 0..1).unwrap();
            }),
            "/spikes/hidden0/node_ids row 0: node id 1000 outside the population of 20 neurons",
        ),
        (
            "nan.h5",
            Box::new(|f| {
                let ts = f.dataset("spikes/hidden0/timestamps").unwrap();
                ts.write_slice(&[f64::NAN], 0..1).unwrap();
            }),
            "/spikes/hidden0/timestamps row 0: time NaN",
        ),
        (
            "dt.h5",
            Box::new(|f| f.attr("dt").unwrap().write_scalar(&0.0f64).unwrap()),
            "root attribute dt is 0",
        ),
        (
            "sizes.h5",
            Box::new(|f| {
                let a = f.attr("population_sizes").unwrap();
                let mut v: Vec<u64> = a.read_raw().unwrap();
                v[1] = 1 << 40;
                a.write_raw(&v).unwrap();
            }),
            "root attribute population_sizes:",
        ),
    ];
    for (name, damage, expected) in cases {
        let bad = damaged_copy(&traces, name, damage);
        let e = export_err(&bad, &out);
        assert!(
            e.contains(&bad.display().to_string()) && e.contains(expected),
            "{name}: {e}"
        );
        assert!(!e.contains("cannot write the NWB file"), "{name}: {e}");
        assert!(!out.exists(), "{name}: a partial file");
    }
    // Through the command line: exit 1 and the message, no panic or abort.
    let bad = traces.with_file_name("sizes.h5");
    let (code, log) = run(apical().args(["export", "nwb", s(&bad), "--out", s(&out)]));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("population_sizes"), "{log}");
}

// ------------------------------------------------------------------ sweeps

fn sweep_of(d: &Path, etas: &[&str]) -> PathBuf {
    fs::create_dir_all(d).unwrap();
    write_file(d, "small.toml", small_model_toml().as_bytes());
    let text = format!(
        "model = \"small.toml\"\n[training]\nepochs = 1\ntrain_examples = 30\ntest_examples = 50\n\
         [axes]\n\"learning.eta\" = [{}]\n",
        etas.iter()
            .map(|e| format!("[{e}, {e}]"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    write_file(d, "sweep.toml", text.as_bytes())
}

/// [`sweep_of`] in `d`, run into `d/sweep`: (the sweep file, the sweep directory, the
/// points' names in the sweep's order).
fn run_sweep(d: &Path, etas: &[&str]) -> (PathBuf, PathBuf, Vec<String>) {
    let sweep = sweep_of(d, etas);
    let out = d.join("sweep");
    ok(&["sweep", s(&sweep), "--out", s(&out)]);
    let points = summary_rows(&out).into_iter().map(|r| r.0).collect();
    (sweep, out, points)
}

/// (point, status, final_test_error) of each row of summary.csv.
fn summary_rows(dir: &Path) -> Vec<(String, String, String)> {
    let (header, rows) = read_csv(&dir.join("summary.csv"));
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    rows.into_iter()
        .map(|f| {
            (
                f[0].clone(),
                f[col("status")].clone(),
                f[col("final_test_error")].clone(),
            )
        })
        .collect()
}

#[test]
fn a_point_whose_metrics_were_lost_becomes_done_on_the_next_run() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let (sweep, out, points) = run_sweep(tmp.path(), &["0.21", "0.3"]);
    assert_eq!(points.len(), 2);
    let before = summary_rows(&out);
    // One point loses its metrics.json, the other's is damaged.
    fs::remove_file(out.join(&points[0]).join("metrics.json")).unwrap();
    fs::write(out.join(&points[1]).join("metrics.json"), b"[{\"epoch\": ").unwrap();
    ok(&["sweep", s(&sweep), "--out", s(&out)]);
    let status = ok(&["sweep", "status", s(&out)]);
    assert!(status.contains("2 point(s): 2 done"), "{status}");
    // The test errors are the checkpoints' (restored from their history), as before.
    assert_eq!(summary_rows(&out), before);
    // A second rerun trains nothing.
    let log = ok(&["sweep", s(&sweep), "--out", s(&out)]);
    assert!(log.contains("0 trained, 2 already done"), "{log}");
}

#[test]
fn a_damaged_point_is_reported_and_the_others_are_listed_and_collected() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let (_, out, points) = run_sweep(tmp.path(), &["0.21", "0.3", "0.4"]);
    let good = summary_rows(&out)[2].clone();
    fs::write(out.join(&points[0]).join("run.json"), b"{ not json").unwrap();
    let model = out.join(&points[1]).join("model.toml");
    let mut text = fs::read_to_string(&model).unwrap();
    text.push_str("# edited by hand\n");
    fs::write(&model, text).unwrap();
    let status = ok(&["sweep", "status", s(&out)]);
    assert!(
        status.contains("3 point(s): 1 done") && status.contains("2 damaged"),
        "{status}"
    );
    let line = |p: &str| status.lines().find(|l| l.contains(p)).unwrap().to_string();
    let l0 = line(&points[0]);
    assert!(l0.starts_with("damaged") && l0.contains("run.json"), "{l0}");
    assert!(
        !l0.contains("other settings"),
        "corrupt JSON is not other settings: {l0}"
    );
    let l1 = line(&points[1]);
    assert!(
        l1.starts_with("damaged") && l1.contains("model.toml"),
        "{l1}"
    );
    assert!(line(&points[2]).starts_with("done"));
    ok(&["sweep", "collect", s(&out)]);
    let rows = summary_rows(&out);
    assert_eq!(rows[0].1, "damaged");
    assert_eq!(rows[1].1, "damaged");
    assert_eq!(rows[2], good);
}

// ------------------------------------------------------- memory, threads, sizes

#[cfg(target_os = "linux")]
#[test]
fn weight_snapshots_count_in_the_memory_check() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    // apical 0.1 passed this model and aborted (exit 134) allocating its first epoch-end
    // weight snapshot.
    let (code, log) = run(common::command("sh").arg("-c").arg(format!(
        "ulimit -v 4000000; exec '{}' train --set 'network.hidden=[265000]' --epochs 1 \
         --train-examples 1 --test-examples 1 --out '{}'",
        env!("CARGO_BIN_EXE_apical"),
        s(&tmp.path().join("X"))
    )));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("needs about") && log.contains("ulimit -v"),
        "{log}"
    );
}

#[test]
fn thread_counts_are_capped_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in [
        vec!["eval", s(tmp.path()), "--threads", "100000"],
        vec!["train", "--threads", "100000", "--out", s(tmp.path())],
    ] {
        let (code, log) = run(apical().args(&cmd));
        assert_eq!(code, Some(1), "{cmd:?}: {log}");
        assert!(log.contains("--threads 100000 is more than"), "{log}");
    }
}

#[cfg(unix)]
#[test]
fn model_and_sweep_files_are_read_with_a_bound() {
    if !Path::new("/dev/zero").exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sweep = write_file(tmp.path(), "zero.toml", b"model = \"/dev/zero\"\n");
    for cmd in [
        vec!["train", "/dev/zero", "--out", s(&tmp.path().join("a"))],
        vec!["sweep", "/dev/zero", "--out", s(&tmp.path().join("b"))],
        vec!["sweep", s(&sweep), "--out", s(&tmp.path().join("c"))],
    ] {
        let (code, log) = run(apical().args(&cmd).stdin(std::process::Stdio::null()));
        assert_eq!(code, Some(1), "{cmd:?}: {log}");
        assert!(log.contains("longer than 4194304 bytes"), "{cmd:?}: {log}");
    }
}

#[test]
fn a_slurm_sweep_checks_every_point_before_anything_is_written() {
    let Some(tmp) = with_mnist() else {
        return;
    };
    write_file(tmp.path(), "small.toml", small_model_toml().as_bytes());
    for (training, expected) in [
        (
            "train_examples = 999999\ntest_examples = 50",
            "999999 is more than the 60000 training images",
        ),
        (
            "train_examples = 30\ntest_examples = 50\nrecord = \"garbage\"",
            "[training] record:",
        ),
    ] {
        let sweep = write_file(
            tmp.path(),
            "sweep.toml",
            format!(
                "model = \"small.toml\"\n[training]\nepochs = 1\n{training}\n[axes]\nseed = [0, 1]\n"
            )
            .as_bytes(),
        );
        let out = tmp.path().join("out");
        let (code, log) = run(apical().args(["sweep", s(&sweep), "--out", s(&out), "--slurm"]));
        assert_eq!(code, Some(1), "{log}");
        assert!(
            log.contains(expected) && log.contains("point seed=0"),
            "{log}"
        );
        assert!(!out.exists(), "written before the check: {}", out.display());
    }
}

#[test]
fn another_sweep_file_into_an_existing_sweep_directory_is_refused() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let (_, out, _) = run_sweep(tmp.path(), &["0.21", "0.3"]);
    let saved = fs::read(out.join("sweep.toml")).unwrap();
    let summary = fs::read(out.join("summary.csv")).unwrap();
    let other = sweep_of(&tmp.path().join("other"), &["0.4"]);
    let (code, log) = run(apical().args(["sweep", s(&other), "--out", s(&out)]));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("holds another sweep: 2 of its point(s) are not in this sweep file"),
        "{log}"
    );
    assert_eq!(fs::read(out.join("sweep.toml")).unwrap(), saved);
    assert_eq!(fs::read(out.join("summary.csv")).unwrap(), summary);
    // The same sweep with one more point keeps the saved ones: allowed.
    let more = sweep_of(&tmp.path().join("more"), &["0.21", "0.3", "0.4"]);
    let log = ok(&["sweep", s(&more), "--out", s(&out)]);
    assert!(log.contains("1 trained, 2 already done"), "{log}");
}

#[test]
fn slurm_hints_are_shell_quoted_and_extra_tasks_are_named() {
    let Some(tmp) = with_mnist() else {
        return;
    };
    // Parentheses need quoting in a shell (spaces cannot go into #SBATCH lines at all).
    let d = tmp.path().join("sweeps(1)");
    let sweep = sweep_of(&d, &["0.21", "0.3"]);
    let out = d.join("out");
    let log = ok(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&out),
        "--slurm",
        "--tasks",
        "99",
    ]);
    assert!(
        log.contains("--tasks 99 is more than the 2 point(s): 2 array task(s)"),
        "{log}"
    );
    let script = out.join("sweep.sbatch");
    assert!(
        log.contains(&format!("submit with: sbatch '{}'", script.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!("sweep collect '{}'", out.display())),
        "{log}"
    );
}

// ------------------------------------------- Slurm copy, final checkpoints, running runs

/// The Slurm tasks run the sweep kept in the sweep directory (DIR/sweep.toml, which holds
/// the command's budget flags), not the sweep file given, which may change or go away once
/// the script is written (apical 0.1 ran the file given, without the flags' values).
#[test]
fn the_slurm_tasks_run_the_sweep_kept_in_its_directory() {
    let Some(tmp) = with_mnist() else {
        return;
    };
    let sweep = sweep_of(tmp.path(), &["0.21", "0.3"]);
    let out = tmp.path().join("out");
    ok(&[
        "sweep",
        s(&sweep),
        "--out",
        s(&out),
        "--slurm",
        "--test-examples",
        "40",
    ]);
    let script = out.join("sweep.sbatch");
    let text = fs::read_to_string(&script).unwrap();
    let kept = fs::canonicalize(&out).unwrap().join("sweep.toml");
    let exec = text.lines().last().unwrap();
    assert!(
        exec.contains(&format!(" sweep {} --out ", kept.display())),
        "{exec}"
    );
    // The sweep file given is gone: the task runs all the same, with the flags' budget.
    fs::write(&sweep, b"not a sweep any more").unwrap();
    let (code, log) = run(common::command("bash")
        .arg(&script)
        .env("SLURM_ARRAY_TASK_ID", "0")
        .current_dir(tmp.path()));
    assert_eq!(code, Some(0), "{log}");
    let status = ok(&["sweep", "status", s(&out)]);
    assert!(status.contains("2 point(s): 1 done"), "{status}");
    let done = status
        .lines()
        .find_map(|l| l.strip_prefix("done"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join(done).join("run.json")).unwrap()).unwrap();
    assert_eq!(info["test_examples"], 40, "{info}");
}

/// A point whose final checkpoint is cut short or damaged is not done: `sweep status` and
/// `collect` report it as damaged naming the file, and a rerun reports it as failed and
/// skips the others (apical 0.1 said "done" from the file's name).
#[test]
fn a_truncated_or_damaged_final_checkpoint_is_named_not_done() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let (sweep, out, points) = run_sweep(tmp.path(), &["0.21", "0.3", "0.4"]);
    let final_checkpoint = |p: &str| out.join(p).join(epoch_file_name(1));
    let (cut, flipped) = (final_checkpoint(&points[0]), final_checkpoint(&points[1]));
    let bytes = fs::read(&cut).unwrap();
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut bytes = fs::read(&flipped).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&flipped, &bytes).unwrap();
    let status = ok(&["sweep", "status", s(&out)]);
    assert!(
        status.contains("3 point(s): 1 done") && status.contains("2 damaged"),
        "{status}"
    );
    let line = |p: &str| status.lines().find(|l| l.contains(p)).unwrap().to_string();
    for (p, file, problem) in [
        (&points[0], &cut, "is truncated"),
        (&points[1], &flipped, "payload checksum mismatch"),
    ] {
        let l = line(p);
        assert!(
            l.starts_with("damaged")
                && l.contains(&file.display().to_string())
                && l.contains(problem),
            "{l}"
        );
    }
    // A rerun trains nothing, names the two as failed (exit 1) and collects the others.
    let (code, log) = run(apical().args(["sweep", s(&sweep), "--out", s(&out)]));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("0 trained, 1 already done") && log.contains("2 point(s) failed"),
        "{log}"
    );
    let rows = summary_rows(&out);
    assert_eq!(
        rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["damaged", "damaged", "done"]
    );
}

/// A training of the small model that records for a long time (60,000 examples in its
/// first epoch), started in `dir/run`; returned once its trace file is laid out and open
/// for writing, long before its first checkpoint.
fn recording_training(dir: &Path) -> std::process::Child {
    let model = write_file(dir, "small.toml", small_model_toml().as_bytes());
    let run_dir = dir.join("run");
    let mut child = apical()
        .args([
            "train",
            s(&model),
            "--epochs",
            "1",
            "--train-examples",
            "60000",
            "--test-examples",
            "50",
            "--record",
            "spikes",
            "--out",
            s(&run_dir),
            "--quiet",
        ])
        // HDF5's file locking as it is by default, whatever this environment says.
        .env_remove("HDF5_USE_FILE_LOCKING")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        &run_dir.join("traces.h5"),
        &mut child,
        std::time::Duration::from_secs(120),
    );
    child
}

/// `apical inspect` on a training that is still running names the trace file and says
/// why it cannot be read now (apical 0.1 passed on HDF5's "unable to lock file, errno =
/// 11").
#[test]
fn inspect_of_a_training_still_running_says_so() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let mut child = recording_training(tmp.path());
    let run_dir = tmp.path().join("run");
    let (code, log) = run(apical()
        .args(["inspect", s(&run_dir)])
        .env_remove("HDF5_USE_FILE_LOCKING"));
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        running,
        "the training ended before inspect ran: nothing tested"
    );
    assert_eq!(code, Some(1), "{log}");
    let traces = run_dir.join("traces.h5");
    assert!(
        log.contains(&format!(
            "{}: is open for writing by a running training",
            traces.display()
        )) && log.contains("apical eval"),
        "{log}"
    );
    assert!(!log.contains("errno"), "HDF5's words: {log}");
}

/// A run killed before its first checkpoint leaves a partial trace file; the next
/// training into that directory keeps it under another name and says so (apical 0.1
/// replaced it without a word).
#[test]
fn a_killed_runs_traces_are_kept_by_the_next_training_of_its_directory() {
    let Some((_g, tmp)) = serial_with_mnist() else {
        return;
    };
    let mut child = recording_training(tmp.path());
    // A flush or two of spikes into the file.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let run_dir = tmp.path().join("run");
    assert!(
        list_checkpoints(&run_dir).unwrap().is_empty(),
        "killed after a checkpoint: nothing to test"
    );
    let earlier = fs::read(run_dir.join("traces.h5")).unwrap();
    let mut again = train_args(&tmp.path().join("small.toml"), &run_dir);
    again.extend(args(&["--record", "spikes"]));
    let log = ok(&again);
    let kept = run_dir.join("traces-earlier-1.h5");
    assert!(
        log.contains("kept the traces of an earlier attempt at this run")
            && log.contains(&kept.display().to_string()),
        "{log}"
    );
    assert_eq!(fs::read(&kept).unwrap(), earlier, "the kept file changed");
    let now = ok(&["inspect", s(&run_dir)]);
    assert!(now.contains("stop_reason = completed"), "{now}");
}

/// The evaluation that Ctrl-C can stop (the Python package's `evaluate`) tests its images
/// in chunks and reads the stop flag between them: its errors and confusion counts are
/// those of one `Network::evaluate` call over all the images per repeat, as before; once
/// the flag is raised it returns nothing.
#[test]
fn a_stoppable_evaluation_equals_one_call_per_repeat() {
    use apical::base::rng::Key;
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(data) = common::mnist() else {
        return;
    };
    let cfg = apical::ModelConfig::from_toml_str(&small_model_toml(), "small.toml").unwrap();
    let net = apical::Network::new(cfg, 4);
    let (seed, epochs, n, repeats) = (7, 1, 3000, 2);
    let stop = AtomicBool::new(false);
    let ev = apical::run::metrics::evaluate_repeats_until(
        &net, &data.test, seed, epochs, n, repeats, &stop,
    )
    .unwrap();
    assert_eq!(ev.indices.len(), n);
    let mut confusion = vec![vec![0u64; 10]; 10];
    for r in 0..repeats {
        let key = match r {
            0 => Key::Eval {
                epochs_done: epochs,
            },
            r => Key::EvalRepeat {
                epochs_done: epochs,
                repeat: r,
            },
        }
        .value();
        let preds = net.evaluate(seed, key, &ev.indices, |i| data.test.image(i));
        let mut wrong = 0;
        for (&i, &p) in ev.indices.iter().zip(&preds) {
            let label = data.test.label(i);
            wrong += usize::from(label != p);
            confusion[label as usize][p as usize] += 1;
        }
        assert_eq!(ev.errors[r], 100.0 * wrong as f64 / n as f64, "repeat {r}");
    }
    assert_eq!(ev.confusion, confusion);
    stop.store(true, Ordering::SeqCst);
    assert!(apical::run::metrics::evaluate_repeats_until(
        &net, &data.test, seed, epochs, n, repeats, &stop
    )
    .is_none());
}
