//! Seeded random streams.
//!
//! Every random draw of a run comes from a stream named by the run seed and a key (purpose,
//! epoch, example, layer, block ...). Streams never depend on the thread that uses them, so
//! a run is a pure function of (model, data, seed) at any thread count.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator behind every stream: small, fast and with a stable, documented output.
pub type Rng = Xoshiro256PlusPlus;

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
pub fn unit_f32(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform f64 in (0, 1], never 0 (safe for logarithms).
#[inline]
pub fn open_unit_f64(bits: u64) -> f64 {
    ((bits >> 11) + 1) as f64 * (1.0 / 9_007_199_254_740_992.0)
}
