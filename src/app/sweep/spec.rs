//! The sweep file and its points.
//!
//! ```toml
//! model = "guerguiev-1h"      # an experiment (`apical reproduce` names) or a model file,
//!                             # relative to this file
//! [training]                  # optional; default: the model's [training] section
//! epochs = 1
//! train_examples = 400
//! test_examples = 200
//! [set]                       # optional: fields set for every point
//! "neuron.g_A" = 0.05
//! [axes]                      # each a list of values; the points are their product
//! "learning.eta" = [[0.19, 0.19], [0.23, 0.23]]
//! seed = [0, 1]
//! [zip]                       # optional: lists of one length, taken together, then
//!                             # producted with [axes]
//! ```
//!
//! Keys are dotted paths into the model file (quoted, or written as nested tables). Axes are
//! taken in the alphabetical order of their keys with `seed` last, the last varying fastest,
//! after the zipped tuples; a point's name lists its values in that order, so it does not
//! depend on the order of the file or on the other points.

use crate::app::reproduce::{self, Experiment};
use crate::app::sweep::{io_err, write_shared, SweepError};
use crate::io::run_dir::KeepCheckpoints;
use crate::model::config::ModelConfig;
use crate::model::overrides::Override;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The axis name of the seed (not a model field).
pub const SEED: &str = "seed";
/// The sweep as run, inside the sweep directory.
pub const SWEEP_FILE: &str = "sweep.toml";
/// A model-file base, copied into the sweep directory.
pub const BASE_MODEL_FILE: &str = "base-model.toml";
/// More points than this is taken for a mistake.
pub const MAX_POINTS: usize = 100_000;
/// Point names longer than this are cut and get a hash.
const MAX_NAME: usize = 100;

/// The base model of a sweep.
#[derive(Clone, Debug)]
pub enum Base {
    /// One of the experiments of `apical reproduce` (embedded model file).
    Experiment(&'static Experiment),
    /// A model file (the path as resolved against the sweep file's folder).
    File(PathBuf),
}

/// The `[training]` table: what every point runs. `None`: each point's model's own
/// `[training]` value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    pub epochs: Option<usize>,
    pub train_examples: Option<usize>,
    pub test_examples: Option<usize>,
    /// Mid-epoch checkpoint interval in examples (0 or absent: epoch ends only).
    pub checkpoint_every: Option<usize>,
    /// The record spec of every run (`apical train --record`; "none": no trace files).
    pub record: Option<String>,
    /// Which end-of-epoch checkpoints every run keeps (`apical train --keep-checkpoints`).
    pub keep_checkpoints: Option<KeepCheckpoints>,
}

/// The fields of a sweep's `[training]` table.
const BUDGET_FIELDS: [&str; 6] = [
    "epochs",
    "train_examples",
    "test_examples",
    "checkpoint_every",
    "record",
    "keep_checkpoints",
];

impl Budget {
    /// Takes every field `other` gives.
    fn merge(&mut self, other: Budget) {
        let Budget {
            epochs,
            train_examples,
            test_examples,
            checkpoint_every,
            record,
            keep_checkpoints,
        } = other;
        self.epochs = epochs.or(self.epochs);
        self.train_examples = train_examples.or(self.train_examples);
        self.test_examples = test_examples.or(self.test_examples);
        self.checkpoint_every = checkpoint_every.or(self.checkpoint_every);
        self.record = record.or(self.record.take());
        self.keep_checkpoints = keep_checkpoints.or(self.keep_checkpoints);
    }
}

/// One swept key and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// A parsed, checked sweep file.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// The file it was read from (named in errors).
    pub path: PathBuf,
    pub base: Base,
    /// The base model, before any override.
    pub model: ModelConfig,
    pub budget: Budget,
    /// Overrides of every point (`[set]`, then the command line's `--set`).
    pub set: Vec<Override>,
    /// Producted axes, in canonical order (alphabetical, `seed` last).
    pub axes: Vec<Axis>,
    /// Zipped axes (all of one length), in canonical order.
    pub zip: Vec<Axis>,
    /// The data set of every point (`dataset = "fashion-mnist"` or a path relative to the
    /// sweep file, made absolute); `None`: MNIST, or the command line's `--dataset`.
    pub dataset: Option<String>,
}

/// One point of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Position in the sweep's point order (shards are taken by it).
    pub index: usize,
    /// Every swept key with this point's value, in canonical order; `seed` is always last.
    pub values: Vec<(String, Value)>,
    pub seed: u64,
    /// The run directory's name (see [`point_name`]).
    pub name: String,
}

impl Point {
    /// The model-field overrides of this point (every value but the seed).
    pub fn overrides(&self) -> Vec<Override> {
        self.values
            .iter()
            .filter(|(k, _)| k != SEED)
            .map(|(k, v)| Override {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }

    /// `key=value` pairs, e.g. `learning.eta=[0.19, 0.19] seed=0`.
    pub fn label(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A point with its effective model and budget.
#[derive(Clone, Debug)]
pub struct PointRun {
    pub point: Point,
    /// The base model with `[set]` and the point's values applied (what model.toml holds).
    pub model: ModelConfig,
    pub epochs: usize,
    pub train_examples: usize,
    pub test_examples: usize,
    /// The sweep's `[training]` record spec and checkpoint interval (`None`: as
    /// `apical train` without the option).
    pub record: Option<String>,
    pub checkpoint_every: Option<usize>,
    /// The sweep's retention policy (`None`: as `apical train` without the option).
    pub keep_checkpoints: Option<KeepCheckpoints>,
}

/// The K-th of N slices of a sweep's points: the points whose index is K modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not K/N with 0 <= K < N (e.g. 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl Shard {
    pub fn contains(&self, p: &Point) -> bool {
        p.index % self.n == self.k
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Canonical key order: alphabetical, `seed` last.
fn key_order(a: &str, b: &str) -> Ordering {
    (a == SEED, a).cmp(&(b == SEED, b))
}

/// A float as the shortest text that reads back to it, with `.0` on whole numbers (so that
/// 1.0 and the integer 1 differ).
pub fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A value for people and CSV cells: strings bare, everything else as inline TOML.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Float(f) => float_text(*f),
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Table(_))
}

/// A value inside a directory name: scalars as in [`value_text`], a flat list as its
/// elements joined by commas, anything else as inline TOML.
fn name_value(v: &Value) -> String {
    match v {
        Value::Array(a) if a.iter().all(is_scalar) => {
            a.iter().map(name_value).collect::<Vec<_>>().join(",")
        }
        other => value_text(other),
    }
}

/// The directory name of a point: `key=value` parts in canonical order joined by `__`, e.g.
/// `learning.eta=0.19,0.19__seed=0`. Characters other than ASCII letters, digits and
/// `._,=+-` become `_`; when that changed anything, or the name is longer than 100
/// characters (then cut), `-h` and 10 hex digits of the SHA-256 of the exact values follow,
/// so distinct points keep distinct names. A function of the point alone.
pub fn point_name(values: &[(String, Value)]) -> String {
    let readable = values
        .iter()
        .map(|(k, v)| format!("{k}={}", name_value(v)))
        .collect::<Vec<_>>()
        .join("__");
    let mut lossy = false;
    let mut name: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._,=+-".contains(c) {
                c
            } else {
                lossy = true;
                '_'
            }
        })
        .collect();
    if lossy || name.len() > MAX_NAME {
        let exact = values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n");
        let hash = Sha256::digest(exact.as_bytes());
        let hex: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
        name.truncate(MAX_NAME);
        name.push_str("-h");
        name.push_str(&hex);
    }
    name
}

/// Dotted keys of a table (nested tables flattened), each with its value.
fn flatten(prefix: &str, t: &Table, out: &mut Vec<(String, Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(sub) => flatten(&key, sub, out),
            _ => out.push((key, v.clone())),
        }
    }
}

impl SweepSpec {
    /// Reads and checks a sweep file.
    pub fn from_file(path: &Path) -> Result<Self, SweepError> {
        let text = crate::base::text::read_text_at_most(path, crate::base::text::MAX_TEXT_FILE)
            .map_err(io_err(path))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and checks sweep text; `path` names it in errors and anchors a relative
    /// model path.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, SweepError> {
        let bad = |problem: String| SweepError::Spec {
            path: path.to_path_buf(),
            problem,
        };
        let mut doc: Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.to_string().trim_end().to_string()))?;
        let model = match doc.remove("model") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(bad("`model` must be a string".into())),
            None => {
                return Err(bad(
                    "no `model` (an experiment such as \"guerguiev-1h\", or a model file relative to the sweep file)".into(),
                ))
            }
        };
        let folder = path.parent().unwrap_or(Path::new(""));
        let (base, cfg) = resolve_base(&model, folder).map_err(&bad)?;
        let dataset = match doc.remove("dataset") {
            None => None,
            Some(Value::String(d)) if d == "mnist" || d == "fashion-mnist" => Some(d),
            Some(Value::String(d)) => {
                let p = folder.join(&d);
                Some(
                    std::fs::canonicalize(&p)
                        .unwrap_or(p)
                        .display()
                        .to_string(),
                )
            }
            Some(_) => {
                return Err(bad(
                    "`dataset` must be a string: mnist, fashion-mnist, or a folder of IDX files or a .npz relative to the sweep file".into(),
                ))
            }
        };
        let mut table = |name: &str| -> Result<Vec<(String, Value)>, SweepError> {
            match doc.remove(name) {
                None => Ok(Vec::new()),
                Some(Value::Table(t)) => {
                    let mut v = Vec::new();
                    flatten("", &t, &mut v);
                    Ok(v)
                }
                Some(_) => Err(bad(format!("`{name}` must be a table ([{name}])"))),
            }
        };
        let training = table("training")?;
        let set = table("set")?;
        let axes = table("axes")?;
        let zip = table("zip")?;
        if let Some(k) = doc.keys().next() {
            return Err(bad(format!(
                "unknown entry `{k}` (a sweep file has model, dataset, [training], [set], [axes] and [zip])"
            )));
        }
        let budget = parse_budget(&training).map_err(&bad)?;
        let set: Vec<Override> = set
            .into_iter()
            .map(|(key, value)| {
                if key == SEED {
                    Err(bad(
                        "[set] cannot hold `seed`; write `seed = [S]` in [axes]".into(),
                    ))
                } else {
                    Ok(Override { key, value })
                }
            })
            .collect::<Result<_, _>>()?;
        let axes = parse_axes("axes", axes).map_err(&bad)?;
        let zip = parse_axes("zip", zip).map_err(&bad)?;
        if let Some(first) = zip.first() {
            if let Some(other) = zip.iter().find(|a| a.values.len() != first.values.len()) {
                return Err(bad(format!(
                    "the [zip] lists must have one length: `{}` has {} values, `{}` has {}",
                    first.key,
                    first.values.len(),
                    other.key,
                    other.values.len()
                )));
            }
        }
        let spec = SweepSpec {
            path: path.to_path_buf(),
            base,
            model: cfg,
            budget,
            set,
            axes,
            zip,
            dataset,
        };
        spec.check_keys()?;
        Ok(spec)
    }

    /// Adds overrides for every point (the command line's `--set`); one naming a key of
    /// `[set]` replaces it. A key of the sweep's `[training]` table
    /// (`training.epochs`, `training.train_examples`, `training.test_examples`,
    /// `training.checkpoint_every`, `training.record`, `training.keep_checkpoints`) sets
    /// that part of every point's budget instead, replacing the file's: the budget flags of
    /// `apical sweep` come this way, and the sweep's own copy (sweep.toml) records it.
    pub fn with_set(mut self, extra: &[Override]) -> Result<Self, SweepError> {
        for o in extra {
            if let Some(field) = o
                .key
                .strip_prefix("training.")
                .filter(|f| BUDGET_FIELDS.contains(f))
            {
                let b =
                    parse_budget(&[(field.to_string(), o.value.clone())]).map_err(|problem| {
                        SweepError::Spec {
                            path: self.path.clone(),
                            problem: format!("--set {}: {problem}", o.key),
                        }
                    })?;
                self.budget.merge(b);
                continue;
            }
            self.set.retain(|s| s.key != o.key);
            self.set.push(o.clone());
        }
        self.check_keys()?;
        Ok(self)
    }

    /// Every key is swept or set once; a key the budget fixes is not swept; there are not
    /// too many points.
    fn check_keys(&self) -> Result<(), SweepError> {
        let bad = |problem: String| SweepError::Spec {
            path: self.path.clone(),
            problem,
        };
        let mut seen: Vec<(&str, &str)> = Vec::new();
        let all = self
            .set
            .iter()
            .map(|o| (o.key.as_str(), "[set]"))
            .chain(self.axes.iter().map(|a| (a.key.as_str(), "[axes]")))
            .chain(self.zip.iter().map(|a| (a.key.as_str(), "[zip]")));
        for (key, table) in all {
            if let Some((_, t)) = seen.iter().find(|(k, _)| *k == key) {
                return Err(bad(format!("`{key}` is in both {t} and {table}")));
            }
            seen.push((key, table));
        }
        let fixed = [
            ("epochs", self.budget.epochs.is_some()),
            ("train_examples", self.budget.train_examples.is_some()),
            ("test_examples", self.budget.test_examples.is_some()),
        ];
        for (field, given) in fixed {
            let key = format!("training.{field}");
            if let Some((_, t)) = seen.iter().find(|(k, _)| *k == key).filter(|_| given) {
                return Err(bad(format!(
                    "`{key}` in {t} has no effect: [training] {field} gives every point's budget; remove one of them"
                )));
            }
        }
        let mut n: usize = self.zip.first().map_or(1, |a| a.values.len());
        for a in &self.axes {
            n = n.saturating_mul(a.values.len());
        }
        if n > MAX_POINTS {
            return Err(bad(format!(
                "{n} points; more than {MAX_POINTS} is taken for a mistake"
            )));
        }
        Ok(())
    }

    /// Every swept key in canonical order, `seed` last (also when it is not swept).
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .zip
            .iter()
            .chain(&self.axes)
            .map(|a| a.key.clone())
            .collect();
        if !k.iter().any(|k| k == SEED) {
            k.push(SEED.into());
        }
        k.sort_by(|a, b| key_order(a, b));
        k
    }

    /// The points: the zipped tuples (outermost), producted with each axis in canonical
    /// order (the last varying fastest). A sweep without a seed axis runs seed 0.
    pub fn points(&self) -> Vec<Point> {
        let zip_len = self.zip.first().map_or(1, |a| a.values.len());
        let mut combos: Vec<Vec<(String, Value)>> = (0..zip_len)
            .map(|i| {
                self.zip
                    .iter()
                    .map(|a| (a.key.clone(), a.values[i].clone()))
                    .collect()
            })
            .collect();
        for axis in &self.axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    axis.values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((axis.key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        combos
            .into_iter()
            .enumerate()
            .map(|(index, mut values)| {
                if !values.iter().any(|(k, _)| k == SEED) {
                    values.push((SEED.into(), Value::Integer(0)));
                }
                values.sort_by(|a, b| key_order(&a.0, &b.0));
                let seed = values
                    .iter()
                    .find(|(k, _)| k == SEED)
                    .and_then(|(_, v)| v.as_integer())
                    .and_then(|s| u64::try_from(s).ok())
                    .expect("seed values are checked to be integers >= 0");
                let name = point_name(&values);
                Point {
                    index,
                    values,
                    seed,
                    name,
                }
            })
            .collect()
    }

    /// Where errors say the base model comes from.
    pub fn origin(&self) -> String {
        match &self.base {
            Base::Experiment(e) => format!("models/{}.toml (embedded)", e.name),
            Base::File(p) => p.display().to_string(),
        }
    }

    /// A point's model and budget; an invalid value or unknown key is an error naming the
    /// point and the key (and the nearest valid key).
    pub fn resolve(&self, p: &Point) -> Result<PointRun, SweepError> {
        let mut overrides = self.set.clone();
        overrides.extend(p.overrides());
        let model = self
            .model
            .with_overrides(&overrides, &self.origin())
            .map_err(|source| SweepError::Point {
                path: self.path.clone(),
                point: p.label(),
                source,
            })?;
        let t = &model.training;
        let b = &self.budget;
        Ok(PointRun {
            point: p.clone(),
            epochs: b.epochs.unwrap_or(t.epochs),
            train_examples: b.train_examples.unwrap_or(t.train_examples),
            test_examples: b.test_examples.unwrap_or(t.test_examples),
            record: b.record.clone(),
            checkpoint_every: b.checkpoint_every,
            keep_checkpoints: b.keep_checkpoints,
            model,
        })
    }

    /// Every point resolved (so nothing runs unless all are valid); two points with one
    /// directory name are an error.
    pub fn resolve_all(&self) -> Result<Vec<PointRun>, SweepError> {
        let runs = self
            .points()
            .iter()
            .map(|p| self.resolve(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<(&str, &Point)> = runs
            .iter()
            .map(|r| (r.point.name.as_str(), &r.point))
            .collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SweepError::Spec {
                path: self.path.clone(),
                problem: format!(
                    "points {} and {} would share the directory {}",
                    w[0].1.label(),
                    w[1].1.label(),
                    w[0].0
                ),
            });
        }
        for r in &runs {
            if r.epochs == 0 || r.train_examples == 0 || r.test_examples == 0 {
                return Err(SweepError::Spec {
                    path: self.path.clone(),
                    problem: format!(
                        "point {}: epochs, train_examples and test_examples must be at least 1",
                        r.point.label()
                    ),
                });
            }
        }
        Ok(runs)
    }

    /// The sweep as TOML, self-contained inside a sweep directory: an experiment base by
    /// name, a model-file base as [`BASE_MODEL_FILE`] beside it.
    pub fn to_toml(&self) -> String {
        let mut doc = Table::new();
        let model = match &self.base {
            Base::Experiment(e) => e.name.to_string(),
            Base::File(_) => BASE_MODEL_FILE.to_string(),
        };
        doc.insert("model".into(), Value::String(model));
        if let Some(d) = &self.dataset {
            doc.insert("dataset".into(), Value::String(d.clone()));
        }
        let mut training = Table::new();
        let b = &self.budget;
        for (k, v) in [
            ("epochs", b.epochs),
            ("train_examples", b.train_examples),
            ("test_examples", b.test_examples),
            ("checkpoint_every", b.checkpoint_every),
        ] {
            if let Some(v) = v {
                training.insert(k.into(), Value::Integer(v as i64));
            }
        }
        if let Some(r) = &b.record {
            training.insert("record".into(), Value::String(r.clone()));
        }
        if let Some(k) = &b.keep_checkpoints {
            training.insert("keep_checkpoints".into(), Value::String(k.to_string()));
        }
        let mut tables = vec![("training", training)];
        let set: Table = self
            .set
            .iter()
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect();
        tables.push(("set", set));
        for (name, axes) in [("axes", &self.axes), ("zip", &self.zip)] {
            let t: Table = axes
                .iter()
                .map(|a| (a.key.clone(), Value::Array(a.values.clone())))
                .collect();
            tables.push((name, t));
        }
        for (name, t) in tables {
            if !t.is_empty() {
                doc.insert(name.into(), Value::Table(t));
            }
        }
        format!(
            "# The sweep as run (written by apical sweep); `apical sweep {SWEEP_FILE} --out .` reruns it.\n{}",
            toml::to_string(&doc).expect("a sweep serialises")
        )
    }

    /// Writes the self-contained sweep (`sweep.toml`, and `base-model.toml` for a model-file
    /// base) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), SweepError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if let Base::File(_) = self.base {
            write_shared(
                &dir.join(BASE_MODEL_FILE),
                self.model.to_toml_string().as_bytes(),
            )?;
        }
        write_shared(&dir.join(SWEEP_FILE), self.to_toml().as_bytes())
    }

    /// The sweep saved in a sweep directory.
    pub fn load_dir(dir: &Path) -> Result<Self, SweepError> {
        let p = dir.join(SWEEP_FILE);
        if !p.is_file() {
            return Err(SweepError::Invalid(format!(
                "{} is not a sweep directory (no {SWEEP_FILE})",
                dir.display()
            )));
        }
        Self::from_file(&p)
    }
}

/// The experiment or model file `model` names.
fn resolve_base(model: &str, folder: &Path) -> Result<(Base, ModelConfig), String> {
    let looks_like_file = model.ends_with(".toml") || model.contains('/');
    if !looks_like_file {
        let e = reproduce::select(model).map_err(|e| {
            format!("model: {e} (a model file must end in .toml, relative to the sweep file)")
        })?;
        let [e] = e[..] else {
            return Err(format!("model: {model:?} names more than one experiment"));
        };
        let cfg = ModelConfig::from_toml_str(e.model_toml, &format!("models/{}.toml", e.name))
            .map_err(|err| err.to_string())?;
        return Ok((Base::Experiment(e), cfg));
    }
    let path = folder.join(model);
    let cfg = ModelConfig::from_file(&path).map_err(|e| format!("model: {e}"))?;
    Ok((Base::File(path), cfg))
}

fn parse_budget(items: &[(String, Value)]) -> Result<Budget, String> {
    let mut b = Budget::default();
    for (k, v) in items {
        let count = || match v.as_integer() {
            Some(n) if n >= 0 => Ok(n as usize),
            _ => Err(format!(
                "[training] {k} must be a whole number >= 0, not {v}"
            )),
        };
        let positive = || match count()? {
            0 => Err(format!("[training] {k} must be at least 1")),
            n => Ok(n),
        };
        match k.as_str() {
            "epochs" => b.epochs = Some(positive()?),
            "train_examples" => b.train_examples = Some(positive()?),
            "test_examples" => b.test_examples = Some(positive()?),
            "checkpoint_every" => b.checkpoint_every = Some(count()?),
            "record" => match v {
                Value::String(s) => b.record = Some(s.clone()),
                _ => return Err(format!("[training] record must be a string, not {v}")),
            },
            "keep_checkpoints" => match v {
                Value::String(s) => {
                    b.keep_checkpoints = Some(
                        s.parse()
                            .map_err(|e| format!("[training] keep_checkpoints: {e}"))?,
                    )
                }
                _ => {
                    return Err(format!(
                        "[training] keep_checkpoints must be a string such as \"last:2,every:10\", not {v}"
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "[training] has no field `{k}` (epochs, train_examples, test_examples, checkpoint_every, record, keep_checkpoints)"
                ))
            }
        }
    }
    Ok(b)
}

fn parse_axes(table: &str, items: Vec<(String, Value)>) -> Result<Vec<Axis>, String> {
    let mut axes = Vec::new();
    for (key, v) in items {
        let values = match v {
            Value::Array(a) if !a.is_empty() => a,
            other => {
                return Err(format!(
                    "[{table}] `{key}` must be a non-empty list of values (e.g. [0.1, 0.2]), not {other}"
                ))
            }
        };
        if key == SEED {
            if let Some(bad) = values.iter().find(|v| v.as_integer().is_none_or(|s| s < 0)) {
                return Err(format!(
                    "[{table}] seed values must be whole numbers >= 0, not {bad}"
                ));
            }
        }
        axes.push(Axis { key, values });
    }
    axes.sort_by(|a, b| key_order(&a.key, &b.key));
    Ok(axes)
}
