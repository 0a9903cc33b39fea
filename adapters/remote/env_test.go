package remote

import (
	"strings"
	"testing"
)

// Variables reach the command as they were, whatever they hold: a reason
// typed by an operator may hold quotes, spaces and shell syntax.
func TestLocalHostRunEnvPassesVariablesVerbatim(t *testing.T) {
	reason := `it's "down"; rm -rf / $(reboot) ` + "`x`"
	res, err := NewLocalHost().RunEnv(t.Context(), "any", []string{"SITECTL_REASON=" + reason, "EMPTY="}, `printf '%s|%s' "$SITECTL_REASON" "${EMPTY-unset}"`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Stdout), reason+"|"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := Export(nil, "true"); got != "true" {
		t.Errorf("no variables: %q", got)
	}
	if got := Export([]string{"A=1"}, "true"); !strings.HasPrefix(got, "export A=1; ") {
		t.Errorf("export: %q", got)
	}
}
