//! Traces of a training run in one HDF5 file (`traces.h5` in the run directory): spikes in
//! the SONATA spike layout, compartment potentials and firing rates in the SONATA report
//! layout, plateau potentials, per-example labels and predictions, weight snapshots and
//! per-epoch metrics. The schema is documented in docs/traces.md.
//!
//! What is recorded is chosen by a [`RecordGroup`] list: from the command line
//! (`apical train --record SPEC`, parsed by [`parse_spec`]) or from `[[record]]` tables in the
//! model file. The [`Recorder`] is a [`crate::network::Observer`]: it only reads the
//! simulation, buffers a bounded amount in memory and appends it to chunked, compressed,
//! resizable datasets between examples, so memory stays flat however long the run.

use crate::checkpoint::EpochRecord;
use crate::config::ModelConfig;
use crate::layer::LayerParams;
use crate::network::{phase_lengths, NetState, Observer, Phase, StepInfo};
use crate::neuron::plateau_potential;
use crate::rng::{stream, Purpose};
use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{Dataset, Extent, File, Group, H5Type, Location, SimpleExtents};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a run records when neither `--record` nor the model file says.
pub const DEFAULT_SPEC: &str = "metrics,weights";
/// Version of the file layout (root attribute `format_version`).
pub const FORMAT_VERSION: u32 = 1;
/// Buffered bytes that trigger a flush at the end of an example.
pub const FLUSH_BYTES: usize = 8 << 20;
/// Target size of one uncompressed chunk.
const CHUNK_BYTES: usize = 256 << 10;
/// Units of the model's potentials (the model is dimensionless, docs/model.md).
pub const POTENTIAL_UNITS: &str = "dimensionless";

// ---------------------------------------------------------------------------------------
// The record spec
// ---------------------------------------------------------------------------------------

/// One group of what to record: some variables, for some layers and examples.
/// This is also a `[[record]]` table of a model file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordGroup {
    /// spikes, soma, basal, apical, potentials (= soma, basal, apical), rate, plateau,
    /// weights, labels, metrics.
    pub variables: Vec<String>,
    /// Populations: all, hidden (every hidden layer), input, hidden0, hidden1, ..., output.
    #[serde(default = "d_layers")]
    pub layers: Vec<String>,
    /// all, none, every:N, first:N, last:N, range:A..B (0-based, per epoch). Default: all
    /// (weights: none, i.e. snapshots at epoch ends only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<String>,
    /// Sampling interval of continuous variables (soma, basal, apical, rate), in steps.
    #[serde(default = "d_interval")]
    pub interval: usize,
}

fn d_layers() -> Vec<String> {
    vec!["all".into()]
}
fn d_interval() -> usize {
    1
}

/// A bad part of a record spec: `field` names it (`examples=every:0`, `record[1].layers`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct SpecError {
    pub field: String,
    pub problem: String,
}

fn spec_err(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Parses a `--record` spec (grammar in docs/traces.md):
///
/// ```text
/// spec    := "none" | group ( "|" group )*
/// group   := var ( "," var )* [ ":" option ( ";" option )* ]
/// option  := "layers=" name ( "," name )* | "examples=" sel | "interval=" N
/// sel     := all | none | every:N | first:N | last:N | range:A..B
/// ```
///
/// "none" gives no groups (no trace file). Variable and layer names are checked against
/// the model by [`RecordPlan::resolve`].
pub fn parse_spec(spec: &str) -> Result<Vec<RecordGroup>, SpecError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(spec_err(
            "",
            format!(
                "is empty; give variables such as `spikes` or `none` (default: {DEFAULT_SPEC})"
            ),
        ));
    }
    if spec == "none" {
        return Ok(Vec::new());
    }
    spec.split('|').map(parse_group).collect()
}

fn parse_group(text: &str) -> Result<RecordGroup, SpecError> {
    let text = text.trim();
    let (vars, opts) = match text.split_once(':') {
        Some((v, o)) => (v, Some(o)),
        None => (text, None),
    };
    let variables: Vec<String> = vars.split(',').map(|v| v.trim().to_string()).collect();
    if variables.iter().any(|v| v.is_empty()) {
        return Err(spec_err(text, "has an empty variable name"));
    }
    let mut g = RecordGroup {
        variables,
        layers: d_layers(),
        examples: None,
        interval: 1,
    };
    let mut seen = Vec::new();
    for opt in opts.into_iter().flat_map(|o| o.split(';')) {
        let opt = opt.trim();
        let Some((key, value)) = opt.split_once('=') else {
            return Err(spec_err(
                opt,
                "is not an option; options are layers=..., examples=... and interval=N",
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if seen.contains(&key) {
            return Err(spec_err(opt, format!("repeats the option `{key}`")));
        }
        seen.push(key);
        match key {
            "layers" => {
                g.layers = value.split(',').map(|l| l.trim().to_string()).collect();
                if g.layers.iter().any(|l| l.is_empty()) {
                    return Err(spec_err(opt, "has an empty layer name"));
                }
            }
            "examples" => {
                parse_examples(value).map_err(|p| spec_err(opt, p))?;
                g.examples = Some(value.to_string());
            }
            "interval" => {
                g.interval = value
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n >= 1)
                    .ok_or_else(|| spec_err(opt, "must be a whole number of steps, at least 1"))?;
            }
            _ => {
                return Err(spec_err(
                    opt,
                    format!(
                        "has the unknown option `{key}`; options are layers, examples and interval"
                    ),
                ))
            }
        }
    }
    Ok(g)
}

/// Which examples of each epoch are recorded (0-based positions in the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Examples {
    All,
    None,
    Every(usize),
    First(usize),
    Last(usize),
    /// `range:A..B`: A <= k < B.
    Range(usize, usize),
}

impl Examples {
    /// Whether example `k` of an epoch of `n` examples is selected.
    #[inline]
    pub fn selects(&self, k: usize, n: usize) -> bool {
        match *self {
            Examples::All => true,
            Examples::None => false,
            Examples::Every(e) => k % e == 0,
            Examples::First(f) => k < f,
            Examples::Last(l) => k + l >= n,
            Examples::Range(a, b) => a <= k && k < b,
        }
    }
}

/// Parses an example selection; the error says what is wrong.
pub fn parse_examples(s: &str) -> Result<Examples, String> {
    let count = |v: &str| -> Result<usize, String> {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("needs a whole number at least 1 after the colon, got {v:?}"))
    };
    match s.split_once(':') {
        None if s == "all" => Ok(Examples::All),
        None if s == "none" => Ok(Examples::None),
        Some(("every", v)) => count(v).map(Examples::Every),
        Some(("first", v)) => count(v).map(Examples::First),
        Some(("last", v)) => count(v).map(Examples::Last),
        Some(("range", v)) => {
            let bad = || format!("needs range:A..B with whole numbers A < B, got {v:?}");
            let (a, b) = v.split_once("..").ok_or_else(bad)?;
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a >= b {
                return Err(bad());
            }
            Ok(Examples::Range(a, b))
        }
        _ => Err(format!(
            "is not an example selection; use all, none, every:N, first:N, last:N or range:A..B, got {s:?}"
        )),
    }
}

/// A variable that can be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Spikes,
    Soma,
    Basal,
    Apical,
    Rate,
    Plateau,
    Weights,
    Labels,
    Metrics,
}

const VAR_NAMES: &str =
    "spikes, soma, basal, apical, potentials, rate, plateau, weights, labels, metrics";

fn parse_var(name: &str) -> Option<&'static [Var]> {
    Some(match name {
        "spikes" => &[Var::Spikes],
        "soma" => &[Var::Soma],
        "basal" => &[Var::Basal],
        "apical" => &[Var::Apical],
        "potentials" => &[Var::Soma, Var::Basal, Var::Apical],
        "rate" | "rates" => &[Var::Rate],
        "plateau" | "plateaus" => &[Var::Plateau],
        "weights" => &[Var::Weights],
        "labels" => &[Var::Labels],
        "metrics" => &[Var::Metrics],
        _ => return None,
    })
}

/// Compartment codes of the report's `mapping/element_ids`.
pub const ELEMENT_SOMA: u32 = 0;
pub const ELEMENT_BASAL: u32 = 1;
pub const ELEMENT_APICAL: u32 = 2;

/// Compartment potentials of one layer in `/report/<population>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSel {
    /// Element codes recorded per neuron, ascending (soma 0, basal 1, apical 2).
    pub elements: Vec<u32>,
    pub examples: Examples,
    pub interval: usize,
}

/// A record spec resolved against a model: per population (0 = input, m + 1 = layer m) or
/// per layer m, what is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPlan {
    /// Per population.
    pub spikes: Vec<Option<Examples>>,
    /// Per layer.
    pub report: Vec<Option<ReportSel>>,
    /// Per layer: examples and interval.
    pub rate: Vec<Option<(Examples, usize)>>,
    /// Per layer (hidden layers only).
    pub plateau: Vec<Option<Examples>>,
    /// Per layer: `Some(examples)` records snapshots at the start of the run, at each epoch
    /// end and after the selected examples.
    pub weights: Vec<Option<Examples>>,
    pub labels: Option<Examples>,
}

/// Population names of a model: input, hidden0.., output.
pub fn population_names(cfg: &ModelConfig) -> Vec<String> {
    let n_hidden = cfg.network.hidden.len();
    let mut v = vec!["input".to_string()];
    v.extend((0..n_hidden).map(|m| format!("hidden{m}")));
    v.push("output".into());
    v
}

impl RecordPlan {
    /// Checks the groups against the model. Errors name the group's part, e.g.
    /// `record[0].layers`.
    pub fn resolve(groups: &[RecordGroup], cfg: &ModelConfig) -> Result<Self, SpecError> {
        let names = population_names(cfg);
        let m_layers = names.len() - 1;
        let is_hidden = |p: usize| p >= 1 && p < m_layers;
        let mut plan = RecordPlan {
            spikes: vec![None; m_layers + 1],
            report: vec![None; m_layers],
            rate: vec![None; m_layers],
            plateau: vec![None; m_layers],
            weights: vec![None; m_layers],
            labels: None,
        };
        // (var, population) -> (group, examples, interval), to find conflicts.
        let mut claimed: Vec<(Var, usize, usize, Examples, usize)> = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            let f = |part: &str| format!("record[{gi}].{part}");
            if g.variables.is_empty() {
                return Err(spec_err(
                    f("variables"),
                    format!("is empty; choose from {VAR_NAMES}"),
                ));
            }
            if g.interval == 0 {
                return Err(spec_err(f("interval"), "must be at least 1 step, got 0"));
            }
            let mut vars = Vec::new();
            for (vi, v) in g.variables.iter().enumerate() {
                let Some(vs) = parse_var(v.trim()) else {
                    return Err(spec_err(
                        f(&format!("variables[{vi}]")),
                        format!("is the unknown variable {v:?}; choose from {VAR_NAMES}"),
                    ));
                };
                vars.extend_from_slice(vs);
            }
            let mut pops = Vec::new();
            for (li, l) in g.layers.iter().enumerate() {
                let l = l.trim();
                match l {
                    "all" => pops.extend(0..=m_layers),
                    "hidden" => pops.extend(1..m_layers),
                    _ => match names.iter().position(|n| n == l) {
                        Some(p) => pops.push(p),
                        None => {
                            return Err(spec_err(
                                f(&format!("layers[{li}]")),
                                format!(
                                    "is the unknown population {l:?}; this model has {} (or all, hidden)",
                                    names.join(", ")
                                ),
                            ))
                        }
                    },
                }
            }
            pops.sort_unstable();
            pops.dedup();
            let explicit = g.examples.is_some();
            let examples = match &g.examples {
                Some(s) => parse_examples(s.trim()).map_err(|p| spec_err(f("examples"), p))?,
                None => Examples::All,
            };
            for &v in &vars {
                let applies = |p: usize| match v {
                    Var::Spikes => true,
                    Var::Soma | Var::Basal | Var::Rate | Var::Weights => p >= 1,
                    Var::Apical | Var::Plateau => is_hidden(p),
                    Var::Labels | Var::Metrics => false,
                };
                if matches!(v, Var::Labels) {
                    plan.labels = Some(examples);
                    continue;
                }
                if matches!(v, Var::Metrics) {
                    continue;
                }
                let targets: Vec<usize> = pops.iter().copied().filter(|&p| applies(p)).collect();
                if targets.is_empty() {
                    let name = g
                        .variables
                        .iter()
                        .find(|n| parse_var(n.trim()).is_some_and(|vs| vs.contains(&v)));
                    return Err(spec_err(
                        f("layers"),
                        format!(
                            "selects no population that has {:?} ({})",
                            name.map_or("?", |s| s.as_str()),
                            match v {
                                Var::Apical | Var::Plateau => "hidden layers only",
                                Var::Spikes => "every population",
                                _ => "hidden and output layers, not the input",
                            }
                        ),
                    ));
                }
                let ex = if v == Var::Weights && !explicit {
                    Examples::None
                } else {
                    examples
                };
                for p in targets {
                    if let Some(c) = claimed.iter().find(|c| c.0 == v && c.1 == p) {
                        return Err(spec_err(
                            f("variables"),
                            format!(
                                "selects {v:?} of {} again (already selected by record[{}]); give each variable of a population once",
                                names[p], c.2
                            )
                            .to_lowercase(),
                        ));
                    }
                    claimed.push((v, p, gi, ex, g.interval));
                    let m = p.wrapping_sub(1);
                    match v {
                        Var::Spikes => plan.spikes[p] = Some(ex),
                        Var::Rate => plan.rate[m] = Some((ex, g.interval)),
                        Var::Plateau => plan.plateau[m] = Some(ex),
                        Var::Weights => plan.weights[m] = Some(ex),
                        Var::Soma | Var::Basal | Var::Apical => {
                            let code = match v {
                                Var::Soma => ELEMENT_SOMA,
                                Var::Basal => ELEMENT_BASAL,
                                _ => ELEMENT_APICAL,
                            };
                            match &mut plan.report[m] {
                                None => {
                                    plan.report[m] = Some(ReportSel {
                                        elements: vec![code],
                                        examples: ex,
                                        interval: g.interval,
                                    })
                                }
                                Some(r) => {
                                    if r.examples != ex || r.interval != g.interval {
                                        return Err(spec_err(
                                            f("variables"),
                                            format!(
                                                "records potentials of {} with other examples or interval than another group; soma, basal and apical of one population share one report, so give them in one group",
                                                names[p]
                                            ),
                                        ));
                                    }
                                    r.elements.push(code);
                                    r.elements.sort_unstable();
                                }
                            }
                        }
                        Var::Labels | Var::Metrics => {}
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Whether anything per example is recorded for example `k` of `n`.
    fn example_selected(&self, k: usize, n: usize) -> bool {
        let sel = |e: &Option<Examples>| e.is_some_and(|e| e.selects(k, n));
        self.spikes.iter().any(sel)
            || self.plateau.iter().any(sel)
            || sel(&self.labels)
            || self
                .report
                .iter()
                .any(|r| r.as_ref().is_some_and(|r| r.examples.selects(k, n)))
            || self
                .rate
                .iter()
                .any(|r| r.is_some_and(|r| r.0.selects(k, n)))
    }
}

/// Training steps of a run before example `example` of `epoch` (1-based): the global time
/// origin of a resumed run's trace file. Phase lengths are drawn from their own stream, so
/// this replays no simulation.
pub fn steps_before(
    cfg: &ModelConfig,
    seed: u64,
    n_train: usize,
    epoch: usize,
    example: usize,
) -> u64 {
    let mut steps = 0u64;
    for e in 1..=epoch {
        let (f, t) = phase_lengths(
            cfg,
            n_train,
            &mut stream(seed, Purpose::PhaseLengths, &[e as u64]),
        );
        let upto = if e == epoch {
            example.min(n_train)
        } else {
            n_train
        };
        steps += f[..upto]
            .iter()
            .chain(&t[..upto])
            .map(|&l| l as u64)
            .sum::<u64>();
    }
    steps
}

// ---------------------------------------------------------------------------------------
// HDF5 helpers
// ---------------------------------------------------------------------------------------

/// The SONATA `sorting` enum of `/spikes/<population>` (libsonata reads it as this type).
#[derive(H5Type, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(non_camel_case_types)]
pub enum Sorting {
    none = 0,
    by_id = 1,
    by_time = 2,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record spec: {0}")]
    Spec(#[from] SpecError),
    #[error("trace file {path}: {what}: {source}")]
    Hdf5 {
        path: PathBuf,
        what: String,
        source: hdf5::Error,
    },
    #[error("trace file {path}: cannot append to the file: {message}")]
    Write { path: PathBuf, message: String },
}

/// A write to the file, run on the writer thread.
type Job = Box<dyn FnOnce() -> hdf5::Result<()> + Send>;

/// The thread that compresses and writes, so the simulation does not wait for it.
struct Writer {
    tx: Option<std::sync::mpsc::SyncSender<Vec<Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Writer {
    fn spawn() -> std::io::Result<Self> {
        // One batch queued while one is written: bounded memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Job>>(1);
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let f2 = failed.clone();
        let thread = std::thread::Builder::new()
            .name("apical-traces".into())
            .spawn(move || {
                for batch in rx {
                    let mut slot = f2.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.is_some() {
                        continue; // after an error, write nothing more
                    }
                    drop(slot);
                    for job in batch {
                        if let Err(e) = job() {
                            slot = f2.lock().unwrap_or_else(|p| p.into_inner());
                            *slot = Some(e.to_string());
                            break;
                        }
                    }
                }
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            failed,
        })
    }
}

fn vstr(s: &str) -> VarLenUnicode {
    // Strings we write come from TOML text and names: an interior NUL cannot occur, but
    // never panic on it either.
    s.replace('\0', " ").parse().unwrap_or_default()
}

/// Creates or overwrites a scalar attribute.
/// One writer per population that `plan` selects (`make(group, index, selection)`), under a
/// group `name` of `file` that is created only when some population is selected; returns
/// the group too.
fn per_population<S, T>(
    file: &File,
    name: &str,
    plan: &[Option<S>],
    mut make: impl FnMut(&Group, usize, &S) -> hdf5::Result<T>,
) -> hdf5::Result<(Option<Group>, Vec<Option<T>>)> {
    if plan.iter().all(Option::is_none) {
        return Ok((None, plan.iter().map(|_| None).collect()));
    }
    let g = file.create_group(name)?;
    let out = plan
        .iter()
        .enumerate()
        .map(|(m, sel)| sel.as_ref().map(|s| make(&g, m, s)).transpose())
        .collect::<hdf5::Result<_>>()?;
    Ok((Some(g), out))
}

fn put_attr<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5::Result<()> {
    let a = if loc.attr_names()?.iter().any(|n| n == name) {
        loc.attr(name)?
    } else {
        loc.new_attr::<T>().create(name)?
    };
    a.write_scalar(v)
}

fn put_str(loc: &Location, name: &str, v: &str) -> hdf5::Result<()> {
    put_attr(loc, name, &vstr(v))
}

/// A fixed dataset with data.
fn put_data<T: H5Type>(
    g: &Group,
    name: &str,
    data: &[T],
    units: Option<&str>,
) -> hdf5::Result<Dataset> {
    let ds = g.new_dataset_builder().with_data(data).create(name)?;
    if let Some(u) = units {
        put_str(&ds, "units", u)?;
    }
    Ok(ds)
}

/// A resizable, chunked, compressed dataset `[rows, inner...]` and its buffer of rows not
/// yet written.
struct Col<T: H5Type + Copy> {
    ds: Dataset,
    inner: Vec<usize>,
    width: usize,
    buf: Vec<T>,
    rows: usize,
}

impl<T: H5Type + Copy + Send + 'static> Col<T> {
    fn create(
        z: Compression,
        g: &Group,
        name: &str,
        inner: &[usize],
        units: Option<&str>,
    ) -> hdf5::Result<Self> {
        let width: usize = inner.iter().product();
        let row_bytes = width.max(1) * std::mem::size_of::<T>();
        let chunk_rows = (CHUNK_BYTES / row_bytes).max(1);
        let mut ext = vec![Extent::resizable(0)];
        ext.extend(inner.iter().map(|&d| Extent::fixed(d)));
        let mut chunk = vec![chunk_rows];
        chunk.extend_from_slice(inner);
        let mut b = g.new_dataset::<T>().chunk(chunk);
        if let Compression::Deflate(level) = z {
            b = b.shuffle().deflate(level.min(9));
        }
        let ds = b.shape(SimpleExtents::from_vec(ext)).create(name)?;
        if let Some(u) = units {
            put_str(&ds, "units", u)?;
        }
        Ok(Col {
            ds,
            inner: inner.to_vec(),
            width,
            buf: Vec::new(),
            rows: 0,
        })
    }

    #[inline]
    fn push(&mut self, v: T) {
        self.buf.push(v);
    }

    fn extend(&mut self, v: &[T]) {
        self.buf.extend_from_slice(v);
    }

    fn total_rows(&self) -> usize {
        self.rows + self.buf.len() / self.width.max(1)
    }

    fn bytes(&self) -> usize {
        self.buf.len() * std::mem::size_of::<T>()
    }

    /// Hands the buffered rows to the writer as a job that appends them to the dataset.
    fn flush(&mut self, jobs: &mut Vec<Job>) {
        let n = self.buf.len() / self.width.max(1);
        if n == 0 {
            return;
        }
        let r0 = self.rows;
        self.rows += n;
        let ds = self.ds.clone();
        let inner = self.inner.clone();
        let data = std::mem::take(&mut self.buf);
        jobs.push(Box::new(move || write_rows(&ds, r0, &inner, &data)));
    }
}

/// Appends rows `r0..` (all of `data`, whole rows of `inner` shape) to a resizable dataset.
fn write_rows<T: H5Type>(ds: &Dataset, r0: usize, inner: &[usize], data: &[T]) -> hdf5::Result<()> {
    let width: usize = inner.iter().product::<usize>().max(1);
    let n = data.len() / width;
    let r1 = r0 + n;
    let mut shape = vec![r1];
    shape.extend_from_slice(inner);
    ds.resize(shape)?;
    let data = &data[..n * width];
    let bad = |e: ndarray::ShapeError| hdf5::Error::from(e.to_string().as_str());
    match inner.len() {
        0 => ds.write_slice(data, r0..r1),
        1 => {
            let v = ndarray::ArrayView2::from_shape((n, inner[0]), data).map_err(bad)?;
            ds.write_slice(v, (r0..r1, ..))
        }
        _ => {
            let v = ndarray::ArrayView3::from_shape((n, inner[0], inner[1]), data).map_err(bad)?;
            ds.write_slice(v, (r0..r1, .., ..))
        }
    }
}

struct SpikeOut {
    examples: Examples,
    active: bool,
    timestamps: Col<f64>,
    node_ids: Col<u64>,
}

/// A report in the SONATA layout: `data` [time x elements], `mapping`, plus `times`.
struct ReportOut {
    examples: Examples,
    interval: u64,
    elements: Vec<u32>,
    active: bool,
    data: Col<f32>,
    times: Col<f64>,
    time_ds: Dataset,
    step_ms: f64,
    first_time: Option<f64>,
}

impl ReportOut {
    #[allow(clippy::too_many_arguments)]
    fn create(
        z: Compression,
        root: &Group,
        pop: &str,
        n: usize,
        elements: &[u32],
        examples: Examples,
        interval: usize,
        dt: f64,
        units: &str,
    ) -> hdf5::Result<Self> {
        let g = root.create_group(pop)?;
        let k = elements.len();
        let data = Col::<f32>::create(z, &g, "data", &[n * k], Some(units))?;
        let times = Col::<f64>::create(z, &g, "times", &[], Some("ms"))?;
        let m = g.create_group("mapping")?;
        let ids: Vec<u64> = (0..n as u64).collect();
        put_data(&m, "node_ids", &ids, None)?;
        let ptr: Vec<u64> = (0..=n as u64).map(|i| i * k as u64).collect();
        put_data(&m, "index_pointers", &ptr, None)?;
        let el: Vec<u32> = (0..n).flat_map(|_| elements.iter().copied()).collect();
        put_data(&m, "element_ids", &el, None)?;
        let step = interval as f64 * dt;
        let time_ds = put_data(&m, "time", &[0.0, 0.0, step], Some("ms"))?;
        Ok(ReportOut {
            examples,
            interval: interval as u64,
            elements: elements.to_vec(),
            active: false,
            data,
            times,
            time_ds,
            step_ms: step,
            first_time: None,
        })
    }

    fn flush(&mut self, jobs: &mut Vec<Job>) {
        self.data.flush(jobs);
        self.times.flush(jobs);
        // mapping/time = start, stop, step over the rows written: the time of row r is
        // start + r * step when every step of the recorded stretch was sampled, and always
        // `times[r]`.
        let rows = self.data.rows as f64;
        let step = self.step_ms;
        let start = self.first_time.unwrap_or(0.0);
        let ds = self.time_ds.clone();
        jobs.push(Box::new(move || {
            ds.write_raw(&[start, start + rows * step, step][..])
        }));
    }

    fn bytes(&self) -> usize {
        self.data.bytes() + self.times.bytes()
    }
}

struct PlateauOut {
    examples: Examples,
    active: bool,
    row: Col<u64>,
    forward: Col<f32>,
    target: Col<f32>,
}

struct WeightsOut {
    examples: Examples,
    w: Col<f32>,
    b: Col<f32>,
    y: Option<Col<f32>>,
    c: Option<Col<f32>>,
    scratch: Vec<f32>,
}

struct ExamplesOut {
    epoch: Col<u32>,
    example: Col<u32>,
    image: Col<u32>,
    label: Col<u8>,
    prediction: Col<u8>,
    start_time: Col<f64>,
    forward_steps: Col<u32>,
    target_steps: Col<u32>,
}

struct EpochsOut {
    epoch: Col<u32>,
    train_examples: Col<u32>,
    train_error: Col<f64>,
    test_examples: Col<u32>,
    test_error: Col<f64>,
    rates_hz: Col<f64>,
    end_time: Col<f64>,
}

struct SnapIndex {
    epoch: Col<u32>,
    example: Col<u32>,
    time: Col<f64>,
    last: Option<(usize, usize)>,
}

/// Compression of the trace datasets. libsonata's PyPI wheels (0.1.37, 0.2.2) come with an
/// HDF5 that has no deflate filter: they read only files written with `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Byte shuffle, then deflate at this level (0-9).
    Deflate(u8),
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Deflate(1)
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::Deflate(l) => write!(f, "deflate:{l}"),
            Compression::None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "deflate" => Ok(Compression::default()),
            _ => s
                .strip_prefix("deflate:")
                .and_then(|l| l.parse::<u8>().ok())
                .filter(|&l| l <= 9)
                .map(Compression::Deflate)
                .ok_or_else(|| {
                    format!("is not a compression; use deflate, deflate:0..9 or none, got {s:?}")
                }),
        }
    }
}

/// How a recorded run ended (root attributes `complete` and `stop_reason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    Completed,
    Interrupted,
    Failed(String),
}

/// Where a run starts: epoch (1-based), example in it, and training steps before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartPoint {
    pub epoch: usize,
    pub example: usize,
    pub step: u64,
}

/// Writes traces of a training run as it goes. Create it with [`Recorder::create`], pass it
/// to [`crate::train::Trainer::run`] as the observer, then call [`Recorder::finish`]. If it is
/// dropped without `finish`, it still flushes and marks the file incomplete.
pub struct Recorder {
    file: Option<File>,
    writer: Writer,
    path: PathBuf,
    plan: RecordPlan,
    dt: f64,
    m_layers: usize,
    /// Global training step of the next step.
    step: u64,
    /// Whether any per-step recording is on for the current example.
    step_active: bool,
    spikes: Vec<Option<SpikeOut>>,
    reports: Vec<Option<ReportOut>>,
    rates: Vec<Option<ReportOut>>,
    plateaus: Vec<Option<PlateauOut>>,
    weights: Vec<Option<WeightsOut>>,
    snaps: Option<SnapIndex>,
    examples: Option<ExamplesOut>,
    epochs: EpochsOut,
    // The current example.
    epoch: usize,
    n_examples: usize,
    example: usize,
    image: usize,
    label: u8,
    example_row: Option<u64>,
    example_start: u64,
    forward_steps: u32,
    target_steps: u32,
    /// (epoch, examples done in it) of the last example handed to the buffers.
    last_done: (usize, usize),
    flush_bytes: usize,
    error: Option<RecordError>,
    finished: bool,
    inject_failure: bool,
}

impl Recorder {
    /// Creates the trace file (truncating one that exists) and writes its root attributes.
    /// `spec_text` is stored as given, for the record.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        path: &Path,
        groups: &[RecordGroup],
        spec_text: &str,
        cfg: &ModelConfig,
        model_toml: &str,
        seed: u64,
        start: StartPoint,
        z: Compression,
    ) -> Result<Self, RecordError> {
        let plan = RecordPlan::resolve(groups, cfg)?;
        let he = |what: &str| {
            let what = what.to_string();
            let path = path.to_path_buf();
            move |source| RecordError::Hdf5 { path, what, source }
        };
        // Memory stays flat on long runs only with the 1.10 format (its extensible-array
        // chunk index; with the 1.8 B-tree index peak RSS grew by ~6 MB per 20,000 recorded
        // examples, docs/traces.md) and a small metadata cache. Its price: a process killed
        // before closing the file leaves it flagged "open for write", and readers refuse it
        // until `h5clear -s` (hdf5-tools) clears the flag.
        let mdc = hdf5::file::MetadataCacheConfig {
            initial_size: 1 << 20,
            min_size: 1 << 19,
            max_size: 4 << 20,
            max_increment: 1 << 20,
            ..Default::default()
        };
        let file = File::with_options()
            .with_fapl(|p| p.libver_v110().mdc_config(&mdc))
            .create(path)
            .map_err(he("cannot create the file"))?;
        let names = population_names(cfg);
        let sizes = cfg.layer_sizes();
        let m_layers = sizes.len();
        let dt = cfg.neuron.dt;
        let mut pre = vec![cfg.network.n_in];
        pre.extend_from_slice(&sizes[..m_layers - 1]);
        let fb = |m: usize| -> usize {
            match cfg.network.feedback {
                crate::config::FeedbackSource::Broadcast => cfg.network.n_out,
                crate::config::FeedbackSource::NextLayer => sizes[m + 1],
            }
        };
        let build = || -> hdf5::Result<Recorder> {
            put_str(&file, "format", "apical-traces")?;
            put_attr(&file, "format_version", &FORMAT_VERSION)?;
            put_str(&file, "apical_version", env!("CARGO_PKG_VERSION"))?;
            put_str(&file, "model_name", &cfg.name)?;
            put_str(&file, "model_toml", model_toml)?;
            put_attr(&file, "seed", &seed)?;
            put_attr(&file, "dt", &dt)?;
            put_str(&file, "time_units", "ms")?;
            put_str(&file, "potential_units", POTENTIAL_UNITS)?;
            put_str(&file, "rate_units", "Hz")?;
            put_str(&file, "record_spec", spec_text)?;
            put_str(&file, "compression", &z.to_string())?;
            put_str(&file, "populations", &names.join(","))?;
            let sz: Vec<u64> = std::iter::once(cfg.network.n_in as u64)
                .chain(sizes.iter().map(|&s| s as u64))
                .collect();
            file.new_attr_builder()
                .with_data(&sz[..])
                .create("population_sizes")?;
            put_attr(&file, "start_epoch", &(start.epoch as u64))?;
            put_attr(&file, "start_example", &(start.example as u64))?;
            put_attr(&file, "start_time", &(start.step as f64 * dt))?;
            put_attr(&file, "complete", &false)?;
            put_str(&file, "stop_reason", "running")?;
            put_attr(&file, "last_epoch", &(start.epoch.saturating_sub(1) as u64))?;
            put_attr(&file, "last_example", &0u64)?;
            put_attr(&file, "end_time", &(start.step as f64 * dt))?;

            let (_, spikes) = per_population(&file, "spikes", &plan.spikes, |sg, p, ex| {
                let g = sg.create_group(&names[p])?;
                g.new_attr::<Sorting>()
                    .create("sorting")?
                    .write_scalar(&Sorting::by_time)?;
                Ok(SpikeOut {
                    examples: *ex,
                    active: false,
                    timestamps: Col::create(z, &g, "timestamps", &[], Some("ms"))?,
                    node_ids: Col::create(z, &g, "node_ids", &[], None)?,
                })
            })?;
            let (_, reports) = per_population(&file, "report", &plan.report, |rg, m, r| {
                ReportOut::create(
                    z,
                    rg,
                    &names[m + 1],
                    sizes[m],
                    &r.elements,
                    r.examples,
                    r.interval,
                    dt,
                    POTENTIAL_UNITS,
                )
            })?;
            let (_, rates) = per_population(&file, "rates", &plan.rate, |g, m, (ex, iv)| {
                ReportOut::create(
                    z,
                    g,
                    &names[m + 1],
                    sizes[m],
                    &[ELEMENT_SOMA],
                    *ex,
                    *iv,
                    dt,
                    "Hz",
                )
            })?;
            let (_, plateaus) = per_population(&file, "plateau", &plan.plateau, |pg, m, ex| {
                let g = pg.create_group(&names[m + 1])?;
                let u = Some(POTENTIAL_UNITS);
                Ok(PlateauOut {
                    examples: *ex,
                    active: false,
                    row: Col::create(z, &g, "example_row", &[], None)?,
                    forward: Col::create(z, &g, "forward", &[sizes[m]], u)?,
                    target: Col::create(z, &g, "target", &[sizes[m]], u)?,
                })
            })?;
            let (wg, weights) = per_population(&file, "weights", &plan.weights, |wg, m, ex| {
                let g = wg.create_group(&names[m + 1])?;
                let hidden = m + 1 < m_layers;
                let u = Some(POTENTIAL_UNITS);
                Ok(WeightsOut {
                    examples: *ex,
                    w: Col::create(z, &g, "W", &[sizes[m], pre[m]], u)?,
                    b: Col::create(z, &g, "b", &[sizes[m]], u)?,
                    y: if hidden {
                        Some(Col::create(z, &g, "Y", &[sizes[m], fb(m)], u)?)
                    } else {
                        None
                    },
                    c: if hidden {
                        Some(Col::create(z, &g, "c", &[sizes[m]], u)?)
                    } else {
                        None
                    },
                    scratch: Vec::new(),
                })
            })?;
            let snaps = match &wg {
                Some(wg) => Some(SnapIndex {
                    epoch: Col::create(z, wg, "epoch", &[], None)?,
                    example: Col::create(z, wg, "example", &[], None)?,
                    time: Col::create(z, wg, "time", &[], Some("ms"))?,
                    last: None,
                }),
                None => None,
            };
            let per_example = plan.spikes.iter().any(Option::is_some)
                || plan.report.iter().any(Option::is_some)
                || plan.rate.iter().any(Option::is_some)
                || plan.plateau.iter().any(Option::is_some)
                || plan.labels.is_some();
            let examples = if per_example {
                let g = file.create_group("examples")?;
                Some(ExamplesOut {
                    epoch: Col::create(z, &g, "epoch", &[], None)?,
                    example: Col::create(z, &g, "example", &[], None)?,
                    image: Col::create(z, &g, "image", &[], None)?,
                    label: Col::create(z, &g, "label", &[], None)?,
                    prediction: Col::create(z, &g, "prediction", &[], None)?,
                    start_time: Col::create(z, &g, "start_time", &[], Some("ms"))?,
                    forward_steps: Col::create(z, &g, "forward_steps", &[], None)?,
                    target_steps: Col::create(z, &g, "target_steps", &[], None)?,
                })
            } else {
                None
            };
            let g = file.create_group("epochs")?;
            let epochs = EpochsOut {
                epoch: Col::create(z, &g, "epoch", &[], None)?,
                train_examples: Col::create(z, &g, "train_examples", &[], None)?,
                train_error: Col::create(z, &g, "train_error", &[], Some("%"))?,
                test_examples: Col::create(z, &g, "test_examples", &[], None)?,
                test_error: Col::create(z, &g, "test_error", &[], Some("%"))?,
                rates_hz: Col::create(z, &g, "rates_hz", &[m_layers], Some("Hz"))?,
                end_time: Col::create(z, &g, "end_time", &[], Some("ms"))?,
            };
            file.flush()?;
            Ok(Recorder {
                file: None,
                writer: Writer {
                    tx: None,
                    thread: None,
                    failed: Default::default(),
                },
                path: PathBuf::new(),
                plan: plan.clone(),
                dt,
                m_layers,
                step: start.step,
                step_active: false,
                spikes,
                reports,
                rates,
                plateaus,
                weights,
                snaps,
                examples,
                epochs,
                epoch: start.epoch,
                n_examples: 0,
                example: start.example,
                image: 0,
                label: 0,
                example_row: None,
                example_start: start.step,
                forward_steps: 0,
                target_steps: 0,
                last_done: (start.epoch.saturating_sub(1), 0),
                flush_bytes: FLUSH_BYTES,
                error: None,
                finished: false,
                inject_failure: false,
            })
        };
        let mut r = build().map_err(he("cannot lay out the file"))?;
        if start.example > 0 {
            r.last_done = (start.epoch, start.example);
        }
        r.file = Some(file);
        r.path = path.to_path_buf();
        r.writer = Writer::spawn().map_err(|e| RecordError::Write {
            path: path.to_path_buf(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        Ok(r)
    }

    /// The trace file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush when this many bytes are buffered at the end of an example (default
    /// [`FLUSH_BYTES`]).
    pub fn set_flush_bytes(&mut self, bytes: usize) {
        self.flush_bytes = bytes;
    }

    /// Makes the next flush fail as a write error would (for tests of that path).
    #[doc(hidden)]
    pub fn inject_write_failure(&mut self) {
        self.inject_failure = true;
    }

    /// The first write error, if recording stopped on one (the run itself goes on).
    pub fn error(&self) -> Option<&RecordError> {
        self.error.as_ref()
    }

    fn buffered_bytes(&self) -> usize {
        let mut b = 0;
        for s in self.spikes.iter().flatten() {
            b += s.timestamps.bytes() + s.node_ids.bytes();
        }
        for r in self.reports.iter().chain(&self.rates).flatten() {
            b += r.bytes();
        }
        for p in self.plateaus.iter().flatten() {
            b += p.forward.bytes() + p.target.bytes() + p.row.bytes();
        }
        for w in self.weights.iter().flatten() {
            b += w.w.bytes() + w.b.bytes();
            b += w.y.as_ref().map_or(0, |c| c.bytes()) + w.c.as_ref().map_or(0, |c| c.bytes());
        }
        b
    }

    fn fail(&mut self, what: &str, source: hdf5::Error) {
        if self.error.is_none() {
            self.error = Some(RecordError::Hdf5 {
                path: self.path.clone(),
                what: what.to_string(),
                source,
            });
        }
    }

    /// Hands every buffer to the writer thread, with an update of the progress attributes.
    /// Blocks while the writer is still busy with the batch before the last one, so at
    /// most two batches are in flight.
    fn flush_all(&mut self) {
        let mut jobs: Vec<Job> = Vec::new();
        if std::mem::take(&mut self.inject_failure) {
            jobs.push(Box::new(|| {
                Err(hdf5::Error::from("injected write failure (test)"))
            }));
        }
        let j = &mut jobs;
        for s in self.spikes.iter_mut().flatten() {
            s.timestamps.flush(j);
            s.node_ids.flush(j);
        }
        for r in self
            .reports
            .iter_mut()
            .chain(self.rates.iter_mut())
            .flatten()
        {
            r.flush(j);
        }
        for p in self.plateaus.iter_mut().flatten() {
            p.row.flush(j);
            p.forward.flush(j);
            p.target.flush(j);
        }
        for w in self.weights.iter_mut().flatten() {
            w.w.flush(j);
            w.b.flush(j);
            if let Some(c) = &mut w.y {
                c.flush(j);
            }
            if let Some(c) = &mut w.c {
                c.flush(j);
            }
        }
        if let Some(s) = &mut self.snaps {
            s.epoch.flush(j);
            s.example.flush(j);
            s.time.flush(j);
        }
        if let Some(e) = &mut self.examples {
            e.epoch.flush(j);
            e.example.flush(j);
            e.image.flush(j);
            e.label.flush(j);
            e.prediction.flush(j);
            e.start_time.flush(j);
            e.forward_steps.flush(j);
            e.target_steps.flush(j);
        }
        let e = &mut self.epochs;
        e.epoch.flush(j);
        e.train_examples.flush(j);
        e.train_error.flush(j);
        e.test_examples.flush(j);
        e.test_error.flush(j);
        e.rates_hz.flush(j);
        e.end_time.flush(j);
        if let Some(f) = &self.file {
            let f = f.clone();
            let (epoch, example) = (self.last_done.0 as u64, self.last_done.1 as u64);
            let end = self.step as f64 * self.dt;
            jobs.push(Box::new(move || {
                put_attr(&f, "last_epoch", &epoch)?;
                put_attr(&f, "last_example", &example)?;
                put_attr(&f, "end_time", &end)?;
                f.flush()
            }));
        }
        let sent = self.writer.tx.as_ref().map(|tx| tx.send(jobs));
        if !matches!(sent, Some(Ok(()))) {
            self.writer_failed("the writer thread stopped".into());
        }
    }

    fn writer_failed(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(RecordError::Write {
                path: self.path.clone(),
                message,
            });
        }
    }

    /// Takes the writer thread's first error, if it had one.
    fn check_writer(&mut self) {
        let msg = self
            .writer
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(m) = msg {
            self.writer_failed(m);
        }
    }

    fn try_flush(&mut self) {
        self.check_writer();
        if self.error.is_some() {
            return;
        }
        self.flush_all();
    }

    /// Best effort after a write error: say so in the file (writer thread joined).
    fn mark_failed(&mut self) {
        if let (Some(f), Some(err)) = (&self.file, &self.error) {
            let _ = put_attr(f, "complete", &false);
            let _ = put_str(f, "stop_reason", &format!("write error: {err}"));
            let _ = f.flush();
        }
    }

    fn snapshot(&mut self, params: &[LayerParams], epoch: usize, example: usize) {
        if self.error.is_some() {
            return;
        }
        let Some(s) = &mut self.snaps else {
            return;
        };
        if s.last == Some((epoch, example)) {
            return;
        }
        s.last = Some((epoch, example));
        s.epoch.push(epoch as u32);
        s.example.push(example as u32);
        s.time.push(self.step as f64 * self.dt);
        for (w, p) in self.weights.iter_mut().zip(params) {
            let Some(w) = w else { continue };
            // W[i, j] = w[j * n + i]: store neuron-major, as (post, pre).
            transpose_into(&p.w, p.n_pre, p.n, &mut w.scratch);
            w.w.extend(&w.scratch);
            w.b.extend(&p.b);
            if let Some(y) = &mut w.y {
                transpose_into(&p.y, p.n_fb, p.n, &mut w.scratch);
                y.extend(&w.scratch);
            }
            if let Some(c) = &mut w.c {
                c.extend(&p.c);
            }
        }
    }

    /// Flushes, writes the final status and closes the file. Returns the first write error,
    /// if any happened during the run.
    pub fn finish(mut self, end: RunEnd) -> Result<PathBuf, RecordError> {
        self.finish_inner(end);
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.path.clone()),
        }
    }

    fn finish_inner(&mut self, end: RunEnd) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.try_flush();
        // Let the writer finish every batch, then write the status from this thread.
        self.writer.tx = None;
        if let Some(t) = self.writer.thread.take() {
            if t.join().is_err() {
                self.writer_failed("the writer thread panicked".into());
            }
        }
        self.check_writer();
        if self.error.is_some() {
            self.mark_failed();
        } else {
            if let Some(f) = &self.file {
                let (complete, reason) = match &end {
                    RunEnd::Completed => (true, "completed".to_string()),
                    RunEnd::Interrupted => (false, "interrupted".to_string()),
                    RunEnd::Failed(m) => (false, format!("failed: {m}")),
                };
                let r = put_attr(f, "complete", &complete)
                    .and_then(|_| put_str(f, "stop_reason", &reason))
                    .and_then(|_| f.flush());
                if let Err(e) = r {
                    self.fail("cannot write the final status", e);
                }
            }
        }
        if let Some(f) = self.file.take() {
            if let Err(e) = f.close() {
                self.fail("cannot close the file", e);
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish_inner(RunEnd::Failed(
            "the recorder was dropped before the run ended".into(),
        ));
    }
}

fn transpose_into(src: &[f32], rows: usize, cols: usize, out: &mut Vec<f32>) {
    // src is [rows][cols]; out becomes [cols][rows].
    out.clear();
    out.resize(rows * cols, 0.0);
    for r in 0..rows {
        for (c, &v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
}

impl Observer for Recorder {
    fn reads_apical(&self) -> bool {
        self.reports
            .iter()
            .flatten()
            .any(|r| r.elements.contains(&ELEMENT_APICAL))
    }

    #[inline]
    fn on_step(&mut self, info: &StepInfo<'_>) {
        if info.phase == Phase::Test {
            return;
        }
        let k = self.step;
        self.step += 1;
        match info.phase {
            Phase::Forward => self.forward_steps += 1,
            _ => self.target_steps += 1,
        }
        if !self.step_active {
            return;
        }
        let t = k as f64 * self.dt;
        let st: &NetState = info.state;
        for (p, s) in self.spikes.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            if !s.active {
                continue;
            }
            let ev = if p == 0 {
                &st.input.events
            } else {
                &st.layers[p - 1].events
            };
            for &i in ev {
                s.timestamps.push(t);
                s.node_ids.push(i as u64);
            }
        }
        for (m, r) in self.reports.iter_mut().enumerate() {
            let Some(r) = r else { continue };
            if !r.active || k % r.interval != 0 {
                continue;
            }
            r.first_time.get_or_insert(t);
            r.times.push(t);
            for b in &st.layers[m].blocks {
                for i in 0..b.soma.len() {
                    for &e in &r.elements {
                        r.data.push(match e {
                            ELEMENT_SOMA => b.soma[i],
                            ELEMENT_BASAL => b.basal[i],
                            _ => b.apical[i],
                        });
                    }
                }
            }
        }
        let hz = 1000.0 / self.dt as f32;
        for (m, r) in self.rates.iter_mut().enumerate() {
            let Some(r) = r else { continue };
            if !r.active || k % r.interval != 0 {
                continue;
            }
            r.first_time.get_or_insert(t);
            r.times.push(t);
            for b in &st.layers[m].blocks {
                for &v in &b.rate {
                    r.data.push(v * hz);
                }
            }
        }
    }

    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        if phase == Phase::Test {
            return;
        }
        let Some(row) = self.example_row else { return };
        for (m, p) in self.plateaus.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            if !p.active {
                continue;
            }
            let l = &state.layers[m];
            match phase {
                Phase::Forward => {
                    p.row.push(row);
                    for &a in &l.forward.a {
                        p.forward.push(plateau_potential(a));
                    }
                }
                _ => {
                    for &a in &l.target.a {
                        p.target.push(plateau_potential(a));
                    }
                }
            }
        }
    }

    fn on_epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        self.epoch = epoch;
        self.n_examples = n;
        if epoch == 1 && first == 0 {
            self.snapshot(params, 0, 0);
        }
    }

    fn on_example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        self.epoch = epoch;
        self.example = example;
        self.image = image;
        self.label = label;
        self.example_start = self.step;
        self.forward_steps = 0;
        self.target_steps = 0;
        let n = self.n_examples;
        if self.error.is_some() {
            self.step_active = false;
            self.example_row = None;
            return;
        }
        self.example_row = if self.plan.example_selected(example, n) {
            self.examples.as_ref().map(|e| e.epoch.total_rows() as u64)
        } else {
            None
        };
        let mut any = false;
        for s in self.spikes.iter_mut().flatten() {
            s.active = s.examples.selects(example, n);
            any |= s.active;
        }
        for r in self
            .reports
            .iter_mut()
            .chain(self.rates.iter_mut())
            .flatten()
        {
            r.active = r.examples.selects(example, n);
            any |= r.active;
        }
        for p in self.plateaus.iter_mut().flatten() {
            p.active = p.examples.selects(example, n);
        }
        self.step_active = any;
    }

    fn on_example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        if let (Some(_), Some(e)) = (self.example_row, &mut self.examples) {
            e.epoch.push(self.epoch as u32);
            e.example.push(self.example as u32);
            e.image.push(self.image as u32);
            e.label.push(self.label);
            e.prediction.push(predicted);
            e.start_time.push(self.example_start as f64 * self.dt);
            e.forward_steps.push(self.forward_steps);
            e.target_steps.push(self.target_steps);
        }
        self.step_active = false;
        self.example_row = None;
        self.last_done = (self.epoch, self.example + 1);
        let (k, n) = (self.example, self.n_examples);
        if self
            .weights
            .iter()
            .flatten()
            .any(|w| w.examples.selects(k, n))
        {
            self.snapshot(params, self.epoch, k + 1);
        }
        // After a write error, on_example_start turns recording off; the run goes on.
        self.check_writer();
        if self.buffered_bytes() >= self.flush_bytes {
            self.try_flush();
        }
    }

    fn on_epoch_end(&mut self, record: &EpochRecord, params: &[LayerParams]) {
        let e = &mut self.epochs;
        e.epoch.push(record.epoch as u32);
        e.train_examples.push(record.train_examples as u32);
        e.train_error.push(record.train_error);
        e.test_examples.push(record.test_examples as u32);
        e.test_error.push(record.test_error);
        let mut rates = record.rates_hz.clone();
        rates.resize(self.m_layers, f64::NAN);
        e.rates_hz.extend(&rates);
        e.end_time.push(self.step as f64 * self.dt);
        self.last_done = (record.epoch, record.train_examples);
        self.snapshot(params, record.epoch, record.train_examples);
        self.try_flush();
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

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

/// A summary of a trace file: root attributes, every group and dataset with its shape, type
/// and units, and the model config.
pub fn inspect(path: &Path) -> Result<String, RecordError> {
    let he = |what: &str| {
        let what = what.to_string();
        let path = path.to_path_buf();
        move |source| RecordError::Hdf5 { path, what, source }
    };
    let f = File::open(path).map_err(he("cannot open the file"))?;
    let mut out = format!("{}\n", path.display());
    let mut attrs = f.attr_names().map_err(he("cannot list attributes"))?;
    attrs.sort();
    out.push_str("attributes:\n");
    for a in &attrs {
        if a != "model_toml" {
            let _ = writeln!(out, "  {a} = {}", attr_text(&f, a));
        }
    }
    out.push_str("contents (dataset, type, shape, attributes):\n");
    inspect_group(&f, "", &mut out).map_err(he("cannot read the file's groups"))?;
    if attrs.iter().any(|a| a == "model_toml") {
        out.push_str("model config:\n");
        for line in attr_text(&f, "model_toml").lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelConfig {
        ModelConfig::default_model()
    }

    fn resolve(spec: &str) -> Result<RecordPlan, SpecError> {
        RecordPlan::resolve(&parse_spec(spec)?, &model())
    }

    #[test]
    fn shortest_spec_records_spikes_of_every_population_for_every_example() {
        let p = resolve("spikes").unwrap();
        assert_eq!(p.spikes, vec![Some(Examples::All); 3]);
        assert!(p.report.iter().all(Option::is_none));
        assert!(p.weights.iter().all(Option::is_none));
    }

    #[test]
    fn default_spec_has_epoch_end_weights_only() {
        let p = resolve(DEFAULT_SPEC).unwrap();
        assert_eq!(p.weights, vec![Some(Examples::None); 2]);
        assert!(p.spikes.iter().all(Option::is_none));
        assert!(!p.example_selected(0, 10));
    }

    #[test]
    fn full_spec_resolves_per_layer() {
        let p = resolve(
            "spikes,soma,apical:layers=hidden0;examples=every:10;interval=5|plateau,labels:examples=last:3",
        )
        .unwrap();
        assert_eq!(p.spikes, vec![None, Some(Examples::Every(10)), None]);
        assert_eq!(
            p.report[0],
            Some(ReportSel {
                elements: vec![ELEMENT_SOMA, ELEMENT_APICAL],
                examples: Examples::Every(10),
                interval: 5
            })
        );
        assert_eq!(p.report[1], None);
        // plateau with layers=all lands on the hidden layer only.
        assert_eq!(p.plateau, vec![Some(Examples::Last(3)), None]);
        assert_eq!(p.labels, Some(Examples::Last(3)));
        assert!(p.example_selected(20, 100));
        assert!(!p.example_selected(21, 100));
        assert!(p.example_selected(98, 100));
    }

    #[test]
    fn example_selections() {
        assert!(Examples::Every(3).selects(6, 10) && !Examples::Every(3).selects(7, 10));
        assert!(Examples::First(2).selects(1, 10) && !Examples::First(2).selects(2, 10));
        assert!(Examples::Last(2).selects(8, 10) && !Examples::Last(2).selects(7, 10));
        assert!(Examples::Range(3, 5).selects(4, 10) && !Examples::Range(3, 5).selects(5, 10));
        assert!(!Examples::None.selects(0, 1));
        assert_eq!(parse_examples("range:2..9"), Ok(Examples::Range(2, 9)));
    }

    fn err(spec: &str) -> SpecError {
        resolve(spec).expect_err(spec)
    }

    #[test]
    fn bad_specs_name_the_bad_part() {
        let e = err("spikes:examples=every:0");
        assert_eq!(e.field, "examples=every:0");
        assert!(e.problem.contains("at least 1"), "{e}");
        let e = err("spikes:interval=0");
        assert_eq!(e.field, "interval=0");
        let e = err("spikes:layer=hidden0");
        assert_eq!(e.field, "layer=hidden0");
        assert!(e.problem.contains("unknown option `layer`"), "{e}");
        let e = err("spikes:examples=range:5..2");
        assert!(e.problem.contains("A < B"), "{e}");
        let e = err("spikes,somaa");
        assert_eq!(e.field, "record[0].variables[1]");
        assert!(e.problem.contains("\"somaa\""), "{e}");
        let e = err("spikes:layers=hidden3");
        assert_eq!(e.field, "record[0].layers[0]");
        assert!(e.problem.contains("input, hidden0, output"), "{e}");
        let e = err("apical:layers=output");
        assert_eq!(e.field, "record[0].layers");
        assert!(e.problem.contains("hidden layers only"), "{e}");
        let e = err("spikes|spikes:layers=output");
        assert_eq!(e.field, "record[1].variables");
        assert!(e.problem.contains("already selected by record[0]"), "{e}");
        let e = err("soma:examples=every:2|basal");
        assert!(e.problem.contains("share one report"), "{e}");
        let e = err("spikes:examples=every:2;examples=all");
        assert!(e.problem.contains("repeats"), "{e}");
        assert!(parse_spec("").is_err());
        assert_eq!(parse_spec("none"), Ok(vec![]));
    }

    #[test]
    fn compression_names() {
        assert_eq!("none".parse(), Ok(Compression::None));
        assert_eq!("deflate".parse(), Ok(Compression::Deflate(1)));
        assert_eq!("deflate:6".parse(), Ok(Compression::Deflate(6)));
        assert!("deflate:10".parse::<Compression>().is_err());
        assert!("gzip"
            .parse::<Compression>()
            .unwrap_err()
            .contains("\"gzip\""));
        assert_eq!(Compression::Deflate(6).to_string(), "deflate:6");
    }

    #[test]
    fn record_tables_in_a_model_file_are_validated_with_field_names() {
        let mut text = crate::config::DEFAULT_MODEL_TOML.to_string();
        text.push_str("\n[[record]]\nvariables = [\"spikes\", \"soma\"]\nlayers = [\"hidden0\"]\nexamples = \"every:10\"\ninterval = 5\n");
        let cfg = ModelConfig::from_toml_str(&text, "m.toml").unwrap();
        assert_eq!(cfg.record.len(), 1);
        assert_eq!(cfg.record[0].interval, 5);
        // The config round-trips through its TOML text with the record table.
        let again = ModelConfig::from_toml_str(&cfg.to_toml_string(), "again").unwrap();
        assert_eq!(again, cfg);
        let bad = text.replace("every:10", "evry:10");
        let e = ModelConfig::from_toml_str(&bad, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("record[0].examples"), "{e}");
        let bad = text.replace("interval = 5", "intervall = 5");
        let e = ModelConfig::from_toml_str(&bad, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("intervall"), "{e}");
    }
}
