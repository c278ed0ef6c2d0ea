//! The per-step schedule of one phase (docs/model.md, sections 2-5 and 8); the rate mode of
//! section 9 has its own ([`crate::sim::rate`]).

use crate::model::config::{FeedbackSource, NeuronMode};
use crate::model::params::LayerParams;
use crate::sim::compiled::Model;
use crate::sim::exec::Exec;
use crate::sim::observer::{Observer, Phase, StepInfo};
use crate::sim::state::NetState;
use rand_distr::{Distribution, Normal};

/// Runs one phase of `len` steps on the image already set on the input.
/// `learn` keeps the presynaptic window means s_f (forward phase of training).
///
/// The observer is told of every step here; the work of a step (or of a whole phase run
/// layer by layer) is done by functions that do not depend on the observer's type, compiled
/// once each for every instruction set (`step`, `whole_phase`): a new observer type
/// adds only this short loop to a build, not another copy of the network's step.
#[allow(clippy::too_many_arguments)]
pub fn run_phase<O: Observer>(
    model: &Model,
    params: &[LayerParams],
    state: &mut NetState,
    phase: Phase,
    len: usize,
    window: usize,
    exec: &Exec,
    obs: &mut O,
) {
    if model.cfg.neuron.mode == NeuronMode::Rate {
        // Section 9: a schedule of its own, chosen once per phase.
        crate::sim::rate::run_phase(model, params, state, phase, len, window, obs);
        return;
    }
    let d = &model.dynamics;
    // A drives the soma only when g_A > 0, and the stochastic plateau times keep its
    // history; otherwise it is read only by the window means (and maybe the observer).
    let apical_always =
        d.g_a != 0.0 || model.cfg.phases.stochastic_plateau_times || obs.reads_apical();
    let plan = PhasePlan {
        model,
        params,
        exec,
        phase,
        len,
        window,
        apical_always,
    };
    open_presynaptic_windows(&plan, state); // eq. 5.6
    if layer_by_layer(&plan, state, obs) {
        whole_phase(&plan, state); // eq. 2.0-5.6, layer by layer
        obs.on_steps_unwatched(phase, len);
    } else {
        for t in 0..len {
            step(&plan, state, t); // eq. 2.0-5.6
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
    }
    close_windows(&plan, state); // eq. 5.2-5.5
    obs.on_phase_end(phase, state);
}

/// Defines `$name(plan, state $(, arg)*)`, which runs `$body` compiled for the widest
/// instruction set the [`Exec`] allows: on x86-64 CPUs with AVX2 or AVX-512 the same code
/// is run compiled for them (wider vectors, no FMA: every operation rounds as in the SSE2
/// build, so the results are bit-identical; see [`crate::base::simd`]).
macro_rules! compiled_for_each_isa {
    ($(#[$doc:meta])* fn $name:ident => $body:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        fn $name(plan: &PhasePlan<'_>, state: &mut NetState $(, $arg: $ty)*) {
            /// `$body` compiled with AVX2.
            ///
            /// # Safety
            /// Only call on a CPU that has AVX2.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(plan: &PhasePlan<'_>, state: &mut NetState $(, $arg: $ty)*) {
                $body(plan, state $(, $arg)*)
            }
            /// `$body` compiled with AVX-512 F/VL/BW/DQ.
            ///
            /// # Safety
            /// Only call on a CPU that has those features.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,avx512f,avx512vl,avx512bw,avx512dq")]
            unsafe fn avx512(plan: &PhasePlan<'_>, state: &mut NetState $(, $arg: $ty)*) {
                $body(plan, state $(, $arg)*)
            }
            #[cfg(target_arch = "x86_64")]
            match plan.exec.simd {
                // SAFETY: the CPU has AVX-512 F/VL/BW/DQ, checked when the Exec was made
                // (simd::level never exceeds simd::detect).
                crate::base::simd::Level::Avx512 => return unsafe { avx512(plan, state $(, $arg)*) },
                // SAFETY: the CPU has AVX2, checked when the Exec was made.
                crate::base::simd::Level::Avx2 => return unsafe { avx2(plan, state $(, $arg)*) },
                crate::base::simd::Level::Baseline => {}
            }
            $body(plan, state $(, $arg)*)
        }
    };
}

compiled_for_each_isa! {
    /// One step of every layer (eq. 2.0-5.6): see [`step_body`].
    fn step => step_body(t: usize)
}

compiled_for_each_isa! {
    /// A whole phase layer by layer: see [`run_layers_through_phase`].
    fn whole_phase => run_layers_through_phase()
}

/// One step: draws the input, sweeps the layers bottom-up, delivers feedback for the next
/// step.
#[inline(always)]
fn step_body(plan: &PhasePlan<'_>, state: &mut NetState, t: usize) {
    draw_input(state); // eq. 2.0
    feedforward_sweep(plan, state, t); // eq. 3.2 (of step t-1), 2.3-2.5, 3.1-3.4, 4.1-4.3, 5.6
    deliver_feedback(plan, state, t); // eq. 3.2
    state.time_step += 1;
}

/// What every step of one phase needs to know, fixed for the phase.
struct PhasePlan<'a> {
    model: &'a Model,
    params: &'a [LayerParams],
    exec: &'a Exec,
    phase: Phase,
    len: usize,
    /// Integration window: the last `window` steps of the phase.
    window: usize,
    /// A must be brought up to date every step (it drives the soma, keeps a plateau
    /// history, or an observer reads it), not only in the window.
    apical_always: bool,
}

impl PhasePlan<'_> {
    /// Steps after step `t` until the phase ends.
    #[inline(always)]
    fn to_end(&self, t: usize) -> usize {
        self.len - 1 - t
    }
}

/// Whether the phase runs layer by layer, each layer through all its steps before the
/// next ([`run_layers_through_phase`]), instead of step by step. It gives the same results
/// wherever no layer's step needs a layer above it at that step: A does not drive the soma
/// (g_A = 0) and is only read in the integration window (fixed plateau times, no observer
/// reading it), the input is event-driven, and no observer watches the steps. It pays where
/// a wide layer's blocks are shared among threads: one hand-over to the team per phase
/// instead of one per step; elsewhere the per-step schedule runs.
#[inline(always)]
fn layer_by_layer<O: Observer>(plan: &PhasePlan<'_>, state: &NetState, obs: &O) -> bool {
    !plan.apical_always
        && plan.model.dynamics.g_a == 0.0
        && !obs.watches_steps()
        && state.layers.iter().all(|l| l.dense.is_none())
        && plan
            .params
            .iter()
            .any(|p| plan.exec.parallel(p.n).threads > 1)
}

/// The phase layer by layer (see [`layer_by_layer`]): the input's spikes of every step
/// (eq. 2.0); each layer bottom-up through all the steps on the spikes of the layer below
/// (eq. 2.3-2.5, 3.1, 3.3-3.4, 4.1-4.3); then each hidden layer's apical dendrite on the
/// spikes of its feedback source (eq. 3.2). Every array sees the same operations in the
/// same order as in the per-step schedule, and the presynaptic window means take each
/// step's spikes as there (eq. 5.6).
#[inline(always)]
fn run_layers_through_phase(plan: &PhasePlan<'_>, state: &mut NetState) {
    let m_layers = plan.params.len();
    let kernel = &plan.model.kernel;
    let learn = plan.phase == Phase::Forward;
    let NetState {
        input,
        input_rng,
        input_seq,
        layers,
        presyn,
        presyn_fb,
        teach,
        time_step,
        ..
    } = state;
    input_seq.clear();
    for _ in 0..plan.len {
        input.step(input_rng); // eq. 2.0
        input_seq.push_step(&input.events);
    }
    for m in 0..m_layers {
        let (below, cur) = layers.split_at_mut(m);
        let in_seq = if m == 0 {
            &*input_seq
        } else {
            &below[m - 1].seq
        };
        if plan.phase != Phase::Test {
            for t in 0..plan.len {
                let q = if learn { plan.to_end(t) } else { usize::MAX };
                presyn[m].add_step(kernel, in_seq.step(t), q); // eq. 5.6
            }
        }
        let teach = (plan.phase == Phase::Target && m + 1 == m_layers).then_some(&teach[..]);
        cur[0].run_feedforward(
            &plan.params[m],
            kernel,
            &plan.model.dynamics,
            in_seq,
            teach,
            plan.window,
            plan.exec.parallel(plan.params[m].n),
        );
    }
    let src_of = feedback_source(plan);
    for m in 0..m_layers - 1 {
        let (lower, upper) = layers.split_at_mut(m + 1);
        let fb = &upper[src_of(m) - m - 1].seq;
        lower[m].run_apical(
            &plan.params[m],
            kernel,
            &plan.model.dynamics,
            fb,
            plan.window,
            plan.exec.parallel(plan.params[m].n),
        );
        if let Some(pf) = presyn_fb.get_mut(m) {
            for t in 0..plan.len {
                // As in `deliver_feedback`: shifted by one step.
                let to_end = plan.to_end(t);
                let q = if learn && to_end >= 1 {
                    to_end - 1
                } else {
                    usize::MAX
                };
                pf.add_step(kernel, fb.step(t), q);
            }
        }
    }
    *time_step += plan.len as u64;
}

/// Eq. 5.6: a forward phase of training starts new presynaptic window means s_f.
#[inline(always)]
fn open_presynaptic_windows(plan: &PhasePlan<'_>, state: &mut NetState) {
    if plan.phase == Phase::Forward {
        for p in state.presyn.iter_mut().chain(state.presyn_fb.iter_mut()) {
            p.start_phase();
        }
    }
}

/// Eq. 2.0: this step's Poisson spikes of the input.
#[inline(always)]
fn draw_input(state: &mut NetState) {
    state.input.step(&mut state.input_rng);
}

/// Layers bottom-up: each takes the spikes its input emitted this step into its basal
/// dendrites, updates its compartments and emits spikes (layer step); outside tests the
/// presynaptic window means of the weight updates take the same spikes. A hidden layer's
/// blocks first take the feedback spikes of the step before into their apical input
/// histories (eq. 3.2; see [`deliver_feedback`]): the source layer, above, has not stepped
/// yet, so its events are still those of step t-1.
#[inline(always)]
fn feedforward_sweep(plan: &PhasePlan<'_>, state: &mut NetState, t: usize) {
    let m_layers = plan.params.len();
    let kernel = &plan.model.kernel;
    let to_end = plan.to_end(t);
    let in_window = to_end < plan.window;
    let learn = plan.phase == Phase::Forward;
    let src_of = feedback_source(plan);
    let NetState {
        input,
        layers,
        presyn,
        teach,
        ..
    } = state;
    for m in 0..m_layers {
        let (below, cur) = layers.split_at_mut(m);
        let (cur, above) = cur.split_first_mut().expect("layer m exists");
        let in_ev: &[u32] = if m == 0 {
            &input.events
        } else {
            &below[m - 1].events
        };
        let feedback = (t > 0 && m + 1 < m_layers).then(|| &above[src_of(m) - m - 1].events[..]);
        let teach = (plan.phase == Phase::Target && m + 1 == m_layers).then_some(&teach[..]);
        cur.step(
            &plan.params[m],
            kernel,
            &plan.model.dynamics,
            in_ev,
            feedback,
            teach,
            in_window,
            in_window || plan.apical_always,
            plan.exec.parallel(plan.params[m].n),
        );
        if plan.phase != Phase::Test {
            presyn[m].add_step(kernel, in_ev, if learn { to_end } else { usize::MAX });
        }
    }
}

/// The layer whose spikes are hidden layer m's feedback: the output layer (broadcast), or
/// the layer above.
#[inline(always)]
fn feedback_source(plan: &PhasePlan<'_>) -> impl Fn(usize) -> usize {
    let m_layers = plan.params.len();
    let broadcast = plan.model.cfg.network.feedback == FeedbackSource::Broadcast;
    move |m| if broadcast { m_layers - 1 } else { m + 1 }
}

/// Eq. 3.2: the spikes of the feedback source (the output layer, or the layer above)
/// enter each hidden layer's apical input history; they reach A at the next step. The
/// blocks of the hidden layer take them at the start of that step ([`feedforward_sweep`],
/// shared among the threads like the rest of the block step); a phase's last step has no
/// next one and delivers them here. Outside tests the feedback's presynaptic window means
/// take them at once.
#[inline(always)]
fn deliver_feedback(plan: &PhasePlan<'_>, state: &mut NetState, t: usize) {
    let m_layers = plan.params.len();
    let kernel = &plan.model.kernel;
    let src_of = feedback_source(plan);
    let to_end = plan.to_end(t);
    let learn = plan.phase == Phase::Forward;
    let NetState {
        layers, presyn_fb, ..
    } = state;
    for m in 0..m_layers - 1 {
        let (lower, upper) = layers.split_at_mut(m + 1);
        let fb_ev = &upper[src_of(m) - m - 1].events;
        if to_end == 0 {
            lower[m].push_feedback(&plan.params[m], kernel, fb_ev);
        }
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
}

/// Eq. 5.2-5.5: the window means of the phase (forward or target), with stochastic
/// plateau times drawn first where the model has them.
fn close_windows(plan: &PhasePlan<'_>, state: &mut NetState) {
    let m_layers = plan.params.len();
    let forward = plan.phase != Phase::Target;
    let stochastic = plan.model.cfg.phases.stochastic_plateau_times && plan.phase != Phase::Test;
    if stochastic {
        draw_plateau_offsets(plan.model, state);
    }
    for (m, l) in state.layers.iter_mut().enumerate() {
        let offsets = (stochastic && m + 1 < m_layers).then(|| &state.plateau_offsets[m][..]);
        l.end_phase(forward, plan.window, offsets);
    }
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
