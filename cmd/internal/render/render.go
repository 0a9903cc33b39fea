package render

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// TextRenderer draws the event stream for people: one line per finished
// task, warnings and invariants, and (verbose) every observation and action.
type TextRenderer struct {
	W       io.Writer
	Verbose bool
	Color   bool
	mu      sync.Mutex
}

var outcomeColor = map[event.Outcome]string{
	event.OK: "32", event.Skipped: "36", event.Planned: "34", event.Failed: "31;1",
	event.Unknown: "33;1", event.Cancelled: "33", event.Blocked: "33", event.Refused: "31;1",
}

func (r *TextRenderer) paint(o event.Outcome, s string) string {
	if !r.Color {
		return s
	}
	return "\x1b[" + outcomeColor[o] + "m" + s + "\x1b[0m"
}

// OutcomeLabel is an outcome as shown in text output (failures in capitals).
func OutcomeLabel(o event.Outcome) string {
	switch o {
	case event.Failed, event.Unknown, event.Refused, event.Cancelled, event.Blocked:
		return strings.ToUpper(string(o))
	}
	return string(o)
}

// Emit renders one event.
func (r *TextRenderer) Emit(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.W
	where := e.Host
	if e.Service != "" {
		where += "/" + e.Service
	}
	switch e.Kind {
	case event.RunStart:
		r.runStart(e)
	case event.StepEnd:
		r.stepEnd(e, where)
	case event.StepObserve, event.StepVerify:
		if r.Verbose {
			fmt.Fprintf(w, "    · %-7s %-28s %-22s observed %s (expected %s) %s\n", strings.TrimPrefix(string(e.Kind), "step."), e.Step, where, e.Observed, e.Expected, e.Message)
		}
	case event.StepAct:
		if r.Verbose {
			r.stepAct(e, where)
		}
	case event.StepStart:
		if r.Verbose {
			fmt.Fprintf(w, "    · start   %-28s %-22s\n", e.Step, where)
		}
	case event.Invariant:
		fmt.Fprintf(w, "%s invariant %s\n", r.paint(e.Outcome, "•"), e.Message)
	case event.Verdict:
		if e.Outcome != "" || r.Verbose {
			fmt.Fprintf(w, "%s verdict %s\n", r.paint(e.Outcome, "•"), e.Message)
		}
	case event.Message:
		r.message(e)
	case event.Evidence:
		// the evidence a disaster takeover acts on is always shown; the
		// before and after views of an unseen site with -v
		if e.Action == event.ActionDisaster || r.Verbose {
			fmt.Fprintf(w, "• site %s: %s\n", e.Site, e.Message)
			for _, l := range e.Lines {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	case event.Fence:
		r.fence(e)
	case event.Hook:
		r.hook(e)
	case event.Notify:
		if e.Outcome != event.OK || r.Verbose {
			fmt.Fprintf(w, "%s %s\n", r.paint(e.Outcome, "•"), e.Message)
		}
	case event.Lock:
		if r.Verbose || e.Outcome == event.Failed || e.Action == event.ActionWarn {
			fmt.Fprintf(w, "  lock: %s\n", e.Message)
		}
	case event.RunEnd:
		fmt.Fprintf(w, "%s %s in %s\n", r.paint(e.Outcome, "result: "+OutcomeLabel(e.Outcome)), e.Message, e.Duration.Round(time.Millisecond))
	}
}

// runStart renders the run's header with its overrides and warnings.
func (r *TextRenderer) runStart(e event.Event) {
	if e.Run == nil {
		return
	}
	w := r.W
	fmt.Fprintf(w, "%s %s --site %s  (run %s, %s)\n", modeVerb(e.Run.Mode), e.Run.Runbook, e.Run.Site, e.Run.ID, e.Run.Mode)
	for _, o := range e.Run.Overrides {
		fmt.Fprintf(w, "! runbook override: %s\n", o)
	}
	for _, m := range e.Run.Warnings {
		fmt.Fprintf(w, "! warning: %s\n", m)
	}
}

// stepEnd renders a task's outcome line, and the command to inspect it
// when it did not succeed.
func (r *TextRenderer) stepEnd(e event.Event, where string) {
	w := r.W
	label := fmt.Sprintf("%-9s", OutcomeLabel(e.Outcome))
	detail := e.Message
	if e.Outcome == event.OK {
		detail = e.Observed
	}
	fmt.Fprintf(w, "  %s %-28s %-22s %s%s\n", r.paint(e.Outcome, label), e.Step, where, detail, dur(e.Duration))
	if !e.Outcome.Succeeded() && e.Outcome != event.Planned && e.Hint != "" {
		fmt.Fprintf(w, "            inspect: %s\n", e.Hint)
	}
}

// stepAct renders an action's command, exit code and stderr (verbose
// output only).
func (r *TextRenderer) stepAct(e event.Event, where string) {
	w := r.W
	code := "?"
	if e.ExitCode != nil {
		code = fmt.Sprint(*e.ExitCode)
	}
	fmt.Fprintf(w, "    · act     %-28s %-22s %q exit %s (attempt %d)%s\n", e.Step, where, e.Command, code, e.Attempt, dur(e.Duration))
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(w, "      stderr: %s\n", indent(s))
	}
	if e.Message != "" {
		fmt.Fprintf(w, "      %s\n", e.Message)
	}
}

// message renders a warning; the before, after and nothing-to-do messages
// only with -v.
func (r *TextRenderer) message(e event.Event) {
	switch event.PhaseOf(e) {
	case event.ActionBefore, event.ActionAfter, event.ActionNothing:
		if r.Verbose {
			fmt.Fprintf(r.W, "  %s\n", e.Message)
		}
		return
	}
	fmt.Fprintf(r.W, "! %s\n", e.Message)
}

// fence renders a fencing step, with its hint when it failed.
func (r *TextRenderer) fence(e event.Event) {
	label := "fence"
	if e.Action != "" {
		label = e.Action
	}
	fmt.Fprintf(r.W, "%s %s: %s%s\n", r.paint(e.Outcome, "•"), label, e.Message, dur(e.Duration))
	if e.Outcome == event.Failed && e.Hint != "" {
		fmt.Fprintf(r.W, "            %s\n", e.Hint)
	}
}

// hook renders a hook's outcome, its hint when it failed, and its stdout
// with -v.
func (r *TextRenderer) hook(e event.Event) {
	w := r.W
	fmt.Fprintf(w, "%s hook %s\n", r.paint(e.Outcome, "•"), e.Message)
	if e.Outcome == event.Failed && e.Hint != "" {
		fmt.Fprintf(w, "            %s\n", e.Hint)
	}
	if r.Verbose {
		if s := strings.TrimSpace(e.Stdout); s != "" {
			fmt.Fprintf(w, "      stdout: %s\n", indent(s))
		}
	}
}

func modeVerb(mode string) string {
	switch mode {
	case "plan", "plan-offline":
		return "planning"
	case "resume":
		return "resuming"
	}
	return "running"
}

func dur(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return "  (" + d.Round(time.Millisecond).String() + ")"
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n              ") }

// JSONRenderer writes every event as one JSON line.
type JSONRenderer struct {
	W  io.Writer
	mu sync.Mutex
}

// Emit writes e.
func (r *JSONRenderer) Emit(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = cmdutil.WriteJSONLine(r.W, "event", e)
}

// ForRun is the renderer of a run: For's, plus the live progress
// of the tasks in flight (ProgressRenderer) in text mode: one live line per
// task on a terminal (redrawn every second), a line per waiting task every
// ProgressEvery without one. With -o json the step.progress events are
// part of the JSON stream. stop ends the redraws and erases the live lines.
func ForRun(ctx context.Context, f *cmdutil.Factory) (sink event.Sink, stop func()) {
	if f.Globals.JSON() {
		return For(f), func() {}
	}
	every := ProgressEvery
	if f.IO.IsStderrTTY() {
		every = time.Second
	}
	newTicker := f.NewTicker
	if newTicker == nil {
		newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	ticks, stopTicks := newTicker(every)
	now := f.Now
	if now == nil {
		now = time.Now
	}
	p := &ProgressRenderer{Next: For(f), W: f.IO.ErrOut, Live: f.IO.IsStderrTTY(), Now: now, Ticks: ticks}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	return p, func() { cancel(); <-done; stopTicks() }
}

// For returns the event renderer chosen by --output.
// Every event goes through the factory's redactor first.
func For(f *cmdutil.Factory) event.Sink {
	if f.Globals.JSON() {
		return journal.RedactSink(f.Redactor, &JSONRenderer{W: f.IO.Out})
	}
	return journal.RedactSink(f.Redactor, &TextRenderer{W: f.IO.ErrOut, Verbose: f.Globals.Verbose, Color: f.IO.ColorEnabled()})
}
