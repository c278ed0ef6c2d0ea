#!/usr/bin/env bash
# CI: `apical sweep` on a real (one-node, local) Slurm cluster. As root (or with sudo):
#   scripts/ci-slurm.sh
# Needs only a built target/fast/apical (the binary `cargo test --profile fast` builds; or
# $APICAL_BIN), MNIST ($APICAL_DATA, data/mnist
# or ../shared/data/mnist) and python3 (to compare CSV files); scripts/slurm-local.sh installs
# and starts the cluster (docs/slurm-notes.md) and this script stops it at the end.
#   1. array: a sweep of 2 learning rates x 2 seeds (300 examples, 200 test images each)
#      through the generated job-array script with `sbatch --wait`, submitted from another
#      directory; `apical sweep collect` gives the summary.csv of a local `--jobs 2` run of the
#      same sweep (byte-equal without the wall/seconds columns) and the same checkpoints.
#   2. signal-requeue: a longer sweep of 2 seeds; task 0 gets SIGTERM mid-epoch
#      (`scancel --full --signal=TERM`), checkpoints and exits 143 (FAILED 143:0), is requeued
#      (`scontrol requeue`), resumes, and the result equals the uninterrupted local run.
# Every wait is bounded; each stage prints its time. Env: CI_SLURM_KEEP=1 keeps the work
# directory (kept anyway on failure).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "ci-slurm: error: must run as root" >&2; exit 1; }
    exec sudo -E "$0" "$@"
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
STAGE_T=$T0
STAGE=""
stage() {
    [ -n "$STAGE" ] && echo "ci-slurm: stage $STAGE done in $(secs "$STAGE_T") s"
    STAGE="$1"; STAGE_T=$(now)
    [ -n "$STAGE" ] && echo "ci-slurm: stage $STAGE"
    return 0
}
WORK=""
JOBS=()
FAILED=0
CLUSTER=0
fail() {
    FAILED=1
    echo "ci-slurm: FAIL [$STAGE]: $*" >&2
    if command -v squeue >/dev/null; then squeue >&2 || true; fi
    exit 1
}
cleanup() {
    local rc=$?
    for j in "${JOBS[@]}"; do scancel "$j" 2>/dev/null || true; done
    if [ "$CLUSTER" = 1 ]; then "$REPO/scripts/slurm-local.sh" stop || true; fi
    if [ -n "$WORK" ]; then
        if [ $rc != 0 ] || [ "$FAILED" = 1 ] || [ "${CI_SLURM_KEEP:-0}" = 1 ]; then
            echo "ci-slurm: work directory kept: $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    echo "ci-slurm: total $(secs "$T0") s"
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds
wait_for() {
    local limit=$1 what=$2; shift 2
    local t; t=$(now)
    until "$@"; do
        if awk -v a="$t" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
            fail "timed out after ${limit} s waiting for: $what"
        fi
        sleep 0.2
    done
}
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
job_is() { [ "$(job_field "$1" JobState)" = "$2" ]; }
expect_eq() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }
exists() { local f; for f in "$@"; do [ -e "$f" ] || return 1; done; }
# csv_core FILE: the CSV without the columns whose names contain "wall" or "seconds"
csv_core() {
    python3 - "$1" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
keep = [i for i, h in enumerate(rows[0]) if "wall" not in h and "seconds" not in h]
w = csv.writer(sys.stdout, lineterminator="\n")
for r in rows:
    w.writerow([r[i] for i in keep])
EOF
}
# same_results A B: equal summary.csv (without wall/seconds) and byte-equal final checkpoints
same_results() {
    diff <(csv_core "$1/summary.csv") <(csv_core "$2/summary.csv") >&2 \
        || fail "summary.csv of $1 and $2 differ (above)"
    local d n=0
    for d in "$2"/*=*/; do
        d=$(basename "$d")
        local ck
        ck=$(cd "$2/$d" && ls checkpoint-epoch-*.bin | grep -v example | sort -V | tail -1)
        cmp "$1/$d/$ck" "$2/$d/$ck" || fail "$d/$ck differs between $1 and $2"
        n=$((n + 1))
    done
    echo "ci-slurm: $n point(s): equal summary rows and byte-equal $ck"
}

APICAL="${APICAL_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/fast/apical}"
[ -x "$APICAL" ] || fail "no apical binary at $APICAL (cargo build --profile fast)"
APICAL=$(readlink -f "$APICAL")
DATA="${APICAL_DATA:-}"
if [ -z "$DATA" ]; then
    for d in "$REPO/data/mnist" "$REPO/../shared/data/mnist"; do
        if [ -d "$d" ]; then DATA=$d; break; fi
    done
fi
[ -n "$DATA" ] && [ -d "$DATA" ] || fail "no MNIST folder (APICAL_DATA, data/mnist or ../shared/data/mnist)"
DATA=$(readlink -f "$DATA")
command -v python3 >/dev/null || fail "python3 is needed to compare the CSV files"

stage cluster
CLUSTER=1
timeout 600 "$REPO/scripts/slurm-local.sh" start || fail "scripts/slurm-local.sh start failed"

WORK=$(mktemp -d /tmp/apical-ci-slurm.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/elsewhere"

# ---------------------------------------------------------------------------------------------
stage local-array
cat > "$WORK/a.toml" <<'EOF'
model = "guerguiev-1h"
[training]
epochs = 1
train_examples = 300
test_examples = 200
[axes]
"learning.eta" = [[0.19, 0.19], [0.23, 0.23]]
seed = [0, 1]
EOF
timeout 600 "$APICAL" sweep "$WORK/a.toml" --out "$WORK/local-a" --jobs 2 --data "$DATA" \
    > "$WORK/local-a.log" 2>&1 || { cat "$WORK/local-a.log" >&2; fail "local sweep failed"; }

stage slurm-array
"$APICAL" sweep "$WORK/a.toml" --out "$WORK/slurm-a" --slurm --data "$DATA" \
    || fail "apical sweep --slurm failed"
SCRIPT="$WORK/slurm-a/sweep.sbatch"
grep -q '^#SBATCH --array=0-3$' "$SCRIPT" || fail "no 4-task array in $SCRIPT"
grep -q '^#SBATCH --signal=B:TERM@120$' "$SCRIPT" || fail "no --signal=B:TERM@120 in $SCRIPT"
grep -q "^exec $APICAL sweep" "$SCRIPT" || fail "the script does not exec apical"
if grep -Eq -- '--(partition|time|mem)' "$SCRIPT"; then fail "partition/time/mem requested without options"; fi
out=$(cd "$WORK/elsewhere" && timeout 300 sbatch --wait "$SCRIPT" 2>&1) \
    || fail "sbatch --wait failed (rc $?): $out"
AID=$(echo "$out" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
[ -n "$AID" ] || fail "no job id in: $out"
JOBS+=("$AID")
for i in 0 1 2 3; do
    expect_eq "task $i state" "$(job_field "${AID}_$i" JobState)" COMPLETED
    grep -q "shard $i/4 finished" "$WORK/slurm-a/logs/${AID}_$i.out" \
        || fail "task $i's log lacks 'shard $i/4 finished': $(tail -5 "$WORK/slurm-a/logs/${AID}_$i.out")"
done
"$APICAL" sweep collect "$WORK/slurm-a" || fail "apical sweep collect failed"
same_results "$WORK/local-a" "$WORK/slurm-a"
echo "ci-slurm: summary.csv of the Slurm sweep:"
cat "$WORK/slurm-a/summary.csv"

# ---------------------------------------------------------------------------------------------
stage local-requeue
# Long enough that SIGTERM comes mid-epoch; a checkpoint every 500 examples tells when the
# run is under way (it does not change the results).
cat > "$WORK/b.toml" <<'EOF'
model = "guerguiev-1h"
[training]
epochs = 1
train_examples = 12000
test_examples = 200
checkpoint_every = 500
[axes]
seed = [0, 1]
EOF
timeout 600 "$APICAL" sweep "$WORK/b.toml" --out "$WORK/local-b" --jobs 2 --data "$DATA" \
    > "$WORK/local-b.log" 2>&1 || { cat "$WORK/local-b.log" >&2; fail "local sweep failed"; }

stage slurm-signal-requeue
"$APICAL" sweep "$WORK/b.toml" --out "$WORK/slurm-b" --slurm --data "$DATA" >/dev/null \
    || fail "apical sweep --slurm failed"
out=$(cd "$WORK/elsewhere" && sbatch "$WORK/slurm-b/sweep.sbatch" 2>&1) || fail "sbatch failed: $out"
BID=$(echo "$out" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
[ -n "$BID" ] || fail "no job id in: $out"
JOBS+=("$BID")
P0="$WORK/slurm-b/seed=0"
wait_for 300 "task 0's point is under way (its first periodic checkpoint)" \
    exists "$P0/checkpoint-epoch-1-example-500.bin"
scancel --full --signal=TERM "${BID}_0" || fail "scancel --full --signal=TERM failed"
wait_for 120 "task 0 ends FAILED after its checkpoint" job_is "${BID}_0" FAILED
expect_eq "task 0 exit code" "$(job_field "${BID}_0" ExitCode)" 143:0
LOG0="$WORK/slurm-b/logs/${BID}_0.out"
grep -q 'SIGTERM: the running point(s) finish the current example and checkpoint' "$LOG0" \
    || fail "task 0's log does not show the SIGTERM: $(tail -5 "$LOG0")"
stopped=$(sed -n 's/.*stopped in epoch 1 after \([0-9]*\) examples.*/\1/p' "$LOG0" | tail -1)
[ -n "$stopped" ] && [ "$stopped" -lt 12000 ] \
    || fail "task 0 was not stopped mid-epoch (log: $(tail -5 "$LOG0"))"
exists "$P0/checkpoint-epoch-1-example-$stopped.bin" || fail "no checkpoint at example $stopped"
[ ! -e "$P0/checkpoint-epoch-1.bin" ] || fail "task 0 finished its epoch despite SIGTERM"
"$APICAL" sweep status "$WORK/slurm-b" | grep -q "^unfinished *seed=0" \
    || fail "status does not list seed=0 as unfinished: $("$APICAL" sweep status "$WORK/slurm-b")"
echo "ci-slurm: task 0 stopped by SIGTERM after $stopped of 12000 examples, exit 143"
scontrol requeue "${BID}_0" || fail "scontrol requeue of task 0 was refused"
# requeued jobs wait cred_expire + 1 s (11 s with slurm-local.sh) before they run again
for i in 0 1; do
    wait_for 400 "task $i completes" job_is "${BID}_$i" COMPLETED
done
expect_eq "task 0 restarts" "$(job_field "${BID}_0" Restarts)" 1
grep -q "resuming .* from .*checkpoint-epoch-1-example-$stopped.bin" "$LOG0" \
    || fail "task 0's rerun did not resume from example $stopped: $(tail -5 "$LOG0")"
"$APICAL" sweep collect "$WORK/slurm-b" || fail "apical sweep collect failed"
same_results "$WORK/local-b" "$WORK/slurm-b"

stage ""
echo "ci-slurm: all checks passed in $(secs "$T0") s"
