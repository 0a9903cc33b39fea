package remote_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/internal/testenv/sshd"
)

// countingDialer counts dials per host and can slow them down.
type countingDialer struct {
	next  remote.Dialer
	delay time.Duration
	mu    sync.Mutex
	dials map[string]int
}

func (d *countingDialer) Dial(ctx context.Context, t remote.Target) (remote.Runner, error) {
	d.mu.Lock()
	if d.dials == nil {
		d.dials = map[string]int{}
	}
	d.dials[t.Name]++
	d.mu.Unlock()
	time.Sleep(d.delay)
	return d.next.Dial(ctx, t)
}

func (d *countingDialer) count(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[host]
}

func TestPoolDialsOncePerHost(t *testing.T) {
	t.Parallel()
	servers := sshd.StartN(t, 3)
	targets := map[string]remote.Target{"ops-1": {Name: "ops-1", Local: true}}
	for i, s := range servers {
		name := []string{"web-a1", "web-b1", "mongo-a1"}[i]
		targets[name] = s.Target(name)
	}
	d := &countingDialer{next: remote.NewDialer(remote.Options{}), delay: 100 * time.Millisecond}
	p := remote.NewPool(d, targets)
	defer p.Close()

	var wg sync.WaitGroup
	for i := range 60 {
		host := []string{"web-a1", "web-b1", "mongo-a1", "ops-1"}[i%4]
		wg.Go(func() {
			res, err := p.Run(t.Context(), host, "echo "+host)
			if err != nil || string(res.Stdout) != host+"\n" {
				t.Errorf("%s: %+v %v", host, res, err)
			}
		})
	}
	wg.Wait()
	for host := range targets {
		if n := d.count(host); n != 1 {
			t.Errorf("%s dialed %d times, want 1", host, n)
		}
	}
	// The runner Get hands out belongs to the pool: closing it is a no-op.
	r, err := p.Get(t.Context(), "web-a1")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := p.Run(t.Context(), "web-a1", "true"); err != nil || d.count("web-a1") != 1 {
		t.Errorf("after closing a pooled runner: %v, dials %d", err, d.count("web-a1"))
	}
}

func TestPoolRedialsDeadConnection(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	d := &countingDialer{next: remote.NewDialer(remote.Options{})}
	p := remote.NewPool(d, map[string]remote.Target{"web-a1": srv.Target("web-a1")})
	defer p.Close()
	if _, err := p.Run(t.Context(), "web-a1", "true"); err != nil {
		t.Fatal(err)
	}
	srv.DropConnections()
	res, err := p.Run(t.Context(), "web-a1", "echo again")
	if err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("Run after the connection dropped: %+v %v", res, err)
	}
	if n := d.count("web-a1"); n != 2 {
		t.Errorf("dials = %d, want 2", n)
	}
}

func TestPoolDoesNotRetryACommandThatMayHaveRun(t *testing.T) {
	t.Parallel()
	srv := sshd.Start(t)
	d := &countingDialer{next: remote.NewDialer(remote.Options{})}
	p := remote.NewPool(d, map[string]remote.Target{"web-a1": srv.Target("web-a1")})
	defer p.Close()
	time.AfterFunc(500*time.Millisecond, srv.DropConnections)
	_, err := p.Run(t.Context(), "web-a1", "sleep 30")
	if !errors.Is(err, remote.ErrConnLost) {
		t.Fatalf("err = %v, want ErrConnLost", err)
	}
	if n := d.count("web-a1"); n != 1 {
		t.Errorf("dials = %d, want 1 (no retry)", n)
	}
	// The next command gets a fresh connection.
	if _, err := p.Run(t.Context(), "web-a1", "true"); err != nil {
		t.Fatal(err)
	}
	if n := d.count("web-a1"); n != 2 {
		t.Errorf("dials = %d, want 2", n)
	}
}

// fakeRunner is a Runner whose liveness the test controls.
type fakeRunner struct {
	dead   atomic.Bool
	closed atomic.Bool
}

func (f *fakeRunner) Run(ctx context.Context, cmd string) (remote.Result, error) {
	if f.dead.Load() {
		return remote.Result{Command: cmd}, &remote.HostError{Op: remote.OpRun, Err: remote.ErrNotStarted}
	}
	return remote.Result{Command: cmd, Stdout: []byte("ok")}, nil
}
func (f *fakeRunner) Close() error { f.closed.Store(true); return nil }
func (f *fakeRunner) Alive() bool  { return !f.dead.Load() }

func TestPoolFailures(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var runners []*fakeRunner
	var mu sync.Mutex
	release := make(chan struct{})
	d := remote.DialerFunc(func(ctx context.Context, tg remote.Target) (remote.Runner, error) {
		calls.Add(1)
		switch tg.Name {
		case "down":
			time.Sleep(50 * time.Millisecond)
			return nil, &remote.HostError{Host: tg.Name, Op: remote.OpDial, Err: errors.New("connection refused")}
		case "slow":
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		r := &fakeRunner{}
		mu.Lock()
		runners = append(runners, r)
		mu.Unlock()
		return r, nil
	})
	p := remote.NewPool(d, map[string]remote.Target{"down": {Name: "down"}, "up": {Name: "up"}, "slow": {Name: "slow"}})

	t.Run("unknown host", func(t *testing.T) {
		_, err := p.Get(t.Context(), "nope")
		if !errors.Is(err, remote.ErrUnknownHost) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("concurrent callers share a failed dial, which is not cached", func(t *testing.T) {
		before := calls.Load()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := p.Get(t.Context(), "down"); err == nil || !contains(err, "connection refused") {
					t.Errorf("err = %v", err)
				}
			})
		}
		wg.Wait()
		if n := calls.Load() - before; n < 1 || n > 2 {
			t.Errorf("%d dials for 10 concurrent Gets", n)
		}
		before = calls.Load()
		_, _ = p.Get(t.Context(), "down")
		if calls.Load() != before+1 {
			t.Errorf("a failed dial was cached")
		}
	})
	t.Run("a waiter's ctx ends its wait, not the dial", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := p.Get(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v", err)
		}
		close(release)
		if _, err := p.Get(t.Context(), "slow"); err != nil {
			t.Errorf("the shared dial was aborted: %v", err)
		}
	})
	t.Run("dead runner is redialed once by Run", func(t *testing.T) {
		r1, err := p.Get(t.Context(), "up")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r1.Run(t.Context(), "x"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		first := runners[len(runners)-1]
		mu.Unlock()
		first.dead.Store(true)
		before := calls.Load()
		res, err := p.Run(t.Context(), "up", "x")
		if err != nil || string(res.Stdout) != "ok" {
			t.Fatalf("%+v %v", res, err)
		}
		if calls.Load() != before+1 || !first.closed.Load() {
			t.Errorf("dials %d, old runner closed %v", calls.Load()-before, first.closed.Load())
		}
	})
	t.Run("close", func(t *testing.T) {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range runners {
			if !r.closed.Load() {
				t.Errorf("runner left open")
			}
		}
		if _, err := p.Get(t.Context(), "up"); !errors.Is(err, remote.ErrPoolClosed) {
			t.Errorf("Get after Close: %v", err)
		}
	})
}

func contains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
