package runbooks

import (
	"context"
	"fmt"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// disasterSite returns the other site when this run activates the core
// services of p.Site while the other site is lost (it does not answer and
// its loss is confirmed): the run must fence it first.
func disasterSite(p *Plan, before []services.SiteStatus) *services.SiteStatus {
	rb := p.Runbook
	if rb.Scope == ScopeReporting || (rb.Effect != EffectActivate && rb.Effect != EffectSwitch) {
		return nil
	}
	for i := range before {
		if s := &before[i]; s.Site == p.Other && s.Core == services.Unreachable && s.Loss.Down() {
			return s
		}
	}
	return nil
}

// Move is a completed takeover or switchover, as kept next to the run lock
// on every lock host, so that another operator's machine sees it too.
type Move struct {
	RunID    string    `json:"run_id"`
	Runbook  string    `json:"runbook"`
	Site     string    `json:"site"`
	User     string    `json:"user"`
	Hostname string    `json:"hostname"`
	Ended    time.Time `json:"ended"`
}

// MoveLog keeps the deployment's last move on its lock hosts.
type MoveLog interface {
	// Last returns the last move each lock host that answers keeps.
	Last(ctx context.Context) ([]Move, error)
	// Record writes m as the last move on every lock host that answers.
	Record(ctx context.Context, m Move) error
}

// cooldown refuses a takeover or switchover within failover.cooldown of a
// completed one of the same deployment that made the OTHER site active,
// found in this machine's journal (anti-flapping: a double switchover is
// not supported), or kept on the lock hosts (another operator's machine).
// Running the same move again is not a flap: it restarts what stopped (a
// component failure) and skips the rest.
func (o *Operation) cooldown(ctx context.Context, p *Plan) *RefusedError {
	rb := p.Runbook
	if o.Mode != Execute || o.ResumeOf != "" || rb.Scope == ScopeReporting || (rb.Effect != EffectActivate && rb.Effect != EffectSwitch) {
		return nil
	}
	window := o.Inventory.Cooldown()
	now := o.Clock.Now()
	refuse := func(m Move, where string) *RefusedError {
		age := now.Sub(m.Ended)
		return &RefusedError{
			Reason: fmt.Sprintf("run %s (%s --site %s by %s@%s, %s) completed %s ago, within the cooldown of %s: sites must not flap",
				m.RunID, m.Runbook, m.Site, m.User, m.Hostname, where, age.Round(time.Second), window),
			Hint: fmt.Sprintf("look at it: sitectl journal show %s (on %s); wait %s, or: --force --reason \"...\" (failover.cooldown in the inventory sets the window)",
				m.RunID, m.Hostname, (window - age).Round(time.Second)),
		}
	}
	recent := func(m Move) bool {
		age := now.Sub(m.Ended)
		return m.Site != p.Site && age >= 0 && age < window
	}
	if o.Moves != nil {
		last, _ := o.Moves.Last(ctx) // what the lock hosts that answer keep
		for _, m := range last {
			if prev, err := o.Catalog.Get(m.Runbook); err == nil && recent(m) && prev.Scope != ScopeReporting {
				return refuse(m, "recorded on the lock hosts")
			}
		}
	}
	runs, err := journal.List(o.JournalDir)
	if err != nil {
		return nil // no readable history: nothing to hold against this run
	}
	for _, r := range runs {
		if r.Deployment != o.Inventory.Deployment || r.Outcome != string(event.OK) || (r.Mode != "run" && r.Mode != "resume") || r.ID == o.RunID {
			continue
		}
		prev, err := o.Catalog.Get(r.Runbook)
		if err != nil || prev.Scope == ScopeReporting || (prev.Effect != EffectActivate && prev.Effect != EffectSwitch) {
			continue
		}
		m := Move{RunID: r.ID, Runbook: r.Runbook, Site: r.Site, User: r.User, Hostname: r.Hostname, Ended: r.Started.Add(r.Duration)}
		if recent(m) {
			return refuse(m, "this machine's journal")
		}
	}
	return nil
}

// fence fences the lost site: its fence command and check (inventory
// sites[].fence), then HAProxy maint for its servers where HAProxy
// answers. Without a fence it says plainly that the site is not fenced.
// A fence that fails or is not confirmed stops the run: nothing of this
// site has been started.
func (r *running) fence(ctx context.Context, lost *services.SiteStatus) error {
	o := r.o
	r.emit(event.Event{Kind: event.Evidence, Action: event.ActionDisaster, Site: lost.Site, Message: "disaster takeover: " + lost.Loss.Summary, Lines: lost.Loss.Lines()})
	site := o.Inventory.Site(lost.Site)
	if site == nil {
		return fmt.Errorf("no site %s in the inventory", lost.Site)
	}
	if f := site.Fence; f != nil {
		timeout := f.Timeout.D()
		if timeout <= 0 {
			timeout = 60 * time.Second
		}
		where := "this machine"
		if f.Host != "" {
			where = f.Host
		}
		for _, c := range []struct{ what, cmd string }{{"fence", f.Command}, {"fence check", f.Check}} {
			res, err := r.runCommand(ctx, f.Host, nil, c.cmd, timeout)
			e := event.Event{Kind: event.Fence, Site: lost.Site, Host: f.Host, Action: c.what, Command: c.cmd, Duration: res.Duration,
				Stdout: string(res.Stdout), Stderr: string(res.Stderr)}
			if err == nil {
				code := res.ExitCode
				e.ExitCode = &code
			}
			if err != nil || res.ExitCode != 0 {
				observed := fmt.Sprintf("exit %d", res.ExitCode)
				if err != nil {
					observed = err.Error()
				}
				e.Outcome, e.Expected, e.Observed = event.Failed, "exit 0", observed
				e.Message = fmt.Sprintf("%s of site %s failed on %s: %s", c.what, lost.Site, where, observed)
				e.Hint = fmt.Sprintf("fence site %s by hand, confirm it, then re-run with --force --reason \"fenced by hand: ...\"", lost.Site)
				r.emit(e)
				return fmt.Errorf("%s (expected exit 0 from %q on %s); nothing of site %s was started; %s", e.Message, c.cmd, where, r.plan.Site, e.Hint)
			}
			e.Outcome, e.Message = event.OK, fmt.Sprintf("%s of site %s: ok on %s", c.what, lost.Site, where)
			r.emit(e)
		}
	} else {
		msg := fmt.Sprintf("site %s is NOT fenced: the inventory has no fence for it (sites[].fence); it is DOWN by the evidence, but if it comes back it must not serve: keep it isolated until sitectl renounce --site %s has run there", lost.Site, lost.Site)
		r.rep.Warnings = append(r.rep.Warnings, msg)
		r.emit(event.Event{Kind: event.Fence, Site: lost.Site, Outcome: event.Skipped, Message: msg})
	}
	r.fenceLayers(ctx, lost.Site)
	return nil
}

// fenceLayers fences the lost site in every layer that can (HAProxy: its
// servers in maint, so that a site that comes back gets no traffic until it
// is renounced); a layer that does not answer is reported, not fatal.
func (r *running) fenceLayers(ctx context.Context, site string) {
	for _, l := range checks.Layers() {
		f, ok := l.(layer.Fencer)
		if !ok || !l.In(r.o.Inventory) {
			continue
		}
		action, done, failed := f.Fence(ctx, r.o.Inventory, site)
		if done != "" {
			r.emit(event.Event{Kind: event.Fence, Site: site, Action: action, Outcome: event.OK, Message: done})
		}
		if failed != "" {
			r.rep.Warnings = append(r.rep.Warnings, failed)
			r.emit(event.Event{Kind: event.Fence, Site: site, Action: action, Outcome: event.Failed, Message: "warning: " + failed})
		}
	}
}
