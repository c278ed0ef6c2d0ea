//! Runs: training epochs, tests, metrics, run events and diagnostics.
//!
//! Owns: the trainer ([`trainer`]), per-epoch metrics and evaluation ([`metrics`]), the run
//! events (notices, epochs, examples and tests for progress, recording, callbacks:
//! [`events`]), the
//! feedback-alignment diagnostics ([`alignment`]), the limit on worker threads
//! ([`threads`]). May use: [`crate::base`],
//! [`crate::model`], [`crate::sim`], [`crate::io`].

pub mod alignment;
pub mod events;
pub mod metrics;
pub mod session;
pub mod stepper;
pub mod threads;
pub mod trainer;
