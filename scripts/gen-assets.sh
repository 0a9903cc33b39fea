#!/usr/bin/env bash
# Generates what the packages ship besides the binary: shell completions
# (bash, zsh, fish) and man pages (gzipped), into dist-assets/. Run by
# goreleaser's before hook and by scripts/build-deb.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist-assets
rm -rf "$out"
mkdir -p "$out/completions" "$out/man"
go build -o "$out/sitectl" ./cmd/sitectl
"$out/sitectl" completion bash > "$out/completions/sitectl.bash"
"$out/sitectl" completion zsh > "$out/completions/_sitectl"
"$out/sitectl" completion fish > "$out/completions/sitectl.fish"
"$out/sitectl" man --dir "$out/man"
gzip -9n "$out"/man/*.1
rm "$out/sitectl"
