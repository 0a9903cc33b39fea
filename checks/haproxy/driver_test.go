package haproxy

import (
	"context"
	"strings"
	"testing"
	"time"

	hap "github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/checks/layer"
	hx "github.com/sitectl/sitectl/internal/testenv/haproxy"
	"github.com/sitectl/sitectl/inventory"
)

// A server that is DOWN (its service died: the usual reason to leave a
// site) has no sessions to wait for: drain accepts it at once and says why,
// against a real HAProxy. Before, the verification waited for a DRAIN status
// HAProxy never shows for a DOWN server and the renounce failed after 2m.
func TestHAProxyDrainAcceptsDownServer(t *testing.T) {
	srv := hx.StartWith(t, hx.Options{Backends: []hx.BackendSpec{{Name: "be_chat", Servers: []hx.ServerSpec{
		{Name: "chat_a", Site: "A"}, {Name: "chat_b", Site: "B", Backup: true},
	}}}})
	inv := &inventory.Inventory{HAProxy: &inventory.HAProxy{RuntimeAPI: srv.AdminAPI(), Timeout: inventory.Duration(2 * time.Second),
		Backends: []*inventory.HAProxyBackend{{Name: "be_chat", Servers: map[string]string{"chat_a": "A", "chat_b": "B"}}}}}
	srv.Standin("be_chat", "chat_a").Kill()
	srv.WaitStatus(t, "be_chat", "chat_a", 10*time.Second, hx.HasPrefix("DOWN"))

	d := newDriver(inv, "A", hap.Drain, 2*time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	o := d.Observe(ctx, layer.Env{})
	if !o.Holds || !o.Known {
		t.Fatalf("DOWN server with 0 sessions: observation %+v, want it drained", o)
	}
	if !strings.Contains(o.Detail, "be_chat/chat_a is DOWN with 0 sessions: nothing to drain") {
		t.Errorf("the observation does not say why a DOWN server counts as drained: %q", o.Detail)
	}
	// acting anyway (a resume re-runs the step) puts it into drain and
	// returns at once; it still holds afterwards
	if err := d.Act(ctx, layer.Env{}); err != nil {
		t.Fatalf("drain of a DOWN server: %v", err)
	}
	if o := d.Observe(ctx, layer.Env{}); !o.Holds {
		t.Fatalf("after drain of a DOWN server: %+v", o)
	}
	// a server that is UP with no sessions is not drained until it is put
	// into drain: the DOWN rule does not widen to UP servers
	b := newDriver(inv, "B", hap.Drain, 2*time.Minute)
	if o := b.Observe(ctx, layer.Env{}); o.Holds {
		t.Errorf("an UP server counts as drained before any drain: %+v", o)
	}
}
