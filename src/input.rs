//! Poisson encoding of images (eq. 2.0): input unit j fires with mean lambda_j = lambda_max x_j
//! spikes per step, x_j = pixel / 255.
//!
//! Poisson counts per step are drawn event-driven, as a Poisson process: each active unit
//! keeps the time to its next spike and draws an exponential interval after each spike. The
//! counts per step are then exactly independent Poisson(lambda_j) variables, as in the
//! reference, at the cost of one draw per spike instead of one per unit and step. Units of
//! zero intensity (most MNIST pixels) never spike and cost nothing. The process is memoryless,
//! so redrawing every unit's next spike when the image changes is exact.

use crate::config::InputDraw;
use crate::rng::{open_unit_f64, unit_f32, Rng};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoissonInput {
    draw: InputDraw,
    lambda_max: f64,
    /// Units with a non-zero rate.
    active: Vec<u32>,
    /// Their rates (spikes per step).
    rates: Vec<f64>,
    /// Poisson: steps (from the start of the current step) until each active unit's next spike.
    next: Vec<f64>,
    /// This step's spikes: unit indices, repeated for counts above one.
    pub events: Vec<u32>,
}

impl PoissonInput {
    pub fn new(n: usize, lambda_max: f64, draw: InputDraw) -> Self {
        PoissonInput {
            draw,
            lambda_max,
            active: Vec::with_capacity(n),
            rates: Vec::with_capacity(n),
            next: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
        }
    }

    /// Sets the image shown from the next step on (eq. 2.0).
    pub fn set_image(&mut self, pixels: &[u8], rng: &mut Rng) {
        self.active.clear();
        self.rates.clear();
        self.next.clear();
        for (j, &p) in pixels.iter().enumerate() {
            if p > 0 {
                let rate = self.lambda_max * p as f64 / 255.0;
                self.active.push(j as u32);
                self.rates.push(rate);
                if self.draw == InputDraw::Poisson {
                    self.next.push(exponential(rng) / rate);
                }
            }
        }
    }

    /// Forgets the current image.
    pub fn clear(&mut self) {
        self.active.clear();
        self.rates.clear();
        self.next.clear();
        self.events.clear();
    }

    /// Draws one step's spikes into `events`.
    #[inline(always)]
    pub fn step(&mut self, rng: &mut Rng) -> &[u32] {
        self.events.clear();
        match self.draw {
            InputDraw::Poisson => {
                for ((&j, &rate), t) in self.active.iter().zip(&self.rates).zip(&mut self.next) {
                    while *t < 1.0 {
                        self.events.push(j);
                        *t += exponential(rng) / rate;
                    }
                    *t -= 1.0;
                }
            }
            InputDraw::Bernoulli => {
                for (&j, &rate) in self.active.iter().zip(&self.rates) {
                    if (unit_f32(rng.next_u32()) as f64) < rate {
                        self.events.push(j);
                    }
                }
            }
        }
        &self.events
    }

    /// Rate of unit j in spikes per step (0 when it is not active).
    pub fn rate(&self, j: usize) -> f64 {
        self.active
            .iter()
            .position(|&a| a as usize == j)
            .map_or(0.0, |i| self.rates[i])
    }
}

/// A standard exponential draw.
#[inline]
fn exponential(rng: &mut Rng) -> f64 {
    -open_unit_f64(rng.next_u64()).ln()
}
