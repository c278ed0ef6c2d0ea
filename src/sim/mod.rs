//! The simulation: network state as plain arrays, the per-step schedule, phases, observers.
//!
//! Owns: the compiled model ([`compiled`]: the model file with its topology, rule and
//! constants derived once), the learning rules ([`rules`]), the state of a layer and its neuron blocks ([`layer`]), the network and its state
//! ([`network`]), the per-step schedule of one phase ([`schedule`]; the rate mode's:
//! [`rate`]), the per-step [`observer`] interface, the spikes of a phase's steps
//! ([`events`]), the execution context (threads,
//! parallel threshold, SIMD level: [`exec`]), the helper threads that share a wide layer's
//! blocks ([`team`]) and the per-example choice between them and one thread ([`pace`]), and
//! the memory a model needs ([`memory`]). May use: [`crate::base`], [`crate::model`].

pub mod compiled;
pub mod events;
pub mod exec;
pub mod layer;
pub mod memory;
pub mod network;
pub mod observer;
pub mod pace;
pub mod rate;
pub mod rules;
pub mod schedule;
pub mod state;
pub mod team;
