package runbooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

// hook is a hook running cmd on this machine.
func hook(name, cmd string) *inventory.Hook { return &inventory.Hook{Name: name, Command: cmd} }

// envFile returns a command that saves the hook's SITECTL_* variables in
// dir/name (appending, so a second run shows as a second block).
func envFile(dir, name string) string {
	return "env | grep '^SITECTL_' | sort >> " + filepath.Join(dir, name) + "; echo -- >> " + filepath.Join(dir, name)
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the hook did not run (expected it to write %s): %v", path, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func (r *recorder) kind(k event.Kind) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, e := range r.evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) firstSeq(k event.Kind) int64 {
	for _, e := range r.kind(k) {
		return e.Seq
	}
	return -1
}

// TestHooksRunWithTheRunsFacts: a takeover runs its before_run hook after
// the confirmation and before the first act, its step hooks around the
// step, and its after_run hook after the verdict, each with the
// documented SITECTL_* variables; all are journaled.
func TestHooksRunWithTheRunsFacts(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	dir := t.TempDir()
	l.inv.Hooks = &inventory.Hooks{
		BeforeRun:  []*inventory.Hook{hook("before", envFile(dir, "before"))},
		AfterRun:   []*inventory.Hook{hook("after", envFile(dir, "after")+"; echo password=hunter2")},
		OnFailure:  []*inventory.Hook{hook("failure", envFile(dir, "failure"))},
		BeforeStep: map[string][]*inventory.Hook{"start-chat": {hook("before chat", envFile(dir, "before-chat"))}},
		AfterStep:  map[string][]*inventory.Hook{"start-chat": {hook("after chat", envFile(dir, "after-chat"))}},
	}
	op, rec := l.operation(t, "takeover", "B", RealClock)
	confirmed := false
	op.Confirm = func(ctx context.Context, p *Plan, before []services.SiteStatus) error {
		if _, err := os.Stat(filepath.Join(dir, "before")); err == nil {
			t.Error("the before_run hook ran before the confirmation")
		}
		confirmed = true
		return nil
	}
	op.Redactor = func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
	rep, err := op.Run(t.Context())
	if err != nil || !confirmed {
		t.Fatalf("takeover B: %v (confirmed %v)", err, confirmed)
	}
	before := readEnv(t, filepath.Join(dir, "before"))
	want := map[string]string{"SITECTL_RUN_ID": rep.RunID, "SITECTL_RUNBOOK": "takeover", "SITECTL_SITE": "B", "SITECTL_OTHER_SITE": "A",
		"SITECTL_OUTCOME": "", "SITECTL_JOURNAL": rep.JournalPath, "SITECTL_HOOK": "before_run", "SITECTL_DEPLOYMENT": "test"}
	for k, v := range want {
		if got, ok := before[k]; !ok || got != v {
			t.Errorf("before_run hook: %s=%q, expected %q", k, got, v)
		}
	}
	after := readEnv(t, filepath.Join(dir, "after"))
	for k, v := range map[string]string{"SITECTL_OUTCOME": "ok", "SITECTL_VERDICT": "one", "SITECTL_SERVING_SITE": "B", "SITECTL_HOOK": "after_run"} {
		if after[k] != v {
			t.Errorf("after_run hook: %s=%q, expected %q", k, after[k], v)
		}
	}
	if after["SITECTL_RTO_SECONDS"] == "" || after["SITECTL_RTO_SECONDS"] == "0.000" {
		t.Errorf("after_run hook: SITECTL_RTO_SECONDS=%q, expected the measured RTO", after["SITECTL_RTO_SECONDS"])
	}
	if s := readEnv(t, filepath.Join(dir, "before-chat")); s["SITECTL_STEP"] != "start-chat" || s["SITECTL_HOOK"] != "before_step" {
		t.Errorf("before_step hook saw %v", s)
	}
	if s := readEnv(t, filepath.Join(dir, "after-chat")); s["SITECTL_OUTCOME"] != "ok" {
		t.Errorf("after_step hook: SITECTL_OUTCOME=%q, expected ok (the step's)", s["SITECTL_OUTCOME"])
	}
	if _, err := os.Stat(filepath.Join(dir, "failure")); err == nil {
		t.Error("on_failure ran after a run that succeeded")
	}
	// order: before_run before the first act, after_run after the verdict
	hooks := rec.kind(event.Hook)
	if len(hooks) != 4 {
		t.Fatalf("expected 4 hook events, got %d: %+v", len(hooks), hooks)
	}
	if act := rec.firstSeq(event.StepAct); hooks[0].Action != "before_run" || hooks[0].Seq > act {
		t.Errorf("before_run hook at seq %d, first act at seq %d", hooks[0].Seq, act)
	}
	last := hooks[len(hooks)-1]
	var verdictSeq int64
	for _, e := range rec.kind(event.Verdict) {
		verdictSeq = e.Seq
	}
	if last.Action != "after_run" || last.Seq < verdictSeq || last.Outcome != event.OK {
		t.Errorf("after_run hook %+v, expected ok after the verdict (seq %d)", last, verdictSeq)
	}
	// journaled, output redacted
	j, err := os.ReadFile(rep.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"kind":"hook"`) || strings.Contains(string(j), "hunter2") {
		t.Errorf("journal: expected the hooks, redacted; hunter2 present: %v", strings.Contains(string(j), "hunter2"))
	}
}

// TestFailingBeforeRunHookStopsTheRun: nothing acts, the run is refused
// (exit 3) and says which hook stopped it; hooks after it do not run.
func TestFailingBeforeRunHookStopsTheRun(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	dir := t.TempDir()
	l.inv.Hooks = &inventory.Hooks{
		BeforeRun: []*inventory.Hook{hook("change window", "echo 'outside the change window' >&2; exit 3"), hook("second", envFile(dir, "second"))},
		AfterRun:  []*inventory.Hook{hook("after", envFile(dir, "after"))},
	}
	op, rec := l.operation(t, "takeover", "B", nil)
	rep, err := op.Run(t.Context())
	var ref *RefusedError
	if !errors.As(err, &ref) || !strings.Contains(ref.Reason, `before_run hook "change window" failed on this machine: exit 3`) || !strings.Contains(ref.Reason, "outside the change window") {
		t.Fatalf("err %v, expected a refusal naming the hook, its exit and stderr", err)
	}
	if n := len(rec.kind(event.StepAct)) + len(rec.kind(event.StepStart)); n != 0 {
		t.Errorf("%d step events after a failed before_run hook", n)
	}
	for _, s := range []string{"b-comms", "b-mre", "b-chat"} {
		if l.svc.Running(s) {
			t.Errorf("%s started", s)
		}
	}
	for _, f := range []string{"second", "after"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("hook %s ran after a before_run hook stopped the run", f)
		}
	}
	if rep.Outcome != event.Refused || len(rep.HookFailures) != 1 {
		t.Errorf("outcome %s, hook failures %+v", rep.Outcome, rep.HookFailures)
	}
}

// TestBeforeRunHookOnErrorContinue: the run goes on, with a warning.
func TestBeforeRunHookOnErrorContinue(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	h := hook("best effort", "exit 1")
	h.OnError = inventory.HookContinue
	l.inv.Hooks = &inventory.Hooks{BeforeRun: []*inventory.Hook{h}}
	op, _ := l.operation(t, "takeover", "B", nil)
	rep, err := op.Run(t.Context())
	if err != nil {
		t.Fatalf("takeover B: %v (expected on_error: continue to go on)", err)
	}
	if len(rep.Warnings) == 0 || !strings.Contains(strings.Join(rep.Warnings, "\n"), `before_run hook "best effort" failed`) {
		t.Errorf("warnings %q, expected the failed hook", rep.Warnings)
	}
}

// TestFailingAfterRunHookFailsTheRun: the takeover succeeded, but the
// hook's failure makes the outcome failed (exit 1), says so, and runs the
// on_failure hooks of a run that did not succeed only.
func TestFailingAfterRunHookFailsTheRun(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	l.inv.Hooks = &inventory.Hooks{AfterRun: []*inventory.Hook{hook("re-register webhooks", "exit 7")}}
	op, _ := l.operation(t, "takeover", "B", nil)
	rep, err := op.Run(t.Context())
	var oe *OutcomeError
	if !errors.As(err, &oe) || oe.Outcome != event.Failed {
		t.Fatalf("err %v, expected a failed outcome", err)
	}
	for _, w := range []string{"the runbook itself succeeded", `HOOK FAILED: after_run hook "re-register webhooks" failed on this machine: exit 7`} {
		if !strings.Contains(oe.Msg, w) {
			t.Errorf("message %q lacks %q", oe.Msg, w)
		}
	}
	if !l.svc.Running("b-chat") || len(rep.HookFailures) != 1 {
		t.Errorf("b-chat running %v, hook failures %+v", l.svc.Running("b-chat"), rep.HookFailures)
	}
}

// TestBeforeStepHookStopsTheStep and TestResumeSkipsHooksThatRan: a
// before_step hook that fails stops its step (nothing of it acts) and the
// run fails; the resume skips the before_run hook that ran, and runs the
// failed step hook again.
func TestResumeSkipsHooksThatRan(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	dir := t.TempDir()
	marker := filepath.Join(dir, "window-open")
	l.inv.Hooks = &inventory.Hooks{
		BeforeRun:  []*inventory.Hook{hook("before", envFile(dir, "before"))},
		BeforeStep: map[string][]*inventory.Hook{"start-chat": {hook("gate", "test -f "+marker)}},
	}
	op, rec := l.operation(t, "takeover", "B", nil)
	_, err := op.Run(t.Context())
	var oe *OutcomeError
	if !errors.As(err, &oe) || oe.Outcome != event.Failed || !strings.Contains(oe.Msg, `before_step hook "gate" failed`) {
		t.Fatalf("err %v, expected the run failed by the before_step hook", err)
	}
	if l.svc.Running("b-chat") {
		t.Error("b-chat started although its before_step hook failed")
	}
	if !l.svc.Running("b-mre") {
		t.Error("b-mre (before the gated step) did not start")
	}
	first := op.RunID

	// resume: the before_run hook is not run again, the gate is
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	op2, rec2 := l.operation(t, "takeover", "B", nil)
	op2.ResumeOf, op2.HooksDone = first, HooksDone(rec.evs)
	if _, err := op2.Run(t.Context()); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if !l.svc.Running("b-chat") {
		t.Error("b-chat not started by the resume")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "before"))
	if n := strings.Count(string(b), "--"); n != 1 {
		t.Errorf("the before_run hook ran %d times, expected once (the resume skips it)", n)
	}
	var skipped, gate bool
	for _, e := range rec2.kind(event.Hook) {
		skipped = skipped || (e.Action == "before_run" && e.Outcome == event.Skipped && strings.Contains(e.Message, "already ran in run "+first))
		gate = gate || (e.Action == "before_step" && e.Outcome == event.OK)
	}
	if !skipped || !gate {
		t.Errorf("resume: before_run skipped %v, gate ran ok %v; events %+v", skipped, gate, rec2.kind(event.Hook))
	}
	// a resume of the resume still knows who ran it
	if d := HooksDone(rec2.evs); d["hook/inventory/before_run/0"] != first {
		t.Errorf("HooksDone of the resume: %v, expected before_run by %s", d, first)
	}
}

// TestPlanShowsHooks: a plan, offline too, lists every hook it would run
// and runs none.
func TestPlanShowsHooks(t *testing.T) {
	l := newLab(t)
	dir := t.TempDir()
	l.inv.Hooks = &inventory.Hooks{
		BeforeRun:  []*inventory.Hook{hook("before", envFile(dir, "x"))},
		AfterRun:   []*inventory.Hook{{Command: "true", Host: "b-app"}},
		OnFailure:  []*inventory.Hook{hook("failure", envFile(dir, "x"))},
		BeforeStep: map[string][]*inventory.Hook{"start-chat": {hook("gate", envFile(dir, "x"))}},
	}
	op, rec := l.operation(t, "takeover", "B", nil)
	op.Mode = Offline
	if _, err := op.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range rec.kind(event.Hook) {
		if e.Outcome != event.Planned {
			t.Errorf("hook event %+v in a plan, expected planned", e)
		}
		got[e.Action] = true
		if e.Action == "after_run" && !strings.Contains(e.Message, "would run on b-app") {
			t.Errorf("after_run: %q", e.Message)
		}
	}
	for _, p := range []string{"before_run", "after_run", "on_failure", "before_step"} {
		if !got[p] {
			t.Errorf("the plan does not show the %s hook", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a hook ran in a plan")
	}
}

// TestBeforeRunHookOnErrorFail: the run goes on (B is taken over) and
// fails at its end, naming the hook.
func TestBeforeRunHookOnErrorFail(t *testing.T) {
	l := newLab(t)
	l.svc.Start("a-ccm")
	l.svc.Start("b-ccm")
	h := hook("ticket", "exit 2")
	h.OnError = inventory.HookFail
	l.inv.Hooks = &inventory.Hooks{BeforeRun: []*inventory.Hook{h}}
	op, _ := l.operation(t, "takeover", "B", nil)
	rep, err := op.Run(t.Context())
	var oe *OutcomeError
	if !errors.As(err, &oe) || oe.Outcome != event.Failed || !strings.Contains(oe.Msg, `HOOK FAILED: before_run hook "ticket" failed on this machine: exit 2`) {
		t.Fatalf("err %v, expected failed naming the hook", err)
	}
	if !l.svc.Running("b-chat") || len(rep.HookFailures) != 1 {
		t.Errorf("b-chat running %v (expected the run to go on), hook failures %+v", l.svc.Running("b-chat"), rep.HookFailures)
	}
}

// TestRunbookHooksAreValidatedAndLinted: a runbook's hooks are checked
// when it is parsed (positions), and their hosts against the inventory.
func TestRunbookHooksAreValidatedAndLinted(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("name: r\neffect: none\nhooks:\n  before_run:\n    - {command: '', on_error: nope}\nsteps:\n  - {name: a, action: stop, select: {kinds: [chat]}}\n"))
	for _, w := range []string{"bad.yaml:5:7: hooks.before_run[0]: command is required", `on_error "nope": expected stop, fail or continue`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("parse: %v; want %q", err, w)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("name: r\neffect: none\nhooks:\n  after_run:\n    - {command: 'true', host: nohost}\nsteps:\n  - {name: a, action: stop, select: {kinds: [chat]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := c.Lint(inv)
	if !strings.Contains(errs.Error(), `runbook "r": hooks.after_run[0]: unknown host "nohost"`) {
		t.Errorf("lint: %v", errs)
	}
}
