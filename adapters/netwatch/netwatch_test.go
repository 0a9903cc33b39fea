package netwatch

import (
	"context"
	"errors"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"net"
	"strings"
	"testing"
	"time"
)

func closedAddr(t *testing.T) string {
	t.Helper()
	return closedport.Addr(t)
}

func TestDeadUntilItAnswersAgain(t *testing.T) {
	w := New()
	defer w.Close()
	addr := closedAddr(t)
	if err := w.Check(addr); err != nil {
		t.Fatalf("unknown endpoint: %v, want nil (dial it)", err)
	}
	_, err := net.DialTimeout("tcp", addr, time.Second)
	if !IsNetwork(err) {
		t.Fatalf("dial of a closed port: %v is not a network failure", err)
	}
	w.Failed(addr, time.Second, err)
	var de *DeadError
	if err := w.Check(addr); !errors.As(err, &de) || de.Addr != addr || de.Attempts < 1 || !IsNetwork(err) {
		t.Fatalf("after a failure: %v", err)
	}
	if !strings.Contains(de.Error(), "probed again in the background") {
		t.Errorf("message: %s", de)
	}
	// the background probe keeps failing and counting
	time.Sleep(3 * Pause)
	if err := w.Check(addr); !errors.As(err, &de) || de.Attempts < 2 {
		t.Errorf("the probe did not count its attempts: %v", err)
	}
	// the endpoint comes back: the probe clears it
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer l.Close()
	deadline := time.Now().Add(3 * time.Second)
	for w.Check(addr) != nil {
		if time.Now().After(deadline) {
			t.Fatal("an endpoint that answers again is still reported dead")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSucceededClearsAndCloseStopsProbes(t *testing.T) {
	w := New()
	addr := closedAddr(t)
	w.Failed(addr, time.Second, errors.New("refused"))
	w.Succeeded(addr)
	if err := w.Check(addr); err != nil {
		t.Errorf("after a successful real attempt: %v", err)
	}
	w.Failed(addr, time.Second, errors.New("refused"))
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not stop the background probe")
	}
	w.Failed("127.0.0.1:1", time.Second, errors.New("x")) // after Close: ignored
	if err := w.Check("127.0.0.1:1"); err != nil {
		t.Errorf("Failed after Close recorded %v", err)
	}
}

func TestNilWatchAndContext(t *testing.T) {
	var w *Watch
	w.Failed("x:1", time.Second, errors.New("x"))
	w.Succeeded("x:1")
	w.Close()
	if err := w.Check("x:1"); err != nil {
		t.Errorf("nil watch: %v", err)
	}
	if FromContext(context.Background()) != nil {
		t.Error("a watch in an empty context")
	}
	real := New()
	defer real.Close()
	if FromContext(NewContext(context.Background(), real)) != real {
		t.Error("the context does not carry the watch")
	}
}

func TestIsNetwork(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{&net.OpError{Op: "read", Err: errors.New("reset")}, false},
		{&DeadError{Addr: "a:1"}, true},
		{errors.New("auth failed"), false},
		{context.DeadlineExceeded, true}, // a net.Error whose Timeout() is true
	}
	for _, c := range cases {
		if got := IsNetwork(c.err); got != c.want {
			t.Errorf("IsNetwork(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// DialContext is the one place that decides: a known-dead address fails at
// once, a refused dial marks it (a refusal, not a timeout), a cancelled one
// does not, a live address dials as usual.
func TestDialContext(t *testing.T) {
	var d net.Dialer
	addr := closedAddr(t)
	if _, err := DialContext(context.Background(), &d, addr, time.Second); err == nil || errors.As(err, new(*DeadError)) {
		t.Fatalf("without a watch: %v, want the plain dial error", err)
	}
	w := New()
	defer w.Close()
	ctx := NewContext(context.Background(), w)
	if _, err := DialContext(ctx, &d, addr, time.Second); err == nil || errors.As(err, new(*DeadError)) {
		t.Fatalf("first dial: %v, want the real error", err)
	}
	_, err := DialContext(ctx, &d, addr, time.Second)
	var de *DeadError
	if !errors.As(err, &de) {
		t.Fatalf("second dial: %v, want *DeadError", err)
	}
	if de.Timeout() {
		t.Error("a refused address reads as a timeout")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	other := closedAddr(t)
	_, _ = DialContext(cancelled, &d, other, time.Second)
	if err := w.Check(other); err != nil {
		t.Errorf("a cancelled dial marked the address: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := l.Addr().String()
	c, err := DialContext(ctx, &d, live, time.Second)
	if err != nil {
		t.Fatalf("live address: %v", err)
	}
	c.Close()
	if err := w.Check(live); err != nil {
		t.Errorf("after a connection: %v", err)
	}
}
