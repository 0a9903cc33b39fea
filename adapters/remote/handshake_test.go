package remote_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

// stallAfterBanner listens on loopback and, for each connection, sends an
// SSH version line and then never answers: a server that is up but too
// slow to finish a handshake. spoke receives once per connection when the
// client has sent its first bytes (its handshake has started).
func stallAfterBanner(t *testing.T) (port int, spoke <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var held sync.WaitGroup
	t.Cleanup(func() { ln.Close(); held.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Go(func() {
				defer c.Close()
				_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 stalled\r\n")
				var b [1]byte
				if n, _ := c.Read(b[:]); n > 0 {
					ch <- struct{}{}
				}
				_, _ = io.Copy(io.Discard, c)
			})
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

// delayedProxy forwards to the real sshd at to, but holds everything the
// server says after its version line for hold from the client's first
// byte: the server answered at once, the rest of its handshake is slow (a busy host, or a busy client
// reading it late).
func delayedProxy(t *testing.T, to string, hold time.Duration) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				s, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer s.Close()
				spoke := make(chan struct{})
				go func() {
					defer s.Close()
					var b [4096]byte
					n, err := c.Read(b[:])
					close(spoke)
					if err != nil {
						return
					}
					if _, err := s.Write(b[:n]); err == nil {
						_, _ = io.Copy(s, c)
					}
				}()
				br := bufio.NewReader(s)
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, line)
				<-spoke // the client's handshake has started
				time.Sleep(hold)
				_, _ = io.Copy(c, br)
			})
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// proxied is srv's target reached through a delayedProxy holding hold,
// with the server's key known under the proxy's address.
func proxied(t *testing.T, srv *sshd.Server, name string, hold time.Duration) remote.Target {
	t.Helper()
	target := srv.Target(name)
	target.Port = delayedProxy(t, srv.HostPort(), hold)
	target.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(target.Port)))}, srv.HostPublicKey)
	if err := os.WriteFile(target.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return target
}

// The connect timeout is the network's: it covers the TCP connect and the
// server's first byte. A handshake that is slow after the server answered
// (here held for several connect timeouts) still completes within the
// handshake timeout.
func TestSSHSlowHandshakeAfterBannerIsNotCutByTheConnectTimeout(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	target := proxied(t, srv, "chat-a1", 1200*time.Millisecond)
	target.ConnectTimeout = 300 * time.Millisecond
	target.HandshakeTimeout = time.Minute
	r, err := remote.SSHDialer{}.Dial(t.Context(), target)
	if err != nil {
		t.Fatalf("Dial through a proxy that holds the handshake for 4x the connect timeout: %v\n(expected: connected; the connect timeout must end with the server's first byte)", err)
	}
	defer r.Close()
	res, err := r.Run(t.Context(), "echo ok")
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "ok" {
		t.Fatalf("Run = %q, %v", res.Stdout, err)
	}
}

// A server that answers, then does not finish the handshake within the
// handshake timeout, is reported slow (ErrSlowHandshake, Op handshake),
// never as a network failure; a listener that never sends its version line
// is ErrNoBanner.
func TestSSHSlowAndSilentServersAreTold(t *testing.T) {
	t.Parallel()
	stallPort, _ := stallAfterBanner(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	t.Cleanup(func() { silent.Close(); held.Wait() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held.Go(func() { _, _ = io.Copy(io.Discard, c); c.Close() })
		}
	}()
	srv := sshd.Start(t)
	for _, tc := range []struct {
		name string
		port int
		want error
	}{
		{"slow after its version line", stallPort, remote.ErrSlowHandshake},
		{"silent listener", silent.Addr().(*net.TCPAddr).Port, remote.ErrNoBanner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := srv.Target("chat-a2")
			target.Port = tc.port
			target.ConnectTimeout = 500 * time.Millisecond
			target.HandshakeTimeout = 500 * time.Millisecond
			r, err := remote.SSHDialer{Options: remote.Options{MaxHandshakes: -1}}.Dial(t.Context(), target)
			if err == nil {
				r.Close()
				t.Fatal("Dial succeeded")
			}
			var he *remote.HostError
			if !errors.As(err, &he) || he.Op != remote.OpHandshake || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v\nexpected: *HostError Op handshake wrapping %q", err, tc.want)
			}
		})
	}
}

// At most the limit's size of handshakes run at once; the others wait
// for a slot before their handshake (and its deadline) starts.
func TestSSHHandshakeLimitQueues(t *testing.T) {
	t.Parallel()
	portA, spokeA := stallAfterBanner(t)
	portB, spokeB := stallAfterBanner(t)
	srv := sshd.Start(t)
	limit := remote.NewHandshakeLimit(1)
	limit.Hold = -1 // A keeps its slot until it ends
	d := remote.SSHDialer{Limit: limit}
	target := func(port int) remote.Target {
		tg := srv.Target(fmt.Sprintf("h%d", port))
		tg.Port = port
		tg.HandshakeTimeout = 10 * time.Minute // only a cancel ends it
		return tg
	}
	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	errA := make(chan error, 1)
	go func() { _, err := d.Dial(ctxA, target(portA)); errA <- err }()
	select {
	case <-spokeA:
	case <-time.After(time.Minute):
		t.Fatal("handshake A never started")
	}
	errB := make(chan error, 1)
	ctxB, cancelB := context.WithCancel(t.Context())
	defer cancelB()
	go func() { _, err := d.Dial(ctxB, target(portB)); errB <- err }()
	// B has its server's answer and waits for the only slot, which A holds
	waitFor(t, "handshake B queued", func() bool { return limit.Queued() == 1 })
	select {
	case <-spokeB:
		t.Fatal("handshake B started while A held the only slot")
	default:
	}
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Errorf("A: %v, want cancelled", err)
	}
	select {
	case <-spokeB:
	case <-time.After(time.Minute):
		t.Fatal("handshake B never started after A freed the slot")
	}
	cancelB()
	<-errB
}

// A handshake that waits for its server gives up its slot after Hold: a
// host that stalls after its version line does not hold up the next host
// (its own handshake, with a 10-minute timeout, is still running).
func TestSSHStalledHandshakeGivesUpItsSlot(t *testing.T) {
	t.Parallel()
	stallPort, spoke := stallAfterBanner(t)
	srv := sshd.Start(t)
	limit := remote.NewHandshakeLimit(1)
	limit.Hold = 200 * time.Millisecond
	d := remote.SSHDialer{Limit: limit}
	stalled := srv.Target("stalled")
	stalled.Port = stallPort
	stalled.HandshakeTimeout = 10 * time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := d.Dial(ctx, stalled); errc <- err }()
	select {
	case <-spoke:
	case <-time.After(time.Minute):
		t.Fatal("the stalled handshake never started")
	}
	healthy := srv.Target("healthy")
	healthy.HandshakeTimeout = time.Minute
	hctx, hcancel := context.WithTimeout(t.Context(), time.Minute) // a guard on a hang, not a timing
	defer hcancel()
	r, err := d.Dial(hctx, healthy)
	if err != nil {
		t.Fatalf("a healthy host behind a stalled one: %v\n(expected: connected once the stalled handshake gave up its slot)", err)
	}
	r.Close()
	select {
	case err := <-errc:
		t.Fatalf("the stalled handshake ended (%v); it should still be running, so the slot was given up, not freed", err)
	default:
	}
	cancel()
	<-errc
}

// Many hosts dialed at once through a pool with a tiny handshake limit are
// all reachable: the connect timeout is not spent waiting for a slot. Each
// handshake here takes at least 300ms after the server's first byte (a
// proxy holds it), so the last of 8 through one slot gets its slot after
// 2.1s or more, past the 1s connect timeout.
func TestPoolManyHostsTinyHandshakeLimitAllReachable(t *testing.T) {
	t.Parallel()
	const n = 8
	servers := sshd.StartN(t, n)
	targets := map[string]remote.Target{}
	for i, s := range servers {
		tg := proxied(t, s, fmt.Sprintf("h%02d", i), 300*time.Millisecond)
		tg.ConnectTimeout = time.Second
		targets[tg.Name] = tg
	}
	limit := remote.NewHandshakeLimit(1)
	pool := remote.NewPoolWith(remote.NewDialer(remote.Options{}), targets, remote.PoolOptions{Handshakes: limit})
	defer pool.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for name := range targets {
		wg.Go(func() {
			if _, err := pool.Run(t.Context(), name, "true"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("expected every host reachable: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
