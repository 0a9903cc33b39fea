// Package netwatch remembers, for one sitectl process, the network
// endpoints (host:port) that did not answer a connection attempt, and keeps
// probing them in the background until they answer again.
//
// Why: after a site is lost, every layer (SSH, MongoDB, ActiveMQ) must
// observe it again and again during a run, and each observation used to wait
// its whole connect timeout for the dead endpoint before it could conclude
// anything. With a Watch, the first attempt still waits its full timeout
// (nothing is assumed from a previous process); after that, an observation
// of an endpoint whose latest background attempt failed gets that failure at
// once (a *DeadError naming when the attempts started failing and when the
// last one ended), and the background probe, which keeps dialing with the
// same timeout, clears the endpoint as soon as it accepts a connection
// again. An endpoint is never reported reachable from memory: only a real
// connection says that.
//
// A Watch travels in the context (NewContext, FromContext): one per command
// run, shared by every adapter. A nil Watch does nothing.
package netwatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Pause between two background attempts on a dead endpoint.
const Pause = 250 * time.Millisecond

// DeadError reports an endpoint whose connection attempts keep failing.
type DeadError struct {
	Addr     string
	Since    time.Time     // the first failed attempt
	LastEnd  time.Time     // when the latest failed attempt ended
	Attempts int           // failed attempts so far
	Each     time.Duration // timeout of each attempt
	Last     error         // the latest attempt's error
}

func (e *DeadError) Error() string {
	return fmt.Sprintf("no connection to %s: %d attempt(s) of %s each failed since %s, the latest ended %s ago (%v); it is probed again in the background",
		e.Addr, e.Attempts, e.Each, e.Since.Format("15:04:05.000"), time.Since(e.LastEnd).Round(time.Millisecond), e.Last)
}

// Unwrap returns the latest attempt's error.
func (e *DeadError) Unwrap() error { return e.Last }

// Timeout reports whether the latest attempt timed out (nothing answered),
// as opposed to being refused: like the dial it stands for.
func (e *DeadError) Timeout() bool {
	var ne net.Error
	return errors.As(e.Last, &ne) && ne.Timeout()
}

// Watch holds the endpoints that did not answer.
type Watch struct {
	mu     sync.Mutex
	dead   map[string]*DeadError
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Watch whose background probes end with Close.
func New() *Watch {
	ctx, cancel := context.WithCancel(context.Background())
	return &Watch{dead: map[string]*DeadError{}, ctx: ctx, cancel: cancel}
}

// DialContext dials addr over TCP with d, through the Watch ctx carries:
// an address known dead fails at once with its *DeadError; otherwise the
// dial is real, and its outcome is recorded (a connection clears addr; a
// network failure, unless ctx was cancelled, marks it dead for timeout and
// starts probing it). Without a Watch in ctx it is d.DialContext.
func DialContext(ctx context.Context, d *net.Dialer, addr string, timeout time.Duration) (net.Conn, error) {
	w := FromContext(ctx)
	if err := w.Check(addr); err != nil {
		return nil, err
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	switch {
	case err == nil:
		w.Succeeded(addr)
	case !errors.Is(ctx.Err(), context.Canceled) && IsNetwork(err):
		w.Failed(addr, timeout, err)
	}
	return c, err
}

// Close stops the background probes and waits for them.
func (w *Watch) Close() {
	if w == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}

// Check returns a *DeadError when addr's latest attempt failed and no
// attempt has succeeded since, and nil when addr should be dialed.
func (w *Watch) Check(addr string) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if d, ok := w.dead[addr]; ok {
		c := *d
		return &c
	}
	return nil
}

// Failed records that a real connection attempt to addr (with timeout)
// got no connection, and starts probing it in the background. Call it only
// for network failures (no answer, refused, unreachable), never for an
// authentication or protocol error of an endpoint that did answer.
func (w *Watch) Failed(addr string, timeout time.Duration, err error) {
	if w == nil || w.ctx.Err() != nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if d, ok := w.dead[addr]; ok {
		d.Attempts++
		d.LastEnd, d.Last = now, err
		return
	}
	w.dead[addr] = &DeadError{Addr: addr, Since: now, LastEnd: now, Attempts: 1, Each: timeout, Last: err}
	w.wg.Add(1)
	go w.probe(addr, timeout)
}

// Succeeded records that addr answered a real connection attempt.
func (w *Watch) Succeeded(addr string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	delete(w.dead, addr)
	w.mu.Unlock()
}

// probe dials addr with timeout until it answers (then forgets it) or the
// Watch is closed.
func (w *Watch) probe(addr string, timeout time.Duration) {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(Pause):
		}
		nd := net.Dialer{Timeout: timeout}
		c, err := nd.DialContext(w.ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		if w.ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		d, ok := w.dead[addr]
		switch {
		case !ok: // a real attempt succeeded meanwhile
			w.mu.Unlock()
			return
		case err == nil:
			delete(w.dead, addr)
			w.mu.Unlock()
			return
		}
		d.Attempts++
		d.LastEnd, d.Last = time.Now(), err
		w.mu.Unlock()
	}
}

// IsNetwork reports whether err is a failure to connect at all (no answer,
// refused, no route), as opposed to an endpoint that answered.
func IsNetwork(err error) bool {
	var de *DeadError
	if errors.As(err, &de) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

type ctxKey struct{}

// NewContext returns ctx carrying w.
func NewContext(ctx context.Context, w *Watch) context.Context {
	return context.WithValue(ctx, ctxKey{}, w)
}

// FromContext returns the Watch ctx carries, or nil.
func FromContext(ctx context.Context) *Watch {
	w, _ := ctx.Value(ctxKey{}).(*Watch)
	return w
}
