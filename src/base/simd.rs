//! Run-time choice of the vector instruction set of the simulation step.
//!
//! The step is written as plain loops over f32 slices that LLVM vectorises. The portable
//! build uses SSE2 (every x86-64 CPU); where the CPU has AVX2, or AVX-512 (F, VL, BW, DQ),
//! the same code compiled for it runs instead. All use only IEEE additions,
//! multiplications, divisions and comparisons in the same order (no fused multiply-add),
//! so they give bit-identical results: a run stays a pure function of (model, data, seed)
//! on any x86-64 machine. `APICAL_NO_AVX512=1` stops at AVX2, `APICAL_NO_AVX2=1` at SSE2.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction set the step is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// SSE2: every x86-64 CPU (and the plain build elsewhere).
    Baseline = 1,
    Avx2 = 2,
    Avx512 = 3,
}

const UNKNOWN: u8 = 0;

static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The instruction set the step uses: the widest the CPU has, unless capped by the
/// environment or [`force_level`].
#[inline]
pub fn level() -> Level {
    match MODE.load(Ordering::Relaxed) {
        1 => Level::Baseline,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let mut l = detect();
            if std::env::var_os("APICAL_NO_AVX512").is_some() {
                l = l.min(Level::Avx2);
            }
            if std::env::var_os("APICAL_NO_AVX2").is_some() {
                l = Level::Baseline;
            }
            MODE.store(l as u8, Ordering::Relaxed);
            l
        }
    }
}

/// Uses at most `cap` (never more than the CPU has). For tests and benchmarks; the results
/// do not depend on it.
pub fn force_level(cap: Level) {
    MODE.store(detect().min(cap) as u8, Ordering::Relaxed);
}

/// The widest instruction set of this CPU.
pub fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
            Level::Avx512
        } else if has!("avx2") {
            Level::Avx2
        } else {
            Level::Baseline
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Baseline
    }
}

/// Bit l set where `a[l] > 0`, for the first eight lanes of `a` (at least eight): one
/// vector comparison and a sign-bit mask on x86-64.
#[inline(always)]
pub(crate) fn positive_mask8(a: &[f32]) -> u32 {
    let a = &a[..8];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cmpgt_ps, _mm_loadu_ps, _mm_movemask_ps, _mm_setzero_ps};
        // SAFETY: SSE2 is part of x86-64, and both loads read four floats of `a`'s eight.
        unsafe {
            let (lo, hi) = (_mm_loadu_ps(a.as_ptr()), _mm_loadu_ps(a.as_ptr().add(4)));
            let zero = _mm_setzero_ps();
            let (mlo, mhi) = (_mm_cmpgt_ps(lo, zero), _mm_cmpgt_ps(hi, zero));
            (_mm_movemask_ps(mlo) | (_mm_movemask_ps(mhi) << 4)) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = 0u32;
        for (l, &x) in a.iter().enumerate() {
            m |= ((x > 0.0) as u32) << l;
        }
        m
    }
}

/// Writes `lo + l` for the set lanes l of `mask`, in increasing order, to the start of
/// `dst` (at least eight entries; what follows them is overwritten with junk).
#[inline(always)]
pub(crate) fn set_lanes(dst: &mut [u32], mask: usize, lo: u32) {
    let (dst, lanes) = (&mut dst[..8], &MASK_LANES[mask & 0xff]);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::_mm_storeu_si128;
        use std::arch::x86_64::{__m128i, _mm_add_epi32, _mm_loadu_si128, _mm_set1_epi32};
        // SAFETY: SSE2 is part of x86-64; both loads and both stores touch four u32 of
        // eight-entry slices.
        unsafe {
            let base = _mm_set1_epi32(lo as i32);
            let src = lanes.as_ptr() as *const __m128i;
            let out = dst.as_mut_ptr() as *mut __m128i;
            _mm_storeu_si128(out, _mm_add_epi32(_mm_loadu_si128(src), base));
            _mm_storeu_si128(out.add(1), _mm_add_epi32(_mm_loadu_si128(src.add(1)), base));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (d, &l) in dst.iter_mut().zip(lanes) {
        *d = lo + l;
    }
}

/// For each 8-bit mask, the indices of its set bits in increasing order (the rest 0): the
/// table that compacts the lanes of a comparison without a branch per lane.
pub(crate) static MASK_LANES: [[u32; 8]; 256] = mask_lanes();

/// For each 8-bit mask, the number of its set bits.
pub(crate) static MASK_LANES_SET: [u8; 256] = mask_counts();

const fn mask_lanes() -> [[u32; 8]; 256] {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut bit, mut k) = (0, 0);
        while bit < 8 {
            if m & (1 << bit) != 0 {
                t[m][k] = bit as u32;
                k += 1;
            }
            bit += 1;
        }
        m += 1;
    }
    t
}

const fn mask_counts() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut m = 0;
    while m < 256 {
        t[m] = (m as u32).count_ones() as u8;
        m += 1;
    }
    t
}
