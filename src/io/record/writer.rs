//! The HDF5 side of recording: the writer thread, chunked resizable columns and
//! attribute helpers.

use super::recorder::Compression;
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

/// A resizable, chunked, compressed dataset `[rows, inner...]` and its buffer of rows not
/// yet written.
pub(super) struct Col<T: H5Type + Copy> {
    pub(super) ds: Dataset,
    pub(super) inner: Vec<usize>,
    pub(super) width: usize,
    pub(super) buf: Vec<T>,
    pub(super) rows: usize,
}

impl<T: H5Type + Copy + Send + 'static> Col<T> {
    pub(super) fn create(
        z: Compression,
        g: &Group,
        name: &str,
        inner: &[usize],
        units: Option<&str>,
    ) -> hdf5::Result<Self> {
        let width: usize = inner.iter().product();
        let row_bytes = width.max(1) * std::mem::size_of::<T>();
        let chunk_rows = (CHUNK_BYTES / row_bytes).max(1);
        let mut ext = vec![Extent::resizable(0)];
        ext.extend(inner.iter().map(|&d| Extent::fixed(d)));
        let mut chunk = vec![chunk_rows];
        chunk.extend_from_slice(inner);
        let mut b = g.new_dataset::<T>().chunk(chunk);
        if let Compression::Deflate(level) = z {
            b = b.shuffle().deflate(level.min(9));
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

    pub(super) fn bytes(&self) -> usize {
        self.buf.len() * std::mem::size_of::<T>()
    }

    /// Hands the buffered rows to the writer as a job that appends them to the dataset.
    pub(super) fn flush(&mut self, jobs: &mut Vec<Job>) {
        let n = self.buf.len() / self.width.max(1);
        if n == 0 {
            return;
        }
        let r0 = self.rows;
        self.rows += n;
        let ds = self.ds.clone();
        let inner = self.inner.clone();
        let data = std::mem::take(&mut self.buf);
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
