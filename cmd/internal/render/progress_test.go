package render

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// progressFixture is a renderer on a buffer, with a clock and ticks the
// test drives.
type progressFixture struct {
	p     *ProgressRenderer
	buf   *bytes.Buffer
	now   time.Time
	ticks chan time.Time
}

func newProgress(live bool) *progressFixture {
	f := &progressFixture{buf: &bytes.Buffer{}, now: t0, ticks: make(chan time.Time)}
	f.p = &ProgressRenderer{Next: &TextRenderer{W: f.buf}, W: f.buf, Live: live, Now: func() time.Time { return f.now }, Ticks: f.ticks}
	return f
}

// tick delivers n ticks to Run and returns once Run has handled them all
// (Run returns only after the tick it is handling).
func (f *progressFixture) tick(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.p.Run(ctx) }()
	for range n {
		f.ticks <- f.now
	}
	cancel()
	<-done
}

func (f *progressFixture) events() {
	f.p.Emit(event.Event{Kind: event.StepStart, Task: "stop-chat/a-app/chat", Step: "stop-chat", Host: "a-app", Service: "chat", Time: t0})
	f.p.Emit(event.Event{Kind: event.StepStart, Task: "drain/haproxy", Step: "drain-haproxy", Host: "haproxy", Time: t0})
	f.p.Emit(event.Event{Kind: event.Progress, Task: "drain/haproxy", Expected: "DRAIN with 0 sessions", Observed: "DRAIN", Message: "3 sessions left", Attempt: 4, Deadline: t0.Add(2 * time.Minute)})
}

// TestProgressWithoutATerminal: without a terminal, a line per waiting
// task at each tick (every 10 s), and none between ticks.
func TestProgressWithoutATerminal(t *testing.T) {
	f := newProgress(false)
	f.events()
	if strings.Contains(f.buf.String(), "…") {
		t.Fatalf("progress printed before any tick:\n%s", f.buf)
	}
	f.now = t0.Add(41 * time.Second)
	f.tick(1)
	lines := progressLines(f.buf.String(), "  … ")
	want := "drain-haproxy haproxy: expected DRAIN with 0 sessions, observed DRAIN (3 sessions left), 41.0 s of 2:00"
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("after one tick: %q, want [%q] (only the waiting task)", lines, want)
	}
	f.p.Emit(event.Event{Kind: event.StepEnd, Task: "drain/haproxy", Step: "drain-haproxy", Host: "haproxy", Outcome: event.OK})
	f.now = t0.Add(51 * time.Second)
	f.tick(2)
	if n := len(progressLines(f.buf.String(), "  … ")); n != 1 {
		t.Errorf("%d progress lines after the task ended, want still 1:\n%s", n, f.buf)
	}
	if strings.Contains(f.buf.String(), "\x1b[") {
		t.Errorf("cursor escapes without a terminal:\n%q", f.buf)
	}
}

// TestProgressOnATerminal: on a terminal, one live line per task in
// flight, erased before a permanent line and redrawn after it, gone when
// the run ends.
func TestProgressOnATerminal(t *testing.T) {
	f := newProgress(true)
	f.events()
	out := f.buf.String()
	last := out[strings.LastIndex(out, "\x1b[J")+len("\x1b[J"):]
	want := []string{"drain-haproxy haproxy: expected DRAIN with 0 sessions, observed DRAIN (3 sessions left), 0.0 s of 2:00", "stop-chat a-app/chat: observing, 0.0 s"}
	if got := progressLines(last, "\x1b[2K  ⋯ "); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("live lines %q, want %q", got, want)
	}
	f.now = t0.Add(6200 * time.Millisecond)
	f.buf.Reset()
	f.p.Tick()
	if !strings.HasPrefix(f.buf.String(), "\x1b[2A\x1b[J") || !strings.Contains(f.buf.String(), "6.2 s of 2:00") {
		t.Errorf("a tick does not redraw the two live lines in place:\n%q", f.buf)
	}
	f.buf.Reset()
	f.p.Emit(event.Event{Kind: event.StepEnd, Task: "stop-chat/a-app/chat", Step: "stop-chat", Host: "a-app", Service: "chat", Outcome: event.OK, Observed: "stopped"})
	out = f.buf.String()
	perm := strings.Index(out, "stop-chat")
	if !strings.HasPrefix(out, "\x1b[2A\x1b[J") || perm < 0 || !strings.Contains(out[perm:], "\x1b[2K  ⋯ drain-haproxy") || strings.Count(out, "⋯") != 1 {
		t.Errorf("a finished task: the live lines are not erased, the permanent line written, the rest redrawn:\n%q", out)
	}
	f.buf.Reset()
	f.p.Emit(event.Event{Kind: event.RunEnd, Outcome: event.OK})
	if strings.Contains(f.buf.String(), "⋯") || !strings.HasPrefix(f.buf.String(), "\x1b[1A\x1b[J") {
		t.Errorf("live lines left after the run ended:\n%q", f.buf)
	}
	f.tick(1) // the loop redraws nothing when nothing is in flight, and erases on exit
	if strings.Contains(f.buf.String(), "⋯") {
		t.Errorf("live lines drawn with nothing in flight:\n%q", f.buf)
	}
}

func progressLines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			out = append(out, l[i+len(prefix):])
		}
	}
	return out
}
