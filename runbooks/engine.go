package runbooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/runbooks/event"
)

// Mode says how far the engine goes.
type Mode int

const (
	Execute Mode = iota // observe, act, verify
	DryRun              // observe read-only; never act
	Offline             // make no connection at all (the CI dry-run)
)

func (m Mode) String() string {
	switch m {
	case DryRun:
		return "plan"
	case Offline:
		return "plan-offline"
	}
	return "run"
}

// Clock is injected so tests control time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Engine runs plans. Its fields are its dependencies.
type Engine struct {
	Runner    services.HostRunner
	Sink      event.Sink
	Clock     Clock
	Mode      Mode
	Probe     services.Prober
	Parallel  int                // concurrent tasks; default 32
	Poll      time.Duration      // first verification interval; default 250ms, doubling up to 2s
	Hint      func(*Task) string // the command to inspect a task's host and service
	OutputMax int                // bytes of stdout/stderr kept per event; default 4096
	// Journal reports the first error that lost a journal record (nil:
	// every record so far is on disk). Once it does, no task acts any
	// more: an act the journal cannot record could not be resumed safely.
	Journal func() error
	// BeforeStep, when set, runs before a step's tasks (its before_step
	// hooks): an error stops the step (its tasks fail with the error, as a
	// failed step stops the run). AfterStep runs once its tasks ended.
	BeforeStep func(ctx context.Context, s *Step) error
	AfterStep  func(ctx context.Context, s *Step, ok bool)
	// Env is what the run knows that the plan cannot (nil: nothing),
	// handed to every driver call (RunEnv).
	Env *RunEnv
}

// TaskResult is what happened to one task.
type TaskResult struct {
	Task       *Task         `json:"-"`
	ID         string        `json:"task"`
	Outcome    event.Outcome `json:"outcome"`
	Observed   string        `json:"observed"`
	Offline    bool          `json:"offline,omitempty"` // planned without observing (plan --offline)
	Message    string        `json:"message,omitempty"`
	Hint       string        `json:"hint,omitempty"`
	Stderr     string        `json:"stderr,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
	VerifiedAt time.Time     `json:"verified_at,omitzero"`
}

// Result of a whole plan.
type Result struct {
	Outcome      event.Outcome
	Tasks        []TaskResult // in plan order
	Started      time.Time
	Ended        time.Time
	LastVerified time.Time // last successful verification (RTO end)
}

// Counts returns how many tasks ended in each outcome.
func (r *Result) Counts() map[event.Outcome]int {
	m := map[event.Outcome]int{}
	for _, t := range r.Tasks {
		m[t.Outcome]++
	}
	return m
}

// Problems returns the tasks that did not succeed (and were not planned).
func (r *Result) Problems() []TaskResult {
	var out []TaskResult
	for _, t := range r.Tasks {
		if !t.Outcome.Succeeded() && t.Outcome != event.Planned {
			out = append(out, t)
		}
	}
	return out
}

// TaskFunc runs one task; Middleware wraps it (timing, journal, dry-run…).
type TaskFunc func(ctx context.Context, t *Task) TaskResult

// Middleware decorates a TaskFunc.
type Middleware func(TaskFunc) TaskFunc

func (e *Engine) defaults() {
	if e.Clock == nil {
		e.Clock = RealClock
	}
	if e.Sink == nil {
		e.Sink = event.Discard
	}
	if e.Parallel <= 0 {
		e.Parallel = 32
	}
	if e.Poll <= 0 {
		e.Poll = 250 * time.Millisecond
	}
	if e.OutputMax <= 0 {
		e.OutputMax = 4096
	}
	if e.Probe == nil {
		e.Probe = services.RunProbe
	}
}

// pipeline composes the task function: the core (converge, or plan in the
// read-only modes) inside timing and the step.start/step.end events.
func (e *Engine) pipeline() TaskFunc {
	core := e.converge
	if e.Mode != Execute {
		core = e.plan
	}
	f := TaskFunc(core)
	for _, m := range []Middleware{e.timed, e.reported} {
		f = m(f)
	}
	return f
}

// timed measures the task.
func (e *Engine) timed(next TaskFunc) TaskFunc {
	return func(ctx context.Context, t *Task) TaskResult {
		start := e.Clock.Now()
		r := next(ctx, t)
		r.Duration = e.Clock.Now().Sub(start)
		return r
	}
}

// reported emits step.start and step.end around the task.
func (e *Engine) reported(next TaskFunc) TaskFunc {
	return func(ctx context.Context, t *Task) TaskResult {
		e.emit(t, event.Event{Kind: event.StepStart, Expected: t.Desired, Command: t.Act})
		r := next(ctx, t)
		r.Task, r.ID = t, t.ID
		e.emit(t, event.Event{Kind: event.StepEnd, Outcome: r.Outcome, Observed: r.Observed, Expected: t.Desired,
			Message: r.Message, Hint: r.Hint, Stderr: r.Stderr, Duration: r.Duration})
		return r
	}
}

func (e *Engine) emit(t *Task, ev event.Event) {
	ev.Task, ev.Step, ev.Host, ev.Service = t.ID, t.Step.Name, t.Host, t.Service
	if ev.Action == "" {
		ev.Action = t.Action
	}
	e.Sink.Emit(ev)
}

// observation of a task's current state.
type observation struct {
	State   string // running, stopped, "check passes", …
	Holds   bool   // the desired state holds
	Known   bool   // the state could be observed
	Detail  string
	Exit    *int
	Reached time.Time // see Observation.Reached
}

// ActionWait is the Action of the step.act events of a Waiter.
const ActionWait = "wait"

func (e *Engine) observe(ctx context.Context, t *Task) observation {
	if t.Driver != nil {
		cctx, cancel := context.WithTimeout(ctx, t.CommandTimeout)
		o := t.Driver.Observe(cctx, e.taskEnv(t))
		cancel()
		return observation{State: o.State, Holds: o.Holds, Known: o.Known, Detail: o.Detail, Reached: o.Reached}
	}
	if !t.Observable() {
		return observation{State: "not observable", Detail: "the step has no check command"}
	}
	cctx, cancel := context.WithTimeout(ctx, t.CommandTimeout)
	res, err := e.Runner.Run(cctx, t.Host, t.Observe)
	cancel()
	if err != nil {
		return observation{State: "unknown", Detail: err.Error()}
	}
	code := res.ExitCode
	o := observation{Exit: &code, Known: true}
	if t.Action == ActionRun {
		o.Holds = code == 0
		o.State = "check passes"
		if code != 0 {
			o.State = fmt.Sprintf("check exits %d", code)
		}
		return o
	}
	st := services.Interpret(code)
	o.State = string(st)
	if st == services.Unknown {
		o.Known = false
		o.Detail = fmt.Sprintf("status command exited %d (expected 0 running, 1-3 stopped): %s", code, strings.TrimSpace(event.Trim(res.Stderr, 300)))
		return o
	}
	o.Holds = o.State == t.Desired
	if o.Holds && t.Probe != nil {
		pr := e.Probe(ctx, t.Probe)
		if !pr.OK {
			o.Holds, o.Known = false, pr.Known
			o.State = "running, probe failing"
			o.Detail = pr.Detail
		} else {
			o.State = "running, healthy"
			o.Detail = pr.Detail
		}
	}
	return o
}

// plan is the read-only core: observe (unless offline) and say what would run.
func (e *Engine) plan(ctx context.Context, t *Task) TaskResult {
	if e.Mode == Offline {
		return TaskResult{Outcome: event.Planned, Observed: "not observed (offline)", Offline: true, Message: planMessage(t)}
	}
	o := e.observe(ctx, t)
	e.emit(t, event.Event{Kind: event.StepObserve, Observed: o.State, Expected: t.Desired, Message: o.Detail, ExitCode: o.Exit, Command: t.Observe})
	switch {
	case o.Holds:
		return TaskResult{Outcome: event.Skipped, Observed: o.State, Message: "already " + o.State}
	case !t.Observable():
		return TaskResult{Outcome: event.Planned, Observed: o.State, Message: "cannot be simulated (no check command); " + planMessage(t)}
	case !o.Known:
		return TaskResult{Outcome: event.Planned, Observed: o.State, Message: "state unknown (" + o.Detail + "); " + planMessage(t)}
	}
	return TaskResult{Outcome: event.Planned, Observed: o.State, Message: planMessage(t)}
}

func planMessage(t *Task) string {
	return fmt.Sprintf("would run %q on %s", t.Act, t.Host)
}

// converge is the real core: observe, skip what holds, act, verify.
func (e *Engine) converge(ctx context.Context, t *Task) TaskResult {
	o := e.observe(ctx, t)
	e.emit(t, event.Event{Kind: event.StepObserve, Observed: o.State, Expected: t.Desired, Message: o.Detail, ExitCode: o.Exit, Command: t.Observe})
	if ctx.Err() != nil {
		return e.cancelled(t, o.State)
	}
	if o.Holds {
		return TaskResult{Outcome: event.Skipped, Observed: o.State, Message: "already " + o.State}
	}
	acted, actErr, last, stop := e.act(ctx, t, o.State)
	if stop != nil {
		return *stop
	}
	if !acted && actErr == nil {
		return last // the command ran and failed: the state is known wrong
	}
	if !acted && actErr != nil && t.Action == ActionRun && !t.Observable() {
		return TaskResult{Outcome: event.Unknown, Observed: o.State, Hint: e.hint(t),
			Message: fmt.Sprintf("run on host %s: outcome unknown: %v", t.Host, actErr)}
	}
	if t.Action == ActionRun && !t.Observable() {
		return TaskResult{Outcome: event.OK, Observed: "command exited 0", Message: "no check command: success means the command exited 0", VerifiedAt: e.Clock.Now()}
	}
	return e.verify(ctx, t, actErr)
}

// actTry is one attempt at a task's action: it succeeded (acted), it ran
// and failed (failed, the task's result if no later attempt succeeds), the
// run was cancelled meanwhile, or else its outcome is not known (err).
type actTry struct {
	acted     bool
	failed    *TaskResult
	cancelled bool
	err       error
}

// act runs the task's action, with retries and backoff, until an attempt
// succeeds. It returns whether one did; else the last error when the
// outcome of the last attempt is not known, or last, the result of the
// attempt that ran and failed. stop, when not nil, is the task's result
// now: cancelled, or not acted because the journal is broken. observed is
// the task's state before acting.
func (e *Engine) act(ctx context.Context, t *Task, observed string) (acted bool, actErr error, last TaskResult, stop *TaskResult) {
	backoff := t.Backoff
	for attempt := 1; attempt <= t.Retries+1; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				r := e.cancelled(t, observed)
				return false, nil, last, &r
			case <-e.Clock.After(backoff):
			}
			backoff *= 2
		}
		if r, broken := e.journalBroken(t, observed); broken {
			return false, nil, last, &r
		}
		var try actTry
		if t.Driver != nil {
			try = e.actDriver(ctx, t, attempt, observed)
		} else {
			try = e.actCommand(ctx, t, attempt, observed)
		}
		switch {
		case try.cancelled:
			r := e.cancelled(t, observed)
			return false, nil, last, &r
		case try.acted:
			return true, nil, last, nil
		case try.failed != nil:
			actErr, last = nil, *try.failed
		default:
			actErr = try.err
		}
	}
	return false, actErr, last, nil
}

// actDriver is one attempt at the action of a task with a driver (a layer
// operation); the driver bounds its own waits.
func (e *Engine) actDriver(ctx context.Context, t *Task, attempt int, observed string) actTry {
	actStart := e.Clock.Now()
	pe := event.Event{Kind: event.Progress, Expected: t.Desired, Message: t.Act, Attempt: attempt}
	if dl, ok := ctx.Deadline(); ok {
		pe.Deadline = dl
	}
	e.emit(t, pe)
	err := t.Driver.Act(ctx, e.taskEnv(t))
	ev := event.Event{Kind: event.StepAct, Command: t.Act, Attempt: attempt, Duration: e.Clock.Now().Sub(actStart)}
	if err != nil {
		ev.Message = err.Error()
	}
	if w, ok := t.Driver.(Waiter); ok && w.OnlyWaits(e.taskEnv(t)) {
		ev.Action = ActionWait
	}
	e.emit(t, ev)
	switch {
	case err == nil:
		return actTry{acted: true}
	case ctx.Err() != nil:
		return actTry{cancelled: true}
	case errors.Is(err, ErrActFailed):
		return actTry{failed: &TaskResult{Outcome: event.Failed, Observed: observed, Message: fmt.Sprintf("%s on %s: %v", t.Action, t.Site, err), Hint: e.hint(t)}}
	}
	return actTry{err: err}
}

// actCommand is one attempt at the action command of a task on its host,
// bounded by the task's command timeout.
func (e *Engine) actCommand(ctx context.Context, t *Task, attempt int, observed string) actTry {
	e.emit(t, event.Event{Kind: event.Progress, Expected: t.Desired, Message: t.Act, Attempt: attempt, Deadline: e.Clock.Now().Add(t.CommandTimeout)})
	cctx, cancel := context.WithTimeout(ctx, t.CommandTimeout)
	res, err := e.Runner.Run(cctx, t.Host, t.Act)
	cancel()
	ev := event.Event{Kind: event.StepAct, Command: t.Act, Attempt: attempt, Duration: res.Duration,
		Stdout: event.Trim(res.Stdout, e.OutputMax), Stderr: event.Trim(res.Stderr, e.OutputMax)}
	if err != nil {
		ev.Message = err.Error()
		e.emit(t, ev)
		if ctx.Err() != nil {
			return actTry{cancelled: true}
		}
		return actTry{err: err}
	}
	code := res.ExitCode
	ev.ExitCode = &code
	e.emit(t, ev)
	if code == 0 {
		return actTry{acted: true}
	}
	stderr := strings.TrimSpace(event.Trim(res.Stderr, 1000))
	return actTry{failed: &TaskResult{Outcome: event.Failed, Observed: observed, Stderr: stderr,
		Message: fmt.Sprintf("%s %s on host %s: expected the command to exit 0, it exited %d after %d attempt(s)%s",
			t.Action, nameOf(t), t.Host, code, attempt, suffix(stderr)),
		Hint: e.hint(t)}}
}

// journalBroken stops a task before it acts once the journal has lost a
// record (disk full, I/O error), and says so.
func (e *Engine) journalBroken(t *Task, observed string) (TaskResult, bool) {
	if e.Journal == nil {
		return TaskResult{}, false
	}
	err := e.Journal()
	if err == nil {
		return TaskResult{}, false
	}
	return TaskResult{Outcome: event.Failed, Observed: observed, Hint: e.hint(t),
		Message: fmt.Sprintf("not acted: the journal cannot be written (%v); sitectl stops before any further action. Free the space or fix the state directory, then resume", err)}, true
}

// verified records that the desired state holds.
func (e *Engine) verified(t *Task, state, detail string, reached time.Time) TaskResult {
	e.emit(t, event.Event{Kind: event.StepVerify, Observed: state, Expected: t.Desired, Outcome: event.OK, Message: detail, Reached: reached})
	return TaskResult{Outcome: event.OK, Observed: state, VerifiedAt: e.Clock.Now()}
}

// verify polls the observation until the desired state holds or the
// deadline passes.
func (e *Engine) verify(ctx context.Context, t *Task, actErr error) TaskResult {
	// A driver whose action waited for the state (a MongoDB election) ends
	// it with a fresh observation: when that holds, it is the first check.
	if ao, ok := t.Driver.(ActObserver); ok && actErr == nil {
		if o, fresh := ao.ActObservation(); fresh && o.Holds {
			return e.verified(t, o.State, o.Detail, o.Reached)
		}
	}
	deadline := e.Clock.Now().Add(t.VerifyTimeout)
	wait := e.Poll
	var o observation
	polls := 0
	for {
		o = e.observe(ctx, t)
		polls++
		if ctx.Err() != nil {
			return e.cancelled(t, o.State)
		}
		if o.Holds {
			return e.verified(t, o.State, o.Detail, o.Reached)
		}
		if !e.Clock.Now().Add(wait).Before(deadline) {
			break
		}
		e.emit(t, event.Event{Kind: event.Progress, Observed: o.State, Expected: t.Desired, Message: o.Detail, Attempt: polls, Deadline: deadline})
		select {
		case <-ctx.Done():
			return e.cancelled(t, o.State)
		case <-e.Clock.After(wait):
		}
		if wait *= 2; wait > 2*time.Second {
			wait = 2 * time.Second
		}
	}
	e.emit(t, event.Event{Kind: event.StepVerify, Observed: o.State, Expected: t.Desired, Message: o.Detail})
	msg := fmt.Sprintf("%s %s on host %s: expected %s within %s, observed %s after %d checks", t.Action, nameOf(t), t.Host, t.Desired, t.VerifyTimeout, o.State, polls)
	if t.Layer != "" {
		msg = fmt.Sprintf("%s (%s layer, site %s): expected %s within %s, observed %s after %d checks", t.Step.Name, t.Layer, t.Site, t.Desired, t.VerifyTimeout, o.State, polls)
	}
	if o.Detail != "" {
		msg += " (" + o.Detail + ")"
	}
	if actErr != nil {
		msg += "; the action itself did not report back: " + actErr.Error()
	}
	if o.Known && actErr == nil {
		return TaskResult{Outcome: event.Failed, Observed: o.State, Message: msg, Hint: e.hint(t)}
	}
	return TaskResult{Outcome: event.Unknown, Observed: o.State, Message: msg, Hint: e.hint(t)}
}

func (e *Engine) cancelled(t *Task, observed string) TaskResult {
	return TaskResult{Outcome: event.Cancelled, Observed: observed, Message: "cancelled before the step finished; its state is whatever it was when interrupted"}
}

func (e *Engine) hint(t *Task) string {
	if e.Hint != nil {
		return e.Hint(t)
	}
	return "sitectl status --site " + t.Site
}

func nameOf(t *Task) string {
	if t.Service != "" {
		return t.Service
	}
	return t.Step.Name
}

func suffix(stderr string) string {
	if stderr == "" {
		return ""
	}
	return ": " + stderr
}

// ErrStopped marks steps not run because an earlier step did not succeed.
var ErrStopped = errors.New("not run: an earlier step did not succeed")

// Run executes the plan. Steps run when their dependencies have succeeded;
// tasks of a step run in parallel. After the first task that does not
// succeed, no new step starts (running ones finish) and the rest are
// reported blocked. The result is never "ok" unless every task is ok or
// skipped.
func (e *Engine) Run(ctx context.Context, p *Plan) *Result {
	e.defaults()
	r := &planRun{e: e, run: e.pipeline(), results: map[string]TaskResult{}, done: map[string]chan struct{}{},
		stepOK: map[string]bool{}, sem: make(chan struct{}, e.Parallel)}
	res := &Result{Started: e.Clock.Now()}
	for _, s := range p.Steps {
		r.done[s.Name] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for _, s := range p.Steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.done[s.Name])
			r.step(ctx, s)
		}()
	}
	wg.Wait()
	res.Ended = e.Clock.Now()
	for _, t := range p.Tasks() {
		tr := r.results[t.ID]
		res.Tasks = append(res.Tasks, tr)
		if tr.VerifiedAt.After(res.LastVerified) {
			res.LastVerified = tr.VerifiedAt
		}
	}
	res.Outcome = overall(ctx, res.Tasks)
	return res
}

// planRun is the shared state of one Run: each step's goroutine waits on
// its dependencies' done channels; mu guards results, stepOK and stopped;
// sem bounds the tasks running at once.
type planRun struct {
	e       *Engine
	run     TaskFunc
	mu      sync.Mutex
	results map[string]TaskResult
	done    map[string]chan struct{}
	stepOK  map[string]bool
	stopped bool
	sem     chan struct{}
}

// step runs step s once its dependencies have ended: not at all when one
// did not succeed, the run stopped (in Execute mode) or was cancelled;
// else its before_step hook, then its tasks in parallel, then AfterStep.
func (r *planRun) step(ctx context.Context, s *Step) {
	e := r.e
	var blockedBy string
	for _, a := range s.After {
		<-r.done[a] // every step closes its channel, even when cancelled
		r.mu.Lock()
		if !r.stepOK[a] && blockedBy == "" {
			blockedBy = a
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	halt := r.stopped && e.Mode == Execute
	r.mu.Unlock()
	if blockedBy != "" || halt || ctx.Err() != nil {
		why := "not run: step " + blockedBy + " did not succeed"
		outcome := event.Blocked
		if blockedBy == "" {
			why = ErrStopped.Error()
		}
		if ctx.Err() != nil {
			why, outcome = "not run: the run was cancelled", event.Cancelled
		}
		r.endTasks(s, outcome, why)
		return
	}
	if e.BeforeStep != nil {
		if err := e.BeforeStep(ctx, s); err != nil {
			r.endTasks(s, event.Failed, err.Error())
			r.mu.Lock()
			r.stepOK[s.Name], r.stopped = false, true
			r.mu.Unlock()
			return
		}
	}
	if len(s.Tasks) == 0 {
		e.Sink.Emit(event.Event{Kind: event.Message, Action: event.ActionNothing, Step: s.Name, Message: fmt.Sprintf("nothing to do: step %s selects nothing on site %s", s.Name, s.Site)})
	}
	ok := r.runTasks(ctx, s)
	if e.AfterStep != nil {
		e.AfterStep(ctx, s, ok)
	}
	r.mu.Lock()
	r.stepOK[s.Name] = ok
	r.mu.Unlock()
}

// endTasks ends every task of s without running it, with outcome and why.
func (r *planRun) endTasks(s *Step, outcome event.Outcome, why string) {
	for _, t := range s.Tasks {
		tr := TaskResult{Task: t, ID: t.ID, Outcome: outcome, Observed: "not observed", Message: why}
		r.e.emit(t, event.Event{Kind: event.StepEnd, Outcome: outcome, Message: why})
		r.mu.Lock()
		r.results[t.ID] = tr
		r.mu.Unlock()
	}
}

// runTasks runs the tasks of s in parallel (within the engine's Parallel
// bound) and says whether they all succeeded (or were planned); one that
// did not stops the run.
func (r *planRun) runTasks(ctx context.Context, s *Step) bool {
	var twg sync.WaitGroup
	ok := true
	for _, t := range s.Tasks {
		twg.Add(1)
		go func() {
			defer twg.Done()
			r.sem <- struct{}{}
			defer func() { <-r.sem }()
			tr := r.run(ctx, t)
			r.mu.Lock()
			r.results[t.ID] = tr
			if !tr.Outcome.Succeeded() && tr.Outcome != event.Planned {
				ok = false
				r.stopped = true
			}
			r.mu.Unlock()
		}()
	}
	twg.Wait()
	return ok
}

func overall(ctx context.Context, tasks []TaskResult) event.Outcome {
	c := map[event.Outcome]int{}
	for _, t := range tasks {
		c[t.Outcome]++
	}
	switch {
	case ctx.Err() != nil || c[event.Cancelled] > 0:
		return event.Cancelled
	case c[event.Failed] > 0:
		return event.Failed
	case c[event.Unknown] > 0 || c[event.Blocked] > 0:
		return event.Unknown
	case c[event.Planned] > 0:
		return event.Planned
	}
	return event.OK
}
