package runbooks

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sitectl/sitectl/inventory"
)

// Plan is a runbook bound to a site of an inventory: the ordered steps and,
// per step, the tasks (one per host and service) that would run.
type Plan struct {
	Runbook   *Runbook
	Site      string // the site the runbook was asked for (--site)
	Other     string // the other site
	Steps     []*Step
	Inventory *inventory.Inventory
}

// Step is a compiled step: its tasks run in parallel once every step named
// in After has succeeded.
type Step struct {
	Name        string // qualified: include-step/step for included runbooks
	Description string
	Action      string
	Site        string
	After       []string
	Tasks       []*Task
	Spec        *StepSpec
	Origin      string // runbook the step comes from
}

// Task is one unit of work: an action for one service on one host, or a
// command on one host.
type Task struct {
	ID      string // step/host/service (or step/host for run)
	Step    *Step
	Site    string
	Host    string
	Service string
	Action  string
	Desired string // running, stopped, or "check passes"
	Act     string // the command that changes state
	Observe string // the read-only command that observes it ("" when not observable)
	Probe   *inventory.Probe
	// Driver, when set, observes and acts instead of the shell commands:
	// MongoDB elections, HAProxy server states, ActiveMQ consumers. Observe
	// and Act then only describe what it does (plan output).
	Driver Driver
	Layer  string // mongodb, haproxy, activemq for driver tasks
	Spec   *StepSpec

	CommandTimeout time.Duration
	VerifyTimeout  time.Duration
	Retries        int
	Backoff        time.Duration
}

// Observable reports whether the task's state can be observed read-only.
func (t *Task) Observable() bool { return t.Observe != "" || t.Driver != nil }

// Compile binds runbook name from the catalog to site.
func (c *Catalog) Compile(name string, inv *inventory.Inventory, site string) (*Plan, error) {
	rb, err := c.Get(name)
	if err != nil {
		return nil, err
	}
	target := inv.Site(site)
	if target == nil {
		var names []string
		for _, s := range inv.Sites {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("no site %q in inventory %s (sites: %s)", site, inv.File, strings.Join(names, ", "))
	}
	other := inv.Other(site)
	if other == nil {
		return nil, fmt.Errorf("inventory %s has no site other than %q", inv.File, site)
	}
	p := &Plan{Runbook: rb, Site: target.Name, Other: other.Name, Inventory: inv}
	steps, _, err := c.expand(rb, inv, target.Name, other.Name, "", nil)
	if err != nil {
		return nil, err
	}
	p.Steps, err = toposort(steps)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// expand compiles rb's steps for (target, other) with names prefixed by
// prefix. It returns the steps and, per step name of rb, the qualified names
// it produced (one step, or all steps of an include).
func (c *Catalog) expand(rb *Runbook, inv *inventory.Inventory, target, other, prefix string, stack []string) ([]*Step, map[string][]string, error) {
	if slices.Contains(stack, rb.Name) {
		return nil, nil, fmt.Errorf("runbooks include each other in a cycle: %s -> %s", strings.Join(stack, " -> "), rb.Name)
	}
	stack = append(stack, rb.Name)
	var all []*Step
	produced := map[string][]string{}
	roots := map[string][]*Step{} // include step name -> steps of the include with no internal predecessor
	for _, spec := range rb.Steps {
		site, oth := target, other
		if spec.Site == "other" {
			site, oth = other, target
		}
		qname := prefix + spec.Name
		if spec.Action == ActionInclude {
			sub, err := c.Get(spec.Runbook)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: step %q: %w", spec.Pos, spec.Name, err)
			}
			steps, _, err := c.expand(sub, inv, site, oth, qname+"/", stack)
			if err != nil {
				return nil, nil, err
			}
			for _, s := range steps {
				produced[spec.Name] = append(produced[spec.Name], s.Name)
				if len(s.After) == 0 {
					roots[spec.Name] = append(roots[spec.Name], s)
				}
			}
			all = append(all, steps...)
			continue
		}
		st := &Step{Name: qname, Description: spec.Description, Action: spec.Action, Site: site, Spec: spec, Origin: rb.Name}
		st.Tasks = compileTasks(st, spec, inv, site)
		produced[spec.Name] = []string{qname}
		all = append(all, st)
	}
	// wire "after" now that every step's expansion is known
	byName := map[string]*Step{}
	for _, s := range all {
		byName[s.Name] = s
	}
	for _, spec := range rb.Steps {
		var deps []string
		for _, a := range spec.After {
			deps = append(deps, produced[a]...)
		}
		if len(deps) == 0 {
			continue
		}
		if spec.Action == ActionInclude {
			for _, r := range roots[spec.Name] {
				r.After = append(r.After, deps...)
			}
			continue
		}
		byName[prefix+spec.Name].After = append(byName[prefix+spec.Name].After, deps...)
	}
	return all, produced, nil
}

func compileTasks(st *Step, spec *StepSpec, inv *inventory.Inventory, site string) []*Task {
	s := inv.Site(site)
	cmdTimeout := inv.TimeoutFor(nil)
	if spec.Timeout > 0 {
		cmdTimeout = spec.Timeout.D()
	}
	verify := inv.Defaults.VerifyTimeout.D()
	if spec.VerifyTimeout > 0 {
		verify = spec.VerifyTimeout.D()
	}
	backoff := spec.Backoff.D()
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	base := Task{Step: st, Site: site, Action: spec.Action, CommandTimeout: cmdTimeout, VerifyTimeout: verify, Retries: spec.Retries, Backoff: backoff}
	var tasks []*Task
	switch spec.Action {
	case ActionStart, ActionStop:
		for _, svc := range s.Services {
			if !spec.Select.Matches(svc) {
				continue
			}
			for _, h := range svc.OnHosts() {
				t := base
				t.ID = st.Name + "/" + h + "/" + svc.Name
				t.Host, t.Service = h, svc.Name
				if spec.Timeout == 0 { // the step's own timeout, else the service's rule
					t.CommandTimeout = inv.TimeoutFor(svc)
				}
				t.Observe = svc.Status
				if spec.Action == ActionStart {
					t.Desired, t.Act, t.Probe = "running", svc.Start, svc.Probe
				} else {
					t.Desired, t.Act = "stopped", svc.Stop
				}
				tasks = append(tasks, &t)
			}
		}
	case ActionHAProxy, ActionMongoDB, ActionActiveMQ:
		if t := layerTask(base, spec, inv, site); t != nil {
			tasks = append(tasks, t)
		}
	case ActionRun:
		hosts := slices.Clone(spec.Hosts)
		if spec.Select != nil {
			for _, svc := range s.Services {
				if spec.Select.Matches(svc) {
					for _, h := range svc.OnHosts() {
						if !slices.Contains(hosts, h) {
							hosts = append(hosts, h)
						}
					}
				}
			}
		}
		for _, h := range hosts {
			t := base
			t.ID = st.Name + "/" + h
			t.Host = h
			t.Desired = "check passes"
			t.Act, t.Observe = spec.Command, spec.Check
			tasks = append(tasks, &t)
		}
	}
	return tasks
}

// toposort orders steps so that each comes after its dependencies, keeping
// the runbook's listing order among independent steps.
func toposort(steps []*Step) ([]*Step, error) {
	idx := map[string]int{}
	for i, s := range steps {
		idx[s.Name] = i
	}
	done := map[string]bool{}
	var out []*Step
	for len(out) < len(steps) {
		progressed := false
		for _, s := range steps {
			if done[s.Name] {
				continue
			}
			ready := true
			for _, a := range s.After {
				if _, ok := idx[a]; !ok {
					return nil, fmt.Errorf("step %q comes after unknown step %q", s.Name, a)
				}
				if !done[a] {
					ready = false
				}
			}
			if ready {
				done[s.Name] = true
				out = append(out, s)
				progressed = true
			}
		}
		if !progressed {
			return nil, fmt.Errorf("steps form a cycle")
		}
	}
	return out, nil
}

// Levels groups the plan's steps into waves that can run at the same time:
// every step of wave n depends only on steps of earlier waves.
func (p *Plan) Levels() [][]*Step {
	level := map[string]int{}
	var waves [][]*Step
	for _, s := range p.Steps {
		l := 0
		for _, a := range s.After {
			if level[a]+1 > l {
				l = level[a] + 1
			}
		}
		level[s.Name] = l
		for len(waves) <= l {
			waves = append(waves, nil)
		}
		waves[l] = append(waves[l], s)
	}
	return waves
}

// Tasks returns every task of the plan in step order.
func (p *Plan) Tasks() []*Task {
	var out []*Task
	for _, s := range p.Steps {
		out = append(out, s.Tasks...)
	}
	return out
}
