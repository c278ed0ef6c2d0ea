//! The same run through every door: `apical train`, `apical sweep` and `apical reproduce`
//! (and, in tests/python/test_train.py, Python's `apical.train`) write the same trace
//! layout with the same filters, and the same checkpoints, because they share the run
//! defaults of `TrainRequest::new`.

mod common;

use std::path::Path;

fn attr_str(f: &hdf5::File, name: &str) -> String {
    f.attr(name)
        .unwrap()
        .read_scalar::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .as_str()
        .to_string()
}

/// The root attributes `budget_epochs`, `budget_train_examples`, `budget_test_examples`.
fn budget_attrs(f: &hdf5::File) -> [u64; 3] {
    [
        "budget_epochs",
        "budget_train_examples",
        "budget_test_examples",
    ]
    .map(|a| f.attr(a).unwrap().read_scalar::<u64>().unwrap())
}

/// Every dataset of a trace file, sorted: (path, shape, element type, filters), the
/// file's compression attribute and its budget attributes. Each file is opened once: a child process that another
/// test starts meanwhile inherits the open file (HDF5 opens without close-on-exec).
#[allow(clippy::type_complexity)]
fn layout(
    path: &Path,
) -> (
    Vec<(String, Vec<usize>, String, Vec<String>)>,
    String,
    [u64; 3],
) {
    fn walk(g: &hdf5::Group, out: &mut Vec<(String, Vec<usize>, String, Vec<String>)>) {
        for d in g.datasets().unwrap() {
            out.push((
                d.name(),
                d.shape(),
                format!("{:?}", d.dtype().unwrap().to_descriptor().unwrap()),
                d.filters().iter().map(|f| format!("{f:?}")).collect(),
            ));
        }
        for sub in g.groups().unwrap() {
            walk(&sub, out);
        }
    }
    let f = hdf5::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    walk(&f, &mut out);
    out.sort();
    (out, attr_str(&f, "compression"), budget_attrs(&f))
}

/// The same small run (784-10, seed 0, 1 epoch of 60 examples, 30 test images) through
/// `apical train`, `apical sweep` (its budget given by flags) and `apical reproduce`, each
/// with its defaults: the trace files have the same datasets, shapes, types and filters
/// and the same compression, and the checkpoints are the same bytes. Each door shows the
/// budget run (not the model file's 60 epochs of 60,000) beside the model: in model.toml's
/// comment block, which leaves the model as it loads unchanged, and in the trace file's
/// root attributes. (The Python door is
/// compared with the command line's in tests/python/test_train.py.)
#[test]
fn the_same_run_writes_the_same_files_through_every_door() {
    if apical::io::mnist::find_data_dir(None).is_err() {
        eprintln!("skipping: no MNIST");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let budget = [
        "--epochs",
        "1",
        "--train-examples",
        "60",
        "--test-examples",
        "30",
    ];
    let run = |args: &[&str]| {
        let out = common::command(env!("CARGO_BIN_EXE_apical"))
            .args(args)
            .args(budget)
            .arg("--no-verify")
            .env_remove("APICAL_DATA")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "apical {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let train = root.join("train");
    run(&[
        "train",
        "models/guerguiev-0h.toml",
        "--quiet",
        "--out",
        train.to_str().unwrap(),
    ]);
    let spec = root.join("sweep.toml");
    std::fs::write(&spec, "model = \"0h\"\n[axes]\nseed = [0]\n").unwrap();
    let sweep = root.join("sweep");
    run(&[
        "sweep",
        spec.to_str().unwrap(),
        "--out",
        sweep.to_str().unwrap(),
    ]);
    let sweep_point = sweep.join("seed=0");
    let reproduce = root.join("reproduce");
    run(&[
        "reproduce",
        "0h",
        "--out",
        reproduce.to_str().unwrap(),
        "--plot-examples",
        "1",
    ]);
    let reproduce_run = reproduce.join("guerguiev-0h/seed0");

    let (expected, compression, budget) = layout(&train.join("traces.h5"));
    assert_eq!(compression, "scaleoffset");
    assert_eq!(budget, [1, 60, 30]);
    let model_file = apical::ModelConfig::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/guerguiev-0h.toml"),
    )
    .unwrap();
    let model_text = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("model.toml")).unwrap();
        assert!(
            text.starts_with(
                "# The budget this run trained, set when it was started (command-line flags, a sweep's\n\
                 # budget or Python's arguments) in place of the model file's [training] section below\n\
                 # (60 epochs of 60000 training examples, 10000 test images):\n\
                 #   epochs = 1, train_examples = 60 per epoch, test_examples = 30, seed = 0\n\n"
            ),
            "{}:\n{text}",
            dir.display()
        );
        // The comments leave the model as it loads: the model file's, [training] included.
        let cfg = apical::ModelConfig::from_toml_str(&text, "model.toml").unwrap();
        assert_eq!(cfg, model_file);
        apical::io::run_dir::model_text_of(&text).to_string()
    };
    let model = model_text(&train);
    assert_eq!(model, model_file.to_toml_string());
    assert!(
        expected.iter().any(|(n, ..)| n.starts_with("/epochs/")),
        "{expected:?}"
    );
    let ck = std::fs::read(train.join("checkpoint-epoch-1.bin")).unwrap();
    for (door, dir) in [("sweep", &sweep_point), ("reproduce", &reproduce_run)] {
        let traces = dir.join("traces.h5");
        assert!(traces.is_file(), "{door} wrote no {}", traces.display());
        let (found, compression, budget) = layout(&traces);
        assert_eq!(found, expected, "{door}: another trace layout");
        assert_eq!(compression, "scaleoffset", "{door}");
        assert_eq!(budget, [1, 60, 30], "{door}: budget attributes");
        assert_eq!(model_text(dir), model, "{door}: another model.toml");
        assert_eq!(
            std::fs::read(dir.join("checkpoint-epoch-1.bin")).unwrap(),
            ck,
            "{door}: another checkpoint"
        );
    }
}
