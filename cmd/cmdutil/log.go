package cmdutil

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// NewLogger returns sitectl's diagnostic logger: debug lines on stderr with
// --verbose, otherwise warnings only; with $SITECTL_LOG=<file> JSON lines go
// to that file instead (the board uses it so nothing writes to the screen it
// owns). Secrets never reach the logger: commands are logged, credentials
// are not.
func NewLogger(stderr io.Writer, verbose bool, getenv func(string) string) (*slog.Logger, func()) {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	if path := getenv("SITECTL_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})), func() { f.Close() }
		}
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), func() {}
}

// LoggingDialer logs every connection attempt, its duration and error.
func LoggingDialer(d remote.Dialer, log *slog.Logger) remote.Dialer {
	return remote.DialerFunc(func(ctx context.Context, t remote.Target) (remote.Runner, error) {
		start := time.Now()
		r, err := d.Dial(ctx, t)
		if err != nil {
			log.Debug("dial failed", "host", t.Name, "addr", t.Address, "port", t.Port, "took", time.Since(start), "err", err)
			return nil, err
		}
		log.Debug("connected", "host", t.Name, "addr", t.Address, "port", t.Port, "local", t.Local, "took", time.Since(start))
		return &loggingRunner{Runner: r, host: t.Name, log: log}, nil
	})
}

type loggingRunner struct {
	remote.Runner
	host string
	log  *slog.Logger
}

func (r *loggingRunner) Run(ctx context.Context, cmd string) (remote.Result, error) {
	res, err := r.Runner.Run(ctx, cmd)
	if err != nil {
		r.log.Debug("command", "host", r.host, "cmd", cmd, "took", res.Duration, "err", err)
	} else {
		r.log.Debug("command", "host", r.host, "cmd", cmd, "exit", res.ExitCode, "took", res.Duration)
	}
	return res, err
}

// Alive forwards to the wrapped runner so the pool can tell dead connections.
func (r *loggingRunner) Alive() bool {
	if a, ok := r.Runner.(interface{ Alive() bool }); ok {
		return a.Alive()
	}
	return true
}
