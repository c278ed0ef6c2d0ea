//! Model files: every shipped model parses; bad files give errors that name the field.

use apical::model::config::{ConfigError, ModelConfig, DEFAULT_MODEL_TOML};
use std::path::Path;

fn err_of(text: &str) -> String {
    match ModelConfig::from_toml_str(text, "bad.toml") {
        Ok(_) => panic!("accepted a bad model file:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = "name = \"t\"\n[network]\nhidden = [500]\n[learning]\neta = [0.21, 0.21]\n";

#[test]
fn shipped_models_parse_and_the_embedded_default_is_the_1h_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = ModelConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                Some(cfg.name.as_str()),
                path.file_stem().and_then(|s| s.to_str())
            );
            n += 1;
        }
    }
    assert!(n >= 3);
    let on_disk = std::fs::read_to_string(dir.join("guerguiev-1h.toml")).unwrap();
    assert_eq!(on_disk, DEFAULT_MODEL_TOML);
    let d = ModelConfig::default_model();
    assert_eq!(d.layer_sizes(), vec![500, 10]);
    assert_eq!(d.synapse.psp_window_steps, 10);
    assert_eq!(d.phases.l_f_test, 250);
    // Round trip through the TOML a run directory stores.
    let again = ModelConfig::from_toml_str(&d.to_toml_string(), "copy").unwrap();
    assert_eq!(again, d);
}

#[test]
fn minimal_file_gets_the_spec_defaults() {
    let c = ModelConfig::from_toml_str(BASE, "min").unwrap();
    assert_eq!(c.neuron.lambda_max, 0.2);
    assert_eq!(c.neuron.g_b, 0.6);
    assert_eq!(c.neuron.g_a, 0.0);
    assert_eq!(c.synapse.tau_l, 10.0);
    assert_eq!(c.synapse.tau_s, 3.0);
    assert_eq!(c.phases.integration_time, 20);
    assert!(c.phases.use_rand_phase_lengths);
}

#[test]
fn unknown_field_is_named() {
    let e = err_of(&BASE.replace("[network]\n", "[network]\nhiden = [3]\n"));
    assert!(e.contains("hiden") && e.contains("bad.toml"), "{e}");
    let e = err_of(&format!("{BASE}[neuron]\ntau_x = 3.0\n"));
    assert!(e.contains("tau_x"), "{e}");
}

#[test]
fn wrong_type_is_reported() {
    let e = err_of(&BASE.replace("hidden = [500]", "hidden = \"500\""));
    assert!(e.contains("hidden") || e.contains("invalid type"), "{e}");
}

#[test]
fn out_of_range_values_name_the_field() {
    let cases = [
        (format!("{BASE}[synapse]\ntau_L = -10.0\n"), "synapse.tau_L"),
        (format!("{BASE}[synapse]\ntau_s = 0.0\n"), "synapse.tau_s"),
        (format!("{BASE}[phases]\nl_f = 0\n"), "phases.l_f"),
        (format!("{BASE}[phases]\nl_t = 10\n"), "phases.l_t"),
        (
            BASE.replace("hidden = [500]", "hidden = [500, 0]"),
            "network.hidden",
        ),
        (
            BASE.replace("eta = [0.21, 0.21]", "eta = [0.21]"),
            "learning.eta",
        ),
        (
            format!("{BASE}[neuron]\nlambda_max = 2.0\n"),
            "neuron.lambda_max",
        ),
        (format!("{BASE}[neuron]\ng_L = nan\n"), "neuron.g_L"),
        (
            BASE.replace("[network]\n", "[network]\nn_out = 15\n"),
            "network.n_out",
        ),
        (format!("{BASE}[learning.x]\n"), "x"),
        (format!("{BASE}[training]\nepochs = 0\n"), "training.epochs"),
        // Positive and finite, but only a mistake: a 1e-300 ms step, a step longer than the
        // membrane time constant, a time constant of days.
        (format!("{BASE}[neuron]\ndt = 1e-300\n"), "neuron.dt"),
        (format!("{BASE}[neuron]\ndt = 20.0\n"), "neuron.dt"),
        (format!("{BASE}[synapse]\ntau_L = 1e9\n"), "synapse.tau_L"),
    ];
    for (text, field) in cases {
        let e = err_of(&text);
        assert!(e.contains(field), "error for {field} does not name it: {e}");
    }
}

#[test]
fn plausible_time_steps_pass_at_their_bounds() {
    for dt in ["0.001", "10.0"] {
        let text = format!("{BASE}[neuron]\ndt = {dt}\n");
        ModelConfig::from_toml_str(&text, "ok.toml").unwrap();
    }
    let e = err_of(&format!("{BASE}[neuron]\ndt = 1e-300\n"));
    assert!(e.contains("below 0.001 ms can only be a mistake"), "{e}");
}

#[test]
fn unreadable_file_names_the_path() {
    match ModelConfig::from_file(Path::new("/nonexistent/model.toml")) {
        Err(e @ ConfigError::Read { .. }) => {
            assert!(e.to_string().contains("/nonexistent/model.toml"))
        }
        other => panic!("{other:?}"),
    }
}
