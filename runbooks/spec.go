// Package runbooks holds sitectl's runbooks (built in and user supplied), turns
// one into a plan of tasks for a site, and runs it: observe, skip what already
// holds, act, verify before a deadline. It never imports cobra or bubbletea;
// everything it does is reported on an event.Sink.
package runbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sitectl/sitectl/inventory"
)

// Actions a step may take.
const (
	ActionStart   = "start"   // start the selected services; desired state: running
	ActionStop    = "stop"    // stop the selected services; desired state: stopped
	ActionRun     = "run"     // run a command on hosts; `check` observes whether it is needed
	ActionInclude = "include" // run another runbook's steps here

	// Layer actions (drivers, not shell commands).
	ActionHAProxy  = "haproxy"  // set the site's servers ready, drain (wait for sessions to end) or maint
	ActionMongoDB  = "mongodb"  // wait for a writable primary after an election, or move it (mode: move)
	ActionActiveMQ = "activemq" // verify the site's consumers hold the top priority on every broker
)

// Scopes and effects.
const (
	ScopeCore      = "core"
	ScopeReporting = "reporting"
	ScopeAll       = "all"

	EffectActivate   = "activate"   // makes the target site active: refused while the other site serves
	EffectDeactivate = "deactivate" // makes the target site passive
	EffectSwitch     = "switch"     // renounces the other site itself, then activates the target
	EffectNone       = "none"
)

// Runbook is a named, ordered set of steps.
type Runbook struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	Scope       string      `yaml:"scope"`  // core, reporting, all
	Effect      string      `yaml:"effect"` // activate, deactivate, none
	Steps       []*StepSpec `yaml:"steps"`
	// Hooks of this runbook, run after the inventory's (docs/operations.md).
	Hooks *inventory.Hooks `yaml:"hooks"`

	Source  string `yaml:"-"` // file name, or "builtin:<name>.yaml"
	Builtin bool   `yaml:"-"`
	// Overrides is the source of the built-in runbook this user runbook
	// replaces ("" when it replaces none).
	Overrides string        `yaml:"-"`
	Raw       []byte        `yaml:"-"`
	Pos       inventory.Pos `yaml:"-"`

	keyPos map[string]inventory.Pos // position of each top-level value
}

// at returns the position of a top-level key's value, or the runbook's.
func (rb *Runbook) at(key string) inventory.Pos {
	if p, ok := rb.keyPos[key]; ok {
		return p
	}
	return rb.Pos
}

// StepSpec is one step as written in a runbook.
type StepSpec struct {
	Name          string             `yaml:"name"`
	Description   string             `yaml:"description"`
	Action        string             `yaml:"action"`
	Select        *Selector          `yaml:"select"`         // services (start, stop; run: their hosts)
	Hosts         []string           `yaml:"hosts"`          // run: explicit hosts
	Site          string             `yaml:"site"`           // target (default) or other
	After         []string           `yaml:"after"`          // steps that must succeed first
	Command       string             `yaml:"command"`        // run
	Check         string             `yaml:"check"`          // run: exit 0 means the step's goal already holds
	Runbook       string             `yaml:"runbook"`        // include
	Timeout       inventory.Duration `yaml:"timeout"`        // per command
	VerifyTimeout inventory.Duration `yaml:"verify_timeout"` // deadline to reach the desired state
	Retries       int                `yaml:"retries"`        // extra attempts of the action
	Backoff       inventory.Duration `yaml:"backoff"`        // first retry delay, doubled each time
	State         string             `yaml:"state"`          // haproxy: ready, drain, maint
	Mode          string             `yaml:"mode"`           // mongodb: wait (default) or move

	Pos inventory.Pos `yaml:"-"`
}

// Selector picks services of a site.
type Selector struct {
	Group   string        `yaml:"group"`   // core, reporting, or empty for any
	Kinds   []string      `yaml:"kinds"`   // empty: any kind
	Names   []string      `yaml:"names"`   // empty: any name
	Passive string        `yaml:"passive"` // stopped|running: only services with that passive state
	Pos     inventory.Pos `yaml:"-"`
}

// Matches reports whether svc is selected.
func (s *Selector) Matches(svc *inventory.Service) bool {
	if s == nil {
		return false
	}
	if s.Group != "" && string(svc.Group) != s.Group {
		return false
	}
	if len(s.Kinds) > 0 && !slices.Contains(s.Kinds, svc.Kind) {
		return false
	}
	if len(s.Names) > 0 && !slices.Contains(s.Names, svc.Name) {
		return false
	}
	if s.Passive != "" {
		want := s.Passive == "stopped"
		if svc.StoppedWhenPassive() != want {
			return false
		}
	}
	return true
}

// Digest identifies the runbook's content; resume refuses when it changed.
func (rb *Runbook) Digest() string {
	h := sha256.Sum256(rb.Raw)
	return hex.EncodeToString(h[:8])
}

// Problem is a positioned runbook error (the inventory's error type, so
// both print and sort the same way).
type Problem = inventory.Error

// Problems is every error found in a runbook or catalog.
type Problems = inventory.Errors

// Parse reads one runbook file. Unknown keys, wrong types and structural
// errors are reported together, each with file:line:column.
func Parse(file string, data []byte) (*Runbook, error) {
	rb := &Runbook{Source: file, Raw: append([]byte(nil), data...)}
	fields, err := inventory.DecodeStrict(file, data, rb)
	if err != nil {
		var ies inventory.Errors
		if !errors.As(err, &ies) {
			return nil, Problems{{Pos: inventory.Pos{File: file, Line: 1, Column: 1}, Msg: err.Error()}}
		}
		return nil, ies.Err()
	}
	rb.keyPos = fields[rb]
	if p, ok := rb.keyPos[""]; ok {
		rb.Pos = p
	} else {
		rb.Pos = inventory.Pos{File: file, Line: 1, Column: 1}
	}
	if probs := rb.validate(); len(probs) > 0 {
		return rb, probs.Err()
	}
	return rb, nil
}

// YAMLKind names the types in error messages.
func (*Runbook) YAMLKind() string  { return "runbook" }
func (*StepSpec) YAMLKind() string { return "step" }
func (*Selector) YAMLKind() string { return "select" }

// problemAdder adds a problem at a position of the runbook's file.
type problemAdder func(p inventory.Pos, f string, a ...any)

// validate checks the runbook as a whole, then each step, then the steps'
// order (after, cycles), and sets the default scope.
func (rb *Runbook) validate() Problems {
	var ps Problems
	add := func(p inventory.Pos, f string, a ...any) {
		ps = append(ps, &Problem{Pos: p, Msg: fmt.Sprintf(f, a...)})
	}
	rb.validateHeader(add)
	seen := map[string]*StepSpec{}
	for i, st := range rb.Steps {
		if st == nil {
			add(rb.Pos, "step %d is empty", i+1)
			continue
		}
		if st.Name == "" {
			add(st.Pos, "step %d has no name", i+1)
		} else if prev, dup := seen[st.Name]; dup {
			add(st.Pos, "duplicate step name %q (first defined at %s)", st.Name, prev.Pos)
		} else {
			seen[st.Name] = st
		}
		st.validate(add)
	}
	for _, st := range rb.Steps {
		if st == nil {
			continue
		}
		for _, a := range st.After {
			if _, ok := seen[a]; !ok {
				add(st.Pos, "step %q: after names unknown step %q (steps: %s)", st.Name, a, strings.Join(keys(seen), ", "))
			} else if a == st.Name {
				add(st.Pos, "step %q comes after itself", st.Name)
			}
		}
	}
	if rb.Hooks != nil {
		for _, e := range inventory.ValidateHooks(rb.Hooks, nil) {
			if e.Pos.File == "" {
				e.Pos = rb.at("hooks")
			}
			ps = append(ps, e)
		}
	}
	if cyc := findCycle(rb.Steps); cyc != "" {
		add(rb.Pos, "runbook %q: steps form a cycle: %s", rb.Name, cyc)
	}
	return ps
}

// validateHeader checks the runbook's name, scope, effect and that it has
// steps; an empty scope is core.
func (rb *Runbook) validateHeader(add problemAdder) {
	if rb.Name == "" {
		add(rb.Pos, "runbook has no name")
	} else if !validName(rb.Name) {
		add(rb.at("name"), "runbook name %q: expected letters, digits, '-' or '_'", rb.Name)
	}
	switch rb.Scope {
	case ScopeCore, ScopeReporting, ScopeAll:
	case "":
		rb.Scope = ScopeCore
	default:
		add(rb.at("scope"), "scope %q: expected core, reporting or all", rb.Scope)
	}
	switch rb.Effect {
	case EffectActivate, EffectDeactivate, EffectSwitch, EffectNone:
	case "":
		add(rb.Pos, "runbook %q has no effect: expected activate, deactivate, switch or none", rb.Name)
	default:
		add(rb.at("effect"), "effect %q: expected activate, deactivate, switch or none", rb.Effect)
	}
	if len(rb.Steps) == 0 {
		add(rb.at("steps"), "runbook %q has no steps", rb.Name)
	}
}

// validate checks one step on its own: its site, its action and the fields
// the action takes, its select, retries and durations.
func (st *StepSpec) validate(add problemAdder) {
	switch st.Site {
	case "", "target", "other":
	default:
		add(st.Pos, "step %q: site %q: expected target or other", st.Name, st.Site)
	}
	switch st.Action {
	case ActionStart, ActionStop:
		if st.Select == nil {
			add(st.Pos, "step %q: action %s needs select (group, kinds, names, passive)", st.Name, st.Action)
		}
		if st.Command != "" || st.Check != "" || st.Runbook != "" || len(st.Hosts) > 0 {
			add(st.Pos, "step %q: action %s takes select only (not command, check, runbook or hosts)", st.Name, st.Action)
		}
	case ActionRun:
		if st.Command == "" {
			add(st.Pos, "step %q: action run needs command", st.Name)
		}
		if st.Select == nil && len(st.Hosts) == 0 {
			add(st.Pos, "step %q: action run needs hosts or select to say where it runs", st.Name)
		}
	case ActionInclude:
		if st.Runbook == "" {
			add(st.Pos, "step %q: action include needs runbook", st.Name)
		}
	case ActionHAProxy:
		switch st.State {
		case "ready", "drain", "maint":
		default:
			add(st.Pos, "step %q: action haproxy needs state ready, drain or maint (got %q)", st.Name, st.State)
		}
	case ActionMongoDB:
		switch st.Mode {
		case "", "wait", "move":
		default:
			add(st.Pos, "step %q: action mongodb: mode %q: expected wait or move", st.Name, st.Mode)
		}
	case ActionActiveMQ:
	case "":
		add(st.Pos, "step %q has no action: expected %s", st.Name, actionList)
	default:
		add(st.Pos, "step %q: action %q: expected %s", st.Name, st.Action, actionList)
	}
	if st.State != "" && st.Action != ActionHAProxy {
		add(st.Pos, "step %q: state applies to action haproxy only", st.Name)
	}
	if st.Mode != "" && st.Action != ActionMongoDB {
		add(st.Pos, "step %q: mode applies to action mongodb only", st.Name)
	}
	if sel := st.Select; sel != nil {
		sel.validate(st.Name, add)
	}
	if st.Retries < 0 || st.Retries > 10 {
		add(st.Pos, "step %q: retries %d: expected 0..10", st.Name, st.Retries)
	}
	if st.Timeout < 0 || st.VerifyTimeout < 0 || st.Backoff < 0 {
		add(st.Pos, "step %q: durations must not be negative", st.Name)
	}
}

// validate checks the selector of step (its name, for the messages): its
// group, passive and kinds.
func (sel *Selector) validate(step string, add problemAdder) {
	switch sel.Group {
	case "", "core", "reporting":
	default:
		add(sel.Pos, "step %q: select group %q: expected core or reporting", step, sel.Group)
	}
	switch sel.Passive {
	case "", "stopped", "running":
	default:
		add(sel.Pos, "step %q: select passive %q: expected stopped or running", step, sel.Passive)
	}
	for _, k := range sel.Kinds {
		if !slices.Contains(inventory.Kinds, k) {
			add(sel.Pos, "step %q: unknown service kind %q (expected one of %s)", step, k, strings.Join(inventory.Kinds, ", "))
		}
	}
}

const actionList = "start, stop, run, include, haproxy, mongodb or activemq"

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func findCycle(steps []*StepSpec) string {
	byName := map[string]*StepSpec{}
	for _, s := range steps {
		if s != nil && s.Name != "" {
			byName[s.Name] = s
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, a := range byName[n].After {
			if byName[a] == nil || a == n {
				continue
			}
			switch color[a] {
			case grey:
				i := slices.Index(stack, a)
				found = strings.Join(append(slices.Clone(stack[i:]), a), " -> ")
				return true
			case white:
				if visit(a) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range keys(byName) {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return ""
}
