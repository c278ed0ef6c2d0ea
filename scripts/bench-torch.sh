#!/usr/bin/env bash
# apical's rate rules against PyTorch on one CPU thread, one example at a time, in the same
# run (docs/performance.md, "Rules against PyTorch"). Installs torch into a venv of its own
# (.venv-torch; torch is a benchmark's peer, never a dependency of apical), builds apical,
# then alternates: apical bench --rules, the PyTorch script, REPS times each.
# Usage: scripts/bench-torch.sh [EXAMPLES=1000] [REPS=5]   ($APICAL_BIN: a built apical to use)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
EXAMPLES=${1:-1000}
REPS=${2:-5}
VENV="${APICAL_TORCH_VENV:-$REPO/.venv-torch}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet numpy torch
fi
if [ -n "${APICAL_BIN:-}" ]; then
    APICAL="$APICAL_BIN"
else
    cargo build --release --quiet --bin apical
    APICAL="$REPO/target/release/apical"
fi
DATA="${APICAL_DATA:-$REPO/data/mnist}"
echo "== apical bench --rules (one thread, $EXAMPLES examples, medians of $REPS)"
OMP_NUM_THREADS=1 "$APICAL" bench --rules --threads 1 --reps "$REPS" \
    --train-examples "$EXAMPLES" --test-examples 100 --dense-examples 10 --sweep-runs 0 \
    --data "$DATA" 2>/dev/null
echo "== PyTorch, one thread"
OMP_NUM_THREADS=1 "$VENV/bin/python" scripts/bench_torch.py "$DATA" "$EXAMPLES" "$REPS"
