package runbooks

import (
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

// RunEnv is what a run knows that its compiled plan cannot. The Operation
// gives it to the Engine, and the Engine hands each driver call its
// task's TaskEnv, so a plan stays exactly what the compiler made (nothing
// is patched into its drivers).
type RunEnv struct {
	// Down are the sites whose loss was confirmed before the run acted:
	// their parts that cannot be observed count as down, not unknown.
	Down map[string]bool
	// Started is when the run began: an election under way since then
	// counts as the one the run waits for.
	Started time.Time
	// Force is the forced MongoDB promotion the operator confirmed, if any.
	Force *ForcePromotion
}

// TaskEnv is the run's environment as one task's driver sees it.
type TaskEnv struct {
	RunEnv
	// Warn records warnings about the task (journaled and rendered as
	// message events of the task).
	Warn func(lines []string)
}

// taskEnv is t's view of the engine's RunEnv.
func (e *Engine) taskEnv(t *Task) TaskEnv {
	env := TaskEnv{Warn: func(lines []string) {
		for _, l := range lines {
			e.emit(t, event.Event{Kind: event.Message, Message: "warning: " + l})
		}
	}}
	if e.Env != nil {
		env.RunEnv = *e.Env
	}
	return env
}
