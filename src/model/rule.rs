//! The learning rule a model file names (`[learning] rule`; docs/model.md, sections 6, 10,
//! 11 and 12): the schema's side of the rules, whose code is in `sim/rules/`.

use serde::{Deserialize, Serialize};

/// The learning rule a model trains with (`[learning] rule`; docs/model.md, sections 6 and 10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LearningRule {
    /// Segregated dendrites (Guerguiev et al. 2017): a forward and a target phase, hidden
    /// errors from apical plateau potentials (section 6). The default.
    #[default]
    Guerguiev,
    /// The exact gradient of the output loss through the rate network (section 10): the
    /// upper bound every rule is compared with. Rate mode only.
    Backprop,
    /// Feedback alignment (Lillicrap et al. 2016): backprop's output error sent down through
    /// the fixed random feedback weights Y instead of W^T (section 10). Rate mode only.
    FeedbackAlignment,
    /// BurstCCN (Greedy et al. 2022): one phase with the teacher on, the apical potential
    /// (bursts through Y minus events through Q) sets each unit's burst probability, and
    /// weights follow bursts minus their baseline (section 11). Rate mode only.
    Burstccn,
    /// Burstprop (Payeur et al. 2021), in the discrete-time form of the authors' code: the
    /// same burst probabilities without Q, and weights following the bursts with the
    /// teacher minus the bursts without it (section 12). Rate mode only.
    Burstprop,
}

impl LearningRule {
    pub(crate) fn is_guerguiev(&self) -> bool {
        *self == LearningRule::Guerguiev
    }

    /// The name as written in a model file.
    pub fn name(&self) -> &'static str {
        match self {
            LearningRule::Guerguiev => "guerguiev",
            LearningRule::Backprop => "backprop",
            LearningRule::FeedbackAlignment => "feedback-alignment",
            LearningRule::Burstccn => "burstccn",
            LearningRule::Burstprop => "burstprop",
        }
    }

    /// Whether the rule is one of the burst rules (sections 11 and 12): it reads `[burst]`
    /// and computes its own apical potentials when it learns.
    pub fn is_burst(&self) -> bool {
        matches!(self, LearningRule::Burstccn | LearningRule::Burstprop)
    }

    /// Whether `[training] batch_size` may exceed 1 (docs/model.md, section 13): the rules
    /// whose update is a function of one forward pass (the gradient rules and the burst
    /// rules), not the segregated-dendrite rule, whose example runs two phases on the
    /// weights the last example left.
    pub fn allows_minibatches(&self) -> bool {
        *self != LearningRule::Guerguiev
    }

    /// Whether the rule runs a target phase (the segregated-dendrite rule) or learns from
    /// one forward phase (the gradient rules of section 10).
    pub fn has_target_phase(&self) -> bool {
        *self == LearningRule::Guerguiev
    }
}
