#!/usr/bin/env bash
# Builds the .deb (or, with PACKAGER=rpm, the .rpm) the way a release does,
# with nfpm pinned in tools/nfpm (no goreleaser needed): the binary stamped
# with version, commit and date, completions and man pages from
# scripts/gen-assets.sh. Prints the package's path.
#   bash scripts/build-deb.sh [outdir]
set -euo pipefail
cd "$(dirname "$0")/.."
outdir=${1:-dist}
packager=${PACKAGER:-deb}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
export VERSION=${VERSION:-0.0.0~dev}
export GOARCH=${GOARCH:-$(go env GOARCH)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
bash scripts/gen-assets.sh >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$commit -X main.date=$date" -o dist-assets/bin/sitectl ./cmd/sitectl
go -C tools/nfpm build -o "$outdir/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm
"$outdir/nfpm" package --config packaging/nfpm.yaml --packager "$packager" --target "$outdir/" >&2
ls "$outdir"/sitectl*."$packager"
