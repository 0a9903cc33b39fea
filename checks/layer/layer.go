// Package layer is the contract between a layer of the deployment (MongoDB,
// ActiveMQ, HAProxy: one package each, checks/mongodb, checks/activemq,
// checks/haproxy) and the code that uses it. checks observes and judges a
// deployment through Layer and Observed; the runbooks engine drives a
// layer's steps through Driver. The package holds types only and imports
// nothing of sitectl but inventory, so a layer's package needs neither
// checks nor runbooks, and both of them may import every layer.
package layer

import (
	"context"
	"errors"
	"time"

	"github.com/sitectl/sitectl/inventory"
)

// Layer is one layer of a deployment besides its services: the one home of
// what sitectl knows about it.
type Layer interface {
	// Name is the layer's name in verdicts and runbooks: LayerMongoDB,
	// LayerActiveMQ, LayerHAProxy.
	Name() string
	// In reports whether the inventory describes the layer.
	In(inv *inventory.Inventory) bool
	// Observe reads the layer once, read-only, every wait bounded by the
	// inventory's timeouts. It does not fail: what it could not read makes
	// its verdict unknown and its evidence "no answer" (or "access
	// problem"), never healthy and never down.
	Observe(ctx context.Context, inv *inventory.Inventory) Observed
	// Observers names the layer's independent observers of site's loss
	// (members and brokers of the other sites, HAProxy's health checks):
	// the quorum counts them, answering or not.
	Observers(inv *inventory.Inventory, site string) []string
	// Step describes and builds the driver of a runbook step of this
	// layer for site. It does no I/O and reads no secret: its driver
	// builds its clients when first used.
	Step(inv *inventory.Inventory, site string, spec StepSpec) (Step, error)
}

// Observed is one observation of a layer.
type Observed interface {
	// Verdict says which site the layer serves. down are the sites whose
	// loss is confirmed (by independent observers): where the layer cannot
	// observe their parts, it may count them as down rather than unknown.
	Verdict(down map[string]bool) Verdict
	// Evidence is what the layer saw of site's liveness.
	Evidence(site string) []Evidence
}

// Fencer is a Layer that can isolate a site whose loss is confirmed, so
// that a site coming back gets no traffic beside the other (HAProxy: its
// servers in MAINT) until it is renounced.
type Fencer interface {
	// Fence isolates site in this layer. action names it ("haproxy
	// maint"); done says what was done, failed what could not be done and
	// why; both are empty when the layer has nothing of the site.
	Fence(ctx context.Context, inv *inventory.Inventory, site string) (action, done, failed string)
}

// Dialer is a Layer whose observation dials TCP endpoints of its own
// (MongoDB members, brokers): a run connects to them all at once while it
// takes its lock (checks.Warm), so that its observation finds the ones that
// do not answer already known.
type Dialer interface {
	// Addresses are the host:port the layer dials, and the connect
	// deadline it uses.
	Addresses(inv *inventory.Inventory) ([]string, time.Duration)
}

// StepSpec is what a runbook step asks of a layer.
type StepSpec struct {
	State   string        // haproxy: ready, drain, maint
	Mode    string        // mongodb: "" (wait for a primary) or "move"
	Timeout time.Duration // the step's verification deadline (a drain waits that long)
}

// Step is a layer step as the plan shows it, and the driver that runs it.
// A zero Step (nil Driver) means the layer has nothing for that site.
type Step struct {
	Driver  Driver
	Host    string // where it acts, for the plan: "mongodb", "haproxy"
	Desired string
	Observe string
	Act     string
}

// Driver observes and changes a part of the deployment that is not a
// service on a host. The runbooks engine runs it with the same observe /
// skip / act / verify discipline as shell tasks.
type Driver interface {
	// Observe reads the current state, read-only.
	Observe(ctx context.Context, env Env) Observation
	// Act changes the state. An error wrapping ErrActFailed is a known
	// failure (the state is known wrong); any other error leaves the outcome
	// to verification, and unknown if verification cannot tell.
	Act(ctx context.Context, env Env) error
}

// ActObserver is a Driver whose Act ends by observing the state it waited
// for. ActObservation returns that observation, and false when the last Act
// did not end with one (it failed, or it only sent a command).
type ActObserver interface {
	ActObservation() (Observation, bool)
}

// Waiter is a Driver whose Act changes nothing: it only waits for the
// deployment to reach the state by itself (an election, consumers
// arriving). Its step.act events say Action "wait", so that the run's
// timing counts the whole step, its first observation included, as the
// deployment's wait.
type Waiter interface {
	OnlyWaits(env Env) bool
}

// Observation is what a Driver saw.
type Observation struct {
	State  string // short: "primary on B (term 7)", "site_b UP"
	Holds  bool   // the desired state holds
	Known  bool   // the state could be observed
	Detail string
	// Reached is when the deployment reached the state, by its own clock,
	// when the driver can tell (a MongoDB primary's election date); zero
	// when it cannot. It only informs the run's timing.
	Reached time.Time
}

// ErrActFailed marks a driver action that is known to have failed.
var ErrActFailed = errors.New("action failed")

// RunEnv is what a run knows that its compiled plan cannot. The runbooks
// Operation gives it to its engine, and the engine hands each driver call
// its task's Env, so a plan stays exactly what the compiler made.
type RunEnv struct {
	// Down are the sites whose loss was confirmed before the run acted:
	// their parts that cannot be observed count as down, not unknown.
	Down map[string]bool
	// Started is when the run began: an election under way since then
	// counts as the one the run waits for.
	Started time.Time
	// Force is the forced MongoDB promotion the operator confirmed, if any.
	Force *ForcePromotion
}

// Env is the run's environment as one task's driver sees it.
type Env struct {
	RunEnv
	// Warn records warnings about the task (journaled and rendered as
	// message events of the task).
	Warn func(lines []string)
}

// ForcePromotion is the operator's explicit request to promote the surviving
// MongoDB member of site Site by forced reconfig when the replica set has
// lost its majority (PSA with the primary and the arbiter down). It is only
// ever built from its own flag, the typed site name and the fencing
// statement; --yes never fills it.
type ForcePromotion struct {
	Site       string // the site whose member becomes primary
	TypedSite  string // what the operator typed
	FencedSite string // the site the operator states is fenced (powered off or isolated)
}
