package haproxy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Admin states for SetState.
const (
	Ready = "ready" // back into load balancing (enable server)
	Drain = "drain" // no new traffic; existing and persistent sessions continue; still checked
	Maint = "maint" // no traffic, no checks (disable server)
)

// SetStateCommand is the runtime-API command SetState sends.
func SetStateCommand(backend, server, state string) string {
	return "set server " + Arg(backend) + "/" + Arg(server) + " state " + Arg(state)
}

// SetState runs "set server <backend>/<server> state <state>". Success is an
// empty reply; any text is an *Error carrying it ("No such server.",
// "No such backend.", "Permission denied", "'set server <srv> state'
// expects 'ready', 'drain' and 'maint'."). The state is not checked here so
// HAProxy's own answer reaches the caller.
func (c *Client) SetState(ctx context.Context, backend, server, state string) error {
	cmd := SetStateCommand(backend, server, state)
	if err := c.needNames(cmd, backend, server, state); err != nil {
		return err
	}
	return c.Silent(ctx, cmd)
}

// Drain outcomes.
const (
	DrainDone     = "done"     // every server reached zero sessions (and zero queued)
	DrainTimedOut = "timeout"  // the deadline passed with sessions left on some server
	DrainUnknown  = "unknown"  // the deadline passed and some server's sessions were never read
	DrainCanceled = "canceled" // the context ended first
	DrainFailed   = "failed"   // "set … state drain" failed; nothing was waited for
)

// Drain errors, for errors.Is.
var (
	ErrDrainTimeout = errors.New("sessions remain after the drain deadline")
	ErrDrainUnknown = errors.New("sessions unknown at the drain deadline")
)

// DrainServer is one server's sessions at the last successful poll.
type DrainServer struct {
	Name     string
	Sessions int64  // scur; -1 when never read (missing from the stats, stats unreadable)
	Queued   int64  // qcur; -1 when unknown
	Status   string // status column at that poll
}

// DrainResult reports a Drain.
type DrainResult struct {
	Backend string
	Outcome string // DrainDone, DrainTimedOut, DrainUnknown, DrainCanceled, DrainFailed
	Servers []DrainServer
	Polls   int           // polls that returned stats
	Elapsed time.Duration // from the first "set … drain" to the end
	LastErr error         // the last failed poll, if any
}

// Done reports that every server reached zero sessions.
func (r DrainResult) Done() bool { return r.Outcome == DrainDone }

// Remaining lists the servers not drained: sessions (+ queued) > 0, or -1
// when unknown.
func (r DrainResult) Remaining() map[string]int64 {
	m := map[string]int64{}
	for _, s := range r.Servers {
		switch {
		case s.Sessions < 0:
			m[s.Name] = -1
		case s.Sessions+max(s.Queued, 0) > 0:
			m[s.Name] = s.Sessions + max(s.Queued, 0)
		}
	}
	return m
}

func (r DrainResult) summary() string {
	var parts []string
	for _, s := range r.Servers {
		switch {
		case s.Sessions < 0:
			parts = append(parts, s.Name+": unknown")
		case s.Sessions+max(s.Queued, 0) > 0:
			p := fmt.Sprintf("%s: %d sessions", s.Name, s.Sessions)
			if s.Queued > 0 {
				p += fmt.Sprintf(" + %d queued", s.Queued)
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// Drain puts every server of backend into drain (no new sessions), then
// polls "show stat <backend> 4 -1" every poll (default 500ms) until each
// server's current sessions (scur) and queued requests (qcur) are zero, or
// the deadline passes (the context's deadline when deadline is zero; one of
// them is required). Polls that fail are retried until the deadline.
//
// The error is nil only for DrainDone. It wraps ErrDrainTimeout when some
// server still had sessions at its last poll, ErrDrainUnknown when some
// server's sessions were never read, the context's error when it ended
// first, and the SetState error when a server could not be put into drain
// (servers already put into drain stay so; the error names them).
func (c *Client) Drain(ctx context.Context, backend string, servers []string, deadline time.Time, poll time.Duration) (DrainResult, error) {
	res := DrainResult{Backend: backend}
	start := time.Now()
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if deadline.IsZero() {
		res.Outcome = DrainFailed
		return res, errors.New("haproxy drain: no deadline (give one, or a context with a deadline)")
	}
	if len(servers) == 0 {
		res.Outcome = DrainFailed
		return res, errors.New("haproxy drain: no servers")
	}
	for _, s := range servers {
		res.Servers = append(res.Servers, DrainServer{Name: s, Sessions: -1, Queued: -1})
	}
	var drained []string
	for _, s := range servers {
		if err := c.SetState(ctx, backend, s, Drain); err != nil {
			res.Outcome, res.Elapsed = DrainFailed, time.Since(start)
			if len(drained) > 0 {
				err = fmt.Errorf("%w (already draining: %s)", err, strings.Join(drained, ", "))
			}
			return res, err
		}
		drained = append(drained, backend+"/"+s)
	}

	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		rows, err := c.ShowStatBackend(pctx, backend)
		if err != nil && !IsPartial(err) {
			res.LastErr = err
		} else {
			res.Polls++
			if err != nil {
				res.LastErr = err
			}
			done := true
			for i := range res.Servers {
				s := &res.Servers[i]
				s.Sessions, s.Queued, s.Status = -1, -1, ""
				for _, r := range rows {
					if r.Proxy == backend && r.Name == s.Name && r.IsServer() {
						s.Sessions, s.Queued, s.Status = r.Scur, r.Qcur, r.Status.Raw
					}
				}
				if s.Sessions != 0 || s.Queued > 0 {
					done = false
				}
			}
			if done {
				res.Outcome, res.Elapsed = DrainDone, time.Since(start)
				return res, nil
			}
		}
		wait := time.NewTimer(poll)
		select {
		case <-pctx.Done():
			wait.Stop()
			res.Elapsed = time.Since(start)
			if errors.Is(ctx.Err(), context.Canceled) {
				res.Outcome = DrainCanceled
				return res, fmt.Errorf("haproxy drain of %s: %w (%s)", backend, ctx.Err(), res.summary())
			}
			return res, res.deadlineErr()
		case <-wait.C:
		}
	}
}

func (r *DrainResult) deadlineErr() error {
	known := false
	for _, s := range r.Servers {
		if s.Sessions > 0 || s.Queued > 0 {
			known = true
		}
	}
	if known {
		r.Outcome = DrainTimedOut
		return fmt.Errorf("haproxy drain of %s: %w after %s: %s", r.Backend, ErrDrainTimeout, r.Elapsed.Round(time.Millisecond), r.summary())
	}
	r.Outcome = DrainUnknown
	if r.LastErr != nil {
		return fmt.Errorf("haproxy drain of %s: %w after %s: %s; last poll: %w", r.Backend, ErrDrainUnknown, r.Elapsed.Round(time.Millisecond), r.summary(), r.LastErr)
	}
	return fmt.Errorf("haproxy drain of %s: %w after %s: %s (not in the stats)", r.Backend, ErrDrainUnknown, r.Elapsed.Round(time.Millisecond), r.summary())
}

// ServerTraffic says whether one server takes new traffic.
type ServerTraffic struct {
	Name     string
	Backup   bool
	Status   Status
	Weight   int64 // -1 unknown
	Sessions int64 // scur; -1 unknown
	Usable   bool  // operational for load balancing: UP (incl. "UP n/m") or "no check", weight not 0
	Serving  bool  // takes new traffic now
	Why      string
}

// BackendTraffic is which servers of a backend take new traffic.
type BackendTraffic struct {
	Backend  string
	Found    bool   // the backend has server rows in the stats
	Status   Status // the BACKEND row's status (zero when absent)
	Servers  []ServerTraffic
	Serving  []string // names of the serving servers
	OnBackup bool     // no active server is usable; backups serve
	Notes    []string
}

// Traffic decides which servers of backend take new traffic, from its stat
// rows: active servers that are usable (UP, "UP n/m", "no check"; not DRAIN,
// NOLB, MAINT, DOWN; not weight 0); when none is, the usable backup servers.
// HAProxy sends to the first usable backup only unless "option allbackups"
// is set; the stats do not show that option, so every usable backup is
// reported serving and a note names the first one.
func Traffic(rows []StatRow, backend string) BackendTraffic {
	bt := BackendTraffic{Backend: backend}
	var srv []StatRow
	for _, r := range rows {
		if r.Proxy != backend {
			continue
		}
		switch r.Type {
		case TypeBackend:
			bt.Status = r.Status
		case TypeServer:
			srv = append(srv, r)
		}
	}
	// HAProxy's "first backup" is the first in configuration order (sid).
	sort.SliceStable(srv, func(i, j int) bool {
		if srv[i].SID >= 0 && srv[j].SID >= 0 {
			return srv[i].SID < srv[j].SID
		}
		return false
	})
	bt.Found = len(srv) > 0
	activeUp := false
	for _, r := range srv {
		st := ServerTraffic{Name: r.Name, Backup: r.Backup(), Status: r.Status, Weight: r.Weight, Sessions: r.Scur}
		st.Usable = r.Status.Up() && r.Weight != 0
		if st.Usable && !st.Backup {
			activeUp = true
		}
		bt.Servers = append(bt.Servers, st)
	}
	var backups []string
	for i := range bt.Servers {
		s := &bt.Servers[i]
		role := "active"
		if s.Backup {
			role = "backup"
		}
		switch {
		case s.Usable && !s.Backup:
			s.Serving, s.Why = true, "active and up: takes new traffic"
		case s.Usable && activeUp:
			s.Why = "backup, idle while an active server is up"
		case s.Usable:
			s.Serving, s.Why = true, "backup serving: no active server is up"
			backups = append(backups, s.Name)
		case s.Status.State == StateDrain:
			s.Why = role + " draining: no new traffic (persistent sessions still reach it)"
		case s.Status.Up() && s.Weight == 0:
			s.Why = role + " with weight 0: no new traffic"
		case s.Status.State == StateNoLB:
			s.Why = role + " NOLB: no new traffic"
		case s.Status.State == StateMaint:
			s.Why = role + " in maintenance: no traffic"
		case s.Status.State == StateDown:
			s.Why = role + " down: fails its health checks"
		default:
			s.Why = fmt.Sprintf("%s with unrecognised status %q: counted as not serving", role, s.Status.Raw)
		}
		if s.Serving {
			bt.Serving = append(bt.Serving, s.Name)
		}
		if s.Status.Up() && s.Status.Transitional() {
			bt.Notes = append(bt.Notes, fmt.Sprintf("%s is failing health checks (%s): it may go DOWN", s.Name, s.Status.Raw))
		}
	}
	if !activeUp && len(backups) > 0 {
		bt.OnBackup = true
		bt.Notes = append(bt.Notes, "running on backup: no active server is up")
		if len(backups) > 1 {
			bt.Notes = append(bt.Notes, fmt.Sprintf("without option allbackups only the first backup (%s) gets new traffic", backups[0]))
		}
	}
	return bt
}
