//! The learned parameters of a layer (W, b, Y, c) as plain arrays (section 4 of
//! docs/model.md).

use crate::model::topology::Topology;
use serde::{Deserialize, Serialize};

/// What a layer learns and the fixed weights it is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerParams {
    /// Presynaptic (feedforward input) units.
    pub n_pre: usize,
    /// Neurons.
    pub n: usize,
    /// Feedforward weights W, input-major: `w[j * n + i]` is the weight from input j to
    /// neuron i, so a spike of input j adds one contiguous row.
    pub w: Vec<f32>,
    /// Basal (dendrite) biases b.
    pub b: Vec<f32>,
    /// Feedback input units (0 for the output layer).
    pub n_fb: usize,
    /// Feedback weights Y, feedback-input-major: `y[k * n + i]`.
    pub y: Vec<f32>,
    /// Apical biases c (zero unless the model has a feedback bias).
    pub c: Vec<f32>,
    /// Sparse feedback: which entries of `y` survive (empty when feedback is dense).
    pub y_keep: Vec<bool>,
}

impl LayerParams {
    /// Zero parameters of layer `m` (no sparse-feedback mask).
    pub(crate) fn zeros(t: &Topology, m: usize) -> Self {
        let (n, n_pre, n_fb) = (t.sizes[m], t.input_size(m), t.feedback_size(m));
        LayerParams {
            n_pre,
            n,
            w: vec![0.0; n * n_pre],
            b: vec![0.0; n],
            n_fb,
            y: vec![0.0; n * n_fb],
            c: vec![0.0; if t.is_hidden(m) { n } else { 0 }],
            y_keep: Vec::new(),
        }
    }

    /// (n_pre, n, n_fb, |W|, |b|, |Y|, |c|, |Y mask|).
    pub fn shape(&self) -> [usize; 8] {
        [
            self.n_pre,
            self.n,
            self.n_fb,
            self.w.len(),
            self.b.len(),
            self.y.len(),
            self.c.len(),
            self.y_keep.len(),
        ]
    }

    /// W[i, j] in the usual (neuron, input) indexing.
    #[inline]
    pub fn weight(&self, i: usize, j: usize) -> f32 {
        self.w[j * self.n + i]
    }

    /// Y[i, k] in the usual (neuron, feedback input) indexing.
    #[inline]
    pub fn feedback(&self, i: usize, k: usize) -> f32 {
        self.y[k * self.n + i]
    }

    pub fn is_finite(&self) -> bool {
        self.w
            .iter()
            .chain(&self.b)
            .chain(&self.y)
            .chain(&self.c)
            .all(|v| v.is_finite())
    }
}

/// Learned matrices a rule keeps beside the layers' W, b and Y (docs/model.md, section 11):
/// empty for every rule but BurstCCN. Saved in checkpoints (format version 5) only when
/// non-empty, so the other rules' checkpoints are what they were.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleParams {
    /// BurstCCN's event feedback weights Q_m of each hidden layer m, laid out as its Y
    /// (`q[m][k * n + i]`: from unit k of the layer above to neuron i).
    pub q: Vec<Vec<f32>>,
}

impl RuleParams {
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn is_finite(&self) -> bool {
        self.q.iter().flatten().all(|v| v.is_finite())
    }
}
