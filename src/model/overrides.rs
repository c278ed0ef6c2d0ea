//! Parameter overrides: `--set KEY=VALUE` on the command line, `Model.with_overrides` in
//! Python, the axes of a sweep. One code path: the model is written out as TOML, each
//! dotted key replaced, and the result parsed and validated exactly like a model file, so
//! the effective model is what a run directory's model.toml holds.

use crate::model::config::{ConfigError, ModelConfig};
use toml::{Table, Value};

/// One `KEY=VALUE` override: a dotted path into the model file and a TOML value.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub key: String,
    pub value: Value,
}

impl Override {
    /// Parses `KEY=VALUE`, the value as TOML (`[0.2, 0.2]`, `0.05`, `"random"`, `true`). A
    /// bare word that is not TOML is taken as a string (`--set learning.feedback_mode=symmetric`).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        // A value of 300 KB is not echoed whole.
        let shown = if text.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}... ({} bytes)", &text[..cut], text.len())
        } else {
            text.to_string()
        };
        let bad = |problem: String| ConfigError::Invalid {
            path: "--set".into(),
            field: shown.clone(),
            problem,
        };
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| bad("is not KEY=VALUE (e.g. neuron.g_A=0.05)".into()))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad("has an empty key part".into()));
        }
        Ok(Override {
            key: key.to_string(),
            value: parse_value(value.trim()).map_err(bad)?,
        })
    }
}

/// A TOML value from its text; a bare word is a string.
pub(crate) fn parse_value(text: &str) -> Result<Value, String> {
    let doc = format!("v = {text}");
    match doc.parse::<Table>() {
        Ok(mut t) => t.remove("v").ok_or_else(|| "has no value".to_string()),
        // A number TOML cannot hold (1e400, 99999999999999999999) is an error, not the
        // string "1e400".
        Err(e) if text.trim_start_matches(['+', '-']).starts_with(|c: char| c.is_ascii_digit()) => {
            Err(format!(
                "is not a number TOML can hold (a float of at most about 1.8e308, an integer of 64 bits): {}",
                e.message()
            ))
        }
        Err(_)
            if !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-".contains(c)) =>
        {
            Ok(Value::String(text.to_string()))
        }
        Err(e) => Err(format!("is not a TOML value: {}", e.message())),
    }
}

impl ModelConfig {
    /// This model with `overrides` applied in order, validated like a model file. An unknown
    /// key is an error naming it and the nearest valid key. `origin` names the model in
    /// errors.
    pub fn with_overrides(
        &self,
        overrides: &[Override],
        origin: &str,
    ) -> Result<Self, ConfigError> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut doc: Table =
            toml::from_str(&self.to_toml_string()).map_err(|e| ConfigError::Parse {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        let mut known = leaf_keys(&doc);
        known.extend(
            crate::model::config::UNWRITTEN_DEFAULT_KEYS
                .iter()
                .filter(|k| !known.iter().any(|h| h == *k))
                .map(|k| k.to_string())
                .collect::<Vec<_>>(),
        );
        for o in overrides {
            set(&mut doc, o, &known, origin)?;
        }
        let text = toml::to_string(&doc).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        ModelConfig::from_toml_str(&text, &format!("{origin} with --set")).map_err(|e| match e {
            // The text parsed is the model written out, which the user never saw: name the
            // overrides, not a line of it.
            ConfigError::Parse { .. } => {
                let message = toml::from_str::<ModelConfig>(&text)
                    .err()
                    .map_or_else(|| e.to_string(), |p| p.message().to_string());
                let given: Vec<String> = overrides
                    .iter()
                    .map(|o| format!("--set {}={}", o.key, o.value))
                    .collect();
                ConfigError::Parse {
                    path: origin.to_string(),
                    message: format!("{}: {message}", given.join(" ")),
                }
            }
            e => e,
        })
    }
}

/// The fields a test of trained weights may change: the test phase's length and the window
/// its prediction averages (spec section 8; the paper's 500-ms test is `phases.l_f_test =
/// 500`, `phases.integration_time_test = 470`). Every other field shapes what was trained.
pub const TEST_PHASE_KEYS: [&str; 2] = ["phases.l_f_test", "phases.integration_time_test"];

impl ModelConfig {
    /// This model tested another way: like [`ModelConfig::with_overrides`], but every key
    /// must be one of [`TEST_PHASE_KEYS`] (anything else would test a network other than
    /// the one trained).
    pub fn with_test_overrides(
        &self,
        overrides: &[Override],
        origin: &str,
    ) -> Result<Self, ConfigError> {
        if let Some(o) = overrides
            .iter()
            .find(|o| !TEST_PHASE_KEYS.contains(&o.key.as_str()))
        {
            return Err(ConfigError::Invalid {
                path: origin.to_string(),
                field: o.key.clone(),
                problem: format!(
                    "cannot change for a test of trained weights (only {} can)",
                    TEST_PHASE_KEYS.join(" and ")
                ),
            });
        }
        self.with_overrides(overrides, origin)
    }
}

/// Every settable dotted key of a model: the fields a model file may hold (the model as
/// written out holds them all).
fn leaf_keys(doc: &Table) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, &Table)> = vec![(String::new(), doc)];
    while let Some((prefix, t)) = stack.pop() {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Table(sub) => stack.push((key, sub)),
                _ => out.push(key),
            }
        }
    }
    out.sort();
    out
}

fn set(doc: &mut Table, o: &Override, known: &[String], origin: &str) -> Result<(), ConfigError> {
    if !known.contains(&o.key) {
        let nearest = known
            .iter()
            .min_by_key(|k| edit_distance(k, &o.key))
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        return Err(ConfigError::Invalid {
            path: origin.to_string(),
            field: o.key.clone(),
            problem: format!("is not a model field{nearest}"),
        });
    }
    let mut parts: Vec<&str> = o.key.split('.').collect();
    let leaf = parts.pop().expect("a key has at least one part");
    let mut t = doc;
    for p in parts {
        t = match t.get_mut(p) {
            Some(Value::Table(sub)) => sub,
            _ => unreachable!("a known key's tables exist"),
        };
    }
    if let Some(old) = t.get(leaf) {
        if !same_kind(old, &o.value) {
            return Err(ConfigError::Invalid {
                path: origin.to_string(),
                field: o.key.clone(),
                problem: format!(
                    "cannot be {} (--set {}={}): it takes {} such as {old}, not {}",
                    o.value,
                    o.key,
                    o.value,
                    kind(old),
                    kind(&o.value)
                ),
            });
        }
    }
    t.insert(leaf.to_string(), o.value.clone());
    Ok(())
}

/// Whether `new` may replace `old` (a whole number where a number is wanted is fine).
fn same_kind(old: &Value, new: &Value) -> bool {
    matches!(
        (old, new),
        (Value::Float(_), Value::Integer(_)) | (Value::Integer(_), Value::Float(_))
    ) || std::mem::discriminant(old) == std::mem::discriminant(new)
}

/// A TOML value's kind in words.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// Levenshtein distance (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_all(items: &[&str]) -> Result<ModelConfig, ConfigError> {
        let o: Vec<Override> = items.iter().map(|s| Override::parse(s).unwrap()).collect();
        ModelConfig::default_model().with_overrides(&o, "default")
    }

    #[test]
    fn a_value_of_the_wrong_kind_names_the_key_the_value_and_what_is_expected() {
        let msg = set_all(&["learning.eta=0.2"]).unwrap_err().to_string();
        assert!(
            msg.contains("`learning.eta`")
                && msg.contains("--set learning.eta=0.2")
                && msg.contains("takes a list such as [")
                && msg.contains("not a number"),
            "{msg}"
        );
        assert!(!msg.contains("line"), "{msg}");
        let msg = set_all(&["neuron.g_A=\"big\""]).unwrap_err().to_string();
        assert!(
            msg.contains("`neuron.g_A`")
                && msg.contains("takes a number")
                && msg.contains("not a string"),
            "{msg}"
        );
        let msg = set_all(&["learning.feedback_mode=[1]"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("takes a string such as \"random\""), "{msg}");
        // A whole number where a number is wanted is a number.
        assert_eq!(set_all(&["neuron.g_A=1"]).unwrap().neuron.g_a, 1.0);
    }

    #[test]
    fn values_are_parsed_as_toml_and_land_in_their_fields() {
        let c = set_all(&[
            "learning.eta=[0.2, 0.19]",
            "neuron.g_A=0.05",
            "network.hidden=[300]",
            "learning.feedback_mode=symmetric",
        ])
        .unwrap();
        assert_eq!(c.learning.eta, vec![0.2, 0.19]);
        assert_eq!(c.neuron.g_a, 0.05);
        assert_eq!(c.network.hidden, vec![300]);
        assert_eq!(
            c.to_toml_string(),
            ModelConfig::from_toml_str(&c.to_toml_string(), "x")
                .unwrap()
                .to_toml_string()
        );
    }

    #[test]
    fn a_field_left_out_when_default_can_be_set() {
        let c = set_all(&["neuron.mode=rate"]).unwrap();
        assert_eq!(c.neuron.mode, crate::model::config::NeuronMode::Rate);
        assert!(c.to_toml_string().contains("mode = \"rate\""));
    }

    #[test]
    fn every_field_left_out_at_its_default_can_be_set() {
        // A rate backprop network, where batch_size may exceed 1: each field the model text
        // leaves out at its default is set (once away from its default).
        let c = set_all(&[
            "neuron.mode=rate",
            "learning.rule=backprop",
            "network.classes=10",
            "training.test_initial=false",
            "training.batch_size=32",
        ])
        .unwrap();
        assert_eq!(c.training.batch_size, 32);
        assert!(!c.training.test_initial);
        let text = c.to_toml_string();
        assert!(text.contains("batch_size = 32"), "{text}");
        // The keys the text then holds beyond the default model's are all in the list.
        let doc: Table = toml::from_str(&text).unwrap();
        let default_doc: Table =
            toml::from_str(&ModelConfig::default_model().to_toml_string()).unwrap();
        let default_keys = leaf_keys(&default_doc);
        for k in leaf_keys(&doc) {
            assert!(
                default_keys.contains(&k)
                    || crate::model::config::UNWRITTEN_DEFAULT_KEYS.contains(&k.as_str()),
                "`{k}` is left out of the default model's text but not settable"
            );
        }
    }

    #[test]
    fn no_overrides_leave_the_model_as_it_is() {
        let d = ModelConfig::default_model();
        assert_eq!(
            d.with_overrides(&[], "d").unwrap().to_toml_string(),
            d.to_toml_string()
        );
    }

    #[test]
    fn an_unknown_key_names_the_nearest_valid_one() {
        let e = set_all(&["neuron.gA=0.05"]).unwrap_err().to_string();
        assert!(
            e.contains("`neuron.gA` is not a model field; did you mean `neuron.g_A`?"),
            "{e}"
        );
    }

    #[test]
    fn values_are_validated_like_the_file() {
        let e = set_all(&["neuron.dt=-1"]).unwrap_err().to_string();
        assert!(e.contains("neuron.dt"), "{e}");
        let e = set_all(&["learning.eta=[0.2]"]).unwrap_err().to_string();
        assert!(e.contains("learning.eta"), "{e}");
        assert!(Override::parse("neuron.g_A").is_err());
        assert!(Override::parse("=3").is_err());
        assert!(Override::parse("learning.eta=[0.2,").is_err());
        // A number out of range was taken for the string "1e400".
        let e = Override::parse("neuron.g_A=1e400").unwrap_err().to_string();
        assert!(e.contains("not a number TOML can hold"), "{e}");
        assert!(Override::parse("neuron.g_A=-99999999999999999999").is_err());
        let long = format!("neuron.g_A=[{}", "1,".repeat(100_000));
        let e = Override::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 2000, "{} bytes", e.len());
        // A huge time step is named in a short message (it printed 301 digits).
        let e = set_all(&["neuron.dt=1e300"]).unwrap_err().to_string();
        assert!(e.contains("1e300 ms") && e.len() < 400, "{e}");
        assert_eq!(crate::model::config::short_num(0.05), "0.05");
        // Bare words are still strings.
        assert_eq!(parse_value("rate"), Ok(Value::String("rate".into())));
    }

    #[test]
    fn a_test_may_change_only_its_phase() {
        let d = ModelConfig::default_model();
        let o = [
            Override::parse("phases.l_f_test=500").unwrap(),
            Override::parse("phases.integration_time_test=470").unwrap(),
        ];
        let c = d.with_test_overrides(&o, "ck").unwrap();
        assert_eq!(
            (c.phases.l_f_test, c.phases.integration_time_test),
            (500, 470)
        );
        // Everything else as trained.
        let mut back = c.clone();
        back.phases.l_f_test = d.phases.l_f_test;
        back.phases.integration_time_test = d.phases.integration_time_test;
        assert_eq!(back.to_toml_string(), d.to_toml_string());
        let e = d
            .with_test_overrides(&[Override::parse("neuron.g_A=0.05").unwrap()], "ck")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ck") && e.contains("`neuron.g_A`"), "{e}");
        // Validated like a model file: a window longer than the phase is refused.
        let e = d
            .with_test_overrides(
                &[Override::parse("phases.integration_time_test=300").unwrap()],
                "ck",
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("phases.integration_time_test"), "{e}");
    }
}
