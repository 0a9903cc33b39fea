// Package webhook posts a JSON body to an HTTP receiver (a Slack or Teams
// incoming webhook, or any HTTP endpoint), retrying with a doubling
// backoff within one deadline. It knows nothing of sitectl above it.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Sleeper waits d or until ctx is done; tests inject one that does not
// sleep.
type Sleeper func(ctx context.Context, d time.Duration) error

// Sleep waits on the wall clock.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request is one delivery.
type Request struct {
	URL     string
	Body    []byte
	Header  http.Header
	Timeout time.Duration // per attempt
	// Attempts is how many times it is tried at most (at least 1);
	// Backoff the wait before the second, doubled before each next one.
	Attempts int
	Backoff  time.Duration
	// Deadline bounds every attempt and wait together.
	Deadline time.Duration
}

// Result says how a delivery went. Err is nil once the receiver answered
// with a 2xx status.
type Result struct {
	Attempts int
	Status   int // the last HTTP status (0: no answer)
	Err      error
	Took     time.Duration
}

// Client posts requests.
type Client struct {
	HTTP  *http.Client // nil: a client without a global timeout (each attempt has its own)
	Sleep Sleeper      // nil: Sleep
	Now   func() time.Time
}

// Post delivers r: a 2xx answer ends it; a network error, a timeout, a 429
// or a 5xx is retried after the backoff while attempts and the deadline
// last; any other status (a 4xx: the URL or header is wrong) is not
// retried. The error never holds the URL (a webhook URL is a credential).
func (c *Client) Post(ctx context.Context, r Request) Result {
	hc, sleep, now := c.HTTP, c.Sleep, c.Now
	if hc == nil {
		hc = &http.Client{}
	}
	if sleep == nil {
		sleep = Sleep
	}
	if now == nil {
		now = time.Now
	}
	if r.Attempts < 1 {
		r.Attempts = 1
	}
	start := now()
	if r.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Deadline)
		defer cancel()
	}
	var res Result
	wait := r.Backoff
	for {
		res.Attempts++
		status, retry, err := c.once(ctx, hc, r)
		res.Status, res.Err = status, err
		if err == nil || !retry || res.Attempts >= r.Attempts {
			break
		}
		if serr := sleep(ctx, wait); serr != nil {
			res.Err = fmt.Errorf("%w; gave up at the deadline (%s) after %d attempts", err, r.Deadline, res.Attempts)
			break
		}
		wait *= 2
	}
	res.Took = now().Sub(start)
	return res
}

// once is one attempt: the status, whether a failure may be retried, and
// the failure.
func (c *Client) once(ctx context.Context, hc *http.Client, r Request) (int, bool, error) {
	actx := ctx
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, false, errors.New("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) { // *url.Error: drop the URL, keep the cause
			err = ue.Unwrap()
		}
		if errors.Is(err, context.DeadlineExceeded) || actx.Err() != nil {
			return 0, ctx.Err() == nil, fmt.Errorf("no answer within %s", r.Timeout)
		}
		return 0, ctx.Err() == nil, fmt.Errorf("post: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, false, nil
	}
	retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if b := bytes.TrimSpace(body); len(b) > 0 {
		msg += ": " + string(b)
	}
	return resp.StatusCode, retry, errors.New(msg)
}
