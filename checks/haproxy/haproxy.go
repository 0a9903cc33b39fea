package haproxy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	hap "github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// Layer is the HAProxy layer: which site's servers take the traffic of
// every inventory backend (its verdict), what the health checks say of a
// site (its evidence), the ready/drain/maint steps of runbooks, and the
// fence of a lost site (its servers in MAINT).
type Layer struct{}

var (
	_ layer.Layer  = Layer{}
	_ layer.Fencer = Layer{}
)

// Name is "haproxy".
func (Layer) Name() string { return layer.LayerHAProxy }

// In reports whether the inventory has an haproxy section.
func (Layer) In(inv *inventory.Inventory) bool { return inv != nil && inv.HAProxy != nil }

// Observe reads "show stat" once (bounded by haproxy.timeout).
func (Layer) Observe(ctx context.Context, inv *inventory.Inventory) layer.Observed {
	o := &observed{inv: inv}
	if inv == nil || inv.HAProxy == nil {
		return o
	}
	c, err := hap.New(inv.HAProxy.RuntimeAPI, inv.HAProxy.Timeout.D())
	if err != nil {
		o.err = err
		return o
	}
	o.rows, o.err = c.ShowStat(ctx)
	return o
}

// observed is one "show stat" and the error of reading it.
type observed struct {
	inv  *inventory.Inventory
	rows []hap.StatRow
	err  error
}

// Verdict is Judge's: HAProxy's view does not depend on confirmed losses
// (its health checks see a lost site's servers DOWN).
func (o *observed) Verdict(map[string]bool) layer.Verdict { return Judge(o.inv, o.rows, o.err) }

// Evidence is SiteEvidence.
func (o *observed) Evidence(site string) []layer.Evidence {
	return SiteEvidence(o.inv, o.rows, o.err, site)
}

// Observers is "haproxy" when it balances some of site's servers.
func (Layer) Observers(inv *inventory.Inventory, site string) []string {
	if inv == nil || inv.HAProxy == nil {
		return nil
	}
	for _, b := range inv.HAProxy.Backends {
		for _, s := range b.Servers {
			if s == site {
				return []string{"haproxy"}
			}
		}
	}
	return nil
}

// Step puts the site's servers of every backend in spec.State; a drain
// waits up to spec.Timeout for their sessions to end.
func (Layer) Step(inv *inventory.Inventory, site string, spec layer.StepSpec) (layer.Step, error) {
	if inv == nil || inv.HAProxy == nil {
		return layer.Step{}, nil
	}
	d := newDriver(inv, site, spec.State, spec.Timeout)
	return layer.Step{
		Driver:  d,
		Host:    "haproxy",
		Desired: d.desired(),
		Observe: "show stat via " + inv.HAProxy.RuntimeAPI + ": status and current sessions of " + strings.Join(d.names(), ", "),
		Act:     d.actDescription(),
	}, nil
}

// Fence puts the lost site's servers in maint, so that a site that comes
// back gets no traffic until it is renounced. HAProxy that does not answer
// is reported in failed.
func (Layer) Fence(ctx context.Context, inv *inventory.Inventory, site string) (action, done, failed string) {
	h := inv.HAProxy
	if h == nil {
		return "", "", ""
	}
	c, err := hap.New(h.RuntimeAPI, h.Timeout.D())
	var ok, bad []string
	for _, b := range h.Backends {
		for _, sv := range sortedServers(b, site) {
			if err == nil {
				err = c.SetState(ctx, b.Name, sv, hap.Maint)
			}
			if err != nil {
				bad = append(bad, b.Name+"/"+sv)
				continue
			}
			ok = append(ok, b.Name+"/"+sv)
		}
	}
	if len(ok) > 0 {
		done = fmt.Sprintf("haproxy: %s set to maint (no traffic to lost site %s until it is renounced and made ready again)", strings.Join(ok, ", "), site)
	}
	if len(bad) > 0 {
		failed = fmt.Sprintf("haproxy: could not set %s to maint: %v", strings.Join(bad, ", "), err)
	}
	return "haproxy maint", done, failed
}

func sortedServers(b *inventory.HAProxyBackend, site string) []string {
	var out []string
	for sv, s := range b.Servers {
		if s == site {
			out = append(out, sv)
		}
	}
	slices.Sort(out)
	return out
}

// driver puts a site's servers in every inventory backend into a
// state: ready (back in load balancing), drain (no new sessions; wait until
// current sessions reach zero, the graceful path), or maint.
type driver struct {
	client  func() (*hap.Client, error) // built when first used
	site    string
	state   string
	servers map[string][]string // backend -> servers of the site
	drain   time.Duration
}

// newDriver builds the driver of a step; its runtime API client is built
// when the driver is first used, not when the plan is compiled.
func newDriver(inv *inventory.Inventory, site, state string, drain time.Duration) *driver {
	h := inv.HAProxy
	d := &driver{site: site, state: state, servers: map[string][]string{}, drain: drain,
		client: sync.OnceValues(func() (*hap.Client, error) { return hap.New(h.RuntimeAPI, h.Timeout.D()) })}
	for _, be := range inv.HAProxy.Backends {
		for srv, s := range be.Servers {
			if s == site {
				d.servers[be.Name] = append(d.servers[be.Name], srv)
			}
		}
	}
	return d
}

func (d *driver) names() []string {
	var out []string
	for be, srvs := range d.servers {
		for _, s := range srvs {
			out = append(out, be+"/"+s)
		}
	}
	sort.Strings(out)
	return out
}

func (d *driver) desired() string {
	switch d.state {
	case hap.Drain:
		return "DRAIN with 0 sessions"
	case hap.Maint:
		return "MAINT"
	}
	return "ready and UP (back in load balancing, health checks passing)"
}

func (d *driver) actDescription() string {
	var cmds []string
	for _, n := range d.names() {
		be, srv, _ := strings.Cut(n, "/")
		cmds = append(cmds, hap.SetStateCommand(be, srv, d.state))
	}
	s := strings.Join(cmds, "; ")
	if d.state == hap.Drain {
		s += "; then wait until their current sessions reach 0"
	}
	return s
}

// Observe reads show stat and checks every server of the site.
func (d *driver) Observe(ctx context.Context, _ layer.Env) layer.Observation {
	c, err := d.client()
	if err != nil {
		return layer.Observation{State: "unknown", Detail: err.Error()}
	}
	rows, err := c.ShowStat(ctx)
	if err != nil && !hap.IsPartial(err) {
		return layer.Observation{State: "unknown", Detail: err.Error()}
	}
	byName := map[string]hap.StatRow{}
	for _, r := range rows {
		if r.IsServer() {
			byName[r.Proxy+"/"+r.Name] = r
		}
	}
	holds, known := true, true
	var parts, notes []string
	for _, n := range d.names() {
		r, ok := byName[n]
		if !ok {
			known = false
			parts = append(parts, n+" missing from show stat")
			continue
		}
		st := r.Status.State
		parts = append(parts, fmt.Sprintf("%s %s (%d sessions)", n, r.Status.Raw, r.Scur))
		switch d.state {
		case hap.Ready:
			// back in load balancing AND passing its health checks: right
			// after the services started, HAProxy needs rise × inter to see
			// them, and the verdict must not be taken before that
			if st == hap.StateDrain || st == hap.StateMaint || !r.Status.Up() || r.Status.Transitional() {
				holds = false
			}
		case hap.Drain:
			switch {
			case st == hap.StateDrain && r.Scur == 0 && r.Qcur <= 0, st == hap.StateMaint:
			case drainedDown(r):
				// HAProxy shows DOWN, never DRAIN, for a server failing its
				// checks: with no session and no queue there is nothing to
				// wait for (the service died, the usual reason to leave)
				notes = append(notes, n+" is DOWN with 0 sessions: nothing to drain, counted as drained")
				parts[len(parts)-1] = fmt.Sprintf("%s %s (0 sessions: nothing to drain)", n, r.Status.Raw)
			default:
				holds = false
			}
		case hap.Maint:
			if st != hap.StateMaint {
				holds = false
			}
		}
	}
	if len(parts) == 0 {
		return layer.Observation{State: "no server of site " + d.site + " in the inventory's backends", Holds: true, Known: true}
	}
	return layer.Observation{State: strings.Join(parts, ", "), Holds: holds && known, Known: known, Detail: strings.Join(notes, "; ")}
}

// drainedDown reports a server that is DOWN (not on its way up) with no
// current session and no queued request: drained as far as traffic goes.
func drainedDown(r hap.StatRow) bool {
	return r.Status.State == hap.StateDown && !r.Status.Transitional() && r.Scur == 0 && r.Qcur <= 0
}

// Act sets the state; for drain it also waits for sessions to end.
func (d *driver) Act(ctx context.Context, _ layer.Env) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	for be, srvs := range d.servers {
		if d.state == hap.Drain {
			deadline := time.Now().Add(d.drain)
			res, err := c.Drain(ctx, be, srvs, deadline, 250*time.Millisecond)
			if err != nil {
				if res.Outcome == hap.DrainTimedOut {
					return fmt.Errorf("%w: backend %s: sessions did not reach 0 within %s: %v", layer.ErrActFailed, be, d.drain, err)
				}
				return err
			}
			continue
		}
		for _, srv := range srvs {
			if err := c.SetState(ctx, be, srv, d.state); err != nil {
				return fmt.Errorf("%w: %v", layer.ErrActFailed, err)
			}
		}
	}
	return nil
}
