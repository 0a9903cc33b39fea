package activemq

import (
	"context"
	"os"
	"strings"
	"time"

	amq "github.com/sitectl/sitectl/adapters/activemq"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// Layer is the ActiveMQ layer: which site's consumers hold the top priority
// on every broker (its verdict, with the seed's scenarios), what the
// brokers of the other sites say of a site (bridges and its clients'
// connections: its evidence), and the runbook step that waits for a site's
// consumers to take the top priority.
type Layer struct {
	// Getenv reads the brokers' credentials variables; nil is os.Getenv.
	Getenv func(string) string
}

var (
	_ layer.Layer  = Layer{}
	_ layer.Dialer = Layer{}
)

// Addresses are the brokers' STOMP ports (at least a second to connect).
func (Layer) Addresses(inv *inventory.Inventory) ([]string, time.Duration) {
	if inv == nil || inv.ActiveMQ == nil {
		return nil, 0
	}
	var out []string
	for _, b := range inv.ActiveMQ.Brokers {
		out = append(out, b.STOMP)
	}
	return out, max(inv.ActiveMQ.Timeout.D(), time.Second)
}

// Name is "activemq".
func (Layer) Name() string { return layer.LayerActiveMQ }

// In reports whether the inventory has an activemq section.
func (Layer) In(inv *inventory.Inventory) bool { return inv != nil && inv.ActiveMQ != nil }

// Observe reads every broker's advisories once (each bounded by
// activemq.timeout).
func (l Layer) Observe(ctx context.Context, inv *inventory.Inventory) layer.Observed {
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	o := &observed{inv: inv}
	if inv != nil && inv.ActiveMQ != nil {
		o.obs = amq.ObserveAll(ctx, inv.ActiveMQ, getenv)
	}
	return o
}

type observed struct {
	inv *inventory.Inventory
	obs []*amq.BrokerObservation
}

// Verdict is JudgeDown's: a broker of a site whose loss is confirmed counts
// as down where it cannot be observed.
func (o *observed) Verdict(down map[string]bool) layer.Verdict {
	return JudgeDown(o.inv, o.obs, down)
}

// Evidence is SiteEvidence.
func (o *observed) Evidence(site string) []layer.Evidence { return SiteEvidence(o.inv, o.obs, site) }

// Observers are the brokers outside site (when site has a broker).
func (Layer) Observers(inv *inventory.Inventory, site string) []string {
	if inv == nil || inv.ActiveMQ == nil {
		return nil
	}
	has := false
	for _, b := range inv.ActiveMQ.Brokers {
		has = has || b.Site == site
	}
	var out []string
	for _, b := range inv.ActiveMQ.Brokers {
		if has && b.Site != site {
			out = append(out, "activemq "+b.Name)
		}
	}
	return out
}

// Step waits for site's consumers to hold the top priority on every
// broker: the site's connectors subscribe when its services start.
func (l Layer) Step(inv *inventory.Inventory, site string, _ layer.StepSpec) (layer.Step, error) {
	if inv == nil || inv.ActiveMQ == nil {
		return layer.Step{}, nil
	}
	return layer.Step{
		Driver:  &waitDriver{layer: l, inv: inv, site: site},
		Host:    "activemq",
		Desired: "site " + site + "'s consumers hold the top priority on every broker",
		Observe: "consumer advisories of " + strings.Join(inv.ActiveMQ.Queues, ", ") + " on every broker",
		Act:     "none: the site's connectors subscribe when its services start; wait for them",
	}, nil
}

// waitDriver only observes: it holds when the layer says the site serves,
// and its action is to wait.
type waitDriver struct {
	layer Layer
	inv   *inventory.Inventory
	site  string
}

// Observe observes the layer; a site whose loss was confirmed (env.Down)
// counts as down where it cannot be observed, rather than unknown.
func (d *waitDriver) Observe(ctx context.Context, env layer.Env) layer.Observation {
	l := d.layer.Observe(ctx, d.inv).Verdict(env.Down)
	state := l.State
	if l.Site != "" {
		state += " " + l.Site
	}
	detail := l.Detail
	if len(l.Notes) > 0 {
		detail += " (" + strings.Join(l.Notes, "; ") + ")"
	}
	return layer.Observation{State: state, Holds: l.State == layer.ServeOne && l.Site == d.site, Known: l.State != layer.ServeUnknown, Detail: detail}
}

// Act changes nothing.
func (d *waitDriver) Act(context.Context, layer.Env) error { return nil }

// OnlyWaits: verifying changes nothing.
func (d *waitDriver) OnlyWaits(layer.Env) bool { return true }
