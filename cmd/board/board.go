// Package board implements `sitectl board`: a live terminal board of both
// sites, every layer's verdict, and the runbooks behind a typed confirmation.
// It draws the same event stream the text and JSON renderers draw.
package board

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	tea "github.com/sitectl/sitectl/third_party/bubbletea"
	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/cmd/internal/runexec"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// Options of sitectl board.
type Options struct {
	F        *cmdutil.Factory
	Interval time.Duration
	NoProbes bool
}

// NewCmdBoard builds the command; runF replaces boardRun in tests.
func NewCmdBoard(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "board",
		Short: "Live board of both sites and who serves traffic; run runbooks from it",
		Long: `A full-screen board: both sites' hosts and services, each site's MongoDB,
ActiveMQ and HAProxy rows, and one verdict of which site serves traffic,
refreshed in the background every --interval. A value that could not be
refreshed shows its age and is never shown as healthy.

Keys: up/down/tab select a site; t takeover, r renounce, s switchover, p plan
(each asks you to type the site name); j the last run's journal; ? help; q quit.

The board needs a terminal. Logs go to $SITECTL_LOG (or nowhere) while it
runs. For a plain, non-interactive view use: sitectl status --watch`,
		Args: cobra.NoArgs,
		// Replaces the root hook: the board must not log to the terminal
		// it owns, so boardRun builds its own logger.
		PersistentPreRunE: func(c *cobra.Command, _ []string) error { return nil },
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be positive")
			}
			if f.Globals.JSON() {
				return cmdutil.FlagErrorf("the board has no JSON output; use: sitectl status --watch --output json")
			}
			if !f.IO.IsStdoutTTY() {
				return cmdutil.FlagErrorf("the board needs a terminal (stdout is not one); use: sitectl status --watch")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return boardRun(c.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Interval, "interval", 2*time.Second, "time between refreshes")
	cmd.Flags().BoolVar(&opts.NoProbes, "no-probes", false, "skip health probes")
	return cmd
}

func boardRun(ctx context.Context, opts *Options) error {
	f := opts.F
	// logs: $SITECTL_LOG or nowhere, never the screen
	log, closeLog := cmdutil.NewLogger(io.Discard, f.Globals.Verbose, f.Getenv, f.Redact)
	defer closeLog()
	f.Dialer = cmdutil.LoggingDialer(f.Dialer, log)

	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	cat, err := f.Catalog(inv)
	if err != nil {
		return err
	}
	dir, err := f.StateDir()
	if err != nil {
		return err
	}
	pool := f.Pool(inv)
	defer pool.Close()

	if f.Getenv("NO_COLOR") != "" || f.Getenv("TERM") == "dumb" {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
	run := func(mode runbooks.Mode) RunFunc {
		return func(ctx context.Context, rb, site string, sink event.Sink) error {
			if errs, _ := cat.Lint(inv); len(errs) > 0 {
				return fmt.Errorf("runbooks do not fit inventory %s: %w", inv.File, errs)
			}
			// A run gets its own connections and its own memory of dead
			// addresses, as the same command typed in a shell would: the
			// board's warm connections may be to hosts that just died.
			ctx = netwatch.NewContext(ctx, netwatch.New())
			defer netwatch.FromContext(ctx).Close()
			runPool := f.Pool(inv)
			defer runPool.Close()
			op, err := runexec.NewOperation(f, inv, cat, runPool, mode, rb, site, sink, event.RunInfo{Args: []string{"board", rb, "--site", site}}, "")
			if err != nil {
				return err
			}
			_, err = op.Run(ctx)
			err = cmdutil.RedactError(err, f.Redact)
			log.Info("board run ended", "runbook", rb, "site", site, "mode", mode.String(), "err", err)
			return err
		}
	}
	// each refresh knows the one before: the cross-site probes then run
	// only for sites that do not answer
	watch := &checks.Watch{Deployment: checks.Deployment{Inventory: inv, Runner: pool, NoProbes: opts.NoProbes, Now: f.Now}}
	d := Deps{
		Deployment: inv.Deployment,
		Observe:    watch.Observe,
		Run:        run(runbooks.Execute),
		Plan:       run(runbooks.DryRun),
		Journal:    func() ([]string, error) { return LastJournal(dir) },
		Lock:       func(ctx context.Context) string { return lockHolder(ctx, dir, inv, pool) },
		Now:        f.Now,
		Interval:   opts.Interval,
		Redact:     f.Redact,
		Roles:      map[string]string{},
	}
	for _, s := range inv.Sites {
		d.Sites = append(d.Sites, s.Name)
		d.Roles[s.Name] = string(s.Role)
	}
	p := tea.NewProgram(New(ctx, d), tea.WithAltScreen(), tea.WithContext(ctx),
		tea.WithInput(f.IO.In), tea.WithOutput(f.IO.Out))
	final, err := p.Run()
	if fm, ok := final.(Model); ok && !fm.WaitRun(15*time.Second) {
		fmt.Fprintln(f.IO.ErrOut, "sitectl: the run did not end within 15s of quitting; check it with: sitectl journal")
	}
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// lockHolder says who holds the run lock: this machine's copy, and the copy
// on each site's lock host (its first host), which a run started from
// another machine takes. A copy that cannot be read is said so.
func lockHolder(ctx context.Context, dir string, inv *inventory.Inventory, pool *remote.Pool) string {
	var held, unread []string
	describe := func(h runlock.Holder, where string) string {
		return fmt.Sprintf("%s@%s pid %d run %s since %s (%s)", h.User, h.Hostname, h.PID, h.RunID, h.Since.Local().Format("15:04:05"), where)
	}
	seen := map[string]bool{}
	if h, err := runlock.ReadLocal(dir, inv.Deployment); err == nil {
		d := describe(h, "here")
		if runlock.IsStale(h) {
			d += " STALE: its process is gone (sitectl unlock --reason \"...\")"
		}
		held, seen[h.RunID] = append(held, d), true
	} else if !errors.Is(err, runlock.ErrNotLocked) {
		unread = append(unread, "here: "+err.Error())
	}
	type answer struct {
		site string
		h    runlock.Holder
		err  error
	}
	hosts := runlock.Hosts(inv)
	answers := make([]answer, len(hosts))
	var wg sync.WaitGroup
	for i, host := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].site = inv.Host(host).Site
			r, err := pool.Get(ctx, host)
			if err != nil {
				answers[i].err = err
				return
			}
			answers[i].h, answers[i].err = runlock.ReadRemote(ctx, r, host, inv.Lock.Path)
		}()
	}
	wg.Wait()
	for _, a := range answers {
		switch {
		case a.site == "":
		case a.err == nil:
			if !seen[a.h.RunID] { // one line per run: its local copy says "here"
				held = append(held, describe(a.h, "site "+a.site))
			}
		case errors.Is(a.err, runlock.ErrNotLocked):
		default:
			unread = append(unread, "site "+a.site)
		}
		if a.err == nil {
			seen[a.h.RunID] = true
		}
	}
	out := strings.Join(held, "; ")
	if len(unread) > 0 {
		if out == "" {
			out = "free"
		}
		out += " (not readable: " + strings.Join(unread, ", ") + ")"
	}
	return out
}

// LastJournal renders the newest journal in dir as lines: the run, each
// task's outcome and duration, and the result.
func LastJournal(dir string) ([]string, error) {
	list, err := journal.List(dir)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no run has been journaled yet")
	}
	s := list[0]
	out := []string{fmt.Sprintf("%s %s --site %s by %s, %s, %s (%s)", s.Mode, s.Runbook, s.Site, s.User, s.Started.Local().Format("2006-01-02 15:04:05"), s.Outcome, s.Duration.Round(time.Millisecond))}
	r, err := journal.Read(s.Path)
	if err != nil {
		return append(out, "unreadable: "+err.Error()), nil
	}
	for _, e := range r.Events {
		if e.Kind == event.StepEnd || e.Kind == event.RunEnd {
			out = append(out, fmt.Sprintf("%-9s %-8s %s %s", outcomeLabel(e.Outcome), e.Duration.Round(time.Millisecond), taskName(e), oneLine(e.Message)))
		}
	}
	out = append(out, "journal: "+s.Path, "report: sitectl report "+s.ID)
	return out, nil
}
