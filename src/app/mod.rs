//! Applications built on runs: the benchmark harness ([`bench`](mod@bench)), the paper's
//! experiments ([`reproduce`]), plots ([`plot`], their colours in `palette`) and parameter sweeps ([`sweep`]).
//!
//! May use: every other layer ([`crate::base`], [`crate::model`], [`crate::sim`],
//! [`crate::io`], [`crate::run`]); nothing below uses this layer.

pub mod bench;
pub mod experiments;
pub(crate) mod palette;
pub mod plot;
pub mod reproduce;
pub mod results_page;
pub mod sweep;
