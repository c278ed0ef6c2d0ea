//! Run hooks: the events of a training run (epochs, examples) for whoever watches a run:
//! the recorder, progress output, tests. A hook is also a step [`Observer`], so one object
//! can follow both the run and the simulation inside it.

use crate::io::checkpoint::EpochRecord;
use crate::io::record::Recorder;
use crate::model::params::LayerParams;
use crate::sim::observer::{NoObserver, Observer};

/// Called by [`crate::run::trainer::Trainer::run`] (training only: test phases never reach
/// it). Epochs are 1-based, examples are 0-based positions in the epoch.
pub trait RunHooks: Observer {
    /// An epoch starts (or resumes at example `first`) with `n_examples` examples.
    fn on_epoch_start(
        &mut self,
        _epoch: usize,
        _first: usize,
        _n_examples: usize,
        _params: &[LayerParams],
    ) {
    }
    /// Training example `example` of `epoch` (training image `image`) is about to run.
    fn on_example_start(&mut self, _epoch: usize, _example: usize, _image: usize, _label: u8) {}
    /// The example ran: its forward-phase prediction; `params` after learning.
    fn on_example_end(&mut self, _predicted: u8, _params: &[LayerParams]) {}
    /// The epoch ended and was tested.
    fn on_epoch_end(&mut self, _record: &EpochRecord, _params: &[LayerParams]) {}
}

impl RunHooks for NoObserver {}

impl<A: RunHooks, B: RunHooks> RunHooks for (A, B) {
    fn on_epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        self.0.on_epoch_start(epoch, first, n, params);
        self.1.on_epoch_start(epoch, first, n, params);
    }
    fn on_example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        self.0.on_example_start(epoch, example, image, label);
        self.1.on_example_start(epoch, example, image, label);
    }
    fn on_example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        self.0.on_example_end(predicted, params);
        self.1.on_example_end(predicted, params);
    }
    fn on_epoch_end(&mut self, record: &EpochRecord, params: &[LayerParams]) {
        self.0.on_epoch_end(record, params);
        self.1.on_epoch_end(record, params);
    }
}

impl<H: RunHooks + ?Sized> RunHooks for &mut H {
    fn on_epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        (**self).on_epoch_start(epoch, first, n, params);
    }
    fn on_example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        (**self).on_example_start(epoch, example, image, label);
    }
    fn on_example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        (**self).on_example_end(predicted, params);
    }
    fn on_epoch_end(&mut self, record: &EpochRecord, params: &[LayerParams]) {
        (**self).on_epoch_end(record, params);
    }
}

/// The recorder follows the run through its own methods (the I/O layer does not know
/// about run hooks).
impl RunHooks for Recorder {
    fn on_epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        self.epoch_start(epoch, first, n, params);
    }
    fn on_example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        self.example_start(epoch, example, image, label);
    }
    fn on_example_end(&mut self, predicted: u8, params: &[LayerParams]) {
        self.example_end(predicted, params);
    }
    fn on_epoch_end(&mut self, record: &EpochRecord, params: &[LayerParams]) {
        self.epoch_end(record, params);
    }
}

/// The line the command line prints, and the Python package writes, at the end of an epoch:
/// errors, test images, firing rates and times. Epoch 0 (the initial network's test) has
/// only its test.
pub fn epoch_line(m: &crate::io::run_dir::EpochMetrics) -> String {
    let r = &m.record;
    if m.is_initial() {
        return format!(
            "epoch 0 (initial network, before training): test error {:.2} % ({} images), test {:.1} s",
            r.test_error, r.test_examples, m.test_seconds
        );
    }
    let rates: Vec<String> = r.rates_hz.iter().map(|h| format!("{h:.1}")).collect();
    format!(
        "epoch {}: train error {:.2} %, test error {:.2} % ({} images), rates [{}] Hz, train {:.1} s ({:.3} ms/example), test {:.1} s",
        r.epoch,
        r.train_error,
        r.test_error,
        r.test_examples,
        rates.join(", "),
        m.train_seconds,
        1000.0 * m.seconds_per_train_example,
        m.test_seconds
    )
}
