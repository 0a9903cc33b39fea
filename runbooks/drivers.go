package runbooks

import (
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

// layerTask builds the task of a layer step (haproxy, mongodb, activemq) for
// site, or nil when the inventory does not describe that layer.
func layerTask(base Task, spec *StepSpec, inv *inventory.Inventory, site string) *Task {
	t := base
	t.Spec = spec
	t.Layer = spec.Action
	t.ID = base.Step.Name + "/" + spec.Action
	l := checks.LayerNamed(spec.Action)
	if l == nil || !l.In(inv) {
		return nil
	}
	st, err := l.Step(inv, site, layer.StepSpec{State: spec.State, Mode: spec.Mode, Timeout: t.VerifyTimeout})
	if err != nil || st.Driver == nil {
		return nil // validated by the inventory; unreachable here
	}
	t.Driver, t.Host, t.Desired, t.Observe, t.Act = st.Driver, st.Host, st.Desired, st.Observe, st.Act
	return &t
}
