package render

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

// ProgressEvery is how often, without a terminal, a line is printed for
// each task still waiting.
const ProgressEvery = 10 * time.Second

// ProgressRenderer shows the tasks in flight while a run goes on. It wraps
// the renderer of the permanent lines (Next). On a terminal (Live) it keeps
// one line per task in flight below them, redrawn at every event and every
// tick: what the task waits for, what it last observed, the time elapsed
// and its deadline ("drain-haproxy haproxy: expected DRAIN with 0
// sessions, observed 3 sessions, 0:41 of 2:00"). Without a terminal it
// prints that line for each waiting task at every tick (every
// ProgressEvery), and nothing in between. Ticks and Now are injected so
// that tests drive time.
type ProgressRenderer struct {
	Next  event.Sink
	W     io.Writer
	Live  bool
	Now   func() time.Time
	Ticks <-chan time.Time

	mu    sync.Mutex
	tasks map[string]*inFlight
	drawn int // live lines on the screen
}

type inFlight struct {
	task, label    string
	start          time.Time
	waiting        bool // a progress event came: it acts or waits
	what, observed string
	deadline       time.Time
	attempt        int
	act            bool
}

// Emit records e and forwards it (progress events only update the live lines).
func (p *ProgressRenderer) Emit(e event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tasks == nil {
		p.tasks = map[string]*inFlight{}
	}
	p.erase()
	switch e.Kind {
	case event.StepStart:
		label := e.Step + " " + e.Host
		if e.Host == "" {
			label = e.Task
		}
		if e.Service != "" {
			label += "/" + e.Service
		}
		p.tasks[e.Task] = &inFlight{task: e.Task, label: label, start: e.Time}
	case event.Progress:
		t := p.tasks[e.Task]
		if t == nil {
			break
		}
		t.waiting, t.deadline, t.attempt = true, e.Deadline, e.Attempt
		if e.Observed == "" { // acting
			t.act, t.what, t.observed = true, "running "+firstLineOf(e.Message), ""
		} else {
			t.act, t.what = false, "expected "+e.Expected
			t.observed = e.Observed
			if d := firstLineOf(e.Message); d != "" {
				t.observed += " (" + d + ")"
			}
		}
	case event.StepEnd:
		delete(p.tasks, e.Task)
	case event.RunEnd:
		clear(p.tasks)
	}
	if e.Kind != event.Progress && p.Next != nil {
		p.Next.Emit(e)
	}
	p.draw()
}

// Run redraws (on a terminal) or reports the waiting tasks (without one)
// at every tick until ctx ends, then erases the live lines.
func (p *ProgressRenderer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.erase()
			p.mu.Unlock()
			return
		case <-p.Ticks:
			p.Tick()
		}
	}
}

// Tick redraws the live lines (on a terminal) or prints one line per
// waiting task (without one).
func (p *ProgressRenderer) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Live {
		p.erase()
		p.draw()
		return
	}
	for _, t := range p.sorted() {
		if t.waiting {
			fmt.Fprintf(p.W, "  … %s\n", p.line(t))
		}
	}
}

func (p *ProgressRenderer) sorted() []*inFlight {
	out := make([]*inFlight, 0, len(p.tasks))
	for _, t := range p.tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].start.Equal(out[j].start) {
			return out[i].start.Before(out[j].start)
		}
		return out[i].task < out[j].task
	})
	return out
}

// line is one task's progress: "stop-chat a-app/chat: expected stopped,
// observed running, 6.2 s of 1:30".
func (p *ProgressRenderer) line(t *inFlight) string {
	var b strings.Builder
	b.WriteString(t.label)
	switch {
	case !t.waiting:
		b.WriteString(": observing")
	case t.act:
		b.WriteString(": " + t.what)
	default:
		b.WriteString(": " + t.what + ", observed " + t.observed)
	}
	elapsed := p.Now().Sub(t.start)
	b.WriteString(", " + clock(elapsed))
	if !t.deadline.IsZero() {
		b.WriteString(" of " + clock(t.deadline.Sub(t.start)))
	}
	if t.attempt > 1 && t.act {
		fmt.Fprintf(&b, " (attempt %d)", t.attempt)
	}
	return b.String()
}

// clock is a duration as "6.2 s" under a minute, else "m:ss".
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func (p *ProgressRenderer) draw() {
	if !p.Live {
		return
	}
	for _, t := range p.sorted() {
		fmt.Fprintf(p.W, "\x1b[2K  ⋯ %s\n", p.line(t))
		p.drawn++
	}
}

// erase removes the live lines (cursor up over them, clear to the end).
func (p *ProgressRenderer) erase() {
	if p.drawn > 0 {
		fmt.Fprintf(p.W, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
