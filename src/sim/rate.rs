//! The per-step schedule of the rate mode (spec section 9; docs/model.md, section 9): the
//! phases, windows, window means and learning of the spiking schedule, with rates in place
//! of spikes. [`crate::sim::schedule::run_phase`] hands a whole phase to [`run_phase`] when
//! the model's `neuron.mode` is `"rate"`; the spiking step is not touched.
//!
//! One step, layers bottom-up, each block of neurons:
//!
//! ```text
//! basal    B = W r_below + b            eq. 9.2 (r_below: input rates lambda_max x, eq. 9.1,
//!                                                or the layer below's rates of this step)
//! apical   A = Y r_fb + c               eq. 9.3 (r_fb: the feedback source's rates of the
//!                                                previous step; hidden layers only)
//! soma     C = k_B B  /  k_D B  /  target steady state      eq. 9.4-9.5
//! rate     r = lambda_max sigma(C)      eq. 9.6
//! window   sums of C, r, A (last `window` steps); s_f, s_A,f   eq. 5.2-5.4, 9.7
//! ```
//!
//! Nothing is random: the input is its rates, and no neuron draws spikes.

use crate::model::config::FeedbackSource;
use crate::model::params::LayerParams;
use crate::model::rate;
use crate::sim::compiled::Model;
use crate::sim::layer::LayerState;
use crate::sim::observer::{Observer, Phase, StepInfo};
use crate::sim::state::NetState;

/// Runs one phase of `len` steps of the rate mode on the image already set on the input;
/// the window means are those of the last `window` steps, as in the spiking schedule.
pub fn run_phase<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    len: usize,
    window: usize,
    obs: &mut O,
) {
    let learn = phase == Phase::Forward;
    if learn {
        for p in state.presyn.iter_mut().chain(state.presyn_fb.iter_mut()) {
            p.start_phase();
        }
    }
    let inv_window = 1.0 / window as f32;
    for t in 0..len {
        let in_window = len - 1 - t < window;
        sweep(model, params, state, phase, in_window, inv_window);
        state.time_step += 1;
        obs.on_step(&StepInfo {
            phase,
            step: t,
            time_step: state.time_step,
            state,
        });
        if obs.stop_requested() {
            break;
        }
    }
    let forward = phase != Phase::Target;
    for l in &mut state.layers {
        l.end_phase(forward, window, None);
    }
    obs.on_phase_end(phase, state);
}

/// (unit, rate) of every neuron of a layer, in order: the rates of its latest step.
fn layer_rates(l: &LayerState) -> impl Iterator<Item = (usize, f32)> + '_ {
    l.blocks
        .iter()
        .flat_map(|b| b.rate.iter().enumerate().map(move |(i, &r)| (b.lo + i, r)))
}

/// One step of every layer, bottom-up (eqs. 9.1-9.7).
fn sweep(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    in_window: bool,
    inv_window: f32,
) {
    let d = &model.dynamics;
    let m_layers = params.len();
    let broadcast = model.cfg.network.feedback == FeedbackSource::Broadcast;
    let learn_window = phase == Phase::Forward && in_window;
    // The burst rules' apical potentials are their own (docs/model.md, eqs. 11.4 and 12.3,
    // computed when they learn); eq. 9.3's A = Y r_fb is not read by them and not computed.
    let apical_input = !model.rule.is_burst();
    let NetState {
        input,
        layers,
        presyn,
        presyn_fb,
        teach,
        ..
    } = state;
    for m in 0..m_layers {
        let p = &params[m];
        let hidden = m + 1 < m_layers;
        let (below, rest) = layers.split_at_mut(m);
        let (cur, above) = rest.split_first_mut().expect("layer m exists");
        // The feedback source has not stepped yet: its rates are those of the previous step.
        let fb = hidden.then(|| &above[if broadcast { m_layers - 2 - m } else { 0 }]);
        let teach = (phase == Phase::Target && !hidden).then_some(&teach[..]);
        for b in &mut cur.blocks {
            let (lo, hi) = (b.lo, b.hi);
            // Eqs. 9.1-9.2: B = W r_below + b.
            b.basal.copy_from_slice(&p.b[lo..hi]);
            if m == 0 {
                rate::add_weighted_rows(&mut b.basal, &p.w, p.n, lo, input.active_rates());
            } else {
                rate::add_weighted_rows(&mut b.basal, &p.w, p.n, lo, layer_rates(&below[m - 1]));
            }
            match fb {
                Some(src) => {
                    // Eq. 9.3: A = Y r_fb + c; eq. 9.4: C = k_B B.
                    if apical_input {
                        b.apical.copy_from_slice(&p.c[lo..hi]);
                        rate::add_weighted_rows(&mut b.apical, &p.y, p.n, lo, layer_rates(src));
                    }
                    rate::hidden_soma(d, &mut b.soma, &b.basal);
                }
                // Eq. 9.5.
                None => rate::output_soma(d, &mut b.soma, &b.basal, teach.map(|t| &t[lo..hi])),
            }
            rate::rates(d, &b.soma, &mut b.rate); // eq. 9.6
            if in_window {
                b.add_to_window(hidden); // eq. 5.2-5.4
            }
        }
        // Eq. 9.7: s_f (and s_A,f of learned feedback), the window means of the presynaptic
        // rates this step used.
        if learn_window {
            let mean = &mut presyn[m].mean;
            if m == 0 {
                rate::add_to_window_mean(mean, input.active_rates(), inv_window);
            } else {
                rate::add_to_window_mean(mean, layer_rates(&below[m - 1]), inv_window);
            }
            if let (Some(pf), Some(src)) = (presyn_fb.get_mut(m), fb) {
                rate::add_to_window_mean(&mut pf.mean, layer_rates(src), inv_window);
            }
        }
        cur.events.clear();
        cur.rate_sum += cur
            .blocks
            .iter()
            .flat_map(|b| b.rate.iter())
            .map(|&r| r as f64)
            .sum::<f64>();
    }
}
