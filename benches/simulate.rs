//! `cargo bench`: one training example and one test example of the default 784-500-10
//! model on real MNIST images (skipped with a message when MNIST is not found). The full
//! table, with the dense baseline and thread scaling, is `apical bench`.

use apical::io::mnist::{find_data_dir, load_mnist, Mnist};
use apical::model::config::{ModelConfig, DEFAULT_MODEL_NAME, DEFAULT_MODEL_TOML};
use apical::sim::network::Network;
use apical::sim::observer::NoObserver;
use std::sync::OnceLock;

fn main() {
    if mnist().is_none() {
        eprintln!("MNIST not found (set APICAL_DATA): nothing to benchmark");
        return;
    }
    divan::main();
}

fn mnist() -> Option<&'static Mnist> {
    static DATA: OnceLock<Option<Mnist>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = find_data_dir(None).ok()?;
        load_mnist(&dir, false).ok()
    })
    .as_ref()
}

fn default_model() -> ModelConfig {
    ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, DEFAULT_MODEL_NAME)
        .expect("the embedded model is valid")
}

/// Times training examples (51 + 51 steps and learning), each continuing from the last.
fn bench_training(b: divan::Bencher, dense: bool) {
    let data = mnist().expect("checked in main");
    let mut net = Network::new(default_model(), 0);
    apical::app::bench::set_dense(&mut net, dense);
    net.start_epoch(0, 1);
    let mut k = 0usize;
    b.bench_local(|| {
        let i = k % data.train.len();
        k += 1;
        net.train_example(data.train.image(i), data.train.label(i), 51, 51)
            .predicted
    });
}

/// One training example, event-driven.
#[divan::bench(sample_count = 20, sample_size = 10)]
fn train_example(b: divan::Bencher) {
    bench_training(b, false);
}

/// One dense-baseline training example, for the ratio.
#[divan::bench(sample_count = 5, sample_size = 2)]
fn train_example_dense(b: divan::Bencher) {
    bench_training(b, true);
}

/// One test example (250 steps from a reset state), one thread.
#[divan::bench(sample_count = 10, sample_size = 4)]
fn test_example(b: divan::Bencher) {
    let data = mnist().expect("checked in main");
    let net = Network::new(default_model(), 0);
    let mut state = net.state.clone();
    let mut k = 0usize;
    b.bench_local(|| {
        let i = k % data.test.len();
        k += 1;
        Network::test_example(
            &net.model,
            &net.params,
            &mut state,
            data.test.image(i),
            &net.exec,
            &mut NoObserver,
        )
    });
}
