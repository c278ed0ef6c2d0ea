//! Minibatches of the rate rules (`[training] batch_size` > 1; docs/model.md, section 13):
//! every example of a batch runs forward on the weights of the batch's start, each
//! example's update is computed as online learning computes it, and the mean of the
//! batch's updates is applied once (as PyTorch's mean loss and the BurstCCN authors' code
//! do). With `batch_size = 1` none of this runs: online learning keeps its own path.
//!
//! The rate network's forward phase of the gradient rules and the burst rules is a pure function of
//! the image (its somata sit at their steady state and the apical input does not drive
//! them, docs/model.md, section 9), so every step of a phase and every window mean equal the
//! one steady-state pass this module computes for the whole batch at once:
//!
//! ```text
//! C_m = k (R_{m-1} W_m + 1 b_m^T)     (rows: examples; k = k_B hidden, k_D output)
//! R_m = lambda_max sigma(C_m)
//! ```
//!
//! The products are single-threaded sgemm of the `matrixmultiply` crate (its own blocking
//! and kernels; no thread pool), so a run does not depend on the thread count.
//!
//! May use: [`crate::model`], the rest of [`crate::sim`].

use crate::model::burst::BurstSettings;
use crate::model::learning;
use crate::model::neuron::{sigmoid, sigmoid_prime};
use crate::model::params::{LayerParams, RuleParams};
use crate::model::rate;
use crate::model::readout::predict;
use crate::sim::compiled::Model;
use crate::sim::rules::burstccn::{
    burst_error, hidden_burst_probability, output_burst_probability, settings, tie, tie_y,
};
use crate::sim::rules::gradient::Feedback;
use crate::sim::rules::set_teacher;
use crate::sim::state::NetState;

/// The examples of the batch being gathered and the values of its learning step, one row
/// per example (row-major, `len` rows). Never saved: a checkpoint falls on a batch boundary.
#[derive(Clone, Debug, Default)]
pub struct BatchScratch {
    /// Examples held.
    pub len: usize,
    /// Input rates lambda_max x, `len` x n_in.
    x: Vec<f32>,
    /// Teachers (eq. 4.3) of the labels, `len` x n_out.
    y: Vec<f32>,
    /// Per layer: somatic potentials C, rates r and errors E, `len` x n_m each.
    c: Vec<Vec<f32>>,
    r: Vec<Vec<f32>>,
    pub(crate) err: Vec<Vec<f32>>,
    /// BurstCCN per layer: event rates e, burst probabilities p, apical potentials a
    /// (hidden layers), `len` x n_m each.
    e: Vec<Vec<f32>>,
    p: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    /// Burstprop per layer: the burst probabilities without the teacher (pbar) and the
    /// apical potentials they give the layer below, `len` x n_m each.
    p_base: Vec<Vec<f32>>,
    a_base: Vec<Vec<f32>>,
    /// Column sums and p e products.
    tmp: Vec<f32>,
    /// The inputs active (non-zero) in some example of the batch, ascending: the first
    /// layer's products run over these only (an MNIST batch of 32 leaves many pixels dark).
    cols: Vec<usize>,
    /// The batch's input rates of those inputs, `len` x cols.len().
    xc: Vec<f32>,
    /// W_1's rows of those inputs, cols.len() x n_1 (copied at the forward pass; W_1 does
    /// not change before its own update).
    wc: Vec<f32>,
}

impl BatchScratch {
    /// Adds an example: its input rates (those the input layer of `state` passes, eq. 9.1)
    /// and the teacher of `label`.
    pub(crate) fn push(&mut self, model: &Model, state: &mut NetState, image: &[u8], label: u8) {
        let n_in = model.topology.n_in;
        let n_out = *model.topology.sizes.last().expect("an output layer");
        if self.len == 0 {
            self.x.clear();
            self.y.clear();
        }
        state.input.set_image(image);
        let at = self.x.len();
        self.x.resize(at + n_in, 0.0);
        for (j, r) in state.input.active_rates() {
            self.x[at + j] = r;
        }
        let at = self.y.len();
        self.y.resize(at + n_out, 0.0);
        set_teacher(&mut self.y[at..], label, model.units_per_class());
        self.len += 1;
    }

    /// Whether every value of the last batch is finite (the per-example check of online
    /// learning, for the whole batch).
    pub(crate) fn is_finite(&self) -> bool {
        let finite = |v: &Vec<Vec<f32>>| v.iter().flatten().all(|x| x.is_finite());
        finite(&self.c) && finite(&self.r) && finite(&self.err)
    }

    /// The forward pass of the batch (see the module's equations) on `params`; writes each
    /// example's prediction (eq. 8.1) to `predicted` and adds `l_f[i]` steps of its rates to
    /// each layer's `rate_sum` (the firing rates of the epoch's metrics).
    fn forward(
        &mut self,
        model: &Model,
        params: &[LayerParams],
        state: &mut NetState,
        l_f: &[usize],
        predicted: &mut Vec<u8>,
    ) {
        let d = &model.dynamics;
        let (len, m_layers) = (self.len, params.len());
        for v in [&mut self.c, &mut self.r, &mut self.err] {
            v.resize_with(m_layers, Vec::new);
        }
        self.compact_inputs(&params[0]);
        for (m, p) in params.iter().enumerate() {
            let n = p.n;
            let c = &mut self.c[m];
            c.clear();
            for _ in 0..len {
                c.extend_from_slice(&p.b);
            }
            // B = R_below W + 1 b^T (the first layer over its active inputs: the others
            // add exact zeros).
            if m == 0 {
                let u = self.cols.len();
                gemm(len, u, n, 1.0, (&self.xc, u, 1), (&self.wc, n, 1), 1.0, c);
            } else {
                let below = &self.r[m - 1];
                gemm(
                    len,
                    p.n_pre,
                    n,
                    1.0,
                    (below, p.n_pre, 1),
                    (&p.w, n, 1),
                    1.0,
                    c,
                );
            }
            let k = if m + 1 < m_layers { d.k_b } else { d.k_d };
            for v in c.iter_mut() {
                *v *= k; // eqs. 9.4-9.5 (forward phase)
            }
            let r = &mut self.r[m];
            r.resize(len * n, 0.0);
            rate::rates(d, c, r); // eq. 9.6
            let layer = &mut state.layers[m];
            for (row, &steps) in r.chunks_exact(n).zip(l_f) {
                let sum = row.iter().map(|&v| v as f64).sum::<f64>();
                layer.rate_sum += steps as f64 * sum;
            }
            self.err[m].resize(len * n, 0.0);
        }
        let n_out = params[m_layers - 1].n;
        predicted.clear();
        predicted.extend(
            self.c[m_layers - 1]
                .chunks_exact(n_out)
                .map(|c| predict(c, model.units_per_class())),
        );
    }

    /// W_m <- W_m - (step_m / len) E_m^T R_{m-1} (the mean of eq. 10.5 / 11.7 over the batch)
    /// and b_m <- b_m - (bias_step_m / len) sum E_m, for the layers that learn.
    fn update_feedforward(
        &mut self,
        model: &Model,
        params: &mut [LayerParams],
        steps: impl Fn(usize) -> (f32, f32),
    ) {
        let m_layers = params.len();
        let inv = 1.0 / self.len as f32;
        for m in (0..m_layers).rev() {
            if m + 1 < m_layers && !model.cfg.learning.hidden_learning {
                continue;
            }
            let (w_step, b_step) = steps(m);
            let p = &mut params[m];
            let (n, n_pre) = (p.n, p.n_pre);
            let e = &self.err[m];
            if m == 0 {
                // The rows of inactive inputs do not change (online learning skips them
                // too); the others are updated in the compact copy and written back.
                let u = self.cols.len();
                let (xc, wc) = (&self.xc, &mut self.wc);
                gemm(
                    u,
                    self.len,
                    n,
                    -w_step * inv,
                    (xc, 1, u),
                    (e, n, 1),
                    1.0,
                    wc,
                );
                for (&j, row) in self.cols.iter().zip(wc.chunks_exact(n)) {
                    p.w[j * n..(j + 1) * n].copy_from_slice(row);
                }
            } else {
                let below = &self.r[m - 1];
                let a = (below.as_slice(), 1, n_pre);
                gemm(
                    n_pre,
                    self.len,
                    n,
                    -w_step * inv,
                    a,
                    (e, n, 1),
                    1.0,
                    &mut p.w,
                );
            }
            column_sums(e, n, &mut self.tmp);
            learning::update_bias(&mut p.b, &self.tmp, b_step * inv);
        }
    }
}

impl BatchScratch {
    /// Eq. 11.1 (12.1) for every example: each layer's event rates e = sigma(C) from the
    /// forward pass; sizes the burst probabilities and apical potentials of the burst rules.
    fn event_rates(&mut self) {
        let m_layers = self.c.len();
        for v in [
            &mut self.e,
            &mut self.p,
            &mut self.a,
            &mut self.p_base,
            &mut self.a_base,
        ] {
            v.resize_with(m_layers, Vec::new);
        }
        for m in 0..m_layers {
            let e = &mut self.e[m];
            e.clear();
            e.extend(self.c[m].iter().map(|&c| sigmoid(c)));
            self.p[m].resize(e.len(), 0.0);
        }
    }

    /// Eqs. 11.2 and 11.6 (12.2, 12.5) at the output of every example: the burst
    /// probability moved by the teacher, and the error against the baseline `p_b`.
    fn output_bursts(&mut self, p_b: f32) {
        let top = self.c.len() - 1;
        for (((p, err), &e), &y) in self.p[top]
            .iter_mut()
            .zip(self.err[top].iter_mut())
            .zip(&self.e[top])
            .zip(&self.y)
        {
            *p = output_burst_probability(p_b, e, y);
            *err = burst_error(*p, p_b, e);
        }
    }

    /// `cols`, `xc` and `wc` of the batch's inputs and the first layer's weights `p`.
    fn compact_inputs(&mut self, p: &LayerParams) {
        let (len, n_in, n) = (self.len, p.n_pre, p.n);
        self.cols.clear();
        self.cols
            .extend((0..n_in).filter(|&j| (0..len).any(|b| self.x[b * n_in + j] != 0.0)));
        self.xc.clear();
        for row in self.x.chunks_exact(n_in) {
            self.xc.extend(self.cols.iter().map(|&j| row[j]));
        }
        self.wc.clear();
        for &j in &self.cols {
            self.wc.extend_from_slice(&p.w[j * n..(j + 1) * n]);
        }
    }
}

/// C (m x n, row-major) = alpha A B + beta C for A (m x k) and B (k x n) given as
/// (values, row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(a.0.len() >= last(m, k, a.1, a.2), "gemm: A too short");
    assert!(b.0.len() >= last(k, n, b.1, b.2), "gemm: B too short");
    assert!(c.len() >= m * n, "gemm: C too short");
    // SAFETY: the asserts above keep every index sgemm reads of A and B, and writes of C
    // (row stride n, column stride 1), inside the slices; C does not alias A or B (it is
    // borrowed mutably).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.0.as_ptr(),
            a.1 as isize,
            a.2 as isize,
            b.0.as_ptr(),
            b.1 as isize,
            b.2 as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The steps of W and b of layer m for the burst rules: eq. 11.7 (12.6) in the network's
/// units, as `burstccn::update_forward` converts them (the mean over the batch is taken by
/// [`BatchScratch::update_feedforward`]).
fn burst_steps(model: &Model) -> impl Fn(usize) -> (f32, f32) + '_ {
    let d = &model.dynamics;
    let top = model.topology.sizes.len() - 1;
    let lambda = d.lambda_max;
    move |m| {
        let k = if m == top { d.k_d } else { d.k_b };
        let eta = model.cfg.learning.eta[m] as f32;
        (eta / (k * lambda * lambda), eta / k)
    }
}

/// The apical potentials the bursts of the layer above give a layer of `n` units, every
/// example (rows): a = (p e)_above Y (eqs. 11.4 and 12.3; `y[k * n + i]`). `tmp` holds the
/// products p e.
fn bursts_through_y(
    tmp: &mut Vec<f32>,
    p_above: &[f32],
    e_above: &[f32],
    y: &[f32],
    n: usize,
    a: &mut Vec<f32>,
) {
    let na = y.len() / n;
    let len = e_above.len() / na;
    tmp.clear();
    tmp.extend(p_above.iter().zip(e_above).map(|(p, e)| p * e));
    a.resize(len * n, 0.0);
    gemm(len, na, n, 1.0, (tmp, na, 1), (y, n, 1), 0.0, a);
}

/// out[i] = sum over rows of v[row * n + i].
fn column_sums(v: &[f32], n: usize, out: &mut Vec<f32>) {
    out.clear();
    out.resize(n, 0.0);
    for row in v.chunks_exact(n) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
}

/// The gradient rules (docs/model.md, section 10) on the batch: errors of eqs. 10.2-10.4
/// for every example from the weights of the batch's start, then the mean of eqs.
/// 10.5-10.6 over the batch. Clears the batch.
pub(crate) fn train_gradient(
    model: &Model,
    params: &mut [LayerParams],
    state: &mut NetState,
    batch: &mut BatchScratch,
    l_f: &[usize],
    predicted: &mut Vec<u8>,
    feedback: Feedback,
) {
    batch.forward(model, params, state, l_f, predicted);
    let d = &model.dynamics;
    let len = batch.len;
    let top = params.len() - 1;
    let n_out = params[top].n;
    for ((c, y), e) in batch.c[top]
        .chunks_exact(n_out)
        .zip(batch.y.chunks_exact(n_out))
        .zip(batch.err[top].chunks_exact_mut(n_out))
    {
        learning::cross_entropy_output_error(d, c, y, e);
    }
    for m in (0..top).rev() {
        let n = params[m].n;
        let (lower, upper) = batch.err.split_at_mut(m + 1);
        let e = &mut lower[m];
        match feedback {
            // E_m = (E_{m+1} W_{m+1}^T) k_B lambda_max sigma'(C) (eq. 10.3).
            Feedback::Transpose => {
                let above = &params[m + 1];
                let na = above.n;
                gemm(
                    len,
                    na,
                    n,
                    1.0,
                    (&upper[0], na, 1),
                    (&above.w, 1, na),
                    0.0,
                    e,
                );
            }
            // E_m = (E_src Y_m^T) k_B lambda_max sigma'(C) (eq. 10.4; y[k * n + i]).
            Feedback::Fixed => {
                let source = model.topology.feedback_source(m);
                let ns = params[source].n;
                let src = &upper[source - m - 1];
                gemm(len, ns, n, 1.0, (src, ns, 1), (&params[m].y, n, 1), 0.0, e);
            }
        }
        for (v, &c) in e.iter_mut().zip(&batch.c[m]) {
            *v *= d.k_b * d.lambda_max * sigmoid_prime(c);
        }
    }
    let eta = &model.cfg.learning.eta;
    batch.update_feedforward(model, params, |m| (eta[m] as f32, eta[m] as f32));
    batch.len = 0;
}

/// BurstCCN (docs/model.md, section 11) on the batch: burst probabilities and errors of
/// eqs. 11.1-11.6 for every example from the weights (W, Y, Q) of the batch's start, then
/// the means of eqs. 11.7 and 11.11-11.12 over the batch, then the ties of eqs. 11.9-11.10.
/// Clears the batch.
pub(crate) fn train_burstccn(
    model: &Model,
    params: &mut [LayerParams],
    rule: &mut RuleParams,
    state: &mut NetState,
    batch: &mut BatchScratch,
    l_f: &[usize],
    predicted: &mut Vec<u8>,
) {
    batch.forward(model, params, state, l_f, predicted);
    let b: BurstSettings = settings(model);
    let (p_b, beta) = (b.p_baseline as f32, b.beta as f32);
    let len = batch.len;
    let top = params.len() - 1;
    batch.event_rates(); // eq. 11.1
    batch.output_bursts(p_b); // eqs. 11.2, 11.6

    // Eqs. 11.4-11.6, top down: A_m = (P E)_{m+1} Y_m - E_{m+1} Q_m (y[k * n + i]).
    for m in (0..top).rev() {
        let (n, na) = (params[m].n, params[m + 1].n);
        let a = &mut batch.a[m];
        let (p_above, e_above) = (&batch.p[m + 1], &batch.e[m + 1]);
        bursts_through_y(&mut batch.tmp, p_above, e_above, &params[m].y, n, a);
        gemm(
            len,
            na,
            n,
            -1.0,
            (&batch.e[m + 1], na, 1),
            (&rule.q[m], n, 1),
            1.0,
            a,
        );
        for (((p, err), &e), &a) in batch.p[m]
            .iter_mut()
            .zip(batch.err[m].iter_mut())
            .zip(&batch.e[m])
            .zip(&batch.a[m])
        {
            *p = hidden_burst_probability(beta, a, e);
            *err = burst_error(*p, p_b, e);
        }
    }
    batch.update_feedforward(model, params, burst_steps(model)); // eq. 11.7

    // Eqs. 11.11-11.12: Y <- Y - (eta_Y / len) E_{m+1}^T A_m, Q <- Q + (eta_Q / len) E_{m+1}^T A_m.
    let (eta_y, eta_q) = (b.eta_y as f32, b.eta_q as f32);
    let inv = 1.0 / len as f32;
    for (m, (p, q)) in params.iter_mut().zip(rule.q.iter_mut()).enumerate() {
        let n = p.n;
        let na = batch.e[m + 1].len() / len;
        let (e_above, a) = (&batch.e[m + 1], &batch.a[m]);
        if eta_y != 0.0 {
            gemm(
                na,
                len,
                n,
                -eta_y * inv,
                (e_above, 1, na),
                (a, n, 1),
                1.0,
                &mut p.y,
            );
        }
        if eta_q != 0.0 {
            gemm(na, len, n, eta_q * inv, (e_above, 1, na), (a, n, 1), 1.0, q);
        }
    }
    tie(model, &b, params, rule);
    batch.len = 0;
}

/// Burstprop (docs/model.md, section 12) on the batch: for every example from the weights
/// (W, Y) of the batch's start, the burst probabilities without the teacher (pbar) and with
/// it (p) and the errors of eqs. 12.1-12.5, top down; then the means of eq. 12.6 over the
/// batch and a tied Y re-tied. Clears the batch.
pub(crate) fn train_burstprop(
    model: &Model,
    params: &mut [LayerParams],
    state: &mut NetState,
    batch: &mut BatchScratch,
    l_f: &[usize],
    predicted: &mut Vec<u8>,
) {
    batch.forward(model, params, state, l_f, predicted);
    let b: BurstSettings = settings(model);
    let (p_b, beta) = (b.p_baseline as f32, b.beta as f32);
    let len = batch.len;
    let top = params.len() - 1;
    // Eq. 12.1; eqs. 12.2 and 12.5 at the output: pbar = p_b, p moved by the teacher.
    batch.event_rates();
    batch.p_base[top].clear();
    batch.p_base[top].resize(batch.e[top].len(), p_b);
    batch.output_bursts(p_b);
    // Eqs. 12.3-12.5, top down: a_m = (p e)_{m+1} Y_m without and with the teacher.
    for m in (0..top).rev() {
        let (n, y, e_above) = (params[m].n, &params[m].y, &batch.e[m + 1]);
        let tmp = &mut batch.tmp;
        bursts_through_y(
            tmp,
            &batch.p_base[m + 1],
            e_above,
            y,
            n,
            &mut batch.a_base[m],
        );
        bursts_through_y(tmp, &batch.p[m + 1], e_above, y, n, &mut batch.a[m]);
        batch.p_base[m].resize(len * n, 0.0);
        for i in 0..len * n {
            let e = batch.e[m][i];
            let pb = hidden_burst_probability(beta, batch.a_base[m][i], e);
            let p = hidden_burst_probability(beta, batch.a[m][i], e);
            batch.p_base[m][i] = pb;
            batch.p[m][i] = p;
            batch.err[m][i] = burst_error(p, pb, e);
        }
    }
    batch.update_feedforward(model, params, burst_steps(model)); // eq. 12.6
    tie_y(model, &b, params);
    batch.len = 0;
}
