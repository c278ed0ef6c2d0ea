//! The model file's checks of `learning.rule`: the mode each rule runs in and the fields it
//! reads (docs/model.md, sections 10-12); called by [`ModelConfig`]'s validation.

use crate::model::checker::{Checker, ConfigError};
use crate::model::config::{FeedbackMode, ModelConfig, NeuronMode};
use crate::model::rule::LearningRule;
use crate::model::topology::FeedbackSource;

impl ModelConfig {
    /// `learning.rule`: the mode it runs in and the `[learning]` fields it reads (section 10).
    /// The gradient rules run on the rate network and read `eta`, `hidden_learning` and, for
    /// feedback alignment, the feedback weights' sparsity; anything else of the section
    /// belongs to the segregated-dendrite rule and is refused rather than ignored.
    pub(super) fn check_rule(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let l = &self.learning;
        let rule = l.rule;
        match (&self.burst, rule) {
            (Some(b), r) if r.is_burst() => b.check(ck, r, self.neuron.mode != NeuronMode::Rate)?,
            (Some(_), _) => {
                return Err(ck.bad(
                    "burst",
                    format!(
                        "is read only by learning.rule = \"burstccn\" or \"burstprop\", not \
                         \"{}\"; remove the [burst] table or choose a burst rule",
                        rule.name()
                    ),
                ))
            }
            _ => {}
        }
        if rule == LearningRule::Guerguiev {
            return Ok(());
        }
        let name = rule.name();
        if rule == LearningRule::Burstccn && self.neuron.mode != NeuronMode::Rate {
            self.check_spiking_burstccn(ck)?;
        } else if self.neuron.mode != NeuronMode::Rate {
            return Err(ck.bad(
                "learning.rule",
                format!(
                    "= \"{name}\" runs on the rate network only: set neuron.mode = \"rate\" \
                     (spiking networks learn with rule = \"guerguiev\" or \"burstccn\")"
                ),
            ));
        }
        let not_read = |field: &str, what: String| {
            ck.bad(
                field,
                format!(
                    "is not read by learning.rule = \"{name}\" ({what}); remove it or choose \
                     rule = \"guerguiev\""
                ),
            )
        };
        if l.feedback_mode != FeedbackMode::Random {
            return Err(not_read(
                "learning.feedback_mode",
                format!(
                    "got {:?}; the rule sets its own feedback path",
                    l.feedback_mode
                ),
            ));
        }
        if !l.eta_feedback.is_empty() {
            return Err(not_read(
                "learning.eta_feedback",
                "its feedback weights are fixed".into(),
            ));
        }
        if l.feedback_bias {
            return Err(not_read(
                "learning.feedback_bias",
                "it has no apical bias".into(),
            ));
        }
        if l.symmetric_noise_sd != 0.0 {
            return Err(not_read(
                "learning.symmetric_noise_sd",
                "it has no symmetric feedback".into(),
            ));
        }
        if rule.is_burst() {
            if l.feedback_sparsity != 0.0 {
                return Err(not_read(
                    "learning.feedback_sparsity",
                    "its feedback weights are set by [burst] y_mode".into(),
                ));
            }
            if self.network.hidden.len() > 1 && self.network.feedback != FeedbackSource::NextLayer {
                return Err(ck.bad(
                    "network.feedback",
                    format!(
                        "must be \"next_layer\" for learning.rule = \"{name}\" with more than \
                         one hidden layer (each layer's apical dendrites receive the bursts of \
                         the layer above)"
                    ),
                ));
            }
        }
        if rule == LearningRule::Backprop && l.feedback_sparsity != 0.0 {
            return Err(not_read(
                "learning.feedback_sparsity",
                "backprop sends errors through W^T, not Y".into(),
            ));
        }
        Ok(())
    }

    /// Spiking BurstCCN (docs/model.md, section 11, "Spiking mode"): the apical potential
    /// sets bursts and does not drive the soma, and its random stream is the one plateau
    /// times would use.
    fn check_spiking_burstccn(&self, ck: &Checker<'_>) -> Result<(), ConfigError> {
        let why = "with learning.rule = \"burstccn\" the apical potential sets the burst \
                   probability and does not act on the soma";
        if self.neuron.g_a != 0.0 {
            return Err(ck.bad(
                "neuron.g_A",
                format!("must be 0 ({why}), got {}", self.neuron.g_a),
            ));
        }
        if self.phases.stochastic_plateau_times {
            return Err(ck.bad(
                "phases.stochastic_plateau_times",
                format!("must be false ({why})"),
            ));
        }
        Ok(())
    }
}
