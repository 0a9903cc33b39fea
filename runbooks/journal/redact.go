package journal

import (
	"regexp"
	"sort"
	"strings"
)

// Redactor rewrites a string before it is written to a journal, masking
// secrets. It must be safe for concurrent use.
type Redactor func(string) string

const masked = "***"

// MinSecretLen is the shortest literal secret NewRedactor masks; shorter ones
// would mask innocent text all over the journal.
const MinSecretLen = 4

// secretWords name settings that hold secrets (matched case-insensitively,
// inside longer names too: DB_PASSWORD, --db-password, api_token).
var secretWords = []string{
	"password", "passwd", "passphrase", "passcode", "secret", "token",
	"apikey", "api_key", "api-key", "privatekey", "private_key", "private-key",
}

var (
	// "password": "x" (JSON)
	jsonRE = regexp.MustCompile(`(?i)("[A-Za-z0-9_.-]*(?:password|passwd|passphrase|passcode|secret|token|api[_-]?key|private[_-]?key)[A-Za-z0-9_.-]*"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	// scheme://user:secret@host
	urlRE = regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(@)`)
	// Authorization: Bearer x
	authRE = regexp.MustCompile(`(?i)(authorization:\s*(?:bearer|basic|token)\s+)\S+`)
)

// NewRedactor returns a Redactor that replaces every literal secret of at
// least MinSecretLen bytes (also in its shell single-quoted form) with "***",
// and, whatever the secret, masks the values of
//
//	password=…  PASSWORD=…  DB_PASSWORD='…'  passcode=…  token=…
//	--password …  --db-password=…
//	"password": "…"   password: … (at the start of a line)
//	scheme://user:…@host   Authorization: Bearer …
//
// Patterns are matched within one line.
func NewRedactor(secrets ...string) Redactor {
	var lits []string
	seen := map[string]bool{}
	add := func(s string) {
		if len(s) >= MinSecretLen && !seen[s] {
			seen[s] = true
			lits = append(lits, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(strings.ReplaceAll(s, `'`, `'\''`))
	}
	// Longest first so that a secret containing another is masked whole.
	sort.Slice(lits, func(i, j int) bool { return len(lits[i]) > len(lits[j]) })
	var rep *strings.Replacer
	if len(lits) > 0 {
		pairs := make([]string, 0, 2*len(lits))
		for _, s := range lits {
			pairs = append(pairs, s, masked)
		}
		rep = strings.NewReplacer(pairs...)
	}
	return func(s string) string {
		if s == "" {
			return s
		}
		if rep != nil {
			s = rep.Replace(s)
		}
		return maskPatterns(s)
	}
}

// maskPatterns masks line by line: command output can be large, and only
// the lines where a cheap scan finds a trigger word get the full treatment.
func maskPatterns(s string) string {
	if !strings.Contains(s, "\n") {
		return maskLine(s)
	}
	var b strings.Builder
	changed := false
	for rest := s; rest != ""; {
		line, tail, nl := strings.Cut(rest, "\n")
		m := maskLine(line)
		if m != line && !changed {
			changed = true
			b.Grow(len(s))
			b.WriteString(s[:len(s)-len(rest)])
		}
		if changed {
			b.WriteString(m)
			if nl {
				b.WriteByte('\n')
			}
		}
		rest = tail
	}
	if !changed {
		return s
	}
	return b.String()
}

func maskLine(s string) string {
	lower := asciiLower(s)
	if containsAny(lower, "pass", "secret", "token", "key") {
		s = maskAssignments(s, lower)
		s = maskYAML(s)
		if strings.Contains(s, `"`) {
			s = jsonRE.ReplaceAllString(s, `${1}"`+masked+`"`)
		}
	}
	if strings.Contains(lower, "://") {
		s = urlRE.ReplaceAllString(s, `${1}`+masked+`${3}`)
	}
	if strings.Contains(lower, "authorization") {
		s = authRE.ReplaceAllString(s, `${1}`+masked)
	}
	return s
}

// maskAssignments masks the value of NAME=value and of --NAME value where
// NAME contains a secret word. lower is asciiLower(s) (same byte offsets).
func maskAssignments(s, lower string) string {
	type span struct{ from, to int }
	var spans []span
	for i := 0; i < len(lower); {
		w := secretWordAt(lower, i)
		if w == 0 {
			i++
			continue
		}
		ks, ke := i, i+w // widen to the whole name
		for ks > 0 && isWord(s[ks-1]) {
			ks--
		}
		for ke < len(s) && isWord(s[ke]) {
			ke++
		}
		next := ke
		j := skipSpace(s, ke)
		switch {
		case j < len(s) && s[j] == '=': // NAME=value, --NAME=value
			v := skipSpace(s, j+1)
			if ve := valueEnd(s, v); ve > v {
				spans = append(spans, span{v, ve})
				next = ve
			}
		case j > ke && j < len(s) && s[j] != '-' && isFlagName(s, ks): // --NAME value
			if ve := valueEnd(s, j); ve > j {
				spans = append(spans, span{j, ve})
				next = ve
			}
		}
		i = next
	}
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.from])
		b.WriteString(masked)
		last = sp.to
	}
	b.WriteString(s[last:])
	return b.String()
}

// maskYAML masks "  name: value" when name contains a secret word.
func maskYAML(s string) string {
	i := skipSpace(s, 0)
	ks := i
	for i < len(s) && (isWord(s[i]) || s[i] == '.' || s[i] == '-') {
		i++
	}
	if i == ks || !hasSecretWord(asciiLower(s[ks:i])) {
		return s
	}
	j := skipSpace(s, i)
	if j >= len(s) || s[j] != ':' || j+1 >= len(s) || (s[j+1] != ' ' && s[j+1] != '\t') {
		return s
	}
	v := skipSpace(s, j+1)
	end := len(s)
	if strings.HasSuffix(s, "\r") {
		end--
	}
	if v >= end {
		return s
	}
	return s[:v] + masked + s[end:]
}

func secretWordAt(lower string, i int) int {
	switch lower[i] {
	case 'p', 's', 't', 'a':
		for _, w := range secretWords {
			if strings.HasPrefix(lower[i:], w) {
				return len(w)
			}
		}
	}
	return 0
}

func hasSecretWord(lower string) bool { return containsAny(lower, secretWords...) }

// isFlagName reports whether the name starting at ks is part of a command-line
// flag: it is preceded by -, --, or -prefix- at the start of a word.
func isFlagName(s string, ks int) bool {
	fs := ks
	for fs > 0 && (isWord(s[fs-1]) || s[fs-1] == '-') {
		fs--
	}
	return fs < ks && s[fs] == '-' && (fs == 0 || isSpace(s[fs-1]))
}

// valueEnd returns the end of the value starting at v: a quoted string (to
// its closing quote, or the end) or a run of characters up to a space,
// quote, & or ;.
func valueEnd(s string, v int) int {
	if v >= len(s) {
		return v
	}
	if q := s[v]; q == '"' || q == '\'' {
		if k := strings.IndexByte(s[v+1:], q); k >= 0 {
			return v + 1 + k + 1
		}
		return len(s)
	}
	for v < len(s) && !isSpace(s[v]) && !strings.ContainsRune(`"'&;`, rune(s[v])) {
		v++
	}
	return v
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

func isWord(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// asciiLower lowers ASCII letters only, so byte offsets stay the same.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// isSecretFlag reports whether a whole argument is a flag such as
// --password or --db-password whose value is the next argument.
func isSecretFlag(arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isWord(name[i]) && name[i] != '-' {
			return false
		}
	}
	// A secret word must run to the end of the name (--password,
	// --db-password, --api-key, --token2) so that --password-file and
	// --token-ttl keep their value.
	lower := asciiLower(name)
	for _, w := range secretWords {
		for off := 0; ; {
			k := strings.Index(lower[off:], w)
			if k < 0 {
				break
			}
			ke := off + k + len(w)
			for ke < len(lower) && isWord(lower[ke]) {
				ke++
			}
			if ke == len(lower) {
				return true
			}
			off += k + 1
		}
	}
	return false
}
