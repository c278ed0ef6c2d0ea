//! Postsynaptic potentials: the PSP kernel (eq. 2.1) and its event-driven evaluation.
//!
//! A layer never forms per-input PSPs. Each step the weight rows of the inputs that spiked
//! are summed into u(t) (one contiguous row per spike), and the dendritic potential is
//! B(t) = sum_{d=1..mem} kappa(d) u(t-d+1) + b (eq. 2.3), a short sum over a ring buffer of
//! u. With the full kernel the same sum is two exponential traces (eq. 2.4).

use crate::model::config::{PspKernel, SynapseConfig};
use serde::{Deserialize, Serialize};

/// Eq. 2.1: kappa(t) = (exp(-t/tau_L) - exp(-t/tau_s)) / (tau_L - tau_s).
pub fn kappa(t: f64, tau_l: f64, tau_s: f64) -> f64 {
    ((-t / tau_l).exp() - (-t / tau_s).exp()) / (tau_l - tau_s)
}

/// The kernel as the simulation uses it: kappa at lags 1..=mem steps (eq. 2.2: a spike at
/// step k contributes kappa(1) at step k), or the trace decays of the full kernel.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub kind: PspKernel,
    /// kappa(d * dt) for d = 1..=mem (truncated kernel).
    pub taps: Vec<f32>,
    /// exp(-dt/tau_L), exp(-dt/tau_s) (full kernel).
    pub decay_l: f32,
    pub decay_s: f32,
    /// 1 / (tau_L - tau_s).
    pub norm: f32,
    /// exp(-(mem + 1) dt/tau_L), exp(-(mem + 1) dt/tau_s): what a spike's weight in the
    /// traces has become when it leaves the truncated window (eq. 2.5).
    pub cut_l: f32,
    pub cut_s: f32,
    tau_l: f64,
    tau_s: f64,
    dt: f64,
}

impl Kernel {
    pub fn new(cfg: &SynapseConfig, dt: f64) -> Self {
        let taps = (1..=cfg.psp_window_steps)
            .map(|d| kappa(d as f64 * dt, cfg.tau_l, cfg.tau_s) as f32)
            .collect();
        Kernel {
            kind: cfg.psp_kernel,
            taps,
            decay_l: (-dt / cfg.tau_l).exp() as f32,
            decay_s: (-dt / cfg.tau_s).exp() as f32,
            norm: (1.0 / (cfg.tau_l - cfg.tau_s)) as f32,
            cut_l: (-((cfg.psp_window_steps + 1) as f64) * dt / cfg.tau_l).exp() as f32,
            cut_s: (-((cfg.psp_window_steps + 1) as f64) * dt / cfg.tau_s).exp() as f32,
            tau_l: cfg.tau_l,
            tau_s: cfg.tau_s,
            dt,
        }
    }

    /// kappa at lag d steps (d >= 1) as this kernel counts it: 0 beyond the window when
    /// truncated.
    pub(crate) fn at_lag(&self, d: usize) -> f64 {
        match self.kind {
            PspKernel::Truncated if d > self.taps.len() => 0.0,
            _ => kappa(d as f64 * self.dt, self.tau_l, self.tau_s),
        }
    }

    /// Eq. 5.6: weight of a spike emitted `q` steps before the last step of a phase in the
    /// mean PSP over that phase's last `window` steps: (1/window) sum of kappa(d) over the
    /// lags d at which the spike is seen inside the window. Zero once q >= window + mem - 1.
    pub(crate) fn window_weights(&self, window: usize) -> Vec<f32> {
        let mem = self.taps.len();
        (0..window + mem - 1)
            .map(|q| {
                let lo = (q + 2).saturating_sub(window).max(1);
                let hi = (q + 1).min(mem);
                (lo..=hi).map(|d| self.at_lag(d)).sum::<f64>() as f32 / window as f32
            })
            .collect()
    }
}

/// The synaptic input history of one block of neurons (one dendritic compartment).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PspTrace {
    /// Ring of the last `mem` summed inputs u(t); `head` is the newest slot.
    Ring {
        n: usize,
        slots: Vec<f32>,
        head: usize,
        /// Whether each slot may hold a non-zero input (false: known to be all zeros, so
        /// it is neither cleared nor summed). Not saved: empty means "all may".
        #[serde(skip)]
        live: Vec<bool>,
    },
    /// Exponential traces of the full kernel and the input u(t) of the current step.
    Exact {
        a_l: Vec<f32>,
        a_s: Vec<f32>,
        u: Vec<f32>,
    },
    /// The truncated kernel as exponential traces that drop each input again when it
    /// leaves the window (eq. 2.5): a ring of the last `mem + 1` inputs u (`head` newest),
    /// and the traces L = sum_{d=1..mem} exp(-d dt/tau_L) u(t-d+1) and S likewise.
    Delayed {
        n: usize,
        slots: Vec<f32>,
        head: usize,
        a_l: Vec<f32>,
        a_s: Vec<f32>,
    },
}

impl PspTrace {
    pub fn new(kernel: &Kernel, n: usize) -> Self {
        match kernel.kind {
            PspKernel::Truncated => PspTrace::Ring {
                n,
                slots: vec![0.0; n * kernel.taps.len()],
                head: 0,
                live: vec![false; kernel.taps.len()],
            },
            PspKernel::Full => PspTrace::Exact {
                a_l: vec![0.0; n],
                a_s: vec![0.0; n],
                u: vec![0.0; n],
            },
        }
    }

    /// The input history of a dendrite that receives input every step (the basal one):
    /// with the truncated kernel, traces with delayed removal (two updates per neuron and
    /// step) instead of a `mem`-term sum; the full kernel as in [`PspTrace::new`].
    pub fn with_traces(kernel: &Kernel, n: usize) -> Self {
        match kernel.kind {
            PspKernel::Truncated => PspTrace::Delayed {
                n,
                slots: vec![0.0; n * (kernel.taps.len() + 1)],
                head: 0,
                a_l: vec![0.0; n],
                a_s: vec![0.0; n],
            },
            PspKernel::Full => PspTrace::new(kernel, n),
        }
    }

    /// Forgets every past spike.
    pub fn reset(&mut self) {
        match self {
            PspTrace::Delayed {
                slots,
                head,
                a_l,
                a_s,
                ..
            } => {
                slots.fill(0.0);
                *head = 0;
                a_l.fill(0.0);
                a_s.fill(0.0);
            }
            PspTrace::Ring {
                slots, head, live, ..
            } => {
                slots.fill(0.0);
                *head = 0;
                live.fill(false);
            }
            PspTrace::Exact { a_l, a_s, u } => {
                a_l.fill(0.0);
                a_s.fill(0.0);
                u.fill(0.0);
            }
        }
    }

    /// Opens the current step's input u(t), zeroed, for spikes to be summed into.
    #[inline(always)]
    pub fn begin_step(&mut self) -> &mut [f32] {
        self.open(true, false)
    }

    /// Opens the current step's input. `nonzero` false promises that nothing will be added
    /// (the slot is left zero); `overwrite` that the caller writes every entry (the slot is
    /// not cleared first). Slots not in use are always all zeros, so a saved state needs no
    /// record of which are in use.
    #[inline(always)]
    fn open(&mut self, nonzero: bool, overwrite: bool) -> &mut [f32] {
        let clear = !(nonzero && overwrite);
        match self {
            PspTrace::Ring {
                n,
                slots,
                head,
                live,
            } => {
                let mem = slots.len() / (*n).max(1);
                if live.len() != mem {
                    *live = vec![true; mem];
                }
                if mem == 0 {
                    return &mut slots[..0];
                }
                *head = (*head + 1) % mem;
                let s = &mut slots[*head * *n..(*head + 1) * *n];
                if live[*head] && clear {
                    s.fill(0.0);
                }
                live[*head] = nonzero;
                s
            }
            PspTrace::Exact { u, .. } => {
                if clear {
                    u.fill(0.0);
                }
                u
            }
            PspTrace::Delayed { n, slots, head, .. } => {
                let slots_n = slots.len() / (*n).max(1);
                *head = (*head + 1) % slots_n.max(1);
                let s = &mut slots[*head * *n..(*head + 1) * *n];
                if clear {
                    s.fill(0.0);
                }
                s
            }
        }
    }

    /// Closes the step: traces fold u(t) in (eq. 2.4), and with the truncated kernel drop
    /// u(t - mem) again (eq. 2.5).
    #[inline(always)]
    pub fn end_step(&mut self, kernel: &Kernel) {
        match self {
            PspTrace::Exact { a_l, a_s, u } => {
                for ((l, s), &x) in a_l.iter_mut().zip(a_s.iter_mut()).zip(u.iter()) {
                    *l = kernel.decay_l * (*l + x);
                    *s = kernel.decay_s * (*s + x);
                }
            }
            PspTrace::Delayed {
                n,
                slots,
                head,
                a_l,
                a_s,
            } => {
                let n = *n;
                let slots_n = slots.len() / n.max(1);
                let oldest = (*head + 1) % slots_n.max(1);
                let u = &slots[*head * n..(*head + 1) * n];
                let gone = &slots[oldest * n..(oldest + 1) * n];
                for (((l, s), &x), &g) in a_l.iter_mut().zip(a_s.iter_mut()).zip(u).zip(gone) {
                    *l = kernel.decay_l * (*l + x) - kernel.cut_l * g;
                    *s = kernel.decay_s * (*s + x) - kernel.cut_s * g;
                }
            }
            PspTrace::Ring { .. } => {}
        }
    }

    /// One step of input: u(t) = sum of the weight rows `w[j * stride + lo..]` of the
    /// spiking inputs j in `events` (see `add_rows`).
    #[inline(always)]
    pub fn push_rows(
        &mut self,
        kernel: &Kernel,
        w: &[f32],
        stride: usize,
        lo: usize,
        events: &[u32],
    ) {
        let nonzero = !events.is_empty();
        let u = self.open(nonzero, true);
        if nonzero {
            add_rows(u, w, stride, lo, events, true);
        }
        self.end_step(kernel);
    }

    /// Eq. 2.3: out = bias + sum_{d=1..mem} kappa(d) u(t-d+1), with t the newest step.
    /// Each neuron's sum is formed in that order (bias, then d = 1, 2, ...); slots known to
    /// be zero are skipped, and up to four taps are summed per pass over `out`.
    #[inline(always)]
    pub fn potential_into(&self, kernel: &Kernel, bias: &[f32], out: &mut [f32]) {
        match self {
            PspTrace::Ring {
                n,
                slots,
                head,
                live,
            } => {
                let n = *n;
                if n == 0 {
                    out.copy_from_slice(bias);
                    return;
                }
                let mem = slots.len() / n;
                let mut rows: [(&[f32], f32); 4] = [(&[], 0.0); 4];
                let mut k = 0;
                // The first pass starts from the bias, the others from `out`.
                let mut first = true;
                for (d, &kd) in kernel.taps.iter().enumerate() {
                    let slot = (*head + mem - d) % mem;
                    if !live.get(slot).copied().unwrap_or(true) {
                        continue;
                    }
                    rows[k] = (&slots[slot * n..(slot + 1) * n], kd);
                    k += 1;
                    if k == 4 {
                        weighted_pass(out, bias, &rows, first);
                        first = false;
                        k = 0;
                    }
                }
                weighted_pass(out, bias, &rows[..k], first);
            }
            PspTrace::Exact { a_l, a_s, .. } | PspTrace::Delayed { a_l, a_s, .. } => {
                for (((o, &b), &l), &s) in out.iter_mut().zip(bias).zip(a_l).zip(a_s) {
                    *o = b + kernel.norm * (l - s);
                }
            }
        }
    }
}

/// One pass of [`weighted_sum`]: the first starts from the bias, later ones from `out`.
#[inline(always)]
fn weighted_pass(out: &mut [f32], bias: &[f32], rows: &[(&[f32], f32)], first: bool) {
    if first {
        weighted_sum::<true>(out, bias, rows);
    } else {
        weighted_sum::<false>(out, bias, rows);
    }
}

/// out[i] = start[i] + k_1 r_1[i] + ... (up to four rows, added one after the other, in
/// order), where start is `base` when `FROM_BASE` (the bias, for the first pass) and `out`
/// itself otherwise.
#[inline(always)]
fn weighted_sum<const FROM_BASE: bool>(out: &mut [f32], base: &[f32], rows: &[(&[f32], f32)]) {
    let len = out.len();
    let base = if FROM_BASE { &base[..len] } else { &[][..] };
    let start = |out: &[f32], i: usize| if FROM_BASE { base[i] } else { out[i] };
    match *rows {
        [] => {
            if FROM_BASE {
                out.copy_from_slice(base);
            }
        }
        [(r0, k0)] => {
            let r0 = &r0[..len];
            for i in 0..len {
                out[i] = start(out, i) + k0 * r0[i];
            }
        }
        [(r0, k0), (r1, k1)] => {
            let (r0, r1) = (&r0[..len], &r1[..len]);
            for i in 0..len {
                out[i] = (start(out, i) + k0 * r0[i]) + k1 * r1[i];
            }
        }
        [(r0, k0), (r1, k1), (r2, k2)] => {
            let (r0, r1, r2) = (&r0[..len], &r1[..len], &r2[..len]);
            for i in 0..len {
                out[i] = ((start(out, i) + k0 * r0[i]) + k1 * r1[i]) + k2 * r2[i];
            }
        }
        _ => {
            let [(r0, k0), (r1, k1), (r2, k2), (r3, k3)] = [rows[0], rows[1], rows[2], rows[3]];
            let (r0, r1, r2, r3) = (&r0[..len], &r1[..len], &r2[..len], &r3[..len]);
            for i in 0..len {
                out[i] = (((start(out, i) + k0 * r0[i]) + k1 * r1[i]) + k2 * r2[i]) + k3 * r3[i];
            }
        }
    }
}

/// Sums weight rows of the spiking inputs into u: u = W[j1, lo..hi] + W[j2, lo..hi] + ...
/// over the events j in order, starting from u itself, or from nothing when `fresh` (u's
/// old contents are then never read; `events` must not be empty). `w` is input-major (row
/// j holds the weights from input j to all `n` neurons). Rows are added in event order,
/// four per pass over u; blocks of at most 16 neurons (the output layer) keep their sums
/// in one 16-lane register instead.
#[inline(always)]
pub(crate) fn add_rows(u: &mut [f32], w: &[f32], n: usize, lo: usize, events: &[u32], fresh: bool) {
    let len = u.len();
    let row = |j: u32| {
        let start = j as usize * n + lo;
        &w[start..start + len]
    };
    if len <= SMALL {
        let mut acc = if fresh {
            [0.0; SMALL]
        } else {
            lanes16(u, 0, len)
        };
        for &j in events {
            acc = add16(acc, lanes16(w, j as usize * n + lo, len));
        }
        u.copy_from_slice(&acc[..len]);
        return;
    }
    let mut quads = events.chunks_exact(4);
    let mut fresh = fresh;
    for q in &mut quads {
        let (r0, r1, r2, r3) = (row(q[0]), row(q[1]), row(q[2]), row(q[3]));
        if fresh {
            for ((((x, &a), &b), &c), &d) in u.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
                *x = ((a + b) + c) + d;
            }
            fresh = false;
        } else {
            for ((((x, &a), &b), &c), &d) in u.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
                *x = (((*x + a) + b) + c) + d;
            }
        }
    }
    for &j in quads.remainder() {
        if fresh {
            u.copy_from_slice(row(j));
            fresh = false;
        } else {
            for (x, &wv) in u.iter_mut().zip(row(j)) {
                *x += wv;
            }
        }
    }
}

/// Blocks of at most this many neurons sum in a fixed-size array.
const SMALL: usize = 16;

/// The 16 lanes of `v` from `start`: all of them when `v` has them (lanes past `len` are
/// then junk, never stored), else `len` and zeros.
#[inline(always)]
fn lanes16(v: &[f32], start: usize, len: usize) -> [f32; SMALL] {
    match v.get(start..start + SMALL) {
        Some(r) => {
            let mut x = [0.0f32; SMALL];
            x.copy_from_slice(r);
            x
        }
        None => {
            let mut x = [0.0f32; SMALL];
            x[..len].copy_from_slice(&v[start..start + len]);
            x
        }
    }
}

/// acc + x, lane by lane, by value.
#[inline(always)]
fn add16(acc: [f32; SMALL], x: [f32; SMALL]) -> [f32; SMALL] {
    std::array::from_fn(|i| acc[i] + x[i])
}

/// The dense baseline's view of a layer's input: every presynaptic unit's PSP s_j(t)
/// (eq. 2.2), formed from its spike counts each step as the reference does.
#[derive(Clone, Debug)]
pub struct DenseInput {
    counts: PspTrace,
    zero: Vec<f32>,
    /// s_j of the current step.
    pub psp: Vec<f32>,
}

impl DenseInput {
    pub fn new(kernel: &Kernel, n_pre: usize) -> Self {
        DenseInput {
            counts: PspTrace::new(kernel, n_pre),
            zero: vec![0.0; n_pre],
            psp: vec![0.0; n_pre],
        }
    }

    pub fn reset(&mut self) {
        self.counts.reset();
        self.psp.fill(0.0);
    }

    /// Adds this step's spikes and returns every input's PSP.
    pub fn step(&mut self, kernel: &Kernel, events: &[u32]) -> &[f32] {
        let u = self.counts.begin_step();
        for &j in events {
            u[j as usize] += 1.0;
        }
        self.counts.end_step(kernel);
        self.counts
            .potential_into(kernel, &self.zero, &mut self.psp);
        &self.psp
    }
}

/// Eq. 5.6: the mean over a phase's integration window of each presynaptic unit's PSP
/// (s_f in the learning rules), accumulated event by event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PresynapticWindow {
    /// The window mean so far, per presynaptic unit.
    pub mean: Vec<f32>,
    /// Window weight of a spike q steps before the phase's last step (truncated kernel).
    weights: Vec<f32>,
    /// Full kernel: every unit's traces, updated every step.
    traces: Option<(Vec<f32>, Vec<f32>)>,
    window: usize,
}

impl PresynapticWindow {
    pub fn new(kernel: &Kernel, n_pre: usize, window: usize) -> Self {
        let traces = match kernel.kind {
            PspKernel::Truncated => None,
            PspKernel::Full => Some((vec![0.0; n_pre], vec![0.0; n_pre])),
        };
        PresynapticWindow {
            mean: vec![0.0; n_pre],
            weights: kernel.window_weights(window),
            traces,
            window,
        }
    }

    /// Starts a new phase's mean (the full kernel's traces carry on).
    pub fn start_phase(&mut self) {
        self.mean.fill(0.0);
    }

    /// Forgets every past spike.
    pub fn reset(&mut self) {
        self.mean.fill(0.0);
        if let Some((l, s)) = &mut self.traces {
            l.fill(0.0);
            s.fill(0.0);
        }
    }

    /// Adds one step's presynaptic spikes; `steps_to_end` = (last step of the phase) - (this
    /// step). The truncated kernel only needs the steps with steps_to_end < window + mem - 1.
    #[inline]
    pub fn add_step(&mut self, kernel: &Kernel, events: &[u32], steps_to_end: usize) {
        match &mut self.traces {
            None => {
                if let Some(&wq) = self.weights.get(steps_to_end) {
                    for &j in events {
                        self.mean[j as usize] += wq;
                    }
                }
            }
            Some((l, s)) => {
                for &j in events {
                    l[j as usize] += 1.0;
                    s[j as usize] += 1.0;
                }
                // The traces now hold sum_k exp(-(t - t_k)/tau) over spikes up to t; the PSP
                // at t is norm * (decay_l * l - decay_s * s) (eq. 2.4).
                if steps_to_end < self.window {
                    let inv = 1.0 / self.window as f32;
                    for ((m, &lv), &sv) in self.mean.iter_mut().zip(l.iter()).zip(s.iter()) {
                        *m += inv * kernel.norm * (kernel.decay_l * lv - kernel.decay_s * sv);
                    }
                }
                for v in l.iter_mut() {
                    *v *= kernel.decay_l;
                }
                for v in s.iter_mut() {
                    *v *= kernel.decay_s;
                }
            }
        }
    }
}
