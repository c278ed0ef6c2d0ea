#!/usr/bin/env bash
# CI check of trace files and their NWB export (docs/traces.md), called from .ci/run:
#   scripts/ci-traces.sh
# 1. a venv with the pinned Python tools (scripts/requirements-ci.txt: h5py, libsonata,
#    pynwb, nwbinspector, Neo, Elephant);
# 2. a Rust test writes target/tmp/traces-ci/traces.h5 (default compression, scale-offset),
#    traces-deflate.h5 and traces-uncompressed.h5 from a short recorded run on synthetic
#    images; scripts/check_traces.py validates all three with h5py (layout, types, units,
#    SONATA attributes), and libsonata's SpikeReader / ElementReportReader /
#    SomaReportReader must read the default and the uncompressed file back exactly
#    (libsonata's wheels have no deflate filter: that file is checked with h5py only);
# 3. `apical export nwb` turns the default file into NWB; scripts/check_nwb.py runs pynwb's
#    validator, nwbinspector (no CRITICAL) and Neo's NWBIO (spike counts as in the trace
#    file);
# 4. the "read it with..." snippets of docs/traces.md run against those files;
# 5. scripts/crash_traces.py kills recording runs at random moments and reads what is left
#    with plain h5py (needs MNIST; CRASH_KILLS, default 5).
# Env: CARGO_TARGET_DIR (default target), TRACES_VENV (default $CARGO_TARGET_DIR/traces-venv),
#      APICAL_BIN (default $CARGO_TARGET_DIR/fast/apical, the binary the tests built),
#      APICAL_DATA (default data/mnist), CRASH_KILLS.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
target="${CARGO_TARGET_DIR:-target}"
venv="${TRACES_VENV:-$target/traces-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-ci.txt
py="$venv/bin/python"
echo "-- venv ready ($((SECONDS - t0)) s)"

# The test profile of the README's test command (no LTO: the test binary is already built).
cargo test --profile fast --test suite traces::writes_the_ci_trace_files -- --exact
out="$target/tmp/traces-ci"
apical="${APICAL_BIN:-$target/fast/apical}"
# A no-op after `cargo test --profile fast`: the same profile and features (Cargo.toml).
[ -n "${APICAL_BIN:-}" ] || cargo build --profile fast --quiet --bin apical
status=0
# libsonata's bundled HDF5 prints its error stack on attribute probes; keep the log short.
quiet() { "$@" 2> >(grep -v '^ \|^HDF5-DIAG' >&2); }
quiet "$py" scripts/check_traces.py "$out/traces.h5" --require-sonata || status=1
quiet "$py" scripts/check_traces.py "$out/traces-uncompressed.h5" --require-sonata || status=1
quiet "$py" scripts/check_traces.py "$out/traces-deflate.h5" || status=1
echo "-- trace files checked ($((SECONDS - t0)) s)"

"$apical" export nwb "$out/traces.h5" --out "$out/traces.nwb"
"$py" scripts/check_nwb.py "$out/traces.nwb" "$out/traces.h5" || status=1
echo "-- NWB export checked ($((SECONDS - t0)) s)"

quiet "$py" scripts/doc_snippets.py docs/traces.md "$out/traces.h5" "$out/traces.nwb" || status=1
echo "-- docs/traces.md snippets run ($((SECONDS - t0)) s)"

data="${APICAL_DATA:-data/mnist}"
if [ -f "$data/train-images-idx3-ubyte.gz" ]; then
    "$py" scripts/crash_traces.py "$apical" "$data" "${CRASH_KILLS:-5}" || status=1
else
    echo "crash check skipped: no MNIST in $data"
fi
echo "-- ci-traces.sh done in $((SECONDS - t0)) s"
exit $status
