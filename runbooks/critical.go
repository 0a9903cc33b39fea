package runbooks

import (
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// TaskTime is what one task of a run cost, read from its journal.
type TaskTime struct {
	Task    string
	Step    string
	Outcome event.Outcome
	// Intrinsic is the time the deployment itself needed: from the start of
	// the task's first action (the remote command, the reconfig, the
	// HAProxy state change) to the end of its verification. A task that
	// only waits (a MongoDB election, ActiveMQ consumers) has no action:
	// its whole wait is intrinsic. A skipped task costs nothing.
	//
	// A task of a step that nothing precedes, whose verification says when
	// the deployment reached the state (Reached: a MongoDB election's
	// date), waited for something sitectl did not cause and that was under
	// way before it could start waiting: it costs at least from the run's
	// start to Reached. (A takeover after a site loss cannot end before the
	// election that the loss started, however fast its preflight.)
	Intrinsic time.Duration
	Total     time.Duration // step.start to step.end
}

// PathReport splits a run's wall time into the critical path (the waits
// the deployment imposed, along the runbook's order) and the rest
// (sitectl's own work: preflight observation, lock, observing before each
// action, polling granularity, the verdict after the run).
type PathReport struct {
	Span     time.Duration // run.start to run.end in the journal
	Critical time.Duration // longest chain of steps by their slowest task's Intrinsic
	Path     []string      // the steps of that chain, in order
	StepCost map[string]time.Duration
	Before   time.Duration // run.start to the first step.start: preflight, confirmation, lock
	After    time.Duration // the last step.end to run.end: the after-snapshot and verdict
	// NoSteps: no step started (a run refused in preflight): the whole
	// Span was before any step, and Before and After are zero.
	NoSteps bool
	Tasks   []TaskTime
}

// Overhead is Span minus Critical.
func (p PathReport) Overhead() time.Duration { return p.Span - p.Critical }

// CriticalPath measures run against plan (the same runbook compiled for
// the same site, for the order of its steps).
func CriticalPath(run journal.Run, plan *Plan) PathReport {
	w := collectTaskTimes(run)
	rep := PathReport{StepCost: map[string]time.Duration{}}
	runEnd := run.Ended
	if runEnd.IsZero() {
		runEnd = run.Last // interrupted
	}
	rep.Span = runEnd.Sub(run.Started)
	rep.NoSteps = w.first.IsZero()
	if !w.first.IsZero() {
		rep.Before = w.first.Sub(run.Started)
	}
	if !w.last.IsZero() {
		rep.After = runEnd.Sub(w.last)
	}
	rep.addTasks(w, plan, run.Started)
	// longest path through the steps (plan.Steps is in a topological order)
	if plan == nil {
		return rep
	}
	rep.longestPath(plan)
	return rep
}

// taskAcc is what the journal says of one task's times.
type taskAcc struct {
	step            string
	start, end, act time.Time
	reached         time.Time
	outcome         event.Outcome
}

// taskWalk is the tasks of a journal in the order they first appear, and
// the first step.start and last step.end of the run.
type taskWalk struct {
	tasks       map[string]*taskAcc
	order       []string
	first, last time.Time
}

// collectTaskTimes reads each task's start, first action, verified
// "reached" time, end and outcome from run's journal.
func collectTaskTimes(run journal.Run) taskWalk {
	w := taskWalk{tasks: map[string]*taskAcc{}}
	for _, e := range run.Events {
		if e.Task == "" {
			continue
		}
		a, ok := w.tasks[e.Task]
		if !ok {
			a = &taskAcc{step: e.Step}
			w.tasks[e.Task] = a
			w.order = append(w.order, e.Task)
		}
		switch e.Kind {
		case event.StepStart:
			a.start = e.Time
			if w.first.IsZero() || e.Time.Before(w.first) {
				w.first = e.Time
			}
		case event.StepAct:
			// a driver that only waits has no action: the whole step is
			// the deployment's wait
			if a.act.IsZero() && e.Action != ActionWait {
				a.act = e.Time.Add(-e.Duration)
			}
		case event.StepVerify:
			if e.Outcome == event.OK && !e.Reached.IsZero() {
				a.reached = e.Reached
			}
		case event.StepEnd:
			a.end, a.outcome = e.Time, e.Outcome
			if e.Time.After(w.last) {
				w.last = e.Time
			}
		}
	}
	return w
}

// addTasks adds each task's times and each step's cost (its slowest task's
// intrinsic time). A task of a root step whose verification says when the
// state was reached costs at least from the run's start (started) to then.
func (rep *PathReport) addTasks(w taskWalk, plan *Plan, started time.Time) {
	root := map[string]bool{}
	if plan != nil {
		for _, s := range plan.Steps {
			root[s.Name] = len(s.After) == 0
		}
	}
	for _, id := range w.order {
		a := w.tasks[id]
		tt := TaskTime{Task: id, Step: a.step, Outcome: a.outcome}
		if !a.end.IsZero() && !a.start.IsZero() {
			tt.Total = a.end.Sub(a.start)
		}
		switch {
		case a.end.IsZero() || a.outcome == event.Skipped:
		case !a.act.IsZero():
			tt.Intrinsic = a.end.Sub(a.act)
		default:
			tt.Intrinsic = tt.Total
		}
		if root[a.step] && !a.reached.IsZero() && !a.end.IsZero() && a.outcome != event.Skipped {
			// clamped: a clock ahead of ours cannot push it past the
			// verification; a state reached before the run costs nothing more
			r := a.reached
			if r.After(a.end) {
				r = a.end
			}
			tt.Intrinsic = max(tt.Intrinsic, r.Sub(started))
		}
		rep.Tasks = append(rep.Tasks, tt)
		rep.StepCost[a.step] = max(rep.StepCost[a.step], tt.Intrinsic)
	}
}

// longestPath sets the critical path: the chain of plan's steps (in a
// topological order) with the largest sum of step costs.
func (rep *PathReport) longestPath(plan *Plan) {
	best := map[string]time.Duration{}
	prev := map[string]string{}
	var end string
	for _, s := range plan.Steps {
		var from time.Duration
		for _, dep := range s.After {
			if _, ok := prev[s.Name]; !ok || best[dep] > from {
				from, prev[s.Name] = best[dep], dep
			}
		}
		best[s.Name] = from + rep.StepCost[s.Name]
		if end == "" || best[s.Name] > best[end] {
			end = s.Name
		}
	}
	rep.Critical = best[end]
	for s := end; s != ""; s = prev[s] {
		rep.Path = append([]string{s}, rep.Path...)
	}
}
