//! The dynamic state of a network: potentials, PSP histories and random streams, as plain
//! arrays updated in place.

use crate::base::rng::{stream, Key, LaneRng, Purpose, Rng};
use crate::model::config::FeedbackMode;
use crate::model::input::PoissonInput;
use crate::model::synapse::PresynapticWindow;
use crate::sim::compiled::Model;
use crate::sim::events::EventSeq;
use crate::sim::layer::LayerState;
use serde::{Deserialize, Serialize};

/// The dynamic state of a network: potentials, PSP histories, random streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetState {
    pub input: PoissonInput,
    pub input_rng: LaneRng,
    pub layers: Vec<LayerState>,
    /// s_f of each layer: window-mean PSP of its feedforward input (eq. 5.6).
    pub presyn: Vec<PresynapticWindow>,
    /// s_A,f of each hidden layer's feedback input (learned feedback only, else empty).
    pub presyn_fb: Vec<PresynapticWindow>,
    /// Plateau time offsets of each hidden layer (stochastic plateau times).
    pub plateau_offsets: Vec<Vec<u8>>,
    pub plateau_rng: Rng,
    /// Teaching conductance g_E of each output unit in the target phase.
    pub teach: Vec<f32>,
    /// Errors of each layer at the last learning step.
    pub errors: Vec<Vec<f32>>,
    /// Steps since the last reset.
    pub time_step: u64,
    /// The input's spikes of every step of the current phase (phase-at-once schedule
    /// only). Never saved.
    #[serde(skip)]
    pub input_seq: EventSeq,
    /// BurstCCN's per-layer values of the last learning step (allocated by its first one;
    /// never saved: recomputed from the phase means).
    #[serde(skip)]
    pub burst: BurstScratch,
}

impl NetState {
    /// A zero state whose streams are keyed by `(seed, purpose, key)`.
    pub fn new(model: &Model, seed: u64, purpose: Purpose, key: &[u64]) -> Self {
        let cfg = &model.cfg;
        let topo = &model.topology;
        let sizes = &topo.sizes;
        let m_layers = sizes.len();
        let hist = model.hist_len();
        let block = cfg.training.block_size;
        let layers: Vec<LayerState> = sizes
            .iter()
            .enumerate()
            .map(|(m, &n)| {
                let hidden = m + 1 < m_layers;
                LayerState::new(
                    &model.kernel,
                    n,
                    hidden,
                    block,
                    if hidden { hist } else { 0 },
                    |b| block_stream(seed, purpose, key, m, b),
                )
            })
            .collect();
        let window = cfg.phases.integration_time;
        let presyn = (0..m_layers)
            .map(|m| PresynapticWindow::new(&model.kernel, topo.input_size(m), window))
            .collect();
        let presyn_fb = if cfg.learning.feedback_mode == FeedbackMode::Learned {
            (0..m_layers - 1)
                .map(|m| PresynapticWindow::new(&model.kernel, topo.feedback_size(m), window))
                .collect()
        } else {
            Vec::new()
        };
        NetState {
            input: PoissonInput::new(
                cfg.network.n_in,
                cfg.neuron.lambda_max,
                cfg.input.spike_draw,
            ),
            input_rng: input_stream(seed, purpose, key),
            layers,
            presyn,
            presyn_fb,
            plateau_offsets: sizes[..m_layers - 1].iter().map(|&n| vec![0; n]).collect(),
            plateau_rng: stream(seed, Purpose::Plateau, key),
            teach: vec![0.0; cfg.network.n_out],
            errors: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            time_step: 0,
            input_seq: EventSeq::default(),
            burst: BurstScratch::default(),
        }
    }

    /// Zero potentials and empty spike/PSP histories, input included (section 5).
    pub fn reset(&mut self) {
        self.input.clear();
        for l in &mut self.layers {
            l.reset();
        }
        for p in self.presyn.iter_mut().chain(self.presyn_fb.iter_mut()) {
            p.reset();
        }
        self.time_step = 0;
    }

    /// New random streams keyed by `(seed, purpose, key)`, as `new` would give.
    pub(crate) fn reseed(&mut self, seed: u64, purpose: Purpose, key: &[u64]) {
        self.input_rng = input_stream(seed, purpose, key);
        self.plateau_rng = stream(seed, Purpose::Plateau, key);
        for (m, l) in self.layers.iter_mut().enumerate() {
            l.reseed(|b| block_stream(seed, purpose, key, m, b));
        }
    }

    pub fn output(&self) -> &LayerState {
        self.layers.last().expect("a network has an output layer")
    }

    /// Whether every potential is finite.
    pub fn is_finite(&self) -> bool {
        self.layers.iter().all(|l| l.is_finite())
    }
}

fn input_stream(seed: u64, purpose: Purpose, key: &[u64]) -> LaneRng {
    let mut k = key.to_vec();
    k.push(Key::Input.value());
    LaneRng::new(stream(seed, purpose, &k))
}

fn block_stream(seed: u64, purpose: Purpose, key: &[u64], layer: usize, block: usize) -> Rng {
    let mut k = key.to_vec();
    k.push(Key::Block { layer, block }.value());
    stream(seed, purpose, &k)
}

/// The burst rules' per-layer values of the last example's learning step (docs/model.md,
/// eqs. 11.1-11.6 and 12.1-12.5, and on spiking networks 11.13-11.15), in the paper's
/// units. Kept between examples only to avoid allocating; never saved.
#[derive(Clone, Debug, Default)]
pub struct BurstScratch {
    /// Event rates e_m (eqs. 11.1, 12.1).
    pub e: Vec<Vec<f32>>,
    /// Burst probabilities p_m (eqs. 11.2, 11.5; Burstprop's with the teacher, 12.2, 12.4);
    /// on spiking networks the output layer's only.
    pub p: Vec<Vec<f32>>,
    /// Apical potentials a_m of the hidden layers (eqs. 11.4, 12.3 with the teacher, or on
    /// spiking networks the window mean of eq. 11.13; empty for the output layer).
    pub apical: Vec<Vec<f32>>,
    /// Burstprop's burst probabilities without the teacher, pbar_m (eqs. 12.2, 12.4).
    pub p_base: Vec<Vec<f32>>,
    /// Burstprop's apical potentials without the teacher, abar_m (eq. 12.3).
    pub apical_base: Vec<Vec<f32>>,
    /// Spiking networks: every layer's spikes of each step of the last phase.
    pub log: Vec<EventSeq>,
    /// Spiking networks: whether each spike of `log` was a burst (eq. 11.14), in its order.
    pub flags: Vec<Vec<bool>>,
    /// Spiking networks: each neuron's events and bursts in the integration window.
    pub events: Vec<Vec<u32>>,
    pub bursts: Vec<Vec<u32>>,
    /// Spiking networks: the hidden layers' apical potential of the current step.
    pub a_now: Vec<Vec<f32>>,
    /// Spiking networks: each layer's window events and bursts since the epoch started (or
    /// since a resumed epoch's checkpoint): the burst probability of the metrics.
    pub epoch_events: Vec<u64>,
    pub epoch_bursts: Vec<u64>,
}

impl BurstScratch {
    pub(crate) fn fit(&mut self, sizes: &[usize]) {
        if self.e.len() != sizes.len() {
            let zeros = |n: usize| vec![0.0f32; n];
            self.e = sizes.iter().map(|&n| zeros(n)).collect();
            self.p = sizes.iter().map(|&n| zeros(n)).collect();
            self.p_base = self.p.clone();
            let last = sizes.len() - 1;
            let hidden = |m: usize, n: usize| if m < last { n } else { 0 };
            self.apical = sizes
                .iter()
                .enumerate()
                .map(|(m, &n)| zeros(hidden(m, n)))
                .collect();
            self.a_now = self.apical.clone();
            self.log = vec![EventSeq::default(); sizes.len()];
            self.flags = vec![Vec::new(); sizes.len()];
            self.events = sizes.iter().map(|&n| vec![0; n]).collect();
            self.bursts = self.events.clone();
            self.epoch_events = vec![0; sizes.len()];
            self.epoch_bursts = vec![0; sizes.len()];
            self.apical_base = self.apical.clone();
        }
    }

    /// Forgets the epoch's burst counts (a new epoch, or a resumed one).
    pub(crate) fn start_epoch(&mut self) {
        self.epoch_events.fill(0);
        self.epoch_bursts.fill(0);
    }

    /// Bursts per window event of each layer since the epoch began (NaN for a
    /// layer without events); empty when no burst was drawn.
    pub fn burst_fractions(&self) -> Vec<f64> {
        if self.epoch_events.iter().all(|&e| e == 0) {
            return Vec::new();
        }
        self.epoch_bursts
            .iter()
            .zip(&self.epoch_events)
            .map(|(&b, &e)| b as f64 / e as f64)
            .collect()
    }
}
