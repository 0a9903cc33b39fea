package checks

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// Deployment observes every layer of a deployment at once.
type Deployment struct {
	Inventory *inventory.Inventory
	Runner    services.HostRunner
	Probe     services.Prober
	Now       func() time.Time
	NoProbes  bool
	// NoCrossSite skips the cross-site probes (CrossSite): without them a
	// site's loss rests on the layers' evidence alone.
	NoCrossSite bool
	// Previous is the observation before this one, in a refresh loop
	// (board, status --watch); nil for a one-shot observation. With it the
	// cross-site probes run only where they can count: a site's probes are
	// evidence only when no host of it answers here (JudgeSite). So the
	// sites that did not answer in Previous are probed alongside the
	// services, as without Previous; a site that answered then is probed
	// only if none of its hosts answers now, once that is known. Each probe
	// costs every probed host an accepted connection (OpenSSH forks and
	// re-executes sshd for it): a refresh of sites that answer costs the
	// hosts their status batch and nothing more.
	Previous []services.SiteStatus
	// Layers besides services; nil means Layers(). Those the inventory
	// does not describe are skipped.
	Layers []layer.Layer
}

// Snapshot is the state of a deployment at one moment.
type Snapshot struct {
	Observed  time.Time             `json:"observed"`
	Took      inventory.Duration    `json:"took"` // "1.2s"
	Sites     []services.SiteStatus `json:"sites"`
	Invariant Invariant             `json:"invariant"`
	Verdict   Verdict               `json:"verdict"`
}

// Observe looks at the services, every layer and the other sites' view of
// each site at once, judges each site's loss from the evidence, then each
// layer (knowing which sites are down), and combines the verdict.
func (d *Deployment) Observe(ctx context.Context) Snapshot {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	start := now()
	snap := Snapshot{Observed: start}
	eager := d.eagerSites()
	sites, observed, probes := d.observeAll(ctx, now, eager)
	snap.Sites = sites
	probes = append(probes, d.lateProbes(ctx, now, eager, sites)...)
	d.judgeLoss(sites, probes, observed, start)
	snap.Invariant = CheckNotBothActive(sites)
	// each layer judged once the evidence says which sites are down
	verdicts := []LayerVerdict{services.Verdict(sites)}
	down := DownSites(sites)
	for _, o := range observed {
		verdicts = append(verdicts, o.Verdict(down))
	}
	snap.Verdict = Combine(verdicts)
	snap.Took = inventory.Duration(now().Sub(start))
	return snap
}

// layers are the layers to observe: Layers (or Layers()) that the
// inventory describes.
func (d *Deployment) layers() []layer.Layer {
	all := d.Layers
	if all == nil {
		all = Layers()
	}
	var out []layer.Layer
	for _, l := range all {
		if l.In(d.Inventory) {
			out = append(out, l)
		}
	}
	return out
}

// eagerSites are the sites probed cross-site alongside the services: with
// no Previous, every site (nil); else the sites that did not answer then,
// or were not observed then.
func (d *Deployment) eagerSites() map[string]bool {
	if d.Previous == nil {
		return nil
	}
	eager := map[string]bool{}
	seen := map[string]bool{}
	for _, s := range d.Previous {
		seen[s.Site] = true
		if !anyReachable(s) {
			eager[s.Site] = true
		}
	}
	for _, s := range d.Inventory.Sites {
		if s != nil && !seen[s.Name] {
			eager[s.Name] = true // not observed then: nothing known
		}
	}
	return eager
}

// observeAll observes the sites' services, every layer and the eager
// cross-site probes in parallel.
func (d *Deployment) observeAll(ctx context.Context, now func() time.Time, eager map[string]bool) ([]services.SiteStatus, []layer.Observed, []Evidence) {
	layers := d.layers()
	observed := make([]layer.Observed, len(layers))
	var sites []services.SiteStatus
	var probes []Evidence
	var wg sync.WaitGroup
	if !d.NoCrossSite {
		wg.Go(func() { probes = CrossSiteOf(ctx, d.Inventory, d.Runner, now, eager) })
	}
	wg.Go(func() {
		obs := &services.Observer{Inventory: d.Inventory, Runner: d.Runner, Probe: d.Probe, Now: d.Now, NoProbes: d.NoProbes}
		sites = obs.Sites(ctx)
	})
	for i, l := range layers {
		wg.Go(func() { observed[i] = l.Observe(ctx, d.Inventory) })
	}
	wg.Wait()
	return sites, observed, probes
}

// lateProbes probes the sites that answered last time and do not now
// (when the observation's deadline is spent, at the next one, alongside).
func (d *Deployment) lateProbes(ctx context.Context, now func() time.Time, eager map[string]bool, sites []services.SiteStatus) []Evidence {
	if d.NoCrossSite || eager == nil || ctx.Err() != nil {
		return nil
	}
	late := map[string]bool{}
	for _, s := range sites {
		if !eager[s.Site] && !anyReachable(s) {
			late[s.Site] = true
		}
	}
	return CrossSiteOf(ctx, d.Inventory, d.Runner, now, late)
}

// judgeLoss gathers every observer's evidence of each site's liveness (the
// probes', each layer's), then gives each site its loss verdict: only a
// confirmed loss lets a site count as not serving without being observed.
func (d *Deployment) judgeLoss(sites []services.SiteStatus, probes []Evidence, observed []layer.Observed, start time.Time) {
	evidence := probes
	configured := map[string]int{}
	for _, s := range d.Inventory.Sites {
		if s == nil {
			continue
		}
		for _, o := range observed {
			evidence = append(evidence, o.Evidence(s.Name)...)
		}
		configured[s.Name] = len(Observers(d.Inventory, s.Name))
	}
	for i := range evidence {
		if evidence[i].At.IsZero() {
			evidence[i].At = start
		}
	}
	judgeSites(sites, evidence, d.Inventory.LossQuorum(), configured)
}

// Warm connects, all at once, to what an observation will use: an SSH
// connection to every host (when run keeps connections, as remote.Pool
// does) and a TCP connection (closed at once) to every address a layer
// dials (layer.Dialer: MongoDB members, brokers), through the
// netwatch.Watch in ctx. It observes nothing; an
// observation that follows finds its connections open and the endpoints
// that did not answer already known, instead of waiting for each in turn.
// A run calls it while it takes its lock.
func Warm(ctx context.Context, inv *inventory.Inventory, run services.HostRunner) {
	var wg sync.WaitGroup
	if g, ok := run.(interface {
		Get(context.Context, string) (remote.Runner, error)
	}); ok {
		for _, h := range inv.AllHosts() {
			wg.Go(func() { _, _ = g.Get(ctx, h.Name) })
		}
	}
	dial := func(addr string, timeout time.Duration) {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if c, err := netwatch.DialContext(cctx, &net.Dialer{}, addr, timeout); err == nil {
				c.Close()
			}
		})
	}
	for _, l := range Layers() {
		if d, ok := l.(layer.Dialer); ok && l.In(inv) {
			addrs, timeout := d.Addresses(inv)
			for _, a := range addrs {
				dial(a, timeout)
			}
		}
	}
	wg.Wait()
}

// anyReachable reports whether a host of the site answered (a site with no
// host counts as not answering).
func anyReachable(s services.SiteStatus) bool {
	for _, h := range s.Hosts {
		if h.Reachable {
			return true
		}
	}
	return false
}

// Watch observes a deployment again and again over one runner (the board,
// the exporter): each observation knows the one before, so the cross-site
// probes run only where a site does not answer (Deployment.Previous).
// Safe for concurrent use.
type Watch struct {
	Deployment Deployment // Inventory, Runner, NoProbes, Now; Previous is Watch's
	mu         sync.Mutex
	prev       []services.SiteStatus
}

// Observe observes the deployment once, with the last observation as
// Previous, and keeps this one for the next.
func (w *Watch) Observe(ctx context.Context) Snapshot {
	w.mu.Lock()
	d := w.Deployment
	d.Previous = w.prev
	w.mu.Unlock()
	snap := d.Observe(ctx)
	w.mu.Lock()
	w.prev = snap.Sites
	w.mu.Unlock()
	return snap
}
