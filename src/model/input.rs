//! Poisson encoding of images (eq. 2.0): input unit j fires with mean lambda_j = lambda_max x_j
//! spikes per step, x_j = pixel / 255.
//!
//! Only the units of non-zero intensity (about a fifth of an MNIST image) are simulated; the
//! others never spike and cost nothing. Each step every active unit draws one uniform from
//! the input's vectorised stream and its Poisson count by inversion of the CDF, exactly as
//! the neurons do (`neuron::poisson_count_upto3`, finished in `neuron::poisson_tail` for
//! counts of three or more): the counts per step are independent Poisson(lambda_j)
//! variables, as in the reference. e^-lambda_j is computed once per image. The Bernoulli
//! option draws at most one spike per step, with probability lambda_j.

use crate::base::rng::LaneRng;
use crate::model::config::InputDraw;
use crate::model::neuron::{emit_spikes, poisson_count_upto3, poisson_tail, DrawScratch};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoissonInput {
    draw: InputDraw,
    lambda_max: f64,
    /// Units with a non-zero rate.
    active: Vec<u32>,
    /// Their rates (spikes per step).
    rates: Vec<f32>,
    /// Their probabilities of no spike in a step, e^-lambda_j.
    p0: Vec<f32>,
    /// This step's spikes: unit indices, repeated for counts above one.
    pub events: Vec<u32>,
    #[serde(skip)]
    scratch: DrawScratch,
}

impl PoissonInput {
    pub fn new(n: usize, lambda_max: f64, draw: InputDraw) -> Self {
        PoissonInput {
            draw,
            lambda_max,
            active: Vec::with_capacity(n),
            rates: Vec::with_capacity(n),
            p0: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            scratch: DrawScratch::default(),
        }
    }

    /// Sets the image shown from the next step on (eq. 2.0).
    pub fn set_image(&mut self, pixels: &[u8]) {
        self.active.clear();
        self.rates.clear();
        self.p0.clear();
        for (j, &p) in pixels.iter().enumerate() {
            if p > 0 {
                let rate = self.lambda_max * p as f64 / 255.0;
                self.active.push(j as u32);
                self.rates.push(rate as f32);
                self.p0.push((-(rate as f32 as f64)).exp() as f32);
            }
        }
    }

    /// Forgets the current image.
    pub(crate) fn clear(&mut self) {
        self.active.clear();
        self.rates.clear();
        self.p0.clear();
        self.events.clear();
    }

    /// Draws one step's spikes into `events`, in unit order.
    #[inline(always)]
    pub fn step(&mut self, rng: &mut LaneRng) -> &[u32] {
        let sc = &mut self.scratch;
        sc.fit(self.active.len());
        rng.fill_uniforms(&mut sc.uniforms);
        match self.draw {
            InputDraw::Poisson => {
                for (((k, &u), &l), &p0) in sc
                    .count
                    .iter_mut()
                    .zip(&sc.uniforms)
                    .zip(&self.rates)
                    .zip(&self.p0)
                {
                    *k = poisson_count_upto3(u, l, p0);
                }
            }
            InputDraw::Bernoulli => {
                for ((k, &u), &l) in sc.count.iter_mut().zip(&sc.uniforms).zip(&self.rates) {
                    *k = f32::from((u < l) as u8);
                }
            }
        }
        self.events.clear();
        let (active, uniforms, rates, p0) = (&self.active, &sc.uniforms, &self.rates, &self.p0);
        emit_spikes(
            &sc.count,
            &mut sc.cand,
            &mut self.events,
            |i| active[i],
            |i| poisson_tail(uniforms[i], rates[i], p0[i]),
        );
        &self.events
    }

    /// (unit, rate in spikes per step) of every unit of non-zero rate, in unit order (the
    /// rate mode's input, eq. 9.1).
    pub fn active_rates(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.active
            .iter()
            .zip(&self.rates)
            .map(|(&j, &r)| (j as usize, r))
    }

    /// Rate of unit j in spikes per step (0 when it is not active).
    pub fn rate(&self, j: usize) -> f64 {
        self.active
            .iter()
            .position(|&a| a as usize == j)
            .map_or(0.0, |i| self.rates[i] as f64)
    }
}
