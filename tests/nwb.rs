//! `apical export nwb`: the NWB file holds the trace file's spikes neuron by neuron (in
//! seconds), its examples as trials, epochs, potentials and rates as TimeSeries, weight
//! snapshots, the model and seed, and the cached NWB specifications; read back with the
//! `hdf5` crate and compared with the trace file value by value. (pynwb's validator,
//! nwbinspector and Neo read the CI file in scripts/ci-traces.sh.)

mod common;

use apical::io::mnist::{Mnist, MnistSet};
use apical::io::nwb::{export, export_in_passes};
use apical::io::record::{parse_spec, Compression, Recorder, RunEnd, StartPoint};
use apical::model::config::ModelConfig;
use apical::run::events::Quiet;
use apical::run::trainer::{RunOptions, Trainer};
use hdf5::types::{VarLenAscii, VarLenUnicode};
use hdf5::{File, ObjectReference1, ReferencedObject};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

const MODEL: &str = r#"
name = "nwb-test"
[network]
n_in = 784
hidden = [20]
n_out = 10
[phases]
use_rand_phase_lengths = true
[learning]
eta = [0.21, 0.21]
[training]
block_size = 8
"#;

/// Synthetic digits: bars whose position depends on the label.
fn set(n: usize, salt: usize) -> MnistSet {
    let mut images = vec![0u8; n * 784];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = ((i * 7 + salt) % 10) as u8;
        labels.push(label);
        for p in 0..784 {
            let (r, c) = (p / 28, p % 28);
            let on = (r + 2 * label as usize) % 9 < 2 || (c + i + salt) % 13 == 0;
            images[i * 784 + p] = if on { 230 } else { ((p * 31 + i) % 7) as u8 };
        }
    }
    MnistSet {
        images,
        labels,
        rows: 28,
        cols: 28,
    }
}

/// The tests of this file one at a time: one spawns `apical`, which would inherit the
/// other's open trace file (HDF5 opens files without close-on-exec) and with it the file's
/// lock, so the other's next open of that file fails until the child exits.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const SPEC: &str = "spikes|soma,apical:layers=hidden0;examples=every:2;interval=2|rate:layers=output|labels|weights:examples=every:5";

/// Records a 2-epoch run of 8 examples each into `dir/traces.h5`; returns its path.
fn recorded_run(dir: &Path) -> PathBuf {
    let data = Mnist {
        train: set(20, 0),
        test: set(10, 3),
    };
    let cfg = ModelConfig::from_toml_str(MODEL, "test model").unwrap();
    let opts = RunOptions {
        epochs: 2,
        train_examples: 8,
        test_examples: 10,
        seed: 11,
        out_dir: dir.to_path_buf(),
        checkpoint_every: 0,
        keep_checkpoints: Default::default(),
    };
    let info = common::run_info(&opts);
    let mut t = Trainer::new(cfg, &data, opts, &info).unwrap();
    let path = dir.join("traces.h5");
    let start = StartPoint {
        epoch: 1,
        example: 0,
        step: 0,
    };
    let mut rec = Recorder::create(
        &path,
        &parse_spec(SPEC).unwrap(),
        SPEC,
        &t.net.model.cfg,
        &t.model_toml,
        11,
        start,
        info.budget(),
        Compression::default(),
        None,
    )
    .unwrap();
    t.run_recording(&AtomicBool::new(false), &mut Quiet, &mut rec)
        .unwrap();
    rec.finish(RunEnd::Completed).unwrap();
    path
}

fn read<T: hdf5::H5Type>(f: &File, name: &str) -> Vec<T> {
    f.dataset(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_raw()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn attr_text(loc: &hdf5::Location, name: &str) -> String {
    loc.attr(name)
        .unwrap_or_else(|e| panic!("{}@{name}: {e}", loc.name()))
        .read_scalar::<VarLenUnicode>()
        .unwrap()
        .as_str()
        .to_string()
}

fn text(f: &File, name: &str) -> String {
    f.dataset(name)
        .unwrap()
        .read_scalar::<VarLenUnicode>()
        .unwrap()
        .as_str()
        .to_string()
}

/// The neurodata type and namespace of an object.
fn ty(f: &File, path: &str) -> (String, String) {
    let loc: hdf5::Location = match f.dataset(path) {
        Ok(d) => {
            let l: &hdf5::Location = &d;
            l.clone()
        }
        Err(_) => {
            let g = f.group(path).unwrap();
            let l: &hdf5::Location = &g;
            l.clone()
        }
    };
    assert_eq!(attr_text(&loc, "object_id").len(), 36, "{path}");
    (
        attr_text(&loc, "neurodata_type"),
        attr_text(&loc, "namespace"),
    )
}

#[test]
fn the_nwb_file_holds_the_trace_files_spikes_trials_series_and_weights() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let traces = recorded_run(dir.path());
    let out = dir.path().join("run.nwb");
    let s = export(&traces, &out).unwrap();
    // A second export gathering the spike trains in many small passes: the same units.
    let out2 = dir.path().join("passes.nwb");
    assert_eq!(export_in_passes(&traces, &out2, 50).unwrap(), s);

    let t = File::open(&traces).unwrap();
    let f = File::open(&out).unwrap();
    let f2 = File::open(&out2).unwrap();

    // The NWBFile root and its required fields.
    assert_eq!(attr_text(&f, "neurodata_type"), "NWBFile");
    assert_eq!(attr_text(&f, "namespace"), "core");
    assert_eq!(attr_text(&f, "nwb_version"), "2.11.0");
    assert!(text(&f, "session_description").contains("nwb-test"));
    assert_eq!(text(&f, "identifier").len(), 36);
    let start = f
        .dataset("session_start_time")
        .unwrap()
        .read_scalar::<VarLenAscii>()
        .unwrap();
    assert!(start.as_str().ends_with("+00:00") && start.as_str().contains('T'));
    assert_eq!(f.dataset("file_create_date").unwrap().shape(), vec![1]);
    for g in [
        "acquisition",
        "analysis",
        "stimulus/presentation",
        "stimulus/templates",
    ] {
        assert!(f.group(g).is_ok(), "{g}");
    }
    let notes = text(&f, "general/notes");
    assert!(
        notes.contains("seed = 11") && notes.contains("[network]"),
        "{notes}"
    );
    // The budget run (2 epochs of 8, 10 test images), beside the model whose [training]
    // section is the model file's.
    assert!(
        notes.contains(
            "budget run = 2 epoch(s) of 8 training examples, 10 test images (the model's \
             [training] section below is the model file's own)\nmodel file as run (TOML):\n"
        ),
        "{notes}"
    );
    assert!(text(&f, "general/data_collection").contains(SPEC));
    assert_eq!(ty(&f, "general/subject").0, "Subject");
    assert_eq!(text(&f, "general/subject/sex"), "U");

    // Units: every neuron of every population, its spikes in time order, in seconds.
    assert_eq!(ty(&f, "units"), ("Units".to_string(), "core".to_string()));
    let ends: Vec<u64> = read(&f, "units/spike_times_index");
    let times: Vec<f64> = read(&f, "units/spike_times");
    assert_eq!(ends.len(), 784 + 20 + 10);
    assert_eq!(s.units, ends.len());
    assert_eq!(*ends.last().unwrap() as usize, times.len());
    assert_eq!(read::<f64>(&f2, "units/spike_times"), times);
    let pops = ["input", "hidden0", "output"];
    let layer: Vec<u32> = read(&f, "units/layer");
    let node: Vec<u64> = read(&f, "units/node_id");
    let names: Vec<VarLenUnicode> = read(&f, "units/population");
    let mut row = 0;
    let mut total = 0;
    for (p, pop) in pops.iter().enumerate() {
        let ts: Vec<f64> = read(&t, &format!("spikes/{pop}/timestamps"));
        let ids: Vec<u64> = read(&t, &format!("spikes/{pop}/node_ids"));
        assert!(!ts.is_empty(), "{pop} spiked");
        total += ts.len();
        let n = match p {
            0 => 784,
            1 => 20,
            _ => 10,
        };
        for i in 0..n {
            let want: Vec<f64> = ts
                .iter()
                .zip(&ids)
                .filter(|(_, &id)| id == i as u64)
                .map(|(&x, _)| x / 1000.0)
                .collect();
            let a = if row == 0 { 0 } else { ends[row - 1] as usize };
            assert_eq!(&times[a..ends[row] as usize], &want[..], "{pop} neuron {i}");
            assert_eq!((layer[row], node[row]), (p as u32, i as u64));
            assert_eq!(names[row].as_str(), *pop);
            row += 1;
        }
    }
    assert_eq!(s.spikes as usize, total);
    let res: f64 = f
        .dataset("units/spike_times")
        .unwrap()
        .attr("resolution")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert_eq!(res, 0.001, "dt = 1 ms");
    let obs: Vec<f64> = read(&f, "units/obs_intervals");
    assert_eq!(obs.len(), 2 * ends.len());
    // The index points at its data.
    let ix = f.dataset("units/spike_times_index").unwrap();
    assert_eq!(ty(&f, "units/spike_times_index").0, "VectorIndex");
    let target: ObjectReference1 = ix.attr("target").unwrap().read_scalar().unwrap();
    match f.dereference(&target).unwrap() {
        ReferencedObject::Dataset(d) => assert_eq!(d.name(), "/units/spike_times"),
        other => panic!("target is {other:?}"),
    }
    let colnames: Vec<VarLenUnicode> = f
        .group("units")
        .unwrap()
        .attr("colnames")
        .unwrap()
        .read_raw()
        .unwrap();
    assert!(colnames.iter().any(|c| c.as_str() == "spike_times"));

    // Trials: one per recorded example.
    let st: Vec<f64> = read(&t, "examples/start_time");
    let fw: Vec<u32> = read(&t, "examples/forward_steps");
    let tg: Vec<u32> = read(&t, "examples/target_steps");
    assert_eq!(ty(&f, "intervals/trials").0, "TimeIntervals");
    let start: Vec<f64> = read(&f, "intervals/trials/start_time");
    let stop: Vec<f64> = read(&f, "intervals/trials/stop_time");
    assert_eq!(start.len(), 16);
    assert_eq!(s.trials, 16);
    for i in 0..16 {
        assert_eq!(start[i], st[i] / 1000.0);
        assert_eq!(stop[i], (st[i] + f64::from(fw[i] + tg[i])) / 1000.0);
    }
    assert_eq!(
        read::<u8>(&f, "intervals/trials/label"),
        read::<u8>(&t, "examples/label")
    );
    assert_eq!(
        read::<u8>(&f, "intervals/trials/prediction"),
        read::<u8>(&t, "examples/prediction")
    );
    let tags: Vec<VarLenUnicode> = read(&f, "intervals/trials/tags");
    assert_eq!(tags.len(), 16);
    assert_eq!(read::<u64>(&f, "intervals/trials/tags_index").len(), 16);
    // Epochs.
    assert_eq!(
        read::<f64>(&f, "intervals/epochs/test_error"),
        read::<f64>(&t, "epochs/test_error")
    );

    // Potentials and rates: one TimeSeries per compartment.
    let rep: Vec<f32> = read(&t, "report/hidden0/data");
    let soma: Vec<f32> = read(&f, "acquisition/soma_hidden0/data");
    let apical: Vec<f32> = read(&f, "acquisition/apical_hidden0/data");
    let rows = soma.len() / 20;
    assert!(rows > 0);
    assert_eq!(
        f.dataset("acquisition/soma_hidden0/data").unwrap().shape(),
        vec![rows, 20]
    );
    for r in 0..rows {
        for i in 0..20 {
            assert_eq!(soma[r * 20 + i], rep[r * 40 + 2 * i]);
            assert_eq!(apical[r * 20 + i], rep[r * 40 + 2 * i + 1]);
        }
    }
    // Every other example: irregular times, so timestamps (seconds).
    let tsec: Vec<f64> = read(&f, "acquisition/soma_hidden0/timestamps");
    let tms: Vec<f64> = read(&t, "report/hidden0/times");
    assert_eq!(tsec, tms.iter().map(|x| x / 1000.0).collect::<Vec<_>>());
    // Every step of every example: regular, so a start and a rate.
    let rate: Vec<f32> = read(&f, "acquisition/rate_output/data");
    assert_eq!(rate, read::<f32>(&t, "rates/output/data"));
    let hz: f64 = f
        .dataset("acquisition/rate_output/starting_time")
        .unwrap()
        .attr("rate")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert_eq!(hz, 1000.0);
    assert_eq!(s.series, 3);

    // Weight snapshots.
    assert_eq!(ty(&f, "processing/weights").0, "ProcessingModule");
    let w: Vec<f32> = read(&f, "processing/weights/snapshots/W_hidden0");
    assert_eq!(w, read::<f32>(&t, "weights/hidden0/W"));
    assert_eq!(s.snapshots, read::<u32>(&t, "weights/epoch").len());

    // The cached specifications, found from the root.
    let spec: hdf5::ObjectReference1 = f.attr(".specloc").unwrap().read_scalar().unwrap();
    assert!(
        matches!(f.dereference(&spec).unwrap(), ReferencedObject::Group(g) if g.name() == "/specifications")
    );
    let ns: serde_json::Value =
        serde_json::from_str(&text(&f, "specifications/core/2.11.0/namespace")).unwrap();
    assert_eq!(ns["namespaces"][0]["name"], "core");
    assert!(f.dataset("specifications/hdmf-common/1.10.0/table").is_ok());
}

#[test]
fn the_cli_exports_a_run_directory_and_names_a_missing_trace_file() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    recorded_run(dir.path());
    let bin = env!("CARGO_BIN_EXE_apical");
    let out = common::command(bin)
        .args(["export", "nwb"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("814 units") && said.contains("16 trials"),
        "{said}"
    );
    assert!(dir.path().join("traces.nwb").exists());
    let empty = tempfile::tempdir().unwrap();
    let out = common::command(bin)
        .args(["export", "nwb"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no trace file"), "{err}");
    // A directory that does not exist is named as such; a file that is not HDF5 (a run's
    // metrics.csv) is said to be no trace file, in words and not in HDF5's, by `export`
    // and by `inspect`.
    let missing = empty.path().join("nonexistent");
    let out = common::command(bin)
        .args(["export", "nwb"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such run directory or trace file"), "{err}");
    let csv = dir.path().join("metrics.csv");
    std::fs::write(&csv, "epoch,train_error\n").unwrap();
    for cmd in [&["export", "nwb"][..], &["inspect"][..]] {
        let out = common::command(bin).args(cmd).arg(&csv).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a trace file"), "{cmd:?}: {err}");
        assert!(
            !err.contains("H5F") && !err.contains("signature"),
            "{cmd:?}: {err}"
        );
    }
}
