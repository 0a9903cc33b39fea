package checks

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/activemq"
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

// DefaultLayers returns the observers of the layers inv describes.
func DefaultLayers(inv *inventory.Inventory) []LayerObserver { return defaultLayers(inv, true) }

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
	var wg sync.WaitGroup
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
	snap.Invariant = CheckNotBothActive(snap.Sites)
	all := []LayerVerdict{ServicesLayer(snap.Sites)}
	if native {
		all = append(all, ActiveMQLayerDown(d.Inventory, amqObs, UnreachableSites(snap.Sites)))
	}
	snap.Verdict = Combine(append(all, verdicts...))
	snap.Took = Duration(now().Sub(start))
	return snap
}

// UnreachableSites is the set of sites none of whose hosts answered.
func UnreachableSites(sites []SiteStatus) map[string]bool {
	out := map[string]bool{}
	for _, s := range sites {
		if s.Core == Unreachable {
			out[s.Site] = true
		}
	}
	return out
}
