package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// Layer is the MongoDB layer: which site holds the writable primary (its
// verdict, with the seed 003 scenario the replica set is in), what the
// members and the arbiter of the other sites say of a site (heartbeats: its
// evidence), and the runbook steps that wait for a primary, move it, or
// (confirmed by the operator) force its promotion.
type Layer struct{}

var (
	_ layer.Layer  = Layer{}
	_ layer.Dialer = Layer{}
)

// Addresses are the members' (at least a second to connect).
func (Layer) Addresses(inv *inventory.Inventory) ([]string, time.Duration) {
	if inv == nil || inv.MongoDB == nil {
		return nil, 0
	}
	var out []string
	for _, m := range inv.MongoDB.Members {
		out = append(out, m.Address)
	}
	return out, max(inv.MongoDB.Timeout.D(), time.Second)
}

// Name is "mongodb".
func (Layer) Name() string { return layer.LayerMongoDB }

// In reports whether the inventory has a mongodb section.
func (Layer) In(inv *inventory.Inventory) bool { return inv != nil && inv.MongoDB != nil }

// Observe loads the credentials the inventory names and observes every
// member once (each bounded by mongodb.timeout).
func (Layer) Observe(ctx context.Context, inv *inventory.Inventory) layer.Observed {
	o := &observed{inv: inv}
	if inv == nil || inv.MongoDB == nil {
		return o
	}
	set, err := mongo.NewSet(inv.MongoDB)
	if err != nil {
		o.credErr = err
		return o
	}
	o.obs = set.Observe(ctx)
	return o
}

type observed struct {
	inv     *inventory.Inventory
	obs     *mongo.Observation
	credErr error // the credentials the inventory names could not be read
}

// Verdict is Judge's (confirmed losses change nothing: the members say
// which is primary).
func (o *observed) Verdict(map[string]bool) layer.Verdict {
	return verdictOf(o.inv, o.obs, o.credErr)
}

// Evidence is SiteEvidence; nothing when the set was not observed.
func (o *observed) Evidence(site string) []layer.Evidence {
	if o.obs == nil {
		return nil
	}
	return SiteEvidence(o.obs, site)
}

// Observers are the members (the arbiter too) outside site, when site has
// a member.
func (Layer) Observers(inv *inventory.Inventory, site string) []string {
	if inv == nil || inv.MongoDB == nil {
		return nil
	}
	has := false
	for _, m := range inv.MongoDB.Members {
		has = has || m.Site == site
	}
	var out []string
	for _, m := range inv.MongoDB.Members {
		if has && m.Site != site {
			out = append(out, "mongodb "+m.Name)
		}
	}
	return out
}

// Step waits for a writable primary (elected after the run started unless
// one already holds), or moves the primary to the site (mode move).
func (Layer) Step(inv *inventory.Inventory, site string, spec layer.StepSpec) (layer.Step, error) {
	if inv == nil || inv.MongoDB == nil {
		return layer.Step{}, nil
	}
	st := layer.Step{Host: "mongodb", Observe: "hello, replSetGetStatus and replSetGetConfig on every member"}
	expect := ""
	if inv.MongoDB.PrimaryFollowsActive {
		expect = site
	}
	if spec.Mode == "move" {
		target := ""
		for _, m := range inv.MongoDB.Members {
			if m.Site == site && !m.Arbiter && target == "" {
				target = m.Name
			}
		}
		d := newMongoDriver(inv, site)
		d.move, d.expectSite = target, site
		st.Driver = d
		st.Desired = "primary " + target + " on site " + site
		st.Act = fmt.Sprintf("replSetReconfig on the primary raising %s's priority above the others, replSetStepDown with catch-up, wait for %s to be elected (a plain step-down would be undone by priority takeover)", target, target)
		return st, nil
	}
	d := newMongoDriver(inv, site)
	d.expectSite = expect
	st.Driver = d
	if expect != "" {
		st.Desired = "a writable primary on site " + site
	} else {
		st.Desired = "a writable primary"
	}
	st.Act = "none: wait for the replica set to elect a primary (term or election date after the run started)"
	return st, nil
}

// ForceGrace is how long a takeover with --force-promote-mongo still waits
// for a normal election before it forces the promotion: MongoDB's election
// timeout (10 s) plus a heartbeat. If a primary appears meanwhile, nothing
// is forced.
const ForceGrace = 12 * time.Second

// mongoDriver observes the replica set and waits for, moves or (with an
// explicit layer.ForcePromotion) force-promotes its primary.
type mongoDriver struct {
	inv        *inventory.Inventory
	set        func() (*mongo.Set, error) // once: see replicaSet
	site       string
	expectSite string
	move       string             // member to make primary (mode move)
	actObs     *layer.Observation // what the last wait ended on
}

// newMongoDriver builds the driver of a task; the replica set (and its
// credentials) is read once, when the driver is first used.
func newMongoDriver(inv *inventory.Inventory, site string) *mongoDriver {
	return &mongoDriver{inv: inv, site: site, set: sync.OnceValues(func() (*mongo.Set, error) { return mongo.NewSet(inv.MongoDB) })}
}

// replicaSet is the set to talk to, built (credentials read) when the
// driver is first used, not when the plan is compiled: a plan, offline or
// not, reads no secret. A credentials problem is its error every time.
func (d *mongoDriver) replicaSet() (*mongo.Set, error) {
	if d.set == nil {
		return nil, errors.New("the inventory has no mongodb section")
	}
	return d.set()
}

// forced is the forced promotion the run allows this task: one of this
// site's member, when the task waits for a primary (not a planned move).
func (d *mongoDriver) forced(env layer.Env) *layer.ForcePromotion {
	if fp := env.Force; fp != nil && d.move == "" && fp.Site == d.site {
		return fp
	}
	return nil
}

// ActObservation is the observation WaitPrimary ended on (mode wait).
func (d *mongoDriver) ActObservation() (layer.Observation, bool) {
	if d.actObs == nil {
		return layer.Observation{}, false
	}
	return *d.actObs, true
}

// OnlyWaits: waiting for an election changes nothing; a move or a forced
// promotion does.
func (d *mongoDriver) OnlyWaits(env layer.Env) bool { return d.move == "" && d.forced(env) == nil }

func (d *mongoDriver) Observe(ctx context.Context, _ layer.Env) layer.Observation {
	set, err := d.replicaSet()
	if err != nil {
		return layer.Observation{State: "unknown", Detail: "MongoDB not observed: " + err.Error()}
	}
	return d.observation(set.Observe(ctx))
}

// observation judges one observation of the set.
func (d *mongoDriver) observation(obs *mongo.Observation) layer.Observation {
	p := obs.Primary()
	if p == nil {
		sc := Classify(obs)
		return layer.Observation{State: "no writable primary", Known: true, Detail: sc.String()}
	}
	state := fmt.Sprintf("primary %s on site %s (term %d)", p.Member.Name, p.Member.Site, p.Term)
	holds := true
	switch {
	case d.move != "" && p.Member.Name != d.move:
		holds = false
	case d.expectSite != "" && p.Member.Site != d.expectSite:
		holds = false
	}
	o := layer.Observation{State: state, Holds: holds, Known: true}
	if p.LastElection != nil {
		o.Reached = p.LastElection.Date
	}
	return o
}

func (d *mongoDriver) Act(ctx context.Context, env layer.Env) error {
	force := d.forced(env)
	set, err := d.replicaSet()
	if err != nil {
		return err
	}
	if d.move != "" {
		_, err := set.MovePrimary(ctx, d.move, mongo.MoveOptions{})
		var ae *mongo.ActionError
		if errors.As(err, &ae) {
			return fmt.Errorf("%w: %v", layer.ErrActFailed, err)
		}
		return err
	}
	after := env.Started
	if after.IsZero() {
		after = time.Now()
	}
	w := mongo.WaitOptions{ExpectSite: d.expectSite, After: after}
	if dl, ok := ctx.Deadline(); ok {
		w.Timeout = time.Until(dl)
	}
	if force != nil && (w.Timeout == 0 || w.Timeout > ForceGrace) {
		// the operator asked for the promotion: give a real election one
		// election timeout to happen, not the whole step deadline
		w.Timeout = ForceGrace
	}
	d.actObs = nil
	obs, err := set.WaitPrimary(ctx, w)
	if err == nil {
		if obs != nil {
			o := d.observation(obs)
			d.actObs = &o
		}
		return nil
	}
	if force != nil && obs != nil && obs.Primary() == nil {
		return d.forcePromote(ctx, set, obs, force, env.Warn)
	}
	if obs != nil {
		sc := Classify(obs)
		return fmt.Errorf("%w: %v; %s", layer.ErrActFailed, err, sc.String())
	}
	return err
}

// forcePromote runs the documented forced reconfig on the site's surviving
// member, keeping every other member that still answers.
func (d *mongoDriver) forcePromote(ctx context.Context, set *mongo.Set, obs *mongo.Observation, force *layer.ForcePromotion, warn func([]string)) error {
	var survivor string
	var keep, removed []string
	for _, m := range obs.Members {
		switch {
		case m.Member.Site == force.Site && !m.Member.Arbiter && survivor == "" && m.Reachable:
			survivor = m.Member.Name
		case m.Reachable:
			keep = append(keep, m.Member.Name)
		default:
			removed = append(removed, m.Member.Name)
		}
	}
	if survivor == "" {
		return fmt.Errorf("%w: forced promotion: no reachable data-bearing member on site %s", layer.ErrActFailed, force.Site)
	}
	if warn != nil {
		warn(mongo.ForcePromoteWarnings(survivor, keep, removed))
	}
	fenced := force.FencedSite != "" && force.FencedSite != force.Site
	res, err := set.ForcePromote(ctx, survivor, keep, mongo.Confirm{Fenced: fenced, TypedSite: force.TypedSite, ExpectedSite: force.Site})
	if err != nil {
		return fmt.Errorf("%w: %v", layer.ErrActFailed, err)
	}
	if warn != nil {
		warn([]string{fmt.Sprintf("forced reconfig done: %s is primary (config version %d -> %d); removed: %s", res.Survivor, res.VersionBefore, res.VersionAfter, strings.Join(res.Removed, ", "))})
	}
	return nil
}
