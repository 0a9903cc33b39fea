#!/usr/bin/env bash
# Measures `sitectl exporter` at its default interval against the lab
# (docs/lab.md): CPU time over DURATION seconds as a % of one core, and its
# resident memory (now and peak). Brings the lab up when it is not, and
# takes it down again only then. Needs root (the lab).
#   DURATION=300 bash scripts/bench-exporter.sh
#   INTERVAL=2s DURATION=120 bash scripts/bench-exporter.sh   # another --interval
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-300}
warm=${WARM:-30}
labdir=${SITECTL_LAB_DIR:-$PWD/.lab}
brought=false
if [ ! -f "$labdir/inventory.yaml" ] || ! grep -q '^sl-a' <(ip netns list); then
  go run ./scripts/lab up
  brought=true
fi
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  if $brought; then go run ./scripts/lab down; fi
}
trap cleanup EXIT
go build -o "$work/sitectl" ./cmd/sitectl
export SITECTL_INVENTORY=$labdir/inventory.yaml SITECTL_STATE_DIR=$work/state
args=(exporter --listen 127.0.0.1:0)
[ -n "${INTERVAL:-}" ] && args+=(--interval "$INTERVAL")
"$work/sitectl" "${args[@]}" 2>"$work/stderr" &
pid=$!
sleep 2
addr=$(sed -n 's|.* on http://\([^ ]*\)/metrics.*|\1|p' "$work/stderr" | head -1)
interval=$(sed -n 's|.*, every \([^,]*\), on .*|\1|p' "$work/stderr" | head -1)
sleep "$warm" # first refreshes, SSH connections open
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$dur"
c1=$(cpu); t1=$(date +%s.%N)
rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
refreshes=$(curl -s "http://$addr/metrics" | awk '/^sitectl_exporter_refreshes_total/{print $2}')
errors=$(curl -s "http://$addr/metrics" | awk '/^sitectl_exporter_refresh_errors_total/{print $2}')
series=$(curl -s "http://$addr/metrics" | grep -c '^sitectl_' || true)
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tick="$tick" -v rss="$rss" -v hwm="$hwm" \
  -v n="$refreshes" -v e="$errors" -v s="$series" -v iv="$interval" 'BEGIN {
  wall = t1 - t0; cpu = (c1 - c0) / tick
  printf "exporter at --interval %s, %.0f s measured after a %s s warm-up\n", iv, wall, "'"$warm"'"
  printf "CPU: %.2f s in %.0f s = %.2f %% of one core\n", cpu, wall, 100 * cpu / wall
  printf "RSS: %.1f MB now, %.1f MB peak\n", rss / 1024, hwm / 1024
  printf "refreshes: %s (errors %s); sitectl_ series served: %s\n", n, e, s
}'
