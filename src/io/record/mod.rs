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
//! file back as text; `spikes` reads a few examples' spikes back for a raster. What may be recorded (the spec grammar, `[[record]]` tables) is part of
//! the model description: [`crate::model::recording`].

mod compression;
mod inspect;
mod layout;

mod recorder;
mod spikes;
mod writer;

pub use crate::model::recording::{parse_spec, RecordGroup, SpecError};
pub use compression::{time_decimals, Compression};
pub use inspect::{inspect, open_traces};
pub use recorder::steps_before;
pub use recorder::{Recorder, RunEnd, StartPoint};
pub use spikes::{recorded_spikes, ExampleSpan, SpikeWindow};
pub use writer::{RecordError, SonataBool, Sorting};

/// Version of the file layout (root attribute `format_version`): 2 since the SONATA
/// `magic`/`version` attributes, the scale-offset default and the HDF5 1.8 format.
pub const FORMAT_VERSION: u32 = 2;
/// Buffered bytes that trigger a flush at the end of an example.
pub(crate) const FLUSH_BYTES: usize = 8 << 20;
/// A flush at the end of an example when the last one is this old: what a process killed
/// without closing the file loses is about this much (docs/traces.md, Crash safety).
pub(crate) const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// SONATA's root attribute `magic` (uint32).
pub(crate) const SONATA_MAGIC: u32 = 0x0A7A;
/// SONATA's root attribute `version` (uint32 [2]): the SONATA specification version 0.1
/// whose spike and report layouts the file follows.
pub(crate) const SONATA_VERSION: [u32; 2] = [0, 1];
/// Target size of one uncompressed chunk.
const CHUNK_BYTES: usize = 256 << 10;
/// Units of the model's potentials (the model is dimensionless, docs/model.md).
pub(crate) const POTENTIAL_UNITS: &str = "dimensionless";

/// Moves a file already at `path` (the traces of an earlier run of the directory, killed or
/// stopped before its first checkpoint, which a new recording would replace) aside to the
/// first free name `STEM-earlier-N.h5` beside it, so no recorded data is lost; returns that
/// name. `None` when there is no file at `path`. The caller holds the run directory's lock,
/// so no other apical process takes the free name meanwhile.
pub fn keep_earlier(path: &std::path::Path) -> std::io::Result<Option<std::path::PathBuf>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "traces".into(), |s| s.to_string_lossy().into_owned());
    for n in 1u32.. {
        let kept = path.with_file_name(format!("{stem}-earlier-{n}.h5"));
        match std::fs::symlink_metadata(&kept) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::rename(path, &kept)?;
                return Ok(Some(kept));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("a free name among 2^32")
}

#[cfg(test)]
mod tests {
    use super::keep_earlier;

    #[test]
    fn an_earlier_trace_file_is_kept_under_the_next_free_name() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("traces.h5");
        assert_eq!(keep_earlier(&path).unwrap(), None, "nothing to keep");
        std::fs::write(d.path().join("traces-earlier-1.h5"), b"first").unwrap();
        std::fs::write(&path, b"second").unwrap();
        let kept = keep_earlier(&path).unwrap().unwrap();
        assert_eq!(kept, d.path().join("traces-earlier-2.h5"));
        assert_eq!(std::fs::read(&kept).unwrap(), b"second");
        assert_eq!(
            std::fs::read(d.path().join("traces-earlier-1.h5")).unwrap(),
            b"first"
        );
        assert!(!path.exists());
        // A resumed run's file keeps its own stem.
        let resumed = d.path().join("traces-from-epoch2-example0.h5");
        std::fs::write(&resumed, b"third").unwrap();
        assert_eq!(
            keep_earlier(&resumed).unwrap().unwrap(),
            d.path().join("traces-from-epoch2-example0-earlier-1.h5")
        );
    }
}
