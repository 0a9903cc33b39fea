package remote

import "strings"

// Quote returns s quoted for a POSIX shell so that the shell reads it back as
// exactly one word equal to s. Words made only of safe characters are
// returned unchanged (that keeps logged commands readable); everything else
// is put in single quotes, and each single quote inside is written as a
// closing quote, a backslash-escaped quote and an opening quote.
//
// Quote every argument that goes into a command string: goph does not
// (Cmd.String joins arguments with spaces), so a service name such as
// "x; rm -rf /" would otherwise run.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !isSafe(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each word with Quote and joins them with spaces:
// Join("systemctl", "restart", unit) is a command string safe to Run.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}

func isSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	// Deliberately small: no '=' (an assignment when it is the first word)
	// and no '~' (tilde expansion).
	return strings.IndexByte("-_./:,+%", c) >= 0
}
