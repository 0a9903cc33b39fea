// Package status implements `sitectl status`: both sites' hosts and services,
// observed read-only in parallel (one round trip per host).
package status

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// Options of sitectl status.
type Options struct {
	F        *cmdutil.Factory
	Site     string
	NoProbes bool
}

// NewCmdStatus builds the command; runF replaces statusRun in tests.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show both sites' services and which site is active",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return statusRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Site, "site", "s", "", "only this site")
	cmd.Flags().BoolVar(&opts.NoProbes, "no-probes", false, "skip health probes")
	return cmd
}

func statusRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	if opts.Site != "" && inv.Site(opts.Site) == nil {
		return cmdutil.FlagErrorf("no site %q in %s", opts.Site, inv.File)
	}
	pool := f.Pool(inv)
	defer pool.Close()
	dep := &checks.Deployment{Inventory: inv, Runner: pool, NoProbes: opts.NoProbes, Now: f.Now}
	var snap checks.Snapshot
	if opts.Site != "" {
		// one site: the services of that site only
		obs := &checks.Observer{Inventory: inv, Runner: pool, NoProbes: opts.NoProbes, Now: f.Now}
		snap.Sites = []checks.SiteStatus{obs.Site(ctx, inv.Site(opts.Site))}
		snap.Invariant = checks.CheckNotBothActive(snap.Sites)
	} else {
		snap = dep.Observe(ctx)
	}
	invariant := snap.Invariant
	if f.Globals.JSON() {
		enc := json.NewEncoder(f.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"message_type": "status", "deployment": inv.Deployment, "snapshot": snap})
	}
	fmt.Fprintf(f.IO.Out, "Deployment %s (%s)\n", inv.Deployment, inv.File)
	cmdutil.WriteSites(f.IO.Out, snap.Sites)
	if opts.Site == "" {
		fmt.Fprintln(f.IO.Out)
		cmdutil.WriteVerdict(f.IO.Out, snap.Verdict, f.Globals.Verbose)
		fmt.Fprintf(f.IO.Out, "Invariant: %s\n", invariant.Message)
	}
	if !invariant.Holds && invariant.Known {
		return cmdutil.Silent(cmdutil.ExitFailed)
	}
	return nil
}
