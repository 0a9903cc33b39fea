package runbooks

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

// A hook is one command of the inventory's or the runbook's hooks: at a
// point of the run (before_run, after_run, on_failure, before_step,
// after_step), run with sh -c on the operator's machine or on an
// inventory host, bounded by its timeout, with the run's facts as
// SITECTL_* variables. Each is journaled as a "hook" event whose Task is
// the hook's id; resume skips the before_* and after_step hooks that
// ended ok in the run it resumes (HooksDone).
type hookRef struct {
	ID     string // hook/<source>/<point>[/<step>]/<index>
	Point  string
	Step   string // the plan's step name (step hooks)
	Source string // inventory or runbook
	Hook   *inventory.Hook
}

// PlannedHook is a hook a plan's run would run.
type PlannedHook struct {
	ID      string `json:"id"`
	Point   string `json:"point"`
	Step    string `json:"step,omitempty"`
	Source  string `json:"source"` // inventory or runbook
	Name    string `json:"name"`
	Command string `json:"command"`
	Host    string `json:"host,omitempty"` // "" : this machine
	Timeout string `json:"timeout"`
	OnError string `json:"on_error"`
}

// Hooks lists the hooks a run of the plan would run, in their order:
// before_run, then each step's (in plan order) before_step and
// after_step, then after_run and on_failure.
func (p *Plan) Hooks() []PlannedHook {
	var refs []hookRef
	refs = append(refs, p.hooksAt(inventory.HookBeforeRun, nil)...)
	for _, s := range p.Steps {
		refs = append(refs, p.hooksAt(inventory.HookBeforeStep, s)...)
		refs = append(refs, p.hooksAt(inventory.HookAfterStep, s)...)
	}
	refs = append(refs, p.hooksAt(inventory.HookAfterRun, nil)...)
	refs = append(refs, p.hooksAt(inventory.HookOnFailure, nil)...)
	out := []PlannedHook{}
	for _, r := range refs {
		out = append(out, PlannedHook{ID: r.ID, Point: r.Point, Step: r.Step, Source: r.Source, Name: r.Hook.Label(), Command: r.Hook.Command,
			Host: r.Hook.Host, Timeout: r.Hook.Deadline().String(), OnError: r.Hook.Policy(r.Point)})
	}
	return out
}

// HookFailure is a hook that did not end ok.
type HookFailure struct {
	ID, Point, Label string
	Policy           string // stop, fail, continue
	Msg              string
}

// hooksAt returns the hooks run at point (for step, at its step hooks):
// the inventory's first, then the runbook's. A step hook is found by the
// step's qualified name (switchover's "takeover/start-chat") or its bare
// name ("start-chat").
func (r *running) hooksAt(point string, step *Step) []hookRef { return r.plan.hooksAt(point, step) }

func (p *Plan) hooksAt(point string, step *Step) []hookRef {
	var out []hookRef
	for _, src := range []struct {
		name string
		h    *inventory.Hooks
	}{{"inventory", p.Inventory.Hooks}, {"runbook", p.Runbook.Hooks}} {
		if src.h == nil {
			continue
		}
		var list []*inventory.Hook
		key := ""
		switch point {
		case inventory.HookBeforeRun:
			list = src.h.BeforeRun
		case inventory.HookAfterRun:
			list = src.h.AfterRun
		case inventory.HookOnFailure:
			list = src.h.OnFailure
		case inventory.HookBeforeStep, inventory.HookAfterStep:
			m := src.h.BeforeStep
			if point == inventory.HookAfterStep {
				m = src.h.AfterStep
			}
			key = stepKey(m, step)
			list = m[key]
		}
		for i, h := range list {
			if h == nil {
				continue
			}
			id := "hook/" + src.name + "/" + point
			if step != nil {
				id += "/" + step.Name
			}
			id += "/" + strconv.Itoa(i)
			ref := hookRef{ID: id, Point: point, Source: src.name, Hook: h}
			if step != nil {
				ref.Step = step.Name
			}
			out = append(out, ref)
		}
	}
	return out
}

func stepKey(m map[string][]*inventory.Hook, step *Step) string {
	if step == nil || len(m) == 0 {
		return ""
	}
	if _, ok := m[step.Name]; ok {
		return step.Name
	}
	bare := step.Name[strings.LastIndex(step.Name, "/")+1:]
	if _, ok := m[bare]; ok {
		return bare
	}
	return ""
}

// hookEnv is the run's facts as the hooks see them.
func (r *running) hookEnv(ref hookRef, outcome event.Outcome) []string {
	rep := r.rep
	verdict, serving := "", ""
	v := rep.VerdictAfter
	if v.State == "" {
		v = rep.VerdictBefore
	}
	verdict, serving = v.State, v.Site
	rto := ""
	if rep.RTO > 0 {
		rto = strconv.FormatFloat(rep.RTO.Seconds(), 'f', 3, 64)
	}
	env := []string{
		"SITECTL_RUN_ID=" + r.o.RunID,
		"SITECTL_RUNBOOK=" + r.plan.Runbook.Name,
		"SITECTL_SITE=" + r.plan.Site,
		"SITECTL_OTHER_SITE=" + r.plan.Other,
		"SITECTL_DEPLOYMENT=" + r.o.Inventory.Deployment,
		"SITECTL_MODE=" + r.o.Mode.String(),
		"SITECTL_HOOK=" + ref.Point,
		"SITECTL_STEP=" + ref.Step,
		"SITECTL_OUTCOME=" + string(outcome),
		"SITECTL_VERDICT=" + verdict,
		"SITECTL_SERVING_SITE=" + serving,
		"SITECTL_RTO_SECONDS=" + rto,
		"SITECTL_JOURNAL=" + rep.JournalPath,
	}
	return env
}

// runHooks runs the hooks at point in order. In a plan (DryRun, Offline)
// each is only shown as planned. It returns the failures; a "stop"
// failure ends the list (the hooks after it do not run).
func (r *running) runHooks(ctx context.Context, point string, step *Step, outcome event.Outcome) []HookFailure {
	var fails []HookFailure
	for _, ref := range r.hooksAt(point, step) {
		h := ref.Hook
		where := "this machine"
		if h.Host != "" {
			where = h.Host
		}
		e := event.Event{Kind: event.Hook, Task: ref.ID, Step: ref.Step, Host: h.Host, Action: point, Command: h.Command}
		if r.o.Mode != Execute {
			e.Outcome = event.Planned
			e.Message = fmt.Sprintf("%s hook %q would run on %s (timeout %s, on error: %s)", point, h.Label(), where, h.Deadline(), h.Policy(point))
			r.emit(e)
			continue
		}
		if by, ok := r.o.HooksDone[ref.ID]; ok {
			e.Outcome = event.Skipped
			e.Message = fmt.Sprintf("%s hook %q already ran in run %s", point, h.Label(), by)
			r.emit(e)
			continue
		}
		res, err := r.runCommand(ctx, h.Host, r.hookEnv(ref, outcome), h.Command, h.Deadline())
		e.Duration, e.Stdout, e.Stderr = res.Duration, string(res.Stdout), string(res.Stderr)
		if err == nil {
			code := res.ExitCode
			e.ExitCode = &code
		}
		if err == nil && res.ExitCode == 0 {
			e.Outcome, e.Message = event.OK, fmt.Sprintf("%s hook %q: ok on %s", point, h.Label(), where)
			r.emit(e)
			continue
		}
		observed := fmt.Sprintf("exit %d", res.ExitCode)
		if err != nil {
			observed = err.Error()
		}
		policy := h.Policy(point)
		e.Outcome, e.Expected, e.Observed = event.Failed, "exit 0", observed
		e.Message = fmt.Sprintf("%s hook %q failed on %s: %s (expected exit 0; on error: %s)", point, h.Label(), where, observed, policy)
		if s := strings.TrimSpace(e.Stderr); s != "" {
			e.Message += ": " + oneLine(s)
		}
		e.Hint = fmt.Sprintf("inspect: sitectl journal %s (the hook's output); run it by hand: %s", r.o.RunID, h.Command)
		r.emit(e)
		fails = append(fails, HookFailure{ID: ref.ID, Point: point, Label: h.Label(), Policy: policy, Msg: e.Message})
		if policy == inventory.HookStop {
			break
		}
	}
	return fails
}

// EnvRunner is a runner that passes environment variables to a command
// (adapters/remote's Pool and LocalHost export them in the command line:
// sshd passes no environment).
type EnvRunner interface {
	RunEnv(ctx context.Context, host string, env []string, command string) (services.Result, error)
}

// runCommand runs cmd on host (through the Runner) or, for "", on this
// machine (Local), with the variables env and under a deadline: the same
// local and remote runners, with their timeout wrapper, that run the steps.
func (r *running) runCommand(ctx context.Context, host string, env []string, cmd string, timeout time.Duration) (services.Result, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	run, where := r.o.Runner, host
	if host == "" {
		run, where = r.o.Local, "this machine"
	}
	if run == nil {
		return services.Result{}, fmt.Errorf("no runner for commands on %s (Operation.Local is not set)", where)
	}
	if len(env) == 0 {
		return run.Run(cctx, host, cmd)
	}
	er, ok := run.(EnvRunner)
	if !ok {
		return services.Result{}, fmt.Errorf("the runner of %s cannot pass the hook's variables (%T)", where, run)
	}
	return er.RunEnv(cctx, host, env, cmd)
}

// stops reports the first failure whose policy stops the run.
func stops(fails []HookFailure) *HookFailure {
	for i := range fails {
		if fails[i].Policy == inventory.HookStop {
			return &fails[i]
		}
	}
	return nil
}

// failing returns the failures that make the run's exit non-zero (stop or
// fail), and records the others as warnings.
func (r *running) failing(fails []HookFailure) []HookFailure {
	var out []HookFailure
	for _, f := range fails {
		if f.Policy == inventory.HookContinue {
			r.rep.Warnings = append(r.rep.Warnings, "hook failed (on_error: continue): "+f.Msg)
			continue
		}
		out = append(out, f)
	}
	return out
}

// stepHooks adapts the step hooks to the engine.
func (r *running) stepHooks() (before func(context.Context, *Step) error, after func(context.Context, *Step, bool)) {
	if r.noStepHooks() {
		return nil, nil
	}
	before = func(ctx context.Context, s *Step) error {
		fails := r.runHooks(ctx, inventory.HookBeforeStep, s, "")
		r.addHookFailures(fails)
		if f := stops(fails); f != nil {
			return fmt.Errorf("not run: %s", f.Msg)
		}
		return nil
	}
	after = func(ctx context.Context, s *Step, ok bool) {
		outcome := event.OK
		if !ok {
			outcome = event.Failed
		}
		r.addHookFailures(r.runHooks(ctx, inventory.HookAfterStep, s, outcome))
	}
	return before, after
}

func (r *running) noStepHooks() bool {
	for _, h := range []*inventory.Hooks{r.o.Inventory.Hooks, r.plan.Runbook.Hooks} {
		if h != nil && (len(h.BeforeStep) > 0 || len(h.AfterStep) > 0) {
			return false
		}
	}
	return true
}

func (r *running) addHookFailures(fails []HookFailure) {
	fails = r.failing(fails)
	if len(fails) == 0 {
		return
	}
	r.hookMu.Lock()
	r.hookFails = append(r.hookFails, fails...)
	r.hookMu.Unlock()
}

// hookSummary appends the failed hooks to a run's message.
func hookSummary(msg string, fails []HookFailure) string {
	if len(fails) == 0 {
		return msg
	}
	var parts []string
	for _, f := range fails {
		parts = append(parts, f.Msg)
	}
	sort.Strings(parts)
	return msg + "; HOOK FAILED: " + strings.Join(parts, "; ")
}

// HooksDone reads, from the events of the runs a resume continues, the
// hooks that need not run again: the before_* and after_step hooks that
// ended ok (or were skipped as done), by id, with the run that ran them.
func HooksDone(events []event.Event) map[string]string {
	done := map[string]string{}
	for _, e := range events {
		if e.Kind != event.Hook || !e.Outcome.Succeeded() {
			continue
		}
		switch e.Action {
		case inventory.HookBeforeRun, inventory.HookBeforeStep, inventory.HookAfterStep:
			by := e.RunID
			if e.Outcome == event.Skipped {
				if i := strings.LastIndex(e.Message, "already ran in run "); i >= 0 {
					by = e.Message[i+len("already ran in run "):]
				}
			}
			done[e.Task] = by
		}
	}
	return done
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// verdictLabel is a verdict in a few words: "one B", "split", "none".
func verdictLabel(v checks.Verdict) string {
	if v.State == checks.ServeOne || v.State == checks.ServePartial {
		return v.State + " " + v.Site
	}
	return v.State
}
