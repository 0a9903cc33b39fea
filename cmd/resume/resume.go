// Package resume implements `sitectl resume <run>`: finish a half-done run.
package resume

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	journalCmd "github.com/sitectl/sitectl/cmd/journal"
	"github.com/sitectl/sitectl/cmd/run"
)

// Options of sitectl resume.
type Options struct {
	F   *cmdutil.Factory
	Run string
	Yes bool
}

// NewCmdResume builds the command; runF replaces resumeRun in tests.
func NewCmdResume(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "resume <run>",
		Short: "Finish a half-done run: re-observe reality and skip what already holds",
		Long: `Resume re-runs the same runbook against the same site as the given run.
Every step observes the current state again, so what already holds is
skipped. It refuses when the runbook has changed since the run started, and
takes over the lock left by that run if its process is gone.

` + cmdutil.ExitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Run = args[0]
			if !opts.Yes && !f.IO.CanPrompt() {
				return cmdutil.FlagErrorf("--yes required when not running interactively (stdin is not a terminal)")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return resumeRun(c.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return cmd
}

func resumeRun(ctx context.Context, opts *Options) error {
	f := opts.F
	old, err := journalCmd.Load(f, opts.Run)
	if err != nil {
		return err
	}
	if old.Info == nil {
		return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("run %s has no start record: nothing to resume", opts.Run))
	}
	info := old.Info
	if info.Mode != "run" && info.Mode != "resume" {
		return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("run %s was a %s, not a run that changes anything", info.ID, info.Mode))
	}
	if f.Globals.Inventory == "" && f.Getenv("SITECTL_INVENTORY") == "" {
		f.Globals.Inventory = info.Inventory
	}
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	cat, err := f.Catalog(inv)
	if err != nil {
		return err
	}
	rb, err := cat.Get(info.Runbook)
	if err != nil {
		return cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("cannot resume %s: %w", info.ID, err))
	}
	if rb.Digest() != info.RunbookDigest {
		return cmdutil.Exit(cmdutil.ExitRefused, fmt.Errorf("cannot resume %s: runbook %s changed since the run started (digest %s, now %s); start a new run instead: sitectl %s --site %s", info.ID, info.Runbook, info.RunbookDigest, rb.Digest(), info.Runbook, info.Site))
	}
	if !old.Interrupted() && old.Outcome == "ok" {
		fmt.Fprintf(f.IO.ErrOut, "run %s already ended ok; resuming re-verifies it\n", info.ID)
	}
	ro := &run.Options{F: f, Runbook: info.Runbook, Site: info.Site, Yes: opts.Yes, ResumeOf: info.ID, Args: os.Args[1:],
		Reason: info.Reason, Force: info.Reason != "" && hasForce(info.Args)}
	return run.Run(ctx, ro)
}

func hasForce(args []string) bool {
	for _, a := range args {
		if a == "--force" {
			return true
		}
	}
	return false
}
