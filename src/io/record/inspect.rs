//! Reading a trace file back: a text summary for `apical inspect`.

use super::writer::RecordError;
use super::writer::Sorting;
use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{File, Group, Location};
use std::fmt::Write as _;
use std::path::Path;

fn attr_text(loc: &Location, name: &str) -> String {
    let Ok(a) = loc.attr(name) else {
        return "?".into();
    };
    let Ok(td) = a.dtype().and_then(|d| d.to_descriptor()) else {
        return "?".into();
    };
    let scalar = a.ndim() == 0;
    let list = |v: Vec<String>| {
        if scalar {
            v.into_iter().next().unwrap_or_default()
        } else {
            format!("[{}]", v.join(", "))
        }
    };
    match td {
        TypeDescriptor::VarLenUnicode => a
            .read_scalar::<VarLenUnicode>()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "?".into()),
        TypeDescriptor::VarLenAscii => a
            .read_scalar::<hdf5::types::VarLenAscii>()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "?".into()),
        TypeDescriptor::Integer(_) => a
            .read_raw::<i64>()
            .map(|v| list(v.iter().map(|x| x.to_string()).collect()))
            .unwrap_or_else(|_| "?".into()),
        TypeDescriptor::Unsigned(_) => a
            .read_raw::<u64>()
            .map(|v| list(v.iter().map(|x| x.to_string()).collect()))
            .unwrap_or_else(|_| "?".into()),
        TypeDescriptor::Float(_) => a
            .read_raw::<f64>()
            .map(|v| list(v.iter().map(|x| x.to_string()).collect()))
            .unwrap_or_else(|_| "?".into()),
        TypeDescriptor::Boolean => a
            .read_scalar::<bool>()
            .map(|b| b.to_string())
            .unwrap_or_else(|_| "?".into()),
        TypeDescriptor::Enum(et) => match a.read_scalar::<Sorting>() {
            Ok(s) => format!("{s:?} (enum)"),
            Err(_) => format!("<enum of {} members>", et.members.len()),
        },
        other => format!("<{other}>"),
    }
}

fn inspect_group(g: &Group, path: &str, out: &mut String) -> hdf5::Result<()> {
    let mut names = g.member_names()?;
    names.sort();
    for name in names {
        let full = format!("{path}/{name}");
        if let Ok(ds) = g.dataset(&name) {
            let shape = ds.shape();
            let td = ds
                .dtype()
                .and_then(|d| d.to_descriptor())
                .map(|t| t.to_string())
                .unwrap_or_else(|_| "?".into());
            let _ = write!(out, "  {full:<40} {td:<8} {shape:?}");
            for an in ds.attr_names()? {
                let _ = write!(out, "  {an}={}", attr_text(&ds, &an));
            }
            out.push('\n');
        } else if let Ok(sub) = g.group(&name) {
            let _ = write!(out, "  {full}/");
            for an in sub.attr_names()? {
                let _ = write!(out, "  {an}={}", attr_text(&sub, &an));
            }
            out.push('\n');
            inspect_group(&sub, &full, out)?;
        }
    }
    Ok(())
}

/// The signature at the start of an HDF5 file (where apical's files have their superblock).
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Opens a trace file for reading. A path that does not exist, a directory, or a file that
/// is not HDF5 (a run's metrics.csv, say) is an error saying so in words, before HDF5's
/// own messages ("file signature not found") could reach the user.
pub fn open_traces(path: &Path) -> Result<File, RecordError> {
    let not = |problem: &str| RecordError::NotTraces {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not("no such file or directory"),
        _ => not(&format!("cannot read it: {e}")),
    })?;
    if meta.is_dir() {
        return Err(not(if path.join("traces.h5.part").exists() {
            "a directory without traces.h5 (traces.h5.part: the run stopped while laying it out)"
        } else {
            "a directory without traces.h5 (the run recorded none: --record none)"
        }));
    }
    let mut head = [0u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| not(&format!("cannot read it: {e}")))?;
    if read < head.len() || &head != HDF5_SIGNATURE {
        return Err(not(
            "is not a trace file (not HDF5; a run's traces are the traces.h5 of its directory)",
        ));
    }
    File::open(path).map_err(|source| {
        if held_by_a_writer(path) {
            // HDF5's own words here were "unable to lock file, errno = 11".
            return not(
                "is open for writing by a running training (it holds the file's lock until \
                 the run ends); read it once the run has ended or been stopped (Ctrl-C \
                 closes it), or test the run's latest checkpoint meanwhile with `apical eval \
                 RUN_DIR`",
            );
        }
        RecordError::Hdf5 {
            path: path.to_path_buf(),
            what: "cannot open the file".into(),
            source,
        }
    })
}

/// Whether another open file holds a lock on `path` that a reader cannot share: HDF5 (1.10
/// and later) keeps an exclusive `flock` on a file it has open for writing, for as long as
/// the file is open.
#[cfg(unix)]
fn held_by_a_writer(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a file descriptor `f` owns for the whole call; a shared lock taken
    // here is released when `f` is closed at the end of this function.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return false;
    }
    std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

#[cfg(not(unix))]
fn held_by_a_writer(_path: &Path) -> bool {
    false
}

/// A summary of a trace file: root attributes, every group and dataset with its shape, type
/// and units, and the model config.
pub fn inspect(path: &Path) -> Result<String, RecordError> {
    let he = |what: &str| {
        let what = what.to_string();
        let path = path.to_path_buf();
        move |source| RecordError::Hdf5 { path, what, source }
    };
    let f = open_traces(path)?;
    let mut out = format!("{}\n", path.display());
    let mut attrs = f.attr_names().map_err(he("cannot list attributes"))?;
    attrs.sort();
    out.push_str("attributes:\n");
    for a in &attrs {
        if a != "model_toml" {
            let _ = writeln!(out, "  {a} = {}", attr_text(&f, a));
        }
    }
    if attrs.iter().any(|a| a == "stop_reason") && attr_text(&f, "stop_reason") == "running" {
        out.push_str(
            "note: stop_reason is still `running`: the writer stopped without closing the file \
             (killed, or still running); it holds what the last flush wrote \
             (docs/traces.md, Crash safety)\n",
        );
    }
    out.push_str("contents (dataset, type, shape, attributes):\n");
    inspect_group(&f, "", &mut out).map_err(he("cannot read the file's groups"))?;
    if attrs.iter().any(|a| a == "model_toml") {
        if attrs.iter().any(|a| a == "budget_epochs") {
            let _ = writeln!(
                out,
                "budget run: {} epoch(s) of {} training examples, {} test images \
                 (the model config's [training] below is the model file's own)",
                attr_text(&f, "budget_epochs"),
                attr_text(&f, "budget_train_examples"),
                attr_text(&f, "budget_test_examples")
            );
        }
        out.push_str("model config:\n");
        for line in attr_text(&f, "model_toml").lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    Ok(out)
}
