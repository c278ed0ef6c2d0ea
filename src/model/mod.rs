//! The model: what is simulated, and the pure equations of docs/model.md.
//!
//! Owns: the model file's schema and validation ([`config`]), the layer sizes and wiring
//! derived once ([`topology`]), the learned parameters ([`params`]) and their
//! initialisation ([`init`]), and the equations as functions over slices: the Poisson input
//! ([`input`]), the PSP kernel ([`synapse`]), compartment dynamics, spikes and the plateau
//! potential ([`neuron`]), the rate mode of spec section 9 ([`rate`]), the local learning rules
//! ([`learning`]), BurstCCN's settings ([`burst`]) and the name of the rule a model learns with ([`rule`]), and what a model file may ask to record ([`recording`]). May use: [`crate::base`] only.

pub mod burst;
pub(crate) mod checker;
pub mod config;
pub mod init;
pub mod input;
pub mod learning;
pub mod neuron;
pub mod overrides;
pub mod params;
pub mod phases;
pub mod rate;
pub mod readout;
pub mod record_plan;
pub mod recording;
pub mod rule;
mod rule_checks;
pub mod synapse;
pub mod topology;
