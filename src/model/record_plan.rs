//! A record spec resolved against a model: per population, what is recorded and when.

use crate::model::recording::{
    parse_examples, parse_var, spec_err, Examples, RecordGroup, SpecError, Var, VAR_NAMES,
};
use crate::model::topology::Topology;

/// Compartment codes of the report's `mapping/element_ids`.
pub(crate) const ELEMENT_SOMA: u32 = 0;
pub(crate) const ELEMENT_BASAL: u32 = 1;
pub(crate) const ELEMENT_APICAL: u32 = 2;

/// Compartment potentials of one layer in `/report/<population>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReportSel {
    /// Element codes recorded per neuron, ascending (soma 0, basal 1, apical 2).
    pub elements: Vec<u32>,
    pub examples: Examples,
    pub interval: usize,
}

/// A record spec resolved against a model: per population (0 = input, m + 1 = layer m) or
/// per layer m, what is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordPlan {
    /// Per population.
    pub spikes: Vec<Option<Examples>>,
    /// Per layer.
    pub report: Vec<Option<ReportSel>>,
    /// Per layer: examples and interval.
    pub rate: Vec<Option<(Examples, usize)>>,
    /// Per layer (hidden layers only).
    pub plateau: Vec<Option<Examples>>,
    /// Per layer: `Some(examples)` records snapshots at the start of the run, at each epoch
    /// end and after the selected examples.
    pub weights: Vec<Option<Examples>>,
    pub labels: Option<Examples>,
}

impl RecordPlan {
    /// Checks the groups against the model's shape and whether it spikes (`spiking`: false
    /// in the rate mode of section 9). Errors name the group's part, e.g. `record[0].layers`.
    pub(crate) fn resolve(
        groups: &[RecordGroup],
        topo: &Topology,
        spiking: bool,
    ) -> Result<Self, SpecError> {
        let names = topo.population_names();
        let m_layers = names.len() - 1;
        let is_hidden = |p: usize| p >= 1 && p < m_layers;
        let mut plan = RecordPlan {
            spikes: vec![None; m_layers + 1],
            report: vec![None; m_layers],
            rate: vec![None; m_layers],
            plateau: vec![None; m_layers],
            weights: vec![None; m_layers],
            labels: None,
        };
        // (var, population) -> (group, examples, interval), to find conflicts.
        let mut claimed: Vec<(Var, usize, usize, Examples, usize)> = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            let f = |part: &str| format!("record[{gi}].{part}");
            let vars = group_vars(g, &f)?;
            let pops = group_populations(g, &names, &f)?;
            let explicit = g.examples.is_some();
            let examples = match &g.examples {
                Some(s) => parse_examples(s.trim()).map_err(|p| spec_err(f("examples"), p))?,
                None => Examples::All,
            };
            for &v in &vars {
                let applies = |p: usize| match v {
                    // The rate mode (section 9) has no spikes: selecting them is an error,
                    // not empty datasets.
                    Var::Spikes => spiking,
                    Var::Soma | Var::Basal | Var::Rate | Var::Weights => p >= 1,
                    Var::Apical | Var::Plateau => is_hidden(p),
                    Var::Labels | Var::Metrics => false,
                };
                if matches!(v, Var::Labels) {
                    plan.labels = Some(examples);
                    continue;
                }
                if matches!(v, Var::Metrics) {
                    continue;
                }
                let targets: Vec<usize> = pops.iter().copied().filter(|&p| applies(p)).collect();
                if targets.is_empty() {
                    let name = g
                        .variables
                        .iter()
                        .find(|n| parse_var(n.trim()).is_some_and(|vs| vs.contains(&v)));
                    return Err(spec_err(
                        f("layers"),
                        format!(
                            "selects no population that has {:?} ({})",
                            name.map_or("?", |s| s.as_str()),
                            match v {
                                Var::Apical | Var::Plateau => "hidden layers only",
                                Var::Spikes if spiking => "every population",
                                Var::Spikes => "none in the rate mode, neuron.mode = \"rate\"",
                                _ => "hidden and output layers, not the input",
                            }
                        ),
                    ));
                }
                let ex = if v == Var::Weights && !explicit {
                    Examples::None
                } else {
                    examples
                };
                for p in targets {
                    if let Some(c) = claimed.iter().find(|c| c.0 == v && c.1 == p) {
                        return Err(spec_err(
                            f("variables"),
                            format!(
                                "selects {v:?} of {} again (already selected by record[{}]); give each variable of a population once",
                                names[p], c.2
                            )
                            .to_lowercase(),
                        ));
                    }
                    claimed.push((v, p, gi, ex, g.interval));
                    plan.select(v, p, ex, g.interval, &names[p])
                        .map_err(|problem| spec_err(f("variables"), problem))?;
                }
            }
        }
        Ok(plan)
    }

    /// Records variable `v` of population `p` (0: the input; `name` in errors) for examples
    /// `ex` every `interval` steps. The potentials of one population share one report: a
    /// second group may add to it only with the same examples and interval.
    fn select(
        &mut self,
        v: Var,
        p: usize,
        ex: Examples,
        interval: usize,
        name: &str,
    ) -> Result<(), String> {
        let m = p.wrapping_sub(1);
        let code = match v {
            Var::Spikes => {
                self.spikes[p] = Some(ex);
                return Ok(());
            }
            Var::Rate => {
                self.rate[m] = Some((ex, interval));
                return Ok(());
            }
            Var::Plateau => {
                self.plateau[m] = Some(ex);
                return Ok(());
            }
            Var::Weights => {
                self.weights[m] = Some(ex);
                return Ok(());
            }
            Var::Labels | Var::Metrics => return Ok(()),
            Var::Soma => ELEMENT_SOMA,
            Var::Basal => ELEMENT_BASAL,
            Var::Apical => ELEMENT_APICAL,
        };
        match &mut self.report[m] {
            None => {
                self.report[m] = Some(ReportSel {
                    elements: vec![code],
                    examples: ex,
                    interval,
                });
            }
            Some(r) if r.examples != ex || r.interval != interval => {
                return Err(format!(
                    "records potentials of {name} with other examples or interval than another group; soma, basal and apical of one population share one report, so give them in one group"
                ));
            }
            Some(r) => {
                r.elements.push(code);
                r.elements.sort_unstable();
            }
        }
        Ok(())
    }

    /// Whether anything per example is recorded for example `k` of `n`.
    pub(crate) fn example_selected(&self, k: usize, n: usize) -> bool {
        let sel = |e: &Option<Examples>| e.is_some_and(|e| e.selects(k, n));
        self.spikes.iter().any(sel)
            || self.plateau.iter().any(sel)
            || sel(&self.labels)
            || self
                .report
                .iter()
                .any(|r| r.as_ref().is_some_and(|r| r.examples.selects(k, n)))
            || self
                .rate
                .iter()
                .any(|r| r.is_some_and(|r| r.0.selects(k, n)))
    }
}

/// The variables of group `g`, checked (`f` names the group's parts in errors).
fn group_vars(g: &RecordGroup, f: &impl Fn(&str) -> String) -> Result<Vec<Var>, SpecError> {
    if g.variables.is_empty() {
        return Err(spec_err(
            f("variables"),
            format!("is empty; choose from {VAR_NAMES}"),
        ));
    }
    if g.interval == 0 {
        return Err(spec_err(f("interval"), "must be at least 1 step, got 0"));
    }
    let mut vars = Vec::new();
    for (vi, v) in g.variables.iter().enumerate() {
        let Some(vs) = parse_var(v.trim()) else {
            return Err(spec_err(
                f(&format!("variables[{vi}]")),
                format!("is the unknown variable {v:?}; choose from {VAR_NAMES}"),
            ));
        };
        vars.extend_from_slice(vs);
    }
    Ok(vars)
}

/// The populations of group `g` (indices into `names`, 0: the input), sorted, each once;
/// `all` and `hidden` stand for theirs.
fn group_populations(
    g: &RecordGroup,
    names: &[String],
    f: &impl Fn(&str) -> String,
) -> Result<Vec<usize>, SpecError> {
    let m_layers = names.len() - 1;
    let mut pops = Vec::new();
    for (li, l) in g.layers.iter().enumerate() {
        let l = l.trim();
        match l {
            "all" => pops.extend(0..=m_layers),
            "hidden" => pops.extend(1..m_layers),
            _ => match names.iter().position(|n| n == l) {
                Some(p) => pops.push(p),
                None => {
                    return Err(spec_err(
                        f(&format!("layers[{li}]")),
                        format!(
                            "is the unknown population {l:?}; this model has {} (or all, hidden)",
                            names.join(", ")
                        ),
                    ))
                }
            },
        }
    }
    pops.sort_unstable();
    pops.dedup();
    Ok(pops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::ModelConfig;
    use crate::model::recording::{parse_spec, DEFAULT_SPEC};

    fn model() -> ModelConfig {
        ModelConfig::default_model()
    }

    fn resolve(spec: &str) -> Result<RecordPlan, SpecError> {
        RecordPlan::resolve(&parse_spec(spec)?, &model().topology(), true)
    }

    #[test]
    fn shortest_spec_records_spikes_of_every_population_for_every_example() {
        let p = resolve("spikes").unwrap();
        assert_eq!(p.spikes, vec![Some(Examples::All); 3]);
        assert!(p.report.iter().all(Option::is_none));
        assert!(p.weights.iter().all(Option::is_none));
    }

    #[test]
    fn default_spec_has_epoch_end_weights_only() {
        let p = resolve(DEFAULT_SPEC).unwrap();
        assert_eq!(p.weights, vec![Some(Examples::None); 2]);
        assert!(p.spikes.iter().all(Option::is_none));
        assert!(!p.example_selected(0, 10));
    }

    #[test]
    fn full_spec_resolves_per_layer() {
        let p = resolve(
            "spikes,soma,apical:layers=hidden0;examples=every:10;interval=5|plateau,labels:examples=last:3",
        )
        .unwrap();
        assert_eq!(p.spikes, vec![None, Some(Examples::Every(10)), None]);
        assert_eq!(
            p.report[0],
            Some(ReportSel {
                elements: vec![ELEMENT_SOMA, ELEMENT_APICAL],
                examples: Examples::Every(10),
                interval: 5
            })
        );
        assert_eq!(p.report[1], None);
        // plateau with layers=all lands on the hidden layer only.
        assert_eq!(p.plateau, vec![Some(Examples::Last(3)), None]);
        assert_eq!(p.labels, Some(Examples::Last(3)));
        assert!(p.example_selected(20, 100));
        assert!(!p.example_selected(21, 100));
        assert!(p.example_selected(98, 100));
    }

    #[test]
    fn example_selections() {
        assert!(Examples::Every(3).selects(6, 10) && !Examples::Every(3).selects(7, 10));
        assert!(Examples::First(2).selects(1, 10) && !Examples::First(2).selects(2, 10));
        assert!(Examples::Last(2).selects(8, 10) && !Examples::Last(2).selects(7, 10));
        assert!(Examples::Range(3, 5).selects(4, 10) && !Examples::Range(3, 5).selects(5, 10));
        assert!(!Examples::None.selects(0, 1));
        assert_eq!(parse_examples("range:2..9"), Ok(Examples::Range(2, 9)));
    }

    fn err(spec: &str) -> SpecError {
        resolve(spec).expect_err(spec)
    }

    #[test]
    fn spikes_of_a_rate_model_are_an_error() {
        let mut cfg = model();
        cfg.neuron.mode = crate::model::config::NeuronMode::Rate;
        let e = RecordPlan::resolve(&parse_spec("spikes").unwrap(), &cfg.topology(), false)
            .unwrap_err();
        assert_eq!(e.field, "record[0].layers");
        assert!(e.problem.contains("rate mode"), "{e}");
        // Potentials and rates of a rate model are still recorded.
        RecordPlan::resolve(&parse_spec("soma,rate").unwrap(), &cfg.topology(), false).unwrap();
    }

    #[test]
    fn bad_specs_name_the_bad_part() {
        let e = err("spikes:examples=every:0");
        assert_eq!(e.field, "examples=every:0");
        assert!(e.problem.contains("at least 1"), "{e}");
        let e = err("spikes:interval=0");
        assert_eq!(e.field, "interval=0");
        let e = err("spikes:layer=hidden0");
        assert_eq!(e.field, "layer=hidden0");
        assert!(e.problem.contains("unknown option `layer`"), "{e}");
        let e = err("spikes:examples=range:5..2");
        assert!(e.problem.contains("A < B"), "{e}");
        let e = err("spikes,somaa");
        assert_eq!(e.field, "record[0].variables[1]");
        assert!(e.problem.contains("\"somaa\""), "{e}");
        let e = err("spikes:layers=hidden3");
        assert_eq!(e.field, "record[0].layers[0]");
        assert!(e.problem.contains("input, hidden0, output"), "{e}");
        let e = err("apical:layers=output");
        assert_eq!(e.field, "record[0].layers");
        assert!(e.problem.contains("hidden layers only"), "{e}");
        let e = err("spikes|spikes:layers=output");
        assert_eq!(e.field, "record[1].variables");
        assert!(e.problem.contains("already selected by record[0]"), "{e}");
        let e = err("soma:examples=every:2|basal");
        assert!(e.problem.contains("share one report"), "{e}");
        let e = err("spikes:examples=every:2;examples=all");
        assert!(e.problem.contains("repeats"), "{e}");
        assert!(parse_spec("").is_err());
        assert_eq!(parse_spec("none"), Ok(vec![]));
    }

    #[test]
    fn record_tables_in_a_model_file_are_validated_with_field_names() {
        let mut text = crate::model::config::DEFAULT_MODEL_TOML.to_string();
        text.push_str("\n[[record]]\nvariables = [\"spikes\", \"soma\"]\nlayers = [\"hidden0\"]\nexamples = \"every:10\"\ninterval = 5\n");
        let cfg = ModelConfig::from_toml_str(&text, "m.toml").unwrap();
        assert_eq!(cfg.record.len(), 1);
        assert_eq!(cfg.record[0].interval, 5);
        // The config round-trips through its TOML text with the record table.
        let again = ModelConfig::from_toml_str(&cfg.to_toml_string(), "again").unwrap();
        assert_eq!(again, cfg);
        let bad = text.replace("every:10", "evry:10");
        let e = ModelConfig::from_toml_str(&bad, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("record[0].examples"), "{e}");
        let bad = text.replace("interval = 5", "intervall = 5");
        let e = ModelConfig::from_toml_str(&bad, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("intervall"), "{e}");
    }
}
