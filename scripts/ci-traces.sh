#!/usr/bin/env bash
# CI check of the trace file layout (docs/traces.md), called from .ci/run:
#   scripts/ci-traces.sh
# 1. a Rust test writes target/tmp/traces-ci/traces.h5 (deflate) and
#    traces-uncompressed.h5 from a short recorded run on synthetic images;
# 2. a venv with h5py and libsonata (PyPI) validates both with scripts/check_traces.py:
#    the layout with h5py, and libsonata's SpikeReader / ElementReportReader /
#    SomaReportReader must read the uncompressed file's spikes and reports back exactly.
#    (libsonata's wheels come with an HDF5 that has no deflate filter, so the compressed
#    file is checked with h5py only.)
# Env: CARGO_TARGET_DIR (default target), TRACES_VENV (default $CARGO_TARGET_DIR/traces-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
venv="${TRACES_VENV:-$target/traces-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check h5py libsonata numpy
cargo test --release --test traces writes_the_ci_trace_files -- --exact
out="$target/tmp/traces-ci"
status=0
for f in "$out/traces-uncompressed.h5" "$out/traces.h5"; do
    # libsonata's bundled HDF5 prints its error stack on attribute probes; keep the log short.
    "$venv/bin/python" scripts/check_traces.py "$f" 2> >(grep -v '^ \|^HDF5-DIAG' >&2) || status=1
done
exit $status
