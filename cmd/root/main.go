package root

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/adapters/netwatch"
	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	versionCmd "github.com/sitectl/sitectl/cmd/version"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Build is what the release stamps into the binary.
type Build struct {
	Version string // "dev" when not stamped
	Commit  string // git commit
	Date    string // build date, RFC 3339
}

// Main runs sitectl with args and returns the exit code. It is the only
// place that decides the code and prints the final error.
func Main(b Build, args []string) cmdutil.ExitCode {
	if bi, ok := debug.ReadBuildInfo(); ok {
		// `go install …@v1.2.3` stamps the module version and, from a
		// clone, the VCS settings; the release's ldflags win.
		if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			}
		}
	}
	// SIGHUP (the SSH session to a jump host dropped) ends a run like
	// SIGTERM and Ctrl-C: cancelled, journaled, locks released, resumable.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	f := NewFactory(b.Version)
	f.Commit, f.Date = b.Commit, b.Date
	return Execute(ctx, f, args)
}

// NewFactory wires the real dependencies.
func NewFactory(version string) *cmdutil.Factory {
	return &cmdutil.Factory{
		IO:       cmdutil.System(),
		Globals:  &cmdutil.Globals{},
		Version:  version,
		Now:      time.Now,
		Getenv:   os.Getenv,
		Dialer:   remote.NewDialer(remote.Options{}),
		StateDir: journal.DefaultDir,
	}
}

// Execute runs the root command with f and maps the result to an exit code.
func Execute(ctx context.Context, f *cmdutil.Factory, args []string) cmdutil.ExitCode {
	cmd := NewCmdRoot(f)
	cmd.Version = f.Version
	cmd.SetVersionTemplate(versionCmd.Text(f) + "\n")
	cmd.SetArgs(args)
	f.Args = args
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	var cancelTimeout context.CancelFunc = func() {}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if f.Globals.Output != "text" && f.Globals.Output != "json" {
			return cmdutil.FlagErrorf("--output %q: expected text or json", f.Globals.Output)
		}
		log, closeLog := cmdutil.NewLogger(f.IO.ErrOut, f.Globals.Verbose, f.Getenv, f.Redact)
		closers = append(closers, closeLog)
		f.Dialer = cmdutil.LoggingDialer(f.Dialer, log)
		log.Debug("sitectl", "version", f.Version, "args", args)
		if f.Globals.Timeout > 0 {
			tctx, cancel := context.WithTimeout(c.Context(), f.Globals.Timeout)
			cancelTimeout = cancel
			c.SetContext(tctx)
		}
		return nil
	}
	// One memory of unanswered endpoints for the whole command: every layer
	// waits its full timeout for a dead host once, not at every observation.
	watch := netwatch.New()
	defer watch.Close()
	c, err := cmd.ExecuteContextC(netwatch.NewContext(ctx, watch))
	cancelTimeout()
	if err == nil {
		return cmdutil.ExitOK
	}
	if isCobraUsage(err) {
		err = &cmdutil.FlagError{Err: err}
	}
	code := cmdutil.CodeOf(err)
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) && ee.Silent {
		return code
	}
	if errors.Is(err, context.DeadlineExceeded) && f.Globals.Timeout > 0 {
		err = fmt.Errorf("timed out after --timeout %s: %w", f.Globals.Timeout, err)
	}
	msg := f.Redact(err.Error()) // the final line goes through the same redactor as every other output
	if f.Globals.JSON() {
		_ = cmdutil.WriteJSON(f.IO.Out, "exit_error", map[string]any{"code": int(code), "message": msg})
		return code
	}
	fmt.Fprintf(f.IO.ErrOut, "sitectl: %s\n", msg)
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) && c != nil {
		fmt.Fprintf(f.IO.ErrOut, "\n%s", c.UsageString())
	}
	return code
}
