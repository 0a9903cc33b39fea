package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"
)

// ScriptRunner is a Runner that can also run read-only scripts in one
// long-lived shell on the host (SSHRunner): a refresh that repeats every
// few seconds then costs no new session, no new shell and no wrapping on
// the host, only what the script itself runs.
type ScriptRunner interface {
	Runner
	// RunScript runs script in the host's shell and returns its output.
	// The script must be safe to run twice (it observes, it changes
	// nothing): a shell found broken when the script is sent is replaced
	// and the script sent again, once.
	RunScript(ctx context.Context, script string) (Result, error)
}

// ShellLifetime bounds a long-lived shell on the host: it runs under
// coreutils `timeout -k 2`, so that whatever it still runs ends on the host
// within this time of its start, even if this process or the network goes
// away (while this process is there, a script that outlives its ctx is
// killed at once). A shell is replaced before a script could outlive it.
const ShellLifetime = 10 * time.Minute

// shell is one long-lived `sh` on a host, fed scripts on stdin. Each
// script runs in a subshell (an `exit` or a syntax error ends only it),
// with stdin on /dev/null (it cannot read the scripts that follow), and is
// followed by an end line with a marker of its own on stdout and on
// stderr, so that its output is read back exactly, up to the marker.
type shell struct {
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *bufio.Reader
	token  string    // SITECTL_RUN_ID of its processes (see killScript)
	opened time.Time // when it was started (ShellLifetime)
}

// errShellBroken: the shell's stream ended before the script's end line
// (the shell died, was killed on the host, or its session was closed).
var errShellBroken = errors.New("the host's shell ended before the script's end line")

// SessionsOpened is how many SSH sessions (channels) this runner has opened
// so far: one per Run, one per shell RunScript started, and the ones that
// killed commands. It shows whether shells are reused.
func (r *SSHRunner) SessionsOpened() int64 { return r.sessions.Load() }

// RunScript runs script in the connection's long-lived shell (opened at the
// first call, kept between calls), under ctx's deadline: when ctx is done
// first, the shell and everything it runs are killed on the host (as Run
// kills a command) and the next call opens a new shell. A shell that broke
// between calls (killed on the host, its session closed) is replaced, and
// the script sent again once, as long as ctx allows. While another call
// uses the shell, the script runs as Run would (a session of its own), and
// so does every script on a connection whose new shell ended at once (a
// host without coreutils timeout, say).
//
// The result is Run's: stdout and stderr apart (each capped at
// Options.MaxOutput), ExitCode the script's exit status. Errors are
// *HostError with Op "run", wrapping ErrNotStarted, ErrConnLost or
// ctx.Err() as Run's do.
func (r *SSHRunner) RunScript(ctx context.Context, script string) (Result, error) {
	start := time.Now()
	fail := func(res Result, err error) (Result, error) {
		res.Duration = time.Since(start)
		return res, &HostError{Host: r.target.Name, Addr: r.addr, Op: OpRun, Err: err}
	}
	r.shellMu.Lock()
	if r.shellBusy || r.noShell {
		r.shellMu.Unlock()
		return r.Run(ctx, script)
	}
	r.shellBusy = true
	sh := r.shell
	r.shell = nil
	r.shellMu.Unlock()
	keep := func(sh *shell) {
		r.shellMu.Lock()
		r.shell, r.shellBusy = sh, false
		r.shellMu.Unlock()
	}

	// A shell that could die of old age during this script is replaced now.
	if sh != nil {
		life := time.Since(sh.opened) + 5*time.Second
		if dl, ok := ctx.Deadline(); ok {
			life += time.Until(dl)
		} else {
			life += DefaultConnectTimeout // Run's callers always have a deadline
		}
		if life > ShellLifetime {
			r.closeShell(sh)
			sh = nil
		}
	}
	for attempt := 0; ; attempt++ {
		fresh := sh == nil
		if fresh {
			var err error
			if sh, err = r.openShell(ctx); err != nil {
				keep(nil)
				return fail(Result{Command: script}, err)
			}
		}
		res, killed, err := r.runInShell(ctx, sh, script)
		res.Command = script
		switch {
		case killed:
			// The script outlived its deadline: it was killed, with its
			// shell.
			r.releaseShell()
			keep(nil)
			return fail(res, fmt.Errorf("command stopped on the host: %w", ctx.Err()))
		case err == nil:
			keep(sh)
			res.Duration = time.Since(start)
			return res, nil
		}
		// The stream broke.
		r.closeShell(sh)
		sh = nil
		if r.waitDead(200 * time.Millisecond) {
			keep(nil)
			return fail(res, fmt.Errorf("%w: %w", ErrConnLost, err))
		}
		if fresh || attempt > 0 {
			// A new shell that ends at once: the host cannot keep one
			// (no coreutils timeout, a login shell that exits, ...). Its
			// commands run as Run runs them, one session each, from now
			// on: the same answer, without the shell's savings.
			r.shellMu.Lock()
			r.shell, r.shellBusy, r.noShell = nil, false, true
			r.shellMu.Unlock()
			return r.Run(ctx, script)
		}
	}
}

// openShell starts a shell in a new session. It holds one of the
// connection's run slots until it is closed.
func (r *SSHRunner) openShell(ctx context.Context) (*shell, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for a free session: %w", ErrNotStarted, ctx.Err())
	case <-r.done:
		return nil, fmt.Errorf("%w: connection closed", ErrNotStarted)
	}
	sess, err := r.newSession(ctx)
	if err != nil {
		<-r.sem
		if ctx.Err() == nil {
			r.waitDead(200 * time.Millisecond)
		} else {
			go r.checkAlive(killGrace)
		}
		return nil, fmt.Errorf("%w: open session: %w", ErrNotStarted, err)
	}
	sh := &shell{sess: sess, token: newToken(), opened: time.Now()}
	stdin, err1 := sess.StdinPipe()
	stdout, err2 := sess.StdoutPipe()
	stderr, err3 := sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		sess.Close()
		<-r.sem
		return nil, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	sh.stdin = stdin
	sh.stdout = bufio.NewReaderSize(stdout, 512)
	sh.stderr = bufio.NewReaderSize(stderr, 512)
	cmd := fmt.Sprintf("exec env %s=%s timeout -k 2 %d sh", runIDVar, sh.token, int(ShellLifetime.Seconds()))
	if r.shellCmd != "" {
		cmd = r.shellCmd // tests
	}
	startc := make(chan error, 1)
	go func() { startc <- sess.Start(cmd) }()
	select {
	case err := <-startc:
		if err != nil {
			sess.Close()
			<-r.sem
			if r.waitDead(200 * time.Millisecond) {
				return nil, fmt.Errorf("%w: start the shell: %w", ErrConnLost, err)
			}
			return nil, fmt.Errorf("%w: start the shell: %w", ErrNotStarted, err)
		}
	case <-ctx.Done():
		r.kill(sess, sh.token, nil)
		<-r.sem
		return nil, fmt.Errorf("%w: start the shell: %w", ErrNotStarted, ctx.Err())
	}
	return sh, nil
}

// closeShell ends a shell that is not running a script: end of its input
// ends it on the host.
func (r *SSHRunner) closeShell(sh *shell) {
	_ = sh.stdin.Close()
	_ = sh.sess.Close()
	r.releaseShell()
}

func (r *SSHRunner) releaseShell() { <-r.sem }

// runInShell sends one script and reads its output back to its end
// lines. It returns errShellBroken (wrapped) when a stream ends first.
// When ctx ends first, the script and its shell are killed on the host
// (killed is true) and the output read so far is in the Result. Only
// stderr has a goroutine of its own: stdout is read here, and the kill
// ends a read or a write that waits for the host.
func (r *SSHRunner) runInShell(ctx context.Context, sh *shell, script string) (res Result, killed bool, err error) {
	maxOutput := r.maxOutput
	mark := "@@sitectl-end-" + newToken()
	// printf's leading newline puts the end line on a line of its own even
	// after output without a final newline; readToMark takes it off again.
	line := fmt.Sprintf("(eval %s) </dev/null; printf '\\n%s %%d\\n' $?; printf '\\n%s\\n' >&2\n", Quote(script), mark, mark)
	// what has been read so far is kept, for a script cut short
	obuf, ebuf := &capBuffer{max: maxOutput + 1}, &capBuffer{max: maxOutput + 1}
	type read struct {
		out []byte
		err error
	}
	errc := make(chan read, 1)
	go func() {
		out, _, err := readToMark(sh.stderr, ebuf, mark, false, maxOutput)
		errc <- read{out, err}
	}()
	killedc := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		r.kill(sh.sess, sh.token, nil) // ends the reads and the write below
		close(killedc)
	})
	var oerr, werr error
	if _, werr = io.WriteString(sh.stdin, line); werr == nil {
		res.Stdout, res.ExitCode, oerr = readToMark(sh.stdout, obuf, mark, true, maxOutput)
	}
	e := <-errc
	res.Stderr = e.out
	if !stop() {
		<-killedc
		if werr != nil || oerr != nil {
			res.Stdout = capped(obuf.Bytes(), maxOutput)
		}
		return res, true, ctx.Err()
	}
	switch {
	case werr != nil:
		return res, false, fmt.Errorf("%w: send the script: %w", errShellBroken, werr)
	case oerr != nil || e.err != nil:
		return res, false, fmt.Errorf("%w: %w", errShellBroken, errors.Join(oerr, e.err))
	}
	return res, false, nil
}

// readToMark reads lines up to the one that starts with mark (the end line
// the shell prints after a script), keeping at most max bytes before it.
// With status, the end line is "mark EXIT" and EXIT is returned.
// out (max+1 bytes: the newline printf put before the mark) keeps it.
func readToMark(rd *bufio.Reader, out *capBuffer, mark string, status bool, max int) ([]byte, int, error) {
	m := []byte(mark)
	bol := true // at the beginning of a line
	for {
		line, err := rd.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			_, _ = out.Write(line) // a long line: its rest is not an end line
			bol = false
			continue
		}
		if err != nil {
			_, _ = out.Write(line)
			return capped(out.Bytes(), max), 0, err
		}
		if bol && bytes.HasPrefix(line, m) {
			b := out.Bytes()
			if len(b) > 0 && b[len(b)-1] == '\n' {
				b = b[:len(b)-1]
			}
			b = capped(b, max)
			exit := 0
			if status {
				if _, err := fmt.Sscanf(string(line[len(m):]), " %d", &exit); err != nil {
					return b, 0, fmt.Errorf("bad end line %q", line)
				}
			}
			return b, exit, nil
		}
		_, _ = out.Write(line)
		bol = true
	}
}

func capped(b []byte, max int) []byte {
	if len(b) > max {
		return b[:max]
	}
	return b
}
