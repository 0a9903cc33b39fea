package runlock

import "strings"

// shq quotes s for a POSIX shell: the result is one word with exactly s as its
// value, whatever s contains.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shpath quotes a remote path for sh; a leading "~/" becomes "$HOME"/ (the
// remote user's home), the rest is quoted.
func shpath(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return `"$HOME"/` + shq(rest)
	}
	if p == "~" {
		return `"$HOME"`
	}
	return shq(p)
}
