package runbooks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/standin"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

// lab is two sites of local hosts whose services are real stand-in
// processes controlled by a real script.
type lab struct {
	inv  *inventory.Inventory
	svc  *standin.Services
	pool *remote.Pool
	cat  *Catalog
}

func newLab(t *testing.T) *lab {
	t.Helper()
	s := standin.New(t)
	var b strings.Builder
	fmt.Fprintf(&b, "deployment: test\ndefaults:\n  command_timeout: 5s\n  verify_timeout: 3s\nsites:\n")
	for _, site := range []struct{ name, role, p string }{{"A", "primary", "a"}, {"B", "secondary", "b"}} {
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    hosts:\n      - {name: %s-app, local: true}\n      - {name: %s-rpt, local: true}\n    services:\n", site.name, site.role, site.p, site.p)
		for _, svc := range []struct{ name, kind, group, host, passive string }{
			{"ccm", "ccm", "core", "app", "running"}, {"comms", "comms", "core", "app", "stopped"},
			{"mre", "mre", "core", "app", "stopped"}, {"chat", "chat", "core", "app", "stopped"},
			{"reporting", "reporting", "reporting", "rpt", "stopped"},
		} {
			n := site.p + "-" + svc.name
			fmt.Fprintf(&b, "      - {name: %s, kind: %s, group: %s, host: %s-%s, passive: %s, start: %q, stop: %q, status: %q}\n",
				svc.name, svc.kind, svc.group, site.p, svc.host, svc.passive, s.Cmd("start", n), s.Cmd("stop", n), s.Cmd("status", n))
		}
	}
	inv, err := inventory.Parse("lab.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("lab inventory: %v\n%s", err, b.String())
	}
	targets := map[string]remote.Target{}
	for _, st := range inv.Sites {
		for _, h := range st.Hosts {
			targets[h.Name] = remote.Target{Name: h.Name, Local: true}
		}
	}
	pool := remote.NewPool(remote.NewDialer(remote.Options{}), targets)
	t.Cleanup(func() { pool.Close() })
	cat, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return &lab{inv: inv, svc: s, pool: pool, cat: cat}
}

// recorder keeps every event.
type recorder struct {
	mu  sync.Mutex
	evs []event.Event
}

func (r *recorder) Emit(e event.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) ends() map[string]event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]event.Event{}
	for _, e := range r.evs {
		if e.Kind == event.StepEnd {
			out[e.Task] = e
		}
	}
	return out
}

// order returns the index of the first event of kind k for task id.
func (r *recorder) index(kind event.Kind, task string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.evs {
		if e.Kind == kind && e.Task == task {
			return i
		}
	}
	return -1
}

func (l *lab) run(t *testing.T, ctx context.Context, runbook, site string, mode Mode) (*Result, *recorder) {
	t.Helper()
	plan, err := l.cat.Compile(runbook, l.inv, site)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e := &Engine{Runner: l.pool, Sink: rec, Mode: mode, Poll: 20 * time.Millisecond}
	if mode == Offline {
		e.Runner = nil // any connection attempt panics
	}
	return e.Run(ctx, plan), rec
}
