//! How much memory a model needs, estimated from its sizes before anything is allocated
//! (checked against what the machine allows by [`crate::io::memory`]).

use crate::model::config::{LearningRule, ModelConfig};

/// Bytes of one copy of the learned parameters: W, b, Y, c (f32), the sparse-feedback
/// mask (one byte per feedback weight when feedback is sparse) and the rule's own matrices
/// (BurstCCN's Q, one f32 per feedback weight).
pub fn params_bytes(cfg: &ModelConfig) -> u64 {
    let t = cfg.topology();
    let sparse = cfg.learning.feedback_sparsity > 0.0;
    let q = cfg.learning.rule == LearningRule::Burstccn;
    (0..t.n_layers())
        .map(|m| {
            let (n, n_pre, n_fb) = (
                t.sizes[m] as u64,
                t.input_size(m) as u64,
                t.feedback_size(m) as u64,
            );
            let c = if t.is_hidden(m) { n } else { 0 };
            let floats = n * n_pre + n + n * n_fb * (1 + q as u64) + c;
            4 * floats + if sparse { n * n_fb } else { 0 }
        })
        .sum()
}

/// Bytes of one copy of the network state: per neuron its potentials, window sums, input
/// histories (`psp_window_steps + 1` slots for each dendrite) and apical history; per
/// presynaptic unit its window mean and traces.
pub fn state_bytes(cfg: &ModelConfig) -> u64 {
    let t = cfg.topology();
    let window = cfg.synapse.psp_window_steps as u64 + 2;
    let hist = (cfg.phases.integration_time + cfg.phases.plateau_time_max_offset) as u64;
    let per_neuron = 4 * (16 + 2 * window + hist) + 8;
    let neurons: u64 = t.sizes.iter().map(|&n| n as u64).sum();
    let presynaptic: u64 = (0..t.n_layers()).map(|m| t.input_size(m) as u64).sum();
    neurons * per_neuron + presynaptic * 4 * 8
}

/// MNIST in memory (60,000 + 10,000 images of 784 bytes, and the labels).
pub const DATA_BYTES: u64 = 70_000 * 785;
/// The program itself, its threads and allocator arenas.
pub const BASE_BYTES: u64 = 128 << 20;

/// A rough upper bound of a training run's peak memory: the network's parameters and
/// state, a checkpoint's copy of both and its encoded file (written at every checkpoint),
/// MNIST and the program itself; with `weight_snapshots` (a trace file recording
/// weights, the default) also the recorder's buffers of a snapshot: the transposed
/// scratch copy, the snapshot buffered, and the one the writer thread is still writing
/// (a 784-265000-10 model that passed without them aborted at its first epoch end under
/// `ulimit -v 4000000`).
pub fn training_bytes(cfg: &ModelConfig, weight_snapshots: bool) -> u64 {
    let p = params_bytes(cfg);
    let s = state_bytes(cfg);
    let snapshots = if weight_snapshots { 3 * p } else { 0 };
    4 * p + snapshots + 3 * s + DATA_BYTES + BASE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_of_the_default_model_by_hand() {
        let cfg = ModelConfig::default_model();
        // 784-500-10 with broadcast feedback: W1 784x500, b1 500, Y1 10x500, c1 500;
        // W2 500x10, b2 10.
        let floats = 784 * 500 + 500 + 10 * 500 + 500 + 500 * 10 + 10;
        assert_eq!(params_bytes(&cfg), 4 * floats);
        // Its checkpoints hold the same parameters: 1.6 MB.
        assert!((1_500_000..1_700_000).contains(&params_bytes(&cfg)));
    }

    #[test]
    fn a_million_hidden_units_need_gigabytes() {
        let text = crate::model::config::DEFAULT_MODEL_TOML
            .replace("hidden = [500]", "hidden = [1000000]");
        let cfg = ModelConfig::from_toml_str(&text, "t").unwrap();
        let p = params_bytes(&cfg);
        // Hidden: W 784 x 10^6, b and c 10^6 each, Y 10 x 10^6; output: W 10^6 x 10, b 10.
        assert_eq!(
            p,
            4 * (784 * 1_000_000 + 2 * 1_000_000 + 10 * 1_000_000 + 1_000_000 * 10 + 10)
        );
        assert!(training_bytes(&cfg, false) > 4 * p);
        assert!(training_bytes(&cfg, false) < 5 * p);
        // Weight snapshots in the trace file: three more copies.
        assert!(training_bytes(&cfg, true) - training_bytes(&cfg, false) == 3 * p);
    }

    #[test]
    fn burstccn_counts_q_beside_y() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/burstccn-5l-rate.toml"
        ))
        .unwrap();
        let cfg = ModelConfig::from_toml_str(&text, "t").unwrap();
        // 784-500-500-500-10, next-layer feedback: W, b, c of each hidden layer, Y and Q
        // (500x500, 500x500, 10x500), the output's W and b.
        let w = 784 * 500 + 500 * 500 + 500 * 500 + 500 * 10;
        let hidden = 3 * (500 + 500);
        let yq = 2 * (500 * 500 + 500 * 500 + 10 * 500);
        assert_eq!(params_bytes(&cfg), 4 * (w + hidden + yq + 10));
    }
}
