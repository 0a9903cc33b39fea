package runbooks

import (
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/runbooks/event"
)

// The driver contract lives in checks/layer, beside the layers that
// implement it; these are its names in runbooks.
type (
	// Driver observes and changes a part of the deployment that is not a
	// service on a host (layer.Driver).
	Driver = layer.Driver
	// ActObserver is a Driver whose Act ends by observing the state it
	// waited for.
	ActObserver = layer.ActObserver
	// Waiter is a Driver whose Act changes nothing: it only waits.
	Waiter = layer.Waiter
	// Observation is what a Driver saw.
	Observation = layer.Observation
	// RunEnv is what a run knows that its compiled plan cannot. The
	// Operation gives it to the Engine, and the Engine hands each driver
	// call its task's TaskEnv, so a plan stays exactly what the compiler
	// made (nothing is patched into its drivers).
	RunEnv = layer.RunEnv
	// TaskEnv is the run's environment as one task's driver sees it.
	TaskEnv = layer.Env
	// ForcePromotion is the operator's confirmed forced MongoDB promotion.
	ForcePromotion = layer.ForcePromotion
)

// ErrActFailed marks a driver action that is known to have failed.
var ErrActFailed = layer.ErrActFailed

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
