//! A network trained one example at a time, as a notebook feeds it (the Python package's
//! `Network.new` and `train_example`): the network a new run would start from, and for each
//! example the same [`Network::train_example`] a training run calls, on the spike streams
//! of a run's first epoch and phase lengths drawn as the model says.

use crate::base::rng::{stream, Purpose, Rng};
use crate::io::checkpoint::{self, Checkpoint};
use crate::model::config::ModelConfig;
use crate::model::phases::phase_lengths;
use crate::sim::network::Network;

/// What one example did, for a user to look at.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The class the forward phase predicted (before learning from the example).
    pub predicted: u8,
    /// Steps of the forward and target phases.
    pub l_f: usize,
    pub l_t: usize,
    /// Errors of every layer (bottom first) at this example's learning step (section 6).
    pub errors: Vec<Vec<f32>>,
    /// alpha_t - alpha_f of every hidden layer: target minus forward mean apical potential.
    pub plateau_differences: Vec<Vec<f32>>,
    /// Spikes each layer (bottom first) emitted during the example.
    pub spike_counts: Vec<u64>,
}

/// A network and its position in example-at-a-time training.
pub struct Stepper {
    pub net: Network,
    pub seed: u64,
    /// Examples learned so far.
    pub examples: usize,
    /// Of those, the ones predicted right before learning.
    pub correct: usize,
    lengths: Rng,
}

/// Limit on the labels of one example: the model's classes.
fn check_example(cfg: &ModelConfig, image: &[u8], label: u8) -> Result<(), String> {
    if image.len() != cfg.network.n_in {
        return Err(format!(
            "the image has {} inputs but the model has network.n_in = {}",
            image.len(),
            cfg.network.n_in
        ));
    }
    if label as usize >= cfg.network.classes {
        return Err(format!(
            "label {label} is not a class of the model (network.classes = {}: labels 0..{})",
            cfg.network.classes,
            cfg.network.classes - 1
        ));
    }
    Ok(())
}

impl Stepper {
    /// The network a new run of `cfg` with `seed` starts from, at the start of epoch 1.
    pub fn new(cfg: ModelConfig, seed: u64) -> Self {
        let mut net = Network::new(cfg, seed);
        net.start_epoch(seed, 1);
        Stepper {
            net,
            seed,
            examples: 0,
            correct: 0,
            lengths: stream(seed, Purpose::PhaseLengths, &[1]),
        }
    }

    /// A network restored from a checkpoint, going on from where it is (its state reset
    /// to epoch `epochs_done + 1`'s streams).
    pub fn from_network(mut net: Network, seed: u64, epochs_done: usize) -> Self {
        let epoch = epochs_done as u64 + 1;
        net.start_epoch(seed, epoch as usize);
        Stepper {
            net,
            seed,
            examples: 0,
            correct: 0,
            lengths: stream(seed, Purpose::PhaseLengths, &[epoch]),
        }
    }

    /// Learns from one example (pixels 0-255, `n_in` of them; a label of the model's
    /// classes).
    pub fn train_example(&mut self, image: &[u8], label: u8) -> Result<StepOutcome, String> {
        let cfg = &self.net.model.cfg;
        check_example(cfg, image, label)?;
        let (l_f, l_t) = phase_lengths(cfg, 1, &mut self.lengths);
        let (l_f, l_t) = (l_f[0], l_t[0]);
        let before: Vec<u64> = self
            .net
            .state
            .layers
            .iter()
            .map(|l| l.spike_count)
            .collect();
        let out = self.net.train_example(image, label, l_f, l_t);
        let st = &self.net.state;
        let hidden = st.layers.len() - 1;
        self.examples += 1;
        self.correct += usize::from(out.predicted == label);
        Ok(StepOutcome {
            predicted: out.predicted,
            l_f,
            l_t,
            errors: st.errors.clone(),
            plateau_differences: st.layers[..hidden]
                .iter()
                .map(|l| {
                    l.target
                        .a
                        .iter()
                        .zip(&l.forward.a)
                        .map(|(t, f)| t - f)
                        .collect()
                })
                .collect(),
            spike_counts: st
                .layers
                .iter()
                .zip(&before)
                .map(|(l, b)| l.spike_count.wrapping_sub(*b))
                .collect(),
        })
    }

    /// The network as a checkpoint of a run's start (0 epochs done, no history): the CLI's
    /// `apical train --resume` trains it on from there with `train_examples` examples per
    /// epoch, `apical eval` tests it.
    pub fn checkpoint(&self, train_examples: usize, test_examples: usize) -> Checkpoint {
        let model_toml = self.net.model.cfg.to_toml_string();
        Checkpoint {
            model_sha256: checkpoint::sha256_hex(model_toml.as_bytes()),
            model_toml,
            seed: self.seed,
            train_examples,
            test_examples,
            epochs_done: 0,
            progress: None,
            params: self.net.params.clone(),
            feedback_rng: self.net.feedback_rng.clone(),
            history: Vec::new(),
            rule_params: self.net.rule_params.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelConfig {
        ModelConfig::from_toml_str(
            "name = \"t\"\n[network]\nn_in = 4\nhidden = [3]\nn_out = 2\nclasses = 2\n[learning]\neta = [0.1, 0.1]\n",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn steps_learn_and_check_their_input() {
        let mut s = Stepper::new(cfg(), 1);
        let w0 = s.net.params[1].w.clone();
        let o = s.train_example(&[255, 0, 255, 0], 1).unwrap();
        assert_eq!(o.errors.len(), 2);
        assert_eq!(o.plateau_differences.len(), 1);
        assert_eq!(o.plateau_differences[0].len(), 3);
        assert_eq!(o.spike_counts.len(), 2);
        assert_ne!(s.net.params[1].w, w0, "the output weights learned");
        assert_eq!(s.examples, 1);
        let e = s.train_example(&[0; 3], 0).unwrap_err();
        assert!(
            e.contains("3 inputs") && e.contains("network.n_in = 4"),
            "{e}"
        );
        let e = s.train_example(&[0; 4], 2).unwrap_err();
        assert!(
            e.contains("label 2") && e.contains("network.classes = 2"),
            "{e}"
        );
    }
}
