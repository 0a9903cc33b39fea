// Package check implements `sitectl check`: the read-only preflight that
// says whether a site is ready for takeover, and why not.
package check

import (
	"context"
	"fmt"
	"time"

	"github.com/sitectl/sitectl/cmd/internal/render"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// Options of sitectl check.
type Options struct {
	F    *cmdutil.Factory
	Site string
}

// NewCmdCheck builds the command; runF replaces checkRun in tests.
func NewCmdCheck(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "check --site <site>",
		Short: "Read-only preflight: is the site ready for takeover? (yes/no, with reasons)",
		Long: `Observe both sites read-only (SSH reachability, every service's state and
health probe) and say whether the site is ready for takeover, with reasons.
Exit 0 when ready, 3 when not.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Site == "" {
				return cmdutil.FlagErrorf("--site is required")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return checkRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Site, "site", "s", "", "the site that would take over (required)")
	return cmd
}

func checkRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	if inv.Site(opts.Site) == nil {
		return cmdutil.FlagErrorf("no site %q in %s", opts.Site, inv.File)
	}
	pool := f.Pool(inv)
	defer pool.Close()
	dep := &checks.Deployment{Inventory: inv, Runner: pool, Now: f.Now}
	snap := dep.Observe(ctx)
	ready := checks.ReadyForTakeover(snap.Sites, opts.Site)
	ready = checks.ReadyWithVerdict(ready, snap.Verdict, opts.Site)
	if f.Globals.JSON() {
		if err := cmdutil.WriteJSON(f.IO.Out, "check", map[string]any{"site": opts.Site, "ready": ready, "snapshot": snap}); err != nil {
			return err
		}
	} else {
		w := f.IO.Out
		fmt.Fprintf(w, "Deployment %s (%s), observed in %s\n\nServices:\n", inv.Deployment, inv.File, time.Duration(snap.Took).Round(time.Millisecond))
		render.WriteSites(w, snap.Sites)
		fmt.Fprintf(w, "\nLayers:\n")
		render.WriteVerdict(w, snap.Verdict, true)
		fmt.Fprintf(w, "Invariant: %s\n", snap.Invariant.Message)
		yes := "no"
		if ready.Ready {
			yes = "yes"
		}
		fmt.Fprintf(w, "\nReady for takeover of site %s: %s\n", opts.Site, yes)
		for _, r := range render.WithoutHostErrors(ready.Reasons, snap.Sites) {
			fmt.Fprintf(w, "  - %s\n", r)
		}
		for _, n := range render.WithoutHostErrors(ready.Notes, snap.Sites) {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	if !ready.Ready {
		return cmdutil.Silent(cmdutil.ExitRefused)
	}
	return nil
}
