package runbooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/runbooks/event"
)

// fakeClock is a clock the test moves by hand (After fires at once: the
// engine's polls do not wait).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingRunner counts the commands run through it.
type countingRunner struct {
	n    atomic.Int64
	next services.HostRunner
}

func (c *countingRunner) Run(ctx context.Context, host, cmd string) (remote.Result, error) {
	c.n.Add(1)
	return c.next.Run(ctx, host, cmd)
}

func (l *lab) operation(t *testing.T, runbook, site string, clock Clock) (*Operation, *recorder) {
	t.Helper()
	rec := &recorder{}
	return &Operation{Inventory: l.inv, Catalog: l.cat, Runbook: runbook, Site: site, Mode: Execute,
		Runner: l.pool, Local: remote.NewLocalHost(), Sink: rec, JournalDir: t.TempDir(), Clock: clock, Layers: []layer.Layer{}}, rec
}

func (l *lab) activate(site string) {
	p := strings.ToLower(site)
	for _, s := range []string{"ccm", "comms", "mre", "chat"} {
		l.svc.Start(p + "-" + s)
	}
}

// Operator 1 waits at the prompt of takeover B while operator 2 makes A
// active: the run must look again before acting, and be refused.
func TestOperationObservesAgainAfterASlowConfirmation(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	clock := &fakeClock{now: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	op, rec := l.operation(t, "takeover", "B", clock)
	op.Confirm = func(ctx context.Context, p *Plan, before []services.SiteStatus) error {
		l.activate("A") // the other operator's takeover of A, while this prompt waits
		clock.advance(30 * time.Second)
		return nil
	}
	_, err := op.Run(t.Context())
	var ref *RefusedError
	if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "still active") {
		t.Fatalf("err %v, want a refusal: site A became active during the prompt", err)
	}
	for _, s := range []string{"b-comms", "b-mre", "b-chat"} {
		if l.svc.Running(s) {
			t.Errorf("%s started although A became active before the first act", s)
		}
	}
	again := false
	for _, e := range rec.evs {
		again = again || strings.Contains(e.Message, "observing again")
	}
	if !again {
		t.Error("no second observation after the confirmation")
	}
}

// A quick confirmation is not followed by a second observation.
func TestOperationQuickConfirmationObservesOnce(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	clock := &fakeClock{now: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	op, rec := l.operation(t, "takeover", "B", clock)
	op.Confirm = func(context.Context, *Plan, []services.SiteStatus) error { return nil }
	if _, err := op.Run(t.Context()); err != nil {
		t.Fatalf("takeover B: %v", err)
	}
	for _, e := range rec.evs {
		if strings.Contains(e.Message, "observing again") {
			t.Fatal("observed again after an instant confirmation")
		}
	}
}

// The lock is taken before anything is observed.
func TestOperationLocksBeforeObserving(t *testing.T) {
	l := newLab(t)
	cr := &countingRunner{next: l.pool}
	op, _ := l.operation(t, "takeover", "B", nil)
	op.Runner = cr
	var before int64 = -1
	op.Lock = func(ctx context.Context, runID string) (func() error, []LockMiss, error) {
		before = cr.n.Load()
		return func() error { return nil }, nil, nil
	}
	if _, err := op.Run(t.Context()); err != nil {
		t.Fatalf("takeover B: %v", err)
	}
	if before != 0 {
		t.Fatalf("%d commands ran before the lock was taken, want 0", before)
	}
}

// A lock host that did not answer is acceptable only in a disaster
// takeover whose lost site holds it; here nothing is lost: refused.
func TestOperationRefusesAMissedLockCopy(t *testing.T) {
	l := newLab(t)
	op, _ := l.operation(t, "takeover", "B", nil)
	op.Lock = func(ctx context.Context, runID string) (func() error, []LockMiss, error) {
		return func() error { return nil }, []LockMiss{{Host: "a-app", Site: "A", Err: errors.New("dial tcp: i/o timeout")}}, nil
	}
	_, err := op.Run(t.Context())
	if !IsRefused(err) || !strings.Contains(err.Error(), "run lock on a-app") {
		t.Fatalf("err %v, want a refusal naming the lock copy", err)
	}
	if l.svc.Running("b-chat") {
		t.Error("a run without the deployment lock started b-chat")
	}
}

// Renouncing the only active site would leave no site active: refused,
// unless forced (journaled with the reason).
func TestRenounceRefusedWhenNoSiteWouldServe(t *testing.T) {
	l := newLab(t)
	l.activate("A")
	l.svc.Start("b-ccm")
	op, _ := l.operation(t, "renounce", "A", nil)
	_, err := op.Run(t.Context())
	if !IsRefused(err) || !strings.Contains(err.Error(), "no site would be active") || !strings.Contains(err.Error(), "sitectl switchover --site B") {
		t.Fatalf("err %v, want a refusal naming the switchover", err)
	}
	if !l.svc.Running("a-chat") {
		t.Fatal("a refused renounce stopped a-chat")
	}
	op, rec := l.operation(t, "renounce", "A", nil)
	op.Force, op.Reason = true, "test: stop A on purpose"
	if _, err := op.Run(t.Context()); err == nil || IsRefused(err) {
		// the verdict after says nobody serves: not ok, but it ran
		t.Logf("forced renounce: %v", err)
	}
	if l.svc.Running("a-chat") {
		t.Error("the forced renounce did not stop a-chat")
	}
	forced := false
	for _, e := range rec.evs {
		forced = forced || e.Kind == event.Message && strings.Contains(e.Message, "--force overrides a refusal") && strings.Contains(e.Message, "test: stop A on purpose")
	}
	if !forced {
		t.Error("the override and its reason were not journaled")
	}
}

// A renounce of a site that already does not serve changes nothing and is
// not refused.
func TestRenounceOfAPassiveSiteIsNotRefused(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	op, _ := l.operation(t, "renounce", "A", nil)
	if _, err := op.Run(t.Context()); IsRefused(err) {
		t.Fatalf("renounce of a passive site refused: %v", err)
	}
}
