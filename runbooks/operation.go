package runbooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// Operation is one invocation of a runbook against a site: the safety
// preconditions, confirmation, lock, journal, the engine, and the invariant
// checked again afterwards. cmd builds one from flags; the board from keys.
type Operation struct {
	Inventory *inventory.Inventory
	Catalog   *Catalog
	Runbook   string
	Site      string
	Mode      Mode
	Force     bool   // override the "other site still active" refusal
	Reason    string // why (required with Force; journaled)
	ResumeOf  string // run id this run resumes
	RunID     string // generated when empty
	Info      event.RunInfo

	Runner     checks.HostRunner
	Sink       event.Sink // renderers; the journal is added here
	JournalDir string     // where the journal goes (Execute mode)
	Redactor   journal.Redactor
	Clock      Clock
	Probe      checks.Prober
	Hint       func(*Task) string
	// Layers observed besides services; nil means every layer the
	// inventory describes.
	Layers []checks.LayerObserver
	// ForcePromotion, only from its own flag, the typed site and the
	// fencing statement, lets wait-mongodb force-promote the site's
	// surviving member when the replica set lost its majority.
	ForcePromotion *ForcePromotion

	// Lock takes the deployment's run lock (Execute mode); release is
	// deferred until the run has ended.
	Lock func(ctx context.Context, runID string) (release func() error, err error)
	// Confirm is asked, after the before-state is known, whether to go on.
	Confirm func(ctx context.Context, p *Plan, before []checks.SiteStatus) error
}

// Report is what an operation did.
type Report struct {
	RunID           string
	Plan            *Plan
	Result          *Result
	Before, After   []checks.SiteStatus
	InvariantBefore checks.Invariant
	InvariantAfter  checks.Invariant
	VerdictBefore   checks.Verdict
	VerdictAfter    checks.Verdict
	JournalPath     string
	Outcome         event.Outcome
	Started         time.Time
	RTO             time.Duration // start to the last successful verification
	Warnings        []string
}

// RefusedError says a precondition refused the run; nothing was changed.
type RefusedError struct {
	Reason string
	Hint   string
}

func (e *RefusedError) Error() string {
	if e.Hint == "" {
		return "refused: " + e.Reason
	}
	return "refused: " + e.Reason + "\n  " + e.Hint
}

// OutcomeError reports a run that did not end ok.
type OutcomeError struct {
	Outcome event.Outcome
	RunID   string
	Msg     string
}

func (e *OutcomeError) Error() string { return e.Msg }

// Run performs the operation. The error is a *RefusedError, a lock error,
// an *OutcomeError, or an infrastructure error (journal, inventory).
func (o *Operation) Run(ctx context.Context) (*Report, error) {
	if o.Clock == nil {
		o.Clock = RealClock
	}
	if o.Sink == nil {
		o.Sink = event.Discard
	}
	plan, err := o.Catalog.Compile(o.Runbook, o.Inventory, o.Site)
	if err != nil {
		return nil, err
	}
	rep := &Report{Plan: plan, Started: o.Clock.Now()}
	if o.RunID == "" {
		o.RunID = journal.NewRunID(rep.Started)
	}
	rep.RunID = o.RunID
	sink := event.Sink(o.Sink)
	var jw *journal.Writer
	if o.Mode == Execute {
		var opts []journal.Option
		if o.Redactor != nil {
			opts = append(opts, journal.WithRedactor(o.Redactor))
		}
		jw, err = journal.Create(o.JournalDir, o.RunID, opts...)
		if err != nil {
			return rep, fmt.Errorf("cannot open the run's journal in %s (nothing was changed): %w", o.JournalDir, err)
		}
		defer jw.Close()
		rep.JournalPath = jw.Path()
		sink = event.Tee(jw, o.Sink)
	}
	st := &event.Stamper{RunID: o.RunID, Now: o.Clock.Now, Next: sink}
	info := o.Info
	info.ID, info.Runbook, info.RunbookDigest, info.Site = o.RunID, plan.Runbook.Name, plan.Runbook.Digest(), plan.Site
	info.Deployment, info.Inventory, info.InventoryDigest = o.Inventory.Deployment, absPath(o.Inventory.File), o.Inventory.Digest
	info.Mode, info.ResumeOf, info.Reason, info.Started = o.Mode.String(), o.ResumeOf, o.Reason, rep.Started
	if o.ResumeOf != "" && o.Mode == Execute {
		info.Mode = "resume"
	}
	st.Emit(event.Event{Kind: event.RunStart, Run: &info, Message: fmt.Sprintf("%s --site %s", plan.Runbook.Name, plan.Site)})

	finish := func(outcome event.Outcome, msg string) {
		rep.Outcome = outcome
		st.Emit(event.Event{Kind: event.RunEnd, Outcome: outcome, Message: msg, Duration: o.Clock.Now().Sub(rep.Started)})
	}

	// 1. before-state and preconditions (not offline: that makes no connection)
	var refusal *RefusedError
	dep := &checks.Deployment{Inventory: o.Inventory, Runner: o.Runner, Probe: o.Probe, Now: o.Clock.Now, Layers: o.Layers}
	if o.Mode != Offline {
		snap := dep.Observe(ctx)
		rep.Before, rep.InvariantBefore, rep.VerdictBefore = snap.Sites, snap.Invariant, snap.Verdict
		down := checks.UnreachableSites(snap.Sites)
		for _, t := range plan.Tasks() {
			switch d := t.Driver.(type) {
			case *verifyDriver:
				d.down = down
			case *mongoDriver:
				d.started = rep.Started
				if fp := o.ForcePromotion; fp != nil && d.move == "" && fp.Site == d.site {
					d.force = fp
					d.warn = func(lines []string) { // journaled, and rendered as text or JSON
						for _, l := range lines {
							st.Emit(event.Event{Kind: event.Message, Task: t.ID, Step: t.Step.Name, Message: "warning: " + l})
						}
					}
				}
			}
		}
		for _, s := range rep.Before {
			st.Emit(event.Event{Kind: event.Message, Message: "before: " + DescribeSite(s)})
		}
		st.Emit(event.Event{Kind: event.Invariant, Message: "before: " + rep.InvariantBefore.Message, Outcome: invOutcome(rep.InvariantBefore)})
		st.Emit(event.Event{Kind: event.Verdict, Message: "before: " + describeVerdict(rep.VerdictBefore)})
		if ref, warn := o.preconditions(plan, rep.Before); ref != nil {
			if o.Force {
				st.Emit(event.Event{Kind: event.Message, Message: fmt.Sprintf("--force overrides a refusal: %s; reason given: %q", ref.Reason, o.Reason)})
				rep.Warnings = append(rep.Warnings, "forced past: "+ref.Reason)
			} else if o.Mode == Execute {
				finish(event.Refused, ref.Error())
				return rep, ref
			} else {
				refusal = ref // a plan still shows its steps, then says it would be refused
				st.Emit(event.Event{Kind: event.Message, Message: "the run would be refused: " + ref.Reason})
			}
		} else if warn != "" {
			rep.Warnings = append(rep.Warnings, warn)
			st.Emit(event.Event{Kind: event.Message, Message: "warning: " + warn})
		}
	}
	if ctx.Err() != nil {
		finish(event.Cancelled, "cancelled before anything changed")
		return rep, &OutcomeError{Outcome: event.Cancelled, RunID: o.RunID, Msg: "cancelled before anything changed"}
	}

	// 2. confirmation and lock (only when something may change)
	if o.Mode == Execute {
		if o.Confirm != nil {
			if err := o.Confirm(ctx, plan, rep.Before); err != nil {
				finish(event.Refused, "not confirmed: "+err.Error())
				return rep, &RefusedError{Reason: "not confirmed: " + err.Error()}
			}
		}
		if o.Lock != nil {
			release, err := o.Lock(lockNotes(ctx, st), o.RunID)
			if err != nil {
				finish(event.Refused, "lock: "+err.Error())
				if errors.Is(err, runlock.ErrHeld) {
					return rep, err
				}
				return rep, &RefusedError{Reason: "cannot take the run lock: " + err.Error()}
			}
			st.Emit(event.Event{Kind: event.Lock, Message: "lock acquired"})
			defer func() {
				if err := release(); err != nil {
					st.Emit(event.Event{Kind: event.Lock, Message: "lock release failed: " + err.Error() + " (break it with: sitectl unlock --reason ...)"})
				} else {
					st.Emit(event.Event{Kind: event.Lock, Message: "lock released"})
				}
			}()
		}
	}

	// 3. the engine
	eng := &Engine{Runner: o.Runner, Sink: st, Clock: o.Clock, Mode: o.Mode, Probe: o.Probe, Hint: o.Hint}
	if jw != nil {
		eng.Journal = jw.Err // a lost journal record stops the run before its next act
	}
	rep.Result = eng.Run(ctx, plan)
	if !rep.Result.LastVerified.IsZero() {
		rep.RTO = rep.Result.LastVerified.Sub(rep.Started)
	}
	outcome := rep.Result.Outcome
	msg := summary(rep.Result)

	// 4. the invariant again, after the runbook
	if o.Mode == Execute && outcome != event.Cancelled {
		snap := dep.Observe(ctx)
		rep.After, rep.InvariantAfter, rep.VerdictAfter = snap.Sites, snap.Invariant, snap.Verdict
		for _, s := range rep.After {
			st.Emit(event.Event{Kind: event.Message, Message: "after: " + DescribeSite(s)})
		}
		st.Emit(event.Event{Kind: event.Invariant, Message: "after: " + rep.InvariantAfter.Message, Outcome: invOutcome(rep.InvariantAfter)})
		if !rep.InvariantAfter.Holds {
			if rep.InvariantAfter.Known {
				outcome, msg = event.Failed, rep.InvariantAfter.Message
			} else if outcome == event.OK {
				outcome, msg = event.Unknown, rep.InvariantAfter.Message
			}
		}
		vo, vmsg := verdictOutcome(plan, rep.VerdictAfter)
		st.Emit(event.Event{Kind: event.Verdict, Message: "after: " + describeVerdict(rep.VerdictAfter), Outcome: vo, Expected: vmsg})
		if outcome == event.OK && vo != event.OK {
			outcome, msg = vo, fmt.Sprintf("%s; verdict: %s (expected %s)", msg, rep.VerdictAfter.Summary, vmsg)
			if len(rep.VerdictAfter.Fixes) > 0 {
				msg += "; " + strings.Join(rep.VerdictAfter.Fixes, "; ")
			}
		}
	}
	if jw != nil {
		if err := jw.Err(); err != nil {
			msg += "; journal write failed: " + err.Error()
			if outcome == event.OK {
				outcome = event.Unknown
			}
		}
	}
	if refusal != nil {
		finish(event.Refused, refusal.Error())
		return rep, refusal
	}
	finish(outcome, msg)
	switch outcome {
	case event.OK, event.Planned, event.Skipped:
		return rep, nil
	}
	if o.Mode != Execute && outcome != event.Cancelled {
		return rep, nil // a plan that found unknown states is still a plan
	}
	return rep, &OutcomeError{Outcome: outcome, RunID: o.RunID, Msg: msg}
}

func invOutcome(i checks.Invariant) event.Outcome {
	switch {
	case i.Holds:
		return event.OK
	case i.Known:
		return event.Failed
	}
	return event.Unknown
}

// preconditions refuses an activation while the other site serves.
func (o *Operation) preconditions(p *Plan, before []checks.SiteStatus) (*RefusedError, string) {
	var other checks.SiteStatus
	for _, s := range before {
		if s.Site == p.Other {
			other = s
		}
	}
	rb := p.Runbook
	if rb.Effect != EffectActivate || rb.Scope == ScopeReporting {
		if rb.Effect == EffectDeactivate && rb.Scope != ScopeReporting && !other.Core.Serving() {
			return nil, fmt.Sprintf("site %s is %s: after this run no site may be active", p.Other, other.Core)
		}
		return nil, ""
	}
	switch other.Core {
	case checks.Active, checks.Partial:
		return &RefusedError{
			Reason: fmt.Sprintf("site %s is reachable and still active (running: %s); %s would make both sites active", p.Other, strings.Join(other.Running(inventory.Core), ", "), rb.Name),
			Hint:   fmt.Sprintf("renounce it first: sitectl renounce --site %s, or run: sitectl switchover --site %s (or --force --reason \"...\" if you know better)", p.Other, p.Site),
		}, ""
	case checks.Undecided:
		return &RefusedError{
			Reason: fmt.Sprintf("cannot tell whether site %s is active: %s", p.Other, unknownDetail(other)),
			Hint:   fmt.Sprintf("inspect it: sitectl status --site %s; if it is down or fenced, re-run with --force --reason \"...\"", p.Other),
		}, ""
	case checks.Unreachable:
		return nil, fmt.Sprintf("site %s did not answer (%s): assuming it is down; make sure it is fenced (powered off or isolated) before traffic moves", p.Other, unknownDetail(other))
	}
	return nil, ""
}

func unknownDetail(s checks.SiteStatus) string {
	var parts []string
	for _, h := range s.Hosts {
		if !h.Reachable {
			parts = append(parts, h.Host+": "+h.Error)
			continue
		}
		for _, svc := range h.Services {
			if svc.State == checks.Unknown {
				parts = append(parts, h.Host+"/"+svc.Service+": "+svc.Error)
			}
		}
	}
	if len(parts) == 0 {
		return "no detail"
	}
	return strings.Join(parts, "; ")
}

// DescribeSite is a one-line summary of a site's state.
func DescribeSite(s checks.SiteStatus) string {
	var run, stop, unk []string
	for _, svc := range s.Services() {
		n := svc.Host + "/" + svc.Service
		switch svc.State {
		case checks.Running:
			run = append(run, n)
		case checks.Stopped:
			stop = append(stop, n)
		default:
			unk = append(unk, n)
		}
	}
	out := fmt.Sprintf("site %s (%s): core %s, reporting %s", s.Site, s.Role, s.Core, s.Reporting)
	if len(run) > 0 {
		out += "; running " + strings.Join(run, ", ")
	}
	if len(stop) > 0 {
		out += "; stopped " + strings.Join(stop, ", ")
	}
	if len(unk) > 0 {
		out += "; unknown " + strings.Join(unk, ", ")
	}
	return out
}

func summary(r *Result) string {
	c := r.Counts()
	var parts []string
	for _, o := range []event.Outcome{event.OK, event.Skipped, event.Planned, event.Failed, event.Unknown, event.Blocked, event.Cancelled} {
		if c[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[o], o))
		}
	}
	if len(parts) == 0 {
		return "no tasks"
	}
	return fmt.Sprintf("%d tasks: %s", len(r.Tasks), strings.Join(parts, ", "))
}

// IsRefused reports whether err is a precondition refusal.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// verdictOutcome checks the who-serves verdict against what the runbook
// promises: an activating core runbook must end with its site serving in
// every layer; a deactivating one with its site serving in none.
func verdictOutcome(p *Plan, v checks.Verdict) (event.Outcome, string) {
	rb := p.Runbook
	if rb.Scope == ScopeReporting {
		return event.OK, "any (reporting only)"
	}
	switch rb.Effect {
	case EffectActivate, EffectSwitch:
		want := "site " + p.Site + " serves"
		switch {
		case v.Serves(p.Site):
			return event.OK, want
		case v.State == checks.ServeUnknown:
			return event.Unknown, want
		}
		return event.Failed, want
	case EffectDeactivate:
		want := "site " + p.Site + " does not serve"
		switch {
		case v.State == checks.ServeUnknown:
			return event.Unknown, want
		case v.State == checks.ServeSplit && slices.Contains(splitSites(v), p.Site), v.Serves(p.Site),
			v.State == checks.ServePartial && v.Site == p.Site:
			return event.Failed, want
		}
		return event.OK, want
	}
	return event.OK, "any"
}

func splitSites(v checks.Verdict) []string {
	var out []string
	for _, l := range v.Layers {
		if l.Neutral {
			continue
		}
		if l.Site != "" {
			out = append(out, l.Site)
		}
		out = append(out, l.Sites...)
	}
	return out
}

// describeVerdict is the verdict in one line with each layer's answer.
func describeVerdict(v checks.Verdict) string {
	var parts []string
	for _, l := range v.Layers {
		p := l.Layer + " " + l.State
		if l.Site != "" {
			p += " " + l.Site
		}
		parts = append(parts, p)
	}
	return v.Summary + " [" + strings.Join(parts, ", ") + "]"
}
