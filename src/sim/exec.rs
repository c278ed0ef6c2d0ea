//! How a simulation is executed, apart from what it computes: how many threads share the
//! neuron blocks of a wide layer, from which width a layer is shared, and the instruction
//! set of the step. Results never depend on it (blocks own their random streams; every
//! instruction-set build rounds alike).

use crate::base::simd::{self, Level};
use crate::model::topology::Topology;

/// Default width from which a layer's blocks are shared among threads, where nothing
/// chose one ([`Exec::default`]: never).
pub(crate) const DEFAULT_PARALLEL_MIN: usize = usize::MAX;

/// Narrowest layer whose blocks [`Exec::for_threads`] shares among threads. A training
/// step of a block of 512 neurons costs about 2 microseconds and handing a step to the
/// helpers and waiting for them about 0.2-0.5 (docs/performance.md, "Parallelism"): below
/// two full blocks the waiting eats what the second thread saves.
pub const PARALLEL_MIN_WIDTH: usize = 1024;

/// The execution context of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exec {
    /// Threads that share the blocks of a wide layer: the simulating thread and
    /// `threads - 1` helpers of its [`crate::sim::team::Team`] (1: one thread).
    pub threads: usize,
    /// Layers at least this wide share their neuron blocks among `threads` threads
    /// (`usize::MAX`: none).
    pub parallel_min: usize,
    /// The instruction set the step is run with (at most what the CPU has).
    pub simd: Level,
    /// Time training examples on the team and on one thread and keep the faster
    /// ([`crate::sim::pace`]); false: always the team where a layer is wide enough.
    pub adaptive: bool,
}

impl Default for Exec {
    /// One thread, the widest instruction set allowed (see [`simd::level`]).
    fn default() -> Self {
        Exec {
            threads: 1,
            parallel_min: DEFAULT_PARALLEL_MIN,
            simd: simd::level(),
            adaptive: false,
        }
    }
}

impl Exec {
    /// The context for one network trained with `threads` threads: layers of at least
    /// [`PARALLEL_MIN_WIDTH`] neurons and two blocks of `block_size` share their blocks,
    /// on at most as many threads as the widest such layer has blocks; a network without
    /// such a layer (the default 784-500-10: one block of 500) runs on one thread. The
    /// context is adaptive: where the team turns out slower than one thread (no free core),
    /// training falls back to one thread ([`crate::sim::pace`]).
    pub fn for_threads(threads: usize, topology: &Topology, block_size: usize) -> Self {
        let parallel_min = PARALLEL_MIN_WIDTH.max(block_size.saturating_add(1));
        let most_blocks = topology
            .sizes
            .iter()
            .filter(|&&n| n >= parallel_min)
            .map(|&n| n.div_ceil(block_size.max(1)))
            .max()
            .unwrap_or(0);
        let threads = threads.min(most_blocks).max(1);
        Exec {
            threads,
            parallel_min: if threads > 1 {
                parallel_min
            } else {
                usize::MAX
            },
            simd: simd::level(),
            adaptive: true,
        }
    }

    /// This context for test phases: tests run examples in parallel, so blocks never are.
    pub fn sequential(self) -> Self {
        Exec {
            threads: 1,
            parallel_min: usize::MAX,
            ..self
        }
    }

    /// How a layer of `n` neurons runs: on how many threads (1: the simulating thread
    /// alone), with which instruction set.
    pub fn parallel(&self, n: usize) -> LayerExec {
        LayerExec {
            threads: if n >= self.parallel_min {
                self.threads.max(1)
            } else {
                1
            },
            simd: self.simd,
        }
    }
}

/// How one layer's step runs. The blocks a team thread runs are called outside the
/// schedule's code compiled for the instruction set, so they dispatch on `simd` again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerExec {
    /// Threads that share the layer's neuron blocks (1: the simulating thread alone).
    pub threads: usize,
    pub simd: Level,
}

impl LayerExec {
    /// One thread, the widest instruction set allowed.
    pub fn serial() -> Self {
        LayerExec {
            threads: 1,
            simd: simd::level(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::ModelConfig;

    fn topology(hidden: &[usize]) -> Topology {
        let mut cfg = ModelConfig::default_model();
        cfg.network.hidden = hidden.to_vec();
        cfg.topology()
    }

    #[test]
    fn the_default_model_stays_on_one_thread() {
        let e = Exec::for_threads(16, &topology(&[500]), 512);
        assert_eq!(e.threads, 1);
        assert_eq!(e.parallel(500).threads, 1);
        assert_eq!(e.parallel(10).threads, 1);
        let e = Exec::for_threads(2, &topology(&[500, 100]), 512);
        assert_eq!(e.threads, 1);
    }

    #[test]
    fn wide_layers_share_their_blocks_and_narrow_ones_do_not() {
        let e = Exec::for_threads(2, &topology(&[2000]), 512);
        assert_eq!(
            (e.threads, e.parallel(2000).threads, e.parallel(10).threads),
            (2, 2, 1)
        );
        // No more threads than the widest layer has blocks.
        let e = Exec::for_threads(16, &topology(&[2000]), 512);
        assert_eq!(e.threads, 4);
        let e = Exec::for_threads(16, &topology(&[8000]), 512);
        assert_eq!(e.threads, 16);
        // One thread asked: one thread.
        let e = Exec::for_threads(1, &topology(&[8000]), 512);
        assert_eq!((e.threads, e.parallel(8000).threads), (1, 1));
        // Small blocks do not make a narrow layer parallel.
        let e = Exec::for_threads(4, &topology(&[600]), 64);
        assert_eq!(e.threads, 1);
        // Blocks as wide as the layer: nothing to share.
        let e = Exec::for_threads(4, &topology(&[2000]), 2048);
        assert_eq!(e.threads, 1);
        assert_eq!(e.sequential().parallel(2000).threads, 1);
    }
}
