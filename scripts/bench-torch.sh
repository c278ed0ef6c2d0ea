#!/usr/bin/env bash
# apical's rate rules against PyTorch on one CPU thread, one example at a time and in
# minibatches of 32, in the same run (docs/performance.md, "Rules against PyTorch").
# Installs torch into a venv of its own
# (outside the repository, under ~/.cache/apical; torch is a benchmark's peer, never a
# dependency of apical, and its files stay out of the source tree), builds apical,
# then alternates REPS times: `apical bench --rules` (one repetition), the PyTorch script
# (one repetition); prints each side's median ms per training example and the ratio.
# Usage: scripts/bench-torch.sh [EXAMPLES=1000] [REPS=5]   ($APICAL_BIN: a built apical to use)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
EXAMPLES=${1:-1000}
REPS=${2:-5}
# shellcheck source=scripts/torch-env.sh
source "$REPO/scripts/torch-env.sh"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
for r in $(seq 1 "$REPS"); do
    echo "== repetition $r of $REPS" >&2
    OMP_NUM_THREADS=1 "$APICAL" bench --rules --threads 1 --reps 1 \
        --train-examples "$EXAMPLES" --test-examples 10 --dense-examples 10 --sweep-runs 0 \
        --data "$DATA" 2>/dev/null | awk -F'|' '/^\| (guerguiev|baseline)/ {gsub(/ /, "", $2); gsub(/ /, "", $4); print "apical\t" $2 "\t" $4}' >> "$LOG"
    OMP_NUM_THREADS=1 "$VENV/bin/python" scripts/bench_torch.py "$DATA" "$EXAMPLES" 1 \
        | awk -F'\t' '/^torch\t/ {print "torch\t" $2 "\t" $3}' >> "$LOG"
done
"$VENV/bin/python" - "$LOG" "$EXAMPLES" "$REPS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, what, ms = line.rstrip("\n").split("\t")
    rows.setdefault((who, what), []).append(float(ms))
print(f"one thread, {sys.argv[2]} training examples, medians of {sys.argv[3]} alternating repetitions (ms per example)")
print("| implementation | rule | ms/example | runs |")
print("|---|---|---|---|")
for (who, what), v in sorted(rows.items()):
    print(f"| {who} | {what} | {statistics.median(v):.4f} | {', '.join(f'{x:.4f}' for x in v)} |")
pairs = [("baseline-backprop-1h", "backprop"), ("baseline-feedback-alignment-1h", "feedback-alignment"),
         ("baseline-backprop-1h-b32", "backprop-b32"), ("baseline-feedback-alignment-1h-b32", "feedback-alignment-b32")]
for a, t in pairs:
    if ("apical", a) in rows and ("torch", t) in rows:
        ra, rt = statistics.median(rows[("apical", a)]), statistics.median(rows[("torch", t)])
        print(f"{t}: PyTorch / apical = {rt / ra:.2f}x")
PY
