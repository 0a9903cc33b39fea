package inventory

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Hooks are commands a run starts at fixed points: before anything acts,
// after the verdict, on a failure, and before or after a step (by the
// step's name). They are given in the inventory (every runbook) and in a
// runbook (that runbook only); the inventory's run first. Each gets the
// run's facts as SITECTL_* environment variables (docs/operations.md).
type Hooks struct {
	BeforeRun  []*Hook            `yaml:"before_run"`
	AfterRun   []*Hook            `yaml:"after_run"`
	OnFailure  []*Hook            `yaml:"on_failure"`
	BeforeStep map[string][]*Hook `yaml:"before_step"` // step name -> hooks
	AfterStep  map[string][]*Hook `yaml:"after_step"`  // step name -> hooks
	Pos        Pos                `yaml:"-"`
}

// Hook is one command, run with sh -c on the operator's machine or on Host.
type Hook struct {
	Name    string   `yaml:"name"` // shown in plans and journals; default: the command
	Command string   `yaml:"command"`
	Host    string   `yaml:"host"`    // an inventory host; default: this machine
	Timeout Duration `yaml:"timeout"` // the hook's deadline; default 60s
	// OnError: "stop" (the default for before_* hooks: the run stops
	// before anything acts), "fail" (the default for after_* and
	// on_failure hooks: the run's exit is non-zero) or "continue" (a
	// warning in the journal and the summary, nothing more).
	OnError string `yaml:"on_error"`
	Pos     Pos    `yaml:"-"`
}

// Hook points.
const (
	HookBeforeRun  = "before_run"
	HookAfterRun   = "after_run"
	HookOnFailure  = "on_failure"
	HookBeforeStep = "before_step"
	HookAfterStep  = "after_step"
)

// Hook error policies.
const (
	HookStop     = "stop"
	HookFail     = "fail"
	HookContinue = "continue"
)

// DefaultHookTimeout bounds a hook without a timeout.
const DefaultHookTimeout = 60 * time.Second

// Deadline is the hook's timeout, or the default.
func (h *Hook) Deadline() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout.D()
	}
	return DefaultHookTimeout
}

// Label names the hook: its name, else its command.
func (h *Hook) Label() string {
	if h.Name != "" {
		return h.Name
	}
	return h.Command
}

// Policy is what a failure of the hook does at point (HookStop, HookFail
// or HookContinue).
func (h *Hook) Policy(point string) string {
	if h.OnError != "" {
		return h.OnError
	}
	if strings.HasPrefix(point, "before_") {
		return HookStop
	}
	return HookFail
}

// Empty reports whether no hook is set.
func (h *Hooks) Empty() bool {
	return h == nil || len(h.BeforeRun)+len(h.AfterRun)+len(h.OnFailure)+len(h.BeforeStep)+len(h.AfterStep) == 0
}

// Notify sends a run's events to chat or any HTTP receiver. A notification
// that cannot be delivered never blocks or fails a run: it is retried
// within its deadline, journaled and shown in the run's summary.
type Notify struct {
	Targets []*NotifyTarget `yaml:"targets"`
	Pos     Pos             `yaml:"-"`
}

// Notification kinds.
const (
	NotifySlack   = "slack"   // Slack incoming webhook: {"text": ...}
	NotifyTeams   = "teams"   // Microsoft Teams incoming webhook: a MessageCard
	NotifyGeneric = "generic" // the notification as JSON (docs/operations.md)
)

// Notification events.
const (
	EventRunStarted     = "run_started"
	EventStepFailed     = "step_failed"
	EventRunEnded       = "run_ended"
	EventVerdictChanged = "verdict_changed"
)

// NotifyEvents are the events a target may ask for.
var NotifyEvents = []string{EventRunStarted, EventStepFailed, EventRunEnded, EventVerdictChanged}

// NotifyTarget is one webhook.
type NotifyTarget struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"` // slack, teams, generic
	URL  string `yaml:"url"`
	// URLEnv names the environment variable holding the URL instead (a
	// Slack or Teams webhook URL is a credential: keep it out of the
	// inventory's repository). Exactly one of url and url_env.
	URLEnv string   `yaml:"url_env"`
	Events []string `yaml:"events"` // default: every event
	// Header is one HTTP header read like credentials: a file holding
	// "Name: value" (or YAML {username: Name, password: value}), or
	// username_env/password_env naming the header and its value.
	Header   *Credentials `yaml:"header"`
	Timeout  Duration     `yaml:"timeout"`  // per attempt; default 5s
	Retries  *int         `yaml:"retries"`  // extra attempts; default 3 (unset), 0: none
	Backoff  Duration     `yaml:"backoff"`  // first retry delay, doubled each time; default 1s
	Deadline Duration     `yaml:"deadline"` // every attempt of one notification; default 30s
	Pos      Pos          `yaml:"-"`
}

// Endpoint is the target's URL: url, or the value of the url_env variable.
// Its errors never quote the value (a webhook URL is a credential).
func (t *NotifyTarget) Endpoint(getenv func(string) string) (string, error) {
	if t.URLEnv == "" {
		return t.URL, nil
	}
	u := getenv(t.URLEnv)
	switch {
	case u == "":
		return "", fmt.Errorf("url_env: environment variable %s is empty or unset", t.URLEnv)
	case !httpURL(u):
		return "", fmt.Errorf("url_env: environment variable %s does not hold an http:// or https:// URL", t.URLEnv)
	}
	return u, nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Wants reports whether the target asked for ev.
func (t *NotifyTarget) Wants(ev string) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, ev)
}

// Notification defaults.
const (
	DefaultNotifyTimeout  = 5 * time.Second
	DefaultNotifyRetries  = 3
	DefaultNotifyBackoff  = time.Second
	DefaultNotifyDeadline = 30 * time.Second
)

// YAMLKind names the types in error messages.
func (*Hooks) YAMLKind() string        { return "hooks" }
func (*Hook) YAMLKind() string         { return "hook" }
func (*Notify) YAMLKind() string       { return "notify" }
func (*NotifyTarget) YAMLKind() string { return "notify target" }

func (v *validator) hooks(h *Hooks, hosts map[string]*Host) {
	check := func(point string, i int, hk *Hook, where string) {
		if hk == nil {
			v.errf(h, point, "hooks.%s%s[%d] is empty", point, where, i)
			return
		}
		if strings.TrimSpace(hk.Command) == "" {
			v.errf(hk, "command", "hooks.%s%s[%d]: command is required", point, where, i)
		}
		if hk.Host != "" && hosts != nil && hosts[hk.Host] == nil {
			v.errf(hk, "host", "hooks.%s%s[%d]: unknown host %q (expected an inventory host; leave it out to run on this machine)", point, where, i, hk.Host)
		}
		if hk.Timeout < 0 {
			v.errf(hk, "timeout", "hooks.%s%s[%d]: timeout must not be negative", point, where, i)
		}
		switch hk.OnError {
		case "", HookStop, HookFail, HookContinue:
		default:
			v.errf(hk, "on_error", "hooks.%s%s[%d]: on_error %q: expected stop, fail or continue", point, where, i, hk.OnError)
		}
	}
	for _, p := range []struct {
		name  string
		hooks []*Hook
	}{{HookBeforeRun, h.BeforeRun}, {HookAfterRun, h.AfterRun}, {HookOnFailure, h.OnFailure}} {
		for i, hk := range p.hooks {
			check(p.name, i, hk, "")
		}
	}
	for _, p := range []struct {
		name  string
		hooks map[string][]*Hook
	}{{HookBeforeStep, h.BeforeStep}, {HookAfterStep, h.AfterStep}} {
		for step, hs := range p.hooks {
			for i, hk := range hs {
				check(p.name, i, hk, "."+step)
			}
		}
	}
}

// ValidateHooks checks hooks given outside an inventory (a runbook's);
// hosts are checked against inv when it is not nil.
func ValidateHooks(h *Hooks, inv *Inventory) Errors {
	v := &validator{}
	var hosts map[string]*Host
	if inv != nil {
		hosts = map[string]*Host{}
		for _, hh := range inv.AllHosts() {
			hosts[hh.Name] = hh
		}
	}
	v.hooks(h, hosts)
	return v.errs
}

func (v *validator) notify(n *Notify) {
	names := map[string]bool{}
	for i, t := range n.Targets {
		if t == nil {
			v.errf(n, "targets", "notify.targets[%d] is empty", i)
			continue
		}
		where := fmt.Sprintf("notify.targets[%d]", i)
		switch {
		case t.Name == "":
			v.errf(t, "name", "%s: name is required (it names the target in journals and summaries; the URL never appears)", where)
		case names[t.Name]:
			v.errf(t, "name", "%s: duplicate target name %q", where, t.Name)
		}
		names[t.Name] = true
		switch t.Kind {
		case NotifySlack, NotifyTeams, NotifyGeneric:
		default:
			v.errf(t, "kind", "%s: kind %q: expected slack, teams or generic", where, t.Kind)
		}
		switch {
		case t.URL != "" && t.URLEnv != "":
			v.errf(t, "url_env", "%s: set either url or url_env, not both", where)
		case t.URLEnv != "" && !envRE.MatchString(t.URLEnv):
			v.errf(t, "url_env", "%s: url_env %q is not an environment variable name", where, t.URLEnv)
		case t.URLEnv != "":
		case !httpURL(t.URL):
			v.errf(t, "url", "%s: url must be an http:// or https:// URL (or name the variable holding it with url_env)", where)
		}
		for j, e := range t.Events {
			if !slices.Contains(NotifyEvents, e) {
				v.errf(t, fmt.Sprintf("events[%d]", j), "%s: event %q: expected one of %s", where, e, strings.Join(NotifyEvents, ", "))
			}
		}
		if t.Header != nil {
			v.credentials(t.Header, where+" header")
		}
		if t.Retries != nil && (*t.Retries < 0 || *t.Retries > 10) {
			v.errf(t, "retries", "%s: retries %d: expected 0..10", where, *t.Retries)
		}
		if t.Timeout < 0 || t.Backoff < 0 || t.Deadline < 0 {
			v.errf(t, "", "%s: durations must not be negative", where)
		}
	}
}

// applyDefaults fills in a target's unset values (retries stay as
// written: unset is read as the default by Attempts, 0 as none).
func (t *NotifyTarget) applyDefaults() {
	setDur(&t.Timeout, DefaultNotifyTimeout)
	setDur(&t.Backoff, DefaultNotifyBackoff)
	setDur(&t.Deadline, DefaultNotifyDeadline)
}

// Attempts is how many times a notification is tried at most.
func (t *NotifyTarget) Attempts() int {
	if t.Retries == nil {
		return 1 + DefaultNotifyRetries
	}
	return 1 + *t.Retries
}
