"""read_spikes and open_traces on a recorded run."""

import numpy as np
import pytest

import apical
from conftest import HIDDEN


def test_read_spikes(run):
    t, ids = apical.read_spikes(run.dir / "traces.h5", "hidden0")
    assert t.dtype == np.float64 and ids.dtype == np.uint64
    assert len(t) == len(ids) > 0
    assert np.all(np.diff(t) >= 0)
    assert ids.max() < HIDDEN
    with pytest.raises(apical.TraceError, match="no spikes of population"):
        apical.read_spikes(run.dir / "traces.h5", "hidden7")
    with pytest.raises(apical.TraceError, match="no such trace file"):
        apical.read_spikes(run.dir / "nothing.h5", "hidden0")


def test_what_a_file_lacks_is_said_in_words(run, tmp_path):
    """No HDF5 error stack reaches the user: an unrecorded plateau, an absent dataset, a
    file that is not HDF5."""
    tr = apical.open_traces(run.dir)
    with pytest.raises(apical.TraceError, match="no plateau potentials of population 'hidden0'") as e:
        tr.plateau("hidden0")
    assert "H5" not in str(e.value)
    with pytest.raises(apical.TraceError, match="holds no /examples/nothing") as e:
        tr.read("/examples/nothing")
    assert "H5" not in str(e.value)
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,train_error\n")
    with pytest.raises(apical.TraceError, match="is not a trace file") as e:
        apical.open_traces(csv)
    assert "H5" not in str(e.value)


def test_spike_counts_give_the_metrics_rates(run):
    """Spikes of each epoch in the file, per neuron and ms, are the epoch's rates_hz."""
    tr = apical.open_traces(run.dir)
    ends = tr.metrics["end_time"]
    starts = np.concatenate([[0.0], ends[:-1]])
    for layer, pop in enumerate(["hidden0", "output"]):
        t, _ = tr.spikes(pop)
        n = tr.populations[pop]
        # The traces hold the trained epochs (metrics.json's epoch 0 is the test before).
        for e, m in enumerate(m for m in run.metrics if m["epoch"] > 0):
            count = np.count_nonzero((t >= starts[e]) & (t < ends[e]))
            rate = count / (n * (ends[e] - starts[e])) * 1000.0
            assert rate == pytest.approx(m["rates_hz"][layer], rel=1e-9)


def test_open_traces(run):
    tr = apical.open_traces(run.dir / "traces.h5")
    assert tr.populations == {"input": 784, "hidden0": HIDDEN, "output": 10}
    assert tr.attrs["complete"] is True and tr.attrs["stop_reason"] == "completed"
    assert tr.attrs["seed"] == 1
    assert sorted(tr.spike_populations) == ["hidden0", "input", "output"]
    assert tr.reports == ["hidden0"]
    rep = tr.report("hidden0")
    steps = int(round(tr.metrics["end_time"][-1] / tr.attrs["dt"]))
    # Sampled at the steps k with k % 5 == 0 (interval=5), k = 0 .. steps-1.
    assert rep["soma"].shape == ((steps + 4) // 5, HIDDEN)
    assert rep["apical"].shape == rep["soma"].shape
    assert np.all(rep["times"] % 5 == 0)
    np.testing.assert_allclose(
        tr.metrics["test_error"], [m["test_error"] for m in run.metrics if m["epoch"] > 0])
    ex = tr.examples
    assert len(ex["label"]) == 600 and set(np.unique(ex["epoch"])) == {1, 2}
    snaps = tr.weight_snapshots
    assert snaps["hidden0"]["W"].shape == (3, HIDDEN, 784)
    assert snaps["output"]["W"].shape == (3, 10, HIDDEN)
    assert tr.model() == run.model
    assert "hidden0" in repr(tr)
