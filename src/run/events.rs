//! Run events: what happens in a training run (notices, epochs, examples, tests), for
//! whoever follows one: progress bars, logs, the Python callback, the trace recorder,
//! tests. One interface for all of them: [`RunEvents`]. Following the simulation inside an
//! example, step by step, is a different interface ([`crate::sim::observer::Observer`]),
//! which only the trainer's observer argument implements: a progress bar never sits on the
//! per-step path.

use crate::io::record::Recorder;
use crate::io::run_dir::EpochMetrics;
use crate::model::params::LayerParams;
use crate::sim::observer::NoObserver;

/// A training example that ran ([`RunEvents::example_end`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExampleDone {
    /// 1-based epoch.
    pub epoch: usize,
    /// 0-based position of the example in the epoch.
    pub example: usize,
    /// The forward phase's prediction.
    pub predicted: u8,
    /// The epoch's training error so far, percent (examples 0..=example, a resumed epoch
    /// counting those before its checkpoint).
    pub train_error: f64,
}

/// Called by [`crate::run::trainer::Trainer::run`], in this order: `epoch_start`, then for
/// each example `example_start` and `example_end` (with `quick_test` between examples when
/// the model file asks for quick tests), `testing`, `epoch_end`. The initial network's test
/// (epoch 0) is `testing(0, n)` and `epoch_end` of [`EpochMetrics::is_initial`] metrics.
/// Every method does nothing by default.
pub trait RunEvents {
    /// A message for the user (what is loaded, trained, resumed).
    fn notice(&mut self, _message: &str) {}
    /// An epoch starts (or resumes at example `first`) with `n_examples` examples.
    fn epoch_start(
        &mut self,
        _epoch: usize,
        _first: usize,
        _n_examples: usize,
        _params: &[LayerParams],
    ) {
    }
    /// Training example `example` of `epoch` (training image `image`) is about to run.
    fn example_start(&mut self, _epoch: usize, _example: usize, _image: usize, _label: u8) {}
    /// The example ran; `params` after its learning (with minibatches, after the batch's).
    fn example_end(&mut self, _done: &ExampleDone, _params: &[LayerParams]) {}
    /// A quick test of `error` percent after `example` examples of `epoch`.
    fn quick_test(&mut self, _epoch: usize, _example: usize, _error: f64) {}
    /// The test of `epoch` (0: the initial network) on `n` images begins.
    fn testing(&mut self, _epoch: usize, _n: usize) {}
    /// The epoch was tested, checkpointed and written to the metrics files.
    fn epoch_end(&mut self, _metrics: &EpochMetrics, _params: &[LayerParams]) {}
}

/// No output.
pub struct Quiet;
impl RunEvents for Quiet {}

impl RunEvents for NoObserver {}

impl<A: RunEvents, B: RunEvents> RunEvents for (A, B) {
    fn notice(&mut self, message: &str) {
        self.0.notice(message);
        self.1.notice(message);
    }
    fn epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        self.0.epoch_start(epoch, first, n, params);
        self.1.epoch_start(epoch, first, n, params);
    }
    fn example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        self.0.example_start(epoch, example, image, label);
        self.1.example_start(epoch, example, image, label);
    }
    fn example_end(&mut self, done: &ExampleDone, params: &[LayerParams]) {
        self.0.example_end(done, params);
        self.1.example_end(done, params);
    }
    fn quick_test(&mut self, epoch: usize, example: usize, error: f64) {
        self.0.quick_test(epoch, example, error);
        self.1.quick_test(epoch, example, error);
    }
    fn testing(&mut self, epoch: usize, n: usize) {
        self.0.testing(epoch, n);
        self.1.testing(epoch, n);
    }
    fn epoch_end(&mut self, metrics: &EpochMetrics, params: &[LayerParams]) {
        self.0.epoch_end(metrics, params);
        self.1.epoch_end(metrics, params);
    }
}

impl<H: RunEvents + ?Sized> RunEvents for &mut H {
    fn notice(&mut self, message: &str) {
        (**self).notice(message);
    }
    fn epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        (**self).epoch_start(epoch, first, n, params);
    }
    fn example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        (**self).example_start(epoch, example, image, label);
    }
    fn example_end(&mut self, done: &ExampleDone, params: &[LayerParams]) {
        (**self).example_end(done, params);
    }
    fn quick_test(&mut self, epoch: usize, example: usize, error: f64) {
        (**self).quick_test(epoch, example, error);
    }
    fn testing(&mut self, epoch: usize, n: usize) {
        (**self).testing(epoch, n);
    }
    fn epoch_end(&mut self, metrics: &EpochMetrics, params: &[LayerParams]) {
        (**self).epoch_end(metrics, params);
    }
}

/// The recorder follows the run through its own methods (the I/O layer does not know
/// about run events). Its traces hold the trained epochs: the initial test is not one.
impl RunEvents for Recorder {
    fn epoch_start(&mut self, epoch: usize, first: usize, n: usize, params: &[LayerParams]) {
        self.epoch_start(epoch, first, n, params);
    }
    fn example_start(&mut self, epoch: usize, example: usize, image: usize, label: u8) {
        self.example_start(epoch, example, image, label);
    }
    fn example_end(&mut self, done: &ExampleDone, params: &[LayerParams]) {
        self.example_end(done.predicted, params);
    }
    fn epoch_end(&mut self, metrics: &EpochMetrics, params: &[LayerParams]) {
        if !metrics.is_initial() {
            self.epoch_end(&metrics.record, params);
        }
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
