//! The numerical pieces of the fast simulation step: the polynomial exp, the branch-free
//! spike draw, and bit-identical results across instruction sets and thread counts.

use apical::model::config::{ModelConfig, DEFAULT_MODEL_TOML};
use apical::model::neuron::{
    exp_small, fast_exp, no_spike_probability, poisson_count, poisson_count_upto3, poisson_tail,
    rates_and_spikes, Dynamics,
};
use apical::sim::network::Network;

/// fast_exp against f64 exp over the whole clamped range, every 2^-10 and at random points:
/// relative error below 1.5e-7 (measured: 9.8e-8, about one f32 ulp).
#[test]
fn fast_exp_relative_error_is_below_1_5e_minus_7() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x <= 88.0 {
        let e = (x as f64).exp();
        let rel = ((fast_exp(x) as f64 - e) / e).abs();
        worst = worst.max(rel);
        x += 1.0 / 1024.0;
    }
    eprintln!("fast_exp: worst relative error {worst:e}");
    assert!(worst < 1.5e-7, "worst relative error {worst}");
    // Exact at 0, and the clamp keeps the extremes finite and ordered.
    assert_eq!(fast_exp(0.0), 1.0);
    assert!(fast_exp(200.0).is_finite() && fast_exp(200.0) > 1e38);
    assert!(fast_exp(-200.0) > 0.0 && fast_exp(-200.0) < 1e-37);
}

/// exp_small on [-0.5, 0.5]: relative error below 1.5e-7.
#[test]
fn exp_small_relative_error_is_below_1_5e_minus_7() {
    let mut worst = 0.0f64;
    for i in -50_000..=50_000 {
        let x = i as f32 * 1e-5;
        let e = (x as f64).exp();
        worst = worst.max(((exp_small(x) as f64 - e) / e).abs());
    }
    eprintln!("exp_small: worst relative error {worst:e}");
    assert!(worst < 1.5e-7, "worst relative error {worst}");
}

/// The block spike draw gives exactly the counts of the scalar inversion (`poisson_tail`
/// from the same e^-lambda) for rates across the whole range and uniforms near the
/// thresholds, at the default lambda_max and at lambda_max = 4 (where counts of three and
/// more, finished by `poisson_tail`, are common); and within one of the libm-based
/// inversion.
#[test]
fn block_spike_draw_matches_scalar_inversion() {
    for lambda_max in [0.2, 4.0] {
        let mut cfg = ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, "default").unwrap();
        cfg.neuron.lambda_max = lambda_max;
        let d = Dynamics::new(&cfg.neuron);
        let n = 4003; // not a multiple of 8: the remainder path too
        let soma: Vec<f32> = (0..n).map(|i| -12.0 + 24.0 * i as f32 / n as f32).collect();
        // Uniforms spread over [0, 1), with a stretch close to 1 for counts above one.
        let uniforms: Vec<f32> = (0..n)
            .map(|i| {
                let u = ((i as u64 * 2_654_435_761) % 1_000_003) as f32 / 1_000_003.0;
                if i % 7 == 0 {
                    1.0 - u * 1e-3
                } else {
                    u
                }
            })
            .collect();
        let (mut rate, mut count, mut cand) = (vec![0.0; n], vec![0.0; n], vec![0u32; n + 8]);
        let mut events = vec![7, 7]; // appended to, not replaced
        rates_and_spikes(
            &d,
            &soma,
            &uniforms,
            &mut rate,
            &mut count,
            &mut cand,
            &mut events,
            1000,
        );
        let mut expected = vec![7, 7];
        let mut counts_seen = [0usize; 4];
        for i in 0..n {
            let l = rate[i];
            assert!((l - d.lambda_max / (1.0 + (-soma[i]).exp())).abs() <= 1e-6 * d.lambda_max);
            let p0 = no_spike_probability(&d, l);
            let k = if uniforms[i] >= p0 {
                poisson_tail(uniforms[i], l, p0)
            } else {
                0
            };
            // Same count as the libm-based inversion unless u sits within rounding of a step.
            let k_ref = poisson_count(uniforms[i], l);
            assert!(k.abs_diff(k_ref) <= 1, "neuron {i}: {k} vs {k_ref}");
            counts_seen[(k as usize).min(3)] += 1;
            for _ in 0..k {
                expected.push(1000 + i as u32);
            }
        }
        assert_eq!(events, expected, "lambda_max {lambda_max}");
        assert!(counts_seen[2] > 0, "the test reaches counts of two");
        if lambda_max > 1.0 {
            assert!(
                counts_seen[3] > 100,
                "the test reaches counts of three and more"
            );
        }
        assert!(events.len() > n / 20, "only {} spikes", events.len());
    }
}

/// The branch-free first steps of the inversion agree with `poisson_tail` wherever they
/// give a definite count (0, 1, 2), and say "3" exactly when it gives three or more.
#[test]
fn poisson_count_upto3_agrees_with_poisson_tail() {
    for lambda in [1e-30f32, 1e-7, 0.01, 0.2, 0.5, 1.0, 3.0] {
        let p0 = (-lambda).exp();
        for i in 0..200_000 {
            let u = (i as f32 + 0.5) / 200_000.0;
            let want = if u >= p0 {
                poisson_tail(u, lambda, p0)
            } else {
                0
            };
            let got = poisson_count_upto3(u, lambda, p0);
            assert_eq!(got, f32::from(want.min(3)), "lambda {lambda}, u {u}");
        }
        // Right at the thresholds.
        for u in [p0, p0 + p0 * lambda] {
            let want = poisson_tail(u, lambda, p0);
            assert_eq!(poisson_count_upto3(u, lambda, p0), f32::from(want.min(3)));
        }
    }
}

fn train_weights(examples: usize) -> Vec<Vec<f32>> {
    let cfg = ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, "default").unwrap();
    let mut net = Network::new(cfg, 11);
    net.start_epoch(11, 1);
    for e in 0..examples {
        let image: Vec<u8> = (0..784)
            .map(|i| if (i * 7 + e * 13) % 11 < 3 { 255 } else { 0 })
            .collect();
        net.train_example(&image, (e % 10) as u8, 51, 52);
    }
    net.params.iter().map(|p| p.w.clone()).collect()
}

/// The SSE2, AVX2 and AVX-512 builds of the step (those this CPU has) give bit-identical
/// weights, and so do serial and parallel neuron blocks.
#[test]
fn instruction_set_and_parallel_blocks_do_not_change_results() {
    use apical::base::simd::{detect, force_level, Level};
    force_level(Level::Baseline);
    let base = train_weights(3);
    for level in [Level::Avx2, Level::Avx512] {
        if detect() >= level {
            force_level(level);
            assert_eq!(train_weights(3), base, "{level:?} against SSE2");
        } else {
            eprintln!("this CPU has no {level:?}: not compared");
        }
    }
    force_level(Level::Avx512);

    let cfg = ModelConfig::from_toml_str(DEFAULT_MODEL_TOML, "default").unwrap();
    let run = |parallel_min: usize| {
        let mut net = Network::new(cfg.clone(), 4);
        net.exec.threads = 2;
        net.exec.parallel_min = parallel_min;
        net.start_epoch(4, 1);
        let image: Vec<u8> = (0..784).map(|i| ((i * 31) % 256) as u8).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for _ in 0..2 {
                net.train_example(&image, 7, 50, 50);
            }
        });
        net.params
    };
    assert_eq!(run(usize::MAX), run(0));
}

/// The lane generator: a pure function of its seed stream, uniforms in [0, 1) with mean
/// 1/2 and variance 1/12 (4-sigma tolerances), and a partial last chunk that continues the
/// same sequence layout.
#[test]
fn lane_rng_is_seeded_uniform_and_reproducible() {
    use apical::base::rng::{stream, LaneRng, Purpose, LANES};
    let mut a = LaneRng::new(stream(1, Purpose::TrainSpikes, &[3]));
    let mut b = LaneRng::new(stream(1, Purpose::TrainSpikes, &[3]));
    let mut c = LaneRng::new(stream(1, Purpose::TrainSpikes, &[4]));
    let n = 1_000_000;
    let (mut x, mut y, mut z) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    a.fill_uniforms(&mut x);
    b.fill_uniforms(&mut y);
    c.fill_uniforms(&mut z);
    assert_eq!(x, y);
    assert_ne!(x, z);
    assert!(x.iter().all(|&u| (0.0..1.0).contains(&u)));
    let mean = x.iter().map(|&u| u as f64).sum::<f64>() / n as f64;
    let var = x.iter().map(|&u| (u as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    let sd_mean = (1.0f64 / 12.0 / n as f64).sqrt();
    assert!((mean - 0.5).abs() < 4.0 * sd_mean, "mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 4e-4, "variance {var}");
    // Neighbouring uniforms (different lanes or halves) are uncorrelated.
    let cov = x
        .windows(2)
        .map(|w| (w[0] as f64 - 0.5) * (w[1] as f64 - 0.5))
        .sum::<f64>()
        / (n - 1) as f64;
    assert!(
        cov.abs() < 4.0 / 12.0 / (n as f64).sqrt(),
        "lag-1 covariance {cov}"
    );
    // A block of 2 * LANES + 5 uniforms: the last 5 are the first 5 of the next full draw.
    let mut p = LaneRng::new(stream(2, Purpose::TrainSpikes, &[0]));
    let mut q = p.clone();
    let mut short = vec![0.0f32; 2 * LANES + 5];
    p.fill_uniforms(&mut short);
    let mut full = vec![0.0f32; 4 * LANES];
    q.fill_uniforms(&mut full);
    assert_eq!(short[..], full[..2 * LANES + 5]);
}
