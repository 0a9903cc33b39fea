package runbooks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

// TestProgressEventsWhileWaiting: a task whose state does not arrive emits
// step.progress events while it waits: before its action (what it runs,
// with the command's deadline) and after each verification poll that did
// not hold (what it expects, what it observed, the verification deadline).
// They are transient: not numbered, and the journal writer drops them.
func TestProgressEventsWhileWaiting(t *testing.T) {
	l := newLab(t)
	plan, _ := l.cat.Compile("takeover", l.inv, "B")
	for _, tk := range plan.Tasks() {
		if tk.Service == "comms" {
			tk.Act = "true" // exits 0 but starts nothing
			tk.VerifyTimeout = time.Second
		}
	}
	rec := &recorder{}
	st := &event.Stamper{RunID: "r", Next: rec}
	(&Engine{Runner: l.pool, Sink: st, Poll: 20 * time.Millisecond}).Run(t.Context(), plan)
	var acting, waiting []event.Event
	for _, e := range rec.evs {
		if e.Kind != event.Progress || e.Task != "start-comms/b-app/comms" {
			continue
		}
		if e.Seq != 0 {
			t.Errorf("progress event numbered %d: it would leave a gap in the journal's sequence", e.Seq)
		}
		if e.Observed == "" {
			acting = append(acting, e)
		} else {
			waiting = append(waiting, e)
		}
	}
	if len(acting) != 1 || acting[0].Message != "true" || acting[0].Deadline.IsZero() {
		t.Errorf("acting progress: %+v, want one for the command with its deadline", acting)
	}
	// every poll but the last (which ends the task) says it still waits
	end := rec.ends()["start-comms/b-app/comms"]
	var polls int
	if _, err := fmt.Sscanf(end.Message[strings.Index(end.Message, "after ")+len("after "):], "%d checks", &polls); err != nil || polls < 2 {
		t.Fatalf("cannot read the number of checks from %q (%v)", end.Message, err)
	}
	if len(waiting) != polls-1 {
		t.Fatalf("%d waiting progress events for %d checks, want one per check that did not hold but the last", len(waiting), polls)
	}
	for _, e := range waiting {
		if e.Observed != "stopped" || e.Expected != "running" || e.Deadline.IsZero() || e.Attempt < 1 {
			t.Errorf("waiting progress: observed %q expected %q deadline %v attempt %d", e.Observed, e.Expected, e.Deadline, e.Attempt)
		}
	}
	if !waiting[0].Deadline.Equal(waiting[len(waiting)-1].Deadline) {
		t.Errorf("the verification deadline moved: %v, then %v", waiting[0].Deadline, waiting[len(waiting)-1].Deadline)
	}
}
