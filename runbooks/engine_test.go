package runbooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

var coreB = []string{"b-ccm", "b-comms", "b-mre", "b-chat"}

func TestTakeoverStartsExactlyTheTargetSiteAndIsIdempotent(t *testing.T) {
	l := newLab(t)
	res, rec := l.run(t, t.Context(), "takeover", "B", Execute)
	if res.Outcome != event.OK {
		t.Fatalf("outcome %s: %+v", res.Outcome, res.Problems())
	}
	for _, n := range coreB {
		if !l.svc.Running(n) {
			t.Errorf("%s not running after takeover", n)
		}
	}
	for _, n := range []string{"a-ccm", "a-comms", "a-mre", "a-chat", "a-reporting", "b-reporting"} {
		if l.svc.Running(n) {
			t.Errorf("%s running: takeover B must touch only B's core services", n)
		}
	}
	// order: chat starts only after MRE verified, MRE after comms and ccm
	if a, b := rec.index(event.StepEnd, "start-mre/b-app/mre"), rec.index(event.StepStart, "start-chat/b-app/chat"); a < 0 || b < 0 || a > b {
		t.Errorf("chat started before mre finished (mre end %d, chat start %d)", a, b)
	}
	if a, b := rec.index(event.StepEnd, "start-comms/b-app/comms"), rec.index(event.StepStart, "start-mre/b-app/mre"); a > b {
		t.Errorf("mre started before comms finished")
	}
	// second run: everything already holds
	res2, _ := l.run(t, t.Context(), "takeover", "B", Execute)
	c := res2.Counts()
	if res2.Outcome != event.OK || c[event.Skipped] != len(res2.Tasks) || c[event.OK] != 0 {
		t.Fatalf("second takeover: outcome %s counts %v; want all skipped", res2.Outcome, c)
	}
	// renounce stops what a passive site keeps stopped, and leaves CCM
	res3, _ := l.run(t, t.Context(), "renounce", "B", Execute)
	if res3.Outcome != event.OK {
		t.Fatalf("renounce: %s %+v", res3.Outcome, res3.Problems())
	}
	for _, n := range []string{"b-comms", "b-mre", "b-chat"} {
		if l.svc.Running(n) {
			t.Errorf("%s still running after renounce", n)
		}
	}
	if !l.svc.Running("b-ccm") {
		t.Errorf("renounce stopped b-ccm although passive: running")
	}
}

func TestFailingStartStopsTheRunAndResumeFinishes(t *testing.T) {
	l := newLab(t)
	l.svc.Fail("b-mre", "mre: cannot bind port 9090: address in use")
	res, rec := l.run(t, t.Context(), "takeover", "B", Execute)
	if res.Outcome != event.Failed {
		t.Fatalf("outcome %s, want failed", res.Outcome)
	}
	ends := rec.ends()
	mre := ends["start-mre/b-app/mre"]
	if mre.Outcome != event.Failed || !strings.Contains(mre.Stderr, "address in use") || !strings.Contains(mre.Message, "exited 1") {
		t.Errorf("mre end: %+v", mre)
	}
	if chat := ends["start-chat/b-app/chat"]; chat.Outcome != event.Blocked {
		t.Errorf("chat after failed mre: %s, want blocked", chat.Outcome)
	}
	if l.svc.Running("b-chat") {
		t.Error("chat started although mre failed")
	}
	l.svc.Fix("b-mre")
	res2, _ := l.run(t, t.Context(), "takeover", "B", Execute)
	c := res2.Counts()
	if res2.Outcome != event.OK || c[event.OK] != 2 || c[event.Skipped] != 2 {
		t.Fatalf("resume: %s %v (want mre and chat ok, ccm and comms skipped)", res2.Outcome, c)
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	l := newLab(t)
	l.svc.Fail("b-chat", "transient")
	plan, err := l.cat.Compile("takeover", l.inv, "B")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range plan.Tasks() {
		tk.Retries, tk.Backoff = 2, 200*time.Millisecond
	}
	rec := &recorder{}
	// the cause is fixed once the first attempt has failed
	sink := event.SinkFunc(func(e event.Event) {
		rec.Emit(e)
		if e.Kind == event.StepAct && e.Service == "chat" && e.ExitCode != nil && *e.ExitCode != 0 {
			l.svc.Fix("b-chat")
		}
	})
	res := (&Engine{Runner: l.pool, Sink: sink, Poll: 20 * time.Millisecond}).Run(t.Context(), plan)
	if res.Outcome != event.OK {
		t.Fatalf("outcome %s %+v", res.Outcome, res.Problems())
	}
	acts := 0
	for _, e := range rec.evs {
		if e.Kind == event.StepAct && e.Service == "chat" {
			acts++
		}
	}
	if acts < 2 {
		t.Errorf("chat acted %d times, want a retry", acts)
	}
}

func TestVerifyDeadlineFailsWhenStateNeverArrives(t *testing.T) {
	l := newLab(t)
	plan, _ := l.cat.Compile("takeover", l.inv, "B")
	for _, tk := range plan.Tasks() {
		if tk.Service == "comms" {
			tk.Act = "true" // exits 0 but starts nothing
			tk.VerifyTimeout = 500 * time.Millisecond
		}
	}
	rec := &recorder{}
	start := time.Now()
	res := (&Engine{Runner: l.pool, Sink: rec, Poll: 20 * time.Millisecond}).Run(t.Context(), plan)
	if d := time.Since(start); d > time.Minute { // a guard against a hang, not a timing
		t.Errorf("took %s, deadline was 500ms", d)
	}
	e := rec.ends()["start-comms/b-app/comms"]
	if e.Outcome != event.Failed || !strings.Contains(e.Message, "expected running within 500ms, observed stopped") {
		t.Errorf("comms: %s %q", e.Outcome, e.Message)
	}
	if res.Outcome != event.Failed {
		t.Errorf("run outcome %s", res.Outcome)
	}
}

func TestUnknownStatusIsUnknownNeverOK(t *testing.T) {
	l := newLab(t)
	plan, _ := l.cat.Compile("takeover", l.inv, "B")
	for _, tk := range plan.Tasks() {
		if tk.Service == "ccm" {
			tk.Observe = "exit 4" // LSB "unknown"
			tk.VerifyTimeout = 300 * time.Millisecond
		}
	}
	rec := &recorder{}
	res := (&Engine{Runner: l.pool, Sink: rec, Poll: 20 * time.Millisecond}).Run(t.Context(), plan)
	if e := rec.ends()["start-ccm/b-app/ccm"]; e.Outcome != event.Unknown {
		t.Errorf("ccm outcome %s (%s), want unknown", e.Outcome, e.Message)
	}
	if res.Outcome != event.Unknown {
		t.Errorf("run outcome %s, want unknown", res.Outcome)
	}
}

func TestPlanModesChangeNothing(t *testing.T) {
	l := newLab(t)
	l.svc.Start("b-ccm")
	res, rec := l.run(t, t.Context(), "takeover", "B", DryRun)
	for _, n := range []string{"b-comms", "b-mre", "b-chat"} {
		if l.svc.Running(n) {
			t.Errorf("plan started %s", n)
		}
	}
	for _, e := range rec.evs {
		if e.Kind == event.StepAct {
			t.Errorf("plan acted: %+v", e)
		}
	}
	c := res.Counts()
	if c[event.Skipped] != 1 || c[event.Planned] != 3 {
		t.Errorf("plan counts %v: want ccm skipped (already running), 3 planned", c)
	}
	off, _ := l.run(t, t.Context(), "switchover", "B", Offline) // Runner is nil: any connection panics
	if n := off.Counts()[event.Planned]; n != len(off.Tasks) || n == 0 {
		t.Errorf("offline: %v", off.Counts())
	}
}

func TestCancelRecordsCancelled(t *testing.T) {
	l := newLab(t)
	l.svc.Delay("b-comms", 10*time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	res, rec := l.run(t, ctx, "takeover", "B", Execute)
	// the start it cancels takes 10 minutes: a guard far below shows the
	// cancel ended it, with no timing asserted
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("cancel took %s", d)
	}
	if res.Outcome != event.Cancelled {
		t.Errorf("outcome %s", res.Outcome)
	}
	if e := rec.ends()["start-comms/b-app/comms"]; e.Outcome != event.Cancelled {
		t.Errorf("comms: %s", e.Outcome)
	}
	if e := rec.ends()["start-chat/b-app/chat"]; e.Outcome != event.Cancelled {
		t.Errorf("chat (not started): %s", e.Outcome)
	}
}

func TestSwitchoverOrder(t *testing.T) {
	l := newLab(t)
	for _, n := range []string{"a-ccm", "a-comms", "a-mre", "a-chat", "a-reporting"} {
		l.svc.Start(n)
	}
	res, rec := l.run(t, t.Context(), "switchover", "B", Execute)
	if res.Outcome != event.OK {
		t.Fatalf("switchover: %s %+v", res.Outcome, res.Problems())
	}
	// every stop on A ends before the first start on B begins
	lastStop, firstStart := -1, len(rec.evs)
	for i, e := range rec.evs {
		if e.Kind == event.StepEnd && e.Action == ActionStop && i > lastStop {
			lastStop = i
		}
		if e.Kind == event.StepStart && e.Action == ActionStart && strings.HasPrefix(e.Step, "takeover/") && i < firstStart {
			firstStart = i
		}
	}
	if lastStop > firstStart {
		t.Errorf("a start on B (event %d) began before the last stop on A ended (event %d)", firstStart, lastStop)
	}
	if l.svc.Running("a-chat") || !l.svc.Running("b-chat") || !l.svc.Running("b-reporting") || l.svc.Running("a-reporting") {
		t.Error("switchover did not move chat and reporting from A to B")
	}
}

// Once a journal record is lost (disk full), no task acts any more: the
// step whose act would come next fails saying so, the later ones are
// blocked, and their services stay as they were.
func TestLostJournalRecordStopsBeforeTheNextAct(t *testing.T) {
	l := newLab(t)
	plan, err := l.cat.Compile("takeover", l.inv, "B")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var mu sync.Mutex
	var broken error
	sink := event.SinkFunc(func(e event.Event) {
		rec.Emit(e)
		if e.Kind == event.StepEnd && e.Task == "start-comms/b-app/comms" {
			mu.Lock()
			broken = errors.New("journal: write runs/x.jsonl: no space left on device")
			mu.Unlock()
		}
	})
	e := &Engine{Runner: l.pool, Sink: sink, Mode: Execute, Poll: 20 * time.Millisecond, Journal: func() error {
		mu.Lock()
		defer mu.Unlock()
		return broken
	}}
	res := e.Run(t.Context(), plan)
	if res.Outcome == event.OK {
		t.Fatalf("the run went on to OK after the journal broke")
	}
	ends := rec.ends()
	mre := ends["start-mre/b-app/mre"]
	if mre.Outcome != event.Failed || !strings.Contains(mre.Message, "the journal cannot be written (journal: write runs/x.jsonl: no space left on device)") {
		t.Errorf("mre after the journal broke: %s %q", mre.Outcome, mre.Message)
	}
	if l.svc.Running("b-mre") || l.svc.Running("b-chat") {
		t.Error("a service was started after the journal broke")
	}
	if chat := ends["start-chat/b-app/chat"]; chat.Outcome != event.Blocked {
		t.Errorf("chat: %s, want blocked", chat.Outcome)
	}
}
