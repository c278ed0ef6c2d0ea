//! apical: spiking segregated-dendrite networks that learn with local rules, after
//! Guerguiev, Lillicrap & Richards, "Towards deep learning with segregated dendrites"
//! (eLife 2017). The model and its equations are in docs/model.md; the layers of this crate
//! and the per-step schedule in docs/architecture.md.
//!
//! Layers, each a folder whose `mod.rs` says what it owns and what it may use; dependencies
//! point one way, down this list:
//! - [`app`]: the benchmark harness, the paper's experiments, plots, parameter sweeps;
//! - [`run`]: training runs, run events, metrics, alignment diagnostics;
//! - [`io`]: checkpoints, MNIST, the run directory, HDF5 traces, atomic writes;
//! - [`sim`]: network state, the step schedule, observers, the execution context;
//! - [`model`]: the model file, parameters and the pure equations;
//! - [`base`]: random streams and SIMD helpers.
//!
//! The names a library user needs are re-exported here: build a model from a file or in
//! code ([`ModelConfig`], [`Override`]), train with a callback ([`train`] or a [`Trainer`]
//! with [`RunEvents`]), evaluate ([`evaluate_repeats`]),
//! simulate one example with an [`Observer`] ([`Network::train_example`],
//! [`Network::test_example`]), read and write checkpoints ([`RunDir`], [`Checkpoint`]) and
//! open traces ([`inspect`], docs/traces.md).
//!
//! # Example
//! Train a small network for one epoch on a few synthetic images, then test it. (Real runs
//! load MNIST with [`load_mnist`] or go through [`train`], which also writes the run
//! directory.)
//! ```
//! use apical::{evaluate_repeats, Mnist, MnistSet, ModelConfig, Network, Override};
//!
//! // The default 784-500-10 model, narrowed to 20 hidden neurons.
//! let model = ModelConfig::default_model()
//!     .with_overrides(&[Override::parse("network.hidden=[20]")?], "example")?;
//! // Ten 28x28 images, image k lit in rows 2k..2k+2 and labelled k.
//! let set = |n: usize| {
//!     let mut images = vec![0u8; n * 784];
//!     for i in 0..n {
//!         let k = i % 10;
//!         images[i * 784 + k * 56..i * 784 + k * 56 + 56].fill(255);
//!     }
//!     MnistSet { images, labels: (0..n).map(|i| (i % 10) as u8).collect(), rows: 28, cols: 28 }
//! };
//! let data = Mnist { train: set(20), test: set(10) };
//! let mut net = Network::new(model, 0);
//! net.start_epoch(0, 1);
//! for i in 0..data.train.len() {
//!     net.train_example(data.train.image(i), data.train.label(i), 50, 50);
//! }
//! let result = evaluate_repeats(&net, &data.test, 0, 1, 10, 2);
//! assert_eq!(result.errors.len(), 2);
//! assert!(result.errors.iter().all(|e| (0.0..=100.0).contains(e)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod app;
pub mod base;
pub mod io;
pub mod model;
pub mod run;
pub mod sim;

pub use io::checkpoint::Checkpoint;
pub use io::mnist::{find_data_dir, load_mnist, Mnist, MnistSet};
pub use io::record::inspect;
pub use io::run_dir::{RunDir, RunInfo};
pub use model::config::ModelConfig;
pub use model::overrides::Override;
pub use run::events::{Quiet, RunEvents};
pub use run::metrics::{evaluate_repeats, Evaluation};
pub use run::session::{train, Start, TrainOutcome, TrainRequest};
pub use run::trainer::Trainer;
pub use sim::exec::Exec;
pub use sim::network::Network;
pub use sim::observer::{NoObserver, Observer, Phase, StepInfo};
