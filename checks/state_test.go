package checks

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
)

// stuckRunner answers after delay whatever ctx says, as a runner does that
// cleans up after a host that stopped answering.
type stuckRunner struct{ delay time.Duration }

func (s stuckRunner) Run(ctx context.Context, host, command string) (remote.Result, error) {
	time.Sleep(s.delay)
	return remote.Result{}, ctx.Err()
}

// A host that does not answer is reported at the deadline, not when the
// runner has finished cleaning up: one dead host must not hold up the
// observation of the others (the board's refresh depends on it).
func TestHostReportsNoAnswerAtDeadline(t *testing.T) {
	data, err := os.ReadFile("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	site := inv.Sites[0]
	host := site.Hosts[0].Name
	var svcs []*inventory.Service
	for _, s := range site.Services {
		for _, h := range s.OnHosts() {
			if h == host {
				svcs = append(svcs, s)
			}
		}
	}
	o := &Observer{Inventory: inv, Runner: stuckRunner{delay: 3 * time.Second}, NoProbes: true}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	hs := o.Host(ctx, site.Name, host, svcs)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Host returned after %s, want about the 200ms deadline", took)
	}
	if hs.Reachable || !strings.Contains(hs.Error, "no answer within") {
		t.Fatalf("reachable=%v error=%q", hs.Reachable, hs.Error)
	}
	for _, s := range hs.Services {
		if s.State != Unknown {
			t.Errorf("%s: %s, want unknown", s.Service, s.State)
		}
	}
}
