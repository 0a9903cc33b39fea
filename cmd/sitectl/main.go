// Command sitectl moves a two-site contact-center deployment from one site to
// the other and back. See README.md and docs/.
package main

import (
	"os"

	"github.com/sitectl/sitectl/cmd/root"
)

// Stamped by the release (goreleaser.yaml, scripts/build-deb.sh):
// -X main.version=… -X main.commit=… -X main.date=…
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func main() {
	os.Exit(int(root.Main(root.Build{Version: version, Commit: commit, Date: date}, os.Args[1:])))
}
