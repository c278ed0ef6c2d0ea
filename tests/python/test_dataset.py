"""apical.Dataset (by name, file or numpy arrays) and a Network trained one example at a
time: validation errors name the array; arrays train to the command line's bytes; a new
network learns from train_example and saves a run the command line continues."""

import numpy as np
import pytest

import apical

from conftest import run_cli

TWO_CLASS = {
    "network.n_in": 100,
    "network.hidden": [20],
    "network.n_out": 20,
    "network.classes": 2,
}


def two_class(n, seed):
    """Class c lights inputs 50c..50c+49 (150-250); the rest stay dark."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.zeros((n, 100), np.uint8)
    for i, c in enumerate(y):
        x[i, 50 * c : 50 * (c + 1)] = rng.integers(150, 251, 50)
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def arrays():
    xt, yt = two_class(400, 0)
    xe, ye = two_class(100, 1)
    return xt, yt, xe, ye


@pytest.fixture(scope="module")
def model():
    return apical.Model.default().with_overrides(TWO_CLASS)


def test_from_arrays_checks_every_array(arrays):
    xt, yt, xe, ye = arrays
    ds = apical.Dataset.from_arrays(xt, yt, xe, ye, name="two")
    assert (ds.n_in, ds.classes, ds.n_train, ds.n_test) == (100, 2, 400, 100)
    assert ds.name == "two" and len(ds.sha256) == 64
    assert np.array_equal(ds.x_train, xt) and np.array_equal(ds.y_test, ye)
    # Floats x / 255 are the same data (same digest).
    assert apical.Dataset.from_arrays(xt / 255.0, yt, xe.astype(np.float32) / 255, ye).sha256 == ds.sha256
    cases = [
        ((xt.astype(np.int32), yt, xe, ye), ["x_train", "int32"]),
        ((xt, yt.astype(np.float64), xe, ye), ["y_train", "integers"]),
        ((xt, yt[:-1], xe, ye), ["y_train", "399 labels", "400 examples"]),
        ((xt, yt, xe[:, :99], ye), ["x_test", "99 inputs"]),
        ((xt, yt, xe, ye - 1), ["y_test", "-1"]),
        ((xt, yt, xe, ye + 300), ["y_test", "300"]),
        ((xt, yt.reshape(-1, 1), xe, ye), ["y_train", "1-D"]),
    ]
    nan = xe / 255.0
    nan[3, 7] = np.nan
    cases.append(((xt, yt, nan, ye), ["x_test", "NaN"]))
    cases.append(((xt, yt, xe * 2.0, ye), ["x_test", "0..1"]))
    for args, parts in cases:
        with pytest.raises(apical.DataError) as e:
            apical.Dataset.from_arrays(*args)
        for p in parts:
            assert p in str(e.value), (parts, str(e.value))


def test_arrays_train_to_the_cli_bytes(arrays, model, cli, tmp_path):
    xt, yt, xe, ye = arrays
    npz = tmp_path / "two.npz"
    np.savez(npz, x_train=xt, y_train=yt, x_test=xe, y_test=ye)
    ds = apical.Dataset.from_arrays(xt, yt, xe, ye)
    assert apical.Dataset.load(npz).sha256 == ds.sha256
    counts = dict(epochs=1, train_examples=400, test_examples=100, seed=3)
    run = apical.train(model, out=tmp_path / "py", data=ds, progress=False, record="none", **counts)
    assert run.info["data"]["sha256"] == ds.sha256
    assert run.metrics[-1]["test_error"] < 10.0, run.metrics
    (tmp_path / "two.toml").write_text(model.to_toml())
    run_cli(cli, "train", tmp_path / "two.toml", "--dataset", npz, "--epochs", "1",
            "--train-examples", "400", "--test-examples", "100", "--seed", "3",
            "--out", tmp_path / "cli", "--quiet", "--record", "none")
    a = (tmp_path / "py" / "checkpoint-epoch-1.bin").read_bytes()
    b = (tmp_path / "cli" / "checkpoint-epoch-1.bin").read_bytes()
    assert a == b
    # evaluate on the run's own data, given as the Dataset; other data refused unless told.
    net = apical.Network.from_run(run.dir)
    ev = net.evaluate(test_examples=100, data=ds)
    assert ev["confusion"].shape == (2, 2) and ev["confusion"].sum() == 100
    other = apical.Dataset.from_arrays(xt, yt, xe, 1 - ye)
    with pytest.raises(apical.ApicalError, match="other-data"):
        net.evaluate(test_examples=100, data=other)
    assert net.evaluate(test_examples=100, data=other, other_data=True)["error"] > 50


def test_a_new_network_learns_one_example_at_a_time(arrays, model, cli, tmp_path):
    xt, yt, xe, ye = arrays
    net = apical.Network.new(model, seed=2)
    assert net.path is None and net.epochs_done == 0
    w0 = net.weights(1).copy()
    before = (net.predict(xe) != ye).mean()
    out = None
    for i in range(200):
        out = net.train_example(xt[i], int(yt[i]))
    assert out["examples"] == 200 and out["label"] == int(yt[199])
    assert [e.shape for e in out["errors"]] == [(20,), (20,)]
    assert [p.shape for p in out["plateau_differences"]] == [(20,)]
    assert len(out["spike_counts"]) == 2 and out["spike_counts"][1] > 0
    assert not np.array_equal(net.weights(1), w0)
    after = (net.predict(xe) != ye).mean()
    assert after < 0.1 < before or after < 0.1, (before, after)
    with pytest.raises(apical.ApicalError, match="network.n_in = 100"):
        net.train_example(np.zeros(99, np.uint8), 0)
    with pytest.raises(apical.ApicalError, match="network.classes = 2"):
        net.train_example(xt[0], 2)
    # Saved as a run directory: the command line tests it and trains it on.
    ds = apical.Dataset.from_arrays(xt, yt, xe, ye)
    ck = net.save(tmp_path / "saved", dataset=ds)
    assert ck.name == "checkpoint-epoch-0.bin"
    npz = tmp_path / "two.npz"
    np.savez(npz, x_train=xt, y_train=yt, x_test=xe, y_test=ye)
    # The .npz holds the same content as the recorded arrays: the same digest, accepted.
    r = run_cli(cli, "eval", ck, "--dataset", npz, "--test-examples", "100")
    assert "0 epochs trained" in r.stdout, r.stdout
    run_cli(cli, "train", "--resume", tmp_path / "saved", "--dataset", npz, "--quiet",
            "--record", "none")
    resumed = apical.Network.from_run(tmp_path / "saved")
    assert resumed.epochs_done == 1
