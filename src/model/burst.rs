//! The `[burst]` table of a model file: the settings of the burst-dependent rule BurstCCN
//! (Greedy, Zhu, Pemberton, Mellor & Costa, NeurIPS 2022; docs/model.md, section 11), read
//! only when `learning.rule = "burstccn"`.

use crate::model::checker::{Checker, ConfigError};
use serde::{Deserialize, Serialize};

/// How the burst feedback weights Y start and whether they follow W (docs/model.md, eq. 11.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum YMode {
    /// Y ~ N(0, y_scale^2), fixed unless `eta_y` > 0: feedback alignment's random feedback.
    Random,
    /// Y = y_scale W_{m+1}^T at the start, then on its own.
    Symmetric,
    /// Y = y_scale W_{m+1}^T after every update (weight transport: the backprop control).
    Tied,
}

/// How the event feedback weights Q start and whether they follow Y (eq. 11.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QMode {
    /// Q ~ N(0, q_scale^2): Q must learn to cancel Y p_baseline from scratch.
    Random,
    /// Q = q_scale p_baseline Y at the start, then learned with `eta_q` (the paper's default).
    Symmetric,
    /// Q = p_baseline Y after every update: the apical baseline cancelled exactly.
    Tied,
}

/// How the forward weights start (docs/model.md, eq. 11.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BurstInit {
    /// The authors' initialisation: W ~ N(0, (gain sqrt(2 / (fan_in + fan_out)))^2) in the
    /// paper's units (Xavier-normal), biases 0.
    Xavier,
    /// Section 7's initialisation of the segregated-dendrite models (the same W and b as
    /// the other rules for a seed).
    Guerguiev,
}

/// `[burst]`: BurstCCN's settings (docs/model.md, section 11). Learning rates are in the
/// paper's units (event rates in [0, 1], pixels in [0, 1]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstConfig {
    /// Baseline burst probability p_b (eq. 11.2).
    #[serde(default = "d_p_baseline")]
    pub p_baseline: f64,
    /// Slope beta of the burst probability's sigmoid in the apical potential (eq. 11.5).
    #[serde(default = "d_beta")]
    pub beta: f64,
    #[serde(default = "d_y_mode")]
    pub y_mode: YMode,
    /// sd of a random Y, or the factor of a symmetric or tied Y.
    #[serde(default = "d_y_scale")]
    pub y_scale: f64,
    /// Learning rate of Y (eq. 11.11); 0 keeps Y fixed. Not read with `y_mode = "tied"`.
    #[serde(default)]
    pub eta_y: f64,
    #[serde(default = "d_q_mode")]
    pub q_mode: QMode,
    /// sd of a random Q, or the factor of a symmetric Q.
    #[serde(default = "d_q_scale")]
    pub q_scale: f64,
    /// Learning rate of Q (eq. 11.12); 0 keeps Q fixed. Not read with `q_mode = "tied"`;
    /// unset: 0.000731, the authors' notebook's ([`BurstConfig::eta_q`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_q: Option<f64>,
    #[serde(default = "d_init")]
    pub init: BurstInit,
    /// Gain of the Xavier-normal initialisation.
    #[serde(default = "d_init_gain")]
    pub init_gain: f64,
    /// Spiking networks only: time constant, ms, of the burst and event traces that carry
    /// the layer above's spikes to a hidden layer's apical potential (eq. 11.13); unset: 10
    /// ms, the membrane's tau_L ([`BurstConfig::trace_tau`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_tau: Option<f64>,
}

impl Default for BurstConfig {
    fn default() -> Self {
        BurstConfig {
            p_baseline: d_p_baseline(),
            beta: d_beta(),
            y_mode: d_y_mode(),
            y_scale: d_y_scale(),
            eta_y: 0.0,
            q_mode: d_q_mode(),
            q_scale: d_q_scale(),
            eta_q: None,
            init: d_init(),
            init_gain: d_init_gain(),
            trace_tau: None,
        }
    }
}

// The defaults are those of the authors' MNIST notebook (neuralml/BurstCCN, "Training
// BurstCCN on MNIST"): p_b = 0.5, fixed random Y of sd 0.5, Q symmetric and learned.
fn d_p_baseline() -> f64 {
    0.5
}
fn d_beta() -> f64 {
    4.0
}
fn d_y_mode() -> YMode {
    YMode::Random
}
fn d_y_scale() -> f64 {
    0.5
}
fn d_q_mode() -> QMode {
    QMode::Symmetric
}
fn d_q_scale() -> f64 {
    1.0
}
fn d_init() -> BurstInit {
    BurstInit::Xavier
}
fn d_init_gain() -> f64 {
    3.6
}

impl BurstConfig {
    /// The learning rate of Q: the model file's, else 0.000731 (0 when Q is tied to Y).
    pub fn eta_q(&self) -> f64 {
        match (self.q_mode, self.eta_q) {
            (QMode::Tied, _) => 0.0,
            (_, Some(e)) => e,
            (_, None) => 0.000731,
        }
    }

    /// The time constant (ms) of the apical burst and event traces of a spiking network:
    /// the model file's, else 10.
    pub fn trace_tau(&self) -> f64 {
        self.trace_tau.unwrap_or(10.0)
    }

    /// Ranges of every field, each error naming `burst.<field>`; `spiking`: whether the
    /// network spikes (`trace_tau` is read only then).
    pub(crate) fn check(&self, ck: &Checker<'_>, spiking: bool) -> Result<(), ConfigError> {
        let p = self.p_baseline;
        if !(p.is_finite() && p > 0.0 && p < 1.0) {
            return Err(ck.bad(
                "burst.p_baseline",
                format!("must lie strictly between 0 and 1 (a probability), got {p}"),
            ));
        }
        ck.positive("burst.beta", self.beta)?;
        ck.nonneg("burst.y_scale", self.y_scale)?;
        ck.nonneg("burst.eta_y", self.eta_y)?;
        ck.nonneg("burst.q_scale", self.q_scale)?;
        if let Some(e) = self.eta_q {
            ck.nonneg("burst.eta_q", e)?;
        }
        ck.positive("burst.init_gain", self.init_gain)?;
        if let Some(t) = self.trace_tau {
            if !spiking {
                return Err(ck.bad(
                    "burst.trace_tau",
                    "is read only by spiking networks (the rate network passes rates, not \
                     spikes); remove it or set neuron.mode = \"spiking\""
                        .into(),
                ));
            }
            ck.positive("burst.trace_tau", t)?;
        }
        if self.y_mode == YMode::Tied && self.eta_y != 0.0 {
            return Err(ck.bad(
                "burst.eta_y",
                "is not read with y_mode = \"tied\" (Y is set from W after every update); \
                 remove it or choose y_mode = \"random\" or \"symmetric\""
                    .into(),
            ));
        }
        if self.q_mode == QMode::Tied && self.eta_q.is_some() {
            return Err(ck.bad(
                "burst.eta_q",
                "is not read with q_mode = \"tied\" (Q = p_baseline Y after every update); \
                 remove it or choose q_mode = \"symmetric\" or \"random\""
                    .into(),
            ));
        }
        Ok(())
    }
}
