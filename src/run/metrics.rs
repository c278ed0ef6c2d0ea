//! What a run measures: the epoch's example order, test subsets, test evaluation and error
//! rates (section 8 of docs/model.md).

use crate::base::rng::{stream, Key, Purpose};
use crate::io::mnist::MnistSet;
use crate::sim::network::Network;
use rand::seq::index::sample;
use rand::seq::SliceRandom;
use std::sync::atomic::{AtomicBool, Ordering};

/// The first `n` of an epoch's shuffle of the whole training set (section 8).
pub(crate) fn epoch_order(seed: u64, epoch: usize, total: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..total).collect();
    order.shuffle(&mut stream(seed, Purpose::Shuffle, &[epoch as u64]));
    order.truncate(n.min(total));
    order
}

/// Test images for an evaluation: all of them, or a seeded random subset (section 8).
pub(crate) fn test_subset(seed: u64, key: &[u64], total: usize, n: usize) -> Vec<usize> {
    if n >= total {
        return (0..total).collect();
    }
    sample(&mut stream(seed, Purpose::TestSubset, key), total, n).into_vec()
}

/// Percent of `predictions` that differ from the labels of `indices`.
pub(crate) fn error_percent(set: &MnistSet, indices: &[usize], predictions: &[u8]) -> f64 {
    let wrong = indices
        .iter()
        .zip(predictions)
        .filter(|(&i, &p)| set.label(i) != p)
        .count();
    100.0 * wrong as f64 / indices.len().max(1) as f64
}

/// Tests `net` on `n` test images (a seeded subset when n < 10,000); returns
/// (indices, predictions).
pub fn evaluate(
    net: &Network,
    test: &MnistSet,
    seed: u64,
    key: u64,
    n: usize,
) -> (Vec<usize>, Vec<u8>) {
    let idx = test_subset(seed, &[key], test.len(), n);
    let preds = net.evaluate(seed, key, &idx, |i| test.image(i));
    (idx, preds)
}

/// Key of the end-of-epoch test of `epoch` (1-based); epoch 0 is the test of the initial
/// network before training.
pub(crate) fn epoch_test_key(epoch: usize) -> u64 {
    Key::EpochTest { epoch }.value()
}

/// Key of quick test `q` inside epoch `epoch`.
pub(crate) fn quick_test_key(epoch: usize, q: usize) -> u64 {
    Key::QuickTest { epoch, q }.value()
}

/// The result of [`evaluate_repeats`].
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The test images (indices into the test set), the same for every repeat.
    pub indices: Vec<usize>,
    /// Test error of each repeat, percent.
    pub errors: Vec<f64>,
    /// Confusion counts summed over the repeats: `confusion[true][predicted]`, one row and
    /// column per class of the network.
    pub confusion: Vec<Vec<u64>>,
}

impl Evaluation {
    /// Mean and sample standard deviation of the repeats' errors (sd 0 for one repeat).
    pub fn mean_sd(&self) -> (f64, f64) {
        let n = self.errors.len().max(1) as f64;
        let mean = self.errors.iter().sum::<f64>() / n;
        let var = if self.errors.len() > 1 {
            self.errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        (mean, var.sqrt())
    }
}

/// `repeats` spiking tests of the same weights on the same `n` test images (all of them
/// when n >= 10,000), each with spike streams of its own (the paper's averaged test). Repeat
/// 0 is what `apical eval` reports without `--repeats`.
pub fn evaluate_repeats(
    net: &Network,
    test: &MnistSet,
    seed: u64,
    epochs_done: usize,
    n: usize,
    repeats: usize,
) -> Evaluation {
    evaluate_repeats_until(
        net,
        test,
        seed,
        epochs_done,
        n,
        repeats,
        &AtomicBool::new(false),
    )
    .expect("never stopped")
}

/// Images tested between two looks at the stop flag of [`evaluate_repeats_until`], per
/// thread of the pool.
const STOP_CHUNK_PER_THREAD: usize = 32;

/// [`evaluate_repeats`] that ends early when `stop` is raised (the Python package's
/// Ctrl-C): the images are tested in chunks (32 per thread of the pool) and `stop` is read
/// between them; stopped, it returns `None`. An image's prediction does not depend on the
/// chunks (its spike streams are keyed by its index, its state reset), so an evaluation that
/// is not stopped is the same as [`evaluate_repeats`]'s.
pub fn evaluate_repeats_until(
    net: &Network,
    test: &MnistSet,
    seed: u64,
    epochs_done: usize,
    n: usize,
    repeats: usize,
    stop: &AtomicBool,
) -> Option<Evaluation> {
    let subset_key = Key::Eval { epochs_done }.value();
    let indices = test_subset(seed, &[subset_key], test.len(), n);
    let mut errors = Vec::with_capacity(repeats);
    let classes = net.model.cfg.network.classes;
    let mut confusion = vec![vec![0u64; classes]; classes];
    let chunk = STOP_CHUNK_PER_THREAD * rayon::current_num_threads().max(1);
    for repeat in 0..repeats.max(1) {
        let key = match repeat {
            0 => subset_key,
            r => Key::EvalRepeat {
                epochs_done,
                repeat: r,
            }
            .value(),
        };
        let mut preds = Vec::with_capacity(indices.len());
        for part in indices.chunks(chunk) {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            preds.extend(net.evaluate(seed, key, part, |i| test.image(i)));
        }
        errors.push(error_percent(test, &indices, &preds));
        for (&i, &p) in indices.iter().zip(&preds) {
            // A label past the network's classes (data checked against the model cannot
            // have one) is not counted.
            if let Some(row) = confusion.get_mut(test.label(i) as usize) {
                row[p as usize] += 1;
            }
        }
    }
    Some(Evaluation {
        indices,
        errors,
        confusion,
    })
}
