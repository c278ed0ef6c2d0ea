#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for CI and for trying apical sweeps under Slurm.
# Debian/Ubuntu, as root (or with sudo), no systemd needed:
#   scripts/slurm-local.sh [start]   install slurm-wlm + munge if missing, write /etc/slurm/slurm.conf,
#                                    start munged, slurmctld, slurmd; return when `sinfo` shows
#                                    the node idle (the partition is `debug`, the default)
#   scripts/slurm-local.sh stop      cancel the jobs, stop slurmd, slurmctld and munged
#   scripts/slurm-local.sh status    show the daemons' pids and `sinfo`
# `start` is idempotent: on a healthy running cluster with the same configuration it does nothing;
# if the configuration it would write differs from the one in place, it restarts the daemons.
# Each stage prints how long it took. Logs: /var/log/slurm/{slurmctld,slurmd}.log.
# The node is this host (`hostname -s`) with the CPUs `slurmd -C` finds, every logical CPU one
# schedulable slot (CR_CPU), and RealMemory 95% of the detected memory. No cgroups, no accounting
# database; a requeued job becomes eligible again after SLURM_LOCAL_CRED_EXPIRE + 1 seconds.
# Env: SLURM_LOCAL_WAIT (seconds to wait for daemons / node, default 60),
#      SLURM_LOCAL_CRED_EXPIRE (AuthInfo cred_expire, default 10; Slurm's own default is 120).
# docs/slurm-notes.md records what this cluster was checked to do.
set -euo pipefail

WAIT="${SLURM_LOCAL_WAIT:-60}"
CRED_EXPIRE="${SLURM_LOCAL_CRED_EXPIRE:-10}"
CONF=/etc/slurm/slurm.conf
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_RUN=/run/munge

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
# stage_done NAME START: print the seconds since START
stage_done() { say "$(awk -v n="$1" -v a="$2" -v b="$(now)" 'BEGIN { printf "%-10s %6.1f s", n, b - a }')"; }

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "must run as root (or with sudo available)"
    exec sudo -E "$0" "$@"
fi

# pid_alive PIDFILE: the process named in PIDFILE exists
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
ctld_up() { pid_alive "$CTLD_PID" && scontrol ping 2>/dev/null | grep -q 'is UP'; }
munge_up() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -1; }
slurmd_start_time() { scontrol show node "$HOST" 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' || true; }

log_tails() {
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [ -f "$f" ] || continue
        echo "---- last lines of $f" >&2
        tail -n 15 "$f" >&2
    done
}

install_pkgs() {
    local t; t=$(now)
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        stage_done install "$t"; return
    fi
    command -v apt-get >/dev/null || die "slurm is not installed and apt-get is not available"
    say "installing slurm-wlm munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # slurm-wlm's Depends (slurmctld, slurmd, slurm-client, munge, basic plugins) are all this
    # needs; its Recommends are ~20 more plugin and -dev packages.
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    stage_done install "$t"
}

start_munge() {
    local t; t=$(now)
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        mkdir -p /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    if ! munge_up; then
        # munged refuses to run as root without --force (it wants its key, log and state dirs
        # owned by its own user), so it runs as the `munge` user the package creates.
        if getent passwd munge >/dev/null; then
            mkdir -p "$MUNGE_RUN" /var/lib/munge /var/log/munge
            chown munge:munge "$MUNGE_RUN" /var/lib/munge /var/log/munge /etc/munge /etc/munge/munge.key
            chmod 0755 "$MUNGE_RUN"
            chmod 0700 /etc/munge /var/log/munge
            chmod 0400 /etc/munge/munge.key
            runuser -u munge -- /usr/sbin/munged
        else
            mkdir -p "$MUNGE_RUN"
            /usr/sbin/munged --force
        fi
        local i=0
        until munge_up; do
            i=$((i + 1))
            [ $i -le $((WAIT * 10)) ] || { log_tails; die "munged did not come up within ${WAIT} s"; }
            sleep 0.1
        done
    fi
    stage_done munge "$t"
}

# The configuration for this machine, on stdout.
render_conf() {
    local cpus mem
    cpus=$(slurmd -C | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' | head -1)
    mem=$(slurmd -C | sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' | head -1)
    if [ -z "$cpus" ] || [ -z "$mem" ]; then
        die "could not read CPUs / RealMemory from 'slurmd -C'"
    fi
    cat <<EOF
# Written by scripts/slurm-local.sh (one-node cluster on $HOST); rewritten on every start.
ClusterName=localci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# CPUs only (no sockets/cores/threads), so that with CR_CPU every logical CPU is its own slot.
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$((mem * 95 / 100)) State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

# write_conf TEXT: installs TEXT as slurm.conf; returns 0 if that changed the file.
write_conf() {
    local t new="$1" changed=1; t=$(now)
    mkdir -p /etc/slurm "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
    if [ ! -f "$CONF" ] || [ "$new" != "$(cat "$CONF")" ]; then
        printf '%s\n' "$new" > "$CONF"
        changed=0
    fi
    stage_done config "$t"
    return $changed
}

stop_daemons() {
    local t; t=$(now)
    if ctld_up; then
        if [ -n "$(squeue -h -o %A 2>/dev/null)" ]; then
            say "cancelling jobs: $(squeue -h -o %i | tr '\n' ' ')"
            # shellcheck disable=SC2046
            scancel $(squeue -h -o %A) 2>/dev/null || true
            local i=0
            # until the jobs' slurmstepd have finished too (they outlive a stopped slurmd)
            while { [ -n "$(squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null)" ] || pgrep -x slurmstepd >/dev/null; } \
                && [ $i -lt $((WAIT * 2)) ]; do
                sleep 0.5; i=$((i + 1))
            done
        fi
        scontrol shutdown >/dev/null 2>&1 || true
    fi
    local f i
    for f in "$SLURMD_PID" "$CTLD_PID"; do
        pid_alive "$f" || continue
        kill "$(cat "$f")" 2>/dev/null || true
        i=0
        while pid_alive "$f" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        if pid_alive "$f"; then
            say "$(basename "$f" .pid) ignores SIGTERM; sending SIGKILL"
            kill -9 "$(cat "$f")" 2>/dev/null || true
        fi
    done
    rm -f "$SLURMD_PID" "$CTLD_PID"
    # Job step daemons outlive slurmd; after the cancel above none should be left (a fallback).
    local left
    left=$(pgrep -x slurmstepd || true)
    if [ -n "$left" ]; then
        say "killing leftover slurmstepd: $(echo "$left" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        kill -9 $left 2>/dev/null || true
    fi
    stage_done stop-slurm "$t"
}

stop_munge() {
    local t; t=$(now)
    if [ -s "$MUNGE_RUN/munged.pid" ] && kill -0 "$(cat "$MUNGE_RUN/munged.pid")" 2>/dev/null; then
        /usr/sbin/munged --stop >/dev/null 2>&1 || kill "$(cat "$MUNGE_RUN/munged.pid")" 2>/dev/null || true
    fi
    stage_done stop-munge "$t"
}

start_daemons() {
    local t i; t=$(now)
    if ! ctld_up; then
        # A controller that is running but not answering is restarted.
        if pid_alive "$CTLD_PID"; then kill "$(cat "$CTLD_PID")"; sleep 1; fi
        slurmctld || { log_tails; die "slurmctld failed to start"; }
        i=0
        until ctld_up; do
            i=$((i + 1))
            [ $i -le $((WAIT * 10)) ] || { log_tails; die "slurmctld did not answer 'scontrol ping' within ${WAIT} s"; }
            sleep 0.1
        done
    fi
    stage_done slurmctld "$t"
    t=$(now)
    SLURMD_STARTED=""
    if ! pid_alive "$SLURMD_PID"; then
        SLURMD_STARTED=$(slurmd_start_time)
        slurmd || { log_tails; die "slurmd failed to start"; }
    fi
    stage_done slurmd "$t"
}

wait_idle() {
    local t st i=0; t=$(now)
    while :; do
        st=$(node_state)
        # A slurmd started just now must have registered (a new SlurmdStartTime), not merely be
        # remembered as idle by a controller that has not noticed the old one is gone.
        if [ -n "${SLURMD_STARTED:-}" ] && [ "$(slurmd_start_time)" = "$SLURMD_STARTED" ]; then
            st="$st (slurmd not registered yet)"
        fi
        case "$st" in
            idle|mixed|allocated) break ;;
            # down/drained after an unclean stop: ReturnToService=2 normally clears it, this is a fallback
            down*|drain*|fail*)
                if [ $i -gt 20 ]; then scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true; fi ;;
        esac
        i=$((i + 1))
        if [ $i -gt $((WAIT * 10)) ]; then
            sinfo -R >&2 || true
            log_tails
            die "node $HOST is '${st:-unknown}', not idle, after ${WAIT} s"
        fi
        sleep 0.1
    done
    stage_done node-idle "$t"
    sinfo
}

cmd="${1:-start}"
HOST=$(hostname -s)
case "$cmd" in
    start)
        T0=$(now)
        install_pkgs
        start_munge
        NEW_CONF=$(render_conf)
        if write_conf "$NEW_CONF" && { ctld_up || pid_alive "$SLURMD_PID"; }; then
            say "configuration changed; restarting the daemons"
            stop_daemons
        fi
        start_daemons
        wait_idle
        stage_done total "$T0"
        ;;
    stop)
        T0=$(now)
        if command -v slurmctld >/dev/null; then stop_daemons; fi
        stop_munge
        stage_done total "$T0"
        ;;
    status)
        for f in "$CTLD_PID" "$SLURMD_PID" "$MUNGE_RUN/munged.pid"; do
            if pid_alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): not running"; fi
        done
        if ctld_up; then sinfo; squeue; fi
        ;;
    *)
        die "unknown command '$cmd' (start, stop or status)"
        ;;
esac
