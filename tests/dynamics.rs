//! The numerical core against closed forms: PSP kernel, Poisson input and spikes, somatic
//! updates, weight initialisation.

use apical::base::rng::{stream, LaneRng, Purpose};
use apical::model::config::{InputDraw, ModelConfig, PspKernel, SynapseConfig};
use apical::model::init::{init_params, weight_stats};
use apical::model::input::PoissonInput;
use apical::model::neuron::{self, Dynamics};
use apical::model::synapse::{kappa, Kernel, PresynapticWindow, PspTrace};
use apical::sim::network::Model;
use approx::assert_relative_eq;

fn kernel(kind: PspKernel) -> Kernel {
    let cfg = SynapseConfig {
        psp_kernel: kind,
        ..Default::default()
    };
    Kernel::new(&cfg, 1.0)
}

/// Runs a one-neuron PSP trace with unit weight over `steps`, spikes given as step -> count;
/// returns the potential at every step.
fn trace_of(kind: PspKernel, spikes: &[(usize, u32)], steps: usize) -> Vec<f64> {
    let k = kernel(kind);
    let mut tr = PspTrace::new(&k, 1);
    let mut out = [0.0f32];
    (0..steps)
        .map(|t| {
            let u = tr.begin_step();
            u[0] = spikes.iter().filter(|s| s.0 == t).map(|s| s.1 as f32).sum();
            tr.end_step(&k);
            tr.potential_into(&k, &[0.0], &mut out);
            out[0] as f64
        })
        .collect()
}

/// The closed form: s(t) = sum_k kappa(t - t_k + 1), truncated to lags <= mem if `mem` is set.
fn closed_form(spikes: &[(usize, u32)], t: usize, mem: Option<usize>) -> f64 {
    spikes
        .iter()
        .filter(|s| s.0 <= t)
        .map(|&(tk, c)| {
            let lag = t - tk + 1;
            if mem.is_some_and(|m| lag > m) {
                0.0
            } else {
                c as f64 * kappa(lag as f64, 10.0, 3.0)
            }
        })
        .sum()
}

#[test]
fn kernel_closed_form_values() {
    // kappa(1) = (e^-0.1 - e^-1/3) / 7, by hand: (0.904837 - 0.716531) / 7 = 0.0269009
    assert_relative_eq!(kappa(1.0, 10.0, 3.0), 0.026_900_9, max_relative = 1e-5);
    // The truncated kernel's 10 taps sum to 0.5104 (about half the full area, which is 1).
    let k = kernel(PspKernel::Truncated);
    let s: f64 = k.taps.iter().map(|&x| x as f64).sum();
    assert_relative_eq!(s, 0.510_408_5, max_relative = 1e-5);
}

#[test]
fn psp_after_one_spike_is_the_kernel() {
    let spikes = [(3, 1)];
    let tr = trace_of(PspKernel::Truncated, &spikes, 30);
    for (t, &v) in tr.iter().enumerate() {
        let want = closed_form(&spikes, t, Some(10));
        assert_relative_eq!(v, want, epsilon = 1e-7);
    }
    // A spike at step 3 contributes kappa(1) at step 3 and nothing from step 13 on.
    assert_relative_eq!(tr[3], kappa(1.0, 10.0, 3.0), max_relative = 1e-6);
    assert_eq!(tr[13], 0.0);
    let full = trace_of(PspKernel::Full, &spikes, 60);
    for (t, &v) in full.iter().enumerate() {
        assert_relative_eq!(v, closed_form(&spikes, t, None), epsilon = 1e-6);
    }
    assert!(
        full[20] > 0.01,
        "the full kernel keeps a tail beyond 10 steps"
    );
}

#[test]
fn psp_after_a_spike_train() {
    let spikes = [(0, 1), (2, 1), (3, 2), (9, 1), (11, 3), (25, 1)];
    let tr = trace_of(PspKernel::Truncated, &spikes, 40);
    for (t, &v) in tr.iter().enumerate() {
        assert_relative_eq!(v, closed_form(&spikes, t, Some(10)), epsilon = 1e-6);
    }
    let full = trace_of(PspKernel::Full, &spikes, 80);
    for (t, &v) in full.iter().enumerate() {
        assert_relative_eq!(v, closed_form(&spikes, t, None), epsilon = 1e-5);
    }
}

#[test]
fn phase_average_of_psp_matches_direct_average() {
    // Eq. 5.6 event by event equals averaging the closed-form PSP over the last 20 steps.
    let spikes = [(5, 1), (21, 1), (30, 2), (31, 1), (36, 1), (44, 1), (49, 1)];
    let len = 50;
    for kind in [PspKernel::Truncated, PspKernel::Full] {
        let k = kernel(kind);
        let mut w = PresynapticWindow::new(&k, 1, 20);
        w.start_phase();
        for t in 0..len {
            let ev: Vec<u32> = spikes
                .iter()
                .filter(|s| s.0 == t)
                .flat_map(|s| std::iter::repeat_n(0u32, s.1 as usize))
                .collect();
            w.add_step(&k, &ev, len - 1 - t);
        }
        let mem = (kind == PspKernel::Truncated).then_some(10);
        let direct: f64 = (len - 20..len)
            .map(|t| closed_form(&spikes, t, mem))
            .sum::<f64>()
            / 20.0;
        assert_relative_eq!(w.mean[0] as f64, direct, epsilon = 1e-6);
    }
}

#[test]
fn phase_average_of_poisson_input_equals_rate_times_kernel_area() {
    // For Poisson input of rate lambda, E[s_f] = lambda * sum_{d=1..10} kappa(d) (analytic).
    let k = kernel(PspKernel::Truncated);
    let area: f64 = (1..=10).map(|d| kappa(d as f64, 10.0, 3.0)).sum();
    let mut input = PoissonInput::new(2, 0.2, InputDraw::Poisson);
    let mut rng = LaneRng::new(stream(7, Purpose::TrainInput, &[]));
    input.set_image(&[255, 128]);
    let mut w = PresynapticWindow::new(&k, 2, 20);
    let phases = 4000;
    let mut sums = [0.0f64; 2];
    let mut sq = [0.0f64; 2];
    for _ in 0..phases {
        w.start_phase();
        for t in 0..50 {
            let ev = input.step(&mut rng).to_vec();
            w.add_step(&k, &ev, 49 - t);
        }
        for j in 0..2 {
            sums[j] += w.mean[j] as f64;
            sq[j] += (w.mean[j] as f64).powi(2);
        }
    }
    for (j, lambda) in [0.2, 0.2 * 128.0 / 255.0].into_iter().enumerate() {
        let mean = sums[j] / phases as f64;
        let sd = (sq[j] / phases as f64 - mean * mean).sqrt();
        let se = sd / (phases as f64).sqrt();
        let want = lambda * area;
        // Within 5 standard errors of the analytic mean.
        assert!(
            (mean - want).abs() < 5.0 * se,
            "unit {j}: mean {mean}, analytic {want}, se {se}"
        );
    }
}

#[test]
fn poisson_input_counts_match_rates() {
    let pixels = [0u8, 32, 128, 255];
    let steps = 200_000;
    for draw in [InputDraw::Poisson, InputDraw::Bernoulli] {
        let mut input = PoissonInput::new(4, 0.2, draw);
        let mut rng = LaneRng::new(stream(1, Purpose::TrainInput, &[draw as u64]));
        input.set_image(&pixels);
        let mut counts = [0u64; 4];
        let mut multi = [0u64; 4];
        let mut per_step = [0u32; 4];
        for _ in 0..steps {
            per_step.fill(0);
            for &j in input.step(&mut rng) {
                per_step[j as usize] += 1;
            }
            for j in 0..4 {
                counts[j] += per_step[j] as u64;
                multi[j] += (per_step[j] > 1) as u64;
            }
        }
        assert_eq!(counts[0], 0, "zero intensity gives no spikes");
        for j in 1..4 {
            let lambda = 0.2 * pixels[j] as f64 / 255.0;
            let p = lambda;
            let mean = p * steps as f64;
            // Binomial/Poisson sd of the total; 5 sd is a false-alarm rate below 1e-6.
            let sd =
                (steps as f64 * p * (1.0 - if draw == InputDraw::Bernoulli { p } else { 0.0 }))
                    .sqrt();
            assert!(
                (counts[j] as f64 - mean).abs() < 5.0 * sd,
                "{draw:?} unit {j}: {} spikes, expected {mean:.0} +- {sd:.0}",
                counts[j]
            );
            // Poisson counts exceed one with probability 1 - e^-l (1 + l); Bernoulli never.
            let p2 = 1.0 - (-lambda).exp() * (1.0 + lambda);
            match draw {
                InputDraw::Poisson => {
                    let sd2 = (steps as f64 * p2).sqrt();
                    assert!((multi[j] as f64 - p2 * steps as f64).abs() < 5.0 * sd2 + 1.0);
                }
                InputDraw::Bernoulli => assert_eq!(multi[j], 0),
            }
        }
    }
}

/// At rates where counts of three and more are common (lambda_max = 3), the input's counts
/// per step follow the Poisson pmf, tail included.
#[test]
fn poisson_input_counts_follow_the_pmf_at_high_rates() {
    let steps = 200_000;
    let mut input = PoissonInput::new(1, 3.0, InputDraw::Poisson);
    let mut rng = LaneRng::new(stream(5, Purpose::TrainInput, &[]));
    input.set_image(&[255]);
    let mut hist = [0u64; 16];
    for _ in 0..steps {
        let k = input.step(&mut rng).len().min(15);
        hist[k] += 1;
    }
    let lambda = 3.0f64;
    let mut pmf = (-lambda).exp();
    for (k, &h) in hist.iter().enumerate().take(9) {
        if k > 0 {
            pmf *= lambda / k as f64;
        }
        let want = pmf * steps as f64;
        let sd = (steps as f64 * pmf * (1.0 - pmf)).sqrt();
        assert!(
            (h as f64 - want).abs() < 5.0 * sd,
            "count {k}: {h} steps, expected {want:.0} +- {sd:.0}"
        );
    }
}

#[test]
fn poisson_count_inverts_the_cdf() {
    // On a fine uniform grid the fraction of u giving k equals the Poisson pmf.
    for lambda in [0.05f32, 0.2, 1.5] {
        let n = 1_000_000;
        let mut hist = [0u32; 12];
        for i in 0..n {
            let u = (i as f32 + 0.5) / n as f32;
            let k = neuron::poisson_count(u, lambda) as usize;
            hist[k.min(11)] += 1;
        }
        let mut pmf = (-lambda as f64).exp();
        for (k, &h) in hist.iter().enumerate().take(6) {
            if k > 0 {
                pmf *= lambda as f64 / k as f64;
            }
            assert!(
                (h as f64 / n as f64 - pmf).abs() < 2e-5,
                "lambda {lambda} k {k}: {} vs {pmf}",
                h as f64 / n as f64
            );
        }
    }
    assert_eq!(neuron::poisson_count(0.5, 0.0), 0);
}

fn default_dynamics() -> Dynamics {
    Dynamics::new(&ModelConfig::default_model().neuron)
}

#[test]
fn hidden_soma_converges_to_k_b_times_basal() {
    let d = default_dynamics();
    assert_relative_eq!(d.k_b, 0.6 / 0.7, max_relative = 1e-6);
    let mut c = [0.0f32];
    // One step by hand: C = 0 + (-0.1*0 + 0.6*(2-0)) = 1.2
    neuron::hidden_soma_step(&d, &mut c, &[2.0], &[5.0]);
    assert_relative_eq!(c[0], 1.2, max_relative = 1e-6);
    for _ in 0..200 {
        neuron::hidden_soma_step(&d, &mut c, &[2.0], &[5.0]);
    }
    // g_A = 0: the apical potential does not reach the soma; C* = k_B B.
    assert_relative_eq!(c[0], d.k_b * 2.0, max_relative = 1e-5);
}

#[test]
fn output_soma_target_phase_alternates_to_its_fixed_point() {
    let d = default_dynamics();
    let b = 1.5f32;
    let mut up = [0.0f32];
    let mut down = [0.0f32];
    let mut prev = 0.0;
    let mut flips = 0;
    for t in 0..300 {
        neuron::output_soma_step(&d, &mut up, &[b], Some(&[1.0]));
        neuron::output_soma_step(&d, &mut down, &[b], Some(&[0.0]));
        let dev = up[0] - (0.6 * b + 8.0) / 1.7;
        if t > 0 && dev * prev < 0.0 {
            flips += 1;
        }
        prev = dev;
    }
    // C <- -0.7 C + g_D B + 8 converges, alternating, to (g_D B +- 8) / 1.7 (section 4).
    assert_relative_eq!(up[0], (0.6 * b + 8.0) / 1.7, max_relative = 1e-5);
    assert_relative_eq!(down[0], (0.6 * b - 8.0) / 1.7, max_relative = 1e-5);
    assert!(
        flips > 10,
        "forward Euler with factor -0.7 alternates in sign"
    );
    let mut fwd = [0.0f32];
    for _ in 0..300 {
        neuron::output_soma_step(&d, &mut fwd, &[b], None);
    }
    assert_relative_eq!(fwd[0], d.k_d * b, max_relative = 1e-5);
}

#[test]
fn weight_initialisation_matches_section_7() {
    let cfg = ModelConfig::default_model();
    // Hand-evaluated eqs. 7.1-7.3 for fan-in 784 and 500 (nu = 0.05, V_sm = 18).
    let (a, s) = weight_stats(&cfg.init, 0.2, 784);
    assert_relative_eq!(a, 0.018_707_483, max_relative = 1e-7);
    assert_relative_eq!(s, 0.504_903_016, max_relative = 1e-7);
    let (ya, ys) = weight_stats(&cfg.init, 0.2, 500);
    assert_relative_eq!(ya, 0.029_333_333, max_relative = 1e-7);
    assert_relative_eq!(ys, 0.632_115_320, max_relative = 1e-7);
    let model = Model::new(cfg);
    let p = init_params(&model.cfg, &mut stream(3, Purpose::Init, &[]));
    let stats = |v: &[f32]| {
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / v.len() as f64;
        (m, var.sqrt())
    };
    // W: uniform avg +- 3.465 W_sd, so sd = 2 W_sd; 392,000 draws.
    let (m, sd) = stats(&p[0].w);
    assert!((m - a).abs() < 0.01, "hidden W mean {m}");
    assert_relative_eq!(sd, 3.465 / 3f64.sqrt() * s, max_relative = 0.01);
    let h = 3.465 * s;
    assert!(p[0].w.iter().all(|&w| (w as f64 - a).abs() <= h + 1e-6));
    // Y: broadcast from the output, positive mean (about 14.7 / 500).
    let (ym, ysd) = stats(&p[0].y);
    assert!((ym - ya).abs() < 0.03, "Y mean {ym}");
    assert_relative_eq!(ysd, 3.465 / 3f64.sqrt() * ys, max_relative = 0.03);
    assert_eq!(p[0].y.len(), 500 * 10);
    // Biases: 0.8 +- 3.465 * 0.001.
    assert!(p[0]
        .b
        .iter()
        .chain(&p[1].b)
        .all(|&b| (b - 0.8).abs() <= 0.003_466));
    assert!(
        p[1].y.is_empty(),
        "the output layer has no feedback weights"
    );
}

/// The truncated kernel as traces with delayed removal (eq. 2.5, the basal input's form)
/// gives the closed form of the truncated PSP, spikes of count two included.
#[test]
fn delayed_traces_match_the_truncated_closed_form() {
    let k = kernel(PspKernel::Truncated);
    let spikes = [(0usize, 1u32), (3, 2), (4, 1), (20, 1), (25, 3)];
    let mut tr = PspTrace::with_traces(&k, 1);
    let mut out = [0.0f32];
    for t in 0..60 {
        let events: Vec<u32> = spikes
            .iter()
            .filter(|s| s.0 == t)
            .flat_map(|s| std::iter::repeat_n(0u32, s.1 as usize))
            .collect();
        tr.push_rows(&k, &[1.0], 1, 0, &events);
        tr.potential_into(&k, &[0.5], &mut out);
        let want = 0.5 + closed_form(&spikes, t, Some(10));
        assert_relative_eq!(out[0] as f64, want, max_relative = 1e-6, epsilon = 1e-7);
    }
}

/// Over a long run of random input (20,000 steps, 64 neurons, random signed weights) the
/// delayed traces stay within rounding of the 10-term ring sum: no drift.
#[test]
fn delayed_traces_do_not_drift_from_the_ring_sum() {
    use rand::RngExt as _;
    let k = kernel(PspKernel::Truncated);
    let (n, n_in) = (64, 50);
    let mut rng = stream(3, Purpose::Init, &[]);
    let w: Vec<f32> = (0..n * n_in)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let bias = vec![0.25f32; n];
    let mut ring = PspTrace::new(&k, n);
    let mut traces = PspTrace::with_traces(&k, n);
    let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut worst = 0.0f64;
    for t in 0..20_000 {
        // Quiet stretches (no input) as well as busy ones.
        let m = if (t / 500) % 4 == 3 {
            0
        } else {
            rng.random_range(0..12)
        };
        let events: Vec<u32> = (0..m).map(|_| rng.random_range(0..n_in as u32)).collect();
        ring.push_rows(&k, &w, n, 0, &events);
        traces.push_rows(&k, &w, n, 0, &events);
        ring.potential_into(&k, &bias, &mut a);
        traces.potential_into(&k, &bias, &mut b);
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x - y).abs() as f64);
        }
    }
    eprintln!("delayed traces against the ring sum: worst difference {worst:e}");
    // Potentials are of order 1; single-precision rounding of a few terms.
    assert!(worst < 1e-5, "worst difference {worst}");
}
