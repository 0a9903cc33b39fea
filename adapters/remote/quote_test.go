package remote_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sitectl/sitectl/adapters/remote"
)

func TestQuote(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"", "''"},
		{"nginx", "nginx"},
		{"sitectl-chat.service", "sitectl-chat.service"},
		{"/opt/app/bin/ctl", "/opt/app/bin/ctl"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(id)", "'$(id)'"},
		{"~root", "'~root'"},
		{"A=1", "'A=1'"},
		{"a\nb", "'a\nb'"},
	}
	for _, tc := range cases {
		if got := remote.Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := remote.Join("systemctl", "restart", "x; rm -rf /"); got != `systemctl restart 'x; rm -rf /'` {
		t.Errorf("Join = %s", got)
	}
}

// FuzzQuote checks that the shell reads Quote(s) back as s, through the
// local runner's sh -c.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", "it's", "''", `\'`, "a b", "$(id)", "`id`", "$HOME", "a\nb", "*", "-n", "%s%d", "ü☃", "\t", "!x", "~", "a=b"} {
		f.Add(s)
	}
	r := remote.NewLocalRunner(remote.Target{Name: "local"}, remote.Options{})
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Skip("shell arguments are valid UTF-8 without NUL here")
		}
		res, err := r.Run(t.Context(), "printf %s "+remote.Quote(s))
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 || string(res.Stdout) != s {
			t.Fatalf("printf %%s %s: exit %d, stdout %q, stderr %q; want %q", remote.Quote(s), res.ExitCode, res.Stdout, res.Stderr, s)
		}
	})
}
