package cmdutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
)

// NewLogger returns sitectl's diagnostic logger: debug lines on stderr with
// --verbose, otherwise warnings only; with $SITECTL_LOG=<file> JSON lines go
// to that file instead (the board uses it so nothing writes to the screen it
// owns). Credentials are never logged, and every message and value goes
// through redact (the factory's redactor) on its way to either sink.
func NewLogger(stderr io.Writer, verbose bool, getenv func(string) string, redact func(string) string) (*slog.Logger, func()) {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	if path := getenv("SITECTL_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			return slog.New(redactHandler{slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: redactAttr(redact)}), redact}), func() { f.Close() }
		}
	}
	return slog.New(redactHandler{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr(redact)}), redact}), func() {}
}

// redactHandler masks the record's message; redactAttr its values.
type redactHandler struct {
	slog.Handler
	redact func(string) string
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.redact != nil {
		r.Message = h.redact(r.Message)
	}
	return h.Handler.Handle(ctx, r)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return redactHandler{h.Handler.WithAttrs(as), h.redact}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.Handler.WithGroup(name), h.redact}
}

func redactAttr(redact func(string) string) func([]string, slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		if redact == nil {
			return a
		}
		switch v := a.Value.Any().(type) {
		case string:
			a.Value = slog.StringValue(redact(v))
		case error:
			a.Value = slog.StringValue(redact(v.Error()))
		case []string:
			out := make([]string, len(v))
			for i, s := range v {
				out[i] = redact(s)
			}
			a.Value = slog.AnyValue(out)
		case fmt.Stringer:
			a.Value = slog.StringValue(redact(v.String()))
		}
		return a
	}
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

// RunScript logs as Run does; a runner without a long-lived shell runs the
// script as a command.
func (r *loggingRunner) RunScript(ctx context.Context, script string) (remote.Result, error) {
	sr, ok := r.Runner.(remote.ScriptRunner)
	if !ok {
		return r.Run(ctx, script)
	}
	res, err := sr.RunScript(ctx, script)
	if err != nil {
		r.log.Debug("script", "host", r.host, "script", script, "took", res.Duration, "err", err)
	} else {
		r.log.Debug("script", "host", r.host, "script", script, "exit", res.ExitCode, "took", res.Duration)
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
