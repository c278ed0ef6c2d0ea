//! `apical train --threads N`: a network with a wide layer shares its neuron blocks among
//! the threads and writes the same checkpoints, byte for byte, as on one thread; a network
//! without one (the default 784-500-10) stays on one thread.

mod common;

use common::{apical, data_dir, s};
use std::fs;
use std::path::Path;

/// Trains 784-WIDTH-10 on `threads` threads (2 epochs of 40 examples, mid-epoch
/// checkpoints every 15);
/// returns stderr.
fn train(data: &Path, out: &Path, width: usize, threads: usize) -> String {
    let o = apical()
        .args([
            "train",
            "--set",
            &format!("network.hidden=[{width}]"),
            "--train-examples",
            "40",
            "--test-examples",
            "20",
            "--epochs",
            "2",
            "--checkpoint-every",
            "15",
            "--seed",
            "4",
            "--threads",
            &threads.to_string(),
            "--record",
            "none",
            "--quiet",
            "--data",
            s(data),
            "--out",
            s(out),
        ])
        .output()
        .expect("apical runs");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

/// The checkpoint files of a run directory, by name.
fn checkpoints(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_wide_network_writes_the_same_checkpoints_on_one_two_and_three_threads() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("t1");
    let err1 = train(&data, &one, 1100, 1);
    assert!(!err1.contains("training on"), "{err1}");
    let a = checkpoints(&one);
    // Epochs 1 and 2 (the mid-epoch checkpoints are gone once their epoch has ended).
    assert_eq!(
        a.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["checkpoint-epoch-1.bin", "checkpoint-epoch-2.bin"]
    );
    for threads in [2, 3] {
        let dir = tmp.path().join(format!("t{threads}"));
        let err = train(&data, &dir, 1100, threads);
        // 1100 neurons are three blocks of 512: up to three threads share them.
        assert!(
            err.contains(&format!("training on {threads} threads")),
            "{err}"
        );
        let b = checkpoints(&dir);
        assert_eq!(
            a.iter().map(|c| &c.0).collect::<Vec<_>>(),
            b.iter().map(|c| &c.0).collect::<Vec<_>>()
        );
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "{name} differs between 1 and {threads} threads");
        }
    }
}

#[test]
fn a_narrow_network_stays_on_one_thread() {
    let Some(data) = data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let err = train(&data, &tmp.path().join("t2"), 500, 2);
    assert!(!err.contains("training on"), "{err}");
}
