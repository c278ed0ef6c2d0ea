"""apical.Network: restoring, weights, evaluation (as `apical eval`), simulation."""

import re

import numpy as np
import pytest

import apical
from conftest import HIDDEN, run_cli


def test_from_run_restores_the_latest_checkpoint(net, run):
    assert net.epochs_done == 2
    assert net.seed == 1
    assert net.path == run.dir / "checkpoint-epoch-2.bin"
    assert net.sizes == [784, HIDDEN, 10]
    assert net.populations == ["input", "hidden0", "output"]
    assert net.n_layers == 2
    assert net.model == run.model
    assert [h["epoch"] for h in net.history] == [1, 2]
    # The checkpoint's history holds the trained epochs (metrics.json adds epoch 0).
    trained = [m for m in run.metrics if m["epoch"] > 0]
    assert [h["test_error"] for h in net.history] == [m["test_error"] for m in trained]


def test_weights_match_the_trace_snapshots(net, run, data_dir):
    w0, w1 = net.weights(0), net.weights(1)
    assert w0.shape == (HIDDEN, 784) and w0.dtype == np.float32
    assert w1.shape == (10, HIDDEN)
    assert net.feedback(0).shape == (HIDDEN, 10)
    # The output layer has no feedback weights: an error, not an empty (10, 0) array.
    with pytest.raises(apical.ApicalError, match="output layer"):
        net.feedback(1)
    assert net.biases(0).shape == (HIDDEN,)
    # Handed to numpy without a copy: numpy does not own the data.
    assert not w0.flags.owndata
    snaps = apical.open_traces(run.dir).weight_snapshots
    assert list(snaps["epoch"]) == [0, 1, 2]
    np.testing.assert_array_equal(snaps["hidden0"]["W"][-1], w0)
    np.testing.assert_array_equal(snaps["output"]["W"][-1], w1)
    np.testing.assert_array_equal(snaps["hidden0"]["Y"][-1], net.feedback(0))
    np.testing.assert_array_equal(snaps["hidden0"]["b"][-1], net.biases(0))
    first = apical.Network.from_checkpoint(run.dir / "checkpoint-epoch-1.bin", data=data_dir)
    assert first.epochs_done == 1
    np.testing.assert_array_equal(snaps["hidden0"]["W"][1], first.weights(0))
    with pytest.raises(apical.ApicalError, match="layer 2 does not exist"):
        net.weights(2)


def test_evaluate_matches_apical_eval(net, run, cli, data_dir):
    r = net.evaluate(test_examples=200, seed=3)
    assert r["test_examples"] == 200
    c = r["confusion"]
    assert c.shape == (10, 10) and c.sum() == 200
    assert r["error"] == pytest.approx(100.0 * (200 - np.trace(c)) / 200)
    assert "mean" not in r
    out = run_cli(cli, "eval", run.dir, "--test-examples", "200", "--seed", "3",
                  "--data", data_dir).stdout
    printed = float(re.search(r"test error ([0-9.]+) %", out).group(1))
    assert printed == pytest.approx(r["error"], abs=0.005)
    rows = [list(map(int, l.split()[1:])) for l in out.splitlines()[-10:]]
    np.testing.assert_array_equal(np.array(rows), c)
    # Threads change nothing.
    r1 = net.evaluate(test_examples=200, seed=3, threads=1)
    np.testing.assert_array_equal(r1["confusion"], c)


def test_evaluate_repeats(net):
    r = net.evaluate(test_examples=100, seed=0, repeats=3)
    assert len(r["errors"]) == 3
    assert r["error"] == r["errors"][0]
    assert r["mean"] == pytest.approx(np.mean(r["errors"]))
    assert r["sd"] == pytest.approx(np.std(r["errors"], ddof=1))
    assert r["confusion"].sum() == 300
    with pytest.raises(apical.ApicalError, match="at least 1"):
        net.evaluate(test_examples=0)


def test_simulate_forward_records_every_step(net):
    r = net.simulate(5, phase="forward", steps=120, record=["spikes", "soma", "apical"])
    assert r["time_ms"].shape == (120,) and r["time_ms"][-1] == 119.0
    assert r["soma"]["hidden0"].shape == (120, HIDDEN)
    assert r["soma"]["output"].shape == (120, 10)
    assert list(r["apical"]) == ["hidden0"] and r["apical"]["hidden0"].shape == (120, HIDDEN)
    assert "basal" not in r
    t, ids = r["spikes"]["input"]
    assert t.dtype == np.float64 and len(t) == len(ids) > 0
    assert t.min() >= 0 and t.max() <= 119 and ids.max() < 784
    th, ih = r["spikes"]["hidden0"]
    assert len(th) > 0 and ih.max() < HIDDEN
    assert 0 <= r["prediction"] <= 9 and 0 <= r["label"] <= 9
    # The same seed gives the same simulation; another seed other spikes.
    again = net.simulate(5, phase="forward", steps=120, record=["spikes", "soma", "apical"])
    np.testing.assert_array_equal(again["soma"]["hidden0"], r["soma"]["hidden0"])
    other = net.simulate(5, phase="forward", steps=120, record="spikes", seed=9)
    assert not np.array_equal(other["spikes"]["input"][1], ids)


def test_simulate_test_phase_predicts_what_evaluate_did(net):
    r = net.evaluate(test_examples=40, seed=4)
    conf = np.zeros((10, 10), dtype=np.uint64)
    for i in r["indices"]:
        s = net.simulate(int(i), phase="test", record=[], seed=4)
        conf[s["label"], s["prediction"]] += 1
    np.testing.assert_array_equal(conf, r["confusion"])


def test_simulate_target_phase_and_pixel_input(net):
    model = net.model.config["phases"]
    r = net.simulate(3, phase="target", record=["soma", "rate", "basal"])
    assert r["target_start_step"] == model["l_f"]
    assert r["time_ms"].shape == (model["l_f"] + model["l_t"],)
    assert r["rate_hz"]["output"].shape == (model["l_f"] + model["l_t"], 10)
    img = np.zeros((28, 28), dtype=np.uint8)
    img[10:18, 12:16] = 255
    s = net.simulate(img, steps=50, record="spikes")
    assert s["label"] is None and s["time_ms"].shape == (50,)
    with pytest.raises(apical.ApicalError, match="needs the label"):
        net.simulate(img, phase="target")
    with pytest.raises(apical.ApicalError, match="784"):
        net.simulate(np.zeros(10), steps=5)
    with pytest.raises(apical.ApicalError, match="0..255"):
        net.simulate(np.full(784, 0.5), steps=5)
    with pytest.raises(apical.ApicalError, match="phase"):
        net.simulate(0, phase="sideways")
    with pytest.raises(apical.ApicalError, match="unknown variable"):
        net.simulate(0, record=["voltage"])


def test_missing_run_is_a_checkpoint_error(tmp_path):
    with pytest.raises(apical.CheckpointError):
        apical.Network.from_run(tmp_path)
    bad = tmp_path / "checkpoint-epoch-1.bin"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(apical.CheckpointError, match="not an apical checkpoint|truncated"):
        apical.Network.from_checkpoint(bad)
