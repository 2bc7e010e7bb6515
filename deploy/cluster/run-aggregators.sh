#!/usr/bin/env bash
# Runs the aggregation processes of a flowboard cluster on this host and keeps them running.
#
# A timely cluster cannot lose a process: when one dies, its peers stop too (they exit with
# status 70). This supervisor then starts every process again; they reconnect to each other
# and restore the newest checkpoint they all wrote. SIGTERM / Ctrl-C stops them gracefully
# (each writes a final checkpoint).
#
# usage: deploy/cluster/run-aggregators.sh HOSTS_FILE -- FLAGS...
#   HOSTS_FILE  one host:port per process (this host's processes are all of them here)
#   FLAGS       flags for every `flowboard serve` (at least --kafka-brokers, --data-dir shared
#               by all processes, --database-url); process i listens for HTTP on
#               127.0.0.1:$((HTTP_BASE + i)) (HTTP_BASE defaults to 8090).
set -euo pipefail

hosts=${1:?usage: run-aggregators.sh HOSTS_FILE -- FLAGS...}
shift
[ "${1:-}" = "--" ] && shift
flowboard=${FLOWBOARD:-flowboard}
http_base=${HTTP_BASE:-8090}
processes=$(grep -cve '^\s*\(#\|$\)' "$hosts")

pids=()
stop() {
    trap - TERM INT
    echo "run-aggregators: stopping" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
    exit 0
}
trap stop TERM INT

while true; do
    pids=()
    for ((i = 0; i < processes; i++)); do
        "$flowboard" serve --processes "$processes" --process "$i" --hosts "$hosts" \
            --http "127.0.0.1:$((http_base + i))" "$@" &
        pids+=("$!")
    done
    # When any process ends, the cluster is gone: stop the rest and start again.
    wait -n "${pids[@]}" || true
    echo "run-aggregators: a process ended; restarting the cluster from its last checkpoint" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
    sleep 1
done
