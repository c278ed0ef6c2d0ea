//! apical: spiking segregated-dendrite networks that learn with local rules, after
//! Guerguiev, Lillicrap & Richards, "Towards deep learning with segregated dendrites"
//! (eLife 2017). The model and its equations are in docs/model.md.
//!
//! Modules, one per concept: [`input`] (Poisson encoding), [`synapse`] (PSP kernel),
//! [`neuron`] (compartment dynamics and the plateau potential), [`layer`], [`init`] (weight
//! initialisation), [`learning`] (local rules), [`network`] (phases), [`data`] (MNIST),
//! [`train`] (epochs, metrics, run directories), [`checkpoint`], [`config`] (model files),
//! [`record`] (traces of spikes, potentials and weights in HDF5, docs/traces.md).

pub mod alignment;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod init;
pub mod input;
pub mod layer;
pub mod learning;
pub mod network;
pub mod neuron;
pub mod plot;
pub mod record;
pub mod reproduce;
pub mod rng;
pub mod simd;
pub mod synapse;
pub mod train;
