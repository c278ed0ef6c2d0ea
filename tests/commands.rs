//! The integration tests that run the `apical` binary, one module per file of tests/ (see
//! tests/suite.rs for why the tests are three binaries). A filter selects one file's
//! tests: `cargo test --profile fast --test commands sweep::`.

// Each file declares `mod common;` for itself, as it did as a binary of its own: the small
// helper module is compiled once per file that uses it.
#![allow(clippy::duplicate_mod)]

#[path = "burst.rs"]
mod burst;
#[path = "cli.rs"]
mod cli;
#[path = "crash_traces.rs"]
mod crash_traces;
#[path = "doors.rs"]
mod doors;
#[path = "hostile.rs"]
mod hostile;
#[path = "regression.rs"]
mod regression;
#[path = "reliability.rs"]
mod reliability;
#[path = "reproduce.rs"]
mod reproduce;
#[path = "rules.rs"]
mod rules;
#[path = "sweep.rs"]
mod sweep;
#[path = "threads.rs"]
mod threads;
#[path = "verify_cache.rs"]
mod verify_cache;
