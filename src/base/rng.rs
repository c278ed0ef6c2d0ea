//! Seeded random streams.
//!
//! Every random draw of a run comes from a stream named by the run seed and a key (purpose,
//! epoch, example, layer, block ...). Streams never depend on the thread that uses them, so
//! a run is a pure function of (model, data, seed) at any thread count.

use rand::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The generator behind every stream: small, fast and with a stable, documented output.
pub(crate) type Rng = Xoshiro256PlusPlus;

/// What a stream is used for; part of its key.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Purpose {
    Init = 1,
    Shuffle = 2,
    PhaseLengths = 3,
    TrainInput = 4,
    TrainSpikes = 5,
    TestSubset = 6,
    TestExample = 7,
    Plateau = 8,
    Feedback = 9,
}

/// The parts of stream keys that are not plain epoch or example numbers, in one place
/// (their values are part of every run's results: changing one changes the streams).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The end-of-epoch test of an epoch (1-based), or with epoch 0 the test of the initial
    /// network before training: [`Purpose::TestSubset`] and [`Purpose::TestExample`].
    EpochTest { epoch: usize },
    /// Quick test `q` inside an epoch.
    QuickTest { epoch: usize, q: usize },
    /// `apical eval` of a checkpoint taken after `epochs_done` epochs.
    Eval { epochs_done: usize },
    /// Repeat `repeat` (>= 1) of `apical eval --repeats`: the same test images as
    /// [`Key::Eval`], spike streams of its own (repeat 0 is `Eval` itself).
    EvalRepeat { epochs_done: usize, repeat: usize },
    /// Diagnostic simulations of `apical plot` (spikes and phase lengths of their own).
    Diagnostic,
    /// The Poisson input's stream among a network state's streams.
    Input,
    /// Neuron block `block` of layer `layer` among a network state's streams.
    Block { layer: usize, block: usize },
}

impl Key {
    /// The key's value in [`stream`]'s key list.
    pub const fn value(self) -> u64 {
        match self {
            Key::EpochTest { epoch } => epoch as u64,
            Key::QuickTest { epoch, q } => (1 << 48) | ((epoch as u64) << 24) | q as u64,
            Key::Eval { epochs_done } => (2 << 48) | epochs_done as u64,
            Key::EvalRepeat {
                epochs_done,
                repeat,
            } => (3 << 48) | ((repeat as u64) << 24) | epochs_done as u64,
            Key::Diagnostic => u64::MAX - 7,
            Key::Input => u64::MAX,
            Key::Block { layer, block } => ((layer as u64) << 32) | block as u64,
        }
    }
}

/// SplitMix64's finaliser: a bijective 64-bit mix.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream for `(seed, purpose, key...)`.
pub fn stream(seed: u64, purpose: Purpose, key: &[u64]) -> Rng {
    let mut h = mix(seed ^ 0x9e37_79b9_7f4a_7c15);
    h = mix(h ^ (purpose as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for &k in key {
        h = mix(h.wrapping_add(0x9e37_79b9_7f4a_7c15) ^ k);
    }
    Rng::seed_from_u64(h)
}

/// A uniform f32 in [0, 1) from 24 random bits.
#[inline]
pub(crate) fn unit_f32(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform f64 in (0, 1], never 0 (safe for logarithms).
#[inline]
pub(crate) fn open_unit_f64(bits: u64) -> f64 {
    ((bits >> 11) + 1) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// Lanes of a [`LaneRng`].
pub const LANES: usize = 8;

/// Eight interleaved Xoshiro256++ generators, stepped together so that the loop
/// vectorises: the random stream of one block of neurons. Each lane is seeded from its own
/// 64-bit draw of the block's keyed stream through SplitMix64, so the whole is still a
/// pure function of the key. Uniforms come out two per 64-bit draw: the low halves of the
/// eight lanes, then their high halves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRng {
    s: [[u64; LANES]; 4],
}

impl LaneRng {
    /// The lanes of the stream `rng`.
    pub fn new(mut rng: Rng) -> Self {
        let mut s = [[0u64; LANES]; 4];
        for lane in 0..LANES {
            let mut x = rng.next_u64();
            for word in s.iter_mut() {
                // SplitMix64: four outputs of distinct counters are never all zero.
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                word[lane] = mix(x);
            }
        }
        LaneRng { s }
    }

    /// One Xoshiro256++ step of every lane.
    #[inline(always)]
    pub(crate) fn next_lanes(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; LANES];
        for i in 0..LANES {
            out[i] = s0[i]
                .wrapping_add(s3[i])
                .rotate_left(23)
                .wrapping_add(s0[i]);
            let t = s1[i] << 17;
            s2[i] ^= s0[i];
            s3[i] ^= s1[i];
            s1[i] ^= s2[i];
            s0[i] ^= s3[i];
            s2[i] ^= t;
            s3[i] = s3[i].rotate_left(45);
        }
        out
    }

    /// Fills `out` with uniforms in [0, 1) (24 random bits each, see `unit_f32`).
    #[inline(always)]
    pub fn fill_uniforms(&mut self, out: &mut [f32]) {
        let mut chunks = out.chunks_exact_mut(2 * LANES);
        for c in &mut chunks {
            let r = self.next_lanes();
            let (lo, hi) = c.split_at_mut(LANES);
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(&r) {
                *l = unit_f32(x as u32);
                *h = unit_f32((x >> 32) as u32);
            }
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let r = self.next_lanes();
            let mut tmp = [0.0f32; 2 * LANES];
            for (i, &x) in r.iter().enumerate() {
                tmp[i] = unit_f32(x as u32);
                tmp[LANES + i] = unit_f32((x >> 32) as u32);
            }
            let n = rest.len();
            rest.copy_from_slice(&tmp[..n]);
        }
    }
}
