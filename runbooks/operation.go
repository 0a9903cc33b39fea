package runbooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/checks/layer"
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

	Runner     services.HostRunner
	Sink       event.Sink // renderers; the journal is added here
	JournalDir string     // where the journal goes (Execute mode)
	Redactor   journal.Redactor
	Clock      Clock
	Probe      services.Prober
	Hint       func(*Task) string
	// Layers observed besides services; nil means every layer the
	// inventory describes.
	Layers []layer.Layer
	// ForcePromotion, only from its own flag, the typed site and the
	// fencing statement, lets wait-mongodb force-promote the site's
	// surviving member when the replica set lost its majority.
	ForcePromotion *ForcePromotion

	// Lock takes the deployment's run lock (Execute mode), before anything
	// is observed; release is deferred until the run has ended. missed are
	// lock hosts it could not reach at the network level: the run goes on
	// without them only in a disaster takeover whose lost site holds them.
	Lock func(ctx context.Context, runID string) (release func() error, missed []LockMiss, err error)
	// Confirm is asked, after the before-state is known, whether to go on.
	Confirm func(ctx context.Context, p *Plan, before []services.SiteStatus) error
	// Moves keeps the last completed move on the lock hosts (cooldown
	// across machines); nil: this machine's journal only.
	Moves MoveLog
	// Local runs commands on the operator's machine: a lost site's fence
	// command and check, hooks without a host (remote.LocalHost, set by
	// the commands; nil: such a command fails and says so). Commands for a
	// named host go through Runner.
	Local services.HostRunner
	// HooksDone are the hooks the runs this one resumes already ran (id ->
	// run id, see HooksDone): they are journaled as skipped, not run again.
	HooksDone map[string]string
	// Notifier sends the run's notifications (inventory notify); nil:
	// none. It never blocks the run: deliveries are retried in the
	// background and waited for, within their deadline, at the end.
	Notifier *Notifier
}

// LockMiss is a lock host whose copy of the run lock was not taken: it did
// not answer at the network level (runlock.Miss).
type LockMiss = runlock.Miss

// Report is what an operation did.
type Report struct {
	RunID           string
	Plan            *Plan
	Result          *Result
	Before, After   []services.SiteStatus
	InvariantBefore checks.Invariant
	InvariantAfter  checks.Invariant
	VerdictBefore   checks.Verdict
	VerdictAfter    checks.Verdict
	JournalPath     string
	Outcome         event.Outcome
	Started         time.Time
	RTO             time.Duration // start to the last successful verification
	Warnings        []string
	// HookFailures are the hooks that failed and made the run fail (a
	// before_* hook that stopped it, or a failed after_* hook).
	HookFailures []HookFailure
	// Notifications are the deliveries of the run's notifications.
	Notifications []Delivery
}

// RefusedError says a precondition refused the run; nothing was changed.
type RefusedError struct {
	Reason string
	Hint   string
	// settling: the other site does not answer and some observer already
	// sees it down: its loss may be confirmed in a moment.
	settling bool
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

// Run performs the operation as a short list of phases: lock, observe,
// preconditions, confirm (and observe again if the prompt waited), fence
// (a disaster takeover only), execute, verify (the invariant after), and
// the verdict. The error is a *RefusedError, a lock error, an
// *OutcomeError, or an infrastructure error (journal, inventory).
func (o *Operation) Run(ctx context.Context) (*Report, error) {
	r, err := o.start()
	if err != nil {
		return r.rep, err
	}
	defer r.close()
	defer func() {
		if r.unlock != nil {
			r.unlock()
		}
	}()
	for _, phase := range []func(context.Context) error{
		r.lock,      // 1. before anything is observed
		r.observe,   // 2. observe and 3. the preconditions
		r.confirm,   // 4. the operator's typed confirmation
		r.begin,     // run_started, the before_run hooks
		r.fenceLost, // 5. a lost site, before anything of this one starts
		r.execute,   // 6. the plan, through the engine
		r.conclude,  // 7. verify, 8. the verdict, 9. hooks, notifications
	} {
		if err := phase(ctx); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// lock takes the deployment's lock before anything is observed, so that
// what the preconditions see cannot change under another operator's run;
// meanwhile it connects to everything the observation will use (a lost
// site's endpoints are waited for once, here).
func (r *running) lock(ctx context.Context) error {
	o := r.o
	if o.Mode != Execute || o.Lock == nil {
		return nil
	}
	warmed := make(chan struct{})
	go func() { defer close(warmed); checks.Warm(ctx, o.Inventory, o.Runner) }()
	release, miss, err := o.Lock(lockNotes(ctx, r.st), o.RunID)
	<-warmed
	r.missed = miss
	if err != nil {
		r.finish(event.Refused, "lock: "+err.Error())
		if errors.Is(err, runlock.ErrHeld) {
			return err
		}
		return &RefusedError{Reason: "cannot take the run lock: " + err.Error()}
	}
	r.emit(event.Event{Kind: event.Lock, Message: "lock acquired"})
	r.unlock = sync.OnceFunc(func() {
		if err := release(); err != nil {
			r.emit(event.Event{Kind: event.Lock, Outcome: event.Failed, Message: "lock release failed: " + err.Error() + " (break it with: sitectl unlock --reason ...)"})
		} else {
			r.emit(event.Event{Kind: event.Lock, Message: "lock released"})
		}
	})
	return nil
}

// observe observes the deployment and checks the preconditions (not
// offline: that makes no connection). A refusal of a plan is kept for the
// end (a plan still shows its steps); a run is refused here.
func (r *running) observe(ctx context.Context) error {
	o := r.o
	if o.Mode != Offline {
		ref, err := r.observeAndCheck(ctx)
		if err != nil {
			return err
		}
		r.refusal = ref
	}
	if ref := r.lockMissed(r.missed); ref != nil {
		r.finish(event.Refused, ref.Error())
		return ref
	}
	if ctx.Err() != nil {
		r.finish(event.Cancelled, "cancelled before anything changed")
		return &OutcomeError{Outcome: event.Cancelled, RunID: o.RunID, Msg: "cancelled before anything changed"}
	}
	return nil
}

// confirm asks for the typed confirmation, then looks again if the prompt
// waited: another operator's run may have changed the deployment meanwhile.
func (r *running) confirm(ctx context.Context) error {
	o := r.o
	if o.Mode != Execute || o.Confirm == nil {
		return nil
	}
	asked := o.Clock.Now()
	if err := o.Confirm(ctx, r.plan, r.rep.Before); err != nil {
		r.finish(event.Refused, "not confirmed: "+err.Error())
		return &RefusedError{Reason: "not confirmed: " + err.Error()}
	}
	if o.Clock.Now().Sub(asked) >= reobserveAfter {
		r.emit(event.Event{Kind: event.Message, Message: "observing again: the confirmation took " + o.Clock.Now().Sub(asked).Round(time.Second).String()})
		if _, err := r.observeAndCheck(ctx); err != nil {
			return err
		}
	}
	return nil
}

// begin starts the run: run_started is sent, then the before_run hooks
// run: after the confirmation, before the first act (the fence of a
// disaster takeover included).
func (r *running) begin(ctx context.Context) error {
	o, rep := r.o, r.rep
	r.notifyStart(ctx)
	fails := r.failing(r.runHooks(ctx, inventory.HookBeforeRun, nil, ""))
	if len(fails) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		const msg = "cancelled in a before_run hook, before anything changed"
		r.notifyEnd(ctx, event.Cancelled, msg)
		r.finish(event.Cancelled, msg)
		return &OutcomeError{Outcome: event.Cancelled, RunID: o.RunID, Msg: msg}
	}
	if f := stops(fails); f != nil {
		rep.HookFailures = fails
		ref := &RefusedError{Reason: "a before_run hook stopped the run before anything changed: " + f.Msg,
			Hint: "fix the hook or the cause, then re-run; or set on_error: continue on the hook (inventory or runbook hooks)"}
		r.notifyEnd(ctx, event.Refused, ref.Error())
		r.finish(event.Refused, ref.Error())
		return ref
	}
	r.hookMu.Lock() // on_error: fail: the run goes on, and fails at its end
	r.hookFails = append(r.hookFails, fails...)
	r.hookMu.Unlock()
	return nil
}

// fenceLost fences a lost site (a disaster takeover) before anything of
// this one starts.
func (r *running) fenceLost(ctx context.Context) error {
	if r.o.Mode != Execute || r.disaster == nil {
		return nil
	}
	if err := r.fence(ctx, r.disaster); err != nil {
		outcome, msg := r.afterHooks(ctx, event.Failed, err.Error())
		r.notifyEnd(ctx, outcome, msg)
		r.finish(outcome, msg)
		return &OutcomeError{Outcome: outcome, RunID: r.o.RunID, Msg: msg}
	}
	return nil
}

// execute runs the plan through the engine, with the run's environment.
func (r *running) execute(ctx context.Context) error {
	o, rep := r.o, r.rep
	eng := &Engine{Runner: o.Runner, Sink: r.st, Clock: o.Clock, Mode: o.Mode, Probe: o.Probe, Hint: o.Hint,
		Env: &RunEnv{Down: checks.DownSites(rep.Before), Started: rep.Started, Force: o.ForcePromotion}}
	eng.BeforeStep, eng.AfterStep = r.stepHooks()
	if r.jw != nil {
		eng.Journal = r.jw.Err // a lost journal record stops the run before its next act
	}
	rep.Result = eng.Run(ctx, r.plan)
	if !rep.Result.LastVerified.IsZero() {
		rep.RTO = rep.Result.LastVerified.Sub(rep.Started)
	}
	return nil
}

// conclude verifies (the invariant again) and gives the verdict, records
// the move for the cooldown, runs the after_run and on_failure hooks (a
// failed after_* hook makes the run's exit non-zero, and says so), then
// sends the notifications, and ends the run with its outcome.
func (r *running) conclude(ctx context.Context) error {
	o, rep := r.o, r.rep
	outcome, msg := rep.Result.Outcome, summary(rep.Result)
	if o.Mode == Execute && outcome != event.Cancelled {
		outcome, msg = r.verifyAfter(ctx, outcome, msg)
	}
	if err := r.journalErr(); err != nil {
		msg += "; journal write failed: " + err.Error()
		if outcome == event.OK {
			outcome = event.Unknown
		}
	}
	if r.refusal != nil {
		r.runHooks(ctx, inventory.HookAfterRun, nil, event.Refused) // a plan shows them
		r.finish(event.Refused, r.refusal.Error())
		return r.refusal
	}
	if outcome == event.OK && o.Mode == Execute {
		r.recordMove(ctx)
	}
	outcome, msg = r.afterHooks(ctx, outcome, msg)
	r.notifyEnd(ctx, outcome, msg)
	r.finish(outcome, msg)
	switch outcome {
	case event.OK, event.Planned, event.Skipped:
		return nil
	}
	if o.Mode != Execute && outcome != event.Cancelled {
		return nil // a plan that found unknown states is still a plan
	}
	return &OutcomeError{Outcome: outcome, RunID: o.RunID, Msg: msg}
}

// emitObserved emits an observation of the deployment before or after the
// run (action): each site, the evidence of a site that does not answer
// here, and the invariant.
func (r *running) emitObserved(action string, snap checks.Snapshot) {
	for _, s := range snap.Sites {
		r.emit(event.Event{Kind: event.Message, Action: action, Message: action + ": " + DescribeSite(s)})
		if s.Loss != nil && s.Loss.State != checks.SiteReachable {
			r.emit(event.Event{Kind: event.Evidence, Action: action, Site: s.Site, Message: s.Loss.Summary, Lines: s.Loss.Lines()})
		}
	}
	r.emit(event.Event{Kind: event.Invariant, Action: action, Message: action + ": " + snap.Invariant.Message, Outcome: invOutcome(snap.Invariant)})
}

// reobserveAfter: a confirmation that took longer than this is followed by
// a new observation and the preconditions again before anything acts.
const reobserveAfter = 2 * time.Second

// running is one Run's state: the plan, the journal, the event stamper.
type running struct {
	o        *Operation
	plan     *Plan
	rep      *Report
	st       *event.Stamper
	jw       *journal.Writer
	disaster *services.SiteStatus // the lost site a disaster takeover fences
	missed   []LockMiss           // lock copies not taken (lockMissed decides)
	refusal  *RefusedError        // a plan's refusal, reported at its end

	hookMu    sync.Mutex
	hookFails []HookFailure // step hooks that failed (stop or fail)
	notifying atomic.Bool   // run_started sent: step_failed and run_ended follow
	// unlock releases the deployment's lock once (nil: none was taken):
	// at the end of Run, or before waiting for the run's notifications,
	// which change nothing and must not hold the next run up.
	unlock func()
}

// afterHooks runs the after_run hooks (and on_failure when the run did
// not end ok) and folds every failed hook of the run into its outcome: an
// ok run with a failed hook fails, and its message names the hook.
func (r *running) afterHooks(ctx context.Context, outcome event.Outcome, msg string) (event.Outcome, string) {
	if r.o.Mode == Execute && outcome == event.Cancelled {
		ctx = context.WithoutCancel(ctx) // an on_failure hook still runs, within its own timeout
	}
	fails := r.failing(r.runHooks(ctx, inventory.HookAfterRun, nil, outcome))
	if r.o.Mode != Execute || !outcome.Succeeded() {
		fails = append(fails, r.failing(r.runHooks(ctx, inventory.HookOnFailure, nil, outcome))...)
	}
	r.hookMu.Lock()
	fails = append(r.hookFails, fails...)
	r.hookMu.Unlock()
	r.rep.HookFailures = append(r.rep.HookFailures, fails...)
	if len(fails) == 0 {
		return outcome, msg
	}
	if outcome == event.OK {
		outcome = event.Failed
		msg += " (the runbook itself succeeded)"
	}
	return outcome, hookSummary(msg, fails)
}

func (r *running) emit(e event.Event) { r.st.Emit(e) }

func (r *running) finish(outcome event.Outcome, msg string) {
	r.rep.Outcome = outcome
	r.emit(event.Event{Kind: event.RunEnd, Outcome: outcome, Message: msg, Duration: r.o.Clock.Now().Sub(r.rep.Started)})
}

func (r *running) close() {
	if r.jw != nil {
		r.jw.Close()
	}
}

func (r *running) journalErr() error {
	if r.jw == nil {
		return nil
	}
	return r.jw.Err()
}

// start compiles the plan, opens the journal and emits run.start.
func (o *Operation) start() (*running, error) {
	if o.Clock == nil {
		o.Clock = RealClock
	}
	if o.Sink == nil {
		o.Sink = event.Discard
	}
	r := &running{o: o}
	plan, err := o.Catalog.Compile(o.Runbook, o.Inventory, o.Site)
	if err != nil {
		return r, err
	}
	r.plan = plan
	rep := &Report{Plan: plan, Started: o.Clock.Now()}
	r.rep = rep
	if o.RunID == "" {
		o.RunID = journal.NewRunID(rep.Started)
	}
	rep.RunID = o.RunID
	sink := event.Sink(o.Sink)
	if o.Mode == Execute {
		var opts []journal.Option
		if o.Redactor != nil {
			opts = append(opts, journal.WithRedactor(o.Redactor))
		}
		jw, err := journal.Create(o.JournalDir, o.RunID, opts...)
		if err != nil {
			return r, fmt.Errorf("cannot open the run's journal in %s (nothing was changed): %w", o.JournalDir, err)
		}
		r.jw = jw
		rep.JournalPath = jw.Path()
		sink = event.Tee(jw, o.Sink)
	}
	if o.Notifier != nil && o.Mode == Execute {
		sink = event.Tee(sink, event.SinkFunc(func(e event.Event) { r.notifyStep(context.Background(), e) }))
	}
	r.st = &event.Stamper{RunID: o.RunID, Now: o.Clock.Now, Next: sink}
	info := o.Info
	info.ID, info.Runbook, info.RunbookDigest, info.Site = o.RunID, plan.Runbook.Name, plan.Runbook.Digest(), plan.Site
	info.Deployment, info.Inventory, info.InventoryDigest = o.Inventory.Deployment, absPath(o.Inventory.File), o.Inventory.Digest
	info.Mode, info.ResumeOf, info.Reason, info.Started = o.Mode.String(), o.ResumeOf, o.Reason, rep.Started
	if o.ResumeOf != "" && o.Mode == Execute {
		info.Mode = "resume"
	}
	r.emit(event.Event{Kind: event.RunStart, Run: &info, Message: fmt.Sprintf("%s --site %s", plan.Runbook.Name, plan.Site)})
	return r, nil
}

func (o *Operation) deployment() *checks.Deployment {
	return &checks.Deployment{Inventory: o.Inventory, Runner: o.Runner, Probe: o.Probe, Now: o.Clock.Now, Layers: o.Layers}
}

// observeAndCheck observes the deployment (the before-state), emits it
// with each unobserved site's loss evidence, and applies the
// preconditions. In Execute mode a refusal that is not forced ends the run
// (the error); in a plan it is returned to be reported after the steps.
//
// A site lost a moment ago still looks alive to the slower observers
// (MongoDB heartbeats time out after the election timeout, HAProxy needs
// its fall count) while the direct ones (the probes) already see it down:
// when some observer sees the other site down but its loss is not yet
// confirmed, a run waits for the evidence to settle, observing again every
// second up to failover.loss_wait, before it refuses.
func (r *running) observeAndCheck(ctx context.Context) (*RefusedError, error) {
	o, rep := r.o, r.rep
	start := o.Clock.Now()
	var snap checks.Snapshot
	var ref *RefusedError
	var warn string
	for waited := false; ; {
		snap = o.deployment().Observe(ctx)
		ref, warn = o.preconditions(r.plan, snap.Sites, snap.Verdict)
		if ref == nil || !ref.settling || o.Force || o.Mode == Offline || ctx.Err() != nil {
			break
		}
		left := o.Inventory.LossWait() - o.Clock.Now().Sub(start)
		if left <= 0 {
			break
		}
		if !waited {
			waited = true
			r.emit(event.Event{Kind: event.Message, Message: fmt.Sprintf("waiting up to %s for the evidence on site %s to settle: %s", left.Round(time.Second), r.plan.Other, ref.Reason)})
		}
		select {
		case <-ctx.Done():
		case <-o.Clock.After(time.Second):
		}
	}
	rep.Before, rep.InvariantBefore, rep.VerdictBefore = snap.Sites, snap.Invariant, snap.Verdict
	r.emitObserved(event.ActionBefore, snap)
	r.emit(event.Event{Kind: event.Verdict, Action: event.ActionBefore, Message: "before: " + describeVerdict(rep.VerdictBefore)})
	if ref == nil {
		ref = o.cooldown(ctx, r.plan)
	}
	r.disaster = nil
	if ref == nil || o.Force {
		r.disaster = disasterSite(r.plan, rep.Before)
	}
	switch {
	case ref != nil && o.Force:
		r.emit(event.Event{Kind: event.Message, Message: fmt.Sprintf("--force overrides a refusal: %s; reason given: %q", ref.Reason, o.Reason)})
		rep.Warnings = append(rep.Warnings, "forced past: "+ref.Reason)
	case ref != nil && o.Mode == Execute:
		r.finish(event.Refused, ref.Error())
		return nil, ref
	case ref != nil:
		r.emit(event.Event{Kind: event.Message, Message: "the run would be refused: " + ref.Reason})
		return ref, nil // a plan still shows its steps, then says it would be refused
	case warn != "":
		rep.Warnings = append(rep.Warnings, warn)
		r.emit(event.Event{Kind: event.Message, Message: "warning: " + warn})
	}
	return nil, nil
}

// recordMove keeps a completed takeover or switchover on the lock hosts,
// for the cooldown of runs from other machines.
func (r *running) recordMove(ctx context.Context) {
	rb, o := r.plan.Runbook, r.o
	if o.Moves == nil || rb.Scope == ScopeReporting || (rb.Effect != EffectActivate && rb.Effect != EffectSwitch) {
		return
	}
	m := Move{RunID: o.RunID, Runbook: rb.Name, Site: r.plan.Site, User: o.Info.User, Hostname: o.Info.Hostname, Ended: o.Clock.Now().UTC()}
	if err := o.Moves.Record(context.WithoutCancel(ctx), m); err != nil {
		r.emit(event.Event{Kind: event.Message, Message: "warning: the move was not recorded on every lock host (the cooldown of runs from other machines may not see it): " + err.Error()})
	}
}

// lockMissed decides whether the run may go on without the lock copies it
// could not take: only when they are on a site whose loss is confirmed
// (nobody there can run a move anyway) and the run acts on another site,
// and it says so in the journal.
func (r *running) lockMissed(missed []LockMiss) *RefusedError {
	down := checks.DownSites(r.rep.Before)
	var bad []string
	for _, m := range missed {
		if w := r.o.Inventory.Witness; w != nil && m.Site == w.Name {
			// the witness's copy guards against a partition; a witness
			// that does not answer must not stop a move between the sites
			r.emit(event.Event{Kind: event.Lock, Action: event.ActionWarn, Host: m.Host, Site: m.Site,
				Message: fmt.Sprintf("warning: the witness's lock copy on %s was not taken (%v); going on with the sites' copies", m.Host, m.Err)})
			continue
		}
		if down[m.Site] && m.Site != r.plan.Site {
			r.emit(event.Event{Kind: event.Lock, Action: event.ActionWarn, Host: m.Host, Site: m.Site,
				Message: fmt.Sprintf("the lock copy on %s was not taken: site %s is DOWN (%v); going on in disaster mode", m.Host, m.Site, m.Err)})
			continue
		}
		bad = append(bad, fmt.Sprintf("%s (site %s): %v", m.Host, m.Site, m.Err))
	}
	if len(bad) == 0 {
		return nil
	}
	return &RefusedError{
		Reason: "cannot take the deployment's run lock on " + strings.Join(bad, "; ") + ": only a disaster takeover of the other site (its loss confirmed) may go on without it",
		Hint:   "look: sitectl status; when the host answers again, re-run",
	}
}

// verifyAfter observes again after the runbook: the invariant must hold
// and the verdict must be what the runbook promises.
func (r *running) verifyAfter(ctx context.Context, outcome event.Outcome, msg string) (event.Outcome, string) {
	rep := r.rep
	snap := r.o.deployment().Observe(ctx)
	rep.After, rep.InvariantAfter, rep.VerdictAfter = snap.Sites, snap.Invariant, snap.Verdict
	r.emitObserved(event.ActionAfter, snap)
	if !rep.InvariantAfter.Holds {
		if rep.InvariantAfter.Known {
			outcome, msg = event.Failed, rep.InvariantAfter.Message
		} else if outcome == event.OK {
			outcome, msg = event.Unknown, rep.InvariantAfter.Message
		}
	}
	vo, vmsg := verdictOutcome(r.plan, rep.VerdictAfter)
	r.emit(event.Event{Kind: event.Verdict, Action: event.ActionAfter, Message: "after: " + describeVerdict(rep.VerdictAfter), Outcome: vo, Expected: vmsg})
	if outcome == event.OK && vo != event.OK {
		outcome, msg = vo, fmt.Sprintf("%s; verdict: %s (expected %s)", msg, rep.VerdictAfter.Summary, vmsg)
		if len(rep.VerdictAfter.Fixes) > 0 {
			msg += "; " + strings.Join(rep.VerdictAfter.Fixes, "; ")
		}
	}
	return outcome, msg
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

// preconditions refuses an activation while the other site may serve: it
// is active, its state is unknown, or it does not answer here and its loss
// is not confirmed by independent observers (UNREACHABLE FROM HERE,
// UNKNOWN: an unobserved site is never assumed down). A deactivation that
// would leave no site active is refused too (a switchover is one runbook:
// its renounce half is not checked on its own).
func (o *Operation) preconditions(p *Plan, before []services.SiteStatus, v checks.Verdict) (*RefusedError, string) {
	var other, self services.SiteStatus
	for _, s := range before {
		switch s.Site {
		case p.Other:
			other = s
		case p.Site:
			self = s
		}
	}
	rb := p.Runbook
	if rb.Scope == ScopeReporting {
		return nil, ""
	}
	if rb.Effect == EffectDeactivate {
		if other.Core.Serving() || self.Core == services.Passive {
			return nil, "" // the other site serves, or this one already does not
		}
		return &RefusedError{
			Reason: fmt.Sprintf("site %s is %s: after %s of site %s no site would be active (%s)", p.Other, describeActivity(other), rb.Name, p.Site, v.Summary),
			Hint:   fmt.Sprintf("to move traffic run: sitectl switchover --site %s; to stop site %s anyway: --force --reason \"...\"", p.Other, p.Site),
		}, ""
	}
	if rb.Effect == EffectSwitch && other.Core == services.Unreachable {
		// a planned move renounces the other site first: it must answer
		ref := lossRefusal(p, other)
		ref.Reason = "a switchover renounces the other site first, and it does not answer: " + ref.Reason
		if other.Loss.Down() {
			ref.Hint = fmt.Sprintf("site %s is DOWN: for a disaster takeover run: sitectl takeover --site %s", p.Other, p.Site)
		}
		return ref, ""
	}
	if rb.Effect != EffectActivate {
		return nil, ""
	}
	switch other.Core {
	case services.Active, services.Partial:
		return &RefusedError{
			Reason: fmt.Sprintf("site %s is reachable and still active (running: %s); %s would make both sites active", p.Other, strings.Join(other.Running(inventory.Core), ", "), rb.Name),
			Hint:   fmt.Sprintf("renounce it first: sitectl renounce --site %s, or run: sitectl switchover --site %s (or --force --reason \"...\" if you know better)", p.Other, p.Site),
		}, ""
	case services.Undecided:
		return &RefusedError{
			Reason: fmt.Sprintf("cannot tell whether site %s is active: %s", p.Other, unknownDetail(other)),
			Hint:   fmt.Sprintf("inspect it: sitectl status --site %s; if it is down or fenced, re-run with --force --reason \"...\"", p.Other),
		}, ""
	case services.Unreachable:
		if other.Loss.Down() {
			return nil, ""
		}
		return lossRefusal(p, other), ""
	}
	return nil, ""
}

// lossRefusal refuses a takeover while the other site does not answer here
// and its loss is not confirmed; it carries the evidence.
func lossRefusal(p *Plan, other services.SiteStatus) *RefusedError {
	summary := fmt.Sprintf("site %s does not answer here and its loss was not judged", p.Other)
	var lines []string
	if other.Loss != nil {
		summary, lines = other.Loss.Summary, other.Loss.Lines()
	}
	reason := fmt.Sprintf("%s; %s would risk two active sites", summary, p.Runbook.Name)
	if len(lines) > 0 {
		reason += "\n  evidence:\n    " + strings.Join(lines, "\n    ")
	}
	settling := false
	if v := other.Loss; v != nil && (v.State == checks.SiteUnreachableHere || v.State == checks.SiteUnknown) && v.Confirmed > 0 {
		settling = true
		for _, e := range v.Evidence {
			if e.Saw == checks.SawAccess || (!e.Independent && e.Saw != checks.SawDown) {
				settling = false // an access problem or a slow host does not settle into a loss
			}
		}
	}
	return &RefusedError{
		Reason: reason,
		Hint: fmt.Sprintf("inspect: sitectl check --site %s (every observer's evidence); sitectl status --site %s; if you know site %s is down and fenced: --force --reason \"...\"",
			p.Site, p.Other, p.Other),
		settling: settling,
	}
}

func describeActivity(s services.SiteStatus) string {
	if s.Core == services.Unreachable && s.Loss != nil {
		return string(s.Loss.State)
	}
	return string(s.Core)
}

func unknownDetail(s services.SiteStatus) string {
	var parts []string
	for _, h := range s.Hosts {
		if !h.Reachable {
			parts = append(parts, h.Host+": "+h.Error)
			continue
		}
		for _, svc := range h.Services {
			if svc.State == services.Unknown {
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
func DescribeSite(s services.SiteStatus) string {
	var run, stop, unk []string
	for _, svc := range s.Services() {
		n := svc.Host + "/" + svc.Service
		switch svc.State {
		case services.Running:
			run = append(run, n)
		case services.Stopped:
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
