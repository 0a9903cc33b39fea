package layer

import (
	"fmt"
	"time"
)

// Layer names.
const (
	LayerServices = "services"
	LayerMongoDB  = "mongodb"
	LayerActiveMQ = "activemq"
	LayerHAProxy  = "haproxy"
)

// Serving states of a layer or of the whole deployment.
const (
	ServeOne   = "one"   // exactly one site serves (Site says which)
	ServeNone  = "none"  // no site serves
	ServeSplit = "split" // more than one site serves
	// ServePartial: one site (Site) gets part of the traffic and no site
	// gets the rest (some HAProxy backends have no server, or some layers
	// say none); no part goes to two sites. It is not healthy, and it is
	// not a split either: nothing is active twice.
	ServePartial = "partial"
	ServeUnknown = "unknown" // the layer could not be observed
)

// Verdict is one layer's answer to "which site serves traffic?".
type Verdict struct {
	Layer  string   `json:"layer"`
	State  string   `json:"state"`          // one, none, split, unknown
	Site   string   `json:"site,omitempty"` // the serving site when State is one
	Sites  []string `json:"sites,omitempty"`
	Detail string   `json:"detail"`        // what was observed, in a sentence
	Fix    string   `json:"fix,omitempty"` // the exact command that would fix it
	Rows   []Row    `json:"rows,omitempty"`
	Notes  []string `json:"notes,omitempty"` // scenario recognised, warnings
	// Unverified: the site(s) this layer names rest on something that could
	// not be observed (a bridge to a broker that did not answer: its
	// consumers there are assumed, and a dead broker's bridge lingers until
	// its inactivity timeout). Combine never calls SPLIT on such a vote
	// alone: when it is the only disagreement, the verdict is UNKNOWN.
	Unverified bool `json:"unverified,omitempty"`
	// Neutral: the layer is healthy and does not care which site serves
	// (a writable MongoDB primary when mongodb.primary_follows_active is
	// off). Combine does not count its site.
	Neutral bool `json:"neutral,omitempty"`
	// Access is set when the layer could not be observed because of an
	// access problem (credentials missing or refused): what to fix.
	Access string `json:"access,omitempty"`
	// Evidence is what this layer says of each site's liveness (site
	// loss): member heartbeats, health checks, bridges.
	Evidence []Evidence `json:"evidence,omitempty"`
}

// Row is one line of a layer's table (a member, a broker queue, a server).
type Row struct {
	Site   string `json:"site"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
	// Brief is the few facts an operator scans for, short enough for a
	// column of a narrow screen (the board): "prio 2, health 1, lag 0s",
	// "active, 3 sess", "up, top A@10 local". Empty when Detail is short.
	Brief string `json:"brief,omitempty"`
	// Values are the row's numbers for metrics (sitectl exporter):
	// mongodb "term", "lag_seconds", "priority"; activemq "priority" (of
	// the top consumer, whose site is State); haproxy "sessions".
	Values map[string]float64 `json:"-"`
}

// Short is Brief, or Detail when there is no Brief.
func (r Row) Short() string {
	if r.Brief != "" {
		return r.Brief
	}
	return r.Detail
}

// Saw is what one observer saw of a site.
type Saw string

const (
	// SawAlive: something of the site answered the observer (a member
	// heartbeat, a health check, a bridge, a TCP connect, an SSH session).
	SawAlive Saw = "alive"
	// SawDown: the observer tried and got no answer at the network level
	// (timeout, no route, refused, reset), or reports the site's parts
	// down by its own checks.
	SawDown Saw = "down"
	// SawNoAnswer: the observer itself could not be asked, or answered
	// nothing usable (it is unreachable, slow, or has no view of the site).
	SawNoAnswer Saw = "no answer"
	// SawAccess: an access problem (host key, authentication, missing
	// credentials) kept this observer from looking: never "down".
	SawAccess Saw = "access problem"
)

// Evidence is one dated observation of a site by one observer.
type Evidence struct {
	Site     string `json:"site"`     // the site it is about
	Observer string `json:"observer"` // who looked: "operator", "mongodb mongo-b", "haproxy", "activemq amq-b", "probe from b-app"
	// Independent is false for the operator's own path: the operator
	// alone never declares a site down.
	Independent bool `json:"independent"`
	// Weak: this observer's "alive" may be stale for a while after a loss
	// (a broker keeps a dead bridge until its inactivity timeout); it does
	// not hold off a loss that the quorum of other observers confirms.
	Weak   bool      `json:"weak,omitempty"`
	Saw    Saw       `json:"saw"`
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
	// For is how long the observer has seen it so, when it says
	// (HAProxy's lastchg, the age of the last heartbeat); 0 when unknown.
	For time.Duration `json:"for_ns,omitempty"`
}

// String is the evidence in one line: "arbiter: no heartbeat for 8s".
func (e Evidence) String() string {
	s := fmt.Sprintf("%s: %s", e.Observer, e.Saw)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.For > 0 {
		s += fmt.Sprintf(" (for %s)", e.For.Round(100*time.Millisecond))
	}
	return s
}

// HostLabel names why a host does not answer, for tables and the board:
// UNREACHABLE (the network), ACCESS PROBLEM (never a loss), or NO ANSWER
// (not in time).
func (s Saw) HostLabel() string {
	switch s {
	case SawAccess:
		return "ACCESS PROBLEM"
	case SawDown:
		return "UNREACHABLE"
	}
	return "NO ANSWER"
}

// SiteState is the loss verdict of one site.
type SiteState string

const (
	// SiteReachable: the operator reaches the site and observes it directly.
	SiteReachable SiteState = "reachable"
	// SiteDown: the operator cannot reach it and at least the quorum of
	// independent observers confirm it: a takeover may proceed.
	SiteDown SiteState = "DOWN"
	// SiteUnreachableHere: the operator cannot reach it, but other
	// observers see it alive: it may be serving.
	SiteUnreachableHere SiteState = "UNREACHABLE FROM HERE"
	// SiteUnknown: not enough evidence either way, or an access problem.
	SiteUnknown SiteState = "UNKNOWN"
)

// SiteVerdict is a site's loss verdict with the evidence behind it.
type SiteVerdict struct {
	Site    string    `json:"site"`
	State   SiteState `json:"state"`
	Summary string    `json:"summary"`
	// Confirmed is how many independent observers saw the site down;
	// Quorum how many are needed (inventory failover.loss_quorum, or all
	// the configured observers if there are fewer).
	Confirmed int        `json:"confirmed"`
	Quorum    int        `json:"quorum"`
	Evidence  []Evidence `json:"evidence"`
}

// Down reports whether the site's loss is confirmed.
func (v *SiteVerdict) Down() bool { return v != nil && v.State == SiteDown }

// Lines is the evidence, one line each, operator first.
func (v *SiteVerdict) Lines() []string {
	if v == nil {
		return nil
	}
	out := make([]string, 0, len(v.Evidence))
	for _, e := range v.Evidence {
		out = append(out, e.String())
	}
	return out
}
