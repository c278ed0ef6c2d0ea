//! Compartment dynamics of the hidden (basal, apical, soma) and output (dendrite, soma)
//! neurons, their firing rates and spikes, and the apical plateau potential.
//! Equation numbers refer to docs/model.md.

use crate::model::config::NeuronConfig;

/// Constants of the somatic updates, derived once from the model file.
#[derive(Clone, Copy, Debug)]
pub struct Dynamics {
    pub dt: f32,
    pub lambda_max: f32,
    pub g_l: f32,
    pub g_b: f32,
    pub g_a: f32,
    pub g_d: f32,
    pub e_e: f32,
    pub e_i: f32,
    /// Eq. 3.5: k_B = g_B / (g_L + g_B + g_A).
    pub k_b: f32,
    /// Eq. 4.4: k_D = g_D / (g_L + g_D).
    pub k_d: f32,
}

impl Dynamics {
    pub fn new(n: &NeuronConfig) -> Self {
        Dynamics {
            dt: n.dt as f32,
            lambda_max: n.lambda_max as f32,
            g_l: n.g_l as f32,
            g_b: n.g_b as f32,
            g_a: n.g_a as f32,
            g_d: n.g_d as f32,
            e_e: n.e_e as f32,
            e_i: n.e_i as f32,
            k_b: (n.g_b / (n.g_l + n.g_b + n.g_a)) as f32,
            k_d: (n.g_d / (n.g_l + n.g_d)) as f32,
        }
    }
}

/// The logistic function sigma.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// sigma'(x) = sigma(x) (1 - sigma(x)).
#[inline]
pub(crate) fn sigmoid_prime(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 - s)
}

/// Eq. 3.3: hidden soma, forward Euler:
/// C <- C + dt (-g_L C + g_B (B - C) + g_A (A - C)).
#[inline(always)]
pub fn hidden_soma_step(d: &Dynamics, c: &mut [f32], basal: &[f32], apical: &[f32]) {
    for ((c, &b), &a) in c.iter_mut().zip(basal).zip(apical) {
        *c += d.dt * (-d.g_l * *c + d.g_b * (b - *c) + d.g_a * (a - *c));
    }
}

/// Eqs. 4.2-4.3: output soma, forward Euler, with the teaching current of the target phase
/// (`g_e` = per-unit excitatory teaching conductance, g_I = 1 - g_E; None in the forward phase):
/// C <- C + dt (-g_L C + g_D (B - C) + I), I = g_E (E_E - C) + g_I (E_I - C).
#[inline(always)]
pub fn output_soma_step(d: &Dynamics, c: &mut [f32], dendrite: &[f32], g_e: Option<&[f32]>) {
    match g_e {
        None => {
            for (c, &b) in c.iter_mut().zip(dendrite) {
                *c += d.dt * (-d.g_l * *c + d.g_d * (b - *c));
            }
        }
        Some(g_e) => {
            for ((c, &b), &ge) in c.iter_mut().zip(dendrite).zip(g_e) {
                let i = teaching_current(d, *c, ge);
                *c += d.dt * (-d.g_l * *c + d.g_d * (b - *c) + i);
            }
        }
    }
}

/// Eq. 4.3: I = g_E (E_E - C) + g_I (E_I - C), g_I = 1 - g_E.
#[inline]
pub(crate) fn teaching_current(d: &Dynamics, c: f32, g_e: f32) -> f32 {
    g_e * (d.e_e - c) + (1.0 - g_e) * (d.e_i - c)
}

/// Eq. 3.4: a Poisson count of mean `lambda` from one uniform `u` in [0, 1), by inversion.
#[inline]
pub fn poisson_count(u: f32, lambda: f32) -> u8 {
    poisson_tail(u, lambda, (-lambda).exp())
}

/// exp(x) in f32 by a fixed recipe: x = n ln 2 + r with n = round(x / ln 2) and |r| <=
/// ln 2 / 2 (Cody-Waite, ln 2 split in two so that n ln2_hi is exact), e^r by its Taylor
/// polynomial of degree 7, then 2^n from the exponent bits. Only f32 multiplications,
/// additions and integer bit operations, no table and no branch: loops over slices
/// auto-vectorise (SSE2 and up) and give bit-identical results on every x86-64 CPU.
/// The argument is clamped to [-87, 88]. Relative error below 1e-7 (about one ulp;
/// tested against f64 in tests/perf.rs); libm's expf is within 1 ulp. See
/// docs/performance.md.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 * 2^23 + 127: adding it rounds to an integer and leaves n + 127 in the low bits.
    const MAGIC: f32 = 12_582_912.0 + 127.0;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let scale = f32::from_bits(t.to_bits() << 23);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    p * scale
}

/// e^x for x in [-0.5, 0.5] by its Taylor polynomial of degree 8 (truncation error below
/// 6e-9, relative error below 1.5e-7 in f32 with rounding; tests/perf.rs): the spike
/// threshold e^-lambda when lambda_max <= 0.5, cheaper than [`fast_exp`].
#[inline(always)]
pub fn exp_small(x: f32) -> f32 {
    let mut p = 1.0 / 40320.0;
    p = p * x + 1.0 / 5040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    p = p * x + 1.0;
    p * x + 1.0
}

/// Eq. 3.4 with [`fast_exp`]: lambda_max sigma(C), as the simulation step computes it.
#[inline(always)]
pub(crate) fn fast_rate(d: &Dynamics, c: f32) -> f32 {
    d.lambda_max / (1.0 + fast_exp(-c))
}

/// Whether the step computes e^-lambda with [`exp_small`] (every rate is at most
/// lambda_max <= 0.5, inside its range) rather than [`fast_exp`].
#[inline(always)]
fn small_rates(d: &Dynamics) -> bool {
    d.lambda_max <= 0.5
}

/// e^-lambda, the probability of no spike at rate `lambda` (eq. 3.4), as the step computes
/// it (see `small_rates`).
#[inline(always)]
pub fn no_spike_probability(d: &Dynamics, lambda: f32) -> f32 {
    if small_rates(d) {
        exp_small(-lambda)
    } else {
        fast_exp(-lambda)
    }
}

/// Scratch of one step's spike draw for a group of units (a neuron block, the input): their
/// uniforms, counts, and the units that spike. Not state: never saved, sized on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct DrawScratch {
    pub uniforms: Vec<f32>,
    pub count: Vec<f32>,
    pub cand: Vec<u32>,
}

impl DrawScratch {
    /// Fits the scratch to `n` units (nothing to do when it already does).
    #[inline(always)]
    pub(crate) fn fit(&mut self, n: usize) {
        if self.uniforms.len() != n {
            self.uniforms.resize(n, 0.0);
            self.count.resize(n, 0.0);
            self.cand.resize(n + 8, 0);
        }
    }
}

/// Eq. 3.4 for a block of neurons: rates lambda_C = lambda_max sigma(C) and Poisson spike
/// counts from one uniform per neuron, by inversion of the CDF. The whole block computes,
/// without branches, the rate, p0 = e^-lambda and the first steps of the inversion
/// ([`poisson_count_upto3`]); only counts of three or more (about one spiking neuron in
/// 150 at lambda <= 0.2) finish in [`poisson_tail`]. The counts are exactly those of
/// [`poisson_tail`]. Spikes are appended to `events` in neuron order (index `base + i`,
/// repeated for counts above one). `count` and `cand` are scratch of `soma.len()` and
/// `soma.len() + 8` entries.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn rates_and_spikes(
    d: &Dynamics,
    soma: &[f32],
    uniforms: &[f32],
    rate: &mut [f32],
    count: &mut [f32],
    cand: &mut [u32],
    events: &mut Vec<u32>,
    base: u32,
) {
    // Two short passes rather than one long one: each loop body is a long dependency
    // chain, and short bodies let the CPU overlap more neurons.
    for (r, &c) in rate.iter_mut().zip(soma) {
        *r = fast_rate(d, c);
    }
    let counts = |count: &mut [f32], p0: fn(f32) -> f32| {
        for ((k, &l), &u) in count.iter_mut().zip(rate.iter()).zip(uniforms) {
            *k = poisson_count_upto3(u, l, p0(-l));
        }
    };
    // The same choice as no_spike_probability, hoisted out of the loop.
    if small_rates(d) {
        counts(count, exp_small);
    } else {
        counts(count, fast_exp);
    }
    let rate = &*rate;
    emit_spikes(
        count,
        cand,
        events,
        |i| base + i as u32,
        |i| poisson_tail(uniforms[i], rate[i], no_spike_probability(d, rate[i])),
    );
}

/// The first two steps of [`poisson_tail`] without branches: the Poisson count of mean
/// `lambda` for the uniform `u` given p0 = e^-lambda, as 0, 1 or 2, or 3 for "three or more"
/// (finish with [`poisson_tail`]). Same arithmetic as [`poisson_tail`] (lambda / 1 and
/// lambda / 2 are exact), so the same counts.
#[inline(always)]
pub fn poisson_count_upto3(u: f32, lambda: f32, p0: f32) -> f32 {
    let p1 = p0 * lambda;
    let cdf1 = p0 + p1;
    let cdf2 = cdf1 + p1 * (lambda * 0.5);
    let one = u >= p0;
    let two = one & (cdf1 > p0) & (u >= cdf1);
    let more = two & (cdf2 > cdf1) & (u >= cdf2);
    f32::from(one as u8) + f32::from(two as u8) + f32::from(more as u8)
}

/// Appends `id(i)` to `events` `count[i]` times for every i in order, where a count of 3
/// stands for "three or more" and is replaced by `tail(i)`. The units that spike are found
/// eight at a time from a comparison mask and a table of its set lanes, without a branch
/// per unit. `cand` is scratch of `count.len() + 8` entries.
#[inline(always)]
pub(crate) fn emit_spikes(
    count: &[f32],
    cand: &mut [u32],
    events: &mut Vec<u32>,
    id: impl Fn(usize) -> u32,
    tail: impl Fn(usize) -> u8,
) {
    let mut k = 0;
    let mut lo = 0u32;
    for c in count.chunks_exact(8) {
        let mask = crate::base::simd::positive_mask8(c) as usize;
        crate::base::simd::set_lanes(&mut cand[k..k + 8], mask, lo);
        k += crate::base::simd::MASK_LANES_SET[mask] as usize;
        lo += 8;
    }
    for (i, &c) in count.iter().enumerate().skip(lo as usize) {
        cand[k] = i as u32;
        k += (c > 0.0) as usize;
    }
    // Every unit writes two slots; its count (0, 1 or 2) says how many of them stay.
    let start = events.len();
    events.resize(start + 2 * k + 2, 0);
    let mut m = start;
    for &i in &cand[..k] {
        let i = i as usize;
        let v = id(i);
        events[m] = v;
        events[m + 1] = v;
        let mut c = count[i] as usize;
        if c > 2 {
            // Three or more: the count from `tail`, and room for the spikes beyond two.
            c = tail(i) as usize;
            events.resize(events.len() + c.saturating_sub(2), 0);
            events[m..m + c].fill(v);
        }
        m += c;
    }
    events.truncate(m);
}

/// The Poisson count of mean `lambda` for a uniform `u`, by inversion of the CDF given
/// p0 = e^-lambda (0 when u < p0).
#[inline]
pub fn poisson_tail(u: f32, lambda: f32, p0: f32) -> u8 {
    let mut p = p0;
    let mut cdf = p0;
    let mut k = 0u8;
    while u >= cdf && k < u8::MAX {
        k += 1;
        p *= lambda / k as f32;
        let next = cdf + p;
        if next <= cdf {
            // The remaining tail is below f32 resolution.
            break;
        }
        cdf = next;
    }
    k
}

/// Eq. 5.2: the apical plateau potential alpha = sigma(mean apical potential over the
/// integration window).
#[inline]
pub fn plateau_potential(mean_apical: f32) -> f32 {
    sigmoid(mean_apical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::ModelConfig;

    #[test]
    fn the_step_rate_is_lambda_max_sigma_of_c() {
        // Eq. 3.4 in f64 against the step's fast_exp version, over the range potentials take.
        let d = Dynamics::new(&ModelConfig::default_model().neuron);
        for i in -400..=400 {
            let c = i as f32 * 0.05;
            let exact = d.lambda_max as f64 / (1.0 + (-(c as f64)).exp());
            let fast = fast_rate(&d, c) as f64;
            assert!(
                (fast - exact).abs() <= 1e-6 * exact.max(1e-12),
                "C = {c}: {fast} vs {exact}"
            );
        }
    }
}
