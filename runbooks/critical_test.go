package runbooks

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

func TestCriticalPath(t *testing.T) {
	p := examplePlan(t, "takeover", "B")
	t0 := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	var evs []event.Event
	add := func(kind event.Kind, step string, at int, dur time.Duration, out event.Outcome) {
		task := ""
		if step != "" {
			task = step + "/x"
		}
		evs = append(evs, event.Event{Time: ms(at), Kind: kind, Task: task, Step: step, Duration: dur, Outcome: out})
	}
	add(event.RunStart, "", 0, 0, "")
	add(event.StepStart, "wait-mongodb", 1000, 0, "") // a pure wait: no act
	add(event.StepStart, "start-ccm", 1000, 0, "")
	add(event.StepEnd, "start-ccm", 1100, 0, event.Skipped)
	add(event.StepStart, "start-comms", 1000, 0, "")
	add(event.StepAct, "start-comms", 1500, 200*time.Millisecond, "")
	add(event.StepEnd, "start-comms", 2000, 0, event.OK) // 1300 → 2000
	add(event.StepStart, "start-mre", 2100, 0, "")
	add(event.StepAct, "start-mre", 2500, 300*time.Millisecond, "")
	add(event.StepEnd, "start-mre", 2600, 0, event.OK) // 2200 → 2600
	add(event.StepEnd, "wait-mongodb", 9000, 0, event.OK)
	add(event.StepStart, "start-chat", 9100, 0, "")
	add(event.StepAct, "start-chat", 9400, 200*time.Millisecond, "")
	add(event.StepEnd, "start-chat", 9500, 0, event.OK) // 9200 → 9500
	add(event.StepStart, "ready-haproxy", 9600, 0, "")
	add(event.StepAct, "ready-haproxy", 9700, 0, "")
	add(event.StepEnd, "ready-haproxy", 10300, 0, event.OK) // 9700 → 10300
	add(event.StepStart, "verify-activemq", 9600, 0, "")
	add(event.StepEnd, "verify-activemq", 15000, 0, event.OK) // 5400
	add(event.RunEnd, "", 16000, 0, event.OK)
	r := CriticalPath(journal.Run{Events: evs, Started: t0, Ended: ms(16000)}, p)

	want := map[string]time.Duration{"wait-mongodb": 8 * time.Second, "start-ccm": 0, "start-comms": 700 * time.Millisecond,
		"start-mre": 400 * time.Millisecond, "start-chat": 300 * time.Millisecond, "ready-haproxy": 600 * time.Millisecond, "verify-activemq": 5400 * time.Millisecond}
	for step, d := range want {
		if r.StepCost[step] != d {
			t.Errorf("%s costs %s, want %s", step, r.StepCost[step], d)
		}
	}
	if r.Critical != 13700*time.Millisecond {
		t.Errorf("critical path %s, want 13.7s", r.Critical)
	}
	if want := []string{"wait-mongodb", "start-chat", "verify-activemq"}; !slices.Equal(r.Path, want) {
		t.Errorf("path %v, want %v", r.Path, want)
	}
	if r.Span != 16*time.Second || r.Before != time.Second || r.After != time.Second || r.Overhead() != 2300*time.Millisecond {
		t.Errorf("span %s before %s after %s overhead %s", r.Span, r.Before, r.After, r.Overhead())
	}

	// when the starts are the slow part, the path goes through them
	slow := slices.Clone(evs)
	for i, e := range slow {
		if e.Step == "start-mre" && e.Kind == event.StepEnd {
			slow[i].Time = ms(12000) // 2200 → 12000
		}
	}
	r = CriticalPath(journal.Run{Events: slow, Started: t0, Ended: ms(16000)}, p)
	if want := []string{"start-comms", "start-mre", "start-chat", "verify-activemq"}; !slices.Equal(r.Path, want) {
		t.Errorf("slow mre: path %v, want %v", r.Path, want)
	}
	if want := 700*time.Millisecond + 9800*time.Millisecond + 300*time.Millisecond + 5400*time.Millisecond; r.Critical != want {
		t.Errorf("slow mre: critical %s, want %s", r.Critical, want)
	}

	// The election the wait observed was under way before the step could
	// start (the site was lost before the run): from the run's start to the
	// election's date is the deployment's, not sitectl's.
	for _, c := range []struct {
		name    string
		reached time.Time
		want    time.Duration
	}{
		{"elected during the preflight wait", ms(8500), 8500 * time.Millisecond},
		{"elected before the step started: no less than its wait", ms(500), 8 * time.Second},
		{"elected before the run", t0.Add(-time.Minute), 8 * time.Second},
		{"a clock ahead of ours stops at the verification", ms(60000), 9 * time.Second},
	} {
		withDate := slices.Clone(evs)
		withDate = append(withDate, event.Event{Time: ms(8999), Kind: event.StepVerify, Task: "wait-mongodb/x", Step: "wait-mongodb", Outcome: event.OK, Reached: c.reached})
		r = CriticalPath(journal.Run{Events: withDate, Started: t0, Ended: ms(16000)}, p)
		if r.StepCost["wait-mongodb"] != c.want {
			t.Errorf("%s: wait-mongodb costs %s, want %s", c.name, r.StepCost["wait-mongodb"], c.want)
		}
	}
	// A driver that only waits says so on its act event: its first
	// observation is part of the wait; a real action starts the clock.
	for _, c := range []struct {
		action string
		want   time.Duration
	}{{ActionWait, 5400 * time.Millisecond}, {"verify", 4900 * time.Millisecond}} {
		acted := slices.Clone(evs)
		acted = append(acted, event.Event{Time: ms(10100), Kind: event.StepAct, Task: "verify-activemq/x", Step: "verify-activemq", Action: c.action})
		if r = CriticalPath(journal.Run{Events: acted, Started: t0, Ended: ms(16000)}, p); r.StepCost["verify-activemq"] != c.want {
			t.Errorf("act %q: verify-activemq costs %s, want %s", c.action, r.StepCost["verify-activemq"], c.want)
		}
	}
	// A step with a predecessor does not reach back to the run's start.
	withDate := slices.Clone(evs)
	withDate = append(withDate, event.Event{Time: ms(9499), Kind: event.StepVerify, Task: "start-chat/x", Step: "start-chat", Outcome: event.OK, Reached: ms(9450)})
	if r = CriticalPath(journal.Run{Events: withDate, Started: t0, Ended: ms(16000)}, p); r.StepCost["start-chat"] != 300*time.Millisecond {
		t.Errorf("start-chat costs %s, want 300ms", r.StepCost["start-chat"])
	}
}

type slowDriver struct {
	mu    sync.Mutex
	acted bool
	delay time.Duration
}

func (d *slowDriver) Observe(context.Context, TaskEnv) Observation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Observation{State: map[bool]string{true: "done", false: "not yet"}[d.acted], Holds: d.acted, Known: true}
}

func (d *slowDriver) Act(ctx context.Context, _ TaskEnv) error {
	time.Sleep(d.delay)
	d.mu.Lock()
	d.acted = true
	d.mu.Unlock()
	return nil
}

// The act event of a layer driver carries how long the action took, so the
// journal (and CriticalPath) can tell when it began.
func TestDriverActEventHasItsDuration(t *testing.T) {
	drv := &slowDriver{delay: 150 * time.Millisecond}
	step := &Step{Name: "slow"}
	task := &Task{ID: "slow/x", Step: step, Action: "custom", Desired: "done", Driver: drv, Layer: "test",
		CommandTimeout: time.Second, VerifyTimeout: time.Second}
	step.Tasks = []*Task{task}
	rec := &recorder{}
	(&Engine{Sink: &event.Stamper{RunID: "r", Next: rec}, Poll: 10 * time.Millisecond}).Run(t.Context(), &Plan{Steps: []*Step{step}})
	var act *event.Event
	for i, e := range rec.evs {
		if e.Kind == event.StepAct {
			act = &rec.evs[i]
		}
	}
	if act == nil {
		t.Fatalf("no act event: %+v", rec.evs)
	}
	if act.Duration < 150*time.Millisecond {
		t.Errorf("act event duration %s, want >= 150ms (the driver's action)", act.Duration)
	}
	r := CriticalPath(journal.Run{Events: rec.evs}, nil)
	if c := r.StepCost["slow"]; c < 150*time.Millisecond {
		t.Errorf("intrinsic cost of the slow step %s, want >= 150ms; %+v", c, r.Tasks)
	}
}

// waitDriver waits in Act and ends with an observation (ActObserver).
type waitDriver struct {
	slowDriver
	observes int
}

func (d *waitDriver) Observe(ctx context.Context, _ TaskEnv) Observation {
	d.mu.Lock()
	d.observes++
	d.mu.Unlock()
	return d.slowDriver.Observe(ctx, TaskEnv{})
}

func (d *waitDriver) ActObservation() (Observation, bool) {
	return Observation{State: "done (seen by the wait)", Holds: true, Known: true}, true
}

// A driver whose action ended on a fresh observation that holds is not
// polled again: that observation is the verification.
func TestActObservationIsTheFirstVerification(t *testing.T) {
	drv := &waitDriver{}
	step := &Step{Name: "wait"}
	task := &Task{ID: "wait/x", Step: step, Action: "custom", Desired: "done", Driver: drv, Layer: "test",
		CommandTimeout: time.Second, VerifyTimeout: time.Second}
	step.Tasks = []*Task{task}
	rec := &recorder{}
	res := (&Engine{Sink: &event.Stamper{RunID: "r", Next: rec}, Poll: 10 * time.Millisecond}).Run(t.Context(), &Plan{Steps: []*Step{step}})
	if drv.observes != 1 {
		t.Errorf("observed %d times, want 1 (before acting only)", drv.observes)
	}
	var verified string
	for _, e := range rec.evs {
		if e.Kind == event.StepVerify && e.Outcome == event.OK {
			verified = e.Observed
		}
	}
	if verified != "done (seen by the wait)" {
		t.Errorf("verification %q, want the act's observation; result %+v", verified, res)
	}
}

// onlyWaits is a waitDriver that says its action changes nothing.
type onlyWaits struct{ waitDriver }

func (*onlyWaits) OnlyWaits(TaskEnv) bool { return true }

// A Waiter's act event says "wait", and its observation's Reached reaches
// the journal on the verification; so the whole step, its first
// observation included, is the deployment's.
func TestWaiterActAndReached(t *testing.T) {
	reached := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		drv    Driver
		action string
	}{{&onlyWaits{}, ActionWait}, {&waitDriver{}, "custom"}} {
		step := &Step{Name: "wait"}
		task := &Task{ID: "wait/x", Step: step, Action: "custom", Desired: "done", Driver: c.drv, Layer: "test",
			CommandTimeout: time.Second, VerifyTimeout: time.Second}
		step.Tasks = []*Task{task}
		rec := &recorder{}
		(&Engine{Sink: &event.Stamper{RunID: "r", Next: rec}, Poll: 10 * time.Millisecond}).Run(t.Context(), &Plan{Steps: []*Step{step}})
		for _, e := range rec.evs {
			if e.Kind == event.StepAct && e.Action != c.action {
				t.Errorf("%T: act event action %q, want %q", c.drv, e.Action, c.action)
			}
		}
	}
	// Reached travels from the observation to the verify event
	drv := &reachedDriver{at: reached}
	step := &Step{Name: "r"}
	step.Tasks = []*Task{{ID: "r/x", Step: step, Action: "custom", Desired: "done", Driver: drv, Layer: "test", CommandTimeout: time.Second, VerifyTimeout: time.Second}}
	rec := &recorder{}
	(&Engine{Sink: &event.Stamper{RunID: "r", Next: rec}, Poll: 10 * time.Millisecond}).Run(t.Context(), &Plan{Steps: []*Step{step}})
	found := false
	for _, e := range rec.evs {
		if e.Kind == event.StepVerify && e.Outcome == event.OK {
			found = e.Reached.Equal(reached)
		}
	}
	if !found {
		t.Errorf("the verify event does not carry Reached: %+v", rec.evs)
	}
}

type reachedDriver struct {
	slowDriver
	at time.Time
}

func (d *reachedDriver) Observe(ctx context.Context, _ TaskEnv) Observation {
	o := d.slowDriver.Observe(ctx, TaskEnv{})
	if o.Holds {
		o.Reached = d.at
	}
	return o
}
