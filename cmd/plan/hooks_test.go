package plan

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// TestPlanOfflineShowsHooks: an offline plan lists every hook the run
// would run (text and JSON), and runs none.
func TestPlanOfflineShowsHooks(t *testing.T) {
	plan := func(output string) string {
		io, _, out, _ := cmdutil.Test()
		f := &cmdutil.Factory{IO: io, Globals: &cmdutil.Globals{Inventory: "../../inventory/testdata/valid/hooks_notify.yaml", Output: output}, Getenv: func(string) string { return "" }}
		cmd := NewCmdPlan(f, nil)
		cmd.SetArgs([]string{"takeover", "--site", "B", "--offline"})
		cmd.SetContext(context.Background())
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := plan("text")
	for _, w := range []string{
		"Hooks (5; docs/operations.md):",
		`before_run                   "announce" on this machine (inventory hooks; timeout 10s; on error: stop)`,
		`before_step start-chat       "true" on this machine (inventory hooks; timeout 1m0s; on error: continue)`,
		`after_run                    "re-register webhooks" on b1 (inventory hooks; timeout 1m0s; on error: fail)`,
		`on_failure`,
	} {
		if !strings.Contains(text, w) {
			t.Errorf("plan lacks %q:\n%s", w, text)
		}
	}
	var doc struct {
		Hooks []struct {
			ID, Point, Step, Host, OnError string
		} `json:"hooks"`
	}
	if err := json.Unmarshal([]byte(plan("json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Hooks) != 5 || doc.Hooks[0].ID != "hook/inventory/before_run/0" || doc.Hooks[1].Step != "start-chat" || doc.Hooks[3].Host != "b1" {
		t.Errorf("plan -o json hooks: %+v", doc.Hooks)
	}
}
