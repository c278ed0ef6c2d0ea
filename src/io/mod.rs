//! Files: everything that reads or writes the disk.
//!
//! Owns: atomic writes ([`atomic`]), checkpoints ([`checkpoint`]), the MNIST files
//! ([`mnist`]), the run directory ([`run_dir`]), HDF5 traces ([`record`]), and the record of data files
//! already checked ([`verify_cache`]).
//! May use: [`crate::base`], [`crate::model`], [`crate::sim`].

pub mod atomic;
pub mod checkpoint;
pub mod mnist;
pub mod record;
pub mod run_dir;
pub mod verify_cache;
