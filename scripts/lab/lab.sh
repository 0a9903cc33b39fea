#!/usr/bin/env bash
# Thin wrapper: bash scripts/lab/lab.sh up|down|status|fail A|... (docs/lab.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./scripts/lab "$@"
