#!/usr/bin/env bash
# CI of the Python package, called from .ci/run:
#   scripts/ci-python.sh
# 1. the one CI venv of scripts/ci-traces.sh ($TRACES_VENV, default
#    $CARGO_TARGET_DIR/traces-venv) with the pinned tools of python/requirements-test.txt
#    (pytest, matplotlib, maturin, h5py; scripts/ci-traces.sh adds the trace tools of
#    scripts/requirements-ci.txt to the same venv, with the same pins);
# 2. `pip install .` into it (the README's install line: maturin builds python/, the
#    binding crate of the workspace);
# 3. the pytest suite tests/python/ (small real runs; compares checkpoints with the CLI's);
# 4. the worked example of docs/python.md, extracted and run with small budgets
#    (scripts/run_python_doc.py).
# Prints the seconds of every stage. Needs MNIST (scripts/setup.sh puts it into data/mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
target="$(cd "$target" && pwd)"
venv="${TRACES_VENV:-$target/traces-venv}"
python="${PYTHON:-python3}"
t_all=$(date +%s)
stage_start=$t_all
stage() {
    local now
    now=$(date +%s)
    echo "ci-python: $1 took $((now - stage_start)) s"
    stage_start=$now
}

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r python/requirements-test.txt
stage "venv and pinned tools"

# The README's install line, built in the `fast` profile (the same bits as the release
# profile: docs/testing.md) into the target directory `cargo test --profile fast` used:
# with the dependency features of the binding crate and of the tests' build unified
# (Cargo.toml, python/Cargo.toml), it links the library that build compiled instead of
# compiling it and its dependencies again. --force-reinstall: the package always reflects
# this checkout.
# --no-build-isolation: the venv's pinned maturin (on the PATH) builds it, within the range
# pyproject.toml allows.
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile fast" CARGO_TARGET_DIR="$target" \
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps --no-build-isolation .
stage "pip install ."

# The byte-identity test compares with the command line's checkpoints: $APICAL_BIN, else
# the binary `cargo test --profile fast` built beside the tests (else it is built here).
if [ -z "${APICAL_BIN:-}" ]; then
    cargo build --profile fast --quiet --bin apical
    export APICAL_BIN="$target/fast/apical"
fi
stage "apical binary ($APICAL_BIN)"

"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python
stage "pytest tests/python"

MPLBACKEND=Agg "$venv/bin/python" scripts/run_python_doc.py docs/python.md
stage "docs/python.md example"
echo "ci-python: all stages took $(($(date +%s) - t_all)) s"
