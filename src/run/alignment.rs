//! Feedback alignment diagnostics, recorded per epoch into `alignment.csv` of a run
//! directory (Guerguiev et al. 2017, Fig. 7):
//!
//! - `update_angle_deg`: the angle between a hidden layer's update and the update backprop
//!   would make, averaged over the last `PROBE_EXAMPLES` training examples of the epoch.
//!   Both updates are an error vector times the same s_f^T (eq. 6.5), so the angle between
//!   the updates is the angle between E_m (eq. 6.2) and backprop's error (eq. 6.8), computed
//!   with the forward weights as they were before the example's update: for the last hidden
//!   layer from the output error E_out, for a deeper one from backprop's error of the layer
//!   above (the whole chain W^T ... W^T E_out, as the reference code computes its
//!   `E_bp`). The paper (Fig. 7A) plots this per-example angle smoothed over a sliding
//!   window of 100 examples; the mean over the epoch's last 100 is that curve at the epoch's
//!   end. Until 2026-12 a deeper layer was compared with one backprop step from the local
//!   error of the layer above; one-hidden-layer networks are unaffected.
//! - `pinv_angle_deg`: the angle between the hidden update and the pseudo-inverse update
//!   ("pseudobackprop", Lillicrap et al. 2016: feedback alignment approaches it faster than
//!   backprop): backprop's chain with every W_{m+1}^T replaced by the Moore-Penrose
//!   pseudo-inverse W_{m+1}^+ = W_{m+1}^T (W_{m+1} W_{m+1}^T)^-1 (a wide W has full row rank),
//!   [`pinv_error`]. Files written before 2026-12 lack the column (read as NaN).
//! - `feedback_angle_deg`: the angle (Frobenius cosine) between the feedback weights Y_m and
//!   the transposed forward weights of the path they stand in for: W_{m+1}^T when feedback
//!   comes from the layer above (or Y_m belongs to the last hidden layer), and the product
//!   W_{m+1}^T ... W_{M-1}^T for broadcast feedback from the output to a deeper layer.
//!
//! On request ([`AlignmentLog::with_trace`]) every training example is compared, and the
//! mean angle of every block of `PROBE_EXAMPLES` (100) examples goes to `alignment_trace.csv`:
//! the whole curve of Fig. 7A rather than one point per epoch.
//!
//! Everything here only reads the network: no random draws, no writes to its state, so a
//! run is bit-identical with or without it.

use crate::io::checkpoint::write_atomic;
use crate::model::config::FeedbackSource;
use crate::model::learning::backprop_error;
use crate::model::params::LayerParams;
use crate::sim::network::Network;
use std::path::Path;

/// Training examples at the end of each epoch whose updates are compared with backprop.
pub(crate) const PROBE_EXAMPLES: usize = 100;

/// File name of the diagnostics in a run directory.
pub(crate) const FILE_NAME: &str = "alignment.csv";

/// File name of the per-block trace ([`AlignmentLog::with_trace`]).
pub const TRACE_FILE_NAME: &str = "alignment_trace.csv";

const HEADER: &str =
    "epoch,layer,update_angle_deg,update_examples,feedback_angle_deg,pinv_angle_deg";

const TRACE_HEADER: &str = "epoch,example,layer,update_angle_deg,update_examples";

/// The mean update angle of one hidden layer over one block of training examples.
#[derive(Clone, Debug, PartialEq)]
pub struct TracePoint {
    pub epoch: usize,
    /// 1-based training example of the epoch that closed the block.
    pub example: usize,
    pub layer: usize,
    /// Mean angle between the hidden update and backprop's over the block, degrees (NaN when
    /// no example of the block had an error to compare).
    pub update_angle_deg: f64,
    /// Examples of the block that entered the mean.
    pub update_examples: usize,
}

/// The block sums of the per-example trace.
#[derive(Debug, Default)]
struct Trace {
    points: Vec<TracePoint>,
    sum: Vec<f64>,
    counted: Vec<usize>,
}

/// One hidden layer's diagnostics at the end of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignmentRecord {
    pub epoch: usize,
    /// Hidden layer index, 0 = first hidden layer.
    pub layer: usize,
    /// Mean angle between the hidden update and the backprop update, degrees (NaN when no
    /// example of the window had an error to compare).
    pub update_angle_deg: f64,
    /// Examples that entered the mean.
    pub update_examples: usize,
    /// Angle between Y_m and the transposed forward path, degrees.
    pub feedback_angle_deg: f64,
    /// Mean angle between the hidden update and the pseudo-inverse update, degrees (NaN when
    /// no example had an error to compare, or in files written before the column existed).
    pub pinv_angle_deg: f64,
}

/// Cosine of the angle between two vectors (f64 accumulation); None if either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na > 0.0 && nb > 0.0 {
        Some((dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0))
    } else {
        None
    }
}

/// Angle in degrees from a cosine.
pub fn degrees(cos: f64) -> f64 {
    cos.clamp(-1.0, 1.0).acos().to_degrees()
}

/// The pseudo-inverse counterpart of eq. 6.8: E_m = (W_{m+1}^+ E_{m+1}) k_B lambda_max
/// sigma'(Cbar_f), with the Moore-Penrose pseudo-inverse of the n_{m+1} x n_m matrix W_{m+1}:
/// W^T (W W^T)^-1 when it is wide (full row rank), (W^T W)^-1 W^T when it is tall (full
/// column rank), each by a Cholesky factorisation of the smaller Gram matrix in f64. Returns
/// false (and leaves `out` zero) when that Gram matrix is not positive definite to working
/// precision.
pub fn pinv_error(
    d: &crate::model::neuron::Dynamics,
    above: &LayerParams,
    e_above: &[f32],
    c_f: &[f32],
    out: &mut [f32],
) -> bool {
    match Pinv::new(above) {
        Some(p) => {
            p.error(d, e_above, c_f, out);
            true
        }
        None => {
            out.fill(0.0);
            false
        }
    }
}

/// The pseudo-inverse of one W_{m+1}, factored once ([`pinv_error`] applies it to one
/// error): a copy of W and the Cholesky factor of its smaller Gram matrix.
#[derive(Clone, Debug)]
pub struct Pinv {
    w: LayerParams,
    /// Whether W is wide (na <= n: G = W W^T) rather than tall (H = W^T W).
    wide: bool,
    /// The Cholesky factor L (lower triangle, row-major) of the Gram matrix.
    l: Vec<f64>,
}

impl Pinv {
    /// Factors the Gram matrix of `above`'s W; None when it is not positive definite to
    /// working precision.
    pub fn new(above: &LayerParams) -> Option<Self> {
        let na = above.n;
        let n = above.n_pre;
        // W[i][j] = w[j * na + i]: row j of the storage is column j of W.
        let cols = || above.w.chunks_exact(na);
        let (wide, size) = if na <= n { (true, na) } else { (false, n) };
        let mut g = vec![0.0f64; size * size];
        if wide {
            // G = W W^T (na x na), G[i][k] = sum_j W[i][j] W[k][j].
            for col in cols() {
                for i in 0..na {
                    let wi = col[i] as f64;
                    if wi != 0.0 {
                        for k in 0..=i {
                            g[i * na + k] += wi * col[k] as f64;
                        }
                    }
                }
            }
        } else {
            // H = W^T W (n x n), H[j][l] = sum_i W[i][j] W[i][l].
            let c: Vec<&[f32]> = cols().collect();
            for j in 0..n {
                for l in 0..=j {
                    g[j * n + l] = c[j]
                        .iter()
                        .zip(c[l])
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum();
                }
            }
        }
        cholesky_factor(&mut g, size).then(|| Pinv {
            w: above.clone(),
            wide,
            l: g,
        })
    }

    /// E_m = (W^+ e_above) k_B lambda_max sigma'(Cbar_f) into `out`.
    pub fn error(
        &self,
        d: &crate::model::neuron::Dynamics,
        e_above: &[f32],
        c_f: &[f32],
        out: &mut [f32],
    ) {
        let na = self.w.n;
        let cols = || self.w.w.chunks_exact(na);
        let x: Vec<f64> = if self.wide {
            // x = W^T G^-1 e.
            let rhs: Vec<f64> = e_above.iter().map(|&e| e as f64).collect();
            let z = cholesky_apply(&self.l, na, rhs);
            cols()
                .map(|col| col.iter().zip(&z).map(|(&w, &zi)| w as f64 * zi).sum())
                .collect()
        } else {
            // x = H^-1 W^T e.
            let rhs: Vec<f64> = cols()
                .map(|col| {
                    col.iter()
                        .zip(e_above)
                        .map(|(&w, &e)| w as f64 * e as f64)
                        .sum()
                })
                .collect();
            cholesky_apply(&self.l, self.w.n_pre, rhs)
        };
        let factor = d.k_b * d.lambda_max;
        for ((o, &xj), &c) in out.iter_mut().zip(&x).zip(c_f) {
            *o = xj as f32 * factor * crate::model::neuron::sigmoid_prime(c);
        }
    }
}

/// Overwrites the symmetric positive definite G whose lower triangle is filled (row-major,
/// n x n) by its Cholesky factor; false when a pivot is not positive (relative to the
/// largest diagonal entry).
fn cholesky_factor(g: &mut [f64], n: usize) -> bool {
    let scale = (0..n).map(|i| g[i * n + i]).fold(0.0f64, f64::max);
    if !(scale > 0.0 && scale.is_finite()) {
        return false;
    }
    for j in 0..n {
        let mut d = g[j * n + j];
        for k in 0..j {
            d -= g[j * n + k] * g[j * n + k];
        }
        // Not positive to working precision (NaN included).
        if d.is_nan() || d <= scale * 1e-12 {
            return false;
        }
        let d = d.sqrt();
        g[j * n + j] = d;
        for i in j + 1..n {
            let mut v = g[i * n + j];
            for k in 0..j {
                v -= g[i * n + k] * g[j * n + k];
            }
            g[i * n + j] = v / d;
        }
    }
    true
}

/// Solves L L^T x = b with the factor of [`cholesky_factor`]: L y = b, then L^T x = y.
fn cholesky_apply(g: &[f64], n: usize, mut b: Vec<f64>) -> Vec<f64> {
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= g[i * n + k] * b[k];
        }
        b[i] = v / g[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= g[k * n + i] * b[k];
        }
        b[i] = v / g[i * n + i];
    }
    b
}

/// The matrix Y_m should be compared with, as `t[i * n_fb + k]` (neuron i of layer m, feedback
/// input k): W_{m+1}^T, or W_{m+1}^T ... W_{M-1}^T for broadcast feedback.
pub(crate) fn transposed_forward_path(
    params: &[LayerParams],
    m: usize,
    source: FeedbackSource,
) -> Vec<f32> {
    let m_layers = params.len();
    let last = match source {
        FeedbackSource::Broadcast => m_layers - 1,
        FeedbackSource::NextLayer => m + 1,
    };
    // W_{m+1}^T is n_m x n_{m+1}; w[j * na + i] is W_{m+1}[i][j], i.e. already row-major W^T.
    let mut cur = params[m + 1].w.clone();
    let mut cols = params[m + 1].n;
    for p in &params[m + 2..=last] {
        let rows = cur.len() / cols;
        let mut next = vec![0.0f32; rows * p.n];
        for r in 0..rows {
            let out = &mut next[r * p.n..(r + 1) * p.n];
            for (j, &v) in cur[r * cols..(r + 1) * cols].iter().enumerate() {
                if v != 0.0 {
                    for (o, &w) in out.iter_mut().zip(&p.w[j * p.n..(j + 1) * p.n]) {
                        *o += v * w;
                    }
                }
            }
        }
        cur = next;
        cols = p.n;
    }
    cur
}

/// Y_m of hidden layer m in (neuron, feedback input) row-major order.
fn feedback_row_major(p: &LayerParams) -> Vec<f32> {
    let mut t = vec![0.0f32; p.n * p.n_fb];
    for k in 0..p.n_fb {
        for i in 0..p.n {
            t[i * p.n_fb + k] = p.y[k * p.n + i];
        }
    }
    t
}

/// Angle between Y_m and its transposed forward path, degrees (NaN if either is zero or
/// their shapes differ).
pub fn feedback_angle_deg(net: &Network, m: usize) -> f64 {
    let t = transposed_forward_path(&net.params, m, net.model.cfg.network.feedback);
    let y = feedback_row_major(&net.params[m]);
    if t.len() != y.len() {
        return f64::NAN;
    }
    cosine(&y, &t).map_or(f64::NAN, degrees)
}

/// Collects the diagnostics of a training run, epoch by epoch.
#[derive(Debug, Default)]
pub struct AlignmentLog {
    pub records: Vec<AlignmentRecord>,
    /// W_{m+1} (and the rest of its parameters) before the current example, per hidden m.
    saved: Vec<LayerParams>,
    sum_angle: Vec<f64>,
    counted: Vec<usize>,
    /// Sums and counts of the pseudo-inverse angle, per hidden layer.
    sum_pinv: Vec<f64>,
    counted_pinv: Vec<usize>,
    /// Backprop's error of each hidden layer for the current example.
    e_bp: Vec<Vec<f32>>,
    /// The pseudo-inverse chain's error of each hidden layer for the current example.
    e_pinv: Vec<Vec<f32>>,
    /// W_{m+1}^+ per hidden m, factored at the first example of the epoch's window and
    /// kept for the rest of it (None inside: not positive definite).
    pinv: Vec<Option<Pinv>>,
    /// The per-block trace, when asked for.
    trace: Option<Trace>,
}

impl AlignmentLog {
    /// Earlier epochs' records from `dir/alignment.csv` (up to `epochs_done`), if any.
    pub fn load(dir: &Path, epochs_done: usize) -> Self {
        let records = std::fs::read_to_string(dir.join(FILE_NAME))
            .map(|t| parse_csv(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.epoch <= epochs_done)
            .collect();
        AlignmentLog {
            records,
            ..Default::default()
        }
    }

    /// This log, comparing every training example and keeping the mean of each block of
    /// `PROBE_EXAMPLES` (100) in `alignment_trace.csv`; earlier epochs' blocks (up to
    /// `epochs_done`) are read from `dir`.
    pub fn with_trace(mut self, dir: &Path, epochs_done: usize) -> Self {
        let points = std::fs::read_to_string(dir.join(TRACE_FILE_NAME))
            .map(|t| parse_trace_csv(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.epoch <= epochs_done)
            .collect();
        self.trace = Some(Trace {
            points,
            ..Default::default()
        });
        self
    }

    /// The trace so far (empty without [`AlignmentLog::with_trace`]).
    pub fn trace_points(&self) -> &[TracePoint] {
        self.trace.as_ref().map_or(&[], |t| &t.points)
    }

    /// Whether example `k` (0-based) of `n` is in the probe window at the end of the epoch.
    pub fn probes(k: usize, n: usize) -> bool {
        k + PROBE_EXAMPLES >= n
    }

    /// Whether this log compares example `k` (0-based) of `n`: the end-of-epoch window, or
    /// every example with a trace.
    pub fn compares(&self, k: usize, n: usize) -> bool {
        self.trace.is_some() || Self::probes(k, n)
    }

    /// Remembers the forward weights the backprop comparison needs (call before training
    /// the example).
    pub fn before_example(&mut self, net: &Network) {
        let hidden = net.params.len() - 1;
        if self.saved.len() != hidden {
            self.saved = net.params[1..].to_vec();
            self.sum_angle = vec![0.0; hidden];
            self.counted = vec![0; hidden];
            self.sum_pinv = vec![0.0; hidden];
            self.counted_pinv = vec![0; hidden];
            self.e_bp = net.params[..hidden]
                .iter()
                .map(|p| vec![0.0; p.n])
                .collect();
            self.e_pinv = self.e_bp.clone();
        } else {
            for (s, p) in self.saved.iter_mut().zip(&net.params[1..]) {
                s.w.copy_from_slice(&p.w);
            }
        }
    }

    /// Compares the errors the example just used with backprop's (call after training it);
    /// every call counts towards the epoch's mean.
    pub fn after_example(&mut self, net: &Network) {
        self.compare(net, true, None);
    }

    /// As [`AlignmentLog::after_example`] for example `k` (0-based) of `n` of `epoch`: the
    /// epoch's mean takes the examples of the end-of-epoch window, the trace every one.
    pub fn after_example_at(&mut self, net: &Network, epoch: usize, k: usize, n: usize) {
        self.compare(net, Self::probes(k, n), Some((epoch, k, n)));
    }

    fn compare(&mut self, net: &Network, in_window: bool, at: Option<(usize, usize, usize)>) {
        let st = &net.state;
        let hidden = self.saved.len();
        if let Some(t) = &mut self.trace {
            t.sum.resize(hidden, 0.0);
            t.counted.resize(hidden, 0);
        }
        // Top down: the last hidden layer from E_out, each deeper one from the layer above's
        // backprop error (eq. 6.8 applied along the chain).
        let mut have_above = st.errors[hidden].iter().any(|&e| e != 0.0);
        for m in (0..hidden).rev() {
            if !have_above {
                break;
            }
            let (lower, upper) = self.e_bp.split_at_mut(m + 1);
            let above: &[f32] = if m + 1 == hidden {
                &st.errors[hidden]
            } else {
                &upper[0]
            };
            backprop_error(
                &net.model.dynamics,
                &self.saved[m],
                above,
                &st.layers[m].forward.c,
                &mut lower[m],
            );
            have_above = lower[m].iter().any(|&e| e != 0.0);
            if in_window {
                // The same chain with W^+ in place of W^T (the epoch's means only).
                let (lo, up) = self.e_pinv.split_at_mut(m + 1);
                let above: &[f32] = if m + 1 == hidden {
                    &st.errors[hidden]
                } else {
                    &up[0]
                };
                if self.pinv.len() != hidden {
                    // Factored once per window: W_{m+1} as it was before the window's first
                    // example (an O(n^3) factorisation per example would cost more than
                    // training a wide layer).
                    self.pinv = self.saved.iter().map(Pinv::new).collect();
                }
                let ok = match &self.pinv[m] {
                    Some(p) => {
                        p.error(
                            &net.model.dynamics,
                            above,
                            &st.layers[m].forward.c,
                            &mut lo[m],
                        );
                        true
                    }
                    None => false,
                };
                if let Some(c) = ok.then(|| cosine(&st.errors[m], &lo[m])).flatten() {
                    self.sum_pinv[m] += degrees(c);
                    self.counted_pinv[m] += 1;
                }
            }
            if let Some(c) = cosine(&st.errors[m], &self.e_bp[m]) {
                let angle = degrees(c);
                if in_window {
                    self.sum_angle[m] += angle;
                    self.counted[m] += 1;
                }
                if let Some(t) = &mut self.trace {
                    t.sum[m] += angle;
                    t.counted[m] += 1;
                }
            }
        }
        if let (Some(t), Some((epoch, k, n))) = (&mut self.trace, at) {
            if (k + 1) % PROBE_EXAMPLES == 0 || k + 1 == n {
                for m in 0..hidden {
                    let c = t.counted[m];
                    t.points.push(TracePoint {
                        epoch,
                        example: k + 1,
                        layer: m,
                        update_angle_deg: if c > 0 { t.sum[m] / c as f64 } else { f64::NAN },
                        update_examples: c,
                    });
                }
                t.sum.fill(0.0);
                t.counted.fill(0);
            }
        }
    }

    /// Closes an epoch: one record per hidden layer; the probe sums start again.
    pub fn end_epoch(&mut self, epoch: usize, net: &Network) {
        let hidden = net.params.len() - 1;
        self.records.retain(|r| r.epoch < epoch);
        for m in 0..hidden {
            let n = self.counted.get(m).copied().unwrap_or(0);
            let mean = if n > 0 {
                self.sum_angle[m] / n as f64
            } else {
                f64::NAN
            };
            let np = self.counted_pinv.get(m).copied().unwrap_or(0);
            self.records.push(AlignmentRecord {
                epoch,
                layer: m,
                update_angle_deg: mean,
                update_examples: n,
                feedback_angle_deg: feedback_angle_deg(net, m),
                pinv_angle_deg: if np > 0 {
                    self.sum_pinv[m] / np as f64
                } else {
                    f64::NAN
                },
            });
        }
        self.saved.clear();
        self.pinv.clear();
        self.sum_angle.clear();
        self.counted.clear();
        self.sum_pinv.clear();
        self.counted_pinv.clear();
        if let Some(t) = &mut self.trace {
            t.sum.clear();
            t.counted.clear();
        }
    }

    /// Writes every record so far to `dir/alignment.csv` (atomically), and the trace to
    /// `dir/alignment_trace.csv` when there is one.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut s = String::from(HEADER);
        s.push('\n');
        for r in &self.records {
            s.push_str(&format!(
                "{},{},{:.4},{},{:.4},{:.4}\n",
                r.epoch,
                r.layer,
                r.update_angle_deg,
                r.update_examples,
                r.feedback_angle_deg,
                r.pinv_angle_deg
            ));
        }
        write_atomic(&dir.join(FILE_NAME), s.as_bytes())?;
        if let Some(t) = &self.trace {
            let mut s = String::from(TRACE_HEADER);
            s.push('\n');
            for p in &t.points {
                s.push_str(&format!(
                    "{},{},{},{:.4},{}\n",
                    p.epoch, p.example, p.layer, p.update_angle_deg, p.update_examples
                ));
            }
            write_atomic(&dir.join(TRACE_FILE_NAME), s.as_bytes())?;
        }
        Ok(())
    }
}

/// Parses alignment_trace.csv; malformed lines are skipped.
pub fn parse_trace_csv(text: &str) -> Vec<TracePoint> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 {
                return None;
            }
            Some(TracePoint {
                epoch: f[0].parse().ok()?,
                example: f[1].parse().ok()?,
                layer: f[2].parse().ok()?,
                update_angle_deg: f[3].parse().ok()?,
                update_examples: f[4].parse().ok()?,
            })
        })
        .collect()
}

/// Parses alignment.csv (with or without the `pinv_angle_deg` column of 2026-12); malformed
/// lines are skipped.
pub fn parse_csv(text: &str) -> Vec<AlignmentRecord> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 && f.len() != 6 {
                return None;
            }
            Some(AlignmentRecord {
                epoch: f[0].parse().ok()?,
                layer: f[1].parse().ok()?,
                update_angle_deg: f[2].parse().ok()?,
                update_examples: f[3].parse().ok()?,
                feedback_angle_deg: f[4].parse().ok()?,
                pinv_angle_deg: match f.get(5) {
                    Some(v) => v.parse().ok()?,
                    None => f64::NAN,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n_pre: usize, n: usize, w: Vec<f32>) -> LayerParams {
        LayerParams {
            n_pre,
            n,
            w,
            b: vec![0.0; n],
            n_fb: 0,
            y: Vec::new(),
            c: Vec::new(),
            y_keep: Vec::new(),
        }
    }

    #[test]
    fn cosine_and_degrees_of_known_vectors() {
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 0.0]), None);
        assert!((degrees(cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap()) - 45.0).abs() < 1e-9);
        assert!((degrees(cosine(&[1.0, 2.0], &[-2.0, -4.0]).unwrap()) - 180.0).abs() < 1e-4);
    }

    #[test]
    fn transposed_path_is_the_hand_computed_product() {
        // Layer 1: 2 -> 3, W1[i][j] = w[j * 3 + i]; layer 2: 3 -> 1.
        let w1 = layer(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let w2 = layer(3, 1, vec![1.0, 0.5, -1.0]);
        let l0 = layer(4, 2, vec![0.0; 8]);
        let params = vec![l0, w1, w2];
        // Next-layer feedback: W1^T (2 x 3) row-major = w1.w.
        let t = transposed_forward_path(&params, 0, FeedbackSource::NextLayer);
        assert_eq!(t, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // Broadcast: W1^T W2^T (2 x 1): [1 + 1 - 3, 4 + 2.5 - 6] = [-1, 0.5].
        let t = transposed_forward_path(&params, 0, FeedbackSource::Broadcast);
        assert_eq!(t, vec![-1.0, 0.5]);
    }

    #[test]
    fn csv_round_trip() {
        let r = AlignmentRecord {
            epoch: 2,
            layer: 1,
            update_angle_deg: 71.25,
            update_examples: 99,
            feedback_angle_deg: 88.5,
            pinv_angle_deg: 40.0,
        };
        let log = AlignmentLog {
            records: vec![r.clone()],
            ..Default::default()
        };
        let dir = std::env::temp_dir().join(format!("apical-align-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        log.write(&dir).unwrap();
        let back = AlignmentLog::load(&dir, 5).records;
        assert_eq!(back, vec![r]);
        assert!(AlignmentLog::load(&dir, 1).records.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinv_error_inverts_a_wide_matrix() {
        // W_{m+1}: 2 x 3 (W[i][j] = w[j * 2 + i]), full row rank, so W W^+ = I: the
        // pinv error without its k_B lambda sigma' factor, mapped through W, is e_above again.
        let above = layer(3, 2, vec![1.0, 0.5, -2.0, 1.0, 0.25, 3.0]);
        let d = crate::model::neuron::Dynamics::new(&crate::model::config::NeuronConfig::default());
        let c_f = [0.3f32, -1.0, 2.0];
        let e_above = [0.7f32, -0.2];
        let mut out = [0.0f32; 3];
        assert!(pinv_error(&d, &above, &e_above, &c_f, &mut out));
        let x: Vec<f64> = out
            .iter()
            .zip(&c_f)
            .map(|(&o, &c)| {
                o as f64 / (d.k_b * d.lambda_max * crate::model::neuron::sigmoid_prime(c)) as f64
            })
            .collect();
        for (i, &e) in e_above.iter().enumerate() {
            let wx: f64 = (0..3).map(|j| above.w[j * 2 + i] as f64 * x[j]).sum();
            assert!((wx - e as f64).abs() < 1e-5, "row {i}: {wx} vs {e}");
        }
        // The minimum-norm solution lies in the row space of W: x = W^T z for some z.
        // With rows r0 = (1, -2, 0.25) and r1 = (0.5, 1, 3), x . (r0 x r1) = 0.
        let (r0, r1) = ([1.0f64, -2.0, 0.25], [0.5f64, 1.0, 3.0]);
        let cross = [
            r0[1] * r1[2] - r0[2] * r1[1],
            r0[2] * r1[0] - r0[0] * r1[2],
            r0[0] * r1[1] - r0[1] * r1[0],
        ];
        let dot: f64 = x.iter().zip(&cross).map(|(a, b)| a * b).sum();
        assert!(dot.abs() < 1e-4, "x is not in W's row space: {dot}");
        // A rank-deficient W (two equal rows) has no inverse Gram matrix.
        let flat = layer(3, 2, vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert!(!pinv_error(&d, &flat, &e_above, &c_f, &mut out));
        assert_eq!(out, [0.0; 3]);
    }

    #[test]
    fn pinv_error_of_a_tall_matrix_is_the_least_squares_solution() {
        // W_{m+1}: 3 x 2 (W[i][j] = w[j * 3 + i]): columns (1, 0, 1) and (0, 2, 1). The
        // normal equations W^T W x = W^T e: [[2, 1], [1, 5]] x = [e0 + e2, 2 e1 + e2].
        let above = layer(2, 3, vec![1.0, 0.0, 1.0, 0.0, 2.0, 1.0]);
        let d = crate::model::neuron::Dynamics::new(&crate::model::config::NeuronConfig::default());
        let c_f = [0.0f32, 0.0];
        let e = [1.0f32, 0.5, -1.0];
        let mut out = [0.0f32; 2];
        assert!(pinv_error(&d, &above, &e, &c_f, &mut out));
        // rhs = [0, 0]: x = 0 exactly; then with e = (1, 0.5, 0): rhs = [1, 1], x = (4, 1) / 9.
        assert_eq!(out, [0.0, 0.0]);
        let e = [1.0f32, 0.5, 0.0];
        assert!(pinv_error(&d, &above, &e, &c_f, &mut out));
        let f = d.k_b * d.lambda_max * 0.25;
        assert!((out[0] - 4.0 / 9.0 * f).abs() < 1e-6, "{}", out[0]);
        assert!((out[1] - 1.0 / 9.0 * f).abs() < 1e-6, "{}", out[1]);
    }

    #[test]
    fn csv_without_the_pinv_column_still_parses() {
        let text =
            "epoch,layer,update_angle_deg,update_examples,feedback_angle_deg\n3,0,80.5,100,88.0\n";
        let r = parse_csv(text);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].update_angle_deg, 80.5);
        assert!(r[0].pinv_angle_deg.is_nan());
    }
}
