// Package runexec is what the commands that run or read runbook runs share:
// executing a run with the factory's dependencies (the runbook commands,
// resume, the board), and finding and re-planning a journaled run (journal,
// report, resume). Commands import it, never each other.
package runexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sitectl/sitectl/cmd/internal/render"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// Options of a runbook run.
type Options struct {
	F        *cmdutil.Factory
	Runbook  string
	Site     string
	Yes      bool
	Force    bool
	Reason   string
	ResumeOf string // set by `sitectl resume`
	Args     []string
	// InventoryChanged (set by `sitectl resume --inventory-changed`) says
	// how the inventory differs from the resumed run's; journaled.
	InventoryChanged string
	// HooksDone (set by `sitectl resume`): the hooks the resumed runs
	// already ran, by id, with the run that ran them.
	HooksDone map[string]string

	// Disaster promotion of the site's MongoDB member by forced reconfig:
	// its own flag, the lost site stated fenced, and the site name typed
	// (or --confirm-site when nobody can type). --yes never implies it.
	ForcePromoteMongo bool
	Fenced            string
	ConfirmSite       string
}

// NewOperation builds a run of runbook rb on site with the factory's
// dependencies, the one place the runbook commands, resume and the board
// set it up: who runs it and from where (added to info), the journal
// directory, the redactor, the hints; in Execute mode also the deployment's
// lock (resumeOf: the run a resume takes the lock over from), the record of
// moves the cooldown reads, and the notifications. The caller sets what is
// its own (Force, Reason, Confirm, ...).
func NewOperation(f *cmdutil.Factory, inv *inventory.Inventory, cat *runbooks.Catalog, pool *remote.Pool, mode runbooks.Mode,
	rb, site string, sink event.Sink, info event.RunInfo, resumeOf string) (*runbooks.Operation, error) {
	dir, err := f.StateDir()
	if err != nil {
		return nil, err
	}
	info.User, info.Hostname = cmdutil.Who(f)
	info.PID, info.Version, info.Overrides, info.Warnings = os.Getpid(), f.Version, cat.Overrides(), cmdutil.RunWarnings(inv)
	op := &runbooks.Operation{
		Inventory: inv, Catalog: cat, Runbook: rb, Site: site, Mode: mode, Info: info,
		Runner:     pool,
		Local:      remote.NewLocalHost(),
		Sink:       journal.RedactSink(f.Redactor, sink),
		JournalDir: dir,
		Redactor:   f.Redactor(),
		Hint:       cmdutil.TaskHint(inv),
	}
	if mode == runbooks.Execute {
		op.Lock = func(ctx context.Context, runID string) (func() error, []runbooks.LockMiss, error) {
			dl, err := cmdutil.DeploymentLock(f, inv, pool)
			if err != nil {
				return nil, nil, err
			}
			return dl.Acquire(ctx, cmdutil.Holder(f, runID), resumeOf, func(msg string) {
				fmt.Fprintln(f.IO.ErrOut, msg)
				event.Note(ctx, msg) // journaled as a lock event of this run
			})
		}
		op.Moves = cmdutil.Moves(inv, pool)
		op.Notifier = runbooks.NewNotifier(inv, cmdutil.WebhookPoster{}, f.Getenv)
	}
	return op, nil
}

// Run performs a runbook run with the factory's dependencies: what
// `sitectl takeover` and the other runbook commands do after their flags,
// and what `sitectl resume` does for an interrupted run.
func Run(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, cat, err := f.InventoryAndRunbooks()
	if err != nil {
		return err
	}
	pool := f.Pool(inv)
	defer pool.Close()
	sink, stopProgress := render.ForRun(ctx, f)
	defer stopProgress()
	op, err := NewOperation(f, inv, cat, pool, runbooks.Execute, opts.Runbook, opts.Site, sink, event.RunInfo{
		Args: opts.Args, Runbooks: absPaths(f.Globals.Runbooks), InventoryChanged: opts.InventoryChanged}, opts.ResumeOf)
	if err != nil {
		return err
	}
	op.Force, op.Reason, op.ResumeOf, op.HooksDone = opts.Force, opts.Reason, opts.ResumeOf, opts.HooksDone
	if opts.ForcePromoteMongo {
		typed := opts.ConfirmSite
		if typed == "" {
			fmt.Fprintf(f.IO.ErrOut, "\nFORCED MongoDB promotion requested. If the replica set has lost its majority, the member of site %s\nwill be made primary by a forced reconfig. MongoDB documents this for catastrophic failures only:\nwrites that did not reach it are rolled back, and site %s must stay fenced.\nType the site name (%s) to allow the forced promotion: ", opts.Site, opts.Fenced, opts.Site)
			line, err := f.IO.ReadLineContext(ctx)
			if ctx.Err() != nil {
				return cmdutil.Exit(cmdutil.ExitCancelled, fmt.Errorf("cancelled at the prompt: nothing was changed"))
			}
			if err != nil {
				return cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("forced promotion not confirmed: %v", err))
			}
			typed = strings.TrimSpace(line)
		}
		if typed != opts.Site {
			return cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("forced promotion not confirmed: typed %q, expected %q", typed, opts.Site))
		}
		op.ForcePromotion = &runbooks.ForcePromotion{Site: opts.Site, TypedSite: typed, FencedSite: opts.Fenced}
		op.Reason = strings.TrimSpace(op.Reason + fmt.Sprintf(" [forced MongoDB promotion of site %s; site %s stated fenced]", opts.Site, opts.Fenced))
	}
	if !opts.Yes {
		op.Confirm = func(ctx context.Context, p *runbooks.Plan, before []services.SiteStatus) error {
			return confirm(ctx, f, p, before)
		}
	}
	rep, err := op.Run(ctx)
	if err != nil && ctx.Err() != nil && runbooks.IsRefused(err) {
		// Ctrl-C (or SIGTERM, SIGHUP) at the confirmation prompt
		return cmdutil.Exit(cmdutil.ExitCancelled, fmt.Errorf("cancelled at the confirmation prompt: nothing was changed"))
	}
	return finish(f, rep, err)
}

func absPaths(ps []string) []string {
	var out []string
	for _, p := range ps {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		out = append(out, p)
	}
	return out
}

func confirm(ctx context.Context, f *cmdutil.Factory, p *runbooks.Plan, before []services.SiteStatus) error {
	w := f.IO.ErrOut
	fmt.Fprintf(w, "\nDeployment %s — state before %s --site %s:\n", p.Inventory.Deployment, p.Runbook.Name, p.Site)
	render.WriteSites(w, before)
	n := 0
	for _, s := range p.Steps {
		n += len(s.Tasks)
	}
	fmt.Fprintf(w, "\n%s will run %d steps (%d tasks) on site %s: %s\n", p.Runbook.Name, len(p.Steps), n, p.Site, p.Runbook.Description)
	fmt.Fprintf(w, "Type the site name (%s) to confirm: ", p.Site)
	line, err := f.IO.ReadLineContext(ctx)
	if err != nil {
		return fmt.Errorf("no answer: %v", err)
	}
	if strings.TrimSpace(line) != p.Site {
		return fmt.Errorf("typed %q, expected %q", strings.TrimSpace(line), p.Site)
	}
	return nil
}

// finish prints where to look next and maps the outcome to an exit code.
func finish(f *cmdutil.Factory, rep *runbooks.Report, err error) error {
	if rep != nil && !f.Globals.JSON() {
		w := f.IO.ErrOut
		if rep.Result != nil && rep.RTO > 0 {
			fmt.Fprintf(w, "measured RTO: %s (start to last verification)\n", rep.RTO.Round(1e6))
		}
		for _, h := range rep.HookFailures {
			fmt.Fprintf(w, "HOOK FAILED: %s\n", h.Msg)
		}
		for _, d := range rep.Notifications {
			if d.OK {
				fmt.Fprintf(w, "notified %s: %s (%s, attempt %d)\n", d.Target, d.Event, d.Kind, d.Attempts)
			} else {
				fmt.Fprintf(w, "NOT NOTIFIED %s: %s (%s) after %d attempts: %s\n", d.Target, d.Event, d.Kind, d.Attempts, d.Error)
			}
		}
		if rep.JournalPath != "" {
			fmt.Fprintf(w, "journal: %s   report: sitectl report %s\n", rep.JournalPath, rep.RunID)
		}
	}
	if err == nil {
		return nil
	}
	var oe *runbooks.OutcomeError
	if errors.As(err, &oe) {
		code := cmdutil.ExitFailed
		switch oe.Outcome {
		case event.Unknown:
			code = cmdutil.ExitUnknown
		case event.Cancelled:
			code = cmdutil.ExitCancelled
		}
		if !f.Globals.JSON() {
			fmt.Fprintf(f.IO.ErrOut, "resume after fixing the cause: sitectl resume %s\n", oe.RunID)
		}
		return cmdutil.Exit(code, fmt.Errorf("%s %s: %s (resume: sitectl resume %s)", rep.Plan.Runbook.Name, strings.ToUpper(string(oe.Outcome)), oe.Msg, oe.RunID))
	}
	if runbooks.IsRefused(err) {
		return cmdutil.Exit(cmdutil.ExitRefused, err)
	}
	if runlock.IsHeld(err) {
		return cmdutil.Exit(cmdutil.ExitLockHeld, err)
	}
	return err
}

// Load finds and reads a run's journal by id or unique prefix.
func Load(f *cmdutil.Factory, id string) (journal.Run, error) {
	dir, err := f.StateDir()
	if err != nil {
		return journal.Run{}, err
	}
	path, err := journal.Find(dir, id)
	if err != nil {
		return journal.Run{}, cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("%w (list runs with: sitectl journal list)", err))
	}
	return journal.Read(path)
}

// ChangedError says a run's runbook is no longer the one it ran.
type ChangedError struct {
	Runbook  string
	Was, Now string // digests
	RunID    string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("runbook %s changed since run %s started (digest %s, now %s)", e.Runbook, e.RunID, e.Was, e.Now)
}

// Plan compiles a run's runbook again for its site, from the inventory the
// run used unless --inventory or $SITECTL_INVENTORY say otherwise. It
// returns *ChangedError when the runbook's digest is not the run's.
func Plan(f *cmdutil.Factory, info *event.RunInfo) (*runbooks.Plan, error) {
	if f.Globals.Inventory == "" && f.Getenv("SITECTL_INVENTORY") == "" {
		f.Globals.Inventory = info.Inventory
	}
	inv, err := f.Inventory()
	if err != nil {
		return nil, err
	}
	cat, err := f.Catalog(inv)
	if err != nil {
		return nil, err
	}
	rb, err := cat.Get(info.Runbook)
	if err != nil {
		return nil, err
	}
	if rb.Digest() != info.RunbookDigest {
		return nil, &ChangedError{Runbook: info.Runbook, Was: info.RunbookDigest, Now: rb.Digest(), RunID: info.ID}
	}
	return cat.Compile(info.Runbook, inv, info.Site)
}
