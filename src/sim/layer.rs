//! A layer of neurons: its learned parameters and its state as plain arrays, split into
//! fixed blocks of neurons. Every block owns its random stream, so a layer's update gives the
//! same result whether its blocks run on one thread or many.

use crate::base::rng::{LaneRng, Rng};
use crate::base::simd::{self, Level};
use crate::model::neuron::{self, DrawScratch, Dynamics};
use crate::model::params::LayerParams;
use crate::model::synapse::{DenseInput, Kernel, PspTrace};
use crate::sim::events::EventSeq;
use crate::sim::exec::LayerExec;
use crate::sim::team::with_team;
use serde::{Deserialize, Serialize};

/// Means over the integration window of one phase (eq. 5.1-5.5), one value per neuron.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseMeans {
    /// Mean somatic potential C.
    pub c: Vec<f32>,
    /// Mean apical potential A (hidden layers).
    pub a: Vec<f32>,
    /// Mean firing rate lambda_max sigma(C) in spikes per step.
    pub rate: Vec<f32>,
}

impl PhaseMeans {
    fn new(n: usize) -> Self {
        PhaseMeans {
            c: vec![0.0; n],
            a: vec![0.0; n],
            rate: vec![0.0; n],
        }
    }
}

/// The state of a contiguous block of neurons `lo..hi` of a layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NeuronBlock {
    pub lo: usize,
    pub hi: usize,
    /// Somatic potential C.
    pub soma: Vec<f32>,
    /// Basal (hidden) or dendritic (output) potential B.
    pub basal: Vec<f32>,
    /// Apical potential A (hidden layers; empty for the output layer).
    pub apical: Vec<f32>,
    /// Firing rate lambda_C of the current step, spikes per step.
    pub rate: Vec<f32>,
    /// Feedforward synaptic input history (basal dendrite).
    pub basal_in: PspTrace,
    /// Feedback synaptic input history (apical dendrite).
    pub apical_in: PspTrace,
    sum_c: Vec<f32>,
    sum_a: Vec<f32>,
    sum_rate: Vec<f32>,
    /// Apical potentials of the last `hist_len` steps (stochastic plateau times only).
    apical_hist: Vec<f32>,
    hist_len: usize,
    hist_head: usize,
    pub rng: LaneRng,
    #[serde(skip)]
    draw: DrawScratch,
    /// Spikes of the current step as neuron indices of the layer (see LayerState::events).
    #[serde(skip)]
    events: Vec<u32>,
    /// Spikes of every step of the current phase (phase-at-once schedule only).
    #[serde(skip)]
    seq: EventSeq,
}

impl NeuronBlock {
    fn new(kernel: &Kernel, lo: usize, hi: usize, hidden: bool, hist_len: usize, rng: Rng) -> Self {
        let len = hi - lo;
        let fb_len = if hidden { len } else { 0 };
        NeuronBlock {
            lo,
            hi,
            soma: vec![0.0; len],
            basal: vec![0.0; len],
            apical: vec![0.0; fb_len],
            rate: vec![0.0; len],
            basal_in: PspTrace::with_traces(kernel, len),
            apical_in: PspTrace::new(kernel, fb_len),
            sum_c: vec![0.0; len],
            sum_a: vec![0.0; fb_len],
            sum_rate: vec![0.0; len],
            apical_hist: vec![0.0; hist_len * fb_len],
            hist_len,
            hist_head: 0,
            rng: LaneRng::new(rng),
            draw: DrawScratch::default(),
            events: Vec::with_capacity(len),
            seq: EventSeq::default(),
        }
    }

    fn reset(&mut self) {
        for v in [
            &mut self.soma,
            &mut self.basal,
            &mut self.apical,
            &mut self.rate,
            &mut self.sum_c,
            &mut self.sum_a,
            &mut self.sum_rate,
            &mut self.apical_hist,
        ] {
            v.fill(0.0);
        }
        self.events.clear();
        self.basal_in.reset();
        self.apical_in.reset();
        self.hist_head = 0;
    }

    /// One time step of this block, in the order of sections 3-4: feedback of the step
    /// before, basal dendrite, apical dendrite, soma, spikes, window sums. `teach` is the
    /// per-neuron teaching conductance g_E of the output layer's target phase.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn step(
        &mut self,
        p: &LayerParams,
        kernel: &Kernel,
        d: &Dynamics,
        input: BasalInput<'_>,
        feedback: Option<&[u32]>,
        teach: Option<&[f32]>,
        in_window: bool,
        need_apical: bool,
    ) {
        let hidden = p.n_fb > 0;
        if let Some(fb) = feedback {
            self.push_feedback(p, kernel, fb); // eq. 3.2
        }
        self.update_basal(p, kernel, input); // eq. 2.3-2.5, 3.1, 4.1
        if hidden && need_apical {
            self.update_apical(p, kernel); // eq. 3.2
        }
        self.update_soma(d, hidden, teach); // eq. 3.3, 4.2-4.3
        self.emit_spikes(d); // eq. 3.4
        if hidden && self.hist_len > 0 {
            self.keep_apical_history(); // eq. 5.5
        }
        if in_window {
            self.add_to_window(hidden); // eq. 5.2-5.4
        }
    }

    /// Steps `0..input.steps()` of a phase at once, all but the apical dendrite: basal
    /// dendrite, soma, spikes (kept per step in `seq`), window sums of C and the rate. Only
    /// for phases in which A does not drive the soma (g_A = 0): the soma's g_A (A - C) term
    /// is then zero whatever A holds, so the steps of the soma come out as in [`Self::step`].
    #[inline(always)]
    fn run_feedforward(
        &mut self,
        p: &LayerParams,
        kernel: &Kernel,
        d: &Dynamics,
        input: &EventSeq,
        teach: Option<&[f32]>,
        window: usize,
    ) {
        let hidden = p.n_fb > 0;
        let len = input.steps();
        self.seq.clear();
        for t in 0..len {
            self.update_basal(p, kernel, BasalInput::Events(input.step(t))); // eq. 2.3-2.5, 3.1, 4.1
            self.update_soma(d, hidden, teach); // eq. 3.3, 4.2-4.3
            self.emit_spikes(d); // eq. 3.4
            self.seq.push_step(&self.events);
            if len - 1 - t < window {
                add_assign(&mut self.sum_c, &self.soma); // eq. 5.2, 5.4
                add_assign(&mut self.sum_rate, &self.rate);
            }
        }
    }

    /// The apical dendrite over the steps of the phase [`Self::run_feedforward`] ran: each
    /// step's feedback spikes enter the apical input history (the step after them sees
    /// them), A is computed in the integration window and summed there (eq. 3.2, 5.3), as
    /// [`Self::step`] would have.
    #[inline(always)]
    fn run_apical(&mut self, p: &LayerParams, kernel: &Kernel, feedback: &EventSeq, window: usize) {
        let len = feedback.steps();
        for t in 0..len {
            if t > 0 {
                self.push_feedback(p, kernel, feedback.step(t - 1)); // eq. 3.2
            }
            if len - 1 - t < window {
                self.update_apical(p, kernel); // eq. 3.2
                add_assign(&mut self.sum_a, &self.apical); // eq. 5.3
            }
        }
        if len > 0 {
            self.push_feedback(p, kernel, feedback.step(len - 1));
        }
    }

    /// Does `work` on this block.
    #[inline(always)]
    fn run(&mut self, p: &LayerParams, kernel: &Kernel, d: &Dynamics, work: BlockWork<'_>) {
        match work {
            BlockWork::Step {
                input,
                feedback,
                teach,
                in_window,
                need_apical,
            } => self.step(p, kernel, d, input, feedback, teach, in_window, need_apical),
            BlockWork::Feedforward {
                input,
                teach,
                window,
            } => self.run_feedforward(p, kernel, d, input, teach, window),
            BlockWork::Apical { feedback, window } => self.run_apical(p, kernel, feedback, window),
        }
    }

    /// Eq. 2.3 / 3.1: B = W s + b (event-driven: the rows of this step's input spikes enter
    /// the PSP traces), or the dense baseline's full product.
    #[inline(always)]
    fn update_basal(&mut self, p: &LayerParams, kernel: &Kernel, input: BasalInput<'_>) {
        let (lo, hi) = (self.lo, self.hi);
        match input {
            BasalInput::Events(in_events) => {
                self.basal_in.push_rows(kernel, &p.w, p.n, lo, in_events);
                self.basal_in
                    .potential_into(kernel, &p.b[lo..hi], &mut self.basal);
            }
            BasalInput::Dense(psp) => dense_basal(p, psp, lo, &mut self.basal),
        }
    }

    /// Eq. 3.2: the feedback spikes of one step enter the apical input history (the rows
    /// of Y of this block's neurons); they reach A at the step after them.
    #[inline(always)]
    fn push_feedback(&mut self, p: &LayerParams, kernel: &Kernel, fb_events: &[u32]) {
        self.apical_in
            .push_rows(kernel, &p.y, p.n, self.lo, fb_events);
    }

    /// Eq. 3.2: A = Y s_out + c, from the feedback PSPs as of the previous step (a pure
    /// function of them, so steps that do not read A skip it).
    #[inline(always)]
    fn update_apical(&mut self, p: &LayerParams, kernel: &Kernel) {
        let (lo, hi) = (self.lo, self.hi);
        self.apical_in
            .potential_into(kernel, &p.c[lo..hi], &mut self.apical);
    }

    /// Eq. 3.3 (hidden) or 4.2-4.3 (output, with the teaching current in the target phase).
    #[inline(always)]
    fn update_soma(&mut self, d: &Dynamics, hidden: bool, teach: Option<&[f32]>) {
        if hidden {
            neuron::hidden_soma_step(d, &mut self.soma, &self.basal, &self.apical);
        } else {
            let teach = teach.map(|t| &t[self.lo..self.hi]);
            neuron::output_soma_step(d, &mut self.soma, &self.basal, teach);
        }
    }

    /// Eq. 3.4: rates and Poisson spikes, one uniform per neuron from the block's lanes.
    #[inline(always)]
    fn emit_spikes(&mut self, d: &Dynamics) {
        self.draw.fit(self.hi - self.lo);
        self.rng.fill_uniforms(&mut self.draw.uniforms);
        self.events.clear();
        neuron::rates_and_spikes(
            d,
            &self.soma,
            &self.draw.uniforms,
            &mut self.rate,
            &mut self.draw.count,
            &mut self.draw.cand,
            &mut self.events,
            self.lo as u32,
        );
    }

    /// Eq. 5.5: the apical potentials of the last `hist_len` steps (stochastic plateau
    /// times read their window from it).
    #[inline(always)]
    fn keep_apical_history(&mut self) {
        let len = self.hi - self.lo;
        self.hist_head = (self.hist_head + 1) % self.hist_len;
        let h = self.hist_head * len;
        self.apical_hist[h..h + len].copy_from_slice(&self.apical);
    }

    /// Eq. 5.2-5.4: sums of C, the rate and A over the integration window.
    #[inline(always)]
    pub(crate) fn add_to_window(&mut self, hidden: bool) {
        add_assign(&mut self.sum_c, &self.soma);
        add_assign(&mut self.sum_rate, &self.rate);
        if hidden {
            add_assign(&mut self.sum_a, &self.apical);
        }
    }

    /// Writes the window means into `means` and clears the sums. `offsets` (stochastic
    /// plateau times) shifts each neuron's apical window back by that many steps.
    fn take_means(&mut self, window: usize, means: &mut PhaseMeans, offsets: Option<&[u8]>) {
        let inv = 1.0 / window as f32;
        let (lo, hi) = (self.lo, self.hi);
        for (m, s) in means.c[lo..hi].iter_mut().zip(&self.sum_c) {
            *m = s * inv;
        }
        for (m, s) in means.rate[lo..hi].iter_mut().zip(&self.sum_rate) {
            *m = s * inv;
        }
        if !self.apical.is_empty() {
            match offsets {
                None => {
                    for (m, s) in means.a[lo..hi].iter_mut().zip(&self.sum_a) {
                        *m = s * inv;
                    }
                }
                Some(off) => {
                    // Eq. 5.5: mean of A over the `window` steps ending `off` steps early.
                    let len = hi - lo;
                    for (i, m) in means.a[lo..hi].iter_mut().enumerate() {
                        let o = off[lo + i] as usize;
                        let mut s = 0.0;
                        for back in o..o + window {
                            let slot = (self.hist_head + self.hist_len - back) % self.hist_len;
                            s += self.apical_hist[slot * len + i];
                        }
                        *m = s * inv;
                    }
                }
            }
        }
        self.sum_c.fill(0.0);
        self.sum_a.fill(0.0);
        self.sum_rate.fill(0.0);
    }
}

/// What a block does in one call: one step (the per-step schedule), or the feedforward
/// part or the apical part of a whole phase (the phase-at-once schedule).
#[derive(Clone, Copy)]
enum BlockWork<'a> {
    Step {
        input: BasalInput<'a>,
        feedback: Option<&'a [u32]>,
        teach: Option<&'a [f32]>,
        in_window: bool,
        need_apical: bool,
    },
    Feedforward {
        input: &'a EventSeq,
        teach: Option<&'a [f32]>,
        window: usize,
    },
    Apical {
        feedback: &'a EventSeq,
        window: usize,
    },
}

/// [`NeuronBlock::run`] compiled for the instruction set `simd` (at most what the CPU
/// has): a block run by a team thread is called through a pointer, outside the schedule's
/// code compiled for it, and would otherwise run the baseline build (same results, slower).
#[inline(always)]
fn run_block(
    simd: Level,
    b: &mut NeuronBlock,
    p: &LayerParams,
    kernel: &Kernel,
    d: &Dynamics,
    work: BlockWork<'_>,
) {
    #[cfg(target_arch = "x86_64")]
    match simd {
        Level::Avx512 => {
            // SAFETY: `simd` is at most simd::detect(): the CPU has AVX-512 F/VL/BW/DQ.
            unsafe { run_block_avx512(b, p, kernel, d, work) };
            return;
        }
        Level::Avx2 => {
            // SAFETY: `simd` is at most simd::detect(): the CPU has AVX2.
            unsafe { run_block_avx2(b, p, kernel, d, work) };
            return;
        }
        Level::Baseline => {}
    }
    let _ = simd;
    b.run(p, kernel, d, work);
}

/// [`NeuronBlock::run`] compiled for a wider instruction set (`$features`), without fused
/// multiply-add (as the schedule's builds: bit-identical results).
macro_rules! run_block_compiled_for {
    ($name:ident, $features:literal) => {
        /// [`NeuronBlock::run`] compiled with the target features in its attribute.
        ///
        /// # Safety
        /// Only call on a CPU that has those features.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(
            b: &mut NeuronBlock,
            p: &LayerParams,
            kernel: &Kernel,
            d: &Dynamics,
            work: BlockWork<'_>,
        ) {
            b.run(p, kernel, d, work);
        }
    };
}
run_block_compiled_for!(run_block_avx2, "avx2");
run_block_compiled_for!(run_block_avx512, "avx2,avx512f,avx512vl,avx512bw,avx512dq");

/// `work` on every block: shared among `exec.threads` threads (this thread's
/// [`crate::sim::team::Team`]) where there are several of each, else in order on this
/// thread.
#[inline(always)]
fn run_blocks(
    blocks: &mut [NeuronBlock],
    p: &LayerParams,
    kernel: &Kernel,
    d: &Dynamics,
    work: BlockWork<'_>,
    exec: LayerExec,
) {
    if exec.threads > 1 && blocks.len() > 1 {
        // Never more than this CPU has (the level is checked where it is used).
        let simd = exec.simd.min(simd::detect());
        with_team(exec.threads, |team| {
            team.for_each_mut(blocks, |b| run_block(simd, b, p, kernel, d, work))
        });
    } else {
        for b in blocks {
            b.run(p, kernel, d, work);
        }
    }
}

/// Where a block's basal input comes from in one step.
#[derive(Clone, Copy)]
enum BasalInput<'a> {
    /// The presynaptic spikes of this step (event-driven, the default).
    Events(&'a [u32]),
    /// The per-input PSPs s of this step (dense baseline).
    Dense(&'a [f32]),
}

/// The dense baseline of eq. 3.1, as the reference computes it: B = W s + b with a full
/// matrix-vector product over every input, zero PSPs included.
fn dense_basal(p: &LayerParams, psp: &[f32], lo: usize, out: &mut [f32]) {
    let len = out.len();
    out.copy_from_slice(&p.b[lo..lo + len]);
    for (j, &s) in psp.iter().enumerate() {
        let row = &p.w[j * p.n + lo..j * p.n + lo + len];
        for (o, &w) in out.iter_mut().zip(row) {
            *o += w * s;
        }
    }
}

#[inline(always)]
fn add_assign(acc: &mut [f32], x: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

/// The state of one layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerState {
    pub n: usize,
    pub blocks: Vec<NeuronBlock>,
    /// Spikes of the current step: neuron indices, repeated for counts above one.
    pub events: Vec<u32>,
    /// Window means of the last forward and target phases.
    pub forward: PhaseMeans,
    pub target: PhaseMeans,
    /// Spikes emitted since the counter was last cleared.
    pub spike_count: u64,
    /// Rate mode (section 9): the sum of every neuron's rate over the steps since the counter
    /// was last cleared, the expected spike count. Not saved (a run resumed inside an epoch
    /// counts from the resume on).
    #[serde(skip)]
    pub rate_sum: f64,
    /// The dense baseline's per-input PSPs (None: event-driven, the default). Never saved.
    #[serde(skip)]
    pub dense: Option<DenseInput>,
    /// Spikes of every step of the current phase (phase-at-once schedule only). Never saved.
    #[serde(skip)]
    pub seq: EventSeq,
}

impl LayerState {
    /// `rngs(b)` gives block b its stream; `hist_len` > 0 keeps apical history for
    /// stochastic plateau times.
    pub fn new(
        kernel: &Kernel,
        n: usize,
        hidden: bool,
        block_size: usize,
        hist_len: usize,
        mut rngs: impl FnMut(usize) -> Rng,
    ) -> Self {
        let blocks = (0..n.div_ceil(block_size))
            .map(|b| {
                let lo = b * block_size;
                let hi = (lo + block_size).min(n);
                NeuronBlock::new(kernel, lo, hi, hidden, hist_len, rngs(b))
            })
            .collect();
        LayerState {
            n,
            blocks,
            events: Vec::with_capacity(n),
            forward: PhaseMeans::new(n),
            target: PhaseMeans::new(n),
            spike_count: 0,
            rate_sum: 0.0,
            dense: None,
            seq: EventSeq::default(),
        }
    }

    /// Zero potentials, empty histories (the rng streams carry on).
    pub fn reset(&mut self) {
        for b in &mut self.blocks {
            b.reset();
        }
        self.events.clear();
        if let Some(d) = &mut self.dense {
            d.reset();
        }
    }

    /// Switches the dense baseline on (per-input PSPs of `n_pre` inputs, B = W s + b every
    /// step) or off (event-driven). The input history starts empty.
    pub fn set_dense(&mut self, kernel: &Kernel, n_pre: Option<usize>) {
        self.dense = n_pre.map(|n| DenseInput::new(kernel, n));
    }

    pub(crate) fn reseed(&mut self, mut rngs: impl FnMut(usize) -> Rng) {
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.rng = LaneRng::new(rngs(i));
        }
    }

    /// One time step of the whole layer, its blocks shared among `exec.threads` threads
    /// (this thread's [`crate::sim::team::Team`]; 1: in order on this thread). The apical
    /// potentials are brought up to date only when `need_apical` (they must be whenever the
    /// soma, the window means or an observer read them). `feedback`: the feedback spikes of
    /// the step before, which each block adds to its apical input history first (as
    /// `LayerState::push_feedback` would have at the end of that step: the same sums, in
    /// the same order, but shared among the threads).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn step(
        &mut self,
        p: &LayerParams,
        kernel: &Kernel,
        d: &Dynamics,
        in_events: &[u32],
        feedback: Option<&[u32]>,
        teach: Option<&[f32]>,
        in_window: bool,
        need_apical: bool,
        exec: LayerExec,
    ) {
        let input = match &mut self.dense {
            Some(dense) => BasalInput::Dense(dense.step(kernel, in_events)),
            None => BasalInput::Events(in_events),
        };
        let work = BlockWork::Step {
            input,
            feedback,
            teach,
            in_window,
            need_apical,
        };
        run_blocks(&mut self.blocks, p, kernel, d, work, exec);
        self.events.clear();
        for b in &self.blocks {
            self.events.extend_from_slice(&b.events);
        }
        self.spike_count += self.events.len() as u64;
    }

    /// The steps of a whole phase at once (phase-at-once schedule), all but the apical
    /// dendrite: every block runs its basal dendrite, soma and spikes through the phase
    /// on the input spikes of each step in `input` (one hand-over to the team per phase),
    /// then the blocks' spikes are gathered per step into `seq` (and the last step's into
    /// `events`). Requires g_A = 0 and the event-driven input (see
    /// [`NeuronBlock::run_feedforward`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn run_feedforward(
        &mut self,
        p: &LayerParams,
        kernel: &Kernel,
        d: &Dynamics,
        input: &EventSeq,
        teach: Option<&[f32]>,
        window: usize,
        exec: LayerExec,
    ) {
        debug_assert!(self.dense.is_none());
        let work = BlockWork::Feedforward {
            input,
            teach,
            window,
        };
        run_blocks(&mut self.blocks, p, kernel, d, work, exec);
        self.seq.clear();
        for t in 0..input.steps() {
            self.seq
                .push_step_of(self.blocks.iter().map(|b| b.seq.step(t)));
        }
        self.spike_count += self.seq.total() as u64;
        self.events.clear();
        for b in &self.blocks {
            self.events.extend_from_slice(&b.events);
        }
    }

    /// The apical dendrite through the phase [`LayerState::run_feedforward`] ran, on the
    /// feedback spikes of each step (`feedback`, the source layer's `seq`), shared among
    /// the threads; the last step's feedback is delivered too.
    #[inline(always)]
    pub(crate) fn run_apical(
        &mut self,
        p: &LayerParams,
        kernel: &Kernel,
        d: &Dynamics,
        feedback: &EventSeq,
        window: usize,
        exec: LayerExec,
    ) {
        let work = BlockWork::Apical { feedback, window };
        run_blocks(&mut self.blocks, p, kernel, d, work, exec);
    }

    /// Adds the feedback spikes of one step to the apical input history (eq. 3.2): they
    /// reach A at the next step. The schedule calls it for a phase's last step; the steps
    /// before it hand their feedback to the next [`LayerState::step`].
    pub(crate) fn push_feedback(&mut self, p: &LayerParams, kernel: &Kernel, fb_events: &[u32]) {
        for b in &mut self.blocks {
            b.push_feedback(p, kernel, fb_events);
        }
    }

    /// Ends a phase: stores the window means (forward or target).
    pub(crate) fn end_phase(&mut self, forward: bool, window: usize, offsets: Option<&[u8]>) {
        let means = if forward {
            &mut self.forward
        } else {
            &mut self.target
        };
        for b in &mut self.blocks {
            b.take_means(window, means, offsets);
        }
    }

    /// Basal (dendritic) potentials B of all neurons, in order.
    pub fn basal(&self) -> impl Iterator<Item = f32> + '_ {
        self.blocks.iter().flat_map(|b| b.basal.iter().copied())
    }

    /// Somatic potentials of all neurons, in order.
    pub fn soma(&self) -> impl Iterator<Item = f32> + '_ {
        self.blocks.iter().flat_map(|b| b.soma.iter().copied())
    }

    /// Whether every potential of the layer is finite.
    pub fn is_finite(&self) -> bool {
        self.blocks.iter().all(|b| {
            b.soma
                .iter()
                .chain(&b.basal)
                .chain(&b.apical)
                .all(|v| v.is_finite())
        })
    }
}
