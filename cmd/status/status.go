// Package status implements `sitectl status`: both sites' hosts and services,
// observed read-only in parallel (one round trip per host).
package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sitectl/sitectl/cmd/internal/render"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// Options of sitectl status.
type Options struct {
	F        *cmdutil.Factory
	Site     string
	Host     string // only this host's rows
	Service  string // only this service's rows
	NoProbes bool
	Watch    bool
	Interval time.Duration

	pool *remote.Pool // set by watchRun: the connections every refresh reuses
	// prev is the previous refresh's sites (watchRun): the cross-site
	// probes then run only where they count (checks.Deployment.Previous)
	prev  []services.SiteStatus
	watch bool
}

// NewCmdStatus builds the command; runF replaces statusRun in tests.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show both sites' services and which site is active",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be positive")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			if opts.Watch {
				return watchRun(c.Context(), opts)
			}
			return statusRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Site, "site", "s", "", "only this site")
	cmd.Flags().StringVar(&opts.Host, "host", "", "only this host's rows (the verdict still covers every layer)")
	cmd.Flags().StringVar(&opts.Service, "service", "", "only this service's rows (the verdict still covers every layer)")
	cmd.Flags().BoolVar(&opts.NoProbes, "no-probes", false, "skip health probes")
	cmd.Flags().BoolVarP(&opts.Watch, "watch", "w", false, "reprint the status every --interval until Ctrl-C (the plain fallback of sitectl board)")
	cmd.Flags().DurationVar(&opts.Interval, "interval", 2*time.Second, "with --watch: time between refreshes")
	return cmd
}

// watchRun reprints the status every interval until ctx ends (Ctrl-C). On a
// terminal it clears the screen first; otherwise it only appends, with a
// separator line, and never writes cursor escapes. Every refresh goes over
// the same pool: connections made once stay open (a dead one is redialed),
// so a refresh costs one command per host, not a handshake.
func watchRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	pool := f.Pool(inv)
	defer pool.Close()
	opts.pool, opts.watch = pool, true
	defer func() { opts.pool, opts.prev, opts.watch = nil, nil, false }()
	tty := f.IO.IsStdoutTTY() && !f.Globals.JSON()
	for {
		if tty {
			fmt.Fprint(f.IO.Out, "\x1b[H\x1b[2J")
		} else if !f.Globals.JSON() {
			fmt.Fprintf(f.IO.Out, "--- %s\n", f.Now().Format(time.RFC3339))
		}
		err := statusRun(ctx, opts)
		if ctx.Err() != nil {
			return nil // Ctrl-C ends the watch normally
		}
		var ee *cmdutil.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Silent) {
			return err
		}
		t := time.NewTimer(opts.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
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
	pool := opts.pool
	if pool == nil {
		pool = f.Pool(inv)
		defer pool.Close()
	}
	dep := &checks.Deployment{Inventory: inv, Runner: pool, NoProbes: opts.NoProbes, Now: f.Now, Previous: opts.prev}
	var snap checks.Snapshot
	if opts.Site != "" {
		// one site: the services of that site only
		obs := &services.Observer{Inventory: inv, Runner: pool, NoProbes: opts.NoProbes, Now: f.Now}
		snap.Sites = []services.SiteStatus{obs.Site(ctx, inv.Site(opts.Site))}
		snap.Invariant = checks.CheckNotBothActive(snap.Sites)
	} else {
		snap = dep.Observe(ctx)
		if opts.watch {
			opts.prev = snap.Sites
		}
	}
	invariant := snap.Invariant
	snap.Sites = filterRows(snap.Sites, opts.Host, opts.Service)
	if f.Globals.JSON() {
		if err := cmdutil.WriteJSON(f.IO.Out, "status", map[string]any{"deployment": inv.Deployment, "snapshot": snap}); err != nil {
			return err
		}
		return statusExit(invariant, snap.Verdict, opts.Site == "")
	}
	fmt.Fprintf(f.IO.Out, "Deployment %s (%s)\n", inv.Deployment, inv.File)
	render.WriteSites(f.IO.Out, snap.Sites)
	if opts.Site == "" {
		fmt.Fprintln(f.IO.Out)
		render.WriteVerdict(f.IO.Out, snap.Verdict, f.Globals.Verbose)
		fmt.Fprintf(f.IO.Out, "Invariant: %s\n", invariant.Message)
	}
	return statusExit(invariant, snap.Verdict, opts.Site == "")
}

// statusExit: 1 when both sites are seen active (the invariant is broken),
// 5 when it cannot be told (the invariant unknown, or, for the whole
// deployment, the verdict UNKNOWN): an unknown is never reported as
// success; 0 otherwise (docs/exit-codes.md).
func statusExit(inv checks.Invariant, v checks.Verdict, whole bool) error {
	switch {
	case inv.Known && !inv.Holds:
		return cmdutil.Silent(cmdutil.ExitFailed)
	case !inv.Known, whole && v.State == checks.ServeUnknown:
		return cmdutil.Silent(cmdutil.ExitUnknown)
	}
	return nil
}

// filterRows keeps the hosts and services asked for (--host, --service).
func filterRows(sites []services.SiteStatus, host, service string) []services.SiteStatus {
	if host == "" && service == "" {
		return sites
	}
	var out []services.SiteStatus
	for _, s := range sites {
		var hosts []services.HostStatus
		for _, h := range s.Hosts {
			if host != "" && h.Host != host {
				continue
			}
			if service != "" {
				var svcs []services.ServiceStatus
				for _, svc := range h.Services {
					if svc.Service == service {
						svcs = append(svcs, svc)
					}
				}
				if len(svcs) == 0 && h.Reachable {
					continue
				}
				h.Services = svcs
			}
			hosts = append(hosts, h)
		}
		if len(hosts) > 0 {
			s.Hosts = hosts
			out = append(out, s)
		}
	}
	return out
}
