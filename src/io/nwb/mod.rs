//! Export of a run's trace file to NWB 2.x (Neurodata Without Borders), written directly
//! with the `hdf5` crate: `apical export nwb RUN_DIR [--out FILE.nwb]`.
//!
//! | trace file                      | NWB file |
//! |---------------------------------|----------|
//! | `/spikes/<pop>`                 | `/units`: one row per neuron of every recorded population, `spike_times` in seconds (ragged), columns `population`, `layer`, `node_id`, `obs_intervals`, and `spike_bursts` (ragged like `spike_times`) when the trace file flags bursts |
//! | `/examples`                     | `/intervals/trials`: start, stop, epoch, example, image, label, prediction, phase lengths |
//! | `/epochs`                       | `/intervals/epochs`: one row per finished epoch, training and test error |
//! | `/report/<pop>`, `/rates/<pop>` | `/acquisition/<soma|basal|apical|rate>_<pop>` TimeSeries |
//! | `/weights`                      | `/processing/weights/snapshots` DynamicTable |
//! | root attributes                 | `/general` (model TOML and seed in `notes`, the record spec in `data_collection`), `/general/subject` |
//!
//! The file caches the NWB core, hdmf-common and hdmf-experimental namespaces as the pinned
//! pynwb writes them ([`h5::SPECS`]). The layout is docs/traces.md, NWB export.

pub mod h5;

use crate::io::atomic::PendingFile;
use h5::{attr, attr_ref, attr_str, data, text, typed, Ids, Table, NWB_VERSION, SPECS};
use hdf5::types::VarLenUnicode;
use hdf5::{File, Group};
use std::path::{Path, PathBuf};

/// What went wrong exporting a trace file.
#[derive(Debug, thiserror::Error)]
pub enum NwbError {
    #[error("{path}: {what}: {source}")]
    Hdf5 {
        path: PathBuf,
        what: String,
        source: hdf5::Error,
    },
    #[error("{path}: {what}")]
    Layout { path: PathBuf, what: String },
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rows of `/units` (neurons of the recorded spike populations).
    pub units: usize,
    /// Spikes in `/units/spike_times`.
    pub spikes: u64,
    /// Rows of `/intervals/trials`.
    pub trials: usize,
    /// TimeSeries in `/acquisition`.
    pub series: usize,
    /// Weight snapshots in `/processing/weights/snapshots`.
    pub snapshots: usize,
}

/// Prefix of an error that is the trace file's fault (a damaged dataset), found while the
/// NWB file is being written: reported naming the trace file and the dataset, never as a
/// failure to write.
const SOURCE_FAULT: &str = "\u{1}trace file: ";

/// An error naming the trace file's dataset `what` (see [`SOURCE_FAULT`]).
fn damaged(what: impl std::fmt::Display) -> hdf5::Error {
    hdf5::Error::from(format!("{SOURCE_FAULT}{what}"))
}

/// The most neurons a trace file may declare, all populations together: far above any
/// network apical trains, far below sizes whose per-neuron buffers cannot be allocated
/// (16 million neurons: a few hundred MB of export buffers).
const MAX_NEURONS: u64 = 1 << 24;

/// Spikes grouped by neuron are gathered in passes over the trace file of at most this
/// many spikes each (memory: 8 bytes per spike of a pass).
const GATHER_SPIKES: usize = 8 << 20;
/// Rows read from the trace file at a time.
const READ_ROWS: usize = 1 << 20;

/// Writes `out` (NWB) from the trace file `traces`.
pub fn export(traces: &Path, out: &Path) -> Result<ExportSummary, NwbError> {
    export_in_passes(traces, out, GATHER_SPIKES)
}

/// [`export`], gathering spike trains in passes of at most `pass_spikes` spikes (a test
/// drives many passes with a small number).
#[doc(hidden)]
pub fn export_in_passes(
    traces: &Path,
    out: &Path,
    pass_spikes: usize,
) -> Result<ExportSummary, NwbError> {
    let src = File::open(traces).map_err(|source| NwbError::Hdf5 {
        path: traces.to_path_buf(),
        what: "cannot open the trace file".into(),
        source,
    })?;
    let he = |what: &str| {
        let what = what.to_string();
        let path = out.to_path_buf();
        move |source| NwbError::Hdf5 { path, what, source }
    };
    let meta = Meta::read(&src).map_err(|what| NwbError::Layout {
        path: traces.to_path_buf(),
        what,
    })?;
    // Written under a temporary name created exclusively (never through a link) and
    // renamed over `out` when complete: a failed export leaves no partial file and keeps
    // an earlier good one.
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| NwbError::Layout {
            path: out.to_path_buf(),
            what: format!("{what}: {e}"),
        }
    };
    let pending = PendingFile::create(out).map_err(io("cannot create the NWB file"))?;
    let f = File::with_options()
        .with_fapl(|p| p.libver_v18())
        .create(pending.temporary())
        .map_err(he("cannot create the NWB file"))?;
    let stamp = std::fs::metadata(traces)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ids = Ids::new(format!(
        "{}|{}|{}|{}",
        traces.display(),
        stamp.as_nanos(),
        now.as_nanos(),
        std::process::id()
    ));
    let summary = write(
        &src,
        &f,
        &meta,
        &ids,
        stamp.as_secs(),
        now.as_secs(),
        pass_spikes,
    )
    .map_err(|e| match e.to_string().strip_prefix(SOURCE_FAULT) {
        Some(what) => NwbError::Layout {
            path: traces.to_path_buf(),
            what: what.to_string(),
        },
        None => he("cannot write the NWB file")(e),
    })?;
    f.close().map_err(he("cannot close the NWB file"))?;
    pending
        .commit()
        .map_err(io("cannot rename the finished NWB file to its name"))?;
    Ok(summary)
}

/// The root attributes of a trace file that the export uses.
struct Meta {
    model_name: String,
    model_toml: String,
    spec: String,
    version: String,
    seed: u64,
    dt: f64,
    populations: Vec<String>,
    sizes: Vec<u64>,
    start_ms: f64,
    end_ms: f64,
    complete: bool,
    stop_reason: String,
    /// The data set and its content digest (`None`: MNIST, not recorded).
    dataset: Option<(String, String)>,
    /// The budget run: epochs, training examples per epoch, test images (`None`: a trace
    /// file written before apical recorded it).
    budget: Option<[u64; 3]>,
}

fn read_str(f: &File, name: &str) -> Result<String, String> {
    f.attr(name)
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|s| s.as_str().to_string())
        .map_err(|e| format!("root attribute {name}: {e}"))
}

fn read_num<T: hdf5::H5Type>(f: &File, name: &str) -> Result<T, String> {
    f.attr(name)
        .and_then(|a| a.read_scalar::<T>())
        .map_err(|e| format!("root attribute {name}: {e}"))
}

impl Meta {
    fn read(f: &File) -> Result<Self, String> {
        if read_str(f, "format")? != "apical-traces" {
            return Err("not an apical trace file (root attribute format)".into());
        }
        let populations: Vec<String> = read_str(f, "populations")?
            .split(',')
            .map(str::to_string)
            .collect();
        let sizes: Vec<u64> = f
            .attr("population_sizes")
            .and_then(|a| a.read_raw())
            .map_err(|e| format!("root attribute population_sizes: {e}"))?;
        if sizes.len() != populations.len() {
            return Err(format!(
                "{} populations but {} population sizes",
                populations.len(),
                sizes.len()
            ));
        }
        let total = sizes.iter().fold(0u64, |a, &n| a.saturating_add(n));
        if let Some((p, n)) = populations.iter().zip(&sizes).find(|(_, &n)| n == 0) {
            return Err(format!(
                "root attribute population_sizes: population {p} has {n} neurons"
            ));
        }
        if total > MAX_NEURONS {
            return Err(format!(
                "root attribute population_sizes: {total} neurons in all (at most {MAX_NEURONS})"
            ));
        }
        let dt: f64 = read_num(f, "dt")?;
        if !(dt.is_finite() && dt > 0.0) {
            return Err(format!(
                "root attribute dt is {dt}: the time step must be a positive number of ms"
            ));
        }
        let (start_ms, end_ms): (f64, f64) = (read_num(f, "start_time")?, read_num(f, "end_time")?);
        if !(start_ms.is_finite() && end_ms.is_finite() && start_ms <= end_ms) {
            return Err(format!(
                "root attributes start_time {start_ms} and end_time {end_ms}: not a time interval"
            ));
        }
        Ok(Meta {
            model_name: read_str(f, "model_name")?,
            model_toml: read_str(f, "model_toml")?,
            spec: read_str(f, "record_spec")?,
            version: read_str(f, "apical_version")?,
            seed: read_num(f, "seed")?,
            dt,
            populations,
            sizes,
            start_ms,
            end_ms,
            complete: read_num(f, "complete")?,
            stop_reason: read_str(f, "stop_reason")?,
            dataset: match (read_str(f, "dataset"), read_str(f, "dataset_sha256")) {
                (Ok(n), Ok(h)) => Some((n, h)),
                _ => None,
            },
            budget: match (
                read_num(f, "budget_epochs"),
                read_num(f, "budget_train_examples"),
                read_num(f, "budget_test_examples"),
            ) {
                (Ok(e), Ok(n), Ok(t)) => Some([e, n, t]),
                _ => None,
            },
        })
    }
}

/// ISO 8601 (UTC) of seconds since the Unix epoch.
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn write(
    src: &File,
    f: &File,
    meta: &Meta,
    ids: &Ids,
    start_secs: u64,
    now_secs: u64,
    pass_spikes: usize,
) -> hdf5::Result<ExportSummary> {
    // The NWBFile root.
    attr_str(f, "namespace", "core")?;
    attr_str(f, "neurodata_type", "NWBFile")?;
    attr_str(f, "nwb_version", NWB_VERSION)?;
    attr_str(f, "object_id", &ids.uuid("/"))?;
    let session = iso8601(start_secs);
    h5::ascii_list(f, "file_create_date", &[&iso8601(now_secs)])?;
    text(
        f,
        "identifier",
        &ids.uuid(&format!("identifier {}", meta.seed)),
    )?;
    text(
        f,
        "session_description",
        &format!(
            "apical training run of model {} (seed {}), exported from its trace file",
            meta.model_name, meta.seed
        ),
    )?;
    h5::ascii(f, "session_start_time", &session)?;
    h5::ascii(f, "timestamps_reference_time", &session)?;
    for g in ["acquisition", "analysis", "processing"] {
        f.create_group(g)?;
    }
    let stim = f.create_group("stimulus")?;
    stim.create_group("presentation")?;
    stim.create_group("templates")?;
    write_general(f, meta, ids)?;

    let intervals = f.create_group("intervals")?;
    let trials = write_trials(src, f, &intervals, meta, ids)?;
    write_epochs(src, f, &intervals, meta, ids)?;
    let (units, spikes) = write_units(src, f, meta, ids, pass_spikes)?;
    let series = write_series(src, f, meta, ids)?;
    let snapshots = write_weights(src, f, meta, ids)?;

    // The cached specifications, and the root's pointer to them.
    let specs = f.create_group("specifications")?;
    for (ns, version, name, json) in SPECS {
        let g = match specs.group(ns) {
            Ok(g) => g,
            Err(_) => specs.create_group(ns)?,
        };
        let v = match g.group(version) {
            Ok(v) => v,
            Err(_) => g.create_group(version)?,
        };
        text(&v, name, json)?;
    }
    attr_ref(f, ".specloc", f, "/specifications")?;
    Ok(ExportSummary {
        units,
        spikes,
        trials,
        series,
        snapshots,
    })
}

fn write_general(f: &File, meta: &Meta, ids: &Ids) -> hdf5::Result<()> {
    let g = f.create_group("general")?;
    text(
        &g,
        "notes",
        &format!(
            "seed = {}\ndt = {} ms\ncomplete = {} ({})\n{}{}model file as run (TOML):\n{}",
            meta.seed,
            meta.dt,
            meta.complete,
            meta.stop_reason,
            // MNIST runs (no dataset attribute) export as before.
            meta.dataset
                .as_ref()
                .map_or(String::new(), |(n, h)| format!(
                    "data set = {n} (content SHA-256 {h})\n"
                )),
            // Trace files from before the budget attributes export as before.
            meta.budget.map_or(String::new(), |[e, n, t]| format!(
                "budget run = {e} epoch(s) of {n} training examples, {t} test images \
                 (the model's [training] section below is the model file's own)\n"
            )),
            meta.model_toml
        ),
    )?;
    text(
        &g,
        "experiment_description",
        &format!(
            "Simulated training of the spiking segregated-dendrite network {} (Guerguiev, \
             Lillicrap & Richards, eLife 2017) by apical {}",
            meta.model_name, meta.version
        ),
    )?;
    text(
        &g,
        "data_collection",
        &format!("apical record spec: {}", meta.spec),
    )?;
    text(&g, "institution", "not applicable (simulation)")?;
    let s = g.create_group("subject")?;
    typed(&s, ids, "core", "Subject")?;
    text(
        &s,
        "subject_id",
        &format!("{}-seed{}", meta.model_name, meta.seed),
    )?;
    text(&s, "species", "in silico")?;
    text(&s, "sex", "U")?;
    let age = text(&s, "age", "P0D")?;
    attr_str(&age, "reference", "birth")?;
    text(
        &s,
        "description",
        &format!(
            "simulated network {} (a model, not an animal)",
            meta.model_name
        ),
    )?;
    Ok(())
}

/// Dataset `name` of the trace file's group `g`, whole; a failure names the dataset.
fn read_all<T: hdf5::H5Type>(g: &Group, name: &str) -> hdf5::Result<Vec<T>> {
    g.dataset(name)
        .and_then(|d| d.read_raw())
        .map_err(|e| damaged(format!("{}/{name}: cannot read it: {e}", g.name())))
}

fn write_trials(
    src: &File,
    f: &File,
    intervals: &Group,
    meta: &Meta,
    ids: &Ids,
) -> hdf5::Result<usize> {
    let Ok(e) = src.group("examples") else {
        return Ok(0);
    };
    let start: Vec<f64> = read_all(&e, "start_time")?;
    let fw: Vec<u32> = read_all(&e, "forward_steps")?;
    let tg: Vec<u32> = read_all(&e, "target_steps")?;
    // A file cut short can have columns of unequal length: keep the rows all have.
    let cols: [Vec<u32>; 3] = [
        read_all(&e, "epoch")?,
        read_all(&e, "example")?,
        read_all(&e, "image")?,
    ];
    let label: Vec<u8> = read_all(&e, "label")?;
    let pred: Vec<u8> = read_all(&e, "prediction")?;
    let n = [start.len(), fw.len(), tg.len(), label.len(), pred.len()]
        .into_iter()
        .chain(cols.iter().map(Vec::len))
        .min()
        .unwrap_or(0);
    let start_s: Vec<f64> = start[..n].iter().map(|t| t / 1000.0).collect();
    let stop_s: Vec<f64> = (0..n)
        .map(|i| (start[i] + f64::from(fw[i] + tg[i]) * meta.dt) / 1000.0)
        .collect();
    let mut t = Table::new(
        intervals,
        "trials",
        ids,
        "core",
        "TimeIntervals",
        "training examples: forward phase, then target phase",
        n,
    )?;
    t.column(
        "start_time",
        "Start time of the example, in seconds",
        &start_s,
        &[],
    )?;
    t.column(
        "stop_time",
        "Stop time of the example, in seconds",
        &stop_s,
        &[],
    )?;
    for (name, v, d) in [
        ("epoch", &cols[0], "epoch (1-based)"),
        ("example", &cols[1], "position in the epoch (0-based)"),
        ("image", &cols[2], "index in the MNIST training set"),
    ] {
        t.column(name, d, &v[..n], &[])?;
    }
    t.column("label", "true class", &label[..n], &[])?;
    t.column(
        "prediction",
        "forward-phase prediction (what the training error counts)",
        &pred[..n],
        &[],
    )?;
    t.column(
        "forward_steps",
        "forward phase length, steps",
        &fw[..n],
        &[],
    )?;
    t.column("target_steps", "target phase length, steps", &tg[..n], &[])?;
    let tags: Vec<String> = label[..n].iter().map(|l| format!("label {l}")).collect();
    tags_column(f, &mut t, &tags)?;
    t.finish()?;
    Ok(n)
}

/// The `tags` column of a TimeIntervals table, one tag per row (Neo's NWBIO reads a
/// table's tags as its epochs' labels).
fn tags_column(f: &File, t: &mut Table<'_>, tags: &[String]) -> hdf5::Result<()> {
    let v: Vec<VarLenUnicode> = tags.iter().map(|s| h5::vstr(s)).collect();
    let ds = t.g.new_dataset_builder().with_data(&v[..]).create("tags")?;
    let ends: Vec<u64> = (1..=tags.len() as u64).collect();
    t.ragged(f, "tags", "user-defined tags for the row", &ds, &ends)
}

fn write_epochs(
    src: &File,
    f: &File,
    intervals: &Group,
    meta: &Meta,
    ids: &Ids,
) -> hdf5::Result<()> {
    let e = src.group("epochs")?;
    let epoch: Vec<u32> = read_all(&e, "epoch")?;
    let end: Vec<f64> = read_all(&e, "end_time")?;
    let train: Vec<f64> = read_all(&e, "train_error")?;
    let test: Vec<f64> = read_all(&e, "test_error")?;
    let n = epoch.len().min(end.len()).min(train.len()).min(test.len());
    if n == 0 {
        return Ok(());
    }
    let stop: Vec<f64> = end[..n].iter().map(|t| t / 1000.0).collect();
    let start: Vec<f64> = std::iter::once(meta.start_ms / 1000.0)
        .chain(stop[..n - 1].iter().copied())
        .collect();
    let mut t = Table::new(
        intervals,
        "epochs",
        ids,
        "core",
        "TimeIntervals",
        "training epochs (test phases take no simulated time here)",
        n,
    )?;
    t.column(
        "start_time",
        "Start time of the epoch, in seconds",
        &start,
        &[],
    )?;
    t.column(
        "stop_time",
        "Stop time of the epoch, in seconds",
        &stop,
        &[],
    )?;
    t.column("epoch", "epoch (1-based)", &epoch[..n], &[])?;
    t.column("train_error", "training error, percent", &train[..n], &[])?;
    t.column("test_error", "test error, percent", &test[..n], &[])?;
    let tags: Vec<String> = epoch[..n].iter().map(|e| format!("epoch {e}")).collect();
    tags_column(f, &mut t, &tags)?;
    t.finish()?;
    Ok(())
}

/// One population's spikes as spike trains, unit by unit, appended to `out` (seconds),
/// and with `bursts_out` their burst flags in the same order (0 where the population has
/// none). Returns the number of spikes per neuron.
fn gather_population(
    g: &Group,
    n: usize,
    out: &hdf5::Dataset,
    bursts_out: Option<&hdf5::Dataset>,
    pass_spikes: usize,
) -> hdf5::Result<Vec<u64>> {
    let name = g.name();
    let ts = g
        .dataset("timestamps")
        .map_err(|e| damaged(format!("{name}/timestamps: {e}")))?;
    let ns = g
        .dataset("node_ids")
        .map_err(|e| damaged(format!("{name}/node_ids: {e}")))?;
    let (nt, nn) = (
        ts.shape().first().copied().unwrap_or(0),
        ns.shape().first().copied().unwrap_or(0),
    );
    if nt != nn {
        return Err(damaged(format!(
            "{name}/timestamps has {nt} rows but {name}/node_ids has {nn}: one spike per row of both"
        )));
    }
    let rows = nt;
    let bs = match g.dataset("bursts") {
        Ok(d) if bursts_out.is_some() => {
            let nb = d.shape().first().copied().unwrap_or(0);
            if nb != nt {
                return Err(damaged(format!(
                    "{name}/bursts has {nb} rows but {name}/timestamps has {nt}: one flag per spike"
                )));
            }
            Some(d)
        }
        _ => None,
    };
    fn read<T: hdf5::H5Type + Clone>(
        d: &hdf5::Dataset,
        r: std::ops::Range<usize>,
        name: &str,
        col: &str,
    ) -> hdf5::Result<Vec<T>> {
        d.read_slice_1d(r)
            .map(|a| a.to_vec())
            .map_err(|e| damaged(format!("{name}/{col}: cannot read it: {e}")))
    }
    // Pass 1: spikes per neuron; every id within the population, every time a number
    // within the recording.
    let mut counts = vec![0u64; n];
    for r0 in (0..rows).step_by(READ_ROWS) {
        let r1 = (r0 + READ_ROWS).min(rows);
        let ids: Vec<u64> = read(&ns, r0..r1, &name, "node_ids")?;
        for (k, &i) in ids.iter().enumerate() {
            match counts.get_mut(i as usize) {
                Some(c) => *c += 1,
                None => {
                    return Err(damaged(format!(
                        "{name}/node_ids row {}: node id {i} outside the population of {n} neurons",
                        r0 + k
                    )))
                }
            }
        }
        let t: Vec<f64> = read(&ts, r0..r1, &name, "timestamps")?;
        if let Some(k) = t.iter().position(|x| !x.is_finite() || *x < 0.0) {
            return Err(damaged(format!(
                "{name}/timestamps row {}: time {} is not a time of the recording",
                r0 + k,
                t[k]
            )));
        }
    }
    // Passes 2..: the spike trains of a block of neurons at a time, in time order (the
    // trace file is), each pass at most `pass_spikes` spikes (or one neuron's).
    let base = out.shape()[0];
    let total: u64 = counts.iter().sum();
    out.resize(base + total as usize)?;
    if let Some(b) = bursts_out {
        b.resize(base + total as usize)?;
    }
    let mut first = 0usize;
    let mut offset = 0u64;
    while first < n {
        let mut last = first;
        let mut size = 0u64;
        while last < n && (last == first || size + counts[last] <= pass_spikes as u64) {
            size += counts[last];
            last += 1;
        }
        let mut pos: Vec<u64> = Vec::with_capacity(last - first);
        let mut p = 0u64;
        for &c in &counts[first..last] {
            pos.push(p);
            p += c;
        }
        let mut buf = vec![0f64; size as usize];
        let mut flags = vec![
            0u8;
            if bursts_out.is_some() {
                size as usize
            } else {
                0
            }
        ];
        for r0 in (0..rows).step_by(READ_ROWS) {
            let r1 = (r0 + READ_ROWS).min(rows);
            let ids: Vec<u64> = read(&ns, r0..r1, &name, "node_ids")?;
            let t: Vec<f64> = read(&ts, r0..r1, &name, "timestamps")?;
            let b: Vec<u8> = match &bs {
                Some(d) => read(d, r0..r1, &name, "bursts")?,
                None => Vec::new(),
            };
            for (r, (&i, &x)) in ids.iter().zip(&t).enumerate() {
                let i = i as usize;
                if (first..last).contains(&i) {
                    let k = &mut pos[i - first];
                    buf[*k as usize] = x / 1000.0;
                    if let Some(&f) = b.get(r) {
                        flags[*k as usize] = f;
                    }
                    *k += 1;
                }
            }
        }
        let at = base + offset as usize;
        out.write_slice(&buf, at..at + buf.len())?;
        if let Some(d) = bursts_out {
            d.write_slice(&flags, at..at + flags.len())?;
        }
        offset += size;
        first = last;
    }
    Ok(counts)
}

fn write_units(
    src: &File,
    f: &File,
    meta: &Meta,
    ids: &Ids,
    pass_spikes: usize,
) -> hdf5::Result<(usize, u64)> {
    let Ok(sp) = src.group("spikes") else {
        return Ok((0, 0));
    };
    let recorded: Vec<usize> = (0..meta.populations.len())
        .filter(|&p| sp.group(&meta.populations[p]).is_ok())
        .collect();
    let rows: usize = recorded.iter().map(|&p| meta.sizes[p] as usize).sum();
    let mut t = Table::new(
        f,
        "units",
        ids,
        "core",
        "Units",
        "every neuron of the recorded populations, in population order (input, hidden layers, output), with its spikes",
        rows,
    )?;
    let times =
        t.g.new_dataset::<f64>()
            .chunk(1 << 16)
            .shape(hdf5::SimpleExtents::resizable([0]))
            .create("spike_times")?;
    // The time step is the resolution of every spike time.
    attr(&times, "resolution", &(meta.dt / 1000.0))?;
    // Spiking BurstCCN's trace files flag the spikes that were bursts.
    let with_bursts = recorded.iter().any(|&p| {
        sp.group(&meta.populations[p])
            .is_ok_and(|g| g.link_exists("bursts"))
    });
    let bursts = if with_bursts {
        Some(
            t.g.new_dataset::<u8>()
                .chunk(1 << 16)
                .shape(hdf5::SimpleExtents::resizable([0]))
                .create("spike_bursts")?,
        )
    } else {
        None
    };
    let mut ends = Vec::with_capacity(rows);
    let (mut pop, mut layer, mut node) = (Vec::new(), Vec::new(), Vec::new());
    let mut end = 0u64;
    for &p in &recorded {
        let n = meta.sizes[p] as usize;
        let g = sp.group(&meta.populations[p])?;
        let counts = gather_population(&g, n, &times, bursts.as_ref(), pass_spikes)?;
        for (i, c) in counts.iter().enumerate() {
            end += c;
            ends.push(end);
            pop.push(meta.populations[p].as_str());
            layer.push(p as u32);
            node.push(i as u64);
        }
    }
    t.ragged(
        f,
        "spike_times",
        "the spike times for each unit in seconds",
        &times,
        &ends,
    )?;
    if let Some(b) = &bursts {
        t.ragged(
            f,
            "spike_bursts",
            "for each spike of spike_times, 1 where it was a burst (spiking BurstCCN, apical's docs/model.md eq. 11.14), else 0 (every spike of a population without bursts, such as the input)",
            b,
            &ends,
        )?;
    }
    t.text_column("population", "population (SONATA name) of the neuron", &pop)?;
    t.column(
        "layer",
        "layer index: 0 input, 1.. hidden layers, last the output layer",
        &layer,
        &[],
    )?;
    t.column(
        "node_id",
        "node id within the population (SONATA)",
        &node,
        &[],
    )?;
    // Every unit was observed over the whole recording.
    let obs: Vec<f64> = (0..rows)
        .flat_map(|_| [meta.start_ms / 1000.0, meta.end_ms / 1000.0])
        .collect();
    let obs_ds = data(&t.g, "obs_intervals", &obs, &[rows, 2])?;
    let obs_ends: Vec<u64> = (1..=rows as u64).collect();
    t.ragged(
        f,
        "obs_intervals",
        "the observation intervals for each unit",
        &obs_ds,
        &obs_ends,
    )?;
    t.finish()?;
    Ok((rows, end))
}

/// A TimeSeries `name` in `parent`: `values` [T, n] float32, with `times` (ms) as a
/// start and rate when they are regular, else as timestamps.
#[allow(clippy::too_many_arguments)]
fn time_series(
    parent: &Group,
    ids: &Ids,
    name: &str,
    description: &str,
    unit: &str,
    values: &[f32],
    n: usize,
    times_ms: &[f64],
) -> hdf5::Result<()> {
    let g = parent.create_group(name)?;
    typed(&g, ids, "core", "TimeSeries")?;
    attr_str(&g, "description", description)?;
    attr_str(&g, "comments", "exported from an apical trace file")?;
    let d = data(&g, "data", values, &[times_ms.len(), n])?;
    attr(&d, "conversion", &1.0f64)?;
    attr(&d, "offset", &0.0f64)?;
    attr(&d, "resolution", &-1.0f64)?;
    attr_str(&d, "unit", unit)?;
    let step = times_ms.get(1).map(|t1| t1 - times_ms[0]);
    let regular = match step {
        Some(s) if s > 0.0 => times_ms
            .windows(2)
            .enumerate()
            .all(|(i, w)| w[1] - w[0] == s && w[1] == times_ms[0] + (i + 1) as f64 * s),
        _ => false,
    };
    if let (true, Some(s)) = (regular, step) {
        let st = data(&g, "starting_time", &[times_ms[0] / 1000.0], &[])?;
        attr(&st, "rate", &(1000.0 / s))?;
        attr_str(&st, "unit", "seconds")?;
    } else {
        let secs: Vec<f64> = times_ms.iter().map(|t| t / 1000.0).collect();
        let ts = data(&g, "timestamps", &secs, &[secs.len()])?;
        attr(&ts, "interval", &1i32)?;
        attr_str(&ts, "unit", "seconds")?;
    }
    Ok(())
}

fn write_series(src: &File, f: &File, meta: &Meta, ids: &Ids) -> hdf5::Result<usize> {
    let acq = f.group("acquisition")?;
    let mut count = 0;
    for root in ["report", "rates"] {
        let Ok(r) = src.group(root) else { continue };
        let mut pops = r.member_names()?;
        pops.sort_by_key(|p| meta.populations.iter().position(|q| q == p));
        for pop in pops {
            let g = r.group(&pop)?;
            let d = g.dataset("data")?;
            let times: Vec<f64> = read_all(&g, "times")?;
            let el: Vec<u32> = read_all(&g.group("mapping")?, "element_ids")?;
            let shape = d.shape();
            let (t, w) = (shape[0].min(times.len()), shape[1]);
            let all: Vec<f32> = if t > 0 {
                d.read_slice_2d((0..t, ..))?.iter().copied().collect()
            } else {
                Vec::new()
            };
            let k = if root == "rates" {
                1
            } else {
                let mut e = el.clone();
                e.sort_unstable();
                e.dedup();
                e.len().max(1)
            };
            let n = w / k;
            for c in 0..k {
                let code = if root == "rates" {
                    0
                } else {
                    el.get(c).copied().unwrap_or(0)
                };
                let (kind, what, unit) = match (root, code) {
                    ("rates", _) => ("rate", "firing rate lambda_C", "Hz"),
                    (_, 0) => ("soma", "somatic potential C", "dimensionless"),
                    (_, 1) => ("basal", "basal (dendritic) potential B", "dimensionless"),
                    _ => ("apical", "apical potential A", "dimensionless"),
                };
                let values: Vec<f32> = (0..t)
                    .flat_map(|r| (0..n).map(move |i| (r, i)))
                    .map(|(r, i)| all[r * w + i * k + c])
                    .collect();
                time_series(
                    &acq,
                    ids,
                    &format!("{kind}_{pop}"),
                    &format!(
                        "{what} of every neuron of {pop} (columns: node ids 0..{n}; the model's potentials are dimensionless)"
                    ),
                    unit,
                    &values,
                    n,
                    &times[..t],
                )?;
                count += 1;
            }
        }
    }
    Ok(count)
}

fn write_weights(src: &File, f: &File, meta: &Meta, ids: &Ids) -> hdf5::Result<usize> {
    let Ok(w) = src.group("weights") else {
        return Ok(0);
    };
    let epoch: Vec<u32> = read_all(&w, "epoch")?;
    let example: Vec<u32> = read_all(&w, "example")?;
    let time: Vec<f64> = read_all(&w, "time")?;
    let mut k = epoch.len().min(example.len()).min(time.len());
    let pops: Vec<&String> = meta
        .populations
        .iter()
        .filter(|p| w.group(p).is_ok())
        .collect();
    for p in &pops {
        for m in ["W", "b", "Y", "c"] {
            if let Ok(d) = w.group(p)?.dataset(m) {
                k = k.min(d.shape()[0]);
            }
        }
    }
    let pm = f.group("processing")?.create_group("weights")?;
    typed(&pm, ids, "core", "ProcessingModule")?;
    attr_str(
        &pm,
        "description",
        "snapshots of the learned parameters: W (post, pre), b, and of hidden layers the feedback weights Y and c",
    )?;
    let mut t = Table::new(
        &pm,
        "snapshots",
        ids,
        "hdmf-common",
        "DynamicTable",
        "one row per snapshot: after `example` examples of epoch `epoch` (epoch 0: the initial weights)",
        k,
    )?;
    t.column("epoch", "epoch (0: before training)", &epoch[..k], &[])?;
    t.column("example", "examples done in the epoch", &example[..k], &[])?;
    let secs: Vec<f64> = time[..k].iter().map(|x| x / 1000.0).collect();
    t.column(
        "time",
        "simulated time of the snapshot, in seconds",
        &secs,
        &[],
    )?;
    for p in pops {
        let g = w.group(p)?;
        for (m, what) in [
            ("W", "feedforward weights, (post, pre)"),
            ("b", "biases"),
            ("Y", "feedback weights, (post, source)"),
            ("c", "feedback biases"),
        ] {
            let Ok(d) = g.dataset(m) else { continue };
            let shape = d.shape();
            let per: usize = shape[1..].iter().product();
            let all: Vec<f32> = d.read_raw()?;
            t.column(
                &format!("{m}_{p}"),
                &format!("{what} of {p} (dimensionless)"),
                &all[..k * per],
                &shape[1..],
            )?;
        }
    }
    t.finish()?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20+00:00");
    }
}
