package mongo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/internal/mongosim"
)

func TestObserveHealthyPSA(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	o := l.observe()
	if o.Took > 2*time.Second {
		t.Errorf("observation took %s", o.Took)
	}
	a, b, arb := member(t, o, "mongo-a"), member(t, o, "mongo-b"), member(t, o, "mongo-arb")
	if !a.Writable || a.State != mongo.StatePrimary || a.StateStr != "PRIMARY" || a.Term != 1 {
		t.Errorf("mongo-a: %+v", a)
	}
	if a.ElectionID != "7fffffff0000000000000001" {
		t.Errorf("electionId %q", a.ElectionID)
	}
	if el := a.LastElection; el == nil || el.Reason != "electionTimeout" || el.Term != 1 || el.TermField != "electionTerm" || el.Date.IsZero() {
		t.Errorf("last election %+v", a.LastElection)
	}
	if a.ElectionDate.IsZero() || a.Priority != 2 || a.Votes != 1 || a.ConfigVersion != 1 || a.ConfigTerm != 1 {
		t.Errorf("mongo-a config/election: %+v", a)
	}
	if b.Writable || !b.Secondary || b.State != mongo.StateSecondary || b.Priority != 1 || b.SeenPrimaryMember != "mongo-a" {
		t.Errorf("mongo-b: %+v", b)
	}
	if b.Lag == nil || time.Duration(*b.Lag) > time.Second || b.Optime == nil || b.Optime.Term != 1 {
		t.Errorf("mongo-b lag/optime: %v %+v", b.Lag, b.Optime)
	}
	if b.SyncSource != l.sim.Addr("mongo-a") {
		t.Errorf("mongo-b sync source %q", b.SyncSource)
	}
	if !arb.ArbiterOnly || arb.State != mongo.StateArbiter || arb.Lag != nil || arb.Votes != 1 || arb.Priority != 0 {
		t.Errorf("arbiter: %+v", arb)
	}
	for _, m := range []*mongo.MemberStatus{a, b, arb} {
		if !m.Observed() || m.Err != nil || len(m.Errors) > 0 || len(m.Peers) != 3 || len(m.Config) != 3 {
			t.Errorf("%s: observed %v err %v errors %v peers %d", m.Member.Name, m.Observed(), m.Err, m.Errors, len(m.Peers))
		}
		for _, p := range m.Peers {
			if p.Health != 1 || p.Member == "" {
				t.Errorf("%s sees %+v", m.Member.Name, p)
			}
		}
	}
	if v := b.Peer("mongo-a"); v == nil || v.State != mongo.StatePrimary || v.ElectionDate.IsZero() {
		t.Errorf("mongo-b's view of mongo-a: %+v", v)
	}
	if p := o.Primary(); p == nil || p.Member.Name != "mongo-a" {
		t.Errorf("primary %v", p)
	}
}

// The primary dies: the secondary is elected within about three election
// timeouts, in a newer term, for electionTimeout, and WaitPrimary sees it.
func TestKillPrimaryElectsSecondary(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := time.Now()
	l.sim.Stop("mongo-a")
	o, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-b", ExpectSite: "B", AfterTerm: 1, After: before, Timeout: 3 * labET})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(before)
	t.Logf("mongo-b elected %s after mongo-a stopped", took)
	b := member(t, o, "mongo-b")
	if b.Term != 2 || b.LastElection == nil || b.LastElection.Reason != "electionTimeout" || b.LastElection.PriorPrimary != 0 {
		t.Fatalf("mongo-b: term %d election %+v", b.Term, b.LastElection)
	}
	a := member(t, o, "mongo-a")
	if a.Reachable || a.Err == nil || a.Err.Kind != mongo.KindRefused {
		t.Fatalf("mongo-a should be refused: %+v", a.Err)
	}
	// It comes back and, with the higher priority, takes the primary back.
	if err := l.sim.Restart("mongo-a"); err != nil {
		t.Fatal(err)
	}
	o, err = l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-a", AfterTerm: 2, Timeout: 10 * labET})
	if err != nil {
		t.Fatal(err)
	}
	if el := member(t, o, "mongo-a").LastElection; el == nil || el.Reason != "priorityTakeover" {
		t.Fatalf("mongo-a came back by %+v", el)
	}
}

// Arbiter down: the primary stays; then if the primary dies, nobody is
// elected (1 of 3 votes).
func TestArbiterDownHaltsElections(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.sim.Stop("mongo-arb")
	l.waitObs(3*time.Second, "mongo-a sees the arbiter down", func(o *mongo.Observation) bool {
		v := member(t, o, "mongo-a").Peer("mongo-arb")
		return v != nil && v.Health == 0 && v.StateStr == "(not reachable/healthy)"
	})
	time.Sleep(2 * labET)
	o := l.observe()
	if p := o.Primary(); p == nil || p.Member.Name != "mongo-a" || p.Term != 1 {
		t.Fatalf("primary changed with the arbiter down: %s", o.Summary())
	}
	l.sim.Stop("mongo-a")
	time.Sleep(3 * labET)
	o = l.observe()
	b := member(t, o, "mongo-b")
	if b.State != mongo.StateSecondary || b.Writable || o.Primary() != nil {
		t.Fatalf("mongo-b should stay SECONDARY: %s", o.Summary())
	}
	_, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{AfterTerm: 1, Timeout: 500 * time.Millisecond})
	var ae *mongo.ActionError
	if !errors.As(err, &ae) || !errors.Is(err, mongo.ErrDeadline) || !strings.Contains(ae.Observed, "no member is a writable primary") {
		t.Fatalf("WaitPrimary: %v", err)
	}
}

// Primary and arbiter down: the secondary stays read-only; ForcePromote
// refuses without the operator's confirmation and works with it.
func TestPrimaryAndArbiterDownForcePromote(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.sim.Stop("mongo-arb")
	l.sim.Stop("mongo-a")
	time.Sleep(2 * labET)
	o := l.observe()
	if b := member(t, o, "mongo-b"); b.State != mongo.StateSecondary || o.Primary() != nil {
		t.Fatalf("%s", o.Summary())
	}
	err := l.insert("mongo-b", "x")
	var se mdrv.ServerError
	if !errors.As(err, &se) || !se.HasErrorCode(10107) {
		t.Fatalf("a write on the survivor: want NotWritablePrimary (10107), got %v", err)
	}

	for _, c := range []mongo.Confirm{
		{},
		{Fenced: true, TypedSite: "A", ExpectedSite: "B"},
		{Fenced: true, TypedSite: "b", ExpectedSite: "B"},
		{Fenced: false, TypedSite: "B", ExpectedSite: "B"},
		{Fenced: true, TypedSite: "A", ExpectedSite: "A"}, // not the survivor's site
	} {
		_, err := l.set.ForcePromote(t.Context(), "mongo-b", nil, c)
		var ce *mongo.ConfirmError
		if !errors.As(err, &ce) || !errors.Is(err, mongo.ErrNotConfirmed) {
			t.Fatalf("confirm %+v: want a refusal, got %v", c, err)
		}
	}
	if b := member(t, l.observe(), "mongo-b"); b.ConfigVersion != 1 {
		t.Fatalf("a refused ForcePromote changed the configuration: version %d", b.ConfigVersion)
	}

	res, err := l.set.ForcePromote(t.Context(), "mongo-b", nil, mongo.Confirm{Fenced: true, TypedSite: "B", ExpectedSite: "B"})
	if err != nil {
		t.Fatal(err)
	}
	if res.VersionAfter-res.VersionBefore < 10000 || res.TermInConfig || strings.Join(res.Removed, ",") != "mongo-a,mongo-arb" {
		t.Fatalf("result: %+v", res)
	}
	text := strings.Join(res.Warnings, "\n")
	for _, want := range []string{"rolled back", "majority-committed", "decommission", "normal (non-force) replSetReconfig"} {
		if !strings.Contains(text, want) {
			t.Errorf("warnings lack %q:\n%s", want, text)
		}
	}
	if p := res.Observation.Primary(); p == nil || p.Member.Name != "mongo-b" || p.ConfigTerm != -1 {
		t.Fatalf("after the forced reconfig: %s", res.Observation.Summary())
	}
	if err := l.insert("mongo-b", "after"); err != nil {
		t.Fatalf("write after promotion: %v", err)
	}
	// The old primary comes back to a configuration without it: REMOVED,
	// never primary.
	if err := l.sim.Restart("mongo-a"); err != nil {
		t.Fatal(err)
	}
	o = l.waitObs(5*time.Second, "mongo-a to learn it was removed", func(o *mongo.Observation) bool {
		a := member(t, o, "mongo-a")
		return a.Reachable && a.State == mongo.StateRemoved && a.StateStr == "REMOVED"
	})
	if a := member(t, o, "mongo-a"); a.Writable {
		t.Fatalf("removed member is writable: %+v", a)
	}
	// Refused while a primary exists.
	_, err = l.set.ForcePromote(t.Context(), "mongo-b", nil, mongo.Confirm{Fenced: true, TypedSite: "B", ExpectedSite: "B"})
	if !errors.Is(err, mongo.ErrPrimaryExists) {
		t.Fatalf("ForcePromote with a primary: %v", err)
	}
}

// The primary's links are cut: it steps down, the other side elects; when
// the links come back, member _id 0 (priority 2) takes back by priority
// takeover.
func TestPrimaryLinkDownAndPriorityTakeover(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.sim.Isolate("mongo-a")
	o, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-b", AfterTerm: 1, Timeout: 4 * labET})
	if err != nil {
		t.Fatal(err)
	}
	termB := member(t, o, "mongo-b").Term
	o = l.waitObs(3*labET, "mongo-a steps down", func(o *mongo.Observation) bool {
		a := member(t, o, "mongo-a")
		return a.Reachable && a.State == mongo.StateSecondary
	})
	a := member(t, o, "mongo-a")
	for _, p := range a.Peers {
		if !p.Self && p.Health != 0 {
			t.Errorf("isolated mongo-a sees %s healthy", p.Member)
		}
	}
	l.sim.Heal()
	o, err = l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-a", AfterTerm: termB, Timeout: 8 * labET})
	if err != nil {
		t.Fatal(err)
	}
	if el := member(t, o, "mongo-a").LastElection; el == nil || el.Reason != "priorityTakeover" || el.Term <= termB {
		t.Fatalf("mongo-a took back by %+v", el)
	}
}

// A planned move changes priorities, so the new primary stays after the
// step-down period.
func TestMovePrimaryStays(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	res, err := l.set.MovePrimary(t.Context(), "mongo-b", mongo.MoveOptions{CatchUp: time.Second, StepDown: 2 * time.Second, Timeout: 5 * labET})
	if err != nil {
		t.Fatal(err)
	}
	if res.From != "mongo-a" || res.To != "mongo-b" || !res.Reconfigured || res.Priority != 3 || res.Term < 2 {
		t.Fatalf("result %+v", res)
	}
	switch res.Reason {
	case "stepUpRequestSkipDryRun", "priorityTakeover":
	default:
		t.Fatalf("elected by %q", res.Reason)
	}
	time.Sleep(2*time.Second + 3*labET)
	o := l.observe()
	p := o.Primary()
	if p == nil || p.Member.Name != "mongo-b" || p.Term != res.Term || p.Priority != 3 || p.ConfigVersion != 2 {
		t.Fatalf("after the step-down period: %s (priority %v, version %v)", o.Summary(), p.Priority, p.ConfigVersion)
	}
	// Moving again is idempotent.
	again, err := l.set.MovePrimary(t.Context(), "mongo-b", mongo.MoveOptions{CatchUp: time.Second, StepDown: 2 * time.Second})
	if err != nil || !again.AlreadyPrimary || again.Reconfigured {
		t.Fatalf("second move: %+v %v", again, err)
	}
	// Invalid requests are refused before anything changes.
	if _, err := l.set.MovePrimary(t.Context(), "mongo-arb", mongo.MoveOptions{}); !errors.Is(err, mongo.ErrNotElectable) {
		t.Fatalf("move to the arbiter: %v", err)
	}
	if _, err := l.set.MovePrimary(t.Context(), "nope", mongo.MoveOptions{}); !errors.Is(err, mongo.ErrUnknownMember) {
		t.Fatalf("move to nobody: %v", err)
	}
}

// A plain replSetStepDown hands off to the secondary, but the
// higher-priority member takes the primary back once the period ends.
func TestPlainStepDownIsUndone(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	if _, err := l.admin("mongo-a", bson.D{{Key: "replSetStepDown", Value: 2}, {Key: "secondaryCatchUpPeriodSecs", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	o, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-b", AfterTerm: 1, Timeout: 2 * labET})
	if err != nil {
		t.Fatal(err)
	}
	b := member(t, o, "mongo-b")
	if b.LastElection == nil || b.LastElection.Reason != "stepUpRequestSkipDryRun" {
		t.Fatalf("hand-off election: %+v", b.LastElection)
	}
	o, err = l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-a", AfterTerm: b.Term, Timeout: 2*time.Second + 5*labET})
	if err != nil {
		t.Fatal(err)
	}
	if el := member(t, o, "mongo-a").LastElection; el.Reason != "priorityTakeover" {
		t.Fatalf("mongo-a came back by %+v", el)
	}
}

func TestTermAtElectionDecoded(t *testing.T) {
	t.Parallel()
	l := newLab(t, func(c *mongosim.Config) { c.LegacyElectionMetrics = true })
	a := member(t, l.observe(), "mongo-a")
	if el := a.LastElection; el == nil || el.TermField != "termAtElection" || el.Term != 1 || el.Reason != "electionTimeout" {
		t.Fatalf("%+v", a.LastElection)
	}
}

func TestWaitPrimaryAfterTime(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	// The primary was elected before now: no election "after now" happened.
	_, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "mongo-a", After: time.Now(), Timeout: 300 * time.Millisecond})
	var ae *mongo.ActionError
	if !errors.As(err, &ae) || !strings.Contains(ae.Observed, "no new election") || ae.Where == "" || !strings.Contains(ae.Error(), "expected a writable primary on mongo-a elected after") {
		t.Fatalf("%v", err)
	}
	// Without conditions any primary will do.
	if _, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.set.WaitPrimary(t.Context(), mongo.WaitOptions{ExpectMember: "nope"}); !errors.Is(err, mongo.ErrUnknownMember) {
		t.Fatal(err)
	}
}

// A move to a member that is down changes nothing.
func TestMovePrimaryRefusesDownTarget(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.sim.Stop("mongo-b")
	_, err := l.set.MovePrimary(t.Context(), "mongo-b", mongo.MoveOptions{CatchUp: time.Second, StepDown: 2 * time.Second})
	var ae *mongo.ActionError
	if !errors.As(err, &ae) || !errors.Is(err, mongo.ErrNotElectable) || !strings.Contains(ae.Observed, "not a healthy secondary") {
		t.Fatalf("%v", err)
	}
	if a := member(t, l.observe(), "mongo-a"); !a.Writable || a.ConfigVersion != 1 || a.Term != 1 {
		t.Fatalf("something changed: %+v", a)
	}
}
