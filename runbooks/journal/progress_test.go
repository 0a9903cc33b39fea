package journal

import (
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

// TestProgressIsNotJournaled: step.progress events are for live display
// only; the journal keeps every other record.
func TestProgressIsNotJournaled(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w.Emit(event.Event{Kind: event.StepStart, Seq: 1, RunID: "r1", Task: "t", Time: now})
	w.Emit(event.Event{Kind: event.Progress, RunID: "r1", Task: "t", Time: now, Observed: "stopped", Deadline: now.Add(time.Minute)})
	w.Emit(event.Event{Kind: event.StepEnd, Seq: 2, RunID: "r1", Task: "t", Time: now, Outcome: event.OK})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Read(Path(dir, "r1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != 2 || r.Events[0].Kind != event.StepStart || r.Events[1].Kind != event.StepEnd {
		t.Errorf("journaled %+v, want step.start and step.end only", r.Events)
	}
}
