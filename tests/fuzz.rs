//! Property tests with many generated inputs (a seeded generator, no extra dependencies):
//! the IDX parser and the model-file parser return errors, never panic, on damaged input,
//! and their errors say where the problem is.

use apical::io::mnist::{parse_idx_images, parse_idx_labels};
use apical::model::config::ModelConfig;
use apical::sim::network::{Model, Network};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// SplitMix64: a tiny seeded generator, enough to drive mutations reproducibly.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, magic];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A damaged variant of `base`.
fn mutate_bytes(g: &mut Gen, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + g.below(3) {
        match g.below(7) {
            // Truncate anywhere.
            0 => {
                let n = g.below(b.len() + 1);
                b.truncate(n);
            }
            // Flip a byte.
            1 if !b.is_empty() => {
                let i = g.below(b.len());
                b[i] ^= 1 + g.below(255) as u8;
            }
            // A header word (magic or a dimension) set to an edge value.
            2 if b.len() >= 4 => {
                let words = (b.len() / 4).min(4);
                let w = 4 * g.below(words);
                let v = *g.pick(&[0u32, 1, 2, 3, 9, 28, 255, 0x0803, 0x0801, 1 << 31, u32::MAX]);
                b[w..w + 4].copy_from_slice(&v.to_be_bytes());
            }
            // Append bytes.
            3 => {
                for _ in 0..g.below(40) {
                    b.push(g.next() as u8);
                }
            }
            // Random garbage, sometimes looking like gzip.
            4 => {
                b = (0..g.below(64)).map(|_| g.next() as u8).collect();
                if g.below(2) == 0 && b.len() >= 2 {
                    b[0] = 0x1f;
                    b[1] = 0x8b;
                }
            }
            // Compress what we have (a valid gzip of damaged IDX).
            5 => b = gzip(&b),
            // Remove a slice from the middle.
            _ if b.len() > 2 => {
                let i = g.below(b.len() - 1);
                let j = i + 1 + g.below(b.len() - i - 1);
                b.drain(i..j);
            }
            _ => {}
        }
    }
    b
}

#[test]
fn idx_parser_never_panics_on_damaged_files() {
    let pixels: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37)).collect();
    let bases = [
        idx(3, &[3, 4, 4], &pixels),
        idx(3, &[1, 2, 2], &pixels[..4]),
        idx(1, &[5], &[1, 2, 3, 4, 9]),
        idx(1, &[1], &[0]),
    ];
    let bases: Vec<Vec<u8>> = bases
        .iter()
        .cloned()
        .chain(bases.iter().map(|b| gzip(b)))
        .collect();
    let origin = Path::new("fuzz/idx-file");
    let mut g = Gen(2017);
    let (mut ok, mut err) = (0, 0);
    for case in 0..20_000 {
        let base = &bases[g.below(bases.len())];
        let input = mutate_bytes(&mut g, base);
        let result = catch_unwind(AssertUnwindSafe(|| {
            (
                parse_idx_images(&input, origin),
                parse_idx_labels(&input, origin),
            )
        }));
        let (images, labels) =
            result.unwrap_or_else(|_| panic!("case {case}: the IDX parser panicked on {input:?}"));
        match images {
            Ok((px, n, rows, cols)) => {
                assert_eq!(px.len(), n * rows * cols, "case {case}");
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("fuzz/idx-file"), "case {case}: {e}");
                err += 1;
            }
        }
        match labels {
            Ok(l) => {
                assert!(l.iter().all(|&v| v <= 9), "case {case}");
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("fuzz/idx-file"), "case {case}: {e}");
                err += 1;
            }
        }
    }
    eprintln!("IDX fuzz: {ok} parsed, {err} errors");
    // The mutations must exercise both outcomes.
    assert!(ok > 100 && err > 10_000, "ok {ok}, err {err}");
}

const MODELS: [&str; 3] = [
    include_str!("../models/guerguiev-0h.toml"),
    include_str!("../models/guerguiev-1h.toml"),
    include_str!("../models/guerguiev-2h.toml"),
];

const NUMBERS: [&str; 22] = [
    "-1",
    "0",
    "-0.0",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e308",
    "1e400",
    "-3.5",
    "0.5",
    "1",
    "2",
    "255",
    "256",
    "1000001",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "\"12\"",
    "true",
    "[]",
];

/// Byte ranges of the number tokens in a line.
fn number_spans(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    // Only after `=` (values), and not in comments.
    let start = line.find('=').map_or(b.len(), |p| p + 1);
    let end = line.find('#').unwrap_or(b.len());
    i = i.max(start);
    while i < end {
        if b[i].is_ascii_digit() || (b[i] == b'-' && i + 1 < end && b[i + 1].is_ascii_digit()) {
            let s = i;
            i += 1;
            while i < end && (b[i].is_ascii_alphanumeric() || b"._-+".contains(&b[i])) {
                i += 1;
            }
            spans.push((s, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn mutate_model(g: &mut Gen, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + g.below(3) {
        if lines.is_empty() {
            break;
        }
        let i = g.below(lines.len());
        match g.below(8) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            // Change a number (the most common damage), several times as likely.
            2..=4 => {
                let with_numbers: Vec<usize> = (0..lines.len())
                    .filter(|&k| !number_spans(&lines[k]).is_empty())
                    .collect();
                if with_numbers.is_empty() {
                    continue;
                }
                let k = *g.pick(&with_numbers);
                let spans = number_spans(&lines[k]);
                let (s, e) = *g.pick(&spans);
                let new = *g.pick(&NUMBERS);
                lines[k].replace_range(s..e, new);
            }
            // Rename a key.
            5 => {
                if let Some(p) = lines[i].find('=') {
                    let key = lines[i][..p].trim().to_string();
                    let renamed = match g.below(3) {
                        0 => format!("{key}_x"),
                        1 => key.to_uppercase(),
                        _ => key.chars().rev().collect(),
                    };
                    lines[i] = format!("{renamed} ={}", &lines[i][p + 1..]);
                }
            }
            // Swap two lines (moves keys between sections).
            6 => {
                let j = g.below(lines.len());
                lines.swap(i, j);
            }
            // Cut the line short.
            _ => {
                let l = &lines[i];
                let cut = g.below(l.len() + 1);
                if l.is_char_boundary(cut) {
                    lines[i].truncate(cut);
                }
            }
        }
    }
    lines.join("\n")
}

#[test]
fn model_parser_never_panics_and_errors_say_where() {
    let mut g = Gen(42);
    let (mut ok, mut parse, mut invalid) = (0, 0, 0);
    for case in 0..6_000 {
        let text = mutate_model(&mut g, MODELS[case % MODELS.len()]);
        let result = catch_unwind(|| ModelConfig::from_toml_str(&text, "fuzz.toml"));
        let result =
            result.unwrap_or_else(|_| panic!("case {case}: the model parser panicked on:\n{text}"));
        match result {
            Ok(cfg) => {
                ok += 1;
                // What a run directory and a checkpoint store must read back the same.
                let back = ModelConfig::from_toml_str(&cfg.to_toml_string(), "round trip")
                    .unwrap_or_else(|e| panic!("case {case}: {e}\n{text}"));
                assert_eq!(back, cfg, "case {case}");
                // A valid model builds without panicking (when small enough to be quick).
                let sizes = cfg.layer_sizes();
                let mut n_pre = cfg.network.n_in;
                let mut weights = 0;
                for &n in &sizes {
                    weights += n_pre * n;
                    n_pre = n;
                }
                if weights <= 20_000 && cfg.synapse.psp_window_steps <= 1000 {
                    let built = catch_unwind(|| {
                        let _ = Model::new(cfg.clone());
                        let _ = Network::new(cfg.clone(), 1);
                    });
                    assert!(built.is_ok(), "case {case}: building panicked:\n{text}");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("fuzz.toml"), "case {case}: {msg}");
                if msg.contains("field `") {
                    invalid += 1;
                } else if msg.contains("line ") {
                    parse += 1;
                } else {
                    panic!("case {case}: the error names neither a field nor a position: {msg}\n{text}");
                }
            }
        }
    }
    eprintln!("model fuzz: {ok} valid, {parse} parse errors, {invalid} invalid fields");
    assert!(
        ok > 300 && parse > 300 && invalid > 300,
        "ok {ok}, parse errors {parse}, invalid fields {invalid}"
    );
}

/// Each kind of damage the issue lists, with the message it must give.
#[test]
fn model_file_errors_name_the_field() {
    let base = MODELS[1];
    let cases: [(&str, &str, &[&str]); 12] = [
        (
            "g_B = 0.6",
            "g_B = 0.6\nbogus = 1",
            &["unknown field `bogus`", "line"],
        ),
        (
            "[network]",
            "[network]\nlayers = 3",
            &["unknown field `layers`"],
        ),
        ("[phases]", "[stages]", &["unknown field `stages`"]),
        (
            "tau_L = 10.0",
            "tau_L = \"10\"",
            &["invalid type", "tau_L", "line 25"],
        ),
        (
            "hidden = [500]",
            "hidden = 500",
            &["invalid type", "hidden"],
        ),
        (
            "tau_s = 3.0",
            "tau_s = -3.0",
            &["field `synapse.tau_s`", "-3"],
        ),
        ("g_L = 0.1", "g_L = -0.1", &["field `neuron.g_L`"]),
        ("l_f = 50", "l_f = 0", &["field `phases.l_f`", "got 0"]),
        (
            "l_f_test = 250",
            "l_f_test = 0",
            &["field `phases.l_f_test`"],
        ),
        (
            "hidden = [500]",
            "hidden = [0]",
            &["field `network.hidden`", "size 0"],
        ),
        ("n_out = 10", "n_out = 0", &["field `network.n_out`"]),
        (
            "eta = [0.21, 0.21]",
            "eta = [nan, 0.21]",
            &["field `learning.eta[0]`", "NaN"],
        ),
    ];
    for (from, to, want) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let msg = ModelConfig::from_toml_str(&text, "models/x.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("models/x.toml"), "{msg}");
        for w in want {
            assert!(msg.contains(w), "{to:?}: {w:?} not in {msg}");
        }
    }
    let more: [(&str, &str, &str); 5] = [
        ("dt = 1.0", "dt = inf", "neuron.dt"),
        ("hidden = [500]", "hidden = [2000000]", "network.hidden"),
        ("l_t = 50", "l_t = 100000000", "phases.l_t"),
        ("tau_L = 10.0", "tau_L = 0.0", "synapse.tau_L"),
        ("lambda_max = 0.2", "lambda_max = 5", "neuron.lambda_max"),
    ];
    for (from, to, field) in more {
        let text = base.replacen(from, to, 1);
        let msg = ModelConfig::from_toml_str(&text, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&format!("field `{field}`")), "{to}: {msg}");
    }
    // A plateau offset beyond what its u8 storage holds; an integration time near i64::MAX.
    let text = base.replacen(
        "stochastic_plateau_times = false",
        "stochastic_plateau_times = true\nplateau_time_max_offset = 300",
        1,
    );
    let msg = ModelConfig::from_toml_str(&text, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("phases.plateau_time_max_offset"), "{msg}");
    let text = base
        .replacen(
            "integration_time = 20",
            "integration_time = 9223372036854775807",
            1,
        )
        .replacen(
            "stochastic_plateau_times = false",
            "stochastic_plateau_times = true\nplateau_time_max_offset = 255",
            1,
        );
    let msg = ModelConfig::from_toml_str(&text, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("phases.l_f"), "{msg}");
}
