//! apical: spiking segregated-dendrite networks that learn with local rules, after
//! Guerguiev, Lillicrap & Richards, "Towards deep learning with segregated dendrites"
//! (eLife 2017). The model and its equations are in docs/model.md; the layers of this crate
//! and the per-step schedule in docs/architecture.md.
//!
//! Layers, each a folder whose `mod.rs` says what it owns and what it may use; dependencies
//! point one way, down this list:
//! - [`app`]: the benchmark harness, the paper's experiments, plots;
//! - [`run`]: training runs, run hooks, metrics, alignment diagnostics;
//! - [`io`]: checkpoints, MNIST, the run directory, HDF5 traces, atomic writes;
//! - [`sim`]: network state, the step schedule, observers, the execution context;
//! - [`model`]: the model file, parameters and the pure equations;
//! - [`base`]: random streams and SIMD helpers.

pub mod app;
pub mod base;
pub mod io;
pub mod model;
pub mod run;
pub mod sim;
