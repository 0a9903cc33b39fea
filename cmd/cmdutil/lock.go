package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"os"
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
// the witness's first host.
func LockHosts(inv *inventory.Inventory) []string {
	var out []string
	for _, s := range inv.Sites {
		if h := LockHost(inv, s.Name); h != "" {
			out = append(out, h)
		}
	}
	if inv.Witness != nil && len(inv.Witness.Hosts) > 0 {
		out = append(out, inv.Witness.Hosts[0].Name)
	}
	return out
}

func holder(f *Factory, runID string) runlock.Holder {
	h := runlock.NewHolder(runID, "sitectl "+strings.Join(os.Args[1:], " "))
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
			if checks.Reach(errs[i]) != checks.SawDown {
				return nil, nil, fmt.Errorf("cannot reach %s to take the run lock there (not a network failure: fix it first): %w", h, errs[i])
			}
			site := ""
			if hh := inv.Host(h); hh != nil {
				site = hh.Site
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
			fmt.Fprintf(f.IO.ErrOut, "took over the lock %s left by run %s (%s@%s pid %d, gone)\n", e.Where, e.Holder.RunID, e.Holder.User, e.Holder.Hostname, e.Holder.PID)
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
	jw, err := journal.Create(dir, runID, journal.WithRedactor(Redactor(inv, f.Getenv)))
	if err != nil {
		return nil, "", err
	}
	defer jw.Close()
	st := &event.Stamper{RunID: runID, Next: jw}
	h := holder(f, runID)
	st.Emit(event.Event{Kind: event.RunStart, Run: &event.RunInfo{ID: runID, Runbook: "unlock", Site: site, Deployment: inv.Deployment, Inventory: inv.File,
		InventoryDigest: inv.Digest, User: h.User, Hostname: h.Hostname, PID: h.PID, Version: f.Version, Args: os.Args[1:], Mode: "unlock", Reason: reason, Started: f.Now()}})
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
