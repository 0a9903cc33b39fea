package checks

import (
	"context"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/activemq"
	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/inventory"
)

// LayerObserver observes one layer of a deployment, read-only. It must bound
// its own waits with the inventory's timeouts and report an unreachable
// layer as ServeUnknown, never as healthy.
type LayerObserver func(ctx context.Context, inv *inventory.Inventory) LayerVerdict

// Deployment observes every layer of a deployment at once.
type Deployment struct {
	Inventory *inventory.Inventory
	Runner    HostRunner
	Probe     Prober
	Now       func() time.Time
	NoProbes  bool
	// NoCrossSite skips the cross-site probes (CrossSite): without them a
	// site's loss rests on the layers' evidence alone.
	NoCrossSite bool
	// Layers besides services; nil means every layer the inventory
	// describes (haproxy, mongodb, activemq).
	Layers []LayerObserver
}

// Snapshot is the state of a deployment at one moment.
type Snapshot struct {
	Observed  time.Time    `json:"observed"`
	Took      Duration     `json:"took"`
	Sites     []SiteStatus `json:"sites"`
	Invariant Invariant    `json:"invariant"`
	Verdict   Verdict      `json:"verdict"`
}

// Duration marshals as a string ("1.2s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func defaultLayers(inv *inventory.Inventory, withActiveMQ bool) []LayerObserver {
	var out []LayerObserver
	if inv.MongoDB != nil {
		out = append(out, ObserveMongo)
	}
	if inv.ActiveMQ != nil && withActiveMQ {
		out = append(out, ObserveActiveMQ)
	}
	if inv.HAProxy != nil {
		out = append(out, ObserveHAProxy)
	}
	return out
}

// Observe looks at every layer in parallel and combines the verdict.
func (d *Deployment) Observe(ctx context.Context) Snapshot {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	start := now()
	layers := d.Layers
	var amqObs []*activemq.BrokerObservation
	native := layers == nil && d.Inventory.ActiveMQ != nil
	if layers == nil {
		layers = defaultLayers(d.Inventory, false)
	}
	snap := Snapshot{Observed: start}
	verdicts := make([]LayerVerdict, len(layers))
	var probes []Evidence
	var wg sync.WaitGroup
	if !d.NoCrossSite {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probes = CrossSite(ctx, d.Inventory, d.Runner, now)
		}()
	}
	if native {
		// brokers are judged once the services say which sites are down
		wg.Add(1)
		go func() {
			defer wg.Done()
			amqObs = activemq.ObserveAll(ctx, d.Inventory.ActiveMQ, os.Getenv)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		obs := &Observer{Inventory: d.Inventory, Runner: d.Runner, Probe: d.Probe, Now: d.Now, NoProbes: d.NoProbes}
		snap.Sites = obs.Sites(ctx)
	}()
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			verdicts[i] = l(ctx, d.Inventory)
		}()
	}
	wg.Wait()

	// every observer's evidence of each site's liveness, then each site's
	// loss verdict: only a confirmed loss lets a site count as not serving
	// without being observed
	evidence := probes
	for _, v := range verdicts {
		evidence = append(evidence, v.Evidence...)
	}
	configured := map[string]int{}
	for _, s := range d.Inventory.Sites {
		if s == nil {
			continue
		}
		if native {
			evidence = append(evidence, ActiveMQEvidence(d.Inventory, amqObs, s.Name)...)
		}
		configured[s.Name] = len(Observers(d.Inventory, s.Name))
	}
	for i := range evidence {
		if evidence[i].At.IsZero() {
			evidence[i].At = start
		}
	}
	judgeSites(snap.Sites, evidence, d.Inventory.LossQuorum(), configured)

	snap.Invariant = CheckNotBothActive(snap.Sites)
	all := []LayerVerdict{ServicesLayer(snap.Sites)}
	if native {
		all = append(all, ActiveMQLayerDown(d.Inventory, amqObs, DownSites(snap.Sites)))
	}
	snap.Verdict = Combine(append(all, verdicts...))
	snap.Took = Duration(now().Sub(start))
	return snap
}

// Warm connects, all at once, to what an observation will use: an SSH
// connection to every host (when run keeps connections, as remote.Pool
// does) and a TCP connection (closed at once) to every MongoDB member and
// broker, through the netwatch.Watch in ctx. It observes nothing; an
// observation that follows finds its connections open and the endpoints
// that did not answer already known, instead of waiting for each in turn.
// A run calls it while it takes its lock.
func Warm(ctx context.Context, inv *inventory.Inventory, run HostRunner) {
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
	if m := inv.MongoDB; m != nil {
		for _, mm := range m.Members {
			dial(mm.Address, max(m.Timeout.D(), time.Second))
		}
	}
	if a := inv.ActiveMQ; a != nil {
		for _, b := range a.Brokers {
			dial(b.STOMP, max(a.Timeout.D(), time.Second))
		}
	}
	wg.Wait()
}
