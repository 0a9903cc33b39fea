package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordSleep is a Sleeper that records the waits and does not sleep.
type recordSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *recordSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestPostDelivers(t *testing.T) {
	var got []byte
	var hdr, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		hdr, ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
	}))
	defer srv.Close()
	s := &recordSleep{}
	c := &Client{Sleep: s.sleep}
	res := c.Post(context.Background(), Request{URL: srv.URL, Body: []byte(`{"text":"hi"}`), Header: http.Header{"Authorization": {"Bearer t0k"}}, Attempts: 3, Backoff: time.Second})
	if res.Err != nil || res.Attempts != 1 || res.Status != 200 {
		t.Fatalf("expected delivered at the first attempt, got %+v", res)
	}
	if string(got) != `{"text":"hi"}` || hdr != "Bearer t0k" || ctype != "application/json" {
		t.Errorf("receiver got body %q, Authorization %q, Content-Type %q", got, hdr, ctype)
	}
	if len(s.waits) != 0 {
		t.Errorf("slept %v before a first delivery", s.waits)
	}
}

func TestPostRetries500WithBackoff(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	}))
	defer srv.Close()
	s := &recordSleep{}
	c := &Client{Sleep: s.sleep}
	res := c.Post(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`), Attempts: 3, Backoff: time.Second, Deadline: time.Minute})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "HTTP 500: receiver broken") {
		t.Fatalf("expected the 500 as the error, got %+v", res)
	}
	if res.Attempts != 3 || n.Load() != 3 || res.Status != 500 {
		t.Errorf("expected 3 attempts seen by the receiver, got %d (receiver %d)", res.Attempts, n.Load())
	}
	if len(s.waits) != 2 || s.waits[0] != time.Second || s.waits[1] != 2*time.Second {
		t.Errorf("expected backoff waits [1s 2s], got %v", s.waits)
	}
	if strings.Contains(res.Err.Error(), srv.URL) {
		t.Errorf("the error holds the URL: %v", res.Err)
	}
}

func TestPostRecoversAfter500(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := &Client{Sleep: (&recordSleep{}).sleep}
	res := c.Post(context.Background(), Request{URL: srv.URL, Attempts: 4, Backoff: time.Second})
	if res.Err != nil || res.Attempts != 2 {
		t.Fatalf("expected delivered at the second attempt, got %+v", res)
	}
}

func TestPost4xxIsNotRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "invalid_token", http.StatusForbidden)
	}))
	defer srv.Close()
	c := &Client{Sleep: (&recordSleep{}).sleep}
	res := c.Post(context.Background(), Request{URL: srv.URL, Attempts: 4})
	if res.Err == nil || res.Attempts != 1 || n.Load() != 1 || res.Status != 403 {
		t.Fatalf("expected one attempt ending in 403, got %+v (receiver %d)", res, n.Load())
	}
}

// TestPostTimesOut: a receiver that never answers; each attempt gives up
// at its own timeout and the delivery fails after its attempts.
func TestPostTimesOut(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &Client{Sleep: (&recordSleep{}).sleep}
	res := c.Post(context.Background(), Request{URL: srv.URL, Attempts: 2, Timeout: 100 * time.Millisecond, Deadline: time.Minute})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "no answer within 100ms") {
		t.Fatalf("expected no answer, got %+v", res)
	}
	if res.Attempts != 2 {
		t.Errorf("expected 2 attempts, got %d", res.Attempts)
	}
}

// TestPostDeadlineStopsRetries: the deadline ends the retries even when
// attempts remain.
func TestPostDeadlineStopsRetries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	sleeps := 0
	c := &Client{Sleep: func(ctx context.Context, d time.Duration) error {
		sleeps++
		cancel() // the deadline passes during the first wait
		return context.DeadlineExceeded
	}}
	res := c.Post(ctx, Request{URL: srv.URL, Attempts: 10, Backoff: time.Second, Deadline: 5 * time.Second})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "gave up at the deadline") || res.Attempts != 1 || sleeps != 1 {
		t.Fatalf("expected to give up at the deadline after 1 attempt, got %+v", res)
	}
}
