//! Model files: every parameter of `docs/model.md`, read from TOML and validated.
//!
//! Field names follow the spec (`tau_s`, `tau_L`, `g_B`, ...). Unknown fields are rejected by
//! serde with the field's name; out-of-range values by `ModelConfig::validate`, which names
//! the field as `section.field`.

use crate::model::burst::BurstConfig;
use crate::model::checker::Checker;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The default model (784-500-10), embedded so `apical train` works without a file.
pub const DEFAULT_MODEL_TOML: &str = include_str!("../../models/guerguiev-1h.toml");
/// Largest layer (units) a model file may ask for.
pub(crate) const MAX_LAYER_SIZE: usize = 1_000_000;
/// Most weights per layer (4 GiB of f32).
pub(crate) const MAX_WEIGHTS: usize = 1 << 30;
/// Most hidden layers a model file may ask for.
pub(crate) const MAX_LAYERS: usize = 64;
/// Longest phase or PSP window, in steps.
pub(crate) const MAX_STEPS: usize = 1_000_000;
/// Dotted keys of fields that the model as written out ([`ModelConfig::to_toml_string`])
/// leaves out while they have their default, so that older models' text is unchanged; `--set`
/// accepts them all the same.
pub const UNWRITTEN_DEFAULT_KEYS: &[&str] = &[
    "neuron.mode",
    "network.classes",
    "learning.rule",
    "training.test_initial",
    "training.batch_size",
];
/// Smallest time step (ms) that can be meant: the paper uses 1 ms; 1 µs is already far below
/// any use of this model.
pub const MIN_DT_MS: f64 = 1e-3;
/// Longest time constant (ms) that can be meant: 100 s, four orders of magnitude above the
/// paper's 10 ms membrane time constant.
pub const MAX_TAU_MS: f64 = 1e5;
/// Name of the default model file under `models/`.
pub const DEFAULT_MODEL_NAME: &str = "guerguiev-1h";

pub use crate::model::checker::ConfigError;

pub use crate::model::topology::FeedbackSource;
use crate::model::topology::Topology;

/// How the feedback weights Y are set and changed (spec section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackMode {
    /// Fixed random Y (the default).
    Random,
    /// Y = W^T of the layers above, re-set after every update (the backprop-like control).
    Symmetric,
    /// Y learned by the inverse rule of section 6.
    Learned,
    /// Hidden errors computed by backprop through W^T (no apical plateaus used).
    Backprop,
}

pub use crate::model::rule::LearningRule;

/// PSP kernel evaluation (spec section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PspKernel {
    /// Only spikes of the current and `psp_window_steps - 1` previous steps count (reference).
    Truncated,
    /// The untruncated two-exponential kernel as exact traces.
    Full,
}

/// Input spike draw per step (spec section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputDraw {
    /// Poisson counts per step (the reference), drawn as a Poisson process.
    Poisson,
    /// At most one spike per step with probability lambda.
    Bernoulli,
}

/// What the neurons communicate (spec sections 2-4 and 9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeuronMode {
    /// Poisson spikes filtered by the PSP kernel, somata integrated by forward Euler (the
    /// paper's model, the default).
    #[default]
    Spiking,
    /// The non-spiking mode of spec section 9: layers pass rates lambda_max sigma(C) with no
    /// kernel, somata sit at their steady state (docs/model.md, section 9).
    Rate,
}

impl NeuronMode {
    fn is_spiking(&self) -> bool {
        *self == NeuronMode::Spiking
    }

    /// The name as written in a model file.
    pub fn name(&self) -> &'static str {
        match self {
            NeuronMode::Spiking => "spiking",
            NeuronMode::Rate => "rate",
        }
    }
}

/// Spread of the uniform weight initialisation (spec section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitSpread {
    /// h = 3.465 W_sd (the reference's final code; sd = 2 W_sd).
    Final,
    /// h = 1.7325 W_sd (earlier reference versions and the paper; sd = W_sd).
    Narrow,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Short name, used for run directories.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub network: NetworkConfig,
    #[serde(default)]
    pub neuron: NeuronConfig,
    #[serde(default)]
    pub synapse: SynapseConfig,
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub phases: PhaseConfig,
    pub learning: LearningConfig,
    /// `[burst]`: the burst rules' settings (docs/model.md, sections 11 and 12); only with
    /// `learning.rule = "burstccn"` or `"burstprop"`, which use their defaults when the
    /// table is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<BurstConfig>,
    #[serde(default)]
    pub init: InitConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    /// What a training run records into traces.h5 (`[[record]]` tables, docs/traces.md);
    /// none: the default (per-epoch metrics and weight snapshots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record: Vec<crate::model::recording::RecordGroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Input units, one per pixel.
    #[serde(default = "d_n_in")]
    pub n_in: usize,
    /// Hidden layer sizes, bottom first (empty for 784-10).
    pub hidden: Vec<usize>,
    /// Output units, a multiple of `classes` (k units per class).
    #[serde(default = "d_n_out")]
    pub n_out: usize,
    /// Classes the network tells apart (the data's labels 0..classes-1); written only
    /// when it is not MNIST's 10, so MNIST models serialise as before.
    #[serde(default = "d_classes", skip_serializing_if = "is_d_classes")]
    pub classes: usize,
    #[serde(default = "d_feedback")]
    pub feedback: FeedbackSource,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronConfig {
    /// Maximum firing rate in spikes per step.
    #[serde(default = "d_lambda_max")]
    pub lambda_max: f64,
    /// Time step in ms.
    #[serde(default = "d_dt")]
    pub dt: f64,
    /// Leak conductance (1/tau_L).
    #[serde(rename = "g_L", default = "d_g_l")]
    pub g_l: f64,
    /// Basal-to-soma conductance of hidden neurons.
    #[serde(rename = "g_B", default = "d_g_b")]
    pub g_b: f64,
    /// Apical-to-soma conductance (0 = segregated dendrites).
    #[serde(rename = "g_A", default)]
    pub g_a: f64,
    /// Dendrite-to-soma conductance of output neurons.
    #[serde(rename = "g_D", default = "d_g_b")]
    pub g_d: f64,
    /// Excitatory reversal potential of the teaching current.
    #[serde(rename = "E_E", default = "d_e_e")]
    pub e_e: f64,
    /// Inhibitory reversal potential of the teaching current.
    #[serde(rename = "E_I", default = "d_e_i")]
    pub e_i: f64,
    /// Spikes (the default) or the rate mode of section 9. Not written out when spiking, so
    /// the model text (and every checkpoint) of a spiking model is what it was before the
    /// rate mode existed.
    #[serde(default, skip_serializing_if = "NeuronMode::is_spiking")]
    pub mode: NeuronMode,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynapseConfig {
    /// Long (membrane) time constant of the PSP kernel, ms.
    #[serde(rename = "tau_L", default = "d_tau_l")]
    pub tau_l: f64,
    /// Short (synaptic) time constant of the PSP kernel, ms.
    #[serde(default = "d_tau_s")]
    pub tau_s: f64,
    #[serde(default = "d_kernel")]
    pub psp_kernel: PspKernel,
    /// Steps a spike counts for with the truncated kernel (the reference's `mem`).
    #[serde(default = "d_window")]
    pub psp_window_steps: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    #[serde(default = "d_draw")]
    pub spike_draw: InputDraw,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    /// Forward phase length in steps (when not random).
    #[serde(default = "d_phase")]
    pub l_f: usize,
    /// Target phase length in steps (when not random).
    #[serde(default = "d_phase")]
    pub l_t: usize,
    /// Draw every phase length as l_f + floor(Wald(mean, shape)).
    #[serde(default = "d_true")]
    pub use_rand_phase_lengths: bool,
    #[serde(default = "d_wald_mean")]
    pub wald_mean: f64,
    #[serde(default = "d_wald_shape")]
    pub wald_shape: f64,
    /// Steps at the end of each training phase that are averaged.
    #[serde(default = "d_integration")]
    pub integration_time: usize,
    /// Forward phase length of a test example.
    #[serde(default = "d_l_f_test")]
    pub l_f_test: usize,
    /// Steps at the end of a test phase that are averaged.
    #[serde(default = "d_integration_test")]
    pub integration_time_test: usize,
    /// Draw a per-neuron plateau time near each phase end (training only).
    #[serde(default)]
    pub stochastic_plateau_times: bool,
    /// sd of the normal draw of the plateau time offset.
    #[serde(default = "d_plateau_sd")]
    pub plateau_time_sd: f64,
    /// Largest plateau time offset in steps.
    #[serde(default = "d_plateau_max")]
    pub plateau_time_max_offset: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningConfig {
    /// The learning rule. Not written out when it is the default (`"guerguiev"`), so the
    /// model text (and every checkpoint) of a segregated-dendrite model is what it was before
    /// rules could be chosen.
    #[serde(default, skip_serializing_if = "LearningRule::is_guerguiev")]
    pub rule: LearningRule,
    /// Feedforward learning rates, one per layer, first hidden layer first, output last.
    pub eta: Vec<f64>,
    #[serde(default = "d_fb_mode")]
    pub feedback_mode: FeedbackMode,
    /// Fraction of feedback weights zeroed at init (0.8 for the sparse-feedback experiment).
    #[serde(default)]
    pub feedback_sparsity: f64,
    /// Factor applied to the surviving feedback weights when sparse.
    #[serde(default = "d_sparse_scale")]
    pub feedback_sparse_scale: f64,
    /// sd of the normal noise added to each transposed factor under symmetric feedback.
    #[serde(default)]
    pub symmetric_noise_sd: f64,
    /// Feedback (inverse) learning rates, one per hidden layer, for `learned` mode.
    #[serde(default)]
    pub eta_feedback: Vec<f64>,
    /// Apical bias c_m (learned with the feedback weights).
    #[serde(default)]
    pub feedback_bias: bool,
    /// Whether hidden layers learn (false: the "fixed hidden weights" control).
    #[serde(default = "d_true")]
    pub hidden_learning: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// The reference's "weight optimisation"; false gives W = 0.1 U(-1,1), b = U(-1,1).
    #[serde(default = "d_true")]
    pub weight_optimisation: bool,
    #[serde(rename = "V_avg", default = "d_v")]
    pub v_avg: f64,
    #[serde(rename = "V_sd", default = "d_v")]
    pub v_sd: f64,
    #[serde(default = "d_b_avg")]
    pub b_avg: f64,
    #[serde(default = "d_b_sd")]
    pub b_sd: f64,
    #[serde(default = "d_spread")]
    pub init_spread: InitSpread,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Training examples per epoch (the first n of each epoch's shuffle of all 60,000).
    #[serde(default = "d_train_examples")]
    pub train_examples: usize,
    /// Test images per evaluation (a random subset when below 10,000).
    #[serde(default = "d_test_examples")]
    pub test_examples: usize,
    /// Quick test of `quick_test_examples` random images every this many training examples
    /// (0 = off). The reference does it every 1,000; it resets the network state.
    #[serde(default)]
    pub quick_test_every: usize,
    #[serde(default = "d_quick_examples")]
    pub quick_test_examples: usize,
    /// Test the initial network before training, on the per-epoch test's budget (epoch 0 of
    /// the metrics and the learning curves). On by default; it costs one test, which for a
    /// short spiking run (1 epoch of 10,000) is about a third of the run. Not written to
    /// model.toml while on, so a model file that leaves it on keeps its text.
    #[serde(default = "d_true", skip_serializing_if = "is_true")]
    pub test_initial: bool,
    /// Neurons per block: each block has its own random stream, so results do not depend on
    /// the thread count. Changing it changes the random streams (not the model).
    #[serde(default = "d_block")]
    pub block_size: usize,
    /// Examples per weight update of the rate rules that allow minibatches (backprop,
    /// feedback alignment, BurstCCN; docs/model.md, section 13): the examples of a batch run
    /// on the weights of the batch's start and the mean of their updates is applied once.
    /// 1 (the default) learns online. Not written to the model file when 1, so checkpoints
    /// of online runs keep their bytes.
    #[serde(default = "d_batch", skip_serializing_if = "is_d_batch")]
    pub batch_size: usize,
}

fn d_batch() -> usize {
    1
}
fn is_d_batch(b: &usize) -> bool {
    *b == d_batch()
}

fn d_n_in() -> usize {
    784
}
fn d_n_out() -> usize {
    10
}
/// Most classes a network tells apart (labels are bytes).
pub const MAX_CLASSES: usize = 256;

fn d_classes() -> usize {
    10
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_d_classes(c: &usize) -> bool {
    *c == d_classes()
}
fn d_feedback() -> FeedbackSource {
    FeedbackSource::Broadcast
}
fn d_lambda_max() -> f64 {
    0.2
}
fn d_dt() -> f64 {
    1.0
}
fn d_g_l() -> f64 {
    0.1
}
fn d_g_b() -> f64 {
    0.6
}
fn d_e_e() -> f64 {
    8.0
}
fn d_e_i() -> f64 {
    -8.0
}
fn d_tau_l() -> f64 {
    10.0
}
fn d_tau_s() -> f64 {
    3.0
}
fn d_kernel() -> PspKernel {
    PspKernel::Truncated
}
fn d_window() -> usize {
    10
}
fn d_draw() -> InputDraw {
    InputDraw::Poisson
}
fn d_phase() -> usize {
    50
}
fn d_true() -> bool {
    true
}
fn d_wald_mean() -> f64 {
    2.0
}
fn d_wald_shape() -> f64 {
    1.0
}
fn d_integration() -> usize {
    20
}
fn d_l_f_test() -> usize {
    250
}
fn d_integration_test() -> usize {
    220
}
fn d_plateau_sd() -> f64 {
    3.0
}
fn d_plateau_max() -> usize {
    5
}
fn d_fb_mode() -> FeedbackMode {
    FeedbackMode::Random
}
fn d_sparse_scale() -> f64 {
    5.0
}
fn d_v() -> f64 {
    3.0
}
fn d_b_avg() -> f64 {
    0.8
}
fn d_b_sd() -> f64 {
    0.001
}
fn d_spread() -> InitSpread {
    InitSpread::Final
}
fn d_epochs() -> usize {
    60
}
fn d_train_examples() -> usize {
    60_000
}
fn d_test_examples() -> usize {
    10_000
}
fn d_quick_examples() -> usize {
    100
}
fn d_block() -> usize {
    512
}

macro_rules! section_default {
    ($t:ty) => {
        impl Default for $t {
            fn default() -> Self {
                toml::from_str("").expect("all fields of this section have defaults")
            }
        }
    };
}
section_default!(NeuronConfig);
section_default!(SynapseConfig);
section_default!(InputConfig);
section_default!(PhaseConfig);
section_default!(InitConfig);
section_default!(TrainingConfig);

/// A number for an error message: as written when short, else in scientific notation
/// (1e300 printed as 301 digits before).
pub(crate) fn short_num(x: f64) -> String {
    let plain = format!("{x}");
    if plain.len() <= 16 {
        plain
    } else {
        format!("{x:e}")
    }
}

impl ModelConfig {
    /// Parses and validates a model file's text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut cfg: ModelConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let rule = cfg.learning.rule;
        if let Some(b) = cfg.burst.as_mut() {
            b.fill_defaults(rule);
        }
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = Self::read_text(path)?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// The text of the model file `path`, read with a bound
    /// ([`crate::base::text::MAX_TEXT_FILE`]: `/dev/zero` is refused, not read forever).
    pub fn read_text(path: &Path) -> Result<String, ConfigError> {
        crate::base::text::read_text_at_most(path, crate::base::text::MAX_TEXT_FILE).map_err(
            |source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            },
        )
    }

    /// The embedded default model.
    pub fn default_model() -> Self {
        Self::from_toml_str(DEFAULT_MODEL_TOML, "models/guerguiev-1h.toml (embedded)")
            .expect("the embedded default model is valid")
    }

    /// The model as TOML text (what a run directory stores).
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a model config always serialises")
    }

    /// Layer sizes from the first hidden layer to the output layer.
    pub fn layer_sizes(&self) -> Vec<usize> {
        self.topology().sizes
    }

    /// Sizes and wiring of the network (computed from `network`).
    pub fn topology(&self) -> Topology {
        let mut sizes = self.network.hidden.clone();
        sizes.push(self.network.n_out);
        Topology {
            n_in: self.network.n_in,
            sizes,
            feedback: self.network.feedback,
        }
    }

    /// Whether training draws bursts from the spikes (spiking BurstCCN, docs/model.md eq.
    /// 11.14): the trace file then flags the spikes that were bursts.
    pub fn draws_bursts(&self) -> bool {
        self.learning.rule == LearningRule::Burstccn && self.neuron.mode.is_spiking()
    }

    /// "784-500-10".
    pub fn sizes_string(&self) -> String {
        self.topology().sizes_string()
    }

    /// Checks every value range; the error names the field as `section.field`. One check
    /// per section of the model file, in the file's order.
    pub(crate) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let ck = Checker { origin };
        self.check_name(&ck)?;
        self.check_network(&ck)?;
        self.check_neuron_and_synapse(&ck)?;
        self.check_phases(&ck)?;
        self.check_learning(&ck)?;
        self.check_rule(&ck)?;
        self.check_init_and_training(&ck)?;
        if !self.record.is_empty() {
            crate::model::record_plan::RecordPlan::resolve(
                &self.record,
                &self.topology(),
                self.neuron.mode != NeuronMode::Rate,
            )
            .map_err(|e| ck.bad(&e.field, e.problem))?;
        }
        Ok(())
    }

    /// `name`: letters, digits, '-', '_' and '.' (it names files and HDF5 attributes).
    fn check_name(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ck.bad(
                "name",
                format!(
                    "must be non-empty and use only letters, digits, '-', '_' and '.', got {:?}",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// `[network]`: sizes within what can be allocated, outputs in groups of ten.
    fn check_network(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let n = &self.network;
        if n.n_in == 0 {
            return Err(ck.bad("network.n_in", "must be at least 1, got 0".into()));
        }
        // Far beyond any model of the paper, small enough that sizes cannot overflow or ask
        // for absurd memory before anything runs.
        for (field, v) in std::iter::once(("network.n_in", n.n_in))
            .chain(std::iter::once(("network.n_out", n.n_out)))
            .chain(n.hidden.iter().map(|&h| ("network.hidden", h)))
        {
            if v > MAX_LAYER_SIZE {
                return Err(ck.bad(
                    field,
                    format!("{v} is too large: at most {MAX_LAYER_SIZE} units per layer"),
                ));
            }
        }
        let mut n_pre = n.n_in;
        for (m, &size) in n.hidden.iter().chain(std::iter::once(&n.n_out)).enumerate() {
            if n_pre * size > MAX_WEIGHTS {
                return Err(ck.bad(
                    "network.hidden",
                    format!(
                        "layer {m} would have {n_pre} x {size} weights; at most {MAX_WEIGHTS} per layer are supported"
                    ),
                ));
            }
            n_pre = size;
        }
        if n.hidden.len() > MAX_LAYERS {
            return Err(ck.bad(
                "network.hidden",
                format!(
                    "has {} layers; at most {MAX_LAYERS} are supported",
                    n.hidden.len()
                ),
            ));
        }
        if n.classes < 2 || n.classes > MAX_CLASSES {
            return Err(ck.bad(
                "network.classes",
                format!(
                    "must be 2 to {} (the data's labels 0..classes-1), got {}",
                    MAX_CLASSES, n.classes
                ),
            ));
        }
        if n.n_out == 0 || n.n_out % n.classes != 0 {
            return Err(ck.bad(
                "network.n_out",
                format!(
                    "must be a positive multiple of network.classes = {} (k units per class), got {}",
                    n.classes, n.n_out
                ),
            ));
        }
        if let Some(i) = n.hidden.iter().position(|&h| h == 0) {
            return Err(ck.bad(
                "network.hidden",
                format!("layer {i} has size 0; every layer needs at least one neuron"),
            ));
        }
        Ok(())
    }

    /// `[neuron]` and `[synapse]`: rates, conductances, a time step and time constants the
    /// simulation can resolve.
    fn check_neuron_and_synapse(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let ne = &self.neuron;
        ck.positive("neuron.lambda_max", ne.lambda_max)?;
        if ne.lambda_max > 1.0 {
            return Err(ck.bad(
                "neuron.lambda_max",
                format!(
                    "is a rate in spikes per step and must be at most 1, got {}",
                    ne.lambda_max
                ),
            ));
        }
        ck.positive("neuron.dt", ne.dt)?;
        ck.positive("neuron.g_L", ne.g_l)?;
        ck.nonneg("neuron.g_B", ne.g_b)?;
        ck.nonneg("neuron.g_A", ne.g_a)?;
        ck.nonneg("neuron.g_D", ne.g_d)?;
        ck.finite("neuron.E_E", ne.e_e)?;
        ck.finite("neuron.E_I", ne.e_i)?;
        let s = &self.synapse;
        ck.positive("synapse.tau_L", s.tau_l)?;
        ck.positive("synapse.tau_s", s.tau_s)?;
        for (field, tau) in [("synapse.tau_L", s.tau_l), ("synapse.tau_s", s.tau_s)] {
            if tau > MAX_TAU_MS {
                return Err(ck.bad(
                    field,
                    format!(
                        "is {} ms: a time constant above {MAX_TAU_MS} ms can only be a mistake (the paper's are 10 and 3 ms)",
                        short_num(tau)
                    ),
                ));
            }
        }
        if ne.dt < MIN_DT_MS {
            return Err(ck.bad(
                "neuron.dt",
                format!(
                    "is {} ms: a time step below {MIN_DT_MS} ms can only be a mistake (the paper's is 1 ms)",
                    short_num(ne.dt)
                ),
            ));
        }
        if ne.dt > s.tau_l {
            return Err(ck.bad(
                "neuron.dt",
                format!(
                    "is {} ms, longer than the membrane time constant synapse.tau_L ({} ms): the simulation cannot resolve the dynamics (the paper's step is 1 ms)",
                    short_num(ne.dt),
                    short_num(s.tau_l)
                ),
            ));
        }
        if (s.tau_l - s.tau_s).abs() < 1e-12 {
            return Err(ck.bad(
                "synapse.tau_s",
                "must differ from tau_L (the kernel divides by tau_L - tau_s)".into(),
            ));
        }
        if s.psp_window_steps == 0 {
            return Err(ck.bad(
                "synapse.psp_window_steps",
                "must be at least 1, got 0".into(),
            ));
        }
        Ok(())
    }

    /// `[phases]`: phase lengths that hold their integration windows.
    fn check_phases(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let ne = &self.neuron;
        let s = &self.synapse;
        let p = &self.phases;
        if ne.mode == NeuronMode::Rate {
            // Section 9: somata at their steady state C = k_B B, plateaus at the phase end.
            if ne.g_a != 0.0 {
                return Err(ck.bad(
                    "neuron.g_A",
                    format!(
                        "must be 0 with neuron.mode = \"rate\" (the rate mode's hidden soma is C = k_B B, with no apical coupling), got {}",
                        ne.g_a
                    ),
                ));
            }
            if p.stochastic_plateau_times {
                return Err(ck.bad(
                    "phases.stochastic_plateau_times",
                    "must be false with neuron.mode = \"rate\" (the rate mode takes every plateau at the phase end)"
                        .into(),
                ));
            }
        }
        for (field, v) in [
            ("phases.l_f", p.l_f),
            ("phases.l_t", p.l_t),
            ("phases.l_f_test", p.l_f_test),
            ("synapse.psp_window_steps", s.psp_window_steps),
        ] {
            if v > MAX_STEPS {
                return Err(ck.bad(field, format!("{v} steps is too long: at most {MAX_STEPS}")));
            }
        }
        if p.plateau_time_max_offset > u8::MAX as usize {
            return Err(ck.bad(
                "phases.plateau_time_max_offset",
                format!(
                    "must be at most 255 steps, got {}",
                    p.plateau_time_max_offset
                ),
            ));
        }
        if p.integration_time == 0 {
            return Err(ck.bad(
                "phases.integration_time",
                "must be at least 1, got 0".into(),
            ));
        }
        // Only the segregated-dendrite rule has a target phase.
        let two_phases = self.learning.rule == LearningRule::Guerguiev;
        let lengths = [("phases.l_f", p.l_f), ("phases.l_t", p.l_t)];
        for (field, len) in lengths.into_iter().take(1 + two_phases as usize) {
            if len == 0 {
                return Err(ck.bad(
                    field,
                    "is a phase length and must be at least 1, got 0".into(),
                ));
            }
            if len
                < p.integration_time
                    .saturating_add(p.plateau_time_max_offset * p.stochastic_plateau_times as usize)
            {
                return Err(ck.bad(
                    field,
                    format!(
                        "({len}) must be at least phases.integration_time ({}) plus the largest plateau time offset when stochastic plateau times are on",
                        p.integration_time
                    ),
                ));
            }
        }
        if p.l_f_test == 0 {
            return Err(ck.bad("phases.l_f_test", "must be at least 1, got 0".into()));
        }
        if p.integration_time_test == 0 || p.integration_time_test > p.l_f_test {
            return Err(ck.bad(
                "phases.integration_time_test",
                format!(
                    "must be between 1 and l_f_test ({}), got {}",
                    p.l_f_test, p.integration_time_test
                ),
            ));
        }
        if p.use_rand_phase_lengths {
            ck.positive("phases.wald_mean", p.wald_mean)?;
            ck.positive("phases.wald_shape", p.wald_shape)?;
        }
        ck.nonneg("phases.plateau_time_sd", p.plateau_time_sd)?;
        Ok(())
    }

    /// `[learning]`: one rate per layer, feedback options in range.
    fn check_learning(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let n = &self.network;
        let l = &self.learning;
        let layers = n.hidden.len() + 1;
        if l.eta.len() != layers {
            return Err(ck.bad(
                "learning.eta",
                format!(
                    "needs one learning rate per layer ({layers}: {} hidden + output), got {}",
                    n.hidden.len(),
                    l.eta.len()
                ),
            ));
        }
        for (i, &e) in l.eta.iter().enumerate() {
            ck.nonneg(&format!("learning.eta[{i}]"), e)?;
        }
        if !(0.0..1.0).contains(&l.feedback_sparsity) {
            return Err(ck.bad(
                "learning.feedback_sparsity",
                format!("must be in [0, 1), got {}", l.feedback_sparsity),
            ));
        }
        ck.finite("learning.feedback_sparse_scale", l.feedback_sparse_scale)?;
        ck.nonneg("learning.symmetric_noise_sd", l.symmetric_noise_sd)?;
        if l.feedback_mode == FeedbackMode::Learned && l.eta_feedback.len() != n.hidden.len() {
            return Err(ck.bad(
                "learning.eta_feedback",
                format!(
                    "needs one rate per hidden layer ({}) when feedback_mode = \"learned\", got {}",
                    n.hidden.len(),
                    l.eta_feedback.len()
                ),
            ));
        }
        for (i, &e) in l.eta_feedback.iter().enumerate() {
            ck.nonneg(&format!("learning.eta_feedback[{i}]"), e)?;
        }
        Ok(())
    }

    /// `[init]` and `[training]`.
    fn check_init_and_training(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let i = &self.init;
        ck.finite("init.V_avg", i.v_avg)?;
        if i.weight_optimisation && i.v_avg == 0.0 {
            return Err(ck.bad(
                "init.V_avg",
                "must be non-zero (W_avg divides by it)".into(),
            ));
        }
        ck.positive("init.V_sd", i.v_sd)?;
        ck.finite("init.b_avg", i.b_avg)?;
        ck.nonneg("init.b_sd", i.b_sd)?;
        let t = &self.training;
        if t.epochs == 0 {
            return Err(ck.bad("training.epochs", "must be at least 1, got 0".into()));
        }
        if t.train_examples == 0 {
            return Err(ck.bad(
                "training.train_examples",
                "must be at least 1, got 0".into(),
            ));
        }
        if t.test_examples == 0 {
            return Err(ck.bad("training.test_examples", "must be at least 1, got 0".into()));
        }
        if t.quick_test_every > 0 && t.quick_test_examples == 0 {
            return Err(ck.bad(
                "training.quick_test_examples",
                "must be at least 1 when quick tests are on".into(),
            ));
        }
        if t.block_size == 0 {
            return Err(ck.bad("training.block_size", "must be at least 1, got 0".into()));
        }
        ck.batch_size(
            t.batch_size,
            t.train_examples,
            self.neuron.mode.name(),
            self.learning.rule,
        )
    }
}
