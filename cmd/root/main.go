package root

import (
	"context"
	"encoding/json"
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
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Main runs sitectl with args and returns the exit code. It is the only
// place that decides the code and prints the final error.
func Main(version string, args []string) cmdutil.ExitCode {
	if version == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
	}
	// SIGHUP (the SSH session to a jump host dropped) ends a run like
	// SIGTERM and Ctrl-C: cancelled, journaled, locks released, resumable.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	f := NewFactory(version)
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
	cmd.SetArgs(args)
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
		_ = json.NewEncoder(f.IO.Out).Encode(map[string]any{"message_type": "exit_error", "code": int(code), "message": msg})
		return code
	}
	fmt.Fprintf(f.IO.ErrOut, "sitectl: %s\n", msg)
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) && c != nil {
		fmt.Fprintf(f.IO.ErrOut, "\n%s", c.UsageString())
	}
	return code
}
