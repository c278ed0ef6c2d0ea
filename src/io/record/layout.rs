//! The per-population parts of a trace file: spikes, reports, plateaus, weights, the
//! examples and epochs tables.

use super::compression::Filters;
use super::writer::{put_attr, put_data, Col, Job, SonataBool, Sorting};
use super::POTENTIAL_UNITS;
use crate::model::recording::Examples;
use hdf5::{Dataset, Group};

pub(super) struct SpikeOut {
    pub(super) examples: Examples,
    pub(super) active: bool,
    pub(super) timestamps: Col<f64>,
    pub(super) node_ids: Col<u64>,
    /// Spiking BurstCCN: 1 where the spike was a burst (docs/model.md, eq. 11.14).
    pub(super) bursts: Option<Col<u8>>,
    /// Spikes pushed since the example started (they get the example's burst flags).
    pub(super) example_spikes: usize,
}

impl SpikeOut {
    /// `spikes/<pop>`: `timestamps` and `node_ids`, sorted by time (SONATA), and with
    /// `bursts` a `bursts` column beside them.
    pub(super) fn create(
        z: Filters,
        root: &Group,
        pop: &str,
        examples: Examples,
        bursts: bool,
    ) -> hdf5::Result<Self> {
        let g = root.create_group(pop)?;
        g.new_attr::<Sorting>()
            .create("sorting")?
            .write_scalar(&Sorting::by_time)?;
        Ok(SpikeOut {
            examples,
            active: false,
            timestamps: Col::create(z, &g, "timestamps", &[], Some("ms"))?,
            node_ids: Col::create(z, &g, "node_ids", &[], None)?,
            bursts: if bursts {
                Some(Col::create(z, &g, "bursts", &[], None)?)
            } else {
                None
            },
            example_spikes: 0,
        })
    }
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

impl PlateauOut {
    /// `plateau/<pop>`: the forward and target plateau potentials of each recorded example.
    pub(super) fn create(
        z: Filters,
        root: &Group,
        pop: &str,
        n: usize,
        examples: Examples,
    ) -> hdf5::Result<Self> {
        let g = root.create_group(pop)?;
        let u = Some(POTENTIAL_UNITS);
        Ok(PlateauOut {
            examples,
            active: false,
            row: Col::create(z, &g, "example_row", &[], None)?,
            forward: Col::create(z, &g, "forward", &[n], u)?,
            target: Col::create(z, &g, "target", &[n], u)?,
        })
    }
}

pub(super) struct WeightsOut {
    pub(super) examples: Examples,
    pub(super) w: Col<f32>,
    pub(super) b: Col<f32>,
    pub(super) y: Option<Col<f32>>,
    pub(super) c: Option<Col<f32>>,
    pub(super) scratch: Vec<f32>,
}

impl WeightsOut {
    /// `weights/<pop>`: snapshots of W (n x n_pre) and b, and of Y (n x `feedback`) and c
    /// where the layer has feedback (hidden layers).
    pub(super) fn create(
        z: Filters,
        root: &Group,
        pop: &str,
        n: usize,
        n_pre: usize,
        feedback: Option<usize>,
        examples: Examples,
    ) -> hdf5::Result<Self> {
        let g = root.create_group(pop)?;
        let u = Some(POTENTIAL_UNITS);
        Ok(WeightsOut {
            examples,
            w: Col::create(z, &g, "W", &[n, n_pre], u)?,
            b: Col::create(z, &g, "b", &[n], u)?,
            y: feedback
                .map(|k| Col::create(z, &g, "Y", &[n, k], u))
                .transpose()?,
            c: feedback
                .map(|_| Col::create(z, &g, "c", &[n], u))
                .transpose()?,
            scratch: Vec::new(),
        })
    }
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

impl ExamplesOut {
    /// `examples`: one row per recorded training example.
    pub(super) fn create(z: Filters, root: &Group) -> hdf5::Result<Self> {
        let g = root.create_group("examples")?;
        Ok(ExamplesOut {
            epoch: Col::create(z, &g, "epoch", &[], None)?,
            example: Col::create(z, &g, "example", &[], None)?,
            image: Col::create(z, &g, "image", &[], None)?,
            label: Col::create(z, &g, "label", &[], None)?,
            prediction: Col::create(z, &g, "prediction", &[], None)?,
            start_time: Col::create(z, &g, "start_time", &[], Some("ms"))?,
            forward_steps: Col::create(z, &g, "forward_steps", &[], None)?,
            target_steps: Col::create(z, &g, "target_steps", &[], None)?,
        })
    }
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

impl EpochsOut {
    /// `epochs`: one row per finished epoch (`rates_hz` has one column per layer).
    pub(super) fn create(z: Filters, root: &Group, m_layers: usize) -> hdf5::Result<Self> {
        let g = root.create_group("epochs")?;
        Ok(EpochsOut {
            epoch: Col::create(z, &g, "epoch", &[], None)?,
            train_examples: Col::create(z, &g, "train_examples", &[], None)?,
            train_error: Col::create(z, &g, "train_error", &[], Some("%"))?,
            test_examples: Col::create(z, &g, "test_examples", &[], None)?,
            test_error: Col::create(z, &g, "test_error", &[], Some("%"))?,
            rates_hz: Col::create(z, &g, "rates_hz", &[m_layers], Some("Hz"))?,
            end_time: Col::create(z, &g, "end_time", &[], Some("ms"))?,
        })
    }
}

pub(super) struct SnapIndex {
    pub(super) epoch: Col<u32>,
    pub(super) example: Col<u32>,
    pub(super) time: Col<f64>,
    pub(super) last: Option<(usize, usize)>,
}

impl SnapIndex {
    /// `weights/epoch`, `example` and `time`: when each weight snapshot was taken.
    pub(super) fn create(z: Filters, root: &Group) -> hdf5::Result<Self> {
        Ok(SnapIndex {
            epoch: Col::create(z, root, "epoch", &[], None)?,
            example: Col::create(z, root, "example", &[], None)?,
            time: Col::create(z, root, "time", &[], Some("ms"))?,
            last: None,
        })
    }
}
