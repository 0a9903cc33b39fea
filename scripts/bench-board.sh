#!/usr/bin/env bash
# Memory and refresh time of a running `sitectl board` against the two-site
# lab, in tmux at 120x40: VmRSS and VmHWM sampled every 10 s for 2 minutes,
# with site A cut halfway and healed at three quarters. Prints the figures;
# docs/benchmarks.md records them. As root on Debian: installs what the lab
# needs, brings it up, and takes it down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-board: run as root (the lab uses network namespaces)" >&2; exit 1; }
bash scripts/install-test-deps.sh
export SITECTL_LAB_DIR="${SITECTL_LAB_DIR:-$(mktemp -d /tmp/sitectl-bench-lab-XXXXXX)}"
trap 'go run ./scripts/lab down >/dev/null 2>&1 || true' EXIT
go run ./scripts/lab up >/dev/null
go run ./scripts/lab bench-board -for "${FOR:-2m}" -every "${EVERY:-10s}" -interval "${INTERVAL:-1s}" | tee /tmp/sitectl-bench-board.txt
