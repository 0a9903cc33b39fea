// Package event defines the one stream of typed events that a sitectl run
// produces. The engine emits them; the journal stores them; the text, JSON and
// TUI renderers draw them. It has no dependencies so every layer can share it.
package event

import (
	"strings"
	"sync"
	"time"
)

// Kind says what happened.
type Kind string

const (
	RunStart    Kind = "run.start"    // a run began; Run carries who/what/where
	RunEnd      Kind = "run.end"      // a run ended; Outcome is the overall result
	StepStart   Kind = "step.start"   // a task (step × host × service) began
	StepObserve Kind = "step.observe" // the task observed the current state
	StepAct     Kind = "step.act"     // the task ran its action (Command, ExitCode, Stdout/Stderr)
	StepVerify  Kind = "step.verify"  // one verification poll
	StepEnd     Kind = "step.end"     // the task ended; Outcome is set
	Invariant   Kind = "invariant"    // a safety invariant was evaluated
	Verdict     Kind = "verdict"      // which site serves traffic, per layer and combined
	Lock        Kind = "lock"         // lock acquired, released, broken or taken over
	Message     Kind = "message"      // free-form note (warnings, operator reason, …)
	Evidence    Kind = "evidence"     // a site's loss verdict (Site; Action before, disaster or after) and its evidence rows (Lines)
	Fence       Kind = "fence"        // a lost site fenced (Site, Command, ExitCode, Outcome), or why not
	// Hook is a hook that ran (or would run, or was skipped on resume):
	// Task is its id, Action its point (before_run, after_step, …), Step
	// the step of a step hook, Host where it ran ("" this machine).
	Hook Kind = "hook"
	// Notify is a notification's delivery: Task the target's name, Action
	// the notification event (run_started, …), Attempt the attempts made,
	// Outcome ok or failed (never fatal to the run).
	Notify Kind = "notify"
	// Progress is transient: a task still acting or waiting for its state
	// (what it waits for, what it last observed, its Deadline). It is
	// neither numbered (Seq 0) nor journaled; renderers show it live.
	Progress Kind = "step.progress"
)

// Outcome is the verdict of a task or a run.
type Outcome string

const (
	OK        Outcome = "ok"        // acted and verified
	Skipped   Outcome = "skipped"   // the desired state already held; nothing done
	Failed    Outcome = "failed"    // acted (or could not act) and the state is known to be wrong
	Unknown   Outcome = "unknown"   // the deadline passed without a verdict; never treat as success
	Cancelled Outcome = "cancelled" // the operator or a signal cancelled the run
	Planned   Outcome = "planned"   // plan mode: the action would run
	Blocked   Outcome = "blocked"   // not run because a dependency did not succeed
	Refused   Outcome = "refused"   // a precondition refused the run before anything changed
)

// Succeeded reports whether the outcome leaves the desired state in place.
func (o Outcome) Succeeded() bool { return o == OK || o == Skipped }

// RunInfo describes a run; it is set on RunStart.
type RunInfo struct {
	ID              string   `json:"id"`
	Runbook         string   `json:"runbook"`
	RunbookDigest   string   `json:"runbook_digest"`
	Site            string   `json:"site"`
	Deployment      string   `json:"deployment"`
	Inventory       string   `json:"inventory"`
	InventoryDigest string   `json:"inventory_digest"`
	User            string   `json:"user"`
	Hostname        string   `json:"hostname"`
	PID             int      `json:"pid"`
	Version         string   `json:"version"`
	Args            []string `json:"args,omitempty"`
	Mode            string   `json:"mode"` // run | plan | resume
	ResumeOf        string   `json:"resume_of,omitempty"`
	Reason          string   `json:"reason,omitempty"` // operator reason (--force, unlock)
	// Overrides are the built-in runbooks replaced by user ones for this
	// run ("takeover: built-in replaced by FILE").
	Overrides []string `json:"overrides,omitempty"`
	// Runbooks are the --runbooks paths (absolute) the run loaded: resume
	// loads them again without the flag.
	Runbooks []string `json:"runbooks,omitempty"`
	// InventoryChanged says why a resume went on with an inventory that
	// differs from the resumed run's (--inventory-changed).
	InventoryChanged string `json:"inventory_changed,omitempty"`
	// Warnings are printed at the start of every run and journaled here
	// (host key checking turned off by the inventory, …).
	Warnings []string  `json:"warnings,omitempty"`
	Started  time.Time `json:"started"`
}

// Event is one record of the stream. Fields are optional according to Kind.
type Event struct {
	Time     time.Time     `json:"time"`
	RunID    string        `json:"run"`
	Seq      int64         `json:"seq"`
	Kind     Kind          `json:"kind"`
	Task     string        `json:"task,omitempty"` // stable task id: step/host/service
	Step     string        `json:"step,omitempty"` // step name from the runbook
	Host     string        `json:"host,omitempty"`
	Service  string        `json:"service,omitempty"`
	Action   string        `json:"action,omitempty"` // start, stop, run, check, …
	Command  string        `json:"command,omitempty"`
	Expected string        `json:"expected,omitempty"`
	Observed string        `json:"observed,omitempty"`
	Outcome  Outcome       `json:"outcome,omitempty"`
	Message  string        `json:"message,omitempty"`
	Hint     string        `json:"hint,omitempty"` // the exact command to inspect or resume
	ExitCode *int          `json:"exit_code,omitempty"`
	Stdout   string        `json:"stdout,omitempty"`
	Stderr   string        `json:"stderr,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Reached: when the deployment reached the verified state by its own
	// clock (a MongoDB election's date), when known (step.verify).
	Reached time.Time `json:"reached,omitzero"`
	// Deadline of a Progress event: when the task gives up waiting.
	Deadline time.Time `json:"deadline,omitzero"`
	Run      *RunInfo  `json:"run_info,omitempty"`
	// Site the event is about (evidence, fence).
	Site string `json:"site,omitempty"`
	// Lines: the evidence rows behind a site's loss verdict (evidence).
	Lines []string `json:"lines,omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Emit calls f.
func (f SinkFunc) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Tee fans one stream out to several sinks in order.
func Tee(sinks ...Sink) Sink {
	return SinkFunc(func(e Event) {
		for _, s := range sinks {
			if s != nil {
				s.Emit(e)
			}
		}
	})
}

// Stamper numbers events and fills RunID and Time so that every sink sees the
// same sequence. It serialises emission.
type Stamper struct {
	mu    sync.Mutex
	RunID string
	Now   func() time.Time
	Next  Sink
	seq   int64
}

// Emit stamps e and forwards it.
func (s *Stamper) Emit(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Kind != Progress { // transient: no place in the journal's sequence
		s.seq++
		e.Seq = s.seq
	}
	if e.RunID == "" {
		e.RunID = s.RunID
	}
	if e.Time.IsZero() {
		if s.Now != nil {
			e.Time = s.Now()
		} else {
			e.Time = time.Now()
		}
	}
	s.Next.Emit(e)
}

// Trim shortens command output kept in events and journals.
func Trim(b []byte, max int) string {
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max/2]) + "\n…[trimmed]…\n" + string(b[len(b)-max/2:])
}

// Actions of the events that are no step's (Event.Action): when in the run
// a state was observed (Message, Invariant, Verdict, Evidence), a step with
// nothing to act on, a warning to show even without -v.
const (
	ActionBefore   = "before"   // observed before any act
	ActionAfter    = "after"    // observed after the last step
	ActionDisaster = "disaster" // the evidence a disaster takeover acts on
	ActionNothing  = "nothing"  // a step that selects nothing on its site
	ActionWarn     = "warn"     // a warning (lock copies not taken, …)
)

// PhaseOf is e's Action, or for journals written before events carried it,
// what the message's prefix says ("before: ", "after: ", "nothing to do").
func PhaseOf(e Event) string {
	if e.Action != "" {
		return e.Action
	}
	switch {
	case strings.HasPrefix(e.Message, "before: "):
		return ActionBefore
	case strings.HasPrefix(e.Message, "after: "):
		return ActionAfter
	case strings.HasPrefix(e.Message, "nothing to do"):
		return ActionNothing
	}
	return ""
}

// IntPtr is a helper for ExitCode.
func IntPtr(i int) *int { return &i }
