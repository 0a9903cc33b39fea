package remote

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHandshakeTimeout bounds the part of an SSH handshake that follows
// the server's first byte (key exchange, host-key check, authentication):
// work that costs CPU on both ends, so a busy machine makes it slow without
// the network being at fault.
const DefaultHandshakeTimeout = 30 * time.Second

// DefaultMaxHandshakes is how many SSH handshakes (key exchange and
// authentication) run at once when nothing else says: four per CPU, at
// least 8. More would only queue for the CPU; a handshake's own deadline
// starts once it has a slot, so waiting for one never makes a host look
// dead. Measured in docs/benchmarks.md.
func DefaultMaxHandshakes() int { return max(8, 4*runtime.NumCPU()) }

// DefaultHandshakeHold is how long a handshake keeps its slot. This
// machine's part of a handshake is a few milliseconds of CPU; one still
// running after that is waiting for its server (a slow host, sshd's DNS or
// PAM lookups), and gives its slot to the next one, so that a few stalled
// hosts never hold up the handshakes of the others.
const DefaultHandshakeHold = 2 * time.Second

// HandshakeLimit bounds how many SSH handshakes run at once. The TCP connect
// and the wait for the server's first byte (the network's part) are not
// bounded by it; only the key exchange and authentication that follow are,
// each for at most Hold. A nil *HandshakeLimit does not limit. Safe for
// concurrent use.
type HandshakeLimit struct {
	// Hold is how long a handshake keeps its slot at most (set before
	// use; 0: DefaultHandshakeHold; negative: until it ends).
	Hold time.Duration

	slots  chan struct{}
	queued atomic.Int64
}

// NewHandshakeLimit returns a limit of n handshakes at once (n <= 0:
// DefaultMaxHandshakes).
func NewHandshakeLimit(n int) *HandshakeLimit {
	if n <= 0 {
		n = DefaultMaxHandshakes()
	}
	return &HandshakeLimit{slots: make(chan struct{}, n)}
}

// Size is the number of handshakes allowed at once (0: unlimited).
func (l *HandshakeLimit) Size() int {
	if l == nil {
		return 0
	}
	return cap(l.slots)
}

// Queued is how many handshakes wait for a slot now.
func (l *HandshakeLimit) Queued() int {
	if l == nil {
		return 0
	}
	return int(l.queued.Load())
}

// acquire waits for a slot; the returned func frees it.
func (l *HandshakeLimit) acquire(ctx context.Context) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	l.queued.Add(1)
	defer l.queued.Add(-1)
	select {
	case l.slots <- struct{}{}:
		var once sync.Once
		free := func() { once.Do(func() { <-l.slots }) }
		hold := l.Hold
		if hold == 0 {
			hold = DefaultHandshakeHold
		}
		if hold > 0 {
			t := time.AfterFunc(hold, free)
			return func() { t.Stop(); free() }, nil
		}
		return free, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type limitKey struct{}

// WithHandshakeLimit returns ctx carrying l: SSHDialer.Dial uses it instead
// of its own (a Pool passes its limit to its dialer this way).
func WithHandshakeLimit(ctx context.Context, l *HandshakeLimit) context.Context {
	if l == nil {
		return ctx
	}
	return context.WithValue(ctx, limitKey{}, l)
}

func handshakeLimitFrom(ctx context.Context) *HandshakeLimit {
	l, _ := ctx.Value(limitKey{}).(*HandshakeLimit)
	return l
}

// sizedLimit is the limit of dialers given none: one per size, shared by
// the whole process, as the CPU it protects is (0: DefaultMaxHandshakes;
// negative: nil, no limit).
func sizedLimit(n int) *HandshakeLimit {
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = DefaultMaxHandshakes()
	}
	limitsMu.Lock()
	defer limitsMu.Unlock()
	l := limits[n]
	if l == nil {
		l = NewHandshakeLimit(n)
		limits[n] = l
	}
	return l
}

var (
	limitsMu sync.Mutex
	limits   = map[int]*HandshakeLimit{}
)

// peekConn is a connection whose first bytes were read ahead (to see the
// server answer before the handshake proper starts) and are replayed to
// the SSH client.
// dead is closed at the first read error: x/crypto's read loop, the only
// reader once the handshake is done, ends the connection there, so it
// tells when the connection has ended without a goroutine waiting for it.
type peekConn struct {
	net.Conn
	r    *bufio.Reader
	dead chan struct{}
	once sync.Once
}

func newPeekConn(c net.Conn) *peekConn {
	// A small buffer: it only has to hold the first byte; x/crypto reads
	// through it with a buffer of its own (bufio bypasses a smaller one).
	return &peekConn{Conn: c, r: bufio.NewReaderSize(c, 16), dead: make(chan struct{})}
}

func (c *peekConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.once.Do(func() { close(c.dead) })
	}
	return n, err
}

// firstByte waits for the server's first byte, until the conn's deadline.
// A deadline that passed while this process was too busy to look is given
// one more short look: bytes already received mean the server answered.
func firstByte(c *peekConn) error {
	_, err := c.r.Peek(1)
	if err == nil || !isTimeout(err) {
		return err
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err2 := c.r.Peek(1); err2 == nil {
		return nil
	}
	return err
}
