//! Watching a simulation step by step without changing it (recorders, benchmarks, plots).
//! Run-level events (epochs, examples) are [`crate::run::events::RunEvents`].

use crate::sim::state::NetState;

/// Which phase a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Forward,
    Target,
    Test,
}

/// What an observer is told after every step.
pub struct StepInfo<'a> {
    pub phase: Phase,
    /// Step within the phase.
    pub step: usize,
    /// Steps since the state was last reset.
    pub time_step: u64,
    pub state: &'a NetState,
}

/// Watches a simulation without changing it; called by `crate::sim::schedule::run_phase`.
/// `NoObserver` compiles to nothing.
pub trait Observer {
    /// After every step.
    fn on_step(&mut self, _info: &StepInfo<'_>) {}
    /// Whether `on_step` reads the apical potentials A. When no observer does, A does not
    /// drive the soma (g_A = 0) and plateau times are fixed, A is only computed in the
    /// integration windows, and elsewhere holds the value of its last window.
    fn reads_apical(&self) -> bool {
        true
    }
    /// Whether `on_step` must be called after every step. Where no observer needs it, A
    /// does not drive the soma (g_A = 0), plateau times are fixed and a wide layer's blocks
    /// are shared among threads, a phase runs layer by layer, each layer through all the
    /// phase's steps at once (one hand-over to the threads per phase instead of one per
    /// step; the same results), and the observer hears of the steps through
    /// [`Observer::on_steps_unwatched`] instead.
    fn watches_steps(&self) -> bool {
        true
    }
    /// Instead of `on_step`, when the `steps` steps of a phase ran layer by layer (see
    /// [`Observer::watches_steps`]).
    fn on_steps_unwatched(&mut self, _phase: Phase, _steps: usize) {}
    /// After the last step of a phase, once the window means are stored.
    fn on_phase_end(&mut self, _phase: Phase, _state: &NetState) {}
    /// After a burst rule drew the bursts of an example's phase (spiking BurstCCN,
    /// docs/model.md eq. 11.14): for each layer (hidden layers, then the output layer),
    /// whether each spike of the phase was a burst, in the order `on_step` saw the spikes.
    fn on_bursts(&mut self, _bursts: &[Vec<bool>]) {}
    /// Whether the phase should end now, read after every `on_step` (the Python package's
    /// Ctrl-C during `Network.simulate`). A phase ended early closes its windows over the
    /// steps it ran: what it computed is for the caller to discard.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// An observer that does nothing.
pub struct NoObserver;
impl Observer for NoObserver {
    fn reads_apical(&self) -> bool {
        false
    }
    fn watches_steps(&self) -> bool {
        false
    }
}

/// Two observers side by side (e.g. a recorder and a test's own counter).
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        self.0.on_step(info);
        self.1.on_step(info);
    }
    fn reads_apical(&self) -> bool {
        self.0.reads_apical() || self.1.reads_apical()
    }
    fn watches_steps(&self) -> bool {
        self.0.watches_steps() || self.1.watches_steps()
    }
    fn on_steps_unwatched(&mut self, phase: Phase, steps: usize) {
        self.0.on_steps_unwatched(phase, steps);
        self.1.on_steps_unwatched(phase, steps);
    }
    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        self.0.on_phase_end(phase, state);
        self.1.on_phase_end(phase, state);
    }
    fn on_bursts(&mut self, bursts: &[Vec<bool>]) {
        self.0.on_bursts(bursts);
        self.1.on_bursts(bursts);
    }
    fn stop_requested(&self) -> bool {
        self.0.stop_requested() || self.1.stop_requested()
    }
}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        (**self).on_step(info);
    }
    fn reads_apical(&self) -> bool {
        (**self).reads_apical()
    }
    fn watches_steps(&self) -> bool {
        (**self).watches_steps()
    }
    fn on_steps_unwatched(&mut self, phase: Phase, steps: usize) {
        (**self).on_steps_unwatched(phase, steps);
    }
    fn on_phase_end(&mut self, phase: Phase, state: &NetState) {
        (**self).on_phase_end(phase, state);
    }
    fn on_bursts(&mut self, bursts: &[Vec<bool>]) {
        (**self).on_bursts(bursts);
    }
    fn stop_requested(&self) -> bool {
        (**self).stop_requested()
    }
}
