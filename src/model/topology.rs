//! The shape of a network, derived once from the model file (`ModelConfig::topology`): layer sizes, what feeds each
//! layer from below and from above, which layers are hidden, population names.

use serde::{Deserialize, Serialize};

/// Where hidden layers' apical compartments get their feedback from (spec section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackSource {
    /// Every hidden layer receives the output layer's spikes (the reference default).
    Broadcast,
    /// Each hidden layer receives the spikes of the layer directly above it.
    NextLayer,
}

/// Sizes and wiring of a network. Layer m (0-based) is hidden when m + 1 < n_layers; its
/// feedforward input is the image (m = 0) or layer m - 1, its feedback input the output
/// layer (broadcast feedback) or layer m + 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Input units (pixels).
    pub n_in: usize,
    /// Neurons of each layer, the output layer last.
    pub sizes: Vec<usize>,
    pub feedback: FeedbackSource,
}

impl Topology {
    /// Layers, the output layer included.
    pub fn n_layers(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_hidden(&self, m: usize) -> bool {
        m + 1 < self.sizes.len()
    }

    /// Feedforward inputs of layer m.
    pub fn input_size(&self, m: usize) -> usize {
        if m == 0 {
            self.n_in
        } else {
            self.sizes[m - 1]
        }
    }

    /// The layer whose spikes reach layer m's apical dendrites (hidden layers only).
    pub fn feedback_source(&self, m: usize) -> usize {
        match self.feedback {
            FeedbackSource::Broadcast => self.sizes.len() - 1,
            FeedbackSource::NextLayer => m + 1,
        }
    }

    /// Feedback inputs of layer m: 0 for the output layer.
    pub fn feedback_size(&self, m: usize) -> usize {
        if self.is_hidden(m) {
            self.sizes[self.feedback_source(m)]
        } else {
            0
        }
    }

    /// Population names: input, hidden0, hidden1, ..., output.
    pub fn population_names(&self) -> Vec<String> {
        let mut v = vec!["input".to_string()];
        v.extend((0..self.sizes.len() - 1).map(|m| format!("hidden{m}")));
        v.push("output".into());
        v
    }

    /// "784-500-10".
    pub fn sizes_string(&self) -> String {
        std::iter::once(self.n_in)
            .chain(self.sizes.iter().copied())
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::ModelConfig;

    #[test]
    fn two_hidden_layers_with_broadcast_and_next_layer_feedback() {
        let mut cfg = ModelConfig::default_model();
        cfg.network.hidden = vec![500, 100];
        let t = cfg.topology();
        assert_eq!(t.sizes, vec![500, 100, 10]);
        assert_eq!(
            (t.input_size(0), t.input_size(1), t.input_size(2)),
            (784, 500, 100)
        );
        assert_eq!(
            (t.feedback_size(0), t.feedback_size(1), t.feedback_size(2)),
            (10, 10, 0)
        );
        assert!(t.is_hidden(1) && !t.is_hidden(2));
        assert_eq!(
            t.population_names(),
            ["input", "hidden0", "hidden1", "output"]
        );
        assert_eq!(t.sizes_string(), "784-500-100-10");
        cfg.network.feedback = FeedbackSource::NextLayer;
        let t = cfg.topology();
        assert_eq!((t.feedback_size(0), t.feedback_size(1)), (100, 10));
    }
}
