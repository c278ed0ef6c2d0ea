//! The `[burst]` table of a model file: the settings of the burst-dependent rules BurstCCN
//! (Greedy, Zhu, Pemberton, Mellor & Costa, NeurIPS 2022; docs/model.md, section 11) and
//! Burstprop (Payeur, Guerguiev, Zenke, Richards & Naud, Nat. Neurosci. 2021; section 12),
//! read only when `learning.rule` is one of them.

use crate::model::checker::{Checker, ConfigError};
use crate::model::rule::LearningRule;
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

/// `[burst]`: the settings of the burst rules (docs/model.md, sections 11 and 12). Learning
/// rates are in the paper's units (event rates in [0, 1], pixels in [0, 1]). The fields
/// whose default depends on the rule are `Option`s here, filled with the rule's default
/// when the model is read (`BurstConfig::fill_defaults`), so that the model as written out
/// names every value it ran with; the rules read [`BurstSettings`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstConfig {
    /// Baseline burst probability p_b (eqs. 11.2, 12.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_baseline: Option<f64>,
    /// Slope beta of the burst probability's sigmoid in the apical potential (eqs. 11.5,
    /// 12.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    #[serde(default = "d_y_mode")]
    pub y_mode: YMode,
    /// sd of a random Y, or the factor of a symmetric or tied Y.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_scale: Option<f64>,
    /// Learning rate of Y (eq. 11.11); 0 keeps Y fixed. Not read with `y_mode = "tied"`;
    /// BurstCCN only.
    #[serde(default)]
    pub eta_y: f64,
    /// BurstCCN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_mode: Option<QMode>,
    /// sd of a random Q, or the factor of a symmetric Q; BurstCCN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_scale: Option<f64>,
    /// Learning rate of Q (eq. 11.12); 0 keeps Q fixed. Not read with `q_mode = "tied"`;
    /// unset: 0.000731, the authors' notebook's. BurstCCN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_q: Option<f64>,
    #[serde(default = "d_init")]
    pub init: BurstInit,
    /// Gain of the Xavier-normal initialisation.
    #[serde(default = "d_init_gain")]
    pub init_gain: f64,
    /// Spiking networks only: time constant, ms, of the burst and event traces that carry
    /// the layer above's spikes to a hidden layer's apical potential (eq. 11.13); unset: 10
    /// ms, the membrane's tau_L.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_tau: Option<f64>,
}

impl Default for BurstConfig {
    fn default() -> Self {
        BurstConfig {
            p_baseline: None,
            beta: None,
            y_mode: d_y_mode(),
            y_scale: None,
            eta_y: 0.0,
            q_mode: None,
            q_scale: None,
            eta_q: None,
            init: d_init(),
            init_gain: d_init_gain(),
            trace_tau: None,
        }
    }
}

/// The `[burst]` settings a rule runs with: the model file's, else the rule's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct BurstSettings {
    pub p_baseline: f64,
    pub beta: f64,
    pub y_mode: YMode,
    pub y_scale: f64,
    pub eta_y: f64,
    pub q_mode: QMode,
    pub q_scale: f64,
    /// Learning rate of Q: the model file's, else 0.000731 (0 when Q is tied to Y).
    pub eta_q: f64,
    pub init: BurstInit,
    pub init_gain: f64,
    /// Time constant (ms) of the apical traces of a spiking network: the model file's, else 10.
    pub trace_tau: f64,
}

/// The defaults that differ between the burst rules: (p_baseline, beta, y_scale).
/// BurstCCN: the authors' MNIST notebook (neuralml/BurstCCN, "Training BurstCCN on MNIST"):
/// p_b = 0.5, beta = 4, fixed random Y of sd 0.5. Burstprop: the defaults of the same
/// repository's Burstprop trainer (`BurstPropTrainer`): p_b = 0.2, the plain sigmoid of the
/// apical input (beta = 1), fixed random Y of sd 1.
fn rule_defaults(rule: LearningRule) -> (f64, f64, f64) {
    match rule {
        LearningRule::Burstprop => (0.2, 1.0, 1.0),
        _ => (0.5, 4.0, 0.5),
    }
}

// The defaults both rules share (the authors' code for both: neuralml/BurstCCN).
fn d_y_mode() -> YMode {
    YMode::Random
}
fn d_init() -> BurstInit {
    BurstInit::Xavier
}
fn d_init_gain() -> f64 {
    3.6
}

impl BurstConfig {
    /// Sets the unset fields whose default depends on the rule to `rule`'s default (the
    /// fields of BurstCCN only stay unset under Burstprop, where they are refused).
    pub(crate) fn fill_defaults(&mut self, rule: LearningRule) {
        let (p_b, beta, y_scale) = rule_defaults(rule);
        self.p_baseline.get_or_insert(p_b);
        self.beta.get_or_insert(beta);
        self.y_scale.get_or_insert(y_scale);
        if rule == LearningRule::Burstccn {
            self.q_mode.get_or_insert(QMode::Symmetric);
            self.q_scale.get_or_insert(1.0);
        }
    }

    /// The settings `rule` runs with: the table's values, else the rule's defaults.
    pub fn settings(&self, rule: LearningRule) -> BurstSettings {
        let (p_b, beta, y_scale) = rule_defaults(rule);
        let q_mode = self.q_mode.unwrap_or(QMode::Symmetric);
        let eta_q = match (q_mode, self.eta_q) {
            (QMode::Tied, _) => 0.0,
            (_, Some(e)) => e,
            (_, None) => 0.000731,
        };
        BurstSettings {
            p_baseline: self.p_baseline.unwrap_or(p_b),
            beta: self.beta.unwrap_or(beta),
            y_mode: self.y_mode,
            y_scale: self.y_scale.unwrap_or(y_scale),
            eta_y: self.eta_y,
            q_mode,
            q_scale: self.q_scale.unwrap_or(1.0),
            eta_q,
            init: self.init,
            init_gain: self.init_gain,
            trace_tau: self.trace_tau.unwrap_or(10.0),
        }
    }

    /// Ranges of every field under `rule`, each error naming `burst.<field>`; under
    /// Burstprop the fields of BurstCCN only (Q, and Y's learning) are refused.
    /// `spiking`: whether the network spikes (`trace_tau` is read only then).
    pub(crate) fn check(
        &self,
        ck: &Checker<'_>,
        rule: LearningRule,
        spiking: bool,
    ) -> Result<(), ConfigError> {
        if rule == LearningRule::Burstprop {
            let burstccn_only = [
                ("burst.q_mode", self.q_mode.is_some()),
                ("burst.q_scale", self.q_scale.is_some()),
                ("burst.eta_q", self.eta_q.is_some()),
                ("burst.eta_y", self.eta_y != 0.0),
            ];
            if let Some((field, _)) = burstccn_only.iter().find(|(_, set)| *set) {
                return Err(ck.bad(
                    field,
                    "is read only by learning.rule = \"burstccn\" (Burstprop has no event \
                     feedback Q, and its Y stays as y_mode sets it); remove it or choose \
                     rule = \"burstccn\""
                        .into(),
                ));
            }
        }
        let b = self.settings(rule);
        let p = b.p_baseline;
        if !(p.is_finite() && p > 0.0 && p < 1.0) {
            return Err(ck.bad(
                "burst.p_baseline",
                format!("must lie strictly between 0 and 1 (a probability), got {p}"),
            ));
        }
        ck.positive("burst.beta", b.beta)?;
        ck.nonneg("burst.y_scale", b.y_scale)?;
        ck.nonneg("burst.eta_y", self.eta_y)?;
        ck.nonneg("burst.q_scale", b.q_scale)?;
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
        if self.q_mode == Some(QMode::Tied) && self.eta_q.is_some() {
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
