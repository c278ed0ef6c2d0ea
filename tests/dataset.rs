//! Data sets by name or file (src/io/dataset.rs): .npz archives and IDX folders with every
//! error named, the model's sizes checked against the data, MNIST as a .npz training to
//! the bytes of MNIST from its IDX files, a small data set of one's own that trains, and a
//! run that records its data and refuses other data on resume and eval.

mod common;

use apical::io::dataset::{self, DataSpec};
use apical::io::mnist::{DataError, Mnist, MnistSet};
use common::{mnist, run_apical, s, small_model_toml, write_file};
use std::io::Write;
use std::path::Path;

/// A .npy file: version 1 header (padded to 64 bytes, as numpy writes it), then `data`.
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

/// A .npz archive of `entries` (name without .npy, bytes), stored or deflated.
fn npz(path: &Path, entries: &[(&str, Vec<u8>)], deflate: bool) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    for (name, bytes) in entries {
        z.start_file(format!("{name}.npy"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// The four arrays of `data` as uint8 images (n, rows, cols) and int64 labels.
fn entries_of(data: &Mnist) -> Vec<(&'static str, Vec<u8>)> {
    let x = |s: &MnistSet| npy("|u1", &[s.len(), s.rows, s.cols], &s.images);
    let y = |s: &MnistSet| {
        let b: Vec<u8> = s
            .labels
            .iter()
            .flat_map(|&l| (l as i64).to_le_bytes())
            .collect();
        npy("<i8", &[s.len()], &b)
    };
    vec![
        ("x_train", x(&data.train)),
        ("y_train", y(&data.train)),
        ("x_test", x(&data.test)),
        ("y_test", y(&data.test)),
    ]
}

/// Two classes of 100-input patterns: class c lights inputs of its half (values 150-250),
/// the other half stays dark but for a few faint pixels; a fixed pseudo-random stream.
fn two_class(n: usize, salt: u64) -> MnistSet {
    let mut x = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut images = Vec::with_capacity(n * 100);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i % 2) as u8;
        for j in 0..100 {
            let own = (j / 50) as u8 == c;
            let r = next();
            images.push(if own {
                150 + (r % 101) as u8
            } else if r % 10 == 0 {
                (r % 60) as u8
            } else {
                0
            });
        }
        labels.push(c);
    }
    MnistSet {
        images,
        labels,
        rows: 1,
        cols: 100,
    }
}

fn err_text(r: Result<impl std::fmt::Debug, DataError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn npz_reads_bytes_and_floats_stored_or_deflated() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Mnist {
        train: two_class(6, 1),
        test: two_class(4, 2),
    };
    for deflate in [false, true] {
        let p = tmp.path().join(format!("d{deflate}.npz"));
        npz(&p, &entries_of(&data), deflate);
        let set = dataset::load(&DataSpec::Path(p.clone()), None, true).unwrap();
        assert_eq!(set.data.train.images, data.train.images);
        assert_eq!(set.data.test.labels, data.test.labels);
        assert_eq!((set.n_in(), set.classes()), (100, 2));
        assert_eq!(set.sha256, dataset::content_digest(&data));
    }
    // Floats 0-1 (x / 255 as float32) give the same bytes and digest; labels as uint8.
    let f = |s: &MnistSet| {
        let b: Vec<u8> = s
            .images
            .iter()
            .flat_map(|&p| (p as f32 / 255.0).to_le_bytes())
            .collect();
        npy("<f4", &[s.len(), 100], &b)
    };
    let p = tmp.path().join("f.npz");
    npz(
        &p,
        &[
            ("x_train", f(&data.train)),
            ("y_train", npy("|u1", &[6], &data.train.labels)),
            ("x_test", f(&data.test)),
            ("y_test", npy("|u1", &[4], &data.test.labels)),
        ],
        true,
    );
    let set = dataset::load(&DataSpec::Path(p), None, true).unwrap();
    assert_eq!(set.sha256, dataset::content_digest(&data));
}

#[test]
fn npz_errors_name_the_file_and_the_array() {
    let tmp = tempfile::tempdir().unwrap();
    let good = entries_of(&Mnist {
        train: two_class(6, 1),
        test: two_class(4, 2),
    });
    let with = |name: &str, replace: (&str, Vec<u8>)| -> String {
        let p = tmp.path().join(format!("{name}.npz"));
        let e: Vec<(&str, Vec<u8>)> = good
            .iter()
            .map(|(k, v)| {
                if *k == replace.0 {
                    (*k, replace.1.clone())
                } else {
                    (*k, v.clone())
                }
            })
            .collect();
        npz(&p, &e, false);
        let t = err_text(dataset::load(&DataSpec::Path(p.clone()), None, true));
        assert!(t.contains(s(&p)), "{t}");
        t
    };
    let t = with("dtype", ("x_train", npy("<i4", &[6, 100], &[0; 2400])));
    assert!(
        t.contains("x_train") && t.contains("<i4") && t.contains("uint8"),
        "{t}"
    );
    let t = with(
        "nan",
        ("x_test", {
            let mut b: Vec<u8> = (0..400).flat_map(|_| 0.5f32.to_le_bytes()).collect();
            b[4 * 7..4 * 8].copy_from_slice(&f32::NAN.to_le_bytes());
            npy("<f4", &[4, 100], &b)
        }),
    );
    assert!(
        t.contains("x_test") && t.contains("flat index 7 is NaN"),
        "{t}"
    );
    let t = with(
        "range",
        ("x_test", {
            let mut b: Vec<u8> = (0..400).flat_map(|_| 0.25f64.to_le_bytes()).collect();
            b[..8].copy_from_slice(&2.0f64.to_le_bytes());
            npy("<f8", &[4, 100], &b)
        }),
    );
    assert!(t.contains("x_test") && t.contains("0..1"), "{t}");
    let t = with("neg", ("y_train", npy("|i1", &[6], &[0, 1, 0, 255, 0, 1])));
    assert!(t.contains("y_train") && t.contains("index 3 is -1"), "{t}");
    let t = with(
        "big",
        (
            "y_test",
            npy(
                "<i8",
                &[4],
                &[[0u8; 8], [0; 8], 300i64.to_le_bytes(), [0; 8]].concat(),
            ),
        ),
    );
    assert!(t.contains("y_test") && t.contains("index 2 is 300"), "{t}");
    let t = with("count", ("y_train", npy("|u1", &[5], &[0, 1, 0, 1, 0])));
    assert!(
        t.contains("y_train") && t.contains("5 labels") && t.contains("6 examples"),
        "{t}"
    );
    let t = with("flabels", ("y_test", npy("<f4", &[4], &[0; 16])));
    assert!(t.contains("y_test") && t.contains("integers"), "{t}");
    let t = with("inputs", ("x_test", npy("|u1", &[4, 99], &[0; 396])));
    assert!(
        t.contains("x_test") && t.contains("99 inputs") && t.contains("100"),
        "{t}"
    );
    let t = with(
        "shape4",
        ("x_train", npy("|u1", &[6, 10, 10, 1], &[0; 600])),
    );
    assert!(t.contains("x_train") && t.contains("shape"), "{t}");
    // Absurd sizes are refused from the header, before any allocation.
    let t = with("absurd", ("x_train", npy("|u1", &[1 << 40, 1 << 20], &[])));
    assert!(t.contains("x_train") && t.contains("more than the"), "{t}");
    let t = with("short", ("x_train", npy("|u1", &[6, 100], &[0; 10])));
    assert!(
        t.contains("x_train") && t.contains("holds 10 bytes") && t.contains("needs 600"),
        "{t}"
    );
    // A missing key lists what the archive holds.
    let p = tmp.path().join("keys.npz");
    npz(
        &p,
        &[
            ("x_train", good[0].1.clone()),
            ("labels", good[1].1.clone()),
        ],
        false,
    );
    let t = err_text(dataset::load(&DataSpec::Path(p), None, true));
    assert!(
        t.contains("y_train") && t.contains("[labels, x_train]"),
        "{t}"
    );
    // Not a zip archive; no such path.
    let p = write_file(tmp.path(), "junk.npz", b"not a zip file at all");
    let t = err_text(dataset::load(&DataSpec::Path(p), None, true));
    assert!(
        t.contains("junk.npz") && t.contains("not a readable .npz"),
        "{t}"
    );
    let t = err_text(dataset::load(
        &DataSpec::Path(tmp.path().join("nope.npz")),
        None,
        true,
    ));
    assert!(
        t.contains("nope.npz") && t.contains("mnist, fashion-mnist"),
        "{t}"
    );
}

#[test]
fn an_idx_folder_of_any_size_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = |magic: u8, dims: &[u32], body: &[u8]| {
        let mut v = vec![0, 0, 8, magic];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(body);
        v
    };
    let px: Vec<u8> = (0..4 * 9).map(|i| (i * 7) as u8).collect();
    write_file(
        tmp.path(),
        "train-images-idx3-ubyte",
        &idx(3, &[4, 3, 3], &px),
    );
    write_file(
        tmp.path(),
        "train-labels-idx1-ubyte",
        &idx(1, &[4], &[0, 11, 3, 5]),
    );
    write_file(
        tmp.path(),
        "t10k-images-idx3-ubyte",
        &idx(3, &[1, 3, 3], &px[..9]),
    );
    write_file(tmp.path(), "t10k-labels-idx1-ubyte", &idx(1, &[1], &[2]));
    let set = dataset::load(&DataSpec::Path(tmp.path().to_path_buf()), None, true).unwrap();
    assert_eq!(
        (set.n_in(), set.classes(), set.data.train.len()),
        (9, 12, 4)
    );
    assert_eq!(set.data.train.images, px);
    // Test images of another size are refused, naming both.
    write_file(
        tmp.path(),
        "t10k-images-idx3-ubyte",
        &idx(3, &[1, 2, 2], &px[..4]),
    );
    let t = err_text(dataset::load(
        &DataSpec::Path(tmp.path().to_path_buf()),
        None,
        true,
    ));
    assert!(
        t.contains("t10k-images") && t.contains("3x3") && t.contains("2x2"),
        "{t}"
    );
}

#[test]
fn the_model_must_fit_the_data() {
    let data = Mnist {
        train: two_class(6, 1),
        test: two_class(4, 2),
    };
    let cfg = apical::ModelConfig::from_toml_str(&small_model_toml(), "m").unwrap();
    let e = dataset::check_model_fits(&cfg, &data, "d.npz").unwrap_err();
    assert!(
        e.contains("100 inputs") && e.contains("network.n_in = 784") && e.contains("d.npz"),
        "{e}"
    );
    let cfg = apical::ModelConfig::from_toml_str(
        &small_model_toml().replace("n_in = 784", "n_in = 100"),
        "m",
    )
    .unwrap();
    let e = dataset::check_model_fits(&cfg, &data, "d.npz").unwrap_err();
    assert!(
        e.contains("2 classes")
            && e.contains("network.classes = 10")
            && e.contains("network.n_out = 10"),
        "{e}"
    );
    let ok = small_model_toml()
        .replace("n_in = 784", "n_in = 100")
        .replace("n_out = 10", "n_out = 2\nclasses = 2");
    let cfg = apical::ModelConfig::from_toml_str(&ok, "m").unwrap();
    dataset::check_model_fits(&cfg, &data, "d.npz").unwrap();
    // n_out must be a multiple of the classes.
    let bad = small_model_toml().replace("n_out = 10", "n_out = 5\nclasses = 2");
    let e = apical::ModelConfig::from_toml_str(&bad, "m")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("network.n_out") && e.contains("multiple of network.classes = 2"),
        "{e}"
    );
}

#[test]
fn fashion_mnist_loads_with_its_checksums() {
    match dataset::load(&DataSpec::FashionMnist, None, true) {
        Ok(set) => {
            assert_eq!(
                (set.data.train.len(), set.data.test.len()),
                (60_000, 10_000)
            );
            assert_eq!((set.n_in(), set.classes()), (784, 10));
            assert_eq!(set.name, "fashion-mnist");
        }
        Err(e @ DataError::NotInstalled { .. }) => {
            let t = e.to_string();
            assert!(t.contains("apt-get install dataset-fashion-mnist"), "{t}");
            eprintln!("skipping the load: {t}");
        }
        Err(e) => panic!("{e}"),
    }
    // A folder without the files names the set and how to get it.
    let tmp = tempfile::tempdir().unwrap();
    let t = err_text(dataset::load(
        &DataSpec::FashionMnist,
        Some(tmp.path()),
        true,
    ));
    assert!(
        t.contains("Fashion-MNIST file train-images-idx3-ubyte not found"),
        "{t}"
    );
    assert!(t.contains("dataset-fashion-mnist"), "{t}");
}

/// A two-class, 100-input data set of one's own trains from the command line to a low
/// error; its run.json names the file and its digest, and resume and eval refuse other
/// data unless told.
#[test]
fn own_two_class_data_trains_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Mnist {
        train: two_class(400, 1),
        test: two_class(100, 2),
    };
    let p = tmp.path().join("two.npz");
    npz(&p, &entries_of(&data), true);
    // Ten output units per class (with one per class, 100-20-2, the error stayed at 50 %
    // over three epochs of this data when tried).
    let model = small_model_toml()
        .replace("n_in = 784", "n_in = 100")
        .replace("n_out = 10", "n_out = 20\nclasses = 2");
    let m = write_file(tmp.path(), "two.toml", model.as_bytes());
    let out = tmp.path().join("run");
    let (code, _, err) = run_apical(&[
        "train",
        s(&m),
        "--dataset",
        s(&p),
        "--epochs",
        "1",
        "--train-examples",
        "400",
        "--test-examples",
        "100",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let d = &info["data"];
    assert_eq!(d["sha256"], dataset::content_digest(&data));
    assert_eq!(d["name"], s(&std::fs::canonicalize(&p).unwrap()));
    assert_eq!(
        (d["n_in"].as_u64(), d["classes"].as_u64()),
        (Some(100), Some(2))
    );
    let metrics = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    let mj: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    // Row 0 is the untrained network's test (epoch 0); row 1 the trained epoch.
    assert_eq!(mj[1]["epoch"], 1, "{metrics}");
    let test_error = mj[1]["test_error"].as_f64().expect("test_error");
    assert!(
        test_error < 10.0,
        "test error {test_error} % after one epoch: {metrics}"
    );
    // Eval finds the run's data by itself and gives a 2x2 confusion matrix.
    let ck = out.join("checkpoint-epoch-1.bin");
    let (code, stdout, err) = run_apical(&["eval", s(&ck), "--test-examples", "100"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(stdout.contains("confusion matrix"), "{stdout}");
    // Other data (the test set changed) is refused by eval and resume unless told.
    let mut other = data.clone();
    other.test.labels[0] ^= 1;
    let q = tmp.path().join("other.npz");
    npz(&q, &entries_of(&other), false);
    let (code, _, err) = run_apical(&["eval", s(&ck), "--dataset", s(&q)]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("--other-data") && err.contains("two.npz"),
        "{err}"
    );
    let (code, _, err) = run_apical(&[
        "eval",
        s(&ck),
        "--dataset",
        s(&q),
        "--other-data",
        "--test-examples",
        "100",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run_apical(&[
        "train",
        "--resume",
        s(&out),
        "--epochs",
        "2",
        "--dataset",
        s(&q),
        "--quiet",
    ]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("--other-data") && err.contains("SHA-256"),
        "{err}"
    );
    // The default model (784 inputs, 10 classes) on this data: both numbers and the field.
    let (code, _, err) = run_apical(&[
        "train",
        "--dataset",
        s(&p),
        "--epochs",
        "1",
        "--out",
        s(&tmp.path().join("x")),
        "--quiet",
    ]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("100 inputs") && err.contains("network.n_in = 784"),
        "{err}"
    );
}

/// MNIST written as a .npz trains to the same checkpoint bytes as MNIST from its IDX files.
#[test]
fn mnist_as_npz_trains_to_the_idx_bytes() {
    let Some(m) = mnist() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("mnist.npz");
    npz(&p, &entries_of(m), false);
    let set = dataset::load(&DataSpec::Path(p.clone()), None, true).unwrap();
    assert_eq!(set.sha256, dataset::content_digest(m));
    let model = write_file(tmp.path(), "small.toml", small_model_toml().as_bytes());
    let run = |name: &str, data: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec![
            "train",
            s(&model),
            "--epochs",
            "1",
            "--train-examples",
            "300",
            "--test-examples",
            "100",
            "--out",
            s(&out),
            "--quiet",
            "--no-verify",
        ];
        args.extend_from_slice(data);
        let (code, _, err) = run_apical(&args);
        assert_eq!(code, Some(0), "{err}");
        std::fs::read(out.join("checkpoint-epoch-1.bin")).unwrap()
    };
    let idx = run("idx", &[]);
    let npz_run = run("npz", &["--dataset", s(&p)]);
    assert!(
        idx == npz_run,
        "MNIST from a .npz trained to other bytes than from IDX"
    );
}
