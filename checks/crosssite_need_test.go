package checks

import (
	"context"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// probeCounter answers the status batches of every host but those in down
// (refused, a network failure) and records on which hosts the cross-site
// probes ran; every probed endpoint is open.
type probeCounter struct {
	down map[string]bool
	mu   sync.Mutex
	ran  []string // prober hosts, one per probe command
}

func (p *probeCounter) Run(ctx context.Context, host, cmd string) (remote.Result, error) {
	if p.down[host] {
		return remote.Result{}, &remote.HostError{Host: host, Op: remote.OpDial, Err: syscall.ECONNREFUSED}
	}
	if strings.Contains(cmd, probeMarker) {
		p.mu.Lock()
		p.ran = append(p.ran, host)
		p.mu.Unlock()
		// every endpoint: the indexes its "no bash" fallback lists
		var out strings.Builder
		if m := probeIndexes.FindStringSubmatch(cmd); m != nil {
			for _, i := range strings.Fields(m[1]) {
				out.WriteString(probeMarker + " " + i + " open\n")
			}
		}
		return remote.Result{Stdout: []byte(out.String())}, nil
	}
	return remote.Result{}, nil
}

var probeIndexes = regexp.MustCompile(`for i in ([0-9 ]+); do`)

func (p *probeCounter) probers() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := append([]string(nil), p.ran...)
	sort.Strings(s)
	return strings.Join(s, ",")
}

// In a refresh loop (Previous set) the cross-site probes run only where
// they count: not at all while every site answers here; for a site whose
// hosts stop answering, at once, and their evidence is in its verdict. A
// one-shot observation (no Previous) probes every site, as before.
func TestCrossSiteProbesOnlyWhereTheyCount(t *testing.T) {
	data, err := os.ReadFile("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	siteA := inv.Site("A")
	downA := map[string]bool{}
	for _, h := range siteA.Hosts {
		downA[h.Name] = true
	}
	observeCtx := func(ctx context.Context, run *probeCounter, prev []services.SiteStatus) Snapshot {
		d := &Deployment{Inventory: inv, Runner: run, NoProbes: true, Layers: []layer.Layer{}, Previous: prev}
		return d.Observe(ctx)
	}
	observe := func(run *probeCounter, prev []services.SiteStatus) Snapshot {
		return observeCtx(t.Context(), run, prev)
	}
	wantProbers := func(site string) string {
		var p []string
		for _, h := range inv.ProbersOf(site) {
			p = append(p, h.Name)
		}
		sort.Strings(p)
		return strings.Join(p, ",")
	}

	// one-shot: every site probed
	run := &probeCounter{}
	first := observe(run, nil)
	if run.probers() == "" {
		t.Fatal("a one-shot observation ran no cross-site probe")
	}

	// refresh, every site answered and answers: no probe
	run = &probeCounter{}
	observe(run, first.Sites)
	if got := run.probers(); got != "" {
		t.Errorf("refresh of sites that answer ran probes on %s; expected none", got)
	}

	// refresh, site A stops answering: A's probers probe it, and the
	// evidence is in A's verdict
	run = &probeCounter{down: downA}
	lost := observe(run, first.Sites)
	if got, want := run.probers(), wantProbers("A"); got != want {
		t.Errorf("probes ran on %q; expected A's probers %q", got, want)
	}
	for _, s := range lost.Sites {
		if s.Site != "A" {
			continue
		}
		if s.Loss == nil || s.Loss.State != SiteUnreachableHere || !strings.Contains(s.Loss.Summary, "probe from") {
			t.Errorf("site A: %+v\nexpected UNREACHABLE FROM HERE, seen alive by its probers", s.Loss)
		}
	}

	// the same, once the refresh's deadline is spent: no late probe (it
	// could only say its prober could not be asked); the next refresh
	// probes A alongside the services
	spent, cancel := context.WithCancel(t.Context())
	cancel()
	run = &probeCounter{down: downA}
	observeCtx(spent, run, first.Sites)
	if got := run.probers(); got != "" {
		t.Errorf("deadline spent: late probes ran on %s; expected none", got)
	}

	// next refresh, A still down: probed again (alongside the services)
	run = &probeCounter{down: downA}
	observe(run, lost.Sites)
	if got, want := run.probers(), wantProbers("A"); got != want {
		t.Errorf("still down: probes ran on %q; expected A's probers %q", got, want)
	}
}

// Watch keeps each observation for the next: its first observation probes
// every site, the next ones (every site answering) none.
func TestWatchRemembersTheObservationBefore(t *testing.T) {
	inv, err := inventory.Load("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run := &probeCounter{}
	w := &Watch{Deployment: Deployment{Inventory: inv, Runner: run, NoProbes: true, Layers: []layer.Layer{}}}
	w.Observe(t.Context())
	if run.probers() == "" {
		t.Fatal("the first observation ran no cross-site probe")
	}
	run.mu.Lock()
	run.ran = nil
	run.mu.Unlock()
	w.Observe(t.Context())
	if got := run.probers(); got != "" {
		t.Errorf("the second observation probed from %s: Watch did not pass the first one on", got)
	}
}
