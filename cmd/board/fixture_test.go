package board

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

func TestMain(m *testing.M) {
	// golden output must not depend on the terminal the tests run in
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// clock is a settable fake clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func svc(site, host, name string, st services.State, probe string) services.ServiceStatus {
	s := services.ServiceStatus{Site: site, Host: host, Service: name, Group: "core", Passive: "stopped", State: st}
	if probe != "" {
		s.Probe = &services.ProbeResult{OK: true, Known: true, Detail: probe}
	}
	return s
}

// healthySnapshot: site A serves, B is passive, every layer agrees.
func healthySnapshot() checks.Snapshot {
	a := services.SiteStatus{Site: "A", Role: "primary", Core: services.Active, Reporting: services.Active, Hosts: []services.HostStatus{
		{Site: "A", Host: "a-app1", Reachable: true, Services: []services.ServiceStatus{
			svc("A", "a-app1", "ccm", services.Running, "HTTP 200 in 12ms"),
			svc("A", "a-app1", "cs", services.Running, ""),
			svc("A", "a-app1", "mre", services.Running, ""),
			svc("A", "a-app1", "chat", services.Running, "HTTP 200 in 8ms"),
		}},
	}}
	b := services.SiteStatus{Site: "B", Role: "secondary", Core: services.Passive, Reporting: services.Passive, Hosts: []services.HostStatus{
		{Site: "B", Host: "b-app1", Reachable: true, Services: []services.ServiceStatus{
			svc("B", "b-app1", "ccm", services.Stopped, ""),
			svc("B", "b-app1", "cs", services.Stopped, ""),
			svc("B", "b-app1", "mre", services.Stopped, ""),
			svc("B", "b-app1", "chat", services.Stopped, ""),
		}},
	}}
	layers := []checks.LayerVerdict{
		services.Verdict([]services.SiteStatus{a, b}),
		// rows shaped as checks' layers make them
		{Layer: checks.LayerMongoDB, State: checks.ServeOne, Site: "A", Detail: "the writable primary is mongo-a at site A (term 1)", Rows: []checks.Row{
			{Site: "A", Name: "mongo-a", State: "primary", Detail: "term 1; priority 2; lag 0s", Brief: "prio 2, health 1, lag 0s"},
			{Site: "B", Name: "mongo-b", State: "secondary", Detail: "term 1; priority 1; lag 0s", Brief: "prio 1, health 1, lag 0s"},
			{Site: "W", Name: "mongo-arb", State: "arbiter", Detail: "term 1", Brief: "health 1"},
		}},
		{Layer: checks.LayerActiveMQ, State: checks.ServeOne, Site: "A", Detail: "site A holds the highest-priority consumer", Rows: []checks.Row{
			{Site: "A", Name: "amq-a/chat.requests", State: "A", Detail: "site A wins at priority 10", Brief: "up, top A@10 local"},
			{Site: "B", Name: "amq-b/chat.requests", State: "A", Detail: "site A wins at priority 10: bridge to amq-a", Brief: "up, top A@10 bridge"},
		}},
		{Layer: checks.LayerHAProxy, State: checks.ServeOne, Site: "A", Detail: "every backend sends new traffic to site A", Rows: []checks.Row{
			{Site: "A", Name: "chat/chat-a", State: "UP", Detail: "active; active and up: takes new traffic; 12 sessions", Brief: "active, 12 sess"},
			{Site: "B", Name: "chat/chat-b", State: "DOWN", Detail: "backup; backup down: fails its health checks; 0 sessions", Brief: "backup, 0 sess"},
		}},
	}
	return checks.Snapshot{Observed: t0, Took: inventory.Duration(1200 * time.Millisecond), Sites: []services.SiteStatus{a, b},
		Invariant: checks.CheckNotBothActive([]services.SiteStatus{a, b}), Verdict: checks.Combine(layers)}
}

// splitSnapshot: HAProxy still sends traffic to B while services run on A.
func splitSnapshot() checks.Snapshot {
	s := healthySnapshot()
	layers := s.Verdict.Layers
	layers[3] = checks.LayerVerdict{Layer: checks.LayerHAProxy, State: checks.ServeOne, Site: "B", Detail: "backends point to site B",
		Fix: "sitectl takeover --site A", Rows: []checks.Row{{Site: "A", Name: "chat/chat-a", State: "MAINT", Brief: "active, 0 sess"}, {Site: "B", Name: "chat/chat-b", State: "UP", Brief: "backup, 3 sess"}}}
	s.Verdict = checks.Combine(layers)
	return s
}

// bigSnapshot has n services spread over both sites.
func bigSnapshot(n int) checks.Snapshot {
	s := healthySnapshot()
	for i := range s.Sites {
		site := &s.Sites[i]
		site.Hosts = nil
		per := n / 2
		for h := 0; h < 4; h++ {
			host := services.HostStatus{Site: site.Site, Host: fmt.Sprintf("%s-app%d", site.Site, h+1), Reachable: true}
			for j := 0; j < per/4; j++ {
				st := services.Running
				if site.Site == "B" {
					st = services.Stopped
				}
				host.Services = append(host.Services, svc(site.Site, host.Host, fmt.Sprintf("service-%03d", j), st, "HTTP 200 in 3ms"))
			}
			site.Hosts = append(site.Hosts, host)
		}
	}
	return s
}

type fakeDeps struct {
	clock   *clock
	snap    checks.Snapshot
	mu      sync.Mutex
	runs    []string
	journal []string
}

func (f *fakeDeps) deps() Deps {
	return Deps{
		Deployment: "lab",
		Sites:      []string{"A", "B"},
		Roles:      map[string]string{"A": "primary", "B": "secondary"},
		Observe:    func(context.Context) checks.Snapshot { return f.snap },
		Run:        f.run,
		Plan:       f.run,
		Journal:    func() ([]string, error) { return f.journal, nil },
		Now:        f.clock.Now,
		Interval:   time.Hour, // no ticks during tests
		Timeout:    time.Minute,
	}
}

// run emits a short takeover: three tasks and the result.
func (f *fakeDeps) run(ctx context.Context, rb, site string, sink event.Sink) error {
	f.mu.Lock()
	f.runs = append(f.runs, rb+" "+site)
	f.mu.Unlock()
	sink.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{Runbook: rb, Site: site}})
	for i, s := range []string{"ccm", "cs", "mre"} {
		task := fmt.Sprintf("start-core/%s-app1/%s", site, s)
		sink.Emit(event.Event{Kind: event.StepStart, Task: task})
		o := event.OK
		if i == 0 {
			o = event.Skipped
		}
		sink.Emit(event.Event{Kind: event.StepEnd, Task: task, Outcome: o, Duration: time.Duration(i+1) * 1500 * time.Millisecond, Message: "running"})
	}
	sink.Emit(event.Event{Kind: event.RunEnd, Outcome: event.OK, Message: "site " + site + " serves traffic", Duration: 4500 * time.Millisecond})
	return nil
}

func newFake() *fakeDeps {
	return &fakeDeps{clock: &clock{now: t0}, snap: healthySnapshot(), journal: []string{"run takeover --site A by alice: ok (4.5s)"}}
}

func (f *fakeDeps) ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.runs...)
}
