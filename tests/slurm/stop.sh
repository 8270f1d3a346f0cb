#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start.sh: cancel its jobs, then stop only the
# processes named in our pidfiles (never by process name).
#
#   bash tests/slurm/stop.sh            # stop; keep state (database, spool) for a quick restart
#   bash tests/slurm/stop.sh --purge    # also delete the state dir and the configs we wrote
set -uo pipefail

STATE=${GROOD_SLURM_STATE:-/var/lib/grood-slurm}
PURGE=0
if [ "${1:-}" = --purge ]; then PURGE=1; fi

log() { echo "[grood-slurm] $*" >&2; }

# shellcheck source=pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

# cancel jobs only while the controller is ours: every job on it was submitted to our cluster
if pid_of slurmctld >/dev/null && command -v squeue >/dev/null; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 25); do
            [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

stopped=""
# stop in groups (in parallel within a group): SLURM daemons, then the accounting daemon, then
# its database and munge
stop_group() {
    local d p pids=()
    for d in "$@"; do
        if p=$(pid_of "$d"); then
            kill -TERM "$p" 2>/dev/null || true
            pids+=("$d=$p")
        fi
    done
    for _ in $(seq 75); do
        local alive=0
        for dp in "${pids[@]}"; do kill -0 "${dp#*=}" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.2
    done
    for dp in "${pids[@]}"; do
        if kill -0 "${dp#*=}" 2>/dev/null; then
            log "${dp%=*} (pid ${dp#*=}) ignored SIGTERM for 15 s; sending SIGKILL"
            kill -KILL "${dp#*=}" 2>/dev/null || true
        fi
        stopped="$stopped $dp"
    done
    for d in "$@"; do rm -f "$STATE/run/$d.pid"; done
}
stop_group slurmd slurmctld
stop_group slurmdbd
stop_group mariadbd munged

if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE"
    for f in slurm.conf gres.conf cgroup.conf slurmdbd.conf; do
        grep -qs '^# grood-slurm' "/etc/slurm/$f" && rm -f "/etc/slurm/$f"
    done
fi

echo "grood-slurm stopped:${stopped:- nothing was running}"
