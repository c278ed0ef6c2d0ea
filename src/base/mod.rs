//! Numeric foundations: keyed random streams and the SIMD helpers of the hot loop.
//!
//! Owns: [`rng`] (one stream per purpose, [`rng::Purpose`]), [`simd`] (instruction-set
//! detection, lane tables), [`text`] (bounded reads of model and sweep files). May use: nothing else of the crate (the bottom layer).

pub mod rng;
pub mod simd;
pub mod text;
