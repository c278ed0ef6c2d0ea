"""apical.Model: loading, the default model, overrides (the CLI's --set code path), errors."""

import pytest

import apical
from conftest import REPO, run_cli


def test_load_keeps_the_file_text():
    path = REPO / "models" / "guerguiev-2h.toml"
    m = apical.Model.load(path)
    assert m.to_toml() == path.read_text()
    assert m.name == "guerguiev-2h"
    assert m.sizes == [784, 500, 100, 10]
    assert m.origin == str(path)


def test_default_is_the_1h_model_file():
    d = apical.Model.default()
    f = apical.Model.load(REPO / "models" / "guerguiev-1h.toml")
    assert d == f
    assert d.to_toml() == f.to_toml()
    assert d.config["learning"]["eta"] == [0.21, 0.21]
    assert d.config["network"]["hidden"] == [500]


def test_overrides_apply_and_validate():
    m = apical.Model.default().with_overrides(
        {"learning.eta": [0.2, 0.2], "network.hidden": [300], "neuron.g_A": 0.05,
         "learning.feedback_mode": "symmetric", "phases.use_rand_phase_lengths": False}
    )
    c = m.config
    assert c["learning"]["eta"] == [0.2, 0.2]
    assert c["network"]["hidden"] == [300]
    assert c["neuron"]["g_A"] == 0.05
    assert c["learning"]["feedback_mode"] == "symmetric"
    assert c["phases"]["use_rand_phase_lengths"] is False
    assert m.sizes == [784, 300, 10]
    # The text is the model as written out: it reads back to the same model.
    assert apical.Model.from_toml(m.to_toml()) == m
    # The original is unchanged.
    assert apical.Model.default().sizes == [784, 500, 10]


def test_numpy_values_are_accepted():
    np = pytest.importorskip("numpy")
    m = apical.Model.default().with_overrides({"learning.eta": np.array([0.1, 0.3])})
    assert m.config["learning"]["eta"] == [0.1, 0.3]


def test_bad_override_names_the_key_as_the_cli_does(cli, tmp_path):
    with pytest.raises(apical.ConfigError) as e:
        apical.Model.default().with_overrides({"learning.etaa": [0.2, 0.2]})
    msg = str(e.value)
    assert "learning.etaa" in msg and "learning.eta" in msg
    r = run_cli(cli, "train", "--set", "learning.etaa=[0.2, 0.2]", "--out", tmp_path / "x",
                "--quiet", check=False)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1] == f"error: {msg}"


def test_out_of_range_value_names_the_field(cli, tmp_path):
    with pytest.raises(apical.ConfigError) as e:
        apical.Model.default().with_overrides({"learning.eta": [-1.0, 0.2]})
    msg = str(e.value)
    assert "learning.eta" in msg
    r = run_cli(cli, "train", "--set", "learning.eta=[-1.0, 0.2]", "--out", tmp_path / "x",
                "--quiet", check=False)
    assert r.stderr.strip().splitlines()[-1] == f"error: {msg}"


def test_load_errors_are_apical_errors(tmp_path):
    with pytest.raises(apical.ConfigError, match="cannot read model file"):
        apical.Model.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[network]\nhidden = [5]\nwidth = 3\n[learning]\neta = [0.1, 0.1]\n')
    with pytest.raises(apical.ConfigError, match="width"):
        apical.Model.load(bad)
    assert issubclass(apical.ConfigError, apical.ApicalError)
    with pytest.raises(apical.ConfigError):
        apical.Model.default().with_overrides({"network.hidden": object()})
