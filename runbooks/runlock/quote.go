package runlock

import (
	"strings"

	"github.com/sitectl/sitectl/adapters/remote"
)

// shpath quotes a remote path for sh (remote.Quote); a leading "~/"
// becomes "$HOME"/ (the remote user's home), the rest is quoted.
func shpath(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return `"$HOME"/` + remote.Quote(rest)
	}
	if p == "~" {
		return `"$HOME"`
	}
	return remote.Quote(p)
}
