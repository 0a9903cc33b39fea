#!/usr/bin/env bash
# Times `sitectl status` (parallel, one round trip per host, cold SSH
# connections) over N real sshd hosts against the shell scripts' way, a
# sequential `ssh host 'status command'` loop, and one single round trip.
# Prints Go benchmark figures (ns/op). Needs root and openssh-server.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] && bash scripts/install-test-deps.sh
go test -run '^$' -bench 'BenchmarkStatus' -benchtime "${BENCHTIME:-5x}" -timeout 20m ./internal/bench/ | tee /tmp/sitectl-bench-status.txt
