package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/melbahja/goph"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sitectl/sitectl/adapters/netwatch"
)

// Defaults used when a Target or Options field is zero.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultMaxOutput      = 1 << 20 // bytes kept of stdout, and of stderr, per command
	DefaultKeepAlive      = 15 * time.Second
	DefaultMaxSessions    = 10 // OpenSSH's default MaxSessions
)

// killGrace bounds how long Run waits, after ctx is done, for the remote
// command to be killed and its session to end.
const killGrace = 2 * time.Second

// Options tune the dialers and runners. The zero value gives the defaults.
type Options struct {
	// KeepAlive is the interval of SSH keepalive requests; a connection that
	// does not answer one within the interval is closed, so that commands on
	// it fail (ErrConnLost) instead of hanging. 0 means DefaultKeepAlive,
	// negative disables keepalives.
	KeepAlive time.Duration
	// MaxSessions is the server's limit of sessions per connection (sshd's
	// MaxSessions). Runs use at most MaxSessions-1 at once, further Runs
	// wait; the last one is kept for killing commands whose ctx is done.
	// 0 means DefaultMaxSessions.
	MaxSessions int
	// MaxOutput caps the bytes kept of stdout and of stderr per command; the
	// rest is read and dropped. 0 means DefaultMaxOutput.
	MaxOutput int
	// GlobalKnownHosts is the system-wide known_hosts read besides each
	// target's own, as OpenSSH reads GlobalKnownHostsFile. "" means
	// DefaultGlobalKnownHosts; "none" reads none.
	GlobalKnownHosts string
	// MaxHandshakes bounds the SSH handshakes (key exchange and
	// authentication) running at once in this dialer when ctx carries no
	// HandshakeLimit: 0 shares one process-wide limit of
	// DefaultMaxHandshakes, negative means no limit.
	MaxHandshakes int
}

// DefaultGlobalKnownHosts is OpenSSH's GlobalKnownHostsFile.
const DefaultGlobalKnownHosts = "/etc/ssh/ssh_known_hosts"

func (o Options) keepAlive() time.Duration {
	if o.KeepAlive == 0 {
		return DefaultKeepAlive
	}
	return o.KeepAlive
}

// runSlots is how many commands may run at once over one connection.
func (o Options) runSlots() int {
	n := o.MaxSessions
	if n <= 0 {
		n = DefaultMaxSessions
	}
	return max(1, n-1)
}

func (o Options) maxOutput() int {
	if o.MaxOutput <= 0 {
		return DefaultMaxOutput
	}
	return o.MaxOutput
}

// SSHDialer dials targets over SSH with goph on x/crypto/ssh. It ignores
// Target.Local (NewDialer picks the local runner for those).
type SSHDialer struct {
	Options Options
	// Limit bounds its handshakes when ctx carries no HandshakeLimit; nil:
	// the one Options.MaxHandshakes says.
	Limit *HandshakeLimit
}

var _ Dialer = SSHDialer{}

// Dial connects and authenticates, in two phases with their own deadlines:
//
//   - the network's: the TCP connect and the server's first byte (its SSH
//     version line) within ConnectTimeout (default 5s, or ctx's deadline
//     if sooner). A failure here is Op dial (no connection) or, for a host
//     that accepted the connection and sent nothing, Op handshake wrapping
//     ErrNoBanner.
//   - the handshake's: key exchange, host-key check and authentication, CPU
//     work on both ends, within HandshakeTimeout (default 30s) from the
//     moment it may start. At most a HandshakeLimit's size run at once (the
//     one ctx carries, else Options.MaxHandshakes); waiting for a slot is
//     bounded by ctx only. A handshake that runs out of time is Op
//     handshake wrapping ErrSlowHandshake: the host answered, it is slow,
//     it is not unreachable.
//
// The host key must be in Target.KnownHosts unless
// Target.InsecureIgnoreHostKey is set. Errors are *HostError with Op dial,
// handshake, hostkey or auth; for hostkey, Err is a *HostKeyError.
func (d SSHDialer) Dial(ctx context.Context, t Target) (Runner, error) {
	s, err := d.setup(t)
	if err != nil {
		return nil, err
	}
	defer s.closeAuth()
	a, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := s.handshake(ctx, a, d.limit(ctx))
	if err != nil {
		return nil, err
	}
	return d.newRunner(s, a, ssh.NewClient(c, chans, reqs)), nil
}

// dialSetup is what a Dial needs before it dials: the address, the two
// deadlines, the user, the host-key check and the authentication.
type dialSetup struct {
	t                  Target
	port               int
	addr, user         string
	timeout, hsTimeout time.Duration
	hk                 *hostKeyCheck
	auth               goph.Auth
	closeAuth          func()
}

func (s *dialSetup) fail(op string, err error) error {
	return &HostError{Host: s.t.Name, Addr: s.addr, Op: op, Err: err}
}

// setup resolves t. A bad known_hosts or key file is checked here, before
// dialing: it is not the network's fault and must not look like one.
func (d SSHDialer) setup(t Target) (*dialSetup, error) {
	s := &dialSetup{t: t, port: t.Port, timeout: t.ConnectTimeout, hsTimeout: t.HandshakeTimeout, user: t.User}
	if s.port == 0 {
		s.port = 22
	}
	s.addr = net.JoinHostPort(t.Address, strconv.Itoa(s.port))
	if t.Address == "" {
		return nil, s.fail(OpDial, errors.New("no address"))
	}
	if s.timeout <= 0 {
		s.timeout = DefaultConnectTimeout
	}
	if s.hsTimeout <= 0 {
		s.hsTimeout = DefaultHandshakeTimeout
	}
	if s.user == "" {
		u, err := user.Current()
		if err != nil {
			return nil, s.fail(OpAuth, fmt.Errorf("no user given and the current one is unknown: %w", err))
		}
		s.user = u.Username
	}
	hk, err := newHostKeyCheck(t, s.addr, s.port, d.Options.GlobalKnownHosts)
	if err != nil {
		return nil, s.fail(OpHostKey, err)
	}
	auth, closeAuth, err := authMethods(t)
	if err != nil {
		return nil, s.fail(OpAuth, err)
	}
	s.hk, s.auth, s.closeAuth = hk, auth, closeAuth
	return s, nil
}

// attempt is one connection attempt: its socket, the deadline of its
// current phase (and whether that was ctx's), and ctx's cancellation,
// which ends the attempt at once in either phase.
type attempt struct {
	ctx         context.Context
	raw         net.Conn
	conn        *peekConn
	deadline    time.Time
	ctxDeadline bool
	mu          sync.Mutex
	cancelled   bool
	stop        func() bool
}

// capped sets the phase's deadline: now+d, or ctx's deadline if sooner.
func (a *attempt) capped(d time.Duration) {
	a.deadline, a.ctxDeadline = time.Now().Add(d), false
	if cdl, ok := a.ctx.Deadline(); ok && cdl.Before(a.deadline) {
		a.deadline, a.ctxDeadline = cdl, true
	}
}

// ctxErr is ctx.Err(), or DeadlineExceeded when ctx's deadline was the one
// that ended the phase (the socket may notice it first).
func (a *attempt) ctxErr() error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if a.ctxDeadline && !time.Now().Before(a.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (a *attempt) setDeadline(t time.Time) {
	a.mu.Lock()
	if !a.cancelled {
		_ = a.raw.SetDeadline(t)
	}
	a.mu.Unlock()
}

// connect is the network's part: the TCP connect and the server's first
// byte (OpenSSH sends its version line as soon as it accepts) within
// ConnectTimeout. An address that did not answer earlier in this command
// is not waited for again while its background probe keeps failing
// (netwatch).
func (s *dialSetup) connect(ctx context.Context) (*attempt, error) {
	a := &attempt{ctx: ctx}
	a.capped(s.timeout)
	nd := net.Dialer{Deadline: a.deadline}
	raw, err := netwatch.DialContext(ctx, &nd, s.addr, s.timeout)
	if err != nil {
		var dead *netwatch.DeadError
		switch {
		case errors.As(err, &dead): // says since when, and that it is probed
		case a.ctxErr() != nil:
			err = fmt.Errorf("%w: %w", a.ctxErr(), err)
		case isTimeout(err):
			err = fmt.Errorf("no TCP connection within %s: %w", s.timeout, err)
		}
		return nil, s.fail(OpDial, err)
	}
	a.raw, a.conn = raw, newPeekConn(raw)
	a.stop = context.AfterFunc(ctx, func() {
		a.mu.Lock()
		a.cancelled = true
		_ = raw.SetDeadline(time.Unix(1, 0))
		a.mu.Unlock()
	})
	a.setDeadline(a.deadline)
	if err := firstByte(a.conn); err != nil {
		a.stop()
		raw.Close()
		switch {
		case a.ctxErr() != nil:
			return nil, s.fail(OpHandshake, fmt.Errorf("%w: waiting for the server's SSH version line: %w", a.ctxErr(), err))
		case isTimeout(err):
			return nil, s.fail(OpHandshake, fmt.Errorf("%w within %s (it accepted the TCP connection; is it sshd listening there?): %w", ErrNoBanner, s.timeout, err))
		default:
			return nil, s.fail(OpHandshake, fmt.Errorf("the connection ended before the server's SSH version line: %w", err))
		}
	}
	return a, nil
}

// limit is the handshake limit of this dial: ctx's, the dialer's, or one
// of Options.MaxHandshakes.
func (d SSHDialer) limit(ctx context.Context) *HandshakeLimit {
	if l := handshakeLimitFrom(ctx); l != nil {
		return l
	}
	if d.Limit != nil {
		return d.Limit
	}
	return sizedLimit(d.Options.MaxHandshakes)
}

// handshake is the part that costs CPU: it waits for a slot of limit,
// without a deadline of its own (the server waits for us: LoginGraceTime
// is 2 minutes), then has HandshakeTimeout for key exchange, host-key
// check and authentication. A handshake that runs out of time is slow,
// not unreachable.
func (s *dialSetup) handshake(ctx context.Context, a *attempt, limit *HandshakeLimit) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	a.setDeadline(time.Time{})
	release, err := limit.acquire(ctx)
	if err != nil {
		a.stop()
		a.raw.Close()
		return nil, nil, nil, s.fail(OpHandshake, fmt.Errorf("%w: waiting for a handshake slot (%d at once)", err, limit.Size()))
	}
	defer release()
	a.capped(s.hsTimeout)
	a.setDeadline(a.deadline)
	cfg := &ssh.ClientConfig{
		User:              s.user,
		Auth:              s.auth,
		HostKeyCallback:   s.hk.callback,
		HostKeyAlgorithms: s.hk.algorithms,
		Timeout:           s.hsTimeout,
	}
	c, chans, reqs, err := ssh.NewClientConn(a.conn, s.addr, cfg)
	release()
	wasCancelled := !a.stop()
	if err != nil {
		a.raw.Close()
		switch hkErr := s.hk.failure(); {
		case hkErr != nil:
			return nil, nil, nil, s.fail(OpHostKey, hkErr)
		case a.ctxErr() != nil:
			return nil, nil, nil, s.fail(OpHandshake, fmt.Errorf("%w: %w", a.ctxErr(), err))
		case isTimeout(err) || !time.Now().Before(a.deadline):
			return nil, nil, nil, s.fail(OpHandshake, fmt.Errorf("%w: the server answered but key exchange and authentication took more than %s: %w", ErrSlowHandshake, s.hsTimeout, err))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, nil, nil, s.fail(OpAuth, fmt.Errorf("user %q was refused (%s): %w", s.user, describeAuth(s.t), err))
		default:
			return nil, nil, nil, s.fail(OpHandshake, err)
		}
	}
	if wasCancelled {
		c.Close()
		return nil, nil, nil, s.fail(OpHandshake, ctx.Err())
	}
	_ = a.raw.SetDeadline(time.Time{})
	return c, chans, reqs, nil
}

// newRunner is the runner of an authenticated connection.
func (d SSHDialer) newRunner(s *dialSetup, a *attempt, c *ssh.Client) *SSHRunner {
	client := &goph.Client{
		Client: c,
		Config: &goph.Config{
			Auth:     s.auth,
			User:     s.user,
			Addr:     s.t.Address,
			Port:     uint(s.port),
			Timeout:  s.timeout,
			Callback: s.hk.callback,
		},
	}
	r := &SSHRunner{
		target:    s.t,
		addr:      s.addr,
		client:    client,
		sem:       make(chan struct{}, d.Options.runSlots()),
		maxOutput: d.Options.maxOutput(),
		done:      a.conn.dead, // the read loop's end is the connection's
	}
	if ka := d.Options.keepAlive(); ka > 0 {
		r.keepAlive(ka)
	}
	return r
}

// SSHRunner runs commands over one SSH connection, one session per command.
// It is safe for concurrent use.
type SSHRunner struct {
	target    Target
	addr      string
	client    *goph.Client
	sem       chan struct{}
	maxOutput int
	done      chan struct{} // closed when the connection has ended
	closeOnce sync.Once
	closeErr  error

	sessions  atomic.Int64 // sessions opened (SessionsOpened)
	shellMu   sync.Mutex
	shell     *shell // the idle long-lived shell (RunScript), if any
	shellBusy bool   // a RunScript has the shell
	noShell   bool   // a new shell ended at once: RunScript runs as Run
	shellCmd  string // replaces the shell's command line (tests)
}

var _ ScriptRunner = (*SSHRunner)(nil)

// Client returns the underlying goph client (for SFTP uploads and the like).
func (r *SSHRunner) Client() *goph.Client { return r.client }

// Alive reports whether the connection is still up, as far as is known:
// it turns false once the connection is closed, drops, or misses a
// keepalive reply.
func (r *SSHRunner) Alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Close closes the connection; commands still running on it fail with
// ErrConnLost.
func (r *SSHRunner) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = r.client.Close()
		if errors.Is(r.closeErr, net.ErrClosed) || !r.Alive() {
			r.closeErr = nil
		}
	})
	return r.closeErr
}

// Run runs command through the remote user's shell in a new session and
// waits for it. Stdout and stderr are kept apart (each capped at
// Options.MaxOutput). A non-zero exit is Result.ExitCode, not an error.
//
// The command runs under `sh -c` (see wrapCommand). When ctx has a deadline
// it runs under coreutils timeout, so the host itself kills it (and its
// process group) at the deadline even if this process dies or the network
// goes away. When ctx is done first, Run sends SIGKILL to the session
// (OpenSSH ≥ 7.9 signals the command's process group, except for root),
// kills the command's whole session through a second session (it finds it
// by a token in the environment; needs /proc, GNU grep and procps on the
// host), closes the session, and returns an error wrapping ctx.Err().
//
// Errors are *HostError with Op "run"; they wrap ErrNotStarted when the
// command surely did not start, ErrConnLost when the connection broke while
// it ran, ctx.Err() on deadline or cancellation.
func (r *SSHRunner) Run(ctx context.Context, command string) (Result, error) {
	start := time.Now()
	res := Result{Command: command}
	fail := func(err error) (Result, error) {
		res.Duration = time.Since(start)
		return res, &HostError{Host: r.target.Name, Addr: r.addr, Op: OpRun, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNotStarted, err))
	}
	if err := r.takeSlot(ctx); err != nil {
		return fail(err)
	}
	defer func() { <-r.sem }()
	sess, err := r.newSession(ctx)
	if err != nil {
		return fail(r.sessionFailed(ctx, err))
	}
	defer sess.Close()
	stdout := &capBuffer{max: r.maxOutput}
	stderr := &capBuffer{max: r.maxOutput}
	sess.Stdout = stdout
	sess.Stderr = stderr

	token := newToken()
	wire, wrapped := wrapCommand(ctx, command, token)
	startc := make(chan error, 1)
	go func() { startc <- sess.Start(wire) }()
	select {
	case err := <-startc:
		switch {
		case err == nil:
		case r.waitDead(200 * time.Millisecond):
			// The exec request may have reached the server.
			return fail(fmt.Errorf("%w: start: %w", ErrConnLost, err))
		default: // the server refused it
			return fail(fmt.Errorf("%w: start: %w", ErrNotStarted, err))
		}
	case <-ctx.Done():
		// The server may have started it: treat it as running.
		r.kill(sess, token, nil)
		return fail(fmt.Errorf("command stopped on the host: %w", ctx.Err()))
	}
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()

	var werr error
	select {
	case werr = <-waitc:
	case <-ctx.Done():
		r.kill(sess, token, waitc)
		res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
		return fail(fmt.Errorf("command stopped on the host: %w", ctx.Err()))
	}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.Duration = time.Since(start)
	if err := r.exitOf(ctx, &res, werr, wrapped); err != nil {
		return fail(err)
	}
	return res, nil
}

// takeSlot waits for one of the connection's session slots.
func (r *SSHRunner) takeSlot(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for a free session: %w", ErrNotStarted, ctx.Err())
	case <-r.done:
		return fmt.Errorf("%w: connection closed", ErrNotStarted)
	}
}

// sessionFailed is the error of a session that did not open.
func (r *SSHRunner) sessionFailed(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		// Most likely the connection is going away: let Alive say so
		// before returning, so a Pool can redial.
		r.waitDead(200 * time.Millisecond)
	} else {
		// The server did not open a channel before the deadline: find
		// out whether it still answers at all.
		go r.checkAlive(killGrace)
	}
	return fmt.Errorf("%w: open session: %w", ErrNotStarted, err)
}

// exitOf reads the command's end (werr, from the session's Wait) into res:
// nil when it exited with a status, else why its outcome is not known.
func (r *SSHRunner) exitOf(ctx context.Context, res *Result, werr error, wrapped bool) error {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case werr == nil:
		return nil
	case errors.As(werr, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
		// The host's timeout may report the deadline (124, or 137 after
		// -k) a moment before ctx notices it.
		if wrapped && ctx.Err() != nil && (res.ExitCode == 124 || res.ExitCode == 137) {
			return fmt.Errorf("command stopped on the host: %w", ctx.Err())
		}
		return nil
	case errors.As(werr, &missing):
		if r.waitDead(200 * time.Millisecond) {
			return fmt.Errorf("%w: %w", ErrConnLost, werr)
		}
		return fmt.Errorf("the server reported no exit status; outcome unknown: %w", werr)
	default:
		return fmt.Errorf("%w: %w", ErrConnLost, werr)
	}
}

// newSession opens a session, giving up when ctx is done (x/crypto's
// NewSession itself would wait for the server forever). A refused channel
// is retried for a while: sshd frees a session only once its command has
// exited, a moment after the session was closed, so a refusal can be
// transient.
func (r *SSHRunner) newSession(ctx context.Context) (*ssh.Session, error) {
	for attempt := 1; ; attempt++ {
		type opened struct {
			s   *ssh.Session
			err error
		}
		c := make(chan opened, 1)
		go func() {
			s, err := r.client.NewSession()
			if err == nil {
				r.sessions.Add(1)
			}
			c <- opened{s, err}
		}()
		var o opened
		select {
		case o = <-c:
		case <-ctx.Done():
			go func() { // close it should it open after all
				if o := <-c; o.s != nil {
					o.s.Close()
				}
			}()
			return nil, ctx.Err()
		}
		var oce *ssh.OpenChannelError
		if o.err == nil || !errors.As(o.err, &oce) || attempt == 10 {
			return o.s, o.err
		}
		select {
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", o.err, ctx.Err())
		case <-r.done:
			return nil, o.err
		}
	}
}

// kill ends a command whose ctx is done and waits (briefly) for its session
// to end (waitc yields sess.Wait's result; nil: do not wait).
func (r *SSHRunner) kill(sess *ssh.Session, token string, waitc <-chan error) {
	// OpenSSH ≥ 7.9 turns this into killpg() on the command's process
	// group, but refuses it for root logins, and older servers ignore it.
	// So also kill the session the command runs in, found by its token,
	// over a second session.
	_ = sess.Signal(ssh.SIGKILL)
	killCtx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	if ks, err := r.newSession(killCtx); err == nil {
		done := make(chan struct{})
		go func() { _ = ks.Run(killScript(token)); close(done) }()
		select {
		case <-done:
		case <-killCtx.Done():
		}
		ks.Close()
	} else if killCtx.Err() != nil {
		// The server did not open a channel within killGrace: the link is
		// gone (a cut network keeps the TCP connection half-open until
		// keepalives notice). Close it so the next command redials, and
		// wait until Alive says so.
		_ = r.client.Close()
		r.waitDead(killGrace)
	}
	_ = sess.Close()
	if waitc != nil {
		select {
		case <-waitc:
		case <-killCtx.Done():
		}
	}
}

// waitDead reports whether the connection ends within d.
func (r *SSHRunner) waitDead(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

// keepAlive checks the connection every interval, on a timer rather than
// a goroutine of its own: at fleet scale a goroutine per connection that
// mostly sleeps costs memory (a stack each) for nothing.
func (r *SSHRunner) keepAlive(interval time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(time.Hour, func() {
		select {
		case <-r.done:
			return
		default:
		}
		if r.checkAlive(interval) {
			t.Reset(interval)
		}
	})
	t.Reset(interval) // t is set before its first run
}

// checkAlive sends one keepalive request and closes the connection when no
// reply comes within d: a peer that cannot answer in time is treated as
// gone, so that the next command redials (and finds out fast) instead of
// hanging on it. It reports whether the connection is still open.
func (r *SSHRunner) checkAlive(d time.Duration) bool {
	replied := make(chan error, 1)
	go func() {
		_, _, err := r.client.SendRequest("keepalive@openssh.com", true, nil)
		replied <- err
	}()
	select {
	case err := <-replied:
		if err == nil {
			return true
		}
	case <-time.After(d):
	case <-r.done:
		return false
	}
	_ = r.client.Close()
	return false
}

// runIDVar names the environment variable that marks the processes of one
// Run on the host, so that kill can find them.
const runIDVar = "SITECTL_RUN_ID"

// wrapCommand builds what is sent to the remote user's shell:
//
//	exec env SITECTL_RUN_ID=TOKEN sh -c 'CMD'
//	exec env SITECTL_RUN_ID=TOKEN timeout -k 2 SECS sh -c 'CMD'   (ctx has a deadline)
//
// The command always runs under sh, as with the local runner. exec keeps
// one process chain as the leader of the session sshd made for the
// command, so exit codes and signals come back as the command's own. The
// variable is inherited by everything the command starts, and outlives
// exec, which rewrites command lines. coreutils timeout kills its whole
// process group at the deadline on the host itself, even if this process or
// the network is gone.
func wrapCommand(ctx context.Context, command, token string) (string, bool) {
	inner := "sh -c " + Quote(command)
	prefix := "exec env " + runIDVar + "=" + token + " "
	dl, ok := ctx.Deadline()
	if !ok {
		return prefix + inner, false
	}
	secs := int(math.Ceil(time.Until(dl).Seconds()))
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("%stimeout -k 2 %d %s", prefix, secs, inner), true
}

// killScript kills every session on the host that holds a process marked
// with token (GNU grep -z reads /proc/PID/environ as NUL-separated lines).
func killScript(token string) string {
	return fmt.Sprintf(`for p in $(grep -lzx %s /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do `+
		`s=$(ps -o sid= -p "$p" 2>/dev/null | tr -d ' '); `+
		`[ -n "$s" ] && [ "$s" -gt 1 ] && pkill -KILL -s "$s"; done; true`, Quote(runIDVar+"="+token))
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// expandHome turns a leading "~/" into the home directory.
func expandHome(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand %s: %w", p, err)
		}
		return filepath.Join(home, p[1:]), nil
	}
	return p, nil
}

// authMethods builds one publickey method from the key file and/or the
// agent. (x/crypto tries each method name once, so two separate publickey
// methods would never both be tried.) The agent socket is closed by the
// returned func once the handshake is over; goph.UseAgent never closes it.
func authMethods(t Target) (goph.Auth, func(), error) {
	noop := func() {}
	var signers []ssh.Signer
	if t.KeyFile != "" {
		path, err := expandHome(t.KeyFile)
		if err != nil {
			return nil, noop, err
		}
		s, err := goph.GetSigner(path, "")
		if err != nil {
			var pm *ssh.PassphraseMissingError
			if errors.As(err, &pm) {
				return nil, noop, fmt.Errorf("key file %s is protected by a passphrase: load it into ssh-agent and use the agent instead", path)
			}
			return nil, noop, fmt.Errorf("key file: %w", err)
		}
		signers = append(signers, s)
	}
	var ag agent.ExtendedAgent
	closeAgent := noop
	if t.UseAgent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, noop, errors.New("use of ssh-agent requested but SSH_AUTH_SOCK is not set")
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, noop, fmt.Errorf("ssh-agent at %s: %w", sock, err)
		}
		ag = agent.NewClient(conn)
		closeAgent = func() { _ = conn.Close() }
	}
	if len(signers) == 0 && ag == nil {
		return nil, noop, errors.New("no credentials: the target has neither a key file nor use of ssh-agent")
	}
	cb := func() ([]ssh.Signer, error) {
		out := append([]ssh.Signer(nil), signers...)
		if ag != nil {
			as, err := ag.Signers()
			if err != nil && len(out) == 0 {
				return nil, fmt.Errorf("ssh-agent: %w", err)
			}
			out = append(out, as...)
		}
		return out, nil
	}
	return goph.Auth{ssh.PublicKeysCallback(cb)}, closeAgent, nil
}

func describeAuth(t Target) string {
	var m []string
	if t.KeyFile != "" {
		m = append(m, "key "+t.KeyFile)
	}
	if t.UseAgent {
		m = append(m, "ssh-agent keys")
	}
	return "tried " + strings.Join(m, " and ")
}

// hostKeyCheck verifies the server's key against known_hosts and remembers
// why it refused one, so that Dial can return a *HostKeyError rather than
// x/crypto's wrapped text.
type hostKeyCheck struct {
	target   Target
	addr     string
	port     int
	file     string
	insecure bool
	missing  bool // no known_hosts file to read at all
	// userMissing: the target's own known_hosts does not exist (the
	// system-wide one may)
	userMissing bool
	kh          ssh.HostKeyCallback
	algorithms  []string

	mu   sync.Mutex
	last *HostKeyError
}

func newHostKeyCheck(t Target, addr string, port int, global string) (*hostKeyCheck, error) {
	h := &hostKeyCheck{target: t, addr: addr, port: port, insecure: t.InsecureIgnoreHostKey}
	if h.insecure {
		return h, nil
	}
	file := t.KnownHosts
	if file == "" {
		p, err := goph.DefaultKnownHostsPath()
		if err != nil {
			return nil, fmt.Errorf("default known_hosts: %w", err)
		}
		file = p
	}
	file, err := expandHome(file)
	if err != nil {
		return nil, err
	}
	h.file = file
	var files []string
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		h.userMissing = true
	} else {
		files = append(files, file)
	}
	// the system-wide file too, as OpenSSH does (GlobalKnownHostsFile)
	switch global {
	case "":
		global = DefaultGlobalKnownHosts
	case "none":
		global = ""
	}
	if global != "" && global != file {
		if _, err := os.Stat(global); err == nil {
			files = append(files, global)
		}
	}
	if len(files) == 0 {
		// Still connect, to show the operator the key they need to check.
		h.missing = true
		return h, nil
	}
	kh, err := parseKnownHosts(files...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", strings.Join(files, ", "), err)
	}
	h.kh = kh
	h.algorithms = knownAlgorithms(kh, addr, port)
	return h, nil
}

// knownAlgorithms returns the host-key algorithms matching the keys stored
// for addr, so the server is asked for a key type we can check. Without it
// x/crypto may negotiate another type the server also has and then report
// "knownhosts: key mismatch" (goph #50/#81, golang/go#29286). nil (x/crypto's
// defaults) when the host is not in the file.
func knownAlgorithms(kh ssh.HostKeyCallback, addr string, port int) []string {
	// A key that matches nothing makes the callback list what it knows.
	err := kh(addr, &net.TCPAddr{IP: net.IPv4zero, Port: port}, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// probeKey is a public key no known_hosts line can match.
type probeKey struct{}

func (probeKey) Type() string                        { return "sitectl-probe" }
func (probeKey) Marshal() []byte                     { return []byte("\x00\x00\x00\x0dsitectl-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

func (h *hostKeyCheck) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	if h.insecure {
		return nil
	}
	e := &HostKeyError{
		Host:        h.target.Name,
		Addr:        h.addr,
		Port:        h.port,
		KeyType:     key.Type(),
		Fingerprint: ssh.FingerprintSHA256(key),
		KnownHosts:  h.file,
		// the line to add once the fingerprint is verified: the key just
		// seen, not a fresh ssh-keyscan (which could fetch another one)
		Line:              knownhosts.Line([]string{knownhosts.Normalize(h.addr)}, key),
		KnownHostsMissing: h.userMissing,
	}
	if h.missing {
		return h.refuse(e)
	}
	err := h.kh(hostname, remote, key)
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		e.Revoked = true
	case errors.As(err, &ke) && len(ke.Want) > 0:
		e.Mismatch = true
		for _, k := range ke.Want {
			e.Known = append(e.Known, fmt.Sprintf("%s:%d %s %s", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
		}
	case errors.As(err, &ke):
		// unknown host: the default message
	default:
		return err
	}
	return h.refuse(e)
}

func (h *hostKeyCheck) refuse(e *HostKeyError) error {
	h.mu.Lock()
	h.last = e
	h.mu.Unlock()
	return e
}

func (h *hostKeyCheck) failure() *HostKeyError {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}
