// Package exporter implements `sitectl exporter`: the deployment's state,
// observed every interval by the board's refresh, as Prometheus metrics.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// DefaultListen is loopback: the metrics name hosts and sites; expose them
// further only on purpose.
const DefaultListen = "127.0.0.1:9469"

// Options of sitectl exporter.
type Options struct {
	F        *cmdutil.Factory
	Listen   string
	Interval time.Duration
	NoProbes bool
	// Ready, when set, is called with the address listened on once the
	// server accepts connections (tests use port 0).
	Ready func(addr string)
}

// NewCmdExporter builds the command; runF replaces exporterRun in tests.
func NewCmdExporter(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "exporter",
		Short: "Serve the deployment's state as Prometheus metrics",
		Long: `Observe the deployment every --interval, with the same refresh as sitectl
board, and serve the result as Prometheus metrics on http://ADDR/metrics:
the verdict (sitectl_verdict{deployment,state}), each site's activity and
loss evidence, each layer, service, MongoDB member, ActiveMQ queue and
HAProxy server, how long each observation took, and the newest journaled
run's outcome, duration and RTO. Alerting rules: docs/alerts.yaml; the
metrics: docs/operations.md.

It only observes (read-only, like sitectl status) and takes no lock.`,
		Example: "  sitectl exporter\n  sitectl exporter --listen 127.0.0.1:9469 --interval 15s",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be positive")
			}
			if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
				return cmdutil.FlagErrorf("--listen %q: expected host:port (%v)", opts.Listen, err)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return exporterRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", DefaultListen, "address to serve /metrics on (host:port)")
	cmd.Flags().DurationVar(&opts.Interval, "interval", 15*time.Second, "time between observations")
	cmd.Flags().BoolVar(&opts.NoProbes, "no-probes", false, "skip health probes")
	return cmd
}

func exporterRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	dir, err := f.StateDir()
	if err != nil {
		return err
	}
	pool := f.Pool(inv)
	defer pool.Close()
	timeout, grace := checks.RefreshDefaults(opts.Interval)
	// each refresh knows the one before: the cross-site probes then run
	// only for sites that do not answer, as on the board
	watch := &checks.Watch{Deployment: checks.Deployment{Inventory: inv, Runner: pool, NoProbes: opts.NoProbes, Now: f.Now}}
	ex := NewExporter(inv.Deployment, checks.Refresher{
		Observe: watch.Observe,
		Timeout: timeout, Grace: grace, Now: f.Now,
	}, dir)
	reg := prometheus.NewRegistry()
	reg.MustRegister(ex, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil, Registry: reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "sitectl exporter for deployment %s: /metrics\n", inv.Deployment)
	})
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("exporter: cannot listen on %s: %w", opts.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(f.IO.ErrOut, "sitectl exporter: deployment %s, every %s, on http://%s/metrics\n", inv.Deployment, opts.Interval, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		ex.Loop(ctx, opts.Interval, func(r checks.Refresh) {
			if r.Err != nil {
				fmt.Fprintf(f.IO.ErrOut, "sitectl exporter: %s: %v (sitectl_exporter_refresh_errors_total counts it)\n", r.At.Format(time.RFC3339), r.Err)
			}
		})
	}()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("exporter: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-loopDone
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
