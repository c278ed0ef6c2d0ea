//! A run's metrics files, metrics.csv and metrics.json: one row per epoch, from epoch 0 (the
//! initial network's test before training, when the run has it) to the last trained
//! epoch. Written by the trainer through `RunDir::write_metrics`.

use crate::io::checkpoint::EpochRecord;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Metrics of one epoch as written to metrics.csv / metrics.json. Epoch 0, when a run has
/// it, is the test of the initial network before training ([`EpochMetrics::initial`]): its
/// training error, firing rates and training times are unknown (NaN, written as null in
/// metrics.json and NaN in metrics.csv).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "MetricsRow")]
pub struct EpochMetrics {
    #[serde(flatten)]
    pub record: EpochRecord,
    /// Wall-clock seconds of the epoch (training and test). Unknown (an epoch whose
    /// metrics were lost before a resume): NaN, written as null and read back as NaN.
    pub wall_seconds: f64,
    /// Wall-clock seconds of the training part (learning included, test excluded).
    pub train_seconds: f64,
    /// Wall-clock seconds of the test at the end of the epoch.
    pub test_seconds: f64,
    /// Wall-clock seconds per training example: train_seconds over the examples trained in
    /// them (in a resumed epoch, those after its checkpoint).
    pub seconds_per_train_example: f64,
    /// BurstCCN on spiking networks: each layer's bursts per event in the integration
    /// windows of the epoch's training (a resumed epoch: those after its checkpoint); NaN
    /// (null) for a layer without events. Empty (not written) for other runs and epoch 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub burst_probability: Vec<f64>,
}

impl EpochMetrics {
    /// The row of the initial network's test (epoch 0): `test_examples` images, `test_error`
    /// percent, tested in `test_seconds`; nothing trained.
    pub fn initial(test_examples: usize, test_error: f64, test_seconds: f64) -> Self {
        EpochMetrics {
            record: EpochRecord {
                epoch: 0,
                train_examples: 0,
                train_error: f64::NAN,
                test_examples,
                test_error,
                rates_hz: Vec::new(),
            },
            wall_seconds: test_seconds,
            train_seconds: 0.0,
            test_seconds,
            seconds_per_train_example: f64::NAN,
            burst_probability: Vec::new(),
        }
    }

    /// Whether this is the initial network's test (epoch 0), not a trained epoch.
    pub fn is_initial(&self) -> bool {
        self.record.epoch == 0
    }
}

/// The trained epochs of a run's metrics: all rows but the initial test (epoch 0).
pub fn trained(metrics: &[EpochMetrics]) -> &[EpochMetrics] {
    let skip = metrics.iter().take_while(|m| m.is_initial()).count();
    &metrics[skip..]
}

/// One row of metrics.json as read back: [`EpochMetrics`] with null for any number that was
/// NaN (the initial test's training error) and no rates (epoch 0 has none).
#[derive(Deserialize)]
struct MetricsRow {
    epoch: usize,
    train_examples: usize,
    #[serde(deserialize_with = "nan_if_null")]
    train_error: f64,
    test_examples: usize,
    #[serde(deserialize_with = "nan_if_null")]
    test_error: f64,
    #[serde(default)]
    rates_hz: Vec<f64>,
    #[serde(deserialize_with = "nan_if_null")]
    wall_seconds: f64,
    #[serde(deserialize_with = "nan_if_null")]
    train_seconds: f64,
    #[serde(deserialize_with = "nan_if_null")]
    test_seconds: f64,
    #[serde(deserialize_with = "nan_if_null")]
    seconds_per_train_example: f64,
    #[serde(default, deserialize_with = "nans_if_null")]
    burst_probability: Vec<f64>,
}

impl From<MetricsRow> for EpochMetrics {
    fn from(r: MetricsRow) -> Self {
        EpochMetrics {
            record: EpochRecord {
                epoch: r.epoch,
                train_examples: r.train_examples,
                train_error: r.train_error,
                test_examples: r.test_examples,
                test_error: r.test_error,
                rates_hz: r.rates_hz,
            },
            wall_seconds: r.wall_seconds,
            train_seconds: r.train_seconds,
            test_seconds: r.test_seconds,
            seconds_per_train_example: r.seconds_per_train_example,
            burst_probability: r.burst_probability,
        }
    }
}

/// A number, or null (what serde_json writes for NaN) as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Numbers, each null (NaN written out) as NaN.
fn nans_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v = Vec::<Option<f64>>::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// The rows of `dir`'s metrics.json (empty when it is absent or unreadable: a run that lost
/// it).
fn read_rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
        .unwrap_or_default()
}

/// The initial network's test (epoch 0) from `dir`'s metrics.json; None when the run has
/// none (or its metrics were lost).
pub(crate) fn read_initial(dir: &Path) -> Option<EpochMetrics> {
    read_rows(dir)
        .into_iter()
        .find(|e| e["epoch"].as_u64() == Some(0))
        .and_then(|e| serde_json::from_value(e).ok())
}

/// Wall times [train, test, train per example] of the trained epochs in `dir`'s
/// metrics.json (the initial test's row is not one); NaN where unknown (metrics.json writes
/// an unknown time as null).
pub(crate) fn read_wall_times(dir: &Path) -> Vec<[f64; 3]> {
    read_rows(dir)
        .iter()
        .filter(|e| e["epoch"].as_u64() != Some(0))
        .map(|e| {
            [
                e["train_seconds"].as_f64().unwrap_or(f64::NAN),
                e["test_seconds"].as_f64().unwrap_or(f64::NAN),
                e["seconds_per_train_example"].as_f64().unwrap_or(f64::NAN),
            ]
        })
        .collect()
}

/// The burst probabilities of the trained epochs in `dir`'s metrics.json (empty where a
/// row has none).
pub(crate) fn read_burst_probabilities(dir: &Path) -> Vec<Vec<f64>> {
    read_rows(dir)
        .into_iter()
        .filter(|e| e["epoch"].as_u64() != Some(0))
        .map(|e| {
            serde_json::from_value::<EpochMetrics>(e)
                .map(|m| m.burst_probability)
                .unwrap_or_default()
        })
        .collect()
}

/// metrics.csv's text: a header, then a row per epoch (NaN where a number is unknown: the
/// initial test has no training error, rates or training time).
pub(crate) fn csv_text(metrics: &[EpochMetrics]) -> String {
    let layers = metrics
        .iter()
        .map(|m| m.record.rates_hz.len())
        .max()
        .unwrap_or(0);
    let mut csv = String::from(
        "epoch,train_examples,train_error,test_examples,test_error,wall_seconds,train_seconds,test_seconds,seconds_per_train_example",
    );
    for l in 0..layers {
        csv.push_str(&format!(",rate_hz_layer{l}"));
    }
    let burst_layers = metrics
        .iter()
        .map(|m| m.burst_probability.len())
        .max()
        .unwrap_or(0);
    for l in 0..burst_layers {
        csv.push_str(&format!(",burst_prob_layer{l}"));
    }
    csv.push('\n');
    for m in metrics {
        let r = &m.record;
        csv.push_str(&format!(
            "{},{},{:.4},{},{:.4},{:.3},{:.3},{:.3},{:.6e}",
            r.epoch,
            r.train_examples,
            r.train_error,
            r.test_examples,
            r.test_error,
            m.wall_seconds,
            m.train_seconds,
            m.test_seconds,
            m.seconds_per_train_example
        ));
        // The initial test (epoch 0) has no training rates.
        for l in 0..layers {
            let hz = r.rates_hz.get(l).copied().unwrap_or(f64::NAN);
            csv.push_str(&format!(",{hz:.3}"));
        }
        for l in 0..burst_layers {
            let p = m.burst_probability.get(l).copied().unwrap_or(f64::NAN);
            csv.push_str(&format!(",{p:.5}"));
        }
        csv.push('\n');
    }
    csv
}
