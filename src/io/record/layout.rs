//! The per-population parts of a trace file: spikes, reports, plateaus, weights, the
//! examples and epochs tables.

use super::compression::Filters;
use super::writer::{put_attr, put_data, Col, Job, SonataBool};
use crate::model::recording::Examples;
use hdf5::{Dataset, Group};

pub(super) struct SpikeOut {
    pub(super) examples: Examples,
    pub(super) active: bool,
    pub(super) timestamps: Col<f64>,
    pub(super) node_ids: Col<u64>,
}

/// A report in the SONATA layout: `data` [time x elements], `mapping`, plus `times`.
pub(super) struct ReportOut {
    pub(super) examples: Examples,
    pub(super) interval: u64,
    pub(super) elements: Vec<u32>,
    pub(super) active: bool,
    pub(super) data: Col<f32>,
    pub(super) times: Col<f64>,
    pub(super) time_ds: Dataset,
    pub(super) step_ms: f64,
    pub(super) first_time: Option<f64>,
}

impl ReportOut {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create(
        z: Filters,
        root: &Group,
        pop: &str,
        n: usize,
        elements: &[u32],
        examples: Examples,
        interval: usize,
        dt: f64,
        units: &str,
    ) -> hdf5::Result<Self> {
        let g = root.create_group(pop)?;
        let k = elements.len();
        let data = Col::<f32>::create(z, &g, "data", &[n * k], Some(units))?;
        let times = Col::<f64>::create(z, &g, "times", &[], Some("ms"))?;
        let m = g.create_group("mapping")?;
        let ids: Vec<u64> = (0..n as u64).collect();
        // SONATA: `sorted` (bool, optional) says the node ids ascend; libsonata reads it as
        // the enum bool h5py writes.
        let node_ids = put_data(&m, "node_ids", &ids, None)?;
        put_attr(&node_ids, "sorted", &SonataBool::TRUE)?;
        let ptr: Vec<u64> = (0..=n as u64).map(|i| i * k as u64).collect();
        put_data(&m, "index_pointers", &ptr, None)?;
        let el: Vec<u32> = (0..n).flat_map(|_| elements.iter().copied()).collect();
        put_data(&m, "element_ids", &el, None)?;
        let step = interval as f64 * dt;
        let time_ds = put_data(&m, "time", &[0.0, 0.0, step], Some("ms"))?;
        Ok(ReportOut {
            examples,
            interval: interval as u64,
            elements: elements.to_vec(),
            active: false,
            data,
            times,
            time_ds,
            step_ms: step,
            first_time: None,
        })
    }

    pub(super) fn flush(&mut self, jobs: &mut Vec<Job>, last: bool) {
        self.data.flush(jobs, last);
        self.times.flush(jobs, last);
        // mapping/time = start, stop, step over the rows written: the time of row r is
        // start + r * step when every step of the recorded stretch was sampled, and always
        // `times[r]`.
        let rows = self.data.rows as f64;
        let step = self.step_ms;
        let start = self.first_time.unwrap_or(0.0);
        let ds = self.time_ds.clone();
        jobs.push(Box::new(move || {
            ds.write_raw(&[start, start + rows * step, step][..])
        }));
    }

    pub(super) fn bytes(&self) -> usize {
        self.data.bytes() + self.times.bytes()
    }
}

pub(super) struct PlateauOut {
    pub(super) examples: Examples,
    pub(super) active: bool,
    pub(super) row: Col<u64>,
    pub(super) forward: Col<f32>,
    pub(super) target: Col<f32>,
}

pub(super) struct WeightsOut {
    pub(super) examples: Examples,
    pub(super) w: Col<f32>,
    pub(super) b: Col<f32>,
    pub(super) y: Option<Col<f32>>,
    pub(super) c: Option<Col<f32>>,
    pub(super) scratch: Vec<f32>,
}

pub(super) struct ExamplesOut {
    pub(super) epoch: Col<u32>,
    pub(super) example: Col<u32>,
    pub(super) image: Col<u32>,
    pub(super) label: Col<u8>,
    pub(super) prediction: Col<u8>,
    pub(super) start_time: Col<f64>,
    pub(super) forward_steps: Col<u32>,
    pub(super) target_steps: Col<u32>,
}

pub(super) struct EpochsOut {
    pub(super) epoch: Col<u32>,
    pub(super) train_examples: Col<u32>,
    pub(super) train_error: Col<f64>,
    pub(super) test_examples: Col<u32>,
    pub(super) test_error: Col<f64>,
    pub(super) rates_hz: Col<f64>,
    pub(super) end_time: Col<f64>,
}

pub(super) struct SnapIndex {
    pub(super) epoch: Col<u32>,
    pub(super) example: Col<u32>,
    pub(super) time: Col<f64>,
    pub(super) last: Option<(usize, usize)>,
}
