package remote

import (
	"context"
	"errors"
	"sync"
)

// Pool holds one connection per host for the length of a run. Hosts are
// dialed lazily; concurrent Gets for a host share one dial. Safe for
// concurrent use.
type Pool struct {
	dialer  Dialer
	targets map[string]Target
	limit   *HandshakeLimit // passed to the dialer in ctx; nil: the dialer's own

	ctx    context.Context // cancelled by Close: aborts dials in flight
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[string]*poolConn
	closed bool
}

type poolConn struct {
	ready chan struct{} // closed when the dial has finished
	r     Runner        // set before ready is closed; nil if the dial failed
	err   error
}

// PoolOptions tune a Pool. The zero value is fine.
type PoolOptions struct {
	// Handshakes bounds the SSH handshakes of the pool's dials running at
	// once (see HandshakeLimit); nil leaves it to the dialer.
	Handshakes *HandshakeLimit
}

// NewPool returns a pool that dials targets[host] with d. The map is copied.
func NewPool(d Dialer, targets map[string]Target) *Pool {
	return NewPoolWith(d, targets, PoolOptions{})
}

// NewPoolWith is NewPool with options.
func NewPoolWith(d Dialer, targets map[string]Target, o PoolOptions) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	t := make(map[string]Target, len(targets))
	for k, v := range targets {
		t[k] = v
	}
	return &Pool{dialer: d, targets: t, limit: o.Handshakes, ctx: ctx, cancel: cancel, conns: map[string]*poolConn{}}
}

// Get returns the runner for host, dialing it if there is no live one. At
// most one dial per host is in flight; other callers wait for it (or for
// their ctx). A failed dial is not cached: the next Get dials again. The
// returned Runner belongs to the pool: its Close does nothing; Pool.Close
// closes the connections.
func (p *Pool) Get(ctx context.Context, host string) (Runner, error) {
	t, ok := p.targets[host]
	if !ok {
		return nil, &HostError{Host: host, Op: OpDial, Err: ErrUnknownHost}
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &HostError{Host: host, Addr: t.Address, Op: OpDial, Err: ErrPoolClosed}
		}
		pc := p.conns[host]
		if pc == nil {
			pc = &poolConn{ready: make(chan struct{})}
			p.conns[host] = pc
			go p.dial(ctx, host, t, pc)
		}
		p.mu.Unlock()

		select {
		case <-pc.ready:
		case <-ctx.Done():
			return nil, &HostError{Host: host, Addr: t.Address, Op: OpDial, Err: ctx.Err()}
		}
		if pc.err != nil {
			return nil, pc.err
		}
		if alive(pc.r) {
			return pooled{pc.r, pc}, nil
		}
		// The cached connection died: forget it and dial afresh.
		p.forget(host, pc)
	}
}

// Run runs command on host through Get. If the connection turns out to be
// dead before the command started (ErrNotStarted), it redials once and
// retries; a command that may have run is never retried.
func (p *Pool) Run(ctx context.Context, host, command string) (Result, error) {
	r, err := p.Get(ctx, host)
	if err != nil {
		return Result{Command: command}, err
	}
	res, err := r.Run(ctx, command)
	if err == nil || ctx.Err() != nil {
		return res, err
	}
	if errors.Is(err, ErrConnLost) {
		p.forgetRunner(host, r)
		return res, err
	}
	if !errors.Is(err, ErrNotStarted) || alive(r) {
		return res, err
	}
	p.forgetRunner(host, r)
	r, gerr := p.Get(ctx, host)
	if gerr != nil {
		return res, gerr
	}
	return r.Run(ctx, command)
}

// RunScript runs a script that observes and changes nothing on host: in
// the host's long-lived shell when its runner has one (ScriptRunner),
// else as Run does. Since running it twice does no harm, a connection
// found dead, before or while the script ran, is forgotten and redialed,
// and the script run again, once, while ctx allows: a host whose session
// or connection broke answers on a new one, and only a host that cannot
// be dialed again fails.
func (p *Pool) RunScript(ctx context.Context, host, script string) (Result, error) {
	for attempt := 0; ; attempt++ {
		r, err := p.Get(ctx, host)
		if err != nil {
			return Result{Command: script}, err
		}
		var res Result
		if sr, ok := scriptRunner(r); ok {
			res, err = sr.RunScript(ctx, script)
		} else {
			res, err = r.Run(ctx, script)
		}
		if err == nil || ctx.Err() != nil || attempt > 0 {
			return res, err
		}
		if !errors.Is(err, ErrConnLost) && (!errors.Is(err, ErrNotStarted) || alive(r)) {
			return res, err
		}
		p.forgetRunner(host, r)
	}
}

func scriptRunner(r Runner) (ScriptRunner, bool) {
	if pr, ok := r.(pooled); ok {
		r = pr.Runner
	}
	sr, ok := r.(ScriptRunner)
	return sr, ok
}

// Close closes every connection and aborts dials in flight. Later Gets fail
// with ErrPoolClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = map[string]*poolConn{}
	p.mu.Unlock()
	p.cancel()

	var errs []error
	for _, pc := range conns {
		<-pc.ready
		if pc.r != nil {
			errs = append(errs, pc.r.Close())
		}
	}
	return errors.Join(errs...)
}

// dial runs in its own goroutine so that a caller whose ctx ends does not
// abort the dial others are waiting for. It keeps ctx's values but not its
// cancellation; Pool.Close cancels it, and ConnectTimeout bounds it.
func (p *Pool) dial(ctx context.Context, host string, t Target, pc *poolConn) {
	dctx, cancel := context.WithCancel(WithHandshakeLimit(context.WithoutCancel(ctx), p.limit))
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()

	r, err := p.dialer.Dial(dctx, t)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil:
		pc.err = err
		if p.conns[host] == pc {
			delete(p.conns, host) // do not cache failures
		}
	case p.closed:
		_ = r.Close()
		pc.err = &HostError{Host: host, Addr: t.Address, Op: OpDial, Err: ErrPoolClosed}
	default:
		pc.r = r
	}
	close(pc.ready)
}

func (p *Pool) forget(host string, pc *poolConn) {
	p.mu.Lock()
	if p.conns[host] == pc {
		delete(p.conns, host)
	}
	p.mu.Unlock()
	_ = pc.r.Close()
}

func (p *Pool) forgetRunner(host string, r Runner) {
	if pr, ok := r.(pooled); ok {
		p.forget(host, pr.pc)
	}
}

// alive uses the runner's Alive method when it has one.
func alive(r Runner) bool {
	if pr, ok := r.(pooled); ok {
		r = pr.Runner
	}
	if a, ok := r.(interface{ Alive() bool }); ok {
		return a.Alive()
	}
	return true
}

// pooled is what Get hands out: Close is a no-op, the pool owns the
// connection.
type pooled struct {
	Runner
	pc *poolConn
}

func (pooled) Close() error { return nil }

// Alive forwards to the pooled runner.
func (p pooled) Alive() bool { return alive(p.Runner) }
