//! Files: everything that reads or writes the disk.
//!
//! Owns: atomic writes ([`atomic`]), checkpoints ([`checkpoint`]), the memory the machine
//! allows ([`memory`]), the MNIST files ([`mnist`]), data sets by name or file ([`dataset`]) and the record of those already checked
//! ([`verify_cache`]), the run directory and its lock ([`run_dir`]), its metrics files ([`metrics_file`]), HDF5 traces
//! ([`record`]) and their NWB export ([`nwb`]).
//! May use: [`crate::base`], [`crate::model`], [`crate::sim`].

pub mod atomic;
pub mod checkpoint;
pub mod dataset;
pub mod memory;
pub mod metrics_file;
pub mod mnist;
pub mod nwb;
pub mod record;
pub mod run_dir;
pub mod verify_cache;
