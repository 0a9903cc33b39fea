package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// NewDialer returns the Dialer sitectl uses: a LocalRunner for targets
// marked Local, SSH (SSHDialer) for the rest.
func NewDialer(opts Options) Dialer {
	return DialerFunc(func(ctx context.Context, t Target) (Runner, error) {
		if t.Local {
			return NewLocalRunner(t, opts), nil
		}
		return SSHDialer{Options: opts}.Dial(ctx, t)
	})
}

// LocalRunner runs commands on this machine with `/bin/sh -c`, with the same
// semantics as SSHRunner: stdout and stderr apart, exit code in the Result,
// and ctx's deadline or cancellation killing the command's whole process
// group. It is safe for concurrent use.
//
// A command is bounded exactly as on an SSH host: it runs under coreutils
// `timeout -k 2 SECS` (the ctx deadline, rounded up), so a command sitectl
// left behind (killed with SIGKILL, its process group survives it) still
// ends by its deadline, which is what resume waits for. It gets only
// LocalBaseEnv and t.Env: nothing else of sitectl's environment, in
// particular no credentials, unless the inventory declares it.
type LocalRunner struct {
	name      string
	maxOutput int
	env       []string
}

var _ Runner = (*LocalRunner)(nil)

// LocalBaseEnv names the variables of sitectl's own environment that every
// local command gets; a missing PATH becomes a standard one.
var LocalBaseEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LocalEnv is the environment of a local command: LocalBaseEnv read with
// getenv (os.Getenv when nil), then extra ("NAME=value").
func LocalEnv(getenv func(string) string, extra []string) []string {
	if getenv == nil {
		getenv = os.Getenv
	}
	var env []string
	for _, k := range LocalBaseEnv {
		v := getenv(k)
		if k == "PATH" && v == "" {
			v = defaultPath
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// NewLocalRunner returns a runner for t (t.Name is used in errors, t.Env
// added to the base environment).
func NewLocalRunner(t Target, opts Options) *LocalRunner {
	return &LocalRunner{name: t.Name, maxOutput: opts.maxOutput(), env: LocalEnv(nil, t.Env)}
}

// Close does nothing.
func (r *LocalRunner) Close() error { return nil }

// Alive is always true.
func (r *LocalRunner) Alive() bool { return true }

// Run runs command in its own process group and waits for it.
func (r *LocalRunner) Run(ctx context.Context, command string) (Result, error) {
	start := time.Now()
	res := Result{Command: command}
	fail := func(err error) (Result, error) {
		res.Duration = time.Since(start)
		return res, &HostError{Host: r.name, Addr: "local", Op: OpRun, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNotStarted, err))
	}
	stdout := &capBuffer{max: r.maxOutput}
	stderr := &capBuffer{max: r.maxOutput}
	var killed atomic.Bool
	// the same wrapper as over SSH: a deadline the host enforces itself
	// (without coreutils timeout, as on a stock macOS, only ctx bounds it)
	wctx := ctx
	if !hasTimeout() {
		wctx = context.WithoutCancel(ctx)
	}
	wrapped, _ := wrapCommand(wctx, command, newToken())
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", wrapped)
	cmd.Env = r.env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killed.Store(true)
		// The negative pid names the process group: sh and all it started.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A process that left the group (a daemon) may hold stdout open; do
	// not wait for it forever.
	cmd.WaitDelay = killGrace
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNotStarted, err))
	}
	err := cmd.Wait()
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.Duration = time.Since(start)
	if killed.Load() {
		return fail(fmt.Errorf("command killed: %w", ctx.Err()))
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		res.ExitCode = exitCode(cmd.ProcessState)
		return res, nil
	case errors.As(err, &exitErr):
		res.ExitCode = exitCode(exitErr.ProcessState)
		return res, nil
	default:
		return fail(err)
	}
}

// exitCode follows the shell (and x/crypto/ssh): 128+n for a signal n.
func exitCode(ps interface {
	ExitCode() int
	Sys() any
}) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// hasTimeout reports whether coreutils timeout is on this machine's PATH.
var hasTimeout = sync.OnceValue(func() bool {
	_, err := exec.LookPath("timeout")
	return err == nil
})
