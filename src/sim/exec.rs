//! How a simulation is executed, apart from what it computes: the parallel threshold of
//! neuron blocks and the instruction set of the step. Results never depend on it (blocks own
//! their random streams; every instruction-set build rounds alike).

use crate::base::simd::{self, Level};

/// Default width from which a layer's blocks are updated in parallel during training (see
/// docs/performance.md: below it the fork-join costs more than it saves).
pub(crate) const DEFAULT_PARALLEL_MIN: usize = usize::MAX;

/// The execution context of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exec {
    /// Layers at least this wide update their neuron blocks in parallel on the current
    /// rayon pool (`usize::MAX`: never).
    pub parallel_min: usize,
    /// The instruction set the step is run with (at most what the CPU has).
    pub simd: Level,
}

impl Default for Exec {
    /// Sequential blocks, the widest instruction set allowed (see [`simd::level`]).
    fn default() -> Self {
        Exec {
            parallel_min: DEFAULT_PARALLEL_MIN,
            simd: simd::level(),
        }
    }
}

impl Exec {
    /// This context for test phases: tests run examples in parallel, so blocks never are.
    pub fn sequential(self) -> Self {
        Exec {
            parallel_min: usize::MAX,
            ..self
        }
    }

    /// Whether a layer of `n` neurons updates its blocks in parallel.
    pub fn parallel(&self, n: usize) -> bool {
        n >= self.parallel_min
    }
}
