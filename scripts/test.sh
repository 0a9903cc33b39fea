#!/usr/bin/env bash
# The whole test suite: installs what the integration tests need (as root on
# Debian), then runs every Go test, with the race detector, plus a short
# fuzzing pass over every parser and the offline CI dry-run of every runbook.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-}"
if [ "$(id -u)" = 0 ]; then
  bash scripts/install-test-deps.sh
else
  echo "not root: skipping package installs; integration tests need openssh-server" >&2
fi
echo "== go vet"
go vet ./...
echo "== offline plan of every runbook for every site of inventory/example.yaml (the CI dry-run, docs/ci.md)"
go build -o /tmp/sitectl-ci ./cmd/sitectl
/tmp/sitectl-ci runbook lint --inventory inventory/example.yaml
/tmp/sitectl-ci inventory check inventory/example.yaml
/tmp/sitectl-ci plan --all --offline --format junit --inventory inventory/example.yaml > /tmp/sitectl-plan.xml
python3 - /tmp/sitectl-plan.xml <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall("./testsuite/testcase")
failed = [c.get("name") for c in cases if c.find("failure") is not None]
assert root.tag == "testsuites" and len(cases) >= 12, (root.tag, len(cases))
assert not failed, failed
print(f"JUnit XML: {len(cases)} test cases, none failed")
PY
echo "== the release: build the .deb with nfpm, dpkg -i, run it, dpkg -r (root on Debian)"
bash scripts/check-deb.sh
if command -v goreleaser >/dev/null; then
  goreleaser check
else
  echo "goreleaser not installed: skipping goreleaser check (TestPackagesShipTheSameFiles compares its nfpms with packaging/nfpm.yaml)"
fi
echo "== go test"
go test -race -count=1 -timeout 30m ./...
echo "== fuzz (a short pass over every parser; FUZZTIME to change)"
# An execution count, not a duration: Go 1.26's fuzz coordinator can report a
# bare "context deadline exceeded" when a duration -fuzztime expires while a
# worker is mid-call (golang/go#75804, fixed in 1.27). A count has no deadline
# to race, so a failure here is always a real finding with a written input.
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-40000x}" -fuzzminimizetime 200x "$1"; }
fuzz ./inventory FuzzParse
fuzz ./runbooks FuzzParse
fuzz ./runbooks/journal FuzzRead
fuzz ./runbooks/journal FuzzRedactor
fuzz ./adapters/remote FuzzQuote
fuzz ./adapters/haproxy FuzzParseStat
fuzz ./adapters/haproxy FuzzParseServersState
fuzz ./adapters/activemq FuzzDecodeAdvisory
fuzz ./internal/mongosim FuzzParseMessage
fuzz ./checks FuzzParseProbe
fuzz ./checks/services FuzzParseBatch
fuzz ./inventory FuzzParseCredentialsFile
echo "== all tests passed"
