// Command sitectl moves a two-site contact-center deployment from one site to
// the other and back. See README.md and docs/.
package main

import (
	"os"

	"github.com/sitectl/sitectl/cmd/root"
)

// version is stamped by goreleaser (-X main.version=…).
var version = "dev"

func main() {
	os.Exit(int(root.Main(version, os.Args[1:])))
}
