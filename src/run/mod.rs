//! Runs: training epochs, tests, metrics, run hooks and diagnostics.
//!
//! Owns: the trainer ([`trainer`]), per-epoch metrics and evaluation ([`metrics`]), the run
//! hooks (epoch and example events for progress, recording, checks: [`hooks`]), and the
//! feedback-alignment diagnostics ([`alignment`]), the limit on worker threads
//! ([`threads`]). May use: [`crate::base`],
//! [`crate::model`], [`crate::sim`], [`crate::io`].

pub mod alignment;
pub mod hooks;
pub mod metrics;
pub mod session;
pub mod stepper;
pub mod threads;
pub mod trainer;
