// Package run implements the commands that change a deployment: takeover,
// renounce, switchover, up, and `run <runbook>` for user runbooks.
package run

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/cmd/internal/runexec"
)

// Options of a runbook run (runexec.Options: `resume` fills the same).
type Options = runexec.Options

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
	opts.Args = opts.F.Args
	if runF != nil {
		return runF(c.Context(), opts)
	}
	return runexec.Run(c.Context(), opts)
}
