#!/usr/bin/env bash
# BurstCCN against the authors' code (docs/rules.md, "BurstCCN against the authors' code"):
# checks out neuralml/BurstCCN at a pinned commit under ~/.cache/apical (outside the
# repository: their code is run beside apical, never copied into it), installs torch into
# the venv of scripts/bench-torch.sh, then trains their 784-500-500-500-10 network and
# apical's models/burstccn-5l-rate.toml with the same settings (batch 1, learning rate ETA,
# fixed random Y of sd 0.5, Q = 0.5 Y learned at 0.000731) for EPOCHS epochs per seed and
# prints both test errors. Needs the network once (git clone, pip install torch).
# Usage: scripts/calibrate-burstccn.sh [EPOCHS=1] [SEEDS="0 1"] [ETA=0.03]   ($APICAL_BIN)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
EPOCHS=${1:-1}
SEEDS=${2:-"0 1"}
ETA=${3:-0.03}
COMMIT=5a0a33c
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/apical"
SRC="$CACHE/burstccn-$COMMIT"
if [ ! -d "$SRC" ]; then
    git clone --quiet https://github.com/neuralml/BurstCCN "$SRC"
    git -C "$SRC" checkout --quiet "$COMMIT"
fi
mkdir -p "$SRC/apical-stubs"
printf 'def log(*a, **k):\n    pass\n\n\nclass Histogram:\n    def __init__(self, *a, **k):\n        pass\n' \
    > "$SRC/apical-stubs/wandb.py"
# shellcheck source=scripts/torch-env.sh
source "$REPO/scripts/torch-env.sh"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for seed in $SEEDS; do
    echo "== seed $seed: the authors' code" >&2
    OMP_NUM_THREADS=1 "$VENV/bin/python" scripts/calibrate_burstccn.py "$SRC" "$DATA" "$EPOCHS" 1 \
        "$ETA" 0.000731 0.5 "$seed" | sed "s/^/authors seed $seed: /"
    echo "== seed $seed: apical" >&2
    "$APICAL" train models/burstccn-5l-rate.toml --epochs "$EPOCHS" --seed "$seed" \
        --set "learning.eta=[$ETA, $ETA, $ETA, $ETA]" --threads 1 --data "$DATA" \
        --out "$OUT/seed$seed" --quiet >/dev/null
    awk -F, -v s="$seed" 'NR > 1 {printf "apical seed %s: epoch %s train_error %.2f test_error %.2f ms_per_example %.4f\n", s, $1, $3, $5, 1000 * $9}' \
        "$OUT/seed$seed/metrics.csv"
done
