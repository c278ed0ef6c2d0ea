//! What a run may record: the `--record` spec grammar and the `[[record]]` tables of a
//! model file (docs/traces.md). How it is written is [`crate::io::record`]'s business.

use serde::{Deserialize, Serialize};

/// What a run records when neither `--record` nor the model file says.
pub(crate) const DEFAULT_SPEC: &str = "metrics,weights";

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

pub(crate) fn spec_err(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
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
/// the model by `RecordPlan::resolve`.
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
    pub(crate) fn selects(&self, k: usize, n: usize) -> bool {
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
pub(crate) fn parse_examples(s: &str) -> Result<Examples, String> {
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
pub(crate) enum Var {
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

pub(crate) const VAR_NAMES: &str =
    "spikes, soma, basal, apical, potentials, rate, plateau, weights, labels, metrics";

pub(crate) fn parse_var(name: &str) -> Option<&'static [Var]> {
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
