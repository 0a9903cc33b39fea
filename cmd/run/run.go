// Package run implements the commands that change a deployment: takeover,
// renounce, switchover, up, and `run <runbook>` for user runbooks.
package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
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

var help = map[string]struct{ short, long string }{
	"takeover": {"Make a site active for core services (takeover.sh)",
		`Start the site's core services in order (CCM, Communication Server, MRE,
Chat Server), skipping what already runs, and verify each before its deadline.

Refused while the other site is reachable and still has core services running:
renounce it first, or use switchover. --force overrides that refusal only with
a --reason, which is journaled.`},
	"renounce": {"Make a site passive for core services (renounce.sh)",
		`Stop the core services a passive site keeps stopped (Chat Server, MRE,
Communication Server), in reverse order, and verify each is stopped.`},
	"switchover": {"Planned switchover: renounce the other site, then take this one over",
		`Renounce the other site (core and reporting), then take over this site. At
no moment are both sites active.`},
	"takeover-reporting": {"Start a site's reporting services (takeover_reporting.sh)",
		`Start the site's reporting services and verify each.`},
	"renounce-reporting": {"Stop a site's reporting services (renounce_reporting.sh)",
		`Stop the site's reporting services and verify each is stopped.`},
	"up": {"Start every service of a site, core and reporting (efutils all up)",
		`Start all services of the site, core then reporting. Refused while the other
site is active, like takeover.`},
}

// NewCmdRunbook builds `sitectl <name>` for a built-in runbook.
func NewCmdRunbook(f *cmdutil.Factory, name string, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f, Runbook: name}
	h := help[name]
	cmd := &cobra.Command{
		Use:     name + " --site <site>",
		Short:   h.short,
		Long:    h.long + "\n\nBefore anything changes, sitectl prints the state of both sites and asks you to\ntype the site name; --yes skips that and is required when stdin is not a\nterminal.\n\n" + cmdutil.ExitCodesHelp,
		Example: fmt.Sprintf("  sitectl %s --site B\n  sitectl plan %s --site B   # see first what it would do", name, name),
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return dispatch(c, opts, runF)
		},
	}
	addFlags(cmd, opts)
	return cmd
}

// NewCmdRun builds `sitectl run <runbook> --site <site>` for any runbook.
func NewCmdRun(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "run <runbook> --site <site>",
		Short: "Run any runbook (built in or from --runbooks) against a site",
		Long:  "Run a runbook by name with the same safety, confirmation, lock and journal as takeover.\n\n" + cmdutil.ExitCodesHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Runbook = args[0]
			return dispatch(c, opts, runF)
		},
	}
	addFlags(cmd, opts)
	return cmd
}

func addFlags(cmd *cobra.Command, opts *Options) {
	fl := cmd.Flags()
	fl.StringVarP(&opts.Site, "site", "s", "", "site the runbook acts on (required)")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (required when stdin is not a terminal)")
	fl.BoolVar(&opts.Force, "force", false, "run although the other site is still active (needs --reason)")
	fl.StringVar(&opts.Reason, "reason", "", "why you run this (journaled; required with --force)")
	fl.BoolVar(&opts.ForcePromoteMongo, "force-promote-mongo", false, "if the replica set has lost its majority, promote this site's member by FORCED reconfig (needs --fenced; see docs/checks.md)")
	fl.StringVar(&opts.Fenced, "fenced", "", "with --force-promote-mongo: the lost site, which you state is powered off or isolated")
	fl.StringVar(&opts.ConfirmSite, "confirm-site", "", "with --force-promote-mongo and no terminal: the site name, typed out")
}

func dispatch(c *cobra.Command, opts *Options, runF func(context.Context, *Options) error) error {
	if opts.Site == "" {
		return cmdutil.FlagErrorf("--site is required")
	}
	if opts.Force && strings.TrimSpace(opts.Reason) == "" {
		return cmdutil.FlagErrorf("--force needs --reason \"...\": the reason is journaled")
	}
	if !opts.Yes && !opts.F.IO.CanPrompt() {
		return cmdutil.FlagErrorf("--yes required when not running interactively (stdin is not a terminal)")
	}
	if opts.ForcePromoteMongo {
		if opts.Fenced == "" || opts.Fenced == opts.Site {
			return cmdutil.FlagErrorf("--force-promote-mongo needs --fenced <the lost site>: your statement that it is powered off or isolated")
		}
		if opts.ConfirmSite == "" && !opts.F.IO.CanPrompt() {
			return cmdutil.FlagErrorf("--force-promote-mongo without a terminal needs --confirm-site %s (--yes is not enough)", opts.Site)
		}
	} else if opts.Fenced != "" || opts.ConfirmSite != "" {
		return cmdutil.FlagErrorf("--fenced and --confirm-site only go with --force-promote-mongo")
	}
	opts.Args = os.Args[1:]
	if runF != nil {
		return runF(c.Context(), opts)
	}
	return Run(c.Context(), opts)
}

// Run performs a runbook run with the factory's dependencies.
func Run(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, cat, err := f.InventoryAndRunbooks()
	if err != nil {
		return err
	}
	dir, err := f.StateDir()
	if err != nil {
		return err
	}
	pool := f.Pool(inv)
	defer pool.Close()
	who, hostname := cmdutil.Who(f)
	sink, stopProgress := f.RunRenderer(ctx)
	defer stopProgress()
	op := &runbooks.Operation{
		Inventory: inv, Catalog: cat, Runbook: opts.Runbook, Site: opts.Site, Mode: runbooks.Execute,
		Force: opts.Force, Reason: opts.Reason, ResumeOf: opts.ResumeOf,
		Info: event.RunInfo{User: who, Hostname: hostname, PID: os.Getpid(), Version: f.Version, Args: opts.Args, Overrides: cat.Overrides(),
			Runbooks: absPaths(f.Globals.Runbooks), InventoryChanged: opts.InventoryChanged, Warnings: cmdutil.RunWarnings(inv)},
		Runner:     pool,
		Sink:       sink,
		JournalDir: dir,
		Redactor:   f.Redactor(),
		Hint:       cmdutil.TaskHint(inv),
		Lock: func(ctx context.Context, runID string) (func() error, []runbooks.LockMiss, error) {
			return cmdutil.AcquireLock(ctx, f, inv, pool, runID, opts.ResumeOf)
		},
		Moves:     cmdutil.Moves(inv, pool),
		HooksDone: opts.HooksDone,
		Notifier:  runbooks.NewNotifier(inv, f.Getenv),
	}
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
		op.Confirm = func(ctx context.Context, p *runbooks.Plan, before []checks.SiteStatus) error {
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

func confirm(ctx context.Context, f *cmdutil.Factory, p *runbooks.Plan, before []checks.SiteStatus) error {
	w := f.IO.ErrOut
	fmt.Fprintf(w, "\nDeployment %s — state before %s --site %s:\n", p.Inventory.Deployment, p.Runbook.Name, p.Site)
	cmdutil.WriteSites(w, before)
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
	if cmdutil.IsLockHeld(err) {
		return cmdutil.Exit(cmdutil.ExitLockHeld, err)
	}
	return err
}
