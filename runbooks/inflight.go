package runbooks

import (
	"sort"
	"time"

	"github.com/sitectl/sitectl/runbooks/journal"
)

// KillGrace is how long after a command's deadline the host's coreutils
// timeout sends SIGKILL (the `timeout -k 2` of adapters/remote).
const KillGrace = 2 * time.Second

// RoundUp is the most the host's deadline can exceed the command's own:
// adapters/remote gives coreutils timeout whole seconds, rounded up.
const RoundUp = time.Second

// InFlight is a task of an interrupted run that had started but never
// ended: its last command may still be running on the host, because sshd
// does not end a command whose client died. The host ends it at its own
// deadline (commands run under coreutils timeout), so EndsBy bounds it.
type InFlight struct {
	Task    string
	Host    string
	Command string    // the command that may still run ("" when unknown)
	Last    time.Time // time of the task's last journaled event
	EndsBy  time.Time // Last + the task's command timeout + RoundUp + KillGrace
	Local   bool      // a layer step sitectl drove itself: nothing outlives the process
}

// InFlightTasks lists the tasks of run that have a step.start and no
// step.end, bounded by the command timeouts of plan (the same runbook,
// compiled again for the resume). A task of a layer driver (MongoDB,
// HAProxy, ActiveMQ) runs inside sitectl and died with it: Local, EndsBy
// is Last. Sorted by EndsBy.
func InFlightTasks(run journal.Run, plan *Plan) []InFlight {
	byID := map[string]*Task{}
	if plan != nil {
		for _, t := range plan.Tasks() {
			byID[t.ID] = t
		}
	}
	outcomes := run.TaskOutcomes() // "" for a task that never ended
	open := map[string]*InFlight{}
	var order []string
	for _, e := range run.Events {
		if e.Task == "" || outcomes[e.Task] != "" {
			continue
		}
		f, ok := open[e.Task]
		if !ok {
			f = &InFlight{Task: e.Task}
			open[e.Task] = f
			order = append(order, e.Task)
		}
		if e.Time.After(f.Last) {
			f.Last = e.Time
		}
		if f.Host == "" {
			f.Host = e.Host
		}
	}
	var out []InFlight
	for _, id := range order {
		f := open[id]
		// Unknown task (the plan changed shape) or a shell task: bound it
		// by the longest command timeout any task of the plan has.
		var timeout time.Duration
		if t, ok := byID[id]; ok {
			if t.Driver != nil {
				f.Local, f.EndsBy = true, f.Last
				out = append(out, *f)
				continue
			}
			timeout = t.CommandTimeout
			// the act command when the task had observed already; the
			// observe command otherwise: both end by the same bound
			f.Command = t.Act
		} else if plan != nil {
			for _, t := range plan.Tasks() {
				timeout = max(timeout, t.CommandTimeout)
			}
		}
		f.EndsBy = f.Last.Add(timeout + RoundUp + KillGrace)
		out = append(out, *f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].EndsBy.Before(out[j].EndsBy) })
	return out
}
