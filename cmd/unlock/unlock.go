// Package unlock implements `sitectl unlock --reason`: break a stale run lock.
package unlock

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Options of sitectl unlock.
type Options struct {
	F      *cmdutil.Factory
	Site   string
	Reason string
	Yes    bool
}

// NewCmdUnlock builds the command; runF replaces unlockRun in tests.
func NewCmdUnlock(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "unlock --reason \"...\"",
		Short: "Break a stale run lock (journaled with its reason)",
		Long: `Remove the deployment's run lock, locally and on the first host of each
site, after a run died without releasing it. Shows who held it first. The
reason is journaled. Never break the lock of a run that is still going.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if strings.TrimSpace(opts.Reason) == "" {
				return cmdutil.FlagErrorf("--reason is required: it is journaled")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return unlockRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why the lock is stale (required; journaled)")
	cmd.Flags().StringVarP(&opts.Site, "site", "s", "", "only the lock on this site's first host (default: every site)")
	return cmd
}

func unlockRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	pool := f.Pool(inv)
	defer pool.Close()
	broken, journalPath, err := breakLocks(ctx, f, inv, pool, opts.Site, opts.Reason)
	if f.Globals.JSON() {
		if broken == nil {
			broken = []string{}
		}
		doc := map[string]any{"broken": broken, "held": len(broken) > 0, "journal": journalPath}
		if err != nil {
			doc["error"] = err.Error()
		}
		if werr := cmdutil.WriteJSON(f.IO.Out, "unlock", doc); werr != nil {
			return werr
		}
		if err != nil {
			return cmdutil.Silent(cmdutil.CodeOf(err))
		}
		return nil
	}
	for _, b := range broken {
		fmt.Fprintf(f.IO.ErrOut, "broke lock %s\n", b)
	}
	if len(broken) == 0 && err == nil {
		fmt.Fprintln(f.IO.ErrOut, "no lock was held")
	}
	if journalPath != "" {
		fmt.Fprintf(f.IO.ErrOut, "journal: %s\n", journalPath)
	}
	return err
}

// breakLocks breaks the deployment's lock (runlock.Deployment.Break) and
// journals it as a run of its own, with the reason: who broke which copy,
// held by whom.
func breakLocks(ctx context.Context, f *cmdutil.Factory, inv *inventory.Inventory, pool *remote.Pool, site, reason string) ([]string, string, error) {
	dl, err := cmdutil.DeploymentLock(f, inv, pool)
	if err != nil {
		return nil, "", err
	}
	runID := journal.NewRunID(f.Now())
	jw, err := journal.Create(dl.Dir, runID, journal.WithRedactor(f.Redactor()))
	if err != nil {
		return nil, "", err
	}
	defer jw.Close()
	st := &event.Stamper{RunID: runID, Next: jw}
	h := cmdutil.Holder(f, runID)
	st.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{ID: runID, Runbook: "unlock", Site: site, Deployment: inv.Deployment, Inventory: inv.File,
		InventoryDigest: inv.Digest, User: h.User, Hostname: h.Hostname, PID: h.PID, Version: f.Version, Args: f.Args, Mode: "unlock", Reason: reason, Started: f.Now()}})
	broken, err := dl.Break(ctx, site)
	for _, b := range broken {
		st.Emit(event.Event{Kind: event.Lock, Message: "broke lock " + b + "; reason: " + reason})
	}
	outcome := event.OK
	msg := fmt.Sprintf("broke %d lock(s)", len(broken))
	if err != nil {
		outcome, msg = event.Failed, err.Error()
	}
	st.Emit(event.Event{Kind: event.RunEnd, Outcome: outcome, Message: msg})
	return broken, jw.Path(), err
}
