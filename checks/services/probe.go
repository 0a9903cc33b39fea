package services

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sitectl/sitectl/inventory"
)

// ProbeResult is the outcome of a health probe.
type ProbeResult struct {
	OK       bool          `json:"ok"`
	Known    bool          `json:"known"` // false when the probe could not give an answer
	Detail   string        `json:"detail"`
	Duration time.Duration `json:"duration_ns"`
}

// Prober runs a health probe. Injected so tests and the board can wrap it.
type Prober func(ctx context.Context, p *inventory.Probe) ProbeResult

// RunProbe performs a TCP or HTTP probe from this machine.
func RunProbe(ctx context.Context, p *inventory.Probe) ProbeResult {
	start := time.Now()
	timeout := p.Timeout.D()
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := probe(ctx, p)
	r.Duration = time.Since(start)
	return r
}

func probe(ctx context.Context, p *inventory.Probe) ProbeResult {
	switch {
	case p.TCP != "":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", p.TCP)
		if err != nil {
			// refused is a known "down"; a timeout is also reported down
			// (the port does not accept within the probe's deadline).
			return ProbeResult{Known: true, Detail: fmt.Sprintf("tcp %s: %v", p.TCP, shortErr(err))}
		}
		c.Close()
		return ProbeResult{OK: true, Known: true, Detail: "tcp " + p.TCP + " accepts"}
	case p.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.HTTP, nil)
		if err != nil {
			return ProbeResult{Detail: err.Error()}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ProbeResult{Known: true, Detail: fmt.Sprintf("GET %s: %v", p.HTTP, shortErr(err))}
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		want := p.Status
		if want == 0 {
			want = 200
		}
		if resp.StatusCode != want {
			return ProbeResult{Known: true, Detail: fmt.Sprintf("GET %s: status %d, expected %d", p.HTTP, resp.StatusCode, want)}
		}
		if p.JSONField != "" {
			got, err := jsonField(body, p.JSONField)
			if err != nil {
				return ProbeResult{Known: true, Detail: fmt.Sprintf("GET %s: %v", p.HTTP, err)}
			}
			if got != p.JSONValue {
				return ProbeResult{Known: true, Detail: fmt.Sprintf("GET %s: %s is %q, expected %q", p.HTTP, p.JSONField, got, p.JSONValue)}
			}
		}
		return ProbeResult{OK: true, Known: true, Detail: fmt.Sprintf("GET %s: %d", p.HTTP, resp.StatusCode)}
	}
	return ProbeResult{Detail: "probe has neither tcp nor http"}
}

// jsonField reads a dotted path ("status", "health.db") from a JSON body and
// returns its value in string form.
func jsonField(body []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("body is not JSON: %v", err)
	}
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%s: not an object at %q", path, part)
		}
		v, ok = m[part]
		if !ok {
			return "", fmt.Errorf("%s: field %q missing", path, part)
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case nil:
		return "null", nil
	default:
		b, _ := json.Marshal(x)
		return string(b), nil
	}
}

func shortErr(err error) string {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "timed out"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial") {
		return s[i+2:]
	}
	return s
}
