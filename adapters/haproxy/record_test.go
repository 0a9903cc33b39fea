package haproxy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	hx "github.com/sitectl/sitectl/internal/testenv/haproxy"
)

// TestRecordOutputs rewrites testdata/ from the installed haproxy. It only
// runs with SITECTL_HAPROXY_RECORD=1 (e.g. after a HAProxy upgrade).
func TestRecordOutputs(t *testing.T) {
	if os.Getenv("SITECTL_HAPROXY_RECORD") == "" {
		t.Skip("set SITECTL_HAPROXY_RECORD=1 to re-record testdata/")
	}
	bes := append(hx.DefaultBackends(), hx.BackendSpec{Name: "be_misc", Servers: []hx.ServerSpec{
		{Name: "chk", Site: "A"}, {Name: "nochk", Site: "A", NoCheck: true}, {Name: "trk", Site: "B", Track: "be_misc/chk"},
	}})
	h := hx.StartWith(t, hx.Options{Backends: bes, FastInter: 500 * time.Millisecond})
	cmd := func(c string) string {
		t.Helper()
		out, err := h.Cmd(c)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	save := func(name, c string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(cmd(c)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	save("stat_up.csv", "show stat")
	save("servers_state_up.txt", "show servers state")
	cmd("set server be_misc/chk state maint")
	cmd("set server be_cc/site_a state drain")
	cmd("set server be_rt/rt_b state maint")
	save("stat_drain_maint_via.csv", "show stat")
	save("servers_state_drain_maint.txt", "show servers state")
	cmd("set server be_cc/site_a state ready")
	cmd("set server be_rt/rt_b state ready")
	cmd("set server be_misc/chk state ready")
	h.WaitStatus(t, "be_cc", "site_a", 5*time.Second, hx.Is("UP"))
	h.Standin("be_cc", "site_a").Kill()
	h.WaitStatus(t, "be_cc", "site_a", 5*time.Second, hx.HasPrefix("UP "))
	save("stat_going_down.csv", "show stat be_cc -1 -1")
	h.WaitStatus(t, "be_cc", "site_a", 5*time.Second, hx.Is("DOWN"))
	save("stat_down_backup.csv", "show stat")
	if err := h.Standin("be_cc", "site_a").Revive(); err != nil {
		t.Fatal(err)
	}
	h.WaitStatus(t, "be_cc", "site_a", 5*time.Second, hx.HasPrefix("DOWN "))
	save("stat_going_up.csv", "show stat be_cc 4 -1")
	save("stat_no_maint.csv", "show stat no-maint")
}
