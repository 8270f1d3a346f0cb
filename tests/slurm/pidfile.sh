# Sourced by start.sh and stop.sh: the one way to find a daemon we started (needs $STATE).

pid_of() { # name -> prints pid if the pidfile's process is alive
    local f="$STATE/run/$1.pid" p
    [ -s "$f" ] || return 1
    p=$(tr -dc 0-9 <"$f")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
    # a stale pidfile (e.g. after a reboot) may name an unrelated process: check its program
    local argv0
    argv0=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | head -n1)
    [ "${argv0##*/}" = "$1" ] || return 1
    echo "$p"
}
