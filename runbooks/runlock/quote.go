package runlock

import "strings"

// shq quotes s for a POSIX shell: the result is one word with exactly s as its
// value, whatever s contains.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
