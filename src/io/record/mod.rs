//! Traces of a training run in one HDF5 file (`traces.h5` in the run directory): spikes in
//! the SONATA spike layout, compartment potentials and firing rates in the SONATA report
//! layout, plateau potentials, per-example labels and predictions, weight snapshots and
//! per-epoch metrics. The schema is documented in docs/traces.md.
//!
//! What is recorded is chosen by a [`RecordGroup`] list: from the command line
//! (`apical train --record SPEC`, parsed by [`parse_spec`]) or from `[[record]]` tables in the
//! model file. The [`Recorder`] is a [`crate::sim::observer::Observer`]: it only reads the
//! simulation, buffers a bounded amount in memory and appends it to chunked, compressed,
//! resizable datasets between examples, so memory stays flat however long the run.

//!
//! Files: `writer` is the HDF5 side (the
//! writer thread, chunked columns, attribute helpers); `layout` the per-population
//! datasets of the file; `recorder` the observer that fills them; [`inspect`] reads a
//! file back as text. What may be recorded (the spec grammar, `[[record]]` tables) is part of
//! the model description: [`crate::model::recording`].

mod inspect;
mod layout;

mod recorder;
mod writer;

pub use crate::model::recording::{parse_spec, RecordGroup, SpecError};
pub use inspect::inspect;
pub use recorder::steps_before;
pub use recorder::{Compression, Recorder, RunEnd, StartPoint};
pub use writer::{RecordError, Sorting};

/// Version of the file layout (root attribute `format_version`).
pub const FORMAT_VERSION: u32 = 1;
/// Buffered bytes that trigger a flush at the end of an example.
pub(crate) const FLUSH_BYTES: usize = 8 << 20;
/// Target size of one uncompressed chunk.
const CHUNK_BYTES: usize = 256 << 10;
/// Units of the model's potentials (the model is dimensionless, docs/model.md).
pub(crate) const POTENTIAL_UNITS: &str = "dimensionless";
