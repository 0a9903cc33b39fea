#!/usr/bin/env bash
# Times drill 1 (site A cut off; `sitectl takeover --site B --yes`) against
# the two-site lab: the takeover's wall time next to its critical path (the
# waits the deployment imposed: service starts, the MongoDB election, the
# ActiveMQ consumers), then `sitectl status` and `sitectl check`. Prints the
# figures; docs/benchmarks.md records them. As root on Debian: installs what
# the lab needs, brings it up, and takes it down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-drill: run as root (the lab uses network namespaces)" >&2; exit 1; }
bash scripts/install-test-deps.sh
export SITECTL_LAB_DIR="${SITECTL_LAB_DIR:-$(mktemp -d /tmp/sitectl-bench-lab-XXXXXX)}"
trap 'go run ./scripts/lab down >/dev/null 2>&1 || true' EXIT
go run ./scripts/lab up >/dev/null
go run ./scripts/lab bench-drill -n "${RUNS:-5}" -status "${STATUS_RUNS:-10}" | tee /tmp/sitectl-bench-drill.txt
