//! The per-step schedule of one phase (docs/model.md, sections 2-5 and 8).

use crate::model::config::FeedbackSource;
use crate::model::params::LayerParams;
use crate::sim::network::Model;
use crate::sim::observer::{Observer, Phase, StepInfo};
use crate::sim::state::NetState;
use rand_distr::{Distribution, Normal};

/// Runs one phase of `len` steps on the image already set on the input.
/// `learn` keeps the presynaptic window means s_f (forward phase of training).
///
/// On x86-64 CPUs with AVX2 or AVX-512 the same code is run compiled for them (wider
/// vectors, no FMA: every operation rounds as in the SSE2 build, so the results are
/// bit-identical; see [`crate::base::simd`]).
#[allow(clippy::too_many_arguments)]
pub fn run_phase<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    len: usize,
    window: usize,
    parallel_min: usize,
    obs: &mut O,
) {
    #[cfg(target_arch = "x86_64")]
    match crate::base::simd::level() {
        crate::base::simd::Level::Avx512 => {
            // SAFETY: the CPU has AVX-512 F/VL/BW/DQ, checked at run time by simd::level.
            unsafe {
                run_phase_avx512(model, params, state, phase, len, window, parallel_min, obs)
            };
            return;
        }
        crate::base::simd::Level::Avx2 => {
            // SAFETY: the CPU has AVX2, checked at run time by simd::level.
            unsafe { run_phase_avx2(model, params, state, phase, len, window, parallel_min, obs) };
            return;
        }
        crate::base::simd::Level::Baseline => {}
    }
    run_phase_impl(model, params, state, phase, len, window, parallel_min, obs);
}

/// [`run_phase`] compiled for a wider instruction set (`$features`), still without fused
/// multiply-add.
macro_rules! run_phase_compiled_for {
    ($name:ident, $features:literal) => {
        /// [`run_phase`] compiled with the target features in its attribute.
        ///
        /// # Safety
        /// Only call on a CPU that has those features.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name<O: Observer>(
            model: &Model,
            params: &[LayerParams],
            state: &mut NetState,
            phase: Phase,
            len: usize,
            window: usize,
            parallel_min: usize,
            obs: &mut O,
        ) {
            run_phase_impl(model, params, state, phase, len, window, parallel_min, obs);
        }
    };
}
run_phase_compiled_for!(run_phase_avx2, "avx2");
run_phase_compiled_for!(run_phase_avx512, "avx2,avx512f,avx512vl,avx512bw,avx512dq");

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_phase_impl<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    len: usize,
    window: usize,
    parallel_min: usize,
    obs: &mut O,
) {
    let m_layers = params.len();
    let kernel = &model.kernel;
    let d = &model.dynamics;
    let broadcast = model.cfg.network.feedback == FeedbackSource::Broadcast;
    let learn = phase == Phase::Forward;
    let track_presyn = phase != Phase::Test;
    // A drives the soma only when g_A > 0, and the stochastic plateau times keep its
    // history; otherwise it is read only by the window means (and maybe the observer).
    let apical_always =
        d.g_a != 0.0 || model.cfg.phases.stochastic_plateau_times || obs.reads_apical();
    if learn {
        for p in state.presyn.iter_mut().chain(state.presyn_fb.iter_mut()) {
            p.start_phase();
        }
    }
    for t in 0..len {
        let to_end = len - 1 - t;
        let in_window = to_end < window;
        let NetState {
            input,
            input_rng,
            layers,
            presyn,
            presyn_fb,
            teach,
            ..
        } = state;
        input.step(input_rng);
        for m in 0..m_layers {
            let (below, cur) = layers.split_at_mut(m);
            let in_ev: &[u32] = if m == 0 {
                &input.events
            } else {
                &below[m - 1].events
            };
            let teach = (phase == Phase::Target && m + 1 == m_layers).then_some(&teach[..]);
            let parallel = params[m].n >= parallel_min;
            let need_apical = in_window || apical_always;
            cur[0].step(
                &params[m],
                kernel,
                d,
                in_ev,
                teach,
                in_window,
                need_apical,
                parallel,
            );
            if track_presyn {
                presyn[m].add_step(kernel, in_ev, if learn { to_end } else { usize::MAX });
            }
        }
        // Feedback reaches the apical compartments at the next step (section 2).
        for m in 0..m_layers - 1 {
            let (lower, upper) = layers.split_at_mut(m + 1);
            let src = if broadcast { m_layers - 1 } else { m + 1 };
            let fb_ev = &upper[src - m - 1].events;
            lower[m].push_feedback(&params[m], kernel, fb_ev);
            if let Some(pf) = presyn_fb.get_mut(m) {
                // A(t) sees the feedback PSP of step t-1: shift the window by one step.
                let q = if learn && to_end >= 1 {
                    to_end - 1
                } else {
                    usize::MAX
                };
                pf.add_step(kernel, fb_ev, q);
            }
        }
        state.time_step += 1;
        obs.on_step(&StepInfo {
            phase,
            step: t,
            time_step: state.time_step,
            state,
        });
    }
    let forward = phase != Phase::Target;
    let stochastic = model.cfg.phases.stochastic_plateau_times && phase != Phase::Test;
    if stochastic {
        draw_plateau_offsets(model, state);
    }
    for (m, l) in state.layers.iter_mut().enumerate() {
        let offsets = (stochastic && m + 1 < m_layers).then(|| &state.plateau_offsets[m][..]);
        l.end_phase(forward, window, offsets);
    }
    obs.on_phase_end(phase, state);
}

/// Eq. 5.5: per hidden neuron, offset = min(|trunc(N(0, sd))|, max) steps before phase end.
fn draw_plateau_offsets(model: &Model, state: &mut NetState) {
    let p = &model.cfg.phases;
    let normal = Normal::new(0.0, p.plateau_time_sd).ok();
    for offs in &mut state.plateau_offsets {
        for o in offs.iter_mut() {
            let x = normal
                .as_ref()
                .map_or(0.0, |n| n.sample(&mut state.plateau_rng));
            *o = (x.trunc().abs() as usize).min(p.plateau_time_max_offset) as u8;
        }
    }
}
