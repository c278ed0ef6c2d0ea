//! A run is a pure function of (model, data, seed): the same weights at any thread count.

use apical::base::rng::{stream, Purpose};
use apical::model::config::ModelConfig;
use apical::model::phases::phase_lengths;
use apical::sim::network::Network;

/// A synthetic image set (no data files needed): bars whose position encodes the class.
fn images(n: usize) -> Vec<(Vec<u8>, u8)> {
    (0..n)
        .map(|i| {
            let label = (i % 10) as u8;
            let mut img = vec![0u8; 784];
            for r in 0..28 {
                for c in 0..3 {
                    img[r * 28 + 2 + 2 * label as usize + c] = 200 + (i % 50) as u8;
                }
            }
            (img, label)
        })
        .collect()
}

/// Trains 30 examples with hidden blocks of 64 neurons shared among `threads` threads,
/// then tests 40 images on a pool of as many; returns the weights and predictions.
fn run(threads: usize) -> (Vec<Vec<f32>>, Vec<u8>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut cfg = ModelConfig::default_model();
        cfg.network.hidden = vec![300];
        cfg.training.block_size = 64;
        let mut net = Network::new(cfg.clone(), 5);
        // Forced: Exec::for_threads would keep a 300-neuron layer on one thread.
        net.exec.threads = threads;
        net.exec.parallel_min = 1;
        let data = images(40);
        let (l_f, l_t) = phase_lengths(&cfg, 30, &mut stream(5, Purpose::PhaseLengths, &[1]));
        net.start_epoch(5, 1);
        for k in 0..30 {
            net.train_example(&data[k].0, data[k].1, l_f[k], l_t[k]);
        }
        let idx: Vec<usize> = (0..40).collect();
        let preds = net.evaluate(5, 1, &idx, |i| &data[i].0);
        let weights = net
            .params
            .iter()
            .flat_map(|p| [p.w.clone(), p.b.clone()])
            .collect();
        (weights, preds)
    })
}

#[test]
fn same_seed_gives_bit_identical_weights_at_1_and_2_threads() {
    let (w1, p1) = run(1);
    let (w2, p2) = run(2);
    assert_eq!(p1, p2, "test predictions differ between 1 and 2 threads");
    for (a, b) in w1.iter().zip(&w2) {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "weights differ"
        );
    }
    // The weights moved (the comparison is not between two untouched initialisations).
    let fresh = Network::new(
        {
            let mut c = ModelConfig::default_model();
            c.network.hidden = vec![300];
            c.training.block_size = 64;
            c
        },
        5,
    );
    assert_ne!(fresh.params[0].w, w1[0]);
}

#[test]
fn different_seeds_give_different_weights() {
    let cfg = ModelConfig::default_model();
    let a = Network::new(cfg.clone(), 1);
    let b = Network::new(cfg, 2);
    assert_ne!(a.params[0].w, b.params[0].w);
}

/// Training state and parameters as bytes (the checkpoint's encoding).
fn bytes<T: serde::Serialize>(x: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(x, bincode::config::standard()).unwrap()
}

/// A layer wide enough for `Exec::for_threads` (1100 neurons: blocks of 512, 512 and 76),
/// trained with the blocks and the weight update shared among 2 and 3 threads: the same
/// weights and the same state (potentials, PSP histories, every block's random stream),
/// byte for byte, as on one thread; and a mid-run change of the thread count changes
/// nothing either.
#[test]
fn a_wide_layer_on_2_and_3_threads_gives_the_bytes_of_one_thread() {
    let mut cfg = ModelConfig::default_model();
    cfg.network.hidden = vec![1100];
    let data = images(12);
    let n = 10;
    let (l_f, l_t) = phase_lengths(&cfg, n, &mut stream(7, Purpose::PhaseLengths, &[1]));
    let run = |threads: &dyn Fn(usize) -> usize| {
        let mut net = Network::new(cfg.clone(), 7);
        net.start_epoch(7, 1);
        for k in 0..n {
            net.set_threads(threads(k));
            // Always the team (not the faster of team and one thread by timing).
            net.exec.adaptive = false;
            net.train_example(&data[k].0, data[k].1, l_f[k], l_t[k]);
        }
        (bytes(&net.params), bytes(&net.state))
    };
    let one = run(&|_| 1);
    for t in [2, 3] {
        let mut net = Network::new(cfg.clone(), 7);
        net.set_threads(t);
        assert_eq!(
            net.exec.threads, t,
            "1100 neurons in 3 blocks: shared on {t} threads"
        );
        assert_eq!(
            net.exec.parallel(10).threads,
            1,
            "the output layer stays on one thread"
        );
        let many = run(&|_| t);
        assert!(one.0 == many.0, "parameters differ on {t} threads");
        assert!(one.1 == many.1, "state differs on {t} threads");
    }
    let mixed = run(&|k| 1 + k % 3);
    assert!(
        one.0 == mixed.0 && one.1 == mixed.1,
        "changing threads mid-run"
    );
    // The comparison is not between untouched networks: learning moved the weights.
    assert!(bytes(&Network::new(cfg.clone(), 7).params) != one.0);
}

/// Counts what the schedule told it: steps watched one by one, steps run layer by layer.
struct StepCounter {
    watches: bool,
    watched: usize,
    unwatched: usize,
}

impl apical::sim::observer::Observer for StepCounter {
    fn reads_apical(&self) -> bool {
        false
    }
    fn watches_steps(&self) -> bool {
        self.watches
    }
    fn on_step(&mut self, _info: &apical::sim::observer::StepInfo<'_>) {
        self.watched += 1;
    }
    fn on_steps_unwatched(&mut self, _phase: apical::sim::observer::Phase, steps: usize) {
        self.unwatched += steps;
    }
}

/// Where no observer watches the steps, a network whose wide layers are shared among
/// threads runs each phase layer by layer (one hand-over to the team per phase): two wide
/// hidden layers with broadcast and with next-layer feedback, and learned feedback (its
/// presynaptic means), give the parameters and state of the per-step schedule byte for
/// byte, on one thread and on the team.
#[test]
fn phases_run_layer_by_layer_give_the_bytes_of_the_per_step_schedule() {
    let base = ModelConfig::default_model();
    let mut two_wide = base.clone();
    two_wide.network.hidden = vec![1100, 1100];
    two_wide.learning.eta = vec![0.2, 0.2, 0.2];
    let mut next_layer = two_wide.clone();
    next_layer.network.feedback = apical::model::config::FeedbackSource::NextLayer;
    let mut learned = base.clone();
    learned.network.hidden = vec![1100];
    learned.learning.feedback_mode = apical::model::config::FeedbackMode::Learned;
    learned.learning.eta_feedback = vec![0.05];
    let data = images(8);
    let n = 6;
    for (name, cfg) in [
        ("two wide", two_wide),
        ("next layer", next_layer),
        ("learned", learned),
    ] {
        let cfg = ModelConfig::from_toml_str(&cfg.to_toml_string(), name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (l_f, l_t) = phase_lengths(&cfg, n, &mut stream(3, Purpose::PhaseLengths, &[1]));
        let run = |threads: usize, watches: bool| {
            let mut net = Network::new(cfg.clone(), 3);
            net.start_epoch(3, 1);
            net.set_threads(threads);
            net.exec.adaptive = false;
            let mut obs = StepCounter {
                watches,
                watched: 0,
                unwatched: 0,
            };
            for k in 0..n {
                net.train_example_observed(&data[k].0, data[k].1, l_f[k], l_t[k], &mut obs);
            }
            let steps: usize = l_f[..n].iter().chain(&l_t[..n]).sum();
            assert_eq!(obs.watched + obs.unwatched, steps, "{name}");
            (bytes(&net.params), bytes(&net.state), obs.unwatched)
        };
        let per_step = run(1, false);
        assert_eq!(per_step.2, 0, "{name}: one thread runs step by step");
        let watched = run(2, true);
        assert_eq!(watched.2, 0, "{name}: a watching observer sees every step");
        let by_layer = run(2, false);
        assert!(by_layer.2 > 0, "{name}: the team ran phases layer by layer");
        for (other, what) in [
            (&watched, "per step on 2 threads"),
            (&by_layer, "layer by layer"),
        ] {
            assert!(per_step.0 == other.0, "{name}: parameters differ ({what})");
            assert!(per_step.1 == other.1, "{name}: state differs ({what})");
        }
    }
}
