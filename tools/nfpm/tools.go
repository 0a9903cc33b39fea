//go:build tools

// Package tools pins nfpm, which scripts/build-deb.sh runs to build the .deb
// (and .rpm) exactly as goreleaser's nfpms section would, without
// goreleaser: go -C tools/nfpm run github.com/goreleaser/nfpm/v2/cmd/nfpm
package tools

import _ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
