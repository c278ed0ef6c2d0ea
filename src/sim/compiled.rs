//! The compiled model: everything fixed by the model file, derived once before anything
//! runs (docs/architecture.md, "The compiled model"). The schedule, the state and the rules
//! read it; nothing in it changes while a network trains.

use crate::model::config::{LearningRule, ModelConfig};
use crate::model::neuron::Dynamics;
use crate::model::synapse::Kernel;
use crate::model::topology::Topology;

/// A model file compiled for the simulation: its text as parsed (`cfg`), the network's
/// shape (`topology`), the learning rule, and the constants of the equations.
#[derive(Clone, Debug)]
pub struct Model {
    pub cfg: ModelConfig,
    /// Sizes and wiring, derived once from `cfg.network`.
    pub topology: Topology,
    /// The learning rule (`learning.rule`), resolved once: the rules are matched once per
    /// example ([`crate::sim::rules`]), never per neuron or step.
    pub rule: LearningRule,
    /// Conductance ratios and rates of sections 3-4.
    pub dynamics: Dynamics,
    /// The PSP kernel of section 2.
    pub kernel: Kernel,
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        let dynamics = Dynamics::new(&cfg.neuron);
        let kernel = Kernel::new(&cfg.synapse, cfg.neuron.dt);
        Model {
            topology: cfg.topology(),
            rule: cfg.learning.rule,
            cfg,
            dynamics,
            kernel,
        }
    }

    /// Output units per class.
    pub fn units_per_class(&self) -> usize {
        self.cfg.network.n_out / self.cfg.network.classes
    }

    /// Apical history kept per hidden neuron (stochastic plateau times only).
    pub(crate) fn hist_len(&self) -> usize {
        let p = &self.cfg.phases;
        if p.stochastic_plateau_times {
            p.integration_time + p.plateau_time_max_offset
        } else {
            0
        }
    }
}
