#!/usr/bin/env bash
# The lab in one command, as root on Debian (docs/lab.md):
#   bash scripts/lab/lab.sh up        install what it needs (idempotent), then bring the lab up
#   bash scripts/lab/lab.sh down|status|fail A|heal A|...   everything else of go run ./scripts/lab
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = up ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  bash scripts/install-test-deps.sh
fi
exec go run ./scripts/lab "$@"
