//! `apical sweep collect` and `apical sweep status`: a sweep directory's points, their
//! state and results.
//!
//! `summary.csv` has one row per point in the sweep's point order: the point's directory
//! (relative to the sweep directory), each swept value (seed a column like any axis), its
//! state, the example counts, final and best test error and the wall time. Only the
//! `wall_seconds` column depends on the machine: no absolute path, host, date or shard is
//! written, so the same sweep collects to the same file wherever it ran. `summary.md`
//! groups the seeds of each setting (mean ± sd) and links a plot of the error against each
//! axis (when a font for plot text is found).

use crate::app::plot::{self, Series, XScale};
use crate::app::sweep::runner::{point_dir, point_state, read_metrics, PointState};
use crate::app::sweep::spec::{value_text, Base, PointRun, SweepSpec, SEED};
use crate::app::sweep::{io_err, write_shared, SweepError};
use crate::io::run_dir::{trained, EpochMetrics};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use toml::Value;

/// A point with its state and the metrics of its first `epochs` epochs.
#[derive(Clone, Debug)]
pub struct PointResult {
    pub run: PointRun,
    pub state: PointState,
    pub metrics: Vec<EpochMetrics>,
}

impl PointResult {
    /// Test error after the last epoch, once the point is done.
    pub fn final_test_error(&self) -> Option<f64> {
        (self.state == PointState::Done)
            .then(|| self.metrics.last().map(|m| m.record.test_error))
            .flatten()
    }

    /// The lowest test error over the trained epochs (not the initial test) and the (first)
    /// epoch it was reached, once the point is done.
    pub fn best_test_error(&self) -> Option<(f64, usize)> {
        if self.state != PointState::Done {
            return None;
        }
        trained(&self.metrics)
            .iter()
            .map(|m| (m.record.test_error, m.record.epoch))
            .fold(None, |best: Option<(f64, usize)>, (e, ep)| match best {
                Some((b, _)) if b <= e => best,
                _ => Some((e, ep)),
            })
    }

    pub fn wall_seconds(&self) -> f64 {
        self.metrics.iter().map(|m| m.wall_seconds).sum()
    }
}

/// Every point of the sweep saved in `dir`, with its state and metrics.
pub fn survey(dir: &Path) -> Result<(SweepSpec, Vec<PointResult>), SweepError> {
    let spec = SweepSpec::load_dir(dir)?;
    let mut out = Vec::new();
    for run in spec.resolve_all()? {
        let pdir = point_dir(dir, &run);
        // A damaged point is reported as such; the others are listed and collected.
        let state = match point_state(&run, &pdir) {
            Ok(s) => s,
            Err(e @ (SweepError::Damaged { .. } | SweepError::Mismatch { .. })) => {
                PointState::Damaged(e.to_string())
            }
            Err(e) => return Err(e),
        };
        let mut metrics = read_metrics(&pdir);
        // The initial test (epoch 0) and the point's epochs.
        metrics.retain(|m| m.record.epoch <= run.epochs);
        out.push(PointResult {
            run,
            state,
            metrics,
        });
    }
    Ok((spec, out))
}

/// One CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or(String::new(), |x| format!("{x:.digits$}"))
}

/// The text of summary.csv.
pub fn summary_csv(spec: &SweepSpec, results: &[PointResult]) -> String {
    let keys = spec.keys();
    let mut header = vec!["point".to_string()];
    header.extend(keys.iter().cloned());
    header.extend(
        [
            "status",
            "epochs",
            "epochs_done",
            "train_examples",
            "test_examples",
            "final_test_error",
            "best_test_error",
            "best_test_error_epoch",
            "final_train_error",
            "wall_seconds",
        ]
        .map(String::from),
    );
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in results {
        let p = &r.run.point;
        let mut row = vec![p.name.clone()];
        for k in &keys {
            let v = p.values.iter().find(|(pk, _)| pk == k).map(|(_, v)| v);
            row.push(v.map(value_text).unwrap_or_default());
        }
        let done = r.state == PointState::Done;
        let best = r.best_test_error();
        row.extend([
            r.state.word().to_string(),
            r.run.epochs.to_string(),
            trained(&r.metrics).len().to_string(),
            r.run.train_examples.to_string(),
            r.run.test_examples.to_string(),
            opt(r.final_test_error(), 4),
            opt(best.map(|b| b.0), 4),
            best.map_or(String::new(), |b| b.1.to_string()),
            opt(
                done.then(|| r.metrics.last().map(|m| m.record.train_error))
                    .flatten(),
                4,
            ),
            opt(done.then(|| r.wall_seconds()), 3),
        ]);
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// A setting: every swept value but the seed.
type Setting = Vec<(String, Value)>;

fn setting_of(r: &PointResult) -> Setting {
    r.run
        .point
        .values
        .iter()
        .filter(|(k, _)| k != SEED)
        .cloned()
        .collect()
}

/// The points grouped by setting, in order of first appearance.
fn by_setting(results: &[PointResult]) -> Vec<(Setting, Vec<&PointResult>)> {
    let mut groups: Vec<(Setting, Vec<&PointResult>)> = Vec::new();
    for r in results {
        let s = setting_of(r);
        match groups.iter_mut().find(|(g, _)| *g == s) {
            Some((_, v)) => v.push(r),
            None => groups.push((s, vec![r])),
        }
    }
    groups
}

fn mean_text(v: &[f64]) -> String {
    match v.len() {
        0 => "–".into(),
        1 => format!("{:.2}", v[0]),
        _ => {
            let (m, sd) = mean_sd(v);
            format!("{m:.2} ± {sd:.2}")
        }
    }
}

/// The text of summary.md; `plots` are file names under `plots/`.
pub fn summary_md(spec: &SweepSpec, results: &[PointResult], plots: &[(String, String)]) -> String {
    let mut s = String::from("# Sweep summary\n\n");
    s.push_str(
        "Written by `apical sweep collect` from `sweep.toml`; one row per point in `summary.csv`. \
         Test errors in percent; paths are relative to this folder.\n\n",
    );
    let base = match &spec.base {
        Base::Experiment(e) => format!("`{}` (embedded `models/{}.toml`)", e.name, e.name),
        Base::File(_) => "`base-model.toml` (a copy of the sweep's model file)".into(),
    };
    let _ = writeln!(s, "- base model: {base}");
    let _ = writeln!(
        s,
        "- data set: {}",
        spec.dataset.as_deref().unwrap_or("mnist")
    );
    let budgets: Vec<(usize, usize, usize)> = results
        .iter()
        .map(|r| (r.run.epochs, r.run.train_examples, r.run.test_examples))
        .collect();
    match budgets.first() {
        Some(&(e, tr, te)) if budgets.iter().all(|b| *b == (e, tr, te)) => {
            let _ = writeln!(
                s,
                "- budget: {e} epoch(s) of {tr} training examples, {te} test images"
            );
        }
        _ => s.push_str("- budget: differs between points (see summary.csv)\n"),
    }
    for o in &spec.set {
        let _ = writeln!(s, "- every point: `{}` = `{}`", o.key, o.value);
    }
    let axes = |axes: &[crate::app::sweep::spec::Axis]| {
        axes.iter()
            .map(|a| format!("`{}` ({} values)", a.key, a.values.len()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !spec.axes.is_empty() {
        let _ = writeln!(s, "- axes (product): {}", axes(&spec.axes));
    }
    if !spec.zip.is_empty() {
        let _ = writeln!(s, "- zipped: {}", axes(&spec.zip));
    }
    let count = |w: &str| results.iter().filter(|r| r.state.word() == w).count();
    let _ = writeln!(
        s,
        "- points: {}: {} done, {} running, {} unfinished, {} failed, {} not started\n",
        results.len(),
        count("done"),
        count("running"),
        count("unfinished"),
        count("failed"),
        count("not-started")
    );
    let keys: Vec<String> = spec.keys().into_iter().filter(|k| k != SEED).collect();
    s.push_str("## Test error per setting (mean ± sd over the seeds done)\n\n|");
    for k in &keys {
        let _ = write!(s, " `{k}` |");
    }
    s.push_str(" seeds done | final test error | best test error | final, per seed | wall seconds per run |\n|");
    s.push_str(&"---|".repeat(keys.len() + 5));
    s.push('\n');
    for (setting, rs) in by_setting(results) {
        s.push('|');
        for (_, v) in &setting {
            let _ = write!(s, " {} |", value_text(v).replace('|', "\\|"));
        }
        let done: Vec<&&PointResult> = rs.iter().filter(|r| r.state == PointState::Done).collect();
        let seeds: Vec<String> = done.iter().map(|r| r.run.point.seed.to_string()).collect();
        let finals: Vec<f64> = done.iter().filter_map(|r| r.final_test_error()).collect();
        let bests: Vec<f64> = done
            .iter()
            .filter_map(|r| r.best_test_error().map(|b| b.0))
            .collect();
        let walls: Vec<f64> = done.iter().map(|r| r.wall_seconds()).collect();
        let seeds_text = if done.len() == rs.len() {
            seeds.join(", ")
        } else {
            format!("{} ({} of {})", seeds.join(", "), done.len(), rs.len())
        };
        let _ = writeln!(
            s,
            " {} | {} | {} | {} | {} |",
            seeds_text,
            mean_text(&finals),
            mean_text(&bests),
            finals
                .iter()
                .map(|e| format!("{e:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            if walls.is_empty() {
                "–".into()
            } else {
                format!("{:.1}", mean_sd(&walls).0)
            }
        );
    }
    if !plots.is_empty() {
        s.push_str("\n## Plots\n\n");
        for (file, key) in plots {
            let _ = writeln!(
                s,
                "![final test error against {key}](plots/{file})\n\nFinal test error against `{key}`: the mean over the seeds done, and each seed's own as a circle.\n"
            );
        }
    }
    s
}

/// Where an axis' values go on a chart's x axis.
#[derive(Clone, Debug, PartialEq)]
struct XAxis {
    /// The x of each value.
    xs: Vec<f64>,
    /// The axis label.
    desc: String,
    scale: XScale,
}

/// The number a value stands for on a chart: a number itself; a list of numbers whose
/// elements are all equal (`[0.1, 0.1]`: one rate for every layer) that number.
fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Array(a) => {
            let first = number_of(a.first()?)?;
            a.iter()
                .all(|e| !matches!(e, Value::Array(_)) && number_of(e) == Some(first))
                .then_some(first)
        }
        _ => None,
    }
}

/// x positions of an axis' values: by value when each stands for a number ([`number_of`];
/// lists of numbers of one length whose elements differ: their first element that differs
/// between every two values, named in the label), on a logarithmic axis when the positive
/// values span a decade or more (learning rates); otherwise in their order of appearance,
/// listed in the label.
fn x_positions(key: &str, values: &[Value]) -> XAxis {
    let scale_of = |xs: &[f64]| {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo > 0.0 && hi / lo >= 9.99 {
            XScale::Log
        } else {
            XScale::Linear
        }
    };
    let distinct = |xs: &[f64]| {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        v.windows(2).all(|w| w[0] != w[1])
    };
    let lists_of_numbers = values.iter().any(|v| matches!(v, Value::Array(_)));
    if let Some(xs) = values.iter().map(number_of).collect::<Option<Vec<f64>>>() {
        let desc = if lists_of_numbers {
            format!("{key} (every element)")
        } else {
            key.to_string()
        };
        let scale = scale_of(&xs);
        return XAxis { xs, desc, scale };
    }
    // Lists of numbers of one length: place them by an element that tells them apart.
    let lists: Option<Vec<Vec<f64>>> = values
        .iter()
        .map(|v| match v {
            Value::Array(a) => a.iter().map(number_of).collect(),
            _ => None,
        })
        .collect();
    if let Some(lists) = lists {
        let len = lists[0].len();
        if lists.iter().all(|l| l.len() == len) {
            if let Some(i) =
                (0..len).find(|&i| distinct(&lists.iter().map(|l| l[i]).collect::<Vec<_>>()))
            {
                let xs: Vec<f64> = lists.iter().map(|l| l[i]).collect();
                let scale = scale_of(&xs);
                return XAxis {
                    xs,
                    desc: format!("{key}[{i}], element {} of each list", i + 1),
                    scale,
                };
            }
        }
    }
    let legend = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{i} = {}", value_text(v)))
        .collect::<Vec<_>>()
        .join(", ");
    XAxis {
        xs: (0..values.len()).map(|i| i as f64).collect(),
        desc: format!("{key} ({legend})"),
        scale: XScale::Linear,
    }
}

/// One chart per axis (other than the seed) with at least two values: the final test error,
/// mean over the seeds done, against the axis; one line per setting of the other axes.
/// Returns (file name, key) of each chart drawn into `plots_dir`.
pub fn render_plots(
    spec: &SweepSpec,
    results: &[PointResult],
    plots_dir: &Path,
) -> Result<Vec<(String, String)>, SweepError> {
    let groups = by_setting(results);
    let mut out = Vec::new();
    for key in spec.keys().into_iter().filter(|k| k != SEED) {
        let mut values: Vec<Value> = Vec::new();
        for (s, _) in &groups {
            if let Some((_, v)) = s.iter().find(|(k, _)| *k == key) {
                if !values.contains(v) {
                    values.push(v.clone());
                }
            }
        }
        if values.len() < 2 {
            continue;
        }
        let axis = x_positions(&key, &values);
        let xs = &axis.xs;
        let mut series: Vec<Series> = Vec::new();
        for (setting, rs) in &groups {
            let finals: Vec<f64> = rs.iter().filter_map(|r| r.final_test_error()).collect();
            let Some((_, v)) = setting.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            if finals.is_empty() {
                continue;
            }
            let x = xs[values.iter().position(|u| u == v).expect("collected above")];
            let others: Vec<String> = setting
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| format!("{k}={}", value_text(v)))
                .collect();
            let name = if others.is_empty() {
                "mean over seeds".to_string()
            } else {
                others.join(" ")
            };
            let i = match series.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    series.push(Series::line(&name, Vec::new()));
                    series.len() - 1
                }
            };
            series[i].points.push((x, mean_sd(&finals).0));
            // Each seed's own error beside the mean: the spread over seeds.
            if finals.len() > 1 {
                series[i].dots.extend(finals.iter().map(|&e| (x, e)));
            }
        }
        if series.is_empty() {
            continue;
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        crate::io::atomic::create_output_dir(plots_dir).map_err(io_err(plots_dir))?;
        let file: String = format!("test_error_vs_{key}.png")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let spread = if series.iter().any(|s| !s.dots.is_empty()) {
            "line: mean over seeds, circles: each seed"
        } else {
            "one seed"
        };
        let log = if axis.scale == XScale::Log {
            ", log axis"
        } else {
            ""
        };
        plot::line_chart_scaled(
            &plots_dir.join(&file),
            &format!("Final test error against {key} ({spread}{log})"),
            &axis.desc,
            "test error (%)",
            &series,
            None,
            axis.scale,
        )?;
        out.push((file, key));
    }
    Ok(out)
}

/// What [`collect`] wrote.
#[derive(Clone, Debug)]
pub struct Collected {
    pub csv: PathBuf,
    pub md: PathBuf,
    pub plots: Vec<PathBuf>,
    /// E.g. plots skipped for want of a font.
    pub warnings: Vec<String>,
    pub points: usize,
    pub done: usize,
}

/// Writes `summary.csv`, `summary.md` and `plots/` of the sweep directory `dir`.
pub fn collect(dir: &Path) -> Result<Collected, SweepError> {
    let (spec, results) = survey(dir)?;
    let mut warnings = Vec::new();
    let plots = match plot::ensure_font() {
        Ok(()) => render_plots(&spec, &results, &dir.join("plots"))?,
        Err(e) => {
            warnings.push(format!("plots skipped: {e}"));
            Vec::new()
        }
    };
    let csv = dir.join("summary.csv");
    write_shared(&csv, summary_csv(&spec, &results).as_bytes())?;
    let md = dir.join("summary.md");
    write_shared(&md, summary_md(&spec, &results, &plots).as_bytes())?;
    Ok(Collected {
        csv,
        md,
        plots: plots
            .iter()
            .map(|(f, _)| dir.join("plots").join(f))
            .collect(),
        warnings,
        points: results.len(),
        done: results
            .iter()
            .filter(|r| r.state == PointState::Done)
            .count(),
    })
}

/// `apical sweep status`: a count per state, then one line per point.
pub fn status_text(dir: &Path) -> Result<String, SweepError> {
    let (_, results) = survey(dir)?;
    let words = [
        "done",
        "running",
        "unfinished",
        "failed",
        "not-started",
        "damaged",
    ];
    let counts: Vec<String> = words
        .iter()
        .map(|w| {
            let n = results.iter().filter(|r| r.state.word() == *w).count();
            format!("{n} {}", w.replace('-', " "))
        })
        .collect();
    let mut s = format!(
        "{}: {} point(s): {}\n",
        dir.display(),
        results.len(),
        counts.join(", ")
    );
    for r in &results {
        let detail = match &r.state {
            PointState::Done => format!("{} epoch(s)", r.run.epochs),
            PointState::Running { holder } => format!("held by {holder}"),
            PointState::Unfinished {
                epochs_done,
                examples_done,
            } => format!(
                "{epochs_done} of {} epoch(s) and {examples_done} example(s) done; resumes on the next run",
                r.run.epochs
            ),
            PointState::Failed(e) | PointState::Damaged(e) => e.clone(),
            PointState::NotStarted => String::new(),
        };
        let _ = writeln!(s, "{:<12} {}  {}", r.state.word(), r.run.point.name, detail);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(toml_list: &str) -> Vec<Value> {
        let t: toml::Table = toml::from_str(&format!("v = {toml_list}")).unwrap();
        t["v"].as_array().unwrap().clone()
    }

    #[test]
    fn rates_are_placed_by_value_on_a_log_axis_when_they_span_a_decade() {
        // One rate for both layers, as in models/sweeps/guerguiev-1h-eta-coarse.toml.
        let a = x_positions(
            "learning.eta",
            &values("[[0.05, 0.05], [0.1, 0.1], [0.19, 0.19], [0.5, 0.5]]"),
        );
        assert_eq!(a.xs, vec![0.05, 0.1, 0.19, 0.5]);
        assert_eq!(a.desc, "learning.eta (every element)");
        assert_eq!(a.scale, XScale::Log);
        // Less than a decade: a linear axis.
        let a = x_positions("neuron.g_A", &values("[0.05, 0.1, 0.3]"));
        assert_eq!((a.xs, a.scale), (vec![0.05, 0.1, 0.3], XScale::Linear));
        assert_eq!(a.desc, "neuron.g_A");
        // Lists whose elements differ: by the first element that tells every two apart.
        let a = x_positions(
            "learning.eta",
            &values("[[0.2, 0.01], [0.2, 0.1], [0.2, 0.3]]"),
        );
        assert_eq!(a.xs, vec![0.01, 0.1, 0.3]);
        assert_eq!(a.desc, "learning.eta[1], element 2 of each list");
        assert_eq!(a.scale, XScale::Log);
        // Neither: in order, listed in the label.
        let a = x_positions(
            "learning.feedback_mode",
            &values("[\"random\", \"symmetric\"]"),
        );
        assert_eq!(a.xs, vec![0.0, 1.0]);
        assert_eq!(a.desc, "learning.feedback_mode (0 = random, 1 = symmetric)");
        assert_eq!(a.scale, XScale::Linear);
    }
}
