#!/usr/bin/env bash
# CI smoke test of the local one-node Slurm cluster; independent of apical. As root (or sudo):
#   scripts/ci-slurm-smoke.sh
# Starts the cluster with scripts/slurm-local.sh (a no-op when it already runs) and asserts what
# docs/slurm-notes.md records, exiting non-zero with a message at the first failure:
#   1. array: `sbatch --wait --array=0-1`, submitted from another directory than the script's,
#      whose script `exec`s a small program: both tasks run (concurrently when the node has >= 2
#      CPUs), each sees SLURM_ARRAY_TASK_ID / _COUNT / SLURM_ARRAY_JOB_ID / SLURM_JOB_ID /
#      SLURM_CPUS_PER_TASK, runs in the --chdir directory and writes its --output (relative to it).
#   2. signals + requeue (array of 2, --requeue, --time, --signal=B:TERM@60): `scancel --signal=TERM`
#      without --full does not reach the exec'd program; with --full it does (the program exits 143,
#      the task ends FAILED 143:0); `scontrol requeue` of that FAILED task and of the RUNNING other
#      task (which gets SIGTERM) runs both again with SLURM_RESTART_COUNT=1, and the `sbatch --wait`
#      started before all this returns only after the requeued runs end, with their exit code (0).
#   3. a single job whose program exits 143 on SIGTERM: `sbatch --wait` returns 143.
# Every wait is bounded; each stage prints its time. Jobs it submitted are cancelled on exit.
# Env: SMOKE_KEEP=1 keeps the work directory (it is kept anyway on failure).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "ci-slurm-smoke: error: must run as root" >&2; exit 1; }
    exec sudo -E "$0" "$@"
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
STAGE_T=$T0
STAGE=""
stage() {
    [ -n "$STAGE" ] && echo "ci-slurm-smoke: stage $STAGE done in $(secs "$STAGE_T") s"
    STAGE="$1"; STAGE_T=$(now)
    [ -n "$STAGE" ] && echo "ci-slurm-smoke: stage $STAGE"
    return 0
}
WORK=""
JOBS=()
BG=()
FAILED=0
fail() {
    FAILED=1
    echo "ci-slurm-smoke: FAIL [$STAGE]: $*" >&2
    if command -v squeue >/dev/null; then squeue >&2 || true; fi
    exit 1
}
cleanup() {
    local rc=$?
    for j in "${JOBS[@]}"; do scancel "$j" 2>/dev/null || true; done
    # the background `timeout sbatch --wait`s: timeout passes SIGTERM on to sbatch
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [ -n "$WORK" ]; then
        if [ $rc != 0 ] || [ "$FAILED" = 1 ] || [ "${SMOKE_KEEP:-0}" = 1 ]; then
            echo "ci-slurm-smoke: work directory kept: $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
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
# job_field JOB FIELD: a field of `scontrol show job` (first match)
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
job_is() { [ "$(job_field "$1" JobState)" = "$2" ]; }
expect_eq() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }
exists() { local f; for f in "$@"; do [ -e "$f" ] || return 1; done; }
running() { kill -0 "$1" 2>/dev/null; }
finished() { ! running "$1"; }
# env_of FILE VAR: VAR's value in an env dump
env_of() { sed -n "s/^$2=//p" "$1" | head -1; }

stage cluster
timeout 600 "$REPO/scripts/slurm-local.sh" start || fail "scripts/slurm-local.sh start failed"
CPUS=$(sinfo -h -o %c | head -1)

WORK=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/jobs" "$WORK/run" "$WORK/elsewhere" "$WORK/m"

# ---------------------------------------------------------------------------------------------
stage array
cat > "$WORK/jobs/array-task.sh" <<'EOF'
#!/bin/bash
# Records its environment and working directory, runs about 2 s.
out="$1/m/array-$SLURM_ARRAY_TASK_ID"
env | grep '^SLURM_' > "$out.env"
pwd > "$out.pwd"
date +%s.%N > "$out.start"
sleep 2
date +%s.%N > "$out.end"
EOF
cat > "$WORK/jobs/array.sbatch" <<EOF
#!/bin/bash
#SBATCH --array=0-1
#SBATCH --cpus-per-task=1
#SBATCH --chdir=$WORK/run
#SBATCH --output=array-%A_%a.out
#SBATCH --time=5
exec /bin/bash $WORK/jobs/array-task.sh $WORK
EOF
out=$(cd "$WORK/elsewhere" && timeout 120 sbatch --wait "$WORK/jobs/array.sbatch" 2>&1) \
    || fail "sbatch --wait of the array job failed (rc $?): $out"
AID=$(echo "$out" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
[ -n "$AID" ] || fail "no job id in: $out"
JOBS+=("$AID")
ids=""
for i in 0 1; do
    e="$WORK/m/array-$i.env"
    exists "$e" || fail "task $i did not run (no $e)"
    exists "$WORK/run/array-${AID}_$i.out" || fail "task $i: no output file $WORK/run/array-${AID}_$i.out (--output is relative to --chdir)"
    expect_eq "task $i SLURM_ARRAY_TASK_ID" "$(env_of "$e" SLURM_ARRAY_TASK_ID)" "$i"
    expect_eq "task $i SLURM_ARRAY_TASK_COUNT" "$(env_of "$e" SLURM_ARRAY_TASK_COUNT)" 2
    expect_eq "task $i SLURM_ARRAY_JOB_ID" "$(env_of "$e" SLURM_ARRAY_JOB_ID)" "$AID"
    expect_eq "task $i SLURM_CPUS_PER_TASK" "$(env_of "$e" SLURM_CPUS_PER_TASK)" 1
    expect_eq "task $i SLURM_SUBMIT_DIR" "$(env_of "$e" SLURM_SUBMIT_DIR)" "$WORK/elsewhere"
    expect_eq "task $i SLURM_RESTART_COUNT (not requeued)" "$(env_of "$e" SLURM_RESTART_COUNT)" ""
    expect_eq "task $i working directory" "$(cat "$WORK/m/array-$i.pwd")" "$WORK/run"
    jid=$(env_of "$e" SLURM_JOB_ID)
    [ -n "$jid" ] || fail "task $i: SLURM_JOB_ID not set"
    ids="$ids $jid"
    expect_eq "task $i state" "$(job_field "${AID}_$i" JobState)" COMPLETED
done
# shellcheck disable=SC2086
[ "$(printf '%s\n' $ids | sort -u | wc -l)" = 2 ] || fail "the two tasks have the same SLURM_JOB_ID:$ids"
if [ "$CPUS" -ge 2 ]; then
    overlap=$(awk -v s0="$(cat "$WORK/m/array-0.start")" -v e0="$(cat "$WORK/m/array-0.end")" \
                  -v s1="$(cat "$WORK/m/array-1.start")" -v e1="$(cat "$WORK/m/array-1.end")" \
                  'BEGIN { print (s0 < e1 && s1 < e0) ? "yes" : "no" }')
    expect_eq "the two 1-CPU tasks ran concurrently on $CPUS CPUs" "$overlap" yes
fi
echo "ci-slurm-smoke: array job $AID: task job ids$ids, outputs in $WORK/run"

# ---------------------------------------------------------------------------------------------
stage signal-requeue
cat > "$WORK/jobs/trap-task.sh" <<'EOF'
#!/bin/bash
# Waits for $1/release; names its marker files after $2 or the array index; on SIGTERM writes a marker and exits 143.
tag="$1/m/trap-${2:-$SLURM_ARRAY_TASK_ID}.r${SLURM_RESTART_COUNT:-0}"
env | grep '^SLURM_' > "$tag.env"
trap 'date +%s.%N > "$tag.term"; exit 143' TERM
touch "$tag.started"
while [ ! -e "$1/release" ]; do sleep 0.2 & wait $!; done
touch "$tag.done"
EOF
cat > "$WORK/jobs/trap.sbatch" <<EOF
#!/bin/bash
#SBATCH --array=0-1
#SBATCH --requeue
#SBATCH --time=10
#SBATCH --signal=B:TERM@60
#SBATCH --output=$WORK/run/trap-%A_%a.out
#SBATCH --open-mode=append
exec /bin/bash $WORK/jobs/trap-task.sh $WORK
EOF
(cd "$WORK/elsewhere" && exec timeout 300 sbatch --wait "$WORK/jobs/trap.sbatch" > "$WORK/trap.sbatch.out" 2>&1) &
WAIT_PID=$!
BG+=("$WAIT_PID")
wait_for 30 "sbatch prints the job id" grep -q '^Submitted batch job' "$WORK/trap.sbatch.out"
TID=$(sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p' "$WORK/trap.sbatch.out")
JOBS+=("$TID")
wait_for 60 "both tasks started" exists "$WORK/m/trap-0.r0.started" "$WORK/m/trap-1.r0.started"
expect_eq "TimeLimit with --time=10" "$(job_field "${TID}_0" TimeLimit)" 00:10:00
expect_eq "task 0 Requeue flag with --requeue" "$(job_field "${TID}_0" Requeue)" 1

# without --full (or --batch) the signal goes to job steps only; a script that execs has none
scancel --signal=TERM "${TID}_1" || fail "scancel --signal=TERM failed"
sleep 3
exists "$WORK/m/trap-1.r0.term" && fail "scancel --signal=TERM without --full reached the batch program"
expect_eq "task 1 state after scancel --signal=TERM without --full" "$(job_field "${TID}_1" JobState)" RUNNING

scancel --full --signal=TERM "${TID}_0" || fail "scancel --full --signal=TERM failed"
wait_for 30 "task 0's program gets SIGTERM from scancel --full" exists "$WORK/m/trap-0.r0.term"
wait_for 30 "task 0 ends FAILED after exit 143" job_is "${TID}_0" FAILED
expect_eq "task 0 ExitCode" "$(job_field "${TID}_0" ExitCode)" 143:0
finished "$WAIT_PID" && fail "sbatch --wait returned while task 1 still ran"

scontrol requeue "${TID}_0" || fail "scontrol requeue of the FAILED task 0 was refused"
expect_eq "task 0 state after requeue" "$(job_field "${TID}_0" JobState)" PENDING
expect_eq "task 0 Restarts after requeue" "$(job_field "${TID}_0" Restarts)" 1
scontrol requeue "${TID}_1" || fail "scontrol requeue of the RUNNING task 1 was refused"
wait_for 30 "task 1's program gets SIGTERM from the requeue" exists "$WORK/m/trap-1.r0.term"

# requeued jobs wait cred_expire + 1 s (slurm-local.sh: 11 s) before they are eligible again
wait_for 120 "both requeued tasks run again" exists "$WORK/m/trap-0.r1.started" "$WORK/m/trap-1.r1.started"
for i in 0 1; do
    expect_eq "task $i SLURM_RESTART_COUNT after requeue" "$(env_of "$WORK/m/trap-$i.r1.env" SLURM_RESTART_COUNT)" 1
    expect_eq "task $i SLURM_JOB_ID kept across the requeue" \
        "$(env_of "$WORK/m/trap-$i.r1.env" SLURM_JOB_ID)" "$(env_of "$WORK/m/trap-$i.r0.env" SLURM_JOB_ID)"
done
grep -q 'DUE TO JOB REQUEUE' "$WORK/run/trap-${TID}_1.out" \
    || fail "task 1's output (--open-mode=append) lost its first run's lines"
finished "$WAIT_PID" && fail "sbatch --wait returned before the requeued tasks finished"

touch "$WORK/release"
wait_for 30 "both tasks finish" exists "$WORK/m/trap-0.r1.done" "$WORK/m/trap-1.r1.done"
# sbatch --wait polls at growing intervals (2, 8, 32, 32 ... s), so it may take ~30 s more
wait_for 120 "sbatch --wait returns" finished "$WAIT_PID"
rc=0; wait "$WAIT_PID" || rc=$?; BG=()
expect_eq "sbatch --wait exit code across the requeue" "$rc" 0
for i in 0 1; do
    expect_eq "task $i final state" "$(job_field "${TID}_$i" JobState)" COMPLETED
    expect_eq "task $i final Restarts" "$(job_field "${TID}_$i" Restarts)" 1
done

# ---------------------------------------------------------------------------------------------
stage exit-143
cat > "$WORK/jobs/single.sbatch" <<EOF
#!/bin/bash
#SBATCH --output=$WORK/run/single-%j.out
#SBATCH --time=5
exec /bin/bash $WORK/jobs/trap-task.sh $WORK single
EOF
rm -f "$WORK/release"
(cd "$WORK/elsewhere" && exec timeout 120 sbatch --wait "$WORK/jobs/single.sbatch" > "$WORK/single.sbatch.out" 2>&1) &
WAIT_PID=$!
BG+=("$WAIT_PID")
wait_for 30 "sbatch prints the job id" grep -q '^Submitted batch job' "$WORK/single.sbatch.out"
SID=$(sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p' "$WORK/single.sbatch.out")
JOBS+=("$SID")
wait_for 60 "the single job started" exists "$WORK/m/trap-single.r0.started"
scancel --full --signal=TERM "$SID" || fail "scancel --full --signal=TERM failed"
wait_for 30 "the program gets SIGTERM" exists "$WORK/m/trap-single.r0.term"
wait_for 60 "sbatch --wait returns" finished "$WAIT_PID"
rc=0; wait "$WAIT_PID" || rc=$?; BG=()
expect_eq "sbatch --wait exit code of a job that exits 143" "$rc" 143
expect_eq "state of a job that exits 143 after scancel --signal" "$(job_field "$SID" JobState)" FAILED

stage ""
echo "ci-slurm-smoke: all checks passed in $(secs "$T0") s"
