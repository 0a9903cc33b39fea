package runbooks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
)

// layerTask builds the task of a layer step (haproxy, mongodb, activemq) for
// site, or nil when the inventory does not describe that layer.
func layerTask(base Task, spec *StepSpec, inv *inventory.Inventory, site string) *Task {
	t := base
	t.Spec = spec
	t.Layer = spec.Action
	t.ID = base.Step.Name + "/" + spec.Action
	switch spec.Action {
	case ActionHAProxy:
		if inv.HAProxy == nil {
			return nil
		}
		d, err := newHAProxyDriver(inv, site, spec.State, t.VerifyTimeout)
		if err != nil {
			return nil // validated by the inventory; unreachable here
		}
		t.Driver = d
		t.Host = "haproxy"
		t.Desired = d.desired()
		t.Observe = "show stat via " + inv.HAProxy.RuntimeAPI + ": status and current sessions of " + strings.Join(d.names(), ", ")
		t.Act = d.actDescription()
	case ActionActiveMQ:
		if inv.ActiveMQ == nil {
			return nil
		}
		t.Driver = &verifyDriver{inv: inv, site: site, observe: checks.ObserveActiveMQDown}
		t.Host = "activemq"
		t.Desired = "site " + site + "'s consumers hold the top priority on every broker"
		t.Observe = "consumer advisories of " + strings.Join(inv.ActiveMQ.Queues, ", ") + " on every broker"
		t.Act = "none: the site's connectors subscribe when its services start; wait for them"
	case ActionMongoDB:
		if inv.MongoDB == nil {
			return nil
		}
		return mongoTask(t, spec, inv, site)
	}
	return &t
}

// verifyDriver only observes a layer: it holds when the layer says the
// site serves, and its action is to wait.
type verifyDriver struct {
	inv     *inventory.Inventory
	site    string
	observe func(down map[string]bool) checks.LayerObserver
}

// Observe observes the layer; a site whose loss was confirmed (env.Down)
// counts as down where it cannot be observed, rather than unknown.
func (d *verifyDriver) Observe(ctx context.Context, env TaskEnv) Observation {
	l := d.observe(env.Down)(ctx, d.inv)
	state := l.State
	if l.Site != "" {
		state += " " + l.Site
	}
	detail := l.Detail
	if len(l.Notes) > 0 {
		detail += " (" + strings.Join(l.Notes, "; ") + ")"
	}
	return Observation{State: state, Holds: l.State == checks.ServeOne && l.Site == d.site, Known: l.State != checks.ServeUnknown, Detail: detail}
}

func (d *verifyDriver) Act(context.Context, TaskEnv) error { return nil }

// OnlyWaits: verifying changes nothing.
func (d *verifyDriver) OnlyWaits(TaskEnv) bool { return true }

// haproxyDriver puts a site's servers in every inventory backend into a
// state: ready (back in load balancing), drain (no new sessions; wait until
// current sessions reach zero, the graceful path), or maint.
type haproxyDriver struct {
	client  *haproxy.Client
	site    string
	state   string
	servers map[string][]string // backend -> servers of the site
	drain   time.Duration
}

func newHAProxyDriver(inv *inventory.Inventory, site, state string, drain time.Duration) (*haproxyDriver, error) {
	c, err := haproxy.New(inv.HAProxy.RuntimeAPI, inv.HAProxy.Timeout.D())
	if err != nil {
		return nil, err
	}
	d := &haproxyDriver{client: c, site: site, state: state, servers: map[string][]string{}, drain: drain}
	for _, be := range inv.HAProxy.Backends {
		for srv, s := range be.Servers {
			if s == site {
				d.servers[be.Name] = append(d.servers[be.Name], srv)
			}
		}
	}
	return d, nil
}

func (d *haproxyDriver) names() []string {
	var out []string
	for be, srvs := range d.servers {
		for _, s := range srvs {
			out = append(out, be+"/"+s)
		}
	}
	sort.Strings(out)
	return out
}

func (d *haproxyDriver) desired() string {
	switch d.state {
	case haproxy.Drain:
		return "DRAIN with 0 sessions"
	case haproxy.Maint:
		return "MAINT"
	}
	return "ready and UP (back in load balancing, health checks passing)"
}

func (d *haproxyDriver) actDescription() string {
	var cmds []string
	for _, n := range d.names() {
		be, srv, _ := strings.Cut(n, "/")
		cmds = append(cmds, haproxy.SetStateCommand(be, srv, d.state))
	}
	s := strings.Join(cmds, "; ")
	if d.state == haproxy.Drain {
		s += "; then wait until their current sessions reach 0"
	}
	return s
}

// Observe reads show stat and checks every server of the site.
func (d *haproxyDriver) Observe(ctx context.Context, _ TaskEnv) Observation {
	rows, err := d.client.ShowStat(ctx)
	if err != nil && !haproxy.IsPartial(err) {
		return Observation{State: "unknown", Detail: err.Error()}
	}
	byName := map[string]haproxy.StatRow{}
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
		case haproxy.Ready:
			// back in load balancing AND passing its health checks: right
			// after the services started, HAProxy needs rise × inter to see
			// them, and the verdict must not be taken before that
			if st == haproxy.StateDrain || st == haproxy.StateMaint || !r.Status.Up() || r.Status.Transitional() {
				holds = false
			}
		case haproxy.Drain:
			switch {
			case st == haproxy.StateDrain && r.Scur == 0 && r.Qcur <= 0, st == haproxy.StateMaint:
			case drainedDown(r):
				// HAProxy shows DOWN, never DRAIN, for a server failing its
				// checks: with no session and no queue there is nothing to
				// wait for (the service died, the usual reason to leave)
				notes = append(notes, n+" is DOWN with 0 sessions: nothing to drain, counted as drained")
				parts[len(parts)-1] = fmt.Sprintf("%s %s (0 sessions: nothing to drain)", n, r.Status.Raw)
			default:
				holds = false
			}
		case haproxy.Maint:
			if st != haproxy.StateMaint {
				holds = false
			}
		}
	}
	if len(parts) == 0 {
		return Observation{State: "no server of site " + d.site + " in the inventory's backends", Holds: true, Known: true}
	}
	return Observation{State: strings.Join(parts, ", "), Holds: holds && known, Known: known, Detail: strings.Join(notes, "; ")}
}

// drainedDown reports a server that is DOWN (not on its way up) with no
// current session and no queued request: drained as far as traffic goes.
func drainedDown(r haproxy.StatRow) bool {
	return r.Status.State == haproxy.StateDown && !r.Status.Transitional() && r.Scur == 0 && r.Qcur <= 0
}

// Act sets the state; for drain it also waits for sessions to end.
func (d *haproxyDriver) Act(ctx context.Context, _ TaskEnv) error {
	for be, srvs := range d.servers {
		if d.state == haproxy.Drain {
			deadline := time.Now().Add(d.drain)
			res, err := d.client.Drain(ctx, be, srvs, deadline, 250*time.Millisecond)
			if err != nil {
				if res.Outcome == haproxy.DrainTimedOut {
					return fmt.Errorf("%w: backend %s: sessions did not reach 0 within %s: %v", ErrActFailed, be, d.drain, err)
				}
				return err
			}
			continue
		}
		for _, srv := range srvs {
			if err := d.client.SetState(ctx, be, srv, d.state); err != nil {
				return fmt.Errorf("%w: %v", ErrActFailed, err)
			}
		}
	}
	return nil
}
