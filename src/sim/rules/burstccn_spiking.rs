//! BurstCCN on apical's spiking neurons (docs/model.md, section 11, "Spiking mode", eqs.
//! 11.13-11.16): one forward phase with the teacher on, in which every somatic spike
//! becomes a burst with the probability its apical compartment sets.
//!
//! Bursts and events do not act on the soma (g_A = 0), so the phase runs on the spiking
//! schedule unchanged and its spikes are logged per step ([`SpikeLog`]); the bursts are then
//! drawn top down, spike by spike: the output layer's from the teacher (eq. 11.2), a hidden
//! layer's from its apical potential, which integrates the bursts of the layer above through
//! Y and its events through Q (eq. 11.13). Each neuron counts its events and bursts in the
//! integration window; the burst count minus its expected number p_b times the events is
//! its error (eq. 11.15), and the updates are those of the rate network (eqs. 11.7,
//! 11.11-11.12) with the presynaptic window means of eq. 5.6.

use crate::base::rng::Rng;
use crate::model::params::{LayerParams, RuleParams};
use crate::sim::compiled::Model;
use crate::sim::events::EventSeq;
use crate::sim::exec::Exec;
use crate::sim::observer::{Observer, StepInfo};
use crate::sim::rules::burstccn::{
    apply_updates, burst_error_counts, event_rates, hidden_burst_probability,
    output_burst_probability, settings,
};
use crate::sim::rules::forward_phase;
use crate::sim::state::NetState;
use rand::Rng as _;

/// One training example of a spiking network: one phase of `l_f` steps with the teacher set
/// (it does not act on the somata: it enters eq. 11.2), its spikes logged ([`SpikeLog`]);
/// then the bursts and errors ([`prepare`]) and the updates of the rate network's rule
/// ([`apply_updates`]). Returns the phase's prediction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_example<O: Observer>(
    model: &Model,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
    state: &mut NetState,
    image: &[u8],
    label: u8,
    l_f: usize,
    exec: &Exec,
    obs: &mut O,
) -> u8 {
    state.burst.fit(&model.topology.sizes);
    let mut seqs = std::mem::take(&mut state.burst.log);
    let predicted = {
        let mut both = (SpikeLog::new(&mut seqs, params.len()), &mut *obs);
        forward_phase(model, params, state, image, label, l_f, exec, &mut both)
    };
    state.burst.log = seqs;
    prepare(model, params, rule, state);
    obs.on_bursts(&state.burst.flags);
    apply_updates(model, params, rule, state, exec);
    predicted
}

/// Logs the spikes of every layer, step by step, during one phase (one [`EventSeq`] per
/// layer). When the phase ran layer by layer (no `on_step`), the layers' own per-phase logs
/// are copied at its end.
pub(crate) struct SpikeLog<'a> {
    pub seqs: &'a mut Vec<EventSeq>,
    watched: bool,
}

impl<'a> SpikeLog<'a> {
    /// An empty log of `layers` layers over `seqs` (kept between examples: no allocation
    /// once grown).
    pub(crate) fn new(seqs: &'a mut Vec<EventSeq>, layers: usize) -> Self {
        seqs.resize_with(layers, EventSeq::default);
        for s in seqs.iter_mut() {
            s.clear();
        }
        SpikeLog {
            seqs,
            watched: false,
        }
    }
}

impl Observer for SpikeLog<'_> {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        self.watched = true;
        for (seq, l) in self.seqs.iter_mut().zip(&info.state.layers) {
            seq.push_step(&l.events);
        }
    }
    fn reads_apical(&self) -> bool {
        false
    }
    fn watches_steps(&self) -> bool {
        false
    }
    fn on_phase_end(&mut self, _phase: crate::sim::observer::Phase, state: &NetState) {
        if !self.watched {
            for (seq, l) in self.seqs.iter_mut().zip(&state.layers) {
                seq.clone_from(&l.seq);
            }
        }
    }
}

/// A uniform draw in [0, 1) with 24 random bits (exactly representable in f32).
#[inline]
fn uniform(rng: &mut Rng) -> f32 {
    (rng.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// Eqs. 11.13-11.15 from the phase's logged spikes (`st.burst.log`): the bursts of every
/// layer, top down, drawn from `rng`; each neuron's events and bursts in the last `window`
/// steps; the hidden layers' window-mean apical potentials; and the errors (into
/// `st.errors`). The event rates e (eq. 11.1) must be set first ([`event_rates`]).
pub(crate) fn burst_errors(
    model: &Model,
    params: &[LayerParams],
    rule: &RuleParams,
    st: &mut NetState,
) {
    let NetState {
        burst: sc,
        errors,
        teach,
        plateau_rng: rng,
        ..
    } = st;
    let b = settings(model);
    let (p_b, beta) = (b.p_baseline as f32, b.beta as f32);
    let lambda = model.dynamics.lambda_max;
    let top = params.len() - 1;
    let steps = sc.log[top].steps();
    let window = model.cfg.phases.integration_time.min(steps).max(1);
    let first = steps - window.min(steps);
    // Eq. 11.13: a trace x <- d x + (1 - d) n / lambda has mean e for Poisson counts n of
    // mean lambda e per step.
    let decay = (-model.cfg.neuron.dt / b.trace_tau).exp() as f32;
    let gain = (1.0 - decay) / lambda;
    // Output layer: eq. 11.2 with the teacher, constant over the phase.
    for ((p, &e), &y) in sc.p[top].iter_mut().zip(&sc.e[top]).zip(teach.iter()) {
        *p = output_burst_probability(p_b, e, y).clamp(0.0, 1.0);
    }
    for m in (0..=top).rev() {
        let (lower, upper) = sc.flags.split_at_mut(m + 1);
        let flags = &mut lower[m];
        flags.clear();
        sc.events[m].fill(0);
        sc.bursts[m].fill(0);
        let hidden = m < top;
        if hidden {
            sc.a_now[m].fill(0.0);
            sc.apical[m].fill(0.0);
        }
        let n = params[m].n;
        for t in 0..steps {
            if hidden {
                // Eq. 11.13: a = Y^T b_hat - Q^T e_hat, its traces decaying each step and
                // stepping with the layer above's spikes of the step before.
                let a = &mut sc.a_now[m];
                for x in a.iter_mut() {
                    *x *= decay;
                }
                if t > 0 {
                    let above = &sc.log[m + 1];
                    let lo = above.offset(t - 1);
                    for (&k, &burst) in above.step(t - 1).iter().zip(&upper[0][lo..]) {
                        let k = k as usize;
                        let q = &rule.q[m][k * n..(k + 1) * n];
                        if burst {
                            let y = &params[m].y[k * n..(k + 1) * n];
                            for ((x, &yi), &qi) in a.iter_mut().zip(y).zip(q) {
                                *x += gain * (yi - qi);
                            }
                        } else {
                            for (x, &qi) in a.iter_mut().zip(q) {
                                *x -= gain * qi;
                            }
                        }
                    }
                }
            }
            let in_window = t >= first;
            for &i in sc.log[m].step(t) {
                let i = i as usize;
                // Eq. 11.14: the spike is a burst with probability p (eq. 11.2 or 11.5).
                let p = if hidden {
                    hidden_burst_probability(beta, sc.a_now[m][i], sc.e[m][i])
                } else {
                    sc.p[top][i]
                };
                let burst = uniform(rng) < p;
                flags.push(burst);
                if in_window {
                    sc.events[m][i] += 1;
                    sc.bursts[m][i] += burst as u32;
                }
            }
            if hidden && in_window {
                for (s, &x) in sc.apical[m].iter_mut().zip(&sc.a_now[m]) {
                    *s += x;
                }
            }
        }
        if hidden {
            let inv = 1.0 / window as f32;
            for s in sc.apical[m].iter_mut() {
                *s *= inv;
            }
        }
        // Eq. 11.15: delta = -(bursts - p_b events) / (lambda window), whose mean is eq.
        // 11.6's -(p - p_b) e.
        let norm = 1.0 / (lambda * window as f32);
        for ((err, &ev), &bu) in errors[m].iter_mut().zip(&sc.events[m]).zip(&sc.bursts[m]) {
            *err = burst_error_counts(bu, ev, p_b, norm);
        }
        sc.epoch_events[m] += sc.events[m].iter().map(|&x| x as u64).sum::<u64>();
        sc.epoch_bursts[m] += sc.bursts[m].iter().map(|&x| x as u64).sum::<u64>();
    }
}

/// The event rates of eq. 11.1 and the bursts, apical potentials and errors of eqs.
/// 11.13-11.15, ready for the updates ([`crate::sim::rules::burstccn::apply_updates`]).
/// The bursts are drawn from the state's stream of apical random events (plateau times
/// in the segregated-dendrite rule, which spiking BurstCCN refuses).
pub(crate) fn prepare(model: &Model, params: &[LayerParams], rule: &RuleParams, st: &mut NetState) {
    event_rates(model, st);
    burst_errors(model, params, rule, st);
}

#[cfg(test)]
mod tests {
    use crate::model::config::ModelConfig;
    use crate::sim::network::Network;
    use crate::sim::rules::burstccn::lambda_eff;

    /// A 3-2-10 spiking BurstCCN network whose hidden burst probabilities are 0 or 1 (beta
    /// large) and whose Q is 0, with a window of the last 3 steps.
    fn toy() -> Network {
        let text = r#"
            name = "toy-spiking-burstccn"
            [network]
            n_in = 3
            hidden = [2]
            n_out = 10
            [phases]
            l_f = 4
            use_rand_phase_lengths = false
            integration_time = 3
            [learning]
            rule = "burstccn"
            eta = [0.1, 0.1]
            [burst]
            beta = 1000.0
            q_mode = "random"
            q_scale = 0.0
            eta_q = 0.0
            trace_tau = 10.0
        "#;
        let cfg = ModelConfig::from_toml_str(text, "toy").expect("valid toy model");
        Network::new(cfg, 1)
    }

    /// Eqs. 11.13-11.15 on a hand-made spike log: the output's teacher unit (e = 0, so p =
    /// 2 p_b = 1) bursts at every spike; its bursts drive the hidden apical traces, whose sign
    /// (Y[3, :] = [1, -1]) makes hidden neuron 0 burst at every spike and neuron 1 never.
    #[test]
    fn bursts_traces_and_errors_match_a_hand_computed_phase() {
        let mut net = toy();
        let (model, params, rule, st) = (
            &net.model,
            &mut net.params,
            &net.rule_params,
            &mut net.state,
        );
        params[0].y.fill(0.0);
        params[0].y[3 * 2] = 1.0;
        params[0].y[3 * 2 + 1] = -1.0;
        crate::sim::rules::set_teacher(&mut st.teach, 3, 1);
        let sc = &mut st.burst;
        sc.fit(&model.topology.sizes);
        sc.e[0].fill(0.5);
        sc.e[1].fill(0.0);
        // Output spikes: unit 3 at step 0 and twice at step 2; hidden: both at step 1,
        // neuron 1 at step 2, neuron 0 at step 3.
        for s in sc.log.iter_mut() {
            s.clear();
        }
        for (hid, out) in [
            (&[][..], &[3u32][..]),
            (&[0, 1], &[]),
            (&[1], &[3, 3]),
            (&[0], &[]),
        ] {
            sc.log[0].push_step(hid);
            sc.log[1].push_step(out);
        }
        super::burst_errors(model, params, rule, st);
        let sc = &st.burst;
        assert_eq!(sc.flags[1], vec![true, true, true]);
        assert_eq!(sc.flags[0], vec![true, false, false, true]);
        // Window: steps 1-3.
        assert_eq!((sc.events[1][3], sc.bursts[1][3]), (2, 2));
        assert_eq!(
            (sc.events[0].clone(), sc.bursts[0].clone()),
            (vec![2, 2], vec![2, 0])
        );
        let norm = 1.0 / (0.2 * 3.0);
        let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-5 * b.abs().max(1.0);
        assert!(close(st.errors[1][3], -(2.0 - 0.5 * 2.0) * norm));
        assert!(st.errors[1]
            .iter()
            .enumerate()
            .all(|(i, &e)| i == 3 || e == 0.0));
        assert!(close(st.errors[0][0], -(2.0 - 1.0) * norm));
        assert!(close(st.errors[0][1], (1.0) * norm));
        // a(1) = g, a(2) = d g, a(3) = d^2 g + 2 g (times [1, -1]); the window mean of the three.
        let d = (-1.0f64 / 10.0).exp();
        let g = (1.0 - d) / 0.2;
        let mean = g * (1.0 + d + d * d + 2.0) / 3.0;
        assert!(
            close(sc.apical[0][0], mean),
            "{} vs {mean}",
            sc.apical[0][0]
        );
        assert!(close(sc.apical[0][1], -mean));
        assert_eq!(sc.epoch_events, vec![4, 2]);
        assert_eq!(sc.epoch_bursts, vec![2, 2]);
    }

    /// Eq. 11.16: lambda = lambda_max times the truncated kernel's sum, computed here from
    /// kappa(t) = (e^{-t/tau_L} - e^{-t/tau_s}) / (tau_L - tau_s) over lags 1..=10.
    #[test]
    fn the_spiking_event_rate_scale_is_the_psp_kernel_sum() {
        let net = toy();
        let sum: f64 = (1..=10)
            .map(|d| {
                let t = d as f64;
                ((-t / 10.0).exp() - (-t / 3.0).exp()) / 7.0
            })
            .sum();
        let got = lambda_eff(&net.model) as f64;
        assert!((got - 0.2 * sum).abs() < 1e-6, "{got} vs {}", 0.2 * sum);
        assert!((sum - 0.511).abs() < 1e-3, "the docs' 0.511: {sum}");
    }
}
