//! The HDF5 side of recording: the writer thread, chunked resizable columns and
//! attribute helpers.

use super::compression::{Compression, Filters};
use super::CHUNK_BYTES;
use crate::model::recording::SpecError;
use hdf5::types::VarLenUnicode;
use hdf5::File;
use hdf5::{Dataset, Extent, Group, H5Type, Location, SimpleExtents};
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------
// HDF5 helpers
// ---------------------------------------------------------------------------------------

/// The SONATA `sorting` enum of `/spikes/<population>` (libsonata reads it as this type).
#[derive(H5Type, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(non_camel_case_types)]
pub enum Sorting {
    none = 0,
    by_id = 1,
    by_time = 2,
}

/// SONATA's bool as libsonata (HighFive) and h5py read it: an HDF5 enum of int8 with the
/// members FALSE = 0 and TRUE = 1 (the `sorted` attribute of a report's node ids).
#[derive(H5Type, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
#[allow(clippy::upper_case_acronyms)]
pub enum SonataBool {
    FALSE = 0,
    TRUE = 1,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record spec: {0}")]
    Spec(#[from] SpecError),
    #[error("trace file {path}: {what}: {source}")]
    Hdf5 {
        path: PathBuf,
        what: String,
        source: hdf5::Error,
    },
    #[error("trace file {path}: cannot append to the file: {message}")]
    Write { path: PathBuf, message: String },
    /// A path that holds no trace file (missing, a directory without one, not HDF5).
    #[error("{path}: {problem}")]
    NotTraces { path: PathBuf, problem: String },
}

/// A write to the file, run on the writer thread.
pub(super) type Job = Box<dyn FnOnce() -> hdf5::Result<()> + Send>;

/// The thread that compresses and writes, so the simulation does not wait for it.
pub(super) struct Writer {
    pub(super) tx: Option<std::sync::mpsc::SyncSender<Vec<Job>>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
    pub(super) failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Writer {
    pub(super) fn spawn() -> std::io::Result<Self> {
        // One batch queued while one is written: bounded memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Job>>(1);
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let f2 = failed.clone();
        let thread = std::thread::Builder::new()
            .name("apical-traces".into())
            .spawn(move || {
                for batch in rx {
                    let mut slot = f2.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.is_some() {
                        continue; // after an error, write nothing more
                    }
                    drop(slot);
                    for job in batch {
                        if let Err(e) = job() {
                            slot = f2.lock().unwrap_or_else(|p| p.into_inner());
                            *slot = Some(e.to_string());
                            break;
                        }
                    }
                }
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            failed,
        })
    }
}

pub(super) fn vstr(s: &str) -> VarLenUnicode {
    // Strings we write come from TOML text and names: an interior NUL cannot occur, but
    // never panic on it either.
    s.replace('\0', " ").parse().unwrap_or_default()
}

/// One writer per population that `plan` selects (`make(group, index, selection)`), under a
/// group `name` of `file` that is created only when some population is selected; returns
/// the group too.
pub(super) fn per_population<S, T>(
    file: &File,
    name: &str,
    plan: &[Option<S>],
    mut make: impl FnMut(&Group, usize, &S) -> hdf5::Result<T>,
) -> hdf5::Result<(Option<Group>, Vec<Option<T>>)> {
    if plan.iter().all(Option::is_none) {
        return Ok((None, plan.iter().map(|_| None).collect()));
    }
    let g = file.create_group(name)?;
    let out = plan
        .iter()
        .enumerate()
        .map(|(m, sel)| sel.as_ref().map(|s| make(&g, m, s)).transpose())
        .collect::<hdf5::Result<_>>()?;
    Ok((Some(g), out))
}

/// Creates or overwrites a scalar attribute.
pub(super) fn put_attr<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5::Result<()> {
    let a = if loc.attr_names()?.iter().any(|n| n == name) {
        loc.attr(name)?
    } else {
        loc.new_attr::<T>().create(name)?
    };
    a.write_scalar(v)
}

pub(super) fn put_str(loc: &Location, name: &str, v: &str) -> hdf5::Result<()> {
    put_attr(loc, name, &vstr(v))
}

/// A fixed dataset with data.
pub(super) fn put_data<T: H5Type>(
    g: &Group,
    name: &str,
    data: &[T],
    units: Option<&str>,
) -> hdf5::Result<Dataset> {
    let ds = g.new_dataset_builder().with_data(data).create(name)?;
    if let Some(u) = units {
        put_str(&ds, "units", u)?;
    }
    Ok(ds)
}

/// A resizable, chunked, possibly filtered dataset `[rows, inner...]` and its buffer of
/// rows not yet written.
///
/// A filtered column is written in whole chunks only (the last, partial chunk when the file
/// is closed): a filtered chunk changes size when rewritten, HDF5 then frees its old place
/// and may give it to the next chunk, and a process killed before the next flush would
/// leave the on-disk index pointing at overwritten bytes. An unfiltered chunk is rewritten
/// in place, with the same bytes for the rows already there, so every flushed row of an
/// unfiltered column survives a kill (docs/traces.md, Crash safety).
pub(super) struct Col<T: H5Type + Copy> {
    pub(super) ds: Dataset,
    pub(super) inner: Vec<usize>,
    pub(super) width: usize,
    pub(super) buf: Vec<T>,
    pub(super) rows: usize,
    chunk_rows: usize,
    /// Whether only whole chunks are written before the last flush.
    whole_chunks: bool,
}

impl<T: H5Type + Copy + Send + 'static> Col<T> {
    pub(super) fn create(
        f: Filters,
        g: &Group,
        name: &str,
        inner: &[usize],
        units: Option<&str>,
    ) -> hdf5::Result<Self> {
        use hdf5::filters::ScaleOffset;
        use hdf5::types::TypeDescriptor as TD;
        let width: usize = inner.iter().product();
        let row_bytes = width.max(1) * std::mem::size_of::<T>();
        let chunk_rows = if f.spike_chunk_rows > 0 {
            f.spike_chunk_rows
        } else if inner.is_empty() {
            // The 1-D columns of a table share one chunk length whatever their type, so
            // whole-chunk writes cut them at the same row.
            CHUNK_BYTES / 8
        } else {
            (CHUNK_BYTES / row_bytes).max(1)
        };
        let mut ext = vec![Extent::resizable(0)];
        ext.extend(inner.iter().map(|&d| Extent::fixed(d)));
        let mut chunk = vec![chunk_rows];
        chunk.extend_from_slice(inner);
        let mut b = g.new_dataset::<T>().chunk(chunk);
        let mut filtered = false;
        match f.z {
            Compression::Deflate(level) => {
                b = b.shuffle().deflate(level.min(9));
                filtered = true;
            }
            Compression::ScaleOffset if f.spike_chunk_rows > 0 => match T::type_descriptor() {
                TD::Integer(_) | TD::Unsigned(_) => {
                    // Minimum bits 0: the filter finds the bits each chunk needs.
                    b = b.scale_offset(ScaleOffset::Integer(0));
                    filtered = true;
                }
                TD::Float(_) => {
                    if let Some(d) = f.time_decimals {
                        b = b.scale_offset(ScaleOffset::FloatDScale(d));
                        filtered = true;
                    }
                }
                _ => {}
            },
            _ => {}
        }
        let ds = b.shape(SimpleExtents::from_vec(ext)).create(name)?;
        if let Some(u) = units {
            put_str(&ds, "units", u)?;
        }
        Ok(Col {
            ds,
            inner: inner.to_vec(),
            width,
            buf: Vec::new(),
            rows: 0,
            chunk_rows,
            whole_chunks: filtered && chunk_rows > 1,
        })
    }

    #[inline]
    pub(super) fn push(&mut self, v: T) {
        self.buf.push(v);
    }

    pub(super) fn extend(&mut self, v: &[T]) {
        self.buf.extend_from_slice(v);
    }

    pub(super) fn total_rows(&self) -> usize {
        self.rows + self.buf.len() / self.width.max(1)
    }

    /// Buffered bytes that the next flush (not the last) writes.
    pub(super) fn bytes(&self) -> usize {
        self.flushable_rows(false) * self.width.max(1) * std::mem::size_of::<T>()
    }

    /// Buffered rows that a flush writes: all at the last flush or when unfiltered, else
    /// those up to the last chunk boundary.
    fn flushable_rows(&self, last: bool) -> usize {
        let n = self.buf.len() / self.width.max(1);
        if last || !self.whole_chunks {
            return n;
        }
        let end = (self.rows + n) / self.chunk_rows * self.chunk_rows;
        end.saturating_sub(self.rows)
    }

    /// Hands the buffered rows that a flush writes ([`Col::flushable_rows`]) to the writer
    /// as a job that appends them to the dataset.
    pub(super) fn flush(&mut self, jobs: &mut Vec<Job>, last: bool) {
        let n = self.flushable_rows(last);
        if n == 0 {
            return;
        }
        let r0 = self.rows;
        self.rows += n;
        let ds = self.ds.clone();
        let inner = self.inner.clone();
        let rest = self.buf.split_off(n * self.width.max(1));
        let data = std::mem::replace(&mut self.buf, rest);
        jobs.push(Box::new(move || write_rows(&ds, r0, &inner, &data)));
    }
}

/// Appends rows `r0..` (all of `data`, whole rows of `inner` shape) to a resizable dataset.
pub(super) fn write_rows<T: H5Type>(
    ds: &Dataset,
    r0: usize,
    inner: &[usize],
    data: &[T],
) -> hdf5::Result<()> {
    let width: usize = inner.iter().product::<usize>().max(1);
    let n = data.len() / width;
    let r1 = r0 + n;
    let mut shape = vec![r1];
    shape.extend_from_slice(inner);
    ds.resize(shape)?;
    let data = &data[..n * width];
    let bad = |e: ndarray::ShapeError| hdf5::Error::from(e.to_string().as_str());
    match inner.len() {
        0 => ds.write_slice(data, r0..r1),
        1 => {
            let v = ndarray::ArrayView2::from_shape((n, inner[0]), data).map_err(bad)?;
            ds.write_slice(v, (r0..r1, ..))
        }
        _ => {
            let v = ndarray::ArrayView3::from_shape((n, inner[0], inner[1]), data).map_err(bad)?;
            ds.write_slice(v, (r0..r1, .., ..))
        }
    }
}
