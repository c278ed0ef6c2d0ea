//! What a run measures: the epoch's example order, test subsets, test evaluation and error
//! rates (section 8 of docs/model.md).

use crate::base::rng::{stream, Purpose};
use crate::io::mnist::MnistSet;
use crate::sim::network::Network;
use rand::seq::index::sample;
use rand::seq::SliceRandom;

/// The first `n` of an epoch's shuffle of the whole training set (section 8).
pub fn epoch_order(seed: u64, epoch: usize, total: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..total).collect();
    order.shuffle(&mut stream(seed, Purpose::Shuffle, &[epoch as u64]));
    order.truncate(n.min(total));
    order
}

/// Test images for an evaluation: all of them, or a seeded random subset (section 8).
pub fn test_subset(seed: u64, key: &[u64], total: usize, n: usize) -> Vec<usize> {
    if n >= total {
        return (0..total).collect();
    }
    sample(&mut stream(seed, Purpose::TestSubset, key), total, n).into_vec()
}

/// Percent of `predictions` that differ from the labels of `indices`.
pub fn error_percent(set: &MnistSet, indices: &[usize], predictions: &[u8]) -> f64 {
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

/// Key of the end-of-epoch test of `epoch` (1-based).
pub(crate) fn epoch_test_key(epoch: usize) -> u64 {
    epoch as u64
}

/// Key of quick test `q` inside epoch `epoch`.
pub(crate) fn quick_test_key(epoch: usize, q: usize) -> u64 {
    (1 << 48) | ((epoch as u64) << 24) | q as u64
}
