//! The integration tests that run the library in this process, one module per file of
//! tests/. The tests are three binaries instead of one per file (each of which linked the
//! whole library and compiled the same generic code again; docs/testing.md, Build time):
//!
//! - this one, `suite`: no test here starts a process;
//! - `commands` (tests/commands.rs): the tests that run the `apical` binary;
//! - `nwb` (tests/nwb.rs): writes HDF5 files in this process and runs the binary.
//!
//! They are kept apart because HDF5 opens files without close-on-exec and locks them: a
//! child process started by one test inherits a file another test has open for writing,
//! with its lock, and that test's next open of the file fails until the child exits.
//! Tests share the harness's threads (as many as the CPUs); a filter selects one file's
//! tests: `cargo test --profile fast --test suite traces::`.
//!
//! Every `tests/*.rs` is in exactly one of them (`every_test_file_is_in_one_binary`): with
//! `autotests = false` in Cargo.toml a file not listed would never run.

// Each file declares `mod common;` for itself, as it did as a binary of its own: the small
// helper module is compiled once per file that uses it.
#![allow(clippy::duplicate_mod)]

#[path = "checkpoint.rs"]
mod checkpoint;
#[path = "config.rs"]
mod config;
#[path = "data.rs"]
mod data;
#[path = "dataset.rs"]
mod dataset;
#[path = "dense.rs"]
mod dense;
#[path = "determinism.rs"]
mod determinism;
#[path = "dynamics.rs"]
mod dynamics;
#[path = "fuzz.rs"]
mod fuzz;
#[path = "learning.rs"]
mod learning;
#[path = "minibatch.rs"]
mod minibatch;
#[path = "perf.rs"]
mod perf;
#[path = "rate.rs"]
mod rate;
#[path = "run_dir.rs"]
mod run_dir;
#[path = "traces.rs"]
mod traces;

/// Every `tests/*.rs` is a module of `suite` or `commands`, or a test binary of its own in
/// Cargo.toml, exactly once.
#[test]
fn every_test_file_is_in_one_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = |text: &str, name: &str, stem: &str| {
        text.contains(&format!("#[path = \"{name}\"]\nmod {stem};"))
    };
    let suite = include_str!("suite.rs");
    let commands = include_str!("commands.rs");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut bad = Vec::new();
    for e in std::fs::read_dir(root.join("tests")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        let own = manifest.contains(&format!("path = \"tests/{name}\""));
        let n = usize::from(listed(suite, &name, stem))
            + usize::from(listed(commands, &name, stem))
            + usize::from(own);
        if n != 1 {
            bad.push(format!("{name} is in {n} test binaries"));
        }
    }
    assert!(bad.is_empty(), "{bad:?}: list each file in tests/suite.rs or tests/commands.rs (`#[path = \"NAME.rs\"] mod NAME;`)");
}
