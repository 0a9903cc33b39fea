package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/sitectl/sitectl/checks/services"
)

// Refresher takes one bounded snapshot of a deployment: the refresh of
// `sitectl board` and of `sitectl exporter` (one machinery for both). What
// has not answered by Timeout is reported as not answering by the
// observers themselves; a snapshot not handed in by Timeout+Grace makes
// the whole refresh fail.
type Refresher struct {
	Observe func(ctx context.Context) Snapshot
	Timeout time.Duration
	Grace   time.Duration
	Now     func() time.Time // stamps At (time.Now when nil)
}

// Refresh is one refresh's result.
type Refresh struct {
	Snap Snapshot
	Err  error // the refresh failed: no snapshot
	At   time.Time
	Took time.Duration // wall-clock time the refresh took
}

// MinRefreshTimeout is the shortest default deadline of one refresh: an
// SSH command on a live host can take a second when the operator's
// machine is busy, and a refresh cut shorter than that would show live
// hosts as not answering on every refresh. With an interval under 1.67s a
// refresh may therefore outlast the interval; the next one then starts at
// once.
const MinRefreshTimeout = 1500 * time.Millisecond

// RefreshDefaults are the board's and the exporter's: a refresh gets 9/10
// of the interval (the rest leaves room to draw), never under
// MinRefreshTimeout, and one second of grace.
func RefreshDefaults(interval time.Duration) (timeout, grace time.Duration) {
	return max(interval*9/10, MinRefreshTimeout), time.Second
}

// Once takes one snapshot within the deadline.
func (r Refresher) Once(parent context.Context) Refresh {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithTimeout(parent, r.Timeout)
	defer cancel()
	start := time.Now()
	ch := make(chan Snapshot, 1)
	go func() { ch <- r.Observe(ctx) }()
	t := time.NewTimer(r.Timeout + r.Grace)
	defer t.Stop()
	select {
	case s := <-ch:
		return Refresh{Snap: s, At: now(), Took: time.Since(start)}
	case <-t.C:
		return Refresh{Err: fmt.Errorf("refresh did not finish within %s", r.Timeout+r.Grace), At: now(), Took: time.Since(start)}
	case <-parent.Done():
		return Refresh{Err: parent.Err(), At: now(), Took: time.Since(start)}
	}
}

// NextRefresh is the wait before the next refresh: one interval after the
// start of the last one (at once if that took longer), so a slow refresh
// does not push every later one back.
func NextRefresh(interval, took time.Duration) time.Duration {
	return max(interval-took, 0)
}

// SinceEntry is when a service was first seen in its current state.
// Initial: it was already in that state at the first observation, so it
// has been so at least since then.
type SinceEntry struct {
	State   services.State
	At      time.Time
	Initial bool
}

// Since tracks, per site/host/service, since when each service has been in
// its state, across refreshes.
type Since map[string]SinceEntry

// SinceKey is the key of a service in Since.
func SinceKey(site, host, service string) string { return site + "/" + host + "/" + service }

// Update records the services of snap observed at at; a host that did not
// answer keeps its services' entries.
func (s Since) Update(snap Snapshot, at time.Time) {
	for _, st := range snap.Sites {
		for _, h := range st.Hosts {
			if !h.Reachable {
				continue
			}
			for _, svc := range h.Services {
				k := SinceKey(st.Site, h.Host, svc.Service)
				e, seen := s[k]
				switch {
				case !seen:
					s[k] = SinceEntry{State: svc.State, At: at, Initial: true}
				case e.State != svc.State:
					s[k] = SinceEntry{State: svc.State, At: at}
				}
			}
		}
	}
}
