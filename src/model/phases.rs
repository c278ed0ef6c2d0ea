//! Phase lengths of the training examples (section 5 of docs/model.md).

use crate::base::rng::Rng;
use crate::model::config::ModelConfig;
use rand_distr::{Distribution, InverseGaussian};

/// Phase lengths of one epoch: all forward lengths, then all target lengths (section 5).
pub fn phase_lengths(cfg: &ModelConfig, n: usize, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let p = &cfg.phases;
    if !p.use_rand_phase_lengths {
        return (vec![p.l_f; n], vec![p.l_t; n]);
    }
    let wald = InverseGaussian::new(p.wald_mean, p.wald_shape).expect("validated Wald parameters");
    let mut draw = |base: usize| -> Vec<usize> {
        (0..n)
            .map(|_| base + wald.sample(rng).floor().clamp(0.0, 1e6) as usize)
            .collect()
    };
    let f = draw(p.l_f);
    let t = draw(p.l_t);
    (f, t)
}
