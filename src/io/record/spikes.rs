//! Reading recorded spikes back for a raster (`apical plot` draws them when the run recorded
//! spikes): the last few recorded examples of one population, read by rows, never the whole
//! file.

use super::inspect::open_traces;
use super::writer::RecordError;
use hdf5::{Dataset, File};
use std::path::Path;

/// One recorded example: where it lies in the trace file's time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExampleSpan {
    /// 1-based epoch and 0-based example in it.
    pub epoch: u32,
    pub example: u32,
    /// Global time of its first step (ms).
    pub start_ms: f64,
    pub forward_steps: u32,
    pub target_steps: u32,
}

/// Spikes of one population over consecutive recorded examples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpikeWindow {
    /// The time step (ms).
    pub dt: f64,
    /// The examples, in time order, each starting where the one before ended.
    pub examples: Vec<ExampleSpan>,
    /// (time in ms, neuron id within the population) of every spike in them, in time order.
    pub spikes: Vec<(f64, u64)>,
}

/// The spikes of `population` in the last `count` examples of the trace file at `path` that
/// follow one another without a gap (a subset recorded with `examples=every:N` gives the
/// last one). `Ok(None)`: the file recorded no spikes of that population, or no example.
pub fn recorded_spikes(
    path: &Path,
    population: &str,
    count: usize,
) -> Result<Option<SpikeWindow>, RecordError> {
    let f = open_traces(path)?;
    let he = |what: String| {
        let path = path.to_path_buf();
        move |source| RecordError::Hdf5 { path, what, source }
    };
    let group = format!("spikes/{population}");
    if f.group(&group).is_err() || f.group("examples").is_err() {
        return Ok(None);
    }
    let dt: f64 = f
        .attr("dt")
        .and_then(|a| a.read_scalar())
        .map_err(he("root attribute dt".into()))?;
    if !(dt.is_finite() && dt > 0.0) {
        return Err(RecordError::NotTraces {
            path: path.to_path_buf(),
            problem: format!("root attribute dt is {dt}: not a time step"),
        });
    }
    let examples = last_examples(&f, count, dt).map_err(he("/examples".into()))?;
    let (Some(first), Some(last)) = (examples.first(), examples.last()) else {
        return Ok(None);
    };
    let t0 = first.start_ms;
    let t1 = last.start_ms + f64::from(last.forward_steps + last.target_steps) * dt;
    let ts = f
        .dataset(&format!("{group}/timestamps"))
        .map_err(he(format!("{group}/timestamps")))?;
    let ids = f
        .dataset(&format!("{group}/node_ids"))
        .map_err(he(format!("{group}/node_ids")))?;
    let rows = ts.size().min(ids.size());
    let (r0, r1) = (
        first_at_or_after(&ts, rows, t0).map_err(he(format!("{group}/timestamps")))?,
        first_at_or_after(&ts, rows, t1 - 0.5 * dt).map_err(he(format!("{group}/timestamps")))?,
    );
    let read =
        |d: &Dataset| -> hdf5::Result<Vec<u64>> { Ok(d.read_slice_1d::<u64, _>(r0..r1)?.to_vec()) };
    let times: Vec<f64> = ts
        .read_slice_1d::<f64, _>(r0..r1)
        .map_err(he(format!("{group}/timestamps")))?
        .to_vec();
    let nodes = read(&ids).map_err(he(format!("{group}/node_ids")))?;
    Ok(Some(SpikeWindow {
        dt,
        examples,
        spikes: times.into_iter().zip(nodes).collect(),
    }))
}

/// The last `count` rows of /examples, cut to those that follow one another in time.
fn last_examples(f: &File, count: usize, dt: f64) -> hdf5::Result<Vec<ExampleSpan>> {
    let g = f.group("examples")?;
    let n = g.dataset("start_time")?.size();
    let r = n.saturating_sub(count.max(1))..n;
    let col = |name: &str| -> hdf5::Result<Vec<u32>> {
        Ok(g.dataset(name)?
            .read_slice_1d::<u32, _>(r.clone())?
            .to_vec())
    };
    let start: Vec<f64> = g
        .dataset("start_time")?
        .read_slice_1d::<f64, _>(r.clone())?
        .to_vec();
    let (epoch, example, fw, tg) = (
        col("epoch")?,
        col("example")?,
        col("forward_steps")?,
        col("target_steps")?,
    );
    let mut spans: Vec<ExampleSpan> = (0..start.len())
        .map(|k| ExampleSpan {
            epoch: epoch[k],
            example: example[k],
            start_ms: start[k],
            forward_steps: fw[k],
            target_steps: tg[k],
        })
        .collect();
    // Keep the trailing run of examples without gaps between them.
    let mut first = spans.len().saturating_sub(1);
    while first >= 1 {
        let (a, b) = (&spans[first - 1], &spans[first]);
        let end = a.start_ms + f64::from(a.forward_steps + a.target_steps) * dt;
        if (end - b.start_ms).abs() > 0.5 * dt {
            break;
        }
        first -= 1;
    }
    spans.drain(..first);
    Ok(spans)
}

/// The first row of the time-ordered column `ts` (of `rows` rows) whose time is at least
/// `t`, found by bisection (one value read per step).
fn first_at_or_after(ts: &Dataset, rows: usize, t: f64) -> hdf5::Result<usize> {
    let (mut lo, mut hi) = (0, rows);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let v = ts.read_slice_1d::<f64, _>(mid..mid + 1)?[0];
        if v < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
