package cmdutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sitectl/sitectl/adapters/remote"
	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
	"github.com/sitectl/sitectl/runbooks/runlock"
)

// LockHost is the host that keeps the remote copy of the lock for site: the
// site's first host ("" when the site has none).
func LockHost(inv *inventory.Inventory, site string) string {
	s := inv.Site(site)
	if s == nil || len(s.Hosts) == 0 {
		return ""
	}
	return s.Hosts[0].Name
}

// LockHosts are the hosts that keep a copy of the deployment's run lock,
// in the fixed order every run takes them: each site's first host, then
// the witness's first host when sitectl reaches it anyway (it is a prober:
// failover.probers, by default).
func LockHosts(inv *inventory.Inventory) []string {
	var out []string
	for _, s := range inv.Sites {
		if h := LockHost(inv, s.Name); h != "" {
			out = append(out, h)
		}
	}
	if inv.Witness != nil && len(inv.Witness.Hosts) > 0 {
		w := inv.Witness.Hosts[0].Name
		for _, s := range inv.Sites {
			if slices.ContainsFunc(inv.ProbersOf(s.Name), func(h *inventory.Host) bool { return h.Name == w }) {
				return append(out, w)
			}
		}
	}
	return out
}

func holder(f *Factory, runID string) runlock.Holder {
	h := runlock.NewHolder(runID, "sitectl "+strings.Join(f.Args, " "))
	h.Since = f.Now().UTC()
	return h
}

// AcquireLock takes the deployment's run lock: locally, then a copy on
// every lock host (LockHosts) in order, all or nothing, so that two
// operators on two machines cannot move the deployment at once, whichever
// site each targets. A lock host that cannot be reached at the network
// level (its site may be lost) is not waited for: it is returned in missed,
// and the run decides once it has observed whether it may go on without it
// (a disaster takeover of the other site only). A resumed run takes over the
// lock its predecessor left behind when that process is gone.
func AcquireLock(ctx context.Context, f *Factory, inv *inventory.Inventory, pool *remote.Pool, runID, resumeOf string) (func() error, []runbooks.LockMiss, error) {
	dir, err := f.StateDir()
	if err != nil {
		return nil, nil, err
	}
	hosts := LockHosts(inv)
	runners := make([]remote.Runner, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts { // connect to every lock host at once
		wg.Go(func() { runners[i], errs[i] = pool.Get(ctx, h) })
	}
	wg.Wait()
	l := &runlock.Lock{Dir: dir, Deployment: inv.Deployment, Holder: holder(f, runID)}
	var missed []runbooks.LockMiss
	for i, h := range hosts {
		if errs[i] != nil {
			site := ""
			if hh := inv.Host(h); hh != nil {
				site = hh.Site
			}
			switch checks.Reach(errs[i]) {
			case checks.SawDown:
			case checks.SawAccess:
				return nil, nil, fmt.Errorf("access problem on lock host %s (site %s), not a loss: the site is UNKNOWN until it is fixed; fix it, then re-run: %w", h, site, errs[i])
			default:
				return nil, nil, fmt.Errorf("lock host %s (site %s) answers the network but not in time (not a loss); re-run when it answers: %w", h, site, errs[i])
			}
			missed = append(missed, runbooks.LockMiss{Host: h, Site: site, Err: errs[i]})
			continue
		}
		l.Remotes = append(l.Remotes, &runlock.Remote{Runner: runners[i], Host: h, Path: inv.Lock.Path})
	}
	if resumeOf != "" {
		prev, err := l.TakeOver(ctx, resumeOf)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range prev {
			msg := fmt.Sprintf("took over the lock %s left by run %s (%s@%s pid %d, gone)", e.Where, e.Holder.RunID, e.Holder.User, e.Holder.Hostname, e.Holder.PID)
			fmt.Fprintln(f.IO.ErrOut, msg)
			event.Note(ctx, msg) // journaled as a lock event of this run
		}
	} else if err := l.Acquire(ctx); err != nil {
		return nil, nil, err
	}
	return func() error {
		// release even when the run was cancelled
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return l.Release(rctx)
	}, missed, nil
}

// IsLockHeld reports whether err says another run holds the lock.
func IsLockHeld(err error) bool {
	var he *runlock.HeldError
	return errors.As(err, &he)
}

// BreakLocks removes the deployment's lock locally and on the first host of
// each site (or only site), and journals what it broke with the reason.
func BreakLocks(ctx context.Context, f *Factory, inv *inventory.Inventory, pool *remote.Pool, site, reason string) ([]string, string, error) {
	dir, err := f.StateDir()
	if err != nil {
		return nil, "", err
	}
	runID := journal.NewRunID(f.Now())
	jw, err := journal.Create(dir, runID, journal.WithRedactor(f.Redactor()))
	if err != nil {
		return nil, "", err
	}
	defer jw.Close()
	st := &event.Stamper{RunID: runID, Next: jw}
	h := holder(f, runID)
	st.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{ID: runID, Runbook: "unlock", Site: site, Deployment: inv.Deployment, Inventory: inv.File,
		InventoryDigest: inv.Digest, User: h.User, Hostname: h.Hostname, PID: h.PID, Version: f.Version, Args: f.Args, Mode: "unlock", Reason: reason, Started: f.Now()}})
	var broken []string
	var errs []error
	if prev, err := runlock.BreakLocal(dir, inv.Deployment); err != nil {
		if !errors.Is(err, runlock.ErrNotLocked) {
			errs = append(errs, err)
		}
	} else {
		broken = append(broken, fmt.Sprintf("local (held by run %s, %s@%s pid %d since %s)", prev.RunID, prev.User, prev.Hostname, prev.PID, prev.Since.Format("2006-01-02 15:04:05")))
	}
	for _, host := range LockHosts(inv) {
		h := inv.Host(host)
		if site != "" && (h == nil || h.Site != site) {
			continue
		}
		r, err := pool.Get(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: cannot reach %s: %w", h.Site, host, err))
			continue
		}
		prev, err := runlock.BreakRemote(ctx, r, host, inv.Lock.Path)
		if err != nil {
			if !errors.Is(err, runlock.ErrNotLocked) {
				errs = append(errs, err)
			}
		} else {
			broken = append(broken, fmt.Sprintf("%s:%s (held by run %s, %s@%s pid %d)", host, inv.Lock.Path, prev.RunID, prev.User, prev.Hostname, prev.PID))
		}
	}
	for _, b := range broken {
		st.Emit(event.Event{Kind: event.Lock, Message: "broke lock " + b + "; reason: " + reason})
	}
	outcome := event.OK
	msg := fmt.Sprintf("broke %d lock(s)", len(broken))
	err = errors.Join(errs...)
	if err != nil {
		outcome, msg = event.Failed, err.Error()
	}
	st.Emit(event.Event{Kind: event.RunEnd, Outcome: outcome, Message: msg})
	return broken, jw.Path(), err
}

// Moves keeps the deployment's last completed move in <lock.path>.last on
// every lock host (runbooks.MoveLog), so that the cooldown sees a move
// made from another machine.
func Moves(inv *inventory.Inventory, pool *remote.Pool) runbooks.MoveLog {
	return &lockHostMoves{inv: inv, pool: pool}
}

type lockHostMoves struct {
	inv  *inventory.Inventory
	pool *remote.Pool
}

func (m *lockHostMoves) path() string { return m.inv.Lock.Path + ".last" }

// each runs fn on every lock host at once, with a short deadline; hosts
// that do not answer at the network level are skipped (a lost site's: the
// lock event of the run already says its copy was not taken).
func (m *lockHostMoves) each(ctx context.Context, fn func(ctx context.Context, host string, r remote.Runner) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hosts := LockHosts(m.inv)
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			r, err := m.pool.Get(ctx, h)
			if err != nil {
				if checks.Reach(err) != checks.SawDown {
					errs[i] = fmt.Errorf("%s: %w", h, err)
				}
				return
			}
			errs[i] = fn(ctx, h, r)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *lockHostMoves) Last(ctx context.Context) ([]runbooks.Move, error) {
	var mu sync.Mutex
	var out []runbooks.Move
	err := m.each(ctx, func(ctx context.Context, host string, r remote.Runner) error {
		res, err := r.Run(ctx, "cat -- "+remote.Quote(m.path())+" 2>/dev/null || true")
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(res.Stdout)) == 0 {
			return nil
		}
		var mv runbooks.Move
		if err := json.Unmarshal(bytes.TrimSpace(res.Stdout), &mv); err != nil {
			return fmt.Errorf("%s:%s: %w", host, m.path(), err)
		}
		mu.Lock()
		out = append(out, mv)
		mu.Unlock()
		return nil
	})
	return out, err
}

func (m *lockHostMoves) Record(ctx context.Context, mv runbooks.Move) error {
	b, err := json.Marshal(mv)
	if err != nil {
		return err
	}
	p := remote.Quote(m.path())
	return m.each(ctx, func(ctx context.Context, host string, r remote.Runner) error {
		// a temporary file per host: hosts may share the file system
		tmp := remote.Quote(m.path() + ".tmp." + host)
		cmd := fmt.Sprintf("umask 077 && printf '%%s\\n' %s > %s && mv -f -- %s %s", remote.Quote(string(b)), tmp, tmp, p)
		res, err := r.Run(ctx, cmd)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("%s: exit %d: %s", host, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
		}
		return err
	})
}
